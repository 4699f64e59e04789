"""The verdicts against the references: decisions with intervals, measured references, calibration controls."""

import numpy as np
import pandas as pd
import pytest

from rr_utils import entropy as E
from rr_utils.claims import c2_near_bound as C2
from rr_utils.claims import calibration as K
from rr_utils.claims import decision as D
from rr_utils.claims import layers as CL
from rr_utils.claims import nulls as N
from rr_utils.claims import references as R
from rr_utils.claims import rules as CR
from rr_utils.claims import stats as S
from rr_utils.data import load_dataset
from rr_utils.models import DBNConfig

# ------------------------------------------------------------ decision


def test_compare_decides_by_the_interval_over_draws():
    refs = np.linspace(0.0, 1.0, 20)
    assert D.compare(1.5, [], refs, reference="r").decision == "holds"
    assert D.compare(-0.5, [], refs, reference="r").decision == "does not hold"
    assert D.compare(0.5, [], refs, reference="r").decision == "undecided"
    # orientation: for a distance, lower is better
    c = D.compare(-0.5, [], refs, reference="r", higher_is_better=False)
    assert c.decision == "holds" and c.mean_effect == pytest.approx(1.0) and c.quantile == 1.0
    # a reference draw without the statistic (no power-law fit) is beaten
    assert D.compare(0.1, [], [np.nan] * 19 + [0.5], reference="r", higher_is_better=False).quantile == 1.0
    # the tested statistic's own noise widens the interval: the same estimate, noisy, is undecided
    noisy = D.compare(1.5, np.random.default_rng(0).normal(0, 1.0, 200), refs, reference="r")
    assert noisy.decision == "undecided" and noisy.effect_lo < 0 < noisy.effect_hi


def test_compare_rates_on_exchangeable_and_shifted_draws():
    """A tested value drawn from the references' own distribution says "holds" about 1/(n+1) of the time
    (here 1/21); one shifted by 5 sd nearly always. The wrong rule (against the references' mean) fails this."""
    rng = np.random.default_rng(1)
    neg = [D.compare(rng.normal(), rng.normal(0, 0.01, 50), rng.normal(size=20), reference="r").holds
           for _ in range(400)]
    pos = [D.compare(5 + rng.normal(), rng.normal(0, 0.01, 50), rng.normal(size=20), reference="r").holds
           for _ in range(200)]
    assert np.mean(neg) <= 0.08
    assert np.mean(pos) >= 0.95
    wrong = [rng.normal() > np.mean(r) + 1.96 * np.std(r) / np.sqrt(20) for r in rng.normal(size=(400, 20))]
    assert np.mean(wrong) > 0.2  # why the interval is over draws, not over the mean


@pytest.mark.parametrize("call, match", [
    (lambda: D.compare(np.nan, [], [0, 1], reference="r"), "estimate"),
    (lambda: D.compare(1.0, [], [0], reference="r"), "at least 2"),
    (lambda: D.compare(1.0, [], [0, 1], reference="r", level=1.5), "level"),
])
def test_compare_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ------------------------------------------------------------ references


def test_match_resolution_reaches_targets_and_keeps_the_natural_reading():
    rng = np.random.default_rng(0)
    v = 1 / (1 + np.exp(-(rng.normal(size=(3000, 12)) @ rng.normal(size=(12, 12)) + rng.normal(size=12))))
    natural = E.resolution(R.fast_counts(v > 0.5))
    m = R.match_resolution(v, natural)
    assert m["matched"] and m["tau"] == pytest.approx(1.0, rel=0.05)
    top = R.match_resolution(v, np.log(3000))["H_s"]  # every unit balanced: the most these units resolve
    assert top > natural
    for target in (0.4 * natural, 0.8 * natural, 0.5 * (natural + top)):
        m = R.match_resolution(v, target)
        assert m["matched"] and abs(m["H_s"] - target) <= 2e-3 * np.log(3000)
        assert int(m["counts"].sum()) == 3000
    unreachable = R.match_resolution(v[:, :2], 0.9 * np.log(3000))  # two units: at most 4 states
    assert not unreachable["matched"] and unreachable["H_s"] <= np.log(4) + 1e-9


def test_fast_counts_equal_state_counts():
    rng = np.random.default_rng(3)
    for w in (1, 7, 62, 70):
        bits = rng.random((500, w)) < 0.1
        assert sorted(R.fast_counts(bits)) == sorted(E.state_counts(bits))


def test_untrained_network_draws_are_fresh_initialisations():
    cfg = DBNConfig(hidden_sizes=(20, 10), seed=3)
    a, b = R.untrained_network(cfg, 0, n_visible=30), R.untrained_network(cfg, 1, n_visible=30)
    again = R.untrained_network(cfg, 0, n_visible=30)
    assert a.sizes == (30, 20, 10)
    assert np.array_equal(a.rbms[0].W.numpy(), again.rbms[0].W.numpy())
    assert not np.array_equal(a.rbms[0].W.numpy(), b.rbms[0].W.numpy())
    assert float(a.rbms[1].hbias.abs().sum()) == 0.0  # biases start at 0, as the recipe's


@pytest.fixture(scope="module")
def small_world():
    """A small untrained-DBN world on 2,000 MNIST digits: widths, inputs, a 'trained' stack at known
    resolutions (an untrained draw read at the natural threshold) and the untrained reference."""
    x = load_dataset("mnist", "train", verbose=False).images[:2000]
    cfg = DBNConfig(hidden_sizes=(120, 30, 20, 15, 10), seed=0)
    widths = list(cfg.hidden_sizes)
    probs = R.untrained_factory(cfg, x)(999)
    counts = [R.fast_counts(p > 0.5) for p in probs]
    return x, cfg, widths, counts


def test_on_bound_stack_passes_c2_and_a_projection_network_fails(small_world):
    """The issue's test of the API: a stack whose informative layers lie on the bound passes C2 against an
    untrained reference; a random-projection network, read by sign, does not."""
    x, cfg, widths, counts = small_world
    # informative layers at chosen resolutions (between the low-resolution branch and (1, 0))
    M = len(x)
    base = [np.ones(M, np.int64)] + [K.bound_counts_at(M, f * np.log(M)) for f in (0.95, 0.85, 0.75, 0.65)]
    ref = R.untrained_factory(cfg, x)
    kw = dict(untrained=ref, n_untrained=10, which=("C2",), n_boot_ci=50, n_draws=2)
    on = CL.layer_claims(base, widths, seed=0, **kw)["C2"]
    assert on["vs_null"]["n_informative"] >= 3
    assert on["vs_null"]["comparisons"]["untrained"]["decision"] == "holds" and on["holds_vs_null"]
    proj = [R.fast_counts(v > 0) for v in R.projection_values(x, widths, 5)]
    off = CL.layer_claims(proj, widths, seed=0, **kw)["C2"]
    assert not off["holds_vs_null"] and off["vs_null"]["decision"] != "holds"


def test_layer_claims_records_each_reference_and_checks_its_sources(small_world):
    x, cfg, widths, counts = small_world
    r = CL.layer_claims(counts, widths, seed=0, untrained=R.untrained_factory(cfg, x), n_untrained=3, inputs=x,
                        n_projections=3, n_boot=0, n_gof=10, n_boot_ci=20, n_draws=2)
    for cid, rec in r.items():
        v = rec["vs_null"]
        assert v["decision"] in D.DECISIONS and rec["holds_vs_null"] == (v["decision"] == "holds")
        assert set(v["comparisons"]) <= {"untrained", "projections"}
        for c in v["comparisons"].values():
            assert c["n_draws"] == 3
    with pytest.raises(ValueError, match="untrained: expected a callable"):
        CL.layer_claims(counts, widths, untrained=[1, 2])
    with pytest.raises(ValueError, match="inputs: expected an"):
        CL.layer_claims(counts, widths, inputs=x[:10])
    with pytest.raises(ValueError, match="expected width"):
        CL.layer_claims(counts, widths, untrained=lambda d: [np.zeros((len(x), 3))] * len(widths), n_untrained=2,
                        which=("C1",))


# ------------------------------------------------------------ calibration


def test_controls_have_the_network_shape(small_world):
    x, cfg, widths, counts = small_world
    own = R.untrained_factory(cfg, x)(7)
    for kind in K.POSITIVE + K.NEGATIVE:
        c = K.control_counts(kind, counts, widths, x, cfg, 0, own)
        assert len(c) == len(widths) and all(int(v.sum()) == len(x) for v in c), kind
    on = K.control_counts("on_bound", counts, widths, x, cfg, 0, own)
    pts = [N.layer_point(v) for v in on]
    info = C2.informative_layers(pd.DataFrame(pts))
    assert all(abs(p["below_bound_norm"]) < 1e-3 for p, i in zip(pts, info["informative"]) if i)


def test_rate_table_and_summary_judge_only_the_expected_claims():
    cal = {"n_calibration": 20, "rates": {
        "on_bound": {"C1": 0.2, "C2": 0.95, "C3": 0.0}, "zipf_sample": {"C1": 0.0, "C2": 0.0, "C3": 0.5},
        "peak_above": {"C1": 1.0, "C2": 0.9, "C3": 0.0}, "noise_stack": {"C1": 0.0, "C2": 0.05, "C3": 0.0},
        "projection_network": {"C1": 0.1, "C2": 0.0, "C3": 0.0},
        "untrained_network": {"C1": 0.0, "C2": 0.0, "C3": 0.0},
        "untrained_matched": {"C1": 0.9, "C2": 0.0, "C3": 0.15}}}
    rates = K.rate_table(cal)
    s = K.summary(rates)["by_claim"]
    assert s["C1"]["calibrated"] and s["C2"]["calibrated"]  # untrained_matched's C1 is not judged
    assert not s["C3"]["calibrated"] and set(s["C3"]["failing"]) == {"zipf_sample", "untrained_matched"}


def test_zipf_sample_checks_small():
    z = K.zipf_sample_checks((500,), n_samples=2, n_gof=5, seed=0)["500"]
    assert z["n_samples"] == 2 and 0 <= z["gof_rate"] <= 1 and 0 <= z["as_stated_rate"] <= 1
    assert 0 <= z["zipf_distance_max"] <= 1


def test_zipf_distance_tells_zipf_samples_from_random_states():
    """Samples of the bound's Zipf optimum lie near 0; random states of the same resolution far away."""
    rng = np.random.default_rng(0)
    M = 4000
    law = S.zipf_law_mk(M)
    assert abs(float((np.arange(1, len(law) + 1) * law).sum()) - M) < 1.0  # M inputs in expectation
    near = [S.zipf_distance(K.zipf_sample(M, rng)) for _ in range(5)]
    hs = np.mean([E.resolution(K.zipf_sample(M, rng)) for _ in range(3)])
    w = next(w for w in range(4, 30) if E.resolution(E.state_counts(rng.random((M, w)) < 0.5)) > hs) - 1
    far = S.zipf_distance(E.state_counts(rng.random((M, w + 1)) < 0.3))
    assert max(near) < 0.06 < 0.12 < far
    assert S.zipf_distance(np.ones(M, int)) > 0.5  # every input alone: far from Zipf's law
    with pytest.raises(ValueError, match="counts"):
        S.zipf_distance([3, -1])


def test_c3_passes_on_a_zipf_sample_and_fails_on_a_reference_draw(small_world):
    """C3's test against the references: the tested layer replaced by a sample of the bound's Zipf
    optimum holds against untrained networks; an untrained draw read at 0.5 does not."""
    x, cfg, widths, counts = small_world
    own = R.untrained_factory(cfg, x)(7)
    kw = dict(untrained=R.untrained_factory(cfg, x), n_untrained=10, which=("C3",), n_boot=20, n_gof=5, n_draws=2)
    pos = CL.layer_claims(K.control_counts("zipf_sample", counts, widths, x, cfg, 0, own), widths, seed=0, **kw)["C3"]
    assert pos["vs_null"]["comparisons"]["untrained"]["decision"] == "holds"
    assert pos["vs_null"]["zipf_layer"]["zipf_distance"] < 0.06
    neg = CL.layer_claims(K.control_counts("untrained_network", counts, widths, x, cfg, 0, own), widths, seed=0,
                          **kw)["C3"]
    assert neg["vs_null"]["comparisons"]["untrained"]["decision"] != "holds" and not neg["holds_vs_null"]


def test_seed_rule_gives_decisions_and_intervals_over_seeds():
    def rec(dec, eff):
        return CR.verdict("C2", True, dec == "holds", {}, {"decision": dec, "comparisons": {
            "untrained": {"mean_effect": eff, "decision": dec}}})
    agg = CR.seed_rule([rec("holds", 0.02), rec("holds", 0.03), rec("undecided", 0.01), rec("holds", 0.025),
                       rec("holds", 0.02)])
    assert agg["decision_vs_null"] == "holds" and agg["evidence"]["decisions"]["undecided"] == 1
    e = agg["evidence"]["effects_over_seeds"]["untrained"]
    assert e["n"] == 5 and e["holds"] == 4 and e["lo"] < e["mean"] < e["hi"] and e["lo"] > 0
