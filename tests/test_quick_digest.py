"""tests/quick_digest.py: the expected values of the quick run, their comparison and the notebook order.

make test compares the quick run with tests/expected/quick_digest.json (tests/quick_check.py); here the
comparison itself is checked on small documents and on the committed digest: a number moved beyond its
tolerance, a flipped verdict, a missing or new quantity each fail it, a last-digit rounding flip does not;
`update` rewrites the digest and prints what moved; the notebooks run after those they read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import quick_digest as Q

BOOKS = sorted(Q.NOTEBOOKS.glob("*.ipynb"))
# notebook results read by another notebook without metadata.rr.depends naming the writer: (reader, results) ->
# why it is listed. The test below fails once an entry is no longer true (remove it then).
UNDECLARED: dict = {}  # (notebook, results it reads without declaring them) -> why


def doc():
    return {"params": {"quick": True, "seed": 0, "mus": [0.5, 1.0]},
            "claims": {"C1": {"holds_as_stated": False, "decision": "does not hold", "estimate": 0.286579}},
            "table": [{"depth": 1, "H_s": 7.600902, "n_states": 2000}, {"depth": 2, "H_s": 7.319205, "mu": None}],
            "a/b": {"~x": 1.5}, "rule": "x" * (Q.MAX_STRING + 1), "wall_s": 3.2, "train_seconds": 9.0}


def moved(path: str, value) -> dict:
    d = json.loads(json.dumps(doc()))
    node = d
    keys = path.split("/")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    node[int(keys[-1]) if isinstance(node, list) else keys[-1]] = value
    return d


def diff(a: dict, b: dict) -> list:
    return Q.differences({"x.json": Q.flatten(a)}, {"x.json": Q.flatten(b)})


def test_flatten_keeps_numbers_verdicts_and_short_strings_by_json_pointer():
    f = Q.flatten(doc())
    assert f["/claims/C1/holds_as_stated"] is False and f["/claims/C1/decision"] == "does not hold"
    assert f["/params/mus"] == [0.5, 1.0] and f["/table/1/mu"] is None and f["/a~1b/~0x"] == 1.5
    assert "/rule" not in f and "/wall_s" not in f and "/train_seconds" not in f  # prose and wall times left out


@pytest.mark.parametrize("path, value", [
    ("claims/C1/estimate", 0.286579 + 1e-5),     # a float beyond the last printed digit
    ("table/0/H_s", 7.600902 * (1 + 1e-5)),
    ("claims/C1/holds_as_stated", True),          # a verdict
    ("claims/C1/decision", "undecided"),
    ("table/0/n_states", 2001),                   # a count
    ("table/1/mu", 0.0),                          # null -> a number
    ("params/mus", [0.5, 1.0, 2.0]),              # a list that grew
    ("params/mus", [0.5, 1.00001]),
    ("params/seed", 0.0 + 1),
    ("params/quick", 1),                          # a bool turned into an int
])
def test_a_moved_quantity_fails_the_comparison(path, value):
    lines = diff(doc(), moved(path, value))
    assert len(lines) == 1 and lines[0].startswith(f"x.json/{path}:"), lines


def test_a_rounding_flip_in_the_last_digit_passes():
    assert diff(doc(), moved("claims/C1/estimate", 0.286580)) == []
    assert diff(doc(), moved("claims/C1/estimate", 0.286579 + 3e-6)) != []


def test_missing_and_new_quantities_and_files_fail():
    d = doc()
    del d["claims"]["C1"]["estimate"]
    assert diff(doc(), d) == ["x.json/claims/C1/estimate: missing (expected 0.286579)"]
    assert diff(d, doc()) == ["x.json/claims/C1/estimate: new quantity 0.286579"]
    assert Q.differences({"x.json": {}}, {}) == ["x.json: missing from this run (expected 0 quantities)"]
    assert "new file" in Q.differences({}, {"y.json": {}})[0]


def test_every_pointer_of_the_committed_digest_has_a_tolerance_and_every_file_a_writer():
    expected = Q.load_digest()
    assert expected, "tests/expected/quick_digest.json is empty: `make expected`"
    for f, quantities in expected.items():
        assert quantities, f
        for k in quantities:
            assert Q.tolerance(k)[0] in {t[0] for t in Q.TOLERANCES}
    writers = {name for book in BOOKS for name in written_by(book)}
    assert set(expected) == {f"{n}.json" for n in writers}, "the digest covers exactly what the notebooks write"


def test_moving_any_float_of_the_committed_digest_fails():
    expected = Q.load_digest()
    floats = [(f, k) for f, q in expected.items() for k, v in q.items() if isinstance(v, float)]
    for f, k in floats[:: max(1, len(floats) // 200)]:  # 200 of them, spread over every file
        got = {**expected[f], k: expected[f][k] + 1e-5}
        assert Q.differences({f: expected[f]}, {f: got}) != [], (f, k)


def test_update_rewrites_the_digest_and_prints_what_moved(tmp_path, capsys):
    res = tmp_path / "quick"
    res.mkdir()
    (res / "01_x.json").write_text(json.dumps(doc()))
    (res / ".done").mkdir()
    (res / ".done" / "marker.json").write_text("{}")  # the workflow's markers are not results
    digest = tmp_path / "digest.json"
    assert Q.main(["update", "--results", str(res), "--digest", str(digest)]) == 0
    assert Q.main(["check", "--results", str(res), "--digest", str(digest)]) == 0
    (res / "01_x.json").write_text(json.dumps(moved("claims/C1/estimate", 0.3)))
    capsys.readouterr()
    assert Q.main(["check", "--results", str(res), "--digest", str(digest)]) == 1
    assert "01_x.json/claims/C1/estimate: expected 0.286579, got 0.3" in capsys.readouterr().err
    assert Q.main(["update", "--results", str(res), "--digest", str(digest)]) == 0
    out = capsys.readouterr().out
    assert "1 moved, appeared or disappeared" in out and "expected 0.286579, got 0.3" in out
    assert Q.main(["check", "--results", str(res), "--digest", str(digest)]) == 0
    assert set(json.loads(digest.read_text())["files"]) == {"01_x.json"}


# --------------------------------------------------------------------------- notebook order


def written_by(book: Path) -> set:
    text = book.read_text()
    return {book.stem if n == "NB" else n for n in re.findall(r'save_results\((?:\\")?([A-Za-z0-9_]+)', text)}


def read_by(book: Path) -> set:
    return set(re.findall(r'load_results\(\\"([A-Za-z0-9_]+)\\"\)', book.read_text()))


def test_the_notebooks_run_after_the_notebooks_whose_results_they_read():
    order = [b.stem for b in Q.notebook_order()]
    assert sorted(order) == [b.stem for b in BOOKS]
    writer = {name: b.stem for b in BOOKS for name in written_by(b)}
    undeclared = set()
    for b in BOOKS:
        depends = (json.loads(b.read_text())["metadata"].get("rr") or {}).get("depends", [])
        for d in depends:
            assert order.index(d) < order.index(b.stem)
        for name in read_by(b):
            assert name in writer, f"{b.name} reads {name}.json, which no notebook writes"
            if writer[name] != b.stem and writer[name] not in depends:
                undeclared.add((b.stem, name))
    assert undeclared == set(UNDECLARED), ("notebooks read results of others without metadata.rr.depends naming "
                                           f"them: {sorted(undeclared - set(UNDECLARED))}; listed but now declared: "
                                           f"{sorted(set(UNDECLARED) - undeclared)}")


def test_notebook_order_follows_depends_not_names(tmp_path):
    def book(name, depends):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps({"metadata": {"rr": {"depends": depends}}, "cells": []}))

    book("01_a", ["03_c"])
    book("02_b", [])
    book("03_c", ["02_b"])
    assert [p.stem for p in Q.notebook_order(tmp_path)] == ["02_b", "03_c", "01_a"]
    book("02_b", ["01_a"])
    with pytest.raises(ValueError, match="cycle"):
        Q.notebook_order(tmp_path)
    book("02_b", ["09_z"])
    with pytest.raises(ValueError, match="09_z"):
        Q.notebook_order(tmp_path)


def test_notebook_lanes_keep_every_read_behind_what_it_reads():
    """make test runs `first`, then lanes A and B at once: a notebook may read `first` or an earlier notebook of
    its own lane, never the other lane; every notebook runs once."""
    first, a, b = Q.notebook_lanes()
    _, deps = Q._depends(Q.NOTEBOOKS)
    stems = [p.stem for p in first + a + b]
    assert sorted(stems) == sorted(p.stem for p in Q.NOTEBOOKS.glob("*.ipynb")) and len(set(stems)) == len(stems)
    done = set()
    for p in first:
        assert set(deps[p.stem]) <= done, (p.stem, deps[p.stem])
        done.add(p.stem)
    for lane in (a, b):
        seen = set(done)
        for p in lane:
            assert set(deps[p.stem]) <= seen, (p.stem, deps[p.stem], sorted(seen))
            seen.add(p.stem)
    assert a and b  # two lanes: the point of running them at once
