"""The scenario specification (validation, one-line errors, exit code 2), the inputs built
from the measures, and the library pieces of the stage: calibration on a known process, the
grouped Sobol indices on an analytic function, the Monte Carlo cache, the causal-loop
polarities and the rare-earth patterns."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import config
from analysis.simulation import (
    behaviour,
    calibration,
    cld,
    inputs,
    mdl,
    runner,
    scenario_spec,
    sensitivity,
)
from analysis.simulation import rare_earths as ree
from analysis.stages import scenarios as stage

SPEC = config.SPECS / "scenarios.yaml"
NICKEL = config.SPECS / "sd" / "nickel.mdl"


@pytest.fixture(scope="module")
def raw_spec():
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def measures():
    return pd.read_csv(config.DATA_RAW / "rn_measures.csv", dtype=str, keep_default_na=False)


def _scenario(raw: dict, sid: str) -> dict:
    return next(s for s in raw["scenarios"] if s["id"] == sid)


def test_the_project_spec_is_valid_against_its_model(raw_spec):
    spec = scenario_spec.validate(raw_spec, SPEC)
    scenario_spec.check_against_model(spec, mdl.parse_model(NICKEL), SPEC)
    assert [s.id for s in spec.scenarios][:2] == ["baseline", "no_ban_since_2014"]
    assert spec.node_of("Lane disruption duration") == "geopolitical_layout"
    assert scenario_spec.parameter_value("2027-07-01") == pytest.approx(2027 + 181 / 365)


def _edit(raw: dict, change) -> dict:
    edited = copy.deepcopy(raw)
    change(edited)
    return edited


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: _scenario(r, "ban_reversed_2027").update(polices={}),
     r"scenarios, entry 'ban_reversed_2027', polices: unknown key 'polices'"),
    (lambda r: _scenario(r, "ban_reversed_2027")["policies"]["Ore export ban schedule"][0]
     .update({"from": "2041-01-01"}),
     (r"scenario 'ban_reversed_2027', policies, Ore export ban schedule: date 2041-01-01 is "
     r"outside the horizon 2010-2035")),
    (lambda r: _scenario(r, "ban_reversed_2027")["policies"]["Ore export ban schedule"][0]
     .update(value=1.5),
     (r"entry 'ban_reversed_2027', policies, Ore export ban schedule, item 1, value: Input "
     r"should be less than or equal to 1")),
    (lambda r: _scenario(r, "price_spike")["parameters"].update(
        {"Price spike start": "2036-03-01"}),
     (r"scenario 'price_spike', parameters, Price spike start: date 2036-03-01 is outside the "
     r"horizon")),
    (lambda r: _scenario(r, "price_spike")["parameters"].update(
        {"Price spike height": [1.5, 0.5]}),
     (r"scenario 'price_spike', parameters, Price spike height: range \[1.5, 0.5\] runs "
     r"backwards")),
    (lambda r: r["scenarios"].append({"id": "baseline", "description": "again"}),
     r"scenarios: id 'baseline' is used twice"),
    (lambda r: r["nodes"]["geopolitical_layout"].remove("Lane disruption duration"),
     (r"parameter 'Lane disruption duration' is drawn in the Monte Carlo but is in no "
     r"disruption node")),
    (lambda r: r["nodes"].update(trade=["x"]), r"nodes: unknown node 'trade'"),
    (lambda r: r["monte_carlo"].update(runs="many"), (r"monte_carlo, runs: Input should be a "
                                                     r"valid integer")),
])
def test_bad_entries_stop_with_one_line_naming_the_entry(raw_spec, change, message):
    with pytest.raises(scenario_spec.SpecError, match=message) as caught:
        scenario_spec.validate(_edit(raw_spec, change), SPEC)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(str(SPEC))


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: _scenario(r, "ev_surge_with_lfp")["parameters"].update(
        {"LFP switch share": [0.3, 1.4]}),
     (r"scenario 'ev_surge_with_lfp', parameters, LFP switch share: 1.4 is outside \[0, 1\], "
     r"the range nickel.mdl gives 'LFP switch share'")),
    (lambda r: _scenario(r, "ev_surge")["parameters"].update({"EV surge facter": 2}),
     r"scenario 'ev_surge', parameters, EV surge facter: nickel.mdl has no variable"),
    (lambda r: _scenario(r, "ban_reversed_2027")["policies"].update(
        {"Nickel price": [{"from": 2027, "value": 0}]}),
     (r"scenario 'ban_reversed_2027', policies, Nickel price: 'Nickel price' is not a policy "
     r"schedule")),
    (lambda r: (r["calibration"]["free"].append("Nickel price"),
                r["nodes"]["demand_market"].append("Nickel price")),
     (r"calibration, free, Nickel price: 'Nickel price' is an auxiliary in nickel.mdl, not a "
     r"constant")),
    (lambda r: r.update(horizon=[2010, 2040]), (r"horizon: \[2010, 2040\] differs from the "
                                               r"model's")),
])
def test_names_and_values_are_checked_against_the_model(raw_spec, change, message):
    spec = scenario_spec.validate(_edit(raw_spec, change), SPEC)
    with pytest.raises(scenario_spec.SpecError, match=message):
        scenario_spec.check_against_model(spec, mdl.parse_model(NICKEL), SPEC)


def test_stage_exits_2_with_one_line_on_a_bad_spec(raw_spec, tmp_path, capsys):
    bad = _edit(raw_spec, lambda r: _scenario(r, "price_spike")["parameters"].update(
        {"Price spike start": "2050-01-01"}))
    path = tmp_path / "scenarios.yaml"
    path.write_text(yaml.safe_dump(bad, sort_keys=False), encoding="utf-8")
    assert stage.main(["--spec", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"[scenarios] ERROR {path}: scenario 'price_spike', parameters, "
                             "Price spike start: date 2050-01-01 is outside the horizon")


def test_measure_schedules_follow_the_coded_dates(measures):
    ban = inputs.measure_schedule(measures, "IDN-04", {4: 1.0})
    quota = inputs.measure_schedule(measures, "IDN-04", {2: 1.0})
    at = lambda s, date: runner.schedule_value(s, runner.decimal_year(date))
    assert at(ban, "2014-01-11") == 0 and at(ban, "2014-01-12") == 1
    assert at(ban, "2017-01-10") == 1 and at(ban, "2017-01-11") == 0
    assert at(quota, "2017-06-01") == 1 and at(quota, "2020-01-01") == 0
    assert at(ban, "2020-01-01") == 1 and at(ban, "2034-12-31") == 1
    reversed_ = inputs.override_schedule(ban, [(2027.0, 0.0)])
    assert at(reversed_, "2026-12-31") == 1 and at(reversed_, "2027-01-01") == 0
    assert at(reversed_, "2015-06-01") == 1 and at(reversed_, "2018-06-01") == 0
    with pytest.raises(inputs.InputError, match="measure 'IDN-99' is not in the measures file"):
        inputs.measure_schedule(measures, "IDN-99", {4: 1.0})
    with pytest.raises(inputs.InputError, match="none of its intensities"):
        inputs.measure_schedule(measures, "IDN-04", {3: 1.0})
    both = inputs.combine_schedules([inputs.measure_schedule(measures, "CHN-12", {4: 1.0}),
                                     inputs.measure_schedule(measures, "CHN-17", {2: 0.5})])
    assert at(both, "2024-06-01") == 1 and at(both, "2023-06-01") == 0


def test_baci_series_zero_fills_and_refuses_a_missing_quantity():
    flows = pd.DataFrame({"exporter": ["IDN", "IDN"], "importer": ["CHN", "CHN"],
                          "hs6": ["260400", "260400"], "year": [2010, 2012],
                          "quantity_t": [5000.0, 1500.0], "value_kusd": [100.0, 30.0]})
    series = inputs.baci_series(flows, "IDN", "CHN", "260400", [2010, 2011, 2012], "ore")
    assert series["value"].tolist() == [5.0, 0.0, 1.5]
    flows.loc[1, "quantity_t"] = np.nan
    with pytest.raises(inputs.InputError, match="ore: BACI reports a value but no quantity in "
                       "2012"):
        inputs.baci_series(flows, "IDN", "CHN", "260400", [2010, 2012], "ore")
    # unit value over content x price: (30 kUSD * 1000) / (1.5 kt * 1000 * 0.01 * 20000 USD/t)
    assert inputs.payability(pd.Series([30.0], index=[2012]), pd.Series([1.5], index=[2012]),
                             0.01, pd.Series([20000.0], index=[2012])) == pytest.approx(0.1)


def test_scenario_inputs_set_values_ranges_and_policy_steps(raw_spec):
    spec = scenario_spec.validate(raw_spec, SPEC)
    model = runner.load(NICKEL)
    history = {"Ore export ban schedule": runner.step_schedule([(2020.0, 1.0)])}
    fitted = {"Quota allowed share": 0.5, "Other primary supply": 300.0}
    fixed, ranges, lookups = stage.scenario_inputs(
        spec, spec.scenario("combined_extreme"), model, history, fitted,
        {"Quota allowed share": 0.1}, {"Reference nickel price": 15000.0})
    assert fixed["Lane disruption start"] == pytest.approx(2027 + 181 / 365)
    assert ranges["Lane disruption duration"] == (0.25, 1.0)
    assert fixed["Quota allowed share"] == 0.5  # calibrated_spread 0: held at the fit
    assert ranges["Battery lifetime"] == (6.0, 12.0)  # from the model file
    assert not set(fixed) & set(ranges)
    npi = lookups["NPI export ban schedule"]
    assert runner.schedule_value(npi, 2026.9) == 0 and runner.schedule_value(npi, 2027.0) == 1
    assert lookups["Ore export ban schedule"] is history["Ore export ban schedule"]


# --------------------------------------------------------------------------- calibration
TOY = """{UTF-8}
Stock= INTEG (
	Inflow - Outflow,
		Initial stock)
	~	kt
	~	Stock.
	|

Inflow=
	Base inflow * EXP(Growth * (Time - INITIAL TIME))
	~	kt/Year
	~	Inflow.
	|

Outflow=
	Stock / Residence time
	~	kt/Year
	~	Outflow.
	|

Base inflow=
	10
	~	kt/Year [1,50]
	~	Inflow in the first year.
	|

Growth=
	0.05
	~	1/Year [0,0.3]
	~	Growth of the inflow.
	|

Residence time=
	4
	~	Year [1,10]
	~	Residence time.
	|

Initial stock=
	20
	~	kt [0,100]
	~	Stock at the start.
	|

Content=
	0.5
	~	kt/ktgross [0.2,0.8]
	~	Content of the gross flow.
	|

********************************************************
	.Control
********************************************************~
		Simulation Control Parameters
	|

FINAL TIME  = 2030
	~	Year
	~	The final time for the simulation.
	|

INITIAL TIME  = 2010
	~	Year
	~	The initial time for the simulation.
	|

SAVEPER  =
        TIME STEP
	~	Year [0,?]
	~	The frequency with which output is stored.
	|

TIME STEP  = 0.125
	~	Year [0,?]
	~	The time step for the simulation.
	|

\\\\\\---/// Sketch information - do not modify anything except names
V300  Do not put anything below this section - it will be ignored
*View 1
$192-192-192,0,Times New Roman|12||0-0-0|0-0-0|0-0-255|-1--1--1|-1--1--1|96,96,100,0
///---\\\\\\
"""


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    path = tmp_path_factory.mktemp("calibration") / "toy.mdl"
    path.write_text(TOY, encoding="utf-8")
    return runner.load(path)


def test_calibration_recovers_a_known_process(toy):
    """Data generated by the model with known parameters (outflow in gross tonnes through a
    content factor of 0.4): least squares on log flows from the file's values recovers them."""
    truth = {"Growth": 0.12, "Residence time": 2.5, "Content": 0.4}
    run = toy.run(truth, annual=["Outflow", "Inflow"])
    years = run["years"]
    observed = pd.concat([
        pd.DataFrame({"series": "out", "year": years,
                      "value": run["annual:outflow"][:, 0] / truth["Content"]}),
        pd.DataFrame({"series": "in", "year": years, "value": run["annual:inflow"][:, 0]})])
    series = [calibration.FitSeries("out", "Outflow", "Content"),
              calibration.FitSeries("in", "Inflow", None)]
    cal = calibration.Calibration(toy, series, observed, list(truth), (2010, 2024))
    fit = cal.fit(starts=2, seed=1, screen=50)
    for name, value in truth.items():
        assert fit.as_dict()[name] == pytest.approx(value, rel=1e-5), name
    assert fit.cost < 1e-12
    assert fit.at_bound == ["", "", ""]
    table = fit.table()
    assert list(table.columns) == ["parameter", "value", "lower", "upper", "at_bound",
                                   "std_error"]


def test_a_parameter_at_its_bound_is_flagged(toy):
    truth = {"Growth": 0.12, "Residence time": 2.5}
    run = toy.run(truth, annual=["Outflow"])
    observed = pd.DataFrame({"series": "out", "year": run["years"],
                             "value": run["annual:outflow"][:, 0]})
    cal = calibration.Calibration(toy, [calibration.FitSeries("out", "Outflow", None)],
                                  observed, ["Growth", "Residence time"], (2010, 2024),
                                  bounds={"Growth": (0.0, 0.08)})
    fit = cal.fit(starts=1)
    assert fit.at_bound[0] == "upper" and fit.values[0] == pytest.approx(0.08)
    assert math.isnan(fit.standard_errors[0])


def test_grouped_sobol_matches_the_analytic_indices():
    """Y = 4 x1 + 2 x2 + x3 with x uniform on [0, 1]: variances 16/12, 4/12, 1/12; the group
    {x1, x2} explains 20/21 and {x3} 1/21 (first-order = total, no interaction)."""
    def evaluate(draws):
        return 4 * draws["x1"] + 2 * draws["x2"] + draws["x3"]

    frame = sensitivity.grouped_sobol(evaluate, {"x1": (0, 1), "x2": (0, 1), "x3": (0, 1)},
                                      {"x1": "a", "x2": "a", "x3": "b"}, 1024, 5)
    by = frame.set_index("group")
    assert by.loc["a", "ST"] == pytest.approx(20 / 21, abs=0.02)
    assert by.loc["b", "ST"] == pytest.approx(1 / 21, abs=0.01)
    assert by.loc["a", "S1"] == pytest.approx(20 / 21, abs=0.02)
    assert list(frame["group"]) == ["a", "b"] and list(frame["rank"]) == [1, 2]
    assert frame.attrs["runs"] == 1024 * 4


def test_latin_hypercube_is_stratified_within_the_ranges():
    draws = runner.latin_hypercube({"a": (2.0, 4.0), "b": (-1.0, 0.0), "c": (5.0, 5.0)}, 50, 9)
    assert draws["c"].tolist() == [5.0] * 50
    for name, (lo, hi) in (("a", (2.0, 4.0)), ("b", (-1.0, 0.0))):
        strata = np.floor((draws[name] - lo) / (hi - lo) * 50).astype(int)
        assert sorted(strata) == list(range(50))  # one draw in each of the 50 strata


def test_monte_carlo_results_are_cached_by_the_entry(raw_spec, monkeypatch):
    spec = scenario_spec.validate(raw_spec, SPEC)
    spec = spec.model_copy(update={"monte_carlo": spec.monte_carlo.model_copy(
        update={"runs": 20})})
    model = runner.load(NICKEL)
    history = {"Ore export ban schedule": runner.step_schedule([(2014.03, 1.0)])}
    args = (model, history, {}, {}, {"Reference nickel price": 15000.0})
    first = stage.run_scenario(spec, spec.scenario("shipping_disruption"), *args)
    assert list(first.columns) == ["scenario", "variable", "year", "p05", "p50", "p95"]
    assert (first["p05"] <= first["p50"] + 1e-9).all() and \
        (first["p50"] <= first["p95"] + 1e-9).all()

    def refuse(*_args, **_kwargs):
        raise AssertionError("the Monte Carlo ran again")

    monkeypatch.setattr(runner, "monte_carlo", refuse)
    again = stage.run_scenario(spec, spec.scenario("shipping_disruption"), *args)
    pd.testing.assert_frame_equal(first, again)
    changed = spec.scenario("shipping_disruption").model_copy(update={"parameters": {
        **spec.scenario("shipping_disruption").parameters, "Lane disruption depth": 0.5}})
    with pytest.raises(AssertionError, match="ran again"):
        stage.run_scenario(spec, changed, *args)


# --------------------------------------------------------------------------- loops, patterns
def test_loop_polarities_come_from_the_equations(toy):
    states = [{"stock": 20.0, "inflow": 10.0, "outflow": 5.0, "residence time": 4.0,
               "time": 2010.0}]
    loop = cld.LoopSpec("drain", ("Stock", "Outflow"))
    links = cld.loop_links(toy.model, loop, states, {})
    assert links["polarity"].tolist() == [1, -1]  # Stock -> Outflow (+), Outflow -> Stock (-)
    assert cld.loop_polarity(links) == "B"
    with pytest.raises(cld.LoopError, match="loop 'none': 'inflow' does not read 'stock'"):
        cld.loop_links(toy.model, cld.LoopSpec("none", ("Stock", "Inflow")), states, {})


def test_nickel_patterns_judge_what_the_run_shows():
    years = list(range(2010, 2025))
    flows = pd.DataFrame({
        "ore": [100, 120, 150, 200, 20, 0, 0, 40, 60, 90, 1, 0, 0, 0, 0],
        "npi": [0, 0, 0, 0, 1, 5, 12, 20, 40, 60, 80, 90, 100, 110, 120],
        "phl": [100, 110, 120, 130, 150, 160, 150, 140, 140, 140, 150, 160, 160, 160, 160]},
        index=years)
    table = behaviour.nickel_patterns(flows, [2015, 2016, 2021, 2022, 2023, 2024],
                                      [2014, 2020], 2019,
                                      names={"ore": "ore", "npi": "npi", "phl": "phl"})
    assert (table["verdict"] == "reproduced").all()
    flows.loc[2019, "ore"] = 30  # no rush before the 2020 ban
    flows.loc[2016, "ore"] = 50  # and exports in a ban year
    table = behaviour.nickel_patterns(flows, [2015, 2016], [2014, 2020], 2019,
                                      names={"ore": "ore", "npi": "npi", "phl": "phl"})
    assert table.set_index("pattern")["verdict"].to_dict() == {
        "ore exports near zero in ban years": "missed",
        "intermediates rise with a one-to-two-year lag": "reproduced",
        "pre-ban export rushes": "missed",
        "Philippine ore rises after the first ban": "reproduced"}
    schedule = runner.step_schedule([(2014.03, 1.0), (2017.03, 0.0), (2020.0, 1.0)])
    assert behaviour.full_ban_years(schedule, years) == [2015, 2016, 2020, 2021, 2022, 2023,
                                                         2024]
    assert behaviour.ban_starts(schedule, years) == [2014, 2020]


def test_rare_earth_backcast_against_the_published_patterns(measures):
    """The 2010 quota cut, back-cast with the measures: substitution under 10% of demand a
    year, non-Chinese supply up 2-6% of the market a year, recovery in one to three years;
    recycling responds more than the published 'no response' (the verdict says so)."""
    model = runner.load(config.SPECS / "sd" / "rare_earths.mdl")
    lookups = {"Export quota schedule": inputs.measure_schedule(measures, "CHN-01", {3: 1.0})}
    frame = ree.backcast(model, lookups)
    table = ree.patterns(frame).set_index("pattern")
    assert table.loc["substitution", "verdict"] == "reproduced"
    assert 0.005 < table.loc["substitution", "value"] <= 0.10
    assert table.loc["non-Chinese supply", "verdict"] == "reproduced"
    assert 1.0 <= table.loc["recovery", "value"] <= 3.0
    recycled = table.loc["recycling", "value"]
    assert table.loc["recycling", "verdict"] == ("reproduced" if recycled <= 0.01 else "missed")
    # the quota binds from 2010: China's exports drop to the quota
    yearly = ree.annual(frame)
    assert yearly.loc[2009, "China exports"] > 45
    assert yearly.loc[2011, "China exports"] == pytest.approx(30.184, rel=0.02)
    # a run whose substitution jumps by 15% of demand in a year misses the first pattern
    jumpy = frame.copy()
    jumpy.loc[jumpy["time"] >= 2011, "Substituted share"] += 0.15
    assert ree.patterns(jumpy).set_index("pattern").loc["substitution", "verdict"] == "missed"


def test_fit_note_names_the_rule_that_blanks_a_row():
    from analysis.stages.scenarios import fit_note

    assert fit_note({"n": 0, "n_material": 0}, "baci_hs92", 1.0, 3) == \
        "no observed data in this window"
    assert fit_note({"n": 10, "n_material": 0}, "market_clearing", 1.0, 3).startswith(
        "constraint (target 0)")
    assert fit_note({"n": 10, "n_material": 2}, "baci_hs92", 1.0, 3) == (
        "2 of 10 years with at least 1 kt: R² and MAPE not informative")
    assert fit_note({"n": 10, "n_material": 3}, "baci_hs92", 1.0, 3) == ""
    assert fit_note({"n": 2, "n_material": 2}, "world_mining_data", 1.0, 3) == (
        "only 2 observed years: R² and MAPE not informative")


# --------------------------------------------------------------------------- by hand (issue 18)
def test_decimal_year_counts_the_days_of_that_year():
    """1 July is day 182 of 2024 (a leap year: 182/366) and day 181 of 2023 (181/365)."""
    assert runner.decimal_year("2024-07-01") == pytest.approx(2024 + 182 / 366, abs=1e-12)
    assert runner.decimal_year("2023-07-01") == pytest.approx(2023 + 181 / 365, abs=1e-12)
    assert runner.decimal_year("2024-03") == pytest.approx(2024 + 60 / 366, abs=1e-12)
    assert runner.decimal_year("2024") == 2024.0


def test_monthly_prices_sit_in_the_middle_of_their_month():
    """January 100 and February 130 of 2020 at 2020 + 0.5/12 and 2020 + 1.5/12: on 1 February
    (2020 + 1/12) the schedule reads 115, before mid-January 100, after mid-February 130."""
    prices = pd.DataFrame({"series": "Nickel", "date": pd.to_datetime(["2020-01-01",
                                                                       "2020-02-01"]),
                           "year": [2020, 2020], "month": [1, 2], "price": [100.0, 130.0]})
    xs, ys = inputs.monthly_price_schedule(prices)
    np.testing.assert_allclose(xs, [1990.0, 2020 + 0.5 / 12, 2020 + 1.5 / 12, 2100.0])
    np.testing.assert_allclose(ys, [100.0, 100.0, 130.0, 130.0])
    assert runner.schedule_value((xs, ys), 2020 + 1 / 12) == pytest.approx(115.0)


def test_window_total_includes_both_ends():
    """Years 2020-2023, two draws; window 2021-2023 sums the last three rows: 9 and 90."""
    annual = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    np.testing.assert_array_equal(
        sensitivity.window_total(annual, [2020, 2021, 2022, 2023], (2021, 2023)), [9.0, 90.0])
    with pytest.raises(ValueError, match="no year of"):
        sensitivity.window_total(annual, [2020, 2021, 2022, 2023], (2030, 2031))


def test_grouped_sobol_separates_first_order_and_total_indices():
    """The Ishigami function Y = sin x1 + 7 sin² x2 + 0.1 x3⁴ sin x1, x uniform on [-pi, pi]
    (Saltelli et al. 2008, Global Sensitivity Analysis, section 2.9): V1 = (1 + 0.1 pi⁴/5)²/2,
    V2 = 49/8, V3 = 0, V13 = 0.01 pi⁸ 8/225; S1 = (0.314, 0.442, 0), ST = (0.558, 0.442,
    0.244). x3 acts only through its interaction with x1: S1 = 0, ST = 0.244. The ranking is by
    ST (x1 first although x2 has the largest S1)."""
    a, b, pi = 7.0, 0.1, np.pi
    v1, v2, v13 = 0.5 * (1 + b * pi ** 4 / 5) ** 2, a * a / 8, b * b * pi ** 8 * 8 / 225
    total = v1 + v2 + v13

    def evaluate(draws):
        return (np.sin(draws["x1"]) + a * np.sin(draws["x2"]) ** 2
                + b * draws["x3"] ** 4 * np.sin(draws["x1"]))

    frame = sensitivity.grouped_sobol(evaluate, dict.fromkeys(("x1", "x2", "x3"), (-pi, pi)),
                                      {"x1": "g1", "x2": "g2", "x3": "g3"}, 1024, 5)
    by = frame.set_index("group")
    np.testing.assert_allclose(by.loc[["g1", "g2", "g3"], "S1"], [v1 / total, v2 / total, 0.0],
                               atol=0.03)
    np.testing.assert_allclose(by.loc[["g1", "g2", "g3"], "ST"],
                               [(v1 + v13) / total, v2 / total, v13 / total], atol=0.03)
    assert list(frame["group"]) == ["g1", "g2", "g3"] and list(frame["rank"]) == [1, 2, 3]


def test_monte_carlo_reads_stocks_at_the_end_of_each_year(toy):
    """Toy model with no growth, an empty initial stock and no outflow (residence time
    1e12 years): the stock grows by the inflow a year. Its level at the end of year y (the last
    step, y + 1 - dt with dt = 1/8) is inflow x (y - 2010 + 7/8); the annual inflow integral is
    the inflow itself."""
    fixed = {"Growth": 0.0, "Initial stock": 0.0, "Residence time": 1e12}
    out = runner.monte_carlo(toy, fixed, {"Base inflow": (5.0, 15.0)}, {}, 6, 3,
                             annual=["Inflow"], levels=["Stock"], first_year=2012)
    base = out["draws"]["Base inflow"]
    assert out["years"].tolist() == list(range(2012, 2030))
    elapsed = out["years"] - 2010 + 7 / 8
    np.testing.assert_allclose(out["values"]["Stock"], elapsed[:, None] * base[None, :],
                               rtol=1e-9)
    np.testing.assert_allclose(out["values"]["Inflow"],
                               np.broadcast_to(base, out["values"]["Inflow"].shape),
                               rtol=1e-12)


def test_calibrated_ranges_stay_within_the_model_files_bounds(raw_spec):
    """calibrated_spread 2: a fitted value +- 2 standard errors, clipped to the range the model
    file gives the parameter. Quota allowed share 0.9 +- 0.2 in [0.05, 1] -> (0.7, 1.0); Other
    primary supply 300 +- 400 in [150, 700] -> (150, 700); a content factor is never drawn."""
    spec = scenario_spec.validate(raw_spec, SPEC)
    spec = spec.model_copy(update={"monte_carlo": spec.monte_carlo.model_copy(
        update={"calibrated_spread": 2.0})})
    model = runner.load(NICKEL)
    fitted = {"Quota allowed share": 0.9, "Other primary supply": 300.0,
              "Ni content of Indonesian ore": 0.018}
    errors = {"Quota allowed share": 0.1, "Other primary supply": 200.0,
              "Ni content of Indonesian ore": 0.001}
    fixed, ranges, _ = stage.scenario_inputs(spec, spec.scenario("baseline"), model, {},
                                             fitted, errors, {})
    assert ranges["Quota allowed share"] == pytest.approx((0.7, 1.0))
    assert ranges["Other primary supply"] == (150.0, 700.0)
    assert "Ni content of Indonesian ore" not in ranges
    assert fixed["Ni content of Indonesian ore"] == 0.018
    assert "Quota allowed share" not in fixed


def test_calibration_standard_errors_by_hand(toy):
    """m = 4 observed series-years, residuals (1, -1, 1, 1): S = 4. With J = [[1, 0], [0, 2],
    [1, 1], [0, 0]], J'J = [[2, 1], [1, 5]], (J'J)^-1 = [[5, -1], [-1, 2]] / 9 and
    s² = S / (m - p) = 2: SE = (sqrt(10/9), 2/3). With the first parameter at a bound, p = 1:
    s² = 4/3, J'J = 5 for the second, SE = sqrt(4/15) and NaN for the first. A parameter that
    moves no residual (a zero column) has an infinite SE."""
    observed = pd.DataFrame({"series": "in", "year": [2010, 2011, 2012, 2013],
                             "value": [10.0, 11.0, 12.0, 13.0]})
    cal = calibration.Calibration(toy, [calibration.FitSeries("in", "Inflow", None)], observed,
                                  ["Growth", "Residence time"], (2010, 2013))
    assert cal.observed_count == 4
    jac = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [0.0, 0.0]])
    cal.jacobian = lambda x: jac
    residuals = np.array([1.0, -1.0, 1.0, 1.0])
    x = np.array([0.1, 4.0])
    np.testing.assert_allclose(cal.standard_errors(x, residuals, ["", ""]),
                               [np.sqrt(10 / 9), 2 / 3], rtol=1e-12)
    se = cal.standard_errors(x, residuals, ["lower", ""])
    assert math.isnan(se[0]) and se[1] == pytest.approx(np.sqrt(4 / 15), rel=1e-12)
    cal.jacobian = lambda x: np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    se = cal.standard_errors(x, residuals, ["", ""])
    assert se[0] == pytest.approx(np.sqrt(2 / 6), rel=1e-12) and np.isinf(se[1])


@pytest.fixture(scope="module")
def toy_with_copy(tmp_path_factory):
    """The toy model with a second flow equal to the inflow (two series, two variables)."""
    text = TOY.replace("Base inflow=\n", "Inflow copy=\n\tInflow\n\t~\tkt/Year\n\t~\tThe "
                       "inflow again.\n\t|\n\nBase inflow=\n", 1)
    path = tmp_path_factory.mktemp("calibration_copy") / "toy_copy.mdl"
    path.write_text(text, encoding="utf-8")
    return runner.load(path)


def test_fit_statistics_by_window_on_a_constant_run(toy_with_copy):
    """The toy model with no growth and a base inflow of 10 gives exactly 10 kt a year (the
    inflow and its copy). Two series against them, calibration window 2010-2014 and hold-out 2015-2017:

    - 'net' (kt of nickel): 9, 10, 12, 8, 6 | 6, 8, 13. Calibration: errors 1, 0, -2, 2, 4,
      MSE 25/5 = 5, SST 20 -> R² = 1 - 25/20 = -0.25; bias (10 - 9)² = 1 -> U^M = 0.2, the
      model does not vary -> U^S = 4/5, U^C = 0. Hold-out: errors 4, 2, -3, SSE 29, mean 9, SST
      26 -> R² = -3/26, MAPE (4/6 + 2/8 + 3/13)/3, n = 3 (the hold-out years only).
    - 'gross' (gross tonnes, nickel content 0.5 from the model file): 20, 20, 24, 16, 20 ->
      10, 10, 12, 8, 10 kt of nickel: errors 0, 0, -2, 2, 0, RMSE sqrt(8/5)."""
    from types import SimpleNamespace

    series = [SimpleNamespace(name="net", variable="Inflow", content=None, label="net",
                              source="baci_hs92"),
              SimpleNamespace(name="gross", variable="Inflow copy", content="Content",
                              label="gross", source="nickel_chain")]
    cal = SimpleNamespace(series=series, free=["Base inflow"], window=(2010, 2014),
                          holdout=(2015, 2017), mape_floor=1.0, min_material_years=3)
    years = list(range(2010, 2018))
    observed = pd.concat([
        pd.DataFrame({"series": "net", "year": years,
                      "value": [9.0, 10.0, 12.0, 8.0, 6.0, 6.0, 8.0, 13.0]}),
        pd.DataFrame({"series": "gross", "year": years,
                      "value": [20.0, 20.0, 24.0, 16.0, 20.0, 20.0, 20.0, 20.0]})])
    stats, frame = stage.fit_statistics(SimpleNamespace(calibration=cal), toy_with_copy,
                                        observed, {}, {"Growth": 0.0}, {"Base inflow": 10.0})
    np.testing.assert_allclose(frame["simulated"], 10.0, rtol=1e-14)
    rows = stats.set_index(["series", "window"])
    net = rows.loc[("net", "calibration")]
    assert net["n"] == 5 and net["n_material"] == 5
    assert net["r2"] == pytest.approx(-0.25, rel=1e-12)
    assert net["rmse"] == pytest.approx(np.sqrt(5.0), rel=1e-12)
    assert net["mape"] == pytest.approx((1 / 9 + 0 + 2 / 12 + 2 / 8 + 4 / 6) / 5, rel=1e-12)
    assert (net["theil_um"], net["theil_us"], net["theil_uc"]) == pytest.approx((0.2, 0.8, 0.0))
    held = rows.loc[("net", "holdout")]
    assert held["n"] == 3
    assert held["r2"] == pytest.approx(-3 / 26, rel=1e-12)
    assert held["mape"] == pytest.approx((4 / 6 + 2 / 8 + 3 / 13) / 3, rel=1e-12)
    assert held["note"] == ""
    gross = rows.loc[("gross", "calibration")]
    assert gross["rmse"] == pytest.approx(np.sqrt(8 / 5), rel=1e-12)
    assert frame.loc[frame["series"] == "gross", "actual"].tolist()[:5] == \
        [10.0, 10.0, 12.0, 8.0, 10.0]


def test_summary_table_by_hand():
    """Report window 2030-2032 (2029 is outside it). Scenario s1: supply gap medians 0, 4, 5
    (mean 3), 5% quantiles 0, 1, 0 (1/3), 95% 9, 6, 5.5 (6.83); the peak year is the year of
    the largest median, 2032 (5; its 95% quantile 5.5), not the year of the largest 95%
    quantile (2030). Indonesia's share 0.5, 0.6, 0.7 -> 0.6; export values (medians) ore 10,
    20, 30 -> 20, intermediate 1, 2, 3 -> 2, refined 5, 5, 8 -> 6. Scenario s2 has no gap: no
    peak year."""
    from types import SimpleNamespace

    years = [2029, 2030, 2031, 2032]
    series = {
        "China supply gap": ([99.0, 0.0, 4.0, 5.0], [0.0, 0.0, 1.0, 0.0], [120.0, 9.0, 6.0, 5.5]),
        "Indonesia share of China nickel supply": ([0.1, 0.5, 0.6, 0.7], [0.0, 0.4, 0.5, 0.6],
                                                   [0.2, 0.6, 0.7, 0.8]),
        "Indonesian ore export value": ([0.0, 10.0, 20.0, 30.0],) * 3,
        "Indonesian intermediate export value": ([0.0, 1.0, 2.0, 3.0],) * 3,
        "Indonesian refined export value": ([0.0, 5.0, 5.0, 8.0],) * 3}
    rows = []
    for sid, factor in (("s1", 1.0), ("s2", 0.0)):
        for variable, (p50, p05, p95) in series.items():
            scale = factor if variable == "China supply gap" else 1.0
            rows += [{"scenario": sid, "variable": variable, "year": y, "p05": lo * scale,
                      "p50": mid * scale, "p95": hi * scale}
                     for y, lo, mid, hi in zip(years, p05, p50, p95, strict=True)]
    table = stage.summary_table(pd.DataFrame(rows),
                                SimpleNamespace(report_window=(2030, 2032))).set_index(
                                    "scenario")
    s1 = table.loc["s1"]
    assert s1["gap_p50"] == pytest.approx(3.0)
    assert s1["gap_p05"] == pytest.approx(1 / 3)
    assert s1["gap_p95"] == pytest.approx(20.5 / 3)
    assert s1["gap_peak_year"] == 2032
    assert (s1["gap_peak_p50"], s1["gap_peak_p95"]) == (5.0, 5.5)
    assert (s1["idn_share_p50"], s1["idn_share_p05"], s1["idn_share_p95"]) == pytest.approx(
        (0.6, 0.5, 0.7))
    assert (s1["value_ore_p50"], s1["value_intermediate_p50"], s1["value_refined_p50"]) == \
        pytest.approx((20.0, 2.0, 6.0))
    assert table.loc["s2", "gap_p50"] == 0.0
    assert table.loc["s2", "gap_peak_year"] is None or np.isnan(table.loc["s2", "gap_peak_year"])
