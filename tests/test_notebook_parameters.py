"""Every notebook's parameters cell is one papermill can read: each assignment becomes a parameter.

papermill skips (with only a warning) a line it cannot parse, e.g. an apostrophe in a comment,
and then cannot override that parameter.
"""

import json
from pathlib import Path

import pytest
from papermill.translators import PythonTranslator

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_parameter_is_readable(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    src = "".join(cells[0]["source"])
    assigned = [ln.split("=")[0].strip() for ln in src.splitlines() if ln and not ln.startswith((" ", "#")) and "=" in ln]
    names = [p.name for p in PythonTranslator.inspect({"source": src})]
    assert names == assigned and {"quick", "save"} <= set(names)
