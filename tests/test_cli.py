"""The rr-relevance command line: outputs and hostile input."""

import json
import subprocess
import sys

import numpy as np
import pytest

from rr_utils import cli
from rr_utils import entropy as E


def run(args, capsys):
    rc = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def states():
    rng = np.random.default_rng(0)
    base = rng.random((50, 12)) < 0.5
    return base[E.sample_power_law_counts(400, 1.0, k_max=50, rng=rng) - 1].astype(np.uint8)


def test_npy_json_output_matches_library(tmp_path, states, capsys):
    p = tmp_path / "s.npy"
    np.save(p, states)
    rc, out, _ = run([p, "--json"], capsys)
    assert rc == 0
    res = json.loads(out)
    c = E.state_counts(states)
    assert res["M"] == 400 and res["n_states"] == len(c)
    assert res["H_s"] == pytest.approx(E.resolution(c))
    assert res["H_K"] == pytest.approx(E.relevance(c))
    assert res["gap_to_bound"] >= -1e-9
    assert {"mu", "mu_err", "bound_H_K", "noise_norm"} <= res.keys()


def test_csv_npz_and_counts_agree(tmp_path, states, capsys):
    np.savetxt(tmp_path / "s.csv", states, fmt="%d", delimiter=",")
    np.savez(tmp_path / "s.npz", states=states)
    np.savetxt(tmp_path / "c.txt", E.state_counts(states), fmt="%d")
    outs = []
    for args in ([tmp_path / "s.csv"], [tmp_path / "s.npz"], [tmp_path / "c.txt", "--counts"]):
        rc, out, _ = run(args + ["--json"], capsys)
        assert rc == 0
        outs.append(json.loads(out))
    assert outs[0] == outs[1]
    assert outs[2]["H_K"] == pytest.approx(outs[0]["H_K"])


def test_table_output_names_every_quantity(tmp_path, states, capsys):
    np.save(tmp_path / "s.npy", states)
    rc, out, _ = run([tmp_path / "s.npy"], capsys)
    assert rc == 0
    for key in ("M", "H_s", "H_K", "noise", "mu", "bound_H_K", "gap_to_bound"):
        assert key in out


def _write(tmp_path, name, content):
    p = tmp_path / name
    if isinstance(content, bytes):
        p.write_bytes(content)
    elif isinstance(content, str):
        p.write_text(content)
    else:
        np.save(p, content)
    return p


BAD = [
    ("missing.npy", None, [], "no such file"),
    ("s.npy", np.array([[0, 2], [1, 1]]), [], "values other than 0/1"),
    ("s.npy", np.array([[0.0, np.nan]]), [], "NaN"),
    ("s.npy", np.zeros((0, 4)), [], "empty"),
    ("s.npy", np.zeros(4), [], "2-D"),
    ("s.npy", b"\x93NUMPY garbage", [], "unreadable or truncated|cannot be parsed"),
    ("s.csv", "0,1\n1\n", [], "cannot be parsed"),
    ("s.xlsx", "0,1", [], "unsupported file type"),
    ("c.txt", "3\n-1\n", ["--counts"], "negative"),
    ("c.txt", "3\n1.5\n", ["--counts"], "non-integer"),
]


@pytest.mark.parametrize("name, content, extra, message", BAD)
def test_bad_input_gives_a_clear_error(tmp_path, capsys, name, content, extra, message):
    p = tmp_path / name if content is None else _write(tmp_path, name, content)
    rc, out, err = run([p] + extra, capsys)
    assert rc == 2 and out == ""
    assert "rr-relevance: error:" in err
    import re
    assert re.search(message, err), err


def test_help_explains_the_quantities():
    out = subprocess.run([sys.executable, "-m", "rr_utils.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for word in ("resolution", "relevance", "noise", "Zipf", "maximal relevance"):
        assert word in out.stdout


def test_mu_at_the_search_edge_is_reported_as_not_fitted(tmp_path, capsys):
    p = tmp_path / "c.npy"
    np.save(p, np.r_[np.ones(500, int), 2])  # counts: nearly all states seen once
    rc, out, _ = run([p, "--counts", "--json"], capsys)
    res = json.loads(out)
    assert rc == 0 and res["mu"] is None and res["mu_fitted"] is False and "upper edge" in res["mu_reason"]
    rc, out, _ = run([p, "--counts"], capsys)
    assert rc == 0 and "mu not fitted" in out


# --- formats and options of issue 11 -------------------------------------------------


def _json(args, capsys, stdin=None):
    rc = cli.main([str(a) for a in args] + ["--json"], stdin=stdin)
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def test_new_formats_agree_with_npy(tmp_path, states, capsys):
    import io

    import torch

    np.save(tmp_path / "s.npy", states)
    ref = _json([tmp_path / "s.npy"], capsys)
    torch.save(torch.from_numpy(states), tmp_path / "s.pt")
    torch.save({"states": torch.from_numpy(states).float()}, tmp_path / "s.pth")
    (tmp_path / "h.csv").write_text("u" + ",u".join(map(str, range(1, states.shape[1]))) + "\n"
                                    + "\n".join(",".join(map(str, r)) for r in states) + "\n")
    (tmp_path / "w.txt").write_text("\n".join("  ".join(map(str, r)) for r in states) + "\n")
    (tmp_path / "t.tsv").write_text("\n".join("\t".join(map(str, r)) for r in states) + "\n")
    np.save(tmp_path / "spins.npy", 2 * states.astype(np.int8) - 1)
    for p in ("s.pt", "s.pth", "h.csv", "w.txt", "t.tsv", "spins.npy"):
        res = _json([tmp_path / p], capsys)
        assert {k: res[k] for k in ("M", "n_states", "H_s", "H_K")} == {k: ref[k] for k in ("M", "n_states", "H_s", "H_K")}, p
    assert _json([tmp_path / "spins.npy"], capsys)["read_as"].startswith("+-1 spins")
    text = (tmp_path / "w.txt").read_bytes()
    assert _json(["-"], capsys, stdin=io.BytesIO(text))["H_K"] == ref["H_K"]
    assert _json(["-"], capsys, stdin=io.BytesIO((tmp_path / "s.npy").read_bytes()))["H_K"] == ref["H_K"]


def test_threshold_and_binarize_options(tmp_path, states, capsys):
    rng = np.random.default_rng(1)
    ref = _json([_write(tmp_path, "s.npy", states)], capsys)
    probs = np.where(states == 1, rng.uniform(0.31, 1, states.shape), rng.uniform(0, 0.3, states.shape))
    res = _json([_write(tmp_path, "p.npy", probs), "--threshold", "0.3"], capsys)
    assert res["H_K"] == ref["H_K"] and res["read_as"] == "threshold (p > 0.3)"
    assert _json([tmp_path / "p.npy", "--threshold", "0.99"], capsys)["H_s"] != ref["H_s"]  # the option is used
    tanh = np.tanh(np.where(states == 1, 1.0, -1.0) * rng.uniform(0.1, 3, states.shape))
    assert _json([_write(tmp_path, "t.npy", tanh), "--binarize", "sign"], capsys)["H_K"] == ref["H_K"]
    relu = states * rng.uniform(0.1, 5, states.shape)
    assert _json([_write(tmp_path, "r.npy", relu), "--binarize", "positive"], capsys)["H_K"] == ref["H_K"]


HINTS = [  # (file content, extra args, the message must name this)
    (np.array([[0.2, 0.7], [0.1, 0.9]]), [], r"add --threshold 0.5"),
    (np.array([[-0.3, 0.7], [0.1, -0.9]]), [], r"add --binarize sign"),
    (np.array([[0.0, 2.5], [1.0, 3.0]]), [], r"add --binarize positive"),
    (np.array([[-0.3, 0.7]]), ["--threshold", "0.5"], r"needs probabilities in \[0, 1\]"),
    (np.array([[-0.3, 0.7]]), ["--binarize", "positive"], r"rectifier outputs"),
    (np.array([[3], [5], [1], [2]]), [], r"looks like a file of counts.*add --counts"),
    (np.array([3, 5, 1, 2]), [], r"looks like a file of counts.*add --counts"),
    ("7\n4\n1\n", [], r"looks like a file of counts.*add --counts"),
    (np.array([[0.0, np.inf]]), ["--binarize", "sign"], r"infinite"),
]


@pytest.mark.parametrize("content, extra, message", HINTS)
def test_errors_name_the_option_to_use(tmp_path, capsys, content, extra, message):
    import re

    p = _write(tmp_path, "c.txt" if isinstance(content, str) else "s.npy", content)
    rc, out, err = run([p] + extra, capsys)
    assert rc == 2 and out == "" and re.search(message, err), err


def test_threshold_out_of_range_and_exclusive_options(tmp_path, states, capsys):
    p = _write(tmp_path, "s.npy", states)
    for args in (["--threshold", "1.5"], ["--threshold", "x"], ["--threshold", "0.5", "--binarize", "sign"],
                 ["--counts", "--binarize", "sign"]):
        with pytest.raises(SystemExit) as e:
            cli.main([str(p)] + args)
        assert e.value.code == 2
    assert "[0, 1)" in capsys.readouterr().err


def test_version():
    from rr_utils import __version__

    out = subprocess.run([sys.executable, "-m", "rr_utils.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"rr-relevance {__version__}"


def test_stdin_dash_in_a_subprocess(states):
    text = "\n".join(",".join(map(str, r)) for r in states) + "\n"
    r = subprocess.run([sys.executable, "-m", "rr_utils.cli", "-", "--json"], input=text.encode(), capture_output=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["M"] == len(states)
