"""Helpers for the replication of Song, Marsili & Jo (2018),
"Resolution and relevance trade-offs in deep learning".

Modules: entropy (estimators, exact state counting, power-law fits), bound
(maximal-relevance curve) and relaxation (its certified solver), data (MNIST
and Fashion-MNIST loaders), idx (the IDX format, file hashes), downloads
(verified downloads), models (package: RBM / DBN configs, training,
checkpoints, cache), devices (CPU/CUDA), generation (package: per-layer
sampling, our classifier, sample metrics, scores), claims (package, one module
per claim plus rules: verdicts as stated and against references that lack learning),
experiments (glue shared by the DBN notebooks), probe (layer_report: the
layers of any PyTorch model on any data), backprop (MLP and autoencoder trained
by backpropagation), beyond (glue of notebook 09), sample_size (numbers vs M), representations (pixel
states), plotting, io (atomic writes), artifacts (where outputs go), networks
(the networks a run needs; the workflow's training jobs), cli (`rr-relevance`).
The workflow that runs everything (`make reproduce`) is workflow/Snakefile.
"""

__version__ = "0.1.0"
