"""C4 end to end: from a layer's generated images to the Frechet distance and the verdict, on real digits.

The Gibbs sampler is replaced by controls whose images are known (``generate_snapshots``, patched), and
everything after it is the real path of notebook 06: ``layer_scores`` (pooled over chain seeds) ->
``sample_scores`` with a trained ``DigitClassifier`` and held-out digits (``ScoreReference``) ->
``claim_c4`` over three network seeds. A target layer that reproduces the real data pool must get the
lowest Frechet distance (close to a real sample's) and make C4 hold; with the target layer degraded
like the others, or another layer reproducing the pool instead, C4 must not hold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rr_utils.claims import c4_generation as CG
from rr_utils.generation import classifier, sampling, scoring

CPU = "cpu"
SIZES = [784, 40, 30, 20, 10]  # a stack of four layers; only the shapes matter once the sampler is patched
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def reference():
    from rr_utils import data

    xtr, ytr = data.load_mnist("train", verbose=False)  # the embedded digits: always there (a skip fails in CI)
    xte, _ = data.load_mnist("test", verbose=False)
    clf = classifier.train_classifier(xtr[:2000], ytr[:2000], epochs=3, device=CPU)
    return scoring.ScoreReference(clf, xte[:500], xtr[2000:5000], device=CPU)


def stack():
    rng = np.random.default_rng(0)
    return [(rng.normal(0, 0.1, (a, b)).astype(np.float32), np.zeros(a, np.float32), np.zeros(b, np.float32))
            for a, b in zip(SIZES[:-1], SIZES[1:])]


def controls(pool: np.ndarray, real_depth, network_seed: int):
    """A ``generate_snapshots`` whose layer ``real_depth`` draws images from the real pool; every other layer gives
    pool images blended with uniform noise, more of it the deeper the layer (``real_depth`` None: none is real)."""

    def generate(layers, depth, steps, n_chains=100, seed=0, device=None, cpu_threads=1, progress=None):
        rng = np.random.default_rng([network_seed, depth, seed])
        imgs = pool[rng.choice(len(pool), n_chains, replace=False)]
        if depth != real_depth:
            a = 0.25 + 0.1 * depth
            imgs = ((1 - a) * imgs + a * rng.random(imgs.shape)).astype(np.float32)
        return {n: imgs for n in steps}

    return generate


def scores_over_seeds(reference, monkeypatch, real_depth) -> pd.DataFrame:
    pool = reference.real_pool.cpu().numpy()
    tables = []
    for s in SEEDS:
        monkeypatch.setattr(sampling, "generate_snapshots", controls(pool, real_depth, s))
        _, pooled, _ = CG.layer_scores(stack(), reference, chain_seeds=(0, 1), n_chains=50, steps=(10,), device=CPU)
        tables.append(pooled.assign(seed=s))
    return pd.concat(tables, ignore_index=True)


def c4_holds(scores: pd.DataFrame, target: int) -> bool:
    return bool(CG.claim_c4(scores, {s: target for s in SEEDS})["holds_as_stated"])


def test_a_layer_reproducing_the_real_pool_scores_best_and_makes_c4_hold(reference, monkeypatch):
    scores = scores_over_seeds(reference, monkeypatch, real_depth=2)
    for _, t in scores.groupby("seed"):
        fd = t.set_index("depth")["frechet_distance"]
        assert fd.idxmin() == 2, fd.to_dict()
        real = t["real_frechet_distance"].iloc[0]  # a real sample of the same size, scored the same way
        assert fd[2] < 1.5 * real and fd.drop(2).min() > 2 * real, (fd.to_dict(), real)
    assert c4_holds(scores, 2)
    # the wrong inputs: the same scores with another layer named the target, and with no layer reproducing the pool
    assert not c4_holds(scores, 3) and not c4_holds(scores, 1)


def test_without_a_layer_reproducing_the_pool_c4_does_not_hold(reference, monkeypatch):
    scores = scores_over_seeds(reference, monkeypatch, real_depth=None)  # every layer degraded, the target too
    assert not c4_holds(scores, 2)
    scores = scores_over_seeds(reference, monkeypatch, real_depth=4)  # another layer reproduces the pool
    assert not c4_holds(scores, 2) and c4_holds(scores, 4)
