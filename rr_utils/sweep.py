"""Sweeps: a grid of (dataset, seed, M, architecture) run as Dask tasks (``make sweep``).

Each task trains one DBN (``rr_utils.models.train_dbn``, the authors' recipe
of ``experiments.dbn_config`` with the task's seed, hidden sizes and epochs)
on the first ``M`` rows of the data set's train split, then computes each
layer's entropies on the train and test splits (``experiments.layer_table``)
and the power-law fit of each layer's train counts (``experiments.fit_layers``).
It returns one tidy row per (task, layer, split), with provenance: the model
cache key, the git commit, the worker (host and pid), its torch threads, the
wall time, how many epochs it trained and where the result came from.  Taking
the *first* M rows (the embedded split is already a fixed random permutation)
is our choice.

Where it runs:

* by default on a ``dask.distributed.LocalCluster`` on this machine (one
  single-threaded worker process per task slot; ``--workers``);
* with ``--scheduler tcp://HOST:PORT`` (or ``DASK_SCHEDULER_ADDRESS``) on any
  running Dask cluster, e.g. ``dask scheduler`` and ``dask worker
  tcp://HOST:PORT --nthreads 1`` started by hand: the workers must import this
  package (same checkout or environment) and see the cache folder (a shared
  file system; ``--cache-dir`` or ``RR_CACHE_DIR``);
* on SLURM or PBS through ``dask-jobqueue`` (not a dependency; install it
  where you need it)::

      from dask_jobqueue import SLURMCluster          # or PBSCluster
      from rr_utils import sweep
      cluster = SLURMCluster(cores=4, processes=4, memory="16GB", walltime="04:00:00",
                             job_script_prologue=["cd /path/to/checkout", "source .venv/bin/activate"])
      cluster.scale(jobs=5)                          # 5 nodes x 4 single-threaded workers
      tasks = sweep.grid(datasets=["fashion-mnist"], seeds=range(5))
      table = sweep.run_sweep(tasks, client=cluster.get_client(), cache_dir="/shared/rr-cache/models")
      sweep.write_table(table, "results/sweep_fashion_seeds.csv", tasks)

Threads.  A task pins torch's and the BLAS libraries' threads to
``--threads``, by default the cores of its host divided by the task slots the
cluster runs on that host (``len(os.sched_getaffinity(0))`` on the worker, so
a SLURM cgroup counts).  Two workers each using every core slow each other
down several fold on a small machine.  The bits of a trained network depend
on the thread count (``train_dbn``), so compare runs made with the same one.

Resuming.  A finished task leaves its rows in ``<cache>/sweep/`` (keyed by
the model cache key, the test split and the source of ``rr_utils``), and its
network in the model cache; a task whose training was interrupted resumes from
its last checkpoint.  Rerunning a sweep after a crash, a killed client or a
lost worker redoes only what had not finished.  Dask itself reruns the tasks
of a worker that dies (up to ``distributed.scheduler.allowed-failures``
times).

    python -m rr_utils.sweep --seeds 0 1 2 3 4                       # notebook 08's seeds
    python -m rr_utils.sweep --quick --M 500 2000 --arch 30-10 default
    python -m rr_utils.sweep --scheduler tcp://10.0.0.5:8786 --dataset fashion-mnist --seeds 0 1 2 3 4

Output: ``results/sweep_<name>.csv`` (one row per task, layer and split) and
``results/sweep_<name>.json`` (the grid, the cluster, the provenance); under
``results/quick/`` with ``--quick``.  The command holds the output folder's
run lock (``rr_utils.locking``), as ``make reproduce`` does.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = ["Task", "grid", "run_task", "run_sweep", "write_table", "usable_cores", "main"]

PROVENANCE = ["cache_key", "git_commit", "host", "worker", "device", "torch_threads", "wall_s",
              "epochs_trained", "source"]


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask: a SLURM or cgroup limit counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _arch_name(hidden_sizes) -> str:
    return "-".join(str(int(h)) for h in hidden_sizes)


def parse_arch(text: str) -> tuple[int, ...]:
    """'500-250-120' -> (500, 250, 120); 'default' -> the authors' 12 layers."""
    if text == "default":
        from rr_utils.models import DEFAULT_HIDDEN_SIZES

        return DEFAULT_HIDDEN_SIZES
    try:
        sizes = tuple(int(s) for s in text.split("-"))
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"architecture: expected hidden sizes like '500-250-120' or 'default', got {text!r}")
    return sizes


@dataclass(frozen=True)
class Task:
    """One network of the grid and its analysis (plain data: it travels to the workers)."""

    dataset: str = "mnist"
    seed: int = 0
    M: int | None = None  # training rows: the first M of the train split (None: all)
    hidden_sizes: tuple[int, ...] = ()  # () -> the authors' architecture
    epochs: int = 200
    test_M: int | None = None  # test rows: the first test_M of the test split (None: all)

    def __post_init__(self):
        sizes = tuple(int(h) for h in self.hidden_sizes)
        if not sizes:
            from rr_utils.models import DEFAULT_HIDDEN_SIZES

            sizes = DEFAULT_HIDDEN_SIZES
        object.__setattr__(self, "hidden_sizes", sizes)
        for name in ("M", "test_M"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2):
                raise ValueError(f"{name}: expected None (all rows) or an integer >= 2, got {v!r}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer)) or self.epochs < 1:
            raise ValueError(f"epochs: expected a positive integer, got {self.epochs!r}")

    @property
    def name(self) -> str:
        m = "all" if self.M is None else self.M
        return f"{self.dataset}_seed{self.seed}_M{m}_{_arch_name(self.hidden_sizes)}_ep{self.epochs}"

    def config(self):
        from rr_utils import experiments as X

        return X.dbn_config(seed=int(self.seed), hidden_sizes=self.hidden_sizes, epochs=int(self.epochs))


def grid(datasets: Iterable[str] = ("mnist",), seeds: Iterable[int] = (0,), Ms: Iterable[int | None] = (None,),
         architectures: Iterable[Sequence[int]] = ((),), epochs: int = 200, test_M: int | None = None) -> list[Task]:
    """Every combination, in this order (dataset, M, architecture, seed)."""
    tasks = [Task(d, int(s), m, tuple(a), epochs, test_M)
             for d in datasets for m in Ms for a in architectures for s in seeds]
    if not tasks:
        raise ValueError("grid: empty (give at least one dataset, seed, M and architecture)")
    if len({t for t in tasks}) != len(tasks):
        raise ValueError("grid: repeated tasks (a value is listed twice)")
    return tasks


# --------------------------------------------------------------------------- one task (runs on a worker)


def _analysis_version() -> str:
    """sha256 of the rr_utils sources: a result computed by other code is recomputed."""
    h = hashlib.sha256()
    pkg = Path(__file__).resolve().parent
    for p in sorted(pkg.rglob("*.py")):
        h.update(p.relative_to(pkg).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@contextlib.contextmanager
def _pin_threads(n: int):
    """torch and BLAS (numpy's OpenBLAS / MKL, through threadpoolctl) on ``n`` threads, restored after."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def _worker_identity() -> tuple[str, int]:
    """(host, task slots of this worker)."""
    try:
        from distributed import get_worker

        w = get_worker()
        return w.address.rsplit(":", 1)[0].split("://")[-1], int(w.state.nthreads)
    except (ImportError, ValueError):
        return "", 1


def task_threads(host_threads: dict | None = None) -> int:
    """Threads for a task here: the client's plan for this host, else cores / this worker's slots."""
    host, slots = _worker_identity()
    if host_threads and host in host_threads:
        return max(1, int(host_threads[host]))
    return max(1, usable_cores() // max(1, slots))


def run_task(task: Task, cache_dir: str | os.PathLike | None = None, threads: int | None = None,
             host_threads: dict | None = None, epoch_pause_s: float = 0.0) -> list[dict]:
    """Train (or load) ``task``'s network, analyse it; one dict per (layer, split).

    ``threads``: torch / BLAS threads (None: ``task_threads(host_threads)``).
    ``epoch_pause_s`` sleeps after each trained epoch, outside the arithmetic
    (for tests that kill a worker in the middle of a task).
    """
    from rr_utils import experiments as X
    from rr_utils import models as MD
    from rr_utils.artifacts import git_commit
    from rr_utils.data import load_dataset
    from rr_utils.io import atomic_write_json

    t0 = time.perf_counter()
    n_threads = int(threads) if threads else task_threads(host_threads)
    host, pid = socket.gethostname(), os.getpid()
    print(f"[sweep] start {task.name} on {host}:{pid} ({n_threads} threads)", flush=True)
    with _pin_threads(n_threads):
        train_all = load_dataset(task.dataset, "train", verbose=False)
        test_all = load_dataset(task.dataset, "test", verbose=False)
        for split, m, have in (("train", task.M, len(train_all)), ("test", task.test_M, len(test_all))):
            if m is not None and m > have:
                raise ValueError(f"{task.name}: asks for {m} {split} rows, {task.dataset} has {have} "
                                 f"({train_all.source if split == 'train' else test_all.source})")
        train = train_all.images[: task.M] if task.M else train_all.images
        test = test_all.images[: task.test_M] if task.test_M else test_all.images
        config = task.config()
        data_id, test_id = MD.array_checksum(train), MD.array_checksum(test)
        key = MD.cache_key(config, data_id)
        root = Path(cache_dir) if cache_dir is not None else MD.default_cache_dir()
        version = _analysis_version()
        result_path = root / "sweep" / f"{key[:24]}-{test_id[:12]}-{version[:12]}.json"
        cached = _load_result(result_path, key, test_id, version)
        if cached is not None:
            print(f"[sweep] done  {task.name}: rows from the result cache", flush=True)
            return [dict(r, source="result-cache", epochs_trained=0) for r in cached]

        trained = 0

        def log(rec):
            nonlocal trained
            if rec["epoch"] > 0:
                trained += 1
                if epoch_pause_s:
                    time.sleep(epoch_pause_s)

        dbn = MD.train_dbn(config, train, cache_dir=root, data_id=data_id, test_data=test, test_id=test_id,
                           progress=False, log=log, num_threads=n_threads)
        splits = {"train": train, "test": test, "dataset": task.dataset, "source": train_all.source}
        table, counts = X.layer_table_and_counts(dbn, splits, seed=task.seed)
        fits = X.fit_layers(counts, dbn.sizes).set_index("depth")
        total = task.epochs * len(task.hidden_sizes)
        source = "model-cache" if trained == 0 else ("trained" if trained == total else "resumed")
        prov = dict(cache_key=key, git_commit=git_commit(), host=host, worker=f"{host}:{pid}",
                    device=str(dbn.device.type), torch_threads=n_threads, epochs_trained=trained)
        rows = []
        for r in table.to_dict("records"):
            fit = fits.loc[r["depth"]] if r["split"] == "train" else None
            rows.append({"task": task.name, "dataset": task.dataset, "arch": _arch_name(task.hidden_sizes),
                         "M_train": len(train), "M_test": len(test), "epochs": task.epochs,
                         **r, "mu": np.nan if fit is None else float(fit["mu"]),
                         "mu_err": np.nan if fit is None else float(fit["mu_err"]), **prov})
        wall = round(time.perf_counter() - t0, 3)
        for r in rows:
            r["wall_s"] = wall
        atomic_write_json(result_path, {"key": key, "test_id": test_id, "analysis_version": version,
                                        "task": dataclasses.asdict(task), "rows": rows,
                                        "columns": list(rows[0])})  # JSON sorts keys: keep the table's order
    print(f"[sweep] done  {task.name}: {source}, {trained} epochs trained, {wall:.1f} s", flush=True)
    return [dict(r, source=source) for r in rows]


def _load_result(path: Path, key: str, test_id: str, version: str) -> list[dict] | None:
    """The rows of a finished task; None when absent or not ours (it is then recomputed)."""
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # unreadable: recompute, the atomic write of the new one replaces it
    if not (isinstance(doc, dict) and doc.get("key") == key and doc.get("test_id") == test_id
            and doc.get("analysis_version") == version and isinstance(doc.get("rows"), list) and doc["rows"]
            and all(isinstance(r, dict) for r in doc["rows"]) and isinstance(doc.get("columns"), list)):
        return None
    cols = doc["columns"]
    return [{k: (np.nan if r.get(k) is None else r[k]) for k in cols} for r in doc["rows"]]


# --------------------------------------------------------------------------- the client


def _plan_threads(client) -> dict:
    """host -> threads per task: that host's cores over the task slots the cluster has there."""
    workers = client.scheduler_info()["workers"]
    cores = client.run(usable_cores)  # worker address -> cores of its machine
    slots, host_cores = {}, {}
    for addr, info in workers.items():
        host = info.get("host") or addr.rsplit(":", 1)[0].split("://")[-1]
        slots[host] = slots.get(host, 0) + int(info.get("nthreads", 1))
        host_cores[host] = max(host_cores.get(host, 0), int(cores.get(addr, 1)))
    return {h: max(1, host_cores[h] // max(1, slots[h])) for h in slots}


def run_sweep(tasks: Sequence[Task], client=None, scheduler: str | None = None, workers: int | None = None,
              threads: int | None = None, cache_dir: str | os.PathLike | None = None,
              epoch_pause_s: float = 0.0, log: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Run ``tasks`` on Dask and gather their rows into one table (grid order, then split, layer).

    ``client``: an existing ``distributed.Client``; else ``scheduler`` (an
    address; default ``DASK_SCHEDULER_ADDRESS``) is connected to; else a
    ``LocalCluster`` of ``workers`` single-threaded processes (default:
    ``min(len(tasks), cores)``) is started and closed.  A task that fails is
    named; the others still finish (and are cached) before the error is raised.
    """
    from distributed import Client, LocalCluster, as_completed

    log = log or (lambda msg: print(msg, flush=True))
    tasks = list(tasks)
    if not tasks:
        raise ValueError("tasks: empty")
    if cache_dir is None:
        from rr_utils.models import default_cache_dir

        cache_dir = default_cache_dir()
    cache_dir = str(Path(cache_dir).resolve())
    scheduler = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    own, cluster = client is None, None
    if client is None:
        if scheduler:
            client = Client(scheduler, timeout="30s")
            log(f"[sweep] connected to {scheduler}")
        else:
            n = int(workers) if workers else max(1, min(len(tasks), usable_cores()))
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
            log(f"[sweep] LocalCluster: {n} worker processes x 1 thread")
    try:
        plan = None if threads else _plan_threads(client)
        log(f"[sweep] {len(tasks)} tasks; threads per task: {threads or plan}; cache {cache_dir}")
        futures = {client.submit(run_task, t, cache_dir, threads, plan, epoch_pause_s,
                                 key=f"rr-sweep-{hashlib.sha256(repr((t, cache_dir)).encode()).hexdigest()[:16]}",
                                 pure=False): i for i, t in enumerate(tasks)}
        results, errors, done = {}, [], 0
        for fut in as_completed(futures):
            i = futures[fut]
            done += 1
            try:
                rows = fut.result()
            except Exception as exc:  # noqa: BLE001 - reported with the task's name below
                errors.append(f"{tasks[i].name}: {type(exc).__name__}: {exc}")
                log(f"[sweep] {done}/{len(tasks)} FAILED {tasks[i].name}: {exc}")
                continue
            results[i] = rows
            r0 = rows[0]
            log(f"[sweep] {done}/{len(tasks)} {tasks[i].name}: {r0['source']}, {r0['epochs_trained']} epochs "
                f"trained on {r0['worker']}")
        if errors:
            raise RuntimeError(f"{len(errors)} of {len(tasks)} sweep tasks failed (the others are cached):\n  "
                               + "\n  ".join(errors))
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()
    rows = [dict(r, task_index=i) for i in range(len(tasks)) for r in results[i]]
    return pd.DataFrame(rows).drop(columns="task_index")


_PER_TASK = ["task", "dataset", "seed", "M_train", "M_test", "arch", "source", "wall_s", "epochs_trained",
             "torch_threads", "worker", "cache_key"]


def _per_task(table: pd.DataFrame) -> list[dict]:
    """One record per task: where its network came from, how long the task took, on what."""
    first = table.drop_duplicates("task")[[c for c in _PER_TASK if c in table.columns]]
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in first.to_dict("records")]


def write_table(table: pd.DataFrame, path: str | os.PathLike, tasks: Sequence[Task], meta: dict | None = None) -> Path:
    """The table as CSV and a JSON sidecar (grid, provenance summary, one record per task with its
    source and wall time), both written atomically."""
    from rr_utils.io import atomic_write_json, atomic_write_text

    path = Path(path)
    atomic_write_text(path, table.to_csv(index=False, lineterminator="\n"))
    doc = {"table": path.name, "rows": int(len(table)), "tasks": [dataclasses.asdict(t) for t in tasks],
           "columns": list(table.columns), "provenance_columns": PROVENANCE,
           "git_commits": sorted(set(table["git_commit"])), "workers": sorted(set(table["worker"])),
           "sources": {k: int(v) for k, v in table.drop_duplicates("task")["source"].value_counts().items()},
           "per_task": _per_task(table), **(meta or {})}
    atomic_write_json(path.with_suffix(".json"), doc)
    return path


def _default(name: str, quick: bool, full=None):
    """``experiments.<name>`` in quick mode, else ``full``.  Imported on use only: a client
    given every size never imports torch (its workers do)."""
    if not quick:
        return full
    from rr_utils import experiments

    return getattr(experiments, name)


def main(argv=None) -> int:
    from rr_utils.artifacts import results_dir
    from rr_utils.locking import RunLock, acquire_or_report, no_wait_from_env

    ap = argparse.ArgumentParser(prog="python -m rr_utils.sweep", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", nargs="+", default=["mnist"], help="data sets (mnist, fashion-mnist)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="network seeds")
    ap.add_argument("--M", nargs="+", default=None, help="training rows, the first M of the train split "
                    "('all': every row; default all, quick: 2000)")
    ap.add_argument("--arch", nargs="+", default=["default"], help="hidden sizes like 30-10, or 'default'")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per layer (default 200, quick: 2)")
    ap.add_argument("--test-M", default=None, help="test rows (default all, quick: 500)")
    ap.add_argument("--quick", action="store_true", help="quick defaults; writes under results/quick/")
    ap.add_argument("--name", default="sweep", help="output name: results/sweep_<name>.csv (default: sweep)")
    ap.add_argument("--scheduler", default=None, help="address of a running Dask scheduler "
                    "(default: DASK_SCHEDULER_ADDRESS, else a LocalCluster)")
    ap.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes (default: cores)")
    ap.add_argument("--threads", type=int, default=None, help="torch/BLAS threads per task (default: cores/slots)")
    ap.add_argument("--cache-dir", default=None, help="model cache (default: RR_CACHE_DIR/models or cache/models)")
    ap.add_argument("--no-wait", action="store_true", default=no_wait_from_env(),
                    help="exit at once (status 75) if another run holds the output folder's lock")
    ap.add_argument("--epoch-pause", type=float, default=0.0, help=argparse.SUPPRESS)  # tests: kill mid-task
    a = ap.parse_args(argv)

    def rows_arg(values, default):
        if values is None:
            return [default()]
        out = []
        for v in values if isinstance(values, list) else [values]:
            if str(v).lower() == "all":
                out.append(None)
            else:
                try:
                    out.append(int(v))
                except ValueError:
                    ap.error(f"expected an integer or 'all', got {v!r}")
        return out

    try:
        tasks = grid(a.dataset, a.seeds, rows_arg(a.M, lambda: _default("QUICK_TRAIN", a.quick)),
                     [parse_arch(s) for s in a.arch], a.epochs or _default("QUICK_EPOCHS", a.quick, 200),
                     rows_arg(a.test_M, lambda: _default("QUICK_TEST", a.quick))[0])
    except ValueError as exc:
        ap.error(str(exc))
    if not all(c.isalnum() or c in "-_" for c in a.name):
        ap.error(f"--name: letters, digits, '-' and '_' only, got {a.name!r}")

    res = results_dir(a.quick)
    lock = RunLock(res / ".pipeline.lock", f"make sweep on {res}/")
    if not acquire_or_report(lock, wait=not a.no_wait):
        return 75
    try:
        t0 = time.perf_counter()
        table = run_sweep(tasks, scheduler=a.scheduler, workers=a.workers, threads=a.threads,
                          cache_dir=a.cache_dir, epoch_pause_s=a.epoch_pause)
        out = write_table(table, res / f"sweep_{a.name}.csv", tasks,
                          {"wall_s": round(time.perf_counter() - t0, 1), "quick": a.quick,
                           "scheduler": a.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or "LocalCluster"})
    except RuntimeError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        lock.release()
    print(f"[sweep] wrote {out} ({len(table)} rows) and {out.with_suffix('.json').name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
