"""Shared figure style and the plots every notebook draws."""

from __future__ import annotations

import io as _io
import json
import math

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from rr_utils._checks import _to_numpy, check_int
from rr_utils.artifacts import figures_dir, git_commit, params_hash
from rr_utils.io import atomic_write_bytes


def set_style() -> None:
    """Seaborn 'ticks' style, paper context, colour-blind palette, fixed fonts."""
    sns.set_theme(context="paper", style="ticks", palette="colorblind", font_scale=1.2)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 150, "savefig.bbox": "tight",
                         "axes.spines.top": False, "axes.spines.right": False,
                         "svg.hashsalt": "rr", "pdf.compression": 6})


def save_figure(fig, name: str, params: dict | None = None, caption: str = "",
                notebook: str = "", quick: bool = False, scratch: bool = False, dataset: str | None = None) -> dict:
    """Save ``fig`` as figures/<name>.png and .pdf, atomically, with provenance.

    PNG text chunks and PDF metadata carry the git commit, the parameter hash,
    the notebook and the caption; a sidecar figures/<name>.json holds the same
    for the docs site (docs/_ext/rr_docs.py).  Returns that provenance dict.  ``quick`` / ``scratch``
    choose figures/quick/ or figures/scratch/, ``dataset`` a data set's subfolder
    (``rr_utils.artifacts.figures_dir``).
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
    out = figures_dir(quick, scratch, dataset)
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


def width_axis(ax, depths, sizes, label: str = "layer width (hidden units), shallow → deep") -> None:
    """Ticks at each layer's depth labelled with its width (``sizes[depth]``, visible units first)."""
    depths = [int(d) for d in depths]
    if any(d < 1 or d >= len(sizes) for d in depths):
        raise ValueError(f"depths: expected depths 1..{len(sizes) - 1} (sizes has the visible units first), got {depths}")
    ax.set_xticks(depths)
    ax.set_xticklabels([str(int(sizes[d])) for d in depths])
    ax.set_xlabel(label)


# colour and line style of each kind of marked layer (mark_layers)
_MARKS = (("crimson", "-."), ("purple", "--"), ("0.3", ":"))


def mark_layers(ax, marks: dict, sizes, legend_label: bool = True) -> None:
    """A vertical line at each marked layer, named in the legend with its width.

    ``marks`` maps a name ("Zipf layer", "max relevance") to one depth or to a
    list of depths, one per seed: a line is drawn at every depth seen, darker
    the more seeds share it, and the legend gives the most common one with its
    count ("Zipf layer: 25 units (4/5 seeds)").  A line that falls on an
    earlier one is shifted by a tenth of a layer, so both stay visible.
    """
    drawn: dict[int, int] = {}  # depth -> lines already there (a second one is shifted, not hidden)
    for (name, depths), (color, ls) in zip(marks.items(), _MARKS * (1 + len(marks) // len(_MARKS))):
        depths = [int(d) for d in np.atleast_1d(np.asarray(depths, dtype=object)) if d is not None]
        if not depths:
            continue
        values, counts = np.unique(depths, return_counts=True)
        mode = int(values[np.argmax(counts)])
        label = f"{name}: {sizes[mode]} units"
        if len(depths) > 1:
            label += f" ({counts.max()}/{len(depths)} seeds)"
        for d, c in zip(values, counts):
            shift = 0.1 * drawn.get(int(d), 0)
            drawn[int(d)] = drawn.get(int(d), 0) + 1
            ax.axvline(d + shift, color=color, ls=ls, lw=1.5, alpha=0.3 + 0.7 * c / len(depths), zorder=0,
                       label=label if (d == mode and legend_label) else None)


def label_points(ax, x, y, labels, fontsize: float = 9, merge_px: float = 8.0, pad_px: float = 2.0, sep: str = ", ",
                 avoid=None, **kw) -> list:
    """Label points without overprinting: coincident points share one label, others avoid each other.

    Points closer than ``merge_px`` pixels get one label ("500, 250, 120",
    joined by ``sep``).  Each label then takes the first of a few offsets
    (right, above, left, below, ...) whose box overlaps neither an earlier
    label, nor a labelled point, nor a point of ``avoid`` (an (n, 2) array of
    data coordinates), and stays inside the axes; where the points are
    crowded, the same offsets further out, with a thin leader line.  Set the axes limits and the figure size
    first: placement uses the current transform.  Returns the annotations.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    labels = [str(s) for s in labels]
    if not (len(x) == len(y) == len(labels)):
        raise ValueError(f"x, y, labels: expected equal lengths, got {len(x)}, {len(y)}, {len(labels)}")
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    ax.get_xlim(), ax.get_ylim()  # apply pending autoscaling before reading the transform
    pts = ax.transData.transform(np.column_stack([x, y])) if len(x) else np.zeros((0, 2))
    groups: list[list[int]] = []
    for i, p in enumerate(pts):
        if not np.all(np.isfinite(p)):
            continue
        for g in groups:
            if np.hypot(*(pts[g[0]] - p)) <= merge_px:
                g.append(i)
                break
        else:
            groups.append([i])
    px_per_pt = fig.dpi / 72.0
    box_ax = ax.get_window_extent(renderer)
    marks = [pts[g[0]] for g in groups]
    if avoid is not None and len(avoid):
        marks += list(ax.transData.transform(np.asarray(avoid, float).reshape(-1, 2)))
    taken = [(p[0] - 4, p[1] - 4, p[0] + 4, p[1] + 4) for p in marks if np.all(np.isfinite(p))]
    out = []
    for g in groups:
        text = sep.join(dict.fromkeys(labels[i] for i in g))  # unique, in order
        probe = ax.text(0, 0, text, fontsize=fontsize)
        bb = probe.get_window_extent(renderer)
        probe.remove()
        w, h = bb.width, bb.height
        px, py = pts[g[0]]
        best = None
        for ring in (1.0, 2.5, 4.5):  # next to the point first; further out (with a leader line) if crowded
            gap = 4 * px_per_pt * ring
            candidates = [(gap, gap * 0.6), (gap, -h - gap * 0.6), (-w - gap, gap * 0.6), (-w - gap, -h - gap * 0.6),
                          (-w / 2, gap * 1.5), (-w / 2, -h - gap * 1.5), (gap, -h / 2), (-w - gap, -h / 2)]
            for dx, dy in candidates:
                box = (px + dx - pad_px, py + dy - pad_px, px + dx + w + pad_px, py + dy + h + pad_px)
                inside = (box[0] >= box_ax.x0 and box[2] <= box_ax.x1 + 40 and box[1] >= box_ax.y0
                          and box[3] <= box_ax.y1)
                clear = not any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken)
                if inside and clear:
                    best = (dx, dy, box, ring)
                    break
            if best is not None:
                break
        if best is None:  # nothing free: right of the point, as before
            dx, dy = 4 * px_per_pt, 2.4 * px_per_pt
            best = (dx, dy, (px + dx, py + dy, px + dx + w, py + dy + h), 1.0)
        dx, dy, box, ring = best
        taken.append(box)
        leader = dict(arrowprops=dict(arrowstyle="-", lw=0.6, color="0.45", shrinkA=0, shrinkB=2)) if ring > 1 else {}
        out.append(ax.annotate(text, (x[g[0]], y[g[0]]), xytext=(dx / px_per_pt, dy / px_per_pt),
                               textcoords="offset points", fontsize=fontsize, ha="left", va="bottom", **leader, **kw))
    return out


def fit_ylim(ax, x, y, lo_cap: float = -np.inf, hi_cap: float = np.inf, pad: float = 0.3,
             include=(), fontsize: float = 8) -> tuple[float, float]:
    """y limits that show every finite point of (x, y), padded, within [lo_cap, hi_cap].

    A point beyond a cap is not silently cut off: an arrow at the edge gives
    its value.  ``include`` adds values the limits must cover (a reference
    line).  Returns the limits.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    finite = np.isfinite(y)
    vals = np.concatenate([y[finite], np.asarray(include, float)])
    if not len(vals):
        return ax.get_ylim()
    lo, hi = max(lo_cap, vals.min() - pad), min(hi_cap, vals.max() + pad)
    ax.set_ylim(lo, hi)
    for xi, yi in zip(x[finite], y[finite]):
        if yi < lo or yi > hi:
            edge, sign = (hi, -1) if yi > hi else (lo, 1)
            ax.annotate(f"{yi:.1f}", (xi, edge), xytext=(0, 14 * sign), textcoords="offset points", ha="center",
                        va="center", fontsize=fontsize, arrowprops=dict(arrowstyle="<-", lw=0.8))
    return lo, hi


def plot_layer_errorbars(ax, intervals, normalized: bool = True, color="crimson", label=None, **kw):
    """Each layer at (H[s], H[K]) with its bootstrap interval on both axes.

    ``intervals``: the frame of ``rr_utils.claims.layers.layer_entropy_intervals`` (columns
    H_s_norm, H_s_norm_lo, H_s_norm_hi, H_K_norm, ... or the same without ``_norm``).
    The bars are the normal intervals (estimate +- z * bootstrap sd), centred on the
    estimates; their percentile intervals and bias are in the frame.
    """
    sx, sy = ("H_s_norm", "H_K_norm") if normalized else ("H_s", "H_K")
    for col in (sx, sy, f"{sx}_lo", f"{sx}_hi", f"{sy}_lo", f"{sy}_hi"):
        if col not in intervals:
            raise ValueError(f"intervals: missing column {col!r} (see claims.layers.layer_entropy_intervals)")
    x, y = np.asarray(intervals[sx], float), np.asarray(intervals[sy], float)
    xerr = np.vstack([x - np.asarray(intervals[f"{sx}_lo"], float), np.asarray(intervals[f"{sx}_hi"], float) - x])
    yerr = np.vstack([y - np.asarray(intervals[f"{sy}_lo"], float), np.asarray(intervals[f"{sy}_hi"], float) - y])
    kw.setdefault("fmt", "none")
    kw.setdefault("elinewidth", 1.0)
    kw.setdefault("capsize", 2)
    return ax.errorbar(x, y, xerr=np.clip(xerr, 0, None), yerr=np.clip(yerr, 0, None), color=color, label=label, **kw)


def image_grid(images, nrow: int = 10, pad_value: float = 0.5,
               image_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Tile images into one 2-D float array with a 1-pixel gap between tiles.

    ``images``: (n, 784), (n, 28, 28) or any (n, h*w) with ``image_shape``.
    ``nrow`` images per row (as in torchvision's make_grid); rows =
    ceil(n / nrow). Gaps and unused tiles hold ``pad_value`` (grey by default,
    visible on both black and white backgrounds). Shape:
    (rows*h + rows - 1, ncol*w + ncol - 1) with ncol = min(nrow, n).

    Parameters
    ----------
    images : array_like
        (n, h*w) or (n, h, w) images.
    nrow : int
        Images per row.
    pad_value : float
        The value of gaps and unused tiles.
    image_shape : tuple of int, optional
        (h, w) of flat images; default: square.

    Returns
    -------
    numpy.ndarray
        The float32 grid.
    """
    arr = _to_numpy(images, "images").astype(np.float32)
    nrow = check_int(nrow, "nrow", 1)
    if arr.ndim == 3:
        h, w = arr.shape[1:]
    elif arr.ndim == 2:
        if image_shape is None:
            side = math.isqrt(arr.shape[1])
            if side * side != arr.shape[1]:
                raise ValueError(f"images: {arr.shape[1]} pixels is not a square; pass image_shape")
            image_shape = (side, side)
        h, w = image_shape
        if h * w != arr.shape[1]:
            raise ValueError(f"image_shape {image_shape} does not match {arr.shape[1]} pixels")
    else:
        raise ValueError(f"images: expected (n, h*w) or (n, h, w), got shape {arr.shape}")
    n = arr.shape[0]
    if n == 0:
        raise ValueError("images: nothing to tile (n = 0)")
    arr = arr.reshape(n, h, w)
    ncol = min(nrow, n)
    rows = -(-n // nrow)
    grid = np.full((rows * (h + 1) - 1, ncol * (w + 1) - 1), pad_value, dtype=np.float32)
    for k in range(n):
        r, c = divmod(k, nrow)
        grid[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = arr[k]
    return grid
