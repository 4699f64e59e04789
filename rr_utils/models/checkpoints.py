"""The checkpoint file format: magic line, sha256 of the payload, a ``torch.save`` payload.

A payload stores the cache key, layer and epoch it belongs to; loading checks
all three and the checksum, so a truncated, corrupted or foreign file is never
used.  Writes are atomic (``rr_utils.io``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import warnings
from pathlib import Path

import torch

from rr_utils.io import atomic_write_bytes

__all__ = ["CheckpointError", "final_payloads", "payload_tensors"]

_CKPT_MAGIC = b"RRDBNCKPT1"
STALE_TEMP_S = 600  # a checkpoint write takes about a second: older temp files are leftovers of a killed run


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, corrupted or belongs to another key."""


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


def _write_meta(folder: Path, meta: dict) -> None:
    """meta.json describes the run that made the folder's checkpoints: kept while its key
    matches, rewritten when it is unreadable or belongs to another key."""
    path = folder / "meta.json"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if json.loads(path.read_text()).get("key") == meta["key"]:
            return
    atomic_write_bytes(path, (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode())


def final_payloads(dbn) -> list[dict]:
    """The verified payload of each layer's last checkpoint of a cached ``dbn`` (weights, PCD state, history)."""
    final = dbn.config.checkpoint_schedule()[-1]
    return [_load_checkpoint(_ckpt_path(dbn.folder, layer, final), dbn.key, layer, final)
            for layer in range(dbn.n_layers)]


def payload_tensors(payload, prefix: str = ""):
    """(dotted name, tensor) of every tensor in a nested payload, in a fixed order (for bitwise comparisons)."""
    if isinstance(payload, torch.Tensor):
        yield prefix, payload
    elif isinstance(payload, dict):
        for k in sorted(payload):
            yield from payload_tensors(payload[k], f"{prefix}.{k}")
    elif isinstance(payload, (list, tuple)):
        for i, v in enumerate(payload):
            yield from payload_tensors(v, f"{prefix}[{i}]")
