"""Helpers for the replication of Song, Marsili & Jo (2018),
"Resolution and relevance trade-offs in deep learning".

Modules: entropy (estimators), bound (maximal-relevance curve), data (MNIST and
Fashion-MNIST loaders), models (RBM / DBN), generation, plotting, io (atomic
artifacts and results files).
"""

__version__ = "0.1.0"
