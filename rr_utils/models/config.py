"""Training recipe of one RBM (``RBMConfig``) and of a stack (``DBNConfig``): plain, frozen, hashable data."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["RBMConfig", "DBNConfig", "DEFAULT_HIDDEN_SIZES", "DEFAULT_CHECKPOINT_EPOCHS"]

DEFAULT_HIDDEN_SIZES = (500, 250, 120, 60, 30, 25, 20, 15, 10, 5, 3, 2)
DEFAULT_CHECKPOINT_EPOCHS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 200)


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
    init: str = "normal"  # "normal" (the authors' scripts, docs/paper.md §3) or "uniform" (Theano tutorial)
    init_gain: float = 4.0
    recipe: str = "authors"  # "authors" (the authors' update, default) or "classical" (our earlier variant)
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
        if self.recipe not in ("authors", "classical"):
            raise ValueError(f"recipe: 'authors' or 'classical', got {self.recipe!r}")
        if self.recipe == "authors" and self.negative_visible != "probs":
            raise ValueError("negative_visible: the authors' recipe keeps visible probabilities ('probs'); "
                             "'samples' exists in the classical recipe only")
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