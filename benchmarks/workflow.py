"""Parallel training through the workflow: one small grid trained by Snakemake with one job per
core (one thread each) against the same grid with one job at a time (``--cores 1``), each from an
empty model cache, in a temporary working folder.

The ratio is the one-at-a-time time over the parallel time (> 1: parallel jobs are faster).  Both
include what a user pays: Snakemake building its graph and each job's imports (torch).  Both
runs train the same networks with one thread, so their grid tables must be equal: checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    from .common import Row, fmt_s
except ImportError:  # run as a script
    from common import Row, fmt_s  # type: ignore

ROOT = Path(__file__).resolve().parents[1]


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _grid(smoke: bool) -> str:
    if smoke:  # seconds: proves it runs
        return "grid: {datasets: [mnist], archs: ['20'], rows: [300], seeds: [0], epochs: 1}\n"
    return "grid: {datasets: [mnist], archs: ['500-100-30'], rows: [null], seeds: [0, 1, 2, 3], epochs: 5}\n"


def _run(tmp: Path, cores: int, name: str, grid: str) -> tuple[float, str]:
    work = tmp / name
    work.mkdir()
    (work / "grid.yaml").write_text(grid)
    env = dict(os.environ, RR_CACHE_DIR=str(work / "cache"), MPLBACKEND="Agg")
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "workflow" / "Snakefile"), "--directory", str(work),
           "--configfile", str(work / "grid.yaml"), "--cores", str(cores), "grid", "--quiet", "all"]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"snakemake --cores {cores} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return dt, (work / "results" / "grid.csv").read_text()


def run(smoke: bool = False, log=print) -> tuple[list[Row], dict]:
    import pandas as pd

    cores = _cores()
    grid = _grid(smoke)
    with tempfile.TemporaryDirectory(prefix="rr-bench-workflow-") as tmp:
        t_one, one = _run(Path(tmp), 1, "one", grid)
        log(f"  one job at a time: {fmt_s(t_one)}")
        t_par, par = _run(Path(tmp), cores, "parallel", grid)
        log(f"  {cores} jobs at once: {fmt_s(t_par)}")
    keep = ["network", "split", "depth", "H_s", "H_K", "cache_key"]
    a, b = (pd.read_csv(__import__("io").StringIO(t))[keep] for t in (one, par))
    if not a.equals(b):
        raise AssertionError("the parallel run's grid table differs from the one-at-a-time run's")
    n = a["network"].nunique()
    ratio = t_one / t_par
    rec = {"networks": n, "one_at_a_time_s": t_one, "parallel_s": t_par, "cores": cores, "ratio": ratio,
           "grid": grid.strip()}
    row = Row("workflow", f"Snakemake, {cores} training jobs at once vs one at a time", f"{n} networks",
              fmt_s(t_par), fmt_s(t_one), ratio,
              note="ratio = one at a time / parallel; both include Snakemake and each job's start-up; "
                   "tables equal", data=rec)
    return [row], rec
