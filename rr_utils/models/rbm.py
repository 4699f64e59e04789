"""The Bernoulli-Bernoulli RBM, its PCD training state and one epoch of training (``RBM.fit_epoch``)."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from rr_utils.devices import resolve_device
from rr_utils.models.config import RBMConfig

__all__ = ["RBM", "PCDState"]

UP_BATCH = 8192  # rows per batch when propagating data (fixed: results must not depend on it)


def _seed_for(seed: int, *stream: int) -> int:
    """A 63-bit seed for an independent stream (seed, layer, purpose)."""
    s = np.random.SeedSequence([int(seed) & 0xFFFFFFFFFFFFFFFF, *stream]).generate_state(2, np.uint32)
    return int((int(s[0]) << 31) ^ int(s[1])) & ((1 << 63) - 1)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


@contextlib.contextmanager
def _deterministic(device: torch.device):
    """Enable deterministic algorithms for the duration, restoring the previous setting."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    # Subnormal floats (|x| < 1.2e-38, e.g. sigmoid of a pre-activation below -87) can
    # slow CPU matmuls by orders of magnitude; flush them to zero while training.
    flushed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if flushed:
            torch.set_flush_denormal(False)
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def _as_tensor(x, device: torch.device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)


class RBM:
    """Bernoulli-Bernoulli RBM: ``W`` (n_visible, n_hidden), ``vbias``, ``hbias`` (float32).

    Methods take arrays or tensors of shape (rows, n_visible|n_hidden) and
    return tensors on ``self.device``.
    """

    def __init__(self, W: torch.Tensor, vbias: torch.Tensor, hbias: torch.Tensor):
        self.W = W if W.dtype == torch.float64 else W.to(torch.float32)  # float64 only for tests
        self.vbias = vbias.to(device=self.W.device, dtype=self.W.dtype)
        self.hbias = hbias.to(device=self.W.device, dtype=self.W.dtype)
        if self.W.ndim != 2 or self.vbias.shape != (self.W.shape[0],) or self.hbias.shape != (self.W.shape[1],):
            raise ValueError(f"inconsistent shapes W {tuple(self.W.shape)}, vbias {tuple(self.vbias.shape)}, hbias {tuple(self.hbias.shape)}")

    # construction ---------------------------------------------------------
    @classmethod
    def initialise(cls, n_visible: int, n_hidden: int, generator: torch.Generator,
                   init: str = "normal", gain: float = 4.0, device=None) -> "RBM":
        """Weights ``gain*sqrt(6/(n_vis+n_hid))`` times N(0,1) (``init="normal"``) or
        U(-1,1) (``init="uniform"``); biases 0."""
        device = generator.device if device is None else resolve_device(device)
        c = gain * math.sqrt(6.0 / (n_visible + n_hidden))
        if init == "normal":
            W = torch.randn(n_visible, n_hidden, generator=generator, device=device, dtype=torch.float32)
        elif init == "uniform":
            W = torch.rand(n_visible, n_hidden, generator=generator, device=device, dtype=torch.float32) * 2 - 1
        else:
            raise ValueError(f"init: 'normal' or 'uniform', got {init!r}")
        W = W * c
        return cls(W, torch.zeros(n_visible, device=device), torch.zeros(n_hidden, device=device))

    @property
    def n_visible(self) -> int:
        return self.W.shape[0]

    @property
    def n_hidden(self) -> int:
        return self.W.shape[1]

    @property
    def device(self) -> torch.device:
        return self.W.device

    def to(self, device) -> "RBM":
        device = resolve_device(device)
        return RBM(self.W.to(device), self.vbias.to(device), self.hbias.to(device))

    def clone(self) -> "RBM":
        return RBM(self.W.clone(), self.vbias.clone(), self.hbias.clone())

    def state_dict(self) -> dict:
        return {"W": self.W.detach().cpu(), "vbias": self.vbias.detach().cpu(), "hbias": self.hbias.detach().cpu()}

    @classmethod
    def from_state_dict(cls, d: dict, device="cpu") -> "RBM":
        device = resolve_device(device)
        return cls(d["W"].to(device), d["vbias"].to(device), d["hbias"].to(device))

    def numpy(self) -> dict:
        """Weights as numpy arrays: {"W", "vbias", "hbias"}."""
        return {k: v.numpy() for k, v in self.state_dict().items()}

    def __repr__(self) -> str:
        return f"RBM({self.n_visible} -> {self.n_hidden}, device={self.device})"

    # conditionals -----------------------------------------------------------
    def _t(self, x) -> torch.Tensor:
        return _as_tensor(x, self.device)

    def hidden_probs(self, v) -> torch.Tensor:
        """p(h=1|v) = sigmoid(v W + hbias)."""
        return torch.sigmoid(torch.addmm(self.hbias, self._t(v), self.W))

    def visible_probs(self, h) -> torch.Tensor:
        """p(v=1|h) = sigmoid(h W^T + vbias)."""
        return torch.sigmoid(torch.addmm(self.vbias, self._t(h), self.W.t()))

    def sample_h(self, v, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(p(h|v), Bernoulli sample) — sample as float32 0/1."""
        p = self.hidden_probs(v)
        return p, torch.bernoulli(p, generator=generator)

    def sample_v(self, h, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(p(v|h), Bernoulli sample) — sample as float32 0/1."""
        p = self.visible_probs(h)
        return p, torch.bernoulli(p, generator=generator)

    def free_energy(self, v) -> torch.Tensor:
        """F(v) = -v.vbias - sum_j softplus(v W + hbias)_j, shape (rows,)."""
        v = self._t(v)
        return -(v @ self.vbias) - torch.nn.functional.softplus(torch.addmm(self.hbias, v, self.W)).sum(dim=1)

    def reconstruction_error(self, v, batch_size: int = UP_BATCH) -> float:
        """Mean (over rows and pixels) squared error of one deterministic up-down
        pass: ``mean((v - p(v|p(h|v)))^2)``."""
        v = self._t(v)
        total = 0.0
        for s in range(0, v.shape[0], batch_size):
            vb = v[s:s + batch_size]
            total += float(((vb - self.visible_probs(self.hidden_probs(vb))) ** 2).sum())
        return total / (v.shape[0] * v.shape[1])

    def pseudo_log_likelihood(self, v, generator: torch.Generator | int | None = None, exact: bool = False,
                              threshold: float = 0.5, chunk_elements: int = 1 << 22) -> torch.Tensor:
        """Pseudo-log-likelihood per row of the *binarised* input ``b = (v > threshold)``.

        ``exact=False`` (as scikit-learn's ``BernoulliRBM.score_samples``): for each
        row flip one bit i drawn uniformly from ``generator`` and return
        ``n_visible * log sigmoid(F(b with bit i flipped) - F(b))``, an unbiased
        estimate of the PLL.  ``exact=True``: ``sum_i log sigmoid(F(flip_i b) - F(b))``
        over all bits (cost n_visible times higher; use on a subset).
        ``generator``: a torch.Generator on ``self.device``, an int seed, or None
        (seed 0) — the result is deterministic given it.
        """
        b = (self._t(v) > threshold).to(torch.float32)
        rows, n = b.shape
        x = torch.addmm(self.hbias, b, self.W)
        fe = -(b @ self.vbias) - torch.nn.functional.softplus(x).sum(dim=1)
        sign = 1.0 - 2.0 * b  # +1 turns a 0 into 1, -1 turns a 1 into 0
        if not exact:
            if not isinstance(generator, torch.Generator):
                generator = _generator(self.device, 0 if generator is None else int(generator))
            idx = torch.randint(0, n, (rows,), generator=generator, device=self.device)
            ar = torch.arange(rows, device=self.device)
            d = sign[ar, idx]
            x_f = x + d[:, None] * self.W[idx]
            fe_f = -(b @ self.vbias + d * self.vbias[idx]) - torch.nn.functional.softplus(x_f).sum(dim=1)
            return n * torch.nn.functional.logsigmoid(fe_f - fe)
        out = torch.empty(rows, device=self.device)
        step = max(1, chunk_elements // (n * self.n_hidden))
        vb_dot = b @ self.vbias
        for s in range(0, rows, step):
            sl = slice(s, s + step)
            xf = x[sl, None, :] + sign[sl, :, None] * self.W[None]  # (r, n, n_hid)
            fe_f = -(vb_dot[sl, None] + sign[sl] * self.vbias) - torch.nn.functional.softplus(xf).sum(dim=2)
            out[sl] = torch.nn.functional.logsigmoid(fe_f - fe[sl, None]).sum(dim=1)
        return out

    # training -----------------------------------------------------------------
    @torch.no_grad()
    def fit_epoch(self, data: torch.Tensor, epoch: int, config: RBMConfig, state: "PCDState",
                  uniform: Callable[[tuple], torch.Tensor] | None = None) -> None:
        """One epoch (0-based index ``epoch``) of PCD on ``data`` (rows in [0, 1], a tensor
        on ``self.device`` of the weights' dtype), mini-batches in data order, with the
        update of ``config.recipe`` (see the package docstring).  Updates the weights,
        ``state.velocity`` and ``state.particles`` in place.

        ``uniform(shape)``: source of the U(0, 1) numbers behind the Bernoulli draws of
        the authors' recipe (a draw is ``u < p``); default ``state.generator``.  Tests
        inject their own to compare with a transcription of the authors' equations."""
        if config.recipe == "authors":
            self._fit_epoch_authors(data, epoch, config, state, uniform)
        elif uniform is not None:
            raise ValueError("uniform: injecting random numbers is supported by the authors' recipe only")
        else:
            self._fit_epoch_classical(data, epoch, config, state)

    @torch.no_grad()
    def _fit_epoch_authors(self, data: torch.Tensor, epoch: int, config: RBMConfig, state: "PCDState",
                           uniform: Callable[[tuple], torch.Tensor] | None) -> None:
        """``recipe="authors"``: for each of the K chunks of P negatives, two Gibbs sweeps of the
        particles (h = s(sigma(P W + b)), v_k = sigma(h W^T + a), h_k = sigma(v_k W + b),
        P = sigma(s(h_k) W^T + a)); update ``d = lr * (g + alpha * d - wd * W)`` (momentum and L2
        inside the learning-rate product, L2 on weights only); a last partial mini-batch is dropped."""
        draw = _bernoulli_draw(_generator_uniform(state.generator, self.W) if uniform is None else uniform)
        state.particles = _authors_epoch(self, data, config, state.velocity, state.particles,
                                         config.learning_rate(epoch), config.momentum(epoch), draw)

    @torch.no_grad()
    def _fit_epoch_classical(self, data: torch.Tensor, epoch: int, config: RBMConfig, state: "PCDState") -> None:
        """``recipe="classical"``: one Gibbs sweep per chunk of negatives (consecutive chain
        states), classical momentum ``delta = m * delta + lr * (g - wd * W)``; a last partial
        mini-batch is used."""
        lr = config.learning_rate(epoch)
        mom = config.momentum(epoch)
        wd = config.weight_decay
        B = config.batch_size
        K = config.gibbs_steps
        P = state.particles.shape[0]
        g = state.generator
        W, a, b = self.W, self.vbias, self.hbias
        dW, da, db = state.velocity
        sample_visible = config.negative_visible == "samples"
        neg_v = W.new_empty(K * P, self.n_visible)
        neg_h = W.new_empty(K * P, self.n_hidden)
        v = state.particles
        n_rows = data.shape[0]
        for s in range(0, n_rows, B):
            vd = data[s:s + B]
            hd = torch.sigmoid(torch.addmm(b, vd, W))
            # negative phase: K Gibbs steps of P particles; states 1..K are the negatives
            hp = torch.sigmoid(torch.addmm(b, v, W))
            for k in range(K):
                hs = torch.bernoulli(hp, generator=g)
                v = torch.sigmoid(torch.addmm(a, hs, W.t()))
                if sample_visible:
                    v = torch.bernoulli(v, generator=g)
                hp = torch.sigmoid(torch.addmm(b, v, W))
                neg_v[k * P:(k + 1) * P] = v
                neg_h[k * P:(k + 1) * P] = hp
            gW = torch.addmm(neg_v.t() @ neg_h, vd.t(), hd, beta=-1.0 / (K * P), alpha=1.0 / vd.shape[0])
            if wd:
                gW.add_(W, alpha=-wd)
            ga = vd.mean(0) - neg_v.mean(0)
            gb = hd.mean(0) - neg_h.mean(0)
            dW.mul_(mom).add_(gW, alpha=lr)
            da.mul_(mom).add_(ga, alpha=lr)
            db.mul_(mom).add_(gb, alpha=lr)
            W.add_(dW)
            a.add_(da)
            b.add_(db)
        state.particles = v.clone()


def _generator_uniform(generator: torch.Generator, like: torch.Tensor) -> Callable[[tuple], torch.Tensor]:
    """U(0, 1) numbers of ``like``'s device and dtype from ``generator``."""
    def uniform(shape):
        return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)
    return uniform


def _bernoulli_draw(uniform: Callable[[tuple], torch.Tensor]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The authors' Bernoulli draw ``s(p) = (u < p)`` as 0/1 of ``p``'s dtype."""
    def draw(p):
        return (uniform(tuple(p.shape)) < p).to(p.dtype)
    return draw


def _authors_epoch(rbm: RBM, data: torch.Tensor, config: RBMConfig, velocity: tuple, P: torch.Tensor, lr, alpha,
                   draw: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The mini-batches of one epoch of the authors' recipe in data order (a last partial one dropped);
    returns the particles after it.  ``lr``, ``alpha`` as in ``_authors_step``."""
    B, K = config.batch_size, config.gibbs_steps
    neg_v = rbm.W.new_empty(K * P.shape[0], rbm.n_visible)
    neg_h = rbm.W.new_empty(K * P.shape[0], rbm.n_hidden)
    for s in range(0, data.shape[0] // B * B, B):
        P = _authors_step(rbm, velocity, P, data[s:s + B], neg_v, neg_h, lr, alpha, config.weight_decay, draw)
    return P


def _authors_step(rbm: RBM, velocity: tuple, P: torch.Tensor, vd: torch.Tensor, neg_v: torch.Tensor,
                  neg_h: torch.Tensor, lr, alpha, wd: float, draw: Callable[[torch.Tensor], torch.Tensor]):
    """One mini-batch ``vd`` of the authors' recipe: K = len(neg_v) / len(P) chunks of two Gibbs sweeps of
    the particles ``P``, then the update of the weights and ``velocity`` in place; returns the new particles.
    ``lr``, ``alpha``: numbers, or 0-d tensors (CUDA graphs replay one capture with each epoch's values)."""
    W, a, b = rbm.W, rbm.vbias, rbm.hbias
    dW, da, db = velocity
    n = P.shape[0]
    K = neg_v.shape[0] // n
    hd = torch.sigmoid(torch.addmm(b, vd, W))
    for k in range(K):
        v = torch.sigmoid(torch.addmm(a, draw(torch.sigmoid(torch.addmm(b, P, W))), W.t()))
        hk = torch.sigmoid(torch.addmm(b, v, W))
        P = torch.sigmoid(torch.addmm(a, draw(hk), W.t()))
        neg_v[k * n:(k + 1) * n] = v
        neg_h[k * n:(k + 1) * n] = hk
    gW = torch.addmm(neg_v.t() @ neg_h, vd.t(), hd, beta=-1.0 / (K * n), alpha=1.0 / vd.shape[0])
    dW.mul_(alpha).add_(gW)
    if wd:
        dW.add_(W, alpha=-wd)
    dW.mul_(lr)
    da.mul_(alpha).add_(vd.mean(0) - neg_v.mean(0)).mul_(lr)
    db.mul_(alpha).add_(hd.mean(0) - neg_h.mean(0)).mul_(lr)
    W.add_(dW)
    a.add_(da)
    b.add_(db)
    return P


@dataclass
class PCDState:
    """Training state besides the weights: momentum velocities (dW, dvbias, dhbias),
    persistent particles (n_particles, n_visible) and the layer's generator."""

    velocity: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    particles: torch.Tensor
    generator: torch.Generator

    @classmethod
    def initialise(cls, rbm: RBM, config: RBMConfig, generator: torch.Generator) -> "PCDState":
        dev = rbm.device
        vel = (torch.zeros_like(rbm.W), torch.zeros_like(rbm.vbias), torch.zeros_like(rbm.hbias))
        particles = torch.rand(config.n_particles, rbm.n_visible, generator=generator, device=dev)
        if config.negative_visible == "samples":
            particles = torch.bernoulli(particles, generator=generator)
        return cls(vel, particles, generator)

    def payload(self) -> dict:
        return {
            "velocity": [t.detach().cpu() for t in self.velocity],
            "particles": self.particles.detach().cpu(),
            "generator_state": self.generator.get_state(),
        }

    @classmethod
    def from_payload(cls, d: dict, device: torch.device) -> "PCDState":
        g = torch.Generator(device=device)
        g.set_state(d["generator_state"])
        return cls(tuple(t.to(device) for t in d["velocity"]), d["particles"].to(device), g)
