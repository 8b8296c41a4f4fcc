"""Windows and coverage shares on both sides (issue 18): the GPRC base-window completeness rule
(a partner missing one base year, as an absent row or as an incomplete year the parser left
missing, gets no standardised series, and a country weighting it gets a missing GPRX rather
than a renormalised one), and the supply-risk coverage share by quantity, as the GeoPolRisk
method weighs imports. (BACI labels mapped on both trade sides: tests/test_clean.py and the
HS07 parser in tests/test_nickel.py.)"""

from __future__ import annotations

import sqlite3

import numpy as np
import pandas as pd
import pytest

from analysis.measures import constructs
from analysis.stages import supply_risk as sr

BASE = list(range(1985, 1996))  # 11 base years


def gprc_frame() -> pd.DataFrame:
    """P complete (1985-1989 at 2, 1990-1995 at 4); R with ten of eleven base rows (no 1990
    row); S with all eleven rows but 1992 missing (a year with missing months, which the parser
    leaves missing); Z complete but all zeros (no positive baseline). Each has a 2000 value."""
    rows = []
    for year in BASE:
        rows.append(("P", year, 2.0 if year < 1990 else 4.0))
        if year != 1990:
            rows.append(("R", year, 1.0))
        rows.append(("S", year, np.nan if year == 1992 else 3.0))
        rows.append(("Z", year, 0.0))
    rows += [("P", 2000, 6.0), ("R", 2000, 2.0), ("S", 2000, 6.0), ("Z", 2000, 1.0)]
    return pd.DataFrame(rows, columns=["partner_iso3", "year", "gprc"])


def test_a_partner_missing_one_base_year_gets_no_standardised_series():
    for method in ("ratio", "log_ratio"):
        g = constructs.standardise_gprc(gprc_frame(), (1985, 1995), method)
        assert sorted(g["partner_iso3"].unique()) == ["P"], method
    g = constructs.standardise_gprc(gprc_frame(), (1985, 1995)).set_index(
        ["partner_iso3", "year"])["g"]
    base = (5 * 2.0 + 6 * 4.0) / 11
    assert g[("P", 2000)] == pytest.approx(6.0 / base, rel=1e-14)
    assert len(g) == 12  # P's 11 base years and 2000
    # with the 1990 row present, R is complete again (base mean 1, g = 2 in 2000)
    complete = pd.concat([gprc_frame(), pd.DataFrame({"partner_iso3": ["R"], "year": [1990],
                                                      "gprc": [1.0]})])
    g = constructs.standardise_gprc(complete, (1985, 1995)).set_index(
        ["partner_iso3", "year"])["g"]
    assert g[("R", 2000)] == pytest.approx(2.0, rel=1e-14)
    # a shorter window needs only its own years: 1993-1995 are complete for S (base 3)
    g = constructs.standardise_gprc(gprc_frame(), (1993, 1995)).set_index(
        ["partner_iso3", "year"])["g"]
    assert g[("S", 2000)] == pytest.approx(2.0, rel=1e-14)
    assert g[("R", 2000)] == pytest.approx(2.0, rel=1e-14)


def test_a_country_weighting_a_partner_without_a_series_is_missing_not_renormalised():
    """The exposure weights cover every partner with a GPRC series; a weighted partner that
    lost its standardised series leaves the country's GPRX missing in every year."""
    g = constructs.standardise_gprc(gprc_frame(), (1985, 1995))
    weights = pd.DataFrame({"iso3": ["A", "A", "B"], "partner_iso3": ["P", "S", "P"],
                            "weight": [0.6, 0.4, 1.0]})
    out = constructs.exposure_index(weights, g, region=set(), years=[2000]).set_index("iso3")
    assert np.isnan(out.loc["A", "gprx"]) and np.isnan(out.loc["A", "gprx_ext"])
    assert out.loc["B", "gprx"] == pytest.approx(6.0 / (34 / 11), rel=1e-14)


# --------------------------------------------------------------------------- supply risk
def _wmd(path) -> None:
    with sqlite3.connect(path) as connection:
        for name in ("Nickel", "Lithium", "Cobalt", "HS Code Map", "Country_ISO"):
            connection.execute(f'create table "{name}" (x text)')


def test_coverage_share_without_a_wgi_score_is_by_quantity(tmp_path):
    """Nickel (260400 main, 750110 complementary) in 2020: suppliers S1 (a WGI score), S19
    (Taiwan's label, scored through the TWN alias) and S2 (no score). Quantities: S1 10, S2
    30 + 20 + 0 (a flow without a quantity counts as 0 t, as in the method), S19 40: S2's
    share is 50 / 100 = 0.5 (by value it would be 65 / 200). Lithium has no flow that year and
    no production."""
    baci = pd.DataFrame([  # year, exporter, importer, hs6, value, quantity
        (2020, "S1", "A", "260400", 100.0, 10.0), (2020, "S2", "A", "260400", 10.0, 30.0),
        (2020, "S2", "B", "260400", 5.0, 20.0), (2020, "S19", "B", "260400", 35.0, 40.0),
        (2020, "S2", "B", "750110", 50.0, np.nan), (2020, "S2", "A", "999999", 1e3, 1e3),
        (2019, "S2", "A", "260400", 7.0, 7.0),
    ], columns=["year", "exporter", "importer", "hs6", "value", "quantity"])
    hs_map = pd.DataFrame({"material": ["Nickel", "Nickel", "Lithium"],
                           "sheet": ["Nickel", "Nickel", "Lithium"],
                           "hs6": ["260400", "750110", "283691"],
                           "role": ["main", "complementary", "main"]})
    production = pd.DataFrame({"material": ["Nickel", "Nickel"], "sheet": "Nickel",
                               "country_code": [10, 20], "year": [2020, 2021],
                               "production": [5.0, 6.0], "unit": "metr. t"})
    wgi = pd.DataFrame({"iso3": ["S1", "TWN", "A"], "country_code": pd.array([1, None, 10],
                                                                           dtype="Int64"),
                        "year": 2020, "wgi": [0.3, 0.2, 0.5], "row": [0, 1, 2]})
    codes = pd.DataFrame({"code": [1, 2, 10, 20, 490], "iso3": ["S1", "S2", "A", "B", "S19"]})
    scores = pd.DataFrame({"material": ["Nickel", "Lithium"], "year": [2020, 2020],
                           "hhi": [0.5, np.nan]})
    _wmd(tmp_path / "wmd.db")
    inputs = {"baci": baci, "production": production, "hs_map": hs_map, "wgi": wgi,
              "codes": codes}
    record = sr.coverage_record(inputs, scores, tmp_path / "wmd.db", {"S19": "TWN"})
    assert record["world_import_quantity_share_missing_wgi"] == pytest.approx(0.5, abs=1e-15)
    assert record["suppliers_scored_missing_wgi"] == ["S2"]
    assert record["baci_missing_quantity_share"] == pytest.approx(1 / 7, abs=1e-15)
    assert record["no_trade_in_baci"] == [["Lithium", 2020]]
    assert record["no_world_production"] == [["Lithium", 2020]]
    assert record["wmd_tables_without_hs_map"] == ["Cobalt"]
    assert record["wmd_years"] == [2020, 2021] and record["baci_years"] == [2019, 2020]


# --------------------------------------------------------------------------- BACI on both sides
def test_baci_codes_map_on_both_sides_from_the_database_and_quantities_stay_missing(tmp_path):
    """baci.db -> read_baci -> mineral_trade_flows: BACI's own code table on the exporter and
    the importer side (842 is the USA as either), 'Other Asia, nes' (490, S19) mapped to TWN on
    both sides of China's trade, and an empty quantity left missing (never 0 t)."""
    from analysis.data import parsers
    from analysis.stages import clean
    from tests import synthetic

    rows = [("2019", "842", "156", 260400, "10", ""),      # USA -> CHN, no quantity
            ("2019", "156", "842", 260400, "5", " 2.5 "),  # CHN -> USA
            ("2019", "490", "156", 260400, "3", "1"),      # Other Asia, nes -> CHN
            ("2019", "156", "490", 760110, "4", "")]       # CHN -> Other Asia, nes
    countries = [*synthetic.BACI_COUNTRIES, ("490", "Other Asia, nes", "", "S19")]
    baci = parsers.read_baci(synthetic.write_baci_db(tmp_path / "baci.db", rows, countries))
    assert baci[["exporter", "importer"]].values.tolist() == [
        ["USA", "CHN"], ["CHN", "USA"], ["S19", "CHN"], ["CHN", "S19"]]
    assert np.isnan(baci["quantity"].iloc[0]) and np.isnan(baci["quantity"].iloc[3])
    assert baci["quantity"].iloc[1] == 2.5
    hs_map = pd.DataFrame({"hs6": ["260400", "760110"], "chain": ["nickel", "aluminium"],
                           "stage": ["supply", "transformation"], "included": [1, 1]})
    flows = clean.mineral_trade_flows(baci, hs_map, countries=("CHN",))
    by_partner = flows.groupby("partner_iso3")[["export_value", "import_value"]].sum()
    assert by_partner.to_dict("index") == {"TWN": {"export_value": 4.0, "import_value": 3.0},
                                           "USA": {"export_value": 5.0, "import_value": 10.0}}
