"""The quick run's numbers against the expected values (make test runs this file after the quick notebooks).

Not collected by ``pytest tests`` (the name does not start with ``test_``): it needs the quick run's
``results/quick/`` and its networks in the model cache, which exist only after the notebooks ran.
``make test`` runs it by name::

    python -m pytest tests/quick_check.py

* every quantity of ``results/quick/**/*.json`` matches ``tests/expected/quick_digest.json`` within its
  tolerance (tests/quick_digest.py says which and why);
* a small change to the computation that every consistency check of the notebooks still accepts fails
  that comparison: notebook 04's layer table recomputed from the same cached network, with the states of
  each layer made from the thresholded states of the layer below instead of its probabilities.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch

import quick_digest as Q

NB04 = "04_relevance_across_layers"


@pytest.fixture(scope="module")
def fresh() -> dict:
    files = Q.collect(Q.QUICK)
    assert files, f"no results under {Q.QUICK}: run the quick notebooks first (make test does)"
    return files


def test_the_quick_run_matches_the_expected_values(fresh):
    diff = Q.differences(Q.load_digest(), fresh)
    shown = "\n".join(diff[:60]) + (f"\n... and {len(diff) - 60} more" if len(diff) > 60 else "")
    assert not diff, (f"{len(diff)} quantities of the quick run differ from tests/expected/quick_digest.json:\n{shown}\n"
                      "An intended change: `make expected` reruns the quick notebooks, rewrites the digest and "
                      "prints what moved.")


def test_every_notebook_that_writes_results_is_in_the_digest():
    expected = Q.load_digest()
    for book in Q.notebook_order():
        text = book.read_text()
        for name in set(__import__("re").findall(r'save_results\(\\"([A-Za-z0-9_]+)', text)):
            name = {"NB": book.stem}.get(name, name)
            assert f"{name}.json" in expected, f"{book.name} writes {name}.json, which the digest does not cover"


def binary_up_pass(self, x, threshold: float = 0.5, upto=None, batch_size: int = 2048):
    """The deliberate change: each layer driven by the *thresholded* states of the layer below, not its probabilities."""
    out = [[] for _ in range(self._upto(upto))]
    with torch.no_grad():
        for xb in self._batches(x, batch_size):
            for layer in range(len(out)):
                p = self.rbms[layer].hidden_probs(xb)
                out[layer].append((p > threshold).cpu().numpy())
                xb = (p > threshold).to(p.dtype)
    return [np.concatenate(o) for o in out]


def table_json(dbn, splits) -> list:
    from rr_utils import experiments as X

    table, _ = X.layer_table_and_counts(dbn, splits, 0)
    return json.loads(json.dumps(table.round(8).to_dict("records")))  # as notebook 04 writes it


def test_a_changed_up_pass_fails_the_comparison(fresh, monkeypatch):
    monkeypatch.setenv("RR_REQUIRE_CACHED", "1")  # the quick network the notebooks used, never retrained here
    monkeypatch.setenv("RR_QUICK", "1")
    from rr_utils.notebook import start

    run = start(NB04, quick=True)
    splits, dbn = run.splits(), run.network(0)
    expected = {k: v for k, v in Q.load_digest()[f"{NB04}.json"].items() if k.startswith("/table/")}

    same = Q.flatten({"table": table_json(dbn, splits)})
    assert Q.differences({"04": expected}, {"04": same}) == []  # the real computation reproduces the digest

    dbn.binary_states = types.MethodType(binary_up_pass, dbn)
    changed = table_json(dbn, splits)
    # every consistency check notebook 04 makes of its table still accepts the changed one
    assert all(r["below_bound_norm"] >= -1e-3 for r in changed)
    assert all(0 <= r["H_K_norm"] <= 1 and 0 <= r["H_s_norm"] <= 1 for r in changed)
    diff = Q.differences({"04": expected}, {"04": Q.flatten({"table": changed})})
    print(f"binary up-pass: {len(diff)} quantities of notebook 04's table move, e.g.\n  " + "\n  ".join(diff[:5]))
    assert diff, "a different up-pass left every number of notebook 04's table within its tolerance"
