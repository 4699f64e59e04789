"""Test ordering for pytest-xdist (make test: ``-n auto --dist loadfile``, one file per worker).

The files that mostly wait on other processes (SLURM jobs, Snakemake runs, killed trainers) go first,
so that the CPU-bound files fill the cores while they wait, instead of leaving them idle at the end.
"""

SLOW_FIRST = ("test_slurm.py", "test_workflow.py", "test_benchmarks.py", "test_cache_lock.py", "test_determinism.py",
              "test_properties.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable: file order kept otherwise
