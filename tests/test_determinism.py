"""Determinism, resumption and cache keys, end to end.

* The same quick training + analysis (tests/_quick_run.py) run twice in fresh
  processes writes byte-identical JSON; a third run that loads the cache does too.
* A run killed (SIGKILL) in the middle of training, with its newest checkpoint
  then truncated as if killed mid-write, resumes from the last valid checkpoint
  (completed layers and epochs are not redone, their files not rewritten) and
  writes the same bytes as the uninterrupted run.
* The workflow killed in the middle of a training job: tests/test_workflow.py.
* Cache keys cover config, data checksum, code source, device type and torch
  version; a stale (older code) or foreign (another key) checkpoint is never
  loaded, and retraining one entry leaves the others untouched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rr_utils import models as MD
from rr_utils.models import checkpoints as MDC

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("_quick_run.py")


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    env.update(extra)
    return env


def _run_worker(cache: Path, out: Path, *extra: str) -> list[tuple[int, int]]:
    """Run the quick training + analysis in a fresh process; return the (layer, epoch) it trained."""
    r = subprocess.run([sys.executable, str(WORKER), str(cache), str(out), *extra], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.rstrip().endswith("done")
    return [(int(a), int(b)) for a, b in re.findall(r"^trained (\d+) (\d+)$", r.stdout, re.M)]


ALL_EPOCHS = [(layer, e) for layer in range(3) for e in range(1, 7)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: (cache folder, output bytes)."""
    d = tmp_path_factory.mktemp("reference")
    trained = _run_worker(d / "cache", d / "out.json")
    assert trained == ALL_EPOCHS
    return d / "cache", (d / "out.json").read_bytes()


def test_same_seed_gives_byte_identical_results(reference, tmp_path):
    cache, expected = reference
    # a second fresh process trains again from scratch into its own cache ...
    assert _run_worker(tmp_path / "cache", tmp_path / "again.json") == ALL_EPOCHS
    assert (tmp_path / "again.json").read_bytes() == expected
    # ... and a third loads the first one's cache without training
    assert _run_worker(cache, tmp_path / "cached.json") == []
    assert (tmp_path / "cached.json").read_bytes() == expected
    doc = json.loads(expected)
    assert len(doc["weights_sha256"]) == 3 and len(doc["layers"]["layers"]) == 6


def _checkpoints(cache: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(cache.glob("dbn-*/layer*.pt"))}


def test_killed_training_resumes_without_redoing_work(reference, tmp_path):
    _, expected = reference
    cache, out = tmp_path / "cache", tmp_path / "out.json"
    proc = subprocess.Popen([sys.executable, str(WORKER), str(cache), str(out), "--slow", "0.5"], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:  # kill in the middle of layer 1 (0-based): layer 0 is complete, layer 1 is not
        deadline = time.monotonic() + 120
        while not list(cache.glob("dbn-*/layer01_epoch0002.pt")):
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the quick run never reached layer 1, epoch 2"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert not out.exists()  # the result is written only at the end
    done = _checkpoints(cache)
    layer1 = sorted(int(n[-7:-3]) for n in done if n.startswith("layer01"))
    assert all(f"layer00_epoch{e:04d}.pt" in done for e in range(7)), sorted(done)
    assert 2 <= layer1[-1] < 6, "killed too late to test a resume inside layer 1"
    # kill during a write: the newest checkpoint is half written (a non-atomic writer's leftover)
    newest = next(cache.glob(f"dbn-*/layer01_epoch{layer1[-1]:04d}.pt"))
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    kept = {n: v for n, v in _checkpoints(cache).items() if n != newest.name}

    trained = _run_worker(cache, out)
    resume_from = layer1[-2]  # the truncated checkpoint is detected and recomputed, never loaded
    assert trained == [(1, e) for e in range(resume_from + 1, 7)] + [(2, e) for e in range(1, 7)]
    after = _checkpoints(cache)
    for name, (mtime, data) in kept.items():  # completed work is neither redone nor rewritten
        assert after[name] == (mtime, data), name
    key = json.loads((newest.parent / "meta.json").read_text())["key"]
    MDC._load_checkpoint(newest, key, 1, layer1[-1])  # recomputed: whole and verified again
    assert out.read_bytes() == expected  # the same bytes as the uninterrupted run
    leftovers = [p.name for p in cache.rglob("*") if ".tmp" in p.name]
    assert all(n.startswith(".") for n in leftovers)  # at most hidden temp files of the killed write


# --------------------------------------------------------------------------- cache keys


def tiny(**kw):
    base = dict(hidden_sizes=(8, 4), epochs=2, monitor_rows=50, device="cpu")
    base.update(kw)
    return MD.DBNConfig(**base)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return (rng.random((120, 16)) < 0.3).astype(np.float32)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_cache_key_covers_code_device_torch_and_data(data, monkeypatch):
    cfg = tiny()
    key = MD.cache_key(cfg, MD.array_checksum(data))
    assert key == MD.cache_key(tiny(), MD.array_checksum(data.copy()))  # same inputs, same key
    assert key == MD.cache_key(tiny(device="cpu"), MD.array_checksum(data), torch.device("cpu"))
    changed = data.copy()
    changed[5, 3] = 1 - changed[5, 3]
    assert MD.array_checksum(changed) != MD.array_checksum(data)
    assert MD.cache_key(cfg, MD.array_checksum(changed)) != key  # one pixel of the data
    assert MD.cache_key(cfg, MD.array_checksum(data.astype(np.float64))) != key  # same values, other dtype
    assert MD.cache_key(cfg, MD.array_checksum(data), "cuda") != key  # device type
    assert MD.cache_key(tiny(weight_decay=2e-4), MD.array_checksum(data)) != key
    assert MD.cache_key(tiny(checkpoint_epochs=(0, 2)), MD.array_checksum(data)) != key
    monkeypatch.setattr(MD.cache, "compute_sha256", lambda: "0" * 64)  # the training code edited
    assert MD.cache_key(cfg, MD.array_checksum(data)) != key
    monkeypatch.undo()
    monkeypatch.setattr(torch, "__version__", "0.0.1")
    assert MD.cache_key(cfg, MD.array_checksum(data)) != key


def _count_epochs(monkeypatch) -> list:
    calls = []
    orig = MD.RBM.fit_epoch

    def counting(self, x, epoch, config, state):
        calls.append((self.n_hidden, epoch))
        return orig(self, x, epoch, config, state)

    monkeypatch.setattr(MD.RBM, "fit_epoch", counting)
    return calls


def test_stale_cache_from_older_code_is_never_loaded(data, tmp_path, monkeypatch):
    cfg = tiny()
    old = MD.train_dbn(cfg, data, cache_dir=tmp_path, progress=False)
    monkeypatch.setattr(MD.cache, "compute_sha256", lambda: "f" * 64)  # the code changed since
    new_key = MD.cache_key(cfg, MD.array_checksum(data))
    new_folder = tmp_path / f"dbn-{new_key[:24]}"
    shutil.copytree(old.folder, new_folder)  # the old entry sits where the new one belongs
    calls = _count_epochs(monkeypatch)
    with pytest.warns(RuntimeWarning, match="stored key/layer/epoch do not match"):
        new = MD.train_dbn(cfg, data, cache_dir=tmp_path, progress=False)
    assert new.folder == new_folder and new.key == new_key
    assert calls == [(8, 0), (8, 1), (4, 0), (4, 1)]  # everything retrained, nothing loaded
    for p in new_folder.glob("layer*.pt"):
        MDC._load_checkpoint(p, new_key, int(p.name[5:7]), int(p.stem[-4:]))  # rewritten under the new key
    with pytest.raises(MD.CheckpointError, match="do not match"):  # and the old key no longer matches
        MDC._load_checkpoint(new_folder / "layer00_epoch0002.pt", old.key, 0, 2)


def test_foreign_checkpoint_is_rejected_and_others_untouched(data, tmp_path, monkeypatch):
    a = MD.train_dbn(tiny(), data, cache_dir=tmp_path, progress=False)
    b = MD.train_dbn(tiny(seed=1), data, cache_dir=tmp_path, progress=False)
    a_files = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in a.folder.iterdir()}
    target = MDC._ckpt_path(b.folder, 1, 2)
    shutil.copyfile(MDC._ckpt_path(a.folder, 1, 2), target)  # a valid file, but another network's
    with pytest.raises(MD.CheckpointError, match="do not match"):
        MD.load_dbn(tiny(seed=1), b.data_id, cache_dir=tmp_path)
    calls = _count_epochs(monkeypatch)
    with pytest.warns(RuntimeWarning, match="invalid checkpoint"):
        again = MD.train_dbn(tiny(seed=1), data, cache_dir=tmp_path, progress=False)
    assert calls == [(4, 1)]  # only the replaced epoch is recomputed
    assert all(torch.equal(x.W, y.W) for x, y in zip(b.rbms, again.rbms))
    assert not torch.equal(again.rbms[1].W, a.rbms[1].W)
    # retraining b's entry changed nothing in a's
    assert {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in a.folder.iterdir()} == a_files
