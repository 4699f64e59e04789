"""A verdict whose evidence straddles its decision boundary is "undecided", as stated too (issue: verdicts robust
to the floating-point path): across seeds by the seed rule, and for C4 by its interval over seeds."""

from __future__ import annotations

import pandas as pd
import pytest

from rr_utils.claims import c4_generation as CG
from rr_utils.claims import rules as CR


def _seed_records(n_hold: int, n: int = 10) -> list[dict]:
    return [CR.verdict("C2", i < n_hold, None, {"rule": "r"}, {"rule": "r"}) for i in range(n)]


@pytest.mark.parametrize("n_hold, decision", [(10, "holds"), (8, "holds"), (7, "undecided"), (5, "undecided"),
                                              (3, "undecided"), (2, "does not hold"), (0, "does not hold")])
def test_seed_rule_as_stated_is_undecided_between_the_two_80_percent_marks(n_hold, decision):
    v = CR.seed_rule(_seed_records(n_hold), 0.8)
    assert v.decision_as_stated == decision
    assert v.holds_as_stated == (decision == "holds")  # the bool keeps its meaning


def _table(rows):
    return pd.DataFrame([{"seed": s, "depth": d, "frechet_distance": v}
                         for s, vals in rows.items() for d, v in enumerate(vals, start=1)])


def test_c4_interval_below_above_or_around_zero():
    target = {0: 3, 1: 3, 2: 3}
    best = _table({0: [9, 5, 1, 4, 8], 1: [9, 6, 1.5, 4, 7], 2: [8, 5, 1.2, 3, 9]})  # D < 0 in every seed
    assert CG.claim_c4(best, target).decision_as_stated == "holds"
    worse = _table({0: [9, 5, 3, 1, 8], 1: [9, 6, 3.5, 1.5, 7], 2: [8, 5, 3.2, 1.2, 9]})  # D > 0 in every seed
    assert CG.claim_c4(worse, target).decision_as_stated == "does not hold"
    mixed = _table({0: [9, 5, 1, 4, 8], 1: [9, 6, 3, 1, 7], 2: [8, 5, 1.2, 3, 9]})  # D = -3, +2, -1.8
    v = CG.claim_c4(mixed, target)
    d = v.as_stated.D
    assert d.ci_low < 0 < d.ci_high  # the interval contains the boundary ...
    assert v.decision_as_stated == "undecided" and not v.holds_as_stated  # ... so nothing is decided
    assert v.as_dict()["decision_as_stated"] == "undecided"  # and the results file says so


def test_c4_one_seed_decides_by_its_point_estimate_and_old_records_read_back():
    one = CG.claim_c4(_table({0: [9, 5, 1, 4, 8]}), 3)
    assert one.decision_as_stated == "holds"
    d = one.as_dict()
    del d["decision_as_stated"]  # a results file written before the field existed
    assert type(one).from_dict(d).decision_as_stated is None
