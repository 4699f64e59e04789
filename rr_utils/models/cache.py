"""Where trained networks are cached, and the key that names a cache entry.

The key hashes everything the trained weights depend on: the config (device
field excluded), the data checksum, the resolved device type, the torch
version, ``RECIPE_VERSION`` and the source of the functions that compute the
weights and the training history (``COMPUTE_FUNCTIONS``), with docstrings and
comments stripped.  A docstring or comment edit keeps every cached network; a
change to the computation retrains.  Bump ``RECIPE_VERSION`` for a change the
source hash cannot see (e.g. in a dependency's numerics).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rr_utils._checks import _to_numpy
from rr_utils.devices import resolve_device
from rr_utils.io import atomic_write_json
from rr_utils.numerics import key_component
from rr_utils.recipe_code import COMPUTE_FUNCTIONS, RECIPE_VERSION, _function_code, compute_sha256  # noqa: F401

_ROOT = Path(__file__).resolve().parents[2]  # the checkout

__all__ = ["cache_key", "array_checksum", "default_cache_dir", "entry_lock", "RECIPE_VERSION", "COMPUTE_FUNCTIONS"]

def default_cache_dir() -> Path:
    """``$RR_CACHE_DIR/models`` if set, else ``<repo>/cache/models`` (git-ignored)."""
    base = os.environ.get("RR_CACHE_DIR")
    return (Path(base) if base else _ROOT / "cache") / "models"


class EntryLock:
    """The exclusive lock of one cache entry (``<folder>/.lock``), for ``train_dbn``.

    Many processes (notebooks, the workflow's training jobs, on one machine or
    several sharing the cache folder) asking for the same network: the first
    trains it, the others wait and then load its checkpoints (each verified by
    its sha256).  ``filelock`` takes an ``flock`` on the file, which the
    operating system releases when the holder dies (``kill -9``, a lost node on
    NFSv4), so a killed trainer never blocks the next one, which resumes from
    its last checkpoint.  Beside the lock the holder keeps
    ``.lock.owner.json`` (pid, host, start) so that a waiting process can say
    who it waits for; a clean release deletes it.  It needs a file system with
    working ``flock`` (local disks, NFSv4, Lustre mounted with ``flock``, GPFS).
    """

    def __init__(self, folder: str | os.PathLike):
        import filelock

        self.folder = Path(folder)
        self.owner_path = self.folder / ".lock.owner.json"
        self._lock = filelock.FileLock(str(self.folder / ".lock"), thread_local=False)

    def __enter__(self) -> "EntryLock":
        import filelock

        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            # the holder writes its record just after taking the lock: give it a moment to appear
            holder, deadline = self._holder(), time.monotonic() + 5.0
            acquired = False
            while holder is None and time.monotonic() < deadline:
                try:
                    self._lock.acquire(timeout=0.05)
                    acquired = True
                    break
                except filelock.Timeout:
                    holder = self._holder()
            if not acquired:
                print(f"model cache entry {self.folder.name}: {holder or 'another process'} is training this "
                      "network; waiting to load it", file=sys.stderr, flush=True)
                self._lock.acquire()
        try:
            dead = self._holder()  # a clean release deletes the record: its holder died holding the lock
            if dead:
                print(f"model cache entry {self.folder.name}: the previous run ({dead}) ended without releasing "
                      "the lock (killed or crashed); taking it over, from its last checkpoint",
                      file=sys.stderr, flush=True)
            atomic_write_json(self.owner_path, {"pid": os.getpid(), "host": socket.gethostname(),
                                                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        except BaseException:
            self._lock.release()
            raise
        return self

    def _holder(self) -> str | None:
        try:
            who = json.loads(self.owner_path.read_text())
            return f"pid {who['pid']} on {who['host']}, since {who['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def __exit__(self, *exc) -> None:
        try:
            self.owner_path.unlink(missing_ok=True)
        finally:
            self._lock.release()


def entry_lock(folder: str | os.PathLike) -> EntryLock:
    """The exclusive lock of one cache entry (``EntryLock``)."""
    return EntryLock(folder)


def array_checksum(arr) -> str:
    """sha256 of an array's dtype, shape and C-order bytes (a ``data_id``)."""
    a = np.ascontiguousarray(_to_numpy(arr, "arr"))
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def cache_key(config, data_id: str, device: str | torch.device | None = None) -> str:
    """sha256 of (config fields except ``device``, data_id, resolved device type,
    torch version, ``RECIPE_VERSION``, ``compute_sha256()``), plus the pinned numerical
    environment in exact mode (``rr_utils.numerics.key_component``; nothing otherwise)."""
    dev = resolve_device(config.device if device is None else device)
    payload = {
        "config": config.as_key_dict(),
        "data_id": str(data_id),
        "device_type": dev.type,
        "torch": torch.__version__.split("+")[0],
        "recipe_version": RECIPE_VERSION,
        "compute_sha256": compute_sha256(),
        **key_component(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
