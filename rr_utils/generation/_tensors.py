"""Validated torch inputs and the CPU thread count of the generation code (private helpers).

``_to_tensor`` and ``_images`` turn arrays into float32 tensors with clear
errors; ``_cpu_threads`` runs a block on a given number of torch CPU threads.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from rr_utils._checks import _to_numpy, check_int


@contextlib.contextmanager
def _cpu_threads(device: torch.device, n: int | None):
    """Run with ``n`` torch CPU threads (restored after); no-op on GPU or when n is None.

    Why: these loops multiply small matrices thousands of times; on a busy 2-core
    machine 2 threads measured 5-24x slower than 1 (OpenMP sync under oversubscription).
    torch's thread count is process-wide: do not run other torch work in parallel threads.
    """
    if device.type != "cpu" or n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(check_int(n, "cpu_threads", 1))
    try:
        yield
    finally:
        torch.set_num_threads(old)


_CPU = torch.device("cpu")


def _to_tensor(x, name: str, device: torch.device, ndim: int | None = None) -> torch.Tensor:
    """float32 tensor on ``device``; checks dimensionality and finiteness."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if not (t.is_floating_point() or t.dtype in (torch.uint8, torch.int32, torch.int64, torch.bool)):
            raise ValueError(f"{name}: dtype {t.dtype} is not numeric")
    else:
        arr = _to_numpy(x, name)
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
            raise ValueError(f"{name}: dtype {arr.dtype} is not real-valued")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    t = t.to(device=device, dtype=torch.float32)
    if ndim is not None and t.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains NaN or infinite values")
    return t


def _images(x, name: str, device: torch.device) -> torch.Tensor:
    """(n, n_pixels) float32 images in [0, 1]; uint8 input is divided by 255."""
    is_u8 = (isinstance(x, torch.Tensor) and x.dtype == torch.uint8) or (
        isinstance(x, np.ndarray) and x.dtype == np.uint8
    )
    t = _to_tensor(x, name, device)
    if t.ndim == 3:  # (n, 28, 28) -> (n, 784)
        t = t.reshape(t.shape[0], -1)
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty (n, n_pixels) array, got shape {tuple(t.shape)}")
    if is_u8:
        t = t / 255.0
    if t.min() < 0 or t.max() > 1:
        raise ValueError(f"{name}: values outside [0, 1] (min {t.min().item():.3g}, max {t.max().item():.3g}); "
                         "pass grey/255 or uint8 grey levels")
    return t
