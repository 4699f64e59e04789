"""rr_utils.notebook: the notebooks' shared header (quick mode, parameters, where outputs go)."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from rr_utils.notebook import start  # noqa: E402


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("RR_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("RR_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.delenv("RR_QUICK", raising=False)
    return tmp_path


def test_quick_comes_from_the_parameter_or_the_environment(dirs, monkeypatch):
    assert start("01_x", False).quick is False
    assert start("01_x", True).quick is True
    monkeypatch.setenv("RR_QUICK", "1")
    assert start("01_x", False).quick is True
    monkeypatch.setenv("RR_QUICK", "0")
    assert start("01_x", False).quick is False


def test_record_puts_quick_in_the_parameters_and_saves_go_to_the_quick_folders(dirs):
    run = start("01_x", True)
    params = run.record(seed=3, M=10)
    assert params == {"quick": True, "seed": 3, "M": 10} and run.params is params
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1])
    meta = run.save_figure(fig, "fig01_line", caption="a line")
    plt.close(fig)
    assert meta["notebook"] == "01_x" and meta["params"] == params
    assert (dirs / "figures" / "quick" / "fig01_line.png").is_file()
    path = run.save_results("01_x", {"params": params, "v": 1})
    assert path == dirs / "results" / "quick" / "01_x.json"
    assert run.load_results("01_x") == json.loads(path.read_text())


@pytest.mark.parametrize("name", ["", "notebooks/01_x", "01_x.ipynb", None])
def test_bad_notebook_name_is_named(name):
    with pytest.raises(ValueError, match="notebook: expected a bare notebook name"):
        start(name)


def test_slow_step_warns_in_full_runs_only(dirs, capsys):
    start("03_x", False, save=True).slow_step("Training", "about 2 minutes")
    assert capsys.readouterr().out == "Training: about 2 minutes.\n"
    start("03_x", True).slow_step("Training", "about 2 minutes")
    assert capsys.readouterr().out == ""


def _figure():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1])
    return fig


def test_a_full_run_by_hand_writes_scratch_and_leaves_the_committed_artifacts_alone(dirs, monkeypatch, capsys):
    monkeypatch.delenv("RR_SAVE", raising=False)
    committed = dirs / "results" / "02_up.json"
    committed.parent.mkdir(parents=True)
    committed.write_text('{"v": "committed"}')
    run = start("03_x", False)
    assert run.scratch and "figures/scratch" in capsys.readouterr().out.replace(str(dirs) + "/", "")
    run.record(seed=0)
    fig = _figure()
    run.save_figure(fig, "fig03_line")
    plt.close(fig)
    run.save_results("03_x", {"v": 1})
    assert (dirs / "figures" / "scratch" / "fig03_line.png").is_file()
    assert (dirs / "results" / "scratch" / "03_x.json").is_file()
    assert not (dirs / "figures" / "fig03_line.png").exists() and not (dirs / "results" / "03_x.json").exists()
    # upstream results: the committed ones until the upstream notebook is rerun by hand
    assert run.load_results("02_up") == {"v": "committed"}
    run.save_results("02_up", {"v": "scratch"})
    assert run.load_results("02_up") == {"v": "scratch"}
    assert committed.read_text() == '{"v": "committed"}'


@pytest.mark.parametrize("how", ["parameter", "environment"])
def test_asked_to_save_a_full_run_writes_the_committed_folders(dirs, monkeypatch, how):
    monkeypatch.delenv("RR_SAVE", raising=False)
    if how == "environment":
        monkeypatch.setenv("RR_SAVE", "1")  # what make reproduce sets for its kernels
    run = start("03_x", False, save=how == "parameter")
    assert run.save and not run.scratch
    assert run.save_results("03_x", {"v": 1}) == dirs / "results" / "03_x.json"
    assert start("03_x", True, save=True).results_dir() == dirs / "results" / "quick"  # quick always wins


def test_another_dataset_saves_and_reads_its_own_subfolder(dirs):
    mnist, fashion = start("03_x", True), start("03_x", True, dataset="fashion-mnist")
    mnist.save_results("03_x", {"d": "mnist"})
    path = fashion.save_results("03_x", {"d": "fashion"})
    assert path == dirs / "results" / "quick" / "fashion-mnist" / "03_x.json"
    assert mnist.load_results("03_x") == {"d": "mnist"} and fashion.load_results("03_x") == {"d": "fashion"}
    fig, ax = plt.subplots(figsize=(2, 2))
    fashion.save_figure(fig, "fig03_x")
    plt.close(fig)
    assert (dirs / "figures" / "quick" / "fashion-mnist" / "fig03_x.png").is_file()
    assert not (dirs / "figures" / "quick" / "fig03_x.png").exists()
    with pytest.raises(ValueError, match="dataset: expected one of"):
        start("03_x", True, dataset="cifar")


# ------------------------------------------------------------------ the run's data and networks


def test_the_run_owns_its_splits_and_names_its_networks(dirs):
    from rr_utils import experiments as X

    run = start("04_x", True)
    splits = run.splits()
    assert splits is run.splits()  # loaded once
    ref = X.load_splits("mnist", True)
    assert splits["dataset"] == "mnist" and (splits["train"] == ref["train"]).all() and (splits["test"] == ref["test"]).all()
    other = run.splits("fashion-mnist")
    assert other["dataset"] == "fashion-mnist" and len(other["train"]) == X.QUICK_TRAIN
    assert run.spec(1, hidden_sizes=[50, 10]).name == "mnist_50-10_s1"
    assert run.spec(0, dataset="fashion-mnist").dataset == "fashion-mnist"
    assert run.config(0) == X.dbn_config(True, 0)
    assert run.config(2, hidden_sizes=[30], recipe="classical") == X.dbn_config(True, 2, hidden_sizes=(30,),
                                                                                recipe="classical")
    assert start("04_x", False, save=True).config(0) == X.dbn_config(False, 0)


def test_run_network_is_the_network_the_workflow_trains(dirs, monkeypatch):
    from rr_utils import experiments as X
    from rr_utils.networks import NetworkSpec

    monkeypatch.setenv("RR_CACHE_DIR", str(dirs / "cache"))
    run = start("07_x", True)
    net = run.network(0, hidden_sizes=[7], epochs=1)
    assert net.key == X.train(X.dbn_config(True, 0, hidden_sizes=(7,), epochs=1), X.load_splits("mnist", True)).key
    spec = NetworkSpec("mnist", 0, hidden_sizes=(7,), rows=300, epochs=1)
    few = run.network(0, hidden_sizes=[7], rows=300, epochs=1)
    assert few.key == X.train(spec.config(True), spec.splits(True)).key != net.key


@pytest.mark.parametrize("spec, match", [({"seed": -1}, r"seed: expected an integer >= 0"),
                                         ({"widths": [3]}, r"network spec: unknown fields \['widths'\]"),
                                         ({"dataset": "cifar"}, r"dataset: expected one of")])
def test_run_network_names_a_bad_spec(dirs, spec, match):
    run = start("07_x", True)
    seed = spec.pop("seed", 0)
    with pytest.raises(ValueError, match=match):
        run.network(seed, **spec)


def test_finding_renders_the_runs_numbers_and_refuses_missing_ones(tmp_path, monkeypatch):
    import jinja2

    from rr_utils.notebook import start

    monkeypatch.setenv("RR_RESULTS_DIR", str(tmp_path / "results"))
    run = start("04_relevance_across_layers", quick=True)
    md = run.finding("peak at the {{ c1.units }}-unit layer, C1 {{ c1.ok | held }}, {{ c1.x | f('.3f') }}",
                     c1={"units": 15, "ok": True, "x": 0.01591})
    assert md.data == "peak at the 15-unit layer, C1 held, 0.016"
    with pytest.raises(jinja2.UndefinedError):
        run.finding("{{ c1.missing }}", c1={})
    with pytest.raises(ValueError, match="expected true/false"):
        run.finding("{{ c1 | verdict }}", c1=1)


def test_a_notebook_trains_with_one_thread_as_the_workflow_does(dirs, monkeypatch):
    """The bits depend on the thread count and the cache key does not record it: every trainer uses one."""
    import json

    import torch

    from rr_utils import experiments as X

    monkeypatch.setenv("RR_CACHE_DIR", str(dirs / "cache"))
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # a notebook's kernel on a 2-core machine
    try:
        net = X.train(X.dbn_config(True, 0, hidden_sizes=(6,), epochs=1), X.load_splits("mnist", True))
        assert torch.get_num_threads() == 2  # restored after training
    finally:
        torch.set_num_threads(before)
    meta = json.loads(next((dirs / "cache").rglob("meta.json")).read_text())
    assert meta["key"] == net.key and meta["num_threads"] == 1
