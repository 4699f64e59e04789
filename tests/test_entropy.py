"""Estimators: exact values, invariances, bounds, counting exactness, power-law fits."""

import collections
import math

import numpy as np
import pytest
import scipy.stats
import torch

from rr_utils import entropy as E
from rr_utils._checks import check_counts

LOG = math.log


# --- exact values on hand-computed cases -----------------------------------

def test_all_distinct():
    c = np.ones(8, dtype=int)
    assert E.resolution(c) == pytest.approx(LOG(8))
    assert E.relevance(c) == pytest.approx(0.0)
    assert E.noise(c) == pytest.approx(LOG(8))
    assert E.resolution(c, normalized=True) == pytest.approx(1.0)


def test_all_identical():
    c = np.array([8])
    assert E.resolution(c) == 0.0 and E.relevance(c) == 0.0 and E.noise(c) == 0.0


def test_hand_computed_mixed_sample():
    # counts 3, 2, 2, 1 (M = 8): m_1 = 1, m_2 = 2, m_3 = 1
    c = np.array([3, 2, 2, 1])
    Hs = -(3 / 8 * LOG(3 / 8) + 2 * 2 / 8 * LOG(2 / 8) + 1 / 8 * LOG(1 / 8))
    HK = -(3 / 8 * LOG(3 / 8) + 4 / 8 * LOG(4 / 8) + 1 / 8 * LOG(1 / 8))
    assert E.resolution(c) == pytest.approx(Hs, abs=1e-12)
    assert E.relevance(c) == pytest.approx(HK, abs=1e-12)
    assert E.noise(c) == pytest.approx(4 / 8 * LOG(2), abs=1e-12)
    assert E.relevance(c, normalized=True) == pytest.approx(HK / LOG(8))


def test_uniform_sample_has_zero_relevance():
    c = np.full(50, 20)  # 50 states seen 20 times each
    assert E.resolution(c) == pytest.approx(LOG(50))
    assert E.relevance(c) == pytest.approx(0.0, abs=1e-12)


def test_m1_is_defined_as_zero_when_normalised():
    assert E.resolution([1], normalized=True) == 0.0
    assert E.relevance([1], normalized=True) == 0.0


def test_resolution_matches_scipy_entropy():
    rng = np.random.default_rng(1)
    for _ in range(20):
        c = rng.integers(1, 50, size=rng.integers(1, 200))
        assert E.resolution(c) == pytest.approx(scipy.stats.entropy(c), abs=1e-10)


def test_base2_peer_convention_agrees_after_normalisation():
    """rcubero/MSR computes in bits and divides by log2 M: same normalised values."""
    c = np.array([5, 3, 3, 1, 1, 1, 9])
    M = c.sum()
    k, m = np.unique(c, return_counts=True)
    hs2 = -np.sum(m * k / M * np.log2(k / M)) / np.log2(M)
    hk2 = -np.sum(k * m / M * np.log2(k * m / M)) / np.log2(M)
    assert E.resolution(c, normalized=True) == pytest.approx(hs2)
    assert E.relevance(c, normalized=True) == pytest.approx(hk2)


def test_frequency_of_frequencies_and_rank_frequency():
    k, m = E.frequency_of_frequencies([3, 1, 3, 2, 1, 1])
    assert k.tolist() == [1, 2, 3] and m.tolist() == [3, 1, 2]
    assert int(k @ m) == 11
    r, kr = E.rank_frequency([3, 1, 3, 2, 1, 1])
    assert r.tolist() == [1, 2, 3, 4, 5, 6] and kr.tolist() == [3, 3, 2, 1, 1, 1]


def test_inequalities_on_random_samples():
    rng = np.random.default_rng(2)
    for _ in range(200):
        c = rng.integers(1, 30, size=rng.integers(1, 100))
        M = c.sum()
        hs, hk = E.resolution(c), E.relevance(c)
        assert -1e-12 <= hk <= hs + 1e-12 <= LOG(M) + 2e-12
        assert E.noise(c) == pytest.approx(hs - hk, abs=1e-9)


# --- counting ---------------------------------------------------------------

def _reference_counts(states):
    return sorted(collections.Counter(map(tuple, np.asarray(states).astype(int).tolist())).values())


@pytest.mark.parametrize("n", [1, 7, 64, 65, 130, 500])
def test_state_counts_match_counter(n):
    rng = np.random.default_rng(n)
    base = rng.random((40, n)) < 0.5
    states = base[rng.integers(0, 40, size=400)]
    assert sorted(E.state_counts(states).tolist()) == _reference_counts(states)


def test_counts_invariant_to_row_and_column_order():
    rng = np.random.default_rng(3)
    s = (rng.random((300, 20)) < 0.3)[rng.integers(0, 300, 600)]
    ref = sorted(E.state_counts(s).tolist())
    assert sorted(E.state_counts(s[rng.permutation(600)]).tolist()) == ref
    assert sorted(E.state_counts(s[:, rng.permutation(20)]).tolist()) == ref


def test_accepts_bool_int_float_and_torch():
    s = np.array([[0, 1], [0, 1], [1, 1]])
    for x in (s, s.astype(bool), s.astype(np.float32), torch.tensor(s), torch.tensor(s, dtype=torch.bool)):
        assert sorted(E.state_counts(x).tolist()) == [1, 2]


def test_rows_differing_in_one_bit_are_never_merged():
    n = 500
    eye = np.eye(n, dtype=bool)  # n rows, each a single distinct bit
    s = np.concatenate([eye, np.zeros((1, n), bool)])
    assert E.state_counts(s).tolist() == [1] * (n + 1)


def test_hash_collisions_are_detected_and_resolved(monkeypatch):
    """Force every row to the same hash: the exact fallback must still separate them."""
    monkeypatch.setattr(E, "_hash_words", lambda w: np.zeros(w.shape[0], np.uint64))
    rng = np.random.default_rng(4)
    s = (rng.random((50, 100)) < 0.5)[rng.integers(0, 50, 300)]
    assert sorted(E.state_counts(s).tolist()) == _reference_counts(s)


def test_adversarial_patterns_padding_and_trailing_zeros():
    # rows that differ only in the last bit, in padding-adjacent positions, or all-zero/all-one
    n = 129
    rows = [np.zeros(n, bool), np.ones(n, bool)]
    for j in (0, 63, 64, 127, 128):
        r = np.zeros(n, bool)
        r[j] = True
        rows.append(r)
    s = np.array(rows * 3)
    assert sorted(E.state_counts(s).tolist()) == [3] * len(rows)


def test_streaming_counter_agrees_with_one_shot():
    rng = np.random.default_rng(5)
    probs = rng.random((1000, 70)).astype(np.float32)
    probs[500:] = probs[:500]
    counter = E.StateCounter()
    for i in range(0, 1000, 128):
        counter.update(torch.from_numpy(probs[i:i + 128]))
    assert counter.M == 1000
    assert sorted(counter.counts().tolist()) == sorted(E.state_counts(probs > 0.5).tolist())


def test_streaming_counter_update_returns_none_and_is_safe_in_a_hook():
    """A forward hook that returns a value replaces the module's output: update must return None."""
    c = E.StateCounter()
    assert c.update(np.zeros((2, 3))) is None
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Sigmoid(), torch.nn.Linear(3, 2))
    x = torch.rand(16, 4)
    ref = net(x)
    counter = E.StateCounter()
    h = net[1].register_forward_hook(lambda m, i, o: counter.update(o))
    try:
        out = net(x)  # crashed with "argument 'input' must be Tensor, not StateCounter" while update returned self
    finally:
        h.remove()
    assert torch.equal(out, ref) and counter.M == 16


def test_streaming_counter_rejects_unit_mismatch_and_bad_values():
    c = E.StateCounter()
    c.update(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="units"):
        c.update(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        c.update(np.full((1, 3), np.nan))
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        c.update(np.full((1, 3), 1.5))
    with pytest.raises(ValueError, match="no states"):
        E.StateCounter().counts()


# --- bad input ---------------------------------------------------------------

@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([[0, np.nan]]), "NaN"),
        (np.array([[0, 2]]), "values other than 0/1"),
        (np.array([[0.2, 1.0]]), "values other than 0/1"),
        (np.zeros((0, 3)), "empty"),
        (np.zeros(3), "2-D"),
        (np.zeros((2, 2, 2)), "2-D"),
        (np.array([["a", "b"]]), "not numeric"),
    ],
)
def test_state_counts_rejects_bad_states(bad, message):
    with pytest.raises(ValueError, match=message):
        E.state_counts(bad)


@pytest.mark.parametrize(
    "bad, message",
    [
        ([1, -2], "negative"),
        ([1.5, 2], "non-integer"),
        ([np.nan, 1], "NaN"),
        ([], "empty"),
        ([[1, 2]], "1-D"),
        ([0, 0], "all counts are zero"),
        ([True, False], "not an integer"),
        ([np.inf], "infinite"),
    ],
)
def test_estimators_reject_bad_counts(bad, message):
    for fn in (E.resolution, E.relevance, E.noise, E.frequency_of_frequencies, E.fit_power_law):
        with pytest.raises(ValueError, match=message):
            fn(np.array(bad))


def test_zero_counts_are_states_never_seen():
    assert check_counts([0, 2, 1]).tolist() == [2, 1]


# --- power laws --------------------------------------------------------------

@pytest.mark.parametrize("mu", [0.5, 1.0, 1.5, 2.5])
def test_fit_recovers_known_exponent(mu):
    rng = np.random.default_rng(int(mu * 10))
    counts = E.sample_power_law_counts(4000, mu, rng=rng)
    fit = E.fit_power_law(counts)
    assert abs(fit.mu - mu) < 4 * fit.mu_err + 0.03, fit
    assert 0 < fit.mu_err < 0.2


def test_fit_standard_error_is_calibrated():
    """Across repeated samples, the spread of the estimate matches the reported error."""
    rng = np.random.default_rng(11)
    fits = [E.fit_power_law(E.sample_power_law_counts(1000, 1.0, rng=rng), k_min=1) for _ in range(40)]
    est = np.array([f.mu for f in fits])
    se = np.mean([f.mu_err for f in fits])
    assert abs(est.mean() - 1.0) < 3 * se / np.sqrt(len(fits)) + 0.01
    assert 0.6 < est.std(ddof=1) / se < 1.5


def test_fit_with_kmin_above_a_non_power_law_head():
    rng = np.random.default_rng(12)
    tail = E.sample_power_law_counts(3000, 1.0, k_min=5, rng=rng)
    head = np.full(3000, 2)  # an excess of k=2 states the fit must skip
    fit = E.fit_power_law(np.concatenate([tail, head]))
    assert fit.k_min >= 3
    assert abs(fit.mu - 1.0) < 4 * fit.mu_err + 0.05


def test_fit_refuses_degenerate_samples():
    with pytest.raises(ValueError, match="too few"):
        E.fit_power_law(np.ones(100, int))
    with pytest.raises(ValueError, match="too few"):
        E.fit_power_law([1, 2, 3])


def test_fit_at_the_edge_of_the_search_range_is_not_fitted():
    # nearly every state seen once: the likelihood keeps rising towards alpha = 8
    fit = E.fit_power_law(np.r_[np.ones(500, int), 2], k_min=1)
    assert not fit.fitted and "upper edge" in fit.reason
    good = E.fit_power_law(E.sample_power_law_counts(2000, 1.0, rng=np.random.default_rng(0)))
    assert good.fitted and good.reason == ""
