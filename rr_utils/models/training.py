"""Greedy training of a DBN with a checkpoint cache (``train_dbn``) and loading from it (``load_dbn``)."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from rr_utils.devices import resolve_device
from rr_utils.io import remove_stale_temps
from rr_utils.models.cache import array_checksum, cache_key, compute_sha256, default_cache_dir, entry_lock
from rr_utils.progress import show_progress
from rr_utils.models.checkpoints import (STALE_TEMP_S, CheckpointError, _ckpt_path, _load_checkpoint,
                                         _save_checkpoint, _try_load, _write_meta)
from rr_utils.models.config import DBNConfig, RBMConfig
from rr_utils.models.cuda_graphs import epoch_runner, uses_graphs
from rr_utils.models.dbn import DBN, CacheEntry, _check_data
from rr_utils.models.rbm import RBM, UP_BATCH, PCDState, _as_tensor, _deterministic, _generator, _seed_for

__all__ = ["train_dbn", "load_dbn"]

logger = logging.getLogger("rr_utils.models")


@torch.no_grad()
def _propagate(rbm: RBM, x: torch.Tensor) -> torch.Tensor:
    """Deterministic next-layer input, in fixed-size batches (bitwise stable)."""
    out = torch.empty(x.shape[0], rbm.n_hidden, device=x.device)
    for s in range(0, x.shape[0], UP_BATCH):
        out[s:s + UP_BATCH] = rbm.hidden_probs(x[s:s + UP_BATCH])
    return out


@torch.no_grad()
def _monitor(rbm: RBM, config: RBMConfig, layer: int, x: torch.Tensor, idx: torch.Tensor) -> tuple[float, float]:
    sub = x[idx]
    g = _generator(rbm.device, _seed_for(config.seed, layer, 1))
    return rbm.reconstruction_error(sub), float(rbm.pseudo_log_likelihood(sub, generator=g).mean())


def _monitor_index(n_rows: int, monitor_rows: int | None) -> np.ndarray:
    if monitor_rows is None or monitor_rows >= n_rows:
        return np.arange(n_rows)
    return np.unique(np.linspace(0, n_rows - 1, monitor_rows).round().astype(np.int64))


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


@dataclass(frozen=True)
class _Run:
    """The constants of one ``train_dbn`` call, shared by every layer."""

    config: DBNConfig
    entry: CacheEntry
    device: torch.device
    show: bool  # tqdm bar per layer
    log: Callable[[dict], None] | None

    @property
    def layer_config(self) -> RBMConfig:
        return self.config.rbm_config()

    @property
    def schedule(self) -> tuple[int, ...]:
        return self.config.checkpoint_schedule()


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
    result as an uninterrupted run on the same device.  Processes asking for
    the same entry at once train it once: the first holds the entry's lock
    (``cache.entry_lock``), the others wait, then load and verify its files.

    ``progress``: tqdm.auto bar per layer; None -> ``rr_utils.progress.show_progress`` (a
    terminal or a Jupyter kernel, unless RR_PROGRESS=0).
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
    with entry_lock(folder):  # one trainer per entry; the others wait here, then load its checkpoints
        remove_stale_temps(folder, STALE_TEMP_S)
        _write_meta(folder, {
            "key": key, "config": dataclasses.asdict(config), "data_id": data_id, "device_type": device.type,
            "torch": torch.__version__, "compute_sha256": compute_sha256(), "n_visible": n_visible,
            "n_rows": int(data.shape[0]), "test_id": test_id, "num_threads": num_threads or torch.get_num_threads(),
            "cuda_graphs": uses_graphs(config, device),
        })
        run = _Run(config, CacheEntry(folder, key, data_id, test_id), device,
                   show_progress(progress), log)
        prev_threads = torch.get_num_threads()
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        try:
            with _deterministic(device):
                return _train_all(run, data, test_data)
        finally:
            torch.set_num_threads(prev_threads)


def _train_all(run: _Run, data, test_data) -> DBN:
    x_train = _LazyInputs(_as_tensor(data, run.device))
    x_test = _LazyInputs(None if test_data is None else _as_tensor(test_data, run.device))
    rbms: list[RBM] = []
    history: list[dict] = []
    n_in = int(data.shape[1])
    for layer, n_hid in enumerate(run.config.hidden_sizes):
        rbm, hist = _train_layer(run, layer, n_in, n_hid, rbms, x_train, x_test)
        rbms.append(rbm)
        history.extend(hist)
        n_in = n_hid
    return DBN(rbms, run.config, history, run.entry)


def _resume_point(run: _Run, layer: int) -> dict | None:
    """Payload of the last checkpoint of the longest valid prefix of the schedule (None: start afresh)."""
    payload = None
    for epoch in run.schedule:
        p = _try_load(_ckpt_path(run.entry.folder, layer, epoch), run.entry.key, layer, epoch)
        if p is None:
            break
        payload = p
    return payload


def _start_layer(run: _Run, layer: int, n_in: int, n_hid: int, payload: dict | None):
    """(rbm, PCD state, history, epoch) to continue from: a checkpoint, or a fresh initialisation."""
    cfg, device = run.layer_config, run.device
    if payload is None:
        g = _generator(device, _seed_for(cfg.seed, layer))
        rbm = RBM.initialise(n_in, n_hid, g, init=cfg.init, gain=cfg.init_gain, device=device)
        return rbm, PCDState.initialise(rbm, cfg, g), [], 0
    if run.entry.test_id != payload.get("test_id"):
        warnings.warn(f"layer {layer}: resuming a run logged with test_id={payload.get('test_id')!r}",
                      RuntimeWarning, stacklevel=4)
    if payload.get("num_threads") != torch.get_num_threads():
        warnings.warn(f"layer {layer}: resuming a run trained with {payload.get('num_threads')} torch "
                      f"threads using {torch.get_num_threads()}: not bitwise identical to an "
                      "uninterrupted run", RuntimeWarning, stacklevel=4)
    return (RBM.from_state_dict(payload["rbm"], device), PCDState.from_payload(payload["state"], device),
            list(payload["history"]), payload["epoch"])


def _record(run: _Run, rbm: RBM, layer: int, epoch: int, seconds: float, x, idx, xt, idx_t) -> dict:
    """One history entry: the epoch's schedule and the monitoring numbers on train (and test)."""
    cfg = run.layer_config
    rec = {"layer": layer, "epoch": epoch, "n_visible": rbm.n_visible, "n_hidden": rbm.n_hidden,
           "lr": cfg.learning_rate(epoch - 1) if epoch > 0 else None,
           "momentum": cfg.momentum(epoch - 1) if epoch > 0 else None, "seconds": seconds}
    rec["train_recon"], rec["train_pll"] = _monitor(rbm, cfg, layer, x, idx)
    if xt is not None:
        rec["test_recon"], rec["test_pll"] = _monitor(rbm, cfg, layer, xt, idx_t)
    return rec


def _train_layer(run: _Run, layer: int, n_in: int, n_hid: int, lower: list[RBM],
                 x_train: _LazyInputs, x_test: _LazyInputs):
    cfg, device, entry = run.layer_config, run.device, run.entry
    payload = _resume_point(run, layer)
    if payload is not None and payload["epoch"] == run.schedule[-1]:
        if entry.test_id != payload.get("test_id"):
            warnings.warn(f"layer {layer}: cached history was logged with test_id={payload.get('test_id')!r}, "
                          f"not {entry.test_id!r}", RuntimeWarning, stacklevel=3)
        logger.info("layer %d: loaded from cache %s", layer, entry.folder)
        return RBM.from_state_dict(payload["rbm"], device), list(payload["history"])
    rbm, state, history, epoch = _start_layer(run, layer, n_in, n_hid, payload)
    fit = epoch_runner(rbm, cfg, state)

    x = x_train.get(lower, layer)
    xt = x_test.get(lower, layer)
    idx = torch.as_tensor(_monitor_index(x.shape[0], cfg.monitor_rows), device=device)
    idx_t = None if xt is None else torch.as_tensor(_monitor_index(xt.shape[0], cfg.monitor_rows), device=device)

    def save(ep):
        _save_checkpoint(_ckpt_path(entry.folder, layer, ep), {
            "key": entry.key, "layer": layer, "epoch": ep, "test_id": entry.test_id,
            "num_threads": torch.get_num_threads(), "device_type": device.type, "rbm": rbm.state_dict(),
            "state": state.payload(), "history": history})

    if epoch == 0 and not history:
        rec = _record(run, rbm, layer, 0, 0.0, x, idx, xt, idx_t)
        history.append(rec)
        if 0 in run.schedule:
            save(0)
        if run.log is not None:
            run.log(rec)

    from tqdm.auto import tqdm
    bar = tqdm(total=cfg.epochs, initial=epoch, disable=not run.show, leave=False,
               desc=f"layer {layer + 1}/{len(run.config.hidden_sizes)} ({n_in}->{n_hid})")
    try:
        while epoch < cfg.epochs:
            t0 = time.perf_counter()
            fit(x, epoch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            epoch += 1
            rec = _record(run, rbm, layer, epoch, time.perf_counter() - t0, x, idx, xt, idx_t)
            history.append(rec)
            if epoch in run.schedule:
                save(epoch)
            bar.update(1)
            bar.set_postfix(recon=f"{rec['train_recon']:.4f}", pll=f"{rec['train_pll']:.1f}")
            if run.log is not None:
                run.log(rec)
    finally:
        bar.close()
    return rbm, history


def is_cached(config: DBNConfig, data_id: str, cache_dir: str | os.PathLike | None = None) -> bool:
    """Whether every layer's final checkpoint of this network is in the cache (files present; not verified)."""
    key = cache_key(config, data_id, resolve_device(config.device))
    folder = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / f"dbn-{key[:24]}"
    final = config.checkpoint_schedule()[-1]
    return all(_ckpt_path(folder, layer, final).is_file() for layer in range(len(config.hidden_sizes)))


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
    return DBN(rbms, config, history, CacheEntry(folder, key, data_id, test_id))
