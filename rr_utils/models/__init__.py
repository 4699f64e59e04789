"""Bernoulli RBMs and greedily stacked deep belief networks (PyTorch).

Training recipe (docs/paper.md §3, reconstructed from the authors' public
training scripts); every choice marked *(ours)* is not known from the paper.

Per layer (``RBMConfig``), two recipes share everything but the negative
phase and the update (``RBMConfig.recipe``):

* Persistent contrastive divergence.  Mini-batches of ``batch_size`` = 100 rows
  in the fixed data order (no shuffling).  ``n_particles`` = 25 persistent
  visible particles give ``gibbs_steps`` = 4 chunks of 25 negatives per
  mini-batch, 100 negative pairs (v_neg, h_neg) in all.  The positive phase
  uses h_data = sigmoid(v_data W + b); the gradient (ascent direction) is::

      g_W = v_data^T h_data / B - v_neg^T h_neg / N
      g_a = mean(v_data) - mean(v_neg),   g_b = mean(h_data) - mean(h_neg)

* ``recipe="authors"`` (default: the authors' scripts, docs/paper.md §3).  The
  particles P are visible *probabilities*.  For each chunk::

      h   = sigmoid(P W + b)
      v_k = sigmoid(s(h) W^T + a)        negative visible k
      h_k = sigmoid(v_k W + b)           negative hidden k
      P   = sigmoid(s(h_k) W^T + a)      the particles move on

  (s = a Bernoulli draw), so consecutive negatives are two Gibbs sweeps apart.
  Update, with the momentum and the L2 term *inside* the learning-rate
  product (L2 on weights only)::

      dW = lr_e * (g_W + m_e * dW - weight_decay * W);   W += dW
      da = lr_e * (g_a + m_e * da);                       a += da
      db = lr_e * (g_b + m_e * db);                       b += db

  A last partial mini-batch is dropped.  ``tests/test_authors_update.py``
  checks this against a NumPy transcription of the equations to 1e-6.
* ``recipe="classical"`` (our earlier implementation, kept for comparison;
  bitwise the networks of the previous default).  One Gibbs sweep per chunk,
  ``h ~ Bernoulli(sigmoid(v W + b))``, ``v' = sigmoid(h W^T + a)``
  (``negative_visible="probs"``; ``"samples"`` draws v' too, as the
  deeplearning.net Theano tutorial), so the negatives are consecutive chain
  states and the particles end at the last one.  Classical momentum:
  ``delta = m_e * delta + lr_e * (g - weight_decay * W)``, ``param += delta``;
  a last partial mini-batch is used.
* ``lr_e`` for the epoch with 0-based index ``e`` of ``n = epochs``::

      lr_e = lr                                 if e <  0.9 n
      lr_e = lr / (e + 1 - 0.9 n)               if e >= 0.9 n   (last 10 %)

  For n = 200 the decay starts at e = 180 (the 181st epoch) with exactly
  ``lr`` and ends at e = 199 with ``lr / 20``; the denominator is >= 1 for
  every n, so the rate never rises above ``lr``.
* ``m_e`` = 0.5, 0.4, 0.3, 0.2, 0.1 for e = 0..4 and 0 afterwards.
* Initial weights ``init_gain * sqrt(6 / (n_vis + n_hid)) * N(0, 1)`` with
  ``init_gain`` = 4 (``init="normal"``, as in the authors' scripts, docs/paper.md §3;
  ``init="uniform"`` gives the theano tutorial's U(-c, c) with the same c);
  biases 0.  Persistent particles start as U(0, 1) visible vectors *(ours)*.
* Every random draw (init, particles, Gibbs sampling) comes from one
  ``torch.Generator`` per layer seeded from ``(seed, layer)``; training runs
  in float32 under ``torch.use_deterministic_algorithms(True)`` with subnormal
  numbers flushed to zero (both restored afterwards).

Greedy stacking (``train_dbn``): layer l+1 is trained on ``sigmoid(x W + b)``
of the *fully trained* layer l (deterministic, continuous).

Monitoring *(ours)*: after each epoch the reconstruction error (mean squared
error of one deterministic up-down pass) and the stochastic pseudo-log-
likelihood (see ``RBM.pseudo_log_likelihood``) are computed on a fixed subset
of ``monitor_rows`` (default 1000) evenly spaced rows of the layer's training
input (and of the test input if given), with a monitoring generator re-seeded
each epoch so the same bits are flipped every epoch and training randomness is
untouched.

Cache: see ``train_dbn`` and ``rr_utils.models.cache``.

On CUDA the authors' recipe replays each layer's epochs from a CUDA graph of
one epoch (``cuda_graphs``; bitwise the eager epochs, ``RR_CUDA_GRAPHS=0``
turns it off).

Several seeds at once (``train_dbns``): networks that differ only in seed
train together, one step per mini-batch for all of them, each seed drawing
from its own generator (``batched``, ``batched_training``).  On the CPU each is
bitwise its network trained alone and shares its cache entry; on CUDA the
seeds are stacked (batched products, one graph per epoch) and keyed apart.

Modules: ``config`` (RBMConfig, DBNConfig), ``rbm`` (RBM, PCDState, one epoch
of training), ``cuda_graphs`` (epochs replayed from a CUDA graph), ``dbn``
(DBN: states per layer, checkpoints), ``checkpoints`` (the file format),
``cache`` (cache key and folder), ``training`` (``train_dbn``, ``load_dbn``),
``batched`` (``SeedBatch``: one layer of several seeds), ``batched_training``
(``train_dbns``, ``load_dbns``).
"""

from rr_utils.devices import resolve_device
from rr_utils.models.cache import array_checksum, cache_key, default_cache_dir
from rr_utils.models.checkpoints import CheckpointError
from rr_utils.models.config import DEFAULT_CHECKPOINT_EPOCHS, DEFAULT_HIDDEN_SIZES, DBNConfig, RBMConfig
from rr_utils.models.dbn import DBN, CacheEntry
from rr_utils.models.rbm import RBM, PCDState
from rr_utils.models.training import is_cached, load_dbn, train_dbn
from rr_utils.models.batched_training import load_dbns, train_dbns  # noqa: E402  (after training: it imports it)

__all__ = [
    "RBMConfig",
    "DBNConfig",
    "RBM",
    "PCDState",
    "DBN",
    "CacheEntry",
    "CheckpointError",
    "train_dbn",
    "load_dbn",
    "train_dbns",
    "load_dbns",
    "is_cached",
    "cache_key",
    "array_checksum",
    "resolve_device",
    "default_cache_dir",
    "DEFAULT_HIDDEN_SIZES",
    "DEFAULT_CHECKPOINT_EPOCHS",
]
