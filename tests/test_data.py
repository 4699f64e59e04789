"""Tests for rr_utils.data (loaders), rr_utils.idx (IDX reader, hashes), rr_utils.downloads and rr_utils.io (atomic writes)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from rr_utils import data as D
from rr_utils import downloads as DL
from rr_utils import idx as IDX
from rr_utils.io import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text

from conftest import idx_bytes, small_set, write_idx, write_idx_set  # shared helpers

EMBEDDED = D.REPO_DATA_DIR / D.EMBEDDED_NPZ_NAME


# helpers (idx_bytes, write_idx, small_set, write_idx_set): tests/conftest.py


# --------------------------------------------------------------------------- read_idx


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("shape", [(5,), (4, 28, 28), (0,), (2, 3, 5)])
def test_read_idx_round_trip(tmp_path, gz, shape):
    arr = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    # The name says nothing about compression: detection is by magic bytes.
    path = write_idx(tmp_path / "file.bin", arr, gz=gz)
    got = IDX.read_idx(path)
    assert got.dtype == np.uint8 and got.shape == shape
    np.testing.assert_array_equal(got, arr)
    assert not got.flags.writeable


def _labels_raw():
    return idx_bytes(np.arange(5, dtype=np.uint8))


def _images_raw():
    return idx_bytes(np.zeros((2, 28, 28), np.uint8))


BAD_FILES = {
    "truncated payload": (_images_raw()[:-10], ["truncated", "expected 1584 bytes", "actual 1574 bytes"]),
    "trailing data": (_labels_raw() + b"\x00", ["trailing data", "expected 13 bytes", "actual 14 bytes"]),
    "truncated header": (_images_raw()[:9], ["truncated IDX header", "expected 16 bytes"]),
    "too short": (b"\x00\x00", ["too short"]),
    "wrong magic": (b"\x00\x00\x08\x02" + _labels_raw()[4:], ["magic", "0x00000802"]),
    "float idx": (b"\x00\x00\x0d\x01" + _labels_raw()[4:], ["magic", "0x00000d01"]),
    "not idx at all": (b"PK\x03\x04 some zip", ["magic", "0x504b0304"]),
    "corrupt gzip": (gzip.compress(_images_raw(), mtime=0)[:40] + b"\xff" * 40, ["corrupt gzip"]),
    "truncated gzip": (gzip.compress(_images_raw(), mtime=0)[:-12], ["corrupt gzip"]),
    "gzip of truncated idx": (gzip.compress(_labels_raw()[:-1], mtime=0), ["truncated", "expected 13 bytes"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_read_idx_rejects_bad_files(tmp_path, case):
    content, fragments = BAD_FILES[case]
    path = tmp_path / "bad-file-idx"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        IDX.read_idx(path)
    msg = str(info.value)
    assert str(path) in msg
    for fragment in fragments:
        assert fragment in msg


BAD_PAIRS = {
    "count mismatch": ((3, 28, 28), (4,), "count mismatch"),
    "swapped": ((4,), (4, 28, 28), "expected an IDX image file"),
    "not 28x28": ((4, 10, 10), (4,), "expected 28x28"),
    "label out of range": ((4, 28, 28), (4,), "outside 0..9"),
}


@pytest.mark.parametrize("case", sorted(BAD_PAIRS))
def test_read_idx_pair_rejects_mismatches(tmp_path, case):
    img_shape, lab_shape, fragment = BAD_PAIRS[case]
    labels = np.zeros(lab_shape, np.uint8)
    if case == "label out of range":
        labels[-1] = 10
    imgs = write_idx(tmp_path / "imgs", np.zeros(img_shape, np.uint8))
    labs = write_idx(tmp_path / "labs", labels)
    with pytest.raises(ValueError, match=fragment):
        IDX.read_idx_pair(imgs, labs)


# --------------------------------------------------------------------------- load_dataset: IDX sources


def test_raw_idx_preferred_over_embedded(tmp_path, capsys):
    shutil.copy(EMBEDDED, tmp_path / D.EMBEDDED_NPZ_NAME)
    arrays = write_idx_set(tmp_path / "raw" / "mnist", gz=True)
    for split, (images, labels) in arrays.items():
        ds = D.load_dataset("mnist", split, data_dir=tmp_path)
        assert "IDX files" in ds.source and "embedded" not in ds.source
        assert ds.images.shape == (len(labels), 784) and ds.images.dtype == np.float32
        assert ds.labels.dtype == np.int64
        np.testing.assert_array_equal(ds.images, images.reshape(len(images), -1) / np.float32(255))
        np.testing.assert_array_equal(ds.labels, labels)
        assert ds.sha256 == IDX.content_sha256(images.reshape(len(images), -1), labels)
    assert capsys.readouterr().out.count("[data] mnist/") == 2


def test_uncompressed_and_gz_give_same_sha(tmp_path):
    write_idx_set(tmp_path / "a" / "raw" / "mnist", gz=True)
    write_idx_set(tmp_path / "b" / "raw" / "mnist", gz=False)
    a = D.load_dataset("mnist", "test", data_dir=tmp_path / "a", verbose=False)
    b = D.load_dataset("mnist", "test", data_dir=tmp_path / "b", verbose=False)
    assert a.sha256 == b.sha256 and a.source != b.source


def test_incomplete_idx_set_is_an_error(tmp_path):
    folder = tmp_path / "raw" / "mnist"
    write_idx_set(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    shutil.copy(EMBEDDED, tmp_path / D.EMBEDDED_NPZ_NAME)
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        D.load_dataset("mnist", "train", data_dir=tmp_path, verbose=False)


def test_fashion_from_data_dir(tmp_path, monkeypatch):
    monkeypatch.setitem(D.SYSTEM_DIRS, "fashion-mnist", ())
    arrays = write_idx_set(tmp_path / "raw" / "fashion-mnist", gz=False)
    ds = D.load_dataset("fashion-mnist", "train", data_dir=tmp_path, verbose=False)
    np.testing.assert_array_equal(ds.labels, arrays["train"][1])


def test_fashion_missing_names_searched_places(tmp_path, monkeypatch):
    monkeypatch.delenv("RR_NO_SYSTEM_DATA", raising=False)
    monkeypatch.setitem(D.SYSTEM_DIRS, "fashion-mnist", (tmp_path / "system",))
    with pytest.raises(FileNotFoundError) as info:
        D.load_dataset("fashion-mnist", "test", data_dir=tmp_path, verbose=False)
    msg = str(info.value)
    assert str(tmp_path / "raw" / "fashion-mnist") in msg and str(tmp_path / "system") in msg
    assert "dataset-fashion-mnist" in msg and "make data" in msg


def test_no_system_data_hides_the_system_folder(tmp_path, monkeypatch):
    """RR_NO_SYSTEM_DATA: the code sees what a machine without the Debian package sees."""
    system = tmp_path / "system"
    write_idx_set(system)
    monkeypatch.setitem(D.SYSTEM_DIRS, "fashion-mnist", (system,))
    monkeypatch.delenv("RR_NO_SYSTEM_DATA", raising=False)
    assert D.find_source("fashion-mnist", "train", tmp_path / "data")[1][0].parent == system
    for off in ("", "0", "false", "no"):
        monkeypatch.setenv("RR_NO_SYSTEM_DATA", off)
        assert not D.system_dirs_ignored()
    monkeypatch.setenv("RR_NO_SYSTEM_DATA", "1")
    with pytest.raises(FileNotFoundError, match="RR_NO_SYSTEM_DATA is set") as info:
        D.find_source("fashion-mnist", "train", tmp_path / "data")
    assert str(system) not in str(info.value)


def test_cache_notices_replaced_files(tmp_path):
    folder = tmp_path / "raw" / "mnist"
    write_idx_set(folder, gz=False)
    first = D.load_dataset("mnist", "test", data_dir=tmp_path, verbose=False)
    labels = np.full(3, 7, np.uint8)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels)
    second = D.load_dataset("mnist", "test", data_dir=tmp_path, verbose=False)
    assert first.sha256 != second.sha256
    np.testing.assert_array_equal(second.labels, labels)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(name="cifar10"), "mnist, fashion-mnist"),
    (dict(name="mnist", split="validation"), "train, test"),
])
def test_bad_arguments(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        D.load_dataset(**kwargs)


# --------------------------------------------------------------------------- embedded MNIST


@pytest.fixture
def embedded_dir(tmp_path):
    """A data dir holding only the embedded npz (so a local data/raw/mnist cannot interfere)."""
    shutil.copy(EMBEDDED, tmp_path / D.EMBEDDED_NPZ_NAME)
    return tmp_path


def test_embedded_file_checksum():
    assert IDX.sha256_file(EMBEDDED) == D.EMBEDDED_NPZ_SHA256


def test_embedded_splits(embedded_dir):
    train = D.load_dataset("mnist", "train", data_dir=embedded_dir, verbose=False)
    test = D.load_dataset("mnist", "test", data_dir=embedded_dir, verbose=False)
    assert "embedded" in train.source
    assert train.images.shape == (8000, 784) and test.images.shape == (2000, 784)
    for ds in (train, test):
        assert ds.images.dtype == np.float32 and ds.labels.dtype == np.int64
        assert ds.images.min() == 0.0 and ds.images.max() == 1.0
        # exact grey levels: every value is k/255
        np.testing.assert_array_equal(np.rint(ds.images * 255) / np.float32(255), ds.images)
        assert set(np.unique(ds.labels)) == set(range(10))
    # disjoint, covering all 10,000 digits
    idx_train, idx_test = D.embedded_split_indices("train"), D.embedded_split_indices("test")
    assert len(np.intersect1d(idx_train, idx_test)) == 0
    assert len(np.union1d(idx_train, idx_test)) == 10_000
    np.testing.assert_array_equal(idx_train, np.random.default_rng(0).permutation(10_000)[:8000])
    # train is the documented subset of the file
    with np.load(EMBEDDED) as z:
        np.testing.assert_array_equal(train.labels, z["labels"][idx_train])
    assert train.sha256 != test.sha256


def test_load_mnist_returns_independent_copies(embedded_dir):
    x1, y1 = D.load_mnist("test", data_dir=embedded_dir, verbose=False)
    x1[:] = -1.0
    y1[:] = 99
    x2, y2 = D.load_mnist("test", data_dir=embedded_dir, verbose=False)
    assert x2.min() == 0.0 and y2.max() == 9


def test_rr_data_dir_env(embedded_dir, monkeypatch):
    monkeypatch.setenv("RR_DATA_DIR", str(embedded_dir))
    assert D.default_data_dir() == embedded_dir
    kind, paths = D.find_source("mnist", "train")
    assert kind == "embedded" and paths[0] == embedded_dir / D.EMBEDDED_NPZ_NAME


@pytest.mark.parametrize("where", ["inside a member", "truncated"])
def test_embedded_corruption_detected(tmp_path, where):
    blob = bytearray(EMBEDDED.read_bytes())
    if where == "truncated":
        blob = blob[: len(blob) // 2]
    else:
        blob[len(blob) // 2] ^= 0xFF
    (tmp_path / D.EMBEDDED_NPZ_NAME).write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"corrupted.*make data"):
        D.load_dataset("mnist", "train", data_dir=tmp_path, verbose=False)


def test_embedded_wrong_content_detected(tmp_path):
    with np.load(EMBEDDED) as z:
        images, labels = z["images"].copy(), z["labels"].copy()
    labels[0] = 1  # a valid npz with one wrong label
    np.savez_compressed(tmp_path / D.EMBEDDED_NPZ_NAME, images=images, labels=labels)
    with pytest.raises(ValueError, match="sha256"):
        D.load_dataset("mnist", "test", data_dir=tmp_path, verbose=False)


def test_embedded_recompressed_is_accepted(tmp_path):
    with np.load(EMBEDDED) as z:
        np.savez_compressed(tmp_path / D.EMBEDDED_NPZ_NAME, images=z["images"], labels=z["labels"])
    ds = D.load_dataset("mnist", "test", data_dir=tmp_path, verbose=False)
    assert len(ds) == 2000


def test_missing_embedded_says_how_to_regenerate(tmp_path):
    with pytest.raises(FileNotFoundError, match="make data"):
        D.load_dataset("mnist", "train", data_dir=tmp_path, verbose=False)


# --------------------------------------------------------------------------- downloads
# pooch against a local HTTP server (no internet needed): the files and their MD5s are made here.


@pytest.fixture
def http_dir(tmp_path, monkeypatch):
    """(folder, base URL): ``folder`` served by http.server on 127.0.0.1, on a free port."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for var in ("NO_PROXY", "no_proxy"):  # a proxy in the environment must not see 127.0.0.1
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def serve_idx_set(folder: Path, monkeypatch, name: str = "fashion-mnist") -> dict:
    """A small IDX set as .gz files in ``folder``; RAW_MD5[name] replaced by their MD5s. Returns the arrays."""
    arrays = write_idx_set(folder, n_train=20, n_test=5, gz=True)
    monkeypatch.setitem(DL.RAW_MD5, name, {f: md5_of(folder / f) for f in DL.RAW_MD5[name]})
    return arrays


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_file_ok_and_skip(http_dir, tmp_path, capsys):
    root, base = http_dir
    (root / "src.gz").write_bytes(b"hello mnist" * 100)
    md5 = md5_of(root / "src.gz")
    dest = tmp_path / "out" / "file.gz"
    assert DL.download_file(base + "src.gz", dest, md5) == dest
    assert dest.read_bytes() == (root / "src.gz").read_bytes()
    assert "downloaded" in capsys.readouterr().out
    (root / "src.gz").unlink()  # a second call must not need the source
    DL.download_file(base + "src.gz", dest, md5)
    assert "skipped" in capsys.readouterr().out


def test_download_file_md5_mismatch_leaves_nothing(http_dir, tmp_path):
    root, base = http_dir
    (root / "src.gz").write_bytes(b"x" * 5000)
    dest = tmp_path / "out" / "file.gz"
    with pytest.raises(ValueError, match=r"md5 mismatch, expected 0{32}, got [0-9a-f]{32}.*deleted.*not written"):
        DL.download_file(base + "src.gz", dest, "0" * 32, verbose=False)
    assert not dest.exists() and leftovers(dest.parent) == []  # no temporary file either


def test_download_file_mismatch_keeps_old_file(http_dir, tmp_path):
    root, base = http_dir
    (root / "src.gz").write_bytes(b"new")
    dest = tmp_path / "file.gz"
    dest.write_bytes(b"old")
    with pytest.raises(ValueError, match="kept as it was"):
        DL.download_file(base + "src.gz", dest, "0" * 32, verbose=False)
    assert dest.read_bytes() == b"old" and leftovers(tmp_path) == ["file.gz", "www"]


def test_download_file_replaces_a_bad_local_copy(http_dir, tmp_path):
    root, base = http_dir
    (root / "src.gz").write_bytes(b"published")
    dest = tmp_path / "file.gz"
    dest.write_bytes(b"truncated")
    DL.download_file(base + "src.gz", dest, md5_of(root / "src.gz"), verbose=False)
    assert dest.read_bytes() == b"published"


def test_download_file_unreachable(http_dir, tmp_path):
    _, base = http_dir
    dest = tmp_path / "file.gz"
    with pytest.raises(ConnectionError, match="could not download .*404"):
        DL.download_file(base + "missing.gz", dest, "0" * 32, verbose=False)
    with pytest.raises(ValueError, match="unsupported URL scheme 'file'"):
        DL.download_file((tmp_path / "x").as_uri(), dest, "0" * 32, verbose=False)
    assert not dest.exists()


def test_download_raw_uses_mirrors_in_order(http_dir, tmp_path, monkeypatch):
    root, base = http_dir
    serve_idx_set(root / "good", monkeypatch, "mnist")
    dead = base + "dead/"
    paths = DL.download_raw("mnist", tmp_path / "dest", mirrors=[dead, base + "good"], verbose=False)
    assert sorted(p.name for p in paths) == sorted(DL.RAW_MD5["mnist"])
    with pytest.raises(ConnectionError, match="any mirror"):
        DL.download_raw("mnist", tmp_path / "dest2", mirrors=[dead], verbose=False)


def test_fashion_downloaded_from_the_url_override(http_dir, tmp_path, monkeypatch, capsys):
    """No copy anywhere: ensure_dataset fetches the four files from $RR_FASHION_MNIST_URL, checks them, and
    load_dataset reads them; a second call downloads nothing."""
    root, base = http_dir
    arrays = serve_idx_set(root / "fmnist", monkeypatch)
    monkeypatch.setenv("RR_FASHION_MNIST_URL", base + "fmnist/")
    monkeypatch.setenv("RR_NO_SYSTEM_DATA", "1")
    monkeypatch.setenv("RR_DATA_DIR", str(tmp_path / "data"))
    assert DL.mirrors_for("fashion-mnist") == (base + "fmnist/",)
    assert DL.ensure_dataset("fashion-mnist") == ("downloaded", tmp_path / "data" / "raw" / "fashion-mnist")
    assert "md5 of the four files checked" in capsys.readouterr().out
    assert leftovers(tmp_path / "data" / "raw" / "fashion-mnist") == sorted(DL.RAW_MD5["fashion-mnist"])
    for split in D.SPLITS:
        ds = D.load_dataset("fashion-mnist", split, verbose=False)
        np.testing.assert_array_equal(ds.labels, arrays[split][1])
        np.testing.assert_array_equal(ds.images, arrays[split][0].reshape(len(ds), -1) / np.float32(255))
    shutil.rmtree(root / "fmnist")  # nothing is fetched again
    assert DL.ensure_dataset("fashion-mnist", verbose=False)[0] == "present"


def test_corrupted_download_is_rejected_and_not_kept(http_dir, tmp_path, monkeypatch):
    root, base = http_dir
    serve_idx_set(root / "fmnist", monkeypatch)
    bad = root / "fmnist" / "train-images-idx3-ubyte.gz"
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte after the checksums were recorded
    bad.write_bytes(bytes(raw))
    monkeypatch.setenv("RR_NO_SYSTEM_DATA", "1")
    dest = tmp_path / "data" / "raw" / "fashion-mnist"
    with pytest.raises(ConnectionError) as info:
        DL.ensure_dataset("fashion-mnist", data_dir=tmp_path / "data", mirrors=[base + "fmnist"], verbose=False)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and "md5 mismatch" in msg and "checksum mismatch" in msg
    assert "train-images-idx3-ubyte.gz" not in leftovers(dest) and not [f for f in leftovers(dest) if "tmp" in f]
    with pytest.raises(FileNotFoundError):  # nothing usable was left behind
        D.load_dataset("fashion-mnist", data_dir=tmp_path / "data", verbose=False)


def test_ensure_prefers_a_copy_already_there(tmp_path, monkeypatch, capsys):
    """The Debian package's folder (or the data dir) is used as it is: no download is tried."""
    system = tmp_path / "system"
    write_idx_set(system)
    monkeypatch.setitem(D.SYSTEM_DIRS, "fashion-mnist", (system,))
    monkeypatch.delenv("RR_NO_SYSTEM_DATA", raising=False)
    dead = ["http://127.0.0.1:9/"]  # would fail if tried
    assert DL.ensure_dataset("fashion-mnist", data_dir=tmp_path / "data", mirrors=dead) == ("present", system)
    assert "nothing downloaded" in capsys.readouterr().out
    write_idx_set(tmp_path / "data" / "raw" / "fashion-mnist")
    monkeypatch.setenv("RR_NO_SYSTEM_DATA", "1")
    assert DL.ensure_dataset("fashion-mnist", data_dir=tmp_path / "data", mirrors=dead, verbose=False) == (
        "present", tmp_path / "data" / "raw" / "fashion-mnist")


def _ensure_script(tmp_path, env_extra):
    import subprocess
    import sys

    env = {**os.environ, "PY": sys.executable, "RR_DATA_DIR": str(tmp_path / "data"), "RR_NO_SYSTEM_DATA": "1",
           **env_extra}
    return subprocess.run(["bash", str(D.REPO_DATA_DIR.parent / "scripts" / "ensure_fashion_mnist.sh")],
                          env=env, capture_output=True, text=True, timeout=120)


def test_ensure_script_says_what_it_did(http_dir, tmp_path):
    """scripts/ensure_fashion_mnist.sh: a copy present -> exit 0 saying where; else the download from
    $RR_FASHION_MNIST_URL, here of files that are not the published ones -> exit 1 naming the mismatch,
    nothing left in the data dir, and no apt-get (RR_NO_SYSTEM_DATA)."""
    root, base = http_dir
    write_idx_set(root / "fmnist")  # served, but their MD5s are not the published ones
    proc = _ensure_script(tmp_path, {"RR_FASHION_MNIST_URL": base + "fmnist/"})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "md5 mismatch" in proc.stderr and "RR_NO_SYSTEM_DATA is set" in proc.stderr
    assert leftovers(tmp_path / "data" / "raw" / "fashion-mnist") == []
    write_idx_set(tmp_path / "data" / "raw" / "fashion-mnist")
    proc = _ensure_script(tmp_path, {"RR_FASHION_MNIST_URL": "http://127.0.0.1:9/"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "present" in proc.stdout and "nothing downloaded" in proc.stdout


# --------------------------------------------------------------------------- atomic writes


def test_atomic_write_helpers(tmp_path):
    p = tmp_path / "sub" / "a.txt"
    atomic_write_text(p, "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(p, b"\x00\x01")
    assert p.read_bytes() == b"\x00\x01"
    j = tmp_path / "r.json"
    obj = {"b": np.float32(0.1), "a": [np.int64(3), np.arange(2)], "c": {"z": True, "y": 1e-300}}
    atomic_write_json(j, obj)
    text = j.read_text()
    assert text.endswith("}\n") and text.index('"a"') < text.index('"b"')
    assert json.loads(text) == {"a": [3, [0, 1]], "b": float(np.float32(0.1)), "c": {"y": 1e-300, "z": True}}
    atomic_write_json(j, obj)
    assert j.read_text() == text  # deterministic
    assert sorted(os.listdir(tmp_path)) == ["r.json", "sub"]  # no temp files left


def test_atomic_path_keeps_suffix_and_replaces(tmp_path):
    target = tmp_path / "arr.npy"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".npy" and tmp != target
        np.save(tmp, np.arange(3))  # np.save would append .npy to a name without it
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    assert os.listdir(tmp_path) == ["arr.npy"]


@pytest.mark.parametrize("how", ["atomic_path", "json", "bytes"])
def test_failed_write_keeps_old_file(tmp_path, how):
    target = tmp_path / "result.json"
    target.write_text("old\n")

    class Boom(Exception):
        pass

    if how == "atomic_path":
        with pytest.raises(Boom):
            with atomic_path(target) as tmp:
                tmp.write_text("partial ne")
                raise Boom
    elif how == "json":
        with pytest.raises(TypeError):
            atomic_write_json(target, {"x": object()})
    else:
        with pytest.raises(TypeError):
            atomic_write_bytes(target, "not bytes")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["result.json"]


def test_failed_replace_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new" * 1000)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.bin"]
