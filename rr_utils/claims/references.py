"""Measured references for the claims: untrained networks and random features, at a layer's resolution.

Two references that lack learning, each drawn many times and measured, never
interpolated:

(b) ``untrained``: networks of the same recipe at initialisation (weights
    ``init_gain * sqrt(6 / (n_vis + n_hid))`` times N(0, 1), biases 0), one per
    draw, each with its own initialisation seed (``untrained_network``). Their
    per-layer up-pass probabilities on the same M inputs are what a trained
    network's are compared with, layer by layer (same depth, same width).
(e) ``projections``: random Gaussian projections of the inputs to a layer's
    width, ``inputs @ G`` with G of independent N(0, 1) entries, one G per
    draw and layer (``projection_scores``). No learning and no hierarchy.

Either is read in two ways:

* **matched** (``match_resolution``): the natural reading, tempered by one
  parameter until the layer's resolution H[s] equals the tested layer's: each
  unit keeps its own activity relative to the others (logit of its share of
  inputs switched on, times tau). A reference then differs from the tested
  layer in which inputs share a state, which is what the distance below the
  bound and the frequency exponent measure. Our choice, after two that failed:
  one common quantile for every unit removes the units' spread of activity
  (an untrained network read at 0.5 then beat the reference), and one common
  threshold cannot resolve deep untrained layers as finely as trained ones.
  Ties are broken by input order (deep untrained units saturate, and float32
  probabilities tie).
* **natural**: as a network is read, untrained probabilities thresholded at
  0.5 and projections at 0 (random sign projections, ``natural_states``).
  Claim C1's peak relevance is compared on this reading: it is about the
  resolutions a network picks itself.

Everything streams: one draw's arrays in memory at a time.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from scipy.special import expit as _expit

from rr_utils import entropy as E
from rr_utils._checks import check_int

__all__ = [
    "unit_ranks",
    "fast_counts",
    "match_resolution",
    "untrained_network",
    "untrained_factory",
    "projection_scores",
    "projection_values",
    "measure",
    "up_probabilities",
    "natural_states",
]

_BISECT_STEPS = 40
_MAX_PACKED = 62  # widths up to this are counted through one int64 code per row


def fast_counts(bits: np.ndarray) -> np.ndarray:
    """State counts of an (M, w) bool array (``entropy.state_counts``; one int64 code per row for w <= 62)."""
    bits = np.asarray(bits, dtype=bool)
    w = bits.shape[1]
    if w > _MAX_PACKED:
        return E.state_counts(bits)
    codes = bits.astype(np.int64) @ (np.int64(1) << np.arange(w, dtype=np.int64))
    return np.unique(codes, return_counts=True)[1].astype(np.int64)


def _as_array(values) -> np.ndarray:
    v = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    if v.ndim != 2 or v.shape[0] < 2:
        raise ValueError(f"values: expected an (M, width) array with M >= 2, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values: contains NaN or infinity")
    return v


def unit_ranks(values) -> np.ndarray:
    """(M, w) float32 u in (0, 1): u[i, j] small where values[i, j] is large within column j.

    ``u < f`` switches on the top share f of the inputs in a unit (ties broken by input
    order, our choice: deep untrained units saturate, and float32 probabilities tie).
    """
    v = _as_array(values)
    M = v.shape[0]
    order = np.argsort(-v, axis=0, kind="stable")  # descending; equal values keep input order
    u = np.empty(v.shape, np.float32)
    ranks = ((np.arange(M, dtype=np.float64) + 0.5) / M).astype(np.float32)
    np.put_along_axis(u, order, ranks[:, None], axis=0)
    return u


def match_resolution(values, target_H_s: float, natural_threshold: float = 0.5, tol_norm: float = 2e-3,
                     ranks: np.ndarray | None = None) -> dict:
    """Read ``values`` (M, w) so that the layer's resolution is ``target_H_s`` (nats), moving as
    little as one parameter allows from the natural reading ``values > natural_threshold``.

    Unit j's natural share of inputs switched on, f_j (clipped to [1/(2M), 1 - 1/(2M)]), is
    tempered: logit f_j(tau) = tau * logit f_j, and unit j switches on its top f_j(tau)
    inputs. tau = 1 is the natural reading (up to ties), tau -> 0 balances every unit (the
    highest resolution such units reach), tau > 1 saturates them (lower resolution). H[s]
    falls with tau; tau is bisected. Each reference keeps its own spread of unit activities:
    thresholding every unit at one common quantile would remove it, while the tested layers
    keep theirs, and an untrained network read at 0.5 then beats such a reference (measured
    on the controls of ``calibration``). Returns {"tau", "H_s", "counts", "matched"}:
    ``matched`` False when no tau reaches the target within ``tol_norm * log M`` (the closest
    counts are returned and used all the same). ``ranks``: ``unit_ranks(values)``, if already known.
    """
    v = _as_array(values)
    u = unit_ranks(v) if ranks is None else ranks
    M = u.shape[0]
    tol = float(tol_norm) * np.log(M)
    target = float(target_H_s)
    f = np.clip(np.mean(v > natural_threshold, axis=0), 0.5 / M, 1 - 0.5 / M)
    logit = np.log(f) - np.log1p(-f)

    def at(t):  # t in [0, 1): tau = t / (1 - t)
        tau = t / (1.0 - t)
        c = fast_counts(u < _expit(tau * logit).astype(np.float32))
        return E.resolution(c), c

    lo, hi = 0.0, 0.999
    best = None
    for t in (0.5, lo, hi):  # the natural reading, the most and the least resolved
        h, c = at(t)
        if best is None or abs(h - target) < best[0]:
            best = (abs(h - target), t, h, c)
    for _ in range(_BISECT_STEPS):
        if best[0] <= tol:
            break
        mid = 0.5 * (lo + hi)
        h, c = at(mid)
        if abs(h - target) < best[0]:
            best = (abs(h - target), mid, h, c)
        lo, hi = (lo, mid) if h < target else (mid, hi)
    err, t, h, c = best
    return {"tau": float(t / (1.0 - t)), "H_s": float(h), "counts": c, "matched": bool(err <= tol)}


def untrained_factory(config, x, n_visible: int | None = None) -> Callable[[int], list[np.ndarray]]:
    """``untrained(draw) -> [probabilities of each layer on x]`` for ``layer_claims`` (reference b).

    ``config``: the trained network's ``DBNConfig``; ``x``: the (M, n_visible) inputs
    the trained layers were counted on.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"x: expected an (M, n_visible) array, got shape {x.shape}")

    def untrained(draw: int) -> list[np.ndarray]:
        return up_probabilities(untrained_network(config, draw, x.shape[1] if n_visible is None else n_visible), x)

    return untrained


def untrained_network(config, draw: int, n_visible: int = 784):
    """The untrained network of initialisation draw ``draw`` of ``config``'s recipe (a ``models.DBN``).

    Each layer is initialised as the trainer does (``RBM.initialise``), from a seed
    derived from (config.seed, draw), so the draws of one trained network never
    repeat its own initialisation.
    """
    from rr_utils.models import DBN
    from rr_utils.models.rbm import RBM, _generator, _seed_for

    draw = check_int(draw, "draw", 0)
    seed = _seed_for(int(config.seed), 0x5EED, draw)
    rbms, n_in = [], int(n_visible)
    for layer, n_hid in enumerate(config.hidden_sizes):
        g = _generator(torch.device("cpu"), _seed_for(seed, layer))
        rbms.append(RBM.initialise(n_in, int(n_hid), g, init=config.init, gain=config.init_gain))
        n_in = int(n_hid)
    return DBN(rbms, config)


@torch.no_grad()
def up_probabilities(net, x, batch_size: int = 8192) -> list[np.ndarray]:
    """Per-layer up-pass probabilities p(h_l | x) of a DBN on x (float32 numpy, first hidden layer first)."""
    out = [[] for _ in net.rbms]
    for s in range(0, len(x), batch_size):
        h = torch.as_tensor(np.asarray(x[s:s + batch_size], dtype=np.float32))
        for l, rbm in enumerate(net.rbms):
            h = rbm.hidden_probs(h)
            out[l].append(h.cpu().numpy())
    return [np.concatenate(o) for o in out]


def projection_scores(inputs, width: int, rng: np.random.Generator) -> np.ndarray:
    """(M, width) float32 random Gaussian projections ``inputs @ G`` of the inputs (reference e)."""
    width = check_int(width, "width", 1)
    G = rng.standard_normal((inputs.shape[1], width), dtype=np.float32)
    return np.asarray(inputs, dtype=np.float32) @ G


def natural_states(values, threshold: float) -> np.ndarray:
    """A reference layer read as a network is: ``values > threshold`` (0.5 for the probabilities of an
    untrained DBN, 0 for tanh units and for random sign projections)."""
    return np.asarray(values) > float(threshold)


def projection_values(inputs, widths, seed: int) -> list[np.ndarray]:
    """One draw of reference (e): a Gaussian projection of the inputs to each width (independent G per layer)."""
    rng = np.random.default_rng(int(seed))
    return [projection_scores(inputs, w, rng) for w in widths]


def measure(kind: str, n: int, values_of: Callable[[int], list], widths, targets: dict, zipf_depth=None, *,
            natural: bool = True, threshold: float = 0.5, zipf_stats: dict[str, Callable] | None = None,
            cache: dict | None = None) -> dict:
    """Measure ``n`` draws of one strong reference against a tested network.

    ``values_of(k)``: the per-layer values of draw k (probabilities or projections, first layer
    first); ``targets``: {depth: tested H[s] in nats} of the layers to match (``match_resolution``);
    ``zipf_depth``: the layer C3 is tested on, whose matched counts go to each of ``zipf_stats``
    ({name: function of counts}, e.g. the distance from Zipf's law and |mu - 1|);
    ``natural``: also read every layer as a network is (``natural_states`` at ``threshold``) and
    record its peak H[K]/log M. One draw in memory at a time.

    Returns {"kind", "n_draws", "peak_H_K_norm" (n,), "peak_depth", "matched": {depth: [layer_point]},
    "matched_ok": {depth: [bool]}, "zipf": {name: (n,)}}.
    """
    from rr_utils.claims.nulls import layer_point

    out = {"kind": kind, "n_draws": int(n), "peak_H_K_norm": [], "peak_depth": [],
           "matched": {d: [] for d in targets}, "matched_ok": {d: [] for d in targets},
           "zipf": {name: [] for name in (zipf_stats or {})}}
    for k in range(int(n)):
        entry = cache.get((kind, k)) if cache is not None else None
        if entry is None:
            entry = {"values": values_of(k), "ranks": {}}
            values = entry["values"]
            if len(values) != len(widths):
                raise ValueError(f"{kind} draw {k}: expected {len(widths)} layers of values, got {len(values)}")
            for i, (v, w) in enumerate(zip(values, widths)):
                if np.shape(v)[1] != w:
                    raise ValueError(f"{kind} draw {k}, layer {i + 1}: expected width {w}, got shape {np.shape(v)}")
            if cache is not None:
                cache[(kind, k)] = entry
        values = entry["values"]
        if natural:
            if "natural" not in entry:
                hk = [E.relevance(fast_counts(natural_states(v, threshold)), normalized=True) for v in values]
                entry["natural"] = (float(np.max(hk)), int(np.argmax(hk)) + 1)
            out["peak_H_K_norm"].append(entry["natural"][0])
            out["peak_depth"].append(entry["natural"][1])
        for d, target in targets.items():
            if d not in entry["ranks"]:
                entry["ranks"][d] = unit_ranks(values[d - 1])
            m = match_resolution(values[d - 1], target, natural_threshold=threshold, ranks=entry["ranks"][d])
            out["matched"][d].append(layer_point(m["counts"]))
            out["matched_ok"][d].append(m["matched"])
            if d == zipf_depth:
                for name, fn in (zipf_stats or {}).items():
                    out["zipf"][name].append(fn(m["counts"]))
        if cache is None:
            del entry, values
    out["peak_H_K_norm"] = np.array(out["peak_H_K_norm"])
    out["zipf"] = {name: np.array(v, dtype=float) for name, v in out["zipf"].items()}
    return out
