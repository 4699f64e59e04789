"""The reproduction report: this run's results against the committed ones (git HEAD) -> results/reproduction.json.

Run by the workflow after every full-mode run of the notebooks (rule reproduction) and by
`make report`; rr_utils.reproduction says what is compared and with which tolerances. It prints
a short table: per results file the numbers identical / within tolerance / beyond it and the
largest deviation (in seed-to-seed standard deviations where the results carry seeds), then
every verdict that flipped. Numbers that moved never fail it; a checkout without git does (exit
2), after writing a report that says there is no committed baseline.

    python workflow/scripts/reproduction.py                # compare results/ with HEAD, write, print
    python workflow/scripts/reproduction.py --show         # print the table of results/reproduction.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from a checkout whose rr_utils is not installed
    sys.path.insert(0, str(ROOT))

from rr_utils import reproduction as R  # noqa: E402
from rr_utils.io import atomic_write_json  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python workflow/scripts/reproduction.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"), help="the run's results folder (results)")
    ap.add_argument("--ref", default="HEAD", help="the commit to compare with (HEAD)")
    ap.add_argument("--out", type=Path, default=None, help="the report (default: RESULTS/reproduction.json)")
    ap.add_argument("--show", action="store_true", help="print the table of the report at --out; compare nothing")
    ap.add_argument("--no-machine", action="store_true", help="leave the machine out (no torch import)")
    a = ap.parse_args(argv)
    out = a.out or a.results / "reproduction.json"
    if a.show:
        if not out.is_file():
            print(f"reproduction: {out}: no report yet (make report writes one)", file=sys.stderr)
            return 2
        print(R.table(json.loads(out.read_text(encoding="utf-8"))))
        return 0
    if not a.results.is_dir():
        print(f"reproduction: {a.results}: no such results folder", file=sys.stderr)
        return 2
    doc = R.report(a.results, a.ref, with_machine=not a.no_machine)
    atomic_write_json(out, doc)
    print(R.table(doc))
    print(f"(written to {out})")
    if doc["baseline"] is None:
        print(f"reproduction: {doc['error']}", file=sys.stderr)
        return 2
    unreadable = doc["summary"]["unreadable"]
    if unreadable:
        print(f"reproduction: results files that are not JSON: {', '.join(unreadable)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
