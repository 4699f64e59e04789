"""Greedy DBN training of several seeds at once (``train_dbns``): one ``SeedBatch`` step per mini-batch.

``train_dbns(configs, data)`` trains the networks of ``configs`` (one
``DBNConfig`` per seed, equal in every other field) layer by layer, each layer
of every seed in one batched step (``rr_utils.models.batched``), and stores
each seed's checkpoints in the model cache as ``train_dbn`` does: same files,
same payloads, same history records (``seconds`` is the seed's share of the
batch's epoch), the same per-entry locks, resumable from any checkpoint.

Keys.  On the CPU a seed trained in a batch is bitwise the seed trained alone
(``tests/test_batched.py`` pins it at the recipe's shapes), so it is stored under
the alone key ``cache_key(config, data_id)``: ``load_dbn`` and ``train_dbn``
find it, and a batch finds the seeds trained alone.  On CUDA that is not
assumed (cuBLAS may choose other kernels for batched products), so a batched
network is keyed apart: ``seed_batch_key`` hashes the alone key with
``SEED_BATCH_TAG``, and ``load_dbns`` loads it back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from rr_utils.devices import resolve_device
from rr_utils.io import remove_stale_temps
from rr_utils.models.batched import SeedBatch, seed_epoch_runner
from rr_utils.models.cache import array_checksum, cache_key, compute_sha256, default_cache_dir, entry_lock
from rr_utils.models.checkpoints import STALE_TEMP_S, CheckpointError, _ckpt_path, _load_checkpoint, \
    _save_checkpoint, _write_meta
from rr_utils.models.config import DBNConfig
from rr_utils.models.cuda_graphs import graphs_enabled
from rr_utils.models.dbn import DBN, CacheEntry, _check_data
from rr_utils.models.rbm import RBM, PCDState, _as_tensor, _deterministic
from rr_utils.models.training import _Run, _monitor_index, _propagate, _record, _resume_point, _start_layer

__all__ = ["train_dbns", "load_dbns", "seed_batch_key", "check_seed_batch", "SEED_BATCH_TAG"]

SEED_BATCH_TAG = "seed-batch-1"  # what a keyed-apart (non-CPU) batched network's key adds to the alone key


def check_seed_batch(configs: Sequence[DBNConfig]) -> list[DBNConfig]:
    """``configs`` as a list, checked: DBNConfigs of the authors' recipe, distinct seeds, equal otherwise.

    Raises
    ------
    ValueError
        Naming the problem: no configs, a non-DBNConfig, the classical recipe, a repeated seed, or a
        field other than ``seed`` that differs between two configs.
    """
    configs = list(configs)
    if not configs:
        raise ValueError("configs: expected at least one DBNConfig, got none")
    for c in configs:
        if not isinstance(c, DBNConfig):
            raise ValueError(f"configs: expected DBNConfig objects, got {type(c).__name__}")
        if c.recipe != "authors":
            raise ValueError(f"configs: batched seeds train the authors' recipe only, got recipe={c.recipe!r}")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"configs: repeated seeds {seeds}")
    base = dataclasses.replace(configs[0], seed=0)
    for c in configs[1:]:
        if dataclasses.replace(c, seed=0) != base:
            diff = [f.name for f in dataclasses.fields(c) if f.name != "seed"
                    and getattr(c, f.name) != getattr(configs[0], f.name)]
            raise ValueError(f"configs: a batch's networks may differ in seed only; seed {c.seed} differs from "
                             f"seed {configs[0].seed} in {diff}")
    return configs


def seed_batch_key(config: DBNConfig, data_id: str, device=None) -> str:
    """The cache key of ``config``'s network trained in a seed batch.

    On the CPU the alone key ``cache_key(config, data_id, device)`` (the batch is bitwise the alone run);
    elsewhere sha256 of that key and ``SEED_BATCH_TAG``, so a batched network never takes an alone one's place.
    """
    dev = resolve_device(config.device if device is None else device)
    key = cache_key(config, data_id, dev)
    if dev.type == "cpu":
        return key
    return hashlib.sha256(f"{key}|{SEED_BATCH_TAG}".encode()).hexdigest()


class _Inputs:
    """Every seed's input to a layer, computed only when some seed trains it: the shared data at layer 0, then
    one tensor per seed, propagated through its own lower layers (``training._propagate``, as alone)."""

    def __init__(self, x0: torch.Tensor | None, n_seeds: int):
        self.xs, self.level = (None if x0 is None else [x0] * n_seeds), 0

    def get(self, lower: list[list[RBM]], layer: int) -> list[torch.Tensor] | None:
        while self.xs is not None and self.level < layer:
            self.xs = [_propagate(lower[s][self.level], x) for s, x in enumerate(self.xs)]
            self.level += 1
        return self.xs


def _payload(batch: SeedBatch, s: int, run: _Run, layer: int, epoch: int, history: list) -> dict:
    """Seed ``s``'s checkpoint payload, as ``training._train_layer`` saves it."""
    rbm, state = batch.seed(s)
    return {"key": run.entry.key, "layer": layer, "epoch": epoch, "test_id": run.entry.test_id,
            "num_threads": torch.get_num_threads(), "device_type": run.device.type, "rbm": rbm.state_dict(),
            "state": state.payload(), "history": list(history)}


def _train_group(runs: list[_Run], layer: int, n_in: int, n_hid: int, starts: list, xs: list, xts: list | None,
                 log, show: bool):
    """Train one layer of seeds that resume from the same epoch, in one batch; returns (rbms, histories)."""
    cfg, device, S = runs[0].layer_config, runs[0].device, len(runs)
    rbms, states, hists, epoch = zip(*starts)
    epoch, hists = epoch[0], [list(h) for h in hists]
    batch = SeedBatch(rbms, states)
    fit = seed_epoch_runner(batch, cfg)
    # the data as fit takes it: one tensor for a graph (the same every epoch), the seeds' own tensors in lockstep
    shared = all(x is xs[0] for x in xs)
    x_fit = xs[0] if shared else (torch.stack(xs) if batch.stacked else xs)
    idx = torch.as_tensor(_monitor_index(xs[0].shape[0], cfg.monitor_rows), device=device)
    idx_t = None if xts is None else torch.as_tensor(_monitor_index(xts[0].shape[0], cfg.monitor_rows), device=device)

    def record(ep, seconds):
        for s, run in enumerate(runs):
            hists[s].append(_record(run, batch.rbm(s), layer, ep, seconds, xs[s], idx,
                                    None if xts is None else xts[s], idx_t))
        for s, run in enumerate(runs):
            if ep in run.schedule:
                _save_checkpoint(_ckpt_path(run.entry.folder, layer, ep), _payload(batch, s, run, layer, ep, hists[s]))
            if log is not None:
                log(dict(hists[s][-1], seed=run.config.seed))

    if epoch == 0 and not hists[0]:
        record(0, 0.0)
    from tqdm.auto import tqdm
    with tqdm(total=cfg.epochs, initial=epoch, disable=not show, leave=False,
              desc=f"layer {layer + 1} ({n_in}->{n_hid}), {S} seeds") as bar:
        while epoch < cfg.epochs:
            t0 = time.perf_counter()
            fit(x_fit, epoch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            epoch += 1
            record(epoch, (time.perf_counter() - t0) / S)
            bar.update(1)
    return [rbm for rbm, _ in batch.unstack()], hists


def _train_layer(runs: list[_Run], layer: int, n_in: int, n_hid: int, lower: list[list[RBM]],
                 x_train: _Inputs, x_test: _Inputs, log, show: bool) -> tuple[list[RBM], list[list]]:
    """One layer of every seed: loaded where its final checkpoint is cached, else trained in batches of the
    seeds that resume from the same epoch."""
    rbms: list = [None] * len(runs)
    hists: list = [None] * len(runs)
    pending: dict[int, list] = {}
    for s, run in enumerate(runs):
        payload = _resume_point(run, layer)
        if payload is not None and payload["epoch"] == run.schedule[-1]:
            rbms[s], hists[s] = RBM.from_state_dict(payload["rbm"], run.device), list(payload["history"])
            continue
        start = _start_layer(run, layer, n_in, n_hid, payload)
        pending.setdefault(start[3], []).append((s, start))
    if pending:
        x, xt = x_train.get(lower, layer), x_test.get(lower, layer)
        for epoch, group in sorted(pending.items()):
            ids = [s for s, _ in group]
            got, got_h = _train_group([runs[s] for s in ids], layer, n_in, n_hid, [st for _, st in group],
                                      [x[s] for s in ids], None if xt is None else [xt[s] for s in ids], log, show)
            for s, rbm, h in zip(ids, got, got_h):
                rbms[s], hists[s] = rbm, h
    return rbms, hists


@torch.no_grad()
def train_dbns(configs: Sequence[DBNConfig], data, cache_dir: str | os.PathLike | None = None,
               data_id: str | None = None, progress: bool = False, log: Callable[[dict], None] | None = None,
               test_data=None, test_id: str | None = None, num_threads: int | None = None) -> list[DBN]:
    """Train (or load from the cache) the DBNs of several seeds in one batch; one ``DBN`` per config.

    Parameters
    ----------
    configs : sequence of DBNConfig
        One per seed, equal in every other field, authors' recipe (``check_seed_batch``).
    data, data_id, test_data, test_id, cache_dir, num_threads
        As ``train_dbn``: every seed learns from the same ``data``.
    progress : bool
        A tqdm bar per layer.
    log : callable or None
        Called with each seed's history record (plus its ``seed``) after each epoch.

    Returns
    -------
    list of DBN
        In the order of ``configs``; on the CPU each is bitwise ``train_dbn(config, data)`` run alone with the
        same threads, and is stored under the same key (``seed_batch_key``).
    """
    configs = check_seed_batch(configs)
    data = _check_data(data, "data")
    data_id = array_checksum(data) if data_id is None else data_id
    if test_data is not None:
        test_data = _check_data(test_data, "test_data", int(data.shape[1]))
        test_id = array_checksum(test_data) if test_id is None else test_id
    device = resolve_device(configs[0].device)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    runs = []
    for c in configs:
        key = seed_batch_key(c, data_id, device)
        folder = root / f"dbn-{key[:24]}"
        folder.mkdir(parents=True, exist_ok=True)
        runs.append(_Run(c, CacheEntry(folder, key, data_id, test_id), device, bool(progress), None))
    prev_threads = torch.get_num_threads()
    with contextlib.ExitStack() as locks:
        for run in sorted(runs, key=lambda r: r.entry.key):  # one order for every process: no deadlock
            locks.enter_context(entry_lock(run.entry.folder))
            remove_stale_temps(run.entry.folder, STALE_TEMP_S)
            _write_meta(run.entry.folder, {
                "key": run.entry.key, "config": dataclasses.asdict(run.config), "data_id": data_id,
                "device_type": device.type, "torch": torch.__version__, "compute_sha256": compute_sha256(),
                "n_visible": int(data.shape[1]), "n_rows": int(data.shape[0]), "test_id": test_id,
                "num_threads": num_threads or torch.get_num_threads(), "cuda_graphs": graphs_enabled(device),
                "seed_batch": [c.seed for c in configs]})
        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        try:
            with _deterministic(device):
                return _train_all(runs, data, test_data, log, bool(progress))
        finally:
            torch.set_num_threads(prev_threads)


def _train_all(runs: list[_Run], data, test_data, log, show: bool) -> list[DBN]:
    S = len(runs)
    x_train = _Inputs(_as_tensor(data, runs[0].device), S)
    x_test = _Inputs(None if test_data is None else _as_tensor(test_data, runs[0].device), S)
    rbms: list[list[RBM]] = [[] for _ in runs]
    history: list[list] = [[] for _ in runs]
    n_in = int(data.shape[1])
    for layer, n_hid in enumerate(runs[0].config.hidden_sizes):
        got, hists = _train_layer(runs, layer, n_in, n_hid, rbms, x_train, x_test, log, show)
        for s in range(S):
            rbms[s].append(got[s])
            history[s].extend(hists[s])
        n_in = n_hid
    return [DBN(rbms[s], run.config, history[s], run.entry) for s, run in enumerate(runs)]


def load_dbns(configs: Sequence[DBNConfig], data_id: str, cache_dir: str | os.PathLike | None = None) -> list[DBN]:
    """Load the DBNs that ``train_dbns`` stored (keys of ``seed_batch_key``; on the CPU, ``load_dbn``'s).

    Raises
    ------
    CheckpointError
        A layer's final checkpoint is missing or invalid.
    """
    configs = check_seed_batch(configs)
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    out = []
    for c in configs:
        device = resolve_device(c.device)
        key = seed_batch_key(c, data_id, device)
        folder, final = root / f"dbn-{key[:24]}", c.checkpoint_schedule()[-1]
        rbms, history, test_id = [], [], None
        for layer in range(len(c.hidden_sizes)):
            path = _ckpt_path(folder, layer, final)
            try:
                payload = _load_checkpoint(path, key, layer, final)
            except FileNotFoundError:
                raise CheckpointError(f"{path}: missing; train with train_dbns first") from None
            rbms.append(RBM.from_state_dict(payload["rbm"], device))
            history.extend(payload["history"])
            test_id = payload.get("test_id")
        out.append(DBN(rbms, c, history, CacheEntry(folder, key, data_id, test_id)))
    return out

