"""Several seeds of one RBM layer trained in one step: stacked weights, batched products (``SeedBatch``).

S networks of the same shape and recipe that differ only in their seed are
held as stacked tensors (``W`` of shape (S, n_visible, n_hidden), biases,
momentum velocities and particles likewise), and each mini-batch of the
authors' update (``rr_utils.models.rbm._authors_step``) runs once for all of
them: the products are ``torch.baddbmm`` / ``torch.bmm`` over the seed
dimension, the element-wise work runs on the stacked tensors.  Each seed keeps
its own ``torch.Generator`` (the one ``train_dbn`` would give it); its Bernoulli
draws are drawn from it alone, in the order of the seed's own epoch, so a seed's
network does not depend on which other seeds share its batch.

Bitwise equality with a seed trained alone (CPU, ``tests/test_batched.py``):

* the products: MKL's batched GEMM computes each slice as the single GEMM does
  (checked at the trainer's shapes, 784x500 included);
* exact element-wise operations (``<``, casts, copies, ``+``, ``-``, ``*`` by a
  number, column means) give the same bits on any layout;
* the sigmoid and the ``W``-decay term go through ``torch._foreach_*`` on the
  per-seed slices: torch's CPU kernels compute the last ``numel % 16`` elements
  of a tensor with a scalar formula whose last bit can differ from the
  vectorised one, so each seed's slice must be its own tensor there, as alone.

On CUDA a batched seed is not assumed bitwise the alone one (cuBLAS may pick
other kernels for batched products): ``rr_utils.models.batched_training``
keys such networks apart.  ``GraphedSeedEpochs`` captures the batched epoch in
one CUDA graph, as ``cuda_graphs.GraphedEpochs`` does for one seed.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from rr_utils.models.config import RBMConfig
from rr_utils.models.cuda_graphs import graphs_enabled
from rr_utils.models.rbm import RBM, PCDState

__all__ = ["SeedBatch", "GraphedSeedEpochs", "seed_epoch_runner"]


class SeedBatch:
    """S RBMs of one shape and their PCD states, stacked along a leading seed dimension.

    Parameters
    ----------
    rbms : sequence of RBM
        The seeds' layers, all of one shape, dtype and device.
    states : sequence of PCDState
        Their PCD states (velocities, particles, generator), in the same order.

    Notes
    -----
    The stacked tensors are copies: train with ``fit_epoch``, then ``unstack``
    to get each seed's ``RBM`` and ``PCDState`` back (the generators are the
    seeds' own objects throughout).
    """

    def __init__(self, rbms: Sequence[RBM], states: Sequence[PCDState]):
        if not rbms:
            raise ValueError("SeedBatch: expected at least one RBM, got none")
        if len(rbms) != len(states):
            raise ValueError(f"SeedBatch: {len(rbms)} RBMs but {len(states)} PCD states")
        shapes = {(r.n_visible, r.n_hidden, r.W.dtype, str(r.device)) for r in rbms}
        if len(shapes) != 1:
            raise ValueError(f"SeedBatch: the RBMs differ in shape, dtype or device: {sorted(map(str, shapes))}")
        if len({tuple(s.particles.shape) for s in states}) != 1:
            raise ValueError("SeedBatch: the PCD states hold different numbers of particles")
        self.W = torch.stack([r.W for r in rbms]).contiguous()
        self.vbias = torch.stack([r.vbias for r in rbms]).contiguous()
        self.hbias = torch.stack([r.hbias for r in rbms]).contiguous()
        self.velocity = tuple(torch.stack([s.velocity[i] for s in states]).contiguous() for i in range(3))
        self.particles = torch.stack([s.particles for s in states]).contiguous()
        self.generators = [s.generator for s in states]

    @property
    def n_seeds(self) -> int:
        return self.W.shape[0]

    @property
    def device(self) -> torch.device:
        return self.W.device

    def unstack(self) -> list[tuple[RBM, PCDState]]:
        """Each seed's ``(RBM, PCDState)``: copies of its slices, its own generator."""
        out = []
        for s in range(self.n_seeds):
            rbm = RBM(self.W[s].clone(), self.vbias[s].clone(), self.hbias[s].clone())
            vel = tuple(v[s].clone() for v in self.velocity)
            out.append((rbm, PCDState(vel, self.particles[s].clone(), self.generators[s])))
        return out

    def rbm(self, s: int) -> RBM:
        """Seed ``s``'s RBM as views of the stacked tensors (no copy; it follows the training)."""
        return RBM(self.W[s], self.vbias[s], self.hbias[s])

    @torch.no_grad()
    def fit_epoch(self, data: torch.Tensor, epoch: int, config: RBMConfig) -> None:
        """One epoch of the authors' update for every seed.

        Parameters
        ----------
        data : torch.Tensor
            (rows, n_visible), shared by every seed (a first layer), or (S, rows, n_visible), one input
            per seed (a deeper layer: each seed's lower layers give its own), on ``self.device``.
        epoch : int
            The 0-based epoch index (learning rate and momentum).
        config : RBMConfig
            The recipe (``recipe="authors"`` only); its seed is not used here.
        """
        _check_config(config)
        _seed_epoch(self, _check_batch_data(self, data), config, config.learning_rate(epoch),
                    config.momentum(epoch), _seed_draws(self))


def _check_config(config: RBMConfig) -> None:
    if config.recipe != "authors":
        raise ValueError(f"batched seeds: the authors' recipe only, got recipe={config.recipe!r}")


def _check_batch_data(batch: SeedBatch, data: torch.Tensor) -> torch.Tensor:
    """``data`` as (S, rows, n_visible) (a shared 2-d input is expanded, not copied)."""
    if not isinstance(data, torch.Tensor) or data.dtype != batch.W.dtype or data.device != batch.device:
        raise ValueError(f"batched seeds: data must be a {batch.W.dtype} tensor on {batch.device}")
    if data.ndim == 2:
        data = data.unsqueeze(0).expand(batch.n_seeds, *data.shape)
    if data.ndim != 3 or data.shape[0] != batch.n_seeds or data.shape[2] != batch.W.shape[1]:
        raise ValueError(f"batched seeds: data of shape {tuple(data.shape)}, expected (rows, {batch.W.shape[1]}) "
                         f"or ({batch.n_seeds}, rows, {batch.W.shape[1]})")
    return data


def _seed_draws(batch: SeedBatch) -> Callable[[torch.Tensor], torch.Tensor]:
    """The authors' draw ``s(p) = (u < p)`` per seed: slice s of ``u`` from seed s's generator, in the order the
    alone epoch draws them (``rbm._generator_uniform`` + ``rbm._bernoulli_draw``)."""
    gens = batch.generators

    def draw(p):
        u = torch.empty_like(p)
        for s, g in enumerate(gens):
            u[s].uniform_(0, 1, generator=g)  # torch.rand(shape, generator=g) of the alone epoch
        return (u < p).to(p.dtype)
    return draw


def _sigmoid_(x: torch.Tensor) -> torch.Tensor:
    """In-place sigmoid of each seed's slice as a tensor of its own (bitwise the alone sigmoid, see the module
    doc); one fused call for all seeds on CUDA, where the kernels have no scalar tail."""
    if x.device.type == "cuda":
        return x.sigmoid_()
    torch._foreach_sigmoid_(list(x.unbind(0)))
    return x


def _seed_epoch(batch: SeedBatch, data: torch.Tensor, config: RBMConfig, lr, alpha,
                draw: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The mini-batches of one epoch for every seed, in data order (a last partial one dropped), as
    ``rbm._authors_epoch``; updates ``batch.particles`` in place and returns it."""
    B, K = config.batch_size, config.gibbs_steps
    S, n = batch.n_seeds, batch.particles.shape[1]
    neg_v = batch.W.new_empty(S, K * n, batch.W.shape[1])
    neg_h = batch.W.new_empty(S, K * n, batch.W.shape[2])
    P = batch.particles
    for s in range(0, data.shape[1] // B * B, B):
        P = _seed_step(batch, P, data[:, s:s + B], neg_v, neg_h, lr, alpha, config.weight_decay, draw)
    batch.particles.copy_(P)
    return batch.particles


def _weight_update(W, dW, vd, hd, neg_v, neg_h, lr, alpha, wd: float) -> None:
    """One seed's weight update of ``rbm._authors_step`` (the same operations on its slices)."""
    K_n = neg_v.shape[0]
    gW = torch.addmm(neg_v.t() @ neg_h, vd.t(), hd, beta=-1.0 / K_n, alpha=1.0 / vd.shape[0])
    dW.mul_(alpha).add_(gW)
    if wd:
        dW.add_(W, alpha=-wd)
    dW.mul_(lr)
    W.add_(dW)


def _seed_step(batch: SeedBatch, P: torch.Tensor, vd: torch.Tensor, neg_v: torch.Tensor, neg_h: torch.Tensor,
               lr, alpha, wd: float, draw: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """One mini-batch of ``rbm._authors_step`` for every seed (stacked tensors, batched products); returns the
    new particles (S, n, n_visible).  ``lr``, ``alpha``: numbers or 0-d tensors (CUDA graphs)."""
    W, a, b = batch.W, batch.vbias.unsqueeze(1), batch.hbias.unsqueeze(1)
    Wt = W.transpose(1, 2)
    dW, da, db = batch.velocity
    n = P.shape[1]
    K = neg_v.shape[1] // n
    hd = _sigmoid_(torch.baddbmm(b, vd, W))
    for k in range(K):
        v = _sigmoid_(torch.baddbmm(a, draw(_sigmoid_(torch.baddbmm(b, P, W))), Wt))
        hk = _sigmoid_(torch.baddbmm(b, v, W))
        P = _sigmoid_(torch.baddbmm(a, draw(hk), Wt))
        neg_v[:, k * n:(k + 1) * n] = v
        neg_h[:, k * n:(k + 1) * n] = hk
    if W.device.type == "cuda":  # one batched update: kernel launches, not arithmetic, bound a GPU step
        gW = torch.baddbmm(torch.bmm(neg_v.transpose(1, 2), neg_h), vd.transpose(1, 2), hd,
                           beta=-1.0 / (K * n), alpha=1.0 / vd.shape[1])
        dW.mul_(alpha).add_(gW)
        if wd:
            dW.add_(W, alpha=-wd)
        dW.mul_(lr)
        W.add_(dW)
    else:  # seed by seed, as alone: the CPU's update is large products, and S of them at once leave the cache
        for s in range(W.shape[0]):
            _weight_update(W[s], dW[s], vd[s], hd[s], neg_v[s], neg_h[s], lr, alpha, wd)
    da.mul_(alpha).add_(vd.mean(1) - neg_v.mean(1)).mul_(lr)
    db.mul_(alpha).add_(hd.mean(1) - neg_h.mean(1)).mul_(lr)
    batch.vbias.add_(da)
    batch.hbias.add_(db)
    return P


def seed_epoch_runner(batch: SeedBatch, config: RBMConfig) -> Callable[[torch.Tensor, int], None]:
    """``fit(data, epoch)`` training every seed of ``batch`` one epoch: replayed from a CUDA graph on CUDA
    (unless ``RR_CUDA_GRAPHS=0``), else ``batch.fit_epoch``."""
    _check_config(config)
    if graphs_enabled(batch.device):
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
        if (data.data_ptr(), tuple(data.shape)) != self._data_ptr:
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
        x = _check_batch_data(batch, data)
        with torch.cuda.graph(graph, stream=stream):
            _seed_epoch(batch, x, self.config, self._lr, self._alpha, _seed_draws(batch))
        self.graph = graph
        self._data_ptr = (data.data_ptr(), tuple(data.shape))
