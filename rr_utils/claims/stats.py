"""Statistics behind the claims: bootstrap over inputs, power-law goodness of fit, likelihood ratios.

Bootstrap over inputs (``resample_counts``): a replicate draws M inputs with
replacement, i.e. the count vector k_s is redrawn as Multinomial(M, k_s / M)
(states drawn zero times drop out). Each layer is resampled on its own (the
count vectors do not say which input sits in which state, so the replicates of
different layers are independent; our choice, forced by the interface).

A known property of this bootstrap, which the results report rather than hide:
resampling inputs duplicates them, so a state seen once becomes a state seen
0, 1, 2, ... times (Poisson(1)). Plug-in entropies and the fitted exponent are
therefore biased in the replicates (H[s] falls and H[K] rises at high
resolution; mu rises). Every interval here is given two ways: ``lo``/``hi``,
the normal interval (estimate +- z * bootstrap sd, centred on the estimate),
which the figures draw, and ``pct_lo``/``pct_hi``, the percentile interval of
the replicates, with ``bias`` = mean of the replicates - estimate.

Goodness of fit (``power_law_gof``) is Clauset, Shalizi & Newman (2009, sec.
4.1): the KS distance of the fit against those of synthetic samples drawn from
the fitted law (semi-parametric: below k_min from the observed counts) and
refitted the same way, k_min included; p = share of synthetic samples with a
larger distance. They recommend p >= 0.1 for a plausible power law and about
2,500 synthetic samples for p to +-0.01; we use fewer by default (cost), and
record how many.

Distance from Zipf's law (``zipf_distance``): the largest gap between the share of
inputs that fall in states seen at most k times, in the layer and in Zipf's law
as it is observed at the same M (``zipf_law_mk``: the expected m_k when M inputs
are drawn from the state distribution of the bound's optimum at mu = 1). The
target is the law *as sampled*, not the optimum itself, because drawing M inputs
turns a state of expected count 1 into one seen 0, 1, 2, ... times: samples of
the exact optimum lie 0.10 (M = 8,000) from the optimum itself, and 0.01-0.04
from the law as sampled. Weighting by inputs makes mu = 1 the law that puts equal
mass in every octave of k. A Kolmogorov-Smirnov distance on that weighting, and
the sampled target, are our choices; C3's test against the references uses it
(``claims.c3_power_laws``), and ``claims.calibration`` measures how it behaves.

Likelihood ratios (``likelihood_ratio_tests``) against a discrete lognormal and
a discrete exponential on the same tail (k >= k_min) come from the ``powerlaw``
package (Alstott, Bullmore & Plenz 2014), the reference implementation of
Clauset et al.'s tests: R = sum of the per-state log-likelihood differences
(> 0 favours the power law), R_norm = R / sqrt(n var), p = Vuong's two-sided
p-value for the sign of R (non-nested models), erfc(|R| / sqrt(2 n var)).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from rr_utils import entropy as E
from rr_utils._checks import check_counts, check_int, is_real
from rr_utils.claims.nulls import _as_list, _rng

__all__ = [
    "resample_counts",
    "entropy_intervals",
    "fit_or_reason",
    "mu_bootstrap",
    "power_law_gof",
    "likelihood_ratio_tests",
    "zipf_law_mk",
    "zipf_distance",
]

def _check_level(level) -> float:
    if not is_real(level) or not 0 < level < 1:
        raise ValueError(f"level: expected a confidence level in (0, 1), got {level!r}")
    return float(level)


def resample_counts(counts, rng, over: str = "inputs") -> np.ndarray:
    """One bootstrap replicate of a count vector.

    ``over="inputs"``: Multinomial(M, k_s / M) (inputs drawn with replacement);
    ``over="states"``: the distinct states' counts drawn with replacement (the
    observations of the power-law fit; M is then not preserved).
    """
    c = check_counts(counts)
    if over == "inputs":
        r = rng.multinomial(int(c.sum()), c / c.sum())
        return r[r > 0].astype(np.int64)
    if over == "states":
        return rng.choice(c, c.size, replace=True)
    raise ValueError(f"over: expected 'inputs' or 'states', got {over!r}")


def _interval(est: float, reps: np.ndarray, level: float) -> dict:
    reps = reps[np.isfinite(reps)]
    if reps.size < 2:
        return {"estimate": est, "lo": np.nan, "hi": np.nan, "pct_lo": np.nan, "pct_hi": np.nan,
                "sd": np.nan, "bias": np.nan, "n": int(reps.size)}
    from statistics import NormalDist  # not scipy.stats: its import alone takes seconds

    z = NormalDist().inv_cdf(0.5 + level / 2)
    sd = float(reps.std(ddof=1))
    a = (1 - level) / 2
    return {"estimate": est, "lo": est - z * sd, "hi": est + z * sd,
            "pct_lo": float(np.quantile(reps, a)), "pct_hi": float(np.quantile(reps, 1 - a)),
            "sd": sd, "bias": float(reps.mean() - est), "n": int(reps.size)}


def entropy_intervals(counts, n_boot: int = 200, seed=0, level: float = 0.95) -> dict:
    """Bootstrap (over inputs) intervals of H[s] and H[K], in nats and divided by log M.

    Returns {"H_s": {...}, "H_K": {...}, "H_s_norm": {...}, "H_K_norm": {...}}, each
    with estimate, lo, hi (normal interval), pct_lo, pct_hi, sd, bias, n.
    """
    c = check_counts(counts)
    n_boot = check_int(n_boot, "n_boot", 2)
    level = _check_level(level)
    rng = _rng(seed)
    M = int(c.sum())
    L = np.log(M) if M > 1 else np.inf
    reps = np.array([(E.resolution(r), E.relevance(r)) for r in (resample_counts(c, rng) for _ in range(n_boot))])
    est = (E.resolution(c), E.relevance(c))
    out = {}
    for j, name in enumerate(("H_s", "H_K")):
        out[name] = _interval(est[j], reps[:, j], level)
        out[name + "_norm"] = _interval(est[j] / L if M > 1 else 0.0, reps[:, j] / L if M > 1 else reps[:, j] * 0, level)
    return out


def fit_or_reason(counts):
    """(PowerLawFit, "") when ``entropy.fit_power_law`` gives a fitted exponent, else (None, reason).

    A fit at the edge of the search range is "not fitted" with the fit's reason;
    too few states or too little spread gives the ValueError's message.
    """
    try:
        f = E.fit_power_law(counts)
    except ValueError as exc:
        return None, str(exc)
    return (f, "") if f.fitted else (None, f.reason)


def mu_bootstrap(counts_by_layer, n_boot: int = 50, seed=0, level: float = 0.95, over: str = "inputs") -> dict:
    """Bootstrap of the fitted exponent of every layer and of which layer is the Zipf layer.

    For each of ``n_boot`` replicates every layer is resampled (``resample_counts``)
    and refitted (k_min chosen again); the Zipf layer of a replicate is its fitted
    layer with mu closest to 1. Returns ``mu`` (one interval dict per layer, with
    ``fitted_fraction``; None for a layer without a fit on the original counts),
    ``zipf_layer_frequency`` {depth: share of replicates}, ``zipf_layer_set``: the
    fewest layers (most frequent first) that together hold at least ``level`` of the
    replicates, ``n_boot``, and ``replicates`` (n_boot x layers, NaN: not fitted).
    Depths count from 1.
    """
    layers = _as_list(counts_by_layer, "counts_by_layer")
    n_boot = check_int(n_boot, "n_boot", 2)
    level = _check_level(level)
    rng = _rng(seed)
    base = [fit_or_reason(c)[0] for c in layers]
    reps = np.full((n_boot, len(layers)), np.nan)
    for b in range(n_boot):
        for i, c in enumerate(layers):
            if base[i] is None:
                continue  # no fit on the data: none in the replicates either
            f, _ = fit_or_reason(resample_counts(c, rng, over))
            if f is not None:
                reps[b, i] = f.mu
    mu = []
    for i, f in enumerate(base):
        if f is None:
            mu.append(None)
            continue
        d = _interval(float(f.mu), reps[:, i], level)
        d["fitted_fraction"] = float(np.isfinite(reps[:, i]).mean())
        d["fisher_err"] = float(f.mu_err)
        mu.append(d)
    est = np.array([np.nan if f is None else f.mu for f in base])
    freq_raw, _, _ = _zipf_frequency(reps, level)
    # basic bootstrap: reflect each replicate about the estimate (2 mu_hat - mu*), which removes the
    # resampling bias from the comparison of layers and keeps the replicates' spread
    freq, chosen, total = _zipf_frequency(2 * est[None, :] - reps, level)
    return {"mu": mu, "zipf_layer_frequency": freq, "zipf_layer_set": chosen, "zipf_layer_set_coverage": total,
            "zipf_layer_frequency_uncorrected": freq_raw, "n_boot": n_boot, "over": over, "level": level,
            "replicates": reps}


def _zipf_frequency(reps: np.ndarray, level: float):
    """Share of replicates (rows) in which each layer (column, depth = index + 1) has mu closest
    to 1, and the fewest layers, most frequent first, holding at least ``level`` of them."""
    dist = np.abs(reps - 1.0)
    has = np.isfinite(dist).any(axis=1)
    zipf = np.where(has, np.argmin(np.where(np.isfinite(dist), dist, np.inf), axis=1) + 1, 0)
    freq = {int(d): float(np.mean(zipf == d)) for d in np.unique(zipf[zipf > 0])}
    if not has.all():
        freq[0] = float(np.mean(~has))  # depth 0: no layer fitted in that replicate
    chosen, total = [], 0.0
    for d, f in sorted(freq.items(), key=lambda kv: (-kv[1], kv[0])):
        if total >= level:
            break
        chosen.append(d)
        total += f
    return freq, sorted(chosen), total


def _synthetic_counts(M: int, n_states: int, p_tail: float, body: np.ndarray, fit, rng) -> np.ndarray:
    """States drawn one by one (tail: fitted power law, k >= k_min; body: the observed
    counts below k_min) until their counts add up to M, the last one trimmed: every
    layer's counts sum to M, and for mu <= 1 that constraint shapes the largest counts."""
    parts, total = [], 0
    while total < M:
        n = max(16, n_states)
        vals = E.sample_power_law_counts(n, fit.mu, k_min=fit.k_min, k_max=max(M, fit.k_min), rng=rng)
        if body.size:
            from_body = rng.random(n) >= p_tail
            vals[from_body] = rng.choice(body, int(from_body.sum()))
        parts.append(vals)
        total += int(vals.sum())
    c = np.concatenate(parts)
    cs = np.cumsum(c)
    last = int(np.searchsorted(cs, M))
    out = c[:last + 1].copy()
    out[-1] -= int(cs[last] - M)
    return out[out > 0]


def power_law_gof(counts, n_sims: int = 50, seed=0, fit=None) -> dict:
    """Clauset et al.'s goodness of fit: the KS bootstrap p-value of the power-law fit.

    Each synthetic sample draws states one by one until their counts add up to the
    data's M (the constraint every layer obeys; our adaptation of Clauset et al.,
    who draw a fixed number of iid observations): a state falls in the tail with
    probability n_tail / n and then draws its count from the fitted discrete power
    law (k >= k_min, truncated at M), else draws one of the observed counts below
    k_min. Every synthetic sample is refitted with k_min chosen again; p = share of
    the refitted samples whose KS distance is at least the data's. Synthetic samples that cannot be fitted are left out (``n_valid``).
    Returns {"p", "ks", "n_sims", "n_valid", "k_min", "mu", "fitted", "reason"}.
    """
    c = check_counts(counts)
    n_sims = check_int(n_sims, "n_sims", 1)
    if fit is None:
        fit, reason = fit_or_reason(c)
        if fit is None:
            return {"p": None, "ks": None, "n_sims": n_sims, "n_valid": 0, "k_min": None, "mu": None,
                    "fitted": False, "reason": reason}
    rng = _rng(seed)
    M = int(c.sum())
    body = c[c < fit.k_min]
    p_tail = fit.n_tail / c.size
    ks_sim = []
    for _ in range(n_sims):
        synth = _synthetic_counts(M, c.size, p_tail, body, fit, rng)
        try:
            ks_sim.append(E.fit_power_law(synth).ks)
        except ValueError:
            continue
    ks_sim = np.array(ks_sim)
    return {"p": float(np.mean(ks_sim >= fit.ks)) if ks_sim.size else None, "ks": float(fit.ks),
            "n_sims": n_sims, "n_valid": int(ks_sim.size), "k_min": int(fit.k_min), "mu": float(fit.mu),
            "fitted": True, "reason": ""}


def likelihood_ratio_tests(counts, k_min: int, alternatives=("lognormal", "exponential")) -> dict:
    """Power law against each alternative on the tail k >= k_min (discrete fits by ``powerlaw``).

    Returns {alternative: {"R", "R_norm", "p", "n", "favours"}} plus "alpha": the
    power-law exponent ``powerlaw`` fits on that tail (alpha = 1 + mu; it matches
    ``entropy.fit_power_law`` at the same k_min, tests/test_claims.py checks it).
    ``favours`` is "power_law" or the alternative when p < 0.1, else "neither".
    """
    import powerlaw

    c = check_counts(counts)
    if not isinstance(k_min, (int, np.integer)) or isinstance(k_min, bool) or k_min < 1:
        raise ValueError(f"k_min: expected a positive integer, got {k_min!r}")
    tail = c[c >= k_min]
    if tail.size < 2 or np.all(tail == tail[0]):
        raise ValueError(f"counts: need at least two distinct counts >= k_min = {k_min} for the tests")
    out = {}
    with warnings.catch_warnings():  # powerlaw's own deprecation and overflow warnings
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(c.astype(float), discrete=True, xmin=int(k_min), estimate_discrete=False, verbose=False)
        out["alpha"] = float(fit.power_law.alpha)
        for alt in _as_list(alternatives, "alternatives"):
            R, p = fit.distribution_compare("power_law", alt, nested=False)
            R_norm, _ = fit.distribution_compare("power_law", alt, nested=False, normalized_ratio=True)
            out[alt] = {"R": float(R), "R_norm": float(R_norm), "p": float(p), "n": int(len(fit.data)),
                        "favours": "neither" if p >= 0.1 else ("power_law" if R > 0 else alt)}
    return out


@lru_cache(maxsize=8)
def _zipf_law_mk(M: int) -> np.ndarray:
    from scipy import stats as st

    from rr_utils import bound as B

    opt = B.optimal_mk(M, 1.0)
    j = np.flatnonzero(opt) + 1  # the counts the optimum uses, and how many states have each
    k = np.arange(1, min(M, 2 * int(j.max()) + 50) + 1)
    mk = (opt[j - 1][:, None] * st.binom.pmf(k[None, :], M, (j / M)[:, None])).sum(axis=0)
    mk.flags.writeable = False
    return mk


def zipf_law_mk(M: int) -> np.ndarray:
    """Expected number of states seen k times (index k - 1) when M inputs are drawn from the state
    distribution of the bound's optimum at mu = 1 (``bound.optimal_mk``): Zipf's law as observed at M.
    Each of the optimum's states, of frequency j / M, is seen Binomial(M, j / M) times. Read-only."""
    return _zipf_law_mk(check_int(M, "M", 2))


def zipf_distance(counts) -> float:
    """Largest gap, over k, between the shares of inputs in states seen at most k times in ``counts``
    and in Zipf's law at the same M (``zipf_law_mk``); 0 is Zipf's law, 1 the farthest (module docstring)."""
    c = check_counts(counts)
    M = int(c.sum())
    target = zipf_law_mk(M)
    observed = np.bincount(c.astype(np.int64), minlength=len(target) + 1)[1:].astype(float)
    n = max(len(target), len(observed))
    k = np.arange(1, n + 1)
    t = np.cumsum(k * np.pad(target, (0, n - len(target))))
    o = np.cumsum(k * np.pad(observed, (0, n - len(observed))))
    return float(np.abs(o - t).max() / M)
