"""Run the notebooks end to end with papermill (``make reproduce``).

Each notebook in ``notebooks/`` runs in name order into
``results/executed/``, on MNIST; then the notebooks that list other data sets
in their metadata (``metadata.rr.datasets``, e.g. ``["mnist",
"fashion-mnist"]``) run again on each of them, with the ``dataset``
parameter, into that data set's folders (``results/fashion-mnist/executed/``,
``figures/fashion-mnist/``; ``rr_utils.artifacts``).  Such a run is named
``<notebook>@<dataset>`` (``03_train_dbn@fashion-mnist``), and its
dependencies are the same notebooks on the same data set.  A notebook is skipped when its inputs are unchanged
since its last successful run: the notebook file, the source of the rr_utils
modules it imports (directly or through other rr_utils modules), the
injected parameters, the data files, and the stamps of the notebooks it
depends on (``metadata.rr.depends`` in the notebook).  Wall times go to
``results/timings.json``.  A failure stops the run and names the notebook and
the cell.  The run ends by writing the figure gallery (``rr_utils.gallery``:
``figures/index.html``, or ``figures/quick/index.html`` with ``--quick``).

    python -m rr_utils.pipeline [--force] [--only 01_resolution_relevance ...] [--dataset fashion-mnist ...]
                                [--quick] [--no-wait] [--list]

One run at a time writes an output folder: the run holds a lock
(``rr_utils.locking.RunLock``, ``results/.pipeline.lock``, or
``results/quick/.pipeline.lock`` with ``--quick``) from before it reads the
stamps until the gallery is written.  A second run prints who holds it (pid,
host, start time) and waits, then skips what the first one finished; with
``--no-wait`` (or ``RR_NO_WAIT=1``) it exits at once with status 75 instead.
A lock left by a killed run is released by the operating system and taken
over.  Kernels talk to papermill over IPC sockets (``rr_utils.kernels``), so
runs started together never race for TCP ports.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rr_utils.artifacts import PRIMARY_DATASET, ROOT, results_dir
from rr_utils.io import atomic_write_json
from rr_utils.locking import RunLock, acquire_or_report, no_wait_from_env

NOTEBOOKS = ROOT / "notebooks"


def _rel(p: Path) -> str:
    p = Path(p).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def _sha(paths) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(Path(p).name.encode())
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def _data_fingerprint() -> str:
    """Committed data by content; large raw files by name, size and mtime (cheap)."""
    data = ROOT / "data"
    h = hashlib.sha256(_sha(data.glob("*.npz")).encode())
    for p in sorted((data / "raw").rglob("*")) if (data / "raw").exists() else ():
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(data)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _rr_metadata(nb_path: Path) -> dict:
    """The notebook's ``metadata.rr`` (its dependencies and data sets)."""
    return json.loads(nb_path.read_text()).get("metadata", {}).get("rr", {})


def notebook_depends(nb_path: Path) -> list[str]:
    return list(_rr_metadata(nb_path).get("depends", []))


def notebook_datasets(nb_path: Path) -> list[str]:
    """The data sets a full run executes the notebook on (``metadata.rr.datasets``; default MNIST only)."""
    from rr_utils.data import DATASETS

    names = _rr_metadata(nb_path).get("datasets", [PRIMARY_DATASET])
    if (not isinstance(names, list) or not names or names[0] != PRIMARY_DATASET
            or any(d not in DATASETS for d in names) or len(set(names)) != len(names)):
        raise SystemExit(f"{nb_path.name}: metadata.rr.datasets must list distinct data sets of {list(DATASETS)}, "
                         f"'{PRIMARY_DATASET}' first; got {names!r}")
    return names


@dataclass(frozen=True)
class Job:
    """One execution of a notebook in a run: the notebook on one data set."""

    notebook: Path
    dataset: str = PRIMARY_DATASET

    @property
    def primary(self) -> bool:
        return self.dataset == PRIMARY_DATASET

    @property
    def name(self) -> str:
        """``03_train_dbn`` on MNIST, ``03_train_dbn@fashion-mnist`` on another data set."""
        return self.notebook.stem if self.primary else f"{self.notebook.stem}@{self.dataset}"

    def params(self, quick: bool) -> dict:
        """The injected parameters (MNIST runs get no ``dataset``: the notebooks' default)."""
        return {"quick": bool(quick)} | ({} if self.primary else {"dataset": self.dataset})

    def depends(self) -> list[str]:
        """Names of the jobs this one reads from: the listed notebooks on the same data set."""
        return [d if self.primary else f"{d}@{self.dataset}" for d in notebook_depends(self.notebook)]

    def executed(self, quick: bool) -> Path:
        return results_dir(quick, dataset=self.dataset) / "executed" / self.notebook.name


def jobs(notebooks=None) -> list[Job]:
    """Every notebook on MNIST in name order, then each other data set's notebooks in name order."""
    from rr_utils.data import DATASETS

    notebooks = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) if notebooks is None else list(notebooks)
    per_nb = {nb: notebook_datasets(nb) for nb in notebooks}
    return [Job(nb, d) for d in DATASETS for nb in notebooks if d in per_nb[nb]]


PACKAGE = ROOT / "rr_utils"


def _unit_files(package: Path, name: str) -> list[Path]:
    """Source files of the top-level rr_utils module ``name``: ``name.py`` or every file of ``name/``."""
    if (package / f"{name}.py").is_file():
        return [package / f"{name}.py"]
    if (package / name / "__init__.py").is_file():
        return sorted((package / name).rglob("*.py"))
    return []


def _rr_imports(source: str, package: Path, origin: str, depth: int = 0) -> set[str]:
    """Top-level rr_utils modules (``entropy``, the subpackage ``models``, ...) imported anywhere in
    ``source`` (lazy imports in functions too).  ``depth``: how deep inside rr_utils the source file lies
    (0 for a notebook or rr_utils/x.py, 1 for rr_utils/sub/x.py), to resolve relative imports."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]  # IPython magics
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError as exc:
        raise SystemExit(f"{origin}: cannot parse a code cell for its imports: {exc}") from None
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[1] for a in node.names if a.name.startswith("rr_utils.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module == "rr_utils":
                    mods |= {a.name for a in node.names}  # from rr_utils import entropy
                elif node.module and node.module.startswith("rr_utils."):
                    mods.add(node.module.split(".")[1])
            elif node.level == depth + 1:  # relative to the rr_utils package itself
                mods |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return {m for m in mods if _unit_files(package, m)}


def module_closure(roots, package: Path = None) -> list[Path]:
    """Source files of ``roots`` and every rr_utils module they import, transitively, plus __init__."""
    package = PACKAGE if package is None else package
    seen, todo = set(), set(roots)
    while todo:
        m = todo.pop()
        seen.add(m)
        for f in _unit_files(package, m):
            depth = len(f.relative_to(package).parts) - 1
            todo |= _rr_imports(f.read_text(), package, f"rr_utils/{f.relative_to(package)}", depth) - seen
    return [package / "__init__.py"] + [f for m in sorted(seen) for f in _unit_files(package, m)]


def notebook_modules(nb_path: Path) -> list[Path]:
    """rr_utils source files a notebook's code depends on."""
    cells = json.loads(nb_path.read_text()).get("cells", [])
    roots = set()
    for c in cells:
        if c.get("cell_type") == "code":
            src = c.get("source", "")
            roots |= _rr_imports("".join(src) if isinstance(src, list) else src, PACKAGE, nb_path.name)
    return module_closure(roots)


def input_stamp(nb_path: Path, params: dict, stamps: dict, depends: list[str] | None = None) -> str:
    """``depends``: the names of the jobs read (default: the notebook's ``metadata.rr.depends``)."""
    depends = notebook_depends(nb_path) if depends is None else depends
    parts = {
        "notebook": _sha([nb_path]),
        "rr_utils": _sha(notebook_modules(nb_path)),
        "params": json.dumps(params, sort_keys=True),
        "data": _data_fingerprint(),
        "depends": {d: stamps.get(d, "missing") for d in depends},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


# What the kernels of a run inherit: full runs write the committed figures/ and results/
# (rr_utils.notebook; by hand they go to */scratch/), and no progress bars in the executed notebooks we keep.
KERNEL_ENV = {"RR_SAVE": "1", "RR_PROGRESS": "0"}


@contextlib.contextmanager
def _environ(values: dict):
    """``os.environ`` updated with ``values`` (kernels started inside inherit them), restored after."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


KERNEL = "rr-relevance"  # the project's kernel (make setup installs it into .venv); the notebooks name it


def kernel_name() -> str:
    """The project's kernel if it runs this interpreter, else ``python3`` (this interpreter's ipykernel).

    A kernel named rr-relevance installed for another environment (another
    clone, a user-wide install) would run other code: it is not used.
    """
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        argv = KernelSpecManager().get_kernel_spec(KERNEL).argv
        return KERNEL if argv and os.path.samefile(argv[0], sys.executable) else "python3"
    except Exception:  # no such kernel, an unreadable spec, a missing interpreter
        return "python3"


def run_notebook(nb_path: Path, out_path: Path, params: dict) -> None:
    """Execute with papermill to a temp file, then move it into place."""
    import papermill as pm

    from rr_utils.kernels import IPCKernelManager

    tmp = out_path.with_name(out_path.stem + ".partial.ipynb")
    try:
        with _environ(KERNEL_ENV):
            pm.execute_notebook(str(nb_path), str(tmp), parameters=params, kernel_name=kernel_name(),
                                cwd=str(nb_path.parent), progress_bar=False, log_output=False,
                                kernel_manager_class=IPCKernelManager)
    except pm.PapermillExecutionError as exc:
        failed = out_path.with_name(out_path.stem + ".failed.ipynb")
        os.replace(tmp, failed)
        raise SystemExit(
            f"\nFAILED: notebook {nb_path.name}, cell {exc.cell_index} "
            f"(execution count {exc.exec_count}): {exc.ename}: {exc.evalue}\n"
            f"The executed notebook with the traceback is {_rel(failed)}"
        ) from None
    os.replace(tmp, out_path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--force", action="store_true", help="rerun every notebook even if unchanged")
    ap.add_argument("--only", nargs="*", default=None,
                    help="notebooks to run: names (stems, every data set) or runs (03_train_dbn@fashion-mnist)")
    ap.add_argument("--dataset", nargs="*", default=None, help="run only the notebooks' runs on these data sets")
    ap.add_argument("--list", action="store_true", help="print the runs (notebook@data set) in order and exit")
    ap.add_argument("--quick", action="store_true", help="run in quick mode (writes under */quick/)")
    ap.add_argument("--no-wait", action="store_true", default=no_wait_from_env(),
                    help="exit at once (status 75) if another run holds the lock (default: wait; RR_NO_WAIT=1)")
    args = ap.parse_args(argv)
    todo = _selected_jobs(args)
    if args.list:
        print("\n".join(j.name for j in todo))
        return 0
    res = results_dir(args.quick)
    lock = RunLock(res / ".pipeline.lock", f"make reproduce on {_rel(res)}/")
    if not acquire_or_report(lock, wait=not args.no_wait):
        return 75  # EX_TEMPFAIL: busy, not failed
    try:
        return _run(args, res, todo)
    finally:
        lock.release()


def _selected_jobs(args) -> list[Job]:
    """The runs ``--only`` and ``--dataset`` select, in run order; clear errors for unknown names."""
    from rr_utils.data import DATASETS

    everything = jobs()
    if args.dataset is not None:
        unknown = set(args.dataset) - set(DATASETS)
        if unknown:
            raise SystemExit(f"--dataset: unknown data sets {sorted(unknown)}; have {list(DATASETS)}")
    if args.only:
        known = {j.notebook.stem for j in everything} | {j.name for j in everything}
        unknown = set(args.only) - known
        if unknown:
            raise SystemExit(f"--only: unknown notebooks {sorted(unknown)}; have {sorted(known)}")
    return [j for j in everything
            if (not args.only or j.notebook.stem in args.only or j.name in args.only)
            and (args.dataset is None or j.dataset in args.dataset)]


def _run(args, res: Path, todo: list[Job]) -> int:

    os.environ.setdefault("PYTHONHASHSEED", "0")  # the kernels inherit it
    stamp_file = res / ".stamps.json"
    stamps = json.loads(stamp_file.read_text()) if stamp_file.exists() else {}
    timing_file = res / "timings.json"
    timings = json.loads(timing_file.read_text()) if timing_file.exists() else {}
    timings = timings.get("notebooks", timings)

    for job in todo:
        params = job.params(args.quick)
        stamp = input_stamp(job.notebook, params, stamps, job.depends())
        out = job.executed(args.quick)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not args.force and stamps.get(job.name) == stamp and out.exists():
            print(f"[skip] {job.name}: inputs unchanged", flush=True)
            continue
        print(f"[run ] {job.name} ...", flush=True)
        t0 = time.perf_counter()
        run_notebook(job.notebook, out, params)
        dt = time.perf_counter() - t0
        print(f"[done] {job.name} in {dt:.1f} s", flush=True)
        stamps[job.name] = stamp
        timings[job.name] = round(dt, 1)
        atomic_write_json(stamp_file, stamps)
        atomic_write_json(timing_file, {"notebooks": timings, "total_s": round(sum(timings.values()), 1),
                                        "machine": _machine()})
    from rr_utils.gallery import build_galleries

    try:
        for page in build_galleries(quick=args.quick):
            print(f"[gallery] {_rel(page)}", flush=True)
    except (OSError, ValueError) as exc:  # e.g. a damaged figure sidecar: say which, after the notebooks ran
        raise SystemExit(f"\nFAILED: the figure gallery: {exc}") from None
    return 0


def _machine() -> str:
    import platform

    return f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"


if __name__ == "__main__":
    sys.exit(main())
