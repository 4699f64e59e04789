"""Tests of rr_utils.bound: the maximal-relevance curve and its certificate.

Run with ``pytest -s tests/test_bound.py`` to see the measured shortfalls.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rr_utils import bound as B
from rr_utils import relaxation as RX
from rr_utils.bound import (
    bound_at,
    default_mu_grid,
    low_resolution_branch,
    max_relevance_curve,
    optimal_mk,
    partition_frontier,
    zipf_point,
)

TOL = 1e-9  # float rounding in sums of ~M terms


# ------------------------------------------------------------------ helpers


def entropies_from_counts(counts) -> tuple[float, float]:
    """(H_s, H_K) in nats from the counts k_s of the distinct states."""
    c = np.asarray(counts, dtype=float)
    M = c.sum()
    p = c / M
    k, mk = np.unique(c, return_counts=True)
    x = k * mk / M
    return float(-(p * np.log(p)).sum()), float(-(x * np.log(x)).sum())


def entropies_from_mk(mk) -> tuple[float, float]:
    """(H_s, H_K) in nats from m_k, k = 1..len(mk)."""
    k = np.arange(1, len(mk) + 1)
    return entropies_from_counts(np.repeat(k, mk))


def partitions(n: int, largest: int | None = None):
    """All integer partitions of n (brute force, for cross-checking)."""
    largest = n if largest is None else largest
    if n == 0:
        yield []
        return
    for k in range(min(n, largest), 0, -1):
        for rest in partitions(n - k, k):
            yield [k, *rest]


def sample_points(M: int, rng) -> np.ndarray:
    """(H_s, H_K) of random samples: uniform assignment to Q states, and power laws."""
    pts = []
    for Q in [1, 2, 5, 10, 30, 100, 300, 1000, 3000, 10**4, 10**6]:
        for _ in range(3):
            counts = np.unique(rng.integers(0, Q, M), return_counts=True)[1]
            pts.append(entropies_from_counts(counts))
    for a in [1.2, 1.5, 1.8, 2.0, 2.5, 3.0, 4.0]:  # rank-frequency power laws
        for _ in range(3):
            pts.append(entropies_from_counts(np.unique(rng.zipf(a, M), return_counts=True)[1]))
    return np.array(pts)


@pytest.fixture(scope="module")
def curve_60k() -> pd.DataFrame:
    return max_relevance_curve(60_000)


# ------------------------------------------------------------ internals


def test_inv_phi_matches_brute_force():
    j = np.arange(1, 200_001, dtype=float)
    phi = RX._phi(j)
    t = np.concatenate([np.linspace(-2.0, phi[-1], 200_001), phi,
                        np.nextafter(phi, np.inf), np.nextafter(phi, -np.inf)])
    t = t[t <= phi[-1]]
    expected = np.searchsorted(phi, t, side="left")  # #{j : phi(j) < t}
    np.testing.assert_array_equal(RX._inv_phi(t, 10**7), expected)
    np.testing.assert_array_equal(RX._inv_phi(t, 3), np.minimum(expected, 3))


def test_phi_scalar_agrees():
    for j in [1, 2, 3, 10, 12345, 10**7]:
        assert RX._phi_scalar(j) == pytest.approx(float(RX._phi(j)), abs=1e-12)


# ------------------------------------------------------- exhaustive checks


@pytest.mark.parametrize("M", range(1, 13))
def test_partition_frontier_matches_brute_force(M):
    hs, hk = partition_frontier(M)
    brute = np.array([entropies_from_counts(p) for p in partitions(M)])
    got = np.column_stack([hs, hk])
    assert len(got) == len(brute)
    key = lambda a: a[np.lexsort(np.round(a, 9).T[::-1])]  # sort rows, robust to ties
    np.testing.assert_allclose(key(got), key(brute), atol=1e-12)


@pytest.mark.parametrize("M, p_M", [(20, 627), (30, 5604), (40, 37338)])
def test_partition_counts(M, p_M):
    assert partition_frontier(M)[0].size == p_M


@pytest.mark.parametrize("M", [2, 3, 5, 10, 20, 30, 40])
def test_relaxation_vs_exhaustive(M):
    """Feasible (never above the exact optimum) and certified (exact <= value + gap).

    Measured: with solutions pooled across mu the relaxation hits the exact
    optimum for every mu tested here (shortfall < 1e-12); each mu solved on its
    own falls short by up to ~0.045 nats (M = 30); the dual bound itself sits up
    to ~0.07 nats (M = 10) above the exact optimum.
    """
    hs_all, hk_all = partition_frontier(M)
    mu = np.concatenate([default_mu_grid(M), np.random.default_rng(M).uniform(0, 6, 40)])
    df = max_relevance_curve(M, mu)
    exact = np.array([np.max(hk_all + m * hs_all) for m in df["mu"]])
    value = (df["H_K"] + df["mu"] * df["H_s"]).to_numpy()
    gap = df["gap"].to_numpy()
    assert np.all(value <= exact + TOL)
    assert np.all(exact <= value + gap + TOL)
    sols, _ = RX.solve_each(RX.grid(M), df["mu"].to_numpy())  # each mu on its own
    alone = exact - np.array([s.value for s in sols])
    print(f"M={M}: shortfall pooled {np.max(exact - value):.2e}, per-mu alone "
          f"{np.max(alone):.4f}, dual - exact <= {np.max(value + gap - exact):.4f} nats")
    assert np.max(exact - value) <= 1e-9


@pytest.mark.parametrize("M", [20, 40])
def test_partitions_below_bound_at(M):
    hs, hk = partition_frontier(M)
    assert np.max(hk - bound_at(M, hs)) <= 1e-9


@pytest.mark.parametrize("M", range(2, 41, 3))
def test_diagonal_ends_at_best_distinct_partition(M):
    hs, hk = partition_frontier(M)
    diagonal = np.abs(hs - hk) < 1e-12  # zero noise: every m_k in {0, 1}
    assert low_resolution_branch(M)["H_s"].iloc[-1] == pytest.approx(hs[diagonal].max(), abs=1e-12)


# ------------------------------------------------------------ realisability


@pytest.mark.parametrize("M", [1, 2, 3, 7, 50, 1000, 60_000])
@pytest.mark.parametrize("mu", [0.0, 0.3, 1.0, 3.0, 50.0])
def test_optimal_mk_is_realisable(M, mu):
    mk = optimal_mk(M, mu)
    assert mk.dtype.kind == "i" and mk.shape == (M,) and np.all(mk >= 0)
    assert int(np.arange(1, M + 1) @ mk) == M
    row = max_relevance_curve(M, mu).iloc[0]
    hs, hk = entropies_from_mk(mk)
    assert hs == pytest.approx(row["H_s"], abs=TOL)
    assert hk == pytest.approx(row["H_K"], abs=TOL)


# ---------------------------------------------------------- random samples


@pytest.mark.parametrize("M", [1000, 10_000])
def test_random_samples_never_exceed_bound(M):
    pts = sample_points(M, np.random.default_rng(M))
    df = max_relevance_curve(M)
    mu = df["mu"].to_numpy()[:, None]
    lagr = pts[None, :, 1] + mu * pts[None, :, 0]
    ceiling = (df["H_K"] + df["mu"] * df["H_s"] + df["gap"]).to_numpy()[:, None]
    assert np.all(lagr <= ceiling + TOL)  # rigorous, every mu
    excess = pts[:, 1] - bound_at(M, pts[:, 0])
    print(f"M={M}: {len(pts)} samples, max H_K - bound_at = {excess.max():.2e} nats")
    assert excess.max() <= 1e-6


# --------------------------------------------------------- shape and values


def partition_entropies(mk: np.ndarray, M: int) -> tuple[float, float]:
    """(H_s, H_K) in nats of the integer partition m_k (index k - 1), exactly (math.fsum), after checking sum k m_k = M."""
    k = np.arange(1, len(mk) + 1)
    assert int((k * mk).sum()) == M
    hs = -math.fsum(m * (j / M) * math.log(j / M) for j, m in zip(k.tolist(), mk.tolist()) if m)
    hk = -math.fsum((j * m / M) * math.log(j * m / M) for j, m in zip(k.tolist(), mk.tolist()) if m)
    return hs, hk


def test_reference_points_60000(curve_60k):
    """The Zipf point (mu = 1) and the top (mu = 0) are the entropies of integer partitions of M, certified optimal
    within ``gap``: computed exactly from those partitions, they must agree to rounding, not to 0.02."""
    L = math.log(60_000)
    hs, hk = zipf_point(60_000)
    exact = partition_entropies(optimal_mk(60_000, 1.0), 60_000)
    assert (hs, hk) == pytest.approx(exact, rel=1e-12, abs=1e-12)
    assert max_relevance_curve(60_000, 1.0)["gap"].iloc[0] < 1e-4  # no partition beats it by more
    assert (hs / L, hk / L) == pytest.approx((0.78, 0.38), abs=0.005)  # the paper's figure, read to two decimals
    top = curve_60k.iloc[0]
    assert top["mu"] == 0.0 and top["gap"] < 1e-4
    assert (top["H_s"], top["H_K"]) == pytest.approx(partition_entropies(optimal_mk(60_000, 0.0), 60_000), rel=1e-12)
    assert (top["H_s_norm"], top["H_K_norm"]) == pytest.approx((top["H_s"] / L, top["H_K"] / L), rel=1e-12)
    assert (top["H_s_norm"], top["H_K_norm"]) == pytest.approx((0.54, 0.52), abs=0.005)
    # the wrong input: the curve's point at mu = 0.95 passed abs=0.02 around (0.78, 0.38); it fails now
    wrong = max_relevance_curve(60_000, 0.95).iloc[0]
    assert (wrong["H_s_norm"], wrong["H_K_norm"]) == pytest.approx((0.78, 0.38), abs=0.02)
    assert (wrong["H_s"], wrong["H_K"]) != pytest.approx(exact, rel=1e-12, abs=1e-12)
    print(f"M=60000: Zipf ({hs / L:.4f}, {hk / L:.4f}), top ({top['H_s_norm']:.4f}, "
          f"{top['H_K_norm']:.4f}), max gap {curve_60k['gap'].max():.1e} nats")


@pytest.mark.parametrize("M", [10, 1000, 60_000])
def test_curve_shape(M, curve_60k):
    df = curve_60k if M == 60_000 else max_relevance_curve(M)
    assert list(df.columns) == ["mu", "H_s", "H_K", "gap", "H_s_norm", "H_K_norm"]
    assert len(df) == 200 and np.all(np.diff(df["mu"]) > 0) and df["mu"].iloc[0] == 0
    assert np.all(np.diff(df["H_s"]) >= -1e-12)
    assert np.all(np.diff(df["H_K"]) <= 1e-12)
    for col in ["H_s_norm", "H_K_norm"]:
        assert df[col].between(0, 1).all()
    assert np.all(df["gap"] >= 0)
    assert np.all(df["H_K"] <= df["H_s"] + TOL)  # noise H[s|K] >= 0
    end = df.iloc[-1]  # default grid reaches every input distinct
    assert end["H_s_norm"] == pytest.approx(1.0, abs=1e-12)
    assert end["H_K"] == pytest.approx(0.0, abs=1e-12)
    if M >= 1000:
        assert df["gap"].max() < 1e-3 * math.log(M)


def test_mu_argument_forms():
    M = 500
    one = max_relevance_curve(M, 1.0)
    assert len(one) == 1 and one["mu"].iloc[0] == 1.0
    many = max_relevance_curve(M, [2.0, 0.5, 1.0])
    assert many["mu"].tolist() == [0.5, 1.0, 2.0]
    for frame in (many, max_relevance_curve(M, np.array([1.0]))):
        r = frame.set_index("mu").loc[1.0]
        diff = abs((r["H_K"] + r["H_s"]) - (one["H_K"] + one["H_s"]).iloc[0])
        assert diff <= max(r["gap"], one["gap"].iloc[0]) + TOL
    assert zipf_point(M) == (one["H_s"].iloc[0], one["H_K"].iloc[0])


def test_large_M():
    M = 10**6
    df = max_relevance_curve(M, [0.0, 1.0, 5.0])
    assert df["gap"].max() < 1e-4
    mk = optimal_mk(M, 1.0)
    assert int(np.arange(1, M + 1) @ mk) == M
    assert entropies_from_mk(mk)[0] == pytest.approx(df["H_s"].iloc[1], abs=1e-8)


# ------------------------------------------------- low resolution, bound_at


@pytest.mark.parametrize("M", [3, 100, 60_000])
def test_low_resolution_branch(M):
    d = low_resolution_branch(M)
    assert list(d.columns) == ["H_s", "H_K", "H_s_norm", "H_K_norm"]
    assert np.array_equal(d["H_s"], d["H_K"])
    assert d["H_s"].iloc[0] == 0 and np.all(np.diff(d["H_s"]) > 0) and len(d) <= 200
    top = max_relevance_curve(M, 0.0).iloc[0]
    assert d["H_s"].iloc[-1] <= top["H_s"] + TOL  # joins the curve left of its top


@pytest.mark.parametrize("M", [30, 1000, 60_000])
def test_bound_at(M, curve_60k):
    L = math.log(M)
    junction = low_resolution_branch(M)["H_s"].iloc[-1]
    h = np.linspace(0, junction, 7)
    np.testing.assert_allclose(bound_at(M, h), h, atol=1e-12)  # the diagonal
    df = curve_60k if M == 60_000 else max_relevance_curve(M)
    assert np.all(bound_at(M, df["H_s"].to_numpy()) >= df["H_K"].to_numpy() - 1e-12)
    assert bound_at(M, L) == pytest.approx(0.0, abs=1e-12)
    assert isinstance(bound_at(M, 0.5 * L), float)
    assert bound_at(M, [0.1, 0.2]).shape == (2,)


# ------------------------------------------------------------- edge cases


def test_M_equal_1():
    df = max_relevance_curve(1)
    assert (df[["H_s", "H_K", "gap", "H_s_norm", "H_K_norm"]].to_numpy() == 0).all()
    assert optimal_mk(1, 1.0).tolist() == [1]
    assert zipf_point(1) == (0.0, 0.0)
    assert bound_at(1, 0.0) == 0.0
    d = low_resolution_branch(1)
    assert len(d) == 1 and (d.to_numpy() == 0).all()
    hs, hk = partition_frontier(1)
    assert hs.tolist() == [0.0] and hk.tolist() == [0.0]


@pytest.mark.parametrize("M", [0, -3, 2.5, True, "10", None, float("nan")])
def test_bad_M(M):
    for fn in (max_relevance_curve, low_resolution_branch, zipf_point, partition_frontier):
        with pytest.raises(ValueError, match="M"):
            fn(M)
    with pytest.raises(ValueError, match="M"):
        bound_at(M, 0.1)
    with pytest.raises(ValueError, match="M"):
        optimal_mk(M, 1.0)


@pytest.mark.parametrize("mu, word", [(-0.5, "negative"), ([1.0, -1e-9], "negative"),
                                      (float("nan"), "NaN"), ([0.5, np.nan], "NaN"),
                                      (np.inf, "infinite"), ([[1.0, 2.0]], "1-D"),
                                      ([], "empty"), ("abc", "numbers")])
def test_bad_mu(mu, word):
    with pytest.raises(ValueError, match=word):
        max_relevance_curve(50, mu)


def test_bad_other_inputs():
    with pytest.raises(ValueError, match="single"):
        optimal_mk(50, [0.5, 1.0])
    with pytest.raises(ValueError, match="M <= 60"):
        partition_frontier(61)
    bad = [(-0.1, "log M"), (math.log(50) + 0.1, "log M"), (np.nan, "NaN"), ("x", "numbers")]
    for h, word in bad:
        with pytest.raises(ValueError, match=word):
            bound_at(50, h)


def test_frontier_joins_origin_to_all_distinct_and_matches_bound_at():
    from rr_utils.bound import bound_at, frontier

    f = frontier(10_000)
    assert f["H_s"].iloc[0] == 0 and f["H_K"].iloc[0] == 0
    assert np.isclose(f["H_s_norm"].iloc[-1], 1.0) and f["H_K"].iloc[-1] == 0
    assert np.all(np.diff(f["H_s"]) > 0)
    assert np.allclose(bound_at(10_000, f["H_s"].to_numpy()), f["H_K"].to_numpy())
