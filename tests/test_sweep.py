"""rr_utils.sweep with real processes: a LocalCluster run, its resume, a real
``dask scheduler`` with two ``dask worker`` processes, a worker killed in the
middle of the sweep, and a client killed in the middle of the sweep.

No mocks of Dask: every run is ``python -m rr_utils.sweep`` in its own
process.  Quick grid: 4 networks (hidden sizes 30-10, 2 epochs per layer) on
the first 500 embedded MNIST digits, 200 test digits, 1 torch thread per task
(the trained bits depend on the thread count), each run with its own empty
model cache unless it is meant to resume.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rr_utils import sweep as S

ROOT = Path(__file__).resolve().parents[1]
GRID = ["--quick", "--M", "500", "--arch", "30-10", "--epochs", "2", "--test-M", "200",
        "--seeds", "0", "1", "2", "3", "--threads", "1"]
N_TASKS, EPOCHS_PER_TASK = 4, 2 * 2  # 2 layers x 2 epochs


def _env(out: Path, **extra) -> dict:
    env = dict(os.environ, RR_RESULTS_DIR=str(out), PYTHONHASHSEED="0",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    for k in ("RR_NO_WAIT", "DASK_SCHEDULER_ADDRESS", "RR_CACHE_DIR"):
        env.pop(k, None)
    env.update(extra)
    return env


def _sweep(run: Path, *args, wait=True, **popen):
    cmd = [sys.executable, "-m", "rr_utils.sweep", *GRID, "--cache-dir", str(run / "cache"), *args]
    p = subprocess.Popen(cmd, cwd=ROOT, env=_env(run / "results"), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, **popen)
    if not wait:
        return p
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out[-4000:]
    return pd.read_csv(run / "results" / "quick" / "sweep_sweep.csv"), out


def _science(table: pd.DataFrame) -> pd.DataFrame:
    """Everything but the provenance (who ran it, how long, from where)."""
    return table.drop(columns=S.PROVENANCE).reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The default path: `python -m rr_utils.sweep` on a LocalCluster, from an empty cache."""
    run = tmp_path_factory.mktemp("local")
    table, out = _sweep(run, "--workers", "2")
    return run, table, out


def test_local_sweep_table_and_provenance(reference):
    run, table, out = reference
    assert "LocalCluster: 2 worker processes" in out
    assert list(dict.fromkeys(table["task"])) == [f"mnist_seed{s}_M500_30-10_ep2" for s in range(4)]
    assert len(table) == N_TASKS * 2 * 2  # (task, layer, split)
    assert set(table["split"]) == {"train", "test"} and set(table["M"]) == {500, 200}
    assert (table["source"] == "trained").all() and (table["epochs_trained"] == EPOCHS_PER_TASK).all()
    assert (table["torch_threads"] == 1).all() and table["cache_key"].str.fullmatch("[0-9a-f]{64}").all()
    assert table.groupby("task")["cache_key"].nunique().eq(1).all() and table["cache_key"].nunique() == N_TASKS
    assert table.loc[table["split"] == "train", "mu"].notna().any()  # the power-law fit per train layer
    assert (run / "results" / "quick" / "sweep_sweep.json").is_file()


def test_rerun_resumes_from_the_cache_without_training(reference):
    run, table, _ = reference
    again, out = _sweep(run, "--workers", "1")
    assert (again["source"] == "result-cache").all() and (again["epochs_trained"] == 0).all()
    pd.testing.assert_frame_equal(_science(again), _science(table))


def test_bad_grid_is_named():
    with pytest.raises(ValueError, match="M: expected None .* integer >= 2"):
        S.Task(M=1)
    with pytest.raises(ValueError, match="architecture: expected hidden sizes"):
        S.parse_arch("30-x")
    with pytest.raises(ValueError, match="repeated tasks"):
        S.grid(seeds=[0, 0])
    with pytest.raises(ValueError, match="asks for 9000 train rows, mnist has 8000"):
        S.run_task(S.Task(M=9000, hidden_sizes=(5,), epochs=1), threads=1)
