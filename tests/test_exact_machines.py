"""workflow/scripts/exact_machines.py: exact mode's layer numbers here against the committed machine's."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("exact_machines", ROOT / "workflow" / "scripts" / "exact_machines.py")
EM = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(EM)


def _committed():
    layers = []
    for split in ("train", "test"):
        for depth in (1, 2, 3):
            h_s, h_k = round(1.0 - 0.1 * depth, 6), round(0.05 * depth, 6)
            layers.append({"seed": 0, "split": split, "depth": depth, "H_s_norm_exact": h_s, "H_K_norm_exact": h_k,
                           "H_s_norm_default": h_s if depth == 1 else h_s + 0.01, "H_K_norm_default": h_k})
    return {"layers": layers, "machine": {"cpu_model": "X"}}


def _here(committed, **moves):
    rows = [{"split": r["split"], "depth": str(r["depth"]), "H_s_norm": str(r["H_s_norm_exact"]),
             "H_K_norm": str(r["H_K_norm_exact"])} for r in committed["layers"]]
    for (split, depth, q), delta in moves.get("moves", {}).items():
        row = next(r for r in rows if r["split"] == split and r["depth"] == str(depth))
        row[q] = str(float(row[q]) + delta)
    return rows


def test_identical_tables_are_identical_and_a_change_of_path_is_counted():
    c = _committed()
    got = EM.compare(_here(c), c, 0)
    assert (got["numbers"], got["identical"], got["max_abs_delta"], got["differ"]) == (12, 12, 0.0, [])
    assert got["committed_exact_vs_default_differ"] == 4  # depth 2 and 3's H_s on both splits


def test_one_moved_number_is_named():
    c = _committed()
    got = EM.compare(_here(c, moves={("test", 2, "H_K_norm"): 3e-6}), c, 0)
    assert got["identical"] == 11 and got["max_abs_delta"] == pytest.approx(3e-6)
    assert got["differ"] == [{"split": "test", "depth": 2, "quantity": "H_K_norm", "here": 0.100003,
                              "committed": 0.1}]
    # a move below the sixth decimal is no move: the committed file keeps six
    assert EM.compare(_here(c, moves={("test", 2, "H_K_norm"): 3e-8}), c, 0)["identical"] == 12


def test_missing_rows_or_seeds_are_named():
    c = _committed()
    with pytest.raises(ValueError, match="seed 4: results/code_paths.json has no layer rows"):
        EM.compare(_here(c), c, 4)
    with pytest.raises(ValueError, match="seed 0: layer rows"):
        EM.compare(_here(c)[:-1], c, 0)


def test_the_command_line_refuses_seeds_the_committed_file_lacks(tmp_path, capsys):
    out = tmp_path / "x.json"
    with pytest.raises(SystemExit) as exc:
        EM.main(["--seeds", "99", "--out", str(out)])
    assert exc.value.code == 2 and "--seeds: [99] are not in results/code_paths.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        EM.main(["--seeds", "0", "--jobs", "0", "--out", str(out)])
    assert not out.exists()


def test_the_committed_check_is_a_test_across_two_code_paths():
    """The committed results/exact_machines.json compares machines whose default paths differ, and its counts
    add up (it is not a machine compared with itself)."""
    doc = json.loads((ROOT / "results" / "exact_machines.json").read_text())
    caps = doc["default_capabilities"]
    assert caps["here"] and caps["committed"] and caps["here"] != caps["committed"]
    assert doc["numbers"] == sum(p["numbers"] for p in doc["per_seed"]) == 48 * len(doc["seeds"])
    assert doc["identical"] == sum(p["identical"] for p in doc["per_seed"])
    assert doc["committed_exact_vs_default_differ"] > doc["numbers"] // 2  # the numbers can see a change of path
