"""The committed Fashion-MNIST quick subset (data/fashion_mnist_quick.npz) and ``load_dataset(..., rows=n)``.

Quick mode reads only the first rows of each split; where the full Fashion-MNIST is absent (a
newcomer's machine, simulated with RR_NO_SYSTEM_DATA=1 and an empty RR_DATA_DIR) those rows come
from the subset, bit-identical to the full set's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rr_utils import beyond as Y
from rr_utils import data as D
from rr_utils import experiments as X
from rr_utils import idx as IDX

from conftest import write_idx_set  # shared helper

SUBSET = D.REPO_DATA_DIR / D.FASHION_QUICK_NPZ_NAME
N = D.FASHION_QUICK_ROWS
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def newcomer(tmp_path, monkeypatch):
    """No Fashion-MNIST anywhere: the system folder hidden, an empty data dir."""
    monkeypatch.setenv("RR_NO_SYSTEM_DATA", "1")
    empty = tmp_path / "empty-data"
    empty.mkdir()
    monkeypatch.setenv("RR_DATA_DIR", str(empty))
    return empty


def full_fashion_or_skip(monkeypatch) -> Path:
    """The folder of the full Fashion-MNIST IDX set (data/raw or the Debian package), else skip."""
    monkeypatch.delenv("RR_NO_SYSTEM_DATA", raising=False)
    monkeypatch.delenv("RR_DATA_DIR", raising=False)
    try:
        return D.find_source("fashion-mnist", "train")[1][0].parent
    except FileNotFoundError:
        pytest.skip("the full Fashion-MNIST is not installed here (Debian package dataset-fashion-mnist or "
                    "`make data`): the subset cannot be compared with it")


def same_bits(a: D.Dataset, b: D.Dataset) -> bool:
    return (a.images.dtype == b.images.dtype and a.labels.dtype == b.labels.dtype
            and a.images.shape == b.images.shape and a.labels.shape == b.labels.shape
            and a.images.tobytes() == b.images.tobytes() and a.labels.tobytes() == b.labels.tobytes()
            and a.sha256 == b.sha256)


# --------------------------------------------------------------------------- the file


def test_subset_file_checksum_and_provenance():
    assert SUBSET.stat().st_size < 3_000_000
    assert IDX.sha256_file(SUBSET) == D.FASHION_QUICK_NPZ_SHA256
    with np.load(SUBSET, allow_pickle=False) as z:
        prov = json.loads(z["provenance"].item())
        for split in D.SPLITS:
            images, labels = z[f"{split}_images"], z[f"{split}_labels"]
            assert images.dtype == np.uint8 and images.shape == (N, 784)
            assert labels.dtype == np.uint8 and labels.shape == (N,) and labels.max() <= 9
            assert IDX.content_sha256(images, labels) == D.FASHION_QUICK_CONTENT_SHA256[split]
            info = prov["splits"][split]
            assert info["rows"] == N and info["content_sha256"] == D.FASHION_QUICK_CONTENT_SHA256[split]
            assert info["source_rows"] == {"train": 60_000, "test": 10_000}[split]
            assert len(info["source_content_sha256"]) == 64
    assert "Zalando" in prov["licence"] and "MIT" in prov["licence"]


def test_subset_equals_the_full_sets_first_rows(monkeypatch):
    """Served from the subset or from the full IDX files: the same bits (dtype, shape, values, sha256)."""
    folder = full_fashion_or_skip(monkeypatch)
    full = {(split, rows): D.load_dataset("fashion-mnist", split, verbose=False, rows=rows)
            for split in D.SPLITS for rows in (N, 137)}
    assert all("IDX files" in ds.source and str(folder.name) in ds.source for ds in full.values())
    plain = {split: D.load_dataset("fashion-mnist", split, verbose=False) for split in D.SPLITS}
    monkeypatch.setenv("RR_NO_SYSTEM_DATA", "1")
    monkeypatch.setenv("RR_DATA_DIR", str(ROOT / "no-such-data-dir"))
    for (split, rows), ds in full.items():
        sub = D.load_dataset("fashion-mnist", split, verbose=False, rows=rows)
        assert "quick subset" in sub.source
        assert same_bits(sub, ds), (split, rows)
        # and both are the first rows of the whole split, as quick mode sliced them before `rows`
        np.testing.assert_array_equal(sub.images, plain[split].images[:rows])
        np.testing.assert_array_equal(sub.labels, plain[split].labels[:rows])


def test_rebuild_script_reproduces_the_subset(tmp_path, monkeypatch):
    full_fashion_or_skip(monkeypatch)
    out = tmp_path / D.FASHION_QUICK_NPZ_NAME
    proc = subprocess.run([sys.executable, "scripts/make_fashion_quick_subset.py", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    with np.load(out) as a, np.load(SUBSET) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            if key != "provenance":  # it names the source folder
                assert a[key].tobytes() == b[key].tobytes(), key
    # the rebuilt file is accepted by the loader (same bytes with the same zlib, else the same content)
    monkeypatch.setenv("RR_NO_SYSTEM_DATA", "1")
    assert "quick subset" in D.load_dataset("fashion-mnist", "test", data_dir=tmp_path, verbose=False, rows=10).source


# --------------------------------------------------------------------------- a newcomer's machine


def test_newcomer_gets_quick_rows_from_the_subset(newcomer, capsys):
    for split in D.SPLITS:
        ds = D.load_dataset("fashion-mnist", split, rows=N)
        assert len(ds) == N and ds.images.shape == (N, 784) and ds.images.dtype == np.float32
        assert ds.labels.dtype == np.int64 and ds.sha256 == D.FASHION_QUICK_CONTENT_SHA256[split]
        assert "quick subset" in ds.source and D.FASHION_QUICK_NPZ_NAME in ds.source
        few = D.load_dataset("fashion-mnist", split, rows=5, verbose=False)
        np.testing.assert_array_equal(few.images, ds.images[:5])
        assert few.sha256 == IDX.content_sha256(np.rint(few.images * 255).astype(np.uint8), few.labels.astype(np.uint8))
    assert capsys.readouterr().out.count("from quick subset") == 2


@pytest.mark.parametrize("rows", [N + 1, None])
def test_newcomer_asking_for_more_gets_the_clear_error(newcomer, rows):
    with pytest.raises(FileNotFoundError) as info:
        D.load_dataset("fashion-mnist", "train", verbose=False, rows=rows)
    msg = str(info.value)
    assert "make data" in msg and "dataset-fashion-mnist" in msg and "download_mnist.py" in msg
    assert "RR_NO_SYSTEM_DATA is set" in msg and f"first {N:,} rows" in msg


def test_newcomer_without_the_subset_either(newcomer, monkeypatch):
    monkeypatch.setattr(D, "REPO_DATA_DIR", newcomer / "nowhere")
    with pytest.raises(FileNotFoundError, match=rf"quick subset data/{D.FASHION_QUICK_NPZ_NAME}.*missing too"):
        D.load_dataset("fashion-mnist", "train", verbose=False, rows=10)


def test_newcomer_quick_splits(newcomer):
    """The quick-mode readers of the notebooks ask only for the subset's rows."""
    s = X.load_splits("fashion-mnist", quick=True)
    assert s["train"].shape == (X.QUICK_TRAIN, 784) and s["test"].shape == (X.QUICK_TEST, 784)
    assert "quick subset" in s["source"]
    b = Y.load_splits("fashion-mnist", quick=True)
    assert b["x"].shape == (Y.QUICK_M, 784) and b["x_test"].shape == (Y.QUICK_M, 784) and b["M"] == Y.QUICK_M
    np.testing.assert_array_equal(b["x"], s["train"][:Y.QUICK_M])
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        X.load_splits("fashion-mnist", quick=False)


def test_partial_idx_set_is_still_an_error_with_rows(newcomer):
    folder = newcomer / "raw" / "fashion-mnist"
    folder.mkdir(parents=True)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="incomplete fashion-mnist IDX set"):
        D.load_dataset("fashion-mnist", "train", verbose=False, rows=10)


# --------------------------------------------------------------------------- a damaged subset


@pytest.mark.parametrize("where", ["inside a member", "truncated", "not a zip"])
def test_damaged_subset_names_the_file(newcomer, where):
    blob = bytearray(SUBSET.read_bytes())
    if where == "truncated":
        blob = blob[: len(blob) // 2]
    elif where == "not a zip":
        blob = bytearray(b"hello")
    else:
        blob[len(blob) // 2] ^= 0xFF
    bad = newcomer / D.FASHION_QUICK_NPZ_NAME  # <data_dir>'s copy is preferred to the repository's
    bad.write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="quick subset is corrupted") as info:
        D.load_dataset("fashion-mnist", "train", verbose=False, rows=10)
    assert str(bad) in str(info.value) and "git checkout" in str(info.value)
    assert "make_fashion_quick_subset.py" in str(info.value)


def _arrays():
    with np.load(SUBSET) as z:
        return {k: z[k].copy() for k in z.files}


def test_subset_with_one_wrong_label_is_rejected(newcomer):
    arrays = _arrays()
    arrays["test_labels"][0] = (arrays["test_labels"][0] + 1) % 10
    np.savez_compressed(newcomer / D.FASHION_QUICK_NPZ_NAME, **arrays)
    with pytest.raises(ValueError, match=r"test content sha256 differs") as info:
        D.load_dataset("fashion-mnist", "test", verbose=False, rows=10)
    assert str(newcomer / D.FASHION_QUICK_NPZ_NAME) in str(info.value)


def test_subset_with_a_wrong_shape_is_rejected(newcomer):
    arrays = _arrays()
    arrays["train_images"] = arrays["train_images"][:10]
    np.savez_compressed(newcomer / D.FASHION_QUICK_NPZ_NAME, **arrays)
    with pytest.raises(ValueError, match=r"train images are uint8 \(10, 784\)"):
        D.load_dataset("fashion-mnist", "train", verbose=False, rows=10)


def test_subset_recompressed_is_accepted(newcomer):
    np.savez_compressed(newcomer / D.FASHION_QUICK_NPZ_NAME, **_arrays())
    ds = D.load_dataset("fashion-mnist", "train", verbose=False, rows=N)
    assert ds.sha256 == D.FASHION_QUICK_CONTENT_SHA256["train"]


def test_subset_is_read_once(newcomer):
    D._read_fashion_quick_cached.cache_clear()
    for _ in range(3):
        D.load_dataset("fashion-mnist", "train", verbose=False, rows=100)
    info = D._read_fashion_quick_cached.cache_info()
    assert info.misses == 1 and info.hits == 2


# --------------------------------------------------------------------------- rows on every source


def test_rows_on_idx_files(tmp_path):
    arrays = write_idx_set(tmp_path / "raw" / "mnist", n_train=7, n_test=3)
    images, labels = arrays["train"]
    ds = D.load_dataset("mnist", "train", data_dir=tmp_path, verbose=False, rows=4)
    np.testing.assert_array_equal(ds.images, images[:4].reshape(4, -1) / np.float32(255))
    np.testing.assert_array_equal(ds.labels, labels[:4])
    assert ds.sha256 == IDX.content_sha256(images[:4].reshape(4, -1), labels[:4])
    whole = D.load_dataset("mnist", "train", data_dir=tmp_path, verbose=False)
    more = D.load_dataset("mnist", "train", data_dir=tmp_path, verbose=False, rows=100)  # as [:100]: all 7
    assert same_bits(whole, more) and more.source == whole.source


def test_rows_on_the_embedded_mnist(tmp_path):
    shutil.copy(D.REPO_DATA_DIR / D.EMBEDDED_NPZ_NAME, tmp_path / D.EMBEDDED_NPZ_NAME)
    whole = D.load_dataset("mnist", "train", data_dir=tmp_path, verbose=False)
    part = D.load_dataset("mnist", "train", data_dir=tmp_path, verbose=False, rows=X.QUICK_TRAIN)
    assert part.images.tobytes() == whole.images[:X.QUICK_TRAIN].tobytes()
    np.testing.assert_array_equal(part.labels, whole.labels[:X.QUICK_TRAIN])


@pytest.mark.parametrize("rows, error", [(0, ValueError), (-3, ValueError), (1.5, TypeError), (True, TypeError),
                                         ("10", TypeError)])
def test_bad_rows(rows, error):
    with pytest.raises(error, match="rows must be a positive integer"):
        D.load_dataset("mnist", "train", verbose=False, rows=rows)


def test_numpy_integer_rows(tmp_path):
    shutil.copy(D.REPO_DATA_DIR / D.EMBEDDED_NPZ_NAME, tmp_path / D.EMBEDDED_NPZ_NAME)
    assert len(D.load_dataset("mnist", "test", data_dir=tmp_path, verbose=False, rows=np.int64(12))) == 12


def test_quick_splits_are_todays_first_rows():
    """experiments.load_splits in quick mode: the same bytes as slicing the whole splits (before ``rows``)."""
    for dataset in ("mnist", "fashion-mnist"):
        try:
            tr = D.load_dataset(dataset, "train", verbose=False)
            te = D.load_dataset(dataset, "test", verbose=False)
        except FileNotFoundError:
            continue  # Fashion-MNIST absent: test_subset_equals_the_full_sets_first_rows says so
        s = X.load_splits(dataset, quick=True)
        assert s["train"].tobytes() == tr.images[:X.QUICK_TRAIN].tobytes()
        assert s["test"].tobytes() == te.images[:X.QUICK_TEST].tobytes()
        assert s["train"].dtype == np.float32 and s["train"].flags.c_contiguous
        assert s["source"] == tr.source
