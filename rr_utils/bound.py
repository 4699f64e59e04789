"""Maximal-relevance bound: the largest H[K] reachable at a given H[s] for M samples.

A sample of M inputs is summarised by m_k, the number of distinct states seen
exactly k times (sum_k k m_k = M). In nats,

    H[s] = sum_k m_k (k/M) log(M/k)                     (linear in m_k)
    H[K] = sum_k (k m_k/M) [log(M/k) - log m_k]          (separable, concave)

For each mu >= 0 we maximise F = H[K] + mu H[s] over non-negative integers m_k
with sum_k k m_k = M; the maximisers trace the upper boundary of the (H[s], H[K])
plane, with slope dH[K]/dH[s] = -mu (mu = 1: Zipf's law; mu = 0: the top).

The points are computed by a certified Lagrangian relaxation
(``rr_utils.relaxation``: the method, its certificate ``gap`` and its cost).

Range of mu
-----------
Public functions accept mu >= 0 only (negative or NaN -> ValueError). The
default grid is mu = 0 plus a geometric grid from 1e-3 up to
mu_max = 2 (1 + log M) / log 2, beyond which the optimum is every input
distinct, (H[s], H[K]) = (log M, 0). The low-resolution side (H[s] below the
top of the curve) is the diagonal H[K] = H[s] (all m_k in {0, 1}), see
``low_resolution_branch``; the short arc between the end of that diagonal and
the top is traced internally with -1 < mu < 0 for ``bound_at``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from rr_utils import relaxation
from rr_utils._checks import check_sample_size, is_int

__all__ = [
    "max_relevance_curve",
    "low_resolution_branch",
    "zipf_point",
    "bound_at",
    "frontier",
    "optimal_mk",
    "partition_frontier",
    "default_mu_grid",
]

_PARTITION_MAX_M = 60
_N_AUX = 64  # auxiliary mu grid whose solutions every mu may reuse


# -------------------------------------------------------------- public API


def default_mu_grid(M: int, n: int = 200) -> np.ndarray:
    """mu = 0 plus a geometric grid from 1e-3 to 2 (1 + log M) / log 2 (all distinct beyond).

    Parameters
    ----------
    M : int
        The sample size (number of inputs), >= 1.
    n : int
        Grid points, >= 2.

    Returns
    -------
    numpy.ndarray
    """
    M = check_sample_size(M)
    if not is_int(n) or n < 2:
        raise ValueError(f"n: expected an integer >= 2 grid points, got {n!r}")
    mu_max = 2.0 * (1.0 + np.log(M)) / np.log(2.0)
    return np.concatenate([[0.0], np.geomspace(1e-3, mu_max, n - 1)])


def _check_mu(mu) -> np.ndarray:
    """Validate mu (scalar or 1-D array-like of finite values >= 0)."""
    try:
        arr = np.asarray(mu, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"mu: cannot be read as numbers ({exc})") from None
    if arr.ndim > 1:
        raise ValueError(f"mu: expected a scalar or 1-D array, got shape {arr.shape}")
    arr = np.atleast_1d(arr)
    if arr.size == 0:
        raise ValueError("mu: empty; give at least one value")
    if np.isnan(arr).any():
        raise ValueError("mu: contains NaN")
    if np.isinf(arr).any():
        raise ValueError("mu: contains infinite values; "
                         "use a large finite mu for the all-distinct end")
    if (arr < 0).any():
        raise ValueError(f"mu: negative values (e.g. {arr[arr < 0][:3].tolist()}); mu must be >= 0 "
                         "(the low-resolution side is low_resolution_branch)")
    return np.sort(arr)


def _solve(M: int, mu: np.ndarray):
    """``relaxation.solve`` with the auxiliary grid ``default_mu_grid(M, _N_AUX)``."""
    return relaxation.solve(M, mu, default_mu_grid(M, _N_AUX))


def max_relevance_curve(M, mu=None) -> pd.DataFrame:
    """Maximal-relevance curve for M samples: one row per mu (sorted), in nats.

    Columns: mu, H_s, H_K (a feasible integer m_k maximising H_K + mu H_s up to
    ``gap``), gap (certified: no integer m_k with sum k m_k = M exceeds
    H_K + mu H_s + gap), H_s_norm, H_K_norm (divided by log M; 0 when M == 1).
    mu: scalar or 1-D array of values >= 0; default ``default_mu_grid(M)``.

    Parameters
    ----------
    M : int
        The sample size (number of inputs), >= 1.
    mu : float or array_like, optional
        Slopes >= 0.

    Returns
    -------
    pandas.DataFrame
        Columns mu, H_s, H_K, gap, H_s_norm, H_K_norm.
    """
    M = check_sample_size(M)
    mu = default_mu_grid(M) if mu is None else _check_mu(mu)
    hs, hk, gap, _ = _solve(M, mu)
    norm = np.log(M) if M > 1 else np.inf
    return pd.DataFrame({"mu": mu, "H_s": hs, "H_K": hk, "gap": gap,
                         "H_s_norm": hs / norm, "H_K_norm": hk / norm})


def optimal_mk(M, mu) -> np.ndarray:
    """Integer m_k (index k-1, k = 1..M) of the curve's point at one mu >= 0.

    Parameters
    ----------
    M : int
        The sample size (number of inputs), >= 1.
    mu : float
        One slope >= 0.

    Returns
    -------
    numpy.ndarray
        int64 m_k, index k - 1.
    """
    M = check_sample_size(M)
    arr = _check_mu(mu)
    if arr.size != 1:
        raise ValueError(f"mu: expected a single value, got {arr.size}")
    return relaxation.mk_from_solution(M, _solve(M, arr)[3][0])


def zipf_point(M) -> tuple[float, float]:
    """(H_s, H_K) in nats of the curve at mu = 1 (Zipf's law, m_k ~ k^-2).

    Parameters
    ----------
    M : int
        The sample size (number of inputs), >= 1.

    Returns
    -------
    tuple of float
        ``(H_s, H_K)`` in nats.
    """
    row = max_relevance_curve(M, 1.0).iloc[0]
    return float(row["H_s"]), float(row["H_K"])


def _distinct_partition(M: int, n: int) -> np.ndarray:
    """Most even partition of M into n distinct parts (requires n(n+1)/2 <= M)."""
    base, extra = divmod(M - n * (n - 1) // 2, n)
    counts = base + np.arange(n)
    counts[n - extra:] += 1  # top parts +1: stay distinct
    return counts


def low_resolution_branch(M, n_points: int = 200) -> pd.DataFrame:
    """Diagonal H_K = H_s of samples whose states all have distinct counts (m_k in {0, 1}).

    Points: for n = 1 .. n_max states (n_max(n_max+1)/2 <= M, subsampled to at most
    ``n_points``), the most even partition of M into n distinct counts; from
    (0, 0) at n = 1 to the largest H_s reachable with distinct counts at n_max,
    where the diagonal joins the curve's low-resolution arc.

    Parameters
    ----------
    M : int
        The sample size (number of inputs), >= 1.
    n_points : int
        At most this many points.

    Returns
    -------
    pandas.DataFrame
        Columns H_s, H_K, H_s_norm, H_K_norm.
    """
    M = check_sample_size(M)
    n_points = check_sample_size(n_points, "n_points")
    n_max = int((np.sqrt(8.0 * M + 1.0) - 1.0) // 2)
    while n_max * (n_max + 1) // 2 > M:  # guard the float sqrt
        n_max -= 1
    ns = np.unique(np.rint(np.geomspace(1, n_max, min(n_points, n_max))).astype(int))
    hs = np.array([_entropy_of_counts(_distinct_partition(M, int(n)), M) for n in ns])
    norm = np.log(M) if M > 1 else np.inf
    return pd.DataFrame({"H_s": hs, "H_K": hs, "H_s_norm": hs / norm, "H_K_norm": hs / norm})


def _entropy_of_counts(counts: np.ndarray, M: int) -> float:
    p = counts / M
    return float((p * np.log(1.0 / p)).sum()) + 0.0  # + 0.0: no -0.0 for one state


@functools.lru_cache(maxsize=16)
def _bound_nodes(M: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (H_s ascending, H_K) of the upper hull of every feasible point we know."""
    diag = low_resolution_branch(M)
    # -1 < mu < 0: the arc from the diagonal's end to the top; then the default
    # curve's own solutions (so its points never lie above bound_at) and the aux grid
    mu = np.concatenate([np.linspace(-0.99, -0.01, 50), default_mu_grid(M),
                         default_mu_grid(M, _N_AUX)])
    sols, _ = relaxation.solve_each(relaxation.grid(M), mu)
    hs = np.concatenate([diag["H_s"], [p.hs for p in sols], [math.log(M)]])
    hk = np.concatenate([diag["H_K"], [p.hk for p in sols], [0.0]])
    return _upper_hull(hs, hk)


def _upper_hull(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of the upper concave hull of points (x, y), x ascending (monotone chain)."""
    order = np.lexsort((-y, x))
    hull: list[tuple[float, float]] = []
    for px, py in zip(x[order], y[order]):
        if hull and px - hull[-1][0] <= 1e-12 * max(1.0, abs(px)):
            continue  # same x up to rounding, lower y
        while len(hull) >= 2:
            (ax, ay), (bx, by) = hull[-2], hull[-1]
            if (bx - ax) * (py - ay) - (by - ay) * (px - ax) >= 0:  # b not above chord a-p
                hull.pop()
            else:
                break
        hull.append((px, py))
    hx, hy = np.array(hull).T
    return hx, hy


def bound_at(M, H_s):
    """Maximal H_K (nats) at resolution H_s (nats), for M samples.

    Interpolation: linear (np.interp) between the vertices of the upper concave
    hull of feasible points: the diagonal H_K = H_s from (0, 0)
    (``low_resolution_branch``), the arc from its end to the top (internal
    -1 < mu < 0, 50 values), every solution behind the default curve, and
    (log M, 0). Every vertex is realisable; between vertices the chord may sit a
    little under the true frontier, so a sample can exceed bound_at by a small
    amount (measured: up to 2e-4 nats over all partitions at M = 60, zero for
    exhaustive M <= 50 and for random samples at M = 1e3, 1e4). The rigorous
    statement is per mu: H_K + mu H_s <= curve value + gap. H_s must lie in
    [0, log M]; returns a float for scalar input, else an array. The nodes are
    cached per M (first call ~1 s at M = 60,000).

    Parameters
    ----------
    M : int
        The sample size (number of inputs), >= 1.
    H_s : float or array_like
        Resolutions in nats, in [0, log M].

    Returns
    -------
    float or numpy.ndarray
        The maximal H_K in nats.
    """
    M = check_sample_size(M)
    try:
        x = np.asarray(H_s, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"H_s: cannot be read as numbers ({exc})") from None
    if np.isnan(x).any():
        raise ValueError("H_s: contains NaN")
    top = np.log(M)
    tol = 1e-9 * max(top, 1.0)
    if (x < -tol).any() or (x > top + tol).any():
        raise ValueError(f"H_s: values must lie in [0, log M] = [0, {top:.6g}] nats")
    if M == 1:
        out = np.zeros_like(x)
    else:
        nodes_s, nodes_k = _bound_nodes(M)
        out = np.interp(x, nodes_s, nodes_k)
    return float(out) if out.ndim == 0 else out


def frontier(M) -> pd.DataFrame:
    """The whole bound as used by ``bound_at``: hull vertices from (0, 0) to (log M, 0).

    Columns ``H_s``, ``H_K`` (nats) and ``H_s_norm``, ``H_K_norm``; it joins the
    diagonal branch, the short arc up to the top of the curve (-1 < mu < 0) and
    the mu >= 0 curve, so plots show the bound without a break.

    Parameters
    ----------
    M : int
        The sample size (number of inputs), >= 1.

    Returns
    -------
    pandas.DataFrame
        Columns H_s, H_K, H_s_norm, H_K_norm.
    """
    M = check_sample_size(M)
    if M == 1:
        hs = hk = np.zeros(1)
    else:
        hs, hk = _bound_nodes(M)
    L = math.log(M) if M > 1 else 1.0
    return pd.DataFrame({"H_s": hs, "H_K": hk, "H_s_norm": hs / L if M > 1 else hs,
                         "H_K_norm": hk / L if M > 1 else hk})


def partition_frontier(M) -> tuple[np.ndarray, np.ndarray]:
    """(H_s, H_K) in nats of every integer partition of M (exhaustive, M <= 60).

    Built by dynamic programming over the largest part k, carrying for each
    partial partition the sums A = sum m_k k log k and C = sum k m_k log(k m_k),
    so H_s = log M - A/M and H_K = log M - C/M. p(60) ~ 1e6 partitions.

    Parameters
    ----------
    M : int
        The sample size, 1..60.

    Returns
    -------
    tuple of numpy.ndarray
        ``(H_s, H_K)`` in nats, one entry per partition.
    """
    M = check_sample_size(M)
    if M > _PARTITION_MAX_M:
        raise ValueError(f"M: exhaustive enumeration supports M <= {_PARTITION_MAX_M}, got {M}")
    # A[n], C[n]: one entry per partition of n into the parts allowed so far (start: 1s only)
    A = [np.zeros(1) for _ in range(M + 1)]
    C = [np.array([n * math.log(n) if n else 0.0]) for n in range(M + 1)]
    for k in range(2, M + 1):  # allow parts of size k, with multiplicity j
        for n in range(M, k - 1, -1):  # descending: A[n - j k] still lacks parts of size k
            js = range(n // k + 1)
            A[n] = np.concatenate([A[n - j * k] + j * k * math.log(k) for j in js])
            C[n] = np.concatenate([C[n - j * k] + (j * k * math.log(j * k) if j else 0.0)
                                   for j in js])
    logM = np.log(M)
    return logM - A[M] / M, logM - C[M] / M
