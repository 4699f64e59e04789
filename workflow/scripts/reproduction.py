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
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from a checkout whose rr_utils is not installed
    sys.path.insert(0, str(ROOT))

from rr_utils import reproduction as R  # noqa: E402
from rr_utils.io import atomic_write_json  # noqa: E402
from rr_utils.numerics import describe  # noqa: E402

machine = describe  # rr_utils.numerics.describe: the one description of a machine's numerical path


def _committed_machine(results: Path, ref: str) -> dict | None:
    """The machine of the report committed at ``ref`` (where the committed results were last compared)."""
    try:
        return (R.committed_json(results, "./reproduction.json", ref) or {}).get("machine")
    except (ValueError, AttributeError):
        return None


def report(results: Path, ref: str = "HEAD", with_machine: bool = True, written=None,
           left_out: dict | None = None) -> dict:
    """R.compare's report plus the time, the machine and the tolerances; without git: baseline None and why.

    ``baseline.machine`` is the machine of the report committed at ``ref``, if any: where the committed
    results were last reported on (`make reproduce` writes both), the machine to compare this one with.
    ``written``: the results files the run wrote (None: compare every one); ``left_out``: the runs the
    workflow left out and why (``scope`` of the report).
    """
    scope = {"written": None if written is None else sorted(written), "left_out": dict(left_out or {})}
    try:
        doc = R.compare(results, ref, written=written) | {"error": None}
        doc["baseline"]["machine"] = _committed_machine(results, ref)
    except R.NoBaseline as exc:
        doc = {"baseline": None, "error": str(exc), "summary": None, "files": [], "verdicts": []}
    return {"created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine() if with_machine else None, "tolerances": R.tolerances(), "scope": scope} | doc


def networks_obtained(markers) -> dict:
    """How the run's networks were obtained, from their training jobs' markers: counts per ``source``
    (trained, resumed, model-cache) and the CPU time of those trained or resumed."""
    out = {"networks": 0, "cpu_s_training": 0.0}
    for m in markers:
        try:
            rec = json.loads(Path(m).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"--networks: {m}: not a training job's marker ({exc})") from None
        src = rec.get("source", "unknown")
        out["networks"] += 1
        out[src] = out.get(src, 0) + 1
        if src != "model-cache":
            out["cpu_s_training"] = round(out["cpu_s_training"] + float(rec.get("cpu_s") or 0.0), 1)
    return out


def _num(x, spec=".3g") -> str:
    return "-" if x is None else format(x, spec)


def table(doc: dict) -> str:
    """The report as a short text table: per file the counts and largest deviation, then the flipped verdicts."""
    lines = []
    for label, m in (("machine", doc.get("machine")), ("committed report's machine",
                                                       (doc.get("baseline") or {}).get("machine"))):
        if m:
            t = m.get("torch") or {}
            lines.append(f"{label}: {m.get('cpu_model')}, {m.get('cores')} cores; torch {t.get('version')} "
                         f"(BLAS {t.get('blas')}, capability {t.get('cpu_capability')}, threads {t.get('threads')}, "
                         f"MKL_CBWR={(m.get('env') or {}).get('MKL_CBWR')})")
    if doc.get("baseline") is None:
        return "\n".join([f"reproduction report: NO BASELINE: {doc.get('error')}", *lines])
    b = doc["baseline"]
    lines.insert(0, f"reproduction report: this run's results against git {b['ref']} {b['commit'][:10]} "
                    f"({b['date'][:10]})")
    w = max([len(f["file"]) for f in doc["files"]] + [4])
    lines.append(f"{'file':<{w}}  {'numbers':>7}  {'identical':>9}  {'within':>6}  {'beyond':>6}  "
                 f"{'max sd':>6}  {'max |d|':>8}  {'other':>5}")
    for f in doc["files"]:
        if f["status"] == "kept":  # listed once, below
            continue
        if f["status"] != "compared":
            lines.append(f"{f['file']:<{w}}  {f['status'].upper()}: {f['note']}")
            continue
        other = f["changed"] + f["added"] + f["removed"]
        lines.append(f"{f['file']:<{w}}  {f['numbers']:>7}  {f['identical']:>9}  {f['within']:>6}  "
                     f"{f['beyond']:>6}  {_num(f['max_sd'], '.2f'):>6}  {_num(f['max_abs']):>8}  "
                     f"{other if other else '-':>5}")
    s = doc["summary"]
    lines.append(f"numbers: {s['numbers']} compared, {s['identical']} identical, {s['within']} within tolerance, "
                 f"{s['beyond']} beyond (largest: {_num(s['max_sd'], '.2f')} seed sd)")
    top = sorted(((f["file"], d) for f in doc["files"] for d in f["largest"] + f["largest_abs"] if d["beyond"]),
                 key=lambda fd: (fd[1]["z"] is None, -abs(fd[1]["z"] or 0)))[:R.N_LARGEST]
    for fname, d in top:
        size = f"{d['z']:+.2f} sd" if d["z"] is not None else f"{d['delta']:+.3g}"
        where = f" ({d['where']})" if d.get("where") else ""
        lines.append(f"  {fname}  {d['path']}{where}: {d['committed']:.8g} -> {d['fresh']:.8g} ({size})")
    kept = [f["file"] for f in doc["files"] if f["status"] == "kept"]
    if kept:
        lines.append(f"not written by this run, not compared ({len(kept)}): {', '.join(kept)}")
    nets = (doc.get("scope") or {}).get("networks")
    if nets:
        how = ", ".join(f"{nets[k]} {k}" for k in ("trained", "resumed", "model-cache", "unknown") if nets.get(k))
        lines.append(f"networks: {nets['networks']} ({how}; {nets['cpu_s_training'] / 3600:.2f} CPU-hours of training)")
    left = (doc.get("scope") or {}).get("left_out") or {}
    if left:
        lines.append(f"runs left out ({len(left)}): " + "; ".join(f"{r} ({why})" for r, why in left.items()))
    flipped = [v for v in doc["verdicts"] if v["flipped"]]
    if not flipped:
        lines.append(f"verdicts: {s['verdicts']} compared, no verdict flipped")
    else:
        lines.append(f"verdicts: {s['verdicts']} compared, {len(flipped)} FLIPPED:")
        lines += [f"  FLIPPED  {v['file']}  {v['path']}  ({v['claim'] or '-'}"
                  f"{'' if v['seed'] is None else ', seed ' + str(v['seed'])}): {v['committed']} -> {v['fresh']}"
                  for v in flipped]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python workflow/scripts/reproduction.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results"), help="the run's results folder (results)")
    ap.add_argument("--ref", default="HEAD", help="the commit to compare with (HEAD)")
    ap.add_argument("--out", type=Path, default=None, help="the report (default: RESULTS/reproduction.json)")
    ap.add_argument("--show", action="store_true", help="print the table of the report at --out; compare nothing")
    ap.add_argument("--no-machine", action="store_true", help="leave the machine out (no torch import)")
    ap.add_argument("--written", nargs="*", default=None, metavar="FILE",
                    help="the results files this run wrote (the workflow passes them); others are kept, not "
                         "compared (default: compare every file)")
    ap.add_argument("--networks", nargs="*", default=None, metavar="MARKER",
                    help="the training jobs' markers of the run's networks: the report counts how each was "
                         "obtained (trained, resumed, from the model cache)")
    ap.add_argument("--left-out", default=None, metavar="JSON",
                    help="the runs the workflow left out, as a JSON object run -> why (recorded in the report)")
    a = ap.parse_args(argv)
    out = a.out or a.results / "reproduction.json"
    if a.show:
        if not out.is_file():
            print(f"reproduction: {out}: no report yet (`make report` writes one)", file=sys.stderr)
            return 2
        print(table(json.loads(out.read_text(encoding="utf-8"))))
        return 0
    if not a.results.is_dir():
        print(f"reproduction: {a.results}: no such results folder", file=sys.stderr)
        return 2
    try:
        left_out = json.loads(a.left_out) if a.left_out else {}
        if not isinstance(left_out, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        print(f"reproduction: --left-out: expected a JSON object run -> why, got {a.left_out!r} ({exc})",
              file=sys.stderr)
        return 2
    doc = report(a.results, a.ref, with_machine=not a.no_machine, written=a.written, left_out=left_out)
    if a.networks is not None:
        try:
            doc["scope"]["networks"] = networks_obtained(a.networks)
        except ValueError as exc:
            print(f"reproduction: {exc}", file=sys.stderr)
            return 2
    atomic_write_json(out, doc)
    print(table(doc))
    print(f"(written to {out})")
    if doc["baseline"] is None:
        print(f"reproduction: {doc['error']}", file=sys.stderr)
        return 2
    if doc["summary"]["unreadable"]:
        print(f"reproduction: results files that are not JSON: {', '.join(doc['summary']['unreadable'])}",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
