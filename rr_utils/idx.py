"""The IDX file format of MNIST and Fashion-MNIST, and the hashes that identify data files.

``read_idx`` reads one IDX file (optionally gzip-compressed), checking its
header, size and payload; ``read_idx_pair`` reads images and labels together.
``md5_file`` and ``sha256_file`` hash files (MD5 only to compare with published
checksums); ``content_sha256`` identifies the digits themselves, whatever file
they were read from (``rr_utils.data.Dataset.sha256``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

__all__ = ["read_idx", "read_idx_pair", "md5_file", "sha256_file", "content_sha256"]

_IDX_MAGIC = {0x00000801: 1, 0x00000803: 3}  # uint8 labels, uint8 images -> ndim
_GZIP_MAGIC = b"\x1f\x8b"
_IMAGE_SHAPE = (28, 28)


# --------------------------------------------------------------------------- hashing


def _hash_file(path: str | os.PathLike, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def md5_file(path: str | os.PathLike) -> str:
    """Hex MD5 of a file (only to compare with published checksums).

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    str
    """
    return _hash_file(path, "md5")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    str
    """
    return _hash_file(path, "sha256")


def content_sha256(images_u8: np.ndarray, labels_u8: np.ndarray) -> str:
    """SHA-256 of uint8 images (C order) followed by uint8 labels.

    This is ``Dataset.sha256``: it identifies the digits themselves, whatever
    file format (gz or not, npz) they were read from.

    Parameters
    ----------
    images_u8 : numpy.ndarray
        uint8 images.
    labels_u8 : numpy.ndarray
        uint8 labels.

    Returns
    -------
    str
    """
    images_u8 = np.ascontiguousarray(images_u8, dtype=np.uint8)
    labels_u8 = np.ascontiguousarray(labels_u8, dtype=np.uint8)
    h = hashlib.sha256()
    h.update(images_u8.tobytes())
    h.update(labels_u8.tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- IDX


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read a uint8 IDX file (labels 0x00000801 or images 0x00000803), gzipped or not.

    Gzip is detected from the magic bytes, not the file name. Returns a
    read-only uint8 array with the declared dimensions, e.g. (N,) for labels and
    (N, 28, 28) for images.

    Raises ValueError, naming the file, for: corrupt or truncated gzip data, an
    unsupported magic number, a truncated header, or a payload whose length
    differs from the one the header declares.

    Parameters
    ----------
    path : path-like
        An IDX file, optionally ``.gz``.

    Returns
    -------
    numpy.ndarray
        uint8, (n,) for labels or (n, rows, cols) for images.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise ValueError(f"{path}: corrupt gzip data ({exc})") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX file ({len(raw)} bytes, need at least 4)")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _IDX_MAGIC:
        raise ValueError(
            f"{path}: unsupported IDX magic number 0x{magic:08x}; expected 0x00000801 "
            f"(uint8 labels) or 0x00000803 (uint8 images)"
        )
    ndim = _IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated IDX header: expected {header} bytes, file has {len(raw)} bytes"
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "trailing data"
        raise ValueError(
            f"{path}: size mismatch ({what}): header declares dims {dims}, expected "
            f"{expected} bytes, actual {len(raw)} bytes"
        )
    arr = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    arr.flags.writeable = False  # already read-only (bytes buffer); make it explicit
    return arr


def read_idx_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an images/labels IDX pair; return uint8 arrays (N, 28, 28) and (N,).

    Raises ValueError if the files are swapped or of the wrong kind, the images
    are not 28x28, the counts differ, or a label is outside 0..9.

    Parameters
    ----------
    images_path, labels_path : path-like
        The IDX files of one split.

    Returns
    -------
    tuple of numpy.ndarray
        ``(images (n, 28, 28) uint8, labels (n,) uint8)``.
    """
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3:
        raise ValueError(f"{images_path}: expected an IDX image file (3-D), got {images.ndim}-D data")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected an IDX label file (1-D), got {labels.ndim}-D data")
    if images.shape[1:] != _IMAGE_SHAPE:
        raise ValueError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"image/label count mismatch: {images_path} has {images.shape[0]} images, "
            f"{labels_path} has {labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: label {int(labels.max())} outside 0..9")
    return images, labels
