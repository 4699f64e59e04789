"""workflow/scripts/c4_samples.py: C4's D on a second pool of generated images, and what more images would do.

The measurement (20 pools of generated images) runs with `make c4-samples`; these tests check the logic that
turns its scores into results/c4_samples.json, on scores built with a known answer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))

import c4_samples as S  # noqa: E402


def _rows(n_seeds=10, noise=1.0, spread=10.0, seed=0):
    """FD per (seed, pool, depth): the target (depth 6) sits D_seed above the best other layer (depth 7)."""
    rng = np.random.default_rng(seed)
    rows, truth = [], {}
    for s in range(n_seeds):
        truth[s] = float(rng.normal(0, spread))
        for pool in ("a", "b", "a+b"):
            e = noise / (np.sqrt(2) if pool == "a+b" else 1)
            for d in S.DEPTHS:
                fd = 100.0 + d  # far from the two compared layers
                if d == 7:
                    fd = 50.0 + rng.normal(0, e)
                if d == 6:
                    fd = 50.0 + truth[s] + rng.normal(0, e)
                rows.append({"seed": s, "pool": pool, "depth": d, "n": 500, "frechet_distance": float(fd)})
    return rows, truth


def test_d_per_pool_is_the_library_comparison_and_the_summary_separates_noise_from_seeds():
    rows, truth = _rows(n_seeds=40, noise=1.0, spread=10.0)
    d = S.d_per_pool(rows, {s: 6 for s in truth})
    for s, t in truth.items():  # D = FD(6) - FD(7) when 7 is the best other layer
        assert d["a"][s] == pytest.approx(t, abs=6)
    s = S.summarise(d)
    # D's noise per pool: two independent draws of sd 1 -> sd sqrt(2); over seeds the spread is 10
    assert s["sampling_sd_D"] == pytest.approx(np.sqrt(2), rel=0.35)
    assert s["between_seed_sd_D"] == pytest.approx(10, rel=0.35)
    assert s["sampling_share_of_variance"] < 0.1
    iv = s["intervals"]
    assert set(iv) == {"500, notebook pool", "500, second pool", "1000, both pools"}
    assert all(v["ci_low"] < v["mean"] < v["ci_high"] for v in iv.values())


def test_when_sampling_noise_dominates_the_summary_says_so():
    rows, truth = _rows(n_seeds=40, noise=10.0, spread=0.5)
    s = S.summarise(S.d_per_pool(rows, {t: 6 for t in truth}))
    assert s["sampling_share_of_variance"] > 0.8
    assert s["width_ratio_1000_vs_500"] < 0.95  # the pooled D is less noisy


def test_a_regenerated_pool_that_is_not_the_notebooks_stops_the_script():
    rows, _ = _rows(n_seeds=2)
    committed = [{"seed": r["seed"], "depth": r["depth"], "frechet_distance": r["frechet_distance"]}
                 for r in rows if r["pool"] == "a"]
    assert S.check_notebook_pool(rows, committed) == 0.0
    committed[3]["frechet_distance"] += 0.01
    with pytest.raises(RuntimeError, match="not the notebook's"):
        S.check_notebook_pool(rows, committed)


def test_the_left_out_layers_margin_is_counted_in_pool_noise():
    rows, _ = _rows(n_seeds=3, noise=1.0)
    committed = [{"seed": r["seed"], "depth": r["depth"], "frechet_distance": r["frechet_distance"]}
                 for r in rows if r["pool"] == "a"]
    committed += [{"seed": s, "depth": d, "frechet_distance": 200.0} for s in range(3) for d in (1, 2)]
    m = S.left_out_margin(committed, rows)
    assert m > 10  # layers 1-2 at FD 200 against two best near 50-70, noise ~1


def test_the_committed_file_passed_its_checks():
    doc = json.loads((ROOT / "results" / "c4_samples.json").read_text())
    assert doc["checks"]["notebook_pool_max_fd_diff"] <= 1e-4 and doc["checks"]["notebook_pool_max_D_diff"] <= 1e-3
    assert doc["summary"]["n_seeds"] == doc["params"]["n_seeds"] == len(doc["per_seed"])
