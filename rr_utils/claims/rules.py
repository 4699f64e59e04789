"""The rules every claim shares: the claims' words, our tolerances and margins, the verdict record, the seed rule.

``TEXT`` holds the paper's claims C1-C4 in our words; ``TOLERANCES`` the
tolerances of ``holds_as_stated`` (the paper gives none); ``MARGINS`` how much
larger an effect must be than the weak references' (``nulls``) when no strong
reference is given; ``HS_EDGE`` where a layer counts as sitting at (1, 0).

The record of one claim on one network (``verdict``), a ``records.ClaimVerdict``
read by attribute (``v.vs_null.decision``) or as the dict it replaces::

    {"id": "C2", "text": ..., "holds_as_stated": bool, "holds_vs_null": bool | None,
     "as_stated": {numbers, "rule": ...},
     "vs_null": {numbers, "rule": ..., "comparisons": {reference: Comparison.as_dict()},
                 "decision": "holds" | "undecided" | "does not hold"}, "note": str}

``decide`` turns the comparisons with the references into ``holds_vs_null`` and
the decision; across seeds, ``seed_rule`` turns per-seed records into the entry
of ``results/claims.json`` (a ``records.SeedVerdict``): a verdict holds if it holds in at least
``MIN_FRACTION`` of the seeds (our rule). ``json_round`` rounds the numbers of a
record the one way every claim does.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rr_utils.claims.records import ClaimVerdict, SeedEvidence, SeedVerdict

__all__ = ["TEXT", "TOLERANCES", "MARGINS", "HS_EDGE", "MIN_FRACTION", "verdict", "seed_rule", "json_round",
           "decide"]

TEXT = {
    "C1": "Deep layers extract a hierarchy: the first layer is near (1, 0), resolution falls with depth, "
          "relevance peaks at an intermediate depth.",
    "C2": "Trained layers lie close to the maximal-relevance bound (low noise).",
    "C3": "State frequencies follow power laws with layer-dependent exponents; one layer has mu close to 1 (Zipf).",
    "C4": "The Zipf layer is the best generator of patterns resembling the training data.",
}

# holds_as_stated (the rules notebooks 04, 05 and 08 have always used)
TOLERANCES = {
    "C1_first_layer_H_s_norm": 0.95,  # the first layer "near (1, 0)": H[s]/log M above this
    "C1_rise": 0.01,  # H[s]/log M may rise with depth by at most this
    "C2_near_bound": 0.05,  # mean normalised distance below the bound, all layers
    "C3_zipf": 0.3,  # |mu - 1| of the Zipf layer
}

# holds_vs_null with the weak references only (no strong reference given): how much larger the effect must be
MARGINS = {
    "C1_relevance": 0.02,  # peak H[K]/log M above the references' (normalised)
    "C1_control_drop": 0.05,  # control network (constant width): H[s]/log M must fall by this over its depth
    "C2_distance": 0.01,  # informative layers: mean (reference distance - trained distance), normalised
    "C3_ks": 0.01,  # Zipf layer: KS distance of the power-law fit below the matched random states'
    "C3_gof_p": 0.1,  # Clauset et al.'s threshold for a plausible power law
    "C3_lr_p": 0.1,  # a likelihood-ratio test counts against the power law when p below this and R < 0
}

# which layers can tell a network from a null for C2 (see c2_near_bound.informative_layers)
HS_EDGE = 0.99  # H[s]/log M at or above this: the layer sits at (1, 0)

MIN_FRACTION = 0.8  # seed rule: a verdict holds if it holds in at least this share of seeds


def verdict(cid: str, holds_as_stated: bool, holds_vs_null, as_stated: dict, vs_null: dict,
            note: str = "") -> ClaimVerdict:
    """The record of one claim on one network (also the shape C4 uses).

    Parameters
    ----------
    cid : str
        The claim's id, one of ``TEXT`` ("C1" ... "C4").
    holds_as_stated : bool
        The verdict on the paper's wording with ``TOLERANCES``.
    holds_vs_null : bool or None
        The verdict against the references; None where there is no reference comparison.
    as_stated, vs_null : dict
        The numbers behind each verdict, with their ``"rule"``.
    note : str
        Free text kept with the record.

    Returns
    -------
    ClaimVerdict
        Its keys (``as_dict``): ``{"id", "text", "holds_as_stated", "holds_vs_null", "as_stated",
        "vs_null", "note"}``.

    Raises
    ------
    ValueError
        For an unknown ``cid``, a verdict that is not a bool (or None), numbers not in a dict.
    """
    if cid not in TEXT:
        raise ValueError(f"cid: expected one of {sorted(TEXT)}, got {cid!r}")
    if not isinstance(holds_as_stated, (bool, np.bool_)):
        raise ValueError(f"holds_as_stated: expected a bool, got {holds_as_stated!r}")
    if holds_vs_null is not None and not isinstance(holds_vs_null, (bool, np.bool_)):
        raise ValueError(f"holds_vs_null: expected a bool or None, got {holds_vs_null!r}")
    for name, d in (("as_stated", as_stated), ("vs_null", vs_null)):
        if not isinstance(d, Mapping):
            raise ValueError(f"{name}: expected a dict of the numbers behind the verdict, got {type(d).__name__}")
    return ClaimVerdict(id=cid, text=TEXT[cid], holds_as_stated=bool(holds_as_stated),
                        holds_vs_null=None if holds_vs_null is None else bool(holds_vs_null),
                        as_stated=as_stated, vs_null=vs_null, note=str(note))


def _fraction(values) -> float | None:
    if any(v is None for v in values):
        return None
    return float(np.mean([bool(v) for v in values]))


def _t_interval(x, level: float = 0.95) -> dict:
    x = np.asarray([v for v in x if v is not None and np.isfinite(v)], dtype=float)
    if x.size < 2:
        return {"mean": float(x.mean()) if x.size else None, "lo": None, "hi": None, "n": int(x.size)}
    from scipy import stats

    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return {"mean": float(x.mean()), "lo": float(x.mean() - half), "hi": float(x.mean() + half), "n": int(x.size)}


def seed_rule(per_seed: list, min_fraction: float = MIN_FRACTION) -> SeedVerdict:
    """One claim's entry of results/claims.json from its per-seed records (``verdict``).

    Each verdict holds if it holds in at least ``min_fraction`` of the seeds;
    ``holds_vs_null`` is None if any seed has no reference comparison. Across seeds
    the evidence also gives the count of each per-seed decision ("holds", "undecided",
    "does not hold"), the decision across seeds ("holds" or "does not hold" when at
    least ``min_fraction`` of the seeds say so, else "undecided"; the same rule gives
    ``decision_as_stated`` from the per-seed verdicts as stated), and for each strong
    reference the per-seed effect (``mean_effect``) with a 95% t-interval over seeds.

    Parameters
    ----------
    per_seed : list of ClaimVerdict or dict
        The records (``verdict``) of one claim, one per seed.
    min_fraction : float
        The share of seeds in which a verdict must hold, in (0, 1].

    Returns
    -------
    SeedVerdict
        Its keys (``as_dict``): ``{"id", "text", "holds_as_stated", "holds_vs_null", "decision_vs_null",
        "evidence"}``; ``evidence`` (``records.SeedEvidence``) holds the rule, ``n_seeds``, the
        fractions, the decisions' counts, ``effects_over_seeds`` and the records themselves (``per_seed``).

    Raises
    ------
    ValueError
        For no records, records of more than one claim, or ``min_fraction`` outside (0, 1].
    """
    if not isinstance(per_seed, (list, tuple)) or not per_seed:
        raise ValueError("per_seed: expected a non-empty list of per-seed claim records")
    ids = {r.get("id") if isinstance(r, Mapping) else None for r in per_seed}
    if len(ids) != 1 or None in ids:
        raise ValueError(f"per_seed: expected records of one claim (dicts with an 'id'), got ids {sorted(map(str, ids))}")
    if isinstance(min_fraction, bool) or not isinstance(min_fraction, (int, float)) or not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction: expected a number in (0, 1], got {min_fraction!r}")
    cid = ids.pop()
    f_stated = _fraction([r["holds_as_stated"] for r in per_seed])
    f_null = _fraction([r["holds_vs_null"] for r in per_seed])
    decisions = [(r.get("vs_null") or {}).get("decision") for r in per_seed]
    counts = {d: sum(x == d for x in decisions) for d in ("holds", "undecided", "does not hold")}
    n = len(per_seed)
    across = ("holds" if counts["holds"] >= min_fraction * n else
              "does not hold" if counts["does not hold"] >= min_fraction * n else "undecided")
    n_stated = sum(bool(r["holds_as_stated"]) for r in per_seed)
    stated = ("holds" if n_stated >= min_fraction * n else
              "does not hold" if n - n_stated >= min_fraction * n else "undecided")
    refs = sorted({k for r in per_seed for k in ((r.get("vs_null") or {}).get("comparisons") or {})})
    effects = {ref: _t_interval([((r.get("vs_null") or {}).get("comparisons") or {}).get(ref, {}).get("mean_effect")
                                 for r in per_seed]) | {
        "holds": sum(((r.get("vs_null") or {}).get("comparisons") or {}).get(ref, {}).get("decision") == "holds"
                     for r in per_seed)} for ref in refs}
    evidence = SeedEvidence(rule=f"a verdict holds if it holds in >= {min_fraction:.0%} of seeds",
                            n_seeds=n, fraction_as_stated=f_stated, fraction_vs_null=f_null,
                            decisions=counts, effects_over_seeds=effects, per_seed=list(per_seed))
    return SeedVerdict(id=cid, text=TEXT[cid], holds_as_stated=bool(f_stated >= min_fraction),
                       decision_as_stated=stated, holds_vs_null=None if f_null is None else bool(f_null >= min_fraction),
                       decision_vs_null=across if f_null is not None else None, evidence=evidence)


def json_round(x, nd: int = 6):
    """A number as the records keep it: rounded to ``nd`` digits, None for NaN or infinity.

    Parameters
    ----------
    x : number, bool or None
        The value; bools and integers are kept exactly.
    nd : int
        Decimal digits kept of a float.

    Returns
    -------
    bool, int, float or None
    """
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    x = float(x)
    return None if not np.isfinite(x) else round(x, nd)


def decide(stated_holds: bool, comparisons: dict, weak_checks: dict, extra_checks: dict | None = None) -> tuple:
    """``holds_vs_null`` and the decision, from the strong references' comparisons (or, without any, the weak checks).

    With strong references: "does not hold" if any comparison says so, "holds" if all
    do, else "undecided"; a failed ``extra_checks`` entry turns "holds" into "does not
    hold". Without: "holds" if every weak and extra check passes. A claim that fails
    as stated never holds against the references.

    Parameters
    ----------
    stated_holds : bool
        The verdict as stated.
    comparisons : dict
        Reference name -> ``Comparison.as_dict()`` (may be empty).
    weak_checks : dict
        Check name -> bool, from the weak references (decide only without ``comparisons``).
    extra_checks : dict, optional
        Check name -> bool that must pass in any case (e.g. the control network, C1).

    Returns
    -------
    tuple
        ``(holds_vs_null, decision, basis)``: a bool, one of "holds", "undecided",
        "does not hold", and the words saying which references decided.
    """
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
