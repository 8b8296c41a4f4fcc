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
