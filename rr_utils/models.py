"""Bernoulli RBMs and greedily stacked deep belief networks (PyTorch).

Training recipe (paper-notes section 3, reconstructed from the authors'
scripts); every choice marked *(ours)* is not known from the paper.

Per layer (``RBMConfig``):

* Persistent contrastive divergence.  Mini-batches of ``batch_size`` = 100 rows
  in the fixed data order (no shuffling).  ``n_particles`` = 25 persistent
  visible particles are advanced ``gibbs_steps`` = 4 Gibbs steps per mini-batch
  and the 4 x 25 intermediate states form the 100 negative samples.
* One Gibbs step from visible particles ``v`` (``negative_visible="probs"``,
  default): ``h ~ Bernoulli(sigmoid(v W + b))``, ``v' = sigmoid(h W^T + a)``;
  the particle *is* the visible probability vector, as in the authors'
  generation code (visible = sigmoid(sampled hidden W^T + a)).  With
  ``negative_visible="samples"`` the particle is ``v' ~ Bernoulli(...)``
  instead (the deeplearning.net theano tutorial).
* Gradient (ascent direction), per mini-batch of B data rows and the N = 100
  negative states::

      g_W = v_data^T p(h|v_data) / B - v_neg^T p(h|v_neg) / N - weight_decay * W
      g_a = mean(v_data) - mean(v_neg)
      g_b = mean(p(h|v_data)) - mean(p(h|v_neg))

  i.e. the positive phase uses hidden probabilities given the data and the
  negative statistics use the chain's visible states (probabilities by
  default) and the hidden *probabilities* given them (the gradient of the
  free energy, as in theano-style ``T.grad(F(v_data) - F(v_neg))`` code).
  The L2 term ``weight_decay * W`` (= gradient of ``weight_decay/2 * ||W||^2``)
  acts on weights only, not biases.
* Update with classical momentum: ``delta = m_e * delta + lr_e * g``,
  ``param += delta`` (velocity kept across mini-batches and epochs).
* ``lr_e`` for the epoch with 0-based index ``e`` of ``n = epochs``::

      lr_e = lr                                 if e <  0.9 n
      lr_e = lr / (e + 1 - 0.9 n)               if e >= 0.9 n   (last 10 %)

  For n = 200 the decay starts at e = 180 (the 181st epoch) with exactly
  ``lr`` and ends at e = 199 with ``lr / 20``; the denominator is >= 1 for
  every n, so the rate never rises above ``lr``.
* ``m_e`` = 0.5, 0.4, 0.3, 0.2, 0.1 for e = 0..4 and 0 afterwards.
* Initial weights ``init_gain * sqrt(6 / (n_vis + n_hid)) * N(0, 1)`` with
  ``init_gain`` = 4 (``init="normal"``, as written in paper-notes section 3;
  ``init="uniform"`` gives the theano tutorial's U(-c, c) with the same c);
  biases 0.  Persistent particles start as U(0, 1) visible vectors *(ours)*.
* Every random draw (init, particles, Gibbs sampling) comes from one
  ``torch.Generator`` per layer seeded from ``(seed, layer)``; training runs
  in float32 under ``torch.use_deterministic_algorithms(True)`` with subnormal
  numbers flushed to zero (both restored afterwards).

Greedy stacking (``train_dbn``): layer l+1 is trained on ``sigmoid(x W + b)``
of the *fully trained* layer l (deterministic, continuous).

Monitoring *(ours)*: after each epoch the reconstruction error (mean squared
error of one deterministic up-down pass) and the stochastic pseudo-log-
likelihood (see ``RBM.pseudo_log_likelihood``) are computed on a fixed subset
of ``monitor_rows`` (default 1000) evenly spaced rows of the layer's training
input (and of the test input if given), with a monitoring generator re-seeded
each epoch so the same bits are flipped every epoch and training randomness is
untouched.

Cache: see ``train_dbn``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from rr_utils.io import atomic_write_bytes, remove_stale_temps

__all__ = [
    "RBMConfig",
    "DBNConfig",
    "RBM",
    "PCDState",
    "DBN",
    "CheckpointError",
    "train_dbn",
    "load_dbn",
    "cache_key",
    "array_checksum",
    "resolve_device",
    "default_cache_dir",
]

logger = logging.getLogger(__name__)

DEFAULT_HIDDEN_SIZES = (500, 250, 120, 60, 30, 25, 20, 15, 10, 5, 3, 2)
DEFAULT_CHECKPOINT_EPOCHS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 200)
_CKPT_MAGIC = b"RRDBNCKPT1"
_ROOT = Path(__file__).resolve().parents[1]
_UP_BATCH = 8192  # rows per batch when propagating data (fixed: results must not depend on it)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupted or belongs to another key."""


# --------------------------------------------------------------------------- configs


@dataclass(frozen=True)
class RBMConfig:
    """Training recipe of one RBM layer (plain, frozen, hashable data).

    ``device`` ("auto", "cpu", "cuda", "cuda:1", ...) is not part of the cache
    key; the *resolved* device type is (see ``cache_key``).
    """

    epochs: int = 200
    batch_size: int = 100
    lr: float = 0.1
    momentum_schedule: tuple[float, ...] = (0.5, 0.4, 0.3, 0.2, 0.1)
    weight_decay: float = 1e-4
    n_particles: int = 25
    gibbs_steps: int = 4
    negative_visible: str = "probs"  # "probs" (authors' style) or "samples"
    init: str = "normal"  # "normal" (paper-notes) or "uniform" (theano tutorial)
    init_gain: float = 4.0
    checkpoint_epochs: tuple[int, ...] = DEFAULT_CHECKPOINT_EPOCHS
    monitor_rows: int | None = 1000  # None: monitor on all rows
    seed: int = 0
    device: str = "auto"

    def __post_init__(self):
        object.__setattr__(self, "momentum_schedule", tuple(float(m) for m in self.momentum_schedule))
        object.__setattr__(self, "checkpoint_epochs", tuple(int(e) for e in self.checkpoint_epochs))
        for name in ("epochs", "batch_size", "n_particles", "gibbs_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name}: expected a positive integer, got {v!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr: expected a positive finite number, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay: expected >= 0, got {self.weight_decay!r}")
        if any(e < 0 for e in self.checkpoint_epochs):
            raise ValueError(f"checkpoint_epochs: negative epoch in {self.checkpoint_epochs}")
        if self.negative_visible not in ("probs", "samples"):
            raise ValueError(f"negative_visible: 'probs' or 'samples', got {self.negative_visible!r}")
        if self.init not in ("normal", "uniform"):
            raise ValueError(f"init: 'normal' or 'uniform', got {self.init!r}")
        if self.monitor_rows is not None and self.monitor_rows < 1:
            raise ValueError(f"monitor_rows: expected None or >= 1, got {self.monitor_rows!r}")

    # schedules ------------------------------------------------------------
    def learning_rate(self, epoch: int) -> float:
        """Learning rate of the epoch with 0-based index ``epoch`` (see module doc)."""
        n = self.epochs
        start = 0.9 * n
        if epoch >= start:
            return self.lr / (epoch + 1 - start)
        return self.lr

    def momentum(self, epoch: int) -> float:
        """Momentum of the epoch with 0-based index ``epoch``."""
        return self.momentum_schedule[epoch] if epoch < len(self.momentum_schedule) else 0.0

    def checkpoint_schedule(self) -> tuple[int, ...]:
        """Checkpoint epochs clipped to ``<= epochs``, always including ``epochs``."""
        return tuple(sorted({e for e in self.checkpoint_epochs if e <= self.epochs} | {self.epochs}))

    # keys -------------------------------------------------------------------
    def as_key_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("device")
        d["__class__"] = type(self).__name__
        return d

    def key(self) -> str:
        """Stable sha256 of the fields (``device`` excluded)."""
        return hashlib.sha256(json.dumps(self.as_key_dict(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class DBNConfig(RBMConfig):
    """``RBMConfig`` (used for every layer) plus the hidden layer sizes.

    ``hidden_sizes`` of length 1 is a single RBM.
    """

    hidden_sizes: tuple[int, ...] = DEFAULT_HIDDEN_SIZES

    def __post_init__(self):
        super().__post_init__()
        sizes = tuple(int(s) for s in self.hidden_sizes)
        if not sizes or any(s < 1 for s in sizes):
            raise ValueError(f"hidden_sizes: expected a non-empty list of positive ints, got {self.hidden_sizes!r}")
        object.__setattr__(self, "hidden_sizes", sizes)

    def rbm_config(self) -> RBMConfig:
        d = dataclasses.asdict(self)
        d.pop("hidden_sizes")
        return RBMConfig(**d)


# --------------------------------------------------------------------------- helpers


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> cuda if available else cpu."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def default_cache_dir() -> Path:
    """``$RR_CACHE_DIR/models`` if set, else ``<repo>/cache/models`` (git-ignored)."""
    base = os.environ.get("RR_CACHE_DIR")
    return (Path(base) if base else _ROOT / "cache") / "models"


def array_checksum(arr) -> str:
    """sha256 of an array's dtype, shape and C-order bytes (a ``data_id``)."""
    a = np.ascontiguousarray(_to_numpy(arr))
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _source_sha256() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def cache_key(config: DBNConfig, data_id: str, device: str | torch.device | None = None) -> str:
    """sha256 of (config fields except ``device``, data_id, resolved device type,
    torch version, sha256 of this file's source)."""
    dev = resolve_device(config.device if device is None else device)
    payload = {
        "config": config.as_key_dict(),
        "data_id": str(data_id),
        "device_type": dev.type,
        "torch": torch.__version__.split("+")[0],
        "source_sha256": _source_sha256(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


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


def _check_data(data, name: str, n_visible: int | None = None) -> np.ndarray | torch.Tensor:
    if isinstance(data, torch.Tensor):
        arr = data
        bad_range = bool(((arr < 0) | (arr > 1) | ~torch.isfinite(arr)).any())
    else:
        arr = np.asarray(data)
        if not np.issubdtype(arr.dtype, np.number) and arr.dtype != np.bool_:
            raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
        bad_range = arr.size > 0 and bool(((arr < 0) | (arr > 1) | ~np.isfinite(arr)).any())
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: expected a non-empty 2-D (rows, visible) array, got shape {tuple(arr.shape)}")
    if bad_range:
        raise ValueError(f"{name}: values must be finite probabilities in [0, 1]")
    if n_visible is not None and arr.shape[1] != n_visible:
        raise ValueError(f"{name}: expected {n_visible} columns, got {arr.shape[1]}")
    return arr


def _monitor_index(n_rows: int, monitor_rows: int | None) -> np.ndarray:
    if monitor_rows is None or monitor_rows >= n_rows:
        return np.arange(n_rows)
    return np.unique(np.linspace(0, n_rows - 1, monitor_rows).round().astype(np.int64))


# --------------------------------------------------------------------------- RBM


class RBM:
    """Bernoulli-Bernoulli RBM: ``W`` (n_visible, n_hidden), ``vbias``, ``hbias`` (float32).

    Methods take arrays or tensors of shape (rows, n_visible|n_hidden) and
    return tensors on ``self.device``.
    """

    def __init__(self, W: torch.Tensor, vbias: torch.Tensor, hbias: torch.Tensor):
        self.W = W.to(torch.float32)
        self.vbias = vbias.to(device=self.W.device, dtype=torch.float32)
        self.hbias = hbias.to(device=self.W.device, dtype=torch.float32)
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

    def reconstruction_error(self, v, batch_size: int = _UP_BATCH) -> float:
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
    def fit_epoch(self, data: torch.Tensor, epoch: int, config: RBMConfig, state: "PCDState") -> None:
        """One epoch (0-based index ``epoch``) of PCD on ``data`` (rows in [0, 1],
        float32 tensor on ``self.device``), mini-batches in data order.
        Updates the weights, ``state.velocity`` and ``state.particles`` in place."""
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
        neg_v = torch.empty(K * P, self.n_visible, device=self.device)
        neg_h = torch.empty(K * P, self.n_hidden, device=self.device)
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


# --------------------------------------------------------------------------- checkpoints


def _ckpt_path(folder: Path, layer: int, epoch: int) -> Path:
    return folder / f"layer{layer:02d}_epoch{epoch:04d}.pt"


def _save_checkpoint(path: Path, payload: dict) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    body = buf.getvalue()
    digest = hashlib.sha256(body).hexdigest().encode()
    atomic_write_bytes(path, _CKPT_MAGIC + b"\n" + digest + b"\n" + body)


def _load_checkpoint(path: Path, key: str, layer: int, epoch: int) -> dict:
    """Load and verify (magic, sha256 of the payload, stored key/layer/epoch)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from exc
    head = len(_CKPT_MAGIC) + 1 + 64 + 1
    if len(raw) < head or not raw.startswith(_CKPT_MAGIC + b"\n"):
        raise CheckpointError(f"{path}: not a checkpoint or truncated header")
    digest = raw[len(_CKPT_MAGIC) + 1:head - 1].decode("ascii", "replace")
    body = raw[head:]
    if hashlib.sha256(body).hexdigest() != digest:
        raise CheckpointError(f"{path}: sha256 mismatch (truncated or corrupted)")
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as exc:  # a matching checksum makes this unlikely
        raise CheckpointError(f"{path}: cannot be unpickled ({exc})") from exc
    if payload.get("key") != key or payload.get("layer") != layer or payload.get("epoch") != epoch:
        raise CheckpointError(f"{path}: stored key/layer/epoch do not match the expected ones")
    return payload


def _try_load(path: Path, key: str, layer: int, epoch: int) -> dict | None:
    """Payload, or None if missing; warns (and returns None) if invalid."""
    if not path.exists():
        return None
    try:
        return _load_checkpoint(path, key, layer, epoch)
    except FileNotFoundError:
        return None
    except CheckpointError as exc:
        warnings.warn(f"ignoring invalid checkpoint, it will be recomputed: {exc}", RuntimeWarning, stacklevel=3)
        return None


# --------------------------------------------------------------------------- DBN


class _LayerCheckpoints:
    """``dbn.checkpoints[layer]``: mapping epoch -> RBM (loaded lazily, verified)."""

    def __init__(self, dbn: "DBN", layer: int):
        self._dbn, self._layer, self._cache = dbn, layer, {}

    def keys(self) -> tuple[int, ...]:
        return self._dbn.checkpoint_epochs

    def __iter__(self) -> Iterator[int]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, epoch) -> bool:
        return epoch in self.keys()

    def items(self):
        return ((e, self[e]) for e in self.keys())

    def __getitem__(self, epoch: int) -> RBM:
        if epoch not in self.keys():
            raise KeyError(f"epoch {epoch} is not a checkpoint epoch {self.keys()}")
        if epoch not in self._cache:
            d = self._dbn
            if d.folder is None:
                raise CheckpointError("this DBN has no cache folder")
            path = _ckpt_path(d.folder, self._layer, epoch)
            try:
                payload = _load_checkpoint(path, d.key, self._layer, epoch)
            except FileNotFoundError:
                raise CheckpointError(f"{path}: missing; rerun train_dbn to recompute it") from None
            except CheckpointError as exc:
                raise CheckpointError(f"{exc}; rerun train_dbn to recompute it") from None
            self._cache[epoch] = RBM.from_state_dict(payload["rbm"], d.device)
        return self._cache[epoch]


class _Checkpoints:
    def __init__(self, dbn: "DBN"):
        self._layers = [_LayerCheckpoints(dbn, l) for l in range(dbn.n_layers)]

    def __getitem__(self, layer: int) -> _LayerCheckpoints:
        return self._layers[layer]

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self):
        return iter(self._layers)


class DBN:
    """Greedily trained stack of RBMs (final weights) with lazy access to the
    checkpoints (``dbn.checkpoints[layer][epoch]`` -> RBM) and the training
    ``history`` (list of dicts, one per layer and epoch, epoch 0 = untrained).

    Layer indices are 0-based: layer 0 is the first hidden layer (784 -> 500).
    ``checkpoints[l][e]`` is layer l's RBM after e epochs of its own training;
    in the greedy scheme it was trained on the output of the *fully trained*
    lower layers (``checkpoints[l][0]`` is its untrained initialisation).
    """

    def __init__(self, rbms: Sequence[RBM], config: DBNConfig | None = None, history: list | None = None,
                 folder: Path | None = None, key: str | None = None, data_id: str | None = None,
                 test_id: str | None = None):
        self.rbms = list(rbms)
        for lo, hi in zip(self.rbms, self.rbms[1:]):
            if lo.n_hidden != hi.n_visible:
                raise ValueError("consecutive RBMs have mismatched sizes")
        self.config = config
        self.history = list(history or [])
        self.folder = None if folder is None else Path(folder)
        self.key = key
        self.data_id = data_id
        self.test_id = test_id
        self.checkpoints = _Checkpoints(self)

    @property
    def n_layers(self) -> int:
        return len(self.rbms)

    @property
    def sizes(self) -> tuple[int, ...]:
        """(n_visible, hidden sizes...)."""
        return (self.rbms[0].n_visible, *(r.n_hidden for r in self.rbms))

    @property
    def device(self) -> torch.device:
        return self.rbms[0].device

    @property
    def checkpoint_epochs(self) -> tuple[int, ...]:
        return self.config.checkpoint_schedule() if self.config is not None else ()

    def layer_params(self) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``[(W, vbias, hbias), ...]`` per layer (the format of ``rr_utils.generation``)."""
        return [(r.W, r.vbias, r.hbias) for r in self.rbms]

    def at_epoch(self, epoch: int) -> "DBN":
        """A DBN whose every layer is its checkpoint at ``epoch`` (e.g. 0: all layers
        untrained).  Note each layer l at epoch e was trained on the *final* lower
        layers' output, so this mixes checkpoints taken in different contexts."""
        return DBN([self.checkpoints[l][epoch] for l in range(self.n_layers)], self.config, self.history,
                   self.folder, self.key, self.data_id, self.test_id)

    def to(self, device) -> "DBN":
        return DBN([r.to(device) for r in self.rbms], self.config, self.history, self.folder, self.key,
                   self.data_id, self.test_id)

    def __repr__(self) -> str:
        return f"DBN(sizes={self.sizes}, device={self.device}, key={None if self.key is None else self.key[:12]})"

    def _upto(self, upto: int | None) -> int:
        if upto is None:
            return self.n_layers
        if not 1 <= upto <= self.n_layers:
            raise ValueError(f"upto: expected 1..{self.n_layers}, got {upto}")
        return upto

    def _batches(self, x, batch_size: int) -> Iterator[torch.Tensor]:
        x = _check_data(x, "x", self.sizes[0])
        for s in range(0, x.shape[0], batch_size):
            yield _as_tensor(x[s:s + batch_size], self.device)

    @torch.no_grad()
    def up_pass(self, x, upto: int | None = None, batch_size: int = _UP_BATCH) -> list[np.ndarray]:
        """Deterministic upward pass: ``[p(h1|x), p(h2|p(h1|x)), ...]`` as float32
        numpy arrays (rows, n_l), for the first ``upto`` layers (all by default)."""
        L = self._upto(upto)
        out: list[list[np.ndarray]] = [[] for _ in range(L)]
        for xb in self._batches(x, batch_size):
            for l in range(L):
                xb = self.rbms[l].hidden_probs(xb)
                out[l].append(xb.cpu().numpy())
        return [np.concatenate(o) for o in out]

    @torch.no_grad()
    def binary_states(self, x, threshold: float = 0.5, upto: int | None = None,
                      batch_size: int = _UP_BATCH) -> list[np.ndarray]:
        """Deterministic states per layer: ``p(h_l|...) > threshold`` (strict: a
        probability of exactly 0.5 maps to 0) on the probability up-pass; a list of
        bool arrays (rows, n_l)."""
        L = self._upto(upto)
        out: list[list[np.ndarray]] = [[] for _ in range(L)]
        for xb in self._batches(x, batch_size):
            for l in range(L):
                xb = self.rbms[l].hidden_probs(xb)
                out[l].append((xb > threshold).cpu().numpy())
        return [np.concatenate(o) for o in out]

    @torch.no_grad()
    def sampled_states(self, x, n_samples: int = 1, generator: torch.Generator | int | None = None,
                       upto: int | None = None, batch_size: int = 2048) -> list[np.ndarray]:
        """Stochastic states: the upward pass uses probabilities (as in
        ``up_pass``); at each layer ``n_samples`` independent states are drawn from
        ``p(h_l|...)``.  Returns per layer a bool array (n_samples, rows, n_l).

        ``generator``: a CPU torch.Generator, an int seed, or None (seed 0).  Draws are
        made on the CPU, batch by batch then layer by layer, so the result depends on
        the generator and ``batch_size`` only (not on the device)."""
        if isinstance(n_samples, bool) or int(n_samples) < 1:
            raise ValueError(f"n_samples: expected a positive integer, got {n_samples!r}")
        if not isinstance(generator, torch.Generator):
            generator = _generator(torch.device("cpu"), 0 if generator is None else int(generator))
        if generator.device.type != "cpu":
            raise ValueError("generator: expected a CPU torch.Generator")
        L = self._upto(upto)
        out: list[list[np.ndarray]] = [[] for _ in range(L)]
        for xb in self._batches(x, batch_size):
            for l in range(L):
                xb = self.rbms[l].hidden_probs(xb)
                p = xb.cpu()
                u = torch.rand((int(n_samples), *p.shape), generator=generator)
                out[l].append((u < p).numpy())
        return [np.concatenate(o, axis=1) for o in out]

    @torch.no_grad()
    def down_pass(self, h, layer: int, batch_size: int = _UP_BATCH) -> np.ndarray:
        """Project states/probabilities of hidden layer ``layer`` (0-based) down to
        the visible units deterministically: ``v = p(v|h)`` through layers
        ``layer, ..., 0``; returns float32 (rows, n_visible)."""
        if not 0 <= layer < self.n_layers:
            raise ValueError(f"layer: expected 0..{self.n_layers - 1}, got {layer}")
        h = _to_numpy(h) if not isinstance(h, torch.Tensor) else h
        outs = []
        for s in range(0, h.shape[0], batch_size):
            hb = _as_tensor(h[s:s + batch_size], self.device)
            for l in range(layer, -1, -1):
                hb = self.rbms[l].visible_probs(hb)
            outs.append(hb.cpu().numpy())
        return np.concatenate(outs)


# --------------------------------------------------------------------------- training


def _is_interactive() -> bool:
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


@torch.no_grad()
def _propagate(rbm: RBM, x: torch.Tensor) -> torch.Tensor:
    """Deterministic next-layer input, in fixed-size batches (bitwise stable)."""
    out = torch.empty(x.shape[0], rbm.n_hidden, device=x.device)
    for s in range(0, x.shape[0], _UP_BATCH):
        out[s:s + _UP_BATCH] = rbm.hidden_probs(x[s:s + _UP_BATCH])
    return out


@torch.no_grad()
def _monitor(rbm: RBM, config: RBMConfig, layer: int, x: torch.Tensor, idx: torch.Tensor) -> tuple[float, float]:
    sub = x[idx]
    g = _generator(rbm.device, _seed_for(config.seed, layer, 1))
    return rbm.reconstruction_error(sub), float(rbm.pseudo_log_likelihood(sub, generator=g).mean())


class _LazyInputs:
    """Layer inputs computed only when a layer actually needs training."""

    def __init__(self, x0: torch.Tensor | None):
        self.x, self.level = x0, 0

    def get(self, rbms: list[RBM], layer: int) -> torch.Tensor | None:
        if self.x is None:
            return None
        while self.level < layer:
            self.x = _propagate(rbms[self.level], self.x)
            self.level += 1
        return self.x


STALE_TEMP_S = 600  # a checkpoint write takes about a second: older temp files are leftovers of a killed run


def _write_meta(folder: Path, meta: dict) -> None:
    """meta.json describes the run that made the folder's checkpoints: kept while its key
    matches, rewritten when it is unreadable or belongs to another key."""
    path = folder / "meta.json"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if json.loads(path.read_text()).get("key") == meta["key"]:
            return
    atomic_write_bytes(path, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())




@torch.no_grad()
def train_dbn(config: DBNConfig, data, cache_dir: str | os.PathLike | None = None, data_id: str | None = None,
              progress: bool | None = None, log: Callable[[dict], None] | None = None, test_data=None,
              test_id: str | None = None, num_threads: int | None = None) -> DBN:
    """Train (or load from the cache) a greedily stacked DBN.

    ``data``: (rows, n_visible) array/tensor of probabilities in [0, 1] (e.g.
    MNIST / 255).  ``data_id``: a checksum of ``data`` supplied by the caller
    (``array_checksum(data)`` if None).  ``test_data``: optional array whose
    reconstruction error / PLL are logged too (``test_id`` as for data_id); it
    is *not* part of the cache key (a cached run keeps the history it was
    trained with; a differing test_id triggers a warning).

    Cache: ``<cache_dir or default_cache_dir()>/dbn-<key[:24]>/`` holds
    ``meta.json`` and ``layerLL_epochEEEE.pt`` for each layer and checkpoint
    epoch; ``key = cache_key(config, data_id)``.  Each file holds a sha256 of its
    payload (verified on load, with the stored key/layer/epoch); an invalid file
    is reported with ``warnings.warn`` and recomputed from the last valid
    checkpoint before it.  A run whose final checkpoints are all present loads
    them; an interrupted run resumes from its last checkpoint (weights, momentum
    velocity, particles, generator state, history) and gives bitwise the same
    result as an uninterrupted run on the same device.

    ``progress``: tqdm bar per layer; None -> shown only if stderr is a tty.
    ``log``: called with each history record (dict) after each epoch, once that
    epoch's checkpoint (if any) is saved.
    ``num_threads``: torch CPU threads during the call (None: leave as set).  The
    bits of the result depend on the thread count (BLAS partitioning), which is
    therefore recorded in the checkpoints (not in the key); resuming with another
    count warns.  On a shared 2-core machine, 1 thread avoids OpenMP
    oversubscription stalls when other processes use the CPUs.
    """
    if not isinstance(config, DBNConfig):
        raise TypeError(f"config: expected DBNConfig, got {type(config).__name__}")
    data = _check_data(data, "data")
    n_visible = int(data.shape[1])
    if data_id is None:
        data_id = array_checksum(data)
    if test_data is not None:
        test_data = _check_data(test_data, "test_data", n_visible)
        if test_id is None:
            test_id = array_checksum(test_data)
    device = resolve_device(config.device)
    key = cache_key(config, data_id, device)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / f"dbn-{key[:24]}"
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder, STALE_TEMP_S)
    _write_meta(folder, {
        "key": key, "config": dataclasses.asdict(config), "data_id": data_id, "device_type": device.type,
        "torch": torch.__version__, "source_sha256": _source_sha256(), "n_visible": n_visible,
        "n_rows": int(data.shape[0]), "test_id": test_id, "num_threads": num_threads or torch.get_num_threads(),
    })
    show = _is_interactive() if progress is None else bool(progress)

    prev_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(int(num_threads))
    try:
        with _deterministic(device):
            return _train_all(config, data, test_data, data_id, test_id, device, key, folder, show, log)
    finally:
        torch.set_num_threads(prev_threads)


def _train_all(config, data, test_data, data_id, test_id, device, key, folder, show, log) -> DBN:
    schedule = config.checkpoint_schedule()
    rcfg = config.rbm_config()
    n_visible = int(data.shape[1])
    x_train = _LazyInputs(_as_tensor(data, device))
    x_test = _LazyInputs(None if test_data is None else _as_tensor(test_data, device))
    rbms: list[RBM] = []
    history: list[dict] = []
    n_in = n_visible
    for layer, n_hid in enumerate(config.hidden_sizes):
        rbm, hist = _train_layer(layer, n_in, n_hid, rcfg, schedule, key, folder, device, rbms,
                                 x_train, x_test, test_id, show, log, len(config.hidden_sizes))
        rbms.append(rbm)
        history.extend(hist)
        n_in = n_hid
    return DBN(rbms, config, history, folder, key, data_id, test_id)


def _train_layer(layer, n_in, n_hid, cfg: RBMConfig, schedule, key, folder, device, lower: list[RBM],
                 x_train: _LazyInputs, x_test: _LazyInputs, test_id, show, log, n_layers):
    final = schedule[-1]

    def load(epoch):
        return _try_load(_ckpt_path(folder, layer, epoch), key, layer, epoch)

    # resume point: last checkpoint of the longest valid prefix of the schedule
    start_payload = None
    pos = 0  # index into schedule of the next checkpoint to produce
    while pos < len(schedule):
        p = load(schedule[pos])
        if p is None:
            break
        start_payload, pos = p, pos + 1

    if start_payload is not None and start_payload["epoch"] == final:
        if test_id != start_payload.get("test_id"):
            warnings.warn(f"layer {layer}: cached history was logged with test_id={start_payload.get('test_id')!r}, "
                          f"not {test_id!r}", RuntimeWarning, stacklevel=3)
        logger.info("layer %d: loaded from cache %s", layer, folder)
        return RBM.from_state_dict(start_payload["rbm"], device), list(start_payload["history"])

    if start_payload is not None:
        rbm = RBM.from_state_dict(start_payload["rbm"], device)
        state = PCDState.from_payload(start_payload["state"], device)
        history = list(start_payload["history"])
        epoch = start_payload["epoch"]
        if test_id != start_payload.get("test_id"):
            warnings.warn(f"layer {layer}: resuming a run logged with test_id={start_payload.get('test_id')!r}",
                          RuntimeWarning, stacklevel=3)
        if start_payload.get("num_threads") != torch.get_num_threads():
            warnings.warn(f"layer {layer}: resuming a run trained with {start_payload.get('num_threads')} torch "
                          f"threads using {torch.get_num_threads()}: not bitwise identical to an "
                          "uninterrupted run", RuntimeWarning, stacklevel=3)
    else:
        g = _generator(device, _seed_for(cfg.seed, layer))
        rbm = RBM.initialise(n_in, n_hid, g, init=cfg.init, gain=cfg.init_gain, device=device)
        state = PCDState.initialise(rbm, cfg, g)
        history, epoch = [], 0

    x = x_train.get(lower, layer)
    xt = x_test.get(lower, layer)
    idx = torch.as_tensor(_monitor_index(x.shape[0], cfg.monitor_rows), device=device)
    idx_t = None if xt is None else torch.as_tensor(_monitor_index(xt.shape[0], cfg.monitor_rows), device=device)

    def record(ep, seconds):
        rec = {"layer": layer, "epoch": ep, "n_visible": n_in, "n_hidden": n_hid,
               "lr": cfg.learning_rate(ep - 1) if ep > 0 else None,
               "momentum": cfg.momentum(ep - 1) if ep > 0 else None, "seconds": seconds}
        rec["train_recon"], rec["train_pll"] = _monitor(rbm, cfg, layer, x, idx)
        if xt is not None:
            rec["test_recon"], rec["test_pll"] = _monitor(rbm, cfg, layer, xt, idx_t)
        return rec

    def save(ep):
        _save_checkpoint(_ckpt_path(folder, layer, ep), {
            "key": key, "layer": layer, "epoch": ep, "test_id": test_id, "num_threads": torch.get_num_threads(),
            "device_type": device.type, "rbm": rbm.state_dict(),
            "state": state.payload(), "history": history})

    if epoch == 0 and not history:
        rec = record(0, 0.0)
        history.append(rec)
        if 0 in schedule:
            save(0)
        if log is not None:
            log(rec)

    from tqdm.auto import tqdm
    bar = tqdm(total=cfg.epochs, initial=epoch, disable=not show, leave=False,
               desc=f"layer {layer + 1}/{n_layers} ({n_in}->{n_hid})")
    try:
        while epoch < cfg.epochs:
            t0 = time.perf_counter()
            rbm.fit_epoch(x, epoch, cfg, state)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            epoch += 1
            rec = record(epoch, time.perf_counter() - t0)
            history.append(rec)
            if epoch in schedule:
                save(epoch)
            bar.update(1)
            bar.set_postfix(recon=f"{rec['train_recon']:.4f}", pll=f"{rec['train_pll']:.1f}")
            if log is not None:
                log(rec)
    finally:
        bar.close()
    return rbm, history


def load_dbn(config: DBNConfig, data_id: str, cache_dir: str | os.PathLike | None = None) -> DBN:
    """Load a fully trained DBN from the cache without the data (raises
    ``CheckpointError`` if any layer's final checkpoint is missing or invalid)."""
    device = resolve_device(config.device)
    key = cache_key(config, data_id, device)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / f"dbn-{key[:24]}"
    final = config.checkpoint_schedule()[-1]
    rbms, history, test_id = [], [], None
    for layer in range(len(config.hidden_sizes)):
        path = _ckpt_path(folder, layer, final)
        try:
            payload = _load_checkpoint(path, key, layer, final)
        except FileNotFoundError:
            raise CheckpointError(f"{path}: missing; train with train_dbn first") from None
        rbms.append(RBM.from_state_dict(payload["rbm"], device))
        history.extend(payload["history"])
        test_id = payload.get("test_id")
    return DBN(rbms, config, history, folder, key, data_id, test_id)
