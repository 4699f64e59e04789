"""Execute one notebook run with papermill (a job of the workflow).

    python workflow/scripts/run_notebook.py --run 04_relevance_across_layers@fashion-mnist \
        --params '{"quick": false, "dataset": "fashion-mnist"}' --out results/.done/notebooks/<run>.json

The executed notebook goes to ``<results>/[<dataset>/]executed/<notebook>.ipynb``,
written to a temporary file first and moved into place when every cell ran.
A failing cell stops the job with a message that names the notebook and the
cell; the executed notebook with the traceback is kept beside it as
``<notebook>.failed.ipynb``.  The marker ``--out`` records the run's
parameters, wall time and CPU time (of the kernel and its children).
The executed notebook names no folder of the machine that ran it: paths inside
the checkout become relative, and a kernel's temporary cell files ``<cell>``
(:func:`scrub_paths`).

Kernels listen on IPC sockets in a private folder, not on TCP ports: two
kernels started at the same moment by parallel jobs cannot be handed the
same port.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

from jupyter_client import AsyncKernelManager

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rr_utils.artifacts import results_dir  # noqa: E402

KERNEL = "rr-relevance"  # the project's kernel (make setup installs it into .venv); the notebooks name it


class IPCKernelManager(AsyncKernelManager):
    """nbclient's kernel manager with the kernel's sockets as files named after its own connection file."""

    def __init__(self, *args, **kwargs):
        kernel_id = kwargs.pop("kernel_id", None) or str(uuid.uuid4())
        d = Path(tempfile.gettempdir()) / f"rr-kernels-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        d.mkdir(mode=0o700, parents=True, exist_ok=True)  # short: AF_UNIX names are limited to ~100 bytes
        kwargs.setdefault("connection_file", str(d / f"kernel-{kernel_id}.json"))
        super().__init__(*args, transport="ipc", kernel_id=kernel_id, **kwargs)


def kernel_name() -> str:
    """The project's kernel if it runs this interpreter, else ``python3`` (this interpreter's ipykernel)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        argv = KernelSpecManager().get_kernel_spec(KERNEL).argv
        return KERNEL if argv and os.path.samefile(argv[0], sys.executable) else "python3"
    except Exception:  # no such kernel, an unreadable spec, a missing interpreter
        return "python3"


def _rel(p: Path) -> str:
    """``p`` relative to the checkout when it lies inside it, else absolute (RR_RESULTS_DIR elsewhere)."""
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


_CELL_FILE = re.compile(r"/tmp/ipykernel_\d+/\d+\.py")
# a quoted absolute path into a checkout's own folders, e.g. PosixPath('/home/x/repo/results/01_....json')
_CHECKOUT_PATH = re.compile(r"(['\"])/(?:[^'\"\s/]+/)+?((?:results|figures|notebooks|cache|data)/)")
_PAPERMILL_PATH = re.compile(r'"(input_path|output_path)": "[^"]*?/((?:notebooks|results)/[^"]*?)(?:\.partial)?\.ipynb"')


def scrub_paths(text: str, root: Path = ROOT) -> str:
    """An executed notebook's JSON ``text`` without this machine's paths.

    The checkout's absolute path becomes ``.`` (papermill's ``input_path`` and
    ``output_path``, tracebacks and warnings that name our files or the
    virtualenv's), and the temporary file a kernel compiles a cell to becomes
    ``<cell>``, so the committed notebooks are the same on every machine.
    """
    text = _PAPERMILL_PATH.sub(r'"\1": "./\2.ipynb"', text)  # also a notebook executed in another checkout
    text = text.replace(str(Path(root).resolve()) + "/", "./").replace(str(Path(root).resolve()), ".")
    text = _CHECKOUT_PATH.sub(r"\1./\2", text)
    return _CELL_FILE.sub("<cell>", text)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv=None) -> int:
    import papermill as pm

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="<notebook> or <notebook>@<dataset>")
    ap.add_argument("--params", required=True, help="parameters to inject, as JSON")
    ap.add_argument("--out", required=True, help="the job's marker (JSON)")
    a = ap.parse_args(argv)
    stem, _, dataset = a.run.partition("@")
    nb = ROOT / "notebooks" / f"{stem}.ipynb"
    if not nb.is_file():
        raise SystemExit(f"run_notebook: no notebook {nb}")
    params = json.loads(a.params)
    out = results_dir(bool(params.get("quick")), dataset=dataset or None) / "executed" / nb.name
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".partial.ipynb")
    print(f"[notebook] {a.run} -> {_rel(out)}", flush=True)
    t0, c0 = time.perf_counter(), _children_cpu()
    try:
        pm.execute_notebook(str(nb), str(tmp), parameters=params, kernel_name=kernel_name(), cwd=str(nb.parent),
                            progress_bar=False, log_output=False, kernel_manager_class=IPCKernelManager)
    except pm.PapermillExecutionError as exc:
        failed = out.with_name(out.stem + ".failed.ipynb")
        os.replace(tmp, failed)
        print(f"\nFAILED: notebook {nb.name} ({a.run}), cell {exc.cell_index} (execution count {exc.exec_count}): "
              f"{exc.ename}: {exc.evalue}\nThe executed notebook with the traceback is {_rel(failed)}",
              file=sys.stderr, flush=True)
        return 1
    tmp.write_text(scrub_paths(tmp.read_text(encoding="utf-8")), encoding="utf-8")
    os.replace(tmp, out)
    wall = time.perf_counter() - t0
    rec = {"run": a.run, "params": params, "executed": _rel(out), "wall_s": round(wall, 1),
           "cpu_s": round(_children_cpu() - c0, 1), "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0)}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(rec, indent=1) + "\n")
    print(f"[notebook] {a.run} done in {wall:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
