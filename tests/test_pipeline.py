"""make reproduce's runner: skips unchanged notebooks, reruns changed ones, names failures."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from rr_utils import pipeline


def _nb(path, *sources, depends=()):
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if depends:
        nb.metadata["rr"] = {"depends": list(depends)}
    nbformat.write(nb, path)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    monkeypatch.setattr(pipeline, "NOTEBOOKS", nbdir)
    monkeypatch.setenv("RR_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("RR_FIGURES_DIR", str(tmp_path / "figures"))  # the run ends with the gallery
    ran = []

    def fake_run(nb, out, params):
        ran.append(nb.stem)
        nbformat.write(new_notebook(), out)  # an executed notebook the gallery can render

    monkeypatch.setattr(pipeline, "run_notebook", fake_run)
    return nbdir, tmp_path / "results", ran


def test_second_run_skips_and_changes_rerun_dependents(sandbox):
    nbdir, res, ran = sandbox
    _nb(nbdir / "01_a.ipynb", "quick = False")
    _nb(nbdir / "02_b.ipynb", "quick = False", depends=["01_a"])
    _nb(nbdir / "03_c.ipynb", "quick = False")
    pipeline.main([])
    assert ran == ["01_a", "02_b", "03_c"]
    ran.clear()
    pipeline.main([])
    assert ran == []
    _nb(nbdir / "01_a.ipynb", "quick = False", "x = 1")  # change 01: 02 depends on it, 03 does not
    pipeline.main([])
    assert ran == ["01_a", "02_b"]
    timings = json.loads((res / "timings.json").read_text())
    assert set(timings["notebooks"]) == {"01_a", "02_b", "03_c"}
    assert (res.parent / "figures" / "index.html").is_file()  # every run ends by writing the gallery


def test_unknown_only_is_rejected(sandbox):
    nbdir, _, _ = sandbox
    _nb(nbdir / "01_a.ipynb", "quick = False")
    with pytest.raises(SystemExit, match="unknown notebooks"):
        pipeline.main(["--only", "99_nope"])


def test_failure_names_notebook_and_cell(tmp_path):
    nb = tmp_path / "01_fail.ipynb"
    _nb(nb, "quick = False", "x = 1", "raise RuntimeError('boom')")
    out = tmp_path / "out" / nb.name
    out.parent.mkdir()
    with pytest.raises(SystemExit) as exc:
        pipeline.run_notebook(nb, out, {"quick": True})
    msg = str(exc.value)
    assert "01_fail.ipynb" in msg and "boom" in msg and "cell" in msg
    assert not out.exists()  # no half-written output in place
    assert (out.parent / "01_fail.failed.ipynb").exists()


def test_damaged_figure_sidecar_is_named_after_the_run(sandbox):
    nbdir, res, ran = sandbox
    _nb(nbdir / "01_a.ipynb", "quick = False")
    figs = res.parent / "figures"
    figs.mkdir()
    (figs / "fig_x.json").write_text("{truncated")
    with pytest.raises(SystemExit, match="gallery: .*fig_x.json: not a valid figure sidecar"):
        pipeline.main([])
    assert ran == ["01_a"] and "01_a" in json.loads((res / ".stamps.json").read_text())  # the notebook's work is kept


def test_stamp_covers_exactly_the_rr_utils_modules_a_notebook_imports(sandbox, tmp_path, monkeypatch):
    nbdir, _, ran = sandbox
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("X = 1\n")
    (pkg / "mid.py").write_text("def f():\n    from rr_utils import low  # lazy import counts too\n")
    (pkg / "other.py").write_text("Y = 1\n")
    monkeypatch.setattr(pipeline, "PACKAGE", pkg)
    _nb(nbdir / "01_a.ipynb", "quick = False", "%matplotlib inline\nfrom rr_utils.mid import f")
    _nb(nbdir / "02_b.ipynb", "quick = False", "import rr_utils.other")
    assert [p.name for p in pipeline.notebook_modules(nbdir / "01_a.ipynb")] == ["__init__.py", "low.py", "mid.py"]
    pipeline.main([])
    ran.clear()
    (pkg / "low.py").write_text("X = 2\n")  # imported by 01 through mid: only 01 reruns
    pipeline.main([])
    assert ran == ["01_a"]
    ran.clear()
    (pkg / "other.py").write_text("Y = 2\n")
    pipeline.main([])
    assert ran == ["02_b"]
    ran.clear()
    (pkg / "__init__.py").write_text("# changed\n")  # the package init runs on every import
    pipeline.main([])
    assert ran == ["01_a", "02_b"]


def test_unparsable_cell_is_named(sandbox):
    nbdir, _, _ = sandbox
    _nb(nbdir / "01_a.ipynb", "quick = False", "def broken(:\n    pass")
    with pytest.raises(SystemExit, match="01_a.ipynb: cannot parse"):
        pipeline.main([])


def test_stamp_covers_every_file_of_an_imported_subpackage(sandbox, tmp_path, monkeypatch):
    nbdir, _, ran = sandbox
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("X = 1\n")
    (pkg / "other.py").write_text("Y = 1\n")
    (pkg / "sub" / "__init__.py").write_text("from rr_utils.sub.inner import g\n")
    (pkg / "sub" / "inner.py").write_text("from .. import low\nfrom . import helper\ndef g():\n    pass\n")
    (pkg / "sub" / "helper.py").write_text("Z = 1\n")
    monkeypatch.setattr(pipeline, "PACKAGE", pkg)
    _nb(nbdir / "01_a.ipynb", "quick = False", "from rr_utils.sub import g")
    _nb(nbdir / "02_b.ipynb", "quick = False", "import rr_utils.other")
    files = [str(p.relative_to(pkg)) for p in pipeline.notebook_modules(nbdir / "01_a.ipynb")]
    assert files == ["__init__.py", "low.py", "sub/__init__.py", "sub/helper.py", "sub/inner.py"]
    pipeline.main([])
    ran.clear()
    (pkg / "sub" / "helper.py").write_text("Z = 2\n")  # a file of the subpackage: 01 reruns, 02 does not
    pipeline.main([])
    assert ran == ["01_a"]
    ran.clear()
    (pkg / "low.py").write_text("X = 2\n")  # reached from inside the subpackage by a relative import
    pipeline.main([])
    assert ran == ["01_a"]


def test_kernel_is_the_projects_only_when_it_runs_this_interpreter(monkeypatch, tmp_path):
    import sys

    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

    def spec(argv):
        return lambda self, name: KernelSpec(argv=argv, display_name="x", language="python")

    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", spec([sys.executable, "-m", "ipykernel_launcher"]))
    assert pipeline.kernel_name() == pipeline.KERNEL
    other = tmp_path / "python"
    other.write_text("")
    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", spec([str(other), "-m", "ipykernel_launcher"]))
    assert pipeline.kernel_name() == "python3"  # another environment's kernel of the same name: not used

    def missing(self, name):
        raise NoSuchKernel(name)

    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", missing)
    assert pipeline.kernel_name() == "python3"


# --------------------------------------------------------------------------- other data sets


def _nb_on(path, datasets, depends=()):
    _nb(path, "quick = False\ndataset = 'mnist'", depends=depends)
    nb = nbformat.read(path, as_version=4)
    nb.metadata.setdefault("rr", {})["datasets"] = list(datasets)
    nbformat.write(nb, path)


def test_other_datasets_run_after_mnist_into_their_own_folders(sandbox, monkeypatch):
    nbdir, res, _ = sandbox
    calls = []

    def fake_run(nb, out, params):
        calls.append((nb.stem, params, out))
        nbformat.write(new_notebook(), out)

    monkeypatch.setattr(pipeline, "run_notebook", fake_run)
    _nb_on(nbdir / "01_a.ipynb", ["mnist", "fashion-mnist"])
    _nb_on(nbdir / "02_b.ipynb", ["mnist"], depends=["01_a"])
    _nb_on(nbdir / "03_c.ipynb", ["mnist", "fashion-mnist"], depends=["01_a"])
    assert pipeline.main(["--list"]) == 0 and calls == []
    pipeline.main([])
    assert [(s, p) for s, p, _ in calls] == [
        ("01_a", {"quick": False}), ("02_b", {"quick": False}), ("03_c", {"quick": False}),
        ("01_a", {"quick": False, "dataset": "fashion-mnist"}), ("03_c", {"quick": False, "dataset": "fashion-mnist"})]
    assert calls[3][2] == res / "fashion-mnist" / "executed" / "01_a.ipynb"
    assert calls[0][2] == res / "executed" / "01_a.ipynb"
    timings = json.loads((res / "timings.json").read_text())["notebooks"]
    assert set(timings) == {"01_a", "02_b", "03_c", "01_a@fashion-mnist", "03_c@fashion-mnist"}
    # a run depends on the same notebooks on its own data set
    assert {j.name: j.depends() for j in pipeline.jobs()}["03_c@fashion-mnist"] == ["01_a@fashion-mnist"]
    stamps = json.loads((res / ".stamps.json").read_text())
    assert stamps["01_a"] != stamps["01_a@fashion-mnist"]
    calls.clear()
    pipeline.main(["--only", "03_c", "--force"])
    assert [(s, p.get("dataset")) for s, p, _ in calls] == [("03_c", None), ("03_c", "fashion-mnist")]
    calls.clear()
    pipeline.main(["--only", "03_c@fashion-mnist", "--force"])
    assert [(s, p.get("dataset")) for s, p, _ in calls] == [("03_c", "fashion-mnist")]
    calls.clear()
    pipeline.main(["--dataset", "mnist", "--force"])
    assert [s for s, _, _ in calls] == ["01_a", "02_b", "03_c"]


@pytest.mark.parametrize("datasets, problem", [(["fashion-mnist"], "'mnist' first"), (["mnist", "cifar"], "distinct"),
                                                (["mnist", "mnist"], "distinct"), ("mnist", "must list")])
def test_bad_datasets_metadata_is_named(sandbox, datasets, problem):
    nbdir, _, _ = sandbox
    _nb_on(nbdir / "01_a.ipynb", datasets)
    with pytest.raises(SystemExit, match=f"01_a.ipynb: metadata.rr.datasets must list.*{problem if problem != 'must list' else ''}"):
        pipeline.main([])


def test_unknown_dataset_is_rejected(sandbox):
    nbdir, _, _ = sandbox
    _nb(nbdir / "01_a.ipynb", "quick = False")
    with pytest.raises(SystemExit, match="unknown data sets"):
        pipeline.main(["--dataset", "cifar"])


def test_committed_notebooks_name_their_datasets():
    """Notebooks 03-06 and 08 run on Fashion-MNIST too in make reproduce; the others on MNIST only."""
    runs = [j.name for j in pipeline.jobs()]
    other = [r for r in runs if "@" in r]
    assert other == [f"{nb}@fashion-mnist" for nb in ("03_train_dbn", "04_relevance_across_layers",
                                                      "05_power_laws_and_zipf", "06_generation", "08_seeds_and_claims")]
    assert runs[: len(runs) - len(other)] == sorted(p.stem for p in pipeline.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def test_each_results_file_has_one_writer():
    """No two notebooks save results under the same name; a notebook run on another data set writes
    that data set's folder (rr_utils.artifacts), so every (folder, name) has one writer."""
    import re

    writers = {}
    for nb_path in sorted(pipeline.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        code = "\n".join("".join(c["source"]) for c in json.loads(nb_path.read_text())["cells"]
                         if c["cell_type"] == "code")
        nb_name = re.search(r'^NB = "([^"]+)"', code, re.M)
        for arg in re.findall(r"\.save_results\(\s*(NB|\"[^\"]+\")", code):
            name = nb_name.group(1) if arg == "NB" else arg.strip('"')
            assert name not in writers, f"results/{name}.json is written by {writers[name]} and {nb_path.name}"
            writers[name] = nb_path.name
    assert writers["claims"] == writers["layers"] == "08_seeds_and_claims.ipynb"
    assert len(writers) >= 12
