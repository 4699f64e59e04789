"""Exact mode (rr_utils.numerics): it refuses an unpinned environment, keys its networks apart, leaves the
default keys alone, and pins the bits where two code paths of this machine differ."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rr_utils import numerics as N

ROOT = Path(__file__).resolve().parents[1]


def _pin(monkeypatch):
    for k, v in N.EXACT_ENV.items():
        monkeypatch.setenv(k, v)


def test_outside_exact_mode_nothing_is_checked_or_keyed(monkeypatch):
    monkeypatch.delenv("RR_EXACT", raising=False)
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    assert not N.exact_mode()
    N.check_exact()  # no error: only exact mode asks for its environment
    assert N.key_component() == {}


def test_exact_mode_without_its_environment_names_each_variable(monkeypatch):
    _pin(monkeypatch)
    monkeypatch.setenv("MKL_CBWR", "AVX2")
    monkeypatch.delenv("ATEN_CPU_CAPABILITY")
    with pytest.raises(RuntimeError, match=r"MKL_CBWR='AVX2' \(needs 'COMPATIBLE'\).*ATEN_CPU_CAPABILITY=None"):
        N.check_exact()
    with pytest.raises(RuntimeError, match="make reproduce EXACT=1"):
        N.key_component()


def test_exact_mode_refuses_more_than_one_torch_thread(monkeypatch):
    import torch

    _pin(monkeypatch)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(RuntimeError, match=r"torch threads 2 \(needs 1\)"):
            N.check_exact()
        torch.set_num_threads(1)
        N.check_exact()
    finally:
        torch.set_num_threads(before)


def test_default_cache_keys_are_unchanged_and_exact_keys_differ(monkeypatch):
    """The key of notebook 03's committed network, recomputed here, is the committed one; exact mode's is not."""
    import torch

    from rr_utils.models.cache import array_checksum, cache_key
    from rr_utils.networks import NetworkSpec

    committed = json.loads((ROOT / "results" / "03_train_dbn.json").read_text())["cache_key"]
    spec = NetworkSpec.from_dict({"dataset": "mnist", "seed": 0})
    config = spec.config(False)
    data_id = array_checksum(spec.splits(False)["train"])
    monkeypatch.delenv("RR_EXACT", raising=False)
    assert cache_key(config, data_id) == committed
    _pin(monkeypatch)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert cache_key(config, data_id) != committed
    finally:
        torch.set_num_threads(before)


_TRAIN = r"""
import hashlib, torch
from rr_utils.models import RBM, PCDState, RBMConfig
from rr_utils.models.rbm import _deterministic, _generator
from rr_utils.data import load_mnist
from rr_utils.numerics import check_exact
torch.set_num_threads(1)
check_exact()
x = torch.from_numpy(load_mnist("train", verbose=False)[0][:300].astype("float32"))
g = _generator(torch.device("cpu"), 0)
cfg = RBMConfig()
rbm = RBM.initialise(784, 64, g, init=cfg.init, gain=cfg.init_gain, device="cpu")
state = PCDState.initialise(rbm, cfg, g)
with _deterministic(torch.device("cpu")):
    rbm.fit_epoch(x, 0, cfg, state)
print(hashlib.sha256(rbm.W.numpy().tobytes()).hexdigest())
"""


def _bits(env_add: dict) -> str:
    env = N.environment() | {"PYTHONPATH": str(ROOT)} | env_add
    out = subprocess.run([sys.executable, "-c", _TRAIN], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.split()[-1]


def test_two_code_paths_train_different_bits_and_exact_mode_runs_a_third():
    """This machine's own path against the one a CPU without AVX2 takes (MKL's SSE4.2 branch, torch's default
    kernels): one epoch of the recipe differs in its weights' bits, so this test can see a change of path.
    Exact mode sets every variable that chose those paths (so where it starts from cannot matter) and trains on
    a path of its own, neither of them. That two *CPUs* agree in exact mode is what MKL's COMPATIBLE branch
    promises; this machine alone cannot show it (the docs say so)."""
    other = {"MKL_CBWR": "SSE4_2", "ATEN_CPU_CAPABILITY": "default"}
    assert set(other) <= set(N.EXACT_ENV)  # both overridden: exact mode from either setting is one environment
    default, second, exact = _bits({}), _bits(other), _bits(N.EXACT_ENV)
    assert default != second
    assert exact not in (default, second)
