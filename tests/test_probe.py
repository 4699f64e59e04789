"""rr_utils.probe: layer_report on any PyTorch model, checked against the one-shot path."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from rr_utils import entropy as E
from rr_utils import probe as P

COLUMNS = ["layer", "module", "width", "rule", "M", "n_states", "H_s", "H_K", "noise", "H_s_norm", "H_K_norm",
           "noise_norm", "mu", "mu_err", "mu_fitted", "mu_reason", "bound_H_K", "gap", "gap_norm"]


def small_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 8), nn.Sigmoid(), nn.Linear(8, 6), nn.ReLU(),
                         nn.Linear(6, 3))


@pytest.fixture
def x():
    return torch.rand(700, 12, generator=torch.Generator().manual_seed(1)) * 2 - 1


def one_shot(net, x):
    """The full activation matrices by hand, binarised by each layer's rule, counted by state_counts."""
    with torch.no_grad():
        h1 = net[1](net[0](x))
        h2 = net[3](net[2](h1))
        h3 = net[5](net[4](h2))
    return {"1": E.state_counts(h1 > 0), "3": E.state_counts(h2 > 0.5), "5": E.state_counts(h3 > 0)}


def _same(a, b):
    return sorted(np.asarray(a).tolist()) == sorted(np.asarray(b).tolist())


def _check_agrees(net, x, device):
    ref = one_shot(net, x)
    df = P.layer_report(net, x, batch_size=128, device=device)
    assert list(df.columns) == COLUMNS
    assert df["layer"].tolist() == ["1", "3", "5"]
    assert df["rule"].tolist() == ["sign (x > 0)", "threshold (x > 0.5)", "positive (x > 0)"]
    assert df.attrs["binarize"] == dict(zip(df["layer"], df["rule"]))
    assert df["width"].tolist() == [16, 8, 6] and (df["M"] == len(x)).all()
    counts = P.layer_counts(net, x, batch_size=128, device=device)
    for name, c in ref.items():
        assert _same(counts[name], c), name
        row = df[df["layer"] == name].iloc[0]
        assert row["n_states"] == len(c)
        assert row["H_s"] == pytest.approx(E.resolution(c)) and row["H_K"] == pytest.approx(E.relevance(c))
        assert row["gap"] == pytest.approx(row["bound_H_K"] - row["H_K"]) and row["gap"] > -1e-6
    return df


def test_agrees_with_state_counts_on_the_full_matrix_cpu(x):
    df = _check_agrees(small_net(), x, "cpu")
    assert df.attrs["device"] == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (runs where a GPU is lent)")
def test_agrees_with_state_counts_on_cuda(x):
    net = small_net()
    df = _check_agrees(net, x, "cuda")
    assert df.attrs["device"].startswith("cuda")
    assert next(net.parameters()).device.type == "cpu"  # moved back
    df_auto = P.layer_report(net, x)  # "auto" picks CUDA
    assert df_auto.attrs["device"].startswith("cuda")
    pd.testing.assert_frame_equal(df, df_auto, check_exact=False)


def test_data_forms_give_the_same_report(x):
    net = small_net()
    ref = P.layer_report(net, x, batch_size=100)
    loader_xy = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(len(x))), batch_size=64)
    loader_x = [x[i:i + 50] for i in range(0, len(x), 50)]
    for data in (x.numpy(), x.double().numpy(), loader_xy, loader_x):
        pd.testing.assert_frame_equal(P.layer_report(net, data, batch_size=100), ref)


def test_hooks_never_change_outputs_and_are_removed(x):
    """A recorder after the probed layers sees exactly what an unprobed forward pass gives."""

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.seen = []

        def forward(self, z):
            self.seen.append(z.clone())
            return z

    net = small_net()
    rec = Recorder()
    model = nn.Sequential(net, rec).train()
    with torch.no_grad():
        ref = model.eval()(x)
    model.train()
    rec.seen.clear()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    P.layer_report(model, x, layers=["0.1", "0.3", "0.5", "0.6"], binarize={"0.1": "sign", "0.3": "threshold",
                                                                         "0.5": "positive", "0.6": "sign"},
                   batch_size=len(x), device="cpu")  # bitwise against the CPU forward pass above
    assert len(rec.seen) == 1 and torch.equal(rec.seen[0], ref)
    assert all(not m._forward_hooks for m in model.modules())
    assert all(m.training for m in model.modules())  # training flags restored
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_hooks_removed_after_an_error(x):
    net = small_net()
    with pytest.raises(ValueError, match="other than 0/1"):
        P.layer_report(net, x, layers=["1"], binarize={"1": lambda o: o})  # callable returning non-binary
    with pytest.raises(ValueError, match="outside"):
        P.layer_report(net, x, layers=["0"], binarize="threshold")  # pre-activations are not probabilities
    assert all(not m._forward_hooks for m in net.modules())


def test_pre_activation_sign_equals_each_activation_rule(x):
    """x > 0 on a Linear's output gives the states of the activation after it, for tanh, sigmoid and ReLU."""
    net = small_net()
    pre = P.layer_counts(net, x, layers=["0", "2", "4"], binarize="sign")
    post = P.layer_counts(net, x, layers=["1", "3", "5"])
    for a, b in zip(pre.values(), post.values()):
        assert _same(a, b)


def test_callable_and_threshold(x):
    net = small_net()
    thr = P.layer_report(net, x, layers=["3"], threshold=0.7)
    f = P.layer_report(net, x, layers=["3"], binarize=lambda o: o > 0.7)
    assert thr["n_states"].iloc[0] == f["n_states"].iloc[0] and thr["rule"].iloc[0] == "threshold (x > 0.7)"
    assert f["rule"].iloc[0].startswith("callable")


def test_mu_has_a_fit_flag_and_a_reason():
    torch.manual_seed(0)
    wide = nn.Sequential(nn.Linear(20, 64), nn.Tanh(), nn.Linear(64, 3), nn.Tanh())
    df = P.layer_report(wide, torch.randn(3000, 20))
    first, last = df.iloc[0], df.iloc[1]
    assert first["H_s_norm"] > 0.99 and not first["mu_fitted"] and np.isnan(first["mu"]) and first["mu_reason"]
    assert last["n_states"] <= 8 and not last["mu_fitted"] and "too few states" in last["mu_reason"]


def test_default_layers():
    net = small_net()
    assert P.default_layers(net) == ["1", "3", "5"]
    assert P.default_layers(nn.Sequential(nn.Linear(3, 2))) == []


# --------------------------------------------------------------------------- bad input: one table


class Twice(nn.Module):  # one activation module used by two layers
    def __init__(self):
        super().__init__()
        self.a, self.b, self.act = nn.Linear(4, 5), nn.Linear(5, 3), nn.Tanh()

    def forward(self, z):
        return self.act(self.b(self.act(self.a(z))))


class Branch(nn.Module):  # a module that never runs
    def __init__(self):
        super().__init__()
        self.used, self.unused = nn.Sequential(nn.Linear(4, 3), nn.Tanh()), nn.Tanh()

    def forward(self, z):
        return self.used(z)


class NaNAct(nn.Module):
    def forward(self, z):
        return torch.where(z > 0, torch.full_like(z, float("nan")), z)


def _net4():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3), nn.Sigmoid())


X4 = torch.rand(40, 4)
LSTM = nn.LSTM(4, 3, batch_first=True)

BAD = [
    # (id, call, message regex)
    ("layer that does not exist", lambda: P.layer_report(_net4(), X4, layers=["fc9"]), r"no module named 'fc9'"),
    ("empty loader", lambda: P.layer_report(_net4(), []), r"yielded no batches"),
    ("empty array", lambda: P.layer_report(_net4(), np.zeros((0, 4), np.float32)), r"data: empty"),
    ("NaN activations", lambda: P.layer_report(nn.Sequential(nn.Linear(4, 3), NaNAct(), nn.Tanh()), X4,
                                               layers=["1"], binarize="sign"), r"layer '1' \(NaNAct\).*NaN"),
    ("NaN input reaches a tanh", lambda: P.layer_report(_net4(), torch.full((3, 4), float("nan"))),
     r"layer '1' \(Tanh\): outputs contain NaN"),
    ("threshold on tanh", lambda: P.layer_report(_net4(), X4, layers=["1"], binarize="threshold"),
     r"layer '1' \(Tanh\): binarize='threshold' does not fit.*use 'sign'"),
    ("sign on sigmoid", lambda: P.layer_report(_net4(), X4, layers=["3"], binarize="sign"),
     r"layer '3' \(Sigmoid\): binarize='sign' does not fit.*use 'threshold'"),
    ("threshold on ReLU", lambda: P.layer_report(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), X4, binarize="threshold"),
     r"layer '1' \(ReLU\).*use 'positive'"),
    ("auto on a Linear", lambda: P.layer_report(_net4(), X4, layers=["0"]), r"layer '0' \(Linear\): 'auto' has no rule"),
    ("no activation to probe", lambda: P.layer_report(nn.Sequential(nn.Linear(4, 2)), X4), r"no activation module"),
    ("unknown rule", lambda: P.layer_report(_net4(), X4, binarize="median"), r"binarize: expected 'auto'"),
    ("dict without the layer", lambda: P.layer_report(_net4(), X4, binarize={"1": "sign"}), r"no rule for layer '3'"),
    ("callable not binary", lambda: P.layer_report(_net4(), X4, layers=["1"], binarize=lambda o: o * 2),
     r"layer '1' \(Tanh\): the binarize callable returned values other than 0/1"),
    ("callable wrong shape", lambda: P.layer_report(_net4(), X4, layers=["1"], binarize=lambda o: o[:, 0] > 0),
     r"layer '1'.*returned shape"),
    ("shared module", lambda: P.layer_report(Twice(), X4), r"layer 'act' \(Tanh\): ran 2 times"),
    ("module that never runs", lambda: P.layer_report(Branch(), X4), r"layer 'unused' \(Tanh\): did not run"),
    ("tuple output", lambda: P.layer_report(nn.Sequential(LSTM), X4[:, None, :], layers=["0"], binarize="sign"),
     r"layer '0' \(LSTM\): output is a tuple"),
    ("threshold out of range", lambda: P.layer_report(_net4(), X4, threshold=1.0), r"threshold: expected a number"),
    ("batch_size zero", lambda: P.layer_report(_net4(), X4, batch_size=0), r"batch_size: must be >= 1"),
    ("not a model", lambda: P.layer_report(lambda z: z, X4), r"model: expected a torch.nn.Module"),
    ("data a string", lambda: P.layer_report(_net4(), "images.npy"), r"data: expected a tensor"),
    ("loader of strings", lambda: P.layer_report(_net4(), ["a", "b"]), r"data: batch 0 is a str"),
    ("repeated layer", lambda: P.layer_report(_net4(), X4, layers=["1", "1"]), r"names repeated"),
]


@pytest.mark.parametrize("call, message", [r[1:] for r in BAD], ids=[r[0] for r in BAD])
def test_bad_input_gives_a_clear_error(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert re.search(message, str(e.value)), str(e.value)
