"""When to show progress bars (tqdm.auto: a widget in Jupyter, text on a terminal).

``show_progress(None)`` is True inside a Jupyter kernel (JupyterLab, a notebook
run by hand) and when stderr is a terminal, unless ``RR_PROGRESS=0`` is set:
the workflow (``make reproduce``) sets it for its notebook jobs, so the
executed notebooks it keeps hold results, not stale progress bars.  An explicit
True or False always wins.
"""

from __future__ import annotations

import os
import sys

__all__ = ["in_jupyter_kernel", "show_progress"]


def in_jupyter_kernel() -> bool:
    """True when this code runs in a Jupyter (ipykernel) kernel."""
    if "IPython" not in sys.modules:  # never import IPython just to ask
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_progress(progress: bool | None = None) -> bool:
    """``progress`` if given, else: in a Jupyter kernel or on a terminal, and RR_PROGRESS is not 0."""
    if progress is not None:
        return bool(progress)
    if os.environ.get("RR_PROGRESS") == "0":
        return False
    try:
        tty = sys.stderr is not None and sys.stderr.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stderr
        tty = False
    return in_jupyter_kernel() or tty
