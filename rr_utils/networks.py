"""The networks a run needs, named, trained one per process (the workflow's training jobs).

A ``NetworkSpec`` names one network of the authors' recipe: its data set, seed,
hidden sizes, update rule and the rows it learns from.  With the run's mode
(``quick``) it gives the exact arrays and ``DBNConfig`` that a notebook's
``experiments.train(experiments.dbn_config(quick, seed, ...), splits)`` uses, so
a network trained here is the cache entry the notebook then loads.

The Snakemake workflow (``workflow/Snakefile``) runs one training job per
network, in parallel, each pinned to its own threads::

    python -m rr_utils.networks train --spec '{"dataset": "mnist", "seed": 1}' --threads 1 --out marker.json
    python -m rr_utils.networks analyse --spec '{"seed": 1}' --out rows.csv     # the grid's layer table
    python -m rr_utils.networks train-batch --spec '[{"seed": 0}, {"seed": 1}]' --out batch.json

``train-batch`` trains networks that differ only in seed together, one batched
step for all seeds (``rr_utils.models.batched_training.train_dbns``; on the CPU
each is bitwise the network trained alone and is stored under its key) and
writes every network's record into one JSON file; ``train --from-batch FILE``
then copies a network's record out of it.  Where the networks would train on
CUDA, batches are keyed apart, so ``train-batch`` trains the seeds one after
another there, under the keys the notebooks load.

``train`` writes a small JSON record (the cache key, where the network came
from, wall and CPU time, threads, host) once the network is in the model
cache; ``analyse`` writes one row per (layer, split): entropies and the
power-law fit, with provenance.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["NetworkSpec", "train_network", "train_networks", "analyse_network", "arch_name", "parse_arch", "main"]


def arch_name(hidden_sizes) -> str:
    """(500, 250) -> '500-250'; None -> 'default' (the authors' 12 layers)."""
    return "default" if hidden_sizes is None else "-".join(str(int(h)) for h in hidden_sizes)


def parse_arch(text: str | None) -> tuple[int, ...] | None:
    """'500-250-120' -> (500, 250, 120); 'default' or None -> None (the recipe's architecture)."""
    if text is None or text == "default":
        return None
    try:
        sizes = tuple(int(s) for s in str(text).split("-"))
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        raise ValueError(f"architecture: expected hidden sizes like '500-250-120' or 'default', got {text!r}")
    return sizes


def _rows(name: str, v):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 2:
        raise ValueError(f"{name}: expected None (every row) or an integer >= 2, got {v!r}")
    return int(v)


@dataclass(frozen=True)
class NetworkSpec:
    """One network: data set, seed, architecture, update rule and training rows.

    Parameters
    ----------
    dataset : str
        ``"mnist"`` or ``"fashion-mnist"``.
    seed : int
        The recipe's seed (weights, particles, mini-batch order).
    hidden_sizes : tuple of int or None
        Hidden layer widths; None: the authors' 12 layers.
    recipe : str or None
        ``"classical"`` for the classical update; None: the authors' update.
    rows : int or None
        Train on the first ``rows`` rows of the run's train split (None: all of it).
    test_rows : int or None
        Monitor the first ``test_rows`` rows of the full test split (None: the run's test split).
    epochs : int or None
        Epochs per layer (None: the recipe's 200, or 2 in quick mode).
    """

    dataset: str = "mnist"
    seed: int = 0
    hidden_sizes: tuple[int, ...] | None = None
    recipe: str | None = None
    rows: int | None = None
    test_rows: int | None = None
    epochs: int | None = None

    def __post_init__(self):
        from rr_utils.data import DATASETS

        if self.dataset not in DATASETS:
            raise ValueError(f"dataset: expected one of {list(DATASETS)}, got {self.dataset!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        hs = self.hidden_sizes
        if isinstance(hs, str):
            hs = parse_arch(hs)
        object.__setattr__(self, "hidden_sizes", None if hs is None else tuple(int(h) for h in hs))
        if self.recipe not in (None, "authors", "classical"):
            raise ValueError(f"recipe: expected None, 'authors' or 'classical', got {self.recipe!r}")
        object.__setattr__(self, "rows", _rows("rows", self.rows))
        object.__setattr__(self, "test_rows", _rows("test_rows", self.test_rows))
        if self.epochs is not None and (isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer))
                                        or self.epochs < 1):
            raise ValueError(f"epochs: expected None or a positive integer, got {self.epochs!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "NetworkSpec":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"network spec: unknown fields {sorted(unknown)} in {d!r}")
        return cls(**d)

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None} | {
            "dataset": self.dataset, "seed": self.seed}

    @property
    def name(self) -> str:
        """A file-name-safe id, e.g. ``mnist_default_s0`` or ``fashion-mnist_default_r8000_t2000_s0``."""
        parts = [self.dataset, arch_name(self.hidden_sizes)]
        if self.recipe and self.recipe != "authors":
            parts.append(self.recipe)
        if self.rows is not None:
            parts.append(f"r{self.rows}")
        if self.test_rows is not None:
            parts.append(f"t{self.test_rows}")
        if self.epochs is not None:
            parts.append(f"ep{self.epochs}")
        return "_".join(parts + [f"s{self.seed}"])

    def splits(self, quick: bool) -> dict:
        """The arrays a notebook passes to ``experiments.train`` for this network."""
        from rr_utils import experiments as X
        from rr_utils.data import load_dataset

        s = X.load_splits(self.dataset, quick)
        if self.rows is not None:
            if self.rows > len(s["train"]):
                raise ValueError(f"{self.name}: asks for {self.rows} train rows, the run has {len(s['train'])}")
            s["train"] = s["train"][: self.rows]
        if self.test_rows is not None:
            s["test"] = load_dataset(self.dataset, "test", verbose=False, rows=self.test_rows).images
        return s

    def config(self, quick: bool):
        """The ``DBNConfig``: ``experiments.dbn_config(quick, seed, ...)``."""
        from rr_utils import experiments as X

        over = {}
        if self.hidden_sizes is not None:
            over["hidden_sizes"] = self.hidden_sizes
        if self.recipe is not None:
            over["recipe"] = self.recipe
        if self.epochs is not None:
            over["epochs"] = int(self.epochs)
        return X.dbn_config(quick, self.seed, **over)


def _pin_threads(n: int) -> None:
    """torch and the BLAS libraries on ``n`` threads for the rest of the process."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    threadpool_limits(limits=n)


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def train_network(spec: NetworkSpec, quick: bool, threads: int = 1) -> dict:
    """Train (or load from the model cache) ``spec``'s network; return its record.

    The record: the spec, the cache key, ``source`` (``trained``, ``resumed`` or
    ``model-cache``), epochs trained here, wall and CPU seconds, threads, host.
    A training interrupted earlier resumes from its last checkpoint.
    """
    from rr_utils import experiments as X
    from rr_utils.models import array_checksum, train_dbn

    _pin_threads(threads)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    splits, config = spec.splits(quick), spec.config(quick)
    print(f"[network] {spec.name}: {len(config.hidden_sizes)} layers x {config.epochs} epochs on "
          f"{len(splits['train']):,} rows, {threads} thread(s); {X.training_estimate(len(splits['train']), epochs=config.epochs, threads=threads)}",
          flush=True)
    trained = 0

    def log(rec):
        nonlocal trained
        trained += rec["epoch"] > 0

    dbn = train_dbn(config, splits["train"], data_id=array_checksum(splits["train"]), test_data=splits["test"],
                    test_id=array_checksum(splits["test"]), progress=False, log=log, num_threads=threads)
    total = config.epochs * len(config.hidden_sizes)
    source = "model-cache" if trained == 0 else ("trained" if trained >= total else "resumed")
    rec = {"network": spec.name, "spec": spec.to_dict(), "quick": bool(quick), "cache_key": dbn.key,
           "source": source, "epochs_trained": int(trained), "rows": len(splits["train"]),
           "wall_s": round(time.perf_counter() - t0, 2), "cpu_s": round(_cpu_seconds() - c0, 2),
           "threads": int(threads), "host": socket.gethostname(), "device": dbn.device.type}
    print(f"[network] {spec.name}: {source}, {trained} epochs trained, {rec['wall_s']:.1f} s", flush=True)
    return rec


def train_networks(specs: list[NetworkSpec], quick: bool, threads: int = 1) -> list[dict]:
    """Train (or load) networks that differ only in seed in one batch; one record per spec, as ``train_network``'s.

    On the CPU the seeds train together (``train_dbns``: each is bitwise its alone network, under its key); a
    record's ``wall_s`` and ``cpu_s`` are its share of the batch's (the batch's totals divided by the networks
    it trained), ``seed_batch`` names the batch's seeds.  Elsewhere (CUDA) each spec trains alone in turn
    (``train_network``): batched CUDA networks are keyed apart and the notebooks would not find them.

    Raises
    ------
    ValueError
        No specs, or specs that differ in anything but the seed.
    """
    from rr_utils.devices import resolve_device
    from rr_utils.models import array_checksum
    from rr_utils.models.batched_training import check_seed_batch, train_dbns

    if not specs:
        raise ValueError("specs: expected at least one network spec, got none")
    if len({dataclasses.replace(s, seed=0) for s in specs}) != 1:
        raise ValueError(f"specs: a batch's networks may differ in seed only, got {[s.to_dict() for s in specs]}")
    configs = check_seed_batch([s.config(quick) for s in specs])
    if resolve_device(configs[0].device).type != "cpu" or configs[0].recipe != "authors":
        return [train_network(s, quick, threads) for s in specs]
    _pin_threads(threads)
    t0, c0 = time.perf_counter(), _cpu_seconds()
    splits = specs[0].splits(quick)
    print(f"[network] {', '.join(s.name for s in specs)}: one batch of {len(specs)} seeds, {threads} thread(s)",
          flush=True)
    trained = {s.seed: 0 for s in specs}

    def log(rec):
        trained[rec["seed"]] += rec["epoch"] > 0

    dbns = train_dbns(configs, splits["train"], data_id=array_checksum(splits["train"]), test_data=splits["test"],
                      test_id=array_checksum(splits["test"]), log=log, num_threads=threads)
    total = configs[0].epochs * len(configs[0].hidden_sizes)
    share = max(1, sum(n > 0 for n in trained.values()))
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    recs = []
    for spec, dbn in zip(specs, dbns):
        n = trained[spec.seed]
        source = "model-cache" if n == 0 else ("trained" if n >= total else "resumed")
        recs.append({"network": spec.name, "spec": spec.to_dict(), "quick": bool(quick), "cache_key": dbn.key,
                     "source": source, "epochs_trained": int(n), "rows": len(splits["train"]),
                     "wall_s": round(wall / share if n else 0.0, 2), "cpu_s": round(cpu / share if n else 0.0, 2),
                     "threads": int(threads), "host": socket.gethostname(), "device": dbn.device.type,
                     "seed_batch": [s.seed for s in specs]})
        print(f"[network] {spec.name}: {source} in a batch, {n} epochs trained", flush=True)
    return recs


def analyse_network(spec: NetworkSpec, quick: bool, threads: int = 1) -> "pd.DataFrame":
    """One row per (layer, split) of ``spec``'s trained network: entropies, bound, power-law fit, provenance.

    The network must be in the model cache (``train`` first): this never trains.
    """
    import pandas as pd

    from rr_utils import experiments as X
    from rr_utils.claims.c3_power_laws import fit_layers
    from rr_utils.models import array_checksum, load_dbn

    _pin_threads(threads)
    splits, config = spec.splits(quick), spec.config(quick)
    dbn = load_dbn(config, array_checksum(splits["train"]))
    table, counts = X.layer_table_and_counts(dbn, splits, seed=spec.seed)
    fits = fit_layers(counts, dbn.sizes).set_index("depth")
    rows = []
    for r in table.to_dict("records"):
        fit = fits.loc[r["depth"]] if r["split"] == "train" else None
        rows.append({"network": spec.name, "dataset": spec.dataset, "arch": arch_name(spec.hidden_sizes),
                     "M_train": len(splits["train"]), "M_test": len(splits["test"]), "epochs": config.epochs, **r,
                     "mu": np.nan if fit is None else float(fit["mu"]),
                     "mu_err": np.nan if fit is None else float(fit["mu_err"]), "cache_key": dbn.key})
    return pd.DataFrame(rows)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=("train", "train-batch", "analyse"))
    ap.add_argument("--spec", required=True, help="the network as JSON, e.g. '{\"dataset\": \"mnist\", \"seed\": 1}' "
                                                  "(train-batch: a list of networks that differ in seed only)")
    ap.add_argument("--from-batch", default=None,
                    help="train: copy this network's record from a train-batch output instead of training")
    ap.add_argument("--quick", action="store_true", default=os.environ.get("RR_QUICK", "") in ("1", "true"),
                    help="quick mode (small splits, 2 epochs; default: $RR_QUICK)")
    ap.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default 1)")
    ap.add_argument("--out", required=True, help="train: the JSON record; analyse: the CSV of rows")
    a = ap.parse_args(argv)
    try:
        given = json.loads(a.spec)
        if a.action == "train-batch":
            if not isinstance(given, list):
                raise ValueError("train-batch expects a JSON list of networks")
            specs = [NetworkSpec.from_dict(d) for d in given]
        else:
            spec = NetworkSpec.from_dict(given)
    except (ValueError, TypeError) as exc:
        ap.error(f"--spec: {exc}")
    if a.threads < 1:
        ap.error(f"--threads: expected >= 1, got {a.threads}")
    out = Path(a.out)
    if a.action == "train" and a.from_batch:
        recs = {r["network"]: r for r in json.loads(Path(a.from_batch).read_text())["networks"]}
        if spec.name not in recs:
            ap.error(f"--from-batch: {a.from_batch} holds no record of {spec.name}")
        _write_atomic(out, json.dumps(recs[spec.name], indent=1) + "\n")
    elif a.action == "train":
        _write_atomic(out, json.dumps(train_network(spec, a.quick, a.threads), indent=1) + "\n")
    elif a.action == "train-batch":
        _write_atomic(out, json.dumps({"networks": train_networks(specs, a.quick, a.threads)}, indent=1) + "\n")
    else:
        _write_atomic(out, analyse_network(spec, a.quick, a.threads).to_csv(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
