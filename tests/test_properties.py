"""Property-based tests (hypothesis) of the estimators, the exact counters and the bound.

Every property holds for *any* sample, so hypothesis draws the samples:

* counting is invariant to the order of rows and of columns (units);
* 0 <= H[K] <= H[s] <= log M, and noise = H[s] - H[K] >= 0;
* normalised values lie in [0, 1];
* no sample lies above the maximal-relevance bound (the rigorous per-mu form
  H_K + mu H_s <= curve(mu) + gap, and ``bound_at`` within its documented slack);
* the streaming counter (any batching, 0/1 or probability input) agrees with
  the one-shot ``state_counts``.

The examples are derandomised (the same on every run, so ``make test`` is
deterministic); ``HYPOTHESIS_PROFILE=explore`` draws fresh, more numerous ones.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rr_utils import bound as B
from rr_utils import entropy as E

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("rr-default", max_examples=60, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("rr-explore", max_examples=1000, derandomize=False, **_COMMON)
PROFILE = "rr-explore" if os.environ.get("HYPOTHESIS_PROFILE") == "explore" else "rr-default"
prop = settings(settings.get_profile(PROFILE))  # applied per test: other test files keep their settings

TOL = 1e-9  # float rounding in nats


# ----------------------------------------------------------------- strategies


@st.composite
def binary_samples(draw, max_rows: int = 80, max_units: int = 130):
    """(M, n) bool array with repeated rows: M rows drawn from a few prototypes.

    n up to 130 exercises the multi-word (> 64 bits) packing and its padding.
    """
    n = draw(st.integers(1, max_units))
    n_protos = draw(st.integers(1, 12))
    protos = draw(hnp.arrays(np.bool_, (n_protos, n)))
    M = draw(st.integers(1, max_rows))
    idx = draw(hnp.arrays(np.int64, M, elements=st.integers(0, n_protos - 1)))
    return protos[idx]


counts_lists = st.lists(st.integers(1, 60), min_size=1, max_size=80)


def _sorted_counts(states) -> list[int]:
    return sorted(E.state_counts(states).tolist())


def _reference_counts(states: np.ndarray) -> list[int]:
    """Exact counts by Python tuples: the obvious, slow definition."""
    seen: dict[tuple, int] = {}
    for row in states.tolist():
        key = tuple(bool(v) for v in row)
        seen[key] = seen.get(key, 0) + 1
    return sorted(seen.values())


# ----------------------------------------------------------------- counting


@prop
@given(states=binary_samples(), data=st.data())
def test_counts_invariant_to_row_and_column_order(states, data):
    M, n = states.shape
    rows = data.draw(st.permutations(range(M)), label="row order")
    cols = data.draw(st.permutations(range(n)), label="column order")
    base = _sorted_counts(states)
    assert base == _reference_counts(states)
    assert sum(base) == M
    assert _sorted_counts(states[list(rows)]) == base
    assert _sorted_counts(states[:, list(cols)]) == base
    assert _sorted_counts(states[list(rows)][:, list(cols)]) == base
    # and the estimators, which see only the counts, agree exactly
    c1, c2 = E.state_counts(states), E.state_counts(states[list(rows)][:, list(cols)])
    for fn in (E.resolution, E.relevance, E.noise):
        assert fn(c1) == pytest.approx(fn(c2), abs=TOL)


@prop
@given(states=binary_samples(), data=st.data())
def test_streaming_counter_agrees_with_one_shot(states, data):
    M = states.shape[0]
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, M - 1)), max_size=6), label="batch cuts"))
    cuts = [c for c in cuts if 0 < c < M]
    as_probs = data.draw(st.booleans(), label="feed probabilities")
    counter = E.StateCounter()
    for part in np.split(states, cuts):
        if as_probs:  # probabilities on the right side of the threshold give the same states
            part = np.where(part, 0.75, 0.25).astype(np.float32)
        counter.update(part)
    assert counter.M == M
    assert len(counter) == len(E.state_counts(states))
    assert sorted(counter.counts().tolist()) == _sorted_counts(states)


# ----------------------------------------------------------------- entropies


@prop
@given(counts=counts_lists)
def test_entropy_inequalities(counts):
    c = np.array(counts)
    M = int(c.sum())
    hs, hk, nz = E.resolution(c), E.relevance(c), E.noise(c)
    assert -TOL <= hk <= hs + TOL
    assert hs <= math.log(M) + TOL
    assert nz >= -TOL
    assert nz == pytest.approx(hs - hk, abs=1e-9)
    if len(set(counts)) == len(counts):  # all counts distinct: no noise, H[K] = H[s]
        assert hk == pytest.approx(hs, abs=1e-9)


@prop
@given(counts=counts_lists)
def test_normalised_values_in_unit_interval(counts):
    s = E.summary(counts)
    for key in ("H_s_norm", "H_K_norm", "noise_norm"):
        assert -TOL <= s[key] <= 1 + TOL, (key, s[key])
    assert s["H_K_norm"] <= s["H_s_norm"] + TOL
    if s["M"] == 1:
        assert s["H_s_norm"] == s["H_K_norm"] == 0.0


@prop
@given(counts=counts_lists, data=st.data())
def test_estimators_invariant_to_count_order_and_zero_counts(counts, data):
    shuffled = data.draw(st.permutations(counts), label="count order")
    zeros = data.draw(st.integers(0, 5), label="unseen states")
    other = np.array(list(shuffled) + [0] * zeros)
    for fn in (E.resolution, E.relevance, E.noise):
        assert fn(counts) == pytest.approx(fn(other), abs=TOL)


# ----------------------------------------------------------------- the bound

MU_CHECK = np.array([0.0, 0.25, 0.5, 1.0, 2.0, 4.0])
BOUND_AT_SLACK = 1e-3  # bound_at interpolates hull vertices; documented excess <= 2e-4 nats


@prop
@given(counts=st.lists(st.integers(1, 40), min_size=1, max_size=40))
def test_no_sample_above_the_bound(counts):
    c = np.array(counts)
    M = int(c.sum())
    hs, hk = E.resolution(c), E.relevance(c)
    # rigorous: for every mu, H_K + mu H_s <= max over integer m_k (certified gap included)
    curve = B.max_relevance_curve(M, MU_CHECK)
    best = curve["H_K"] + curve["mu"] * curve["H_s"] + curve["gap"]
    assert np.all(hk + curve["mu"] * hs <= best + 1e-9), (M, hs, hk)
    # the interpolated frontier used by the notebooks and the CLI
    assert hk <= B.bound_at(M, hs) + BOUND_AT_SLACK
    assert B.bound_at(M, hs) <= hs + 1e-9  # the bound itself never claims H_K > H_s


@prop
@given(M=st.integers(1, 3000))
def test_bound_curve_is_feasible_and_normalised(M):
    curve = B.max_relevance_curve(M, MU_CHECK)
    assert (curve["gap"] >= 0).all()
    assert (curve["H_K"] <= curve["H_s"] + 1e-9).all()
    assert (curve["H_s"] <= math.log(M) + 1e-9).all()
    for col in ("H_s_norm", "H_K_norm"):
        assert ((curve[col] >= -TOL) & (curve[col] <= 1 + TOL)).all()
    # the realised m_k of one point is a partition of M with that point's entropies
    mk = B.optimal_mk(M, 1.0)
    k = np.arange(1, M + 1)
    assert int((k * mk).sum()) == M
    counts = np.repeat(k, mk)
    row = curve[curve["mu"] == 1.0].iloc[0]
    assert E.resolution(counts) == pytest.approx(row["H_s"], abs=1e-9)
    assert E.relevance(counts) == pytest.approx(row["H_K"], abs=1e-9)
