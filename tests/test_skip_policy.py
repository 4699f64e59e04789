"""The skip policy of tests/conftest.py: under CI=true a skip for something .ci/run provides is a failure.

A scratch test folder with this conftest and three tests (a missing Chromium, no CUDA device, a missing
full Fashion-MNIST) runs in a fresh pytest, with and without CI=true. And no test returns early: a test
that cannot run says why through pytest.skip.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SCRATCH_TESTS = '''
import pytest

def test_browser():
    pytest.skip("headless Chromium not found (need `chromium` and `chromedriver` on PATH)")

def test_gpu():
    pytest.skip("no CUDA device here (runs where a GPU is lent)")

def test_fashion():
    pytest.skip("the full Fashion-MNIST is not installed here (Debian package dataset-fashion-mnist or `make data`)")
'''


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("skips")
    shutil.copy(HERE / "conftest.py", d / "conftest.py")
    (d / "test_scratch.py").write_text(SCRATCH_TESTS)
    return d


def run(folder: Path, ci: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | ({"CI": ci} if ci is not None else {})
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # plain pytest and the conftest: a second, not five
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider", str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=120)


def test_ci_turns_a_missing_chromium_into_a_failure(scratch):
    p = run(scratch, "true")
    assert p.returncode == 1, p.stdout
    assert "1 failed, 2 skipped" in p.stdout, p.stdout
    assert "FAILED" in p.stdout and "test_browser" in p.stdout and "CI=true: this test skipped" in p.stdout
    assert "1 GPU test(s) skipped" in p.stdout and "test_scratch.py::test_gpu" in p.stdout  # counted, listed


def test_without_ci_every_skip_stays_a_skip(scratch):
    p = run(scratch, None)
    assert p.returncode == 0 and "3 skipped" in p.stdout, p.stdout
    assert "1 GPU test(s) skipped" in p.stdout


def test_no_test_returns_early():
    """A bare ``return`` in a test function passes having tested nothing (tests/test_benchmarks.py did on CUDA)."""
    offenders = []
    for path in sorted(HERE.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Return) and sub.value is None and _own(node, sub):
                        offenders.append(f"{path.name}:{sub.lineno} ({node.name})")
    assert not offenders, "use pytest.skip(reason) instead of returning early: " + ", ".join(offenders)


def _own(func: ast.AST, ret: ast.Return) -> bool:
    """``ret`` belongs to ``func`` itself, not to a function nested in it."""
    for node in ast.walk(func):
        if node is not func and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            if any(sub is ret for sub in ast.walk(node)):
                return False
    return True
