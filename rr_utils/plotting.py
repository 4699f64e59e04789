"""Shared figure style and the plots every notebook draws."""

from __future__ import annotations

import io as _io
import json

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from rr_utils.artifacts import figures_dir, git_commit, params_hash
from rr_utils.io import atomic_write_bytes

PALETTE = "viridis"


def set_style() -> None:
    """Seaborn 'ticks' style, paper context, colour-blind palette, fixed fonts."""
    sns.set_theme(context="paper", style="ticks", palette="colorblind", font_scale=1.2)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight",
                         "axes.spines.top": False, "axes.spines.right": False,
                         "svg.hashsalt": "rr", "pdf.compression": 6})


def save_figure(fig, name: str, params: dict | None = None, caption: str = "",
                notebook: str = "", quick: bool = False) -> dict:
    """Save ``fig`` as figures/<name>.png and .pdf, atomically, with provenance.

    PNG text chunks and PDF metadata carry the git commit, the parameter hash,
    the notebook and the caption; a sidecar figures/<name>.json holds the same
    for the gallery.  Returns that provenance dict.
    """
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or "." in name:
        raise ValueError(f"name: expected a bare figure name like 'fig1_bound', got {name!r}")
    if not callable(getattr(fig, "savefig", None)):
        raise TypeError(f"fig: expected a matplotlib Figure, got {type(fig).__name__}")
    if params is not None and not isinstance(params, dict):
        raise TypeError(f"params: expected a dict of the notebook's parameters, got {type(params).__name__}")
    for key, value in (("caption", caption), ("notebook", notebook)):
        if not isinstance(value, str):
            raise TypeError(f"{key}: expected a string, got {type(value).__name__}")
    params = params or {}
    meta = {"name": name, "caption": caption, "notebook": notebook, "commit": git_commit(),
            "params": params, "params_hash": params_hash(params)}
    out = figures_dir(quick)
    # Fixed dates and software keys keep the files byte-stable between runs.
    png_meta = {"Title": name, "Description": caption, "Source": notebook,
                "Comment": f"commit={meta['commit']} params_hash={meta['params_hash']}", "Software": None}
    pdf_meta = {"Title": name, "Subject": caption, "Keywords": f"commit={meta['commit']} "
                f"params_hash={meta['params_hash']} notebook={notebook}",
                "CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}
    for ext, md in (("png", png_meta), ("pdf", pdf_meta)):
        buf = _io.BytesIO()
        fig.savefig(buf, format=ext, metadata=md)
        atomic_write_bytes(out / f"{name}.{ext}", buf.getvalue())
    atomic_write_bytes(out / f"{name}.json", (json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n").encode())
    return meta


def plot_bound(ax, curve, branch=None, normalized: bool = True, label: str = "maximal relevance",
               color: str = "0.2", mark_mu=(0.5, 1.0, 2.0), **kw):
    """Draw the maximal-relevance curve (and its diagonal branch) on ``ax``."""
    x, y = ("H_s_norm", "H_K_norm") if normalized else ("H_s", "H_K")
    ax.plot(curve[x], curve[y], color=color, lw=1.6, label=label, **kw)
    if branch is not None:
        ax.plot(branch[x], branch[y], color=color, lw=1.6, ls="--")
    for mu in mark_mu or ():
        row = curve.iloc[int(np.argmin(np.abs(curve["mu"].to_numpy() - mu)))]
        ax.plot(row[x], row[y], "o", color=color, ms=4)
        ax.annotate(f"μ={mu:g}", (row[x], row[y]), textcoords="offset points", xytext=(4, 3), fontsize=8)
    if normalized:
        ax.set(xlim=(0, 1.02), ylim=(0, None), xlabel="H[s] / log M  (resolution)",
               ylabel="H[K] / log M  (relevance)")
    else:
        ax.set(xlabel="H[s]  (nats)", ylabel="H[K]  (nats)")
    return ax


def plot_mk(ax, k, m_k, label=None, **kw):
    """Log-log frequency of frequencies m_k against k."""
    ax.loglog(k, m_k, "o", ms=3, alpha=0.8, label=label, **kw)
    ax.set(xlabel="k", ylabel="m_k")
    return ax


def plot_rank_frequency(ax, rank, k_r, label=None, **kw):
    """Log-log rank-frequency plot k_r against r."""
    ax.loglog(rank, k_r, lw=1.4, label=label, **kw)
    ax.set(xlabel="rank r", ylabel="k_r")
    return ax


def plot_layer_errorbars(ax, intervals, normalized: bool = True, color="crimson", label=None, **kw):
    """Each layer at (H[s], H[K]) with its bootstrap interval on both axes.

    ``intervals``: the frame of ``rr_utils.claims.layer_entropy_intervals`` (columns
    H_s_norm, H_s_norm_lo, H_s_norm_hi, H_K_norm, ... or the same without ``_norm``).
    The bars are the normal intervals (estimate +- z * bootstrap sd), centred on the
    estimates; their percentile intervals and bias are in the frame.
    """
    sx, sy = ("H_s_norm", "H_K_norm") if normalized else ("H_s", "H_K")
    for col in (sx, sy, f"{sx}_lo", f"{sx}_hi", f"{sy}_lo", f"{sy}_hi"):
        if col not in intervals:
            raise ValueError(f"intervals: missing column {col!r} (see claims.layer_entropy_intervals)")
    x, y = np.asarray(intervals[sx], float), np.asarray(intervals[sy], float)
    xerr = np.vstack([x - np.asarray(intervals[f"{sx}_lo"], float), np.asarray(intervals[f"{sx}_hi"], float) - x])
    yerr = np.vstack([y - np.asarray(intervals[f"{sy}_lo"], float), np.asarray(intervals[f"{sy}_hi"], float) - y])
    kw.setdefault("fmt", "none")
    kw.setdefault("elinewidth", 1.0)
    kw.setdefault("capsize", 2)
    return ax.errorbar(x, y, xerr=np.clip(xerr, 0, None), yerr=np.clip(yerr, 0, None), color=color, label=label, **kw)
