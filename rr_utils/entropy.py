"""Resolution, relevance and noise of a sample of discrete states.

A layer maps each of M inputs to a binary state s.  With k_s the number of
inputs in state s and m_k the number of distinct states seen exactly k times:

    resolution  H[s]   = -sum_s (k_s/M) log(k_s/M)
    relevance   H[K]   = -sum_k (k m_k/M) log(k m_k/M)
    noise       H[s|K] = H[s] - H[K] = sum_k (k m_k/M) log m_k >= 0

All in nats; ``normalized=True`` divides by log M (the paper's axes), which is
defined as 0 when M = 1.

Counting is exact: rows are packed into 64-bit words and hashed; rows are
grouped by hash and every row is compared word by word with its group's
representative; a hash collision (two different rows with the same hash) is
detected that way and the whole sample is then counted with an exact
lexicographic sort instead.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rr_utils._checks import _to_numpy, check_counts, check_int, check_positive_finite, check_states, is_real

__all__ = [
    "state_counts",
    "StateCounter",
    "resolution",
    "relevance",
    "noise",
    "frequency_of_frequencies",
    "rank_frequency",
    "summary",
    "fit_power_law",
    "PowerLawFit",
    "sample_power_law_counts",
    "power_law_sample",
]


# ---------------------------------------------------------------------------
# Exact state counting
# ---------------------------------------------------------------------------

_MIX1 = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio multipliers: cheap, well-mixing
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_CHUNK_ROWS = 8192  # rows packed and hashed at a time, so that a chunk stays in cache


def pack_rows(states: np.ndarray) -> np.ndarray:
    """Pack an (M, n) bool array into an (M, w) uint64 array, w = ceil(n / 64)."""
    M, n = states.shape
    nbytes = -(-n // 8)
    width = -(-nbytes // 8) * 8
    out = np.empty((M, width), np.uint8)
    if width != nbytes:
        out[:, nbytes:] = 0
    for s in range(0, M, _CHUNK_ROWS):
        out[s:s + _CHUNK_ROWS, :nbytes] = np.packbits(states[s:s + _CHUNK_ROWS], axis=1)
    return out.view(np.uint64)


def _hash_words(words: np.ndarray) -> np.ndarray:
    """64-bit hash of each row of an (M, w) uint64 array (collisions possible).

    Computed in row chunks so that the strided column reads stay in cache.
    """
    M, w = words.shape
    h = np.empty(M, np.uint64)
    tmp = np.empty(min(M, _CHUNK_ROWS), np.uint64)
    shift = np.uint64(31)
    with np.errstate(over="ignore"):
        for s in range(0, M, _CHUNK_ROWS):
            blk = words[s:s + _CHUNK_ROWS]
            hb = h[s:s + _CHUNK_ROWS]
            t = tmp[:hb.size]
            np.multiply(blk[:, 0], _MIX1, out=hb)
            for j in range(1, w):
                np.right_shift(hb, shift, out=t)
                hb ^= t
                hb ^= blk[:, j]
                hb *= _MIX2
    return h


def _run_lengths(sorted_flags_new: np.ndarray) -> np.ndarray:
    """Lengths of runs given a bool array marking where a new run starts."""
    starts = np.flatnonzero(sorted_flags_new)
    return np.diff(np.append(starts, sorted_flags_new.size)).astype(np.int64)


def _unique_rows(words: np.ndarray, return_rows: bool = False):
    """Exact counts (and optionally one packed row each) of distinct rows of words."""
    M, w = words.shape
    if w == 1:
        keys, idx, counts = np.unique(words[:, 0], return_index=True, return_counts=True)
        return (counts.astype(np.int64), words[idx]) if return_rows else counts.astype(np.int64)
    h = _hash_words(words)
    hs = np.sort(h)
    n_hashes = 1 + int(np.count_nonzero(hs[1:] != hs[:-1]))
    if n_hashes == M:  # all hashes distinct, hence all rows distinct
        return (np.ones(M, np.int64), words[np.argsort(h)]) if return_rows else np.ones(M, np.int64)
    # Group rows by hash with a hash table (O(M); pandas' uint64 table is exact).
    import pandas as pd

    codes, uniq = pd.factorize(h, sort=False)
    reps_idx = np.empty(uniq.size, np.intp)
    reps_idx[codes] = np.arange(M)  # one row of each hash group
    reps = words[reps_idx]
    # Exactness: every row must equal the representative of its hash group (a
    # collision of two different rows is caught here).  One sequential pass over
    # words, in chunks, against the gathered representatives.
    step = _CHUNK_ROWS * 4
    for s in range(0, M, step):
        if not np.array_equal(words[s:s + step], reps[codes[s:s + step]]):
            return _unique_rows_lexsort(words, return_rows)
    counts = np.bincount(codes, minlength=uniq.size).astype(np.int64)
    by_hash = np.argsort(uniq)  # output in order of increasing hash
    return (counts[by_hash], reps[by_hash]) if return_rows else counts[by_hash]


def _unique_rows_lexsort(words: np.ndarray, return_rows: bool = False):
    """Collision-free fallback: lexicographic sort over all words."""
    order = np.lexsort(words.T[::-1])
    rows = words[order]
    new = np.empty(rows.shape[0], bool)
    new[0] = True
    new[1:] = np.any(rows[1:] != rows[:-1], axis=1)
    counts = _run_lengths(new)
    return (counts, rows[new]) if return_rows else counts


def state_counts(states) -> np.ndarray:
    """Count how many rows fall into each distinct binary state.

    Parameters
    ----------
    states : (M, n) array of 0/1 or bool (numpy array or torch tensor, any device)

    Returns
    -------
    int64 numpy array of the counts k_s of the distinct rows (sorted by an
    internal key, not by state); ``counts.sum() == M``.  Distinct rows are
    never merged.
    """
    arr = check_states(states)
    return _unique_rows(pack_rows(arr))


class StateCounter:
    """Streaming exact counter of binary states, fed mini-batch by mini-batch.

    Memory is O(number of distinct states): each batch is packed to bits,
    reduced to its distinct rows, and merged into a dict keyed by the packed
    bytes.  Batches may be binary states or probabilities (numpy or torch, any
    device); float input is thresholded as ``x > threshold`` (so exact 0/1
    floats pass unchanged).

    >>> c = StateCounter(); c.update([[0, 1], [0, 1]]); c.update([[1, 1]])
    >>> sorted(c.counts().tolist())
    [1, 2]
    """

    def __init__(self, threshold: float = 0.5):
        if not is_real(threshold):
            raise ValueError(f"threshold: expected a number in [0, 1), got {threshold!r}")
        if not (0.0 <= float(threshold) < 1.0):
            raise ValueError(f"threshold: must lie in [0, 1), got {threshold!r}")
        self.threshold = float(threshold)
        self.n_units: int | None = None
        self.M = 0
        self._counts: dict[bytes, int] = {}

    def _binarise(self, batch) -> np.ndarray:
        if hasattr(batch, "detach") and getattr(batch, "is_floating_point", lambda: False)():
            if bool(batch.isnan().any()):
                raise ValueError("batch: contains NaN")
            if bool(((batch < 0) | (batch > 1)).any()):
                raise ValueError("batch: probabilities outside [0, 1]")
            batch = batch > self.threshold  # threshold on the batch's own device
        arr = _to_numpy(batch, "batch")
        if np.issubdtype(arr.dtype, np.floating):
            if arr.ndim != 2:
                raise ValueError(f"batch: expected a 2-D (B, n) array, got shape {arr.shape}")
            if np.isnan(arr).any():
                raise ValueError("batch: contains NaN")
            if arr.size and (arr.min() < 0 or arr.max() > 1):
                raise ValueError("batch: probabilities outside [0, 1]")
            arr = arr > self.threshold
        return check_states(arr, "batch")

    def update(self, batch) -> None:
        """Add a (B, n) batch of states or probabilities.

        Returns None, so that ``lambda module, inputs, output: counter.update(output)``
        is safe as a forward hook (a hook that returns a value replaces the output).
        """
        arr = self._binarise(batch)
        if self.n_units is None:
            self.n_units = arr.shape[1]
        elif arr.shape[1] != self.n_units:
            raise ValueError(f"batch: has {arr.shape[1]} units, earlier batches had {self.n_units}")
        counts, rows = _unique_rows(pack_rows(arr), return_rows=True)
        keys = rows.view(np.dtype((np.void, rows.shape[1] * 8))).ravel().tolist()
        d = self._counts
        for key, k in zip(keys, counts.tolist()):
            d[key] = d.get(key, 0) + k
        self.M += arr.shape[0]

    def counts(self) -> np.ndarray:
        """Counts k_s of the distinct states seen so far (int64)."""
        if self.M == 0:
            raise ValueError("StateCounter: no states counted yet")
        return np.fromiter(self._counts.values(), np.int64, len(self._counts))

    def __len__(self) -> int:
        return len(self._counts)


# ---------------------------------------------------------------------------
# Entropies
# ---------------------------------------------------------------------------

def frequency_of_frequencies(counts) -> tuple[np.ndarray, np.ndarray]:
    """(k, m_k): the distinct counts k (ascending) and how many states have each."""
    c = check_counts(counts)
    k, m_k = np.unique(c, return_counts=True)
    return k.astype(np.int64), m_k.astype(np.int64)


def rank_frequency(counts) -> tuple[np.ndarray, np.ndarray]:
    """(rank, k_r): counts sorted descending against their rank 1, 2, ..."""
    c = np.sort(check_counts(counts))[::-1]
    return np.arange(1, c.size + 1), c


def _norm(value: float, M: int, normalized: bool) -> float:
    if not normalized:
        return float(value)
    return float(value / np.log(M)) if M > 1 else 0.0


def resolution(counts, normalized: bool = False) -> float:
    """H[s] in nats (or / log M when ``normalized``)."""
    k, m_k = frequency_of_frequencies(counts)
    M = int(k @ m_k)
    p = k / M
    return _norm(max(0.0, -float(np.sum(m_k * p * np.log(p)))), M, normalized)


def relevance(counts, normalized: bool = False) -> float:
    """H[K] in nats (or / log M when ``normalized``)."""
    k, m_k = frequency_of_frequencies(counts)
    M = int(k @ m_k)
    q = k * m_k / M
    return _norm(max(0.0, -float(np.sum(q * np.log(q)))), M, normalized)


def noise(counts, normalized: bool = False) -> float:
    """H[s|K] = H[s] - H[K] = sum_k (k m_k / M) log m_k, computed directly (>= 0)."""
    k, m_k = frequency_of_frequencies(counts)
    M = int(k @ m_k)
    return _norm(float(np.sum(k * m_k / M * np.log(m_k))), M, normalized)


def summary(counts) -> dict:
    """M, number of distinct states, and the three entropies, raw and normalised."""
    c = check_counts(counts)
    out = {"M": int(c.sum()), "n_states": int(c.size)}
    for name, fn in (("H_s", resolution), ("H_K", relevance), ("noise", noise)):
        out[name] = fn(c)
        out[name + "_norm"] = fn(c, normalized=True)
    return out


# ---------------------------------------------------------------------------
# Power laws m_k ~ k^-(1+mu)
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PowerLawFit:
    """Discrete power-law fit of the counts: P(k) ∝ k^-(1+mu) for k >= k_min."""

    mu: float
    mu_err: float
    k_min: int
    n_tail: int
    ks: float
    fitted: bool = True  # False: the maximum lies on the edge of the search range, so mu is no estimate
    reason: str = ""  # why not fitted ("" when fitted)

    @property
    def alpha(self) -> float:
        return 1.0 + self.mu


def _log_hurwitz(alpha: np.ndarray, k_min: int, k_max: int | None = None) -> np.ndarray:
    """log sum_{k >= k_min} k^-alpha, for an array of alpha > 1 (truncated at k_max if given)."""
    from scipy.special import zeta

    alpha = np.asarray(alpha, float)
    z = zeta(alpha, k_min)
    if k_max is not None:
        z = z - zeta(alpha, k_max + 1)
    return np.log(z)


ALPHA_RANGE = (1.0 + 1e-6, 8.0)  # search range of alpha = 1 + mu
_EDGE = (1e-3, 0.01)  # alpha this close to the lower/upper end of ALPHA_RANGE is the edge, not a maximum


def _mle_alpha(logk_sum: float, n: int, k_min: int) -> tuple[float, float]:
    """MLE of alpha and its asymptotic standard error for a discrete power law."""
    from scipy.optimize import minimize_scalar

    def nll(a):
        return a * logk_sum + n * float(_log_hurwitz(a, k_min))

    res = minimize_scalar(nll, bounds=ALPHA_RANGE, method="bounded",
                          options={"xatol": 1e-8})
    a = float(res.x)
    # Fisher information = n * Var_alpha[log k] = n * d^2/da^2 log zeta(a, k_min).
    h = 1e-4 * max(1.0, a)
    lo = max(a - h, 1.0 + 1e-7)
    d2 = (_log_hurwitz(a + h, k_min) - 2 * _log_hurwitz(a, k_min) + _log_hurwitz(lo, k_min)) / (
        ((a + h) - lo) / 2
    ) ** 2
    se = 1.0 / np.sqrt(n * float(d2)) if d2 > 0 else np.inf
    return a, float(se)


def _ks_distance(tail: np.ndarray, alpha: float, k_min: int) -> float:
    """Kolmogorov-Smirnov distance between the tail's empirical CDF and the fit."""
    from scipy.special import zeta

    k, n_k = np.unique(tail, return_counts=True)
    emp = np.cumsum(n_k) / tail.size
    model = 1.0 - zeta(alpha, k + 1) / zeta(alpha, k_min)
    return float(np.max(np.abs(emp - model)))


def fit_power_law(counts, k_min: int | None = None, min_tail: int = 50) -> PowerLawFit:
    """Maximum-likelihood exponent mu of m_k ~ k^-(1+mu).

    Each distinct state contributes its count k_s, treated as a draw from the
    discrete power law P(k) = k^-alpha / zeta(alpha, k_min) for k >= k_min,
    alpha = 1 + mu (Clauset, Shalizi & Newman 2009, eq. 3.5).  The standard
    error is the asymptotic one, 1 / sqrt(n_tail * Var[log k]).

    k_min: when not given, chosen as in Clauset et al.: among the distinct
    observed counts that leave at least ``min_tail`` states in the tail, the
    one minimising the KS distance between the tail and its fitted law.
    Raises ValueError when fewer than ``min_tail`` (or, with k_min given, 2)
    states lie in the tail, or when all tail counts are equal (nothing to fit).

    ``fitted`` is False (and ``reason`` says why) when the likelihood's maximum
    lies at an edge of the search range ``ALPHA_RANGE`` (within ``_EDGE``): at the
    upper edge almost every state is seen once, so the slope is not measurable
    and ``mu`` is only the range's end, not an estimate.
    """
    c = check_counts(counts)
    min_tail = check_int(min_tail, "min_tail", 1)
    if k_min is not None:
        if isinstance(k_min, bool) or int(k_min) != k_min or k_min < 1:
            raise ValueError(f"k_min: must be a positive integer, got {k_min!r}")
        candidates = [int(k_min)]
        needed = 2
    else:
        uniq = np.unique(c)
        n_geq = c.size - np.searchsorted(np.sort(c), uniq)  # states with k >= candidate
        candidates = [int(u) for u, n in zip(uniq, n_geq) if n >= min_tail]
        needed = min_tail
    best = None
    for km in candidates:
        tail = c[c >= km]
        if tail.size < needed:
            continue
        if np.all(tail == tail[0]):
            continue  # a single count value carries no slope information
        a, se = _mle_alpha(float(np.log(tail).sum()), tail.size, km)
        ks = _ks_distance(tail, a, km)
        if best is None or ks < best.ks:
            best = PowerLawFit(mu=a - 1.0, mu_err=se, k_min=km, n_tail=int(tail.size), ks=ks)
    if best is None:
        raise ValueError(
            f"counts: too few states ({c.size}) or too little spread to fit a power law "
            f"(need >= {needed} states in the tail with at least two distinct counts)"
        )
    lo, hi = ALPHA_RANGE
    if best.alpha > hi - _EDGE[1]:
        best = dataclasses.replace(best, fitted=False, reason=(
            f"mu = {best.mu:.2f} is the upper edge of the search range (alpha <= {hi:g}): "
            "almost every state is seen once, so the slope is not measurable"))
    elif best.alpha < lo + _EDGE[0]:
        best = dataclasses.replace(best, fitted=False, reason=(
            f"mu = {best.mu:.3f} is the lower edge of the search range (alpha > 1): "
            "the counts are too flat for a normalisable power law"))
    return best


def sample_power_law_counts(n_states: int, mu: float, k_min: int = 1, k_max: int = 10**6,
                            rng: np.random.Generator | None = None) -> np.ndarray:
    """Draw n_states counts from P(k) ∝ k^-(1+mu), k_min <= k <= k_max (exact inverse CDF)."""
    n_states = check_int(n_states, "n_states", 0)
    mu = check_positive_finite(mu, "mu", "must be > 0 for a normalisable law")
    k_min = check_int(k_min, "k_min", 1)
    k_max = check_int(k_max, "k_max", k_min)
    rng = np.random.default_rng() if rng is None else rng
    k = np.arange(k_min, k_max + 1, dtype=float)
    cdf = np.cumsum(k ** -(1.0 + mu))
    cdf /= cdf[-1]
    return (np.searchsorted(cdf, rng.random(n_states), side="right") + k_min).astype(np.int64)


def power_law_sample(M: int, mu: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Counts of a sample of exactly M inputs whose state counts follow P(k) ∝ k^-(1+mu).

    Counts are drawn one state at a time until they add up to M; the last one
    is trimmed so that the total is exactly M.
    """
    M = check_int(M, "M", 1)
    mu = check_positive_finite(mu, "mu", "must be > 0 for a normalisable law")
    rng = np.random.default_rng() if rng is None else rng
    parts, total = [], 0
    while total < M:
        c = sample_power_law_counts(max(16, M // 4), mu, k_max=M, rng=rng)
        parts.append(c)
        total += int(c.sum())
    c = np.concatenate(parts)
    cs = np.cumsum(c)
    last = int(np.searchsorted(cs, M))  # first index where the running total reaches M
    out = c[: last + 1].copy()
    out[-1] -= int(cs[last] - M)
    return out
