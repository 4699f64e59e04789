"""The maximal-relevance bound: ``max_relevance_curve`` for 200 values of mu at
several M (the grid cache cleared before every call), and the fitted scaling
exponent of its cost in M."""

from __future__ import annotations

import numpy as np

from rr_utils import bound as B
from rr_utils import relaxation

try:
    from .common import Row, best_time, fmt_s
except ImportError:  # run as a script
    from common import Row, best_time, fmt_s  # type: ignore

TARGETS = {60_000: 2.0, 1_000_000: 30.0}


def _curve(M: int):
    relaxation.grid.cache_clear()  # time the whole computation, not a cached grid
    return B.max_relevance_curve(M, B.default_mu_grid(M, 200))


def run(smoke: bool = False, log=print) -> tuple[list[Row], dict]:
    Ms = (1_000, 10_000) if smoke else (10_000, 60_000, 100_000, 1_000_000)
    recs = []
    for M in Ms:
        t, df = best_time(lambda: _curve(M), repeats=3, budget_s=10)
        if len(df) != 200 or not np.isfinite(df[["H_s", "H_K", "gap"]].to_numpy()).all():
            raise AssertionError(f"max_relevance_curve({M}) returned a malformed table")
        recs.append({"M": M, "seconds": t, "n_mu": len(df), "max_gap": float(df["gap"].max())})
        log(f"  bound M={M}: {fmt_s(t)} for 200 mu")
    logM = np.log([r["M"] for r in recs])
    logt = np.log([r["seconds"] for r in recs])
    slope = float(np.polyfit(logM, logt, 1)[0]) if len(recs) > 1 else None
    rows = []
    for r in recs:
        lim = TARGETS.get(r["M"])
        rows.append(Row("bound", "max_relevance_curve, 200 mu", f"M={r['M']:,}", fmt_s(r["seconds"]),
                        "-", None, f"< {lim:.0f} s" if lim else "", (r["seconds"] < lim) if lim else None,
                        data=r))
    if slope is not None:
        rows[-1].note = (f"cost ~ M^{slope:.2f} over M = {Ms[0]:,}..{Ms[-1]:,} (least-squares slope of log t vs "
                         "log M): one O(M) vectorised grid (cumulative sums over k = 1..M) plus, for all mu at "
                         "once, bisections over O(sqrt M) columns and levels; sublinear at these sizes, "
                         "linear in M only asymptotically")
    return rows, {"cases": recs, "scaling_exponent": slope}
