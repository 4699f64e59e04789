"""Hostile input across the public API: one table, one row per bad input.

Each row is (callable of a scratch folder, expected exception type, regex the
message must match).  A row passes only if the call raises *that* type with
*that* message: an unrelated traceback (IndexError, KeyError, a numpy ufunc
error ...) fails it.  The command line has its own rows (exit status 2, one
``rr-relevance: error:`` line, nothing on stdout).  The last tests check that a
rejected or failing write leaves the previous artifact intact and no
temporary file behind.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from rr_utils import artifacts as A  # noqa: E402
from rr_utils import bound as B  # noqa: E402
from rr_utils import cli  # noqa: E402
from rr_utils import data as D  # noqa: E402
from rr_utils import entropy as E  # noqa: E402
from rr_utils import experiments as X  # noqa: E402
from rr_utils import idx as IDX  # noqa: E402
from rr_utils import io as IO  # noqa: E402
from rr_utils import models as MD  # noqa: E402
from rr_utils.models import checkpoints as MDC  # noqa: E402
from rr_utils import plotting as P  # noqa: E402
from rr_utils.claims import c1_hierarchy as C1  # noqa: E402
from rr_utils.claims import c2_near_bound as C2  # noqa: E402
from rr_utils.claims import c3_power_laws as C3  # noqa: E402
from rr_utils.representations import pixel_states  # noqa: E402


# --------------------------------------------------------------------------- file makers


def _idx(arr, magic=None) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    magic = 0x0800 | arr.ndim if magic is None else magic
    return magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()


def _file(d: Path, name: str, content: bytes) -> Path:
    p = d / name
    p.write_bytes(content)
    return p


IMAGES = _idx(np.zeros((3, 28, 28)))
LABELS = _idx(np.zeros(3))


def _pair(d: Path, n_images: int, n_labels: int):
    return IDX.read_idx_pair(_file(d, "img", _idx(np.zeros((n_images, 28, 28)))),
                           _file(d, "lab", _idx(np.zeros(n_labels))))


def _counter_mismatch():
    c = E.StateCounter()
    c.update([[0, 1], [1, 1]])
    c.update([[0, 1, 1]])


TINY = dict(hidden_sizes=(4,), epochs=1, monitor_rows=10, device="cpu")
GOOD = np.zeros((10, 6), np.float32)
LAYER_TABLE = pd.DataFrame({"split": ["train"], "depth": [1], "units": [5], "H_K": [0.1],
                            "H_K_norm": [0.1], "H_s_norm": [0.5]})


def _save_fig(d, name="fig_ok", fig="figure", **kw):
    if fig == "figure":
        fig = plt.figure()
    try:
        return P.save_figure(fig, name, quick=True, **kw)
    finally:
        plt.close("all")


def _load_results_garbage(d):
    (d / "broken.json").write_text('{"a": 1, ')  # a truncated write by some other tool
    return A.load_results("broken")


# --------------------------------------------------------------------------- the table
# (id, callable(tmp folder), exception type, message regex)

ROWS = [
    # entropy: states
    ("state_counts 1-D", lambda d: E.state_counts([0, 1, 1]), ValueError, r"states: expected a 2-D"),
    ("state_counts 3-D", lambda d: E.state_counts(np.zeros((2, 2, 2))), ValueError, r"2-D .* got 3-D"),
    ("state_counts empty", lambda d: E.state_counts(np.zeros((0, 3))), ValueError, r"empty array \(M = 0"),
    ("state_counts zero units", lambda d: E.state_counts(np.zeros((3, 0))), ValueError, r"zero units"),
    ("state_counts NaN", lambda d: E.state_counts([[0.0, np.nan]]), ValueError, r"NaN"),
    ("state_counts non-binary", lambda d: E.state_counts([[0, 2]]), ValueError, r"values other than 0/1"),
    ("state_counts probabilities", lambda d: E.state_counts([[0.2, 0.9]]), ValueError, r"threshold probabilities"),
    ("state_counts inf", lambda d: E.state_counts([[np.inf, 0]]), ValueError, r"values other than 0/1"),
    ("state_counts strings", lambda d: E.state_counts([["0", "1"]]), ValueError, r"not numeric"),
    ("state_counts ragged", lambda d: E.state_counts([[0, 1], [1]]), ValueError, r"cannot be read as an array"),
    ("state_counts complex", lambda d: E.state_counts([[1j, 0]]), ValueError, r"complex"),
    ("state_counts None", lambda d: E.state_counts(None), ValueError, r"dtype object"),
    # entropy: counts
    ("resolution 2-D counts", lambda d: E.resolution(np.ones((2, 2))), ValueError, r"counts: expected a 1-D"),
    ("relevance empty", lambda d: E.relevance([]), ValueError, r"counts: empty"),
    ("noise negative", lambda d: E.noise([3, -1]), ValueError, r"negative counts"),
    ("summary non-integer", lambda d: E.summary([1.5, 2]), ValueError, r"non-integer counts"),
    ("summary NaN", lambda d: E.summary([1.0, np.nan]), ValueError, r"contains NaN"),
    ("summary inf", lambda d: E.summary([1.0, np.inf]), ValueError, r"infinite"),
    ("summary all zero", lambda d: E.summary([0, 0]), ValueError, r"all counts are zero"),
    ("relevance bool counts", lambda d: E.relevance(np.array([True, False])), ValueError, r"not an integer count"),
    ("rank_frequency strings", lambda d: E.rank_frequency(["a"]), ValueError, r"not an integer count"),
    ("fit_power_law k_min 0", lambda d: E.fit_power_law([1, 2, 3], k_min=0), ValueError, r"k_min"),
    ("fit_power_law min_tail str", lambda d: E.fit_power_law([1, 2, 3], min_tail="a"), ValueError,
     r"min_tail: expected an integer"),
    ("fit_power_law too few", lambda d: E.fit_power_law([1, 2, 3]), ValueError, r"too few states"),
    ("sample_power_law_counts mu NaN", lambda d: E.sample_power_law_counts(5, np.nan), ValueError, r"mu: must be > 0"),
    ("sample_power_law_counts mu 0", lambda d: E.sample_power_law_counts(5, 0.0), ValueError, r"mu: must be > 0"),
    ("sample_power_law_counts k_max < k_min", lambda d: E.sample_power_law_counts(5, 1.0, k_min=5, k_max=2),
     ValueError, r"k_max: must be >= 5"),
    ("sample_power_law_counts k_min 0", lambda d: E.sample_power_law_counts(5, 1.0, k_min=0), ValueError, r"k_min"),
    ("sample_power_law_counts n -1", lambda d: E.sample_power_law_counts(-1, 1.0), ValueError, r"n_states"),
    ("power_law_sample M 0", lambda d: E.power_law_sample(0, 1.0), ValueError, r"M: must be >= 1"),
    ("power_law_sample M str", lambda d: E.power_law_sample("10", 1.0), ValueError, r"M: expected an integer"),
    ("power_law_sample mu inf", lambda d: E.power_law_sample(10, np.inf), ValueError, r"mu"),
    ("StateCounter threshold 1.5", lambda d: E.StateCounter(1.5), ValueError, r"threshold: must lie in \[0, 1\)"),
    ("StateCounter threshold str", lambda d: E.StateCounter("x"), ValueError, r"threshold: expected a number"),
    ("StateCounter unit mismatch", lambda d: _counter_mismatch(), ValueError, r"has 3 units, earlier batches had 2"),
    ("StateCounter probabilities > 1", lambda d: E.StateCounter().update(np.array([[0.5, 1.5]])), ValueError,
     r"outside \[0, 1\]"),
    ("StateCounter counts before update", lambda d: E.StateCounter().counts(), ValueError, r"no states counted"),
    # bound
    ("max_relevance_curve M 0", lambda d: B.max_relevance_curve(0), ValueError, r"M: sample size must be >= 1"),
    ("max_relevance_curve M float", lambda d: B.max_relevance_curve(2.5), ValueError, r"M: expected an integer"),
    ("max_relevance_curve M bool", lambda d: B.max_relevance_curve(True), ValueError, r"boolean"),
    ("max_relevance_curve M str", lambda d: B.max_relevance_curve("10"), ValueError, r"M: expected an integer"),
    ("max_relevance_curve mu negative", lambda d: B.max_relevance_curve(10, -1.0), ValueError, r"mu: negative"),
    ("max_relevance_curve mu NaN", lambda d: B.max_relevance_curve(10, np.nan), ValueError, r"mu: contains NaN"),
    ("max_relevance_curve mu empty", lambda d: B.max_relevance_curve(10, []), ValueError, r"mu: empty"),
    ("max_relevance_curve mu 2-D", lambda d: B.max_relevance_curve(10, [[1.0]]), ValueError, r"scalar or 1-D"),
    ("max_relevance_curve mu str", lambda d: B.max_relevance_curve(10, "a"), ValueError, r"cannot be read"),
    ("bound_at H_s above log M", lambda d: B.bound_at(10, 5.0), ValueError, r"\[0, log M\]"),
    ("bound_at H_s NaN", lambda d: B.bound_at(10, np.nan), ValueError, r"H_s: contains NaN"),
    ("bound_at H_s str", lambda d: B.bound_at(10, "a"), ValueError, r"H_s: cannot be read"),
    ("optimal_mk two mu", lambda d: B.optimal_mk(10, [1.0, 2.0]), ValueError, r"single value"),
    ("partition_frontier M 61", lambda d: B.partition_frontier(61), ValueError, r"M <= 60"),
    ("low_resolution_branch n_points 0", lambda d: B.low_resolution_branch(10, 0), ValueError, r"n_points"),
    ("default_mu_grid n 1", lambda d: B.default_mu_grid(10, 1), ValueError, r"n: expected an integer >= 2"),
    # representations
    ("pixel_states 1-D", lambda d: pixel_states(np.zeros(784)), ValueError, r"expected shape \(N, 784\)"),
    ("pixel_states wrong width", lambda d: pixel_states(np.zeros((2, 100))), ValueError, r"expected shape"),
    ("pixel_states empty", lambda d: pixel_states(np.zeros((0, 784))), ValueError, r"images: empty"),
    ("pixel_states NaN", lambda d: pixel_states(np.full((1, 784), np.nan)), ValueError, r"NaN"),
    ("pixel_states inf", lambda d: pixel_states(np.full((1, 784), np.inf)), ValueError, r"infinite"),
    ("pixel_states strings", lambda d: pixel_states(np.full((1, 784), "a")), ValueError, r"not real-valued"),
    ("pixel_states pool 0", lambda d: pixel_states(np.zeros((1, 784)), pool=0), ValueError, r"pool: must be >= 1"),
    ("pixel_states pool 3", lambda d: pixel_states(np.zeros((1, 784)), pool=3), ValueError, r"does not divide"),
    ("pixel_states pool float", lambda d: pixel_states(np.zeros((1, 784)), pool=2.0), ValueError,
     r"pool: expected an integer"),
    ("pixel_states threshold NaN", lambda d: pixel_states(np.zeros((1, 784)), threshold=np.nan), ValueError,
     r"threshold"),
    # data: IDX files and loaders
    ("read_idx wrong magic", lambda d: IDX.read_idx(_file(d, "f", _idx(np.zeros(3), magic=0x0802))), ValueError,
     r"unsupported IDX magic number 0x00000802"),
    ("read_idx zip magic", lambda d: IDX.read_idx(_file(d, "f", b"PK\x03\x04 zip")), ValueError, r"magic number"),
    ("read_idx too short", lambda d: IDX.read_idx(_file(d, "f", b"\x00\x00")), ValueError, r"too short"),
    ("read_idx truncated header", lambda d: IDX.read_idx(_file(d, "f", IMAGES[:10])), ValueError,
     r"truncated IDX header"),
    ("read_idx truncated payload", lambda d: IDX.read_idx(_file(d, "f", IMAGES[:-5])), ValueError,
     r"size mismatch \(truncated\)"),
    ("read_idx trailing data", lambda d: IDX.read_idx(_file(d, "f", LABELS + b"x")), ValueError, r"trailing data"),
    ("read_idx truncated gzip", lambda d: IDX.read_idx(_file(d, "f.gz", gzip.compress(IMAGES, mtime=0)[:-10])),
     ValueError, r"corrupt gzip"),
    ("read_idx missing file", lambda d: IDX.read_idx(d / "nope"), FileNotFoundError, r"No such file.*nope"),
    ("read_idx directory", lambda d: IDX.read_idx(d), IsADirectoryError, r"Is a directory"),
    ("read_idx_pair count mismatch", lambda d: _pair(d, 3, 4), ValueError, r"count mismatch"),
    ("load_dataset unknown name", lambda d: D.load_dataset("cifar"), ValueError, r"unknown dataset name 'cifar'"),
    ("load_dataset unknown split", lambda d: D.load_dataset("mnist", "val"), ValueError, r"unknown split 'val'"),
    ("load_dataset no data", lambda d: D.load_dataset("mnist", data_dir=d / "empty", verbose=False),
     FileNotFoundError, r"no MNIST data found"),
    ("load_dataset partial IDX set",
     lambda d: (d.joinpath("raw", "mnist").mkdir(parents=True),
                _file(d / "raw" / "mnist", "train-images-idx3-ubyte", IMAGES),
                D.load_dataset("mnist", data_dir=d, verbose=False)),
     FileNotFoundError, r"incomplete mnist IDX set"),
    # the claims as stated (rr_utils.claims.c1_hierarchy, c2_near_bound, c3_power_laws)
    ("fit_layers sizes mismatch", lambda d: C3.fit_layers([np.array([1, 2])], [784]), ValueError,
     r"sizes: expected 2 layer sizes"),
    ("claim_c1 empty table", lambda d: C1.claim_c1_table(pd.DataFrame()), ValueError, r"table: missing columns"),
    ("claim_c1 not a table", lambda d: C1.claim_c1_table([1, 2]), ValueError, r"expected a pandas DataFrame"),
    ("claim_c1 no train rows", lambda d: C1.claim_c1_table(LAYER_TABLE.assign(split="test")), ValueError,
     r"no rows with split == 'train'"),
    ("claim_c2 missing column", lambda d: C2.claim_c2_table(LAYER_TABLE), ValueError,
     r"missing columns .*below_bound_norm"),
    ("claim_c3 missing mu", lambda d: C3.claim_c3_fits(pd.DataFrame({"depth": [1]})), ValueError, r"fits: missing"),
    # experiments (the notebooks' glue)
    ("layer_table bad splits", lambda d: X.layer_table(None, {"train": GOOD}), ValueError,
     r"splits: expected a dict with keys \['train', 'test'\]"),
    ("layers_json bad splits", lambda d: X.layers_json(pd.DataFrame(), {}), ValueError, r"table: missing columns"),
    ("entropy_row zero counts", lambda d: X.entropy_row([0, 0]), ValueError, r"all counts are zero"),
    ("dbn_config epochs 0", lambda d: X.dbn_config(epochs=0), ValueError, r"epochs: expected a positive integer"),
    ("dbn_config no layers", lambda d: X.dbn_config(hidden_sizes=()), ValueError, r"hidden_sizes"),
    ("dbn_config unknown option", lambda d: X.dbn_config(colour="red"), TypeError, r"unexpected keyword.*colour"),
    # models
    ("DBNConfig lr NaN", lambda d: MD.DBNConfig(lr=float("nan")), ValueError, r"lr: expected a positive finite"),
    ("DBNConfig bad init", lambda d: MD.DBNConfig(init="zeros"), ValueError, r"init: 'normal' or 'uniform'"),
    ("train_dbn config dict", lambda d: MD.train_dbn({"epochs": 1}, GOOD, cache_dir=d), TypeError,
     r"config: expected DBNConfig"),
    ("train_dbn data NaN", lambda d: MD.train_dbn(MD.DBNConfig(**TINY), np.full((4, 6), np.nan), cache_dir=d),
     ValueError, r"finite probabilities in \[0, 1\]"),
    ("train_dbn data > 1", lambda d: MD.train_dbn(MD.DBNConfig(**TINY), GOOD + 2, cache_dir=d), ValueError,
     r"finite probabilities"),
    ("train_dbn data 1-D", lambda d: MD.train_dbn(MD.DBNConfig(**TINY), np.zeros(6), cache_dir=d), ValueError,
     r"non-empty 2-D"),
    ("train_dbn data empty", lambda d: MD.train_dbn(MD.DBNConfig(**TINY), np.zeros((0, 6)), cache_dir=d),
     ValueError, r"non-empty 2-D"),
    ("train_dbn data strings", lambda d: MD.train_dbn(MD.DBNConfig(**TINY), np.full((2, 6), "a"), cache_dir=d),
     ValueError, r"numeric array"),
    ("train_dbn test_data columns",
     lambda d: MD.train_dbn(MD.DBNConfig(**TINY), GOOD, test_data=np.zeros((3, 5)), cache_dir=d),
     ValueError, r"test_data: expected 6 columns"),
    ("load_dbn never trained", lambda d: MD.load_dbn(MD.DBNConfig(**TINY), "no-such-data", cache_dir=d),
     MD.CheckpointError, r"missing; train with train_dbn first"),
    # artifacts, plotting, io
    ("save_results path name", lambda d: A.save_results("a/b", {}), ValueError, r"bare results name"),
    ("save_results .json name", lambda d: A.save_results("x.json", {}), ValueError, r"bare results name"),
    ("save_results not a dict", lambda d: A.save_results("x", [1, 2]), TypeError, r"data: expected a dict"),
    ("load_results missing", lambda d: A.load_results("never_written"), FileNotFoundError,
     r"run the notebook that writes 'never_written'"),
    ("load_results malformed", _load_results_garbage, ValueError, r"broken.json: not valid JSON"),
    ("save_figure path name", lambda d: _save_fig(d, "a/b"), ValueError, r"bare figure name"),
    ("save_figure name with suffix", lambda d: _save_fig(d, "fig.png"), ValueError, r"bare figure name"),
    ("save_figure empty name", lambda d: _save_fig(d, ""), ValueError, r"bare figure name"),
    ("save_figure non-str name", lambda d: _save_fig(d, 3), ValueError, r"bare figure name"),
    ("save_figure not a figure", lambda d: _save_fig(d, fig="not a figure"), TypeError,
     r"fig: expected a matplotlib Figure"),
    ("save_figure params list", lambda d: _save_fig(d, params=[1]), TypeError, r"params: expected a dict"),
    ("save_figure caption not str", lambda d: _save_fig(d, caption=None), TypeError, r"caption: expected a string"),
    ("atomic_write_json unserialisable", lambda d: IO.atomic_write_json(d / "x.json", {"a": object()}), TypeError,
     r"not JSON serializable"),
    ("atomic_write_text bytes", lambda d: IO.atomic_write_text(d / "x.txt", b"x"), TypeError, r"expected str"),
    ("atomic_write_bytes str", lambda d: IO.atomic_write_bytes(d / "x.bin", "x"), TypeError,
     r"expected bytes-like data, got str"),
    ("atomic_write_bytes onto a folder", lambda d: IO.atomic_write_bytes(d, b"x"), IsADirectoryError,
     r"is a directory"),
]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """Scratch folder; results and figures go there too (never into the repository)."""
    d = tmp_path / "work"
    d.mkdir()
    monkeypatch.setenv("RR_RESULTS_DIR", str(d))
    monkeypatch.setenv("RR_FIGURES_DIR", str(d / "figures"))
    monkeypatch.setenv("RR_CACHE_DIR", str(tmp_path / "cache"))
    return d


def _tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def raised_as_declared(error: BaseException, exc: type) -> bool:
    """The exact class the row declares: a subclass that pytest.raises lets through (json.JSONDecodeError,
    numpy's LinAlgError, UnicodeDecodeError under ValueError) is an unrelated error escaping, not the message."""
    return type(error) is exc


def test_a_subclass_escaping_is_not_the_declared_error():
    import json

    with pytest.raises(ValueError) as info:  # passes pytest.raises(ValueError) ...
        json.loads("{")
    assert not raised_as_declared(info.value, ValueError)  # ... and fails the check that replaced `is or issubclass`
    assert raised_as_declared(ValueError("x"), ValueError)


@pytest.mark.parametrize("fn, exc, message", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_is_rejected_with_a_clear_message(sandbox, fn, exc, message):
    before = _tree(sandbox)
    with pytest.raises(exc) as info:
        fn(sandbox)
    assert raised_as_declared(info.value, exc), f"{type(info.value).__name__} is not {exc.__name__}: {info.value}"
    assert __import__("re").search(message, str(info.value)), str(info.value)
    after = _tree(sandbox)
    new = {k for k in after if k not in before and k not in ("broken.json", "f", "f.gz", "img", "lab")
           and not k.startswith("raw/")}
    assert not new, f"a rejected call wrote files: {sorted(new)}"  # no partial output


# --------------------------------------------------------------------------- command line

CLI_ROWS = [
    # (id, file name, writer, extra args, message regex)
    ("npz truncated", "s.npz", lambda p: p.write_bytes(_npz_bytes()[:100]), [], r"unreadable or truncated"),
    ("npz two arrays", "s.npz", lambda p: np.savez(p, a=np.zeros((2, 2)), b=np.zeros((2, 2))), [],
     r"exactly one array"),
    ("npz no arrays", "s.npz", lambda p: np.savez(p), [], r"exactly one array, found \[\]"),
    ("npy object array", "s.npy", lambda p: np.save(p, np.array([[0, "a"]], dtype=object)), [],
     r"cannot be parsed"),
    ("npy empty file", "s.npy", lambda p: p.write_bytes(b""), [], r"unreadable or truncated"),
    ("npy truncated", "s.npy", lambda p: p.write_bytes(_npy_bytes()[:150]), [], r"cannot be parsed|truncated"),
    ("npy 3-D", "s.npy", lambda p: np.save(p, np.zeros((2, 2, 2))), [], r"expected a 2-D"),
    ("npy strings", "s.npy", lambda p: np.save(p, np.array([["0", "1"]])), [], r"not numeric"),
    ("npy probabilities", "s.npy", lambda p: np.save(p, np.array([[0.3, 0.9]])), [], r"values other than 0/1"),
    ("path is a folder", "d.npy", lambda p: p.mkdir(), [], r"unreadable or truncated"),
    ("csv header only", "s.csv", lambda p: p.write_text("a,b\n"), [], r"empty"),
    ("csv words after the header", "s.csv", lambda p: p.write_text("a,b\n0,1\nx,y\n"), [], r"cannot be parsed"),
    ("text ragged rows", "s.txt", lambda p: p.write_text("0 1 1\n1 0\n"), [], r"rows of different lengths"),
    ("pt truncated", "s.pt", lambda p: p.write_bytes(_pt_bytes()[:60]), [], r"unreadable or truncated torch file"),
    ("pt two tensors", "s.pt", lambda p: _torch_save({"a": _t(), "b": _t()}, p), [], r"one tensor"),
    ("pt not a tensor", "s.pt", lambda p: _torch_save({"a": 1}, p), [], r"one tensor"),
    ("pt pickled object refused", "s.pt", lambda p: _torch_save(_Unsafe(), p), [], r"unreadable or truncated torch"),
    ("pt probabilities", "s.pt", lambda p: _torch_save(_t() * 0.5, p), [], r"add --threshold 0.5"),
    ("spins with zeros", "s.npy", lambda p: np.save(p, np.array([[-1, 0, 1]])), [], r"add --binarize sign"),
    ("csv binary garbage", "s.csv", lambda p: p.write_bytes(b"\x00\xff\xfe\x01"), [], r"cannot be parsed"),
    ("csv NaN", "s.csv", lambda p: p.write_text("0,nan\n1,1\n"), [], r"NaN"),
    ("csv empty", "s.csv", lambda p: p.write_text(""), [], r"empty"),
    ("counts empty", "c.txt", lambda p: p.write_text(""), ["--counts"], r"counts: empty"),
    ("counts 2-D", "c.txt", lambda p: p.write_text("1 2\n3 4\n"), ["--counts"], r"1-D array of counts"),
    ("counts all zero", "c.txt", lambda p: p.write_text("0\n0\n"), ["--counts"], r"all counts are zero"),
    ("counts NaN", "c.txt", lambda p: p.write_text("1\nnan\n"), ["--counts"], r"NaN"),
]


class _Unsafe:  # an arbitrary pickled class: torch.load(weights_only=True) must refuse it
    pass


def _t():
    import torch

    return torch.ones(4, 3)


def _torch_save(obj, p):
    import torch

    torch.save(obj, p)


def _pt_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    _torch_save(_t(), buf)
    return buf.getvalue()


def _npy_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.zeros((100, 10), np.uint8))
    return buf.getvalue()


def _npz_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    np.savez(buf, a=np.zeros((100, 10), np.uint8))
    return buf.getvalue()


@pytest.mark.parametrize("name, write, extra, message", [r[1:] for r in CLI_ROWS], ids=[r[0] for r in CLI_ROWS])
def test_cli_rejects_bad_files(tmp_path, capsys, name, write, extra, message):
    p = tmp_path / name
    write(p)
    rc = cli.main([str(p), *extra])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rr-relevance: error:"), err
    assert __import__("re").search(message, err), err


def test_cli_subprocess_gives_no_traceback(tmp_path):
    """The installed entry point, on the worst file in the table: one line, exit 2, no traceback."""
    p = tmp_path / "s.npz"
    p.write_bytes(_npz_bytes()[:100])
    r = subprocess.run([sys.executable, "-m", "rr_utils.cli", str(p), "--json"], capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert "Traceback" not in r.stderr and r.stderr.startswith("rr-relevance: error:")


# --------------------------------------------------------------------------- failing writes keep the old artifact


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


def test_failed_json_write_keeps_old_file(sandbox):
    path = sandbox / "r.json"
    IO.atomic_write_json(path, {"a": 1})
    before = path.read_bytes()
    with pytest.raises(TypeError):
        IO.atomic_write_json(path, {"a": 2, "b": object()})
    with pytest.raises(TypeError):
        A.save_results("r", ["not", "a", "dict"])
    assert path.read_bytes() == before and json.loads(before) == {"a": 1}
    assert _leftovers(sandbox) == []


def test_failed_figure_write_keeps_old_files(sandbox):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    P.save_figure(fig, "fig_keep", params={"a": 1}, caption="first", quick=True)
    folder = A.figures_dir(True)
    before = _tree(folder)
    assert set(before) == {"fig_keep.png", "fig_keep.pdf", "fig_keep.json"}

    class Exploding:
        def savefig(self, buf, **kw):
            buf.write(b"half a PNG")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        P.save_figure(Exploding(), "fig_keep", params={"a": 2}, caption="second", quick=True)
    plt.close("all")
    assert _tree(folder) == before
    assert _leftovers(sandbox) == []


def test_interrupted_atomic_write_leaves_no_partial_file(sandbox):
    path = sandbox / "model.bin"
    IO.atomic_write_bytes(path, b"old")
    with pytest.raises(KeyboardInterrupt):
        with IO.atomic_path(path) as tmp:
            tmp.write_bytes(b"new, but half")
            raise KeyboardInterrupt  # ctrl-c in the middle of a write
    assert path.read_bytes() == b"old"
    assert _leftovers(sandbox) == []
