"""Tests of the C4 machinery: Frechet distance, diversity scores, paired verdicts, mixing check."""

import json

import numpy as np
import pandas as pd
import pytest

from rr_utils.claims import c4_generation as CG
from rr_utils.generation import classifier, metrics, sampling, scoring

CPU = "cpu"


def random_stack(sizes, seed=0, scale=0.5):
    rng = np.random.default_rng(seed)
    return [(rng.normal(0, scale, (sizes[i], sizes[i + 1])).astype(np.float32),
             rng.normal(0, scale, sizes[i]).astype(np.float32),
             rng.normal(0, scale, sizes[i + 1]).astype(np.float32)) for i in range(len(sizes) - 1)]


class StubClassifier:
    """Features: 16 average-pooled pixel blocks; class: the brightest of the first 10 blocks."""

    def features(self, x):
        x = np.asarray(x, dtype=np.float64)
        return x.reshape(len(x), 16, -1).mean(axis=2)

    def predict_proba(self, x):
        f = self.features(x)[:, :10]
        e = np.exp(20 * (f - f.max(axis=1, keepdims=True)))
        return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- Frechet distance


def test_frechet_distance_hand_computed_gaussians():
    # diagonal: |m|^2 = 1 + 4; tr = 5 + 13; tr sqrt(C1 C2) = sqrt(4) + sqrt(36) = 8  ->  5 + 18 - 16 = 7
    a = metrics.FeatureStats.from_moments([0, 0], np.diag([1.0, 4.0]))
    b = metrics.FeatureStats.from_moments([1, 2], np.diag([4.0, 9.0]))
    # non-commuting: C1 = I so (C1 C2)^(1/2) = C2^(1/2), eigenvalues of C2 are 3 and 1
    c = metrics.FeatureStats.from_moments([0, 0], np.eye(2))
    d = metrics.FeatureStats.from_moments([3, 0], [[2.0, 1.0], [1.0, 2.0]])
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    e = metrics.FeatureStats.from_moments([0.5], [[0.25]])
    f = metrics.FeatureStats.from_moments([-1.0], [[4.0]])
    for method in ("eigh", "sqrtm"):
        assert metrics.frechet_distance(a, b, method) == pytest.approx(7.0, rel=1e-12)
        assert metrics.frechet_distance(c, d, method) == pytest.approx(9 + 2 + 4 - 2 * (1 + np.sqrt(3)), rel=1e-12)
        assert metrics.frechet_distance(d, c, method) == pytest.approx(9 + 2 + 4 - 2 * (1 + np.sqrt(3)), rel=1e-12)
        assert metrics.frechet_distance(e, f, method) == pytest.approx(1.5 ** 2 + 1.5 ** 2, rel=1e-12)
        assert metrics.frechet_distance(d, d, method) == pytest.approx(0.0, abs=1e-12)


def test_frechet_distance_from_samples_converges_to_the_gaussian_value():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(5, 5))
    C2 = A @ A.T / 5 + 0.1 * np.eye(5)
    m2 = np.arange(5) / 5
    x = rng.normal(size=(40_000, 5))
    y = rng.multivariate_normal(m2, C2, size=40_000)
    exact = metrics.frechet_distance(metrics.FeatureStats.from_moments(np.zeros(5), np.eye(5)), metrics.FeatureStats.from_moments(m2, C2))
    assert metrics.frechet_distance(x, y) == pytest.approx(exact, rel=0.03)


def test_frechet_methods_agree_on_singular_covariances():
    """n < d: both covariances singular (as for 100 generated images in 256 features)."""
    rng = np.random.default_rng(1)
    x = np.maximum(rng.normal(size=(40, 64)) @ rng.normal(size=(64, 64)), 0)
    y = np.maximum(rng.normal(size=(300, 64)) @ rng.normal(size=(64, 64)) + 0.5, 0)
    a, b = metrics.FeatureStats(x), metrics.FeatureStats(y)
    fe = metrics.frechet_distance(a, b, "eigh")
    fs = metrics.frechet_distance(a, b, "sqrtm")
    assert fe > 0 and fe == pytest.approx(fs, rel=1e-6)
    assert metrics.frechet_distance(x, x) == pytest.approx(0, abs=1e-8 * np.trace(a.cov))


def test_frechet_bad_input():
    with pytest.raises(ValueError, match="features"):
        metrics.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.FeatureStats(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.FeatureStats(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="positive semi-definite"):
        metrics.FeatureStats.from_moments([0, 0], [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="symmetric"):
        metrics.FeatureStats.from_moments([0, 0], [[1.0, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match="method"):
        metrics.frechet_distance(np.eye(3), np.eye(3), method="fast")


# --------------------------------------------------------------------------- diversity


def test_distinct_images_counts_binarised_shapes():
    rng = np.random.default_rng(0)
    a, b = (rng.random(784) > 0.5).astype(np.float32), (rng.random(784) > 0.5).astype(np.float32)
    grey_a = np.where(a > 0.5, 0.9, 0.1).astype(np.float32)  # same shape as a once thresholded at 0.5
    imgs = np.stack([a, a, a, grey_a, b, b])
    assert metrics.distinct_images(imgs) == 2
    assert metrics.distinct_images(imgs, threshold=0.95) == 3  # at 0.95 grey_a is blank: a, b, blank
    assert metrics.distinct_images(imgs[:1]) == 1
    with pytest.raises(ValueError, match="threshold"):
        metrics.distinct_images(imgs, threshold=1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        metrics.distinct_images(imgs * 2)


def test_within_class_diversity_hand_computed():
    x = np.zeros((4, 784), np.float32)
    x[1, :25] = 1.0  # class 0: distance 5 from image 0
    x[2, :16] = 1.0  # class 1: singleton, no pair
    x[3, :] = 0.0  # class 0 too: distances 0 (to image 0) and 5 (to image 1)
    out = metrics.within_class_diversity(x, [0, 0, 1, 0])
    assert out == {"mean_distance": pytest.approx((5 + 0 + 5) / 3), "n_pairs": 3, "n_classes_with_pairs": 1}
    none = metrics.within_class_diversity(x[:3], [0, 1, 2])
    assert np.isnan(none["mean_distance"]) and none["n_pairs"] == 0
    with pytest.raises(ValueError, match="labels"):
        metrics.within_class_diversity(x, [0, 1])


def test_features_are_the_penultimate_layer():
    x = np.random.default_rng(0).random((7, 784)).astype(np.float32)
    clf = classifier.DigitClassifier().train()  # features are taken in eval mode whatever the mode
    f = clf.features(x)
    assert clf.training
    assert f.shape == (7, 256) and f.dtype == np.float32 and (f >= 0).all()
    logits = f @ clf.net[3].weight.detach().numpy().T + clf.net[3].bias.detach().numpy()
    p = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(p / p.sum(1, keepdims=True), clf.predict_proba(x), atol=1e-5)


def test_prototypes_score_well_on_quality_but_badly_on_frechet():
    """The issue's complaint: ten crisp prototypes get a high `quality`; the Frechet distance sees no variety."""
    data = pytest.importorskip("rr_utils.data")
    try:
        xtr, ytr = data.load_mnist("train", verbose=False)
        xte, _ = data.load_mnist("test", verbose=False)
    except FileNotFoundError as exc:
        pytest.skip(f"no MNIST data: {exc}")
    clf = classifier.train_classifier(xtr[:2000], ytr[:2000], epochs=3, device=CPU)
    ref = scoring.ScoreReference(clf, xte[:1000], xtr[2000:], device=CPU)
    real = ref.real_scores(200)
    conf = clf.predict_proba(xtr[:2000])
    protos = np.stack([xtr[:2000][np.argmax(np.where(ytr[:2000] == c, conf[:, c], -1))] for c in range(10)])
    proto = scoring.sample_scores(np.repeat(protos, 20, axis=0), ref)
    assert proto["n_distinct"] == 10 and real["n_distinct"] == 200
    assert proto["quality"] > real["quality"] and proto["within_class_diversity"] == 0
    assert proto["frechet_distance"] > 3 * real["frechet_distance"]
    json.dumps(proto)


# --------------------------------------------------------------------------- generation with snapshots


def test_snapshots_equal_separate_runs():
    layers = random_stack([784, 20, 5])
    snaps = sampling.generate_snapshots(layers, 2, steps=(7, 3, 12), n_chains=6, seed=4, device=CPU)
    assert sorted(snaps) == [3, 7, 12]
    for n, imgs in snaps.items():
        np.testing.assert_array_equal(imgs, sampling.generate_from_layer(layers, 2, n_chains=6, n_steps=n, seed=4, device=CPU))
    with pytest.raises(ValueError, match="steps"):
        sampling.generate_snapshots(layers, 1, steps=())
    with pytest.raises(ValueError, match="steps"):
        sampling.generate_snapshots(layers, 1, steps=(0, 5))


def test_layer_scores_tables():
    rng = np.random.default_rng(0)
    real = (rng.random((300, 784)) < 0.3).astype(np.float32)
    ref = scoring.ScoreReference(StubClassifier(), real[:200], real[200:], device=CPU)
    images, pooled, runs = CG.layer_scores(random_stack([784, 20, 5]), ref, chain_seeds=(0, 1), n_chains=5,
                                           steps=(6, 3), device=CPU)
    assert sorted(images) == [1, 2] and images[2][6].shape == (10, 784)
    assert len(pooled) == 4 and set(pooled["steps"]) == {3, 6} and (pooled["n_generated"] == 10).all()
    assert len(runs) == 8 and (runs["n_generated"] == 5).all()
    assert list(pooled["units"].unique()) == [20, 5]
    assert (pooled["frechet_distance"] >= 0).all() and (pooled["real_n_generated"] == 10).all()
    assert (pooled["n_distinct"] <= 10).all() and (pooled["gen_seconds"] > 0).all()
    # pooled images are the runs of each chain seed, in order
    np.testing.assert_array_equal(images[1][3][:5], sampling.generate_from_layer(random_stack([784, 20, 5]), 1, 5, 3, seed=0,
                                                                          device=CPU))
    with pytest.raises(ValueError, match="chain_seeds"):
        CG.layer_scores(random_stack([784, 20, 5]), ref, chain_seeds=(0, 0), n_chains=5, steps=(3,), device=CPU)
    with pytest.raises(ValueError, match="reference"):
        CG.layer_scores(random_stack([784, 20, 5]), StubClassifier(), n_chains=5, steps=(3,), device=CPU)
    with pytest.raises(ValueError, match="real_pool has"):
        CG.layer_scores(random_stack([784, 20, 5]), ref, chain_seeds=range(30), n_chains=5, steps=(3,), device=CPU)


def test_score_reference_bad_input():
    real = np.zeros((10, 784), np.float32)
    with pytest.raises(ValueError, match="features"):
        scoring.ScoreReference(object(), real, real, device=CPU)
    ref = scoring.ScoreReference(StubClassifier(), real, real, device=CPU)
    with pytest.raises(ValueError, match="pixels"):
        scoring.sample_scores(np.zeros((5, 100), np.float32), ref)
    with pytest.raises(ValueError, match="ScoreReference"):
        scoring.sample_scores(real, StubClassifier())


# --------------------------------------------------------------------------- paired comparison and verdicts


def table(rows):
    """rows: {seed: [score of depth 1, depth 2, ...]} -> long table."""
    return pd.DataFrame([{"seed": s, "depth": d, "frechet_distance": v}
                         for s, vals in rows.items() for d, v in enumerate(vals, start=1)])


def test_paired_comparison_hand_computed():
    c = CG.paired_comparison(table({0: [1.0, 2.0, 4.0]}), 2)
    r = c["per_seed"][0]
    # D = 2 - 1; D_random = mean(1 - 2, 2 - 1, 4 - 1) = 1
    assert r["D"] == 1.0 and r["D_random"] == 1.0 and r["rank"] == 2 and r["win_rate"] == 0.5
    assert r["best_other_depth"] == 1 and r["best_depth"] == 1
    assert c["D"] == {"mean": 1.0, "ci_low": None, "ci_high": None}
    # higher-is-better scores flip the sign
    q = table({0: [1.0, 2.0, 4.0]}).rename(columns={"frechet_distance": "quality"})
    r = CG.paired_comparison(q, 3, score="quality")["per_seed"][0]
    assert r["D"] == -2.0 and r["rank"] == 1


def test_c4_holds_when_the_zipf_layer_is_clearly_best():
    scores = table({0: [9, 5, 1, 4, 8], 1: [9, 6, 1.5, 4, 7], 2: [8, 5, 1.2, 3, 9]})
    v = CG.claim_c4(scores, {0: 3, 1: 3, 2: 3})
    assert v["holds_as_stated"] and v["holds_vs_null"] is None  # no reference without learning generates
    assert v["as_stated"]["fraction_target_best"] == 1.0 and v["as_stated"]["D"]["ci_high"] < 0
    assert v["id"] == "C4" and v["text"] == CG.TEXT_C4 and v["evidence"]["n_seeds"] == 3
    json.dumps(v.as_dict())  # a record (records.GenerationVerdict): its dict is plain JSON


def test_c4_fails_as_stated_when_another_layer_is_best():
    scores = table({0: [9, 5, 1, 2, 8], 1: [9, 6, 1.5, 2.6, 7], 2: [8, 5, 1.2, 2.1, 9]})
    v = CG.claim_c4(scores, {0: 4, 1: 4, 2: 4})  # the Zipf layer is always second
    assert not v["holds_as_stated"] and v["holds_vs_null"] is None
    assert v["as_stated"]["fraction_target_best"] == 0.0 and v["as_stated"]["D"]["mean"] > 0


def test_hypothesis_fails_against_the_null_when_the_layer_is_middling():
    scores = table({0: [9, 5, 1, 4, 8], 1: [9, 6, 1.5, 4, 7], 2: [8, 5, 1.2, 3, 9]})
    v = CG.max_relevance_hypothesis(scores, {0: 2, 1: 2, 2: 2})  # depth 2: rank 3 of 5
    assert not v["holds_as_stated"] and not v["holds_vs_null"]


def test_c4_second_identification_and_width_confound():
    scores = table({0: [9, 5, 1, 4, 8], 1: [9, 6, 1.5, 4, 7], 2: [8, 5, 1.2, 3, 9]})
    scores["units"] = 60 - 10 * scores["depth"]
    v = CG.claim_c4(scores, {0: 3, 1: 3, 2: 3}, bound_point_depth={0: 3, 1: 4, 2: 3})
    b = v["by_bound_point"]
    assert b["same_layer_as_zipf_layer"] == [True, False, True] and not b["holds"]
    assert v["confounded_with_width"] == 30 and "30-unit layer in every seed" in v["note"]
    assert CG.claim_c4(scores, {0: 3, 1: 2, 2: 3})["confounded_with_width"] is None


def test_c4_noisy_advantage_is_not_enough():
    """Zipf layer best on average but not beyond seed-to-seed variation: as stated fails."""
    scores = table({0: [5, 1, 3], 1: [5, 3.2, 3], 2: [5, 2, 3]})
    v = CG.claim_c4(scores, {0: 2, 1: 2, 2: 2})
    assert v["as_stated"]["D"]["mean"] < 0 < v["as_stated"]["D"]["ci_high"] and not v["holds_as_stated"]


def test_c4_without_a_zipf_layer_in_some_seed():
    scores = table({0: [9, 5, 1], 1: [9, 6, 1.5]})
    v = CG.claim_c4(scores, {0: 3, 1: None})
    assert not v["holds_as_stated"] and v["holds_vs_null"] is None and "seeds [1]" in v["note"]


def test_margin_can_turn_the_null_verdict():
    scores = table({0: [9, 5, 1, 4, 8], 1: [9, 6, 1.5, 4, 7], 2: [8, 5, 1.2, 3, 9]})
    v = CG.max_relevance_hypothesis(scores, {0: 3, 1: 3, 2: 3}, margin=100.0)
    assert v["holds_as_stated"] and not v["holds_vs_null"]


def test_max_relevance_hypothesis_uses_the_same_machinery():
    scores = table({0: [9, 5, 1, 4, 8], 1: [9, 6, 1.5, 4, 7]})
    h = CG.max_relevance_hypothesis(scores, {0: 3, 1: 3})
    c = CG.claim_c4(scores, {0: 3, 1: 3})
    assert h["stated_beforehand"] and h["text"] == CG.TEXT_MAX_RELEVANCE
    assert (h["holds_as_stated"], h["as_stated"]["D"]) == (c["holds_as_stated"], c["as_stated"]["D"])
    lt = pd.DataFrame({"split": ["train"] * 3 + ["test"] * 3, "depth": [1, 2, 3] * 2, "H_K": [1, 3, 2, 9, 1, 1]})
    assert CG.max_relevance_depth(lt) == 2 and CG.max_relevance_depth(lt, "test") == 1


@pytest.mark.parametrize("scores, target, kwargs, match", [
    (table({0: [1, 2]}).drop(columns="frechet_distance"), 1, {}, "missing columns"),
    (table({0: [1, 2]}).iloc[:0], 1, {}, "empty"),
    (pd.concat([table({0: [1, 2]})] * 2), 1, {}, "same \\(seed, depth\\)"),
    (table({0: [1, 2]}).assign(steps=[500, 2000]), 1, {}, "several numbers of steps"),
    (table({0: [1, np.nan]}), 1, {}, "non-finite"),
    (table({0: [1]}), 1, {}, "at least 2 layers"),
    (table({0: [1, 2], 1: [1, 2]}), 1, {}, "dict"),
    (table({0: [1, 2], 1: [1, 2]}), {0: 1}, {}, "no entry for seeds \\[1\\]"),
    (table({0: [1, 2]}), 3, {}, "depth 3 is not in the scores"),
    (table({0: [1, 2]}), 1.0, {}, "target_depth"),
    (table({0: [1, 2]}), 1, {"confidence": 1.5}, "confidence"),
    (table({0: [1, 2]}), 1, {"margin": -1}, "margin"),
    (table({0: [1, 2]}).rename(columns={"frechet_distance": "x"}), 1, {"score": "x"}, "lower_is_better"),
    ("not a table", 1, {}, "DataFrame"),
])
def test_claim_c4_bad_input(scores, target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CG.claim_c4(scores, target, **kwargs)


# --------------------------------------------------------------------------- mixing


def runs_table(fd_short, fd_long):
    rows = [{"depth": 1, "steps": n, "chain_seed": s, "frechet_distance": v}
            for n, vals in ((2000, fd_short), (5000, fd_long)) for s, v in enumerate(vals)]
    return pd.DataFrame(rows)


def test_mixing_check():
    mixed = CG.mixing_check(runs_table([10.0, 11, 9.5, 10.4, 10.2], [10.1, 10.8, 9.9, 10.3, 10.0]))
    assert mixed["mixed"] and abs(mixed["per_layer"][0]["relative_change"]) < 0.1
    drifting = CG.mixing_check(runs_table([20.0, 21, 19.5, 20.4, 20.2], [10.1, 10.8, 9.9, 10.3, 10.0]))
    assert not drifting["mixed"] and drifting["per_layer"][0]["ci_low"] > 0
    with pytest.raises(ValueError, match="need rows at 2000 and 5000"):
        CG.mixing_check(runs_table([1.0], [1.0]).assign(steps=2000))
    with pytest.raises(ValueError, match="rel_tol"):
        CG.mixing_check(runs_table([1.0], [1.0]), rel_tol=-1)
