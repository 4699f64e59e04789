"""The shared header of every notebook: figure style, quick mode, and where outputs go.

Each notebook starts with ::

    run = start("04_relevance_across_layers", quick, save, dataset)   # after the parameters cell
    if run.quick:
        n_boot = 20                                         # the notebook's own quick sizes
    params = run.record(seed=seed, n_boot=n_boot)           # written with every figure and result
    splits = run.splits()                                   # the run's data set, in the run's mode
    dbn = run.network(seed)                                 # from the model cache, else trained
    ...
    run.save_figure(fig, "fig04_...", caption="...")
    run.save_results("04_relevance_across_layers", {...})

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
``rr_utils.artifacts.save_results``, and owns the run's data and networks:
``run.splits()`` (``experiments.load_splits`` of the run's data set and mode)
and ``run.network(seed, **spec)`` (the network ``networks.NetworkSpec(dataset,
seed, **spec)`` names, as the workflow's training jobs train it), so no notebook
threads ``quick``, ``dataset`` or the splits through its calls.
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
    """True if the notebook parameter says so or ``RR_QUICK=1`` is set.

    Parameters
    ----------
    quick : bool
        The notebook's parameter.

    Returns
    -------
    bool
    """
    return bool(quick) or os.environ.get("RR_QUICK") == "1"


def save_from_env(save=False) -> bool:
    """True if the notebook parameter says so or ``RR_SAVE=1`` is set (``make reproduce``).

    Parameters
    ----------
    save : bool
        The notebook's parameter.

    Returns
    -------
    bool
    """
    return bool(save) or os.environ.get("RR_SAVE") == "1"


@dataclass
class Run:
    """One execution of a notebook: its name, its mode and its recorded parameters."""

    notebook: str
    quick: bool = False
    save: bool = False
    params: dict = field(default_factory=dict)
    dataset: str = artifacts.PRIMARY_DATASET  # other data sets' outputs go to their subfolder (rr_utils.artifacts)
    _splits: dict | None = field(default=None, repr=False, compare=False)

    @property
    def scratch(self) -> bool:
        """A full run not asked to save: outputs go to the git-ignored scratch folders."""
        return not self.quick and not self.save

    def record(self, **params) -> dict:
        """Set (and return) the parameters saved with every figure and result; ``quick`` comes first.

        Parameters
        ----------
        **params
            The notebook's parameters, JSON-serialisable.

        Returns
        -------
        dict
            ``{"quick": ..., **params}``.
        """
        self.params = {"quick": self.quick, **params}
        return self.params

    def splits(self, dataset: str | None = None) -> dict:
        """The data of this run: ``experiments.load_splits`` of ``dataset`` in this run's mode.

        Parameters
        ----------
        dataset : str, optional
            The data set; default: the run's. The run's own splits are loaded once and
            kept; another data set's are loaded at each call (not kept: they may be large).

        Returns
        -------
        dict
            ``{"train": images, "test": images, "source": str, "dataset": str}``, float32 in [0, 1].
        """
        from rr_utils import experiments as X

        if dataset is not None and dataset != self.dataset:
            return X.load_splits(dataset, self.quick)
        if self._splits is None:
            self._splits = X.load_splits(self.dataset, self.quick)
        return self._splits

    def spec(self, seed: int = 0, **spec):
        """The ``networks.NetworkSpec`` of a network of this run (data set: the run's unless given).

        Parameters
        ----------
        seed : int
            The recipe's seed.
        **spec
            Other fields of ``NetworkSpec``: ``dataset``, ``hidden_sizes``, ``recipe``, ``rows``,
            ``test_rows``, ``epochs``.

        Returns
        -------
        rr_utils.networks.NetworkSpec
        """
        from rr_utils.networks import NetworkSpec

        return NetworkSpec.from_dict({"dataset": self.dataset} | spec | {"seed": seed})

    def config(self, seed: int = 0, **spec):
        """The ``DBNConfig`` of ``run.network(seed, **spec)``, without training anything.

        Parameters
        ----------
        seed : int
            The recipe's seed.
        **spec
            Other fields of ``NetworkSpec`` (see ``spec``).

        Returns
        -------
        rr_utils.models.DBNConfig
        """
        return self.spec(seed, **spec).config(self.quick)

    def network(self, seed: int = 0, **spec):
        """A trained network of this run: from the model cache, else trained here (``experiments.train``).

        The network ``networks.NetworkSpec(dataset, seed, **spec)`` names in this run's mode:
        the same arrays and config as the workflow's training job for that spec, so a
        network the workflow trained is loaded, not trained again.

        Parameters
        ----------
        seed : int
            The recipe's seed.
        **spec
            Other fields of ``NetworkSpec``: ``dataset`` (default: the run's), ``hidden_sizes``,
            ``recipe`` (e.g. "classical"), ``rows`` (train on the first rows of the split),
            ``test_rows``, ``epochs``.

        Returns
        -------
        rr_utils.models.DBN
        """
        from rr_utils import experiments as X

        s = self.spec(seed, **spec)
        own = s.dataset == self.dataset and s.rows is None and s.test_rows is None
        return X.train(s.config(self.quick), self.splits() if own else s.splits(self.quick))

    def slow_step(self, what: str, how_long: str) -> None:
        """One printed line before a step that takes minutes (full runs only; quick ones take seconds).

        Parameters
        ----------
        what : str
            The step.
        how_long : str
            Its expected duration, in words.
        """
        if not self.quick:
            print(f"{what}: {how_long}.", flush=True)

    def finding(self, template: str, **results):
        """What a figure shows, in words, with its numbers read from this run's ``results``.

        Parameters
        ----------
        template : str
            Markdown with Jinja2 expressions and ``rr_utils.text``'s filters, e.g.
            ``"relevance peaks at the {{ c1.as_stated.relevance_peak_units }}-unit layer"``.
        **results
            The values the expressions read (the run's own results, as saved).

        Returns
        -------
        IPython.display.Markdown
            Shown as the cell's output, so the executed notebook and the docs site carry the
            sentence with this run's numbers; a missing value is an error, never a blank.
        """
        from IPython.display import Markdown

        from rr_utils.text import render

        return Markdown(render(template, **results).strip())

    def figures_dir(self) -> Path:
        """Where this run's figures go (``rr_utils.artifacts.figures_dir``).

        Returns
        -------
        pathlib.Path
        """
        return artifacts.figures_dir(self.quick, self.scratch, self.dataset)

    def results_dir(self) -> Path:
        """Where this run's results go (``rr_utils.artifacts.results_dir``).

        Returns
        -------
        pathlib.Path
        """
        return artifacts.results_dir(self.quick, self.scratch, self.dataset)

    def save_figure(self, fig, name: str, caption: str = "") -> dict:
        """``rr_utils.plotting.save_figure`` with this run's notebook, parameters and folder.

        Parameters
        ----------
        fig : matplotlib.figure.Figure
            The figure.
        name : str
            Its file name, without extension.
        caption : str
            Saved with it.

        Returns
        -------
        dict
            The figure's metadata.
        """
        return save_figure(fig, name, self.params, caption=caption, notebook=self.notebook, quick=self.quick,
                           scratch=self.scratch, dataset=self.dataset)

    def save_results(self, name: str, data: dict) -> Path:
        """``rr_utils.artifacts.save_results`` into this run's results folder.

        Parameters
        ----------
        name : str
            The results' name (``<name>.json``).
        data : dict
            JSON-serialisable results.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        return artifacts.save_results(name, data, quick=self.quick, scratch=self.scratch, dataset=self.dataset)

    def load_results(self, name: str) -> dict:
        """Results of an upstream notebook on the same data set: this run's folder (scratch runs: then results/).

        Parameters
        ----------
        name : str
            The results' name.

        Returns
        -------
        dict
        """
        return artifacts.load_results(name, quick=self.quick, scratch=self.scratch, dataset=self.dataset)


def inline_figures() -> bool:
    """Use the inline backend when running in a Jupyter kernel; False (nothing done) elsewhere.

    Returns
    -------
    bool
        Whether the inline backend was turned on.
    """
    if not in_jupyter_kernel():  # plain Python or terminal IPython
        return False
    from IPython import get_ipython

    get_ipython().run_line_magic("matplotlib", "inline")
    return True


def start(notebook: str, quick=False, save=False, dataset: str = artifacts.PRIMARY_DATASET) -> Run:
    """The notebook header: inline figures, style, quick and save modes; returns the ``Run``.

    ``dataset``: the notebook's data set; outputs of a data set other than MNIST
    go to its subfolder (``figures/fashion-mnist/``, ``results/fashion-mnist/``).

    Parameters
    ----------
    notebook : str
        The notebook's bare name, e.g. "04_relevance_across_layers".
    quick : bool
        The notebook's ``quick`` parameter (or ``RR_QUICK=1``).
    save : bool
        The notebook's ``save`` parameter (or ``RR_SAVE=1``).
    dataset : str
        The notebook's data set.

    Returns
    -------
    Run
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
