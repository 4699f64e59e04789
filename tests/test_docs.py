"""The repository cites only documents it holds: docs/paper.md and its sections."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "docs" / "paper.md"
# Files allowed to mention the private notes while they are rewritten (none now).
NOT_YET: set = set()


def _tracked_text_files():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    for name in out.stdout.splitlines():
        if name.startswith("results/executed/") or name in NOT_YET:
            continue  # executed notebooks are regenerated from the notebooks
        path = ROOT / name
        if path.suffix in {".py", ".ipynb", ".md", ".txt", ".yml", ".toml", ".html", ""} and path.is_file():
            yield name, path


def test_no_file_mentions_the_private_notes():
    needle = "paper" + "-notes"  # spelled apart so this file does not match itself
    hits = [name for name, path in _tracked_text_files() if needle in path.read_text(encoding="utf-8", errors="replace")]
    assert not hits, f"cite docs/paper.md instead in: {hits}"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_to_paper_sections_resolve():
    anchors = {_anchor(m) for m in re.findall(r"^#+ (.+)$", PAPER.read_text(encoding="utf-8"), flags=re.M)}
    assert {"1-the-quantities", "2-the-maximal-relevance-bound", "3-the-authors-recipe", "4-the-claims"} <= anchors
    links = []
    for name, path in _tracked_text_files():
        links += [(name, a) for a in re.findall(r"paper\.md#([\w\-]+)", path.read_text(encoding="utf-8", errors="replace"))]
    assert links, "nothing links to a section of docs/paper.md"
    broken = [(n, a) for n, a in links if a not in anchors]
    assert not broken, f"links to sections docs/paper.md does not have: {broken}"
