"""The scores of one sample of generated images (ours: the paper gives no numeric score).

``ScoreReference`` holds the classifier (``rr_utils.generation.classifier``) and
the held-out real digits; ``sample_scores`` scores a sample against it with the
measures of ``rr_utils.generation.metrics`` (the Frechet distance is the primary
score). The claim built on them is in ``rr_utils.claims.c4_generation``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from rr_utils._checks import _to_numpy, check_int
from rr_utils.devices import resolve_device
from rr_utils.generation._tensors import _cpu_threads, _images
from rr_utils.generation.metrics import FeatureStats, _distinct, _nn_distances, _within_class, frechet_distance

__all__ = ["ScoreReference", "sample_scores"]


class ScoreReference:
    """Held-out real digits and what a real sample scores, for ``sample_scores``.

    ``held_out``: real digits the DBN and the classifier never saw (the test
    split), the target of the Frechet distance and of the nearest-neighbour
    search. ``real_pool``: other real digits (the training split) from which
    ``real_scores(n)`` draws n images (fixed seed) and scores them exactly like
    a generated sample of size n: the value a perfect generator would get at
    this sample size (the Frechet distance is biased upwards at finite n).

    Parameters
    ----------
    classifier : DigitClassifier
        Anything with ``features(x)`` (penultimate layer) and ``predict_proba(x)``.
    held_out : array_like
        (n, n_pixels) real digits in [0, 1], n >= 2.
    real_pool : array_like
        (m, n_pixels) other real digits.
    seed : int
        Seeds the draws of ``real_scores``.
    device : str or torch.device, optional
        Where the images are kept and scored (None: the default device).

    Attributes
    ----------
    device : torch.device
    classifier : DigitClassifier
    held_out, real_pool : torch.Tensor
        The images, float32 in [0, 1].
    seed : int
    stats : rr_utils.generation.metrics.FeatureStats
        The held-out digits' features.

    Raises
    ------
    ValueError
        For images of different widths, fewer than 2 held-out digits, or a classifier without
        ``features``.
    """

    def __init__(self, classifier, held_out, real_pool, seed: int = 0, device=None):
        self.device = resolve_device(device)
        self.classifier = classifier
        self.held_out = _images(held_out, "held_out", self.device)
        self.real_pool = _images(real_pool, "real_pool", self.device)
        if self.held_out.shape[1] != self.real_pool.shape[1]:
            raise ValueError(f"held_out has {self.held_out.shape[1]} pixels but real_pool {self.real_pool.shape[1]}")
        if len(self.held_out) < 2:
            raise ValueError("held_out: need at least 2 images")
        self.seed = check_int(seed, "seed", 0)
        self.stats = FeatureStats(self._features(self.held_out), "held_out features")
        self._real: dict[int, dict] = {}

    def _features(self, x: torch.Tensor) -> np.ndarray:
        if not hasattr(self.classifier, "features"):
            raise ValueError("classifier: needs a features(x) method (penultimate layer), as DigitClassifier has")
        f = _to_numpy(self.classifier.features(x.cpu().numpy()), "classifier.features output")
        if f.ndim != 2 or len(f) != len(x):
            raise ValueError(f"classifier.features returned shape {f.shape}; expected ({len(x)}, n_features)")
        return f

    def real_scores(self, n: int) -> dict:
        """``sample_scores`` of n real digits drawn from ``real_pool`` (cached per n).

        Parameters
        ----------
        n : int
            The sample size, >= 2.

        Returns
        -------
        dict
            As ``sample_scores``.

        Raises
        ------
        ValueError
            If n < 2 or n exceeds ``real_pool``.
        """
        n = check_int(n, "n", 2)
        if n > len(self.real_pool):
            raise ValueError(f"n: {n} real images asked, real_pool has {len(self.real_pool)}")
        if n not in self._real:
            idx = np.random.default_rng(self.seed).choice(len(self.real_pool), n, replace=False)
            self._real[n] = sample_scores(self.real_pool[torch.as_tensor(np.sort(idx))].cpu().numpy(), self)
        return self._real[n]


def sample_scores(generated, reference: ScoreReference, threshold: float = 0.5) -> dict:
    """Scores of one sample of images (ours: the paper gives no numeric score).

    ``reference`` is a ``ScoreReference`` (classifier, held-out digits). Keys:

    - ``frechet_distance`` (the primary score, lower is better): between the
      classifier's penultimate features (``DigitClassifier.features``) of the
      sample and of the held-out digits (``frechet_distance``, method "eigh"). It
      measures fidelity *and* diversity: ten crisp prototypes have the right
      mean but far too little spread;
    - ``n_generated``; ``n_distinct``: distinct images after binarising pixels
      at ``threshold`` (``distinct_images``), and ``distinct_fraction``;
    - ``within_class_diversity``: mean pixel distance between two images given
      the same label by the classifier (``within_class_diversity``);
    - ``nn_distance_test``: mean distance from each image to its nearest
      held-out digit (exact search). Blurred averages sit close to many digits,
      so read it with the diversity scores;
    - ``confidence``, ``class_entropy`` (1 = all classes equally often),
      ``class_coverage``: the mean largest class probability of the
      classifier, the entropy of its predicted classes divided by log(n
      classes) (1 = every class equally often) and the number of classes
      seen; ``quality`` = confidence x class_entropy is the old combined
      score, kept for comparison only (it rewards a few crisp prototypes).

    Parameters
    ----------
    generated : array_like or torch.Tensor
        (n, n_pixels) images in [0, 1], n >= 2.
    reference : ScoreReference
        The classifier and the held-out digits.
    threshold : float
        Where pixels are binarised for ``n_distinct``.

    Returns
    -------
    dict
        The keys above: ``n_generated``, ``frechet_distance``, ``n_distinct``, ``distinct_fraction``,
        ``within_class_diversity``, ``nn_distance_test``, ``confidence``, ``class_entropy``,
        ``class_coverage``, ``quality``.

    Raises
    ------
    ValueError
        For a reference that is not a ``ScoreReference``, fewer than 2 images, images of the
        wrong width, or a classifier whose outputs have the wrong shape.
    """
    if not isinstance(reference, ScoreReference):
        raise ValueError(f"reference: expected a ScoreReference, got {type(reference).__name__}")
    dev = reference.device
    with _cpu_threads(dev, 1):  # many small operations: 1 thread (see _cpu_threads)
        gen = _images(generated, "generated", dev)
        if gen.shape[1] != reference.held_out.shape[1]:
            raise ValueError(f"generated has {gen.shape[1]} pixels but the reference digits have "
                             f"{reference.held_out.shape[1]}")
        if len(gen) < 2:
            raise ValueError("generated: need at least 2 images for the Frechet distance")
        x = gen.cpu().numpy()
        probs = _to_numpy(reference.classifier.predict_proba(x), "predict_proba output").astype(np.float64)
        if probs.ndim != 2 or probs.shape[0] != len(gen) or probs.shape[1] < 2:
            raise ValueError(f"classifier.predict_proba returned shape {probs.shape}; expected ({len(gen)}, n_classes)")
        n_classes = probs.shape[1]
        pred = probs.argmax(axis=1)
        counts = np.bincount(pred, minlength=n_classes)
        p = counts[counts > 0] / counts.sum()
        entropy = float(-(p * np.log(p)).sum() / math.log(n_classes)) + 0.0
        confidence = float(probs.max(axis=1).mean())
        n_distinct = _distinct(gen, threshold)
        return {
            "n_generated": int(len(gen)),
            "frechet_distance": frechet_distance(FeatureStats(reference._features(gen), "generated features"),
                                                 reference.stats),
            "n_distinct": n_distinct,
            "distinct_fraction": n_distinct / len(gen),
            "within_class_diversity": _within_class(gen, pred)["mean_distance"],
            "nn_distance_test": float(_nn_distances(gen, reference.held_out).mean()),
            "confidence": confidence,
            "class_entropy": entropy,
            "class_coverage": int((counts > 0).sum()),
            "quality": confidence * entropy,
        }
