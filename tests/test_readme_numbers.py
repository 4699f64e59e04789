"""The README's numbers come from results/*.json (rr_utils.readme_numbers), and the check can fail."""

from __future__ import annotations

import json

import pytest

from rr_utils import readme_numbers as RN


def test_committed_readme_agrees_with_the_results():
    markers = RN.find_markers((RN.ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(markers) >= 40, "the README's numbers are no longer marked with their source"
    assert {m.file for m in markers} >= {"claims.json", "04_relevance_across_layers.json", "timings.json", "bench.json"}
    problems = RN.check()
    assert not problems, "README numbers differ from results/ (python -m rr_utils.readme_numbers --write):\n" + \
        "\n".join(problems)


@pytest.fixture
def sandbox(tmp_path):
    res = tmp_path / "results"
    res.mkdir()
    (res / "a.json").write_text(json.dumps({
        "C1": {"holds": True, "peak": 15, "h": 0.46213},
        "table": [{"split": "train", "units": 30, "v": 0.8881}, {"split": "test", "units": 30, "v": 0.9}],
        "claims": [{"id": "C4", "holds": False, "per_seed": [{"u": 15, "ok": True, "m": 0.0151},
                                                              {"u": 20, "ok": False, "m": 0.0132},
                                                              {"u": 15, "ok": False, "m": 0.0169}]}],
        "acc": 0.97, "n": 8000}))
    readme = tmp_path / "README.md"
    return readme, res


def _n(path, fmt, text, f="a.json"):
    return f"<!--n {f} {path}{' ' + fmt if fmt else ''}-->{text}<!--/n-->"


def test_formats_paths_and_aggregates(sandbox):
    readme, res = sandbox
    lines = [
        _n("C1.peak", "d", "15"), _n("C1.h", ".2f", "0.46"), _n("C1.holds", "held", "held"),
        _n("claims[id=C4].holds", "verdict", "does not hold"), _n("table[split=train,units=30].v", ".3f", "0.888"),
        _n("claims[id=C4].per_seed[*].u", "or:d", "15 or 20"), _n("claims[id=C4].per_seed[*].m", "range:.3f", "0.013–0.017"),
        _n("claims[id=C4].per_seed[*].ok", "count", "1"), _n("claims[id=C4].per_seed[*]", "len", "3"),
        _n("acc", ".0%", "97%"), _n("n", ",d", "8,000"), _n("claims.0.per_seed.1.u", "", "20"),
        _n("claims[id=C4].per_seed[*u=15].m", "range:.4f", "0.0151–0.0169"), _n("claims[id=C4].per_seed[*ok=False]", "len", "2"),
    ]
    readme.write_text("| x |\n|---|\n" + "\n".join(f"| {ln} |" for ln in lines) + "\n")
    assert RN.check(readme, res) == []


def test_a_wrong_number_is_named_and_write_fixes_it(sandbox):
    readme, res = sandbox
    readme.write_text(f"peak at {_n('C1.peak', 'd', '16')} units, {_n('C1.h', '.2f', '0.46')}.\n")
    problems = RN.check(readme, res)
    assert len(problems) == 1 and "README.md:1: a.json C1.peak d" in problems[0] and "'16'" in problems[0]
    assert RN.write(readme, res) == 1
    assert readme.read_text() == f"peak at {_n('C1.peak', 'd', '15')} units, {_n('C1.h', '.2f', '0.46')}.\n"
    assert RN.check(readme, res) == [] and RN.write(readme, res) == 0


@pytest.mark.parametrize("path, fmt, message", [
    ("C1.nope", "d", "no key 'nope'"),
    ("claims[id=C9].holds", "verdict", "no element with id=C9"),
    ("claims[id=C4].per_seed[*].u", "d", "a list needs an aggregate"),
    ("C1.holds", ".2f", "cannot format True"),
    ("C1.peak", "verdict", "expected true/false"),
])
def test_bad_markers_are_named_and_write_changes_nothing(sandbox, path, fmt, message):
    readme, res = sandbox
    text = f"x {_n(path, fmt, '?')} y\n"
    readme.write_text(text)
    problems = RN.check(readme, res)
    assert len(problems) == 1 and message in problems[0], problems
    with pytest.raises((KeyError, ValueError), match=message.split("'")[0]):
        RN.write(readme, res)
    assert readme.read_text() == text


def test_missing_results_file_is_named(sandbox):
    readme, res = sandbox
    readme.write_text(_n("x", "d", "1", f="gone.json") + "\n")
    assert "gone.json: no such results file" in RN.check(readme, res)[0]


def test_command_line_check_exit_status(sandbox, capsys):
    readme, res = sandbox
    readme.write_text(_n("C1.peak", "d", "16") + "\n")
    assert RN.main(["--check", "--readme", str(readme), "--results", str(res)]) == 1
    assert "0/1 marked numbers agree" in capsys.readouterr().out
    assert RN.main(["--write", "--readme", str(readme), "--results", str(res)]) == 0
    assert RN.main(["--check", "--readme", str(readme), "--results", str(res)]) == 0
