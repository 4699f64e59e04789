"""The workflow on a real SLURM cluster: one node, this machine (scripts/slurm_localhost.sh), through the
Snakemake profile profiles/slurm-localhost (executor plugin snakemake-executor-plugin-slurm).

Each test works in temporary copies of the checkout (rr_utils, the workflow, data/*.npz, no notebooks),
each with its own model cache, and compares what SLURM produced with the same grid run locally.  The module
fixture starts SLURM (installing slurm-wlm and munge with apt-get when missing) and stops it again if it
started it; the tests skip only where that is impossible (neither root nor passwordless sudo, or no way to
install the packages), saying why.  SLURM's jobs are slow to start here (each runs Snakemake twice, then
the job; the executor polls squeue every 5 s and more), so the file takes a few minutes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "slurm_localhost.sh"
PROFILE = ROOT / "profiles" / "slurm-localhost"
CANNOT = 3  # the script's exit status when this machine cannot have SLURM

QUICK_GRID = """quick: false
train_threads: 1
notebook_threads: 1
grid:
  datasets: [mnist, fashion-mnist]
  archs: [default]
  rows: [null]
  seeds: [0, 1]
  epochs: null
quick_grid: {}
networks: {}
"""

SMALL_FULL_GRID = """quick: false
train_threads: 1
notebook_threads: 1
grid:
  datasets: [mnist]
  archs: ["200-10"]
  rows: [500]
  seeds: [0]
  epochs: 40
quick_grid: {}
networks: {}
"""

# the grid table's numbers that must not depend on where a network was trained
COLUMNS = ["network", "split", "depth", "H_s", "H_K", "mu", "cache_key"]


@pytest.fixture(scope="module")
def slurm():
    if shutil.which("bash") is None:
        pytest.skip("no bash to run scripts/slurm_localhost.sh")
    was_running = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True).returncode == 0
    p = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    if p.returncode == CANNOT:
        pytest.skip("no SLURM on this machine: " + p.stderr.strip().splitlines()[-1])
    assert p.returncode == 0, f"scripts/slurm_localhost.sh start failed:\n{p.stderr}"
    yield
    if not was_running:
        subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, timeout=120)


def _checkout(repo: Path, config: str) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", ".snakemake")
    shutil.copytree(ROOT / "rr_utils", repo / "rr_utils", ignore=ignore)
    shutil.copytree(ROOT / "workflow", repo / "workflow", ignore=ignore)
    (repo / "data").mkdir()
    for f in (ROOT / "data").glob("*.npz"):
        shutil.copy(f, repo / "data")
    (repo / "notebooks").mkdir()  # no notebooks: only the grid's jobs
    (repo / "workflow" / "config.yaml").write_text(config)
    return repo


def _env(repo: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(repo), RR_RESULTS_DIR=str(repo / "results"),
               RR_FIGURES_DIR=str(repo / "figures"), RR_CACHE_DIR=str(repo / "cache"), MPLBACKEND="Agg")
    for k in ("RR_QUICK", "RR_REQUIRE_CACHED", "RR_SAVE"):
        env.pop(k, None)
    return env


def _snakemake(repo: Path, *args, log: Path | None = None):
    """Start snakemake in ``repo``; its output goes to ``log`` (default: repo/../<repo name>.log)."""
    log = log or repo.parent / f"{repo.name}.log"
    cmd = [sys.executable, "-m", "snakemake", "-s", "workflow/Snakefile", *map(str, args)]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=repo, env=_env(repo), stdout=fh, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    proc.log = log
    return proc


def _finish(proc, timeout=600) -> tuple[int, str]:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        pytest.fail(f"snakemake ran over {timeout} s:\n{proc.log.read_text()[-5000:]}")
    return proc.returncode, proc.log.read_text()


def _slurm(repo: Path, *args, log: Path | None = None):
    return _snakemake(repo, *args, "--profile", PROFILE, log=log)


def _job_ids(out: str) -> list[str]:
    return re.findall(r"has been submitted with SLURM jobid (\d+)", out)


def _job_state(jobid: str) -> str:
    p = subprocess.run(["scontrol", "-o", "show", "job", jobid], capture_output=True, text=True)
    m = re.search(r"\bJobState=(\S+)", p.stdout)
    return m.group(1) if m else f"unknown ({p.stdout.strip() or p.stderr.strip()})"


def _grid(repo: Path, quick: bool):
    import pandas as pd

    res = repo / "results" / ("quick" if quick else "")
    table = pd.read_csv(res / "grid.csv")
    doc = json.loads((res / "grid.json").read_text())
    return table, doc


def _checkpoints(cache: Path, layer: int) -> list[Path]:
    return sorted(cache.rglob(f"layer{layer:02d}_epoch*.pt"))


def test_the_grid_runs_as_slurm_jobs_and_equals_the_local_run(slurm, tmp_path):
    """Four quick networks (MNIST and Fashion-MNIST, seeds 0 and 1), their layer tables and the grid table:
    every job a SLURM job that ran the workflow's python, and the same numbers as on the local executor."""
    import pandas as pd

    on_slurm = _checkout(tmp_path / "slurm", QUICK_GRID)
    local = _checkout(tmp_path / "local", QUICK_GRID)
    # the local run alongside (one core: SLURM's jobs spend much of their time waiting to be polled)
    ref = _snakemake(local, "grid", "--config", "quick=1", "--cores", "1")
    # --jobs 4: SLURM holds the jobs beyond its 2 CPUs pending and starts them without waiting for a poll
    proc = _slurm(on_slurm, "grid", "--config", "quick=1", "--slurm-keep-successful-logs", "--jobs", "4")
    rc, out = _finish(proc)
    assert rc == 0, out[-8000:]
    rc_ref, out_ref = _finish(ref)
    assert rc_ref == 0, out_ref[-8000:]

    # every job of the run went through sbatch and ended COMPLETED in SLURM
    total = int(re.search(r"^total\s+(\d+)$", out, re.M).group(1))
    ids = _job_ids(out)
    assert total == 9 and len(set(ids)) == total, out[-8000:]
    assert "localrule" not in out  # nothing ran in this process
    states = {j: _job_state(j) for j in ids}
    assert set(states.values()) == {"COMPLETED"}, states

    # the training jobs ran the workflow's python (sys.executable of this snakemake) inside SLURM
    logs = on_slurm / ".snakemake" / "slurm_logs"
    names = ["mnist_default_s0", "mnist_default_s1", "fashion-mnist_default_s0", "fashion-mnist_default_s1"]
    for net in names:
        (log,) = (logs / "rule_network" / net).glob("*.log")
        assert log.stem in ids
        text = log.read_text()
        assert f"{sys.executable} -m rr_utils.networks train" in text, text[-3000:]
        assert f"[network] {net}: trained" in text, text[-3000:]
        rec = json.loads((on_slurm / "results" / "quick" / ".done" / "networks" / f"{net}.json").read_text())
        assert rec["source"] == "trained" and rec["threads"] == 1 and rec["device"] == "cpu", rec

    table, doc = _grid(on_slurm, quick=True)
    table_ref, doc_ref = _grid(local, quick=True)
    assert sorted(table["network"].unique()) == sorted(names)
    pd.testing.assert_frame_equal(table[COLUMNS], table_ref[COLUMNS], check_exact=True)
    assert [n["cache_key"] for n in doc["networks"]] == [n["cache_key"] for n in doc_ref["networks"]]


def test_a_training_job_cancelled_midway_resumes_through_slurm(slurm, tmp_path):
    """Full mode (40 epochs per layer here) on 500 rows: scancel the training job once its first layer has
    checkpoints, rerun through SLURM: the network resumes, and the grid table equals an uninterrupted run's."""
    import pandas as pd

    on_slurm = _checkout(tmp_path / "slurm", SMALL_FULL_GRID)
    local = _checkout(tmp_path / "local", SMALL_FULL_GRID)
    ref = _snakemake(local, "grid", "--cores", "1")  # the uninterrupted run, locally, alongside
    first = _slurm(on_slurm, "grid", log=tmp_path / "first.log")
    cache = on_slurm / "cache"
    deadline = time.monotonic() + 300
    while len(_checkpoints(cache, 0)) < 3 or not _job_ids(first.log.read_text()):
        assert first.poll() is None, first.log.read_text()[-8000:]
        assert time.monotonic() < deadline, "no checkpoints after 300 s:\n" + first.log.read_text()[-8000:]
        time.sleep(0.05)
    (jobid,) = _job_ids(first.log.read_text())
    subprocess.run(["scancel", jobid], check=True)
    deadline = time.monotonic() + 60
    while not _job_state(jobid).startswith("CANCELLED"):
        assert time.monotonic() < deadline, f"job {jobid} still {_job_state(jobid)} 60 s after scancel"
        time.sleep(0.2)
    assert not _checkpoints(cache, 1), "the job was cancelled after its first layer; the test needs it inside"
    os.killpg(first.pid, signal.SIGINT)  # snakemake itself interrupted too (it releases its lock)
    rc, out = _finish(first, timeout=120)
    assert rc != 0 and not (on_slurm / "results" / "grid.csv").exists(), out[-8000:]
    assert not (on_slurm / "results" / ".done" / "networks" / "mnist_200-10_r500_ep40_s0.json").exists()

    rc, out = _finish(_slurm(on_slurm, "grid", log=tmp_path / "rerun.log"))
    assert rc == 0, out[-8000:]
    assert len(_job_ids(out)) == 3, out[-8000:]  # training, layer table, grid table: all through SLURM
    rec = json.loads((on_slurm / "results" / ".done" / "networks" / "mnist_200-10_r500_ep40_s0.json").read_text())
    assert rec["source"] == "resumed" and 0 < rec["epochs_trained"] < 80, rec

    rc, out = _finish(ref)
    assert rc == 0, out[-8000:]
    rec_ref = json.loads((local / "results" / ".done" / "networks" / "mnist_200-10_r500_ep40_s0.json").read_text())
    assert rec_ref["source"] == "trained" and rec_ref["cache_key"] == rec["cache_key"]
    table, _ = _grid(on_slurm, quick=False)
    table_ref, _ = _grid(local, quick=False)
    pd.testing.assert_frame_equal(table[COLUMNS], table_ref[COLUMNS], check_exact=True)
