"""The figure gallery: ``figures/index.html`` (``make gallery``; also the last step of ``make reproduce``).

One card per figure, grouped by notebook: the PNG (linked full size), its
caption, the notebook and parameters that made it, the parameter hash, the git
commit, and links to the PDF, the JSON sidecar and the executed notebook
(``results/executed/<notebook>.ipynb``).  Everything comes from the sidecars
``rr_utils.plotting.save_figure`` writes next to each figure; links are
relative, so the page works from a clone, a file browser or any static web
server.  The page holds no dates or build commits, so it changes only when the
figures do, and it is written atomically.

    python -m rr_utils.gallery [--quick]     # figures/index.html (or figures/quick/index.html)
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
from pathlib import Path
from urllib.parse import quote

from rr_utils.artifacts import figures_dir, results_dir
from rr_utils.io import atomic_write_text

__all__ = ["collect_figures", "render_gallery", "build_gallery", "main"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.lead { color: #555; margin-top: 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(30rem, 1fr)); gap: 1.4rem; align-items: start; }
figure { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: .8rem; background: #fff; }
figure img { width: 100%; height: auto; display: block; }
figcaption { margin: .6rem 0 .4rem; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem .8rem; margin: 0; font-size: .88rem; }
dt { color: #666; } dd { margin: 0; overflow-wrap: anywhere; }
code { font-size: .82rem; background: #f5f5f5; padding: 0 .2rem; border-radius: 3px; }
.missing { color: #a00; }
"""


def _rel(target: Path, start: Path) -> str:
    """URL of ``target`` relative to the folder ``start`` (forward slashes, percent-encoded)."""
    return quote(Path(os.path.relpath(target, start)).as_posix())


def collect_figures(fig_dir: Path) -> list[dict]:
    """One record per figure in ``fig_dir``: its sidecar (if any) plus which files exist.

    Figures come from the ``*.json`` sidecars; a PNG without a sidecar is listed
    too (with no provenance) so that nothing is silently left out.  Sorted by
    notebook, then name.  A sidecar that is not valid JSON raises ValueError
    naming the file.
    """
    fig_dir = Path(fig_dir)
    records: dict[str, dict] = {}
    for side in sorted(fig_dir.glob("*.json")):
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{side}: not a valid figure sidecar ({exc})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{side}: not a valid figure sidecar (expected a JSON object)")
        records[side.stem] = dict(meta, name=side.stem, sidecar=True)
    for png in sorted(fig_dir.glob("*.png")):
        records.setdefault(png.stem, {"name": png.stem, "sidecar": False})
    for name, rec in records.items():
        rec["files"] = {ext: (fig_dir / f"{name}.{ext}").is_file() for ext in ("png", "pdf", "json")}
    return sorted(records.values(), key=lambda r: (str(r.get("notebook") or "~"), r["name"]))


def _params_text(params) -> str:
    return json.dumps(params, sort_keys=True, separators=(", ", ": "), default=str)


def render_gallery(records: list[dict], fig_dir: Path, executed_dir: Path, title: str = "Figures") -> str:
    """The HTML page for ``records`` (see ``collect_figures``), links relative to ``fig_dir``."""
    fig_dir, executed_dir = Path(fig_dir), Path(executed_dir)
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{e(title)}</h1>",
           '<p class="lead">Song, Marsili &amp; Jo (2018), <i>Resolution and relevance trade-offs in deep '
           f"learning</i>: a replication. {len(records)} figures, grouped by the notebook that made them; "
           "each PNG and PDF carries the same commit and parameter hash in its metadata.</p>"]
    notebooks: dict[str, list[dict]] = {}
    for rec in records:
        notebooks.setdefault(str(rec.get("notebook") or ""), []).append(rec)
    if not records:
        out.append("<p>No figures yet: run <code>make reproduce</code>.</p>")
    for nb, recs in notebooks.items():
        nb_file = executed_dir / f"{nb}.ipynb"
        heading = e(nb) if nb else "figures without a notebook"
        out.append(f'<section id="{e(nb or "other")}">')
        if nb and nb_file.is_file():
            out.append(f'<h2>{heading} <small>(<a href="{e(_rel(nb_file, fig_dir))}">executed notebook</a>)'
                       "</small></h2>")
        else:
            out.append(f"<h2>{heading}</h2>")
        out.append('<div class="grid">')
        for rec in recs:
            out.extend(_card(rec, fig_dir, nb_file if nb else None))
        out.append("</div>")
        out.append("</section>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _card(rec: dict, fig_dir: Path, nb_file: Path | None) -> list[str]:
    e = html.escape
    name, files = rec["name"], rec["files"]
    caption = str(rec.get("caption") or name)
    png = _rel(fig_dir / f"{name}.png", fig_dir)
    lines = [f'<figure id="{e(name)}">']
    if files["png"]:
        lines.append(f'<a href="{e(png)}"><img src="{e(png)}" alt="{e(caption)}"></a>')
    else:
        lines.append(f'<p class="missing">{e(name)}.png is missing: rerun its notebook.</p>')
    lines.append(f"<figcaption>{e(caption)}</figcaption>")
    lines.append("<dl>")
    lines.append(f"<dt>figure</dt><dd><code>{e(name)}</code></dd>")
    if rec["sidecar"]:
        nb = str(rec.get("notebook") or "")
        if nb_file is not None and nb_file.is_file():
            nb_html = f'<a href="{e(_rel(nb_file, fig_dir))}">{e(nb)}.ipynb</a> (executed)'
        else:
            nb_html = (e(nb) or "unknown") + ' <span class="missing">(no executed notebook yet)</span>'
        lines.append(f"<dt>notebook</dt><dd>{nb_html}</dd>")
        lines.append(f"<dt>parameters</dt><dd><code>{e(_params_text(rec.get('params', {})))}</code></dd>")
        lines.append(f"<dt>params hash</dt><dd><code>{e(str(rec.get('params_hash', '')))}</code></dd>")
        lines.append(f"<dt>commit</dt><dd><code>{e(str(rec.get('commit', 'unknown')))}</code></dd>")
    else:
        lines.append('<dt>provenance</dt><dd class="missing">no sidecar (not written by save_figure)</dd>')
    links = [f'<a href="{e(_rel(fig_dir / f"{name}.{ext}", fig_dir))}">{ext.upper()}</a>'
             for ext in ("png", "pdf", "json") if files[ext]]
    files_html = " · ".join(links) or '<span class="missing">none</span>'
    lines.append(f"<dt>files</dt><dd>{files_html}</dd>")
    lines.append("</dl>")
    lines.append("</figure>")
    return lines


def build_gallery(quick: bool = False, fig_dir: str | os.PathLike | None = None,
                  executed_dir: str | os.PathLike | None = None) -> Path:
    """Write ``<figures>/index.html`` atomically and return its path.

    Defaults: ``rr_utils.artifacts.figures_dir(quick)`` and
    ``results_dir(quick) / "executed"`` (so ``RR_FIGURES_DIR`` / ``RR_RESULTS_DIR`` apply).
    """
    fig_dir = Path(fig_dir) if fig_dir is not None else figures_dir(quick)
    executed_dir = Path(executed_dir) if executed_dir is not None else results_dir(quick) / "executed"
    if not fig_dir.is_dir():
        raise FileNotFoundError(f"{fig_dir}: no such figures folder")
    title = "Resolution and relevance: figures" + (" (quick mode)" if quick else "")
    page = render_gallery(collect_figures(fig_dir), fig_dir, executed_dir, title)
    return atomic_write_text(fig_dir / "index.html", page)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rr_utils.gallery", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the quick-mode figures (figures/quick/)")
    args = ap.parse_args(argv)
    try:
        path = build_gallery(quick=args.quick)
    except (OSError, ValueError) as exc:
        print(f"gallery: error: {exc}", file=sys.stderr)
        return 2
    print(f"[gallery] {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
