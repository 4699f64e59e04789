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


def test_compare_recipes_on_hand_built_summaries():
    import pandas as pd
    import pytest

    from rr_utils import experiments as X

    base = pd.DataFrame(dict(depth=[1, 2, 3, 4], units=[50, 20, 10, 2], H_s_norm=[1.0, 0.8, 0.5, 0.1],
                             H_K_norm=[0.0, 0.35, 0.45, 0.1], mu=[float("nan"), 1.3, 0.5, float("nan")]))
    other = base.assign(H_K_norm=[0.0, 0.30, 0.46, 0.1], mu=[float("nan"), 0.95, 0.4, float("nan")])
    seed1 = base.assign(H_K_norm=[0.0, 0.36, 0.40, 0.1])
    out = X.compare_recipes({"a": base, "c": other, "a1": seed1}, "a", "c", "a1")
    assert out["informative_layers_units"] == [20, 10]  # (1, 0) and the diagonal left out
    assert out["largest_differences"]["max_d_H_K_norm_other"] == pytest.approx(0.05)
    assert out["largest_differences"]["max_d_H_K_norm_yardstick"] == pytest.approx(0.05)
    assert out["landmarks"]["a"]["zipf_layer_units"] == 20 and out["landmarks"]["c"]["zipf_layer_units"] == 20
    assert out["landmarks"]["a"]["relevance_peak_units"] == 10
    with pytest.raises(ValueError, match="no entry"):
        X.compare_recipes({"a": base}, "a", "c", "a1")
    with pytest.raises(ValueError, match="same layer widths"):
        X.compare_recipes({"a": base, "c": other.assign(units=[50, 20, 10, 3]), "a1": seed1}, "a", "c", "a1")


def test_training_estimate_per_device(tmp_path):
    from rr_utils.experiments import gpu_network_seconds, training_estimate

    cpu = training_estimate(60_000, device="cpu")
    assert cpu.startswith("about ") and "2 CPU cores" in cpu and cpu.endswith("holds the network")
    assert training_estimate(8_000, networks=4, device="cpu").endswith("holds the networks")
    # on a GPU: the measured full-size network of results/gpu.json, scaled by rows
    measured = gpu_network_seconds()
    assert measured is not None and measured[1] == 60_000  # the committed measurement
    gpu = training_estimate(60_000, device="cuda")
    assert f"about {max(1, round(measured[0] / 60))} minute" in gpu and measured[2] in gpu
    (tmp_path / "gpu.json").write_text('{"network": {"complete": true, "wall_s": 240, "rows": 60000}, '
                                       '"environment": {"gpu": "X"}}')
    assert gpu_network_seconds(tmp_path / "gpu.json") == (240.0, 60000, "X")
    assert gpu_network_seconds(tmp_path / "missing.json") is None
    (tmp_path / "bad.json").write_text('{"network": {}}')
    assert gpu_network_seconds(tmp_path / "bad.json") is None
