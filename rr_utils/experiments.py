"""Glue shared by the DBN notebooks (03-05): data, the default config, per-layer entropies.

The defaults are the authors' recipe (``rr_utils.models.DBNConfig``); quick
mode (the tests) keeps the architecture but trains 2 epochs on 2,000 images.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rr_utils import bound as B
from rr_utils import entropy as E
from rr_utils.data import load_dataset
from rr_utils.models import DBNConfig, array_checksum, train_dbn

QUICK_TRAIN, QUICK_TEST, QUICK_EPOCHS = 2_000, 500, 2


def load_splits(dataset: str = "mnist", quick: bool = False) -> dict:
    """{'train': images, 'test': images} (float32 in [0, 1]) plus 'source'; quick: subsets."""
    tr, te = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    out = {"train": tr.images, "test": te.images, "source": tr.source, "dataset": dataset}
    if quick:
        out["train"], out["test"] = tr.images[:QUICK_TRAIN], te.images[:QUICK_TEST]
    return out


def dbn_config(quick: bool = False, seed: int = 0, **overrides) -> DBNConfig:
    """The authors' recipe with ``seed``; quick mode trains QUICK_EPOCHS epochs."""
    if quick:
        overrides.setdefault("epochs", QUICK_EPOCHS)
    return DBNConfig(seed=seed, **overrides)


def train(config: DBNConfig, splits: dict, progress=None):
    """Train (or load from the cache) a DBN on splits['train'], monitoring splits['test']."""
    return train_dbn(config, splits["train"], data_id=array_checksum(splits["train"]),
                     test_data=splits["test"], test_id=array_checksum(splits["test"]), progress=progress)


def layer_table(dbn, splits: dict, seed: int = 0, threshold: float = 0.5) -> pd.DataFrame:
    """Entropies of each layer's thresholded states, per split, with the bound at the same M."""
    rows = []
    for split in ("train", "test"):
        x = splits[split]
        M = len(x)
        for depth, states in enumerate(dbn.binary_states(x, threshold=threshold), start=1):
            c = E.state_counts(states)
            s = E.summary(c)
            bound_hk = float(B.bound_at(M, s["H_s"]))
            rows.append(dict(split=split, seed=seed, depth=depth, units=states.shape[1], M=M,
                             n_states=s["n_states"], H_s=s["H_s"], H_K=s["H_K"], noise=s["noise"],
                             H_s_norm=s["H_s_norm"], H_K_norm=s["H_K_norm"], bound_H_K=bound_hk,
                             below_bound_norm=(bound_hk - s["H_K"]) / np.log(M)))
    return pd.DataFrame(rows)


def layer_counts(dbn, x) -> list[np.ndarray]:
    """State counts k_s of each layer for inputs x."""
    return [E.state_counts(s) for s in dbn.binary_states(x)]


def layers_json(table: pd.DataFrame, splits: dict) -> dict:
    """The results/layers.json document (entropies in nats)."""
    keep = ["units", "depth", "split", "seed", "H_s", "H_K", "bound_H_K"]
    return {"dataset": splits["dataset"], "source": splits["source"],
            "M": {"train": int(len(splits["train"])), "test": int(len(splits["test"]))},
            "layers": [{k: (round(float(v), 8) if isinstance(v, float) else v) for k, v in r.items()}
                       for r in table[keep].to_dict("records")]}
