"""Where figures and numbers go, and how they are written.

Full runs (``make reproduce``) write to ``figures/`` and ``results/``; quick
runs (the tests) write to ``figures/quick/`` and ``results/quick/`` (ignored by
git) so a test run never overwrites the committed artifacts.  Every write is
atomic (see ``rr_utils.io``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

from rr_utils.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]


def figures_dir(quick: bool = False) -> Path:
    d = Path(os.environ.get("RR_FIGURES_DIR", ROOT / "figures"))
    d = d / "quick" if quick else d
    d.mkdir(parents=True, exist_ok=True)
    return d


def results_dir(quick: bool = False) -> Path:
    d = Path(os.environ.get("RR_RESULTS_DIR", ROOT / "results"))
    d = d / "quick" if quick else d
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_results(name: str, data: dict, quick: bool = False) -> Path:
    """Write ``data`` to results/<name>.json (atomically, sorted keys)."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.endswith(".json"):
        raise ValueError(f"name: expected a bare results name like '01_resolution_relevance', got {name!r}")
    if not isinstance(data, dict):
        raise TypeError(f"data: expected a dict (a JSON object), got {type(data).__name__}")
    path = results_dir(quick) / f"{name}.json"
    atomic_write_json(path, data)
    return path


def load_results(name: str, quick: bool = False) -> dict:
    """Read results/<name>.json; clear errors for a missing, unreadable or malformed file."""
    path = results_dir(quick) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run the notebook that writes '{name}' first")
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); rerun the notebook that writes '{name}'") from None


def git_commit() -> str:
    """Short commit of the working tree ('unknown' outside git), '+dirty' if modified."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return "unknown"
        return rev.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def params_hash(params: dict) -> str:
    """Stable 12-hex-digit hash of a parameters dict (JSON, sorted keys)."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
