"""Claim C4 (docs/paper.md §4): "the Zipf layer is the one that best generates
patterns resembling the training data", with scores a referee can check.

Everything here is our choice; the paper judged generated digits by eye.

Scores (``rr_utils.generation.scoring.sample_scores``), per layer and network:

- primary: the **Frechet distance** (FD) between the features of generated
  images and of held-out real digits (the test split), in the penultimate layer
  of our digit classifier (``DigitClassifier.features``, 256 ReLU units). Lower
  is better. It penalises both images unlike digits and a sample with too
  little variety (ten crisp prototypes have the right mean but far too small a
  covariance), which the old ``quality`` score (confidence x class entropy)
  rewarded;
- diversity: distinct images after binarising pixels at 0.5, and the mean
  distance between two generated images of the same predicted class;
- nearest-neighbour distance to held-out test digits (not the training set);
- ``quality`` and its parts, kept for comparison with earlier results only.

Sampling (``layer_scores``): ``n_chain_seeds`` independent chain runs per layer
(``generation.sampling.generate_from_layer`` with seeds 0, 1, ...), ``n_chains`` chains
each, scored pooled (the primary numbers) and run by run (the spread between
runs). ``mixing_check`` compares the scores after 500, 2,000 and 5,000 steps.

Verdicts (``claim_c4``; ``max_relevance_hypothesis`` applies the same machinery
to the README's earlier finding, stated before this test was run). For each
network seed, with FD lower = better:

- ``D`` = FD(target layer) - FD(best other layer): negative when the target
  layer generates best;
- the null, a layer chosen uniformly at random among all layers:
  ``D_random`` = mean over layers r of FD(r) - FD(best layer other than r)
  (the exact expectation of the same comparison, no sampling).

``holds_as_stated``: the upper end of the ``confidence`` t-interval over
network seeds of mean D is below 0 (the target beats every other layer, beyond
seed-to-seed variation). ``claim_c4`` gives no verdict against references (no
network without learning generates; a layer picked at random is no reference
for "the best layer") and identifies the target a second way, as the layer
nearest the bound's Zipf point (no fit). ``max_relevance_hypothesis`` keeps
``holds_vs_null``: the upper end of the t-interval of mean (D - D_random) is
below ``-margin`` (the target is closer to the best than a layer picked at
random), ``D_random`` being reported for both. With one seed there is no interval and the
point estimate decides (marked ``n_seeds`` = 1). A seed without a target layer
(no fitted Zipf layer) makes both verdicts false.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd

from rr_utils.generation import sampling
from rr_utils.generation.scoring import ScoreReference, sample_scores
from rr_utils._checks import check_int, check_steps, is_int, is_real
from rr_utils.claims.records import GenerationVerdict, HypothesisVerdict

__all__ = [
    "TEXT_C4",
    "TEXT_MAX_RELEVANCE",
    "PRIMARY_SCORE",
    "layer_scores",
    "mixing_check",
    "paired_comparison",
    "claim_c4",
    "max_relevance_hypothesis",
    "max_relevance_depth",
]

# the same words as rr_utils.claims.rules.TEXT["C4"]
TEXT_C4 = "The Zipf layer is the best generator of patterns resembling the training data."
TEXT_MAX_RELEVANCE = ("The layer of maximal relevance (largest H[K] on the training inputs) is the one that best "
                      "generates (our hypothesis, from the README's earlier finding on the quality score, stated "
                      "before this test was run).")
PRIMARY_SCORE = "frechet_distance"
LOWER_IS_BETTER = {"frechet_distance": True, "nn_distance_test": True, "quality": False, "confidence": False,
                   "class_entropy": False, "within_class_diversity": False, "n_distinct": False,
                   "distinct_fraction": False}


# --------------------------------------------------------------------------- sampling and scoring


def layer_scores(layers, reference: ScoreReference, *, sizes=None, chain_seeds=range(5), n_chains: int = 100,
                 steps=(2000,), depths=None, device=None, cpu_threads: int | None = 1,
                 progress: bool | None = None):
    """Generate from every layer with several chain seeds and score the samples.

    ``layers``: the DBN's ``layer_params()``; ``sizes``: its ``sizes`` (visible
    first; default: read from the weights). For each depth and chain seed one
    run of ``n_chains`` chains goes to ``max(steps)`` and is read out at every
    number of steps in ``steps`` (``generation.sampling.generate_snapshots``; ``progress``:
    its progress bars, see ``rr_utils.progress``).

    Returns ``(images, pooled, runs)``:

    - ``images[depth][n_steps]``: the pooled images (all chain seeds, in seed order);
    - ``pooled``: one row per (depth, steps) with ``sample_scores`` of the pooled
      sample (n = len(chain_seeds) x n_chains), ``gen_seconds`` (wall time of
      that layer's generation, all seeds, to max(steps)) and, for reference, the
      scores of a real sample of the same size (``real_*`` columns);
    - ``runs``: one row per (depth, steps, chain_seed) with the scores of that run alone.
    """
    if not isinstance(reference, ScoreReference):
        raise ValueError(f"reference: expected a generation.scoring.ScoreReference, got {type(reference).__name__}")
    if isinstance(chain_seeds, (str, bytes)) or not hasattr(chain_seeds, "__iter__"):
        raise ValueError(f"chain_seeds: expected a list of seeds, got {chain_seeds!r}")
    chain_seeds = [check_int(s, "chain_seeds", 0) for s in chain_seeds]
    if not chain_seeds or len(set(chain_seeds)) != len(chain_seeds):
        raise ValueError(f"chain_seeds: expected distinct seeds, at least one, got {chain_seeds}")
    n_chains = check_int(n_chains, "n_chains", 2)
    steps = check_steps(steps)
    n_layers = len(layers) if hasattr(layers, "__len__") else 0
    if n_layers == 0:
        raise ValueError("layers: expected a non-empty list of (W, vbias, hbias)")
    if sizes is None:
        sizes = [int(np.shape(layers[0][0])[0])] + [int(np.shape(L[0])[1]) for L in layers]
    if len(sizes) != n_layers + 1:
        raise ValueError(f"sizes: expected {n_layers + 1} sizes (visible first) for {n_layers} layers, got {len(sizes)}")
    depths = list(range(1, n_layers + 1)) if depths is None else [check_int(d, "depths", 1) for d in depths]
    if any(d > n_layers for d in depths):
        raise ValueError(f"depths: must be in 1..{n_layers}, got {depths}")

    n_pooled = len(chain_seeds) * n_chains
    real = reference.real_scores(n_pooled)
    images, pooled_rows, run_rows = {}, [], []
    for depth in depths:
        t0 = time.perf_counter()
        per_seed = [sampling.generate_snapshots(layers, depth, steps, n_chains=n_chains, seed=s, device=device,
                                         cpu_threads=cpu_threads, progress=progress) for s in chain_seeds]
        seconds = time.perf_counter() - t0
        images[depth] = {}
        for n in steps:
            pooled_imgs = np.concatenate([p[n] for p in per_seed])
            images[depth][n] = pooled_imgs
            s = sample_scores(pooled_imgs, reference)
            pooled_rows.append(dict(depth=depth, units=int(sizes[depth]), steps=n, n_chain_seeds=len(chain_seeds),
                                    **s, gen_seconds=seconds, **{f"real_{k}": v for k, v in real.items()}))
            for cs, p in zip(chain_seeds, per_seed):
                run_rows.append(dict(depth=depth, units=int(sizes[depth]), steps=n, chain_seed=cs,
                                     **sample_scores(p[n], reference)))
    return images, pd.DataFrame(pooled_rows), pd.DataFrame(run_rows)


# --------------------------------------------------------------------------- statistics


def _t_interval(x, confidence: float):
    """(mean, low, high) of a t-interval over the values x; (mean, None, None) for one value."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    m = float(x.mean())
    if len(x) < 2:
        return m, None, None
    se = float(x.std(ddof=1) / math.sqrt(len(x)))
    h = float(stats.t.ppf(0.5 + confidence / 2, len(x) - 1)) * se
    return m, m - h, m + h


def _check_confidence(confidence) -> float:
    if not (is_real(confidence) and 0 < confidence < 1):
        raise ValueError(f"confidence: expected a number in (0, 1), got {confidence!r}")
    return float(confidence)


def _check_scores(scores, score: str, name: str = "scores") -> pd.DataFrame:
    if not isinstance(scores, pd.DataFrame):
        raise ValueError(f"{name}: expected a pandas DataFrame, got {type(scores).__name__}")
    missing = [c for c in ("depth", score) if c not in scores.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}; have {list(scores.columns)}")
    if scores.empty:
        raise ValueError(f"{name}: empty (no rows)")
    df = scores.copy()
    if "seed" not in df.columns:
        df["seed"] = 0
    if "steps" in df.columns and df["steps"].nunique() > 1:
        raise ValueError(f"{name}: rows at several numbers of steps {sorted(df['steps'].unique())}; "
                         "select one (e.g. scores[scores.steps == 2000])")
    if df.duplicated(["seed", "depth"]).any():
        raise ValueError(f"{name}: several rows for the same (seed, depth); pass the pooled scores, one row each")
    vals = pd.to_numeric(df[score], errors="coerce")
    if vals.isna().any() or not np.isfinite(vals.to_numpy(dtype=np.float64)).all():
        raise ValueError(f"{name}: column {score!r} has missing or non-finite values")
    df[score] = vals.astype(np.float64)
    for seed, g in df.groupby("seed"):
        if len(g) < 2:
            raise ValueError(f"{name}: seed {seed} has {len(g)} layer; need at least 2 layers to compare")
    return df


def _targets(target_depth, seeds) -> dict:
    """{seed: depth or None} from a dict or, for a single seed, one depth."""
    if isinstance(target_depth, dict):
        missing = [s for s in seeds if s not in target_depth]
        if missing:
            raise ValueError(f"target_depth: no entry for seeds {missing}")
        out = dict(target_depth)
    elif target_depth is None or is_int(target_depth):
        if len(seeds) != 1:
            raise ValueError(f"target_depth: give a dict {{seed: depth}} for {len(seeds)} seeds")
        out = {seeds[0]: target_depth}
    else:
        raise ValueError(f"target_depth: expected a depth, None or a dict {{seed: depth}}, got {target_depth!r}")
    for s in seeds:
        d = out[s]
        if d is not None and not is_int(d):
            raise ValueError(f"target_depth: seed {s}: expected an integer depth or None, got {d!r}")
    return {s: (None if out[s] is None else int(out[s])) for s in seeds}


def paired_comparison(scores: pd.DataFrame, target_depth, score: str = PRIMARY_SCORE, lower_is_better=None,
                      confidence: float = 0.95) -> dict:
    """The target layer against the best other layer and against a layer chosen at random, paired over seeds.

    ``scores``: one row per (seed, depth) with column ``score`` (a ``seed``
    column; without it one network, seed 0). ``target_depth``: {seed: depth}
    (None: that seed has no target layer), or one depth for one seed.

    Per seed, with ``sign`` = +1 if lower is better else -1:

    - ``D`` = sign x (score(target) - score(best other layer)): < 0 when the target is best;
    - ``D_random`` = mean over every layer r of sign x (score(r) - score(best layer other than r)):
      the same comparison for a layer chosen uniformly at random;
    - ``rank`` of the target (1 = best) and ``win_rate``, the fraction of the other
      layers it beats (0.5 expected for a random layer).

    Aggregates over the seeds that have a target: mean of D and of D - D_random
    with their ``confidence`` t-intervals (None with one seed),
    ``fraction_target_best`` and ``mean_rank``.
    """
    confidence = _check_confidence(confidence)
    df = _check_scores(scores, score)
    if lower_is_better is None:
        if score not in LOWER_IS_BETTER:
            raise ValueError(f"lower_is_better: not known for score {score!r}; pass True or False")
        lower_is_better = LOWER_IS_BETTER[score]
    sign = 1.0 if lower_is_better else -1.0
    seeds = sorted(df["seed"].unique().tolist())
    targets = _targets(target_depth, seeds)
    per_seed = []
    for seed in seeds:
        g = df[df["seed"] == seed]
        depths = g["depth"].astype(int).to_numpy()
        v = sign * g[score].to_numpy()
        t = targets[seed]
        # best other layer for every layer r: the minimum over the others
        order = np.argsort(v, kind="stable")
        best_other = np.where(np.arange(len(v)) == order[0], v[order[1]], v[order[0]])
        d_random = float(np.mean(v - best_other))
        row = {"seed": int(seed), "target_depth": t, "D_random": d_random,
               "best_depth": int(depths[order[0]]), "n_layers": int(len(v))}
        if t is not None:
            if t not in set(depths.tolist()):
                raise ValueError(f"target_depth: seed {seed}: depth {t} is not in the scores "
                                 f"(depths {sorted(depths.tolist())})")
            i = int(np.flatnonzero(depths == t)[0])
            j = order[1] if order[0] == i else order[0]
            row.update(target_score=float(g[score].iloc[i]), best_other_depth=int(depths[j]),
                       best_other_score=float(g[score].iloc[j]), D=float(v[i] - v[j]),
                       D_minus_D_random=float(v[i] - v[j] - d_random),
                       rank=int(1 + np.sum(v < v[i])), win_rate=float(np.mean(v[np.arange(len(v)) != i] > v[i])))
        per_seed.append(row)
    ok = [r for r in per_seed if r["target_depth"] is not None]
    out = {"score": score, "lower_is_better": bool(lower_is_better), "confidence": confidence,
           "n_seeds": len(seeds), "n_seeds_with_target": len(ok),
           "seeds_without_target": [r["seed"] for r in per_seed if r["target_depth"] is None],
           "per_seed": per_seed}
    if ok:
        m, lo, hi = _t_interval([r["D"] for r in ok], confidence)
        out["D"] = {"mean": m, "ci_low": lo, "ci_high": hi}
        m, lo, hi = _t_interval([r["D_minus_D_random"] for r in ok], confidence)
        out["D_minus_D_random"] = {"mean": m, "ci_low": lo, "ci_high": hi}
        out["mean_D_random"] = float(np.mean([r["D_random"] for r in ok]))
        out["fraction_target_best"] = float(np.mean([r["rank"] == 1 for r in ok]))
        out["mean_rank"] = float(np.mean([r["rank"] for r in ok]))
        out["mean_rank_random_layer"] = float(np.mean([(r["n_layers"] + 1) / 2 for r in ok]))
        out["mean_win_rate"] = float(np.mean([r["win_rate"] for r in ok]))
    return out


def _verdict(cid: str, text: str, comparison: dict, margin: float, target_name: str) -> dict:
    """holds_as_stated / holds_vs_null from a ``paired_comparison`` (see the module docstring).

    The record has the shape of ``rr_utils.claims.rules.verdict`` ("id", "text", the
    two bools, "as_stated" and "vs_null" with their numbers and rule, "note"),
    plus "evidence" with the per-seed numbers: C4 is judged across seeds at once.
    """
    conf, score = comparison["confidence"], comparison["score"]
    as_stated = {"rule": (f"{target_name} beats the best other layer: the upper end of the {conf:.0%} t-interval over "
                          f"network seeds of mean D = {score}(target) - {score}(best other layer) is below 0 "
                          "(sign flipped for a higher-is-better score); one seed: D < 0"),
                 "score": score, "lower_is_better": comparison["lower_is_better"]}
    vs_null = {"rule": (f"{target_name} is closer to the best than a layer chosen at random: the upper end of the "
                        f"{conf:.0%} t-interval of mean (D - D_random) is below -margin; D_random = the mean over all "
                        "layers r of the same comparison for r; one seed: the point estimate"),
               "margin": margin}
    for k in ("D", "fraction_target_best", "mean_rank"):
        if k in comparison:
            as_stated[k] = comparison[k]
    for k in ("D_minus_D_random", "mean_D_random", "mean_rank_random_layer", "mean_win_rate"):
        if k in comparison:
            vs_null[k] = comparison[k]
    evidence = {k: comparison[k] for k in ("n_seeds", "n_seeds_with_target", "seeds_without_target", "confidence",
                                           "per_seed")}
    out = {"id": cid, "text": text, "holds_as_stated": False, "holds_vs_null": False, "as_stated": as_stated,
           "vs_null": vs_null, "note": "", "evidence": evidence, "decision_as_stated": "does not hold"}
    if comparison["seeds_without_target"]:
        out["note"] = f"no {target_name} in seeds {comparison['seeds_without_target']}: both verdicts false"
        return out
    d, dn = comparison["D"], comparison["D_minus_D_random"]
    if comparison["n_seeds"] == 1:
        out["note"] = "one network: point estimates, no interval"
    hi_d = d["ci_high"] if d["ci_high"] is not None else d["mean"]
    hi_dn = dn["ci_high"] if dn["ci_high"] is not None else dn["mean"]
    lo_d = d["ci_low"] if d["ci_low"] is not None else d["mean"]
    out["holds_as_stated"] = bool(hi_d < 0)
    # an interval that contains 0 decides nothing: "undecided" (one seed: the point estimate decides)
    out["decision_as_stated"] = "holds" if hi_d < 0 else "does not hold" if lo_d > 0 else "undecided"
    out["holds_vs_null"] = bool(hi_dn < -margin)
    return out


def _check_margin(margin) -> float:
    if not (is_real(margin) and np.isfinite(margin) and margin >= 0):
        raise ValueError(f"margin: expected a finite number >= 0, got {margin!r}")
    return float(margin)


def claim_c4(scores: pd.DataFrame, zipf_depth, *, bound_point_depth=None, score: str = PRIMARY_SCORE,
             lower_is_better=None, confidence: float = 0.95, margin: float = 0.0) -> GenerationVerdict:
    """Verdict record for C4 (``records.GenerationVerdict``): {"id", "text", "holds_as_stated", "holds_vs_null",
    "as_stated", "vs_null", "note", "evidence", "by_bound_point", "confounded_with_width"}.

    ``scores``: pooled scores, one row per (seed, depth) at one number of steps
    (``layer_scores``' ``pooled`` with a ``seed`` column added, concatenated over
    network seeds). ``zipf_depth``: {seed: depth of the Zipf layer} (from C3, the
    fitted mu closest to 1; None where a seed has none), or one depth for one network.

    As stated: the Zipf layer beats the best other layer (the upper end of the t-interval
    over seeds of D = score(Zipf layer) - score(best other layer) is below 0). The target
    is also identified without a fit, ``bound_point_depth`` ({seed: depth}, the layer nearest
    the bound's mu = 1 point in H[s], ``c3_power_laws.zipf_anchor``), and compared with the best other
    layer the same way (``by_bound_point``). There is no verdict against references
    (``holds_vs_null`` None): no network without learning generates, and a layer picked at
    random is no reference for "the best layer" (the test is against the best other layer).
    ``confounded_with_width``: the width of the target when it is the same in every seed,
    where C4 cannot be told from "the layer of that width generates best".
    """
    margin = _check_margin(margin)
    comp = paired_comparison(scores, zipf_depth, score, lower_is_better, confidence)
    out = _verdict("C4", TEXT_C4, comp, margin, "the Zipf layer")
    out["holds_vs_null"] = None
    out["vs_null"] = {"rule": "none: no reference without learning generates; the Zipf layer is compared with the "
                              "best other layer (as stated) and identified a second way, by the bound (by_bound_point)"}
    units = _target_units(scores, comp)
    out["confounded_with_width"] = units[0] if units and len(set(units)) == 1 and len(units) > 1 else None
    if out["confounded_with_width"] is not None:
        out["note"] = (out["note"] + " " if out["note"] else "") + (
            f"the Zipf layer is the {units[0]}-unit layer in every seed: C4 cannot be told from "
            f"'the {units[0]}-unit layer generates best'")
    if bound_point_depth is not None:
        b = paired_comparison(scores, bound_point_depth, score, lower_is_better, confidence)
        bv = _verdict("C4", TEXT_C4, b, margin, "the layer nearest the bound's Zipf point")
        out["by_bound_point"] = {"holds": bv["holds_as_stated"], "as_stated": bv["as_stated"],
                                 "evidence": bv["evidence"], "note": bv["note"],
                                 "same_layer_as_zipf_layer": [
                                     r["target_depth"] == q["target_depth"] for r, q in
                                     zip(comp["per_seed"], b["per_seed"])]}
    return GenerationVerdict.from_dict(out)


def _target_units(scores: pd.DataFrame, comp: dict) -> list:
    if "units" not in scores.columns:
        return []
    df = scores if "seed" in scores.columns else scores.assign(seed=0)
    out = []
    for r in comp["per_seed"]:
        if r["target_depth"] is not None:
            u = df[(df["seed"] == r["seed"]) & (df["depth"] == r["target_depth"])]["units"]
            out.append(int(u.iloc[0]) if len(u) else None)
    return out


def max_relevance_hypothesis(scores: pd.DataFrame, max_relevance_depth, *, score: str = PRIMARY_SCORE,
                             lower_is_better=None, confidence: float = 0.95, margin: float = 0.0) -> HypothesisVerdict:
    """The README's finding "the maximal-relevance layer generates best", tested like ``claim_c4``.

    ``max_relevance_depth``: {seed: depth of the layer with the largest H[K]}
    (``max_relevance_depth``). Stated before the test was run; recorded whatever it shows
    (``records.HypothesisVerdict``).
    """
    margin = _check_margin(margin)
    comp = paired_comparison(scores, max_relevance_depth, score, lower_is_better, confidence)
    out = _verdict("H_max_relevance", TEXT_MAX_RELEVANCE, comp, margin, "the maximal-relevance layer")
    out["stated_beforehand"] = True
    return HypothesisVerdict.from_dict(out)


def max_relevance_depth(table: pd.DataFrame, split: str = "train") -> int:
    """Depth of the layer with the largest relevance H[K] on ``split`` (a ``layer_table``)."""
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in ("split", "depth", "H_K") if c not in table.columns]
    if missing:
        raise ValueError(f"table: missing columns {missing}")
    t = table[table["split"] == split]
    if t.empty:
        raise ValueError(f"table: no rows with split == {split!r}")
    return int(t.loc[t["H_K"].idxmax(), "depth"])


# --------------------------------------------------------------------------- mixing


def mixing_check(runs: pd.DataFrame, short: int = 2000, long: int = 5000, score: str = PRIMARY_SCORE,
                 rel_tol: float = 0.1, confidence: float = 0.95, pooled: pd.DataFrame | None = None) -> dict:
    """Has the score stopped changing after ``short`` steps? Compared with ``long`` steps, run by run.

    ``runs``: ``layer_scores``' per-run table holding both step counts (the
    chains at ``long`` steps continue those at ``short``). Per layer, over the
    chain seeds: paired differences score(short) - score(long), their mean
    and ``confidence`` t-interval, relative to the mean score at ``long``.
    A layer counts as mixed at ``short`` if the relative change is within
    ``rel_tol`` or the interval contains 0 (no change detectable between
    runs). Our rule; it is necessary for mixing, not sufficient (a chain
    stuck in one mode for 5,000 steps passes). ``mixed`` is True if every
    layer is; ``not_mixed_depths`` lists the others.

    With ``pooled`` (``layer_scores``' pooled table), also the best layer and
    every layer's rank by ``score`` at each number of steps there
    (``best_depth_by_steps``, ``rank_by_steps``): whether a verdict would
    change with longer chains.
    """
    confidence = _check_confidence(confidence)
    if not (is_real(rel_tol) and rel_tol >= 0):
        raise ValueError(f"rel_tol: expected a number >= 0, got {rel_tol!r}")
    if not isinstance(runs, pd.DataFrame):
        raise ValueError(f"runs: expected a pandas DataFrame, got {type(runs).__name__}")
    missing = [c for c in ("depth", "steps", "chain_seed", score) if c not in runs.columns]
    if missing:
        raise ValueError(f"runs: missing columns {missing}")
    have = set(runs["steps"].unique().tolist())
    if short not in have or long not in have:
        raise ValueError(f"runs: need rows at {short} and {long} steps, have {sorted(have)}")
    per_layer = []
    for depth, g in runs.groupby("depth"):
        a = g[g["steps"] == short].set_index("chain_seed")[score]
        b = g[g["steps"] == long].set_index("chain_seed")[score]
        common = a.index.intersection(b.index)
        if len(common) == 0:
            raise ValueError(f"runs: depth {depth} has no chain seed at both {short} and {long} steps")
        diff = (a[common] - b[common]).to_numpy(dtype=np.float64)
        m, lo, hi = _t_interval(diff, confidence)
        base = float(b[common].mean())
        rel = m / base if base != 0 else float("inf") if m else 0.0
        within_noise = lo is not None and lo <= 0 <= hi
        per_layer.append({"depth": int(depth), f"mean_{score}_{long}": base, "mean_change": m, "ci_low": lo,
                          "ci_high": hi, "relative_change": float(rel), "mixed": bool(abs(rel) <= rel_tol or within_noise)})
    out = {"short": short, "long": long, "score": score, "rel_tol": rel_tol, "confidence": confidence,
           "rule": (f"a layer is mixed at {short} steps if its mean {score} over chain runs changes by at most "
                    f"{rel_tol:.0%} from {short} to {long} steps, or the {confidence:.0%} t-interval of the "
                    "paired change contains 0 (ours; necessary, not sufficient)"),
           "mixed": bool(all(r["mixed"] for r in per_layer)),
           "not_mixed_depths": [r["depth"] for r in per_layer if not r["mixed"]], "per_layer": per_layer}
    if pooled is not None:
        if not isinstance(pooled, pd.DataFrame) or "steps" not in pooled.columns:
            raise ValueError("pooled: expected layer_scores' pooled table (a DataFrame with a 'steps' column)")
        sign = 1.0 if LOWER_IS_BETTER.get(score, True) else -1.0
        out["best_depth_by_steps"], out["rank_by_steps"] = {}, {}
        for n, g in pooled.groupby("steps"):
            g = _check_scores(g.drop(columns="steps"), score, "pooled")
            v = sign * g[score].to_numpy()
            d = g["depth"].astype(int).to_numpy()
            out["best_depth_by_steps"][int(n)] = int(d[np.argmin(v)])
            out["rank_by_steps"][int(n)] = {int(di): int(1 + np.sum(v < vi)) for di, vi in zip(d, v)}
    return out
