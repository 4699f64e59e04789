"""A quick training + analysis, run in a fresh process by tests/test_determinism.py.

    python tests/_quick_run.py CACHE_DIR OUT_JSON [--slow SECONDS]

Trains a small DBN (the authors' recipe, 3 layers, 6 epochs each, a
checkpoint every epoch) on the first 400 embedded MNIST digits into CACHE_DIR,
computes each layer's resolution, relevance, distance to the bound and
power-law fit the way the notebooks do (rr_utils.experiments), and writes
everything, with a checksum of every weight matrix, through the normal atomic
JSON writer.  Each trained epoch is printed as ``trained L E`` (flushed), so
a test can see which epochs a run really trained.  ``--slow`` sleeps after
each epoch (in the log callback, outside the arithmetic) so that a test can
kill the run in the middle of training.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from rr_utils import experiments as X
from rr_utils import models as MD
from rr_utils.claims.c1_hierarchy import claim_c1_table
from rr_utils.claims.c3_power_laws import fit_layers
from rr_utils.data import load_dataset
from rr_utils.io import atomic_write_json

CONFIG = MD.DBNConfig(hidden_sizes=(48, 24, 12), epochs=6, checkpoint_epochs=tuple(range(7)),
                      monitor_rows=100, device=os.environ.get("RR_TEST_DEVICE", "cpu"), seed=3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cache_dir")
    ap.add_argument("out")
    ap.add_argument("--slow", type=float, default=0.0)
    args = ap.parse_args()

    train = load_dataset("mnist", "train", verbose=False).images[:400]
    test = load_dataset("mnist", "test", verbose=False).images[:100]

    def log(rec):
        if rec["epoch"] > 0:
            print(f"trained {rec['layer']} {rec['epoch']}", flush=True)
            time.sleep(args.slow)

    dbn = MD.train_dbn(CONFIG, train, cache_dir=args.cache_dir, data_id=MD.array_checksum(train),
                       test_data=test, test_id=MD.array_checksum(test), progress=False, log=log, num_threads=1)
    splits = {"train": train, "test": test, "dataset": "mnist", "source": "first 400 / 100 embedded digits"}
    table, counts = X.layer_table_and_counts(dbn, splits, seed=CONFIG.seed)
    fits = fit_layers(counts, dbn.sizes)
    doc = {
        "layers": X.layers_json(table, splits),
        "table": table.to_dict("records"),
        "fits": fits.drop(columns="reason").astype(float).to_dict("records"),
        "C1": claim_c1_table(table),
        "weights_sha256": [MD.array_checksum(np.concatenate([r.W.cpu().numpy().ravel(), r.vbias.cpu().numpy(), r.hbias.cpu().numpy()]))
                           for r in dbn.rbms],
        # the training history without wall times (the only non-deterministic field)
        "history": [{k: v for k, v in h.items() if k != "seconds"} for h in dbn.history],
        "cache_key": dbn.key,
    }
    atomic_write_json(args.out, doc)
    print("done", flush=True)


if __name__ == "__main__":
    main()
