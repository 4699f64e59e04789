"""workflow/scripts/code_paths.py: the verdicts of two code paths compared, and its check against notebook 08.

The measurement itself (20 full-size networks) runs with `make code-paths`; these tests check the logic that
turns its readings into results/code_paths.json, on the committed verdicts of notebook 08."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import code_paths as CP  # noqa: E402


@pytest.fixture(scope="module")
def committed():
    return json.loads((ROOT / "results" / "claims.json").read_text())


def _summaries(doc):
    return {v["id"]: CP.summary(v) for v in [*doc["claims"], *doc["hypotheses"]]}


def test_summary_reads_seed_rule_and_c4_records(committed):
    s = _summaries(committed)
    assert set(s) == {"C1", "C2", "C3", "C4", "H_max_relevance"}
    c1 = next(c for c in committed["claims"] if c["id"] == "C1")
    assert s["C1"]["as_stated"] == c1["decision_as_stated"] and s["C1"]["vs_references"] == c1["decision_vs_null"]
    assert set(s["C1"]["effects"]) == set(c1["evidence"]["effects_over_seeds"])
    c4 = next(c for c in committed["claims"] if c["id"] == "C4")
    assert s["C4"]["D"]["mean"] == pytest.approx(c4["as_stated"]["D"]["mean"], abs=1e-4)
    assert s["C4"]["vs_references"] is None  # C4 has no second verdict


def test_the_committed_verdicts_pass_the_check_and_a_flipped_one_stops_it(committed):
    s = _summaries(committed)
    CP.check_committed(s, committed)  # the default path reading notebook 08's networks as it does
    flipped = copy.deepcopy(s)
    flipped["C2"]["as_stated"] = "undecided" if s["C2"]["as_stated"] != "undecided" else "holds"
    with pytest.raises(RuntimeError, match="C2 on the default path.*rerun notebook 08"):
        CP.check_committed(flipped, committed)
    moved = copy.deepcopy(s)
    moved["C4"]["D"]["mean"] += 0.01  # same decision, another D: not the notebook's reading either
    with pytest.raises(RuntimeError, match="C4"):
        CP.check_committed(moved, committed)


def test_a_verdict_is_stable_only_when_both_decisions_agree(committed):
    s = _summaries(committed)
    assert all(c["stable"] for c in CP.compare(s, copy.deepcopy(s)))
    other = copy.deepcopy(s)
    other["C1"]["vs_references"] = "holds" if s["C1"]["vs_references"] != "holds" else "undecided"
    other["C4"]["D"]["mean"] += 5  # numbers move; the decision does not
    rows = {c["claim"]: c["stable"] for c in CP.compare(s, other)}
    assert rows == {"C1": False, "C2": True, "C3": True, "C4": True, "H_max_relevance": True}
    with pytest.raises(ValueError, match="different verdicts"):
        CP.compare(s, {k: v for k, v in s.items() if k != "C4"})


def test_the_reseed_reference_counts_pairs_of_seeds_per_layer_row():
    q = "H_s_norm"

    def row(seed, depth, value, sd):
        return {"seed": seed, "split": "train", "depth": depth, f"{q}_default": value, f"seed_sd_{q}": sd}

    rows = [row(0, 1, 0.50, 0.01), row(1, 1, 0.51, 0.01), row(2, 1, 0.525, 0.01),  # pairs: 0.01, 0.025, 0.015
            row(0, 2, 1.0, 0.0), row(1, 2, 1.0, 0.0)]  # no spread: no pair counted
    assert CP.reseed_reference(rows, q) == (1, 3)  # only 0.50 vs 0.525 differs by more than 2 sd
