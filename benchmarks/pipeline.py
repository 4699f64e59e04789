"""End to end: per-notebook wall times of the last ``make reproduce``
(``results/timings.json``) and their total next to the 45-minute budget (MNIST, and notebooks
03-06 and 08 on Fashion-MNIST at 60,000 images)."""

from __future__ import annotations

import json
from pathlib import Path

try:
    from .common import Row, fmt_s
except ImportError:  # run as a script
    from common import Row, fmt_s  # type: ignore

BUDGET_S = 45 * 60
ROOT = Path(__file__).resolve().parents[1]


def _short(run_name: str) -> str:
    """'03_train_dbn@fashion-mnist' -> '03@fashion-mnist'."""
    nb, _, dataset = run_name.partition("@")
    return nb.split("_")[0] + (f"@{dataset}" if dataset else "")


def run(smoke: bool = False, timings: Path | None = None, log=print) -> tuple[list[Row], dict]:
    path = Path(timings) if timings else ROOT / "results" / "timings.json"
    if not path.exists():
        log(f"  pipeline: {path} missing (run make reproduce first)")
        return [Row("pipeline", "make reproduce, all notebooks", "-", "missing", fmt_s(BUDGET_S), None,
                    "<= 45 min", None, note=f"{path.name} not found")], {"timings": None, "budget_s": BUDGET_S}
    t = json.loads(path.read_text())
    nbs = t.get("notebooks", {})
    total = float(t.get("total_s", sum(nbs.values())))
    # The budget is for a fresh clone, whose networks are trained; timings.json records the last run,
    # which may have loaded them from the model cache, and does not say which: not judged here.
    rows = [Row("pipeline", "make reproduce, all notebooks (last run)", f"{len(nbs)} notebooks", fmt_s(total),
                fmt_s(BUDGET_S), total / BUDGET_S, "<= 45 min (fresh clone)", None,
                note="ratio = total / budget; not judged: the last run may have loaded its networks from the "
                     "model cache; " + ", ".join(f"{_short(k)} {v:.0f} s" for k, v in nbs.items())
                + f" ({t.get('machine', '')})")]
    log(f"  pipeline: {total:.0f} s of notebooks vs a {BUDGET_S} s budget")
    return rows, {"timings": t, "total_s": total, "budget_s": BUDGET_S, "source": str(path.relative_to(ROOT))
                  if path.is_relative_to(ROOT) else str(path)}
