"""Make knows every input: each stage's output depends on the spec files, the project-authored
data and every module of the package code it runs (analysis/config.py, the country set,
included); every stage target refreshes the report; `make refetch SOURCE=...` exists and the
hash-mismatch message names it. Read from make's own database (``make -pq``), so the checks do
not depend on what has been built."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from analysis import config
from tools.make_deps import closure

MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="GNU make is not installed")

STAGES = {  # output -> (stage module, the user-edited inputs it reads)
    "data/processed/panel_clean.parquet": ("clean", ["data/registry.yaml",
                                                     "data/hs6_chain_map.csv"]),
    "data/processed/indices.parquet": ("indices", ["specs/indices.yaml",
                                                   "data/raw/rn_measures.csv",
                                                   "data/raw/rn_policy_events.csv"]),
    "outputs/tables/construct_diagnostics.csv": ("diagnostics", ["specs/indices.yaml",
                                                                 "specs/models.yaml"]),
    "outputs/estimates.csv": ("models", ["specs/models.yaml"]),
    "outputs/nickel_event_study.csv": ("nickel", ["specs/nickel.yaml", "data/registry.yaml"]),
    "outputs/robustness.csv": ("robustness", ["specs/robustness.yaml", "specs/models.yaml"]),
    "outputs/supply_risk.csv": ("supply_risk", ["specs/supply_risk.yaml",
                                                "data/hs6_chain_map.csv"]),
    "outputs/report.html": ("report", ["specs/models.yaml", "specs/robustness.yaml"]),
}
STAGE_TARGETS = ["panel", "indices", "diagnostics", "models", "nickel", "robustness",
                 "supply-risk"]


@pytest.fixture(scope="module")
def database() -> dict[str, dict]:
    """target -> {"prerequisites": [...], "recipe": [...]} from ``make -pq``."""
    run = subprocess.run([MAKE, "-pq", "--no-print-directory", "help"], cwd=config.ROOT,
                         capture_output=True, text=True, check=False, timeout=120)
    rules: dict[str, dict] = {}
    current = None
    for line in run.stdout.splitlines():
        match = re.match(r"^([^#\s][^:=]*):(?!=)\s*(.*)$", line)
        if match and not line.startswith(("\t", " ")):
            current = rules.setdefault(match.group(1).strip(),
                                       {"prerequisites": [], "recipe": []})
            current["prerequisites"] += match.group(2).split("|")[0].split()
        elif line.startswith("\t") and current is not None:
            current["recipe"].append(line.strip())
        elif not line.strip():
            current = None
    return rules


@pytest.mark.parametrize("output", list(STAGES))
def test_every_input_of_a_stage_is_a_prerequisite(database, output):
    module, inputs = STAGES[output]
    prerequisites = set(database[output]["prerequisites"])
    code = closure(module)
    assert "analysis/config.py" in code
    missing = [p for p in [*inputs, *code] if p not in prerequisites]
    assert not missing, f"{output} does not depend on {missing}"


def test_the_report_depends_on_every_spec_file(database):
    prerequisites = set(database["outputs/report.html"]["prerequisites"])
    for spec in sorted(config.SPECS.glob("*.yaml")):
        assert str(spec.relative_to(config.ROOT)) in prerequisites


@pytest.mark.parametrize("target", STAGE_TARGETS)
def test_every_stage_target_refreshes_the_report(database, target):
    recipe = " ".join(database[target]["recipe"])
    assert "REPORT_OUT" in recipe or "report.html" in recipe, recipe


def test_refetch_target_runs_the_refetch(database):
    recipe = " ".join(database["refetch"]["recipe"])
    assert "--refetch" in recipe and "SOURCE" in recipe and "RAW_STAMP" in recipe


def test_hash_mismatch_advice_names_the_refetch_target(tmp_path):
    from analysis.data.io import DataError, verify_sha256

    damaged = tmp_path / "file.csv"
    damaged.write_text("not the pinned bytes")
    with pytest.raises(DataError, match=r"make refetch SOURCE=wdi_fdi"):
        verify_sha256(damaged, "0" * 64, source="wdi_fdi")
