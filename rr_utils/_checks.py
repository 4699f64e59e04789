"""Input validation shared by the public functions: clear ValueErrors, no coercion."""

from __future__ import annotations

import numpy as np


def _to_numpy(x, name: str) -> np.ndarray:
    """numpy view of a numpy array, torch tensor (any device) or sequence."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, imported lazily
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name}: cannot be read as an array ({exc})") from None
    if arr.dtype == object:
        raise ValueError(f"{name}: has dtype object (ragged or mixed input); expected numbers")
    return arr


def check_states(states, name: str = "states") -> np.ndarray:
    """Validate an (M, n) array of 0/1 values; return it as a C-contiguous bool array."""
    arr = _to_numpy(states, name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (M, n) array, got {arr.ndim}-D with shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: empty array (M = 0 rows); need at least one input")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: states have zero units (shape {arr.shape})")
    if arr.dtype == np.bool_:
        return np.ascontiguousarray(arr)
    if not (np.issubdtype(arr.dtype, np.number)):
        raise ValueError(f"{name}: dtype {arr.dtype} is not numeric or boolean")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}: complex values are not binary states")
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        raise ValueError(f"{name}: contains NaN; states must be 0/1")
    ones = arr == 1
    if not np.all(ones | (arr == 0)):
        bad = arr[~(ones | (arr == 0))].ravel()[:3]
        raise ValueError(f"{name}: values other than 0/1 (e.g. {bad.tolist()}); threshold probabilities first")
    return np.ascontiguousarray(ones)


def check_counts(counts, name: str = "counts") -> np.ndarray:
    """Validate a 1-D array of positive integer counts k_s; return int64."""
    arr = _to_numpy(counts, name)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of counts, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty array; need at least one state")
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: dtype {arr.dtype} is not an integer count type")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}: complex values are not counts")
    if np.issubdtype(arr.dtype, np.floating):
        if np.isnan(arr).any():
            raise ValueError(f"{name}: contains NaN")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: contains infinite values")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name}: non-integer counts (e.g. {arr[arr != np.round(arr)][:3].tolist()})")
    if np.any(arr < 0):
        raise ValueError(f"{name}: negative counts (e.g. {arr[arr < 0][:3].tolist()})")
    out = arr.astype(np.int64)
    out = out[out > 0]  # states never seen carry no probability
    if out.size == 0:
        raise ValueError(f"{name}: all counts are zero (M = 0)")
    return out


def check_sample_size(M, name: str = "M") -> int:
    """Validate a sample size M >= 1 given as an integer."""
    if isinstance(M, (bool, np.bool_)):
        raise ValueError(f"{name}: expected an integer sample size, got a boolean")
    if isinstance(M, (float, np.floating)):
        if not np.isfinite(M) or M != int(M):
            raise ValueError(f"{name}: expected an integer sample size, got {M!r}")
        M = int(M)
    if not isinstance(M, (int, np.integer)):
        raise ValueError(f"{name}: expected an integer sample size, got {type(M).__name__}")
    if M < 1:
        raise ValueError(f"{name}: sample size must be >= 1, got {M}")
    return int(M)


def is_int(value) -> bool:
    """A Python or numpy integer, not a bool (a bool or float is usually a mistake)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """A Python or numpy real number, not a bool (NaN and infinities included)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_int(value, name: str, minimum: int | None = None) -> int:
    """An integer (Python or numpy; bools and floats rejected) >= ``minimum``."""
    if not is_int(value):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def check_steps(steps, name: str = "steps") -> list[int]:
    """A list of numbers of steps (each >= 1), sorted and without repeats; clear errors otherwise."""
    if isinstance(steps, (str, bytes)) or not hasattr(steps, "__iter__"):
        raise ValueError(f"{name}: expected a list of step counts, got {steps!r}")
    out = sorted({check_int(n, name, 1) for n in steps})
    if not out:
        raise ValueError(f"{name}: empty; give at least one number of steps")
    return out


def check_positive_finite(value, name: str, why: str = "must be > 0") -> float:
    """A finite real number > 0 (bools, strings, NaN and infinities rejected)."""
    if not is_real(value):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: {why}, got {value}")
    return float(value)


def check_table(table, columns, name: str = "table") -> None:
    """A non-empty DataFrame holding ``columns`` (clear message instead of a KeyError)."""
    import pandas as pd  # only the callers that pass tables need pandas

    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{name}: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}; have {list(table.columns)}")
    if table.empty:
        raise ValueError(f"{name}: empty (no rows)")
