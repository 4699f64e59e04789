"""rr_utils.claims.records: the claims' results read by attribute, and still the dicts (and JSON bytes) they replace."""

import copy
import dataclasses
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from rr_utils.claims import c4_generation as CG
from rr_utils.claims import layers as CL
from rr_utils.claims import rules as CR
from rr_utils.claims.records import (ClaimVerdict, GenerationVerdict, HypothesisVerdict, LayerClaims, Numbers,
                                     SeedEvidence, SeedVerdict, VsReferences, plain)
from rr_utils.io import dumps_json


def _record(decision="holds", effect=0.02):
    return CR.verdict("C2", True, decision == "holds", {"mean_below_bound_norm": 0.01, "rule": "r"},
                      {"rule": "v", "decision": decision, "basis": "strong", "references": ["untrained"],
                       "comparisons": {"untrained": {"mean_effect": effect, "decision": decision, "quantile": 0.9}},
                       "checks": {"a": True}, "n_informative": 2, "per_layer": [{"depth": 1, "untrained": {"mean": 1}}]})


def test_a_verdict_reads_by_attribute_and_by_key_alike():
    v = _record()
    assert isinstance(v, ClaimVerdict) and isinstance(v.vs_null, VsReferences) and isinstance(v.as_stated, Numbers)
    assert v.vs_null.comparisons["untrained"].quantile == v["vs_null"]["comparisons"]["untrained"]["quantile"] == 0.9
    assert v.vs_null.comparisons.untrained.decision == "holds" and v.vs_null.n_informative == 2
    assert v.as_stated.mean_below_bound_norm == 0.01 and v.vs_null.per_layer[0].untrained.mean == 1
    assert v.get("note") == "" and v.vs_null.get("missing") is None and "decision" in v.vs_null
    assert list(v) == ["id", "text", "holds_as_stated", "holds_vs_null", "as_stated", "vs_null", "note"]
    with pytest.raises(AttributeError, match="no 'nope'"):
        v.vs_null.nope
    with pytest.raises(KeyError):
        v["nope"]


def test_a_record_is_the_dict_it_replaces_and_writes_the_same_bytes():
    v = _record()
    d = v.as_dict()
    assert type(d) is dict and type(d["vs_null"]) is dict and type(d["vs_null"]["comparisons"]["untrained"]) is dict
    assert type(d["vs_null"]["per_layer"][0]) is dict
    assert v == d and d == v and dict(v) == v
    assert set(d["vs_null"]) == {"rule", "decision", "basis", "references", "comparisons", "checks", "n_informative",
                                 "per_layer"}
    assert dumps_json({"claims": {"C2": v}}) == dumps_json({"claims": {"C2": d}})
    assert ClaimVerdict.from_dict(json.loads(json.dumps(d))) == v
    assert plain([v, (1, 2)]) == [d, [1, 2]]


def test_records_are_frozen_and_survive_pickle_and_copy():
    v = _record()
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.note = "changed"
    with pytest.raises(TypeError, match="read-only"):
        v.as_stated["rule"] = "changed"
    with pytest.raises(TypeError, match="read-only"):
        v.vs_null.comparisons["untrained"].update(decision="does not hold")
    for other in (pickle.loads(pickle.dumps(v)), copy.deepcopy(v), copy.copy(v)):
        assert other == v and type(other) is ClaimVerdict and type(other.vs_null) is VsReferences
    assert type(_record().as_stated | {"x": 1}) is dict  # a changed copy is a plain dict


def test_vs_references_keys_are_those_the_dict_had():
    empty = CR.verdict("C4", True, None, {}, {}, note="no null yet")
    assert dict(empty.vs_null) == {} and empty.vs_null.decision is None and empty.as_dict()["vs_null"] == {}
    with pytest.raises(ValueError, match="details may not repeat"):
        VsReferences(decision="holds", details={"decision": "holds"})


def test_seed_rule_gives_a_seed_verdict():
    agg = CR.seed_rule([_record("holds", 0.02), _record("holds", 0.03), _record("undecided", 0.01)], min_fraction=0.6)
    assert isinstance(agg, SeedVerdict) and isinstance(agg.evidence, SeedEvidence)
    assert agg.decision_vs_null == "holds" and agg.evidence.decisions.undecided == 1
    e = agg.evidence.effects_over_seeds["untrained"]
    assert e.n == 3 and e.holds == 2 and e.lo < e.mean < e.hi
    assert all(isinstance(r, ClaimVerdict) for r in agg.evidence.per_seed)
    back = SeedVerdict.from_dict(json.loads(dumps_json(agg)))
    assert back == agg and isinstance(back.evidence.per_seed[0], ClaimVerdict)
    assert dumps_json(back) == dumps_json(agg)


def test_layer_claims_is_claim_id_to_verdict_with_attribute_access():
    rng = np.random.default_rng(0)
    widths = [12, 8, 5, 3]
    counts = [np.unique(rng.integers(0, 2, (400, w)), axis=0, return_counts=True)[1] for w in widths]
    claims = CL.layer_claims(counts, widths, seed=0, n_boot=0, n_gof=10, n_draws=2)
    assert isinstance(claims, LayerClaims) and list(claims) == ["C1", "C2", "C3"]
    assert claims.C2 is claims["C2"] and isinstance(claims.C3, ClaimVerdict)
    assert claims.C2.vs_null.decision == claims["C2"]["vs_null"]["decision"]
    assert isinstance(pd.DataFrame(claims.C2.vs_null.per_layer), pd.DataFrame)
    plain_claims = {cid: r.as_dict() for cid, r in claims.items()}
    assert dumps_json(claims) == dumps_json(plain_claims) and LayerClaims.from_dict(plain_claims) == claims
    assert pickle.loads(pickle.dumps(claims)) == claims


def test_c4_records():
    scores = pd.DataFrame([{"seed": s, "depth": d, "units": 60 - 10 * d, "frechet_distance": fd}
                           for s, row in {0: [9, 5, 1, 4, 8], 1: [9, 6, 1.5, 4, 7], 2: [8, 5, 1.2, 3, 9]}.items()
                           for d, fd in enumerate(row, start=1)])
    c4 = CG.claim_c4(scores, {0: 3, 1: 3, 2: 3}, bound_point_depth={0: 3, 1: 4, 2: 3})
    assert isinstance(c4, GenerationVerdict) and c4.by_bound_point.same_layer_as_zipf_layer == [True, False, True]
    assert c4.confounded_with_width == 30 and c4.as_stated.D.ci_high < 0 and c4.vs_null.rule.startswith("none")
    assert "by_bound_point" not in CG.claim_c4(scores, {0: 3, 1: 3, 2: 3})  # a key only when asked for
    h = CG.max_relevance_hypothesis(scores, {0: 2, 1: 2, 2: 2})
    assert isinstance(h, HypothesisVerdict) and h.stated_beforehand and "confounded_with_width" not in h
    for r in (c4, h):
        assert type(r).from_dict(json.loads(dumps_json(r))) == r
