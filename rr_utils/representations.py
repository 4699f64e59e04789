"""Binary representations of images that are not learned (reference points)."""

from __future__ import annotations

import numpy as np

from rr_utils._checks import _to_numpy, check_int, is_real


def pixel_states(images: np.ndarray, pool: int = 1, threshold: float = 0.5, side: int = 28) -> np.ndarray:
    """Average-pool (side x side) images in pool x pool blocks, then threshold.

    pool = 1 thresholds the raw pixels (784 bits for MNIST); pool = 4 gives a
    7 x 7 = 49-bit coarse image.  Returns an (N, (side // pool)**2) bool array.
    """
    side = check_int(side, "side", 1)
    pool = check_int(pool, "pool", 1)
    if not is_real(threshold) or not np.isfinite(threshold):
        raise ValueError(f"threshold: expected a finite number, got {threshold!r}")
    arr = _to_numpy(images, "images")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
        raise ValueError(f"images: dtype {arr.dtype} is not real-valued")
    x = arr.astype(np.float32, copy=False)
    if x.ndim != 2 or x.shape[1] != side * side:
        raise ValueError(f"images: expected shape (N, {side * side}), got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("images: empty (N = 0 images)")
    if side % pool:
        raise ValueError(f"pool: {pool} does not divide the image side {side}")
    if not np.isfinite(x).all():
        raise ValueError("images: contain NaN or infinite values")
    b = side // pool
    pooled = x.reshape(-1, b, pool, b, pool).mean(axis=(2, 4))
    return pooled.reshape(len(x), b * b) > threshold
