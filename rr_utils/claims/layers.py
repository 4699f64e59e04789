"""Claims C1-C3 from the state counts of a network's layers, each with both verdicts.

``layer_claims(counts_by_layer, widths, *, untrained=..., inputs=..., seed=0)`` is
the entry point: the train-split count vectors of the layers
(``entropy.state_counts``), the layer widths, and the references' sources.

The rules (our choices; the paper gives no tolerances)
-------------------------------------------------------
As stated: C1, the first layer has H[s]/log M > 0.95, H[s]/log M never rises with
depth by more than 0.01, and H[K] peaks at neither the first nor the last layer;
C2, the mean normalised distance below the bound over all layers is below 0.05;
C3, the fitted layer with mu closest to 1 (the Zipf layer) has |mu - 1| < 0.3
(a fit at the edge of the search range is "not fitted").

Against the references: the strong references are measured, many draws each
(``references``): (b) untrained networks of the recipe and (e) random Gaussian
projections of the inputs. Each verdict is a decision with a 95% prediction
interval over the reference draws and the inputs (``decision.compare``): it holds
when the interval lies above 0, is undecided when it contains 0.

* C1: as stated, and the peak H[K]/log M lies above the peaks of the references
  read as networks are (untrained: probabilities > 0.5; projections: signs).
* C2: over the informative layers (``informative_layers``: not at (1, 0), not on
  the low-resolution branch, where any sample meets the bound), the mean distance
  below the bound lies below the references' layers of the same depth and width,
  read at the one threshold that gives them the same H[s]. No informative layer:
  does not hold.
* C3: as stated, and the fitted layer nearest the bound's Zipf point in H[s]
  (``zipf_anchor``: chosen by resolution, so that the choice does not feed on
  the noise of the fitted mu) lies closer to Zipf's law than the references'
  layers of the same depth, width and H[s], by the distance of its count
  distribution from Zipf's law as sampled at M (``stats.zipf_distance``). Not
  by |mu - 1|: at the Zipf point's resolution the references fit mu near 1 too
  (untrained networks and projections of MNIST: 1.08-1.14 on average), while
  samples of the bound's exact optimum fit 1.15-1.22, so the fitted exponent
  cannot tell them apart; |mu - 1| against the references is reported only.
  Clauset's goodness of fit and the likelihood-ratio tests are reported only:
  samples of the bound's own Zipf optimum fail them too often
  (``calibration.zipf_sample_checks``).

Weak references, reported always and deciding only when no strong one is given:
(a) random states matched in width and H[s] (``nulls.matched_random``) and (c)
random stacks of the same widths (``nulls.noise_stack``), with the margins of
``claims.MARGINS``; (d) a constant-width control network (C1, if given).
``calibration`` measures how often each test says "holds" on inputs with a known
answer (``results/claims_calibration.json``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rr_utils import bound as B
from rr_utils import claims as _C
from rr_utils import entropy as E
from rr_utils._checks import check_counts, check_int, check_table
from rr_utils.claims import decision as D
from rr_utils.claims import nulls as N
from rr_utils.claims import references as R
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
    "zipf_anchor",
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


def _weak_c1(peak, peak_hk, matched, stacks, m) -> tuple[dict, dict]:
    """References (a) and (c) for C1, by the margin rule: the weakest references."""
    vs, checks = {}, {}
    a = matched.get(peak)
    if a is not None:
        vs["matched_random_at_peak_H_K_norm"] = _r(a["H_K_norm_mean"])
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
    return vs, checks


def _decide(stated_holds: bool, comparisons: dict, weak_checks: dict, extra_checks: dict | None = None) -> tuple:
    """holds_vs_null and the decision from the strong references' comparisons (or, without any, the weak checks)."""
    extra = extra_checks or {}
    if comparisons:
        decisions = [c["decision"] for c in comparisons.values()]
        if "does not hold" in decisions:
            decision = "does not hold"
        elif all(d == "holds" for d in decisions):
            decision = "holds"
        else:
            decision = "undecided"
        if not all(extra.values()) and decision == "holds":
            decision = "does not hold"
        basis = "strong references (interval over draws and inputs)"
    else:
        decision = "holds" if (all(weak_checks.values()) and all(extra.values())) else "does not hold"
        basis = "weak references only (matched random states, random stacks; margins)"
    if not stated_holds:
        decision = "does not hold"
    return bool(decision == "holds"), decision, basis


def _c1(points, matched, stacks, control, strong, tested, margins) -> dict:
    stated = claim_c1_table(points)
    peak = stated["relevance_peak_depth"]
    peak_hk = stated["relevance_peak_H_K_norm"]
    m = margins["C1_relevance"]
    vs = {"rule": ("as stated, and the peak H[K]/log M lies above the peaks of the strong references read as "
                   "networks are (untrained networks: probabilities > 0.5; random projections of the inputs: "
                   "signs), by a 95% interval over reference draws and inputs (claims.decision); without strong "
                   f"references: above (a) matched random states and (c) random stacks by {m}; d (if given): the "
                   f"constant-width control's H[s]/log M falls by >= {margins['C1_control_drop']} over its depth"),
          "margin_weak": m}
    weak, checks = _weak_c1(peak, peak_hk, matched, stacks, m)
    vs["weak_references"] = weak
    comparisons = {}
    for kind, ref in strong.items():
        comparisons[kind] = D.compare(peak_hk, tested["peak_H_K_norm"], ref["peak_H_K_norm"], reference=kind,
                                      higher_is_better=True).as_dict()
        comparisons[kind]["reference_peak_depths"] = ref["peak_depth"]
    extra = {}
    if control is not None:
        hs = control.sort_values("depth")["H_s_norm"].to_numpy()
        d1 = claim_c1_table(control)
        drop = float(hs[0] - hs[-1])
        vs["control"] = {"widths": [int(w) for w in control.sort_values("depth")["units"]],
                         "H_s_norm_per_layer": [_r(h) for h in hs], "resolution_drop": _r(drop),
                         "peak_depth": d1["relevance_peak_depth"], "peak_H_K_norm": _r(d1["relevance_peak_H_K_norm"]),
                         "holds_as_stated": d1["holds"]}
        extra["d"] = drop >= margins["C1_control_drop"]
    vs["comparisons"] = comparisons
    vs["checks"] = {k: bool(v) for k, v in {**checks, **extra}.items()}
    holds, decision, basis = _decide(stated["holds"], comparisons, checks, extra)
    vs |= {"decision": decision, "basis": basis, "references": sorted(comparisons) or sorted({k.split()[0] for k in checks})}
    return _C.verdict("C1", stated.pop("holds"), holds, {k: _r(v) for k, v in stated.items()} | {
        "rule": "first layer H[s]/log M > 0.95, H[s]/log M rises with depth by <= 0.01, H[K] peaks at an inner layer"},
        vs)


def _c2(points, matched, strong, tested, margins) -> dict:
    stated = claim_c2_table(points)
    info = informative_layers(points)
    m = margins["C2_distance"]
    inf = info[info["informative"]]
    depths = [int(d) for d in inf["depth"]]
    per_layer, diffs_a = [], []
    for _, r in info.iterrows():
        row = {"depth": int(r["depth"]), "units": int(r["units"]), "H_s_norm": _r(r["H_s_norm"]),
               "H_K_norm": _r(r["H_K_norm"]), "below_bound_norm": _r(r["below_bound_norm"]),
               "informative": bool(r["informative"]), "excluded_because": r["excluded_because"]}
        a = matched.get(int(r["depth"]))
        if a is not None:
            row |= {"matched_random_below_bound_norm": _r(a["below_bound_norm_mean"]),
                    "matched_random_below_bound_norm_sd": _r(a["below_bound_norm_sd"]),
                    "matched_random_H_s_norm": _r(a["H_s_norm_mean"]), "matched_random_H_K_norm": _r(a["H_K_norm_mean"])}
            if r["informative"]:
                diffs_a.append(a["below_bound_norm_mean"] - r["below_bound_norm"])
        d = int(r["depth"])
        if r["informative"]:
            for kind, ref in strong.items():
                dist = np.array([p["below_bound_norm"] for p in ref["matched"][d]])
                c = D.compare(float(r["below_bound_norm"]), tested["below_bound_norm"][d], dist, reference=kind,
                              higher_is_better=False)
                row[kind] = {"mean": _r(c.reference_mean), "sd": _r(c.reference_sd), "effect": _r(c.mean_effect),
                             "H_K_norm_mean": _r(np.mean([p["H_K_norm"] for p in ref["matched"][d]])),
                             "H_s_norm_mean": _r(np.mean([p["H_s_norm"] for p in ref["matched"][d]])),
                             "effect_lo": _r(c.effect_lo), "effect_hi": _r(c.effect_hi), "decision": c.decision,
                             "all_matched": bool(all(ref["matched_ok"][d]))}
        per_layer.append(row)
    vs = {"rule": (f"informative layers only (not at (1, 0): H[s]/log M < {_C.HS_EDGE}; not on the low-resolution "
                   f"branch: H[s]/log M > {info['branch_end_H_s_norm'].iloc[0]:.3f} at M = {int(info['M'].iloc[0])}); "
                   "the mean over them of the distance below the bound lies below that of every strong reference "
                   "(the untrained networks' and the random projections' layers of the same depth and width, "
                   "read at the one threshold that gives the same H[s]) by a 95% interval over reference draws and inputs "
                   f"(claims.decision); without strong references: (a) matched random states by {m}"),
          "margin_weak": m, "n_informative": len(depths), "informative_depths": depths,
          "mean_below_bound_norm_informative": _r(inf["below_bound_norm"].mean()) if depths else None,
          "per_layer": per_layer}
    checks, comparisons = {}, {}
    if not depths:
        vs["reason"] = "no layer where the bound is informative"
        checks["a"] = False
    else:
        vs["matched_random_mean_below_bound_norm_informative"] = _r(
            np.mean([matched[d]["below_bound_norm_mean"] for d in depths]))
        vs["mean_advantage_over_matched_random"] = _r(np.mean(diffs_a))
        checks["a"] = float(np.mean(diffs_a)) >= m
        est = float(inf["below_bound_norm"].mean())
        reps = np.mean([tested["below_bound_norm"][d] for d in depths], axis=0)
        for kind, ref in strong.items():
            dist = np.mean([[p["below_bound_norm"] for p in ref["matched"][d]] for d in depths], axis=0)
            comparisons[kind] = D.compare(est, reps, dist, reference=kind, higher_is_better=False).as_dict()
    vs["comparisons"] = comparisons
    vs["checks"] = {k: bool(v) for k, v in checks.items()}
    if depths:
        holds, decision, basis = _decide(True, comparisons, checks)
    else:
        holds, decision, basis = False, "does not hold", "no informative layer"
    vs |= {"decision": decision, "basis": basis, "references": sorted(comparisons) or sorted(checks)}
    as_stated = {k: _r(v) for k, v in stated.items() if k != "holds"} | {
        "rule": "mean normalised distance below the bound, all layers, < 0.05"}
    return _C.verdict("C2", stated["holds"], holds, as_stated, vs)


def _mu_gap(counts) -> float:
    f, _ = S.fit_or_reason(counts)
    return float("nan") if f is None else abs(float(f.mu) - 1.0)


def zipf_anchor(fits: pd.DataFrame, points: pd.DataFrame) -> int | None:
    """The fitted layer whose H[s] is nearest the bound's Zipf point (mu = 1, where the bound's slope
    is -1): the layer C3 is tested on against the references. Chosen by resolution, which the
    references share, and not by the fitted mu, whose noise the references would not share."""
    ok = fits.dropna(subset=["mu"])
    if ok.empty:
        return None
    M = int(points["M"].iloc[0])
    hs_star = B.zipf_point(M)[0]
    hs = points.set_index("depth").loc[ok["depth"], "H_s"]
    return int((hs - hs_star).abs().idxmin())


def _c3(layers, widths, points, fits, matched_fn, stacks_counts, strong, n_boot, n_gof, rng, margins,
        bootstrap_all_layers=False) -> dict:
    sizes = [0, *widths]  # fit_layers wants the visible layer first; it is not used
    stated = claim_c3_fits(fits)
    as_stated = {k: (_r(v) if not isinstance(v, dict) else v) for k, v in stated.items() if k != "holds"}
    as_stated["fits"] = [{k: (_r(v) if k != "reason" else v) for k, v in r.items()} for r in fits.to_dict("records")]
    as_stated["rule"] = "the fitted layer with mu closest to 1 has |mu - 1| < 0.3 (edge-of-range fits are not fitted)"
    vs = {"rule": ("as stated, and for the fitted layer nearest the bound's Zipf point in H[s] (the tested layer; "
                   "chosen by resolution, not by mu): its distance from Zipf's law as sampled at M (stats.zipf_distance: "
                   "the largest gap between the shares of inputs in states seen at most k times) lies below that of "
                   "every strong reference at the same depth, width and H[s] (untrained networks, random projections) "
                   "by a 95% interval over reference draws and inputs (claims.decision). |mu - 1| against the same "
                   "references is reported only (references at this resolution fit mu near 1 too). "
                   f"Without strong references: the KS distance of the fit lies below that of "
                   f"matched random states (a) by {margins['C3_ks']}. Clauset's goodness of fit (p >= "
                   f"{margins['C3_gof_p']}) and the likelihood-ratio tests are reported, not used: samples of the "
                   "bound's own Zipf optimum fail them too often (results/claims_calibration.json)"),
          "margin_ks_weak": margins["C3_ks"]}
    boot = None
    if n_boot and bootstrap_all_layers:
        boot = S.mu_bootstrap(layers, n_boot=n_boot, seed=rng)
        vs["bootstrap"] = {"n_boot": boot["n_boot"], "over": boot["over"],
                           "mu": [None if b is None else {k: _r(v) for k, v in b.items()} for b in boot["mu"]],
                           "zipf_layer_frequency": {str(k): _r(v) for k, v in boot["zipf_layer_frequency"].items()},
                           "zipf_layer_set_95": boot["zipf_layer_set"],
                           "zipf_layer_set_coverage": _r(boot["zipf_layer_set_coverage"])}
    else:
        vs["bootstrap"] = None
    stacks = {}
    for p, sc in stacks_counts.items():
        s3 = claim_c3_fits(fit_layers(sc, sizes))
        stacks[f"p={p:g}"] = {"zipf_layer_depth": s3["zipf_layer_depth"], "zipf_layer_mu": _r(s3.get("zipf_layer_mu")),
                              "holds_as_stated": s3["holds"]}
    vs["noise_stacks"] = stacks
    checks, extra, comparisons = {}, {}, {}
    z = zipf_anchor(fits, points)
    vs["tested_layer_is_zipf_layer"] = z is not None and z == stated["zipf_layer_depth"]
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
                            "lr_reported_only": {alt: {k: (_r(v) if k != "favours" else v) for k, v in d.items()}
                                                 for alt, d in lr.items() if alt != "alpha"}}
        dist = S.zipf_distance(zc)
        vs["zipf_layer"]["zipf_distance"] = _r(dist)
        reps, dreps = np.array([]), np.array([])
        if boot is not None:
            b = boot["mu"][z - 1]
            vs["zipf_layer"] |= {"boot_lo": _r(b["lo"]), "boot_hi": _r(b["hi"]), "boot_sd": _r(b["sd"]),
                                 "boot_share": _r(boot["zipf_layer_frequency"].get(z, 0.0))}
            reps = np.abs(boot["replicates"][:, z - 1] - 1.0)
            dreps = np.array([S.zipf_distance(S.resample_counts(zc, rng)) for _ in range(n_boot)])
        elif n_boot:  # the tested layer only
            resampled = [S.resample_counts(zc, rng) for _ in range(n_boot)]
            dreps = np.array([S.zipf_distance(c) for c in resampled])
            mus = np.array([(g.mu if g is not None else np.nan) for g in (S.fit_or_reason(c)[0] for c in resampled)])
            reps = np.abs(mus - 1.0)
            vs["zipf_layer"] |= {"boot_sd": _r(np.nanstd(mus, ddof=1)), "boot_bias": _r(np.nanmean(mus) - f.mu),
                                 "boot_fitted": int(np.isfinite(mus).sum())}
        if dreps.size:  # the bootstrap moves a sample away from any law (ties split): its bias, reported
            vs["zipf_layer"] |= {"zipf_distance_boot_sd": _r(np.std(dreps, ddof=1)),
                                 "zipf_distance_boot_bias": _r(np.mean(dreps) - dist)}
        a = matched_fn(z)
        null_ks = np.array([(g.ks if g is not None else np.nan) for g in
                            (S.fit_or_reason(d["counts"])[0] for d in a["draws"])])
        vs["matched_random_at_zipf_layer"] = {"ks": [_r(x) for x in null_ks], "n_draws": a["n_draws"]}
        if np.isfinite(null_ks).any():
            adv = float(np.nanmean(null_ks) - f.ks)
            vs["ks_advantage_over_matched_random"] = _r(adv)
            checks["a"] = adv >= margins["C3_ks"]
        else:  # random states of this resolution cannot be fitted at all: the layer's power law is the difference
            vs["ks_advantage_over_matched_random"] = None
            checks["a"] = True
        vs["gof_plausible"] = bool(gof["p"] is not None and gof["p"] >= margins["C3_gof_p"])  # reported only
        mu_comparisons = {}
        for kind, ref in strong.items():
            c = D.compare(dist, dreps, ref["zipf"]["distance"], reference=kind, higher_is_better=False)
            comparisons[kind] = c.as_dict()
            gaps = np.array(ref["zipf"]["mu_gap"])  # a reference layer with no power law counts as beaten
            mu_comparisons[kind] = D.compare(abs(float(f.mu) - 1.0), reps, gaps, reference=kind,
                                             higher_is_better=False).as_dict() | {
                "reference_mu": [_r(1.0 + g) if np.isfinite(g) else None for g in gaps],
                "reference_fitted": int(np.isfinite(gaps).sum())}
        vs["mu_comparisons_reported_only"] = mu_comparisons
    vs["comparisons"] = comparisons
    vs["checks"] = {k: bool(v) for k, v in {**checks, **extra}.items()}
    if z is None:
        holds, decision, basis = False, "does not hold", "no Zipf layer"
    else:
        holds, decision, basis = _decide(stated["holds"], comparisons, checks, extra)
    vs |= {"decision": decision, "basis": basis, "references": sorted(comparisons) or sorted(checks)}
    return _C.verdict("C3", stated["holds"], holds, as_stated, vs)


def _tested_replicates(layers, depths, peak, n_boot_ci, rng) -> dict:
    """Bootstrap replicates (over inputs) of the tested statistics: H[K]/log M at the peak layer, and the
    distance below the bound at each of ``depths``."""
    out = {"peak_H_K_norm": np.array([]), "below_bound_norm": {d: np.array([]) for d in depths}}
    if not n_boot_ci:
        return out
    if peak is not None:
        out["peak_H_K_norm"] = np.array([N.layer_point(S.resample_counts(layers[peak - 1], rng))["H_K_norm"]
                                         for _ in range(n_boot_ci)])
    for d in depths:
        out["below_bound_norm"][d] = np.array([N.layer_point(S.resample_counts(layers[d - 1], rng))["below_bound_norm"]
                                               for _ in range(n_boot_ci)])
    return out


def layer_claims(counts_by_layer, widths, *, untrained=None, n_untrained: int = 20, untrained_threshold: float = 0.5,
                 inputs=None, n_projections: int = 20, seed=0, control_counts=None, control_widths=None, n_draws: int = 5,
                 n_boot: int = 30, n_boot_ci: int = 200, n_gof: int = 100, stack_biases=(0.2, 0.5),
                 margins: dict | None = None, which=("C1", "C2", "C3"), bootstrap_all_layers: bool = False,
                 reference_cache: dict | None = None) -> dict:
    """Claims C1, C2 and C3 on one network, each with ``holds_as_stated`` and ``holds_vs_null``.

    Parameters
    ----------
    counts_by_layer : the train-split count vector of each layer (``entropy.state_counts``),
        first hidden layer first
    widths : the layers' widths (hidden layers only)
    untrained : callable ``untrained(draw) -> list of (M, width) arrays``, the per-layer up-pass
        probabilities on the same M inputs of an untrained network drawn with that index
        (``references.untrained_factory``); reference (b), ``n_untrained`` draws, read as networks
        are (for C1) at ``untrained_threshold`` (0.5 for DBN probabilities; 0 for tanh units)
    inputs : the (M, n_visible) inputs, for random Gaussian projections to each layer's width;
        reference (e), ``n_projections`` draws
    seed : fixes every random draw
    control_counts, control_widths : a network whose widths do not shrink (reference d, C1)
    n_draws : matched random states per layer (reference a, weak)
    n_boot : bootstrap replicates of the tested layer's exponent (C3; 0: none, so no input noise in
        C3's interval); with ``bootstrap_all_layers`` every layer's, and which layer is the Zipf layer
        across replicates (notebook 05)
    n_boot_ci : bootstrap replicates of the entropies in the intervals of C1 and C2 (0: none)
    n_gof : synthetic samples for C3's goodness of fit
    stack_biases : the random stacks' bit probabilities (reference c, weak)
    which : the claims to compute
    reference_cache : a dict shared by calls with the same references (same ``untrained``,
        ``inputs`` and ``seed``): each draw's values, ranks and natural peak are computed once

    Returns
    -------
    {"C1": record, "C2": record, "C3": record} (``claims.verdict``); each ``vs_null`` holds the
    ``comparisons`` with each strong reference (``decision.Comparison.as_dict``), the
    ``decision`` ("holds", "undecided", "does not hold") and the references used.
    The rules are in this module's docstring.
    """
    layers, widths, M = _check_layers(counts_by_layer, widths)
    unknown = set(margins or {}) - set(_C.MARGINS)
    if unknown:
        raise ValueError(f"margins: unknown keys {sorted(unknown)}; known: {sorted(_C.MARGINS)}")
    margins = {**_C.MARGINS, **(margins or {})}
    n_draws = check_int(n_draws, "n_draws", 1)
    n_boot, n_gof = check_int(n_boot, "n_boot", 0), check_int(n_gof, "n_gof", 1)
    n_boot_ci = check_int(n_boot_ci, "n_boot_ci", 0)
    which = tuple(which)
    if not which or any(w not in ("C1", "C2", "C3") for w in which):
        raise ValueError(f"which: expected a non-empty selection of 'C1', 'C2', 'C3', got {which!r}")
    if n_boot == 1:
        raise ValueError("n_boot: expected 0 (no bootstrap) or at least 2 replicates, got 1")
    if untrained is not None and not callable(untrained):
        raise ValueError("untrained: expected a callable untrained(draw) -> list of per-layer probabilities, "
                         f"got {type(untrained).__name__}")
    if untrained is not None:
        n_untrained = check_int(n_untrained, "n_untrained", 2)
    if inputs is not None:
        n_projections = check_int(n_projections, "n_projections", 2)
        inputs = np.asarray(inputs, dtype=np.float32)
        if inputs.ndim != 2 or inputs.shape[0] != M:
            raise ValueError(f"inputs: expected an (M, n_visible) array with M = {M} rows (the inputs counted), "
                             f"got shape {inputs.shape}")
    rng_a, rng_c, rng_3, rng_e = _seeds(seed, 4)
    points = _points_frame(layers, widths)
    control = None
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
    # what the strong references are matched at
    c2_depths = ([int(d) for d in informative_layers(points).query("informative")["depth"]]
                 if "C2" in which else [])
    zipf = fits = None
    if "C3" in which:  # one fit per layer serves the choice of the tested layer and C3 itself
        fits = fit_layers(layers, [0, *widths])
        zipf = zipf_anchor(fits, points)
    peak = claim_c1_table(points)["relevance_peak_depth"] if "C1" in which else None
    targets = {d: float(points.loc[points["depth"] == d, "H_s"].iloc[0]) for d in set(c2_depths) | {zipf} - {None}}
    sources = {}
    if untrained is not None:
        sources["untrained"] = (n_untrained, untrained)
    if inputs is not None:
        proj_seeds = [int(s) for s in rng_e.integers(0, 2**63 - 1, n_projections)]
        sources["projections"] = (n_projections, lambda k: R.projection_values(inputs, widths, proj_seeds[k]))
    strong = {kind: R.measure(kind, n, values_of, widths, targets, zipf, natural="C1" in which,
                              threshold=untrained_threshold if kind == "untrained" else 0.0,
                              zipf_stats={"distance": S.zipf_distance, "mu_gap": _mu_gap},
                              cache=reference_cache)
              for kind, (n, values_of) in sources.items()}
    tested = _tested_replicates(layers, c2_depths, peak, n_boot_ci, rng_3)
    out = {}
    if "C1" in which:
        out["C1"] = _c1(points, matched, stacks, control, strong, tested, margins)
    if "C2" in which:
        out["C2"] = _c2(points, matched, strong, tested, margins)
    if "C3" in which:
        out["C3"] = _c3(layers, widths, points, fits, matched_fn, stacks_counts, strong, n_boot, n_gof, rng_3, margins,
                        bootstrap_all_layers)
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
    return {cid: {"holds_as_stated": r["holds_as_stated"], "holds_vs_null": r["holds_vs_null"],
                  "decision": r["vs_null"].get("decision")} for cid, r in claims.items()}


def sensitivity(dbn, x, thresholds=(0.3, 0.5, 0.7), sampled: bool = True, seed=0, baseline: str = "threshold=0.5",
                references: bool = True, **claim_kw) -> dict:
    """The layer table and the claims' verdicts under other ways of reading the states.

    Variants: thresholding the up-pass probabilities at each of ``thresholds``, and
    (``sampled``) one state per input drawn from p(h|x) (``dbn.sampled_states``,
    same M). Each variant gets the layer table (``layer_point`` per layer) and
    ``layer_claims`` (``claim_kw`` passed on, e.g. fewer draws); with ``references``
    the untrained networks of the recipe and the random projections of ``x`` are the
    strong references (matched to each variant's resolutions, so they do not
    depend on how the tested layers are read). Returns {"variants": {name: {"table": [...],
    "verdicts": {C1: {holds_as_stated, holds_vs_null}, ...}, "claims": ...}}, "baseline",
    "changes", "any_verdict_changes"}.
    """
    widths = list(dbn.sizes[1:])
    variants = {}
    for t in thresholds:
        variants[f"threshold={t:g}"] = [E.state_counts(s) for s in dbn.binary_states(x, threshold=float(t))]
    if sampled:
        variants["sampled"] = [E.state_counts(s[0]) for s in dbn.sampled_states(x, n_samples=1, generator=int(seed))]
    if baseline not in variants:
        raise ValueError(f"baseline: {baseline!r} is not one of the variants {sorted(variants)}")
    refs = {}
    if references:
        cache: dict = {}
        make = R.untrained_factory(dbn.config, x)

        def untrained(d):  # the same untrained draws serve every variant
            if d not in cache:
                cache[d] = make(d)
            return cache[d]

        refs = {"untrained": untrained, "inputs": x}
    out = {}
    for name, counts in variants.items():
        claims = layer_claims(counts, widths, seed=seed, **refs, **claim_kw)
        out[name] = {"table": _points_frame(counts, widths).round(6).to_dict("records"),
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
