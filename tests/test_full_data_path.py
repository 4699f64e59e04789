"""Full MNIST as a user who ran `make data-full` has it: IDX files under <data_dir>/raw/mnist/.

Small IDX files stand in for the 60,000/10,000 images (no network here). The whole path runs
through them: the full-data loader, quick training, the per-layer analysis.
"""

from __future__ import annotations

import numpy as np
import torch

from rr_utils import data as D
from rr_utils import entropy as E
from rr_utils import experiments as X
from conftest import write_idx_set  # shared helper


def test_idx_files_through_loading_training_and_analysis(tmp_path, monkeypatch):
    arrays = write_idx_set(tmp_path / "raw" / "mnist", n_train=300, n_test=120, gz=True)
    for split in ("train", "test"):  # the stand-in digits must not be blank: random grey levels
        assert arrays[split][0].max() > 0
    monkeypatch.setenv("RR_DATA_DIR", str(tmp_path))  # no embedded file there: only the IDX set exists
    splits = X.load_splits("mnist", quick=True)
    assert "IDX files" in D.load_dataset("mnist", "train", verbose=False).source
    assert splits["train"].shape == (300, 784) and splits["test"].shape == (120, 784)
    np.testing.assert_array_equal(splits["train"], arrays["train"][0].reshape(300, -1) / np.float32(255))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path / "cache"))
        dbn = X.train(X.dbn_config(quick=True, hidden_sizes=(40, 10, 3)), splits, progress=False)
    finally:
        torch.set_num_threads(before)
    assert dbn.sizes == (784, 40, 10, 3) and len(dbn.history) == 3 * (X.QUICK_EPOCHS + 1)
    table = X.layer_table(dbn, splits)
    assert list(table["split"].unique()) == ["train", "test"]
    assert table.groupby("split")["M"].first().to_dict() == {"train": 300, "test": 120}
    assert (table["below_bound_norm"] >= -1e-3).all()  # no layer above the bound
    counts = E.state_counts(dbn.binary_states(splits["train"])[1])
    assert counts.sum() == 300
