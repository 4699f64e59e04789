"""The README's numbers, read from ``results/*.json``: check them, or write them.

A number in README.md that comes from the results is marked with an HTML
comment (invisible on GitHub) naming its source::

    relevance peaks at the <!--n 04_relevance_across_layers.json C1.relevance_peak_units d-->15<!--/n-->-unit layer

``<!--n FILE PATH [FORMAT]-->TEXT<!--/n-->``: FILE is a results file
(``results/FILE``), PATH picks a value in it, FORMAT turns it into TEXT.

PATH is dotted: ``a.b.0`` (keys and list indices); ``list[key=value]`` keeps
the first element whose ``key`` is ``value`` (``table[split=train,units=30]``
needs both); ``list[*]`` keeps them all, so the rest of the path applies to
each and the value is a list; ``list[*key=value]`` keeps every element whose
``key`` is ``value`` (a list, as ``[*]``).

FORMAT is a Python format spec (``.3f``, ``d``, ``,d``, ``.0%``; default
``g``), optionally after an aggregate of a list and a colon (not a bar, which
would split a markdown table): ``min:.2f``, ``max:.2f``, ``range:.3f``
("0.013–0.017", or one number when all agree), ``or:d`` / ``and:d`` (the
distinct values, sorted: "15 or 20"), ``count`` (how many are true), ``len``.  ``verdict`` writes a true/false as "holds" /
"does not hold", ``held`` as "held" / "did not hold".

A whole table can be generated too: ``<!--table bench-targets-->`` ...
``<!--/table-->`` holds the benchmark targets of ``results/bench.json`` as
``benchmarks.common.table`` prints them.

    python -m rr_utils.readme_numbers --check   # exit 1 and list every number that differs from results/
    python -m rr_utils.readme_numbers --write   # rewrite them from results/ (README.md, atomically)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from rr_utils.artifacts import ROOT
from rr_utils.io import atomic_write_text

__all__ = ["Marker", "find_markers", "resolve", "format_value", "expected_text", "check", "write", "main"]

_NUMBER = re.compile(r"<!--n (?P<file>[^\s>]+) (?P<path>[^\s>]+?)(?: (?P<fmt>[^\s>]+?))?-->(?P<text>.*?)<!--/n-->",
                     re.S)
_TABLE = re.compile(r"(?P<open><!--table (?P<name>\S+)-->\n)(?P<text>.*?)(?P<close>\n<!--/table-->)", re.S)


@dataclass(frozen=True)
class Marker:
    """One marked number (or table) of the README: its source, its format and the text there now."""

    kind: str  # "n" or "table"
    file: str
    path: str
    fmt: str
    text: str
    start: int
    end: int  # span of ``text`` in the README
    line: int

    def where(self) -> str:
        return f"README.md:{self.line}: {self.file} {self.path}" + (f" {self.fmt}" if self.fmt else "")


def find_markers(readme: str) -> list[Marker]:
    """Every marked number and table of ``readme``, in order."""
    out = []
    for m in _NUMBER.finditer(readme):
        out.append(Marker("n", m["file"], m["path"], m["fmt"] or "", m["text"], m.start("text"), m.end("text"),
                          readme.count("\n", 0, m.start()) + 1))
    for m in _TABLE.finditer(readme):
        out.append(Marker("table", "bench.json", m["name"], "", m["text"], m.start("text"), m.end("text"),
                          readme.count("\n", 0, m.start()) + 1))
    return sorted(out, key=lambda mk: mk.start)


def _steps(path: str) -> list[str]:
    """'a.b[k=v].c[*].d' -> ['a', 'b', '[k=v]', 'c', '[*]', 'd']."""
    steps = []
    for part in re.findall(r"\[[^\]]*\]|[^.\[\]]+", path):
        steps.append(part)
    if not steps or "".join(steps) != path.replace(".", ""):
        raise ValueError(f"{path!r}: not a path (keys separated by dots, [key=value] or [*] after a list)")
    return steps


def resolve(doc, path: str):
    """The value at ``path`` in ``doc`` (see the module doc); KeyError naming the step that fails."""
    values, many = [doc], False
    for step in _steps(path):
        nxt = []
        for v in values:
            if step == "[*]":
                if not isinstance(v, list):
                    raise KeyError(f"{path}: [*] applied to a {type(v).__name__}, not a list")
                nxt.extend(v)
                many = True
            elif step.startswith("["):
                every = step.startswith("[*")
                conds = [c.split("=", 1) for c in step[2 if every else 1:-1].split(",")]
                if not isinstance(v, list) or any(len(c) != 2 for c in conds):
                    raise KeyError(f"{path}: {step} needs a list and key=value conditions")
                hits = [e for e in v if isinstance(e, dict) and all(str(e.get(k)) == val for k, val in conds)]
                if not hits:
                    raise KeyError(f"{path}: no element with {step[2 if every else 1:-1]}")
                if every:
                    nxt.extend(hits)
                    many = True
                else:
                    nxt.append(hits[0])
            elif isinstance(v, dict):
                if step not in v:
                    raise KeyError(f"{path}: no key {step!r} (have {sorted(v)[:12]})")
                nxt.append(v[step])
            elif isinstance(v, list) and re.fullmatch(r"-?\d+", step):
                try:
                    nxt.append(v[int(step)])
                except IndexError:
                    raise KeyError(f"{path}: index {step} out of range ({len(v)} elements)") from None
            else:
                raise KeyError(f"{path}: cannot take {step!r} of a {type(v).__name__}")
        values = nxt
    return values if many else values[0]


def _spec(value, spec: str) -> str:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"cannot format {value!r} as a number ({spec!r}); use verdict, held or count")
    if spec.endswith("d") and isinstance(value, float) and value.is_integer():
        value = int(value)
    return format(value, spec or "g")


def format_value(value, fmt: str = "") -> str:
    """``value`` written as FORMAT says (see the module doc)."""
    if fmt in ("verdict", "held"):
        if not isinstance(value, bool):
            raise ValueError(f"{fmt}: expected true/false, got {value!r}")
        return {"verdict": ("holds", "does not hold"), "held": ("held", "did not hold")}[fmt][0 if value else 1]
    agg, _, spec = fmt.partition(":") if ":" in fmt else ("", "", fmt)
    if agg == "" and fmt in ("count", "len"):
        agg, spec = fmt, ""
    if agg:
        if not isinstance(value, list):
            raise ValueError(f"{agg}: expected a list (a path with [*]), got {value!r}")
        if agg == "count":
            return str(sum(bool(v) for v in value))
        if agg == "len":
            return str(len(value))
        vals = [v for v in value if v is not None]
        if not vals:
            raise ValueError(f"{agg}: no values")
        if agg == "min":
            return _spec(min(vals), spec)
        if agg == "max":
            return _spec(max(vals), spec)
        if agg == "range":
            lo, hi = _spec(min(vals), spec), _spec(max(vals), spec)
            return lo if lo == hi else f"{lo}–{hi}"
        if agg in ("or", "and"):
            words = list(dict.fromkeys(_spec(v, spec) for v in sorted(vals)))
            return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" {agg} " + words[-1]
        raise ValueError(f"{agg!r}: unknown aggregate (min, max, range, or, and, count, len)")
    if isinstance(value, list):
        raise ValueError(f"a list needs an aggregate (min:, max:, range:, or:, count, len), got format {fmt!r}")
    return _spec(value, spec)


def _table(name: str, results: Path) -> str:
    if name != "bench-targets":
        raise ValueError(f"table {name!r}: unknown (bench-targets)")
    if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not an installed package
        sys.path.insert(0, str(ROOT))
    from benchmarks.common import Row, table

    doc = _load(results, "bench.json")
    rows = [Row(**dict(r, note="")) for r in doc["rows"] if r.get("met") is not None]
    return table(rows)


def _load(results: Path, name: str):
    path = results / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such results file")
    return json.loads(path.read_text(encoding="utf-8"))


def expected_text(marker: Marker, results: Path) -> str:
    """What the README should say at ``marker``, from the results in ``results``."""
    if marker.kind == "table":
        return _table(marker.path, results)
    return format_value(resolve(_load(results, marker.file), marker.path), marker.fmt)


def check(readme_path: Path | None = None, results: Path | None = None) -> list[str]:
    """One line per marked number that differs from the results (or cannot be read); [] when all agree."""
    readme_path = Path(readme_path) if readme_path else ROOT / "README.md"
    results = Path(results) if results else ROOT / "results"
    problems = []
    for mk in find_markers(readme_path.read_text(encoding="utf-8")):
        try:
            want = expected_text(mk, results)
        except (OSError, KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
            problems.append(f"{mk.where()}: {exc}")
            continue
        if want != mk.text:
            shown = (lambda t: t if len(t) < 60 else t[:57] + "...")
            problems.append(f"{mk.where()}: README says {shown(mk.text)!r}, results say {shown(want)!r}")
    return problems


def write(readme_path: Path | None = None, results: Path | None = None) -> int:
    """Rewrite every marked number from the results; returns how many changed. Any unreadable one: nothing written."""
    readme_path = Path(readme_path) if readme_path else ROOT / "README.md"
    results = Path(results) if results else ROOT / "results"
    text = readme_path.read_text(encoding="utf-8")
    pieces, pos, changed = [], 0, 0
    for mk in find_markers(text):
        want = expected_text(mk, results)
        changed += want != mk.text
        pieces += [text[pos:mk.start], want]
        pos = mk.end
    pieces.append(text[pos:])
    if changed:
        atomic_write_text(readme_path, "".join(pieces))
    return changed


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rr_utils.readme_numbers", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--check", action="store_true", help="list the numbers that differ from results/ (exit 1)")
    group.add_argument("--write", action="store_true", help="rewrite the marked numbers from results/")
    ap.add_argument("--readme", type=Path, default=None, help="default: README.md")
    ap.add_argument("--results", type=Path, default=None, help="default: results/")
    args = ap.parse_args(argv)
    if args.check:
        problems = check(args.readme, args.results)
        for p in problems:
            print(p)
        n = len(find_markers((args.readme or ROOT / "README.md").read_text(encoding="utf-8")))
        print(f"{n - len(problems)}/{n} marked numbers agree with results/")
        return 1 if problems else 0
    try:
        changed = write(args.readme, args.results)
    except (OSError, KeyError, ValueError, TypeError, json.JSONDecodeError) as exc:
        print(f"readme_numbers: error: {exc}", file=sys.stderr)
        return 2
    print(f"rewrote {changed} marked numbers from results/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
