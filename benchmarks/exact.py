"""Exact mode (rr_utils.numerics): what it costs, and whether it pins the bits.

Each measurement trains the 784-500 RBM of the recipe (authors' update) on the
8,000 embedded digits, one thread, in a fresh subprocess, because the
variables that select the code path are read when the libraries load.  Paths:

* ``default``: this machine's own path (MKL picks its branch, torch its CPU capability);
* ``other``: a second path of the same machine, as a CPU without AVX2 would take it
  (``MKL_CBWR=SSE4_2``, ``ATEN_CPU_CAPABILITY=default``);
* ``exact`` and ``exact, from other``: exact mode started from each of them.

Reported: seconds per epoch (best of the rounds, paths interleaved) and a hash
of the weights after the epochs.  Targets: the two default paths differ (else
this test could not see a difference), the two exact runs agree bit for bit.
The ratio row is exact mode's cost: its epoch time over the default's.

Across machines: the hashes are compared with those of the committed
``results/bench.json`` (git ``HEAD``), made on the machine it names.  Exact mode
must give the committed exact hash; where this machine's default path gives
another hash than the committed default (another CPU or code path), that is a
test of exact mode across the two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.common import Row, fmt_s, machine_info

ROOT = Path(__file__).resolve().parents[1]

_WORKER = r"""
import hashlib, json, sys, time
import numpy as np, torch
from benchmarks.rbm import _train_ours
from rr_utils.data import load_mnist
from rr_utils.models import RBMConfig
from rr_utils.numerics import check_exact, describe
torch.set_num_threads(1)
check_exact()
rows, epochs = int(sys.argv[1]), int(sys.argv[2])
x = torch.from_numpy(np.ascontiguousarray(load_mnist("train", verbose=False)[0][:rows], dtype=np.float32))
rbm, times = _train_ours(x, 500, epochs, RBMConfig())
h = hashlib.sha256(b"".join(t.detach().cpu().numpy().tobytes() for t in (rbm.W, rbm.vbias, rbm.hbias))).hexdigest()
d = describe()
print(json.dumps({"epoch_s": min(times), "times": times, "sha256": h[:16], "cpu_capability": d["torch"]["cpu_capability"],
                  "env": d["env"]}))
"""


def _paths() -> dict[str, dict]:
    """Each path's variables, set on top of ``numerics.environment()`` (one thread, no path chosen)."""
    from rr_utils.numerics import EXACT_ENV

    other = {"MKL_CBWR": "SSE4_2", "ATEN_CPU_CAPABILITY": "default"}
    return {"default": {}, "other": other, "exact": dict(EXACT_ENV), "exact, from other": other | EXACT_ENV}


def _run(env_add: dict, rows: int, epochs: int) -> dict:
    from rr_utils.numerics import environment

    env = environment() | env_add
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", _WORKER, str(rows), str(epochs)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"exact-mode benchmark worker failed ({env_add}):\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def committed_exact(ref: str = "HEAD") -> dict | None:
    """The exact section of the committed ``results/bench.json`` and the machine it ran on (None: none there)."""
    from rr_utils.reproduction import committed_json

    try:
        doc = committed_json(ROOT, "results/bench.json", ref)
    except ValueError:
        return None
    sec = (doc or {}).get("sections", {}).get("exact")
    if not sec or "exact" not in sec.get("paths", {}) or "default" not in sec["paths"]:
        return None
    merged = doc.get("merged") or {}
    machine = merged.get("machine_then") if "exact" in merged.get("sections_run", []) else doc.get("machine")
    return {"ref": ref, "rows": sec.get("rows"), "epochs": sec.get("epochs"), "machine": machine,
            "exact_sha256": sec["paths"]["exact"]["sha256"], "default_sha256": sec["paths"]["default"]["sha256"],
            "default_capability": sec["paths"]["default"].get("cpu_capability")}


def _machine_name(m: dict | None) -> str:
    m = m or {}
    return f"{m.get('cpu_model', '?')} ({', '.join(m.get('simd') or []) or 'simd ?'})"


def run(smoke: bool = False, log=print) -> tuple[list[Row], dict]:
    rows_, epochs, rounds = (200, 1, 1) if smoke else (8000, 2, 2)
    paths = _paths()
    if smoke:  # proves the code runs; tests/test_numerics.py compares the paths' bits
        paths = {k: paths[k] for k in ("default", "exact")}
    res: dict = {}
    for r in range(rounds):  # interleaved: a busy machine slows every path alike
        for name, env in paths.items():
            got = _run(env, rows_, epochs)
            if name not in res or got["epoch_s"] < res[name]["epoch_s"]:
                res[name] = got | {"set": env}
            log(f"  exact {name} round {r}: {fmt_s(got['epoch_s'])} per epoch, weights {got['sha256']}")
    size = f"784-500, {rows_} digits, {epochs} ep, 1 thread"
    d, e = res["default"], res["exact"]
    cost = Row("exact", "epoch: exact mode vs this machine's default path", size, fmt_s(e["epoch_s"]),
               fmt_s(d["epoch_s"]), e["epoch_s"] / d["epoch_s"], "", None,
               note="ratio = exact time / default time (the cost of exact mode; > 1 is slower)")
    if smoke:
        return [cost], {"rows": rows_, "epochs": epochs, "rounds": rounds, "paths": res}
    o, eo = res["other"], res["exact, from other"]
    paths_differ = d["sha256"] != o["sha256"]
    exact_agree = e["sha256"] == eo["sha256"]
    out = [
        cost,
        Row("exact", "bits: two code paths of this machine, default mode", size, d["sha256"], o["sha256"], None,
            "differ", paths_differ,
            note=f"default path (capability {d['cpu_capability']}) against MKL_CBWR=SSE4_2 with "
                 f"ATEN_CPU_CAPABILITY=default (capability {o['cpu_capability']}): the weights' hashes"),
        Row("exact", "bits: exact mode started from either path", size, e["sha256"], eo["sha256"], None,
            "identical", exact_agree, note="exact mode pins MKL_CBWR=COMPATIBLE and ATEN_CPU_CAPABILITY=default"),
    ]
    data = {"rows": rows_, "epochs": epochs, "rounds": rounds, "paths": res,
            "cost_ratio": e["epoch_s"] / d["epoch_s"], "paths_differ": paths_differ, "exact_agree": exact_agree}
    old = committed_exact()
    if old and (old["rows"], old["epochs"]) == (rows_, epochs):
        here = machine_info()
        other_path = d["sha256"] != old["default_sha256"]
        same = e["sha256"] == old["exact_sha256"]
        data["committed"] = old | {"same_exact_bits": same, "other_default_path": other_path, "machine_here": here}
        out.append(Row(
            "exact", "bits: exact mode here vs the committed run", size, e["sha256"], old["exact_sha256"], None,
            "identical", same,
            note=(f"here {_machine_name(here)}, default capability {d['cpu_capability']}; committed "
                  f"results/bench.json: {_machine_name(old['machine'])}, default capability "
                  f"{old['default_capability']}. The default paths' hashes "
                  + ("differ: a test of exact mode across two code paths" if other_path else
                     "agree: the committed run's own path, so no test across machines"))))
    return out, data
