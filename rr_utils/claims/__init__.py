"""The paper's claims C1-C4 as checks that can fail (docs/paper.md §4).

Every claim gets two verdicts, each with the numbers behind it:

* ``holds_as_stated``: the paper's wording, with our tolerances (``TOLERANCES``);
* ``holds_vs_null``: the effect is larger in the trained network than in
  references that lack learning, measured over many draws (``references``:
  untrained networks of the recipe, random projections of the inputs), decided
  with a 95% interval (``decision``) and calibrated on controls with a known
  answer (``calibration``). The weak references of ``nulls`` (matched random
  states, random stacks) decide, with the margins of ``MARGINS``, only when no
  strong reference is given. ``None`` where no reference comparison exists.

One network's verdicts come from ``layer_claims`` (C1-C3, from the layers' state
counts; ``rr_utils.claims.layers``); C4 needs the network and has its own
function. Across seeds, ``seed_rule`` turns per-seed records into the entry of
``results/claims.json``: a verdict holds if it holds in at least ``MIN_FRACTION``
of the seeds (our rule).

The record of one claim on one network (``verdict``)::

    {"id": "C2", "text": ..., "holds_as_stated": bool, "holds_vs_null": bool | None,
     "as_stated": {numbers, "rule": ...},
     "vs_null": {numbers, "rule": ..., "comparisons": {reference: Comparison.as_dict()},
                 "decision": "holds" | "undecided" | "does not hold"}, "note": str}

Tolerances and margins are our choices: the paper gives none.
"""

from __future__ import annotations

import numpy as np

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

# which layers can tell a network from a null for C2 (see layers.informative_layers)
HS_EDGE = 0.99  # H[s]/log M at or above this: the layer sits at (1, 0)

MIN_FRACTION = 0.8  # seed rule: a verdict holds if it holds in at least this share of seeds


def verdict(cid: str, holds_as_stated: bool, holds_vs_null, as_stated: dict, vs_null: dict,
            note: str = "") -> dict:
    """The record of one claim on one network (also the shape C4 uses)."""
    if cid not in TEXT:
        raise ValueError(f"cid: expected one of {sorted(TEXT)}, got {cid!r}")
    if not isinstance(holds_as_stated, (bool, np.bool_)):
        raise ValueError(f"holds_as_stated: expected a bool, got {holds_as_stated!r}")
    if holds_vs_null is not None and not isinstance(holds_vs_null, (bool, np.bool_)):
        raise ValueError(f"holds_vs_null: expected a bool or None, got {holds_vs_null!r}")
    for name, d in (("as_stated", as_stated), ("vs_null", vs_null)):
        if not isinstance(d, dict):
            raise ValueError(f"{name}: expected a dict of the numbers behind the verdict, got {type(d).__name__}")
    return {"id": cid, "text": TEXT[cid], "holds_as_stated": bool(holds_as_stated),
            "holds_vs_null": None if holds_vs_null is None else bool(holds_vs_null),
            "as_stated": as_stated, "vs_null": vs_null, "note": str(note)}


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


def seed_rule(per_seed: list, min_fraction: float = MIN_FRACTION) -> dict:
    """One claim's entry of results/claims.json from its per-seed records (``verdict``).

    Each verdict holds if it holds in at least ``min_fraction`` of the seeds;
    ``holds_vs_null`` is None if any seed has no reference comparison. Across seeds
    the evidence also gives the count of each per-seed decision ("holds", "undecided",
    "does not hold"), the decision across seeds ("holds" or "does not hold" when at
    least ``min_fraction`` of the seeds say so, else "undecided"), and for each strong
    reference the per-seed effect (``mean_effect``) with a 95% t-interval over seeds.
    """
    if not isinstance(per_seed, (list, tuple)) or not per_seed:
        raise ValueError("per_seed: expected a non-empty list of per-seed claim records")
    ids = {r.get("id") if isinstance(r, dict) else None for r in per_seed}
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
    refs = sorted({k for r in per_seed for k in ((r.get("vs_null") or {}).get("comparisons") or {})})
    effects = {ref: _t_interval([((r.get("vs_null") or {}).get("comparisons") or {}).get(ref, {}).get("mean_effect")
                                 for r in per_seed]) | {
        "holds": sum(((r.get("vs_null") or {}).get("comparisons") or {}).get(ref, {}).get("decision") == "holds"
                     for r in per_seed)} for ref in refs}
    return {"id": cid, "text": TEXT[cid],
            "holds_as_stated": bool(f_stated >= min_fraction),
            "holds_vs_null": None if f_null is None else bool(f_null >= min_fraction),
            "decision_vs_null": across if f_null is not None else None,
            "evidence": {"rule": f"a verdict holds if it holds in >= {min_fraction:.0%} of seeds",
                         "n_seeds": n, "fraction_as_stated": f_stated, "fraction_vs_null": f_null,
                         "decisions": counts, "effects_over_seeds": effects,
                         "per_seed": list(per_seed)}}


from rr_utils.claims.layers import (  # noqa: E402  (after the constants the submodules read)
    claim_c1_table,
    claim_c2_table,
    claim_c3_fits,
    fit_layers,
    informative_layers,
    layer_claims,
    layer_entropy_intervals,
    sensitivity,
    verdict_changes,
)
from rr_utils.claims.nulls import layer_point, matched_random, noise_stack  # noqa: E402
from rr_utils.claims.decision import Comparison, compare  # noqa: E402
from rr_utils.claims.references import match_resolution, untrained_factory, untrained_network  # noqa: E402
from rr_utils.claims.stats import (  # noqa: E402
    entropy_intervals,
    likelihood_ratio_tests,
    mu_bootstrap,
    power_law_gof,
)
from rr_utils.claims.generation import (  # noqa: E402  (C4: needs the networks, so it has its own functions)
    claim_c4,
    max_relevance_hypothesis,
    mixing_check,
    paired_comparison,
)

__all__ = [
    "TEXT", "TOLERANCES", "MARGINS", "HS_EDGE", "MIN_FRACTION", "verdict", "seed_rule",
    "layer_claims", "informative_layers", "layer_entropy_intervals", "sensitivity", "verdict_changes",
    "fit_layers", "claim_c1_table", "claim_c2_table", "claim_c3_fits",
    "layer_point", "matched_random", "noise_stack", "Comparison", "compare",
    "match_resolution", "untrained_factory", "untrained_network",
    "entropy_intervals", "mu_bootstrap", "power_law_gof", "likelihood_ratio_tests",
    "claim_c4", "max_relevance_hypothesis", "mixing_check", "paired_comparison",
]
