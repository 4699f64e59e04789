"""The figure gallery (rr_utils.gallery): its content, its provenance, and the page in a real browser.

The browser test serves the repository on a free localhost port, opens the
committed ``figures/index.html`` in headless Chromium (selenium), and checks
that every image loads and every link answers HTTP 200.  It skips, saying
why, where Chromium or its driver is missing (Debian: ``apt-get install
chromium chromium-driver``; ``.ci/run`` installs them).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from rr_utils import gallery  # noqa: E402
from rr_utils.plotting import save_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "figures"
EXECUTED = ROOT / "results" / "executed"


class _Page(HTMLParser):
    """Every <img src>, <a href>, <figure id> and <figcaption> text of a page."""

    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.figures, self.captions = [], [], [], []
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a["src"])
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])
        elif tag == "figure":
            self.figures.append(a.get("id"))
        elif tag == "figcaption":
            self._in_caption = True
            self.captions.append("")

    def handle_endtag(self, tag):
        if tag == "figcaption":
            self._in_caption = False

    def handle_data(self, data):
        if self._in_caption:
            self.captions[-1] += data


def _parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _resolve(index: Path, href: str) -> Path:
    return (index.parent / urllib.parse.unquote(href)).resolve()


# --------------------------------------------------------------------------- building


def _notebook(path: Path, *cells) -> None:
    import nbformat
    from nbformat.v4 import new_markdown_cell, new_notebook

    nbformat.write(new_notebook(cells=[new_markdown_cell(c) for c in cells]), path)


CLAIMS = {"claims": [
    {"id": "C1", "text": "a hierarchy", "holds": True, "holds_as_stated": True, "holds_vs_null": False,
     "evidence": {"fraction_of_seeds": 0.8, "n_seeds": 5, "rule": "holds in >= 80% of seeds"}},
    {"id": "C2", "text": "near the <bound>", "holds": False, "evidence": {}},
    {"id": "C3", "text": "two verdicts", "holds_as_stated": True, "holds_vs_null": None,
     "evidence": {"fraction_as_stated": 0.8, "fraction_vs_null": None, "n_seeds": 5}},
], "params": {}}


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    figs, res = tmp_path / "figures", tmp_path / "results"
    monkeypatch.setenv("RR_FIGURES_DIR", str(figs))
    monkeypatch.setenv("RR_RESULTS_DIR", str(res))
    for name, nb, caption, size in (("figA_line", "01_first", "a line <with> & markup", (2, 2)),
                                    ("figB_bars", "01_first", "some bars", (6, 2)),
                                    ("figC_other", "02_second", "from a notebook not executed yet", (2, 2))):
        fig, ax = plt.subplots(figsize=size)
        ax.plot([0, 1], [1, 0])
        save_figure(fig, name, params={"quick": True, "M": 10, "name": name}, caption=caption, notebook=nb,
                    quick=True)
        plt.close(fig)
    (res / "quick" / "executed").mkdir(parents=True)
    _notebook(res / "quick" / "executed" / "01_first.ipynb", "# First\n\nSee [the paper](../docs/paper.md#4-the-claims).")
    (res / "quick" / "claims.json").write_text(json.dumps(CLAIMS))
    return figs / "quick", res / "quick" / "executed"


def _files(index: Path, hrefs):
    """Targets of the links that name files (not in-page anchors)."""
    return {_resolve(index, h.split("#")[0]) for h in hrefs if not h.startswith("#")}


def test_gallery_lists_every_figure_with_provenance_and_links(sandbox):
    figs, executed = sandbox
    index = gallery.build_gallery(quick=True)
    assert index == figs / "index.html"
    page = _parse(index)
    assert page.figures == ["figA_line", "figB_bars", "figC_other"]  # grouped by notebook, then name
    assert page.captions == ["a line <with> & markup", "some bars", "from a notebook not executed yet"]
    text = index.read_text()
    assert "a line &lt;with&gt; &amp; markup" in text  # escaped, never raw markup
    for name in page.figures:
        meta = json.loads((figs / f"{name}.json").read_text())
        assert meta["params_hash"] in text and meta["commit"] in text
        assert f"{name}.png" in page.imgs and f"{name}.pdf" in page.links and f"{name}.json" in page.links
    # links are relative and point at files that exist, the rendered executed notebook included
    assert all(not urllib.parse.urlparse(h).scheme and not h.startswith("/") for h in page.links + page.imgs)
    targets = _files(index, page.links + page.imgs)
    assert all(t.is_file() for t in targets), [t for t in targets if not t.is_file()]
    assert (executed / "01_first.html").resolve() in targets and (executed / "01_first.ipynb").resolve() in targets
    assert "no executed notebook yet" in text  # 02_second was not run: said so, not a dead link
    # deterministic: rebuilding gives the same bytes, and leaves no temporary file
    before = index.read_bytes()
    gallery.build_gallery(quick=True)
    assert index.read_bytes() == before
    assert not [p for p in figs.iterdir() if ".tmp" in p.name]


def test_executed_notebook_is_rendered_with_working_links(sandbox):
    figs, executed = sandbox
    gallery.build_gallery(quick=True)
    rendered = executed / "01_first.html"
    page = _parse(rendered)
    assert "<h1" in rendered.read_text() and "First" in rendered.read_text()
    # the notebook's link to docs/paper.md, written for notebooks/, still opens the file from here
    paper = [h for h in page.links if "paper.md" in h]
    assert paper and _resolve(rendered, paper[0].split("#")[0]) == (ROOT / "docs" / "paper.md").resolve()
    assert _resolve(rendered, page.links[0]) == (figs / "index.html").resolve()  # back to the gallery
    # rendered again only when the notebook changes
    assert gallery.render_notebooks(executed) == []
    os.utime(executed / "01_first.ipynb", ns=(rendered.stat().st_mtime_ns + 10**9,) * 2)
    assert gallery.render_notebooks(executed) == [rendered]


def test_claims_summary_reads_every_verdict_key(sandbox):
    figs, _ = sandbox
    text = gallery.build_gallery(quick=True).read_text()
    head = text[text.index('<table class="claims">'):text.index("</table>")]
    for column in ("holds", "holds as stated", "holds vs null"):
        assert f"<th>{column}</th>" in head
    assert head.count('class="yes"') == 3 and head.count('class="no"') == 2  # C1: 2 true, 1 false; C2: 1 false; C3: 1 true
    assert "4/5 seeds" in head and "near the &lt;bound&gt;" in head
    assert "4/5 seeds as stated" in head and "against the references" not in head  # C3: no seed fraction vs null
    assert text.index('id="claims"') < text.index('<figure')  # the summary comes first


def test_contents_wide_figures_and_dirty_commits(sandbox):
    figs, _ = sandbox
    side = figs / "figA_line.json"
    meta = json.loads(side.read_text())
    side.write_text(json.dumps(dict(meta, commit="0123456789ab+dirty")))
    index = gallery.build_gallery(quick=True)
    text, page = index.read_text(), _parse(index)
    toc = text[text.index('<nav class="toc">'):text.index("</nav>")]
    for anchor in ("#claims", "#01_first", "#02_second", "#figA_line", "#figB_bars", "#figC_other"):
        assert f'href="{anchor}"' in toc
    assert '<figure id="figB_bars" class="wide">' in text  # 3:1: the full width of the page
    assert '<figure id="figA_line">' in text
    assert "0123456789ab+dirty</code> (with uncommitted changes)" in text
    assert all(h[1:] in page.figures + ["claims", "01_first", "02_second"] for h in page.links if h.startswith("#"))


def test_gallery_handles_odd_folders(sandbox, tmp_path):
    figs, executed = sandbox
    shutil.copy(figs / "figA_line.png", figs / "stray.png")  # a PNG with no sidecar is still listed
    page = _parse(gallery.build_gallery(quick=True))
    assert "stray" in page.figures
    (figs / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not a valid figure sidecar"):
        gallery.build_gallery(quick=True)
    (figs / "broken.json").unlink()
    (executed / "03_bad.ipynb").write_text("{not a notebook")
    with pytest.raises(ValueError, match="03_bad.ipynb: cannot render the notebook"):
        gallery.build_gallery(quick=True)
    (executed / "03_bad.ipynb").unlink()
    (executed.parent / "claims.json").write_text('{"claims": 3}')
    with pytest.raises(ValueError, match="claims.json: expected an object with a list 'claims'"):
        gallery.build_gallery(quick=True)
    (executed.parent / "claims.json").unlink()
    assert "No verdicts yet" in gallery.build_gallery(quick=True).read_text()
    with pytest.raises(FileNotFoundError, match="no such figures folder"):
        gallery.build_gallery(fig_dir=tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "No figures yet" in gallery.build_gallery(fig_dir=empty).read_text()


# --------------------------------------------------------------------------- the committed gallery


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_committed_gallery_is_current(dataset):
    """Each data set's page matches its committed figures, verdicts and rendered notebooks (``make gallery``)."""
    sub = "" if dataset == "mnist" else dataset
    figures, results = FIGURES / sub, ROOT / "results" / sub
    index = figures / "index.html"
    assert index.is_file(), f"{index.relative_to(ROOT)} is missing: run `make gallery`"
    expected = gallery.page(fig_dir=figures, executed_dir=results / "executed", claims_path=results / "claims.json",
                            dataset=dataset)
    assert index.read_text(encoding="utf-8") == expected, f"{index.relative_to(ROOT)} is stale: run `make gallery`"
    for nb in (results / "executed").glob("[0-9][0-9]_*.ipynb"):
        if not nb.stem.endswith((".partial", ".failed")):
            assert nb.with_suffix(".html").is_file(), f"{nb.name} is not rendered: run `make gallery`"


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_every_figure_file_carries_commit_and_params_hash(dataset):
    from PIL import Image

    sidecars = sorted((FIGURES / ("" if dataset == "mnist" else dataset)).glob("*.json"))
    assert sidecars, f"no {dataset} figures committed"
    for side in sidecars:
        meta = json.loads(side.read_text())
        stamp = f"commit={meta['commit']} params_hash={meta['params_hash']}"
        with Image.open(side.with_suffix(".png")) as im:
            assert im.text.get("Comment") == stamp, side.stem
            assert im.text.get("Source") == meta["notebook"]
        assert stamp.encode() in side.with_suffix(".pdf").read_bytes(), side.stem
        if dataset != "mnist":
            assert meta["params"].get("dataset") == dataset, side.stem


# --------------------------------------------------------------------------- in a real browser


def _browser_binaries():
    chrome = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if chrome is None or driver is None:
        pytest.skip("headless Chromium not found (need `chromium` and `chromedriver` on PATH): install the Debian "
                    "packages chromium and chromium-driver (.ci/run does) to run the gallery browser test")
    return chrome, driver


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """The repository, read-only over HTTP on a free localhost port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(ROOT)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_gallery_in_headless_chromium(server):
    chrome, driver_path = _browser_binaries()
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements.txt)")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium-manager look for drivers online
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--disable-extensions"):
        opts.add_argument(arg)
    browser = webdriver.Chrome(options=opts, service=Service(executable_path=driver_path))
    try:
        browser.set_page_load_timeout(60)
        browser.get(f"{server}/figures/index.html")
        WebDriverWait(browser, 60).until(lambda b: b.execute_script(
            "return document.readyState === 'complete' && "
            "Array.from(document.images).every(i => i.complete)"))
        assert browser.title.startswith("Resolution and relevance")
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.currentSrc || i.src, i.naturalWidth, i.naturalHeight])")
        links = browser.execute_script("return Array.from(document.links).map(a => a.href)")
        n_figures = browser.execute_script("return document.querySelectorAll('figure').length")
    finally:
        browser.quit()
    n_sidecars = len(list(FIGURES.glob("*.json")))
    assert n_figures == n_sidecars and len(images) == n_sidecars
    broken = [src for src, w, h in images if not (w > 0 and h > 0)]
    assert not broken, f"images that did not load: {broken}"
    assert links and all(h.startswith(server) for h in links), "the gallery links outside itself"
    dead = []
    for href in sorted({h.split("#")[0] for h in links}):
        try:
            with urllib.request.urlopen(href, timeout=30) as r:
                if r.status != 200:
                    dead.append((href, r.status))
        except urllib.error.HTTPError as exc:
            dead.append((href, exc.code))
    assert not dead, f"links that do not resolve: {dead}"
    assert any(h.endswith(".ipynb") for h in links) and any(h.endswith(".pdf") for h in links)
    assert any(h.endswith(".html") and "/results/executed/" in h for h in links)  # rendered notebooks, not raw JSON


def test_each_dataset_has_its_page_and_the_pages_link_each_other(sandbox):
    figs, _ = sandbox
    fig, ax = plt.subplots(figsize=(2, 2))
    save_figure(fig, "figF_fashion", params={"quick": True}, notebook="03_x", quick=True, dataset="fashion-mnist")
    plt.close(fig)
    res = Path(os.environ["RR_RESULTS_DIR"]) / "quick" / "fashion-mnist"
    (res / "executed").mkdir(parents=True)
    _notebook(res / "executed" / "03_x.ipynb", "# On Fashion-MNIST")
    pages = gallery.build_galleries(quick=True)
    assert pages == [figs / "fashion-mnist" / "index.html", figs / "index.html"]
    main, other = _parse(pages[1]), _parse(pages[0])
    assert "figF_fashion" not in main.figures and other.figures == ["figF_fashion"]
    assert "fashion-mnist/index.html" in main.links and "../index.html" in other.links
    for page, p in ((main, pages[1]), (other, pages[0])):
        for target in _files(p, page.links):
            assert target.exists(), target
    assert "results/quick/fashion-mnist/claims.json" in pages[0].read_text()
