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

import ast
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch

from rr_utils._checks import _to_numpy
from rr_utils.devices import resolve_device

__all__ = ["cache_key", "array_checksum", "default_cache_dir", "entry_lock", "RECIPE_VERSION", "COMPUTE_FUNCTIONS"]

RECIPE_VERSION = 2  # 2: the authors' update became the default (config field ``recipe``)
_ROOT = Path(__file__).resolve().parents[2]

# "module:qualname" of every function whose code decides the bits of a trained network or its history.
COMPUTE_FUNCTIONS = (
    "rr_utils.models.config:RBMConfig.learning_rate",
    "rr_utils.models.config:RBMConfig.momentum",
    "rr_utils.models.config:RBMConfig.checkpoint_schedule",
    "rr_utils.models.rbm:_seed_for",
    "rr_utils.models.rbm:_generator",
    "rr_utils.models.rbm:_deterministic",
    "rr_utils.models.rbm:_as_tensor",
    "rr_utils.models.rbm:RBM.initialise",
    "rr_utils.models.rbm:RBM.hidden_probs",
    "rr_utils.models.rbm:RBM.visible_probs",
    "rr_utils.models.rbm:RBM.reconstruction_error",
    "rr_utils.models.rbm:RBM.pseudo_log_likelihood",
    "rr_utils.models.rbm:RBM.fit_epoch",
    "rr_utils.models.rbm:RBM._fit_epoch_authors",
    "rr_utils.models.rbm:RBM._fit_epoch_classical",
    "rr_utils.models.rbm:_generator_uniform",
    "rr_utils.models.rbm:_bernoulli_draw",
    "rr_utils.models.rbm:_authors_epoch",
    "rr_utils.models.rbm:_authors_step",
    "rr_utils.models.cuda_graphs:graphs_enabled",
    "rr_utils.models.cuda_graphs:uses_graphs",
    "rr_utils.models.cuda_graphs:epoch_runner",
    "rr_utils.models.cuda_graphs:GraphedEpochs",
    "rr_utils.models.rbm:PCDState.initialise",
    "rr_utils.models.training:_propagate",
    "rr_utils.models.training:_monitor",
    "rr_utils.models.training:_monitor_index",
    "rr_utils.models.training:_LazyInputs.get",
    "rr_utils.models.training:_train_all",
    "rr_utils.models.training:_start_layer",
    "rr_utils.models.training:_record",
    "rr_utils.models.training:_train_layer",
)


def default_cache_dir() -> Path:
    """``$RR_CACHE_DIR/models`` if set, else ``<repo>/cache/models`` (git-ignored)."""
    base = os.environ.get("RR_CACHE_DIR")
    return (Path(base) if base else _ROOT / "cache") / "models"


def entry_lock(folder: str | os.PathLike):
    """The exclusive lock of one cache entry (``<folder>/.lock``), for ``train_dbn``.

    Many processes (notebooks, sweep workers, on one machine or several sharing
    the cache folder) asking for the same network: the first trains it, the
    others wait and then load its checkpoints (each verified by its sha256).
    ``filelock`` takes an ``flock`` on the file, which the operating system
    releases when the holder dies (``kill -9``, a lost node on NFSv4), so a
    killed trainer never blocks the next one, which resumes from its last
    checkpoint.  It needs a file system with working ``flock`` (local disks,
    NFSv4, Lustre mounted with ``flock``, GPFS).
    """
    from rr_utils.locking import RunLock

    return RunLock(Path(folder) / ".lock", f"model cache entry {Path(folder).name}",
                   hint="another process is training this network; it will be loaded when it is done")


def array_checksum(arr) -> str:
    """sha256 of an array's dtype, shape and C-order bytes (a ``data_id``)."""
    a = np.ascontiguousarray(_to_numpy(arr, "arr"))
    h = hashlib.sha256(f"{a.dtype.str}|{a.shape}|".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _function_code(name: str) -> str:
    """Code of ``module:Qual.name`` read from the module's source file (not the live object, which a
    test may have monkeypatched), without docstrings and comments (an ast round trip drops both)."""
    import importlib.util

    module, qualname = name.split(":")
    node = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
    for part in qualname.split("."):
        found = [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and n.name == part]
        if not found:
            raise LookupError(f"COMPUTE_FUNCTIONS: {name} not found (renamed? update the list)")
        node = found[0]
    return ast.unparse(_strip_docstrings(node))


def compute_sha256() -> str:
    """sha256 over ``COMPUTE_FUNCTIONS``' code (names included, docstrings and comments excluded)."""
    h = hashlib.sha256()
    for name in COMPUTE_FUNCTIONS:
        h.update(name.encode() + b"\n" + _function_code(name).encode() + b"\n")
    return h.hexdigest()


def cache_key(config, data_id: str, device: str | torch.device | None = None) -> str:
    """sha256 of (config fields except ``device``, data_id, resolved device type,
    torch version, ``RECIPE_VERSION``, ``compute_sha256()``)."""
    dev = resolve_device(config.device if device is None else device)
    payload = {
        "config": config.as_key_dict(),
        "data_id": str(data_id),
        "device_type": dev.type,
        "torch": torch.__version__.split("+")[0],
        "recipe_version": RECIPE_VERSION,
        "compute_sha256": compute_sha256(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
