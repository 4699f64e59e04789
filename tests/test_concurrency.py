"""Runs that overlap, with real processes: the pipeline lock and kernels over IPC.

The pipelines run on a temporary copy of the checkout (rr_utils and one small
notebook that imports rr_utils, writes a results file and a figure), so each
run takes seconds and never touches the repository's own results.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from rr_utils.locking import LockBusy, RunLock

ROOT = Path(__file__).resolve().parents[1]
TCP_WARNING = "Kernel is running over TCP without encryption"

NOTEBOOK_CELLS = [
    "quick = False",
    """import os, time
import numpy as np
import matplotlib.pyplot as plt
from rr_utils import entropy as E
from rr_utils.artifacts import save_results
from rr_utils.plotting import save_figure
time.sleep(float(os.environ.get("RR_TEST_NB_SLEEP", "0")))  # lets a test see (or kill) a run in progress
rng = np.random.default_rng(0)
counts = E.state_counts(rng.integers(0, 2, size=(2000, 10)))
save_results("01_tiny", E.summary(counts), quick=quick)
fig, ax = plt.subplots()
ax.plot(np.sort(counts)[::-1])
save_figure(fig, "fig_tiny", {"quick": quick}, "sorted counts", "01_tiny", quick=quick)
print("ok")""",
]


def _write_notebook(path: Path) -> None:
    nb = new_notebook(cells=[new_code_cell(s) for s in NOTEBOOK_CELLS])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A checkout with rr_utils and one notebook: the pipeline's ROOT is where rr_utils lies."""
    repo = tmp_path_factory.mktemp("checkout")
    shutil.copytree(ROOT / "rr_utils", repo / "rr_utils", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "data").mkdir()
    (repo / "notebooks").mkdir()
    _write_notebook(repo / "notebooks" / "01_tiny.ipynb")
    return repo


def _env(repo: Path, out: Path, **extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(repo), RR_RESULTS_DIR=str(out / "results"),
               RR_FIGURES_DIR=str(out / "figures"), MPLBACKEND="Agg", PYTHONHASHSEED="0")
    env.pop("RR_NO_WAIT", None)
    env.update(extra)
    return env


def _pipeline(repo, env, *args, **kw):
    return subprocess.Popen([sys.executable, "-m", "rr_utils.pipeline", "--quick", *args], cwd=repo, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _tree(out: Path) -> dict:
    """Every artifact's bytes, less what is expected to differ between runs (wall times,
    executed notebooks with their timestamps, the lock file)."""
    files = {}
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out).as_posix()
        if p.is_file() and "/executed/" not in rel and p.name != "timings.json" and ".pipeline.lock" not in p.name:
            files[rel] = p.read_bytes()
    return files


def test_two_pipelines_at_once_one_runs_the_other_waits_then_skips(checkout, tmp_path):
    env = _env(checkout, tmp_path / "shared", RR_TEST_NB_SLEEP="1")
    procs = [_pipeline(checkout, env) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ran = [i for i, (o, _) in enumerate(outs) if "[run ] 01_tiny " in o]
    assert len(ran) == 1, outs  # exactly one ran the notebook
    waiter = 1 - ran[0]
    w_out, w_err = outs[waiter]
    assert "[skip] 01_tiny: inputs unchanged" in w_out and "[run ]" not in w_out
    # the waiting run named the running one: its pid, this host, its start time
    m = re.search(r"another run holds the lock .*: pid (\d+) on (\S+), started (\S+)", w_err)
    assert m, w_err
    assert int(m.group(1)) == procs[ran[0]].pid and m.group(2) == socket.gethostname()
    assert "Waiting for it to finish" in w_err and "lock acquired after waiting" in w_err
    assert not (tmp_path / "shared" / "results" / "quick" / ".pipeline.lock.owner.json").exists()

    ref = tmp_path / "single"
    single = _pipeline(checkout, _env(checkout, ref))
    s_out, s_err = single.communicate(timeout=180)
    assert single.returncode == 0, s_err
    shared, alone = _tree(tmp_path / "shared"), _tree(ref)
    assert "results/quick/01_tiny.json" in alone and "figures/quick/fig_tiny.png" in alone
    assert shared.keys() == alone.keys()
    assert [k for k in alone if shared[k] != alone[k]] == []  # byte-identical to a single run


def test_no_wait_exits_at_once_and_names_the_holder(checkout, tmp_path):
    env = _env(checkout, tmp_path)
    lock_path = tmp_path / "results" / "quick" / ".pipeline.lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom rr_utils.locking import RunLock\n"
        f"lk = RunLock({str(lock_path)!r}, 'holder').acquire()\nprint('held', flush=True)\ntime.sleep(120)")],
        cwd=checkout, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for extra_args, extra_env in ((["--no-wait"], {}), ([], {"RR_NO_WAIT": "1"})):
            t0 = time.monotonic()
            p = _pipeline(checkout, dict(env, **extra_env), *extra_args)
            out, err = p.communicate(timeout=60)
            assert p.returncode == 75, (out, err)
            assert time.monotonic() - t0 < 30
            assert f"pid {holder.pid} on {socket.gethostname()}, started " in err and "Not waiting" in err
            assert "[run ]" not in out and not (tmp_path / "results" / "quick" / "01_tiny.json").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_run_leaves_a_lock_that_is_taken_over(checkout, tmp_path):
    env = _env(checkout, tmp_path)
    victim = _pipeline(checkout, dict(env, RR_TEST_NB_SLEEP="60"), start_new_session=True)
    try:
        assert victim.stdout.readline().startswith("[run ] 01_tiny ")
        owner = tmp_path / "results" / "quick" / ".pipeline.lock.owner.json"
        assert json.loads(owner.read_text())["pid"] == victim.pid
        time.sleep(1.0)  # the kernel is running the notebook
    finally:  # kill -9 the run and its kernel, as a crash or an OOM kill would
        family = [victim.pid] + [c.pid for c in psutil.Process(victim.pid).children(recursive=True)]
        for pid in family:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        victim.communicate()
    assert victim.returncode == -signal.SIGKILL
    with pytest.raises(FileNotFoundError):
        (tmp_path / "results" / "quick" / "01_tiny.json").read_bytes()  # it died before writing

    t0 = time.monotonic()
    p = _pipeline(checkout, env, "--no-wait")  # no waiting needed: the OS released the dead run's lock
    out, err = p.communicate(timeout=180)
    assert p.returncode == 0, err
    assert f"previous run (pid {victim.pid} on {socket.gethostname()}" in err and "taking it over" in err
    assert "[run ] 01_tiny " in out and (tmp_path / "results" / "quick" / "01_tiny.json").exists()
    assert not owner.exists() and time.monotonic() - t0 < 120


def test_lock_in_process_busy_then_free(tmp_path):
    a = RunLock(tmp_path / "x.lock", "thing", say=lambda m: None).acquire()
    with pytest.raises(LockBusy, match=f"pid {os.getpid()} on .*Not waiting"):
        RunLock(tmp_path / "x.lock", "thing", say=lambda m: None).acquire(wait=False)
    a.release()
    b = RunLock(tmp_path / "x.lock", "thing", say=lambda m: None).acquire(wait=False)
    assert b.took_over is None  # a clean release leaves no owner record behind
    b.release()


def _papermill_script(nb: Path, out: Path, ipc: bool) -> str:
    if ipc:  # the pipeline's own call
        return (f"from pathlib import Path\nfrom rr_utils.pipeline import run_notebook\n"
                f"run_notebook(Path({str(nb)!r}), Path({str(out)!r}), {{'quick': True}})")
    return (f"import papermill as pm\npm.execute_notebook({str(nb)!r}, {str(out)!r}, parameters={{'quick': True}}, "
            "kernel_name='python3', progress_bar=False)")


def test_four_papermill_runs_at_once_all_succeed_over_ipc(checkout, tmp_path):
    # the race is in starting the kernels: a notebook that only prints keeps the four runs short
    nb = tmp_path / "print.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("quick = False"), new_code_cell("print('ok')")],
                                metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                         "language": "python"}}), nb)
    env = _env(checkout, tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", _papermill_script(nb, tmp_path / f"out{i}.ipynb", True)],
                              cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    for i, (_, err) in enumerate(outs):
        assert TCP_WARNING not in err and "Address already in use" not in err, err
        done = nbformat.read(tmp_path / f"out{i}.ipynb", as_version=4)
        assert any(o.get("text", "").strip() == "ok" for o in done.cells[-1].outputs)
    # control: papermill's default kernel manager (TCP) does print the warning this test looks for
    tcp = subprocess.run([sys.executable, "-c", _papermill_script(nb, tmp_path / "tcp.ipynb", False)],
                         cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    assert tcp.returncode == 0, tcp.stderr
    assert TCP_WARNING in tcp.stderr
