"""End to end on the real data: every stage's entry point, as the Makefile runs it, into a
temporary folder (issue 18, kind 4: a stage that fails on the real data while every other test
passes).

``python -m analysis.stages.<stage>`` for fetch, clean, indices, diagnostics, models, nickel,
robustness, supply_risk, scorecard, scenarios and report, each in its own process, with
``PIPELINE_PROCESSED_DIR`` / ``PIPELINE_OUTPUTS_DIR`` / ``PIPELINE_LOG_DIR`` pointing into a
temporary folder (fetch, as in ``tests/test_integration.py``, hash-checks ``data/raw`` from
``DATA_MIRROR``). A stage that exits non-zero fails the test with its console output and the
end of its log, and the stages that need its files are not started. The outputs are then
checked against numbers of the main build (``make all`` on the real data): the estimation
sample, coefficients, row counts, the report's headline table.

Run time (2 cores): the stages run two at a time in the order of their dependencies, as
``make all`` does (``JOBS=2``), and read the session's parse cache (``tests/conftest.py``).
The scenarios stage has no quick mode; it runs with the project's ``specs/scenarios.yaml`` and
smaller search budgets only (one calibration start of ten evaluations, no screen, 20 Monte
Carlo runs, 8 Sobol base samples): every model, scenario, series and output is the project's,
the calibrated numbers are not, so only budget-independent facts of its outputs are checked.
A cold run (empty cache, as in CI) takes about two and a half minutes.

Needs ``DATA_MIRROR`` (``make test`` sets it from ``../shared/data/mirror``; CI always has it).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import api, config
from analysis.data.specs import load_region
from analysis.econometrics import moderated, variants
from analysis.stages import bench, nickel
from analysis.stages import models as models_stage

pytestmark = pytest.mark.integration

# stage -> (the stages whose files it reads, per the Makefile's prerequisites; extra arguments)
STAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fetch": ((), ()),
    "clean": (("fetch",), ()),
    "indices": (("clean",), ()),
    "diagnostics": (("indices",), ()),
    "models": (("indices",), ()),
    "nickel": (("fetch", "clean"), ()),
    "robustness": (("models", "nickel"), ()),
    "supply_risk": (("fetch",), ()),
    "scorecard": (("supply_risk", "fetch"), ()),
    "scenarios": (("nickel", "fetch"), ("--spec", "{quick_scenarios}")),
    "report": (("robustness", "diagnostics", "nickel", "supply_risk", "scorecard",
                "scenarios"), ()),
}
# Longest chain first when two stages are ready (the models -> robustness chain, then the
# scenarios' calibration).
PRIORITY = ["fetch", "clean", "indices", "nickel", "models", "scenarios", "robustness",
            "supply_risk", "scorecard", "diagnostics", "report"]
JOBS = 2
STAGE_TIMEOUT = 900  # seconds; a stage that hangs fails the test instead of the whole suite

# The main build on the real data (make all, commit 14248a2): numbers a correct pipeline
# reproduces exactly (every output is deterministic: tests/test_pipeline_determinism.py).
# A deliberate change of the data, a spec or a method moves them: update them with it.
PANEL_ROWS = 319  # 11 countries x 29 years (1996-2024)
ESTIMATION_N, ESTIMATION_G = 182, 10
M1_GPR = {"estimate": 0.01856947477, "se_crv3": 0.07689173402, "p_wcr": 0.5525155252}
M5_GPR_RN_TI = {"estimate": -3.170155986, "se_crv3": 1.954362311}
ROBUSTNESS_ROWS = 65
DIAGNOSTICS_ROWS = 58
SUPPLY_RISK_ROWS, DEPENDENCE_ROWS = 4452, 6790
SCORECARD_ROWS = 57288
NICKEL = {"n_obs": 7410, "n_clusters": 135, "ore_b2014_post0": -1.662497277,
          "postavg_ore_b2014": -4.545891799}
NICKEL_OVERDISPERSION = {"alpha": 0.14290934323096963, "rho": 0.7798056093868063}
HEADLINE_CAPTION = "Geopolitical risk and China–ASEAN mineral-chain synergy"


def quick_scenario_spec(path: Path) -> Path:
    """``specs/scenarios.yaml`` with smaller search budgets (module docstring); everything
    else as the project's."""
    spec = yaml.safe_load((config.SPECS / "scenarios.yaml").read_text(encoding="utf-8"))
    spec["calibration"].update(starts=1, screen=0, max_evaluations=10)
    spec["monte_carlo"]["runs"] = 20
    spec["sobol"]["base_samples"] = 8
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"(no log at {path})"
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


class Run:
    """The result of the whole run: per stage its exit code, output and seconds."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processed = root / "processed"
        self.outputs = root / "outputs"
        self.logs = root / "logs"
        self.codes: dict[str, int | None] = {}
        self.console: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        self.wall = 0.0

    def failure(self, stage: str) -> str | None:
        """Why ``stage`` did not succeed, with its console output and log; None if it did."""
        code = self.codes.get(stage)
        if code == 0:
            return None
        if code is None:
            failed = [s for s in STAGES[stage][0] if self.codes.get(s) != 0]
            return f"stage {stage} not run: it needs {', '.join(failed)}, which failed"
        return (f"stage {stage} exited {code}\n--- console ---\n{self.console[stage]}\n"
                f"--- end of {stage}.log ---\n{_tail(self.logs / f'{stage}.log')}")

    def require(self, *stages: str) -> None:
        for stage in stages:
            reason = self.failure(stage)
            if reason:
                pytest.fail(reason, pytrace=False)


def run_pipeline(root: Path) -> Run:
    """Run every stage (two at a time, each once its inputs exist) into ``root``."""
    run = Run(root)
    for folder in (run.processed, run.outputs, run.logs):
        folder.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PIPELINE_VERBOSE"}
    # the default region: the main build's numbers below are that region's
    env.update(PIPELINE_PROCESSED_DIR=str(run.processed), PIPELINE_OUTPUTS_DIR=str(run.outputs),
               PIPELINE_LOG_DIR=str(run.logs), PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1",
               REGION=config.DEFAULT_REGION)
    fill = {"quick_scenarios": str(quick_scenario_spec(root / "scenarios_quick.yaml"))}
    waiting = list(PRIORITY)
    running: dict[str, tuple[subprocess.Popen, float, object]] = {}
    started = time.monotonic()
    while waiting or running:
        for stage in list(waiting):
            needs = STAGES[stage][0]
            if any(s in run.codes and run.codes[s] != 0 for s in needs):
                run.codes[stage] = None  # an input failed (or was never made): not started
                waiting.remove(stage)
                continue
            if not all(run.codes.get(s) == 0 for s in needs):
                continue  # an input is still being made
            if len(running) >= JOBS:
                break
            waiting.remove(stage)
            console = open(root / f"{stage}.console", "w+", encoding="utf-8")  # noqa: SIM115
            args = [a.format(**fill) for a in STAGES[stage][1]]
            process = subprocess.Popen(
                [sys.executable, "-m", f"analysis.stages.{stage}", *args], cwd=config.ROOT,
                env=env, stdout=console, stderr=subprocess.STDOUT, text=True)
            running[stage] = (process, time.monotonic(), console)
        for stage, (process, begun, console) in list(running.items()):
            code = process.poll()
            if code is None and time.monotonic() - begun > STAGE_TIMEOUT:
                process.kill()
                code = process.wait()
                console.write(f"\n(killed after {STAGE_TIMEOUT} s)\n")
            if code is None:
                continue
            run.seconds[stage] = time.monotonic() - begun
            console.seek(0)
            run.console[stage] = console.read()
            console.close()
            run.codes[stage] = code
            del running[stage]
        time.sleep(0.1)
    run.wall = time.monotonic() - started
    return run


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Run:
    if not os.environ.get("DATA_MIRROR"):
        pytest.skip("DATA_MIRROR is not set: the end-to-end run needs the real raw data "
                    "(make test sets it from ../shared/data/mirror; CI always does)")
    run = run_pipeline(tmp_path_factory.mktemp("end_to_end"))
    timings = ", ".join(f"{s} {run.seconds[s]:.0f} s" for s in PRIORITY if s in run.seconds)
    print(f"\n[end-to-end] {run.wall:.0f} s wall: {timings}")
    return run


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_exits_zero(pipeline, stage):
    pipeline.require(stage)
    assert (pipeline.logs / f"{stage}.log").exists()


def test_the_panel_covers_every_country_and_year(pipeline):
    pipeline.require("clean", "indices")
    panel = pd.read_parquet(pipeline.processed / "panel.parquet")
    assert len(panel) == PANEL_ROWS
    region = load_region(config.DEFAULT_REGION)
    assert sorted(panel["iso3"].unique()) == sorted(region.countries)
    assert (panel["year"].min(), panel["year"].max()) == (region.first_year, region.last_year)


def test_estimation_sample_and_coefficients_equal_the_main_build(pipeline):
    pipeline.require("models")
    estimates = pd.read_csv(pipeline.outputs / "estimates.csv")
    assert sorted(estimates["model"].unique()) == ["M1", "M2", "M3", "M4", "M5"]
    assert set(estimates["n_obs"]) == {ESTIMATION_N}
    assert set(estimates["n_clusters"]) == {ESTIMATION_G}
    rows = estimates.set_index(["model", "term"])
    for column, value in M1_GPR.items():
        assert rows.loc[("M1", "gpr"), column] == pytest.approx(value, rel=1e-6), column
    for column, value in M5_GPR_RN_TI.items():
        assert rows.loc[("M5", "gpr:rn:ti"), column] == pytest.approx(value, rel=1e-6), column


def _cells(html_text: str, label: str) -> list[str]:
    """The cells of the first table row whose first cell is ``label`` (tags stripped)."""
    match = re.search(r"<tr><td[^>]*>" + re.escape(label) + r"</td>(.*?)</tr>", html_text)
    assert match, f"no row {label!r}"
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>",
                                                                match.group(1))]


def test_the_report_shows_the_headline_table_of_this_run(pipeline):
    """The report's main-results table holds this run's estimates (4 decimals; M5's triple
    interaction carries the stars of its WCR p-value, 0.0036 -> ***)."""
    pipeline.require("report")
    text = (pipeline.outputs / "report.html").read_text(encoding="utf-8")
    start = text.index("<section id='main'>")
    main = text[start:text.index("</section>", start)]
    assert f"<caption>{HEADLINE_CAPTION}</caption>" in main
    estimates = pd.read_csv(pipeline.outputs / "estimates.csv").set_index(["model", "term"])
    gpr = _cells(main, "GPR")
    assert gpr == [f"{estimates.loc[(m, 'gpr'), 'estimate']:.4f}" for m in
                   ["M1", "M2", "M3", "M4", "M5"]]
    assert gpr[0] == "0.0186"
    triple = _cells(main, "GPR × RN × TI")
    assert triple == ["", "", "", "", "-3.1702***"]
    for section in ("findings", "main", "robust", "nickel", "supply", "scorecard",
                    "scenarios", "manifest"):
        assert f"<section id='{section}'>" in text, section


def test_the_manifest_hashes_every_output_it_lists(pipeline):
    pipeline.require("report")
    manifest = json.loads((pipeline.outputs / "manifest.json").read_text())
    listed = {Path(name): digest for name, digest in manifest["outputs"].items()}
    assert Path(pipeline.outputs / "estimates.csv") in listed
    assert len(listed) > 200
    for path, digest in listed.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, path


def test_row_counts_of_the_other_stages_equal_the_main_build(pipeline):
    pipeline.require("robustness", "diagnostics", "supply_risk")
    assert len(pd.read_csv(pipeline.outputs / "robustness.csv")) == ROBUSTNESS_ROWS
    diagnostics = pd.read_csv(pipeline.outputs / "tables" / "construct_diagnostics.csv")
    assert len(diagnostics) == DIAGNOSTICS_ROWS
    assert len(pd.read_csv(pipeline.outputs / "supply_risk.csv")) == SUPPLY_RISK_ROWS
    assert len(pd.read_csv(pipeline.outputs / "dependence.csv")) == DEPENDENCE_ROWS


def test_nickel_event_study_equals_the_main_build(pipeline):
    pipeline.require("nickel")
    study = pd.read_csv(pipeline.outputs / "nickel_event_study.csv").set_index("term")
    assert set(study["n_obs"]) == {NICKEL["n_obs"]}
    assert study.loc["ore_b2014_post0", "estimate"] == pytest.approx(NICKEL["ore_b2014_post0"],
                                                                     rel=1e-6)
    tests = pd.read_csv(pipeline.outputs / "nickel_event_tests.csv")
    main = tests[tests["model"] == "main"].set_index("test")
    assert set(main["n_clusters"]) == {NICKEL["n_clusters"]}
    assert main.loc["postavg_ore_b2014", "estimate"] == pytest.approx(
        NICKEL["postavg_ore_b2014"], rel=1e-6)


def test_scorecard_and_scenarios_cover_the_spec(pipeline):
    """Budget-independent facts of the scenario outputs (the module docstring says why), and
    the scorecard's minerals and dimensions."""
    pipeline.require("scenarios", "scorecard")
    spec = yaml.safe_load((config.SPECS / "scenarios.yaml").read_text(encoding="utf-8"))
    bands = pd.read_csv(pipeline.outputs / "scenarios.csv")
    assert list(bands["scenario"].unique()) == [s["id"] for s in spec["scenarios"]]
    assert (bands["p05"] <= bands["p50"] + 1e-9).all() and (
        bands["p50"] <= bands["p95"] + 1e-9).all()
    check = json.loads((pipeline.outputs / "scenario_pysd_check.json").read_text())
    assert check["max_relative_difference"] < 1e-9
    fit = pd.read_csv(pipeline.outputs / "scenario_fit.csv")
    assert set(fit["series"]) == {s["name"] for s in spec["calibration"]["series"]}
    scorecard = pd.read_csv(pipeline.outputs / "scorecard.csv")
    card = yaml.safe_load((config.SPECS / "scorecard.yaml").read_text(encoding="utf-8"))
    assert set(scorecard["mineral"]) == set(card["minerals"])
    assert set(scorecard["country"]) == set(card["countries"])
    assert set(scorecard["dimension"]) == {*card["dimensions"], "overall"}
    assert len(scorecard) == SCORECARD_ROWS


# --------------------------------------------------------------------------- on this run's files
# Library entry points that read the processed folder (notebook API, make bench, the nickel
# stage's --size-mc), pointed at this run's files.
@pytest.fixture
def processed_here(pipeline, monkeypatch) -> Path:
    pipeline.require("models")
    monkeypatch.setattr(config, "DATA_PROCESSED", pipeline.processed)
    return pipeline.processed


def test_api_panels_are_the_stages_files(processed_here):
    panel = api.panel(processed=processed_here)
    sample = api.panel(estimation=True, processed=processed_here)
    assert len(panel) == PANEL_ROWS and len(sample) == ESTIMATION_N
    assert sample["iso3"].nunique() == ESTIMATION_G
    assert {"gpr", "rn", "ti", "syn"} <= set(sample.columns)


def test_bench_size_monte_carlo_on_the_real_design(processed_here, tmp_path):
    """``make bench --size`` at 8 replications: one row per method and key term, RI rows per
    permutation check of the battery, the design N/G/T of the main models, Monte Carlo s.e.
    sqrt(p(1-p)/R); seeded, so a second run is equal; its record is what the models stage
    reads back as matching this design."""
    reps = 8
    table = bench.real_design_size(reps=reps, B=19, ri_draws=19)
    pd.testing.assert_frame_equal(table, bench.real_design_size(reps=reps, B=19, ri_draws=19))
    spec = moderated.load_model_spec()
    key = {m: [t for t in spec["key_terms"] if t in terms] for m, terms in spec["models"].items()}
    plain = table[~table["method"].str.startswith("RI ")]
    assert len(plain) == 5 * sum(map(len, key.values())) + len(key["M1"])
    battery = variants.load_robustness_spec()
    ri_checks = [c["id"] for c in battery["checks"] if c.get("permute") and not c.get("panel")]
    assert list(table.loc[table["method"].str.startswith("RI "), "check"]) == ri_checks
    assert set(table["N"]) == {ESTIMATION_N} and set(table["G"]) == {ESTIMATION_G}
    assert set(table["reps"]) == {reps}
    hits = table["rejection_rate"] * reps
    assert np.allclose(hits, hits.round()) and table["rejection_rate"].between(0, 1).all()
    rate = table["rejection_rate"]
    assert np.allclose(table["mc_se"], np.sqrt(np.maximum(rate * (1 - rate), 1e-12) / reps))
    frame = pd.read_parquet(processed_here / "estimation_panel.parquet")
    design = moderated.design_summary(frame, spec)
    path = bench.write_size_record(bench.size_record(table, design, {"reps": reps}),
                                   tmp_path / "sizes.yaml")
    sizes = moderated.load_sizes(path)
    assert models_stage.sizes_status(sizes, design) == (True, "")
    assert models_stage.method_size(sizes, "CRV1") == pytest.approx(
        plain.loc[plain["method"] == "CRV1", "rejection_rate"].max())


def test_bench_wcr_equals_pyfixest_wildboottest(processed_here):
    """The bench's WCR comparison on M4 gpr:rn: our p-value and pyfixest's differ by at most
    the draws that give every cluster one weight (module docstring of bench)."""
    result = bench.wcr_comparison(B=99, repeats=1)
    assert (result["model"], result["term"], result["clusters"]) == ("M4", "gpr:rn",
                                                                     ESTIMATION_G)
    assert abs(result["p_ours"] - result["p_pyfixest"]) <= result["constant_draws"] / 99 + 1e-12
    assert result["ratio"] == pytest.approx(result["ours_s"] / result["pyfixest_s"])


def test_bench_estimation_tiers_for_every_model(processed_here, monkeypatch):
    """Every model in three tiers, ours and pyfixest each run (the timer is a stand-in: ours
    2 s, pyfixest 4 s, so every ratio is 0.5)."""
    monkeypatch.setattr(bench, "_median_time",
                        lambda f, repeats, *a: 2.0 if f.__name__.startswith("ours") else 4.0)
    table = bench.estimation_ratio(repeats=1, B=9)
    spec = moderated.load_model_spec()
    assert list(table["model"]) == [m for m in spec["models"] for _ in range(3)]
    assert list(table["tier"][:3]) == ["point + CRV1", "+ CRV3, DK",
                                       "+ WCR of the key terms, B = 9"]
    keys = {m: sum(t in terms for t in spec["key_terms"]) for m, terms in spec["models"].items()}
    assert list(table.groupby("model", sort=False)["key_terms"].first()) == list(keys.values())
    assert (table["ratio"] == 0.5).all()
    assert bench.bootstrap_time() > 0


def test_nickel_size_simulation_is_calibrated_on_the_real_main_fit(pipeline):
    """``python -m analysis.stages.nickel --size-mc 2``: three DGPs x two partner
    concentrations; the NB dispersion and AR(1) persistence are the real main fit's
    (main build: alpha 0.1429, rho 0.7798); the F(q, G-1) Wald test never rejects where the
    chi2 one does not (same statistic, heavier tail)."""
    pipeline.require("fetch")  # the BACI extract, hash-checked in data/raw
    table = nickel.size_simulation(2)
    assert list(table["dgp"]) == ["poisson", "poisson", "negative binomial",
                                  "negative binomial", "NB-like, AR(1) persistence",
                                  "NB-like, AR(1) persistence"]
    assert list(table["china_share"]) == ["equal", 0.9] * 3
    dispersion = table["dispersion"].dropna().unique()
    assert dispersion == pytest.approx([NICKEL_OVERDISPERSION["alpha"]], rel=1e-6)
    assert table["rho"].dropna().unique() == pytest.approx([NICKEL_OVERDISPERSION["rho"]],
                                                           rel=1e-6)
    assert (table["reject_wald_f"] <= table["reject_wald_chi2"]).all()
    for column in ("reject_wald_chi2", "reject_wald_f", "reject_t_single", "reject_post_mean"):
        assert set(table[column]) <= {0.0, 0.5, 1.0}
