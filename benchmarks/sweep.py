"""Sweep throughput: the same small grid through ``rr_utils.sweep`` (a LocalCluster
of one single-threaded worker per core) and sequentially in this process (one
task after the other, torch using every core), each from an empty model cache.

The ratio is sequential time / sweep time (> 1: the sweep is faster).  The
sweep's time includes starting the cluster and each worker's imports (torch):
what a user pays.  Both runs must give the same table up to the thread count's
effect on the trained bits, so the benchmark checks the tables' shapes and
tasks, not their values.
"""

from __future__ import annotations

import os
import tempfile
import time

try:
    from .common import Row, fmt_s
except ImportError:  # run as a script
    from common import Row, fmt_s  # type: ignore


def _grid(smoke: bool):
    from rr_utils import sweep as S

    if smoke:  # seconds: proves it runs
        return S.grid(seeds=range(2), Ms=[300], architectures=[(20,)], epochs=1, test_M=100)
    return S.grid(seeds=range(4), Ms=[None], architectures=[(500, 100, 30)], epochs=5, test_M=None)


def run(smoke: bool = False, log=print) -> tuple[list[Row], dict]:
    import torch

    from rr_utils import sweep as S

    tasks = _grid(smoke)
    cores = S.usable_cores()
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory(prefix="rr-bench-sweep-") as tmp:
        t0 = time.perf_counter()
        seq = [r for t in tasks for r in S.run_task(t, cache_dir=os.path.join(tmp, "seq"), threads=threads)]
        t_seq = time.perf_counter() - t0
        log(f"  sequential: {fmt_s(t_seq)} ({len(tasks)} tasks, {threads} torch threads)")
        t0 = time.perf_counter()
        table = S.run_sweep(tasks, workers=cores, threads=1, cache_dir=os.path.join(tmp, "sweep"),
                            log=lambda m: None)
        t_sweep = time.perf_counter() - t0
        log(f"  sweep: {fmt_s(t_sweep)} ({cores} workers x 1 thread)")
    if len(table) != len(seq) or list(dict.fromkeys(table["task"])) != [t.name for t in tasks]:
        raise AssertionError("the sweep's table does not hold the grid's tasks")
    if not (table["source"] == "trained").all():
        raise AssertionError("the sweep did not train every task from the empty cache")
    size = f"{len(tasks)} nets {tasks[0].hidden_sizes}, {tasks[0].epochs} ep, M={tasks[0].M or 'all'}"
    ratio = t_seq / t_sweep
    rec = {"tasks": len(tasks), "sequential_s": t_seq, "sweep_s": t_sweep, "workers": cores,
           "sequential_threads": threads, "ratio": ratio}
    row = Row("sweep", f"LocalCluster {cores}x1 thread vs sequential", size, fmt_s(t_sweep), fmt_s(t_seq), ratio,
              note="ratio = sequential / sweep; the sweep includes cluster start-up and worker imports", data=rec)
    return [row], rec
