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
    start("03_x", False).slow_step("Training", "about 2 minutes")
    assert capsys.readouterr().out == "Training: about 2 minutes.\n"
    start("03_x", True).slow_step("Training", "about 2 minutes")
    assert capsys.readouterr().out == ""
