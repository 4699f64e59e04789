"""The figure gallery: ``figures/index.html`` (``make gallery``; also the last step of ``make reproduce``).

The page opens with the verdict on each claim (``results/claims.json``) and a
table of contents; then one card per figure, grouped by notebook: the PNG
(linked full size; figures much wider than tall span the page), its caption,
the notebook and parameters that made it, the parameter hash, the commit it
was made from, and links to the PDF, the JSON sidecar and the executed
notebook rendered as HTML.  Everything comes from the sidecars
``rr_utils.plotting.save_figure`` writes next to each figure and from the
results; links are relative, so the page works from a clone, a file browser
or any static web server.  The page holds no dates or build commits, so it
changes only when the figures or the verdicts do, and it is written
atomically.

``build_gallery`` first renders every executed notebook
(``results/executed/<notebook>.ipynb``) to ``<notebook>.html`` beside it with
nbconvert, when the HTML is missing or older than the notebook.

Each data set has its own page: MNIST's is ``figures/index.html``, another
data set's sits in its subfolder (``figures/fashion-mnist/index.html``, from
``results/fashion-mnist/``); the pages link to each other.

    python -m rr_utils.gallery [--quick] [--dataset fashion-mnist]
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import struct
import sys
from pathlib import Path
from urllib.parse import quote, unquote

from rr_utils.artifacts import PRIMARY_DATASET, ROOT, dataset_subfolder, figures_dir, results_dir
from rr_utils.io import atomic_write_text

__all__ = ["collect_figures", "load_claims", "render_gallery", "render_notebooks", "page", "build_gallery",
           "build_galleries", "gallery_pages", "main"]

WIDE = 1.8  # a figure this many times wider than tall gets the full width of the page

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 84rem;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
.lead { color: #555; margin-top: 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(30rem, 1fr)); gap: 1.4rem; align-items: start; }
.grid figure.wide { grid-column: 1 / -1; }
figure { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: .8rem; background: #fff; }
figure img { width: 100%; height: auto; display: block; }
figcaption { margin: .6rem 0 .4rem; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem .8rem; margin: 0; font-size: .88rem; }
dt { color: #666; } dd { margin: 0; overflow-wrap: anywhere; }
code { font-size: .82rem; background: #f5f5f5; padding: 0 .2rem; border-radius: 3px; }
.missing { color: #a00; }
table.claims { border-collapse: collapse; width: 100%; font-size: .92rem; }
table.claims th, table.claims td { border: 1px solid #ddd; padding: .35rem .5rem; text-align: left; vertical-align: top; }
table.claims th { background: #f7f7f7; }
.yes { color: #0a6b2d; font-weight: 600; } .no { color: #a00; font-weight: 600; }
nav.toc ol { columns: 2; margin: .4rem 0; } nav.toc li { break-inside: avoid; }
"""


def _rel(target: Path, start: Path) -> str:
    """URL of ``target`` relative to the folder ``start`` (forward slashes, percent-encoded)."""
    return quote(Path(os.path.relpath(target, start)).as_posix())


def _png_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a PNG header, or None for anything that is not a readable PNG."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def collect_figures(fig_dir: Path) -> list[dict]:
    """One record per figure in ``fig_dir``: its sidecar (if any), which files exist, its PNG size.

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
        rec["size"] = _png_size(fig_dir / f"{name}.png") if rec["files"]["png"] else None
    return sorted(records.values(), key=lambda r: (str(r.get("notebook") or "~"), r["name"]))


def load_claims(path: Path) -> list[dict] | None:
    """The claims of ``results/claims.json`` (a list of dicts), or None when there is no such file.

    Raises ValueError naming the file when it is not JSON or holds no list of claims.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    claims = doc.get("claims") if isinstance(doc, dict) else None
    if not isinstance(claims, list) or not all(isinstance(c, dict) for c in claims):
        raise ValueError(f"{path}: expected an object with a list 'claims' of objects")
    return claims


def _params_text(params) -> str:
    return json.dumps(params, sort_keys=True, separators=(", ", ": "), default=str)


def _verdict_keys(claims: list[dict]) -> list[str]:
    """Every true/false field of the claims ('holds', 'holds_as_stated', ...) and every decision field
    ('decision_vs_null': holds / undecided / does not hold), 'holds' first, in order of appearance."""
    keys: list[str] = []
    for c in claims:
        keys += [k for k, v in c.items() if (isinstance(v, bool) or k.startswith("decision")) and k not in keys]
    return sorted(keys, key=lambda k: (k != "holds", keys.index(k)))


def _claims_html(claims: list[dict] | None, claims_file: str) -> list[str]:
    e = html.escape
    out = ['<section id="claims">', "<h2>The claims</h2>"]
    if claims is None:
        return out + [f'<p class="missing">No verdicts yet: <code>{e(claims_file)}</code> is written by notebook '
                      "08 (<code>make reproduce</code>).</p>", "</section>"]
    keys = _verdict_keys(claims)
    head = "".join(f"<th>{e(k.replace('_', ' '))}</th>" for k in keys)
    out += [f'<p class="lead">Verdicts from <code>{e(claims_file)}</code>; the tests and tolerances are in '
            "<code>docs/paper.md</code> §4.</p>",
            '<table class="claims">', f"<tr><th>claim</th><th>statement</th>{head}<th>evidence</th></tr>"]
    for c in claims:
        cells = []
        for k in keys:
            v = c.get(k)
            if isinstance(v, str):  # a decision: "holds", "undecided", "does not hold"
                cells.append(f'<td class="{"yes" if v == "holds" else "no" if v == "does not hold" else ""}">'
                             f"{e(v)}</td>")
                continue
            cells.append("<td>–</td>" if not isinstance(v, bool) else
                         f'<td class="{"yes" if v else "no"}">{"holds" if v else "does not hold"}</td>')
        ev = c.get("evidence") if isinstance(c.get("evidence"), dict) else {}
        parts = []
        for frac, what in (("fraction_of_seeds", ""), ("fraction_as_stated", " as stated"),
                           ("fraction_vs_null", " against the references")):
            if ev.get(frac) is not None and "n_seeds" in ev:
                try:
                    parts.append(f"{round(float(ev[frac]) * int(ev['n_seeds']))}/{int(ev['n_seeds'])} seeds{what}")
                except (TypeError, ValueError):
                    pass
        if isinstance(ev.get("rule"), str):
            parts.append(ev["rule"])
        out.append(f"<tr><td>{e(str(c.get('id', '')))}</td><td>{e(str(c.get('text', '')))}</td>{''.join(cells)}"
                   f"<td>{e('; '.join(parts))}</td></tr>")
    out += ["</table>", "</section>"]
    return out


def render_gallery(records: list[dict], fig_dir: Path, executed_dir: Path, title: str = "Figures",
                   claims: list[dict] | None = None, claims_file: str = "results/claims.json",
                   other_pages: dict[str, Path] | None = None) -> str:
    """The HTML page for ``records`` (see ``collect_figures``) and ``claims``, links relative to ``fig_dir``;
    ``other_pages``: {data set: its gallery page}, linked under the title."""
    fig_dir, executed_dir = Path(fig_dir), Path(executed_dir)
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{e(title)}</h1>",
           '<p class="lead">Song, Marsili &amp; Jo (2018), <i>Resolution and relevance trade-offs in deep '
           f"learning</i>: a replication. {len(records)} figures, grouped by the notebook that made them; "
           "each PNG and PDF carries in its metadata the commit it was made from (<code>+dirty</code>: with "
           "changes not yet committed) and the parameter hash.</p>"]
    if other_pages:
        links = " · ".join(f'<a href="{e(_rel(Path(p), fig_dir))}">{e(name)}</a>' for name, p in other_pages.items())
        out.append(f'<p class="lead">The same notebooks on other data sets: {links}.</p>')
    notebooks: dict[str, list[dict]] = {}
    for rec in records:
        notebooks.setdefault(str(rec.get("notebook") or ""), []).append(rec)
    out += _claims_html(claims, claims_file)
    out += ['<nav class="toc"><h2>Contents</h2><ol>', '<li><a href="#claims">The claims</a></li>']
    for nb, recs in notebooks.items():
        names = ", ".join(f'<a href="#{e(r["name"])}">{e(r["name"])}</a>' for r in recs)
        out.append(f'<li><a href="#{e(nb or "other")}">{e(nb or "figures without a notebook")}</a>: {names}</li>')
    out.append("</ol></nav>")
    if not records:
        out.append("<p>No figures yet: run <code>make reproduce</code>.</p>")
    for nb, recs in notebooks.items():
        heading = e(nb) if nb else "figures without a notebook"
        out.append(f'<section id="{e(nb or "other")}">')
        links = _notebook_links(nb, executed_dir, fig_dir) if nb else ""
        out.append(f"<h2>{heading}{f' <small>({links})</small>' if links else ''}</h2>")
        out.append('<div class="grid">')
        for rec in recs:
            out.extend(_card(rec, fig_dir, executed_dir))
        out.append("</div>")
        out.append("</section>")
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _notebook_links(nb: str, executed_dir: Path, fig_dir: Path) -> str:
    """'executed notebook · .ipynb' links, or '' when the notebook has not been executed."""
    e = html.escape
    ipynb, rendered = executed_dir / f"{nb}.ipynb", executed_dir / f"{nb}.html"
    if not ipynb.is_file():
        return ""
    raw = f'<a href="{e(_rel(ipynb, fig_dir))}">.ipynb</a>'
    if not rendered.is_file():
        return f"{raw}, not rendered yet: <code>make gallery</code>"
    return f'<a href="{e(_rel(rendered, fig_dir))}">executed notebook</a> · {raw}'


def _card(rec: dict, fig_dir: Path, executed_dir: Path) -> list[str]:
    e = html.escape
    name, files = rec["name"], rec["files"]
    caption = str(rec.get("caption") or name)
    png = _rel(fig_dir / f"{name}.png", fig_dir)
    size = rec.get("size")
    wide = bool(size and size[1] and size[0] / size[1] >= WIDE)
    cls = ' class="wide"' if wide else ""
    lines = [f'<figure id="{e(name)}"{cls}>']
    if files["png"]:
        lines.append(f'<a href="{e(png)}"><img src="{e(png)}" alt="{e(caption)}"></a>')
    else:
        lines.append(f'<p class="missing">{e(name)}.png is missing: rerun its notebook.</p>')
    lines.append(f"<figcaption>{e(caption)}</figcaption>")
    lines.append("<dl>")
    lines.append(f"<dt>figure</dt><dd><code>{e(name)}</code></dd>")
    if rec["sidecar"]:
        nb = str(rec.get("notebook") or "")
        links = _notebook_links(nb, executed_dir, fig_dir) if nb else ""
        nb_html = f"{e(nb)} ({links})" if links else \
            (e(nb) or "unknown") + ' <span class="missing">(no executed notebook yet)</span>'
        lines.append(f"<dt>notebook</dt><dd>{nb_html}</dd>")
        lines.append(f"<dt>parameters</dt><dd><code>{e(_params_text(rec.get('params', {})))}</code></dd>")
        lines.append(f"<dt>params hash</dt><dd><code>{e(str(rec.get('params_hash', '')))}</code></dd>")
        commit = str(rec.get("commit", "unknown"))
        note = " (with uncommitted changes)" if commit.endswith("+dirty") else ""
        lines.append(f"<dt>made from commit</dt><dd><code>{e(commit)}</code>{note}</dd>")
    else:
        lines.append('<dt>provenance</dt><dd class="missing">no sidecar (not written by save_figure)</dd>')
    links = [f'<a href="{e(_rel(fig_dir / f"{name}.{ext}", fig_dir))}">{ext.upper()}</a>'
             for ext in ("png", "pdf", "json") if files[ext]]
    files_html = " · ".join(links) or '<span class="missing">none</span>'
    lines.append(f"<dt>files</dt><dd>{files_html}</dd>")
    lines.append("</dl>")
    lines.append("</figure>")
    return lines


_NB_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto; max-width: 64rem;
       padding: 0 1rem; color: #222; line-height: 1.5; }
nav.back { font-size: .9rem; margin-bottom: 1rem; color: #555; }
.cell { margin: .9rem 0; } .prompt { display: none; } a.anchor-link { display: none; }
.input_area { background: #f7f7f7; border: 1px solid #e3e3e3; border-radius: 4px; padding: .4rem .6rem;
              overflow-x: auto; }
pre { margin: 0; font-size: .84rem; white-space: pre-wrap; }
.output_area { overflow-x: auto; } .output_area pre { padding: .3rem .6rem; }
.output_area img { max-width: 100%; height: auto; }
.output_stderr pre { background: #fff5f5; }
table.dataframe { border-collapse: collapse; font-size: .84rem; }
table.dataframe th, table.dataframe td { border: 1px solid #ddd; padding: .2rem .45rem; text-align: right; }
"""


def _rebase_links(body: str, src_dir: Path, dst_dir: Path) -> str:
    """Relative links written for ``src_dir`` (the notebooks' folder), rewritten to work from ``dst_dir``."""
    def fix(m):
        url = m.group(2)
        if not url or re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", url, flags=re.I):
            return m.group(0)  # absolute, anchored or another scheme: as is
        return m.group(1) + quote(Path(os.path.relpath(src_dir / unquote(url), dst_dir)).as_posix(), safe="/#") + m.group(3)

    return re.sub(r'(href=")([^"]*)(")', fix, body)


def render_notebooks(executed_dir: str | os.PathLike, notebooks_dir: str | os.PathLike | None = None,
                     gallery: str | os.PathLike | None = None) -> list[Path]:
    """Render each executed notebook to ``<notebook>.html`` beside it (nbconvert).

    Only where the HTML is missing or older than the notebook; returns the
    pages written, each written atomically.  Partial or failed runs
    (``*.partial.ipynb``, ``*.failed.ipynb``) are skipped.  The page is
    nbconvert's basic template (code, outputs, figures inline) in a small
    stand-alone page with MathJax for the formulas; relative links written for
    ``notebooks/`` are rewritten to work from the executed folder, and the page
    links back to ``gallery`` (the gallery page) when given.
    """
    executed_dir = Path(executed_dir)
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else ROOT / "notebooks"
    todo = [p for p in sorted(executed_dir.glob("*.ipynb")) if not p.stem.endswith((".partial", ".failed"))
            and not ((h := p.with_suffix(".html")).is_file() and h.stat().st_mtime_ns >= p.stat().st_mtime_ns)]
    if not todo:
        return []
    import nbformat
    from nbconvert import HTMLExporter
    from pygments.formatters import HtmlFormatter

    exporter = HTMLExporter(template_name="basic")
    css = _NB_CSS + HtmlFormatter(style="default").get_style_defs(".highlight")
    e = html.escape
    written = []
    for nb_path in todo:
        try:
            nb = nbformat.read(nb_path, as_version=4)
            body, _ = exporter.from_notebook_node(nb)
        except Exception as exc:  # nbformat and nbconvert raise many types for a damaged file
            raise ValueError(f"{nb_path}: cannot render the notebook ({type(exc).__name__}: {exc})") from None
        back = (f'<nav class="back"><a href="{e(_rel(Path(gallery), executed_dir))}">← figure gallery</a> · '
                f"executed notebook <code>{e(nb_path.name)}</code></nav>") if gallery is not None else ""
        text = "\n".join([
            "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{e(nb_path.stem)} (executed)</title>", f"<style>{css}</style>",
            "<script>window.MathJax = {tex2jax: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], "
            "processEscapes: true}};</script>",
            f'<script src="{e(_MATHJAX)}"></script>', "</head>", "<body>", back,
            _rebase_links(body, notebooks_dir, executed_dir), "</body>", "</html>", ""])
        written.append(atomic_write_text(nb_path.with_suffix(".html"), text))
    return written


_MATHJAX = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/MathJax.js?config=TeX-AMS_CHTML-full,Safe"


def gallery_pages(quick: bool = False, also=()) -> dict[str, Path]:
    """{data set: its gallery page} for every data set whose page exists or is in ``also`` (about to be
    written), in the order of ``rr_utils.data.DATASETS``."""
    from rr_utils.data import DATASETS

    base = figures_dir(quick)
    pages = {d: base / dataset_subfolder(d) / "index.html" for d in DATASETS}
    return {d: p for d, p in pages.items() if d in also or p.is_file()}


def page(quick: bool = False, fig_dir: str | os.PathLike | None = None,
         executed_dir: str | os.PathLike | None = None, claims_path: str | os.PathLike | None = None,
         dataset: str | None = None, also=()) -> str:
    """The gallery page ``build_gallery`` writes for these folders (nothing is written); it links to the
    other data sets' pages that exist or are in ``also``."""
    fig_dir = Path(fig_dir) if fig_dir is not None else figures_dir(quick, dataset=dataset)
    res = results_dir(quick, dataset=dataset)
    executed_dir = Path(executed_dir) if executed_dir is not None else res / "executed"
    claims_path = Path(claims_path) if claims_path is not None else res / "claims.json"
    if not fig_dir.is_dir():
        raise FileNotFoundError(f"{fig_dir}: no such figures folder")
    name = dataset or PRIMARY_DATASET
    title = ("Resolution and relevance: figures" + ("" if name == PRIMARY_DATASET else f" ({name})")
             + (" (quick mode)" if quick else ""))
    sub = dataset_subfolder(dataset)
    claims_file = "/".join(["results"] + (["quick"] if quick else []) + ([sub] if sub else []) + ["claims.json"])
    others = {d: p for d, p in gallery_pages(quick, also).items() if d != name}
    return render_gallery(collect_figures(fig_dir), fig_dir, executed_dir, title, load_claims(claims_path), claims_file,
                          other_pages=others)


def build_gallery(quick: bool = False, fig_dir: str | os.PathLike | None = None,
                  executed_dir: str | os.PathLike | None = None,
                  claims_path: str | os.PathLike | None = None, dataset: str | None = None, also=()) -> Path:
    """Render the executed notebooks, then write ``<figures>/index.html`` atomically; return its path.

    Defaults: ``rr_utils.artifacts.figures_dir(quick, dataset=dataset)``,
    ``results_dir(quick, dataset=dataset) / "executed"`` and ``... / "claims.json"``
    (so ``RR_FIGURES_DIR`` / ``RR_RESULTS_DIR`` apply).
    """
    fig_dir = Path(fig_dir) if fig_dir is not None else figures_dir(quick, dataset=dataset)
    executed_dir = Path(executed_dir) if executed_dir is not None else results_dir(quick, dataset=dataset) / "executed"
    if executed_dir.is_dir():
        render_notebooks(executed_dir, gallery=fig_dir / "index.html")
    text = page(quick, fig_dir, executed_dir, claims_path, dataset=dataset, also=also)
    return atomic_write_text(fig_dir / "index.html", text)


def build_galleries(quick: bool = False, datasets=None) -> list[Path]:
    """``build_gallery`` once for each data set in ``datasets`` (default: MNIST and every data set with
    figures), the other data sets first; every page links to all of them.  Returns the pages."""
    from rr_utils.data import DATASETS

    if datasets is None:
        base = figures_dir(quick)
        datasets = [PRIMARY_DATASET] + [d for d in DATASETS if d != PRIMARY_DATASET
                                        and any((base / dataset_subfolder(d)).glob("*.json"))]
    order = [d for d in datasets if d != PRIMARY_DATASET] + [d for d in datasets if d == PRIMARY_DATASET]
    return [build_gallery(quick, dataset=d, also=order) for d in order]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rr_utils.gallery", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="the quick-mode figures (figures/quick/)")
    ap.add_argument("--dataset", nargs="*", default=None,
                    help="data sets whose pages to build (default: MNIST and every data set with figures)")
    args = ap.parse_args(argv)
    try:
        paths = build_galleries(quick=args.quick, datasets=args.dataset)
    except (OSError, ValueError) as exc:
        print(f"gallery: error: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"[gallery] {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
