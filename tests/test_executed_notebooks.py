"""Committed executed notebooks name no folder of the machine that ran them (workflow/scripts/run_notebook.py)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run_notebook", ROOT / "workflow" / "scripts" / "run_notebook.py")
run_notebook = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_notebook)

EXECUTED = sorted((ROOT / "results").rglob("executed/*.ipynb"))
MACHINE_PATH = re.compile(r"/(?:home|root|work|Users|tmp/ipykernel_)[^\s\"']*")


def test_there_are_executed_notebooks():
    assert len(EXECUTED) >= 10


@pytest.mark.parametrize("path", EXECUTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_machine_paths(path):
    text = path.read_text(encoding="utf-8")
    assert str(ROOT) not in text
    assert not MACHINE_PATH.findall(text), MACHINE_PATH.findall(text)[:3]
    assert '"input_path": "./notebooks/' in text


def test_scrub_paths(tmp_path):
    root = tmp_path / "checkout"
    root.mkdir()
    text = (f'"input_path": "/elsewhere/repo/notebooks/04_x.ipynb", '
            f'"output_path": "/elsewhere/repo/results/fashion-mnist/executed/04_x.partial.ipynb", '
            f'"{root}/rr_utils/claims.py:12", "PosixPath(\'/home/u/repo/results/04_x.json\')", '
            f'"/tmp/ipykernel_27973/2251441440.py:7: Warning", "/usr/share/datasets/fashion-mnist/t.gz"')
    out = run_notebook.scrub_paths(text, root)
    assert out == ('"input_path": "./notebooks/04_x.ipynb", '
                   '"output_path": "./results/fashion-mnist/executed/04_x.ipynb", '
                   '"./rr_utils/claims.py:12", "PosixPath(\'./results/04_x.json\')", '
                   '"<cell>:7: Warning", "/usr/share/datasets/fashion-mnist/t.gz"')
