"""Shared test machinery: test order for pytest-xdist, the skip policy under CI=true, small IDX files.

Order (make test: ``-n auto --dist loadfile``, one file per worker). The files that mostly wait on other
processes (SLURM jobs, Snakemake runs, killed trainers) go first, so that the CPU-bound files fill the cores
while they wait, instead of leaving them idle at the end.

Skips. A test that cannot run says why through ``pytest.skip`` (never a bare ``return``). With ``CI=true``
(``.ci/run`` sets it) a skip is a failure, except where the machine cannot have what the test needs and
``.ci/run`` does not provide it (``CI_ALLOWED_SKIPS``: a GPU, the full Fashion-MNIST, SLURM without root).
GPU skips are counted and listed at the end of every run, CI or not.

IDX files. ``write_idx_set`` and friends write small MNIST-named IDX files (random grey levels) for the
tests of the loaders, the full-data path and the Fashion-MNIST notebook run.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pytest

SLOW_FIRST = ("test_slurm.py", "test_workflow.py", "test_benchmarks.py", "test_cache_lock.py", "test_determinism.py",
              "test_properties.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable: file order kept otherwise


# --------------------------------------------------------------------------- skips under CI=true

GPU_SKIP = re.compile(r"\b(CUDA|GPU)\b", re.IGNORECASE)
# (pattern of the skip's reason, why CI may keep it): things .ci/run cannot or does not provide.
CI_ALLOWED_SKIPS = (
    (GPU_SKIP, "no GPU on the CI machine (counted and listed at the end)"),
    (re.compile(r"the full Fashion-MNIST is not installed"),
     ".ci/run installs no Fashion-MNIST on purpose: make test must pass on a newcomer's machine without it"),
    (re.compile(r"no SLURM on this machine: .*CANNOT"),
     "scripts/slurm_localhost.sh exits 3: no root, no passwordless sudo or no apt-get to install SLURM"),
)


def ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_reason(report) -> str:
    lr = report.longrepr
    if isinstance(lr, tuple) and len(lr) == 3:
        return str(lr[2]).removeprefix("Skipped: ")
    return str(lr)


def allowed_in_ci(reason: str) -> bool:
    return any(p.search(reason) for p, _ in CI_ALLOWED_SKIPS)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or hasattr(report, "wasxfail") or not ci():
        return
    reason = skip_reason(report)
    if not allowed_in_ci(reason):
        report.outcome = "failed"
        report.longrepr = (f"CI=true: this test skipped ({reason}); a binary or data set that .ci/run provides must be "
                           f"there in CI (tests/conftest.py CI_ALLOWED_SKIPS lists the skips CI keeps)")


def pytest_terminal_summary(terminalreporter):
    gpu = [r for r in terminalreporter.stats.get("skipped", []) if GPU_SKIP.search(skip_reason(r))]
    if gpu:
        terminalreporter.write_sep("-", f"{len(gpu)} GPU test(s) skipped: no CUDA device here")
        for r in gpu:
            terminalreporter.write_line(f"  {r.nodeid}: {skip_reason(r)}")


# --------------------------------------------------------------------------- small IDX files


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """Serialise a uint8 array as IDX (magic 0x0801 for 1-D, 0x0803 for 3-D)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 | arr.ndim
    head = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.tobytes()


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    raw = idx_bytes(arr)
    if gz:
        raw = gzip.compress(raw, mtime=0)
    path.write_bytes(raw)
    return path


def small_set(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write_idx_set(folder: Path, n_train: int = 7, n_test: int = 3, gz: bool = True, names: dict | None = None) -> dict:
    """The four MNIST-named IDX files (``names``: {split: (images, labels)}, default ``rr_utils.data.IDX_FILES``)
    with random content; returns the arrays by split."""
    from rr_utils import data as D

    names = D.IDX_FILES if names is None else names
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        images, labels = small_set(n, seed)
        img_name, lab_name = names[split]
        suffix = ".gz" if gz else ""
        write_idx(folder / (img_name + suffix), images, gz)
        write_idx(folder / (lab_name + suffix), labels, gz)
        out[split] = (images, labels)
    return out
