"""Claims C1-C3 from the state counts of a network's layers, each with both verdicts.

``layer_claims(counts_by_layer, widths, *, seed=0)`` is the entry point: the
train-split count vectors of the layers (``entropy.state_counts``), the layer
widths, and optionally the untrained network's and a control network's counts.

The rules (our choices; the paper gives no tolerances)
-------------------------------------------------------
C1 as stated: the first layer has H[s]/log M > 0.95, H[s]/log M never rises with
depth by more than 0.01, and H[K] peaks at neither the first nor the last layer.
C1 vs null: as stated, and the peak relevance H[K]/log M exceeds by
``MARGINS["C1_relevance"]`` (i) random states of the peak layer's width matched in
H[s] (reference a), (ii) the peak of every random stack of the same widths
(reference c), (iii) the untrained network's peak (reference b, if given); and,
if a control network whose widths do not shrink is given (reference d), its
resolution falls over its depth by at least ``MARGINS["C1_control_drop"]``: the
fall of H[s] with depth is then built by learning, not only imposed by widths.

C2 as stated: the mean normalised distance below the bound over all layers is
below 0.05. C2 vs null: only layers where the bound is informative count
(``informative_layers``): not at (1, 0) (H[s]/log M >= ``HS_EDGE`` = 0.99, where
every sample is near the bound's end) and not on the low-resolution branch
(H[s] at or below the end of the diagonal H[K] = H[s], ``bound.low_resolution_branch``:
there the bound is met by any sample whose states all have different counts,
0.517 log M at M = 8,000). Over those layers the mean of (reference distance -
layer distance) must be at least ``MARGINS["C2_distance"]``, for the matched
random states (reference a) and, if given, the untrained network at equal
resolution (reference b, ``nulls.reference_at_resolution``). No informative
layer: ``holds_vs_null`` is False.

C3 as stated: the fitted layer with mu closest to 1 (the Zipf layer) has
|mu - 1| < 0.3; a fit at the edge of the search range is "not fitted".
C3 vs null: as stated, the Zipf layer's power law is plausible (Clauset's
goodness-of-fit p >= 0.1), no likelihood-ratio test prefers the lognormal or the
exponential (p < 0.1 with R < 0), and its KS distance is below that of random
states matched to its width and H[s] by ``MARGINS["C3_ks"]``: a mu near 1 alone
is no evidence, since mu falls with resolution and random states of matched
resolution have the same mu (the noise stacks show it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rr_utils import bound as B
from rr_utils import claims as _C
from rr_utils import entropy as E
from rr_utils._checks import check_counts, check_int, check_table
from rr_utils.claims import nulls as N
from rr_utils.claims import stats as S

__all__ = [
    "layer_claims",
    "informative_layers",
    "layer_entropy_intervals",
    "fit_layers",
    "sensitivity",
    "verdict_changes",
    "claim_c1_table",
    "claim_c2_table",
    "claim_c3_fits",
]


# ------------------------------------------------------------------ inputs


def _check_layers(counts_by_layer, widths, name: str = "counts_by_layer"):
    layers = [check_counts(c, f"{name}[{i}]") for i, c in enumerate(N._as_list(counts_by_layer, name))]
    widths = [check_int(w, "widths", 1) for w in N._as_list(widths, "widths")]
    if len(widths) != len(layers):
        raise ValueError(f"widths: expected one width per layer ({len(layers)} layers of counts), got {len(widths)} "
                         "(hidden layers only, without the visible layer)")
    Ms = {int(c.sum()) for c in layers}
    if len(Ms) != 1:
        raise ValueError(f"{name}: every layer must count the same M inputs, got M = {sorted(Ms)}")
    M = Ms.pop()
    for i, (c, w) in enumerate(zip(layers, widths)):
        if w < 63 and c.size > 2 ** w:
            raise ValueError(f"{name}[{i}]: {c.size} distinct states cannot come from a layer of width {w}")
    return layers, widths, M


def _seeds(seed, n: int) -> list[np.random.Generator]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(n)]


def _points_frame(layers, widths) -> pd.DataFrame:
    return pd.DataFrame([dict(depth=d, units=w, **N.layer_point(c))
                         for d, (c, w) in enumerate(zip(layers, widths), start=1)])


def informative_layers(points: pd.DataFrame, hs_edge: float | None = None) -> pd.DataFrame:
    """Which layers the bound can tell apart from a null (C2), and why the others cannot.

    Adds ``informative`` (bool) and ``excluded_because`` ("" / "at (1, 0)" /
    "low-resolution branch") to a frame with columns M, H_s, H_s_norm. At (1, 0):
    H[s]/log M >= ``hs_edge`` (default ``HS_EDGE`` = 0.99). Low-resolution branch:
    H[s] at or below the end of the diagonal H[K] = H[s] at that M (where the bound
    is met by any sample whose states all have different counts).
    """
    hs_edge = _C.HS_EDGE if hs_edge is None else float(hs_edge)
    out = points.copy()
    ends = {M: float(B.low_resolution_branch(int(M))["H_s"].iloc[-1]) for M in out["M"].unique()}
    on_branch = out["H_s"] <= out["M"].map(ends) + 1e-9
    at_edge = out["H_s_norm"] >= hs_edge
    out["excluded_because"] = np.where(at_edge, "at (1, 0)", np.where(on_branch, "low-resolution branch", ""))
    out["informative"] = ~(at_edge | on_branch)
    out["branch_end_H_s_norm"] = out["M"].map(lambda M: ends[M] / np.log(M) if M > 1 else 0.0)
    return out


# ------------------------------------------------------- as stated (tables)


def claim_c1_table(table: pd.DataFrame, rise_tol: float | None = None) -> dict:
    """C1 as stated on a layer table (columns depth, units, H_K, H_K_norm, H_s_norm; rows of the
    train split if a ``split`` column is present): numbers and ``holds``."""
    rise_tol = _C.TOLERANCES["C1_rise"] if rise_tol is None else rise_tol
    check_table(table, ["depth", "units", "H_K", "H_K_norm", "H_s_norm"])
    tr = table[table["split"] == "train"] if "split" in table.columns else table
    tr = tr.sort_values("depth")
    if tr.empty:
        raise ValueError("table: no rows with split == 'train'")
    peak = tr.loc[tr["H_K"].idxmax()]
    out = {"first_layer_H_s_norm": float(tr["H_s_norm"].iloc[0]),
           "max_rise_of_H_s_norm_with_depth": float(np.max(np.diff(tr["H_s_norm"].to_numpy()), initial=0.0)),
           "relevance_peak_depth": int(peak["depth"]), "relevance_peak_units": int(peak["units"]),
           "relevance_peak_H_K_norm": float(peak["H_K_norm"])}
    out["holds"] = bool(out["first_layer_H_s_norm"] > _C.TOLERANCES["C1_first_layer_H_s_norm"]
                        and out["max_rise_of_H_s_norm_with_depth"] <= rise_tol
                        and 1 < out["relevance_peak_depth"] < len(tr))
    return out


def claim_c2_table(table: pd.DataFrame, tol: float | None = None) -> dict:
    """C2 as stated on a layer table: mean normalised distance below the bound (all layers) < ``tol``."""
    tol = _C.TOLERANCES["C2_near_bound"] if tol is None else tol
    check_table(table, ["below_bound_norm", "H_s", "H_K", "M"])
    tr = table[table["split"] == "train"] if "split" in table.columns else table
    if tr.empty:
        raise ValueError("table: no rows with split == 'train'")
    out = {"mean_below_bound_norm": float(tr["below_bound_norm"].mean()),
           "max_below_bound_norm": float(tr["below_bound_norm"].max()),
           "mean_noise_norm": float(((tr["H_s"] - tr["H_K"]) / np.log(tr["M"])).mean()), "tol": float(tol)}
    out["holds"] = bool(out["mean_below_bound_norm"] < tol)
    return out


def fit_layers(counts: list, sizes) -> pd.DataFrame:
    """Power-law fit of each layer's counts (``entropy.fit_power_law``).

    ``sizes``: the network's sizes, visible first (``dbn.sizes``). A layer gets
    ``fitted`` False, NaN mu and the ``reason`` when there are too few states to
    fit, or when the fit runs into the edge of the search range (almost all
    states seen once: no measurable slope).
    """
    counts = N._as_list(counts, "counts")
    if len(sizes) != len(counts) + 1:
        raise ValueError(f"sizes: expected {len(counts) + 1} layer sizes (visible first, as dbn.sizes) "
                         f"for {len(counts)} layers of counts, got {len(sizes)}")
    rows = []
    for depth, c in enumerate(counts, start=1):
        f, reason = S.fit_or_reason(c)
        if f is None:
            rows.append(dict(depth=depth, units=sizes[depth], mu=np.nan, mu_err=np.nan, k_min=np.nan,
                             n_tail=len(c), ks=np.nan, fitted=False, reason=reason))
        else:
            rows.append(dict(depth=depth, units=sizes[depth], mu=f.mu, mu_err=f.mu_err, k_min=f.k_min,
                             n_tail=f.n_tail, ks=f.ks, fitted=True, reason=""))
    return pd.DataFrame(rows)


def claim_c3_fits(fits: pd.DataFrame, tol: float | None = None) -> dict:
    """C3 as stated: the Zipf layer is the fitted layer with mu closest to 1; holds if |mu - 1| < tol."""
    tol = _C.TOLERANCES["C3_zipf"] if tol is None else tol
    check_table(fits, ["depth", "units", "mu", "mu_err"], "fits")
    ok = fits.dropna(subset=["mu"])
    mu_per_layer = {int(d): (None if np.isnan(m) else round(float(m), 6)) for d, m in zip(fits["depth"], fits["mu"])}
    if ok.empty:
        return {"zipf_layer_depth": None, "holds": False, "mu_per_layer": mu_per_layer,
                "reason": "no layer has a fitted exponent"}
    z = ok.loc[(ok["mu"] - 1).abs().idxmin()]
    return {"zipf_layer_depth": int(z["depth"]), "zipf_layer_units": int(z["units"]),
            "zipf_layer_mu": float(z["mu"]), "zipf_layer_mu_err": float(z["mu_err"]),
            "mu_per_layer": mu_per_layer, "holds": bool(abs(z["mu"] - 1) < tol)}


# ----------------------------------------------------------------- claims


def _r(x, nd: int = 6):
    """JSON-friendly rounding (None for NaN)."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    return None if not np.isfinite(x) else round(x, nd)


def _c1(points, matched, stacks, untrained, control, margins) -> dict:
    stated = claim_c1_table(points)
    peak = stated["relevance_peak_depth"]
    peak_hk = stated["relevance_peak_H_K_norm"]
    m = margins["C1_relevance"]
    checks, vs = {}, {"rule": (f"as stated, and the peak H[K]/log M exceeds each reference's by >= {m} "
                               f"(a: random states matched in width and H[s] at the peak layer; c: the peak of "
                               f"each random stack; b: the untrained network's peak, if given); d (if given): "
                               f"the constant-width control's H[s]/log M falls by >= {margins['C1_control_drop']} "
                               "over its depth"), "margin": m}
    a = matched.get(peak)
    if a is not None:
        vs["matched_random_at_peak_H_K_norm"] = _r(a["H_K_norm_mean"])
        vs["matched_random_at_peak_H_K_norm_sd"] = _r(a["H_K_norm_sd"])
        vs["excess_over_matched_random"] = _r(peak_hk - a["H_K_norm_mean"])
        checks["a"] = peak_hk - a["H_K_norm_mean"] >= m
    else:  # the peak layer sits at (1, 0): nothing to match, and C1 fails as stated anyway
        checks["a"] = False
        vs["matched_random_at_peak_H_K_norm"] = None
    vs["noise_stacks"] = {}
    for p, st in stacks.items():
        s1 = claim_c1_table(st)
        vs["noise_stacks"][f"p={p:g}"] = {"peak_depth": s1["relevance_peak_depth"],
                                          "peak_H_K_norm": _r(s1["relevance_peak_H_K_norm"]),
                                          "holds_as_stated": s1["holds"],
                                          "excess": _r(peak_hk - s1["relevance_peak_H_K_norm"])}
        checks[f"c p={p:g}"] = peak_hk - s1["relevance_peak_H_K_norm"] >= m
    if stacks:
        vs["excess_over_noise_stacks"] = _r(min(v["excess"] for v in vs["noise_stacks"].values()))
    if untrained is not None:
        u1 = claim_c1_table(untrained)
        vs["untrained"] = {"peak_depth": u1["relevance_peak_depth"], "peak_H_K_norm": _r(u1["relevance_peak_H_K_norm"]),
                           "holds_as_stated": u1["holds"], "excess": _r(peak_hk - u1["relevance_peak_H_K_norm"])}
        checks["b"] = peak_hk - u1["relevance_peak_H_K_norm"] >= m
    if control is not None:
        hs = control.sort_values("depth")["H_s_norm"].to_numpy()
        d1 = claim_c1_table(control)
        drop = float(hs[0] - hs[-1])
        vs["control"] = {"widths": [int(w) for w in control.sort_values("depth")["units"]],
                         "H_s_norm_per_layer": [_r(h) for h in hs], "resolution_drop": _r(drop),
                         "peak_depth": d1["relevance_peak_depth"], "peak_H_K_norm": _r(d1["relevance_peak_H_K_norm"]),
                         "holds_as_stated": d1["holds"]}
        checks["d"] = drop >= margins["C1_control_drop"]
    vs["checks"] = {k: bool(v) for k, v in checks.items()}
    vs["references"] = sorted({k.split()[0] for k in checks})
    holds_null = bool(stated["holds"] and all(checks.values()))
    return _C.verdict("C1", stated.pop("holds"), holds_null, {k: _r(v) for k, v in stated.items()} | {
        "rule": "first layer H[s]/log M > 0.95, H[s]/log M rises with depth by <= 0.01, H[K] peaks at an inner layer"},
        vs)


def _c2(points, matched, untrained_counts, margins) -> dict:
    stated = claim_c2_table(points)
    info = informative_layers(points)
    m = margins["C2_distance"]
    per_layer, diffs_a = [], []
    ref_b = None
    if untrained_counts is not None:
        ref_b = N.reference_at_resolution(untrained_counts, info["H_s_norm"].to_numpy())
    for i, r in info.reset_index(drop=True).iterrows():
        row = {"depth": int(r["depth"]), "units": int(r["units"]), "H_s_norm": _r(r["H_s_norm"]),
               "H_K_norm": _r(r["H_K_norm"]), "below_bound_norm": _r(r["below_bound_norm"]),
               "informative": bool(r["informative"]), "excluded_because": r["excluded_because"]}
        a = matched.get(int(r["depth"]))
        if a is not None:
            row |= {"matched_random_below_bound_norm": _r(a["below_bound_norm_mean"]),
                    "matched_random_below_bound_norm_sd": _r(a["below_bound_norm_sd"]),
                    "matched_random_H_s_norm": _r(a["H_s_norm_mean"]), "matched_random_H_K_norm": _r(a["H_K_norm_mean"]),
                    "matched_random_all_matched": a["all_matched"]}
            if r["informative"]:
                diffs_a.append(a["below_bound_norm_mean"] - r["below_bound_norm"])
        if ref_b is not None:
            row["untrained_below_bound_norm_at_equal_H_s"] = _r(ref_b[i])
        per_layer.append(row)
    inf = info[info["informative"]]
    vs = {"rule": (f"informative layers only (not at (1, 0): H[s]/log M < {_C.HS_EDGE}; not on the low-resolution "
                   f"branch: H[s]/log M > {info['branch_end_H_s_norm'].iloc[0]:.3f} at M = {int(info['M'].iloc[0])}); "
                   f"mean over them of (reference distance - layer distance) >= {m}, for random states matched in "
                   "width and H[s] (a) and the untrained network at equal H[s] (b, if given)"),
          "margin": m, "n_informative": int(len(inf)), "informative_depths": [int(d) for d in inf["depth"]],
          "mean_below_bound_norm_informative": _r(inf["below_bound_norm"].mean()) if len(inf) else None,
          "per_layer": per_layer}
    checks = {}
    if len(inf) == 0:
        vs["reason"] = "no layer where the bound is informative"
        checks["a"] = False
    else:
        vs["matched_random_mean_below_bound_norm_informative"] = _r(
            np.mean([matched[int(d)]["below_bound_norm_mean"] for d in inf["depth"]]))
        vs["mean_advantage_over_matched_random"] = _r(np.mean(diffs_a))
        vs["min_advantage_over_matched_random"] = _r(np.min(diffs_a))
        checks["a"] = float(np.mean(diffs_a)) >= m
        if ref_b is not None:
            b = np.asarray(ref_b)[info["informative"].to_numpy()]
            d = inf["below_bound_norm"].to_numpy()
            ok = np.isfinite(b)
            vs["untrained_compared_layers"] = int(ok.sum())
            if ok.any():
                vs["mean_advantage_over_untrained"] = _r(np.mean(b[ok] - d[ok]))
                checks["b"] = float(np.mean(b[ok] - d[ok])) >= m
            else:
                vs["untrained_note"] = "no untrained layer spans these resolutions: not compared"
    vs["checks"] = {k: bool(v) for k, v in checks.items()}
    vs["references"] = sorted(checks)
    holds_null = bool(all(checks.values()))
    as_stated = {k: _r(v) for k, v in stated.items() if k != "holds"} | {
        "rule": "mean normalised distance below the bound, all layers, < 0.05"}
    return _C.verdict("C2", stated["holds"], holds_null, as_stated, vs)


def _c3(layers, widths, points, matched_fn, stacks_counts, n_boot, n_gof, rng, margins) -> dict:
    sizes = [0, *widths]  # fit_layers wants the visible layer first; it is not used
    fits = fit_layers(layers, sizes)
    stated = claim_c3_fits(fits)
    as_stated = {k: (_r(v) if not isinstance(v, dict) else v) for k, v in stated.items() if k != "holds"}
    as_stated["fits"] = [{k: (_r(v) if k != "reason" else v) for k, v in r.items()} for r in fits.to_dict("records")]
    as_stated["rule"] = "the fitted layer with mu closest to 1 has |mu - 1| < 0.3 (edge-of-range fits are not fitted)"
    vs = {"rule": (f"as stated, and for the Zipf layer: Clauset goodness-of-fit p >= {margins['C3_gof_p']}; no "
                   f"likelihood-ratio test prefers the lognormal or the exponential (R < 0 with p < {margins['C3_lr_p']}); "
                   f"KS distance of the fit below that of random states matched in width and H[s] by >= {margins['C3_ks']}"),
          "margin_ks": margins["C3_ks"]}
    if n_boot:
        boot = S.mu_bootstrap(layers, n_boot=n_boot, seed=rng)
        vs["bootstrap"] = {"n_boot": boot["n_boot"], "over": boot["over"],
                           "mu": [None if b is None else {k: _r(v) for k, v in b.items()} for b in boot["mu"]],
                           "zipf_layer_frequency": {str(k): _r(v) for k, v in boot["zipf_layer_frequency"].items()},
                           "zipf_layer_set_95": boot["zipf_layer_set"],
                           "zipf_layer_set_coverage": _r(boot["zipf_layer_set_coverage"]),
                           "zipf_layer_frequency_uncorrected": {
                               str(k): _r(v) for k, v in boot["zipf_layer_frequency_uncorrected"].items()}}
    else:
        vs["bootstrap"] = None
    stacks = {}
    for p, sc in stacks_counts.items():
        s3 = claim_c3_fits(fit_layers(sc, sizes))
        stacks[f"p={p:g}"] = {"zipf_layer_depth": s3["zipf_layer_depth"], "zipf_layer_mu": _r(s3.get("zipf_layer_mu")),
                              "holds_as_stated": s3["holds"]}
    vs["noise_stacks"] = stacks
    vs["noise_stacks_holding_as_stated"] = sum(v["holds_as_stated"] for v in stacks.values())
    checks = {}
    z = stated["zipf_layer_depth"]
    if z is None:
        vs["reason"] = "no Zipf layer (no layer has a fitted exponent)"
        checks["fit"] = False
    else:
        zc = layers[z - 1]
        f, _ = S.fit_or_reason(zc)
        gof = S.power_law_gof(zc, n_sims=n_gof, seed=rng, fit=f)
        lr = S.likelihood_ratio_tests(zc, int(f.k_min))
        vs["zipf_layer"] = {"depth": z, "units": int(widths[z - 1]), "mu": _r(f.mu), "k_min": int(f.k_min),
                            "n_tail": int(f.n_tail), "ks": _r(f.ks), "gof_p": _r(gof["p"]), "gof_n_sims": gof["n_valid"],
                            "lr": {alt: {k: (_r(v) if k != "favours" else v) for k, v in d.items()}
                                   for alt, d in lr.items() if alt != "alpha"},
                            "powerlaw_alpha": _r(lr["alpha"])}
        if n_boot:
            b = boot["mu"][z - 1]
            vs["zipf_layer"] |= {"boot_lo": _r(b["lo"]), "boot_hi": _r(b["hi"]), "boot_sd": _r(b["sd"]),
                                 "boot_share": _r(boot["zipf_layer_frequency"].get(z, 0.0))}
        a = matched_fn(z)
        null_ks, null_mu = [], []
        for d in a["draws"]:
            g, _ = S.fit_or_reason(d["counts"])
            null_ks.append(g.ks if g is not None else np.nan)
            null_mu.append(g.mu if g is not None else np.nan)
        null_ks = np.array(null_ks)
        vs["matched_random_at_zipf_layer"] = {"ks": [_r(x) for x in null_ks], "mu": [_r(x) for x in null_mu],
                                              "H_s_norm_mean": _r(a["H_s_norm_mean"]), "n_draws": a["n_draws"]}
        checks["gof"] = gof["p"] is not None and gof["p"] >= margins["C3_gof_p"]
        checks["lr"] = not any(d["R"] < 0 and d["p"] < margins["C3_lr_p"] for alt, d in lr.items() if alt != "alpha")
        if np.isfinite(null_ks).any():
            adv = float(np.nanmean(null_ks) - f.ks)
            vs["ks_advantage_over_matched_random"] = _r(adv)
            checks["a"] = adv >= margins["C3_ks"]
        else:  # random states of this resolution cannot be fitted at all: the layer's power law is the difference
            vs["ks_advantage_over_matched_random"] = None
            vs["matched_random_note"] = "no matched random draw could be fitted"
            checks["a"] = True
    vs["checks"] = {k: bool(v) for k, v in checks.items()}
    holds_null = bool(stated["holds"] and all(checks.values()))
    return _C.verdict("C3", stated["holds"], holds_null, as_stated, vs)


def layer_claims(counts_by_layer, widths, *, seed=0, untrained_counts=None, control_counts=None,
                 control_widths=None, n_draws: int = 5, n_boot: int = 30, n_gof: int = 100,
                 stack_biases=(0.2, 0.5), margins: dict | None = None, which=("C1", "C2", "C3")) -> dict:
    """Claims C1, C2 and C3 on one network, each with ``holds_as_stated`` and ``holds_vs_null``.

    counts_by_layer: the train-split count vector of each layer (``entropy.state_counts``),
    first hidden layer first; widths: the layers' widths (hidden layers only).
    References computed here: (a) random states of each layer's width with H[s]
    matched (``n_draws`` draws), (c) random stacks of the same widths with bits
    Bernoulli(p), p in ``stack_biases``. Optional references from networks (same M):
    ``untrained_counts`` (b: the untrained network's counts per layer) and
    ``control_counts`` with ``control_widths`` (d: a network whose widths do not
    shrink). ``n_boot`` bootstrap replicates for the exponents (0: none), ``n_gof``
    synthetic samples for the goodness of fit. ``seed`` fixes every random draw.
    ``which``: the claims to compute (C3's fits and tests are most of the cost).

    Returns {"C1": record, "C2": record, "C3": record} (records: ``claims.verdict``).
    The rules are in this module's docstring.
    """
    layers, widths, M = _check_layers(counts_by_layer, widths)
    unknown = set(margins or {}) - set(_C.MARGINS)
    if unknown:
        raise ValueError(f"margins: unknown keys {sorted(unknown)}; known: {sorted(_C.MARGINS)}")
    margins = {**_C.MARGINS, **(margins or {})}
    n_draws = check_int(n_draws, "n_draws", 1)
    n_boot, n_gof = check_int(n_boot, "n_boot", 0), check_int(n_gof, "n_gof", 1)
    which = tuple(which)
    if not which or any(w not in ("C1", "C2", "C3") for w in which):
        raise ValueError(f"which: expected a non-empty selection of 'C1', 'C2', 'C3', got {which!r}")
    if n_boot == 1:
        raise ValueError("n_boot: expected 0 (no bootstrap) or at least 2 replicates, got 1")
    rng_a, rng_c, rng_3 = _seeds(seed, 3)
    points = _points_frame(layers, widths)
    untrained = control = None
    if untrained_counts is not None:
        u_layers, u_widths, u_M = _check_layers(untrained_counts, widths, "untrained_counts")
        if u_M != M:
            raise ValueError(f"untrained_counts: M = {u_M}, the layers have M = {M}; compare equal M")
        untrained = _points_frame(u_layers, u_widths)
    if control_counts is not None:
        if control_widths is None:
            raise ValueError("control_widths: required with control_counts (the control network's widths)")
        c_layers, c_widths, c_M = _check_layers(control_counts, control_widths, "control_counts")
        if c_M != M:
            raise ValueError(f"control_counts: M = {c_M}, the layers have M = {M}; compare equal M")
        control = _points_frame(c_layers, c_widths)

    matched: dict[int, dict] = {}
    seeds_a = [int(s) for s in rng_a.integers(0, 2**63 - 1, len(layers))]

    def matched_fn(depth: int) -> dict:  # reference (a), computed once per layer, on demand
        if depth not in matched:
            matched[depth] = N.matched_random(layers[depth - 1], widths[depth - 1], n_draws=n_draws,
                                              seed=seeds_a[depth - 1], keep_counts=True)
        return matched[depth]

    if {"C1", "C2"} & set(which):
        for d, hs in zip(points["depth"], points["H_s_norm"]):
            if hs < _C.HS_EDGE:  # at (1, 0) there is nothing to match: random states of any width >= log2 M sit there
                matched_fn(int(d))
    stacks_counts = {float(p): N.noise_stack(M, widths, p, seed=rng_c) for p in stack_biases}
    stacks = {p: _points_frame(sc, widths) for p, sc in stacks_counts.items()}
    out = {}
    if "C1" in which:
        out["C1"] = _c1(points, matched, stacks, untrained, control, margins)
    if "C2" in which:
        out["C2"] = _c2(points, matched, untrained_counts, margins)
    if "C3" in which:
        out["C3"] = _c3(layers, widths, points, matched_fn, stacks_counts, n_boot, n_gof, rng_3, margins)
    return out


# ----------------------------------------------------- error bars, sensitivity


def layer_entropy_intervals(counts_by_layer, widths, n_boot: int = 200, seed=0, level: float = 0.95) -> pd.DataFrame:
    """Bootstrap (over inputs) intervals of H[s] and H[K] per layer (``stats.entropy_intervals``).

    One row per layer: depth, units, and for H_s, H_K, H_s_norm, H_K_norm the
    estimate, ``_lo``/``_hi`` (normal interval, drawn by ``plotting.plot_layer_errorbars``),
    ``_pct_lo``/``_pct_hi`` (percentile interval) and ``_bias``.
    """
    layers, widths, _ = _check_layers(counts_by_layer, widths)
    rows = []
    for d, (c, w, rng) in enumerate(zip(layers, widths, _seeds(seed, len(layers))), start=1):
        iv = S.entropy_intervals(c, n_boot=n_boot, seed=rng, level=level)
        row = {"depth": d, "units": w}
        for q, v in iv.items():
            row |= {q: v["estimate"], f"{q}_lo": v["lo"], f"{q}_hi": v["hi"], f"{q}_pct_lo": v["pct_lo"],
                    f"{q}_pct_hi": v["pct_hi"], f"{q}_bias": v["bias"]}
        rows.append(row)
    return pd.DataFrame(rows)


def _summary(claims: dict) -> dict:
    return {cid: {"holds_as_stated": r["holds_as_stated"], "holds_vs_null": r["holds_vs_null"]}
            for cid, r in claims.items()}


def sensitivity(dbn, x, thresholds=(0.3, 0.5, 0.7), sampled: bool = True, seed=0, baseline: str = "threshold=0.5",
                untrained: bool = True, **claim_kw) -> dict:
    """The layer table and the claims' verdicts under other ways of reading the states.

    Variants: thresholding the up-pass probabilities at each of ``thresholds``, and
    (``sampled``) one state per input drawn from p(h|x) (``dbn.sampled_states``,
    same M). Each variant gets the layer table (``layer_point`` per layer) and
    ``layer_claims`` (``claim_kw`` passed on, e.g. smaller n_boot); with
    ``untrained`` the untrained network (``dbn.at_epoch(0)``), read the same way,
    is reference (b). Returns {"variants": {name: {"table": [...], "verdicts":
    {C1: {holds_as_stated, holds_vs_null}, ...}, "claims": ...}}, "baseline",
    "changes", "any_verdict_changes"}.
    """
    widths = list(dbn.sizes[1:])
    nets = {"trained": dbn, **({"untrained": dbn.at_epoch(0)} if untrained else {})}
    variants = {}
    for t in thresholds:
        variants[f"threshold={t:g}"] = {k: [E.state_counts(s) for s in net.binary_states(x, threshold=float(t))]
                                        for k, net in nets.items()}
    if sampled:
        variants["sampled"] = {k: [E.state_counts(s[0]) for s in net.sampled_states(x, n_samples=1, generator=int(seed))]
                               for k, net in nets.items()}
    if baseline not in variants:
        raise ValueError(f"baseline: {baseline!r} is not one of the variants {sorted(variants)}")
    out = {}
    for name, counts in variants.items():
        claims = layer_claims(counts["trained"], widths, seed=seed, untrained_counts=counts.get("untrained"), **claim_kw)
        out[name] = {"table": _points_frame(counts["trained"], widths).round(6).to_dict("records"),
                     "verdicts": _summary(claims), "claims": claims}
    changes = verdict_changes({k: v["verdicts"] for k, v in out.items()}, baseline)
    return {"variants": out, "baseline": baseline, "changes": changes, "any_verdict_changes": bool(changes)}


def verdict_changes(verdicts_by_variant: dict, baseline: str) -> list:
    """Every (variant, claim, verdict) whose value differs from the baseline variant's.

    ``verdicts_by_variant``: {variant: {claim: {"holds_as_stated": ..., "holds_vs_null": ...}}}.
    Returns a list of {"variant", "claim", "verdict", "baseline", "value"} (empty: nothing changes).
    """
    if not isinstance(verdicts_by_variant, dict) or baseline not in verdicts_by_variant:
        raise ValueError(f"baseline: {baseline!r} is not a key of verdicts_by_variant")
    base = verdicts_by_variant[baseline]
    out = []
    for name, v in verdicts_by_variant.items():
        if name == baseline:
            continue
        for cid, rec in v.items():
            for key in ("holds_as_stated", "holds_vs_null"):
                if rec.get(key) != base.get(cid, {}).get(key):
                    out.append({"variant": name, "claim": cid, "verdict": key,
                                "baseline": base.get(cid, {}).get(key), "value": rec.get(key)})
    return out
