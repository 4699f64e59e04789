"""Several seeds of one RBM layer trained in one step (``SeedBatch``): one generator per seed.

S networks of the same shape and recipe that differ only in their seed train
together, mini-batch by mini-batch.  Each seed keeps its own ``torch.Generator``
(the one ``train_dbn`` gives it) and draws from it alone, in the order of its
own epoch, so a seed's network does not depend on which seeds share its batch.
Two layouts:

* ``stacked`` (CUDA's default): weights, biases, velocities and particles are
  stacked along a leading seed dimension, the products are ``torch.baddbmm`` /
  ``torch.bmm`` and the element-wise work runs once for all seeds: an S-seed
  mini-batch launches the kernels of one seed.  ``GraphedSeedEpochs``
  captures the batched epoch in one CUDA graph (as ``cuda_graphs.GraphedEpochs``
  does for one seed).  A seed's bits may differ from its alone run's (batched
  cuBLAS kernels), so ``batched_training`` keys such networks apart.
* ``lockstep`` (the CPU's default): each seed keeps its own tensors and every
  mini-batch runs ``rbm._authors_step`` for each seed in turn, so a seed is
  bitwise the seed trained alone by construction (``tests/test_batched.py``
  pins it).  The stacked layout is not bitwise on the CPU in general: torch's
  ``baddbmm`` equals per-slice ``addmm`` at 784x500 but takes a naive kernel
  below 400 multiply-adds per product, MKL's batched GEMM picks other kernels
  at some shapes (25 x 50 @ 50 x 10), MKL's GEMM bits depend on the operands'
  alignment (a seed's slice of a stack is not 64-byte aligned in general) and
  the sigmoid's scalar tail (the last ``numel % 16`` elements) falls elsewhere
  in a stack.  Nor is it faster there: over 80 % of a CPU step is products,
  and each seed's products stay the same size (``make bench``: section batched).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from rr_utils.models.config import RBMConfig
from rr_utils.models.cuda_graphs import graphs_enabled
from rr_utils.models.rbm import RBM, PCDState, _authors_step, _bernoulli_draw, _generator_uniform

__all__ = ["SeedBatch", "GraphedSeedEpochs", "seed_epoch_runner"]


class SeedBatch:
    """S RBMs of one shape and their PCD states, trained together (see the module doc).

    Parameters
    ----------
    rbms : sequence of RBM
        The seeds' layers, all of one shape, dtype and device.
    states : sequence of PCDState
        Their PCD states (velocities, particles, generator), in the same order.
    stacked : bool or None
        The stacked layout (copies of the tensors, batched products) or the lockstep one (the seeds' own
        objects, trained in place); None: stacked on CUDA, lockstep elsewhere.

    Notes
    -----
    Train with ``fit_epoch``; ``seed(s)`` gives seed s's ``RBM`` and ``PCDState`` (copies when stacked), with
    its own generator throughout.
    """

    def __init__(self, rbms: Sequence[RBM], states: Sequence[PCDState], stacked: bool | None = None):
        rbms, states = list(rbms), list(states)
        if not rbms:
            raise ValueError("SeedBatch: expected at least one RBM, got none")
        if len(rbms) != len(states):
            raise ValueError(f"SeedBatch: {len(rbms)} RBMs but {len(states)} PCD states")
        shapes = {(r.n_visible, r.n_hidden, r.W.dtype, str(r.device)) for r in rbms}
        if len(shapes) != 1:
            raise ValueError(f"SeedBatch: the RBMs differ in shape, dtype or device: {sorted(map(str, shapes))}")
        if len({tuple(s.particles.shape) for s in states}) != 1:
            raise ValueError("SeedBatch: the PCD states hold different numbers of particles")
        self.stacked = rbms[0].device.type == "cuda" if stacked is None else bool(stacked)
        self.rbms, self.states = rbms, states
        self.generators = [s.generator for s in states]
        if self.stacked:
            self.W = torch.stack([r.W for r in rbms]).contiguous()
            self.vbias = torch.stack([r.vbias for r in rbms]).contiguous()
            self.hbias = torch.stack([r.hbias for r in rbms]).contiguous()
            self.velocity = tuple(torch.stack([s.velocity[i] for s in states]).contiguous() for i in range(3))
            self.particles = torch.stack([s.particles for s in states]).contiguous()

    @property
    def n_seeds(self) -> int:
        return len(self.rbms)

    @property
    def device(self) -> torch.device:
        return self.rbms[0].device

    def seed(self, s: int) -> tuple[RBM, PCDState]:
        """Seed ``s``'s ``(RBM, PCDState)`` now: copies of its slices when stacked, else its own objects."""
        if not self.stacked:
            return self.rbms[s], self.states[s]
        rbm = RBM(self.W[s].clone(), self.vbias[s].clone(), self.hbias[s].clone())
        vel = tuple(v[s].clone() for v in self.velocity)
        return rbm, PCDState(vel, self.particles[s].clone(), self.generators[s])

    def unstack(self) -> list[tuple[RBM, PCDState]]:
        """Every seed's ``(RBM, PCDState)`` (``seed``)."""
        return [self.seed(s) for s in range(self.n_seeds)]

    def rbm(self, s: int) -> RBM:
        """Seed ``s``'s RBM without a copy (views of the stack when stacked): it follows the training."""
        return RBM(self.W[s], self.vbias[s], self.hbias[s]) if self.stacked else self.rbms[s]

    @torch.no_grad()
    def fit_epoch(self, data, epoch: int, config: RBMConfig) -> None:
        """One epoch of the authors' update for every seed.

        Parameters
        ----------
        data : torch.Tensor or sequence of torch.Tensor
            (rows, n_visible), shared by every seed (a first layer); or one input per seed (a deeper layer:
            each seed's lower layers give its own), as S tensors (rows, n_visible) or one (S, rows, n_visible);
            on ``self.device``, of the weights' dtype.
        epoch : int
            The 0-based epoch index (learning rate and momentum).
        config : RBMConfig
            The recipe (``recipe="authors"`` only); its seed is not used here.
        """
        _check_config(config)
        lr, alpha = config.learning_rate(epoch), config.momentum(epoch)
        if self.stacked:
            _stacked_epoch(self, _stacked_data(self, data), config, lr, alpha, _stacked_draws(self))
        else:
            _lockstep_epoch(self, _seed_data(self, data), config, lr, alpha)


def _check_config(config: RBMConfig) -> None:
    if config.recipe != "authors":
        raise ValueError(f"batched seeds: the authors' recipe only, got recipe={config.recipe!r}")


def _seed_data(batch: SeedBatch, data) -> list[torch.Tensor]:
    """One (rows, n_visible) tensor per seed (a shared 2-d input repeated, not copied), checked."""
    W = batch.rbms[0].W
    if isinstance(data, torch.Tensor):
        # a stack's slices are copied: MKL's bits depend on the operands' alignment, a fresh tensor's is the alone one
        data = [data] * batch.n_seeds if data.ndim == 2 else [x.clone() for x in data] if data.ndim == 3 else [data]
    data = list(data)
    if len(data) != batch.n_seeds:
        raise ValueError(f"batched seeds: {len(data)} inputs for {batch.n_seeds} seeds")
    for x in data:
        if not isinstance(x, torch.Tensor) or x.dtype != W.dtype or x.device != W.device:
            raise ValueError(f"batched seeds: data must be {W.dtype} tensors on {W.device}")
        if x.ndim != 2 or x.shape[1] != W.shape[0] or x.shape[0] != data[0].shape[0]:
            raise ValueError(f"batched seeds: data of shape {tuple(x.shape)}, expected (rows, {W.shape[0]}) with "
                             "the same rows for every seed")
    return data


def _stacked_data(batch: SeedBatch, data) -> torch.Tensor:
    """``data`` as (S, rows, n_visible): a shared 2-d input expanded (no copy), per-seed inputs stacked."""
    if isinstance(data, torch.Tensor) and data.ndim == 2:
        _seed_data(batch, data)  # checks
        return data.unsqueeze(0).expand(batch.n_seeds, *data.shape)
    if isinstance(data, torch.Tensor) and data.ndim == 3:
        _seed_data(batch, list(data.unbind(0)))
        return data
    return torch.stack(_seed_data(batch, data))


def _lockstep_epoch(batch: SeedBatch, xs: list[torch.Tensor], config: RBMConfig, lr, alpha) -> None:
    """``rbm._authors_epoch`` of every seed, mini-batch by mini-batch: the same calls, seed after seed."""
    B, K, rows = config.batch_size, config.gibbs_steps, xs[0].shape[0]
    draws = [_bernoulli_draw(_generator_uniform(st.generator, r.W)) for r, st in zip(batch.rbms, batch.states)]
    negs = [(r.W.new_empty(K * st.particles.shape[0], r.n_visible), r.W.new_empty(K * st.particles.shape[0],
                                                                                   r.n_hidden))
            for r, st in zip(batch.rbms, batch.states)]
    P = [st.particles for st in batch.states]
    for s in range(0, rows // B * B, B):
        for i, (rbm, st) in enumerate(zip(batch.rbms, batch.states)):
            P[i] = _authors_step(rbm, st.velocity, P[i], xs[i][s:s + B], *negs[i], lr, alpha,
                                 config.weight_decay, draws[i])
    for st, p in zip(batch.states, P):
        st.particles = p


def _stacked_draws(batch: SeedBatch) -> Callable[[torch.Tensor], torch.Tensor]:
    """The authors' draw ``s(p) = (u < p)`` per seed: slice s of ``u`` from seed s's generator, in the order
    the alone epoch draws them (``rbm._generator_uniform`` + ``rbm._bernoulli_draw``)."""
    gens = batch.generators

    def draw(p):
        u = torch.empty_like(p)
        for s, g in enumerate(gens):
            u[s].uniform_(0, 1, generator=g)  # torch.rand(shape, generator=g) of the alone epoch
        return (u < p).to(p.dtype)
    return draw


def _stacked_epoch(batch: SeedBatch, data: torch.Tensor, config: RBMConfig, lr, alpha,
                   draw: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The mini-batches of one epoch for every seed, stacked, in data order (a last partial one dropped), as
    ``rbm._authors_epoch``; updates ``batch.particles`` in place and returns it."""
    B, K = config.batch_size, config.gibbs_steps
    S, n = batch.n_seeds, batch.particles.shape[1]
    neg_v = batch.W.new_empty(S, K * n, batch.W.shape[1])
    neg_h = batch.W.new_empty(S, K * n, batch.W.shape[2])
    P = batch.particles
    for s in range(0, data.shape[1] // B * B, B):
        P = _stacked_step(batch, P, data[:, s:s + B], neg_v, neg_h, lr, alpha, config.weight_decay, draw)
    batch.particles.copy_(P)
    return batch.particles


def _stacked_step(batch: SeedBatch, P: torch.Tensor, vd: torch.Tensor, neg_v: torch.Tensor, neg_h: torch.Tensor,
                  lr, alpha, wd: float, draw: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """One mini-batch of ``rbm._authors_step`` for every seed: stacked tensors, batched products; returns the
    new particles (S, n, n_visible).  ``lr``, ``alpha``: numbers or 0-d tensors (CUDA graphs)."""
    W, a, b = batch.W, batch.vbias.unsqueeze(1), batch.hbias.unsqueeze(1)
    Wt = W.transpose(1, 2)
    dW, da, db = batch.velocity
    n = P.shape[1]
    K = neg_v.shape[1] // n
    hd = torch.baddbmm(b, vd, W).sigmoid_()
    for k in range(K):
        v = torch.baddbmm(a, draw(torch.baddbmm(b, P, W).sigmoid_()), Wt).sigmoid_()
        hk = torch.baddbmm(b, v, W).sigmoid_()
        P = torch.baddbmm(a, draw(hk), Wt).sigmoid_()
        neg_v[:, k * n:(k + 1) * n] = v
        neg_h[:, k * n:(k + 1) * n] = hk
    gW = torch.baddbmm(torch.bmm(neg_v.transpose(1, 2), neg_h), vd.transpose(1, 2), hd,
                       beta=-1.0 / (K * n), alpha=1.0 / vd.shape[1])
    dW.mul_(alpha).add_(gW)
    if wd:
        dW.add_(W, alpha=-wd)
    dW.mul_(lr)
    da.mul_(alpha).add_(vd.mean(1) - neg_v.mean(1)).mul_(lr)
    db.mul_(alpha).add_(hd.mean(1) - neg_h.mean(1)).mul_(lr)
    W.add_(dW)
    batch.vbias.add_(da)
    batch.hbias.add_(db)
    return P


def seed_epoch_runner(batch: SeedBatch, config: RBMConfig) -> Callable[[torch.Tensor, int], None]:
    """``fit(data, epoch)`` training every seed of ``batch`` one epoch: replayed from a CUDA graph on CUDA
    (unless ``RR_CUDA_GRAPHS=0``), else ``batch.fit_epoch``."""
    _check_config(config)
    if batch.stacked and graphs_enabled(batch.device):
        return GraphedSeedEpochs(batch, config).fit_epoch
    return lambda data, epoch: batch.fit_epoch(data, epoch, config)


class GraphedSeedEpochs:
    """Batched epochs (CUDA) replayed from one captured epoch, as ``cuda_graphs.GraphedEpochs``: the first
    epoch runs eagerly on the capture stream, the second is captured (every seed's generator registered with
    the graph) and each later epoch replays it with that epoch's learning rate and momentum."""

    def __init__(self, batch: SeedBatch, config: RBMConfig):
        if batch.device.type != "cuda":
            raise ValueError(f"GraphedSeedEpochs: CUDA graphs need a CUDA device, got {batch.device}")
        _check_config(config)
        if not batch.stacked:
            raise ValueError("GraphedSeedEpochs: captures the stacked layout only (SeedBatch(..., stacked=True))")
        self.batch, self.config = batch, config
        self.graph: torch.cuda.CUDAGraph | None = None
        self._data_ptr: tuple | None = None
        self._lr = torch.zeros((), device=batch.device)
        self._alpha = torch.zeros((), device=batch.device)

    @torch.no_grad()
    def fit_epoch(self, data: torch.Tensor, epoch: int) -> None:
        cfg, dev = self.config, self.batch.device
        if self.graph is None:
            stream = torch.cuda.Stream(dev)
            stream.wait_stream(torch.cuda.current_stream(dev))
            with torch.cuda.stream(stream):  # the eager epoch doubles as the capture stream's warm-up
                self.batch.fit_epoch(data, epoch, cfg)
            torch.cuda.current_stream(dev).wait_stream(stream)
            self._capture(data, stream)
            return
        if not isinstance(data, torch.Tensor) or (data.data_ptr(), tuple(data.shape)) != self._data_ptr:
            raise ValueError("GraphedSeedEpochs: the graph reads the data tensor it was captured with; "
                             "pass the same tensor every epoch")
        self._lr.fill_(cfg.learning_rate(epoch))
        self._alpha.fill_(cfg.momentum(epoch))
        self.graph.replay()

    def _capture(self, data: torch.Tensor, stream: torch.cuda.Stream) -> None:
        batch = self.batch
        graph = torch.cuda.CUDAGraph()
        for g in batch.generators:
            graph.register_generator_state(g)
        x = _stacked_data(batch, data)
        with torch.cuda.graph(graph, stream=stream):
            _stacked_epoch(batch, x, self.config, self._lr, self._alpha, _stacked_draws(batch))
        self.graph = graph
        self._data_ptr = (data.data_ptr(), tuple(data.shape))
