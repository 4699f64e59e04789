"""References that lack learning, for the claims' ``holds_vs_null`` verdicts.

Computed here from the widths and M alone (no network):

(a) ``matched_random``: for one layer, random binary states of the same width
    and the same M, every bit an independent Bernoulli(p) draw, with p tuned by
    bisection so that the sample's resolution H[s] matches the layer's
    (``n_draws`` independent draws). It answers "how close to the bound, how
    relevant, how power-law-like are states that have this layer's width and
    resolution but no structure?".
(c) ``noise_stack``: a stack of random layers: every layer of the given widths
    filled with independent Bernoulli(p) bits at a fixed p (no tuning), the
    stack the issue tried (p = 0.2 and 0.5). It keeps what the widths impose
    and nothing else.

These are the weakest references: they keep what the widths impose and nothing
of the data. The strong ones, untrained networks and random projections of the
inputs measured over many draws, are in ``rr_utils.claims.references``; (d), a
control network whose widths do not shrink, is trained in notebook 07.

Every count vector is handled through ``layer_point``: M, H[s], H[K] (nats and
divided by log M) and the normalised distance below the maximal-relevance bound
at that M.
"""

from __future__ import annotations

import numpy as np

from rr_utils import bound as B
from rr_utils import entropy as E
from rr_utils._checks import check_counts, check_int, check_sample_size, is_int, is_real

__all__ = [
    "layer_point",
    "bernoulli_counts",
    "matched_random",
    "noise_stack",
]

_BISECT_STEPS = 40


def layer_point(counts) -> dict:
    """M, n_states, H_s, H_K (nats), their normalised values and the distance below the bound.

    ``below_bound_norm`` = (bound_at(M, H_s) - H_K) / log M; 0 for M = 1.
    """
    s = E.summary(check_counts(counts))
    M = s["M"]
    bound_hk = float(B.bound_at(M, s["H_s"]))
    L = np.log(M) if M > 1 else np.inf
    return {"M": M, "n_states": s["n_states"], "H_s": s["H_s"], "H_K": s["H_K"],
            "H_s_norm": s["H_s_norm"], "H_K_norm": s["H_K_norm"],
            "bound_H_K_norm": bound_hk / L if M > 1 else 0.0,
            "below_bound_norm": (bound_hk - s["H_K"]) / L if M > 1 else 0.0}


def _check_width(width, name: str = "width") -> int:
    return check_int(width, name, 1)


def _check_p(p) -> float:
    if not is_real(p) or not (0.0 <= float(p) <= 1.0):
        raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
    return float(p)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if not is_int(seed) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))


def bernoulli_counts(M, width, p, seed=0) -> np.ndarray:
    """State counts of M random states of ``width`` independent Bernoulli(p) bits."""
    M, width, p = check_sample_size(M), _check_width(width), _check_p(p)
    u = _rng(seed).random((M, width), dtype=np.float32)
    return E.state_counts(u < p)


def _matched_draw(M: int, width: int, target: float, rng: np.random.Generator, tol: float) -> dict:
    """One draw: uniforms fixed, p in [0, 1/2] bisected until H[s](u < p) meets ``target``.

    With the uniforms fixed, H[s] rises with p almost monotonically (common random
    numbers); the p whose H[s] is closest to the target is kept.
    """
    u = rng.random((M, width), dtype=np.float32)

    def hs(p):
        c = E.state_counts(u < p)
        return E.resolution(c), c

    lo, hi = 0.0, 0.5
    h_hi, c_hi = hs(hi)
    best = (abs(h_hi - target), hi, h_hi, c_hi)
    if h_hi < target - tol:  # even fair coins do not resolve this much: report the shortfall
        return {"p": hi, "H_s": h_hi, "counts": c_hi, "matched": False}
    for _ in range(_BISECT_STEPS):
        mid = 0.5 * (lo + hi)
        h, c = hs(mid)
        if abs(h - target) < best[0]:
            best = (abs(h - target), mid, h, c)
        if abs(h - target) <= tol:
            break
        lo, hi = (mid, hi) if h < target else (lo, mid)
    err, p, h, c = best
    return {"p": p, "H_s": h, "counts": c, "matched": bool(err <= tol)}


def matched_random(counts, width, n_draws: int = 5, seed=0, tol_norm: float = 2e-3, keep_counts: bool = False) -> dict:
    """Reference (a) for one layer: Bernoulli states of the same width and M, H[s] matched.

    Each of ``n_draws`` draws tunes one bias p in (0, 1/2] by bisection until the
    draw's H[s] lies within ``tol_norm`` * log M of the layer's (a width too narrow
    to reach the layer's H[s] even at p = 1/2 gives ``matched`` False). Returns the
    layer's own ``layer_point`` under ``"layer"``, one ``layer_point`` (plus p,
    matched) per draw under ``"draws"``, and the draws' mean and sd of
    ``below_bound_norm``, ``H_K_norm`` and ``H_s_norm``. ``keep_counts``: each draw
    also carries its ``counts``.
    """
    target = layer_point(counts)
    width = _check_width(width)
    n_draws = check_int(n_draws, "n_draws", 1)
    if not is_real(tol_norm) or not tol_norm > 0:
        raise ValueError(f"tol_norm: expected a positive number, got {tol_norm!r}")
    M = target["M"]
    if M < 2:
        raise ValueError("counts: need M >= 2 inputs to match a resolution")
    rng = _rng(seed)
    tol = float(tol_norm) * np.log(M)
    draws = []
    for _ in range(n_draws):
        d = _matched_draw(M, width, target["H_s"], rng, tol)
        draws.append({"p": d["p"], "matched": d["matched"], **layer_point(d["counts"]),
                      **({"counts": d["counts"]} if keep_counts else {})})
    out = {"layer": target, "width": width, "n_draws": n_draws, "draws": draws,
           "all_matched": all(d["matched"] for d in draws)}
    for key in ("below_bound_norm", "H_K_norm", "H_s_norm"):
        v = np.array([d[key] for d in draws])
        out[key + "_mean"], out[key + "_sd"] = float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
    return out


def noise_stack(M, widths, p: float = 0.2, seed=0) -> list[np.ndarray]:
    """Reference (c): counts of a stack of random layers, each of the given width,
    filled with independent Bernoulli(p) bits (M states per layer, one p for all)."""
    M, p = check_sample_size(M), _check_p(p)
    widths = [_check_width(w, "widths") for w in _as_list(widths, "widths")]
    rng = _rng(seed)
    return [bernoulli_counts(M, w, p, rng) for w in widths]


def _as_list(x, name: str) -> list:
    if isinstance(x, (str, bytes)) or not hasattr(x, "__len__"):
        raise ValueError(f"{name}: expected a sequence, got {type(x).__name__}")
    if len(x) == 0:
        raise ValueError(f"{name}: empty")
    return list(x)
