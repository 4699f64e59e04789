"""Claim C2: trained layers lie close to the maximal-relevance bound (docs/paper.md §4).

As stated (``claim_c2_table``): the mean normalised distance below the bound
over all layers is below ``TOLERANCES["C2_near_bound"]`` (0.05).

Against the references (``evaluate``): over the informative layers
(``informative_layers``: not at (1, 0), not on the low-resolution branch, where
any sample meets the bound), the mean distance below the bound lies below the
references' layers of the same depth and width, read at the one threshold that
gives them the same H[s], by a 95% interval over reference draws and inputs
(``decision.compare``). No informative layer: does not hold. Without a strong
reference: below (a) matched random states by ``MARGINS["C2_distance"]``.
``layers.layer_claims`` prepares the inputs of ``evaluate``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rr_utils import bound as B
from rr_utils._checks import check_table
from rr_utils.claims import decision as D
from rr_utils.claims import rules
from rr_utils.claims.rules import json_round as _r

__all__ = ["informative_layers", "claim_c2_table", "evaluate"]


def informative_layers(points: pd.DataFrame, hs_edge: float | None = None) -> pd.DataFrame:
    """Which layers the bound can tell apart from a null (C2), and why the others cannot.

    Adds ``informative`` (bool) and ``excluded_because`` ("" / "at (1, 0)" /
    "low-resolution branch") to a frame with columns M, H_s, H_s_norm. At (1, 0):
    H[s]/log M >= ``hs_edge`` (default ``HS_EDGE`` = 0.99). Low-resolution branch:
    H[s] at or below the end of the diagonal H[K] = H[s] at that M (where the bound
    is met by any sample whose states all have different counts).

    Parameters
    ----------
    points : pandas.DataFrame
        One row per layer with columns M, H_s, H_s_norm (``nulls.layer_point``).
    hs_edge : float, optional
        H[s]/log M at or above which a layer sits at (1, 0); default ``rules.HS_EDGE``.

    Returns
    -------
    pandas.DataFrame
        ``points`` with ``informative``, ``excluded_because`` and ``branch_end_H_s_norm`` added.
    """
    hs_edge = rules.HS_EDGE if hs_edge is None else float(hs_edge)
    out = points.copy()
    ends = {M: float(B.low_resolution_branch(int(M))["H_s"].iloc[-1]) for M in out["M"].unique()}
    on_branch = out["H_s"] <= out["M"].map(ends) + 1e-9
    at_edge = out["H_s_norm"] >= hs_edge
    out["excluded_because"] = np.where(at_edge, "at (1, 0)", np.where(on_branch, "low-resolution branch", ""))
    out["informative"] = ~(at_edge | on_branch)
    out["branch_end_H_s_norm"] = out["M"].map(lambda M: ends[M] / np.log(M) if M > 1 else 0.0)
    return out


def claim_c2_table(table: pd.DataFrame, tol: float | None = None) -> dict:
    """C2 as stated on a layer table: mean normalised distance below the bound (all layers) < ``tol``.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns below_bound_norm, H_s, H_K, M, one row per layer (rows of the train split
        only if a ``split`` column is present).
    tol : float, optional
        The tolerance; default ``TOLERANCES["C2_near_bound"]``.

    Returns
    -------
    dict
        ``mean_below_bound_norm``, ``max_below_bound_norm``, ``mean_noise_norm``, ``tol`` and ``holds``.
    """
    tol = rules.TOLERANCES["C2_near_bound"] if tol is None else tol
    check_table(table, ["below_bound_norm", "H_s", "H_K", "M"])
    tr = table[table["split"] == "train"] if "split" in table.columns else table
    if tr.empty:
        raise ValueError("table: no rows with split == 'train'")
    out = {"mean_below_bound_norm": float(tr["below_bound_norm"].mean()),
           "max_below_bound_norm": float(tr["below_bound_norm"].max()),
           "mean_noise_norm": float(((tr["H_s"] - tr["H_K"]) / np.log(tr["M"])).mean()), "tol": float(tol)}
    out["holds"] = bool(out["mean_below_bound_norm"] < tol)
    return out


def evaluate(points: pd.DataFrame, matched: dict, strong: dict, tested: dict, margins: dict) -> dict:
    """C2's record on one network, with both verdicts (``rules.verdict``).

    Parameters
    ----------
    points : pandas.DataFrame
        One row per layer: depth, units and the layer's point (``nulls.layer_point``).
    matched : dict
        Depth -> matched random states of that layer (``nulls.matched_random``), reference (a).
    strong : dict
        Reference name -> its measured draws (``references.measure``), matched at the
        informative layers' H[s].
    tested : dict
        Bootstrap replicates of the tested statistics (``below_bound_norm`` per depth).
    margins : dict
        The margins of the weak references (``rules.MARGINS`` and overrides).

    Returns
    -------
    dict
        The claim's record (``rules.verdict``).
    """
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
    vs = {"rule": (f"informative layers only (not at (1, 0): H[s]/log M < {rules.HS_EDGE}; not on the low-resolution "
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
        holds, decision, basis = rules.decide(True, comparisons, checks)
    else:
        holds, decision, basis = False, "does not hold", "no informative layer"
    vs |= {"decision": decision, "basis": basis, "references": sorted(comparisons) or sorted(checks)}
    as_stated = {k: _r(v) for k, v in stated.items() if k != "holds"} | {
        "rule": "mean normalised distance below the bound, all layers, < 0.05"}
    return rules.verdict("C2", stated["holds"], holds, as_stated, vs)
