"""Claims C1-C3 on one network from the state counts of its layers, each with both verdicts.

``layer_claims(counts_by_layer, widths, *, untrained=..., inputs=..., seed=0)`` is
the entry point: the train-split count vectors of the layers
(``entropy.state_counts``), the layer widths, and the references' sources. It
measures the references once and hands them to each claim's module, where the
claim's rules are: ``c1_hierarchy``, ``c2_near_bound``, ``c3_power_laws``
(tolerances and margins: ``rules``; our choices, the paper gives none).

The strong references are measured, many draws each (``references``): (b)
untrained networks of the recipe and (e) random Gaussian projections of the
inputs. Each verdict against them is a decision with a 95% prediction interval
over the reference draws and the inputs (``decision.compare``): it holds when
the interval lies on the claim's side of 0, is undecided when it contains 0.
Weak references, reported always and deciding only when no strong one is given:
(a) random states matched in width and H[s] (``nulls.matched_random``) and (c)
random stacks of the same widths (``nulls.noise_stack``), with the margins of
``rules.MARGINS``; (d) a constant-width control network (C1, if given).
``calibration`` measures how often each test says "holds" on inputs with a known
answer (``results/claims_calibration.json``).

Also here: bootstrap intervals of each layer's entropies
(``layer_entropy_intervals``) and the verdicts under other readings of the
states (``sensitivity``, ``verdict_changes``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rr_utils import entropy as E
from rr_utils._checks import check_counts, check_int
from rr_utils.claims import c1_hierarchy as C1
from rr_utils.claims import c2_near_bound as C2
from rr_utils.claims import c3_power_laws as C3
from rr_utils.claims import nulls as N
from rr_utils.claims import references as R
from rr_utils.claims import rules
from rr_utils.claims.records import LayerClaims, Numbers
from rr_utils.claims import stats as S

__all__ = [
    "layer_claims",
    "points_frame",
    "layer_entropy_intervals",
    "sensitivity",
    "verdict_changes",
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


def points_frame(layers, widths) -> pd.DataFrame:
    """One row per layer: depth, units and the layer's point (``nulls.layer_point``).

    Parameters
    ----------
    layers : list of numpy.ndarray
        The state counts of each layer, first hidden layer first.
    widths : list of int
        The layers' widths.

    Returns
    -------
    pandas.DataFrame
    """
    return pd.DataFrame([dict(depth=d, units=w, **N.layer_point(c))
                         for d, (c, w) in enumerate(zip(layers, widths), start=1)])


# ----------------------------------------------------------------- claims


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
                 reference_cache: dict | None = None) -> LayerClaims:
    """Claims C1, C2 and C3 on one network, each with ``holds_as_stated`` and ``holds_vs_null``.

    Parameters
    ----------
    counts_by_layer : list of numpy.ndarray
        The train-split count vector of each layer (``entropy.state_counts``), first hidden layer first.
    widths : list of int
        The layers' widths (hidden layers only).
    untrained : callable, optional
        ``untrained(draw) -> list of (M, width) arrays``, the per-layer up-pass probabilities on
        the same M inputs of an untrained network drawn with that index
        (``references.untrained_factory``); reference (b), ``n_untrained`` draws, read as networks
        are (for C1) at ``untrained_threshold`` (0.5 for DBN probabilities; 0 for tanh units).
    n_untrained : int
        Draws of the untrained networks.
    untrained_threshold : float
        Where the untrained networks' probabilities are read as states (C1).
    inputs : numpy.ndarray, optional
        The (M, n_visible) inputs, for random Gaussian projections to each layer's width;
        reference (e), ``n_projections`` draws.
    n_projections : int
        Draws of the random projections.
    seed : int
        Fixes every random draw.
    control_counts, control_widths : list, optional
        A network whose widths do not shrink (reference d, C1).
    n_draws : int
        Matched random states per layer (reference a, weak).
    n_boot : int
        Bootstrap replicates of the tested layer's exponent (C3; 0: none, so no input noise in
        C3's interval); with ``bootstrap_all_layers`` every layer's, and which layer is the Zipf
        layer across replicates (notebook 05).
    n_boot_ci : int
        Bootstrap replicates of the entropies in the intervals of C1 and C2 (0: none).
    n_gof : int
        Synthetic samples for C3's goodness of fit.
    stack_biases : sequence of float
        The random stacks' bit probabilities (reference c, weak).
    margins : dict, optional
        Overrides of ``rules.MARGINS``.
    which : sequence of str
        The claims to compute.
    bootstrap_all_layers : bool
        See ``n_boot``.
    reference_cache : dict, optional
        Shared by calls with the same references (same ``untrained``, ``inputs`` and ``seed``):
        each draw's values, ranks and natural peak are computed once.

    Returns
    -------
    LayerClaims
        ``{"C1": record, "C2": record, "C3": record}``, also ``claims.C2`` (``records.ClaimVerdict``,
        from ``rules.verdict``); each ``vs_null`` holds the ``comparisons`` with each strong reference
        (``decision.Comparison.as_dict``), the ``decision`` ("holds", "undecided", "does not hold")
        and the references used. The rules are in the modules ``c1_hierarchy``, ``c2_near_bound``
        and ``c3_power_laws``.

    Raises
    ------
    ValueError
        For counts and widths that do not match, unknown ``margins`` or ``which``, a reference
        source of the wrong kind or shape, or a control network without its widths.
    """
    layers, widths, M = _check_layers(counts_by_layer, widths)
    unknown = set(margins or {}) - set(rules.MARGINS)
    if unknown:
        raise ValueError(f"margins: unknown keys {sorted(unknown)}; known: {sorted(rules.MARGINS)}")
    margins = {**rules.MARGINS, **(margins or {})}
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
    points = points_frame(layers, widths)
    control = None
    if control_counts is not None:
        if control_widths is None:
            raise ValueError("control_widths: required with control_counts (the control network's widths)")
        c_layers, c_widths, c_M = _check_layers(control_counts, control_widths, "control_counts")
        if c_M != M:
            raise ValueError(f"control_counts: M = {c_M}, the layers have M = {M}; compare equal M")
        control = points_frame(c_layers, c_widths)

    matched: dict[int, dict] = {}
    seeds_a = [int(s) for s in rng_a.integers(0, 2**63 - 1, len(layers))]

    def matched_fn(depth: int) -> dict:  # reference (a), computed once per layer, on demand
        if depth not in matched:
            matched[depth] = N.matched_random(layers[depth - 1], widths[depth - 1], n_draws=n_draws,
                                              seed=seeds_a[depth - 1], keep_counts=True)
        return matched[depth]

    if {"C1", "C2"} & set(which):
        for d, hs in zip(points["depth"], points["H_s_norm"]):
            if hs < rules.HS_EDGE:  # at (1, 0) there is nothing to match: random states of any width >= log2 M sit there
                matched_fn(int(d))
    stacks_counts = {float(p): N.noise_stack(M, widths, p, seed=rng_c) for p in stack_biases}
    stacks = {p: points_frame(sc, widths) for p, sc in stacks_counts.items()}
    # what the strong references are matched at
    c2_depths = ([int(d) for d in C2.informative_layers(points).query("informative")["depth"]]
                 if "C2" in which else [])
    zipf = fits = None
    if "C3" in which:  # one fit per layer serves the choice of the tested layer and C3 itself
        fits = C3.fit_layers(layers, [0, *widths])
        zipf = C3.zipf_anchor(fits, points)
    peak = C1.claim_c1_table(points)["relevance_peak_depth"] if "C1" in which else None
    targets = {d: float(points.loc[points["depth"] == d, "H_s"].iloc[0]) for d in set(c2_depths) | {zipf} - {None}}
    sources = {}
    if untrained is not None:
        sources["untrained"] = (n_untrained, untrained)
    if inputs is not None:
        proj_seeds = [int(s) for s in rng_e.integers(0, 2**63 - 1, n_projections)]
        sources["projections"] = (n_projections, lambda k: R.projection_values(inputs, widths, proj_seeds[k]))
    strong = {kind: R.measure(kind, n, values_of, widths, targets, zipf, natural="C1" in which,
                              threshold=untrained_threshold if kind == "untrained" else 0.0,
                              zipf_stats={"distance": S.zipf_distance, "mu_gap": C3.mu_gap},
                              cache=reference_cache)
              for kind, (n, values_of) in sources.items()}
    tested = _tested_replicates(layers, c2_depths, peak, n_boot_ci, rng_3)
    out = {}
    if "C1" in which:
        out["C1"] = C1.evaluate(points, matched, stacks, control, strong, tested, margins)
    if "C2" in which:
        out["C2"] = C2.evaluate(points, matched, strong, tested, margins)
    if "C3" in which:
        out["C3"] = C3.evaluate(layers, widths, points, fits, matched_fn, stacks_counts, strong, n_boot, n_gof, rng_3, margins,
                        bootstrap_all_layers)
    return LayerClaims(out)


# ----------------------------------------------------- error bars, sensitivity


def layer_entropy_intervals(counts_by_layer, widths, n_boot: int = 200, seed=0, level: float = 0.95) -> pd.DataFrame:
    """Bootstrap (over inputs) intervals of H[s] and H[K] per layer (``stats.entropy_intervals``).

    One row per layer: depth, units, and for H_s, H_K, H_s_norm, H_K_norm the
    estimate, ``_lo``/``_hi`` (normal interval, drawn by ``plotting.plot_layer_errorbars``),
    ``_pct_lo``/``_pct_hi`` (percentile interval) and ``_bias``.

    Parameters
    ----------
    counts_by_layer : list of numpy.ndarray
        The state counts of each layer.
    widths : list of int
        The layers' widths.
    n_boot : int
        Bootstrap replicates.
    seed : int
        Fixes the replicates.
    level : float
        The intervals' coverage.

    Returns
    -------
    pandas.DataFrame
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
                references: bool = True, **claim_kw) -> Numbers:
    """The layer table and the claims' verdicts under other ways of reading the states.

    Variants: thresholding the up-pass probabilities at each of ``thresholds``, and
    (``sampled``) one state per input drawn from p(h|x) (``dbn.sampled_states``,
    same M). Each variant gets the layer table (``layer_point`` per layer) and
    ``layer_claims`` (``claim_kw`` passed on, e.g. fewer draws); with ``references``
    the untrained networks of the recipe and the random projections of ``x`` are the
    strong references (matched to each variant's resolutions, so they do not
    depend on how the tested layers are read).

    Parameters
    ----------
    dbn : rr_utils.models.DBN
        The trained network.
    x : numpy.ndarray
        The inputs counted (the train split).
    thresholds : sequence of float
        The thresholds of the thresholded variants.
    sampled : bool
        Add the variant of sampled states.
    seed : int
        Fixes every random draw.
    baseline : str
        The variant the others are compared with.
    references : bool
        Use the strong references.
    **claim_kw
        Passed on to ``layer_claims``.

    Returns
    -------
    Numbers
        ``{"variants": {name: {"table": [...], "verdicts": {C1: {holds_as_stated, holds_vs_null,
        decision}, ...}, "claims": LayerClaims}}, "baseline", "changes", "any_verdict_changes"}``,
        a read-only dict whose keys are also attributes (``sensitivity.any_verdict_changes``).

    Raises
    ------
    ValueError
        If ``baseline`` is not one of the variants.
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
        out[name] = {"table": points_frame(counts, widths).round(6).to_dict("records"),
                     "verdicts": _summary(claims), "claims": claims}
    changes = verdict_changes({k: v["verdicts"] for k, v in out.items()}, baseline)
    return Numbers({"variants": out, "baseline": baseline, "changes": changes, "any_verdict_changes": bool(changes)})


def verdict_changes(verdicts_by_variant: dict, baseline: str) -> list:
    """Every (variant, claim, verdict) whose value differs from the baseline variant's.


    Parameters
    ----------
    verdicts_by_variant : dict
        ``{variant: {claim: {"holds_as_stated": ..., "holds_vs_null": ...}}}``.
    baseline : str
        The variant the others are compared with.

    Returns
    -------
    list of dict
        ``{"variant", "claim", "verdict", "baseline", "value"}`` per change (empty: nothing changes).
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
