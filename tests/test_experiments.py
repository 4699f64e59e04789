"""rr_utils.experiments glue: the layer table and the counts come from one up-pass and agree."""

import numpy as np
import pandas as pd
import torch

from rr_utils import entropy as E
from rr_utils import experiments as X
from rr_utils.models import DBNConfig, train_dbn


def test_layer_table_and_counts_agree_with_the_separate_helpers(tmp_path):
    rng = np.random.default_rng(0)
    protos = rng.random((5, 64)) < 0.4
    x = (protos[np.arange(300) % 5] ^ (rng.random((300, 64)) < 0.05)).astype(np.float32)
    splits = {"train": x[:200], "test": x[200:]}
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dbn = train_dbn(DBNConfig(hidden_sizes=(16, 6, 3), epochs=2, device="cpu"), splits["train"],
                        cache_dir=tmp_path, data_id="x", progress=False)
    finally:
        torch.set_num_threads(before)
    table, counts = X.layer_table_and_counts(dbn, splits, seed=3)
    pd.testing.assert_frame_equal(table, X.layer_table(dbn, splits, seed=3))
    expected = [E.state_counts(s) for s in dbn.binary_states(splits["train"])]  # counted on their own
    assert len(counts) == len(expected) == dbn.n_layers
    assert all(np.array_equal(a, b) for a, b in zip(counts, expected))
    train = table[table["split"] == "train"]
    assert list(train["n_states"]) == [len(c) for c in counts]
