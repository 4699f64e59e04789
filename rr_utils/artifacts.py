"""Where figures and numbers go, and how they are written.

Three places, all chosen by the caller:

* ``figures/`` and ``results/``: the committed artifacts, written by full runs
  of ``make reproduce`` (and by a notebook run by hand with ``save = True``);
* ``figures/quick/`` and ``results/quick/`` (``quick=True``): quick runs (the
  tests);
* ``figures/scratch/`` and ``results/scratch/`` (``scratch=True``): full runs of
  a notebook by hand, so exploring never rewrites the committed artifacts.

The last two are ignored by git.  ``RR_FIGURES_DIR`` / ``RR_RESULTS_DIR`` move
the base folders (tests use them).  Every write is atomic (see ``rr_utils.io``).

Data sets.  MNIST, the paper's data set, writes to those folders directly; a
notebook run on another data set (its ``dataset`` parameter, e.g.
``"fashion-mnist"``) writes to a subfolder named after it, in each of the three
places: ``figures/fashion-mnist/``, ``results/quick/fashion-mnist/``, ...  So
every results file keeps one writer, whichever data sets a notebook runs on.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from rr_utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]


PRIMARY_DATASET = "mnist"  # the paper's data set: its outputs sit at the top of figures/ and results/


def dataset_subfolder(dataset: str | None) -> str:
    """'' for MNIST (or None), else the data set's name: the subfolder its outputs go to."""
    from rr_utils.data import DATASETS

    if dataset is None or dataset == PRIMARY_DATASET:
        return ""
    if dataset not in DATASETS:
        raise ValueError(f"dataset: expected one of {list(DATASETS)}, got {dataset!r}")
    return dataset


def _subfolder(base: Path, quick: bool, scratch: bool, dataset: str | None = None) -> Path:
    d = base / "quick" if quick else base / "scratch" if scratch else base
    d = d / dataset_subfolder(dataset)
    d.mkdir(parents=True, exist_ok=True)
    return d


def figures_dir(quick: bool = False, scratch: bool = False, dataset: str | None = None) -> Path:
    """figures/, or figures/quick/ (quick wins), or figures/scratch/; then the data set's subfolder."""
    return _subfolder(Path(os.environ.get("RR_FIGURES_DIR", ROOT / "figures")), quick, scratch, dataset)


def results_dir(quick: bool = False, scratch: bool = False, dataset: str | None = None) -> Path:
    """results/, or results/quick/ (quick wins), or results/scratch/; then the data set's subfolder."""
    return _subfolder(Path(os.environ.get("RR_RESULTS_DIR", ROOT / "results")), quick, scratch, dataset)


def save_results(name: str, data: dict, quick: bool = False, scratch: bool = False,
                 dataset: str | None = None) -> Path:
    """Write ``data`` to results/<name>.json (atomically, sorted keys); see ``results_dir``."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.endswith(".json"):
        raise ValueError(f"name: expected a bare results name like '01_resolution_relevance', got {name!r}")
    if not isinstance(data, dict):
        raise TypeError(f"data: expected a dict (a JSON object), got {type(data).__name__}")
    path = results_dir(quick, scratch, dataset) / f"{name}.json"
    atomic_write_json(path, data)
    return path


def load_results(name: str, quick: bool = False, scratch: bool = False, dataset: str | None = None) -> dict:
    """Read results/<name>.json; clear errors for a missing, unreadable or malformed file.

    With ``scratch`` the scratch copy is read when there is one, else the
    committed results/<name>.json (an upstream notebook not rerun by hand).
    """
    path = results_dir(quick, scratch, dataset) / f"{name}.json"
    if scratch and not quick and not path.exists():
        path = results_dir(dataset=dataset) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run the notebook that writes '{name}' first")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); rerun the notebook that writes '{name}'") from None


# Outputs are not inputs: a run that rewrites them does not make the tree "dirty".
_OUTPUTS = ("figures", "results")


def git_commit(root: str | os.PathLike | None = None) -> str:
    """Short commit of the working tree ('unknown' outside git), with '+dirty' if modified.

    Dirty means a tracked file differs from HEAD outside ``figures/`` and
    ``results/`` (the outputs a run rewrites as it goes); untracked files do
    not count, as in ``git describe --dirty``.  The commit goes into figure
    metadata only, never into ``results/*.json``.
    """
    root = ROOT if root is None else Path(root)
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root,
                             capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "."]
                                + [f":(exclude){d}" for d in _OUTPUTS],
                                cwd=root, capture_output=True, text=True, timeout=30)
        dirty = status.returncode != 0 or bool(status.stdout.strip())
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def params_hash(params: dict) -> str:
    """Stable 12-hex-digit hash of a parameters dict (JSON, sorted keys)."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
