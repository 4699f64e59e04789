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


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    figs, res = tmp_path / "figures", tmp_path / "results"
    monkeypatch.setenv("RR_FIGURES_DIR", str(figs))
    monkeypatch.setenv("RR_RESULTS_DIR", str(res))
    for name, nb, caption in (("figA_line", "01_first", "a line <with> & markup"),
                              ("figB_bars", "01_first", "some bars"),
                              ("figC_other", "02_second", "from a notebook not executed yet")):
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [1, 0])
        save_figure(fig, name, params={"quick": True, "M": 10, "name": name}, caption=caption, notebook=nb,
                    quick=True)
        plt.close(fig)
    (res / "quick" / "executed").mkdir(parents=True)
    (res / "quick" / "executed" / "01_first.ipynb").write_text("{}")
    return figs / "quick", res / "quick" / "executed"


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
    # links are relative and point at files that exist, the executed notebook included
    assert all(not urllib.parse.urlparse(h).scheme and not h.startswith("/") for h in page.links + page.imgs)
    targets = {_resolve(index, h) for h in page.links + page.imgs}
    assert all(t.is_file() for t in targets), [t for t in targets if not t.is_file()]
    assert (executed / "01_first.ipynb").resolve() in targets
    assert "no executed notebook yet" in text  # 02_second was not run: said so, not a dead link
    # deterministic: rebuilding gives the same bytes, and leaves no temporary file
    before = index.read_bytes()
    gallery.build_gallery(quick=True)
    assert index.read_bytes() == before
    assert not [p for p in figs.iterdir() if ".tmp" in p.name]


def test_gallery_handles_odd_folders(sandbox, tmp_path):
    figs, _ = sandbox
    shutil.copy(figs / "figA_line.png", figs / "stray.png")  # a PNG with no sidecar is still listed
    page = _parse(gallery.build_gallery(quick=True))
    assert "stray" in page.figures
    (figs / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not a valid figure sidecar"):
        gallery.build_gallery(quick=True)
    with pytest.raises(FileNotFoundError, match="no such figures folder"):
        gallery.build_gallery(fig_dir=tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "No figures yet" in gallery.build_gallery(fig_dir=empty).read_text()


# --------------------------------------------------------------------------- the committed gallery


def test_committed_gallery_is_current():
    """figures/index.html matches the committed figures (``make gallery`` rebuilds it)."""
    index = FIGURES / "index.html"
    assert index.is_file(), "figures/index.html is missing: run `make gallery`"
    expected = gallery.render_gallery(gallery.collect_figures(FIGURES), FIGURES, EXECUTED,
                                      "Resolution and relevance: figures")
    assert index.read_text(encoding="utf-8") == expected, "figures/index.html is stale: run `make gallery`"


def test_every_figure_file_carries_commit_and_params_hash():
    from PIL import Image

    sidecars = sorted(FIGURES.glob("*.json"))
    assert sidecars, "no figures committed"
    for side in sidecars:
        meta = json.loads(side.read_text())
        stamp = f"commit={meta['commit']} params_hash={meta['params_hash']}"
        with Image.open(side.with_suffix(".png")) as im:
            assert im.text.get("Comment") == stamp, side.stem
            assert im.text.get("Source") == meta["notebook"]
        assert stamp.encode() in side.with_suffix(".pdf").read_bytes(), side.stem


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
    for href in sorted(set(links)):
        try:
            with urllib.request.urlopen(href, timeout=30) as r:
                if r.status != 200:
                    dead.append((href, r.status))
        except urllib.error.HTTPError as exc:
            dead.append((href, exc.code))
    assert not dead, f"links that do not resolve: {dead}"
    assert any(h.endswith(".ipynb") for h in links) and any(h.endswith(".pdf") for h in links)
