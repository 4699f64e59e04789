"""Executed notebooks contain their figures, even when the runner exports MPLBACKEND=Agg.

Runs notebook 01 in quick mode through the workflow's notebook job
(``workflow/scripts/run_notebook.py``, papermill) into a temporary folder, with
``MPLBACKEND=Agg`` in the environment the kernel inherits (as ``make``
used to export), and checks that every figure the notebook saved is also
displayed as an ``image/png`` output of the executed notebook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

NB = "01_resolution_relevance"


@pytest.fixture
def quick_run(tmp_path, monkeypatch):
    monkeypatch.setenv("RR_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("RR_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("RR_QUICK", raising=False)
    env = dict(os.environ, RR_SAVE="1", RR_PROGRESS="0")  # what the workflow's notebook jobs set
    subprocess.run([sys.executable, str(ROOT / "workflow" / "scripts" / "run_notebook.py"), "--run", NB,
                    "--params", '{"quick": true}', "--out", str(tmp_path / "marker.json")], env=env, check=True)
    return tmp_path


def test_executed_quick_notebook_shows_every_saved_figure(quick_run):
    executed = json.loads((quick_run / "results" / "quick" / "executed" / f"{NB}.ipynb").read_text())
    images = [o for c in executed["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    saved = sorted((quick_run / "figures" / "quick").glob("fig01_*.png"))
    assert len(saved) == 3, saved
    assert len(images) >= len(saved), f"{len(images)} image outputs for {len(saved)} saved figures"
