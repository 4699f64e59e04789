"""Tests of rr_utils.generation (sampling, projection, classifier, scores) and plotting.image_grid."""

import json

import numpy as np
import pytest
import torch

from rr_utils.generation.classifier import train_classifier
from rr_utils.generation.metrics import nearest_neighbour_distances
from rr_utils.generation.sampling import generate_from_layer, project_down
from rr_utils.generation.scoring import ScoreReference, sample_scores
from rr_utils.plotting import image_grid

CPU = "cpu"  # fixed device: seeded streams differ between CPU and CUDA


def random_stack(sizes, seed=0, scale=0.1):
    rng = np.random.default_rng(seed)
    return [
        (
            rng.normal(0, scale, (sizes[i], sizes[i + 1])).astype(np.float32),
            rng.normal(0, scale, sizes[i]).astype(np.float32),
            rng.normal(0, scale, sizes[i + 1]).astype(np.float32),
        )
        for i in range(len(sizes) - 1)
    ]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


class StubClassifier:
    """Returns fixed probabilities, whatever the images; features: 16 average-pooled pixel blocks."""

    def __init__(self, probs):
        self.probs = np.asarray(probs, dtype=np.float64)

    def predict_proba(self, x):
        assert len(x) == len(self.probs)
        return self.probs

    def features(self, x):
        x = np.asarray(x, dtype=np.float64)
        return x.reshape(len(x), 16, -1).mean(axis=2)


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize("depth", [1, 2])
def test_generation_shape_range_dtype(depth):
    layers = random_stack([784, 20, 5])
    out = generate_from_layer(layers, depth, n_chains=7, n_steps=30, device=CPU)
    assert out.shape == (7, 784) and out.dtype == np.float32
    assert np.all((out >= 0) & (out <= 1)) and np.all(np.isfinite(out))


def test_generation_deterministic_for_seed_and_accepts_torch():
    layers = random_stack([784, 20, 5])
    a = generate_from_layer(layers, 2, n_chains=10, n_steps=50, seed=3, device=CPU)
    b = generate_from_layer([tuple(torch.tensor(t) for t in L) for L in layers], 2, 10, 50, seed=3, device=CPU)
    c = generate_from_layer(layers, 2, n_chains=10, n_steps=50, seed=4, device=CPU)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_cpu_threads_restored_and_result_unchanged():
    layers = random_stack([784, 20, 5])
    before = torch.get_num_threads()
    a = generate_from_layer(layers, 1, n_chains=10, n_steps=20, device=CPU, cpu_threads=1)
    assert torch.get_num_threads() == before
    b = generate_from_layer(layers, 1, n_chains=10, n_steps=20, device=CPU, cpu_threads=None)
    np.testing.assert_allclose(a, b, atol=1e-5)
    with pytest.raises(ValueError, match="cpu_threads"):
        generate_from_layer(layers, 1, n_chains=2, n_steps=2, device=CPU, cpu_threads=0)
    assert torch.get_num_threads() == before


def test_generation_matches_reference_loop():
    """Sampled: hidden states only. Visible and hidden are probabilities; projection is deterministic."""
    layers = random_stack([784, 20, 5], seed=1, scale=0.5)
    out = generate_from_layer(layers, 2, n_chains=4, n_steps=3, seed=9, device=CPU)
    W, a, b = (torch.tensor(t) for t in layers[1])
    gen = torch.Generator().manual_seed(9)
    h = torch.rand(4, 5, generator=gen)
    for _ in range(3):
        v = torch.sigmoid((torch.rand(h.shape, generator=gen) < h).float() @ W.T + a)  # Bernoulli(h)
        h = torch.sigmoid(v @ W + b)
    W0, a0, _ = layers[0]
    np.testing.assert_allclose(out, sigmoid(v.numpy() @ W0.T + a0), atol=1e-5)


def test_project_down_two_layers():
    layers = random_stack([784, 20, 5], seed=2, scale=0.5)
    x = np.random.default_rng(0).random((6, 20)).astype(np.float32)
    out = project_down(layers, 2, x, device=CPU)
    assert out.shape == (6, 784) and np.all((out >= 0) & (out <= 1))
    np.testing.assert_allclose(out, sigmoid(x @ layers[0][0].T + layers[0][1]), atol=1e-5)
    np.testing.assert_array_equal(project_down(layers, 1, out, device=CPU), out)  # depth 1: pixels already


def test_rbm_favouring_a_pattern_generates_it():
    rng = np.random.default_rng(0)
    pattern = (rng.random(784) < 0.3).astype(np.float32)
    sign = 2 * pattern - 1
    # Any active hidden unit pushes every pixel towards the pattern; the pattern turns all hidden units on.
    W = np.repeat(2.0 * sign[:, None], 5, axis=1).astype(np.float32)
    layers = [(W, np.zeros(784, np.float32), np.zeros(5, np.float32))]
    out = generate_from_layer(layers, 1, n_chains=20, n_steps=20, device=CPU)
    assert np.abs(out - pattern).max() < 0.01


def test_deep_layer_pattern_projects_to_pixels():
    """A top RBM that favours one hidden pattern of layer 1, projected through layer 0."""
    rng = np.random.default_rng(1)
    h1 = (rng.random(20) < 0.5).astype(np.float32)
    W1 = np.repeat(4.0 * (2 * h1 - 1)[:, None], 3, axis=1).astype(np.float32)
    W0 = rng.normal(0, 1, (784, 20)).astype(np.float32)
    a0 = rng.normal(0, 1, 784).astype(np.float32)
    layers = [(W0, a0, np.zeros(20, np.float32)), (W1, np.zeros(20, np.float32), np.zeros(3, np.float32))]
    out = generate_from_layer(layers, 2, n_chains=5, n_steps=20, device=CPU)
    np.testing.assert_allclose(out, np.tile(sigmoid(h1 @ W0.T + a0), (5, 1)), atol=0.02)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(depth=0), "depth"),
        (dict(depth=3), "depth"),
        (dict(depth=1.0), "depth"),
        (dict(depth=1, n_steps=0), "n_steps"),
        (dict(depth=1, n_chains=0), "n_chains"),
        (dict(depth=1, seed=-1), "seed"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_from_layer(random_stack([784, 20, 5]), device=CPU, **kwargs)


def test_bad_layers():
    good = random_stack([784, 20, 5])
    W1, a1, b1 = good[1]
    cases = [
        ([good[0], (W1.T, b1, a1)], "visible units"),  # W transposed: does not chain
        ([good[0], (W1, a1[:-1], b1)], "vbias"),
        ([good[0], (W1, a1, np.zeros(6))], "hbias"),
        ([good[0], (W1, a1)], r"\(W, vbias, hbias\)"),
        ([], "non-empty"),
        ([(np.full((784, 20), np.nan), good[0][1], good[0][2])], "NaN"),
    ]
    for layers, match in cases:
        with pytest.raises(ValueError, match=match):
            generate_from_layer(layers, 1, n_chains=2, n_steps=1, device=CPU)
    with pytest.raises(ValueError, match="visible units"):
        project_down(good, 2, np.zeros((3, 19)), device=CPU)


# --------------------------------------------------------------------------- scores


def test_nn_distance_zero_for_copies_positive_otherwise():
    rng = np.random.default_rng(0)
    train = rng.random((300, 784)).astype(np.float32)
    copies = train[[5, 17, 299]]
    assert np.all(nearest_neighbour_distances(copies, train, device=CPU) == 0)
    moved = copies.copy()
    moved[:, 0] = 1 - moved[:, 0]
    d = nearest_neighbour_distances(moved, train, device=CPU)
    np.testing.assert_allclose(d, np.abs(1 - 2 * copies[:, 0]), rtol=1e-5)
    # exact search against brute force, across chunk boundaries
    q = rng.random((20, 784)).astype(np.float32)
    brute = np.sqrt(((q[:, None, :].astype(np.float64) - train[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_neighbour_distances(q, train, device=CPU, chunk=64), brute, rtol=1e-6)


def test_scores_on_constructed_predictions():
    rng = np.random.default_rng(0)
    train = rng.random((50, 784)).astype(np.float32)
    # 20 images: classes 0..3 five times each, confidence 0.8
    probs = np.full((20, 10), 0.2 / 9)
    probs[np.arange(20), np.repeat(np.arange(4), 5)] = 0.8
    ref = ScoreReference(StubClassifier(probs), train[20:], train[20:], device=CPU)
    s = sample_scores(train[:20], ref)
    assert s["class_coverage"] == 4
    assert s["class_entropy"] == pytest.approx(np.log(4) / np.log(10))
    assert s["confidence"] == pytest.approx(0.8)
    assert s["quality"] == pytest.approx(0.8 * np.log(4) / np.log(10))
    assert s["n_generated"] == 20 and s["n_distinct"] == 20 and s["distinct_fraction"] == 1
    assert s["nn_distance_test"] > 0 and s["frechet_distance"] > 0 and s["within_class_diversity"] > 0
    json.dumps(s)  # serialisable as is
    copies = sample_scores(train[20:40], ref)  # copies of held-out digits: nearest distance 0
    assert copies["nn_distance_test"] == 0

    one = np.zeros((20, 10))
    one[:, 7] = 1
    s = sample_scores(np.repeat(train[:1], 20, axis=0), ScoreReference(StubClassifier(one), train[20:], train, device=CPU))
    assert s["class_coverage"] == 1 and s["class_entropy"] == 0 and s["quality"] == 0
    assert s["n_distinct"] == 1 and s["within_class_diversity"] == 0

    uniform = np.eye(10)[np.arange(20) % 10]
    s = sample_scores(train[:20], ScoreReference(StubClassifier(uniform), train[20:], train, device=CPU))
    assert s["class_coverage"] == 10 and s["class_entropy"] == pytest.approx(1)


def test_scores_bad_inputs():
    train = np.random.default_rng(0).random((10, 784)).astype(np.float32)
    with pytest.raises(ValueError, match="predict_proba"):
        sample_scores(train[:3], ScoreReference(StubClassifier(np.ones((3, 1))), train, train, device=CPU))
    ref = ScoreReference(StubClassifier(np.ones((3, 10)) / 10), train, train, device=CPU)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sample_scores(train[:3] * 255, ref)
    with pytest.raises(ValueError, match="at least 2"):
        sample_scores(train[:1], ref)
    with pytest.raises(ValueError, match="pixels"):
        nearest_neighbour_distances(train[:3, :100], train, device=CPU)


# --------------------------------------------------------------------------- grid


def test_image_grid():
    imgs = np.arange(12 * 784, dtype=np.float32).reshape(12, 784)
    g = image_grid(imgs, nrow=5)
    assert g.shape == (3 * 28 + 2, 5 * 28 + 4)
    np.testing.assert_array_equal(g[29:57, 29:57], imgs[6].reshape(28, 28))  # row 1, column 1
    assert np.all(g[28, :] == 0.5) and np.all(g[:, 28] == 0.5)  # 1-pixel gaps
    assert np.all(g[58:, 2 * 29:] == 0.5)  # unused tiles
    assert image_grid(imgs.reshape(12, 28, 28)[:3], nrow=10).shape == (28, 3 * 28 + 2)
    with pytest.raises(ValueError):
        image_grid(np.zeros((2, 10)))


# --------------------------------------------------------------------------- classifier on real digits


def test_classifier_on_real_digits():
    data = pytest.importorskip("rr_utils.data")
    try:
        xtr, ytr = data.load_mnist("train", verbose=False)
        xte, yte = data.load_mnist("test", verbose=False)
    except FileNotFoundError as exc:
        pytest.skip(f"no MNIST data: {exc}")
    n = 4000  # half the training set keeps the test fast; full set reaches ~97%
    clf = train_classifier(xtr[:n], ytr[:n], seed=0, epochs=15, device=CPU)
    acc = clf.accuracy(xte, yte)
    assert acc > 0.93, acc
    again = train_classifier(xtr[:500], ytr[:500], seed=0, epochs=2, device=CPU)
    again2 = train_classifier(xtr[:500], ytr[:500], seed=0, epochs=2, device=CPU)
    np.testing.assert_array_equal(again.predict_proba(xte[:50]), again2.predict_proba(xte[:50]))
    p = clf.predict_proba(xte[:10])
    assert p.shape == (10, 10) and np.allclose(p.sum(1), 1, atol=1e-5)
    s = sample_scores(xte[:100], ScoreReference(clf, xte[100:600], xtr, device=CPU))
    assert s["class_coverage"] == 10 and s["confidence"] > 0.85 and s["class_entropy"] > 0.9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_paths():
    layers = random_stack([784, 20, 5])
    a = generate_from_layer(layers, 2, n_chains=8, n_steps=20, seed=1, device="cuda")
    b = generate_from_layer(layers, 2, n_chains=8, n_steps=20, seed=1, device="cuda")
    assert a.shape == (8, 784) and np.array_equal(a, b)
    rng = np.random.default_rng(0)
    x, y = rng.random((300, 784)).astype(np.float32), rng.integers(0, 10, 300)
    clf = train_classifier(x, y, epochs=2, device="cuda")
    ref = ScoreReference(clf, x[:50], x, device="cuda")
    s = sample_scores(a, ref)
    assert s["nn_distance_test"] > 0 and s["frechet_distance"] > 0
    assert ref.real_scores(8)["n_generated"] == 8
