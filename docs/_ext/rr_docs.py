"""Sphinx extension: the generated parts of the docs site, written before Sphinx reads the sources.

At ``builder-inited`` (before Sphinx looks for source files) it writes, from
the committed artifacts and nothing else:

* ``docs/notebooks/<data set>/<notebook>.ipynb``: each executed notebook
  (``results/[<data set>/]executed/``), rendered by myst-nb without being run.
  Relative links written for ``notebooks/`` are rebased to the new folder,
  ipywidgets outputs fall back to their text (their JavaScript would come
  from a CDN), and a note under the title names the executed file, the data
  set, the commit(s) its figures were made from and its figures page.
* ``docs/notebooks/<data set>.md``: the list of that data set's notebooks.
* ``docs/figures/<data set>.md`` (with the PNG and PDF files copied beside it):
  one full-width figure per JSON sidecar of ``figures/[<data set>/]``, its
  caption, the notebook that made it (linked to its rendered page), the
  commit, the parameters and the PDF.

``docs/notebooks/`` and ``docs/figures/`` are git-ignored and rewritten on
every build (a file whose content did not change is left alone, so Sphinx's
incremental build skips it; a file no longer generated is removed).  Nothing
imports ``rr_utils``: the provenance comes from the sidecars.

At ``doctree-read`` it also turns a link from a page to a Markdown file or
notebook outside ``docs/`` (``../data/README.md``), which MyST would take for
a missing page, into a download of that file.

Config value ``rr_quick`` (``sphinx -D rr_quick=1``; the workflow's rule docs
in quick mode) builds from ``results/quick/`` and ``figures/quick/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import quote, unquote

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GENERATED_DIRS = ("notebooks", "figures")  # under docs/, owned by this extension
PRIMARY = "mnist"
NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
_WIDGET = "application/vnd.jupyter.widget-view+json"


def _truthy(value) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def display_name(dataset: str) -> str:
    return NAMES.get(dataset, dataset)


def write_if_changed(path: Path, text: str | bytes) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; True when written."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def md_escape(text: str) -> str:
    """``text`` as literal MyST inline text (backslash before every character markdown could read)."""
    return re.sub(r"([\\`*_\[\]{}<>$|#~^])", r"\\\1", str(text)).replace("\n", " ")


# --------------------------------------------------------------------------- the artifacts


def datasets(results: Path | None = None, figures: Path | None = None) -> list[str]:
    """MNIST first, then Fashion-MNIST and each data set with a subfolder of executed notebooks or figures
    (default folders: results/ and figures/)."""
    results = ROOT / "results" if results is None else results
    figures = ROOT / "figures" if figures is None else figures
    found = set(NAMES)
    for base, marker in ((results, "executed"), (figures, None)):
        if base.is_dir():
            for sub in base.iterdir():
                if sub.is_dir() and sub.name not in ("quick", "scratch", "executed") and not sub.name.startswith(".") \
                        and ((sub / marker).is_dir() if marker else any(sub.glob("*.json"))):
                    found.add(sub.name)
    return [PRIMARY] + sorted(found - {PRIMARY})


def _sub(base: Path, dataset: str) -> Path:
    return base if dataset == PRIMARY else base / dataset


def executed_notebooks(results: Path, dataset: str) -> list[Path]:
    folder = _sub(results, dataset) / "executed"
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if not p.stem.endswith((".partial", ".failed")))


def figure_records(figures: Path, dataset: str) -> list[dict]:
    """One dict per JSON sidecar of the data set's figures folder (sorted by notebook, then name).

    A sidecar that is not a JSON object raises ValueError naming the file.
    """
    out = []
    for side in sorted(_sub(figures, dataset).glob("*.json")):
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{side}: not a valid figure sidecar ({exc})") from None
        if not isinstance(meta, dict):
            raise ValueError(f"{side}: not a valid figure sidecar (expected a JSON object)")
        out.append(dict(meta, name=side.stem, png=side.with_suffix(".png"), pdf=side.with_suffix(".pdf"),
                        sidecar=side))
    return sorted(out, key=lambda r: (str(r.get("notebook") or "~"), r["name"]))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


# --------------------------------------------------------------------------- notebooks


_LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def rebase_links(markdown: str, src_dir: Path, dst_dir: Path) -> str:
    """Relative markdown links written for ``src_dir``, rewritten to work from ``dst_dir``."""
    def fix(m):
        url = m.group(2)
        if re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", url, flags=re.I):
            return m.group(0)
        path, _, anchor = url.partition("#")
        new = Path(os.path.relpath((src_dir / unquote(path)).resolve(), dst_dir)).as_posix()
        return m.group(1) + quote(new, safe="/") + (f"#{anchor}" if anchor else "") + m.group(3)

    return _LINK.sub(fix, markdown)


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def prepare_notebook(src: Path, dst: Path, dataset: str, commits: list[str], figures_doc: str | None) -> dict:
    """The notebook at ``src`` as the docs render it at ``dst`` (see the module's docstring)."""
    nb = json.loads(src.read_text(encoding="utf-8"))
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            cell["source"] = rebase_links(_source(cell), ROOT / "notebooks", dst.parent)
        for out in cell.get("outputs", []):
            data = out.get("data")
            if isinstance(data, dict) and _WIDGET in data:
                del data[_WIDGET]
                data.setdefault("text/plain", "")
    note = [f"*Executed on {display_name(dataset)}: `{_rel(src)}`"]
    if commits:
        note.append(f"; its figures were made from commit {', '.join(f'`{c}`' for c in commits)}")
    if figures_doc:
        note.append(f"; [its figures, with their provenance]({figures_doc})")
    note.append(".*")
    cells = nb.setdefault("cells", [])
    at = 1 if cells and cells[0].get("cell_type") == "markdown" and _source(cells[0]).lstrip().startswith("# ") else 0
    if at and dataset != PRIMARY:  # two pages of the same title otherwise
        first = _source(cells[0]).lstrip()
        title, _, rest = first.partition("\n")
        cells[0]["source"] = f"{title} ({display_name(dataset)})\n{rest}"
    cells.insert(at, {"cell_type": "markdown", "id": "rr-docs-provenance", "metadata": {},
                      "source": "".join(note)})
    return nb


def _title(nb_path: Path) -> str:
    for cell in json.loads(nb_path.read_text(encoding="utf-8")).get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in _source(cell).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return nb_path.stem


# --------------------------------------------------------------------------- pages


def notebooks_page(dataset: str, notebooks: list[Path], quick: bool) -> str:
    name = display_name(dataset)
    lines = [f"# Notebooks on {name}", ""]
    if not notebooks:
        where = "results/quick/" if quick else "results/"
        return "\n".join(lines + [f"No executed notebooks on {name} yet (`{where}`): run `make reproduce`.", ""])
    lines += [f"The notebooks as the workflow (`make reproduce`) executed them on {name}, with every output; "
              f"[their figures](../figures/{dataset}.md) are also collected on one page.", "",
              "```{toctree}", ":maxdepth: 1", ""]
    lines += [f"{dataset}/{nb.stem}" for nb in notebooks]
    return "\n".join(lines + ["```", ""])


def figures_page(dataset: str, records: list[dict], notebooks: dict[str, str], quick: bool) -> str:
    """The figures page of ``dataset``; ``notebooks``: {executed notebook: its title}."""
    name = display_name(dataset)
    lines = [f"# Figures on {name}", ""]
    if not records:
        return "\n".join(lines + [f"No figures on {name} yet: run `make reproduce`.", ""])
    groups = list(dict.fromkeys(str(r.get("notebook") or "") for r in records))
    lines += [f"Every figure the notebooks saved on {name} ({len(records)}), at full width and grouped by notebook, "
              "each with the notebook and the commit that made it (`+dirty`: with changes not yet committed) and "
              "its parameters; the PNG and PDF files carry the commit and the parameters' hash in their metadata "
              "too.", "",
              "Notebooks: " + " · ".join(f"[{md_escape(nb or 'other')}](#{_slug(nb or 'Figures without a notebook')})"
                                         for nb in groups), ""]
    group = None
    for rec in records:
        nb = str(rec.get("notebook") or "")
        if nb != group:
            group = nb
            lines += [f"## {md_escape(nb) if nb else 'Figures without a notebook'}", ""]
            if nb in notebooks:
                lines += [f"Made by the notebook [{md_escape(notebooks[nb])}](../notebooks/{dataset}/{nb}.ipynb).",
                          ""]
        caption = md_escape(rec.get("caption") or rec["name"])
        img = f"{dataset}/{rec['name']}.png"
        alt = " ".join(str(rec.get("caption") or rec["name"]).split())[:200]
        lines += [f"::::{{figure}} {img}", f":name: {dataset}-{rec['name']}", f":alt: {alt}", ":width: 100%",
                  ":figclass: rr-figure", "", caption, "", "::::", ""]
        commit = str(rec.get("commit") or "unknown")
        dirty = " (with changes not yet committed)" if commit.endswith("+dirty") else ""
        nb_cell = (f"[{md_escape(notebooks[nb])}](../notebooks/{dataset}/{nb}.ipynb) (`{nb}`)" if nb in notebooks
                   else f"{md_escape(nb) or 'unknown'} (not executed yet)")
        params = json.dumps(rec.get("params", {}), sort_keys=True, separators=(", ", ": "), default=str)
        files = [f"{{download}}`PDF <{dataset}/{rec['name']}.pdf>`"] if rec["pdf"].is_file() else []
        files.append(f"{{download}}`sidecar <{dataset}/{rec['name']}.json>`")
        lines += ["```{list-table}", ":class: rr-provenance", ":widths: 1 5", "",
                  f"* - figure\n  - `{rec['name']}`",
                  f"* - notebook\n  - {nb_cell}",
                  f"* - commit\n  - `{commit}`{dirty}",
                  f"* - parameters\n  - `{params}` (hash `{rec.get('params_hash', '')}`)",
                  f"* - files\n  - {' · '.join(files)}",
                  "```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the build step


def generate(quick: bool = False, docs: Path = DOCS) -> dict[str, list[str]]:
    """Write the generated sources under ``docs``; returns {data set: its notebooks' names}."""
    results = ROOT / "results" / ("quick" if quick else "")
    figures = ROOT / "figures" / ("quick" if quick else "")
    results, figures = results.resolve(), figures.resolve()
    data_sets = datasets(results, figures)
    keep: set[Path] = set()
    done: dict[str, list[str]] = {}
    for ds in data_sets:
        records = figure_records(figures, ds)
        notebooks = executed_notebooks(results, ds)
        stems = {nb.stem for nb in notebooks}
        for nb in notebooks:
            commits = sorted({str(r["commit"]) for r in records if r.get("notebook") == nb.stem and r.get("commit")})
            dst = docs / "notebooks" / ds / nb.name
            figs = f"../../figures/{ds}.md#{quote(_slug(nb.stem))}" if nb.stem in {r.get("notebook") for r in records} \
                else None
            text = json.dumps(prepare_notebook(nb, dst, ds, commits, figs), indent=1, ensure_ascii=False) + "\n"
            write_if_changed(dst, text)
            keep.add(dst)
        page = docs / "notebooks" / f"{ds}.md"
        write_if_changed(page, notebooks_page(ds, notebooks, quick))
        keep.add(page)
        for rec in records:
            for src in (rec["png"], rec["pdf"], rec["sidecar"]):
                if src.is_file():
                    dst = docs / "figures" / ds / src.name
                    if not (dst.is_file() and dst.stat().st_size == src.stat().st_size
                            and dst.read_bytes() == src.read_bytes()):
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(src, dst)
                    keep.add(dst)
        page = docs / "figures" / f"{ds}.md"
        write_if_changed(page, figures_page(ds, records, {nb.stem: _title(nb) for nb in notebooks}, quick))
        keep.add(page)
        done[ds] = sorted(stems)
    for sub in GENERATED_DIRS:  # anything left from an earlier build (another mode, a removed notebook)
        for path in sorted((docs / sub).rglob("*"), reverse=True):
            if path.is_file() and path not in keep:
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()
    return done


def _slug(heading: str) -> str:
    """MyST's (GitHub's) anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _outside_links_to_downloads(app, doctree):
    """A link from a page to a Markdown file or notebook of the repository outside ``docs/`` (data/README.md):
    MyST takes it for a page that does not exist; it becomes a download of that file instead.

    Runs at ``doctree-read`` before Sphinx's download collector (priority 400 < 500), which then copies the
    file into ``_downloads/``.
    """
    from sphinx import addnodes

    srcdir = Path(app.srcdir).resolve()
    docdir = (srcdir / app.env.docname).parent
    for node in list(doctree.findall(addnodes.pending_xref)):
        if node.get("refdomain") != "doc" or node.get("reftype") != "myst":
            continue
        target = str(node.get("reftarget", ""))
        base = Path(target) if Path(target).is_absolute() else srcdir / target
        hits = [p for p in (base.with_name(base.name + s) for s in (".md", ".ipynb")) if p.is_file()]
        if not hits or hits[0].resolve().is_relative_to(srcdir):
            continue
        new = addnodes.download_reference(refdomain=None, reftype="myst", refdoc=app.env.docname,
                                          refexplicit=node.get("refexplicit", True),
                                          reftarget=os.path.relpath(hits[0].resolve(), docdir))
        new.extend(node.children)
        node.replace_self(new)


def _on_builder_inited(app):
    generate(quick=_truthy(app.config.rr_quick), docs=Path(app.srcdir))


def setup(app):
    app.add_config_value("rr_quick", False, "env", types=(bool, str, int))
    app.connect("builder-inited", _on_builder_inited)
    app.connect("doctree-read", _outside_links_to_downloads, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
