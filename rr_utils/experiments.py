"""Glue shared by the DBN notebooks (03-05): data, the default config, per-layer entropies.

The defaults are the authors' recipe (``rr_utils.models.DBNConfig``); quick
mode (the tests) keeps the architecture but trains 2 epochs on 2,000 images.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from rr_utils import bound as B
from rr_utils._checks import check_table
from rr_utils import entropy as E
from rr_utils.artifacts import ROOT
from rr_utils.claims.c3_power_laws import fit_layers
from rr_utils.data import load_dataset
from rr_utils.devices import resolve_device
from rr_utils.models import DBNConfig, array_checksum, is_cached, train_dbn

QUICK_TRAIN, QUICK_TEST, QUICK_EPOCHS = 2_000, 500, 2


def _check_splits(splits, needed=("train", "test")) -> None:
    if not isinstance(splits, dict) or any(k not in splits for k in needed):
        have = sorted(splits) if isinstance(splits, dict) else type(splits).__name__
        raise ValueError(f"splits: expected a dict with keys {list(needed)} (see load_splits), got {have}")


def load_splits(dataset: str = "mnist", quick: bool = False) -> dict:
    """{'train': images, 'test': images} (float32 in [0, 1]) plus 'source'; quick: the first QUICK_TRAIN and
    QUICK_TEST rows, read alone (so Fashion-MNIST's come from the committed subset where the full set is absent).

    Parameters
    ----------
    dataset : str
        "mnist" or "fashion-mnist".
    quick : bool
        Quick mode: the first ``QUICK_TRAIN`` and ``QUICK_TEST`` rows.

    Returns
    -------
    dict
        ``{"train": images, "test": images, "source": str, "dataset": str}``.
    """
    tr = load_dataset(dataset, "train", rows=QUICK_TRAIN if quick else None)
    te = load_dataset(dataset, "test", rows=QUICK_TEST if quick else None)
    return {"train": tr.images, "test": te.images, "source": tr.source, "dataset": dataset}


def dbn_config(quick: bool = False, seed: int = 0, **overrides) -> DBNConfig:
    """The authors' recipe with ``seed``; quick mode trains QUICK_EPOCHS epochs.

    Parameters
    ----------
    quick : bool
        Quick mode: ``QUICK_EPOCHS`` epochs per layer unless ``epochs`` is given.
    seed : int
        The recipe's seed.
    **overrides
        Other fields of ``DBNConfig`` (e.g. ``hidden_sizes``, ``recipe``, ``epochs``).

    Returns
    -------
    rr_utils.models.DBNConfig
    """
    if quick:
        overrides.setdefault("epochs", QUICK_EPOCHS)
    return DBNConfig(seed=seed, **overrides)


# Wall time of one network of the authors' recipe (12 layers x 200 epochs) on this project's 2-core
# machine, measured: with 2 torch threads about 2.2 minutes for 8,000 rows and 16 for 60,000; with one
# thread (the workflow's training jobs) 1,922-1,958 s for 60,000.  It grows with the rows and the epochs.
MINUTES_PER_1000_ROWS = 0.27
MINUTES_PER_1000_ROWS_ONE_THREAD = 0.54
_RECIPE_EPOCHS = 200


def training_estimate(n_rows: int, networks: int = 1, device=None, epochs: int = _RECIPE_EPOCHS,
                      threads: int | None = None) -> str:
    """The line printed before training ``networks`` DBNs on ``n_rows`` inputs for ``epochs`` epochs per
    layer: on the CPU from ``MINUTES_PER_1000_ROWS`` (``threads=1``: ``MINUTES_PER_1000_ROWS_ONE_THREAD``),
    on CUDA from the full-size network of ``results/gpu.json`` (scaled by rows and epochs).

    Parameters
    ----------
    n_rows : int
        Training rows.
    networks : int
        Networks to train.
    device : str or torch.device, optional
        Where they train (default: ``devices.resolve_device``).
    epochs : int
        Epochs per layer.
    threads : int, optional
        torch threads on the CPU (1: the one-thread rate).

    Returns
    -------
    str
    """
    cached = "seconds when the model cache (cache/) already holds the network" + ("s" if networks > 1 else "")
    scale = n_rows / 1000 * networks * epochs / _RECIPE_EPOCHS
    if resolve_device(device).type == "cuda":
        gpu = gpu_network_seconds()
        if gpu is None:
            return f"minutes on a GPU (no GPU time measured in results/gpu.json), {cached}"
        seconds, rows, name = gpu
        minutes = max(1, round(seconds / 60 * scale * 1000 / rows))
        return f"about {minutes} minute{'s' if minutes > 1 else ''} on a GPU (measured on an {name}), {cached}"
    one = threads == 1
    minutes = (MINUTES_PER_1000_ROWS_ONE_THREAD if one else MINUTES_PER_1000_ROWS) * scale
    where = "on one CPU core" if one else "on 2 CPU cores"
    if minutes < 1:
        return f"under a minute {where}, {cached}"
    minutes = round(minutes)
    return f"about {minutes} minute{'s' if minutes > 1 else ''} {where}, {cached}"


def gpu_network_seconds(path=None) -> tuple[float, int, str] | None:
    """(seconds, rows, GPU name) of the full-size network in ``results/gpu.json`` (``make bench-gpu``):
    its wall time when it ran to the end, else the estimate from its per-layer times; None without one.

    Parameters
    ----------
    path : path-like, optional
        The timings file (default ``results/gpu.json``).

    Returns
    -------
    tuple or None
        ``(seconds, rows, GPU name)``.
    """
    path = ROOT / "results" / "gpu.json" if path is None else path
    try:
        doc = json.loads(Path(path).read_text())
        net = doc["network"]
        seconds = net["wall_s"] if net.get("complete") else net["estimate_s"]
        return float(seconds), int(net["rows"]), str(doc["environment"]["gpu"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def train(config: DBNConfig, splits: dict, progress=None):
    """Train (or load from the cache) a DBN on splits['train'], monitoring splits['test'].

    Parameters
    ----------
    config : rr_utils.models.DBNConfig
        The network's recipe.
    splits : dict
        ``{"train": images, "test": images, ...}`` (``load_splits``).
    progress : bool, optional
        Show a progress bar (default: in a Jupyter kernel or on a terminal).

    Returns
    -------
    rr_utils.models.DBN
    """
    _check_splits(splits)
    data_id = array_checksum(splits["train"])
    cached = is_cached(config, data_id)
    if os.environ.get("RR_REQUIRE_CACHED", "") == "1" and not cached:
        # under the workflow every network is a training job of its own, run beforehand (workflow/config.yaml)
        raise RuntimeError(
            f"this notebook asks for a network the workflow did not train: seed {config.seed}, hidden sizes "
            f"{config.hidden_sizes}, recipe {config.recipe!r}, {config.epochs} epochs, {len(splits['train']):,} rows of "
            f"{splits.get('dataset', '?')}. List it under `networks:` in workflow/config.yaml.")
    # One thread on the CPU, as the workflow's training jobs: a network's bits depend on the thread count, which
    # its cache key does not record, so every trainer of this project uses one and fills the cache alike.
    threads = 1 if resolve_device(config.device).type == "cpu" else None
    if not cached:  # say what it costs before it starts (the workflow trains these as jobs beforehand)
        print(f"Training a network of {len(config.hidden_sizes)} layers x {config.epochs} epochs on "
              f"{len(splits['train']):,} images (seed {config.seed}): "
              f"{training_estimate(len(splits['train']), device=config.device, epochs=config.epochs, threads=threads)}",
              flush=True)
    return train_dbn(config, splits["train"], data_id=data_id, test_data=splits["test"],
                     test_id=array_checksum(splits["test"]), progress=progress, num_threads=threads)


def references(dbn, splits: dict) -> dict:
    """The strong references of ``claims.layers.layer_claims`` for a DBN counted on ``splits["train"]``:
    untrained networks of its recipe (``untrained``) and random projections of the same inputs (``inputs``).

    Parameters
    ----------
    dbn : rr_utils.models.DBN
        The trained network.
    splits : dict
        Its splits (``load_splits``).

    Returns
    -------
    dict
        ``{"untrained": callable, "inputs": images}``, keywords of ``layer_claims``.
    """
    from rr_utils.claims.references import untrained_factory

    _check_splits(splits)
    return {"untrained": untrained_factory(dbn.config, splits["train"]), "inputs": splits["train"]}


def layer_table(dbn, splits: dict, seed: int = 0, threshold: float = 0.5) -> pd.DataFrame:
    """Entropies of each layer's thresholded states, per split, with the bound at the same M.

    Parameters
    ----------
    dbn : rr_utils.models.DBN
        The network.
    splits : dict
        ``{"train": images, "test": images}``.
    seed : int
        The value of the table's ``seed`` column.
    threshold : float
        Where the up-pass probabilities are read as states.

    Returns
    -------
    pandas.DataFrame
        One row per (split, layer): split, seed, depth, units and ``entropy_row``'s columns.
    """
    return layer_table_and_counts(dbn, splits, seed, threshold)[0]


def layer_table_and_counts(dbn, splits: dict, seed: int = 0, threshold: float = 0.5):
    """(``layer_table``, the state counts of each layer on the train split), from one up-pass.

    Parameters
    ----------
    dbn, splits, seed, threshold
        As for ``layer_table``.

    Returns
    -------
    tuple
        ``(table, counts)``: the layer table and the train split's state counts of each layer.
    """
    _check_splits(splits)
    rows, train_counts = [], []
    for split in ("train", "test"):
        for depth, states in enumerate(dbn.binary_states(splits[split], threshold=threshold), start=1):
            counts = E.state_counts(states)
            if split == "train":
                train_counts.append(counts)
            rows.append(dict(split=split, seed=seed, depth=depth, units=states.shape[1], **entropy_row(counts)))
    return pd.DataFrame(rows), train_counts


def entropy_row(counts) -> dict:
    """M, n_states, entropies (raw and normalised) and the distance below the bound at that M.

    Parameters
    ----------
    counts : array_like
        The state counts of one layer.

    Returns
    -------
    dict
        M, n_states, H_s, H_K, noise, H_s_norm, H_K_norm, bound_H_K, below_bound_norm.
    """
    s = E.summary(counts)
    bound_hk = float(B.bound_at(s["M"], s["H_s"]))
    return dict(M=s["M"], n_states=s["n_states"], H_s=s["H_s"], H_K=s["H_K"], noise=s["noise"],
                H_s_norm=s["H_s_norm"], H_K_norm=s["H_K_norm"], bound_H_K=bound_hk,
                below_bound_norm=(bound_hk - s["H_K"]) / np.log(s["M"]))


def layers_json(table: pd.DataFrame, splits: dict) -> dict:
    """The results/layers.json document (entropies in nats).

    Parameters
    ----------
    table : pandas.DataFrame
        Layer tables (``layer_table``), one or several seeds.
    splits : dict
        The splits they were counted on (with ``dataset`` and ``source``).

    Returns
    -------
    dict
    """
    keep = ["units", "depth", "split", "seed", "H_s", "H_K", "bound_H_K"]
    check_table(table, keep)
    _check_splits(splits, ("train", "test", "dataset", "source"))
    return {"dataset": splits["dataset"], "source": splits["source"],
            "M": {"train": int(len(splits["train"])), "test": int(len(splits["test"]))},
            "layers": [{k: (round(float(v), 8) if isinstance(v, float) else v) for k, v in r.items()}
                       for r in table[keep].to_dict("records")]}


def layer_summary(dbn, splits: dict, seed: int = 0) -> pd.DataFrame:
    """Per layer on the train split: entropies, distance below the bound and fitted mu (one up-pass).

    Parameters
    ----------
    dbn : rr_utils.models.DBN
        The network.
    splits : dict
        Its splits.
    seed : int
        The value of the table's ``seed`` column.

    Returns
    -------
    pandas.DataFrame
        One row per layer: the train split's layer table with ``mu`` and ``mu_err``.
    """
    table, counts = layer_table_and_counts(dbn, splits, seed)
    train = table[table["split"] == "train"].reset_index(drop=True)
    return train.merge(fit_layers(counts, dbn.sizes)[["depth", "mu", "mu_err"]], on="depth")


def compare_recipes(summaries: dict, reference: str, other: str, yardstick: str,
                    columns=("H_s_norm", "H_K_norm", "mu")) -> dict:
    """How far ``other`` (e.g. the classical update) moves each layer from ``reference`` (the authors'
    update, same seed), next to how far ``yardstick`` (the reference recipe with another seed) does.

    ``summaries``: name -> ``layer_summary`` table (same widths).  Returns the per-layer table
    (values and absolute differences), the largest differences over the layers that are neither at
    (1, 0) nor on the diagonal H[K] = H[s] in the reference (where every network must sit), and each
    network's relevance-peak and Zipf layers (the rules of claims C1 and C3).

    Parameters
    ----------
    summaries : dict
        Name -> ``layer_summary`` table.
    reference, other, yardstick : str
        Names of ``summaries``.
    columns : sequence of str
        The quantities compared.

    Returns
    -------
    dict
        reference, other, yardstick, informative_layers_units, largest_differences, landmarks, per_layer.
    """
    for name in (reference, other, yardstick):
        if name not in summaries:
            raise ValueError(f"summaries: no entry {name!r}; have {sorted(summaries)}")
        check_table(summaries[name], ["depth", "units", *columns], f"summaries[{name!r}]")
    ref = summaries[reference].set_index("depth")
    if any(not summaries[n].set_index("depth")["units"].equals(ref["units"]) for n in (other, yardstick)):
        raise ValueError("summaries: the networks must have the same layer widths")
    table = ref[["units"]].copy()
    for c in columns:
        for tag, name in (("ref", reference), ("other", other), ("yardstick", yardstick)):
            table[f"{c}_{tag}"] = summaries[name].set_index("depth")[c]
        table[f"d_{c}_other"] = (table[f"{c}_other"] - table[f"{c}_ref"]).abs()
        table[f"d_{c}_yardstick"] = (table[f"{c}_yardstick"] - table[f"{c}_ref"]).abs()
    informative = (ref["H_s_norm"] < 0.99) & (ref["H_s_norm"] - ref["H_K_norm"] > 1e-6)
    worst = {f"max_d_{c}_{tag}": (None if not informative.any() or table.loc[informative, f"d_{c}_{tag}"].isna().all()
                                  else float(table.loc[informative, f"d_{c}_{tag}"].max()))
             for c in columns for tag in ("other", "yardstick")}

    def landmarks(t):
        fitted = t.dropna(subset=["mu"])
        zipf = None if fitted.empty else fitted.loc[(fitted["mu"] - 1).abs().idxmin()]
        top = t.loc[t["H_K_norm"].idxmax()]
        return {"relevance_peak_units": int(top["units"]), "relevance_peak_H_K_norm": float(top["H_K_norm"]),
                "zipf_layer_units": None if zipf is None else int(zipf["units"]),
                "zipf_layer_mu": None if zipf is None else float(zipf["mu"])}

    return {"reference": reference, "other": other, "yardstick": yardstick,
            "informative_layers_units": [int(u) for u in ref.loc[informative, "units"]],
            "largest_differences": worst,
            "landmarks": {name: landmarks(summaries[name]) for name in (reference, other, yardstick)},
            "per_layer": table.reset_index().round(6).replace({np.nan: None}).to_dict("records")}
