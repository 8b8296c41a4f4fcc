"""Structural tests of the nickel model (Sterman 2000, ch. 21; Barlas 1996): exact mass
balance, extreme conditions, the time step halved, and METHODS' behaviour patterns on a run
calibrated on the real data."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from analysis import config
from analysis.simulation import inputs, mdl, runner

NICKEL = config.SPECS / "sd" / "nickel.mdl"
STOCKS = ["Indonesian ore stockpile", "China port ore inventory", "Nickel in use in batteries",
          "Nickel in use in other uses", "Nickel scrap"]
PRODUCTS = ["Indonesian NPI exports to China", "Indonesian matte exports to China",
            "Indonesian MHP exports to China", "Indonesian refined exports to China"]


@pytest.fixture(scope="module")
def model():
    return runner.load(NICKEL)


@pytest.fixture(scope="module")
def history():
    """The measured policy schedules (from the committed measures file)."""
    measures = pd.read_csv(config.DATA_RAW / "rn_measures.csv", dtype=str,
                           keep_default_na=False)
    return {"Ore export ban schedule": inputs.measure_schedule(measures, "IDN-04", {4: 1.0}),
            "Ore quota regime schedule": inputs.measure_schedule(measures, "IDN-04", {2: 1.0}),
            "Ore export duty schedule": inputs.measure_schedule(measures, "IDN-03", {3: 1.0})}


def _draws(model, n: int, seed: int) -> dict[str, np.ndarray]:
    ranges = {k: v for k, v in model.ranges().items()
              if np.isfinite(v[0]) and np.isfinite(v[1]) and v[1] < 2000
              and not k.endswith("start")}
    return runner.latin_hypercube(ranges, n, seed)


def test_mass_balance_is_exact(model, history):
    """Every step: the change of the nickel held in the chain's stocks equals dt times the
    nickel entering minus the nickel leaving, on 30 parameter sets drawn over the ranges of
    the model file, with a ban reversal and an NPI ban added to the history."""
    lookups = dict(history)
    lookups["NPI export ban schedule"] = runner.step_schedule([(2027.0, 1.0)])
    params = {**_draws(model, 30, 1), "Lane disruption start": 2028.25,
              "Price spike start": 2027.5, "Price spike height": 1.0}
    out = model.run(params, lookups, record=["Nickel held in the chain",
                                             "Nickel entering the chain",
                                             "Nickel leaving the chain", *STOCKS])
    dt = model.model.control["time step"]
    held = out["nickel held in the chain"]
    change = np.diff(held, axis=0)
    net = (out["nickel entering the chain"] - out["nickel leaving the chain"])[:-1] * dt
    scale = np.abs(held).max(axis=0)
    assert np.max(np.abs(change - net) / scale) < 1e-12
    # the stocks never go negative
    for stock in STOCKS:
        assert out[mdl.normalise(stock)].min() > -1e-9, stock


def test_no_ore_gives_no_intermediates(model, history):
    """Extreme condition: with no minable ore (deposit factor 0) there is no mine output, no
    ore export and no NPI, matte, MHP or refined nickel, in every step, whatever the
    policies; China then relies on the Philippines and other suppliers."""
    out = model.run({"Indonesian ore deposit factor": 0.0}, history,
                    record=["Indonesian mine output", "Indonesian ore exports to China",
                            "Indonesian ore stockpile", *PRODUCTS, "China supply gap",
                            "Philippine ore exports to China"])
    for name in ["Indonesian mine output", "Indonesian ore exports to China",
                 "Indonesian ore stockpile", *PRODUCTS]:
        assert np.max(np.abs(out[mdl.normalise(name)])) == 0.0, name
    assert np.all(np.isfinite(out["china supply gap"]))
    assert out["philippine ore exports to china"].max() > 0


def test_unlimited_capacity_gives_no_shortage(model, history):
    """Extreme condition: capacity that is unlimited and adjusts within two time steps
    (Philippine ceiling and other suppliers' response unbounded, stocks that can be drawn at
    once) leaves no supply gap in any year, through both bans; with the file's capacities the
    same history has a gap (so the limits are what makes one)."""
    names = ["China supply gap", "SEA nickel requirement"]
    fast = 2 * model.model.control["time step"]
    unlimited = {"Philippine capacity ceiling": 1e6, "Philippine capacity adjustment time": fast,
                 "Maximum other supply response": 1e6, "World market response time": fast,
                 "Minimum inventory drawdown time": fast, "Minimum stockpile drawdown time": fast,
                 "Mining adjustment time": fast}
    free = model.run(unlimited, history, annual=names)
    assert np.max(free["annual:china supply gap"]) < 1e-9
    limited = model.run({}, history, annual=names)
    share = limited["annual:china supply gap"][:, 0] / limited["annual:sea nickel requirement"][:, 0]
    assert share.max() > 0.05


def test_results_stable_when_the_time_step_halves(model, history):
    """Every output flow of the scenario spec, integrated over each year, moves by less than
    1% of its peak when the time step halves, with the file's parameters and the measured
    history; on 10 parameter sets drawn over the whole ranges (the fastest time constants
    included) by less than 5% of its peak (at least 10 kt, 100 million USD for values).
    China's supply gap, a residual, moves by less than 1% of China's first use."""
    import yaml

    spec = yaml.safe_load((config.SPECS / "scenarios.yaml").read_text(encoding="utf-8"))
    flows = spec["outputs"]["flows"]
    dt = model.model.control["time step"]
    for params, tolerance, floor in (({}, 0.01, 1e-9), (_draws(model, 10, 3), 0.05, 10.0)):
        coarse = model.run(params, history, annual=flows)
        fine = model.run(params, history, annual=flows, time_step=dt / 2)
        for name in flows:
            a, b = coarse[f"annual:{mdl.normalise(name)}"], fine[f"annual:{mdl.normalise(name)}"]
            peak = np.maximum(np.abs(b).max(axis=0), floor * (10 if "value" in name else 1))
            assert np.max(np.abs(a - b).max(axis=0) / peak) < tolerance, name
        gap = np.abs(coarse["annual:china supply gap"] - fine["annual:china supply gap"])
        assert np.max(gap / fine["annual:china nickel first use"]) < 0.01


# --------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A calibration on the real data with the stage's own functions (fewer evaluations than
    the stage, to keep the suite fast)."""
    if not os.environ.get("DATA_MIRROR") and not (config.DATA_RAW / ".fetched").exists():
        pytest.skip("no DATA_MIRROR and no fetched data/raw: real-data tests skipped")
    from analysis.data import registry
    from analysis.stages import fetch, nickel
    from analysis.stages import scenarios as stage

    fetch.fetch_all(registry.load_registry(), config.DATA_RAW, config.data_mirror())
    spec = stage.load_spec()
    cal = spec.calibration.model_copy(update={"starts": 2, "screen": 600,
                                              "max_evaluations": 40})
    spec = spec.model_copy(update={"calibration": cal})
    processed = tmp_path_factory.mktemp("processed")
    extract = nickel.read_extract()
    chain = nickel.build_nickel_chain(extract, nickel.stage_map(nickel.load_nickel_spec()))
    chain.to_parquet(processed / "nickel_chain.parquet", index=False)
    data = stage.read_inputs(config.DATA_RAW, processed)
    history = stage.history_lookups(spec, data, config.DATA_RAW / "rn_measures.csv")
    observed = stage.observed_series(spec, data)
    model = runner.load(NICKEL)
    constants = stage.stage_constants(spec, data, observed, None, model)
    fit = stage.calibrate(spec, model, observed, history, constants)
    fitted = dict(zip(fit["table"]["parameter"], fit["table"]["value"], strict=True))
    constants = stage.stage_constants(spec, data, observed, fitted, model)
    stats, frame = stage.fit_statistics(spec, model, observed, history, constants, fitted)
    return spec, history, stats, frame, fit


@pytest.mark.integration
def test_behaviour_patterns_on_the_calibrated_run(calibrated):
    """METHODS section 10: ore exports near zero in ban years, intermediates rising with a
    one-to-two-year lag, pre-ban export rushes, Philippine ore rising in 2014-16."""
    from analysis.stages import scenarios as stage

    spec, history, _, frame, _ = calibrated
    table = stage.behaviour_patterns(spec, history, frame)
    assert list(table["pattern"]) == ["ore exports near zero in ban years",
                                      "intermediates rise with a one-to-two-year lag",
                                      "pre-ban export rushes",
                                      "Philippine ore rises after the first ban"]
    assert (table["verdict"] == "reproduced").all(), table.to_string()


@pytest.mark.integration
def test_fit_table_has_both_windows_and_consistent_shares(calibrated):
    _, _, stats, frame, fit = calibrated
    assert set(stats["window"]) == {"calibration", "holdout"}
    assert stats.groupby("series").size().eq(2).all()
    assert stats.loc[stats["series"] == "idn_chn_ore", "n"].tolist() == [10, 5]
    shares = stats[["theil_um", "theil_us", "theil_uc"]].dropna()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-12)
    # the hold-out years were not used: the cost counts only 2010-2019
    assert fit["observed"] == int(frame[frame["year"] <= 2019]["actual"].notna().sum())
    assert set(fit["table"]["at_bound"]) <= {"", "lower", "upper"}
