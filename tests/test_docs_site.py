"""The docs site (``make docs``: Sphinx + myst-nb, docs/conf.py and docs/_ext/rr_docs.py).

The site is built once per test session, as ``make docs`` builds it (warnings
are errors), into docs/_build/html (an incremental build when one is there).
Then it is served on a free localhost port and every page is opened in
headless Chromium (selenium), with every other host unreachable: each page
and everything it loads answers 200, nothing is fetched from elsewhere, every
image is decoded, MathJax typeset every formula and no raw ``$...$`` or
``\\(...\\)`` is left in the text, and every link within the site resolves.

Where Chromium, chromedriver, selenium or Sphinx is missing, the browser test
skips saying why (Debian: ``apt-get install chromium chromium-driver``;
``.ci/run`` installs them) -- unless ``CI=true``, where it fails instead.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HTML = DOCS / "_build" / "html"
FIGURES = ROOT / "figures"
sys.path.insert(0, str(DOCS / "_ext"))
import rr_docs  # noqa: E402  (docs/_ext/rr_docs.py: the generated sources)

# the command `make docs` runs (Makefile: SPHINX)
SPHINX_ARGS = ["-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q"]


def _unavailable(reason: str):
    """Skip saying why; under CI=true the skip is a failure (tests/conftest.py: the skip policy)."""
    pytest.skip(reason)


@pytest.fixture(scope="session")
def site() -> Path:
    """docs/_build/html, built by this session exactly as `make docs` builds it."""
    if importlib.util.find_spec("sphinx") is None or importlib.util.find_spec("myst_nb") is None:
        _unavailable("Sphinx and myst-nb are not installed: `make docs` (or `make test`) installs "
                     "requirements-docs.txt")
    start = time.perf_counter()
    run = subprocess.run([sys.executable, *SPHINX_ARGS, str(DOCS), str(HTML)], cwd=ROOT, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, \
        f"the docs site does not build (`make docs`):\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    print(f"[docs] built in {time.perf_counter() - start:.1f} s")
    return HTML


class _Page(HTMLParser):
    """The <img src>, <a href>, <table> and text of an HTML page (no browser needed)."""

    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.tables, self.text = [], [], 0, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag == "table":
            self.tables += 1

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Page:
    p = _Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def _pages(html: Path) -> list[Path]:
    return sorted(p for p in html.rglob("*.html")
                  if not p.relative_to(html).parts[0].startswith(("_static", "_sources", "_downloads", "_images")))


# --------------------------------------------------------------------------- the site's content


def _datasets():
    return [d for d in rr_docs.datasets() if rr_docs.executed_notebooks(ROOT / "results", d)]


def test_site_has_every_notebook_figure_and_the_claims(site):
    index = _parse(site / "index.html")
    text = " ".join(index.text)
    assert index.tables >= 1 and "C1" in text and "holds" in text, "the first page has no claims summary table"
    for page in ("paper", "results", "performance", "running", "api"):
        assert f"{page}.html" in index.links, f"the first page does not link {page}"
    assert _datasets(), "no executed notebooks committed"
    for ds in _datasets():
        for nb in rr_docs.executed_notebooks(ROOT / "results", ds):
            page = site / "notebooks" / ds / f"{nb.stem}.html"
            assert page.is_file(), f"{nb.relative_to(ROOT)} has no page"
            assert nb.relative_to(ROOT).as_posix() in page.read_text(encoding="utf-8")  # names its source
        records = rr_docs.figure_records(ROOT / "figures", ds)
        assert records, f"no {ds} figures committed"
        page = site / "figures" / f"{ds}.html"
        parsed, html = _parse(page), page.read_text(encoding="utf-8")
        for rec in records:
            # (Sphinx numbers the second file of a name in _images/: fig03_learning_curves1.png)
            assert any(re.search(rf"/{re.escape(rec['name'])}\d*\.png$", src) for src in parsed.imgs), \
                f"{rec['name']} is not on {page.name}"
            assert str(rec["commit"]) in html and str(rec["params_hash"]) in html
            assert f"../notebooks/{ds}/{rec['notebook']}.html" in parsed.links, \
                f"{rec['name']}: no link to its notebook"
        assert not any(h.endswith(".ipynb") for h in parsed.links)  # the rendered notebooks, never raw JSON


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


def test_generated_sources(tmp_path):
    """rr_docs' pieces on their own: links rebased, markdown escaped, odd sidecars named, widgets dropped."""
    assert rr_docs.rebase_links("[§4](../docs/paper.md#4-the-claims) [x](https://a.b/c) [y](#here)",
                                ROOT / "notebooks", DOCS / "notebooks" / "mnist") == \
        "[§4](../../paper.md#4-the-claims) [x](https://a.b/c) [y](#here)"
    assert rr_docs.md_escape("a_b *c* $x$ [d] <e>") == r"a\_b \*c\* \$x\$ \[d\] \<e\>"
    (tmp_path / "fig01_x.json").write_text("{not json")
    with pytest.raises(ValueError, match="fig01_x.json: not a valid figure sidecar"):
        rr_docs.figure_records(tmp_path, "mnist")
    nb = {"cells": [{"cell_type": "markdown", "source": "# 04 · Title\n\ntext", "metadata": {}},
                    {"cell_type": "code", "source": "", "metadata": {}, "outputs": [
                        {"output_type": "display_data", "metadata": {},
                         "data": {"application/vnd.jupyter.widget-view+json": {}, "text/plain": "bar"}}]}],
          "metadata": {"widgets": {}}, "nbformat": 4, "nbformat_minor": 5}
    src = tmp_path / "04_x.ipynb"
    src.write_text(json.dumps(nb))
    out = rr_docs.prepare_notebook(src, tmp_path / "docs" / "04_x.ipynb", "fashion-mnist", ["abc123"], "f.md#04_x")
    assert out["cells"][0]["source"].startswith("# 04 · Title (Fashion-MNIST)\n")
    assert "`abc123`" in out["cells"][1]["source"] and "(f.md#04_x)" in out["cells"][1]["source"]
    assert out["cells"][2]["outputs"][0]["data"] == {"text/plain": "bar"} and "widgets" not in out["metadata"]


# --------------------------------------------------------------------------- in a real browser


def _browser():
    chrome = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if chrome is None or driver is None:
        _unavailable("headless Chromium not found (need `chromium` and `chromedriver` on PATH): install the Debian "
                     "packages chromium and chromium-driver (.ci/run does) to run the docs browser test")
    if importlib.util.find_spec("selenium") is None:
        _unavailable("selenium is not installed (requirements-test.txt)")
    return chrome, driver


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        try:
            super().copyfile(source, outputfile)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser moved on to the next page before the last file was sent


@pytest.fixture
def server(site):
    """The built site, read-only over HTTP on a free localhost port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# Waits for the page and MathJax (3: MathJax.startup.promise), then reports what a reader would see.
_INSPECT = r"""
const done = arguments[arguments.length - 1];
const report = (mathjax) => {
  const body = document.body.cloneNode(true);
  body.querySelectorAll('pre, code, script, style, mjx-container, mjx-assistive-mml, .highlight, textarea, svg')
      .forEach(e => e.remove());
  const math = Array.from(document.querySelectorAll('.math'));
  done({
    mathjax: mathjax,
    title: document.title,
    text: body.innerText,
    math: math.length,
    typeset: math.filter(e => e.querySelector('mjx-container')).length,
    images: Array.from(document.images).map(i => [i.currentSrc || i.src, i.complete, i.naturalWidth]),
    links: Array.from(document.links).map(a => a.href),
    claims: Array.from(document.querySelectorAll('table'))
        .some(t => /C1/.test(t.innerText) && /holds/.test(t.innerText)),
  });
};
const wait = (t0) => {
  if (document.readyState !== 'complete' || !Array.from(document.images).every(i => i.complete))
    return setTimeout(() => wait(t0), 50);
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise)
    return mj.startup.promise.then(() => report('typeset'), e => report('error: ' + e));
  if (document.querySelector('script[src*="mathjax"]') && Date.now() - t0 < 1000)
    return setTimeout(() => wait(t0), 50);  // a deferred script has run by 'complete': a short grace only
  report(document.querySelector('script[src*="mathjax"]') ? 'never started' : 'not on this page');
};
const start = () => document.readyState === 'complete' ? wait(Date.now()) : setTimeout(start, 50);
start();
"""

_RAW_MATH = re.compile(r"\$[^$\s][^$\n]*\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\frac|\\mathrm")


def _chrome(chrome: str, driver_path: str, profile: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium-manager look for drivers online
    opts = webdriver.ChromeOptions()
    opts.binary_location = chrome
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-extensions", "--window-size=1280,1000", f"--user-data-dir={profile}",
                # the network is off: every host but this machine is unreachable (loopback bypasses the proxy)
                "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    browser = webdriver.Chrome(options=opts, service=Service(executable_path=driver_path))
    browser.set_page_load_timeout(60)
    browser.set_script_timeout(60)
    return browser


def _requests(browser) -> list[tuple[str, object]]:
    """(url, HTTP status or the network error) of every request since the last call (Chrome's performance log)."""
    out, urls = [], {}
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        p = msg.get("params", {})
        if msg.get("method") == "Network.requestWillBeSent":
            urls[p["requestId"]] = p["request"]["url"]
        elif msg.get("method") == "Network.responseReceived":
            out.append((p["response"]["url"], p["response"]["status"]))
        elif msg.get("method") == "Network.loadingFailed" and not p.get("canceled"):
            out.append((urls.get(p["requestId"], "?"), p.get("errorText", "failed")))
    out += [(u, "sent") for u in urls.values()]
    return [(u, s) for u, s in out if u.startswith(("http:", "https:", "ws:", "wss:", "ftp:"))]


def test_every_page_in_headless_chromium(server, site):
    chrome, driver_path = _browser()
    pages = _pages(site)
    assert len(pages) >= 10, pages
    problems, outside, links, math_pages, timings = [], set(), set(), 0, []
    with tempfile.TemporaryDirectory(prefix="rr-docs-chromium-") as profile:
        browser = _chrome(chrome, driver_path, profile)
        try:
            for page in pages:
                rel = page.relative_to(site).as_posix()
                start = time.perf_counter()
                browser.get(f"{server}/{rel}")
                r = browser.execute_async_script(_INSPECT)
                timings.append((time.perf_counter() - start, rel))
                for url, status in _requests(browser):
                    if not url.startswith(server):
                        outside.add(url)
                    elif status not in (200, 304, "sent"):
                        problems.append(f"{rel}: {url} -> {status}")
                broken = [src for src, complete, width in r["images"] if not (complete and width > 0)]
                problems += [f"{rel}: image did not load: {src}" for src in broken]
                if r["mathjax"] not in ("typeset", "not on this page"):
                    problems.append(f"{rel}: MathJax {r['mathjax']}")
                if r["math"]:
                    math_pages += 1
                    if r["typeset"] != r["math"]:
                        problems.append(f"{rel}: MathJax typeset {r['typeset']} of {r['math']} formulas")
                raw = _RAW_MATH.findall(r["text"])
                if raw:
                    problems.append(f"{rel}: raw maths left in the text: {raw[:5]}")
                if rel == "index.html" and not r["claims"]:
                    problems.append("index.html: no claims summary table on the first page")
                links.update(h.split("#")[0] for h in r["links"] if h.startswith(server))
        finally:
            browser.quit()
    print("[docs] slowest pages: " + ", ".join(f"{rel} {t:.1f} s" for t, rel in sorted(timings)[-3:]))
    assert not outside, f"the site fetched from outside itself (it must work offline): {sorted(outside)[:10]}"
    assert math_pages >= 3, f"only {math_pages} pages have maths: is dollarmath on?"
    for href in sorted(links):  # every link within the site resolves (pages, downloads, full-size images)
        try:
            with urllib.request.urlopen(href, timeout=30) as resp:
                if resp.status != 200:
                    problems.append(f"link {href} -> {resp.status}")
        except urllib.error.HTTPError as exc:
            problems.append(f"link {href} -> {exc.code}")
    problems = list(dict.fromkeys(problems))
    assert not problems, "\n".join(problems[:40])
