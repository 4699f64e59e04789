"""The reproduction report: a run's results against the committed ones (git HEAD).

``make reproduce`` ends with :func:`compare` (``workflow/scripts/reproduction.py``,
also ``make report``): every results file the run's notebooks wrote (``results/*.json``,
``results/fashion-mnist/*.json``) is read next to the same file at git ``HEAD`` and each
number and verdict is compared; one it did not write (``DATASETS=mnist``, or another
tool's output such as ``code_paths.json``) is listed as *kept*, not compared.  The report (``results/reproduction.json``)
says, per file, how many numbers are identical, within tolerance and beyond it,
the largest deviations with their JSON paths, every verdict committed against
fresh (flipped or not), and the machine the run ran on.

What counts as a deviation
--------------------------
*identical*
    The same value (``==``; NaN equals NaN).
*seed-to-seed spread*
    Where the committed results carry several network seeds, a number's
    deviation is given in units of the seed-to-seed standard deviation (``sd``,
    ddof 1, from the committed file) of the same quantity at the same place:

    - lists of per-seed records, i.e. a list under the key ``per_seed``
      (``claims.json``: ``claims[i].evidence.per_seed``) or a list whose every
      element has a ``seed`` (``layers.json``: ``layers``, ``08_*``: ``fits``,
      ``scores``).  The records are grouped by their identity keys
      (:data:`IDENTITY`: split, depth, units, ...); a number's sd is that of the
      same JSON path over the records of its group (e.g. ``H_s`` of the depth-3
      train layer over the seeds).
    - ``effects_over_seeds`` (``claims.json``): ``mean``, ``lo`` and ``hi`` of a
      95% t-interval over ``n`` seeds, whose seed sd is
      ``(hi - lo) / 2 / t(0.975, n - 1) * sqrt(n)``.

    Such a number is *within* when ``|fresh - committed| <= 2 sd``
    (:data:`SD_BEYOND`), else *beyond*.  Two seeds of one recipe differ by
    ``sqrt(2)`` sd on average, so a run whose networks' bits differ from the
    committed ones (another CPU, BLAS code path or thread count) has some
    numbers beyond 2 sd by chance: read the largest ``sd`` first.
*stated tolerance*
    Every other number (and one whose sd is zero or undefined) is *within* when
    ``|fresh - committed| <= 1e-9 * max(1, |committed|)`` (:data:`ATOL`), else
    *beyond*.  The notebooks round their results to 6 (some to 8) decimals, so
    any real change moves a number by at least 1e-8; what 1e-9 lets through is
    the last bits of unrounded floats, i.e. numbers equal to print precision.

Keys that measure the machine rather than the science (:data:`IGNORED_KEYS`:
times, hosts, thread counts, commits) are skipped and counted as ``ignored``,
and so are the files :data:`SKIP` (timings, benchmarks, the GPU check, the
report itself).  Strings, booleans and nulls are compared for equality
(``changed``), and so is the structure (paths ``added`` or ``removed``).

Verdicts are the leaves named in :data:`VERDICT_KEYS` (``holds_as_stated``,
``holds_vs_null``, ``decision_vs_null``, ``decision_as_stated``, ``meets``,
``calibrated``, a boolean ``holds``) and ``vs_null.decision``, outside the
references' own readings (:data:`NOT_VERDICTS`: sensitivity variants, noise
stacks, comparisons, per-layer readings, calibration draws).  They include each
claim's top-level verdicts and each per-seed record's in ``claims.json``, the
one-network verdicts of notebooks 04-06, the per-network claims of 09 and the
calibration's ``meets``.

The report never fails because numbers moved: it reports.  Without git there is no
baseline: :func:`compare` raises :class:`NoBaseline`, and the script writes a report
that says so.  The script adds the machine (CPU, BLAS, code paths, threads) and prints it.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
from pathlib import Path

__all__ = ["ATOL", "SD_BEYOND", "SKIP", "IGNORED_KEYS", "IDENTITY", "VERDICT_KEYS", "NOT_VERDICTS", "Deviation",
           "FileReport", "Verdict", "NoBaseline", "baseline", "committed_json", "seed_spread", "compare_docs", "verdicts", "compare",
           "tolerances"]

ATOL = 1e-9
SD_BEYOND = 2.0
SKIP = frozenset({"timings.json", "bench.json", "gpu.json", "reproduction.json"})
SUBFOLDERS = ("fashion-mnist",)
IGNORED_KEYS = frozenset({"wall_s", "cpu_s", "seconds", "gen_seconds", "generation_seconds", "train_seconds",
                          "git_commit", "host", "threads", "device"})
IDENTITY = ("id", "claim", "split", "depth", "units", "layer", "M", "steps", "kind", "control", "network", "dataset")
VERDICT_KEYS = frozenset({"holds_as_stated", "holds_vs_null", "decision_vs_null", "decision_as_stated", "meets",
                          "calibrated", "holds"})
NOT_VERDICTS = frozenset({"sensitivity", "weak_references", "noise_stacks", "comparisons", "per_layer",
                          "mu_comparisons_reported_only", "draws", "untrained", "control"})
N_LARGEST = 5


class NoBaseline(RuntimeError):
    """The results folder is not in a git checkout (or its ``HEAD`` cannot be read): nothing to compare with."""


@dataclasses.dataclass
class Deviation:
    """One number that differs: its JSON path, committed and fresh values, and the deviation.

    ``sd`` is the seed-to-seed standard deviation where there is one (``z`` = delta / sd), else None;
    ``where`` names the record it belongs to (``"seed=3 split=test depth=4 units=60"``).
    """

    path: str
    committed: float
    fresh: float
    delta: float
    sd: float | None
    z: float | None
    beyond: bool
    where: str = ""


@dataclasses.dataclass
class FileReport:
    """One results file compared: counts, the largest deviations and the changed non-numbers.

    ``status``: "compared", "new" (not at HEAD), "missing" (not written), "kept" (not compared), "unreadable".
    """

    file: str
    status: str = "compared"
    numbers: int = 0
    identical: int = 0
    within: int = 0
    beyond: int = 0
    with_sd: int = 0
    max_sd: float | None = None
    max_abs: float | None = None
    other: int = 0
    changed: int = 0
    added: int = 0
    removed: int = 0
    ignored: int = 0
    largest: list = dataclasses.field(default_factory=list)
    largest_abs: list = dataclasses.field(default_factory=list)
    changes: list = dataclasses.field(default_factory=list)
    note: str = ""


@dataclasses.dataclass
class Verdict:
    """One verdict, committed against fresh: ``status`` is "same", "flipped", "new" or "gone"."""

    file: str
    path: str
    claim: str | None
    seed: int | None
    name: str
    committed: object
    fresh: object
    status: str

    @property
    def flipped(self) -> bool:
        return self.status == "flipped"


def _fmt_path(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _leaves(doc, path=()):
    """(path, value) of every leaf, and ``(path, IGNORED)`` for each subtree under an ignored key."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k in IGNORED_KEYS:
                yield path + (k,), _IGNORED
            else:
                yield from _leaves(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _leaves(v, path + (i,))
    else:
        yield path, doc


_IGNORED = object()


def _same(a, b) -> bool:
    if _is_number(a) and _is_number(b):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def _sd(values) -> float | None:
    x = [float(v) for v in values if _is_number(v) and math.isfinite(v)]
    if len(x) < 2:
        return None
    m = sum(x) / len(x)
    sd = math.sqrt(sum((v - m) ** 2 for v in x) / (len(x) - 1))
    # a spread of the last bits only (a seed-independent number) is none: any change would be 1e12 sd
    return sd if sd > ATOL * max(1.0, abs(m)) else None


def seed_spread(doc) -> dict[tuple, float]:
    """The seed-to-seed standard deviation of each number of ``doc`` that has one (see the module's docstring).

    Parameters
    ----------
    doc : dict or list
        A committed results file, parsed.

    Returns
    -------
    dict
        JSON path (a tuple of keys and indices) -> sd, for the numbers of per-seed records and of
        ``effects_over_seeds``; numbers without a spread (or with sd 0) are absent.
    """
    out: dict[tuple, float] = {}

    def visit(node, path):
        if isinstance(node, dict):
            if path and path[-1] == "effects_over_seeds":
                for ref, e in node.items():
                    if isinstance(e, dict) and all(_is_number(e.get(k)) for k in ("lo", "hi", "n")) and e["n"] >= 2:
                        from scipy import stats

                        sd = (e["hi"] - e["lo"]) / 2 / float(stats.t.ppf(0.975, e["n"] - 1)) * math.sqrt(e["n"])
                        if sd > 0:
                            out.update({path + (ref, k): sd for k in ("mean", "lo", "hi") if _is_number(e.get(k))})
            for k, v in node.items():
                visit(v, path + (k,))
        elif isinstance(node, list):
            records = [r for r in node if isinstance(r, dict)]
            if records and len(records) == len(node) and (
                    (path and path[-1] == "per_seed") or all("seed" in r for r in records)):
                groups: dict[tuple, list[int]] = {}
                for i, r in enumerate(node):
                    key = tuple((k, json.dumps(r[k])) for k in IDENTITY if k in r)
                    groups.setdefault(key, []).append(i)
                for members in groups.values():
                    values: dict[tuple, list] = {}
                    for i in members:
                        for rel, v in _leaves(node[i]):
                            if rel and rel[0] not in IDENTITY and rel[0] != "seed":
                                values.setdefault(rel, []).append(v)
                    for rel, vs in values.items():
                        sd = _sd(vs)
                        if sd is not None:
                            out.update({path + (i,) + rel: sd for i in members})
            for i, v in enumerate(node):
                visit(v, path + (i,))

    visit(doc, ())
    return out


def compare_docs(name: str, committed, fresh) -> FileReport:
    """Compare one results file, committed against fresh, number by number.

    Parameters
    ----------
    name : str
        The file's name in the report (e.g. ``results/layers.json``).
    committed, fresh : dict or list
        The parsed files.

    Returns
    -------
    FileReport
        Counts of numbers identical / within / beyond, the ``N_LARGEST`` largest deviations in sd
        (``largest``) and, among numbers without a spread, by relative size (``largest_abs``), and the
        first changed non-numbers and paths added or removed (``changes``).
    """
    rep = FileReport(file=name)
    spread = seed_spread(committed)
    old, new = dict(_leaves(committed)), dict(_leaves(fresh))
    devs: list[tuple[tuple, Deviation]] = []
    for path, a in old.items():
        if path not in new:
            rep.removed += 1
            if len(rep.changes) < N_LARGEST:
                rep.changes.append({"path": _fmt_path(path), "committed": _json(a), "fresh": "(absent)"})
            continue
        b = new[path]
        if a is _IGNORED or b is _IGNORED:
            rep.ignored += 1
        elif _is_number(a) and _is_number(b):
            rep.numbers += 1
            sd = spread.get(path)
            rep.with_sd += sd is not None
            if _same(a, b):
                rep.identical += 1
                continue
            delta = float(b) - float(a)
            z = delta / sd if sd is not None and math.isfinite(delta) else None
            beyond = (abs(z) > SD_BEYOND) if z is not None else not (abs(delta) <= ATOL * max(1.0, abs(a)))
            rep.beyond += beyond
            rep.within += not beyond
            devs.append((path, Deviation(_fmt_path(path), a, b, delta, sd, z, bool(beyond))))
        else:
            rep.other += 1
            if not _same(a, b):
                rep.changed += 1
                if len(rep.changes) < N_LARGEST:
                    rep.changes.append({"path": _fmt_path(path), "committed": a, "fresh": b})
    for path, b in new.items():
        if path not in old:
            rep.added += 1
            if len(rep.changes) < N_LARGEST:
                rep.changes.append({"path": _fmt_path(path), "committed": "(absent)", "fresh": _json(b)})
    with_z = sorted((pd for pd in devs if pd[1].z is not None), key=lambda pd: -abs(pd[1].z))
    plain = sorted((pd for pd in devs if pd[1].z is None), key=lambda pd: -abs(pd[1].delta) / max(
        abs(pd[1].committed), 1e-300) if math.isfinite(pd[1].delta) else -math.inf)
    for path, d in with_z[:N_LARGEST] + plain[:N_LARGEST]:  # only those listed: _where walks the document
        d.where = " ".join(f"{k}={v}" for k, v in _where(committed, path).items())
    rep.largest = [dataclasses.asdict(d) for _, d in with_z[:N_LARGEST]]
    rep.largest_abs = [dataclasses.asdict(d) for _, d in plain[:N_LARGEST]]
    rep.max_sd = abs(with_z[0][1].z) if with_z else None
    rep.max_abs = max((abs(d.delta) for _, d in plain), default=None)
    return rep


def _json(v):
    return "(ignored)" if v is _IGNORED else v


def _where(doc, path: tuple) -> dict:
    """Where a leaf sits: its claim (nearest ``id``/``claim`` or a key like C1), seed and the identity
    (:data:`IDENTITY`) of the innermost list element on its path, e.g. ``{"seed": 3, "split": "test", "depth": 4}``."""
    out: dict = {}
    node = doc
    for i, p in enumerate(path):
        if isinstance(p, str) and re.fullmatch(r"C\d+", p):
            out["claim"] = p
        if isinstance(node, dict) and isinstance(node.get("id") or node.get("claim"), str):
            out["claim"] = node.get("id") or node.get("claim")
        if isinstance(node, dict) and i and isinstance(path[i - 1], int):  # an element of a list of records
            out |= {k: node[k] for k in ("seed", *IDENTITY[2:]) if isinstance(node.get(k), (str, int))}
        if isinstance(p, int) and i and path[i - 1] == "per_seed" and isinstance(node, list) and p < len(node):
            out["seed"] = node[p].get("seed", p) if isinstance(node[p], dict) else p
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            break
    return out


def _verdict_leaves(doc) -> dict[tuple, object]:
    out = {}
    for path, v in _leaves(doc):
        if not path or v is _IGNORED or NOT_VERDICTS & {p for p in path if isinstance(p, str)}:
            continue
        key = path[-1]
        if key == "holds" and not (isinstance(v, bool) or v is None):
            continue  # a count of seeds, not a verdict
        if key in VERDICT_KEYS or (key == "decision" and len(path) > 1 and path[-2] == "vs_null"):
            out[path] = v
    return out


def verdicts(name: str, committed, fresh) -> list[Verdict]:
    """Every verdict of one results file, committed against fresh (see the module's docstring).

    Parameters
    ----------
    name : str
        The file's name in the report.
    committed, fresh : dict, list or None
        The parsed files; None for a file absent on that side.

    Returns
    -------
    list of Verdict
        In the committed file's order, then the verdicts only the fresh file has.
    """
    old = _verdict_leaves(committed) if committed is not None else {}
    new = _verdict_leaves(fresh) if fresh is not None else {}
    out = []
    for path in [*old, *(p for p in new if p not in old)]:
        a, b = old.get(path, None), new.get(path, None)
        status = ("new" if path not in old else "gone" if path not in new else
                  "same" if _same(a, b) else "flipped")
        where = _where(committed if path in old else fresh, path)
        claim, seed = where.get("claim"), where.get("seed")
        leaf = "vs_null.decision" if path[-1] == "decision" else path[-1]
        out.append(Verdict(name, _fmt_path(path), claim, seed, leaf, a, b, status))
    return out


def _git(root: Path, *args) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


def baseline(results: Path, ref: str = "HEAD") -> dict:
    """The git checkout holding ``results`` and the commit compared against.

    Raises
    ------
    NoBaseline
        When ``results`` is not inside a git checkout or ``ref`` cannot be read there.
    """
    results = Path(results).resolve()
    try:
        top = Path(_git(results if results.is_dir() else results.parent, "rev-parse", "--show-toplevel").strip())
        sha, subject, date = _git(top, "log", "-1", "--format=%H%n%s%n%cI", ref, "--").splitlines()[:3]
    except (subprocess.CalledProcessError, FileNotFoundError, ValueError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise NoBaseline(f"{results}: not a git checkout (or no commit {ref}): no committed baseline to compare "
                         f"with. {detail.strip()}") from exc
    return {"ref": ref, "commit": sha, "subject": subject, "date": date, "root": str(top)}


def _folders(results: Path) -> list[Path]:
    return [results] + [results / s for s in SUBFOLDERS]


def committed_json(root: Path, rel: str, ref: str = "HEAD"):
    """The JSON file ``rel`` of the checkout ``root`` as committed at ``ref``, parsed (None when git has none there;
    ValueError when it is not JSON)."""
    r = subprocess.run(["git", "-C", str(root), "show", f"{ref}:{rel}"], capture_output=True)
    return json.loads(r.stdout) if r.returncode == 0 else None


def compare(results: Path, ref: str = "HEAD", written=None) -> dict:
    """Compare every results file of ``results`` (and its data-set subfolders) with git ``ref``.

    Parameters
    ----------
    results : path
        The results folder of a run (``results``).
    ref : str
        The commit to compare with.
    written : iterable of paths, optional
        The results files the run wrote (relative paths: to the checkout); any other is ``kept``, not
        compared (equal to itself, it would read as reproduced). None: compare every file.

    Returns
    -------
    dict
        The report: ``baseline``, ``machine``, ``tolerances``, ``summary``, ``files`` (one
        :class:`FileReport` each) and ``verdicts`` (every :class:`Verdict`).

    Raises
    ------
    NoBaseline
        Not a git checkout: :func:`report` writes the report without a baseline.
    """
    results = Path(results).resolve()
    base = baseline(results, ref)
    root = Path(base.pop("root"))
    files, verdict_list = [], []
    written = None if written is None else {os.path.relpath(Path(root, w).resolve(), root).replace(os.sep, "/")
                                            for w in written}  # relative to the checkout
    for folder in _folders(results):
        rel_folder = folder.relative_to(root).as_posix()
        at_ref = _git(root, "ls-tree", "--name-only", ref, "--", f"{rel_folder}/").split()
        names = {Path(p).name for p in at_ref if p.endswith(".json")}
        names |= {p.name for p in folder.glob("*.json")} if folder.is_dir() else set()
        for fname in sorted(n for n in names if n not in SKIP and not n.startswith(".")):
            rel = f"{rel_folder}/{fname}"
            path = folder / fname
            if written is not None and rel not in written:
                files.append(FileReport(rel, status="kept", note="not written by this run: not compared"))
                continue
            try:
                old = committed_json(root, rel, ref)
            except ValueError as exc:
                files.append(FileReport(rel, status="unreadable", note=f"not JSON at {ref}: {exc}"))
                continue
            if not path.is_file():
                files.append(FileReport(rel, status="missing", note=f"at {ref}, not written by this run"))
                verdict_list += verdicts(rel, old, None)
                continue
            try:
                new = json.loads(path.read_text(encoding="utf-8"))
            except ValueError as exc:
                files.append(FileReport(rel, status="unreadable", note=f"not JSON: {exc}"))
                continue
            if old is None:
                files.append(FileReport(rel, status="new", note=f"not at {ref}"))
            else:
                files.append(compare_docs(rel, old, new))
            verdict_list += verdicts(rel, old, new)
    compared = [f for f in files if f.status == "compared"]
    flipped = [v for v in verdict_list if v.flipped]
    summary = {"files": len(compared), **{k: sum(getattr(f, k) for f in compared) for k in (
        "numbers", "identical", "within", "beyond", "changed", "added", "removed")},
               "max_sd": max((f.max_sd for f in compared if f.max_sd is not None), default=None),
               "verdicts": len(verdict_list), "flipped": len(flipped),
               **{s: [f.file for f in files if f.status == s] for s in ("new", "missing", "unreadable", "kept")}}
    return {"baseline": base, "summary": summary, "files": [dataclasses.asdict(f) for f in files],
            "verdicts": [dataclasses.asdict(v) | {"flipped": v.flipped} for v in verdict_list]}


def tolerances() -> dict:
    """The rules of the comparison, as the report states them."""
    return {"identical": "equal values (NaN equals NaN)", "sd_beyond": SD_BEYOND,
            "sd": "seed-to-seed standard deviation of the committed results", "atol": ATOL,
            "atol_rule": "|fresh - committed| <= atol * max(1, |committed|)",
            "ignored_keys": sorted(IGNORED_KEYS), "skipped_files": sorted(SKIP)}
