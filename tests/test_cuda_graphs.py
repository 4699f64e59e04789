"""CUDA graphs of the authors' epoch (rr_utils.models.cuda_graphs).

On the CPU: which epoch function the trainer uses, and the clear refusals.
Where a GPU is lent: a network trained with graphs is bitwise the eager one
(weights, history, final velocities, particles and generator states), across
the momentum steps and the learning-rate decay, and a resumed run too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rr_utils.models import DBNConfig, RBM, PCDState, RBMConfig, train_dbn
from rr_utils.models.checkpoints import final_payloads, payload_tensors
from rr_utils.models.cuda_graphs import GraphedEpochs, epoch_runner, graphs_enabled, uses_graphs
from rr_utils.models.rbm import _generator

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here (runs where a GPU is lent)")


def _data(n=400, nv=36, seed=0):
    return np.random.default_rng(seed).random((n, nv), dtype=np.float32)


def _layer(device="cpu", nv=36, nh=12, **kw):
    cfg = RBMConfig(device=device, **kw)
    g = _generator(torch.device(device), 5)
    rbm = RBM.initialise(nv, nh, g, device=device)
    return rbm, cfg, PCDState.initialise(rbm, cfg, g)


def test_graphs_only_on_cuda_and_switchable(monkeypatch):
    assert not graphs_enabled(torch.device("cpu"))
    monkeypatch.delenv("RR_CUDA_GRAPHS", raising=False)
    has_api = hasattr(torch.cuda.CUDAGraph, "register_generator_state")
    assert graphs_enabled(torch.device("cuda")) == has_api
    assert uses_graphs(RBMConfig(), torch.device("cuda")) == has_api
    assert not uses_graphs(RBMConfig(recipe="classical"), torch.device("cuda"))  # graphs the authors' recipe only
    assert not uses_graphs(RBMConfig(), torch.device("cpu"))
    monkeypatch.setenv("RR_CUDA_GRAPHS", "0")
    assert not graphs_enabled(torch.device("cuda"))


def test_cpu_epochs_are_rbm_fit_epoch():
    x = torch.as_tensor(_data())
    a, cfg, sa = _layer()
    b, _, sb = _layer()
    fit = epoch_runner(a, cfg, sa)
    for epoch in range(2):
        fit(x, epoch)
        b.fit_epoch(x, epoch, cfg, sb)
    assert torch.equal(a.W, b.W) and torch.equal(sa.particles, sb.particles)


def test_graphed_epochs_refuse_cpu_and_classical():
    rbm, cfg, state = _layer()
    with pytest.raises(ValueError, match="CUDA device"):
        GraphedEpochs(rbm, cfg, state)


@CUDA
def test_graphed_epochs_refuse_classical_and_other_data():
    rbm, cfg, state = _layer("cuda", recipe="classical")
    with pytest.raises(ValueError, match="authors' recipe"):
        GraphedEpochs(rbm, cfg, state)
    rbm, cfg, state = _layer("cuda")
    run = GraphedEpochs(rbm, cfg, state)
    x = torch.as_tensor(_data(), device="cuda")
    run.fit_epoch(x, 0)  # eager, then the capture
    with pytest.raises(ValueError, match="same tensor"):
        run.fit_epoch(x.clone(), 1)


@CUDA
def test_graphs_are_bitwise_eager(tmp_path, monkeypatch):
    x = _data(600)
    # 12 epochs: the momentum steps (epochs 0-4) and the learning-rate decay (from epoch 10) are both replayed
    cfg = DBNConfig(hidden_sizes=(20, 7, 3), epochs=12, checkpoint_epochs=(0, 6, 12), monitor_rows=100, device="cuda")
    nets = {}
    for flag in ("1", "0"):
        monkeypatch.setenv("RR_CUDA_GRAPHS", flag)
        nets[flag] = train_dbn(cfg, x, cache_dir=tmp_path / flag, data_id="d", progress=False, test_data=x[:100])
        assert json.loads((nets[flag].folder / "meta.json").read_text())["cuda_graphs"] == (flag == "1")
    g, e = nets["1"], nets["0"]
    strip = [[{k: v for k, v in r.items() if k != "seconds"} for r in n.history] for n in (g, e)]
    assert strip[0] == strip[1]
    for pg, pe in zip(final_payloads(g), final_payloads(e)):
        fg, fe = dict(payload_tensors(pg)), dict(payload_tensors(pe))
        assert fg.keys() == fe.keys()
        assert [k for k in fg if not torch.equal(fg[k], fe[k])] == []  # weights, velocities, particles, RNG state


@CUDA
def test_graphed_resume_is_bitwise_uninterrupted(tmp_path, monkeypatch):
    monkeypatch.setenv("RR_CUDA_GRAPHS", "1")
    x = _data(600)
    cfg = DBNConfig(hidden_sizes=(20, 7), epochs=8, checkpoint_epochs=tuple(range(9)), monitor_rows=100,
                    device="cuda")
    whole = train_dbn(cfg, x, cache_dir=tmp_path / "whole", data_id="d", progress=False)
    part = tmp_path / "part"
    train_dbn(cfg, x, cache_dir=part, data_id="d", progress=False)
    for p in part.glob("dbn-*/layer01_epoch000[5-8].pt"):  # as if killed after layer 1's epoch 4
        p.unlink()
    resumed = train_dbn(cfg, x, cache_dir=part, data_id="d", progress=False)
    assert all(torch.equal(a.W, b.W) and torch.equal(a.hbias, b.hbias) for a, b in zip(whole.rbms, resumed.rbms))


def test_final_payloads_hold_every_tensor_of_the_state(tmp_path):
    x = _data(300)
    net = train_dbn(DBNConfig(hidden_sizes=(6, 3), epochs=2, monitor_rows=50, device="cpu"), x, cache_dir=tmp_path,
                    data_id="d", progress=False)
    payloads = final_payloads(net)
    names = [n for n, _ in payload_tensors(payloads[1])]
    assert names == [".rbm.W", ".rbm.hbias", ".rbm.vbias", ".state.generator_state", ".state.particles",
                     ".state.velocity[0]", ".state.velocity[1]", ".state.velocity[2]"]
    assert torch.equal(dict(payload_tensors(payloads[0]))[".rbm.W"], net.rbms[0].W)
