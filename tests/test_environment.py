"""The pinned environment: requirements files, environment.yml and pyproject.toml agree.

requirements.txt pins what running the notebooks needs (``make setup``,
``make reproduce``); requirements-test.txt adds what the tests and benchmarks
need (``make test``), requirements-docs.txt what the docs site needs
(``make docs``; ``make test`` installs it too).  environment.yml lists all
three, for conda.  pyproject.toml names the same packages: the library's
dependencies plus the ``run`` extra, the ``test`` extra and the ``docs`` extra.
"""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _file_pins(name):
    return _pins((ROOT / name).read_text().splitlines())


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_requirements_and_environment_agree():
    run, test = _file_pins("requirements.txt"), _file_pins("requirements-test.txt")
    docs = _file_pins("requirements-docs.txt")
    env = _file_pins("environment.yml")
    assert run and test and docs, "no pins found"
    assert not set(run) & set(test) and not (set(run) | set(test)) & set(docs), "a package pinned in two files"
    assert {**run, **test, **docs} == env


def test_test_requirements_build_on_the_run_requirements():
    lines = [ln.split("#")[0].strip() for ln in (ROOT / "requirements-test.txt").read_text().splitlines()]
    assert "-r requirements.txt" in lines
    make = (ROOT / "Makefile").read_text()
    assert "-r requirements-test.txt" in make and re.search(r"^test: \$\(TEST_STAMP\)", make, flags=re.M)
    # the docs site's tools: `make docs` installs them, and `make test` too (tests/test_docs_site.py builds the site)
    assert "-r requirements-docs.txt" in make and re.search(r"^docs: \$\(DOCS_STAMP\)", make, flags=re.M)
    assert re.search(r"^\$\(TEST_STAMP\): .*\$\(DOCS_STAMP\)", make, flags=re.M)


def test_pyproject_names_the_same_packages():
    project = _pyproject()
    deps = {_norm(d) for d in project["dependencies"]}
    extras = {k: {_norm(d) for d in v} for k, v in project["optional-dependencies"].items()}
    assert deps | extras["run"] == set(_file_pins("requirements.txt"))
    assert extras["test"] == set(_file_pins("requirements-test.txt"))
    assert extras["docs"] == set(_file_pins("requirements-docs.txt"))
    assert not deps & extras["run"]


def test_requires_python_matches_the_pins():
    spec = _pyproject()["requires-python"]
    m = re.fullmatch(r">=\s*3\.(\d+)", spec.strip())
    assert m and int(m.group(1)) >= 11, f"requires-python {spec!r}: the pinned numpy, pandas, scipy need 3.11"
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_torch_is_pinned_and_the_cpu_build_is_documented():
    assert _file_pins("requirements.txt")["torch"] == "2.13.0"
    cpu_index = "https://download.pytorch.org/whl/cpu"
    assert cpu_index in (ROOT / "docs" / "running.md").read_text() and "TORCH_INDEX" in (ROOT / "Makefile").read_text()


def test_environment_installs_the_package():
    assert "- -e ." in (ROOT / "environment.yml").read_text()


def test_every_requirement_is_pinned():
    for name in ("requirements.txt", "requirements-test.txt", "requirements-docs.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r "):
                assert "==" in line, f"{name}: unpinned requirement: {line}"


def test_notebooks_use_the_kernel_the_makefile_installs():
    import json

    kernel = re.search(r'^KERNEL = "([^"]+)"', (ROOT / "workflow" / "scripts" / "run_notebook.py").read_text(),
                       re.M).group(1)  # the workflow runs the notebooks on it
    make = (ROOT / "Makefile").read_text()
    assert f"ipykernel install --sys-prefix --name {kernel} " in make
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert json.loads(nb.read_text())["metadata"]["kernelspec"]["name"] == kernel, nb.name


def test_every_rr_utils_subpackage_is_packaged():
    """A non-editable install must ship rr_utils.models and any other subpackage, not only rr_utils/*.py."""
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    include = tool.get("packages", {}).get("find", {}).get("include", []) if isinstance(tool.get("packages"), dict) else []
    subpackages = [p.parent.relative_to(ROOT).as_posix().replace("/", ".")
                   for p in (ROOT / "rr_utils").rglob("__init__.py") if p.parent != ROOT / "rr_utils"]
    assert subpackages, "expected rr_utils to have subpackages (rr_utils.models)"
    assert "rr_utils" in include and "rr_utils.*" in include, f"pyproject packages: {tool.get('packages')}"
