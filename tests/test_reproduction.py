"""The reproduction report (rr_utils.reproduction, workflow/scripts/reproduction.py) on a small git repository.

A committed results tree (claims with per-seed records, layers of four seeds, a plain file, a file
that stays the same), then a "fresh run" that moves one number a little, one layer value by three
seed-sds, flips one per-seed and one top-level verdict, adds a file and deletes another: the report
must name exactly those.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import statistics
import subprocess
from pathlib import Path

import pytest

from rr_utils import reproduction as R

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("reproduction_script", ROOT / "workflow" / "scripts" / "reproduction.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)

SEEDS = range(4)
DEPTHS = ((1, 50), (2, 20), (3, 5))


def _per_seed(cid, seed, holds=True):
    return {"id": cid, "holds_as_stated": holds, "holds_vs_null": False,
            "as_stated": {"peak_H_K_norm": 0.46 + 0.01 * seed},
            "vs_null": {"decision": "undecided", "comparisons": {"projections": {"decision": "undecided",
                                                                                 "mean_effect": 0.005 * seed}}}}


CLAIMS = {"claims": [
    {"id": "C1", "holds_as_stated": True, "holds_vs_null": False, "decision_vs_null": "undecided",
     "evidence": {"decisions": {"holds": 0, "undecided": 3, "does not hold": 0},
                  "effects_over_seeds": {"projections": {"mean": 0.01, "lo": 0.0, "hi": 0.02, "n": 3, "holds": 0}},
                  "per_seed": [_per_seed("C1", s) for s in range(3)]}},
    {"id": "C4", "holds_as_stated": False, "holds_vs_null": None,
     "evidence": {"per_seed": [{"seed": s, "rank": 2 + s, "D": 10.0 + s} for s in range(3)]}},
]}
LAYERS = {"M": {"train": 8000}, "layers": [
    {"seed": s, "split": "train", "depth": d, "units": u, "H_s": round(8.9 - 0.3 * d + 0.011 * s * s, 6),
     "H_K": round(0.1 * d + 0.002 * s, 6)} for s in SEEDS for d, u in DEPTHS]}
PLAIN = {"a": 1.5, "b": [1, 2, 3], "name": "x", "wall_s": 12.0}
SAME = {"x": [0.1, 0.2], "ok": True}


def _write(path: Path, doc) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
                   check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path, monkeypatch):
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "repo"
    res = repo / "results"
    _write(res / "claims.json", CLAIMS)
    _write(res / "layers.json", LAYERS)
    _write(res / "plain.json", PLAIN)
    _write(res / "fashion-mnist" / "same.json", SAME)
    _write(res / "fashion-mnist" / "gone.json", {"v": 1})
    _write(res / "timings.json", {"total_s": 1.0})
    _git(repo, "init", "-q")
    _git(repo, "add", "results")
    _git(repo, "commit", "-q", "-m", "committed results")
    return repo


def _sd_of_moved_layer():
    """The layer value the fresh run moves: H_s of seed 2, depth 2; its index and its seed sd."""
    i = next(i for i, r in enumerate(LAYERS["layers"]) if r["seed"] == 2 and r["depth"] == 2)
    sd = statistics.stdev(r["H_s"] for r in LAYERS["layers"] if r["depth"] == 2)
    return i, sd


@pytest.fixture
def fresh(repo):
    """The fresh run: one number a little, one layer by 3 sd, two verdicts flipped, a file new, one deleted."""
    res = repo / "results"
    plain = copy.deepcopy(PLAIN) | {"a": 1.5000002, "wall_s": 99.0}
    plain["b"][1] = 2 + 1e-12  # float noise: within tolerance
    _write(res / "plain.json", plain)
    layers = copy.deepcopy(LAYERS)
    i, sd = _sd_of_moved_layer()
    layers["layers"][i]["H_s"] += 3 * sd
    _write(res / "layers.json", layers)
    claims = copy.deepcopy(CLAIMS)
    claims["claims"][0]["evidence"]["per_seed"][1]["holds_as_stated"] = False
    claims["claims"][1]["holds_as_stated"] = True
    _write(res / "claims.json", claims)
    _write(res / "fashion-mnist" / "new.json", {"w": 2.0})
    (res / "fashion-mnist" / "gone.json").unlink()
    _write(res / "timings.json", {"total_s": 500.0})
    return repo


def _files(doc):
    return {f["file"]: f for f in doc["files"]}


def test_an_unchanged_run_is_identical_everywhere_and_flips_nothing(repo):
    doc = R.compare(repo / "results")
    files = _files(doc)
    assert set(files) == {"results/claims.json", "results/layers.json", "results/plain.json",
                          "results/fashion-mnist/same.json", "results/fashion-mnist/gone.json"}  # no timings.json
    for f in files.values():
        assert f["status"] == "compared" and f["numbers"] == f["identical"] > 0, f
        assert f["within"] == f["beyond"] == f["changed"] == f["added"] == f["removed"] == 0, f
    assert doc["summary"]["flipped"] == 0 and doc["summary"]["verdicts"] == 14
    assert all(v["status"] == "same" for v in doc["verdicts"])
    assert "no verdict flipped" in script.table(doc)


def test_the_report_names_exactly_what_moved(fresh):
    doc = R.compare(fresh / "results")
    files = _files(doc)
    plain = files["results/plain.json"]
    assert (plain["numbers"], plain["identical"], plain["within"], plain["beyond"], plain["ignored"]) == (4, 2, 1, 1, 1)
    assert [d["path"] for d in plain["largest_abs"]] == ["a", "b[1]"]
    assert plain["largest_abs"][0]["delta"] == pytest.approx(2e-7) and plain["largest_abs"][0]["beyond"]
    assert plain["largest"] == [] and plain["max_sd"] is None

    layers = files["results/layers.json"]
    i, sd = _sd_of_moved_layer()
    assert (layers["beyond"], layers["within"], layers["identical"]) == (1, 0, layers["numbers"] - 1)
    (moved,) = layers["largest"]
    assert moved["path"] == f"layers[{i}].H_s"
    assert moved["sd"] == pytest.approx(sd) and moved["z"] == pytest.approx(3.0) and moved["beyond"]
    assert moved["where"] == "seed=2 split=train depth=2 units=20"
    assert layers["max_sd"] == pytest.approx(3.0)

    claims = files["results/claims.json"]
    assert claims["numbers"] == claims["identical"] and claims["changed"] == 2
    same = files["results/fashion-mnist/same.json"]
    assert (same["numbers"], same["identical"], same["other"], same["changed"]) == (2, 2, 1, 0)
    assert files["results/fashion-mnist/new.json"]["status"] == "new"
    assert files["results/fashion-mnist/gone.json"]["status"] == "missing"
    assert doc["summary"]["new"] == ["results/fashion-mnist/new.json"]
    assert doc["summary"]["missing"] == ["results/fashion-mnist/gone.json"]

    flipped = [(v["path"], v["claim"], v["seed"], v["committed"], v["fresh"]) for v in doc["verdicts"] if v["flipped"]]
    assert flipped == [("claims[0].evidence.per_seed[1].holds_as_stated", "C1", 1, True, False),
                       ("claims[1].holds_as_stated", "C4", None, False, True)]
    assert doc["summary"]["flipped"] == 2
    gone = [v for v in doc["verdicts"] if v["file"].endswith("gone.json")]
    assert gone == []  # it had no verdicts; its numbers are reported as missing, not compared

    text = script.table(doc)
    assert "verdicts: 14 compared, 2 FLIPPED:" in text
    assert f"layers[{i}].H_s (seed=2 split=train depth=2 units=20): " in text and "(+3.00 sd)" in text
    assert re.search(r"^results/fashion-mnist/new\.json +NEW: not at HEAD$", text, re.M), text
    assert re.search(r"^results/fashion-mnist/gone\.json +MISSING: at HEAD, not written by this run$", text, re.M)
    assert "FLIPPED  results/claims.json  claims[1].holds_as_stated  (C4): False -> True" in text


def test_deviations_of_effects_over_seeds_are_in_seed_sds(repo):
    from scipy import stats

    committed = copy.deepcopy(CLAIMS)
    e = committed["claims"][0]["evidence"]["effects_over_seeds"]["projections"]
    sd = (e["hi"] - e["lo"]) / 2 / stats.t.ppf(0.975, 2) * 3 ** 0.5
    fresh = copy.deepcopy(committed)
    fresh["claims"][0]["evidence"]["effects_over_seeds"]["projections"]["mean"] += 1.5 * sd
    rep = R.compare_docs("c.json", committed, fresh)
    assert (rep.within, rep.beyond) == (1, 0)  # 1.5 sd is within the 2-sd band
    assert rep.largest[0]["z"] == pytest.approx(1.5)
    assert rep.largest[0]["path"] == "claims[0].evidence.effects_over_seeds.projections.mean"


def test_the_script_writes_the_report_and_prints_the_table(fresh, capsys):
    out = fresh / "results" / "reproduction.json"
    assert script.main(["--results", str(fresh / "results"), "--no-machine"]) == 0
    printed = capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["baseline"]["commit"] == subprocess.run(["git", "-C", str(fresh), "rev-parse", "HEAD"],
                                                       capture_output=True, text=True).stdout.strip()
    assert doc["summary"]["flipped"] == 2 and doc["error"] is None
    assert "results/reproduction.json" not in _files(doc)
    assert printed.startswith("reproduction report: this run's results against git HEAD")
    assert script.main(["--results", str(fresh / "results"), "--show"]) == 0
    assert capsys.readouterr().out.strip() == script.table(doc)


def test_outside_git_the_script_says_there_is_no_baseline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    res = tmp_path / "results"
    _write(res / "plain.json", PLAIN)
    assert script.main(["--results", str(res), "--no-machine"]) == 2
    err = capsys.readouterr().err
    assert "not a git checkout" in err and "no committed baseline" in err
    doc = json.loads((res / "reproduction.json").read_text())
    assert doc["baseline"] is None and "no committed baseline" in doc["error"] and doc["files"] == []
    with pytest.raises(R.NoBaseline, match="not a git checkout"):
        R.compare(res)


def test_the_machine_names_cpu_blas_capability_and_threads():
    m = script.machine()
    assert m["cpu_model"] and m["cores"] >= 1
    assert m["torch"]["cpu_capability"] and m["torch"]["threads"] >= 1 and m["torch"]["blas"]
    assert set(m["env"]) >= {"MKL_CBWR", "ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}


def test_the_docs_page_shows_the_machine_the_files_and_the_flipped_verdicts(fresh):
    spec = importlib.util.spec_from_file_location("render", ROOT / "docs" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    res = fresh / "results"
    for name in ("claims_calibration", *render.SHARED):  # read when the environment is made
        if not (res / f"{name}.json").exists():
            _write(res / f"{name}.json", {})
    _write(res / "reproduction.json", script.report(res))
    page = render.environment(res).get_template("reproduction.md.j2").render()
    i, _ = _sd_of_moved_layer()
    assert f"| `results/layers.json` | `layers[{i}].H_s` | seed=2 split=train depth=2 units=20 |" in page
    assert "| +3.00 sd |" in page
    assert ("| `results/claims.json` | `claims[0].evidence.per_seed[1].holds_as_stated` | C1 | 1 | True | False |"
            in page)
    assert "| `results/claims.json` | `claims[1].holds_as_stated` | C4 | – | False | True |" in page
    assert "| `results/fashion-mnist/new.json` | new: not at HEAD |" in page
    assert "CPU capability" in page and "No verdict flipped" not in page


def test_the_committed_reports_machine_is_the_baselines(fresh, capsys):
    out = fresh / "results" / "reproduction.json"
    assert script.main(["--results", str(fresh / "results")]) == 0
    first = json.loads(out.read_text())
    assert first["baseline"]["machine"] is None  # no report committed yet
    assert first["machine"]["torch"]["cpu_capability"]
    _git(fresh, "add", "results")
    _git(fresh, "commit", "-q", "-m", "the fresh results and their report")
    capsys.readouterr()
    assert script.main(["--results", str(fresh / "results"), "--no-machine"]) == 0
    second = json.loads(out.read_text())
    assert second["baseline"]["machine"] == first["machine"] and second["machine"] is None
    assert second["summary"]["flipped"] == 0 and second["summary"]["beyond"] == 0
    assert "committed report's machine: " in capsys.readouterr().out


def test_a_results_file_that_is_not_json_fails_the_script_clearly(repo, capsys):
    (repo / "results" / "plain.json").write_text("{not json")
    assert script.main(["--results", str(repo / "results"), "--no-machine"]) == 2
    assert "results files that are not JSON: results/plain.json" in capsys.readouterr().err
    doc = json.loads((repo / "results" / "reproduction.json").read_text())
    assert _files(doc)["results/plain.json"]["status"] == "unreadable" and doc["summary"]["unreadable"]
    assert _files(doc)["results/layers.json"]["identical"] == _files(doc)["results/layers.json"]["numbers"]


def test_files_the_run_did_not_write_are_kept_not_compared(fresh, capsys):
    """A run on some data sets (make reproduce DATASETS=mnist) compares only what it wrote: the committed copy of
    a file it did not rewrite would otherwise read as reproduced; one it should have written and did not is
    missing."""
    res = fresh / "results"
    written = [str(res / "claims.json"), "results/layers.json", str(res / "fashion-mnist" / "gone.json")]
    doc = R.compare(res, written=written)
    files = _files(doc)
    assert {f: files[f]["status"] for f in files} == {
        "results/claims.json": "compared", "results/layers.json": "compared", "results/plain.json": "kept",
        "results/fashion-mnist/same.json": "kept", "results/fashion-mnist/new.json": "kept",
        "results/fashion-mnist/gone.json": "missing"}
    assert doc["summary"]["kept"] == ["results/plain.json", "results/fashion-mnist/new.json",
                                      "results/fashion-mnist/same.json"]
    assert doc["summary"]["flipped"] == 2  # the verdicts of the files compared, and only those
    assert {v["file"] for v in doc["verdicts"]} == {"results/claims.json"}
    left = {"10_dependence_on_M": "trains fashion-mnist networks"}
    assert script.main(["--results", str(res), "--no-machine", "--written", *written,
                        "--left-out", json.dumps(left)]) == 0
    printed = capsys.readouterr().out
    assert "not written by this run, not compared (3): results/plain.json, results/fashion-mnist/new.json" in printed
    assert "runs left out (1): 10_dependence_on_M (trains fashion-mnist networks)" in printed
    report = json.loads((res / "reproduction.json").read_text())
    assert report["scope"] == {"written": sorted(written), "left_out": left}
    assert script.main(["--results", str(res), "--no-machine", "--left-out", "[1]"]) == 2
    assert "--left-out: expected a JSON object" in capsys.readouterr().err
    assert json.loads((res / "reproduction.json").read_text()) == report  # a bad argument loses no report


def test_a_number_equal_over_seeds_but_for_its_last_bits_has_no_seed_spread(repo):
    """Seen on a second machine: notebook 08's real_class_entropy is the same for every seed up to float noise;
    its seed sd (1e-16) turned a 2e-4 change into 1e12 sd. Such a number is judged by the stated tolerance."""
    committed = {"scores": [{"seed": s, "depth": 1, "real": 0.993947 + (s % 2) * 1e-16, "fd": 10.0 + s}
                            for s in range(4)]}
    fresh = copy.deepcopy(committed)
    fresh["scores"][0]["real"] = 0.994118
    fresh["scores"][0]["fd"] = 10.5
    spread = R.seed_spread(committed)
    assert ("scores", 0, "real") not in spread and spread[("scores", 0, "fd")] == pytest.approx(1.2910, abs=1e-4)
    rep = R.compare_docs("x.json", committed, fresh)
    assert rep.beyond == 1 and rep.within == 1 and rep.max_sd == pytest.approx(0.5 / 1.2910, abs=1e-3)
    assert [d["path"] for d in rep.largest_abs] == ["scores[0].real"]


def test_the_report_counts_how_the_runs_networks_were_obtained(fresh, tmp_path, capsys):
    markers = []
    for i, (src, cpu) in enumerate([("trained", 300.0), ("trained", 320.5), ("model-cache", 1.0), ("resumed", 60.0)]):
        m = tmp_path / f"net{i}.json"
        m.write_text(json.dumps({"network": f"n{i}", "source": src, "cpu_s": cpu}))
        markers.append(str(m))
    res = fresh / "results"
    assert script.main(["--results", str(res), "--no-machine", "--networks", *markers]) == 0
    assert "networks: 4 (2 trained, 1 resumed, 1 model-cache; 0.19 CPU-hours of training)" in capsys.readouterr().out
    doc = json.loads((res / "reproduction.json").read_text())
    assert doc["scope"]["networks"] == {"networks": 4, "trained": 2, "resumed": 1, "model-cache": 1,
                                        "cpu_s_training": 680.5}
    (tmp_path / "net0.json").write_text("{")
    assert script.main(["--results", str(res), "--no-machine", "--networks", *markers]) == 2
    assert "--networks: " in capsys.readouterr().err and json.loads((res / "reproduction.json").read_text()) == doc
