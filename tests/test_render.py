"""README.md and docs/*.md are rendered from docs/templates/ and results/*.json (docs/render.py), and the check can fail."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import jinja2
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("render", ROOT / "docs" / "render.py")
render = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render)


def test_committed_readme_and_docs_equal_their_render(capsys):
    assert render.main(["--check"]) == 0, capsys.readouterr().out


def test_readme_is_short_and_has_no_hand_kept_markers():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "docs" / "templates").glob("*.j2")]:
        assert "<!--n " not in path.read_text(encoding="utf-8"), path


def test_every_template_has_a_target_and_the_readme_is_one():
    targets = render.targets()
    assert targets["README.md.j2"] == ROOT / "README.md"
    assert {"results.md.j2", "running.md.j2", "performance.md.j2", "api.md.j2"} <= set(targets)


@pytest.fixture
def results_copy(tmp_path):
    dest = tmp_path / "results"
    shutil.copytree(ROOT / "results", dest, ignore=shutil.ignore_patterns("executed", "*.html", "*.ipynb"))
    return dest


def test_a_changed_result_changes_the_render(results_copy):
    before = render.render(results_copy)[ROOT / "README.md"]
    path = results_copy / "fashion-mnist" / "claims.json"
    doc = json.loads(path.read_text())
    c2 = next(c for c in doc["claims"] if c["id"] == "C2")
    assert c2["decision_vs_null"] == "holds"  # the committed verdict this test flips
    c2["decision_vs_null"] = "does not hold"
    c2["evidence"]["decisions"]["holds"] = 0
    path.write_text(json.dumps(doc))
    after = render.render(results_copy)[ROOT / "README.md"]
    row = next(line for line in after.splitlines() if line.startswith("| C2 "))
    assert before != after and row.endswith("**does not hold** (0/5 seeds hold) |")


def test_a_missing_result_is_an_error_naming_the_template(results_copy):
    path = results_copy / "04_relevance_across_layers.json"
    doc = json.loads(path.read_text())
    del doc["claims"]["C1"]["as_stated"]["relevance_peak_units"]
    path.write_text(json.dumps(doc))
    with pytest.raises(SystemExit, match=r"docs/templates/README\.md\.j2: UndefinedError: .*relevance_peak_units"):
        render.render(results_copy)


def test_check_fails_without_writing_when_a_committed_file_is_stale(results_copy, capsys, monkeypatch):
    out = ROOT / "README.md"
    committed = out.read_text(encoding="utf-8")
    timings = results_copy / "timings.json"
    doc = json.loads(timings.read_text())
    doc["total_s"] = doc["total_s"] * 2
    timings.write_text(json.dumps(doc))
    assert render.main(["--check", "--results", str(results_copy)]) == 1
    assert "README.md: differs from its template's render" in capsys.readouterr().out
    assert out.read_text(encoding="utf-8") == committed


def _env(tmp_path, **files):
    res = tmp_path / "res"
    (res / "fashion-mnist").mkdir(parents=True)
    for name in ("claims_calibration", *render.SHARED):  # read when the environment is made
        (res / f"{name}.json").write_text("{}")
    for name, doc in files.items():
        (res / f"{name}.json").write_text(json.dumps(doc))
    return render.environment(res)


def test_filters(tmp_path):
    env = _env(tmp_path, a={"n": 8000, "x": 0.46213, "ok": True, "rows": [{"u": 15, "m": 0.0151, "ok": True},
                                                                         {"u": 20, "m": 0.0132, "ok": False},
                                                                         {"u": 15, "m": 0.0169, "ok": False}]},
               **{"04_thing": {"v": 3}})
    t = env.from_string
    assert t('{{ mnist.a.n | f(",d") }} {{ mnist.a.x | f(".2f") }} {{ mnist.nb04.v }}').render() == "8,000 0.46 3"
    assert t("{{ mnist.a.ok | verdict }}/{{ false | held }}").render() == "holds/did not hold"
    assert t('{{ mnist.a.rows | map(attribute="ok") | count }}').render() == "1"
    assert t('{{ mnist.a.rows | map(attribute="u") | either("d") }}').render() == "15 or 20"
    assert t('{{ mnist.a.rows | map(attribute="m") | span(".3f") }}').render() == "0.013–0.017"
    assert t('{{ (mnist.a.rows | one(u=20)).m }}').render() == "0.0132"
    assert t('{{ mnist.a.rows | where(u=15) | length }}').render() == "2"
    with pytest.raises(ValueError, match="one: no element"):
        t("{{ mnist.a.rows | one(u=99) }}").render()
    with pytest.raises(ValueError, match="expected true/false"):
        t("{{ mnist.a.n | verdict }}").render()
    with pytest.raises(ValueError, match="cannot format True"):
        t('{{ mnist.a.ok | f("d") }}').render()
    with pytest.raises(jinja2.UndefinedError):
        t("{{ mnist.a.missing }}").render()
    with pytest.raises(jinja2.UndefinedError, match="no such results file"):
        t("{{ mnist.nofile.x }}").render()
