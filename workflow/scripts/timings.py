"""Wall and CPU times of the workflow's jobs -> results/timings.json (rule timings).

Each notebook run and each training job leaves a marker with its times; a run
that did not run this time keeps the time of its last run (the file's
previous entry).  ``machine`` says where the newest times were measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--done", required=True, help="the markers' folder (results/.done)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    done, out = Path(a.done), Path(a.out)
    old = _load(out)
    notebooks = dict(old.get("notebooks", {}))
    networks = dict(old.get("networks", {}))
    for m in sorted((done / "notebooks").glob("*.json")):
        rec = _load(m)
        if "wall_s" in rec:
            notebooks[rec["run"]] = rec["wall_s"]
    for m in sorted((done / "networks").glob("*.json")):
        rec = _load(m)
        if "wall_s" in rec:
            networks[rec["network"]] = {k: rec[k] for k in ("source", "epochs_trained", "wall_s", "cpu_s", "threads",
                                                            "rows")} | {"dataset": rec["spec"]["dataset"]}
    # Per data set, the networks that were trained (not read from the model cache) and their CPU time.
    training = {}
    for name, v in sorted(networks.items()):
        if v["source"] != "model-cache":
            t = training.setdefault(v["dataset"], {"networks": 0, "cpu_s": 0.0})
            t["networks"] += 1
            t["cpu_s"] = round(t["cpu_s"] + v["cpu_s"], 1)
    doc = {"notebooks": notebooks, "total_s": round(sum(notebooks.values()), 1), "networks": networks,
           "training": training,
           "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} "
                      f"{platform.python_version()}"}
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
