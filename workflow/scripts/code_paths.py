"""How far the floating-point path moves a trained network, beside the seed-to-seed spread: results/code_paths.json.

For each seed, the MNIST network of the recipe trained on this machine's default path (the committed networks)
and the same network trained in exact mode (rr_utils.numerics: MKL's COMPATIBLE branch, torch's default CPU
capability) are read as the notebooks read them (each layer's H[s]/log M and H[K]/log M, thresholded at
0.5, per split, and C1-C3 decided per seed), each in a fresh process with its own environment. The difference
per layer is given in nats-normalised units and in units of the seed-to-seed standard deviation of that layer
(results/layers.json, notebook 08's seeds). Two code paths of one machine stand in for two machines: another
CPU takes another path in the same way (the README's reproducibility section).

    python workflow/scripts/code_paths.py --seeds 0 1

Both networks of each seed must be in the model cache; the exact one is trained by
`env $(python -m rr_utils.numerics env) python -m rr_utils.networks train --spec '{"dataset": "mnist", "seed": 0}' --threads 1 --out rec.json`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

QUANTITIES = ("H_s_norm", "H_K_norm")


# One network, read as the notebooks read it: each layer's normalised entropies per split, and C1-C3 decided as
# notebook 08 decides them per seed (its default numbers of references). Run in a fresh process: the variables
# that choose the code path are read when the libraries load.
_WORKER = r"""
import json, sys
import torch
from rr_utils import experiments as X
from rr_utils.claims import layers as CL
from rr_utils.models import array_checksum, load_dbn
from rr_utils.networks import NetworkSpec
torch.set_num_threads(1)
spec = NetworkSpec.from_dict({"dataset": "mnist", "seed": int(sys.argv[1])})
splits = spec.splits(False)
dbn = load_dbn(spec.config(False), array_checksum(splits["train"]))
table, counts = X.layer_table_and_counts(dbn, splits, seed=spec.seed)
c = CL.layer_claims(counts, list(dbn.sizes[1:]), seed=spec.seed, **X.references(dbn, splits))
print(json.dumps({"cache_key": dbn.key,
                  "layers": table[["split", "depth", "units", "H_s_norm", "H_K_norm"]].to_dict("records"),
                  "verdicts": {cid: {"holds_as_stated": bool(v.holds_as_stated), "vs_references": v.vs_null.decision}
                               for cid, v in c.items()}}))
"""


def _read(seed: int, exact: bool) -> dict:
    """The worker's reading of seed ``seed``'s network, trained on the default path or in exact mode."""
    from rr_utils.numerics import environment

    out = subprocess.run([sys.executable, "-c", _WORKER, str(seed)], env=environment(exact) | {"RR_PROGRESS": "0"},
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def seed_spread(layers: dict) -> dict:
    """(split, depth) -> {quantity: sd over seeds} from results/layers.json."""
    import pandas as pd

    import numpy as np

    t = pd.DataFrame(layers["layers"])
    log_m = np.log(t["split"].map(layers["M"]).astype(float))  # layers.json holds nats; M per split
    t["H_s_norm"], t["H_K_norm"] = t["H_s"] / log_m, t["H_K"] / log_m
    sd = t.groupby(["split", "depth"])[list(QUANTITIES)].std(ddof=1)
    return {(s, int(d)): row.to_dict() for (s, d), row in sd.iterrows()}, int(t["seed"].nunique())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "code_paths.json")
    a = ap.parse_args(argv)

    import pandas as pd

    from rr_utils.io import atomic_write_json
    from rr_utils.numerics import EXACT_ENV, describe

    spread, n_seeds = seed_spread(json.loads((ROOT / "results" / "layers.json").read_text()))
    rows, verdicts = [], []
    for seed in a.seeds:
        d, e = _read(seed, False), _read(seed, True)
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
        vd, ve = d["verdicts"], e["verdicts"]
        verdicts += [{"seed": seed, "claim": cid, "default": vd[cid], "exact": ve[cid],
                      "same": vd[cid] == ve[cid]} for cid in vd]
    summary = {}
    for q in QUANTITIES:
        z = [abs(r[f"z_{q}"]) for r in rows if r[f"z_{q}"] is not None]
        dq = [abs(r[f"d_{q}"]) for r in rows]
        summary[q] = {"max_abs_delta": max(dq), "max_abs_z": max(z) if z else None,
                      "layers_beyond_2_sd": sum(v > 2 for v in z), "layers": len(dq),
                      "max_seed_sd": max(s[q] for s in spread.values())}
    doc = {"what": "each layer's position, network trained on this machine's default code path vs in exact mode "
                   "(same seed, data, recipe); deltas in normalised units and in seed-to-seed standard deviations",
           "seeds": a.seeds, "n_seeds_for_spread": n_seeds, "exact_env": EXACT_ENV, "machine": describe(),
           "summary": summary, "verdicts": verdicts, "layers": rows}
    atomic_write_json(a.out, doc)
    for q, s in summary.items():
        print(f"{q}: largest |exact - default| {s['max_abs_delta']:.4f} ({s['max_abs_z']} seed sd); "
              f"{s['layers_beyond_2_sd']} of {s['layers']} layer rows beyond 2 seed sd")
    for v in verdicts:
        print(f"seed {v['seed']} {v['claim']}: default {v['default']}, exact {v['exact']}"
              f"{'' if v['same'] else '  <- differs'}")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
