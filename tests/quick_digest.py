"""The quick run's numbers against the committed expected values (tests/expected/quick_digest.json).

    python tests/quick_digest.py check  [--results DIR]   # make test, after the quick notebooks
    python tests/quick_digest.py update [--results DIR]   # make expected: rewrite the digest, print what moved
    python tests/quick_digest.py order                    # the notebooks in dependency order (metadata.rr.depends)

Every quick run (``make test``) writes ``results/quick/**/*.json``.  The digest keeps every number,
boolean, null and short string of those files, keyed by JSON pointer (RFC 6901: ``/`` between keys,
``~1`` for a ``/`` inside a key), per file.  ``check`` compares a fresh run with it, quantity by
quantity, with the tolerance of the first rule of ``TOLERANCES`` whose pattern matches the pointer:

* exact: integers, booleans, nulls, strings (verdicts, decisions, counts, sizes, seeds);
* ``rounded``, the default for floats: the notebooks write 6 decimals, and a computation that is
  deterministic for a thread count repeats them; 2e-6 absolute admits a last-digit flip at a rounding
  boundary and nothing else;
* ``threads``: quantities downstream of a multi-threaded float reduction in the notebook's own
  process whose thread count follows the machine (none at present: every training pins its threads,
  the workflow's jobs and notebook 09 alike).

Left out: run-time facts that no computation decides (``IGNORED``: wall times, CPU seconds, hosts,
versions, cache keys and code hashes) and prose (strings over ``MAX_STRING`` characters).
A quantity missing from either side is a difference too: a renamed key must be re-recorded.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIGEST = ROOT / "tests" / "expected" / "quick_digest.json"
QUICK = Path(os.environ.get("RR_RESULTS_DIR", ROOT / "results")) / "quick"  # as rr_utils.artifacts.results_dir
NOTEBOOKS = ROOT / "notebooks"
MAX_STRING = 60
SKIP_FILES = ("timings.json", "bench.json", "gpu.json")

# Pointers (regex, searched) whose values no computation decides.
IGNORED = re.compile(r"(^|/)(\w*seconds|wall_s|cpu_s|elapsed_s|host|hostname|environment|versions?|platform|date|"
                     r"timestamp|cache_key|code_sha256|recipe_sha256|git|commit|path|paths|source)(/|$)")

# (name, pointer regex, absolute tolerance, relative tolerance, why): the first match wins.
TOLERANCES = [
    ("rounded", r"", 2e-6, 0.0, "written with 6 decimals by a computation that repeats for a thread count"),
]


def escape(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def flatten(doc, prefix: str = "") -> dict:
    """{JSON pointer: value} of every kept leaf; lists of numbers stay one entry (a list)."""
    out = {}
    if IGNORED.search(prefix):
        return out
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}/{escape(k)}"))
    elif isinstance(doc, list):
        if doc and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in doc):
            out[prefix] = list(doc)
        else:
            for i, v in enumerate(doc):
                out.update(flatten(v, f"{prefix}/{i}"))
    elif isinstance(doc, str):
        if len(doc) <= MAX_STRING:
            out[prefix] = doc
    else:
        out[prefix] = doc
    return out


def collect(results: Path = QUICK) -> dict:
    """{file relative to the results folder: flattened numbers} of every results JSON there."""
    files = {}
    for p in sorted(results.rglob("*.json")):
        rel = p.relative_to(results).as_posix()
        if any(part.startswith(".") or part == "executed" for part in rel.split("/")[:-1]) or p.name in SKIP_FILES:
            continue  # the workflow's job markers and executed copies; timings: wall times only
        files[rel] = flatten(json.loads(p.read_text()))
    return files


def tolerance(pointer: str) -> tuple[str, float, float]:
    for name, pattern, abs_tol, rel_tol, _ in TOLERANCES:
        if re.search(pattern, pointer):
            return name, abs_tol, rel_tol
    raise AssertionError("TOLERANCES ends with a catch-all")


def _same_scalar(a, b, abs_tol: float, rel_tol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return type(a) is type(b) and a == b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        return a == b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= abs_tol + rel_tol * abs(b)


def same(expected, got, pointer: str) -> bool:
    _, abs_tol, rel_tol = tolerance(pointer)
    if isinstance(expected, list) or isinstance(got, list):
        return (isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got)
                and all(_same_scalar(g, e, abs_tol, rel_tol) for e, g in zip(expected, got)))
    return _same_scalar(got, expected, abs_tol, rel_tol)


def differences(expected: dict, fresh: dict) -> list[str]:
    """One line per file or quantity that moved, appeared or disappeared (empty: the run matches)."""
    lines = []
    for f in sorted(set(expected) | set(fresh)):
        if f not in fresh:
            lines.append(f"{f}: missing from this run (expected {len(expected[f])} quantities)")
            continue
        if f not in expected:
            lines.append(f"{f}: new file ({len(fresh[f])} quantities), not in the expected values")
            continue
        e, g = expected[f], fresh[f]
        for k in sorted(set(e) | set(g)):
            if k not in g:
                lines.append(f"{f}{k}: missing (expected {e[k]!r})")
            elif k not in e:
                lines.append(f"{f}{k}: new quantity {g[k]!r}")
            elif not same(e[k], g[k], k):
                name, a, r = tolerance(k)
                numeric = all(isinstance(v, (int, float, list)) and not isinstance(v, bool) for v in (e[k], g[k]))
                how = f"{name}: abs {a:g}, rel {r:g}" if numeric and not (isinstance(e[k], int) and isinstance(g[k], int)) \
                    else "exact"
                lines.append(f"{f}{k}: expected {e[k]!r}, got {g[k]!r} ({how})")
    return lines


def load_digest(path: Path = DIGEST) -> dict:
    return json.loads(path.read_text())["files"]


def write_digest(files: dict, path: Path = DIGEST) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"about": "Expected numbers of the quick run (make test): tests/quick_digest.py; rewrite with `make expected`.",
           "tolerances": [{"name": n, "pattern": p, "abs": a, "rel": r, "why": w} for n, p, a, r, w in TOLERANCES],
           "files": files}
    path.write_text(json.dumps(doc, indent=0, sort_keys=True, ensure_ascii=False, allow_nan=True) + "\n")


def _depends(folder: Path) -> tuple[dict, dict]:
    """The notebooks (stem -> path, name order) and what each declares in metadata.rr.depends."""
    books = {p.stem: p for p in sorted(folder.glob("*.ipynb"))}
    deps = {}
    for stem, p in books.items():
        meta = json.loads(p.read_text()).get("metadata", {}).get("rr", {}) or {}
        deps[stem] = list(meta.get("depends", []))
        for d in deps[stem]:
            if d not in books:
                raise ValueError(f"{p.name}: metadata.rr.depends names {d!r}, which is not a notebook here")
    return books, deps


def notebook_lanes(folder: Path = NOTEBOOKS) -> list[list[Path]]:
    """The notebooks as [first, lane A, lane B]: ``first`` runs alone, then the two lanes at once (two cores).

    Lane A is the notebook with the most ancestors and its ancestors (the longest chain of reads); lane B the
    rest. Whatever lane B needs from lane A's notebooks runs first. Each lane keeps the dependency order, and
    no notebook of one lane reads the other's results.
    """
    order = [p.stem for p in notebook_order(folder)]
    books, deps = _depends(folder)
    anc: dict = {}
    for s in order:  # dependencies come first in ``order``
        anc[s] = set(deps[s]).union(*(anc[d] for d in deps[s]))
    deepest = max(order, key=lambda s: (len(anc[s]), -order.index(s)))
    a = anc[deepest] | {deepest}
    b = [s for s in order if s not in a]
    shared = set().union(*(anc[s] for s in b)) & a
    first = shared.union(*(anc[s] for s in shared))
    return [[books[s] for s in order if s in first], [books[s] for s in order if s in a - first],
            [books[s] for s in b]]


def notebook_order(folder: Path = NOTEBOOKS) -> list[Path]:
    """Notebooks in an order that runs each after those it declares in metadata.rr.depends (name order otherwise)."""
    books, deps = _depends(folder)
    order, done, visiting = [], set(), set()

    def visit(stem):
        if stem in done:
            return
        if stem in visiting:
            raise ValueError(f"notebooks: a dependency cycle through {stem}")
        visiting.add(stem)
        for d in deps[stem]:
            visit(d)
        visiting.discard(stem)
        done.add(stem)
        order.append(books[stem])

    for stem in books:
        visit(stem)
    return order


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=("check", "update", "order", "lanes"))
    ap.add_argument("--results", type=Path, default=QUICK, help="the quick results folder (default results/quick)")
    ap.add_argument("--digest", type=Path, default=DIGEST)
    args = ap.parse_args(argv)
    if args.command == "order":
        print(" ".join(str(p.relative_to(ROOT)) for p in notebook_order()))
        return 0
    if args.command == "lanes":  # three lines: first, lane A, lane B (tests/quick_notebooks.sh)
        for lane in notebook_lanes():
            print(" ".join(str(p.relative_to(ROOT)) for p in lane))
        return 0
    fresh = collect(args.results)
    if not fresh:
        print(f"quick_digest: no results under {args.results}: run the quick notebooks first", file=sys.stderr)
        return 2
    old = load_digest(args.digest) if args.digest.exists() else {}
    diff = differences(old, fresh)
    n = sum(len(v) for v in fresh.values())
    if args.command == "update":
        write_digest(fresh, args.digest)
        print(f"quick_digest: {_show(args.digest)} rewritten: {len(fresh)} files, {n} quantities; "
              f"{len(diff)} moved, appeared or disappeared" + (":" if diff else "."))
        for line in diff:
            print("  " + line)
        return 0
    if diff:
        print(f"quick_digest: {len(diff)} of the quick run's quantities differ from the expected values "
              f"({_show(args.digest)}):", file=sys.stderr)
        for line in diff[:60]:
            print("  " + line, file=sys.stderr)
        if len(diff) > 60:
            print(f"  ... and {len(diff) - 60} more", file=sys.stderr)
        print("An intended change: `make expected` reruns the quick notebooks, rewrites the digest and prints "
              "what moved; commit it with the change.", file=sys.stderr)
        return 1
    print(f"quick_digest: {len(fresh)} files, {n} quantities match the expected values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
