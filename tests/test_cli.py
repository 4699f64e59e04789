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
