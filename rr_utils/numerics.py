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
import sys

__all__ = ["EXACT_ENV", "exact_mode", "exact_env", "key_component", "check_exact", "describe"]

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


def describe() -> dict:
    """This process's floating-point path: CPU, BLAS, torch's CPU capability, threads, the pinning variables.

    Returns
    -------
    dict
        ``cpu_model``, ``machine``, ``logical_cores``, ``torch``, ``blas`` (the BLAS torch was built
        with and its version line), ``cpu_capability``, ``torch_threads``, ``exact_mode`` and
        ``env`` (each variable of :data:`EXACT_ENV` as set here, None where unset).
    """
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    config = torch.__config__.show()
    blas = next((ln.split("BLAS_INFO=", 1)[1].split(",")[0] for ln in config.splitlines() if "BLAS_INFO=" in ln), None)
    version = next((ln.strip(" -") for ln in config.splitlines() if "Math Kernel Library" in ln or "OpenBLAS" in ln), None)
    return {"cpu_model": cpu, "machine": platform.machine(), "logical_cores": os.cpu_count(),
            "torch": torch.__version__, "blas": {"library": blas, "version": version},
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch_threads": torch.get_num_threads(),
            "exact_mode": exact_mode(), "env": {k: os.environ.get(k) for k in EXACT_ENV}}


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
