"""Sphinx configuration of the docs site (``make docs``: docs/_build/html).

Sphinx + myst-nb render docs/*.md and the executed notebooks, which are never
run here (``nb_execution_mode = "off"``); the extension ``docs/_ext/rr_docs.py``
writes the generated sources first (the notebooks, the figures pages).  The
site needs no network: MathJax comes from the sphinx-mathjax-offline package
and is served from ``_static/mathjax``, the theme ships its own assets.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

import rr_docs  # noqa: E402  (docs/_ext/rr_docs.py)

project = "Resolution and relevance trade-offs in deep learning: a replication"
author = "the replication's authors"
copyright = "the replication's authors"  # noqa: A001 (Sphinx's name)
html_title = "Resolution and relevance: a replication"

extensions = [
    "myst_nb",  # Markdown (MyST) pages and notebooks
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 copied into _static/mathjax: no CDN
    "rr_docs",  # the generated sources (docs/_ext/rr_docs.py)
]

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "templates", "generated", "README.md", "**.ipynb_checkpoints", "Thumbs.db",
                    ".DS_Store"]

# MyST: $...$ and $$...$$ maths, GitHub-style anchors so links like paper.md#4-the-claims resolve
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 4
myst_dmath_double_inline = True

# myst-nb: the committed executed notebooks as they are
nb_execution_mode = "off"
nb_merge_streams = True
nb_render_markdown_format = "myst"  # markdown outputs (the notebooks' findings) with MyST: their $...$ maths renders
nb_ipywidgets_js = {}  # widget JavaScript would come from a CDN; rr_docs drops the widget outputs
nb_output_stderr = "show"

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["rr.css"]
html_favicon = "_static/favicon.svg"  # the bound's arc and its Zipf point
# the theme's sidebar without its second search field (the header has one)
html_sidebars = {"**": ["navbar-logo.html", "icon-links.html", "sbt-sidebar-nav.html"]}
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "home_page_in_toc": True,
    "navigation_with_keys": False,
    # the figures pages list their sections at the top and give the figures the sidebar's width
    "secondary_sidebar_items": {"**": ["page-toc.html"]} | {f"figures/{d}": [] for d in rr_docs.datasets()},
}
html_last_updated_fmt = None
html_show_sourcelink = False
html_scaled_image_link = True  # a figure shown at full width links to its full-size PNG
