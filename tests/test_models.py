"""Tests of rr_utils.models (tiny RBMs / DBNs; CPU, a few seconds)."""

from __future__ import annotations

import itertools
import math
import os
import warnings

import numpy as np
import pytest
import torch

from rr_utils import models as M
from rr_utils.models import checkpoints as MC
from rr_utils.models import DBN, RBM, CheckpointError, DBNConfig, RBMConfig, cache_key, load_dbn, train_dbn

N_VIS = 64


def structured_data(n=300, seed=0, noise=0.05):
    """A few 8x8 binary prototype patterns with bit-flip noise, as float32 in {0,1}."""
    rng = np.random.default_rng(seed)
    protos = rng.random((4, N_VIS)) < 0.4
    labels = np.arange(n) % 4
    x = protos[labels] ^ (rng.random((n, N_VIS)) < noise)
    return x.astype(np.float32)


def random_data(n=300, seed=1):
    return np.random.default_rng(seed).random((n, N_VIS), dtype=np.float32)


# RR_TEST_DEVICE=cuda runs these tests on a GPU (where one is lent); the CPU otherwise.
TEST_DEVICE = os.environ.get("RR_TEST_DEVICE", "cpu")


def tiny(**kw):
    base = dict(hidden_sizes=(16, 8), epochs=3, monitor_rows=100, device=TEST_DEVICE)
    base.update(kw)
    return DBNConfig(**base)


def weights(dbn):
    return [(r.W.clone(), r.vbias.clone(), r.hbias.clone()) for r in dbn.rbms]


def same_weights(a, b):
    return all(torch.equal(x, y) for pa, pb in zip(a, b) for x, y in zip(pa, pb))


@pytest.fixture(scope="module")
def data():
    return structured_data()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny matrices: one thread is faster and immune to OpenMP stalls on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------- configs and schedules


def test_config_defaults_and_hash():
    c = DBNConfig()
    assert c.hidden_sizes == (500, 250, 120, 60, 30, 25, 20, 15, 10, 5, 3, 2)
    assert (c.epochs, c.batch_size, c.lr, c.n_particles, c.gibbs_steps) == (200, 100, 0.1, 25, 4)
    assert c.weight_decay == 1e-4 and c.device == "auto"
    assert c.checkpoint_schedule() == (0, 1, 2, 4, 8, 16, 32, 64, 128, 200)
    assert hash(c) == hash(DBNConfig()) and c == DBNConfig(hidden_sizes=list(c.hidden_sizes))
    assert c.key() == DBNConfig().key() != DBNConfig(seed=1).key()
    assert c.key() == DBNConfig(device="cpu").key()  # device is not part of the config key
    assert tiny(epochs=5).checkpoint_schedule() == (0, 1, 2, 4, 5)
    assert tiny(epochs=3, checkpoint_epochs=(1, 7)).checkpoint_schedule() == (1, 3)
    with pytest.raises(ValueError):
        DBNConfig(hidden_sizes=())
    with pytest.raises(ValueError):
        DBNConfig(epochs=0)


def test_learning_rate_schedule():
    c = RBMConfig(epochs=200, lr=0.1)
    assert c.learning_rate(0) == c.learning_rate(179) == 0.1
    assert c.learning_rate(180) == pytest.approx(0.1)  # first decayed epoch: exactly lr
    assert c.learning_rate(181) == pytest.approx(0.05)
    assert c.learning_rate(199) == pytest.approx(0.1 / 20)
    for n in range(1, 60):
        c = RBMConfig(epochs=n, lr=0.1)
        rates = [c.learning_rate(e) for e in range(n)]
        assert max(rates) == pytest.approx(0.1) and all(r <= 0.1 + 1e-12 for r in rates)
        assert all(a >= b for a, b in zip(rates, rates[1:]))  # non-increasing


def test_momentum_schedule():
    c = RBMConfig()
    assert [c.momentum(e) for e in range(7)] == [0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0]
    assert c.momentum(150) == 0.0


def test_cache_key_changes_with_config_and_data_id():
    c = tiny()
    k = cache_key(c, "abc")
    assert k == cache_key(tiny(), "abc")
    assert k != cache_key(c, "abd")
    assert k != cache_key(tiny(seed=1), "abc")
    assert k != cache_key(tiny(hidden_sizes=(16, 9)), "abc")
    assert k != cache_key(tiny(lr=0.05), "abc")
    assert M.array_checksum(np.zeros((2, 3), np.float32)) != M.array_checksum(np.zeros((3, 2), np.float32))


# ----------------------------------------------------------------- RBM


def tiny_rbm(n_vis=5, n_hid=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    rbm = RBM.initialise(n_vis, n_hid, g, gain=1.0)
    rbm.vbias = torch.randn(n_vis, generator=g)
    rbm.hbias = torch.randn(n_hid, generator=g)
    return rbm


def test_rbm_shapes_and_init():
    g = torch.Generator().manual_seed(0)
    rbm = RBM.initialise(N_VIS, 16, g)
    assert rbm.W.shape == (N_VIS, 16) and rbm.W.dtype == torch.float32
    assert torch.all(rbm.vbias == 0) and torch.all(rbm.hbias == 0)
    assert float(rbm.W.std()) == pytest.approx(4 * math.sqrt(6 / (N_VIS + 16)), rel=0.15)
    x = random_data(10)
    assert rbm.hidden_probs(x).shape == (10, 16)
    p, s = rbm.sample_h(x, g)
    assert p.shape == s.shape == (10, 16) and set(s.unique().tolist()) <= {0.0, 1.0}
    p, s = rbm.sample_v(s, g)
    assert p.shape == s.shape == (10, N_VIS)
    assert rbm.free_energy(x).shape == (10,)
    assert rbm.pseudo_log_likelihood(x).shape == (10,)
    assert isinstance(rbm.reconstruction_error(x), float)


def test_free_energy_and_exact_pll_match_brute_force():
    rbm = tiny_rbm()
    hs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
    vs = torch.tensor(list(itertools.product([0.0, 1.0], repeat=5)))
    # -E(v,h) = v a + h b + v W h ; F(v) = -log sum_h exp(-E)
    negE = vs @ rbm.vbias[:, None] + (hs @ rbm.hbias)[None] + vs @ rbm.W @ hs.t()
    F = -torch.logsumexp(negE, dim=1)
    assert torch.allclose(rbm.free_energy(vs), F, atol=1e-5)
    # exact PLL = sum_i log p(v_i | v_-i)
    logp = -F - torch.logsumexp(-F, 0)  # log p(v) over all 32 states
    idx = {tuple(v.tolist()): i for i, v in enumerate(vs)}
    brute = []
    for v in vs:
        tot = 0.0
        for i in range(5):
            w = v.clone(); w[i] = 1 - w[i]
            a, b = logp[idx[tuple(v.tolist())]], logp[idx[tuple(w.tolist())]]
            tot += float(a - torch.logaddexp(a, b))
        brute.append(tot)
    assert torch.allclose(rbm.pseudo_log_likelihood(vs, exact=True), torch.tensor(brute), atol=1e-4)
    # the stochastic estimate is unbiased: averaging over many draws approaches the exact value
    many = vs.repeat(4000, 1)
    est = rbm.pseudo_log_likelihood(many, generator=3).reshape(4000, 32).mean(0)
    assert torch.allclose(est, torch.tensor(brute), atol=0.15)
    # deterministic given the generator; binarises the input at 0.5
    a = rbm.pseudo_log_likelihood(vs, generator=torch.Generator().manual_seed(5))
    b = rbm.pseudo_log_likelihood(vs * 0.8 + 0.1, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)


def test_fit_epoch_is_deterministic_and_uses_schedule():
    x = torch.as_tensor(structured_data(200))
    cfg = RBMConfig(epochs=2)
    outs = []
    for _ in range(2):
        g = torch.Generator().manual_seed(0)
        rbm = RBM.initialise(N_VIS, 8, g)
        st = M.PCDState.initialise(rbm, cfg, g)
        assert st.particles.shape == (25, N_VIS)
        rbm.fit_epoch(x, 0, cfg, st)
        outs.append(rbm.W.clone())
    assert torch.equal(*outs)


# ----------------------------------------------------------------- DBN training and cache


def test_train_shapes_history_and_checkpoint_files(data, tmp_path):
    cfg = tiny(epochs=5)
    records = []
    dbn = train_dbn(cfg, data, cache_dir=tmp_path, data_id="d1", progress=False, log=records.append,
                    test_data=data[:50])
    assert isinstance(dbn, DBN) and dbn.sizes == (N_VIS, 16, 8) and dbn.n_layers == 2
    assert [r.W.shape for r in dbn.rbms] == [(N_VIS, 16), (16, 8)]
    folder = dbn.folder
    assert folder.parent == tmp_path and dbn.key == cache_key(cfg, "d1")
    files = sorted(p.name for p in folder.glob("*.pt"))
    assert files == sorted(f"layer{l:02d}_epoch{e:04d}.pt" for l in (0, 1) for e in (0, 1, 2, 4, 5))
    assert (folder / "meta.json").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".") and p.name != ".lock"]  # no temp files (the entry lock stays)
    # history: one record per layer and epoch 0..5, with test metrics
    assert [(r["layer"], r["epoch"]) for r in dbn.history] == [(l, e) for l in (0, 1) for e in range(6)]
    assert records == dbn.history
    assert all(np.isfinite(r["train_recon"]) and np.isfinite(r["test_pll"]) for r in dbn.history)
    assert dbn.history[1]["lr"] == 0.1 and dbn.history[1]["momentum"] == 0.5
    # lazy checkpoints: final == trained weights; epoch 0 is the untrained init
    assert torch.equal(dbn.checkpoints[1][5].W, dbn.rbms[1].W)
    assert not torch.equal(dbn.checkpoints[0][0].W, dbn.rbms[0].W)
    assert list(dbn.checkpoints[0]) == [0, 1, 2, 4, 5]
    assert [tuple(t.shape) for t in dbn.layer_params()[1]] == [(16, 8), (16,), (8,)]
    untrained = dbn.at_epoch(0)
    assert torch.equal(untrained.rbms[1].W, dbn.checkpoints[1][0].W) and torch.all(untrained.rbms[1].hbias == 0)
    with pytest.raises(KeyError):
        dbn.checkpoints[0][3]
    # load_dbn reads the same network without the data
    again = load_dbn(cfg, "d1", cache_dir=tmp_path)
    assert same_weights(weights(again), weights(dbn)) and again.history == dbn.history
    with pytest.raises(CheckpointError):
        load_dbn(cfg, "other", cache_dir=tmp_path)


def test_states_api(data, tmp_path):
    dbn = train_dbn(tiny(epochs=1), data, cache_dir=tmp_path, data_id="d", progress=False)
    p1 = dbn.rbms[0].hidden_probs(data)
    probs = [p1.cpu().numpy(), dbn.rbms[1].hidden_probs(p1).cpu().numpy()]
    states = dbn.binary_states(data)
    assert len(dbn.binary_states(data, upto=1)) == 1
    # batching changes the probabilities at most at rounding level (BLAS blocking): same states here
    assert all(np.array_equal(a, b) for a, b in zip(states, dbn.binary_states(data, batch_size=7)))
    assert [s.shape for s in states] == [(300, 16), (300, 8)]
    assert all(s.dtype == np.bool_ for s in states)
    assert all(np.array_equal(s, p > 0.5) for s, p in zip(states, probs))  # strict threshold
    samp = dbn.sampled_states(data, n_samples=3, generator=torch.Generator().manual_seed(1))
    assert [s.shape for s in samp] == [(3, 300, 16), (3, 300, 8)] and samp[0].dtype == np.bool_
    again = dbn.sampled_states(data, n_samples=3, generator=1)
    assert all(np.array_equal(a, b) for a, b in zip(samp, again))
    # sample frequencies follow the probabilities
    many = dbn.sampled_states(data[:20], n_samples=2000, generator=2, upto=1)[0]
    assert np.abs(many.mean(0) - probs[0][:20]).max() < 0.06
    with pytest.raises(ValueError):
        dbn.binary_states(data[:, :10])


def test_determinism_same_and_different_seed(data, tmp_path):
    a = train_dbn(tiny(), data, cache_dir=tmp_path / "a", data_id="d", progress=False)
    b = train_dbn(tiny(), data, cache_dir=tmp_path / "b", data_id="d", progress=False)
    c = train_dbn(tiny(seed=1), data, cache_dir=tmp_path / "c", data_id="d", progress=False)
    assert same_weights(weights(a), weights(b))
    assert not torch.equal(a.rbms[0].W, c.rbms[0].W)


def test_training_lowers_reconstruction_error(tmp_path):
    x = structured_data(400, noise=0.03)
    cfg = DBNConfig(hidden_sizes=(16,), epochs=10, monitor_rows=None, device=TEST_DEVICE, init="normal")
    dbn = train_dbn(cfg, x, cache_dir=tmp_path, data_id="s", progress=False)
    h = dbn.history
    assert h[-1]["train_recon"] < 0.5 * h[0]["train_recon"]
    assert h[-1]["train_pll"] > h[0]["train_pll"]
    assert dbn.n_layers == 1 and dbn.sizes == (N_VIS, 16)  # a single RBM


def test_cache_hit_loads_without_training(data, tmp_path, monkeypatch):
    cfg = tiny()
    first = train_dbn(cfg, data, cache_dir=tmp_path, data_id="d", progress=False)

    def boom(*a, **k):
        raise AssertionError("trained although cached")

    monkeypatch.setattr(RBM, "fit_epoch", boom)
    second = train_dbn(cfg, data, cache_dir=tmp_path, data_id="d", progress=False)
    assert same_weights(weights(first), weights(second))
    assert second.history == first.history
    # another data_id is another cache entry -> needs training
    with pytest.raises(AssertionError, match="trained although cached"):
        train_dbn(cfg, data, cache_dir=tmp_path, data_id="other", progress=False)


def _trained(calls: list, with_units: bool = True):
    """A ``log`` callback appending each trained epoch's 0-based index (with the layer's units): the
    trainer logs once per epoch it trains (on CUDA most epochs are graph replays, not ``fit_epoch`` calls)."""
    def log(rec):
        if rec["epoch"] > 0:
            calls.append((rec["n_hidden"], rec["epoch"] - 1) if with_units else rec["epoch"] - 1)
    return log


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_corrupted_checkpoint_is_detected_and_recomputed(data, tmp_path, how):
    cfg = tiny(epochs=5)
    first = train_dbn(cfg, data, cache_dir=tmp_path, data_id="d", progress=False)
    target = MC._ckpt_path(first.folder, 0, 5 if how == "truncate" else 2)
    raw = bytearray(target.read_bytes())
    if how == "truncate":
        target.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        raw[-100] ^= 0xFF
        target.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError):
        MC._load_checkpoint(target, first.key, 0, int(target.stem[-4:]))
    calls = []
    with pytest.warns(RuntimeWarning, match="invalid checkpoint"):
        second = train_dbn(cfg, data, cache_dir=tmp_path, data_id="d", progress=False, log=_trained(calls, False))
    assert same_weights(weights(first), weights(second))
    # recomputed from the last valid checkpoint before the bad one
    assert calls == ([4] if how == "truncate" else [1, 2, 3, 4])
    MC._load_checkpoint(target, first.key, 0, int(target.stem[-4:]))  # valid again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train_dbn(cfg, data, cache_dir=tmp_path, data_id="d", progress=False)


def test_lazy_checkpoint_access_reports_corruption(data, tmp_path):
    dbn = train_dbn(tiny(), data, cache_dir=tmp_path, data_id="d", progress=False)
    path = MC._ckpt_path(dbn.folder, 1, 1)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="sha256"):
        dbn.checkpoints[1][1]


@pytest.mark.parametrize("stop_at", [(0, 3), (1, 1), (1, 4)])
def test_resume_after_interruption_is_bitwise_identical(data, tmp_path, stop_at):
    cfg = tiny(epochs=5)
    full = train_dbn(cfg, data, cache_dir=tmp_path / "full", data_id="d", progress=False)

    class Stop(Exception):
        pass

    def log(rec):
        if (rec["layer"], rec["epoch"]) == stop_at:
            raise Stop

    with pytest.raises(Stop):
        train_dbn(cfg, data, cache_dir=tmp_path / "int", data_id="d", progress=False, log=log)
    calls = []
    resumed = train_dbn(cfg, data, cache_dir=tmp_path / "int", data_id="d", progress=False, log=_trained(calls))
    assert same_weights(weights(full), weights(resumed))
    layer, ep = stop_at
    last_ckpt = max(e for e in cfg.checkpoint_schedule() if e <= ep)
    expected = [(16, e) for e in range(last_ckpt if layer == 0 else 5, 5)] if layer == 0 else []
    expected += [(8, e) for e in range(last_ckpt if layer == 1 else 0, 5)]
    assert calls == expected  # resumed from the last checkpoint, not from scratch
    key = lambda h: [(r["layer"], r["epoch"], r["train_recon"], r["train_pll"]) for r in h]
    assert key(full.history) == key(resumed.history)


def test_progress_disabled_when_not_interactive(data, tmp_path, capsys):
    train_dbn(tiny(epochs=1), data, cache_dir=tmp_path, data_id="d", progress=None)
    assert capsys.readouterr().err == ""  # pytest's stderr is not a tty


def test_rejects_bad_data(tmp_path):
    with pytest.raises(ValueError):
        train_dbn(tiny(), np.full((10, 4), 2.0), cache_dir=tmp_path, data_id="x", progress=False)
    with pytest.raises(ValueError):
        train_dbn(tiny(), np.zeros(10), cache_dir=tmp_path, data_id="x", progress=False)


def test_resume_with_other_thread_count_warns(data, tmp_path):
    cfg = tiny(epochs=5)
    before = torch.get_num_threads()

    def log(rec):
        if (rec["layer"], rec["epoch"]) == (0, 3):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_dbn(cfg, data, cache_dir=tmp_path, data_id="d", progress=False, log=log, num_threads=1)
    assert torch.get_num_threads() == before  # restored
    with pytest.warns(RuntimeWarning, match="threads"):
        train_dbn(cfg, data, cache_dir=tmp_path, data_id="d", progress=False, num_threads=2)


def test_meta_kept_for_its_key_replaced_otherwise_and_stale_temps_removed(data, tmp_path):
    import json
    import os
    import time

    cfg = tiny(epochs=1)
    dbn = train_dbn(cfg, data, cache_dir=tmp_path, data_id="d1", progress=False, test_data=data[:50], test_id="t1")
    meta = dbn.folder / "meta.json"
    assert json.loads(meta.read_text())["test_id"] == "t1"
    old = dbn.folder / ".layer00_epoch0001.dead.tmp.pt"  # what a SIGKILL mid-write leaves
    young = dbn.folder / ".layer00_epoch0001.live.tmp.pt"  # maybe another process writing now
    old.write_bytes(b"half")
    young.write_bytes(b"half")
    past = time.time() - 2 * MC.STALE_TEMP_S
    os.utime(old, (past, past))
    with pytest.warns(RuntimeWarning, match="test_id"):  # the cached history was logged on t1: meta keeps t1
        train_dbn(cfg, data, cache_dir=tmp_path, data_id="d1", progress=False, test_data=data[:50], test_id="t2")
    assert json.loads(meta.read_text())["test_id"] == "t1"
    assert not old.exists() and young.exists()
    same = dict(cache_dir=tmp_path, data_id="d1", progress=False, test_data=data[:50], test_id="t1")
    meta.write_text(json.dumps({"key": "someone-else"}))  # foreign or damaged meta is replaced
    train_dbn(cfg, data, **same)
    assert json.loads(meta.read_text())["key"] == dbn.key
    meta.write_text("{half")
    train_dbn(cfg, data, **same)
    assert json.loads(meta.read_text())["key"] == dbn.key


def test_cache_key_ignores_docstrings_and_comments_but_not_code(tmp_path, monkeypatch):
    from rr_utils.models import cache as MK

    def code(text):
        mod = tmp_path / "keymod.py"
        mod.write_text(text)
        monkeypatch.syspath_prepend(str(tmp_path))
        import importlib
        import sys
        sys.modules.pop("keymod", None)
        importlib.invalidate_caches()
        return MK._function_code("keymod:K.f")

    base = code('class K:\n    def f(self, x):\n        """Doc."""\n        return x + 1\n')
    assert code('class K:\n    def f(self, x):\n        """Other doc."""\n        # a comment\n        return x + 1  # why\n') == base
    assert code('class K:\n    def f(self, x):\n        """Doc."""\n        return x + 2\n') != base
    with pytest.raises(LookupError, match="keymod:K.f"):
        code("class K:\n    def g(self):\n        pass\n")
    # every listed function exists in the current source
    assert len(MK.compute_sha256()) == 64 and len(MK.COMPUTE_FUNCTIONS) >= 10
