"""What the Snakefile needs to know about the notebooks: runs, inputs, networks and parameters.

A notebook's ``metadata.rr`` lists the data sets it runs on (``datasets``,
MNIST first; default MNIST only) and the notebooks whose results it reads
(``depends``, on the same data set).  A run is named ``<notebook>`` on MNIST
and ``<notebook>@<dataset>`` on another data set.  Its inputs are the
notebook, the ``rr_utils`` source files it imports (transitively, lazy
imports included) and the markers of the runs and networks it needs.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PACKAGE = ROOT / "rr_utils"
PRIMARY = "mnist"
DATASETS = ("mnist", "fashion-mnist")


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _meta(nb: Path) -> dict:
    return json.loads(nb.read_text()).get("metadata", {}).get("rr", {})


def notebook_datasets(nb: Path) -> list[str]:
    names = _meta(nb).get("datasets", [PRIMARY])
    if (not isinstance(names, list) or not names or names[0] != PRIMARY
            or any(d not in DATASETS for d in names) or len(set(names)) != len(names)):
        raise ValueError(f"{nb.name}: metadata.rr.datasets must list distinct data sets of {list(DATASETS)}, "
                         f"'{PRIMARY}' first; got {names!r}")
    return names


def run_name(stem: str, dataset: str) -> str:
    return stem if dataset == PRIMARY else f"{stem}@{dataset}"


def parse_run(run: str) -> tuple[str, str]:
    """'03_train_dbn@fashion-mnist' -> ('03_train_dbn', 'fashion-mnist')."""
    stem, _, ds = run.partition("@")
    return stem, ds or PRIMARY


def runs() -> list[str]:
    """Every run: each notebook on MNIST, then on each other data set it lists."""
    per = {nb.stem: notebook_datasets(nb) for nb in notebooks()}
    return [run_name(s, d) for d in DATASETS for s in per if d in per[s]]


def run_depends(run: str) -> list[str]:
    stem, ds = parse_run(run)
    return [run_name(d, ds) for d in _meta(NOTEBOOKS / f"{stem}.ipynb").get("depends", [])]


def selected_datasets(value) -> tuple[str, ...]:
    """The data sets a run covers: config ``datasets`` (a list, or names joined by commas); None: all."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "all")):
        return DATASETS
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n).strip() for n in value]
    bad = [n for n in names if n not in DATASETS]
    if bad or not any(names):
        raise ValueError(f"datasets: expected names of {list(DATASETS)} (e.g. DATASETS=mnist), got {value!r}")
    return tuple(d for d in DATASETS if d in names)


def select_runs(config: dict, quick: bool, datasets=None) -> tuple[list[str], dict[str, str]]:
    """The runs on ``datasets`` whose networks are all of those data sets and whose dependencies run too.

    A run's data sets are its own, its networks' and its notebook's ``datasets`` parameter (data it reads
    beside its run's). Returns the runs kept (in :func:`runs` order) and, for each run left out, why.
    MNIST's notebooks 10 and 11 train Fashion-MNIST networks and 09 reads Fashion-MNIST, so an MNIST-only
    run leaves them out.
    """
    sel = selected_datasets(datasets)
    every, left = runs(), {}
    for run in every:
        stem, ds = parse_run(run)
        other = sorted({s["dataset"] for s in run_network_specs(config, run, quick)} - set(sel))
        reads = sorted(set(parameter_datasets(stem)) - set(sel))
        if ds not in sel:
            left[run] = f"a run on {ds}"
        elif other:
            left[run] = f"trains {', '.join(other)} networks"
        elif reads:
            left[run] = f"reads {', '.join(reads)} data"
    changed = True
    while changed:  # a run whose results another reads goes with it
        changed = False
        for run in every:
            dep = next((d for d in run_depends(run) if d in left), None)
            if run not in left and dep:
                left[run], changed = f"reads the results of {dep}, left out", True
    return [r for r in every if r not in left], left


def parameter_datasets(stem: str) -> list[str]:
    """The data sets a notebook reads beside its run's: its parameters cell's ``datasets = [...]``, if any."""
    nb = NOTEBOOKS / f"{stem}.ipynb"
    for c in json.loads(nb.read_text())["cells"]:
        if c["cell_type"] == "code" and "parameters" in c.get("metadata", {}).get("tags", []):
            src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            for node in ast.parse(src).body:
                if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "datasets"
                                                         for t in node.targets)):
                    names = ast.literal_eval(node.value)
                    bad = [n for n in names if n not in DATASETS]
                    if bad:
                        raise ValueError(f"{nb.name}: parameter datasets names {bad}, not of {list(DATASETS)}")
                    return list(names)
    return []


def results_written(run: str, results: str = "results") -> list[str]:
    """The results files a run writes (its notebook's ``save_results`` calls), under ``results``."""
    stem, ds = parse_run(run)
    nb = NOTEBOOKS / f"{stem}.ipynb"
    code = "\n".join("".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                     for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
    names = [stem if a == "NB" else a.strip('"') for a in re.findall(r'\.save_results\(\s*(NB|"[^"]+")', code)]
    folder = results if ds == PRIMARY else f"{results}/{ds}"
    return [f"{folder}/{n}.json" for n in dict.fromkeys(names)]


# --------------------------------------------------------------------------- rr_utils sources a notebook uses


def _unit_files(name: str) -> list[Path]:
    if (PACKAGE / f"{name}.py").is_file():
        return [PACKAGE / f"{name}.py"]
    if (PACKAGE / name / "__init__.py").is_file():
        return sorted((PACKAGE / name).rglob("*.py"))
    return []


def _rr_imports(source: str, origin: str, depth: int = 0) -> set[str]:
    """Top-level rr_utils modules imported anywhere in ``source``; ``depth``: how deep inside rr_utils
    the file lies (0: a notebook or rr_utils/x.py), to resolve relative imports."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]  # IPython magics
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError as exc:
        raise ValueError(f"{origin}: cannot parse a code cell for its imports: {exc}") from None
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[1] for a in node.names if a.name.startswith("rr_utils.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module == "rr_utils":
                    mods |= {a.name for a in node.names}
                elif node.module and node.module.startswith("rr_utils."):
                    mods.add(node.module.split(".")[1])
            elif node.level == depth + 1:
                mods |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return {m for m in mods if _unit_files(m)}


@functools.lru_cache(maxsize=None)
def _file_imports(f: Path) -> frozenset:
    """The top-level rr_utils modules one rr_utils file imports (parsed once per process)."""
    depth = len(f.relative_to(PACKAGE).parts) - 1
    return frozenset(_rr_imports(f.read_text(), f"rr_utils/{f.relative_to(PACKAGE)}", depth))


def module_closure(roots) -> list[Path]:
    """Source files of ``roots`` and of every rr_utils module they import, transitively, plus __init__."""
    seen, todo = set(), set(roots)
    while todo:
        m = todo.pop()
        seen.add(m)
        for f in _unit_files(m):
            todo |= _file_imports(f) - seen
    return [PACKAGE / "__init__.py"] + [f for m in sorted(seen) for f in _unit_files(m)]


def _rel(p: Path) -> str:
    """``p`` relative to the working directory (the checkout, unless snakemake --directory moved it)."""
    return os.path.relpath(p, os.getcwd())


def module_sources(roots) -> list[str]:
    """The rr_utils files of ``roots`` (top-level module names) and their imports, relative to the checkout."""
    return [_rel(p) for p in module_closure(roots)]


def notebook_sources(stem: str) -> list[str]:
    """The notebook and the rr_utils files its code depends on, relative to the checkout."""
    nb = NOTEBOOKS / f"{stem}.ipynb"
    roots = set()
    for c in json.loads(nb.read_text()).get("cells", []):
        if c.get("cell_type") == "code":
            src = c.get("source", "")
            roots |= _rr_imports("".join(src) if isinstance(src, list) else src, nb.name)
    return [_rel(p) for p in [nb, *module_closure(roots)]]


# --------------------------------------------------------------------------- networks


def grid_specs(config: dict, quick: bool) -> list[dict]:
    """The grid's networks, in (data set, architecture, rows, seed) order."""
    g = dict(config["grid"]) | (dict(config.get("quick_grid") or {}) if quick else {})
    specs = []
    for d in g["datasets"]:
        for arch in g["archs"]:
            for rows in g["rows"]:
                for seed in _seeds(g, d):
                    s = {"dataset": d, "seed": int(seed)}
                    if arch not in (None, "default"):
                        s["hidden_sizes"] = [int(h) for h in str(arch).split("-")]
                    if rows is not None:
                        s["rows"] = int(rows)
                    if g.get("epochs") is not None:
                        s["epochs"] = int(g["epochs"])
                    specs.append(s)
    return specs


def run_network_specs(config: dict, run: str, quick: bool) -> list[dict]:
    """The networks a notebook run asks for (config ``networks``), as NetworkSpec fields."""
    stem, ds = parse_run(run)
    listed = config["networks"].get(stem)
    if listed is None:
        raise ValueError(f"workflow/config.yaml: no `networks:` entry for notebook {stem} (use [] for none)")
    if listed == "grid":
        return [s for s in grid_specs(config, quick) if s["dataset"] == ds and "hidden_sizes" not in s
                and "rows" not in s and "epochs" not in s]
    out = []
    for entry in listed:
        e = dict(entry)
        over = e.pop("quick", None) or {}
        if quick:
            e |= over
        e.setdefault("dataset", ds)
        out.append(e)
    return out


def _seeds(g: dict, dataset: str) -> list[int]:
    """The grid's seeds on ``dataset``: ``seeds`` is one list for every data set, or a list per data set."""
    seeds = g["seeds"]
    if isinstance(seeds, dict):
        if dataset not in seeds:
            raise ValueError(f"workflow/config.yaml: grid.seeds names no seeds for data set {dataset!r}")
        seeds = seeds[dataset]
    return [int(s) for s in seeds]


def grid_seeds(config: dict, quick: bool, dataset: str = PRIMARY) -> list[int]:
    g = dict(config["grid"]) | (dict(config.get("quick_grid") or {}) if quick else {})
    return _seeds(g, dataset)


def seed_batches(specs: dict, max_seeds: int, cores: int) -> dict:
    """Networks that differ only in seed, grouped into training batches: batch name -> network names.

    ``specs``: network name -> NetworkSpec fields.  A group of n such networks is cut into batches of at
    most ``min(max_seeds, ceil(n / cores))`` seeds, near-equal in size, so that a group alone still gives
    every core a job; a batch of one network is no batch (its network trains alone).  A batch is named
    after its networks: ``mnist_default_s0-1-2``.
    """
    if isinstance(max_seeds, bool) or not isinstance(max_seeds, int) or max_seeds < 1:
        raise ValueError(f"workflow/config.yaml: seed_batch must be an integer >= 1, got {max_seeds!r}")
    groups: dict = {}
    for name, spec in specs.items():
        rest = json.dumps({k: v for k, v in spec.items() if k != "seed"}, sort_keys=True)
        groups.setdefault(rest, []).append((int(spec["seed"]), name))
    out = {}
    for members in groups.values():
        members.sort()
        n = len(members)
        size = max(1, min(max_seeds, -(-n // max(1, int(cores)))))
        k = -(-n // size)  # batches, then near-equal sizes
        for i in range(k):
            part = members[i * n // k:(i + 1) * n // k]
            if len(part) > 1:
                stem = part[0][1].rsplit("_s", 1)[0]
                out[f"{stem}_s{'-'.join(str(s) for s, _ in part)}"] = [nm for _, nm in part]
    return out
