"""Generating digits from each layer of a DBN, and scoring them; one module per concern.

* ``sampling``: the authors' generation procedure (docs/paper.md §3):
  ``generate_from_layer``, ``generate_snapshots``, ``project_down``;
* ``classifier``: our digit classifier, a measuring tool (``train_classifier``,
  ``DigitClassifier``);
* ``metrics``: measures of a sample (``frechet_distance``, ``FeatureStats``,
  ``distinct_images``, ``within_class_diversity``, ``nearest_neighbour_distances``);
* ``scoring``: the scores of one sample against held-out digits
  (``ScoreReference``, ``sample_scores``).

The claim built on them (C4) is in ``rr_utils.claims.c4_generation``; image
grids are drawn by ``rr_utils.plotting.image_grid``. This file imports nothing:
import the module you need, e.g. ``from rr_utils.generation import sampling``.
"""
