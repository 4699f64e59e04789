"""The model cache under contention, with real processes (tests/_quick_run.py).

Two processes asking for the same network at once: exactly one trains it, the
other waits on the entry's lock, then loads the checkpoints (verified by their
sha256) and gets the same weights.  A trainer killed with SIGKILL while it
holds the lock does not block the next one: the operating system releases its
``flock``, and the next process takes over and resumes from its checkpoints.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "_quick_run.py"
TOTAL_EPOCHS = 3 * 6  # _quick_run.CONFIG: 3 layers x 6 epochs


def _env():
    env = dict(os.environ, PYTHONHASHSEED="0",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    env.pop("RR_CACHE_DIR", None)
    return env


def _start(cache: Path, out: Path, slow: float = 0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), str(cache), str(out), "--slow", str(slow)],
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _trained(stdout: str) -> int:
    return sum(line.startswith("trained ") for line in stdout.splitlines())


@pytest.fixture(scope="module")
def race(tmp_path_factory):
    """Two processes started together for the same network in one empty cache."""
    d = tmp_path_factory.mktemp("race")
    # slow epochs (a sleep in the log callback) keep the winner training while the other arrives
    procs = [_start(d / "cache", d / f"out{i}.json", slow=0.15) for i in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    return d, procs, outs


def test_two_processes_race_for_one_entry_one_trains_the_other_loads(race):
    tmp_path, procs, outs = race
    cache = tmp_path / "cache"
    assert [p.returncode for p in procs] == [0, 0], [e[-3000:] for _, e in outs]
    trained = sorted(_trained(o) for o, _ in outs)
    assert trained == [0, TOTAL_EPOCHS]  # exactly one trained, the other trained nothing
    winner = next(i for i, (o, _) in enumerate(outs) if _trained(o))
    loser_err = outs[1 - winner][1]
    assert f"pid {procs[winner].pid} on " in loser_err and "is training this network; waiting" in loser_err
    docs = [json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(2)]
    assert docs[0]["weights_sha256"] == docs[1]["weights_sha256"]  # identical weights
    assert docs[0] == docs[1]  # and the same history, entropies and fits
    assert not list(cache.rglob(".lock.owner.json"))  # released cleanly
    assert all("ignoring invalid checkpoint" not in e for _, e in outs)


def test_a_trainer_killed_holding_the_lock_does_not_block_the_next(race, tmp_path):
    cache = tmp_path / "cache"
    victim = _start(cache, tmp_path / "victim.json", slow=2.0)
    try:
        for line in victim.stdout:  # wait until it has trained (and checkpointed) one epoch
            if line.startswith("trained 0 1"):
                break
        owner = next(cache.rglob(".lock.owner.json"))
        assert json.loads(owner.read_text())["pid"] == victim.pid  # it holds the entry's lock
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.communicate()
    t0 = time.monotonic()
    nxt = _start(cache, tmp_path / "next.json")
    out, err = nxt.communicate(timeout=300)
    assert nxt.returncode == 0, err[-3000:]
    assert f"previous run (pid {victim.pid} on " in err and "taking it over" in err
    assert 0 < _trained(out) < TOTAL_EPOCHS  # resumed from the dead trainer's checkpoints
    assert "ignoring invalid checkpoint" not in err
    assert time.monotonic() - t0 < 300
    # the same weights as the race's run, which was never interrupted
    a = json.loads((tmp_path / "next.json").read_text())
    b = json.loads((race[0] / "out0.json").read_text())
    assert a["weights_sha256"] == b["weights_sha256"] and a["history"] == b["history"]


def test_a_waiter_arriving_before_the_holder_wrote_its_record_still_names_it(tmp_path, capsys):
    """The holder takes the lock, then writes ``.lock.owner.json``: a process that
    arrives in between waits for the record instead of saying 'another process'."""
    from rr_utils.models.cache import EntryLock

    folder = tmp_path / "entry"
    folder.mkdir()
    # a holder that takes the lock, says so, and writes its record only 0.5 s later
    code = (
        "import filelock, json, pathlib, sys, time\n"
        "f = pathlib.Path(sys.argv[1]); lock = filelock.FileLock(str(f / '.lock')); lock.acquire()\n"
        "print('locked', flush=True); time.sleep(0.5)\n"
        "(f / '.lock.owner.json').write_text(json.dumps({'pid': 4242, 'host': 'h', 'started': 't'}))\n"
        "time.sleep(0.5); (f / '.lock.owner.json').unlink(); lock.release()\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with EntryLock(folder):
        pass
    assert holder.wait(timeout=30) == 0
    err = capsys.readouterr().err
    assert "pid 4242 on h" in err and "waiting to load it" in err
