"""Timing helpers, the result table and machine information shared by the benchmarks."""

from __future__ import annotations

import gc
import os
import platform
import time
from dataclasses import asdict, dataclass, field


def best_time(fn, repeats: int = 3, budget_s: float = 5.0, warmup: bool = False) -> tuple[float, object]:
    """Best-of-``repeats`` wall time of ``fn()`` (stops early once ``budget_s`` is spent);
    returns (seconds, the last result)."""
    if warmup:
        fn()
    best, spent, out = float("inf"), 0.0, None
    enabled = gc.isenabled()
    gc.disable()  # as timeit does: no collector pauses inside the timed calls
    try:
        for _ in range(max(1, repeats)):
            out = None
            t0 = time.perf_counter()
            out = fn()
            dt = time.perf_counter() - t0
            best, spent = min(best, dt), spent + dt
            if spent > budget_s:
                break
    finally:
        if enabled:
            gc.enable()
    return best, out


@dataclass
class Row:
    """One line of the table: ``ratio`` is baseline / ours (a speed-up) unless
    ``ratio_kind`` says otherwise; ``met`` is None where there is no target."""

    section: str
    name: str
    size: str
    ours: str
    baseline: str
    ratio: float | None
    target: str = ""
    met: bool | None = None
    note: str = ""
    data: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def fmt_s(t: float | None) -> str:
    if t is None:
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.0f} us"
    if t < 1:
        return f"{t * 1e3:.1f} ms"
    return f"{t:.2f} s"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "-"
    return f"{r:.0f}x" if r >= 100 else f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def table(rows: list[Row]) -> str:
    """Markdown table (also readable as plain text)."""
    head = ["section", "benchmark", "size", "ours", "baseline", "ratio", "target", "met"]
    body = []
    for r in rows:
        met = "" if r.met is None else ("yes" if r.met else "NO")
        body.append([r.section, r.name, r.size, r.ours, r.baseline, fmt_ratio(r.ratio), r.target, met])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    out = [line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(b) for b in body]
    notes = [f"- {r.section}/{r.name} {r.size}: {r.note}" for r in rows if r.note]
    if notes:
        out += ["", "Notes:", *notes]
    return "\n".join(out)


def machine_info() -> dict:
    import numpy as np
    import torch

    model = platform.processor() or platform.machine()
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("", platform.machine(), platform.processor()):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line
    except OSError:
        pass
    simd = [s for s in ("avx2", "avx512f", "fma") if f" {s}" in flags]
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    try:
        import sklearn
        skv = sklearn.__version__
    except ImportError:
        skv = None
    blas = "mkl" if torch.backends.mkl.is_available() else "other"
    return {
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "simd": simd,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_blas": blas,
        "torch_threads": torch.get_num_threads(),
        "scikit_learn": skv,
        "load_average_at_start": load,
        "platform": platform.platform(),
    }
