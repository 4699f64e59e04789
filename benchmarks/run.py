"""Run the benchmarks side by side with their baselines; print one table and
write ``results/bench.json`` (atomically).

    python -m benchmarks.run                 # full (make bench), several minutes
    python -m benchmarks.run --smoke         # seconds: proves every benchmark runs (the tests)
    python -m benchmarks.run --only counting --only bound --out /tmp/b.json
    python -m benchmarks.run --only batched --merge   # refresh one section of results/bench.json

Ratios, not absolute times, are the point: each baseline runs in the same
process on the same data, timed best-of-k.  Sections: counting (state_counts
vs np.unique / Counter / a uint8 copy), streaming (StateCounter peak memory vs
one-shot, in subprocesses), probe (layer_report over 60,000 inputs: streaming vs the full
activation matrices, peak memory and time), rbm (our trainer vs learnergy, scikit-learn and NumPy, GFLOP/s
vs torch matmul), batched (S seeds in one training step vs one after another, 1 thread), exact (exact mode's cost and bits, rr_utils.numerics), bound (max_relevance_curve), pipeline (make reproduce times
vs the 45-minute budget), workflow (a grid trained by Snakemake with one job per core vs
one job at a time).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # python benchmarks/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    __package__ = "benchmarks"

from benchmarks.common import machine_info, table  # noqa: E402

SECTIONS = ("counting", "streaming", "probe", "rbm", "batched", "exact", "bound", "pipeline", "workflow")


def _section(name: str, smoke: bool, log):
    if name == "counting":
        from benchmarks import counting
        return counting.run(smoke=smoke, log=log)
    if name == "streaming":
        from benchmarks import counting
        return counting.run_streaming(smoke=smoke, log=log)
    if name == "probe":
        from benchmarks import probe
        return probe.run(smoke=smoke, log=log)
    if name == "rbm":
        from benchmarks import rbm
        return rbm.run(smoke=smoke, log=log)
    if name == "batched":
        from benchmarks import batched
        return batched.run(smoke=smoke, log=log)
    if name == "exact":
        from benchmarks import exact
        return exact.run(smoke=smoke, log=log)
    if name == "bound":
        from benchmarks import bound
        return bound.run(smoke=smoke, log=log)
    if name == "pipeline":
        from benchmarks import pipeline
        return pipeline.run(smoke=smoke, log=log)
    if name == "workflow":
        from benchmarks import workflow
        return workflow.run(smoke=smoke, log=log)
    raise ValueError(name)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes: proves the benchmarks run (seconds)")
    p.add_argument("--only", action="append", choices=SECTIONS, help="run only this section (repeatable)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON output (default results/bench.json; results/quick/bench.json with --smoke)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: all cores)")
    p.add_argument("--merge", action="store_true",
                   help="keep the other sections of an existing --out (with --only: refresh those sections alone)")
    a = p.parse_args(argv)

    import torch

    from rr_utils.artifacts import results_dir
    from rr_utils.io import atomic_write_json

    torch.set_num_threads(max(1, a.threads))
    out = a.out or results_dir(quick=a.smoke) / "bench.json"
    sections = a.only or list(SECTIONS)
    info = machine_info()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    log(f"machine: {info['cpu_model']}, {info['logical_cores']} cores, torch {info['torch']} "
        f"({info['torch_threads']} threads), numpy {info['numpy']}")
    rows, doc = [], {"machine": info, "smoke": a.smoke, "sections": {}, "seconds": {}}
    t_all = time.perf_counter()
    for name in sections:
        log(f"[{name}]")
        t0 = time.perf_counter()
        r, data = _section(name, a.smoke, log)
        doc["sections"][name] = data
        doc["seconds"][name] = time.perf_counter() - t0
        rows.extend(r)
    doc["seconds"]["total"] = time.perf_counter() - t_all
    if a.merge and out.is_file():  # the sections not run now, their rows and times, from the file
        import json

        from benchmarks.common import Row

        old = json.loads(out.read_text())
        kept = [k for k in old.get("sections", {}) if k not in doc["sections"]]
        doc["merged"] = {"sections_run": sections, "machine_then": info, "kept_from_file": kept}
        doc["machine"] = old.get("machine", info)
        doc["sections"] = {**{k: old["sections"][k] for k in kept}, **doc["sections"]}
        doc["seconds"] = {**{k: v for k, v in old.get("seconds", {}).items() if k in kept}, **doc["seconds"]}
        doc["seconds"]["total"] = sum(v for k, v in doc["seconds"].items() if k != "total")
        rows = [Row(**r) for r in old.get("rows", []) if r["section"] in kept] + rows
    if a.smoke:  # tiny sizes prove that the code runs; they say nothing about the targets
        for r in rows:
            if r.met is not None:
                r.met, r.target = None, f"({r.target}: not judged in smoke mode)"
    doc["rows"] = [r.as_dict() for r in rows]
    targets = [r for r in rows if r.met is not None]
    doc["targets_met"] = sum(bool(r.met) for r in targets)
    doc["targets_total"] = len(targets)
    atomic_write_json(out, doc)

    print("## Targets\n")
    print(table(targets) if targets else "(none in this run)")
    print("\n## All measurements\n")
    print(table([r for r in rows if r.met is None]))
    print(f"\n{doc['targets_met']}/{doc['targets_total']} targets met; "
          f"ratio = baseline time / our time unless a note says otherwise.")
    print(f"Machine: {info['cpu_model']}, {info['logical_cores']} cores, torch {info['torch']} "
          f"with {info['torch_threads']} threads; benchmark wall time {doc['seconds']['total']:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
