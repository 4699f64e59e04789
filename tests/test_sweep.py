"""rr_utils.sweep with real processes: a real ``dask scheduler`` with two
``dask worker`` processes, a worker killed in the middle of the sweep, and a
client killed in the middle of the sweep, each compared with the same grid
run sequentially without Dask.  (The default LocalCluster path runs in the
benchmark's smoke test, tests/test_benchmarks.py.)

No mocks of Dask: every sweep is ``python -m rr_utils.sweep`` in its own
process.  Quick grid: 4 networks (hidden sizes 30-10, 2 epochs per layer) on
the first 500 embedded MNIST digits, 200 test digits, 1 torch thread per task
(the trained bits depend on the thread count), each run with its own empty
model cache unless it is meant to resume.
"""

from __future__ import annotations

import json
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


TASKS = S.grid(seeds=range(4), Ms=[500], architectures=[(30, 10)], epochs=2, test_M=200)  # = GRID


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same grid run sequentially in this process, no Dask, from an empty cache (CSV round trip)."""
    d = tmp_path_factory.mktemp("sequential")
    rows = [r for t in TASKS for r in S.run_task(t, cache_dir=d / "cache", threads=1)]
    S.write_table(pd.DataFrame(rows), d / "sweep_ref.csv", TASKS)
    side = json.loads((d / "sweep_ref.json").read_text())
    assert [t["task"] for t in side["per_task"]] == [t.name for t in TASKS]
    assert all(t["source"] == "trained" and t["wall_s"] > 0 and t["torch_threads"] == 1 for t in side["per_task"])
    return d, pd.read_csv(d / "sweep_ref.csv")


def test_sequential_table_provenance_and_result_cache(reference):
    d, table = reference
    assert list(dict.fromkeys(table["task"])) == [f"mnist_seed{s}_M500_30-10_ep2" for s in range(4)]
    assert len(table) == N_TASKS * 2 * 2  # (task, layer, split)
    assert set(table["split"]) == {"train", "test"} and set(table["M"]) == {500, 200}
    assert (table["source"] == "trained").all() and (table["epochs_trained"] == EPOCHS_PER_TASK).all()
    assert (table["torch_threads"] == 1).all() and table["cache_key"].str.fullmatch("[0-9a-f]{64}").all()
    assert table.groupby("task")["cache_key"].nunique().eq(1).all() and table["cache_key"].nunique() == N_TASKS
    assert table.loc[table["split"] == "train", "mu"].notna().any()  # the power-law fit per train layer
    # a rerun takes every task from the result cache and trains nothing
    again = [r for t in TASKS for r in S.run_task(t, cache_dir=d / "cache", threads=1)]
    assert {r["source"] for r in again} == {"result-cache"} and {r["epochs_trained"] for r in again} == {0}
    S.write_table(pd.DataFrame(again), d / "sweep_again.csv", TASKS)
    pd.testing.assert_frame_equal(_science(pd.read_csv(d / "sweep_again.csv")), _science(table))


def test_bad_grid_is_named():
    with pytest.raises(ValueError, match="M: expected None .* integer >= 2"):
        S.Task(M=1)
    with pytest.raises(ValueError, match="architecture: expected hidden sizes"):
        S.parse_arch("30-x")
    with pytest.raises(ValueError, match="repeated tasks"):
        S.grid(seeds=[0, 0])
    with pytest.raises(ValueError, match="asks for 9000 train rows, mnist has 8000"):
        S.run_task(S.Task(M=9000, hidden_sizes=(5,), epochs=1), threads=1)


# --------------------------------------------------------------------------- a real cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`dask scheduler` and two `dask worker --nthreads 1 --no-nanny` processes on localhost.

    No nanny, so a killed worker stays dead (a nanny would restart it).  Each
    worker's output (the sweep's start/done lines, warnings) goes to a log file."""
    from distributed import Client

    d = tmp_path_factory.mktemp("cluster")
    env = _env(d / "unused")
    procs = []

    def start(args, log):
        fh = open(log, "w")
        procs.append(subprocess.Popen([sys.executable, "-m", "dask", *args], cwd=d, env=env, stdout=fh,
                                      stderr=subprocess.STDOUT))
        return procs[-1]

    try:
        start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
               "--scheduler-file", str(d / "scheduler.json")], d / "scheduler.log")
        deadline = time.monotonic() + 120
        while not (d / "scheduler.json").exists():
            assert time.monotonic() < deadline and procs[0].poll() is None, (d / "scheduler.log").read_text()
            time.sleep(0.2)
        time.sleep(0.2)  # the file is written in one go, but give it a moment
        import json

        address = json.loads((d / "scheduler.json").read_text())["address"]
        workers = {name: start(["worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                                "--name", name, "--local-directory", str(d / name),
                                "--preload", "rr_utils.models"], d / f"{name}.log")  # torch imported at start
                   for name in ("A", "B")}
        with Client(address, timeout="60s") as c:
            c.wait_for_workers(2, timeout=240)
        yield {"address": address, "workers": workers, "logs": {n: d / f"{n}.log" for n in workers}}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _pids(table: pd.DataFrame) -> set[int]:
    return {int(w.rsplit(":", 1)[1]) for w in table["worker"]}


def test_real_scheduler_and_two_workers_give_the_sequential_result(reference, cluster, tmp_path):
    _, ref = reference
    table, out = _sweep(tmp_path, "--scheduler", cluster["address"])
    assert f"connected to {cluster['address']}" in out
    assert _pids(table) == {p.pid for p in cluster["workers"].values()}  # both workers ran tasks
    assert (table["source"] == "trained").all() and (table["epochs_trained"] == EPOCHS_PER_TASK).all()
    pd.testing.assert_frame_equal(_science(table), _science(ref))
    assert (tmp_path / "results" / "quick" / "sweep_sweep.json").is_file()


def _all_checkpoints_verify(cache: Path, table: pd.DataFrame) -> int:
    """Load every checkpoint of every task's network through the models API (each one's sha256,
    key, layer and epoch are verified on load); returns how many were checked."""
    from rr_utils import models as MD
    from rr_utils.data import load_dataset

    train = load_dataset("mnist", "train", verbose=False).images[:500]
    n = 0
    for seed in sorted(set(table["seed"])):
        config = S.Task(seed=int(seed), M=500, hidden_sizes=(30, 10), epochs=2).config()
        dbn = MD.load_dbn(config, MD.array_checksum(train), cache_dir=cache)
        for layer in range(dbn.n_layers):
            for epoch in dbn.checkpoints[layer]:
                dbn.checkpoints[layer][epoch]
                n += 1
    return n


def test_a_worker_killed_mid_sweep_loses_nothing(reference, cluster, tmp_path):
    _, ref = reference
    victim, survivor = cluster["workers"]["A"], cluster["workers"]["B"]
    log = cluster["logs"]["A"]
    seen = log.stat().st_size
    sweep = _sweep(tmp_path, "--scheduler", cluster["address"], "--epoch-pause", "0.5", wait=False)
    killed_task = None
    try:
        deadline = time.monotonic() + 240
        while killed_task is None:  # the victim has started a task (each takes > 2 s with the pauses)
            assert time.monotonic() < deadline and sweep.poll() is None, "worker A never started a task"
            new = log.read_text()[seen:]
            started = [ln.split()[2] for ln in new.splitlines() if ln.startswith("[sweep] start")]
            finished = {ln.split()[2].rstrip(":") for ln in new.splitlines() if ln.startswith("[sweep] done")}
            running = [t for t in started if t not in finished]
            if running:
                killed_task = running[-1]
            time.sleep(0.05)
        time.sleep(0.8)  # into its first epochs
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
    finally:
        out, _ = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, out[-4000:]
    table = pd.read_csv(tmp_path / "results" / "quick" / "sweep_sweep.csv")
    pd.testing.assert_frame_equal(_science(table), _science(ref))  # equal to an undisturbed run
    lost = table[table["task"] == killed_task]
    assert (lost["worker"].str.endswith(f":{survivor.pid}")).all()  # retried on the other worker
    assert set(lost["source"]) <= {"trained", "resumed"}
    assert "ignoring invalid checkpoint" not in cluster["logs"]["B"].read_text()
    assert _all_checkpoints_verify(tmp_path / "cache", table) == N_TASKS * 2 * 3  # epochs 0, 1, 2 per layer


def test_a_client_killed_mid_sweep_resumes_without_redoing_finished_tasks(reference, cluster, tmp_path):
    _, ref = reference
    results = tmp_path / "cache" / "sweep"
    client = _sweep(tmp_path, "--scheduler", cluster["address"], "--epoch-pause", "0.5", wait=False)
    deadline = time.monotonic() + 240
    while not (results.is_dir() and any(results.glob("*.json"))):
        assert time.monotonic() < deadline and client.poll() is None, "no task finished"
        time.sleep(0.05)
    client.send_signal(signal.SIGKILL)
    client.communicate()
    finished = {p.name.split("-")[0] for p in results.glob("*.json")}  # key[:24] of each finished task
    assert 1 <= len(finished) < N_TASKS

    table, out = _sweep(tmp_path, "--scheduler", cluster["address"])
    assert f"previous run (pid {client.pid} on " in out  # its lock was taken over
    pd.testing.assert_frame_equal(_science(table), _science(ref))
    per_task = table.drop_duplicates("task").set_index("task")
    done_before = per_task[per_task["cache_key"].str[:24].isin(finished)]
    assert len(done_before) == len(finished)
    assert (done_before["source"] == "result-cache").all() and (done_before["epochs_trained"] == 0).all()
    assert per_task["epochs_trained"].sum() <= (N_TASKS - len(finished)) * EPOCHS_PER_TASK
