"""How far the floating-point path moves trained networks and the verdicts read from them: results/code_paths.json.

For each seed, the MNIST network of the recipe trained on this machine's default path (the committed networks)
and the same network trained in exact mode (rr_utils.numerics: MKL's COMPATIBLE branch, torch's default CPU
capability, one thread) are read as notebook 08 reads them, each path in processes of its own environment
(the variables that choose a path are read when the libraries load): each layer's H[s]/log M and H[K]/log M
per split, C1-C3 decided per seed against the references, and every layer's generation scored for C4, all with
notebook 08's parameters (results/08_seeds_and_claims.json). The verdicts over seeds are then formed per path as
notebook 08 forms them (rr_utils.claims.rules.seed_rule, c4_generation.claim_c4), and a verdict is *stable across
the code paths* when both paths give it the same decision (as stated, and against the references).

The default path's verdicts must equal notebook 08's committed results/claims.json: a check that this script
reads the networks as the notebook does (it stops with an error otherwise). Layer differences are given in
normalised units and in units of the seed-to-seed standard deviation (results/layers.json). Two code paths of
one machine stand in for two machines: another CPU takes another path in the same way.

    python workflow/scripts/code_paths.py --seeds 0 1 2 3 4 5 6 7 8 9 --train --jobs 2     (make code-paths)

Without --train every network must already be in the model cache; with it, a missing one is trained first
(exact mode costs about 2.8 times the default path's 6 CPU-minutes per network: make bench, section exact).
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

QUANTITIES = ("H_s_norm", "H_K_norm")
PATHS = ("default", "exact")
CLAIMS = ("C1", "C2", "C3")

# Some seeds' networks, read as notebook 08 reads them (cells 3-5): the layer table, C1-C3 per seed with the
# notebook's numbers of references, and every layer's generation scores for C4, with the notebook's classifier.
_WORKER = r"""
import json, pickle, sys
import torch
from rr_utils import experiments as X
from rr_utils.claims import c4_generation as CG
from rr_utils.claims import layers as CL
from rr_utils.data import load_dataset
from rr_utils.generation.classifier import train_classifier
from rr_utils.generation.scoring import ScoreReference
from rr_utils.networks import NetworkSpec
torch.set_num_threads(1)
p, seeds, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
splits = NetworkSpec.from_dict({"dataset": p["dataset"], "seed": 0}).splits(False)
train_ds = load_dataset(p["dataset"], "train", verbose=False, rows=len(splits["train"]))
clf = train_classifier(train_ds.images, train_ds.labels, seed=0, epochs=30)
ref = ScoreReference(clf, splits["test"], splits["train"])
res = []
for seed in seeds:
    spec = NetworkSpec.from_dict({"dataset": p["dataset"], "seed": seed})
    dbn = X.train(spec.config(False), splits, progress=False)
    table, counts = X.layer_table_and_counts(dbn, splits, seed)
    claims = CL.layer_claims(counts, list(dbn.sizes[1:]), seed=seed, **X.references(dbn, splits),
                             n_untrained=p["n_untrained"], n_projections=p["n_projections"], n_draws=p["n_draws"],
                             n_boot=p["n_boot"], n_gof=p["n_gof"])
    _, scores, _ = CG.layer_scores(dbn.layer_params(), ref, sizes=dbn.sizes, chain_seeds=range(p["n_chain_seeds"]),
                                   n_chains=p["n_chains"], steps=[p["n_steps"]], progress=False)
    res.append({"seed": seed, "cache_key": dbn.key, "claims": claims, "scores": scores.assign(seed=seed),
                "layers": table[["split", "depth", "units", "H_s_norm", "H_K_norm"]].to_dict("records")})
    print(f"seed {seed} read", flush=True)
with open(out, "wb") as f:
    pickle.dump(res, f)
"""


def _run(cmd: list, exact: bool, extra: dict | None = None) -> subprocess.CompletedProcess:
    """``cmd`` in a fresh process on the chosen code path (``numerics.environment``)."""
    from rr_utils.numerics import environment

    env = environment(exact) | {"RR_PROGRESS": "0"} | (extra or {})
    p = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"{' '.join(cmd[:4])}... on the {'exact' if exact else 'default'} path failed:\n"
                           f"{p.stderr[-3000:]}")
    return p


def _train(seed: int, exact: bool, dataset: str, tmp: Path) -> None:
    """Train (or find in the cache) seed ``seed``'s network on one path, as the workflow's training job does."""
    spec = json.dumps({"dataset": dataset, "seed": seed})
    _run([sys.executable, "-m", "rr_utils.networks", "train", "--spec", spec, "--threads", "1",
          "--out", str(tmp / f"train_{'exact' if exact else 'default'}_{seed}.json")], exact)


def _read(seeds: list, exact: bool, params: dict, tmp: Path) -> list:
    """The worker's reading of ``seeds`` on one path (every network must be in the cache)."""
    out = tmp / f"read_{'exact' if exact else 'default'}_{'_'.join(map(str, seeds))}.pkl"
    _run([sys.executable, "-c", _WORKER, json.dumps(params), json.dumps(seeds), str(out)], exact,
         {"RR_REQUIRE_CACHED": "1"})
    with open(out, "rb") as f:
        return pickle.load(f)


def over_seeds(per_seed: list, params: dict) -> dict:
    """Notebook 08's verdicts over seeds (cells 5, 10, 11) from the workers' per-seed readings of one path."""
    import pandas as pd

    from rr_utils.claims import c4_generation as CG
    from rr_utils.claims import rules as CR

    per_seed = sorted(per_seed, key=lambda r: r["seed"])
    verdicts = {r["seed"]: r["claims"] for r in per_seed}
    claims = {cid: CR.seed_rule([v[cid] for v in verdicts.values()], params["min_fraction"]) for cid in CLAIMS}
    scores = pd.concat([r["scores"] for r in per_seed], ignore_index=True)
    zipf_depth = {s: v.C3.as_stated.zipf_layer_depth for s, v in verdicts.items()}
    peak_depth = {s: v.C1.as_stated.relevance_peak_depth for s, v in verdicts.items()}
    bound_depth = {s: (v.C3.vs_null.get("zipf_layer") or {}).get("depth") for s, v in verdicts.items()}
    claims["C4"] = CG.claim_c4(scores, zipf_depth, bound_point_depth=bound_depth)
    return {"claims": claims, "hypothesis": CG.max_relevance_hypothesis(scores, peak_depth), "per_seed": verdicts}


def summary(v) -> dict:
    """The decisions of one verdict over seeds, with the numbers they rest on."""
    s = {"as_stated": v["decision_as_stated"], "vs_references": v.get("decision_vs_null")}
    ev = v["evidence"]
    if "fraction_as_stated" in ev:  # C1-C3: the seed rule
        s |= {"fraction_as_stated": ev["fraction_as_stated"], "fraction_vs_references": ev["fraction_vs_null"],
              "effects": {ref: {k: round(float(e[k]), 6) for k in ("mean", "lo", "hi")}
                          for ref, e in ev["effects_over_seeds"].items()}}
    else:  # C4 and the hypothesis: D over seeds
        d = v["as_stated"]["D"]
        s |= {"D": {k: None if d[k] is None else round(float(d[k]), 4) for k in ("mean", "ci_low", "ci_high")},
              "fraction_target_best": v["as_stated"]["fraction_target_best"]}
    return s


def check_committed(default: dict, committed: dict) -> None:
    """Stop unless the default path's verdicts are notebook 08's committed ones (the same reading of the networks)."""
    old = {c["id"]: c for c in committed["claims"]} | {h["id"]: h for h in committed.get("hypotheses", [])}
    for cid, v in default.items():
        o = old.get(cid)
        if o is None:
            raise RuntimeError(f"results/claims.json has no {cid}: rerun notebook 08")
        same = (o["decision_as_stated"] == v["as_stated"] and o.get("decision_vs_null") == v["vs_references"])
        if "D" in v:
            same &= abs(o["as_stated"]["D"]["mean"] - v["D"]["mean"]) < 1e-3
        if not same:
            raise RuntimeError(f"{cid} on the default path reads {v}, but notebook 08 committed "
                               f"{o['decision_as_stated']} / {o.get('decision_vs_null')}: results/claims.json is not "
                               "what notebook 08 computes from the cached networks now; rerun notebook 08 first")


def compare(default: dict, exact: dict) -> list:
    """Per verdict (id -> ``summary``) both paths' decisions; stable when both decisions are the same on both."""
    if default.keys() != exact.keys():
        raise ValueError(f"the two paths decided different verdicts: {sorted(default)} and {sorted(exact)}")
    return [{"claim": cid, "default": default[cid], "exact": exact[cid],
             "stable": all(default[cid][k] == exact[cid][k] for k in ("as_stated", "vs_references"))}
            for cid in default]


def seed_spread(layers: dict) -> dict:
    """(split, depth) -> {quantity: sd over seeds} from results/layers.json."""
    import numpy as np
    import pandas as pd

    t = pd.DataFrame(layers["layers"])
    log_m = np.log(t["split"].map(layers["M"]).astype(float))  # layers.json holds nats; M per split
    t["H_s_norm"], t["H_K_norm"] = t["H_s"] / log_m, t["H_K"] / log_m
    sd = t.groupby(["split", "depth"])[list(QUANTITIES)].std(ddof=1)
    return {(s, int(d)): row.to_dict() for (s, d), row in sd.iterrows()}, int(t["seed"].nunique())


def layer_rows(read: dict, spread: dict) -> list:
    """Per seed and layer: both paths' positions, their difference, and that difference in seed sd."""
    import pandas as pd

    rows = []
    for seed in sorted(read["default"]):
        d, e = read["default"][seed], read["exact"][seed]
        if d["cache_key"] == e["cache_key"]:
            raise RuntimeError(f"seed {seed}: exact mode read the default network (one cache key for both)")
        m = pd.DataFrame(d["layers"]).merge(pd.DataFrame(e["layers"]), on=["split", "depth", "units"],
                                            suffixes=("_default", "_exact"))
        for _, r in m.iterrows():
            row = {"seed": seed, "split": r["split"], "depth": int(r["depth"]), "units": int(r["units"])}
            for q in QUANTITIES:
                delta = float(r[f"{q}_exact"] - r[f"{q}_default"])
                sd = spread.get((r["split"], int(r["depth"])), {}).get(q)
                row |= {f"{q}_default": round(float(r[f"{q}_default"]), 6), f"{q}_exact": round(float(r[f"{q}_exact"]), 6),
                        f"d_{q}": round(delta, 6), f"seed_sd_{q}": None if sd is None else round(float(sd), 6),
                        f"z_{q}": None if not sd else round(delta / sd, 3)}
            rows.append(row)
    return rows


def reseed_reference(rows: list, q: str) -> tuple[int, int]:
    """The reference for a change of path: pairs of different seeds on the default path, per layer row.

    Returns (pairs whose difference exceeds 2 seed sd, pairs with a nonzero sd).  Were a change of code
    path no more than a new seed, the exact-minus-default differences would exceed 2 sd about as often.
    """
    from itertools import combinations

    by_row = {}
    for r in rows:
        if r[f"seed_sd_{q}"]:
            by_row.setdefault((r["split"], r["depth"]), []).append(r)
    beyond = pairs = 0
    for rs in by_row.values():
        for a, b in combinations(rs, 2):
            pairs += 1
            beyond += abs(a[f"{q}_default"] - b[f"{q}_default"]) > 2 * a[f"seed_sd_{q}"]
    return beyond, pairs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="default: notebook 08's seeds")
    ap.add_argument("--train", action="store_true", help="train any network missing from the cache first")
    ap.add_argument("--jobs", type=int, default=2, help="processes at once, one thread each (default 2)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "code_paths.json")
    a = ap.parse_args(argv)

    from rr_utils.io import atomic_write_json
    from rr_utils.numerics import EXACT_ENV, describe

    nb08 = json.loads((ROOT / "results" / "08_seeds_and_claims.json").read_text())
    committed = json.loads((ROOT / "results" / "claims.json").read_text())
    params = nb08["params"]
    a.seeds = list(range(params["n_seeds"])) if a.seeds is None else a.seeds
    if params["dataset"] != "mnist" or sorted(a.seeds) != list(range(params["n_seeds"])):
        raise SystemExit(f"--seeds must be notebook 08's seeds 0..{params['n_seeds'] - 1} on MNIST, the verdicts "
                         f"compared with: got {a.seeds} ({params['dataset']})")
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(a.jobs) as pool:
        tmp = Path(tmp)
        if a.train:
            list(pool.map(lambda job: _train(job[0], job[1], params["dataset"], tmp),
                          [(s, x) for x in (False, True) for s in a.seeds]))
        # one worker per path and share of the seeds; exact mode is the slower, so it starts first
        chunks = [(x, a.seeds[i::a.jobs]) for x in (True, False) for i in range(a.jobs) if a.seeds[i::a.jobs]]
        parts = list(pool.map(lambda job: (job[0], _read(job[1], job[0], params, tmp)), chunks))
    read = {p: {r["seed"]: r for x, rs in parts if PATHS[x] == p for r in rs} for p in PATHS}
    decided = {p: over_seeds(list(read[p].values()), params) for p in PATHS}
    verdicts = {p: {v["id"]: summary(v) for v in [*decided[p]["claims"].values(), decided[p]["hypothesis"]]}
                for p in PATHS}
    check_committed(verdicts["default"], committed)
    claims = compare(verdicts["default"], verdicts["exact"])
    per_seed = []
    for seed in a.seeds:
        for cid in CLAIMS:
            d, e = (decided[p]["per_seed"][seed][cid] for p in PATHS)
            v = {p: {"holds_as_stated": bool(r.holds_as_stated), "vs_references": r.vs_null.decision}
                 for p, r in zip(PATHS, (d, e))}
            per_seed.append({"seed": seed, "claim": cid, **v, "same": v["default"] == v["exact"]})

    spread, n_seeds = seed_spread(json.loads((ROOT / "results" / "layers.json").read_text()))
    rows = layer_rows(read, spread)
    layers = {}
    for q in QUANTITIES:
        z = [abs(r[f"z_{q}"]) for r in rows if r[f"z_{q}"] is not None]
        dq = [abs(r[f"d_{q}"]) for r in rows]
        beyond, pairs = reseed_reference(rows, q)
        layers[q] = {"max_abs_delta": max(dq), "max_abs_z": max(z) if z else None,
                     "layers_beyond_2_sd": sum(v > 2 for v in z), "layers": len(dq), "layers_with_sd": len(z),
                     "reseed_pairs_beyond_2_sd": beyond, "reseed_pairs": pairs,
                     "max_seed_sd": max(s[q] for s in spread.values())}
    doc = {"what": "MNIST networks of the recipe trained on this machine's default code path and in exact mode "
                   "(same seeds, data, recipe), read as notebook 08 reads them: each layer's position (deltas in "
                   "normalised units and in seed-to-seed standard deviations), each seed's C1-C3, and the verdicts "
                   "over seeds; a verdict is stable when both paths give the same decisions",
           "seeds": a.seeds, "n_seeds_for_spread": n_seeds, "params": params, "exact_env": EXACT_ENV,
           "machine": describe(),
           "summary": {"layers": layers,
                       "verdicts_stable": sum(c["stable"] for c in claims), "verdicts": len(claims),
                       "per_seed_same": sum(v["same"] for v in per_seed), "per_seed": len(per_seed),
                       "default_equals_committed": True},
           "claims": claims, "per_seed": per_seed, "layers": rows}
    atomic_write_json(a.out, doc)
    for q, s in layers.items():
        print(f"{q}: largest |exact - default| {s['max_abs_delta']:.4f} ({s['max_abs_z']} seed sd); "
              f"{s['layers_beyond_2_sd']} of {s['layers_with_sd']} layer rows beyond 2 seed sd (two different seeds: "
              f"{s['reseed_pairs_beyond_2_sd']} of {s['reseed_pairs']} pairs)")
    for c in claims:
        print(f"{c['claim']}: default {c['default']['as_stated']} / {c['default']['vs_references']}, "
              f"exact {c['exact']['as_stated']} / {c['exact']['vs_references']}"
              f"{'  stable' if c['stable'] else '  <- differs'}")
    print(f"per seed: {doc['summary']['per_seed_same']} of {len(per_seed)} verdicts (C1-C3) the same on both paths")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
