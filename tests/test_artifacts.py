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


def test_other_datasets_write_to_their_subfolder(tmp_path, monkeypatch):
    from rr_utils import artifacts

    monkeypatch.setenv("RR_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("RR_FIGURES_DIR", str(tmp_path / "figures"))
    assert artifacts.results_dir() == tmp_path / "results"
    assert artifacts.results_dir(dataset="mnist") == tmp_path / "results"
    assert artifacts.results_dir(quick=True, dataset="fashion-mnist") == tmp_path / "results" / "quick" / "fashion-mnist"
    assert artifacts.figures_dir(scratch=True, dataset="fashion-mnist") == tmp_path / "figures" / "scratch" / "fashion-mnist"
    a = artifacts.save_results("x", {"d": "mnist"})
    b = artifacts.save_results("x", {"d": "fashion"}, dataset="fashion-mnist")
    assert a != b and artifacts.load_results("x") == {"d": "mnist"}
    assert artifacts.load_results("x", dataset="fashion-mnist") == {"d": "fashion"}
    # a scratch run reads the committed results of its own data set
    assert artifacts.load_results("x", scratch=True, dataset="fashion-mnist") == {"d": "fashion"}
    with pytest.raises(ValueError, match="dataset: expected one of"):
        artifacts.results_dir(dataset="cifar")
