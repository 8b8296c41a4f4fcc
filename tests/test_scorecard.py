"""Scorecard maths (analysis.measures.scorecard) against hand computations.

The hand example is non-square: three countries (A, B, C) with a partner D outside the scored
set, two minerals (m1 with an ore code 000001 and a processed code 000002; m2 with a processed
code 000003 only) and two years (2019, 2020). BACI-like flows (value in thousand USD, quantity
in tonnes; one flow without a reported quantity):

    year  exporter importer hs6     value quantity
    2019  D        A        000001    8     80
    2019  A        B        000002   12     10
    2019  D        B        000003    6      3
    2020  D        A        000001   10    100
    2020  B        A        000001    5     50
    2020  A        B        000002   30     20
    2020  A        D        000001    2     10
    2020  C        A        000003    8      4
    2020  D        B        000003   12      6
    2020  B        D        000002   10      5
    2020  D        C        000002   20    (none)

Production (tonnes): A m1 2019 50, 2020 60; C m2 2019 8, 2020 10; D m1 2019 100, 2020 100.
Routes: into A, D is seaborne through a chokepoint, C seaborne without one, B overland; into B,
A is overland and D seaborne through a chokepoint; into C, D is seaborne without one.
Every expected number below is worked out by hand in its test's docstring.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.measures import scorecard as sc
from analysis.measures import weighting

COUNTRIES = ["A", "B", "C"]
MINERALS = {"m1": sc.MineralChain("m1", ore=("000001",), processed=("000002",)),
            "m2": sc.MineralChain("m2", processed=("000003",))}
NAN = float("nan")
TRADE = pd.DataFrame(
    [(2019, "D", "A", "000001", 8.0, 80.0), (2019, "A", "B", "000002", 12.0, 10.0),
     (2019, "D", "B", "000003", 6.0, 3.0),
     (2020, "D", "A", "000001", 10.0, 100.0), (2020, "B", "A", "000001", 5.0, 50.0),
     (2020, "A", "B", "000002", 30.0, 20.0), (2020, "A", "D", "000001", 2.0, 10.0),
     (2020, "C", "A", "000003", 8.0, 4.0), (2020, "D", "B", "000003", 12.0, 6.0),
     (2020, "B", "D", "000002", 10.0, 5.0), (2020, "D", "C", "000002", 20.0, NAN)],
    columns=["year", "exporter", "importer", "hs6", "value", "quantity"])
PRODUCTION = pd.DataFrame(
    [("A", "m1", 2019, 50.0), ("A", "m1", 2020, 60.0), ("C", "m2", 2019, 8.0),
     ("C", "m2", 2020, 10.0), ("D", "m1", 2019, 100.0), ("D", "m1", 2020, 100.0)],
    columns=["country", "mineral", "year", "tonnes"])
ROUTES = pd.DataFrame(
    [("A", "D", True, True), ("A", "C", True, False), ("A", "B", False, False),
     ("B", "A", False, False), ("B", "D", True, True), ("B", "C", True, False),
     ("C", "D", True, False), ("C", "A", True, False), ("C", "B", True, False)],
    columns=["importer", "partner", "seaborne", "chokepoint"])


def cell(frame: pd.DataFrame, country: str, mineral: str, year: int) -> float:
    row = frame[(frame["country"] == country) & (frame["mineral"] == mineral)
                & (frame["year"] == year)]
    assert len(row) == 1
    return float(row["value"].iloc[0])


def reason(frame: pd.DataFrame, country: str, mineral: str, year: int) -> str:
    row = frame[(frame["country"] == country) & (frame["mineral"] == mineral)
                & (frame["year"] == year)]
    return str(row["reason"].iloc[0])


# =========================================================================== indicators
def test_net_import_reliance_by_hand():
    """A, m1, 2020: M = 100 + 50 = 150, X = 20 + 10 = 30, P = 60 -> 120 / 180 = 2/3.
    B, m1, 2020: M = 20, X = 50 + 5 = 55 -> net exporter -> 0. C, m1, 2020: the only flow has
    no quantity, C produces none -> missing. A, m1, 2019: M = 80, X = 10, P = 50 -> 70/120.
    B, m2, 2020: M = 6, X = 0, P = 0 -> 1. A, m2, 2020: M = 4 -> 1."""
    out = sc.net_import_reliance(TRADE, PRODUCTION, MINERALS, COUNTRIES, [2019, 2020])
    assert len(out) == 3 * 2 * 2
    assert cell(out, "A", "m1", 2020) == pytest.approx(2 / 3, abs=1e-12)
    assert cell(out, "B", "m1", 2020) == 0.0
    assert np.isnan(cell(out, "C", "m1", 2020))
    assert reason(out, "C", "m1", 2020) == "neither trades nor produces the mineral"
    assert cell(out, "A", "m1", 2019) == pytest.approx(70 / 120, abs=1e-12)
    assert cell(out, "B", "m2", 2020) == pytest.approx(1.0)
    assert cell(out, "A", "m2", 2020) == pytest.approx(1.0)
    # C, m2, 2020: M = 0, X = 4, P = 10 -> net exporter -> 0
    assert cell(out, "C", "m2", 2020) == 0.0


def test_net_import_reliance_needs_a_common_basis_and_production_years():
    out = sc.net_import_reliance(TRADE, PRODUCTION, MINERALS, COUNTRIES, [2018, 2020],
                                 comparable={"m1": True, "m2": False})
    assert np.isnan(cell(out, "A", "m2", 2020))
    assert reason(out, "A", "m2", 2020).startswith("traded tonnes are not on the production")
    assert np.isnan(cell(out, "A", "m1", 2018))
    assert reason(out, "A", "m1", 2018) == "no World Mining Data production for the year"
    assert cell(out, "A", "m1", 2020) == pytest.approx(2 / 3, abs=1e-12)


def test_trade_basis_ratio_by_hand():
    """m1: world exports with a quantity 2019 = 80 + 10 = 90, world production 150 -> 0.6;
    2020: 100 + 50 + 20 + 10 + 5 = 185 over 160 -> 1.15625; median 0.878125.
    m2: 2019 3 / 8, 2020 (4 + 6) / 10 = 1 -> median 0.6875."""
    out = sc.trade_basis_ratio(TRADE, PRODUCTION, MINERALS).set_index("mineral")
    assert out.loc["m1", "ratio_median"] == pytest.approx((0.6 + 1.15625) / 2)
    assert out.loc["m2", "ratio_median"] == pytest.approx((3 / 8 + 1.0) / 2)
    assert out.loc["m1", "years"] == 2


def test_top_supplier_share_by_hand():
    """A, m1, 2020: D 100, B 50 -> 2/3. B, m1, 2020: A 20 only -> 1. C, m1, 2020: the flow has
    no quantity -> missing. A, m2, 2020: C 4 -> 1. C in 2019 imports nothing -> missing."""
    out = sc.top_supplier_share(TRADE, MINERALS, COUNTRIES, [2019, 2020])
    assert cell(out, "A", "m1", 2020) == pytest.approx(2 / 3)
    assert cell(out, "B", "m1", 2020) == pytest.approx(1.0)
    assert np.isnan(cell(out, "C", "m1", 2020))
    assert cell(out, "A", "m2", 2020) == pytest.approx(1.0)
    assert np.isnan(cell(out, "C", "m2", 2019))


def test_processed_export_share_by_hand():
    """World exports of 000002 in 2020 (value, all exporters, the flow without quantity
    included): 30 + 10 + 20 = 60. A 30/60, B 10/60, C 0. m2 (000003) 2020: C 8, D 12 -> C
    8/20, A and B 0. 2019 m1: only A's 12 -> A 1."""
    out = sc.processed_export_share(TRADE, MINERALS, COUNTRIES, [2019, 2020])
    assert cell(out, "A", "m1", 2020) == pytest.approx(0.5)
    assert cell(out, "B", "m1", 2020) == pytest.approx(1 / 6)
    assert cell(out, "C", "m1", 2020) == 0.0
    assert cell(out, "C", "m2", 2020) == pytest.approx(0.4)
    assert cell(out, "A", "m1", 2019) == pytest.approx(1.0)
    no_codes = sc.processed_export_share(TRADE, {"m3": sc.MineralChain("m3", ore=("000001",))},
                                         COUNTRIES, [2020])
    assert no_codes["value"].isna().all()
    assert set(no_codes["reason"]) == {"no processed-stage HS code for the mineral in the data"}


def test_processing_ratio_by_hand():
    """m1 2020: A processed 30, ore 2 -> 30/32; B processed 10, ore 5 -> 10/15; C exports
    neither -> missing. m2 has no ore code -> missing for everyone."""
    out = sc.processing_ratio(TRADE, MINERALS, COUNTRIES, [2020])
    assert cell(out, "A", "m1", 2020) == pytest.approx(30 / 32)
    assert cell(out, "B", "m1", 2020) == pytest.approx(10 / 15)
    assert np.isnan(cell(out, "C", "m1", 2020))
    assert reason(out, "C", "m1", 2020) == "exports neither stage"
    assert out.loc[out["mineral"] == "m2", "value"].isna().all()
    # R / (1 + R) with R = processed / ore: the design's ratio, bounded
    ratio = 30 / 2
    assert cell(out, "A", "m1", 2020) == pytest.approx(ratio / (1 + ratio))


def test_chokepoint_share_by_hand():
    """A, m1, 2020: D 100 (sea, chokepoint) and B 50 (land, outside the seaborne imports)
    -> 100/100 = 1. A, m2, 2020: C 4 by sea without a chokepoint -> 0. B, m1, 2020: only A by
    land -> no seaborne imports -> missing. B, m2, 2020: D 6 through a chokepoint -> 1. A, m1,
    2019: D 80 -> 1."""
    out = sc.chokepoint_share(TRADE, ROUTES, MINERALS, COUNTRIES, [2019, 2020])
    assert cell(out, "A", "m1", 2020) == pytest.approx(1.0)
    assert cell(out, "A", "m2", 2020) == 0.0
    assert np.isnan(cell(out, "B", "m1", 2020))
    assert cell(out, "B", "m2", 2020) == pytest.approx(1.0)
    mixed = ROUTES.copy()
    mixed.loc[(mixed["importer"] == "A") & (mixed["partner"] == "B"), "seaborne"] = True
    out = sc.chokepoint_share(TRADE, mixed, MINERALS, COUNTRIES, [2020])
    assert cell(out, "A", "m1", 2020) == pytest.approx(100 / 150)   # B now seaborne, open sea


def test_chokepoint_share_needs_a_route_for_every_partner():
    with pytest.raises(ValueError, match="no route for imports of A from D"):
        sc.chokepoint_share(TRADE, ROUTES[ROUTES["partner"] != "D"], MINERALS, COUNTRIES,
                            [2020])


def test_consumption_growth_by_hand():
    """h = 1. A, m1: apparent consumption 2019 = 50 + 80 - 10 = 120, 2020 = 60 + 150 - 30 =
    180 -> 180/120 - 1 = 0.5. C, m2: 2019 = 8 + 0 - 0 = 8, 2020 = 10 + 0 - 4 = 6 -> 6/8 - 1 = -0.25.
    B, m1: 2019 = 0 + 10 = 10, 2020 = 0 + 20 - 55 < 0 -> missing. 2019 needs 2018 -> missing.
    h = 2 from 2020 needs 2018, outside the production years -> missing."""
    out = sc.consumption_growth(TRADE, PRODUCTION, MINERALS, COUNTRIES, [2019, 2020], 1)
    assert cell(out, "A", "m1", 2020) == pytest.approx(0.5)
    assert cell(out, "C", "m2", 2020) == pytest.approx(-0.25)
    assert np.isnan(cell(out, "B", "m1", 2020))
    assert reason(out, "B", "m1", 2020) == "apparent consumption <= 0 in year t or t-h"
    assert np.isnan(cell(out, "A", "m1", 2019))
    two = sc.consumption_growth(TRADE, PRODUCTION, MINERALS, COUNTRIES, [2020], 2)
    assert two["value"].isna().all()


def test_world_trade_growth_by_hand():
    """m1 world tonnes with a quantity: 2019 80 + 10 = 90, 2020 100 + 50 + 20 + 10 + 5 = 185
    -> 185/90 - 1 (the same for every country). m2: 3 -> 10 -> 10/3 - 1. 2019 has no 2018."""
    out = sc.world_trade_growth(TRADE, MINERALS, COUNTRIES, [2019, 2020], 1)
    for country in COUNTRIES:
        assert cell(out, country, "m1", 2020) == pytest.approx(185 / 90 - 1)
        assert cell(out, country, "m2", 2020) == pytest.approx(10 / 3 - 1)
        assert np.isnan(cell(out, country, "m1", 2019))


def test_military_relevance_by_hand():
    """Lists L1 and L2 scored: m1 on L1 only -> 1/2; m2 on both -> 1. L3 (not scored) is
    ignored; an unverified entry of a scored list leaves the mineral missing."""
    listed = pd.DataFrame([("m1", "L1", 1.0), ("m1", "L2", 0.0), ("m2", "L1", 1.0),
                           ("m2", "L2", 1.0), ("m1", "L3", NAN), ("m2", "L3", 1.0)],
                          columns=["mineral", "list", "listed"])
    out = sc.military_relevance(listed, ["L1", "L2"], COUNTRIES, ["m1", "m2"], [2020])
    assert cell(out, "B", "m1", 2020) == pytest.approx(0.5)
    assert cell(out, "C", "m2", 2020) == pytest.approx(1.0)
    out = sc.military_relevance(listed, ["L1", "L3"], COUNTRIES, ["m1", "m2"], [2020])
    assert np.isnan(cell(out, "A", "m1", 2020))
    assert cell(out, "A", "m2", 2020) == pytest.approx(1.0)


def test_production_trend_by_hand():
    """Window 2 (2019, 2020): A, m1: 50 -> 60, slope 10, mean 55 -> 10/55. C, m2: 8 -> 10 ->
    2/9. B produces nothing -> missing. Window 3 needs 2018 -> missing. Window of three with a
    fall: 30, 20, 25 -> slope -2.5, mean 25 -> -0.1."""
    out = sc.production_trend(PRODUCTION, COUNTRIES, ["m1", "m2"], [2020], window=2)
    assert cell(out, "A", "m1", 2020) == pytest.approx(10 / 55)
    assert cell(out, "C", "m2", 2020) == pytest.approx(2 / 9)
    assert np.isnan(cell(out, "B", "m1", 2020))
    assert reason(out, "B", "m1", 2020) == "no domestic production in the window"
    assert sc.production_trend(PRODUCTION, COUNTRIES, ["m1"], [2020], 3)["value"].isna().all()
    falling = pd.DataFrame([("A", "m1", 2018, 30.0), ("A", "m1", 2019, 20.0),
                            ("A", "m1", 2020, 25.0)], columns=PRODUCTION.columns)
    out = sc.production_trend(falling, ["A"], ["m1"], [2020], window=3)
    assert cell(out, "A", "m1", 2020) == pytest.approx(-0.1)


def test_geopolrisk_import_risk_is_passed_through():
    table = pd.DataFrame([("A", "m1", 2020, 0.25), ("B", "m1", 2020, 0.0)],
                         columns=["country", "mineral", "year", "import_risk"])
    out = sc.geopolrisk_import_risk(table, COUNTRIES, ["m1"], [2020])
    assert cell(out, "A", "m1", 2020) == 0.25
    assert cell(out, "B", "m1", 2020) == 0.0
    assert np.isnan(cell(out, "C", "m1", 2020))


def test_defined_indicators():
    defined = sc.defined_indicators(MINERALS, {"m1": True, "m2": False}, sc.INDICATORS)
    assert defined[("m1", "processing_ratio")] and not defined[("m2", "processing_ratio")]
    assert defined[("m2", "processed_export_share")]
    assert not defined[("m2", "net_import_reliance")]
    assert not defined[("m2", "consumption_growth")]
    assert defined[("m2", "top_supplier_share")]


# =========================================================================== scores
def long_cells(values: dict[str, list[float]], keys: list[tuple[str, str, int]]) -> pd.DataFrame:
    rows = [{"country": c, "mineral": m, "year": y, "indicator": name, "value": v,
             "reason": "" if not np.isnan(v) else "test"}
            for name, column in values.items() for (c, m, y), v in zip(keys, column,
                                                                        strict=True)]
    return pd.DataFrame(rows)


KEYS4 = [("A", "m1", 2020), ("B", "m1", 2020), ("C", "m1", 2020), ("A", "m2", 2020)]


def test_normalise_by_hand_with_direction():
    """x (+1): [2, 4, 6, NaN] -> [0, 0.5, 1, NaN]; y (-1): [10, 30, 20, 0] -> (30 - y)/30 =
    [2/3, 0, 1/3, 1]."""
    cells = long_cells({"x": [2.0, 4.0, 6.0, NAN], "y": [10.0, 30.0, 20.0, 0.0]}, KEYS4)
    out = sc.normalise(cells, {"x": 1, "y": -1})
    x = out[out["indicator"] == "x"]["score"].to_numpy()
    y = out[out["indicator"] == "y"]["score"].to_numpy()
    np.testing.assert_allclose(x[:3], [0.0, 0.5, 1.0])
    assert np.isnan(x[3])
    np.testing.assert_allclose(y, [2 / 3, 0.0, 1 / 3, 1.0])
    with pytest.raises(ValueError, match="has no direction"):
        sc.normalise(cells, {"x": 1})
    constant = long_cells({"z": [1.0, 1.0, 1.0, 1.0]}, KEYS4)
    with pytest.raises(ValueError, match="constant"):
        sc.normalise(constant, {"z": 1})


# Every indicator of the spec and the direction it must have: +1 when a higher value means a
# less secure supply chain. Written out here, independently of specs/scorecard.yaml.
EXPECTED_DIRECTIONS = {
    "net_import_reliance": 1,      # more of consumption imported
    "top_supplier_share": 1,       # imports concentrated on one supplier
    "processed_export_share": -1,  # a larger share of world refined exports = more control
    "processing_ratio": -1,        # exports more refined than raw = more processing capacity
    "geopolrisk_import_risk": 1,   # supply from politically unstable suppliers
    "chokepoint_share": 1,         # seaborne imports through chokepoints
    "consumption_growth": 1,       # faster-growing own demand
    "world_trade_growth": 1,       # faster-growing world demand for the chain
    "military_relevance": 1,       # named on more defence-critical lists
    "production_trend": -1,        # rising own output = a sustained resource base
}


def test_the_direction_of_every_indicator():
    from analysis.stages.scorecard import load_spec

    spec = load_spec()
    assert spec.directions == EXPECTED_DIRECTIONS
    assert set(sc.INDICATORS) == set(EXPECTED_DIRECTIONS)
    # and the scores follow it: of two cells, the one with the larger value scores higher
    # exactly when the direction is +1
    keys = [("A", "m1", 2020), ("B", "m1", 2020)]
    for name, direction in spec.directions.items():
        out = sc.normalise(long_cells({name: [0.1, 0.9]}, keys), spec.directions)
        low, high = out["score"].to_numpy()
        assert (high > low) == (direction == 1), name
        assert {low, high} == {0.0, 1.0}, name


def test_aggregate_equal_by_hand_and_missing_stays_missing():
    """Scores (after normalise): d1 = {x, y}, d2 = {z}.
    x: [0, 0.5, 1, NaN]; y (-1): [2/3, 0, 1/3, 1]; z: [0, 1, 0.5, 0.25] (values 0, 4, 2, 1).
    d1 = [1/3, 1/4, 2/3, NaN] (A, m2 lacks x: missing, not the mean of y alone);
    d2 = [0, 1, 1/2, 1/4]; overall = [1/6, 5/8, 7/12, NaN]."""
    cells = long_cells({"x": [2.0, 4.0, 6.0, NAN], "y": [10.0, 30.0, 20.0, 0.0],
                        "z": [0.0, 4.0, 2.0, 1.0]}, KEYS4)
    directions = {"x": 1, "y": -1, "z": 1}
    scored = sc.normalise(cells, directions)
    scores, weights = sc.aggregate(scored, {"d1": ["x", "y"], "d2": ["z"]}, directions, "equal")
    table = scores.pivot_table(index=["country", "mineral"], columns="dimension",
                               values="score", dropna=False)
    np.testing.assert_allclose(table.loc[("A", "m1")][["d1", "d2", "overall"]],
                               [1 / 3, 0.0, 1 / 6])
    np.testing.assert_allclose(table.loc[("B", "m1")][["d1", "d2", "overall"]],
                               [1 / 4, 1.0, 5 / 8])
    np.testing.assert_allclose(table.loc[("C", "m1")][["d1", "d2", "overall"]],
                               [2 / 3, 0.5, 7 / 12])
    assert np.isnan(table.loc[("A", "m2"), "d1"]) and np.isnan(table.loc[("A", "m2"), "overall"])
    assert table.loc[("A", "m2"), "d2"] == pytest.approx(0.25)
    within = weights[weights["level"] == "within"].set_index("indicator")["weight"]
    assert within["x"] == within["y"] == 0.5


def test_aggregate_leaves_out_structurally_undefined_indicators():
    """x undefined for m2: d1 of (A, m2) is y's score alone (1), for every method."""
    cells = long_cells({"x": [2.0, 4.0, 6.0, NAN], "y": [10.0, 30.0, 20.0, 0.0],
                        "z": [0.0, 4.0, 2.0, 1.0]}, KEYS4)
    directions = {"x": 1, "y": -1, "z": 1}
    scored = sc.normalise(cells, directions)
    defined = {("m1", "x"): True, ("m2", "x"): False}
    scores, weights = sc.aggregate(scored, {"d1": ["x", "y"], "d2": ["z"]}, directions,
                                   "equal", defined=defined)
    a_m2 = scores[(scores["country"] == "A") & (scores["mineral"] == "m2")].set_index(
        "dimension")["score"]
    assert a_m2["d1"] == pytest.approx(1.0)
    assert a_m2["overall"] == pytest.approx((1.0 + 0.25) / 2)
    assert set(weights.loc[weights["indicator"] == "y", "minerals"]) == {"m1", "m2"}


def test_aggregate_variants_use_the_weighting_module():
    """Entropy and TOPSIS within a dimension equal analysis.measures.weighting on the complete rows
    of the raw values (its own normalisation and epsilon); across dimensions they weight the
    dimension scores the same way."""
    keys = [("A", "m1", 2020), ("B", "m1", 2020), ("C", "m1", 2020), ("A", "m2", 2020),
            ("B", "m2", 2020)]
    values = {"x": [2.0, 4.0, 6.0, 3.0, 1.0], "y": [10.0, 30.0, 20.0, 0.0, 25.0],
              "z": [0.0, 4.0, 2.0, 1.0, 3.0]}
    directions = {"x": 1, "y": -1, "z": 1}
    scored = sc.normalise(long_cells(values, keys), directions)
    frame = pd.DataFrame(values, index=pd.MultiIndex.from_tuples(
        keys, names=["country", "mineral", "year"]))
    for method in ("entropy", "entropy_topsis"):
        scores, _ = sc.aggregate(scored, {"d1": ["x", "y"], "d2": ["z"]}, directions, method,
                                 1e-4)
        wide = scores.pivot_table(index=["country", "mineral", "year"], columns="dimension",
                                  values="score")
        d1 = weighting.composite_index(frame[["x", "y"]], directions, method, 1e-4).scores
        d2 = weighting.composite_index(frame[["z"]], directions, method, 1e-4).scores
        np.testing.assert_allclose(wide["d1"].reindex(d1.index), d1, rtol=1e-12)
        np.testing.assert_allclose(wide["d2"].reindex(d2.index), d2, rtol=1e-12)
        both = pd.DataFrame({"d1": d1, "d2": d2})
        total = weighting.composite_index(both, {"d1": 1, "d2": 1}, method, 1e-4).scores
        np.testing.assert_allclose(wide["overall"].reindex(total.index), total, rtol=1e-12)


# =========================================================================== rank stability
def test_rank_stability_by_hand():
    """Five cells. equal = [1, 2, 3, 4, 5]; entropy = [1, 3, 2, 4, 5]: of the 10 pairs only
    (2, 3) is discordant -> tau = (9 - 1)/10 = 0.8. topsis = [5, 4, 3, 2, 1] -> -1 against
    equal and (1 - 9)/10 = -0.8 against entropy. With ties, a = [1, 2, 2, 3], b = [1, 2, 3,
    3]: C = 4, D = 0, pairs tied in a only 1, in b only 1, in both 0: tau-b = 4 / sqrt(5 * 5)
    = 0.8."""
    keys = [("A", "m1"), ("B", "m1"), ("C", "m1"), ("A", "m2"), ("B", "m2")]
    methods = {"equal": [1, 2, 3, 4, 5], "entropy": [1, 3, 2, 4, 5],
               "entropy_topsis": [5, 4, 3, 2, 1]}
    rows = [{"country": c, "mineral": m, "year": 2020, "dimension": "overall", "method": name,
             "score": float(v)} for name, column in methods.items()
            for (c, m), v in zip(keys, column, strict=True)]
    out = sc.rank_stability(pd.DataFrame(rows), list(methods)).set_index(
        ["method_a", "method_b"])["tau"]
    assert out[("equal", "entropy")] == pytest.approx(0.8)
    assert out[("equal", "entropy_topsis")] == pytest.approx(-1.0)
    assert out[("entropy", "entropy_topsis")] == pytest.approx(-0.8)
    tied = {"a": [1, 2, 2, 3], "b": [1, 2, 3, 3]}
    rows = [{"country": c, "mineral": m, "year": 2020, "dimension": "d", "method": name,
             "score": float(v)} for name, column in tied.items()
            for (c, m), v in zip(keys[:4], column, strict=True)]
    out = sc.rank_stability(pd.DataFrame(rows), ["a", "b"])
    assert out["tau"].iloc[0] == pytest.approx(0.8)
    assert out["n"].iloc[0] == 4


# =========================================================================== early warning
def test_in_top_share_by_hand():
    """Reference [0.1, 0.2, ..., 1.0] (n = 10): top quintile = fewer than 2 strictly higher:
    0.9 and 1.0 are in, 0.8 is not. Ties: [1, 1, 1, 0.5, 0.2] -> the three 1s are in (0
    higher), 0.5 is not (3 higher >= 1)."""
    reference = np.arange(1, 11) / 10
    np.testing.assert_array_equal(sc.in_top_share(reference, reference),
                                  [False] * 8 + [True, True])
    tied = np.array([1.0, 1.0, 1.0, 0.5, 0.2])
    np.testing.assert_array_equal(sc.in_top_share(tied, tied), [True, True, True, False, False])
    assert not sc.in_top_share(np.array([NAN]), reference)[0]


def test_early_warning_by_hand():
    """Ten cells x two years, one dimension, pooled threshold over the 20 scores
    (0.05, 0.1, ..., 1.0 shuffled into the two years). Cell j scores (j + 1)/20 in 2019 and
    (j + 11)/20 in 2020, so the pooled top quintile is the scores > 0.8 (fewer than 4 higher):
    0.85, 0.9, 0.95, 1.0, all in 2020 (cells 6-9); none of them was in it in 2019 -> 4 flags,
    each a rise of 0.5."""
    rows = []
    for j in range(10):
        rows.append((f"c{j}", "m", 2019, "d", (j + 1) / 20))
        rows.append((f"c{j}", "m", 2020, "d", (j + 11) / 20))
    frame = pd.DataFrame(rows, columns=["country", "mineral", "year", "dimension", "score"])
    out = sc.early_warning(frame, 0.2, "pooled", min_rise=0.05)
    flagged = out[out["flag"]]
    assert sorted(flagged["country"]) == ["c6", "c7", "c8", "c9"]
    assert (flagged["year"] == 2020).all()
    np.testing.assert_allclose(flagged["rise"], 0.5)
    assert flagged["material"].all()
    # by year: each year's own top quintile (2 of 10 cells): c8, c9 in both years -> no flag
    assert not sc.early_warning(frame, 0.2, "year")["flag"].any()
    # a cell already in the top quintile the year before is not flagged again
    frame.loc[(frame["country"] == "c9") & (frame["year"] == 2019), "score"] = 0.99
    out = sc.early_warning(frame, 0.2, "pooled")
    assert "c9" not in set(out.loc[out["flag"], "country"])
    with pytest.raises(ValueError, match="reference"):
        sc.early_warning(frame, 0.2, "global")


def test_early_warning_needs_the_previous_year_and_marks_small_rises():
    frame = pd.DataFrame([("a", "m", 2019, "d", 0.0), ("a", "m", 2020, "d", 0.97),
                          ("b", "m", 2019, "d", 0.5), ("b", "m", 2020, "d", 0.2),
                          ("c", "m", 2020, "d", 1.0), ("d", "m", 2019, "d", 0.96),
                          ("d", "m", 2020, "d", 0.3)],
                         columns=["country", "mineral", "year", "dimension", "score"])
    out = sc.early_warning(frame, 0.2, "pooled", min_rise=0.05).set_index(["country", "year"])
    assert not out.loc[("c", 2020), "flag"]            # no score in 2019: cannot have entered
    assert out.loc[("a", 2020), "flag"] and out.loc[("a", 2020), "material"]
    tiny = frame.copy()
    tiny.loc[0, "score"] = 0.95                         # a 2019 = 0.95: not in (0.96, 0.97, 1)
    out = sc.early_warning(tiny, 0.2, "pooled", min_rise=0.05).set_index(["country", "year"])
    assert out.loc[("a", 2020), "flag"] and not out.loc[("a", 2020), "material"]


def test_coverage_table_counts_missing_cells_and_reasons():
    cells = pd.DataFrame({"dimension": ["d"] * 5, "indicator": ["x"] * 5,
                          "value": [1.0, NAN, NAN, 2.0, NAN],
                          "reason": ["", "no imports", "no imports", "", "no code"]})
    out = sc.coverage_table(cells).iloc[0]
    assert (out["cells"], out["filled"], out["missing"]) == (5, 2, 3)
    assert out["share_filled"] == pytest.approx(0.4)
    assert out["reasons"] == "no imports: 2; no code: 1"


# =========================================================================== a three-year example
# Flows of m1 (value in thousand USD, tonnes) over 2018-2020, and production, so that growth
# over two years, the median over three years and a top supplier whose value share differs
# from its tonnage share can be worked out by hand:
#
#     year  exporter importer hs6     value quantity
#     2018  D        A        000001    5     40
#     2019  D        A        000001    7     50
#     2020  D        A        000001    4     40
#     2020  B        A        000002   30     20
#     2020  A        B        000002   20     30
#
# Production (tonnes): A 10 (2018), 20 (2019), 42 (2020); D 30, 80, 8.
TRADE3 = pd.DataFrame(
    [(2018, "D", "A", "000001", 5.0, 40.0), (2019, "D", "A", "000001", 7.0, 50.0),
     (2020, "D", "A", "000001", 4.0, 40.0), (2020, "B", "A", "000002", 30.0, 20.0),
     (2020, "A", "B", "000002", 20.0, 30.0)],
    columns=["year", "exporter", "importer", "hs6", "value", "quantity"])
PRODUCTION3 = pd.DataFrame(
    [("A", "m1", 2018, 10.0), ("A", "m1", 2019, 20.0), ("A", "m1", 2020, 42.0),
     ("D", "m1", 2018, 30.0), ("D", "m1", 2019, 80.0), ("D", "m1", 2020, 8.0)],
    columns=["country", "mineral", "year", "tonnes"])
M1 = {"m1": MINERALS["m1"]}


def test_top_supplier_share_counts_tonnes_not_value():
    """A, 2020: D 40 t (4 kUSD) and B 20 t (30 kUSD): the top supplier by tonnes is D with
    40/60 = 2/3 (by value it would be B with 30/34). 2018: D only -> 1."""
    out = sc.top_supplier_share(TRADE3, M1, ["A", "B"], [2018, 2020])
    assert cell(out, "A", "m1", 2020) == pytest.approx(2 / 3)
    assert cell(out, "A", "m1", 2018) == pytest.approx(1.0)
    assert cell(out, "B", "m1", 2020) == pytest.approx(1.0)


def test_growth_over_two_years_is_the_compound_annual_rate():
    """h = 2. World tonnes of m1: 2018 40, 2020 40 + 20 + 30 = 90 -> (90/40)^(1/2) - 1 = 0.5
    (not 90/40 - 1 = 1.25). A's apparent consumption: 2018 10 + 40 - 0 = 50, 2020
    42 + 60 - 30 = 72 -> (72/50)^(1/2) - 1 = 0.2. 2019 needs 2017: missing."""
    world = sc.world_trade_growth(TRADE3, M1, ["A", "B"], [2019, 2020], horizon=2)
    assert cell(world, "A", "m1", 2020) == pytest.approx(0.5)
    assert cell(world, "B", "m1", 2020) == pytest.approx(0.5)
    assert np.isnan(cell(world, "A", "m1", 2019))
    own = sc.consumption_growth(TRADE3, PRODUCTION3, M1, ["A"], [2019, 2020], horizon=2)
    assert cell(own, "A", "m1", 2020) == pytest.approx(0.2)
    assert np.isnan(cell(own, "A", "m1", 2019))


def test_trade_basis_ratio_is_the_median_over_years():
    """World exports over world production: 2018 40/40 = 1, 2019 50/100 = 0.5, 2020
    90/50 = 1.8 -> median 1 (the mean would be 1.1)."""
    out = sc.trade_basis_ratio(TRADE3, PRODUCTION3, M1).set_index("mineral")
    assert out.loc["m1", "ratio_median"] == pytest.approx(1.0)
    assert out.loc["m1", "years"] == 3


def test_stage_scores_only_the_scored_window():
    """The stage normalises over the scored years only (specs/scorecard.yaml: from 2018), not
    over the history years the growth and trend indicators need. Two countries, nickel, every
    indicator with the same values: 2017 (history) CHN 100, IDN -100; 2018 CHN 1, IDN 3; 2019
    CHN 2, IDN 5. Scores over 1..5: direction +1 (v - 1)/4 = 0, 0.5, 0.25, 1; direction -1
    (5 - v)/4 = 1, 0.5, 0.75, 0. Equal weights: four dimensions of +1 indicators, two of -1
    (chain control, sustainability): overall = (4 s+ + 2 s-)/6 = 1/3, 1/2, 5/12, 2/3."""
    from analysis.stages import scorecard as stage

    spec = stage.load_spec()
    assert spec.years.first == 2018
    values = {(2017, "CHN"): 100.0, (2017, "IDN"): -100.0, (2018, "CHN"): 1.0,
              (2018, "IDN"): 3.0, (2019, "CHN"): 2.0, (2019, "IDN"): 5.0}
    rows = [{"country": c, "mineral": "nickel", "year": y, "dimension": dimension,
             "indicator": name, "value": v, "reason": ""}
            for dimension, names in spec.dimension_indicators.items() for name in names
            for (y, c), v in values.items()]
    out = stage.score_all(spec, pd.DataFrame(rows))
    scored = out["scored"]
    assert set(scored["year"]) == {2018, 2019}
    order = [("CHN", 2018), ("IDN", 2018), ("CHN", 2019), ("IDN", 2019)]
    for name, direction in spec.directions.items():
        got = scored[scored["indicator"] == name].set_index(["country", "year"])["score"]
        expected = [0.0, 0.5, 0.25, 1.0] if direction == 1 else [1.0, 0.5, 0.75, 0.0]
        np.testing.assert_allclose(got.loc[order], expected, err_msg=name)
    composites = out["composites"]
    overall = composites[(composites["method"] == "equal")
                         & (composites["dimension"] == "overall")].set_index(
                             ["country", "year"])["score"]
    np.testing.assert_allclose(overall.loc[order], [1 / 3, 1 / 2, 5 / 12, 2 / 3])
