"""Atomic, deterministic writing of artifacts.

Every artifact (data files, results, figures, caches) should be written through
these helpers so that a crash or an exception mid-write never leaves a
truncated file behind: the content goes to a temporary file in the destination
folder, is flushed to disk (fsync), and only then renamed over the destination
with ``os.replace`` (atomic on POSIX and Windows within one file system).

- ``atomic_path(path)``: context manager yielding a temporary path to write to
  with any library (``np.save``, ``torch.save``, ``fig.savefig`` ...).
- ``atomic_write_bytes(path, data)``, ``atomic_write_text(path, text)``.
- ``atomic_write_json(path, obj)``: sorted keys, indent 2, trailing newline;
  numpy / torch scalars and arrays, paths and sets are converted by
  ``json_default`` so the same object always gives the same bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "remove_stale_temps",
    "json_default",
    "dumps_json",
]


def _fsync_dir(folder: Path) -> None:
    """Flush the directory entry (the rename) to disk; a no-op where unsupported."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temp(path: Path) -> Path:
    """Create an empty, uniquely named file next to ``path``.

    The temporary name keeps ``path``'s suffix last, because writers such as
    ``np.save`` / ``np.savez`` / ``savefig`` add or infer the format from it.
    ``os.open(..., 0o666)`` lets the umask decide the permissions, as for a
    normal ``open`` (``tempfile.mkstemp`` would force 0600).
    """
    stem = path.stem if path.suffix else path.name
    while True:
        tmp = path.with_name(f".{stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


def remove_stale_temps(folder: str | os.PathLike, max_age_s: float) -> list[Path]:
    """Delete the temp files of ``_create_temp`` in ``folder`` older than ``max_age_s``.

    Such a file is what a write killed before its rename leaves behind; a young
    one may belong to a writer still at work, so it is kept.  Returns the deleted paths.
    """
    now, gone = time.time(), []
    for p in Path(folder).glob(".*.*.tmp*"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > max_age_s:
                p.unlink()
                gone.append(p)
    return gone


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; move it over ``path`` on success.

    The temporary file exists (empty) when yielded; write it in any way. If the
    ``with`` body raises, the temporary file is removed, ``path`` is left as it
    was (old content or absent) and the exception propagates. On success the
    file is fsynced, renamed over ``path`` with ``os.replace`` and the folder
    entry fsynced. Missing parent folders are created.

    Example::

        with atomic_path("results/run.npz") as tmp:
            np.savez(tmp, a=a)
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, cannot write a file there")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(path)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return ``path`` as a Path."""
    try:
        view = memoryview(data)  # fail before touching the disk if data is not bytes-like
    except TypeError:
        raise TypeError(f"atomic_write_bytes: expected bytes-like data, got {type(data).__name__}") from None
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(view)
    return path


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (no newline translation); return the Path."""
    if not isinstance(text, str):
        raise TypeError(f"atomic_write_text: expected str, got {type(text).__name__}")
    return atomic_write_bytes(path, text.encode(encoding))


def json_default(obj: Any) -> Any:
    """``json`` fallback for the types our results contain.

    numpy / torch scalars become Python int / float / bool (a float is then
    written with Python's shortest round-trip repr, so output is deterministic);
    arrays and tensors become nested lists; paths become strings; sets become
    sorted lists; an object with a ``__json__`` method becomes what it returns (the
    claims' records, ``rr_utils.claims.records``), other dataclasses dicts.
    Anything else raises TypeError.
    """
    if hasattr(obj, "detach") and hasattr(obj, "cpu") and hasattr(obj, "tolist"):  # torch tensor
        return obj.detach().cpu().tolist()
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a hard dependency of the project
        np = None
    if np is not None:
        if isinstance(obj, np.bool_):
            return bool(obj)
        if isinstance(obj, np.integer):
            return int(obj)
        if isinstance(obj, np.floating):
            return float(obj)
        if isinstance(obj, np.ndarray):
            return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    to_json = getattr(type(obj), "__json__", None)  # a record that knows its JSON (rr_utils.claims.records)
    if to_json is not None:
        return to_json(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps_json(obj: Any) -> str:
    """The exact text ``atomic_write_json`` writes: sorted keys, indent 2, trailing newline."""
    return json.dumps(obj, sort_keys=True, indent=2, default=json_default, ensure_ascii=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Serialise ``obj`` (see ``dumps_json``) and write it to ``path`` atomically.

    Serialisation happens before anything is written, so an unserialisable
    object raises TypeError and leaves ``path`` untouched. NaN / inf are
    written as ``NaN`` / ``Infinity`` (Python's json extension), which
    ``json.load`` reads back.
    """
    return atomic_write_text(path, dumps_json(obj))
