"""The floating-point path of a run, and the exact mode that pins it.

A trained network's bits depend on more than its config and data: on the
code path the libraries pick for this CPU.  Intel MKL (torch's BLAS on x86)
dispatches its matrix products by instruction set (``MKL_CBWR`` selects the
branch), torch's own kernels (sigmoid, Bernoulli draws) by its *CPU
capability* (``ATEN_CPU_CAPABILITY``: default, avx2, avx512), and both change
results with the number of threads.  Two machines with different CPUs
therefore train different networks from the same seed, and so do two settings
of one machine (``python -m rr_utils.numerics`` prints this machine's path).

**Exact mode** (``make reproduce EXACT=1``, or ``RR_EXACT=1`` with
:data:`EXACT_ENV` set before Python starts) pins the path to one that every
x86-64 CPU runs the same way: MKL's ``COMPATIBLE`` branch (SSE2; MKL's
conditional numerical reproducibility), torch's ``default`` capability (no
AVX kernels), oneDNN limited to SSE4.1, one thread everywhere.  Training
already runs with deterministic algorithms.  Networks trained in exact mode
are cached under keys of their own (``models.cache.cache_key`` adds
:func:`key_component`), so the two modes never mix.  What it costs is measured
by ``make bench`` (section ``exact``), which also checks that two code paths
of this machine train different bits by default and identical bits in exact
mode.  It pins what the libraries choose; it cannot pin the libraries
themselves (a different torch, MKL or glibc build is another path).
"""

from __future__ import annotations

import os
import platform
import re
import sys
from pathlib import Path

__all__ = ["EXACT_ENV", "exact_mode", "exact_env", "key_component", "check_exact", "environment", "describe"]

# The environment of exact mode.  Read by the libraries when they load, so it must be set before Python starts
# (the Makefile does: `make reproduce EXACT=1`); `check_exact` refuses a run where it is not.
EXACT_ENV = {
    "RR_EXACT": "1",
    "MKL_CBWR": "COMPATIBLE",  # MKL's reproducible branch that every x86-64 CPU runs
    "ATEN_CPU_CAPABILITY": "default",  # torch's kernels without AVX
    "ONEDNN_MAX_CPU_ISA": "SSE41",  # oneDNN (torch's mkldnn), should any product go through it
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "PYTHONHASHSEED": "0",
}


def exact_mode() -> bool:
    """Whether this process runs in exact mode (``RR_EXACT`` is 1, true or yes).

    Returns
    -------
    bool
    """
    return os.environ.get("RR_EXACT", "").strip().lower() in ("1", "true", "yes")


def exact_env() -> str:
    """:data:`EXACT_ENV` as ``KEY=VALUE`` words, for ``env`` on a command line (the Makefile uses it).

    Returns
    -------
    str
    """
    return " ".join(f"{k}={v}" for k, v in EXACT_ENV.items())


def check_exact() -> None:
    """In exact mode, fail unless the pinned environment is in force; outside it, do nothing.

    Raises
    ------
    RuntimeError
        Naming each variable that differs from :data:`EXACT_ENV`, or torch running on more than
        one thread, with the command that sets them (they must be set before Python starts).
    """
    if not exact_mode():
        return
    wrong = [f"{k}={os.environ.get(k)!r} (needs {v!r})" for k, v in EXACT_ENV.items() if os.environ.get(k) != v]
    if "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != 1:
            wrong.append(f"torch threads {torch.get_num_threads()} (needs 1)")
    if wrong:
        raise RuntimeError("exact mode (RR_EXACT=1) needs its environment set before Python starts: "
                           + "; ".join(wrong) + ". Run `make reproduce EXACT=1`, or prefix the command with "
                           f"`env {exact_env()}`")


def key_component() -> dict:
    """What a cache key adds for the numerical path: nothing by default, the pinned environment in exact mode.

    Returns
    -------
    dict
        ``{}`` outside exact mode (keys of networks trained by default are unchanged), else
        ``{"numerics": {...}}`` after :func:`check_exact` has passed.
    """
    if not exact_mode():
        return {}
    check_exact()
    return {"numerics": {k: v for k, v in EXACT_ENV.items() if k != "PYTHONHASHSEED"}}


# the variables that select code paths and threads, reported by describe()
ENV = ("RR_EXACT", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
       "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def environment(exact: bool = False, base=None) -> dict:
    """The environment of a fresh process on one thread: ``base`` without the variables that choose a code path.

    Parameters
    ----------
    exact : bool
        Add :data:`EXACT_ENV` (the process runs in exact mode).
    base : Mapping, optional
        The environment to start from (default ``os.environ``).

    Returns
    -------
    dict
        ``base`` less every variable of ``ENV``, with one thread for torch and the BLAS libraries and
        ``PYTHONHASHSEED=0``; the libraries then take this machine's own path unless ``exact``.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in ENV}
    env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    return env | (EXACT_ENV if exact else {})


def describe() -> dict:
    """This process's machine and numerical path: CPU, BLAS and its code path, torch's CPU capability, threads.

    ``cpu_model``, ``platform``, ``cores`` (``cores_usable``: this process's affinity), ``cpu_flags``
    (the vector extensions), ``python``, ``torch`` (version, ``cpu_capability``, ``threads``,
    ``blas``/``lapack`` and the BLAS's version line from ``torch.__config__.show()``, ``mkl_branch``:
    MKL_CBWR or MKL's own choice), ``numpy`` (version; its BLAS, version and the code path OpenBLAS
    picked, via threadpoolctl), ``blas_loaded`` (every BLAS library loaded, e.g. scipy's own) and ``env``
    (the variables that pin code paths and threads; None: unset).
    """
    info: dict = {"cpu_model": platform.processor() or platform.machine(), "platform": platform.platform(),
                  "cores": os.cpu_count(), "python": platform.python_version(), "cpu_flags": None}
    if hasattr(os, "sched_getaffinity"):
        info["cores_usable"] = len(os.sched_getaffinity(0))
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
        info["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")),
                                 info["cpu_model"])
        flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
        info["cpu_flags"] = sorted(f for f in flags if re.fullmatch(r"avx\w*|fma|amx\w*|sse4_2", f))
    except OSError:
        pass
    try:
        import torch

        cfg = torch.__config__.show()
        setting = dict(re.findall(r"(BLAS_INFO|LAPACK_INFO)=([^,\s]+)", cfg))
        info["torch"] = {"version": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                         "threads": torch.get_num_threads(), "blas": setting.get("BLAS_INFO"),
                         "lapack": setting.get("LAPACK_INFO"),
                         "blas_version": next((ln.strip(" -") for ln in cfg.splitlines()
                                               if "Math Kernel Library" in ln or "OpenBLAS" in ln), None),
                         "mkl_branch": os.environ.get("MKL_CBWR") or "automatic (MKL's choice for this CPU)"}
    except ImportError:
        info["torch"] = None
    import numpy as np

    info["numpy"] = {"version": np.__version__}
    try:
        from threadpoolctl import threadpool_info

        libs = [p for p in threadpool_info() if p.get("user_api") == "blas"]  # scipy may load a BLAS of its own
        blas = next((p for p in libs if "numpy" in p.get("filepath", "")), libs[0] if libs else None)
        if blas:
            info["numpy"] |= {"blas": blas.get("internal_api"), "blas_version": blas.get("version"),
                              "code_path": blas.get("architecture"), "threads": blas.get("num_threads")}
        info["blas_loaded"] = [{"library": p.get("internal_api"), "version": p.get("version"),
                                "code_path": p.get("architecture"), "threads": p.get("num_threads"),
                                "file": Path(p.get("filepath", "")).name} for p in libs]
    except ImportError:
        pass
    info["env"] = {k: os.environ.get(k) for k in ENV}
    info["exact_mode"] = exact_mode()
    return info


def _main(argv=None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m rr_utils.numerics", description=__doc__.split("\n\n")[0])
    p.add_argument("what", nargs="?", choices=("describe", "env"), default="describe",
                   help="describe: this process's floating-point path (JSON); env: exact mode's variables")
    a = p.parse_args(argv)
    print(exact_env() if a.what == "env" else json.dumps(describe(), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
