"""Claim C1: deep layers extract a hierarchy (docs/paper.md §4).

As stated (``claim_c1_table``): the first layer has H[s]/log M above
``TOLERANCES["C1_first_layer_H_s_norm"]`` (0.95), H[s]/log M never rises with
depth by more than ``TOLERANCES["C1_rise"]`` (0.01), and H[K] peaks at neither
the first nor the last layer.

Against the references (``evaluate``): as stated, and the peak H[K]/log M lies
above the peaks of the strong references read as networks are (untrained
networks: probabilities > 0.5; random projections of the inputs: signs), by a
95% interval over reference draws and inputs (``decision.compare``). Without a
strong reference: above (a) matched random states and (c) random stacks by
``MARGINS["C1_relevance"]``. A constant-width control network (d), if given,
must lose ``MARGINS["C1_control_drop"]`` of H[s]/log M over its depth.
``layers.layer_claims`` prepares the inputs of ``evaluate``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rr_utils._checks import check_table
from rr_utils.claims import decision as D
from rr_utils.claims import rules
from rr_utils.claims.rules import json_round as _r

__all__ = ["claim_c1_table", "evaluate"]


def claim_c1_table(table: pd.DataFrame, rise_tol: float | None = None) -> dict:
    """C1 as stated on a layer table.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns depth, units, H_K, H_K_norm, H_s_norm, one row per layer (rows of the
        train split only if a ``split`` column is present).
    rise_tol : float, optional
        How much H[s]/log M may rise with depth; default ``TOLERANCES["C1_rise"]``.

    Returns
    -------
    dict
        ``first_layer_H_s_norm``, ``max_rise_of_H_s_norm_with_depth``, ``relevance_peak_depth``,
        ``relevance_peak_units``, ``relevance_peak_H_K_norm`` and ``holds``.
    """
    rise_tol = rules.TOLERANCES["C1_rise"] if rise_tol is None else rise_tol
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
    out["holds"] = bool(out["first_layer_H_s_norm"] > rules.TOLERANCES["C1_first_layer_H_s_norm"]
                        and out["max_rise_of_H_s_norm_with_depth"] <= rise_tol
                        and 1 < out["relevance_peak_depth"] < len(tr))
    return out


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


def evaluate(points: pd.DataFrame, matched: dict, stacks: dict, control: pd.DataFrame | None, strong: dict,
             tested: dict, margins: dict) -> dict:
    """C1's record on one network, with both verdicts (``rules.verdict``).

    Parameters
    ----------
    points : pandas.DataFrame
        One row per layer: depth, units and the layer's point (``nulls.layer_point``).
    matched : dict
        Depth -> matched random states of that layer (``nulls.matched_random``), reference (a).
    stacks : dict
        Bit probability -> the points of a random stack (reference c).
    control : pandas.DataFrame or None
        The points of a constant-width control network (reference d).
    strong : dict
        Reference name -> its measured draws (``references.measure``).
    tested : dict
        Bootstrap replicates of the tested statistics (``peak_H_K_norm``).
    margins : dict
        The margins of the weak references (``rules.MARGINS`` and overrides).

    Returns
    -------
    dict
        The claim's record (``rules.verdict``).
    """
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
    holds, decision, basis = rules.decide(stated["holds"], comparisons, checks, extra)
    vs |= {"decision": decision, "basis": basis, "references": sorted(comparisons) or sorted({k.split()[0] for k in checks})}
    return rules.verdict("C1", stated.pop("holds"), holds, {k: _r(v) for k, v in stated.items()} | {
        "rule": "first layer H[s]/log M > 0.95, H[s]/log M rises with depth by <= 0.01, H[K] peaks at an inner layer"},
        vs)
