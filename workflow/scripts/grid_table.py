"""The grid's table (rule grid): <out>.csv, one row per network, layer and split, and <out>.json
(the grid and each network's provenance: cache key, where it came from, times, threads, host, commit)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from rr_utils.artifacts import git_commit  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--done", required=True)
    ap.add_argument("--nets", nargs="+", required=True)
    ap.add_argument("--out", required=True, help="path without extension")
    a = ap.parse_args(argv)
    done = Path(a.done)
    table = pd.concat([pd.read_csv(done / "grid" / f"{n}.csv") for n in a.nets], ignore_index=True)
    networks = [json.loads((done / "networks" / f"{n}.json").read_text()) for n in a.nets]
    out = Path(a.out)
    for path, text in ((out.with_suffix(".csv"), table.to_csv(index=False)),
                       (out.with_suffix(".json"), json.dumps({"git_commit": git_commit(), "networks": networks},
                                                             indent=1) + "\n")):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    print(f"[grid] {len(networks)} networks, {len(table)} rows -> {out}.csv, {out}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
