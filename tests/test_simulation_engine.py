"""The model files parse (here and in PySD), and the vectorised engine runs them exactly as PySD
does: a toy model with every function of the subset, and the two project models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import config
from analysis.simulation import engine, mdl, runner, sketch

NICKEL = config.SPECS / "sd" / "nickel.mdl"
RARE_EARTHS = config.SPECS / "sd" / "rare_earths.mdl"

TOY = """{UTF-8}
Stock A= INTEG (
	Inflow A - Outflow A,
		10)
	~	kt
	~	A stock.
	|

Inflow A=
	IF THEN ELSE(Time >= 2012 :AND: Time < 2013, 5, 1) * Policy(Time + Lead) + XIDZ(1, 0, 0.5) * ZIDZ(Stock A, 0) * 1
	~	kt/Year
	~		|

Outflow A=
	DELAY3(Inflow A, Delay time)
	~	kt/Year
	~		|

Delayed once=
	DELAY1(Inflow A, 0.5)
	~	kt/Year
	~		|

Delayed from zero=
	DELAY3I(Inflow A, 2, 0)
	~	kt/Year
	~		|

Fixed delay=
	DELAY FIXED(Inflow A, 1, 3)
	~	kt/Year
	~		|

Smoothed A=
	SMOOTH(Stock A, 2)
	~	kt
	~		|

Smoothed from one=
	SMOOTHI(Stock A, 1.5, 1.0)
	~	kt
	~		|

Smoothed thrice=
	SMOOTH3(Stock A, 3)
	~	kt
	~		|

Lead=
	0.5
	~	Year [0,3]
	~	Lead time.
	|

Delay time=
	1.5 * MAX(1, MIN(3, Stock A / Stock scale))
	~	Year
	~		|

Stock scale=
	10
	~	kt
	~		|

Policy(
	[(2000,0)-(2040,2)],(2000,1),(2040,1))
	~	Dmnl
	~		|

Mixed=
	EXP(-Stock A / Stock scale) + LN(1 + Stock A / Stock scale) + SQRT(ABS(Stock A / Stock scale - 1)) + (Stock A / Stock scale) ^ 0.5 - (Stock A / Stock scale - 2) ^ 2
	~	Dmnl
	~		|

********************************************************
	.Control
********************************************************~
		Simulation Control Parameters
	|

FINAL TIME  = 2020
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

TIME STEP  = 0.0625
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
    path = tmp_path_factory.mktemp("toy") / "toy.mdl"
    path.write_text(TOY, encoding="utf-8")
    return path


def _compare(fast: dict, frame: pd.DataFrame, names: list[str], tolerance: float) -> float:
    worst = 0.0
    for name in names:
        a = fast[mdl.normalise(name)][:, 0]
        b = frame[name].to_numpy(dtype=float)
        assert a.shape == b.shape, name
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0))))
    assert worst <= tolerance
    return worst


def test_expression_precedence_matches_vensim():
    tree = mdl.parse_expression("a + b * c ^ 2 ^ 0.5 - -d")
    assert engine.emit(tree) == "((x_a + (x_b * (x_c ** (2.0 ** 0.5)))) - (-x_d))"
    # unary minus binds looser than ^ : -x^2 = -(x^2)
    assert engine.emit(mdl.parse_expression("-x ^ 2")) == "(-(x_x ** 2.0))"
    tree = mdl.parse_expression(":NOT: a > b :AND: c = d :OR: e <> f")
    assert engine.emit(tree) == ("np.logical_or(np.logical_and(np.logical_not((x_a > x_b)), "
                                 "(x_c == x_d)), (x_e != x_f))")
    assert mdl.variables_in(mdl.parse_expression('MIN("Stock  A", stock_a) + Time')) == \
        {"stock a", "time"}


def test_functions_outside_the_subset_and_misplaced_statefuls_stop(tmp_path):
    with pytest.raises(mdl.ModelError, match="function 'RANDOM UNIFORM' is outside"):
        mdl.parse_expression("RANDOM UNIFORM(0, 1, 2)", "x")
    text = TOY.replace("	Inflow A - Outflow A,", "	Inflow A - SMOOTH(Outflow A, 1),")
    (tmp_path / "bad.mdl").write_text(text)
    with pytest.raises(mdl.ModelError, match=r"bad\.mdl: Stock A: SMOOTH must be the whole"):
        mdl.parse_model(tmp_path / "bad.mdl")
    (tmp_path / "int.mdl").write_text(TOY.replace("SMOOTHI(Stock A, 1.5, 1.0)",
                                                  "SMOOTHI(Stock A, 1.5, 1)"))
    with pytest.raises(mdl.ModelError, match=r"Smoothed from one: write the initial value of "
                       r"SMOOTHI as a decimal"):
        mdl.parse_model(tmp_path / "int.mdl")
    text = TOY.replace("1.5 * MAX(1, MIN(3, Stock A / Stock scale))", "Mixed * Missing one")
    (tmp_path / "undefined.mdl").write_text(text)
    with pytest.raises(mdl.ModelError, match=r"'Delay time' reads undefined \['missing one'\]"):
        mdl.parse_model(tmp_path / "undefined.mdl")


def test_algebraic_loop_is_named(tmp_path):
    text = TOY.replace("1.5 * MAX(1, MIN(3, Stock A / Stock scale))", "Mixed * 1 + Loop b") \
        .replace("Stock scale=\n\t10", "Loop b=\n\tDelay time * 1\n\t~\tYear\n\t~\t\t|\n\n"
                 "Stock scale=\n\t10")
    (tmp_path / "loop.mdl").write_text(text)
    with pytest.raises(mdl.ModelError, match="algebraic loop through"):
        engine.compile_model(mdl.parse_model(tmp_path / "loop.mdl"))


def test_engine_equals_pysd_on_every_function(toy):
    model = runner.load(toy)
    names = [e.name for e in model.model.equations.values()
             if e.kind in ("auxiliary", "stateful")]
    series = (np.array([2000, 2015 - 1e-6, 2015, 2040]), np.array([1, 1, 0.5, 0.5]))
    params = {"Lead": 0.75}
    frame = runner.run_pysd(toy, params, {"Policy": series})
    fast = model.run(params, {"Policy": series}, record=names)
    _compare(fast, frame, names, 1e-12)
    # several parameter sets at once: each column equals its own single run
    many = model.run({"Lead": np.array([0.75, 0.25, 2.0])}, {"Policy": series}, record=names)
    single = model.run({"Lead": 2.0}, {"Policy": series}, record=names)
    for name in names:
        key = mdl.normalise(name)
        np.testing.assert_array_equal(many[key][:, 0], fast[key][:, 0])
        np.testing.assert_array_equal(many[key][:, 2], single[key][:, 0])


def test_engine_annual_integrals_are_the_euler_sums(toy):
    model = runner.load(toy)
    out = model.run({}, record=["Inflow A"], annual=["Inflow A"])
    per_year = 16
    values = out["inflow a"][:-1, 0].reshape(-1, per_year)
    np.testing.assert_allclose(out["annual:inflow a"][:, 0], values.sum(axis=1) * 0.0625,
                               rtol=1e-14)
    assert out["years"].tolist() == list(range(2010, 2020))
    # a year with the IF THEN ELSE pulse (2012) integrates to 5 per year
    assert out["annual:inflow a"][2, 0] == pytest.approx(5.0)


@pytest.mark.parametrize("path", [NICKEL, RARE_EARTHS], ids=["nickel", "rare_earths"])
def test_project_models_parse_in_pysd_and_the_engine_equals_pysd(path):
    """PySD 3.14 reads the file (equations and sketch); the engine's run equals PySD's to
    1e-9 on non-default parameters and policy schedules, every stock and flow, every step."""
    model = runner.load(path)
    names = [e.name for e in model.model.equations.values()
             if e.kind in ("auxiliary", "stateful")]
    ranges = model.ranges()
    rng = np.random.default_rng(7)
    params = {}
    for name in list(ranges)[::3]:  # a third of the ranged constants, drawn inside the ranges
        lo, hi = ranges[name]
        if np.isfinite(lo) and np.isfinite(hi) and hi < 2000:
            params[name] = float(rng.uniform(lo, hi))
    schedules = [e.name for e in model.model.of_kind("lookup") if "schedule" in e.key]
    lookups = {schedules[0]: runner.step_schedule([(2014.03, 1.0), (2017.5, 0.4)])}
    final = 2019.0
    frame = runner.run_pysd(path, params, lookups, final_time=final,
                            time_step=model.model.control["time step"])
    fast = model.run(params, lookups, record=names, final_time=final)
    worst = _compare(fast, frame, names, 1e-9)
    assert worst < 1e-9


@pytest.mark.parametrize("path", [NICKEL, RARE_EARTHS], ids=["nickel", "rare_earths"])
def test_units_consistent_and_every_parameter_documented(path):
    model = mdl.parse_model(path)
    assert mdl.check_units(model) == []
    for eq in model.of_kind("constant", "lookup"):
        assert eq.units, eq.name
        assert len(eq.comment) > 20, f"{eq.name}: a parameter needs its source or range"


def test_unit_check_catches_a_wrong_unit(tmp_path):
    text = NICKEL.read_text(encoding="utf-8").replace(
        "Battery end of life=\n\tNickel in use in batteries / Battery lifetime\n\t~\tkt/Year",
        "Battery end of life=\n\tNickel in use in batteries / Battery lifetime\n\t~\tkt")
    (tmp_path / "wrong.mdl").write_text(text, encoding="utf-8")
    problems = mdl.check_units(mdl.parse_model(tmp_path / "wrong.mdl"))
    assert any(p.startswith("wrong.mdl: Battery end of life: right-hand side has kt/Year, "
                            "declared kt") for p in problems)
    # the flow now has stock units, so the stocks it feeds are inconsistent too
    assert "wrong.mdl: Nickel in use in batteries: - of kt/Year and kt" in problems
    assert "wrong.mdl: Scrap collected: + of kt and kt/Year" in problems


def test_units_parse():
    assert mdl.parse_units("kt/(Year*Year)") == {"kt": 1, "Year": -2}
    assert mdl.parse_units("Dmnl") == {}
    assert mdl.parse_units("1/Year") == {"Year": -1}
    assert mdl.format_units(mdl.parse_units("MUSD/Year")) == "MUSD/Year"


@pytest.mark.parametrize("path", [NICKEL, RARE_EARTHS], ids=["nickel", "rare_earths"])
def test_sketch_is_complete_and_well_formed(path):
    model = mdl.parse_model(path)
    assert sketch.check_sketch(model) == []
    # the file holds the sketch generated from its equations
    assert mdl.SKETCH_MARKER + model.sketch == sketch.sketch_section(model)


def test_sketch_check_finds_a_missing_object_and_a_ghost(tmp_path):
    text = NICKEL.read_text(encoding="utf-8")
    head, tail = text.split(sketch.MARKER.rstrip("\n"), 1)
    lines = tail.splitlines()
    removed = next(i for i, line in enumerate(lines) if line.startswith("10,")
                   and ",Nickel price," in line)
    lines[removed] = lines[removed].replace(",Nickel price,", ",Nickel prise,")
    (tmp_path / "broken.mdl").write_text(head + sketch.MARKER.rstrip("\n")
                                         + "\n".join(lines), encoding="utf-8")
    problems = sketch.check_sketch(mdl.parse_model(tmp_path / "broken.mdl"))
    assert "the sketch draws 'nickel prise', which the equations do not define" in problems
    assert "'Nickel price' is drawn 0 times" in problems
