"""rr_utils.sample_size: per-layer numbers on random subsets of M inputs."""

import numpy as np
import pandas as pd
import pytest

from rr_utils import entropy as E
from rr_utils import sample_size as S


@pytest.fixture
def states():
    rng = np.random.default_rng(0)
    return [rng.random((1000, w)) < p for w, p in ((40, 0.5), (8, 0.3), (3, 0.5))]


def test_subsets_and_whole_set(states):
    t = S.layer_table_vs_m(states, [40, 8, 3], [100, 500, 1000], n_repeats=3, seed=1)
    assert t.groupby("M")["repeat"].nunique().to_dict() == {100: 3, 500: 3, 1000: 1}  # M = N: the set itself
    assert len(t) == (3 + 3 + 1) * 3
    whole = t[t["M"] == 1000].set_index("depth")
    for depth, st in enumerate(states, start=1):
        c = E.state_counts(st)
        assert whole.loc[depth, "n_states"] == c.size
        assert whole.loc[depth, "H_s_norm"] == pytest.approx(E.resolution(c, normalized=True))
        assert whole.loc[depth, "H_K_norm"] == pytest.approx(E.relevance(c, normalized=True))
    assert (t["below_bound_norm"] >= -1e-3).all()
    again = S.layer_table_vs_m(states, [40, 8, 3], [100, 500, 1000], n_repeats=3, seed=1)
    pd.testing.assert_frame_equal(t, again)  # seeded
    other = S.layer_table_vs_m(states, [40, 8, 3], [100], n_repeats=3, seed=2)
    assert not np.allclose(other["H_K_norm"], t[t["M"] == 100]["H_K_norm"])


def test_landmarks_and_stability():
    t = pd.DataFrame([
        dict(M=100, repeat=0, depth=1, units=30, H_K_norm=0.2, mu=3.0),
        dict(M=100, repeat=0, depth=2, units=10, H_K_norm=0.5, mu=1.4),
        dict(M=100, repeat=0, depth=3, units=5, H_K_norm=0.3, mu=np.nan),
        dict(M=1000, repeat=0, depth=1, units=30, H_K_norm=0.4, mu=1.1),
        dict(M=1000, repeat=0, depth=2, units=10, H_K_norm=0.3, mu=0.5),
        dict(M=1000, repeat=0, depth=3, units=5, H_K_norm=0.1, mu=np.nan),
    ])
    land = S.landmark_layers(t)
    assert land["zipf_units"].tolist() == [10, 30] and land["max_relevance_units"].tolist() == [10, 30]
    assert S.stability_summary(land, 1000) == {"m_min": 1000, "zipf_layers_seen": [30], "zipf_stable": True,
                                               "max_relevance_layers_seen": [30], "max_relevance_stable": True}
    s = S.stability_summary(land, 100)
    assert not s["zipf_stable"] and s["zipf_layers_seen"] == [10, 30] and not s["max_relevance_stable"]
    with pytest.raises(ValueError, match="m_min"):
        S.stability_summary(land, 5000)


@pytest.mark.parametrize("args, match", [
    (([], [], [10]), "empty list"),
    (([np.zeros((10, 3), bool), np.zeros((9, 2), bool)], [3, 2], [5]), "same inputs"),
    (([np.zeros((10, 3), bool)], [3, 2], [5]), "widths"),
    (([np.zeros((10, 3), bool)], [3], [50]), "exceeds"),
    (([np.zeros((10, 3), bool)], [3], [1]), "ms"),
])
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        S.layer_table_vs_m(*args)


def test_crossed_table_takes_landmarks_of_the_means():
    from rr_utils.sample_size import crossed_table

    def table(mus, hks, m):
        return pd.DataFrame([dict(M=m, repeat=r, depth=d + 1, units=u, H_s_norm=0.5, H_K_norm=hk + 0.01 * r, mu=mu + 0.1 * r)
                             for r in (0, 1) for d, (u, mu, hk) in enumerate(zip((30, 20, 10), mus, hks))])

    a = pd.concat([table([2.0, 1.4, 0.5], [0.2, 0.4, 0.3], 100), table([2.0, 0.95, 0.5], [0.5, 0.4, 0.3], 400)])
    b = pd.concat([table([1.05, 1.5, 0.5], [0.2, 0.3, 0.4], 100), table([1.0, 2.0, 0.6], [0.2, 0.3, 0.4], 400)])
    layers, land = crossed_table({"a": a, "b": b}, [100, 400])
    assert len(layers) == 12 and set(layers["network"]) == {"a", "b"}
    got = {(r.network, r.M): (r.zipf_units, r.max_relevance_units) for r in land.itertuples()}
    # means over the two repeats: mu + 0.05, H_K + 0.005
    assert got == {("a", 100): (20, 20), ("a", 400): (20, 30), ("b", 100): (30, 10), ("b", 400): (30, 10)}
    with pytest.raises(ValueError, match=r"network 'a' was not counted at M = \[800\]"):
        crossed_table({"a": a}, [800])
