"""Calibration of the verdicts against the references: inputs with a known answer.

Each test of a claim against the references (``layer_claims``) is run on
controls built around a trained network (its widths, its inputs, the
resolutions of its layers), many draws each, and the share of draws in which
it says "holds" is recorded (``results/claims_calibration.json``, notebook 11).

Positive controls (the effect is built in; the test should say "holds"):

* ``on_bound``: the trained network's layers, with every informative layer
  replaced by the bound's optimal m_k at that layer's resolution
  (``bound_counts_at``): a network lying exactly on the bound (C2);
* ``zipf_sample``: the trained network's layers, with the layer C3 is tested on
  (the fitted layer nearest the bound's mu = 1 point in H[s]) replaced by a
  sample of M inputs drawn from the state distribution of the bound's Zipf
  optimum (C3);
* ``peak_above``: the trained network's layers with its relevance-peak layer
  replaced by the top of the bound (mu = 0): a relevance peak placed above any
  untrained network's (C1).

Negative controls (no learning; the test should not say "holds"):

* ``noise_stack``: random layers of the same widths, Bernoulli(p) bits, p drawn
  in [0.1, 0.5];
* ``projection_network``: random sign projections of the inputs at the widths;
* ``untrained_network``: an untrained network of the recipe, read at 0.5 as a
  trained one is;
* ``untrained_matched``: an untrained network read at the thresholds that give
  the trained layers' resolutions, i.e. a draw of reference (b) itself.

Every draw uses fresh reference draws (untrained networks and projections that
no other draw uses). ``calibrate`` runs around any network, so C3's test is
calibrated at more than one M (notebook 11: MNIST's 8,000 and Fashion-MNIST's
60,000); ``rate_table`` records the M of each row. The checks of C3 that look
at one layer alone are also run on samples of the Zipf optimum at several M
(``zipf_sample_checks``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from rr_utils import bound as B
from rr_utils import entropy as E
from rr_utils._checks import check_int
from rr_utils.claims import references as R
from rr_utils.claims import stats as S
from rr_utils.claims.c1_hierarchy import claim_c1_table
from rr_utils.claims.c2_near_bound import informative_layers
from rr_utils.claims.c3_power_laws import fit_layers, zipf_anchor
from rr_utils.claims.layers import layer_claims, points_frame

__all__ = ["POSITIVE", "NEGATIVE", "EXPECTED", "bound_counts_at", "zipf_sample", "control_counts", "rate_table", "summary",
           "calibrate", "zipf_sample_checks", "REQUIRED_POSITIVE", "ALLOWED_NEGATIVE"]

POSITIVE = ("on_bound", "zipf_sample", "peak_above")
NEGATIVE = ("noise_stack", "projection_network", "untrained_network", "untrained_matched")
# which claims each control is built for (the others are recorded too): positives must say "holds",
# negatives must not. untrained_matched copies the trained network's resolution profile, which is
# what C1's peak relevance depends on, so it is a negative control of C2 and C3 only.
EXPECTED = {"on_bound": ("C2",), "zipf_sample": ("C3",), "peak_above": ("C1",),
            "noise_stack": ("C1", "C2", "C3"), "projection_network": ("C1", "C2", "C3"),
            "untrained_network": ("C1", "C2", "C3"), "untrained_matched": ("C2", "C3")}
REQUIRED_POSITIVE = 0.9  # a positive control must say "holds" in at least this share of draws
ALLOWED_NEGATIVE = 0.1  # a negative control at most in this share


def _counts_from_mk(mk: np.ndarray) -> np.ndarray:
    k = np.arange(1, len(mk) + 1)
    return np.repeat(k, np.asarray(mk, dtype=np.int64))


@lru_cache(maxsize=8)
def _curve(M: int):
    mu = np.concatenate([np.linspace(0.0, 1.0, 101)[:-1], np.geomspace(1.0, 60.0, 300)])
    return B.max_relevance_curve(M, mu)


def bound_counts_at(M: int, H_s: float) -> np.ndarray:
    """Counts of the bound's optimal m_k at the resolution nearest ``H_s`` (nats) on a fine mu grid."""
    curve = _curve(int(M))
    mu = float(curve.loc[(curve["H_s"] - float(H_s)).abs().idxmin(), "mu"])
    return _counts_from_mk(B.optimal_mk(int(M), mu))


def zipf_sample(M: int, rng: np.random.Generator, mu: float = 1.0) -> np.ndarray:
    """Counts of M inputs drawn from the state distribution of the bound's optimum at ``mu`` (default Zipf)."""
    c = _counts_from_mk(B.optimal_mk(int(M), mu))
    return S.resample_counts(c, rng)


def control_counts(kind: str, counts_by_layer, widths, x, config, draw: int, untrained_draw) -> list[np.ndarray]:
    """The layers' counts of one draw of one control (module docstring)."""
    layers = [np.asarray(c) for c in counts_by_layer]
    M = int(layers[0].sum())
    rng = np.random.default_rng([int(draw), 0xCA1])
    points = informative_layers(points_frame(layers, widths))
    info = [int(d) for d in points.query("informative")["depth"]]
    if kind == "on_bound":
        return [bound_counts_at(M, points.loc[points["depth"] == d, "H_s"].iloc[0]) if d in info else c
                for d, c in enumerate(layers, start=1)]
    if kind == "zipf_sample":
        z = zipf_anchor(fit_layers(layers, [0, *widths]), points_frame(layers, widths))
        return [zipf_sample(M, rng) if d == z else c for d, c in enumerate(layers, start=1)]
    if kind == "peak_above":
        peak = claim_c1_table(points)["relevance_peak_depth"]
        top = _curve(M).loc[_curve(M)["H_K"].idxmax(), "mu"]
        return [_counts_from_mk(B.optimal_mk(M, float(top))) if d == peak else c for d, c in enumerate(layers, start=1)]
    if kind == "noise_stack":
        p = rng.uniform(0.1, 0.5)
        return [R.fast_counts(rng.random((M, w), dtype=np.float32) < p) for w in widths]
    if kind == "projection_network":
        vals = R.projection_values(x, widths, int(rng.integers(0, 2**62)))
        return [R.fast_counts(R.natural_states(v, 0.0)) for v in vals]
    if kind == "untrained_network":
        return [R.fast_counts(R.natural_states(v, 0.5)) for v in untrained_draw]
    if kind == "untrained_matched":  # every layer not at (1, 0) matched to the trained layer's H[s]
        hs = points.set_index("depth")["H_s"]
        edge = set(int(d) for d in points.query("excluded_because == 'at (1, 0)'")["depth"])
        return [c if d in edge else R.match_resolution(v, hs[d], natural_threshold=0.5)["counts"]
                for d, (v, c) in enumerate(zip(untrained_draw, layers), start=1)]
    raise ValueError(f"kind: expected one of {POSITIVE + NEGATIVE}, got {kind!r}")


def calibrate(counts_by_layer, widths, x, config, *, n_calibration: int = 20, n_untrained: int = 20,
              n_projections: int = 20, controls=POSITIVE + NEGATIVE, progress=None, **claim_kw) -> dict:
    """How often each claim's test against the references says "holds" on each control.

    Draw k of every control is compared with untrained draws k * (n_untrained + 1) + 1 ... (its own;
    the untrained networks fed in as controls use the index k * (n_untrained + 1)) and with
    projections seeded by k. ``claim_kw`` goes to ``layer_claims`` (e.g. n_boot, n_gof).

    Returns {"rates": {control: {claim: share of draws saying "holds"}}, "draws": [per-draw records],
    "n_calibration", "n_untrained", "n_projections", "required_positive", "allowed_negative", "expected"}.
    """
    n_calibration = check_int(n_calibration, "n_calibration", 1)
    unknown = set(controls) - set(POSITIVE + NEGATIVE)
    if unknown:
        raise ValueError(f"controls: unknown {sorted(unknown)}; known: {list(POSITIVE + NEGATIVE)}")
    x = np.asarray(x, dtype=np.float32)
    untrained = R.untrained_factory(config, x)
    stride = n_untrained + 1
    draws = []
    for k in range(n_calibration):
        cache: dict = {}  # reference draws of calibration draw k, prepared once for every control

        def ref(d, k=k):
            return untrained(k * stride + 1 + d)

        own = untrained(k * stride)
        for kind in controls:
            counts = control_counts(kind, counts_by_layer, widths, x, config, k, own)
            rec = layer_claims(counts, widths, untrained=ref, n_untrained=n_untrained, inputs=x,
                               n_projections=n_projections, seed=1000 + k, reference_cache=cache, **claim_kw)
            row = {"draw": k, "control": kind}
            for cid, v in rec.items():
                row[cid] = v["vs_null"]["decision"]
                row[f"{cid}_as_stated"] = v["holds_as_stated"]
                row[f"{cid}_effects"] = {ref_: {q: c[q] for q in ("mean_effect", "effect_lo", "effect_hi")}
                                         for ref_, c in v["vs_null"].get("comparisons", {}).items()}
                if cid == "C3":
                    z = v["vs_null"].get("zipf_layer") or {}
                    row["C3_zipf_depth"], row["C3_mu"], row["C3_gof_p"] = z.get("depth"), z.get("mu"), z.get("gof_p")
            draws.append(row)
            if progress is not None:
                progress(k, kind, row)
        del cache, own
    rates = {}
    for kind in controls:
        rows = [r for r in draws if r["control"] == kind]
        rates[kind] = {cid: float(np.mean([r[cid] == "holds" for r in rows]))
                       for cid in ("C1", "C2", "C3") if cid in rows[0]}
    return {"rates": rates, "draws": draws, "M": int(np.sum(counts_by_layer[0])), "n_calibration": n_calibration,
            "n_untrained": n_untrained,
            "n_projections": n_projections, "required_positive": REQUIRED_POSITIVE,
            "allowed_negative": ALLOWED_NEGATIVE, "expected": {k: list(v) for k, v in EXPECTED.items()}}


def zipf_sample_checks(Ms=(8000, 60000), n_samples: int = 20, n_gof: int = 100, seed: int = 0,
                       gof_p: float = 0.1, lr_p: float = 0.1, zipf_tol: float = 0.3) -> dict:
    """The checks of C3 that look at one layer alone, on samples of the bound's Zipf optimum.

    For each M: ``n_samples`` samples (``zipf_sample``); the share with |mu - 1| < ``zipf_tol``
    (as stated), with Clauset's goodness-of-fit p >= ``gof_p``, and with no likelihood-ratio test
    preferring the lognormal or the exponential at p < ``lr_p`` (the check dropped from the verdict);
    and the largest distance from Zipf's law (``stats.zipf_distance``, the statistic of C3's test
    against the references, whose references lie near 0.1-0.2 at the Zipf point's resolution).
    """
    out = {}
    for M in Ms:
        rng = np.random.default_rng([seed, int(M)])
        rows = []
        for i in range(check_int(n_samples, "n_samples", 1)):
            c = zipf_sample(int(M), rng)
            f, reason = S.fit_or_reason(c)
            if f is None:
                rows.append({"mu": None, "gof_p": None, "lr_ok": False, "zipf_distance": S.zipf_distance(c),
                             "reason": reason})
                continue
            gof = S.power_law_gof(c, n_sims=n_gof, seed=rng, fit=f)
            lr = S.likelihood_ratio_tests(c, int(f.k_min))
            lr_ok = not any(d["R"] < 0 and d["p"] < lr_p for a, d in lr.items() if a != "alpha")
            rows.append({"mu": float(f.mu), "gof_p": gof["p"], "lr_ok": bool(lr_ok),
                         "zipf_distance": S.zipf_distance(c), "H_s_norm": float(E.resolution(c, normalized=True))})
        fitted = [r for r in rows if r["mu"] is not None]
        out[str(M)] = {"n_samples": len(rows),
                       "as_stated_rate": float(np.mean([r["mu"] is not None and abs(r["mu"] - 1) < zipf_tol
                                                        for r in rows])),
                       "gof_rate": float(np.mean([r["gof_p"] is not None and r["gof_p"] >= gof_p for r in rows])),
                       "lr_rate": float(np.mean([r["lr_ok"] for r in rows])),
                       "mu_mean": float(np.mean([r["mu"] for r in fitted])) if fitted else None,
                       "zipf_distance_max": float(max(r["zipf_distance"] for r in rows)),
                       "samples": rows}
    return out


def rate_table(cal: dict):
    """One row per (control, claim) of a ``calibrate`` result: the share of draws saying "holds", whether
    the control was built for that claim (``expected``) and whether it meets the requirement (``meets``:
    positives >= ``REQUIRED_POSITIVE``, negatives <= ``ALLOWED_NEGATIVE``; None where not expected)."""
    import pandas as pd

    rows = []
    for control, by_claim in cal["rates"].items():
        positive = control in POSITIVE
        for cid, rate in by_claim.items():
            expected = cid in EXPECTED.get(control, ())
            meets = None
            if expected:
                meets = bool(rate >= REQUIRED_POSITIVE) if positive else bool(rate <= ALLOWED_NEGATIVE)
            rows.append({"control": control, "kind": "positive" if positive else "negative", "claim": cid,
                         "M": cal.get("M"), "rate": float(rate), "n": int(cal["n_calibration"]), "expected": expected,
                         "meets": meets})
    return pd.DataFrame(rows)


def summary(rates, zipf: dict | None = None) -> dict:
    """Per claim: whether every control built for it meets the requirement (``calibrated``), the
    positive and negative rates, and a short text in Markdown that says so with the numbers.

    ``rates``: one ``rate_table``, or several concatenated (controls built around networks of
    different M); with more than one M, each control is named ``control (M = ...)``."""
    by_claim, lines = {}, []
    several = "M" in rates and rates["M"].nunique() > 1
    name = (lambda row: f"{row.control} (M = {int(row.M):,})") if several else (lambda row: row.control)
    for cid in ("C1", "C2", "C3"):
        r = rates[(rates["claim"] == cid) & rates["expected"]]
        pos = {name(row): row.rate for row in r[r["kind"] == "positive"].itertuples()}
        neg = {name(row): row.rate for row in r[r["kind"] == "negative"].itertuples()}
        ok = bool(r["meets"].all()) if len(r) else False
        by_claim[cid] = {"calibrated": ok, "positives": pos, "negatives": neg,
                         "min_positive_rate": min(pos.values()) if pos else None,
                         "max_negative_rate": max(neg.values()) if neg else None,
                         "failing": [name(row) for row in r.itertuples() if not row.meets]}
        fmt = lambda d: ", ".join(f"{k} {v:.0%}" for k, v in d.items()) or "none"
        verdict = "meets the requirement" if ok else f"does **not** meet it ({', '.join(by_claim[cid]['failing'])})"
        lines.append(f"* **{cid}**: {verdict}. Positive controls say \"holds\" in {fmt(pos)}; "
                     f"negative controls in {fmt(neg)}.")
    if zipf:
        for M, z in zipf.items():
            lines.append(f"* Zipf samples at M = {int(M):,}: |mu - 1| < 0.3 in {z['as_stated_rate']:.0%} (mean mu "
                         f"{z['mu_mean']:.2f}), goodness of fit p >= 0.1 in {z['gof_rate']:.0%}, no likelihood-ratio "
                         f"test against the power law in {z['lr_rate']:.0%} of {z['n_samples']} samples; distance "
                         f"from Zipf's law at most {z['zipf_distance_max']:.3f}.")
    return {"by_claim": by_claim, "text": "\n".join(lines)}
