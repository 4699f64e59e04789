"""rr_utils.networks: the named networks of a run and the workflow's training job."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rr_utils import experiments as X
from rr_utils.networks import NetworkSpec, analyse_network, parse_arch, train_network


def test_a_spec_gives_the_arrays_and_config_a_notebook_passes():
    s = NetworkSpec("mnist", seed=3, hidden_sizes=[50, 10], rows=400)
    splits, ref = s.splits(quick=True), X.load_splits("mnist", quick=True)
    assert np.array_equal(splits["train"], ref["train"][:400]) and np.array_equal(splits["test"], ref["test"])
    assert s.config(quick=True) == X.dbn_config(True, 3, hidden_sizes=(50, 10))
    assert NetworkSpec("mnist").config(quick=False) == X.dbn_config(False, 0)
    assert s.name == "mnist_50-10_r400_s3"
    assert NetworkSpec("fashion-mnist", 1, recipe="classical", test_rows=2000, epochs=5).name == \
        "fashion-mnist_default_classical_t2000_ep5_s1"
    assert NetworkSpec.from_dict(s.to_dict()) == s


@pytest.mark.parametrize("fields, problem", [
    ({"dataset": "cifar"}, "dataset"), ({"seed": -1}, "seed"), ({"seed": True}, "seed"),
    ({"rows": 1}, "rows"), ({"recipe": "other"}, "recipe"), ({"epochs": 0}, "epochs"),
    ({"hidden_sizes": "10-x"}, "architecture"), ({"colour": "red"}, "unknown fields"),
])
def test_bad_specs_are_named(fields, problem):
    with pytest.raises(ValueError, match=problem):
        NetworkSpec.from_dict(fields)


def test_more_rows_than_the_run_has_is_an_error():
    with pytest.raises(ValueError, match="asks for 5000 train rows"):
        NetworkSpec("mnist", rows=5000).splits(quick=True)


def test_parse_arch():
    assert parse_arch("500-250") == (500, 250) and parse_arch("default") is None


def test_train_then_load_then_analyse(tmp_path, monkeypatch):
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path))
    spec = NetworkSpec("mnist", seed=0, hidden_sizes=[12, 6], rows=300, epochs=2)
    first = train_network(spec, quick=True, threads=1)
    assert first["source"] == "trained" and first["epochs_trained"] == 4 and first["threads"] == 1
    again = train_network(spec, quick=True, threads=1)
    assert again["source"] == "model-cache" and again["cache_key"] == first["cache_key"]
    rows = analyse_network(spec, quick=True)
    assert len(rows) == 2 * 2 and set(rows["split"]) == {"train", "test"}
    assert (rows["cache_key"] == first["cache_key"]).all() and rows["mu"].notna().sum() <= 2


def test_the_notebook_path_refuses_an_undeclared_network_under_the_workflow(tmp_path, monkeypatch):
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RR_REQUIRE_CACHED", "1")
    splits = X.load_splits("mnist", quick=True)
    with pytest.raises(RuntimeError, match="did not train.*workflow/config.yaml"):
        X.train(X.dbn_config(True, 0, hidden_sizes=(7,)), splits)


def test_command_line_writes_its_record(tmp_path):
    out = tmp_path / "rec.json"
    env = {"RR_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    spec = json.dumps({"dataset": "mnist", "hidden_sizes": [8], "rows": 200, "epochs": 1})
    r = subprocess.run([sys.executable, "-m", "rr_utils.networks", "train", "--spec", spec, "--quick",
                        "--out", str(out)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["network"] == "mnist_8_r200_ep1_s0"
    bad = subprocess.run([sys.executable, "-m", "rr_utils.networks", "train", "--spec", '{"seed": "x"}',
                          "--out", str(out)], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "--spec" in bad.stderr


def test_the_model_cache_defaults_to_the_checkouts_cache_folder(monkeypatch, tmp_path):
    from pathlib import Path

    from rr_utils.models import default_cache_dir

    monkeypatch.delenv("RR_CACHE_DIR", raising=False)
    assert default_cache_dir() == Path(__file__).resolve().parents[1] / "cache" / "models"
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "models"
