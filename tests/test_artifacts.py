"""rr_utils.artifacts.git_commit: the provenance commit, '+dirty' when code differs from it."""

from __future__ import annotations

import subprocess

import pytest

from rr_utils.artifacts import git_commit


def _git(root, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True,
                   capture_output=True)


@pytest.fixture
def repo(tmp_path):
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "f.json").write_text("{}\n")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "r.json").write_text("{}\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "init")
    return tmp_path


def test_clean_tree_gives_the_bare_commit(repo):
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=repo, capture_output=True,
                          text=True).stdout.strip()
    assert git_commit(repo) == head


def test_outputs_and_untracked_files_do_not_make_it_dirty(repo):
    clean = git_commit(repo)
    (repo / "figures" / "f.json").write_text('{"rewritten": true}\n')  # a run rewrites its outputs
    (repo / "results" / "r.json").write_text('{"rewritten": true}\n')
    (repo / "notes.txt").write_text("scratch\n")
    assert git_commit(repo) == clean


def test_modified_code_appends_dirty(repo):
    clean = git_commit(repo)
    (repo / "code.py").write_text("x = 2\n")
    assert git_commit(repo) == clean + "+dirty"
    _git(repo, "add", "code.py")  # staged but not committed: still not the commit
    assert git_commit(repo) == clean + "+dirty"


def test_outside_git_is_unknown(tmp_path):
    assert git_commit(tmp_path) == "unknown"
