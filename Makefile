# China–ASEAN strategic-mineral chain synergy: reproducible pipeline.
# `make all` builds everything from the raw data; `make test` runs the tests. `make help` lists targets.
# Each stage reads the files of the stage before it, so make rebuilds only what changed.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_MIRROR ?= $(wildcard $(abspath ../shared/data/mirror))
export DATA_MIRROR

RAW_STAMP := data/raw/.fetched
PANEL := data/processed/panel_clean.parquet
PROCESSED := $(PANEL) data/processed/dyad_panel.parquet data/processed/trade_chain.parquet

.PHONY: all setup data panel test lint clean help

all: panel ## set up, fetch, and run every stage through the report

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv with the pinned dependencies (requirements.lock)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

data: $(RAW_STAMP) ## fetch and hash-check every raw input into data/raw (uses $$DATA_MIRROR)

$(RAW_STAMP): $(STAMP) data/registry.yaml analysis/fetch.py
	$(PY) -m analysis.fetch
	touch $(RAW_STAMP)

panel: $(PROCESSED) ## clean and merge the sources into the processed panels

$(PROCESSED) &: $(RAW_STAMP) analysis/clean.py analysis/parsers.py analysis/schemas.py data/hs6_chain_map.csv
	$(PY) -m analysis.clean

test: $(STAMP) ## run the test suite (integration tests need DATA_MIRROR or a warm cache)
	$(PY) -m pytest -q -n 2

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check analysis tests

clean: ## remove data/processed and outputs (never data/raw)
	rm -rf data/processed outputs
