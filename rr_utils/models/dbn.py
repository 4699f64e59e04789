"""A greedily trained stack of RBMs (``DBN``): deterministic and sampled states per layer,
lazy verified access to every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from rr_utils.models.checkpoints import CheckpointError, _ckpt_path, _load_checkpoint
from rr_utils.models.config import DBNConfig
from rr_utils.models.rbm import RBM, UP_BATCH, _as_tensor, _generator

__all__ = ["DBN", "CacheEntry"]


@dataclass(frozen=True)
class CacheEntry:
    """The constants of one training run: where its checkpoints live and what they were made from."""

    folder: Path
    key: str
    data_id: str
    test_id: str | None = None


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
                 entry: CacheEntry | None = None):
        self.rbms = list(rbms)
        for lo, hi in zip(self.rbms, self.rbms[1:]):
            if lo.n_hidden != hi.n_visible:
                raise ValueError("consecutive RBMs have mismatched sizes")
        self.config = config
        self.history = list(history or [])
        self.entry = entry
        self.checkpoints = _Checkpoints(self)

    # where the network is cached (None for a network built in memory)
    folder = property(lambda self: None if self.entry is None else self.entry.folder)
    key = property(lambda self: None if self.entry is None else self.entry.key)
    data_id = property(lambda self: None if self.entry is None else self.entry.data_id)
    test_id = property(lambda self: None if self.entry is None else self.entry.test_id)

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
        return DBN([self.checkpoints[l][epoch] for l in range(self.n_layers)], self.config, self.history, self.entry)

    def to(self, device) -> "DBN":
        return DBN([r.to(device) for r in self.rbms], self.config, self.history, self.entry)

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
    def binary_states(self, x, threshold: float = 0.5, upto: int | None = None,
                      batch_size: int = UP_BATCH) -> list[np.ndarray]:
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
