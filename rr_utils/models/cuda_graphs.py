"""Epochs of the authors' recipe on CUDA, replayed from a CUDA graph of one whole epoch.

A mini-batch of the authors' update is about 90 small kernels (four Gibbs
chunks of 25 particles, then the update), so on a GPU an eager epoch is bound
by kernel launches, not arithmetic.  ``GraphedEpochs`` runs the layer's first
epoch eagerly (it also warms up cuBLAS on the capture stream), captures the
next epoch, every mini-batch of it, into one CUDA graph, and replays that
graph once per epoch.  The epoch's learning rate and momentum enter the graph
as 0-d tensors filled before each replay; the layer's generator is registered
with the graph, so each replay draws the same Philox numbers as the eager
epoch would.  The graph reads the mini-batches as views of the same data
tensor and writes the weights, velocities and particles in place: a replay
launches exactly the kernels of the eager epoch on the same memory, so the
result is meant to be bitwise the eager one.  ``benchmarks/gpu.py`` checks that
on the GPU and times both; ``RR_CUDA_GRAPHS=0`` turns the graphs off.
"""

from __future__ import annotations

import os
from typing import Callable

import torch

from rr_utils.models.config import RBMConfig
from rr_utils.models.rbm import RBM, PCDState, _authors_epoch, _bernoulli_draw, _generator_uniform

__all__ = ["GraphedEpochs", "epoch_runner", "graphs_enabled", "uses_graphs"]


def graphs_enabled(device: torch.device) -> bool:
    """CUDA graphs are used on CUDA devices unless ``RR_CUDA_GRAPHS=0`` (or this torch cannot register
    a generator with a graph, which the layer's own generator needs)."""
    return (device.type == "cuda" and os.environ.get("RR_CUDA_GRAPHS", "1").strip() != "0"
            and hasattr(torch.cuda.CUDAGraph, "register_generator_state"))


def uses_graphs(config: RBMConfig, device: torch.device) -> bool:
    """Whether ``config``'s epochs on ``device`` are replayed from a CUDA graph (the authors' recipe only)."""
    return config.recipe == "authors" and graphs_enabled(device)


def epoch_runner(rbm: RBM, config: RBMConfig, state: PCDState) -> Callable[[torch.Tensor, int], None]:
    """``fit(data, epoch)`` training ``rbm`` one epoch: graphed when ``uses_graphs``, else ``rbm.fit_epoch``."""
    if uses_graphs(config, rbm.device):
        return GraphedEpochs(rbm, config, state).fit_epoch
    return lambda data, epoch: rbm.fit_epoch(data, epoch, config, state)


class GraphedEpochs:
    """Epochs of ``rbm`` (authors' recipe, CUDA) replayed from one captured epoch (see the module doc)."""

    def __init__(self, rbm: RBM, config: RBMConfig, state: PCDState):
        if rbm.device.type != "cuda":
            raise ValueError(f"GraphedEpochs: CUDA graphs need a CUDA device, got {rbm.device}")
        if config.recipe != "authors":
            raise ValueError(f"GraphedEpochs: graphs the authors' recipe only, got recipe={config.recipe!r}")
        self.rbm, self.config, self.state = rbm, config, state
        self.graph: torch.cuda.CUDAGraph | None = None
        self._data_ptr: tuple | None = None
        self._lr = torch.zeros((), device=rbm.device)
        self._alpha = torch.zeros((), device=rbm.device)

    @torch.no_grad()
    def fit_epoch(self, data: torch.Tensor, epoch: int) -> None:
        cfg = self.config
        if self.graph is None:
            stream = torch.cuda.Stream(self.rbm.device)
            stream.wait_stream(torch.cuda.current_stream(self.rbm.device))
            with torch.cuda.stream(stream):  # the eager epoch doubles as the capture stream's warm-up
                self.rbm.fit_epoch(data, epoch, cfg, self.state)
            torch.cuda.current_stream(self.rbm.device).wait_stream(stream)
            self._capture(data, stream)
            return
        if (data.data_ptr(), tuple(data.shape)) != self._data_ptr:
            raise ValueError("GraphedEpochs: the graph reads the data tensor it was captured with; "
                             "pass the same tensor every epoch")
        self._lr.fill_(cfg.learning_rate(epoch))
        self._alpha.fill_(cfg.momentum(epoch))
        self.graph.replay()

    def _capture(self, data: torch.Tensor, stream: torch.cuda.Stream) -> None:
        rbm, cfg, state = self.rbm, self.config, self.state
        particles = state.particles.contiguous()
        state.particles = particles  # the graph reads and writes this buffer
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(state.generator)
        draw = _bernoulli_draw(_generator_uniform(state.generator, rbm.W))
        with torch.cuda.graph(graph, stream=stream):
            particles.copy_(_authors_epoch(rbm, data, cfg, state.velocity, particles, self._lr, self._alpha, draw))
        self.graph = graph
        self._data_ptr = (data.data_ptr(), tuple(data.shape))
