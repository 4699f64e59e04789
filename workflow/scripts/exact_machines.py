"""Does exact mode train the same networks on this machine as on the one that made results/code_paths.json?

results/code_paths.json holds, for each MNIST seed of notebook 08, every layer's H[s]/log M and H[K]/log M
(both splits, 6 decimals) of the network trained in exact mode (rr_utils.numerics) on the machine it names,
beside the same network on that machine's default path. This script trains (or finds in the model cache)
the exact-mode networks of some seeds here, reads their layer tables as the grid does (``rr_utils.networks
analyse``) and compares them, number by number, with the committed exact columns (git HEAD) ->
results/exact_machines.json.

The comparison is only a test where the two machines' default paths differ: the report says which paths
each machine's default takes (torch's CPU capability, MKL's branch; results/bench.json, section exact,
compares the weights' hashes of one layer directly). As a measure of how much a change of path moves these
numbers, it counts the committed rows where the exact and default columns differ.

    python workflow/scripts/exact_machines.py --seeds 0 --jobs 2        (make exact-machines)

Each network costs about 2.8 times the default path's 6 CPU-minutes (make bench, section exact) unless
the model cache holds it.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

QUANTITIES = ("H_s_norm", "H_K_norm")
DECIMALS = 6  # code_paths.json keeps six


def committed_code_paths(ref: str = "HEAD") -> dict:
    """results/code_paths.json at ``ref``; a clear error when git has none."""
    from rr_utils.reproduction import committed_json

    doc = committed_json(ROOT, "results/code_paths.json", ref)
    if doc is None:
        raise SystemExit(f"exact_machines: no results/code_paths.json at git {ref} to compare with")
    return doc


def compare(rows: list[dict], committed: dict, seed: int) -> dict:
    """This machine's exact-mode layer rows of ``seed`` against the committed exact (and default) columns.

    ``rows``: dicts with split, depth and the QUANTITIES (as floats or strings). Returns counts of identical
    numbers, the largest absolute difference, the rows that differ, and how many committed rows differ between
    the committed machine's exact and default paths (the size of a change of path).
    """
    ref = {(r["split"], int(r["depth"])): r for r in committed["layers"] if int(r["seed"]) == seed}
    if not ref:
        raise ValueError(f"seed {seed}: results/code_paths.json has no layer rows for it "
                         f"(its seeds: {sorted({r['seed'] for r in committed['layers']})})")
    got = {(r["split"], int(r["depth"])): r for r in rows}
    if set(got) != set(ref):
        raise ValueError(f"seed {seed}: layer rows {sorted(got)} here, {sorted(ref)} committed")
    n = same = path_moved = 0
    max_abs, differ = 0.0, []
    for key in sorted(ref):
        for q in QUANTITIES:
            here = round(float(got[key][q]), DECIMALS)
            theirs = ref[key][f"{q}_exact"]
            n += 1
            path_moved += theirs != ref[key][f"{q}_default"]
            if here == theirs:
                same += 1
            else:
                max_abs = max(max_abs, abs(here - theirs))
                differ.append({"split": key[0], "depth": key[1], "quantity": q, "here": here, "committed": theirs})
    return {"seed": seed, "numbers": n, "identical": same, "max_abs_delta": max_abs, "differ": differ,
            "committed_exact_vs_default_differ": path_moved}


def _exact_table(seed: int, tmp: Path) -> list[dict]:
    """Train (or load) seed ``seed``'s MNIST network in exact mode in a fresh process, then its layer table."""
    from rr_utils.numerics import environment

    env = environment(True) | {"RR_PROGRESS": "0"}
    spec = json.dumps({"dataset": "mnist", "seed": seed})
    for cmd, out in (("train", tmp / f"train_{seed}.json"), ("analyse", tmp / f"rows_{seed}.csv")):
        p = subprocess.run([sys.executable, "-m", "rr_utils.networks", cmd, "--spec", spec, "--threads", "1",
                            "--out", str(out)], env=env, cwd=ROOT, capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(f"networks {cmd} of seed {seed} in exact mode failed:\n{p.stderr[-3000:]}")
    with open(tmp / f"rows_{seed}.csv", newline="") as f:
        return list(csv.DictReader(f))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python workflow/scripts/exact_machines.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="MNIST seeds to train and compare (0)")
    ap.add_argument("--jobs", type=int, default=2, help="networks at once, one thread each (2)")
    ap.add_argument("--ref", default="HEAD", help="the commit whose results/code_paths.json is compared with")
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "exact_machines.json")
    a = ap.parse_args(argv)
    if a.jobs < 1:
        ap.error(f"--jobs: expected an integer >= 1, got {a.jobs}")
    committed = committed_code_paths(a.ref)
    have = sorted({int(r["seed"]) for r in committed["layers"]})
    missing = [s for s in a.seeds if s not in have]
    if missing:
        ap.error(f"--seeds: {missing} are not in results/code_paths.json (its seeds: {have})")

    from rr_utils.io import atomic_write_json
    from rr_utils.numerics import describe

    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(a.jobs) as pool:
        tables = dict(zip(a.seeds, pool.map(lambda s: _exact_table(s, Path(tmp)), a.seeds)))
    per_seed = [compare(tables[s], committed, s) for s in a.seeds]
    here = describe()
    theirs = committed.get("machine") or {}
    doc = {"what": "MNIST networks trained in exact mode on this machine against the exact-mode networks of "
                   "results/code_paths.json (another machine where the two differ): every layer's H[s]/log M and "
                   "H[K]/log M, both splits, to 6 decimals",
           "ref": a.ref, "seeds": a.seeds, "machine": here, "committed_machine": theirs,
           "default_capabilities": {"here": (here.get("torch") or {}).get("cpu_capability"),
                                    "committed": (theirs.get("torch") or {}).get("cpu_capability")},
           "numbers": sum(p["numbers"] for p in per_seed), "identical": sum(p["identical"] for p in per_seed),
           "committed_exact_vs_default_differ": sum(p["committed_exact_vs_default_differ"] for p in per_seed),
           "per_seed": per_seed}
    atomic_write_json(a.out, doc)
    caps = doc["default_capabilities"]
    print(f"exact mode here ({here.get('cpu_model')}, default capability {caps['here']}) against "
          f"results/code_paths.json ({theirs.get('cpu_model')}, default capability {caps['committed']}): "
          f"{doc['identical']} of {doc['numbers']} layer numbers identical; on the committed machine "
          f"{doc['committed_exact_vs_default_differ']} of them differ between exact mode and the default path "
          f"(wrote {a.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
