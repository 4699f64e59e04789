"""Binary representations of images that are not learned (reference points)."""

from __future__ import annotations

import numpy as np


def pixel_states(images: np.ndarray, pool: int = 1, threshold: float = 0.5, side: int = 28) -> np.ndarray:
    """Average-pool (side x side) images in pool x pool blocks, then threshold.

    pool = 1 thresholds the raw pixels (784 bits for MNIST); pool = 4 gives a
    7 x 7 = 49-bit coarse image.  Returns an (N, (side // pool)**2) bool array.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != side * side:
        raise ValueError(f"images: expected shape (N, {side * side}), got {x.shape}")
    if side % pool:
        raise ValueError(f"pool: {pool} does not divide the image side {side}")
    if np.isnan(x).any():
        raise ValueError("images: contain NaN")
    b = side // pool
    pooled = x.reshape(-1, b, pool, b, pool).mean(axis=(2, 4))
    return pooled.reshape(len(x), b * b) > threshold
