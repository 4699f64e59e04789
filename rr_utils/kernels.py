"""Local Jupyter kernels over IPC (Unix domain sockets) instead of TCP.

By default jupyter_client picks five free TCP ports for a kernel by binding
to port 0, closing the sockets and handing the numbers to the kernel, which
binds them again.  Two kernels started at the same moment (two ``make
reproduce`` in one checkout, papermill runs in parallel) can be handed the
same port and one dies with ``ZMQError: Address already in use``; the kernel
also logs "Kernel is running over TCP without encryption".

``IPCKernelManager`` sets ``transport = "ipc"``: each kernel's sockets are
files named after its own connection file (``kernel-<uuid>-ipc-N``) in a
folder only the user can enter (Jupyter's runtime folder, or a private folder
under the temp dir when that path would be too long for a socket name).
Nothing is shared between kernels, so there is nothing to race for.  Pass it
to papermill / nbclient as ``kernel_manager_class`` (``rr_utils.pipeline``
does).  Local kernels only: IPC does not cross machines.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from jupyter_client import AsyncKernelManager

__all__ = ["IPCKernelManager", "ipc_connection_file"]

_MAX_SOCKET_PATH = 100  # AF_UNIX names are limited to 107 bytes on Linux (103 on macOS); keep a margin


def _private_dir() -> Path:
    from jupyter_core.paths import jupyter_runtime_dir

    d = Path(jupyter_runtime_dir())
    if len(str(d)) + len("/kernel-") + 36 + len("-ipc-99") > _MAX_SOCKET_PATH:
        d = Path(tempfile.gettempdir()) / f"rr-kernels-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return d


def ipc_connection_file(kernel_id: str) -> str:
    """A connection-file path unique to ``kernel_id``; its sockets are named after it."""
    return str(_private_dir() / f"kernel-{kernel_id}.json")


class IPCKernelManager(AsyncKernelManager):
    """An ``AsyncKernelManager`` (nbclient's default) whose kernels listen on IPC sockets."""

    def __init__(self, *args, **kwargs):
        kernel_id = kwargs.pop("kernel_id", None) or str(uuid.uuid4())
        kwargs.setdefault("connection_file", ipc_connection_file(kernel_id))
        super().__init__(*args, transport="ipc", kernel_id=kernel_id, **kwargs)
