"""A Fashion-MNIST notebook in quick mode, on small IDX files this test writes (no Fashion-MNIST needed).

Notebook 03 runs through the workflow's notebook job (``workflow/scripts/run_notebook.py``, papermill) with
``dataset = "fashion-mnist"``: the system folder hidden (``RR_NO_SYSTEM_DATA``), ``RR_DATA_DIR`` holding only
``raw/fashion-mnist/`` with 300 + 120 random images, results, figures and the model cache in a scratch folder.
The notebook must read those files (not the committed quick subset), train on them and write its results to
the data set's own subfolder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import write_idx_set  # shared helper

ROOT = Path(__file__).resolve().parents[1]
NB = "03_train_dbn"


def test_notebook_03_runs_on_small_fashion_idx_files(tmp_path):
    arrays = write_idx_set(tmp_path / "data" / "raw" / "fashion-mnist", n_train=300, n_test=120, gz=True)
    env = dict(os.environ, RR_NO_SYSTEM_DATA="1", RR_DATA_DIR=str(tmp_path / "data"),
               RR_RESULTS_DIR=str(tmp_path / "results"), RR_FIGURES_DIR=str(tmp_path / "figures"),
               RR_CACHE_DIR=str(tmp_path / "cache"), RR_PROGRESS="0", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    env.pop("RR_QUICK", None)
    env.pop("RR_REQUIRE_CACHED", None)
    p = subprocess.run([sys.executable, str(ROOT / "workflow" / "scripts" / "run_notebook.py"), "--run", NB,
                        "--params", json.dumps({"quick": True, "dataset": "fashion-mnist"}),
                        "--out", str(tmp_path / "marker.json")], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    res = json.loads((tmp_path / "results" / "quick" / "fashion-mnist" / f"{NB}.json").read_text())
    assert res["params"]["dataset"] == "fashion-mnist" and res["params"]["quick"] is True
    assert res["data"]["dataset"] == "fashion-mnist" and "IDX files" in res["data"]["source"]
    assert (res["data"]["M_train"], res["data"]["M_test"]) == (len(arrays["train"][0]), len(arrays["test"][0]))
    assert len(res["layers"]) == len(res["config"]["hidden_sizes"])
    assert all(r["recon_final"] < r["recon_epoch0"] for r in res["layers"][:1])  # the first layer learned
    assert not (tmp_path / "results" / "quick" / f"{NB}.json").exists()  # MNIST's file untouched
