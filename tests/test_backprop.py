"""rr_utils.backprop and rr_utils.beyond: networks trained by backpropagation (notebook 09), at tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rr_utils import backprop as BP
from rr_utils import beyond as Y
from rr_utils import entropy as E
from rr_utils.claims import layers as CL

W = (16, 12, 8, 4)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.random((240, 16), dtype=np.float32)
    y = (x[:, :8].sum(1) > x[:, 8:].sum(1)).astype(np.int64)  # learnable
    return x[:200], y[:200], x[200:], y[200:]


def test_architectures_and_layer_names():
    m = BP.mlp()
    assert [m.get_submodule(n).out_features for n in (f"fc{i}" for i in range(1, 10))] == list(BP.DBN_WIDTHS[1:])
    assert BP.hidden_layers(m) == [f"act{i}" for i in range(1, 10)] and m.out.out_features == 10
    ae = BP.autoencoder()
    assert BP.hidden_layers(ae) == [f"encoder.act{i}" for i in range(1, 10)]
    assert ae.decoder[-1].out_features == 784 and isinstance(ae.decoder[-1], torch.nn.Linear)  # logits out
    assert len(BP.mlp(widths=(784,))) == 1  # softmax regression
    a, b = BP.mlp(W, seed=3), BP.mlp(W, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    state = torch.random.get_rng_state()
    BP.mlp(W, seed=4)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left alone


def learned(accuracy: float, untrained: float, y_test, margin: float = 0.1) -> bool:
    """A test accuracy that beats both the majority class (0.575 here) and the untrained network by ``margin``."""
    majority = max(np.mean(y_test), 1 - np.mean(y_test))
    return accuracy >= max(majority, untrained) + margin


def test_training_is_deterministic_and_keeps_checkpoints(data):
    x, y, xt, yt = data
    runs = [BP.train(BP.mlp(W, n_classes=2, seed=1), x, y, x_test=xt, y_test=yt, epochs=3, checkpoints=(0, 1, 3),
                     batch_size=20, lr=1e-2, seed=2) for _ in range(2)]
    a, b = runs
    assert sorted(a.checkpoints) == [0, 1, 3] and [h["epoch"] for h in a.history] == [0, 1, 2, 3]
    for e in a.checkpoints:
        assert all(torch.equal(a.checkpoints[e][k], b.checkpoints[e][k]) for k in a.checkpoints[e])
    assert a.history[1:] == b.history[1:]
    assert not torch.equal(a.checkpoints[0]["fc1.weight"], a.checkpoints[3]["fc1.weight"])
    assert learned(a.score(3), a.score(0), yt) and a.at(0).training is False
    # the wrong input: the untrained network (0.55; `score > 0.5` passed it) fails against the majority class alone
    assert a.score(0) > 0.5 and not learned(a.score(0), 0.0, yt)
    assert torch.equal(a.at(3)(torch.as_tensor(xt)), a.model(torch.as_tensor(xt)))


def test_autoencoder_learns_something(data):
    x, _, xt, _ = data
    run = BP.train(BP.autoencoder(W, seed=0), x, x_test=xt, epochs=5, checkpoints=(5,), batch_size=20, lr=1e-2)
    assert run.task == "autoencoder" and run.history[-1]["test"] < run.history[0]["test"]


def test_shift_moves_pixels():
    x = torch.zeros(3, 784)
    x[:, 14 * 28 + 14] = 1
    out = BP.random_shift(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.all(out.sum(1) == 1)  # each image moved within the frame


BAD = [
    (lambda d: BP.mlp(activation="softmax"), r"activation: expected"),
    (lambda d: BP.mlp(init="he"), r"init: expected"),
    (lambda d: BP.mlp(widths=()), r"widths: need"),
    (lambda d: BP.autoencoder(widths=(5,)), r"widths: need"),
    (lambda d: BP.train(BP.mlp(W, 2), d[0], x_test=d[2]), r"y: give labels for a classifier"),
    (lambda d: BP.train(BP.autoencoder(W), d[0], d[1], x_test=d[2]), r"y: give labels for a classifier and none"),
    (lambda d: BP.train(BP.mlp(W, 2), d[0], d[1][:5], x_test=d[2], y_test=d[3]), r"5 labels for 200 inputs"),
    (lambda d: BP.train(BP.mlp(W, 2), d[0], d[1], x_test=d[2], y_test=d[3], epochs=2, checkpoints=(4,)),
     r"checkpoints: epoch 4 is after"),
    (lambda d: BP.train(BP.mlp(W, 2), d[0], d[1], x_test=d[2], y_test=d[3], shift=1), r"shift: only for"),
    (lambda d: BP.train(BP.mlp(W, 2), np.full_like(d[0], np.nan), d[1], x_test=d[2], y_test=d[3]), r"x: contains NaN"),
    (lambda d: BP.train(BP.mlp(W, 2), d[0], d[1], x_test=d[2], y_test=d[3], lr=0), r"lr: must be > 0"),
    (lambda d: BP.train("net", d[0], d[1], x_test=d[2], y_test=d[3]), r"model: expected a torch.nn.Module"),
    (lambda d: Y.train_network("cnn", {}, epochs=1, checkpoints=()), r"kind: expected"),
]


@pytest.mark.parametrize("call, message", BAD)
def test_bad_input(data, call, message):
    with pytest.raises(ValueError, match=message):
        call(data)


def decisions_follow_intervals(record) -> bool:
    """Each comparison's decision is the one its 95% interval gives, and the claim's decision the one its comparisons
    give (rr_utils.claims.decision, rules.decide_vs_null): "does not hold" if any does not, "holds" only if all do."""
    rec = record["vs_null"]
    comps = rec["comparisons"].values()
    for c in comps:
        if c["decision"] != ("holds" if c["effect_lo"] > 0 else "does not hold" if c["effect_hi"] < 0 else "undecided"):
            return False
    if comps:
        ds = [c["decision"] for c in comps]
        if "does not hold" in ds and rec["decision"] != "does not hold":
            return False
        if rec["decision"] == "holds" and not all(d == "holds" for d in ds):
            return False
    return record["holds_vs_null"] == (rec["decision"] == "holds")


def test_trajectory_nulls_and_claims(data):
    x, y, xt, yt = data
    run = BP.train(BP.mlp(W, n_classes=2, seed=0), x, y, x_test=xt, y_test=yt, epochs=2, checkpoints=(0, 1, 2),
                   batch_size=20, lr=1e-2)
    traj, counts = Y.trajectory(run, x)
    assert traj["epoch"].unique().tolist() == [0, 1, 2] and traj["units"].tolist() == [12, 8, 4] * 3
    assert (traj["M"] == 200).all() and sorted(counts) == [0, 2] and len(counts[2]) == 3
    nulls = Y.null_table(counts[2], [12, 8, 4])
    assert len(nulls) == 3 and {"gap_norm", "mu", "matched"} <= set(nulls.columns)
    untrained = Y.untrained_factory("classifier", x, widths=W, n_classes=2)
    first = untrained(0)
    assert [a.shape for a in first] == [(200, 12), (200, 8), (200, 4)] and (np.abs(first[0]) <= 1).all()  # tanh
    assert not np.array_equal(first[0], untrained(1)[0]) and np.array_equal(first[0], untrained(0)[0])
    v = Y.claims(counts[2], counts[0], [12, 8, 4], untrained=untrained, inputs=x, n_untrained=3, n_projections=3,
                 n_draws=1, n_gof=5)
    own = CL.layer_claims(counts[0], [12, 8, 4], seed=0, n_draws=1, n_boot=0, n_gof=10)  # epoch 0, as stated
    for cid in ("C1", "C2", "C3"):
        rec = v[cid]["vs_null"]
        assert decisions_follow_intervals(v[cid])
        assert v[cid]["untrained"]["holds_as_stated"] == own[cid]["holds_as_stated"]
        assert v[cid]["untrained"]["as_stated"] == own[cid]["as_stated"]
        if rec["comparisons"]:
            assert set(rec["comparisons"]) == {"untrained", "projections"}
    # the wrong input: a verdict that says "holds" whatever its intervals (the old type-only check passed it)
    c1 = v["C1"]
    comps = {k: dict(c) for k, c in c1["vs_null"]["comparisons"].items()}
    comps["untrained"] |= {"decision": "holds", "effect_lo": -1.0, "effect_hi": 1.0}
    forged = {"holds_vs_null": c1["holds_vs_null"], "vs_null": {"decision": c1["vs_null"]["decision"], "comparisons": comps}}
    assert not decisions_follow_intervals(forged)
    # a negative control: one untrained draw read by sign, fed in as the trained network, cannot beat the
    # untrained reference (exchangeable: "holds" with probability about 2.5%; these seeds give no such draw)
    control = [E.state_counts(a > 0) for a in untrained(7)]
    nv = Y.claims(control, control, [12, 8, 4], untrained=untrained, inputs=x, n_untrained=3, n_projections=3,
                  n_draws=1, n_gof=5)
    for cid in ("C1", "C2"):
        assert decisions_follow_intervals(nv[cid])
        assert nv[cid]["vs_null"]["comparisons"]["untrained"]["decision"] != "holds" and not nv[cid]["holds_vs_null"]
    row = Y.verdict_row("toy", v)
    assert row["network"] == "toy" and row["relevance_peak_units"] in (12, 8, 4)
    assert row["C1_vs_references"] == v["C1"]["vs_null"]["decision"]
    with pytest.raises(ValueError, match="widths"):
        Y.claims(counts[2], counts[0], [12, 8])


def test_gate_direction(data):
    x, y, xt, yt = data
    run = BP.train(BP.mlp(W, n_classes=2), x, y, x_test=xt, y_test=yt, epochs=1, checkpoints=())
    s = run.history[-1]["test"]
    assert Y.gate(run, s, "why")["passed"] and not Y.gate(run, s + 0.01, "why")["passed"]
    ae = BP.train(BP.autoencoder(W), x, x_test=xt, epochs=1, checkpoints=())
    m = ae.history[-1]["test"]
    assert Y.gate(ae, m, "why")["passed"] and not Y.gate(ae, m * 0.9, "why")["passed"]


def test_missing_fashion_mnist_says_how_to_install(tmp_path, monkeypatch):
    import rr_utils.data as D

    monkeypatch.setitem(D.SYSTEM_DIRS, "fashion-mnist", (tmp_path / "nowhere",))
    monkeypatch.setenv("RR_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist.*make data"):
        Y.load_splits("fashion-mnist")
