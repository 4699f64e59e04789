"""Would more generated samples decide C4? results/c4_samples.json.

C4's test is D = FD(Zipf layer) - FD(best other layer) per network seed, with a 95% t-interval over seeds
(rr_utils.claims.c4_generation.paired_comparison).  Notebook 08 scores each layer on one pool of 500 generated
images (5 chain seeds x 100 chains x 2000 steps).  The interval's width has two sources: the networks differ
from seed to seed, and a pool of 500 images gives a noisy FD.  More samples shrink only the second.

For every MNIST seed of notebook 08 this script generates a second, independent pool of the same size (chain
seeds 5-9) beside the notebook's (chain seeds 0-4, regenerated: bit for bit the committed scores, checked),
then scores each pool and both together (1,000 images).  From the two pools' D per seed it separates the
sampling noise of D from its spread over seeds, and gives D's interval for 500 images (either pool) and for
1,000 (both).  Notebook 08's parameters and targets are read from results/08_seeds_and_claims.json and
results/claims.json; the networks come from the model cache (make reproduce trains them).

Layers 1 and 2 (500 and 250 units, 80% of the generation time) are left out of the comparison: in every
seed their committed FD lies far above the two best layers', the only ones D can involve (the margin is
recorded, in units of the largest pool-to-pool noise measured).  The script checks that on the notebook's
pool, without them, D is the committed D of every seed.

    python workflow/scripts/c4_samples.py --jobs 2     (make c4-samples; about 2 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

DEPTHS = tuple(range(3, 13))  # the layers compared (see the module docstring)

# Some seeds' networks: the notebook's pool (chain seeds 0..n-1), a second pool (n..2n-1), both together.
_WORKER = r"""
import json, pickle, sys
import numpy as np, torch
from rr_utils import experiments as X
from rr_utils.claims import c4_generation as CG
from rr_utils.data import load_dataset
from rr_utils.generation.classifier import train_classifier
from rr_utils.generation.scoring import ScoreReference, sample_scores
from rr_utils.networks import NetworkSpec
torch.set_num_threads(1)
p, seeds, depths, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
splits = NetworkSpec.from_dict({"dataset": p["dataset"], "seed": 0}).splits(False)
train_ds = load_dataset(p["dataset"], "train", verbose=False, rows=len(splits["train"]))
clf = train_classifier(train_ds.images, train_ds.labels, seed=0, epochs=30)  # notebook 08's classifier
ref = ScoreReference(clf, splits["test"], splits["train"])
n, rows = p["n_chain_seeds"], []
for seed in seeds:
    dbn = X.train(NetworkSpec.from_dict({"dataset": p["dataset"], "seed": seed}).config(False), splits, progress=False)
    imgs = {}
    for pool, cs in (("a", range(n)), ("b", range(n, 2 * n))):
        imgs[pool], sc, _ = CG.layer_scores(dbn.layer_params(), ref, sizes=dbn.sizes, chain_seeds=cs,
                                            n_chains=p["n_chains"], steps=[p["n_steps"]], depths=depths, progress=False)
        rows += [{"seed": seed, "pool": pool, "depth": int(r.depth), "n": int(r.n_generated),
                  "frechet_distance": float(r.frechet_distance)} for r in sc.itertuples()]
    for d in depths:
        both = np.concatenate([imgs["a"][d][p["n_steps"]], imgs["b"][d][p["n_steps"]]])
        s = sample_scores(both, ref)
        rows.append({"seed": seed, "pool": "a+b", "depth": d, "n": len(both), "frechet_distance": float(s["frechet_distance"])})
    print(f"seed {seed} done", flush=True)
with open(out, "wb") as f:
    pickle.dump(rows, f)
"""


def check_notebook_pool(rows, committed_scores, tol: float = 1e-4) -> float:
    """The regenerated pool "a" must be notebook 08's: largest |FD difference| (raises beyond ``tol``)."""
    import pandas as pd

    a = pd.DataFrame(rows).query("pool == 'a'").merge(
        pd.DataFrame(committed_scores)[["seed", "depth", "frechet_distance"]], on=["seed", "depth"],
        suffixes=("", "_committed"))
    diff = float((a["frechet_distance"] - a["frechet_distance_committed"]).abs().max())
    if not len(a) or not diff <= tol:
        raise RuntimeError(f"the regenerated notebook pool differs from results/08_seeds_and_claims.json by {diff} "
                           "in FD: the networks or the generation are not the notebook's")
    return diff


def d_per_pool(rows, targets: dict) -> dict:
    """pool -> {seed: D} with the library's paired comparison (FD, lower is better) over DEPTHS."""
    import pandas as pd

    from rr_utils.claims import c4_generation as CG

    t = pd.DataFrame(rows)
    out = {}
    for pool, g in t.groupby("pool"):
        comp = CG.paired_comparison(g[["seed", "depth", "frechet_distance"]], targets, score="frechet_distance")
        out[pool] = {r["seed"]: r["D"] for r in comp["per_seed"]}
    return out


def summarise(d: dict, confidence: float = 0.95) -> dict:
    """Sampling noise of D against its spread over seeds, and D's interval per pool size."""
    import numpy as np

    from rr_utils.claims import c4_generation as CG

    seeds = sorted(d["a"])
    a, b = (np.array([d[p][s] for s in seeds]) for p in ("a", "b"))
    sampling_sd = float(np.std(b - a, ddof=1) / math.sqrt(2))  # one pool's D: var(b - a) = 2 var(noise)
    total_sd = float(np.std(a, ddof=1))
    intervals = {}
    for name, x in (("500, notebook pool", a), ("500, second pool", b), ("1000, both pools", np.array([d["a+b"][s] for s in seeds]))):
        m, lo, hi = CG._t_interval(x, confidence)
        intervals[name] = {"mean": m, "ci_low": lo, "ci_high": hi, "width": hi - lo}
    # the seed-to-seed part of D's variance is what remains once the sampling part is taken out
    between_sd = math.sqrt(max(total_sd ** 2 - sampling_sd ** 2, 0.0))
    return {"n_seeds": len(seeds), "sampling_sd_D": sampling_sd, "sd_D_over_seeds": total_sd,
            "between_seed_sd_D": between_sd, "sampling_share_of_variance": sampling_sd ** 2 / total_sd ** 2,
            "intervals": intervals,
            "width_ratio_1000_vs_500": intervals["1000, both pools"]["width"] / intervals["500, notebook pool"]["width"]}


def left_out_margin(committed_scores, rows) -> float:
    """Smallest gap, over seeds, between the left-out layers' FD and the second-best compared layer's,
    in units of the largest pool-to-pool noise (sd of one pool's FD) measured at any depth."""
    import numpy as np
    import pandas as pd

    c = pd.DataFrame(committed_scores)
    gaps = []
    for seed, g in c.groupby("seed"):
        fd = g.set_index("depth")["frechet_distance"]
        kept = fd.loc[list(DEPTHS)].nsmallest(2).max()
        gaps.append(fd.drop(list(DEPTHS)).min() - kept)
    t = pd.DataFrame(rows).query("pool in ('a', 'b')").pivot_table(index=["seed", "depth"], columns="pool",
                                                                   values="frechet_distance")
    noise = float(((t["b"] - t["a"]).groupby(level="depth").std(ddof=1) / np.sqrt(2)).max())
    return float(min(gaps) / noise)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="processes at once, one thread each (default 2)")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "c4_samples.json")
    a = ap.parse_args(argv)

    from rr_utils.io import atomic_write_json
    from rr_utils.numerics import environment

    nb08 = json.loads((ROOT / "results" / "08_seeds_and_claims.json").read_text())
    claims = json.loads((ROOT / "results" / "claims.json").read_text())
    params = nb08["params"]
    if params["dataset"] != "mnist":
        raise SystemExit(f"results/08_seeds_and_claims.json is for {params['dataset']}, expected mnist")
    c4 = next(c for c in claims["claims"] if c["id"] == "C4")
    per_seed = c4["evidence"]["per_seed"]
    targets = {r["seed"]: r["target_depth"] for r in per_seed}
    if any(t is None or t not in DEPTHS for t in targets.values()):
        raise SystemExit(f"a seed's Zipf layer is outside the compared depths {DEPTHS}: {targets}")
    seeds = sorted(targets)
    env = environment(False) | {"RR_PROGRESS": "0", "RR_REQUIRE_CACHED": "1"}

    def work(chunk, tmp):
        out = Path(tmp) / f"c4_{'_'.join(map(str, chunk))}.pkl"
        p = subprocess.run([sys.executable, "-c", _WORKER, json.dumps(params), json.dumps(chunk), json.dumps(DEPTHS),
                            str(out)], env=env, cwd=ROOT, capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(f"seeds {chunk} failed:\n{p.stderr[-3000:]}")
        with open(out, "rb") as f:
            return pickle.load(f)

    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(a.jobs) as pool:
        chunks = [seeds[i::a.jobs] for i in range(a.jobs) if seeds[i::a.jobs]]
        rows = [r for part in pool.map(lambda c: work(c, tmp), chunks) for r in part]
    max_diff = check_notebook_pool(rows, nb08["scores"])
    d = d_per_pool(rows, targets)
    committed_d = {r["seed"]: r["D"] for r in per_seed}
    worst = max(abs(d["a"][s] - committed_d[s]) for s in seeds)
    if worst > 1e-3:
        raise RuntimeError(f"without layers 1-2 the notebook pool's D differs from the committed D by {worst}")
    summary = summarise(d, c4["evidence"]["confidence"])
    doc = {"what": "C4's D per MNIST seed on notebook 08's pool of generated images and on a second independent "
                   "pool of the same size, and on both together: the sampling noise of D against its spread over "
                   "seeds, and D's interval for 500 and 1,000 images per layer",
           "params": params, "depths_compared": list(DEPTHS), "chain_seeds": {"a": [0, params["n_chain_seeds"]],
                                                                              "b": [params["n_chain_seeds"], 2 * params["n_chain_seeds"]]},
           "checks": {"notebook_pool_max_fd_diff": max_diff, "notebook_pool_max_D_diff": worst,
                      "left_out_layers_margin_in_noise_sd": left_out_margin(nb08["scores"], rows)},
           "summary": summary,
           "per_seed": [{"seed": s, "target_depth": targets[s], **{f"D_{p}": d[p][s] for p in ("a", "b", "a+b")}}
                        for s in seeds],
           "scores": rows}
    atomic_write_json(a.out, doc)
    s = summary
    print(f"sampling sd of D {s['sampling_sd_D']:.2f}; sd over seeds {s['sd_D_over_seeds']:.2f} "
          f"(sampling share of the variance {s['sampling_share_of_variance']:.1%})")
    for name, iv in s["intervals"].items():
        print(f"  {name:20s} D {iv['mean']:+.1f} [{iv['ci_low']:+.1f}, {iv['ci_high']:+.1f}]")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
