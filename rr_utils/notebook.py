"""The shared header of every notebook: figure style, quick mode, and where outputs go.

Each notebook starts with ::

    run = start("01_resolution_relevance", quick, save)   # after the parameters cell
    if run.quick:
        M = 2_000                                           # the notebook's own quick sizes
    params = run.record(seed=seed, M=M)                     # written with every figure and result
    ...
    run.save_figure(fig, "fig01_...", caption="...")
    run.save_results("01_resolution_relevance", {...})

``start`` shows figures inline when it runs in a Jupyter kernel (JupyterLab,
papermill, nbval), whatever ``MPLBACKEND`` the kernel inherited: code outside
notebooks may run headless with ``MPLBACKEND=Agg`` without hiding the
notebooks' figures.  It resolves quick mode from the notebook's ``quick``
parameter or the environment variable ``RR_QUICK=1`` (the tests set it), and
where outputs go (``rr_utils.artifacts``):

* quick runs write to ``figures/quick/`` and ``results/quick/``;
* full runs write the committed ``figures/`` and ``results/`` only when asked:
  the ``save`` parameter, or ``RR_SAVE=1``, which ``make reproduce`` sets for
  its kernels;
* any other full run (a notebook run by hand) writes to ``figures/scratch/``
  and ``results/scratch/`` (git-ignored) and reads upstream results from there
  first, then from ``results/``.

It applies the shared figure style.  ``Run`` passes the notebook name, the
parameters and the folder to ``rr_utils.plotting.save_figure`` and
``rr_utils.artifacts.save_results``, so no notebook threads ``quick=quick``
through its calls.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rr_utils import artifacts
from rr_utils.plotting import save_figure, set_style
from rr_utils.progress import in_jupyter_kernel

__all__ = ["Run", "start", "quick_from_env", "save_from_env", "inline_figures"]


def quick_from_env(quick=False) -> bool:
    """True if the notebook parameter says so or ``RR_QUICK=1`` is set."""
    return bool(quick) or os.environ.get("RR_QUICK") == "1"


def save_from_env(save=False) -> bool:
    """True if the notebook parameter says so or ``RR_SAVE=1`` is set (``make reproduce``)."""
    return bool(save) or os.environ.get("RR_SAVE") == "1"


@dataclass
class Run:
    """One execution of a notebook: its name, its mode and its recorded parameters."""

    notebook: str
    quick: bool = False
    save: bool = False
    params: dict = field(default_factory=dict)
    dataset: str = artifacts.PRIMARY_DATASET  # other data sets' outputs go to their subfolder (rr_utils.artifacts)

    @property
    def scratch(self) -> bool:
        """A full run not asked to save: outputs go to the git-ignored scratch folders."""
        return not self.quick and not self.save

    def record(self, **params) -> dict:
        """Set (and return) the parameters saved with every figure and result; ``quick`` comes first."""
        self.params = {"quick": self.quick, **params}
        return self.params

    def slow_step(self, what: str, how_long: str) -> None:
        """One printed line before a step that takes minutes (full runs only; quick ones take seconds)."""
        if not self.quick:
            print(f"{what}: {how_long}.", flush=True)

    def figures_dir(self) -> Path:
        return artifacts.figures_dir(self.quick, self.scratch, self.dataset)

    def results_dir(self) -> Path:
        return artifacts.results_dir(self.quick, self.scratch, self.dataset)

    def save_figure(self, fig, name: str, caption: str = "") -> dict:
        """``rr_utils.plotting.save_figure`` with this run's notebook, parameters and folder."""
        return save_figure(fig, name, self.params, caption=caption, notebook=self.notebook, quick=self.quick,
                           scratch=self.scratch, dataset=self.dataset)

    def save_results(self, name: str, data: dict) -> Path:
        """``rr_utils.artifacts.save_results`` into this run's results folder."""
        return artifacts.save_results(name, data, quick=self.quick, scratch=self.scratch, dataset=self.dataset)

    def load_results(self, name: str) -> dict:
        """Results of an upstream notebook on the same data set: this run's folder (scratch runs: then results/)."""
        return artifacts.load_results(name, quick=self.quick, scratch=self.scratch, dataset=self.dataset)


def inline_figures() -> bool:
    """Use the inline backend when running in a Jupyter kernel; False (nothing done) elsewhere."""
    if not in_jupyter_kernel():  # plain Python or terminal IPython
        return False
    from IPython import get_ipython

    get_ipython().run_line_magic("matplotlib", "inline")
    return True


def start(notebook: str, quick=False, save=False, dataset: str = artifacts.PRIMARY_DATASET) -> Run:
    """The notebook header: inline figures, style, quick and save modes; returns the ``Run``.

    ``dataset``: the notebook's data set; outputs of a data set other than MNIST
    go to its subfolder (``figures/fashion-mnist/``, ``results/fashion-mnist/``).
    """
    if not isinstance(notebook, str) or not notebook or "/" in notebook or notebook.endswith(".ipynb"):
        raise ValueError(f"notebook: expected a bare notebook name like '01_resolution_relevance', got {notebook!r}")
    artifacts.dataset_subfolder(dataset)  # a clear error for an unknown data set, before any work
    inline_figures()  # before set_style: activating a backend must not undo the style
    set_style()
    run = Run(notebook=notebook, quick=quick_from_env(quick), save=save_from_env(save), dataset=dataset)
    if run.scratch:
        print(f"Run by hand: figures go to {_shown(run.figures_dir())}/ and results to {_shown(run.results_dir())}/ "
              "(set save = True to write the committed figures/ and results/).", flush=True)
    return run


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(artifacts.ROOT)) if path.is_relative_to(artifacts.ROOT) else str(path)
