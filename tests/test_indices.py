"""The stage's assembly of the indices: the first build's definitions kept as robustness
variants (GPRX with time-varying shares, shift-share, the decaying RN event stock and the
renormalising composite), the RN events series and their variants, the measures file's
checks, the TI variants and the GPR weights table (the pure formulas of the revised constructs
are tested in tests/test_constructs.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import config
from analysis.data import specs
from analysis.data.io import DataError
from analysis.data.specs import load_region
from analysis.stages import indices


def test_gprx_is_the_lagged_share_weighted_mean():
    # IDN trades (exports + imports) in 2009: USA 30+10 = 40, CHN 50+10 = 60, NZL 100 (no GPRC).
    bilateral = pd.DataFrame({
        "iso3": ["IDN"] * 3, "partner_iso3": ["USA", "CHN", "NZL"], "year": [2009] * 3,
        "export_value": [30.0, 50.0, 100.0], "import_value": [10.0, 10.0, 0.0]})
    gprc = pd.DataFrame({"partner_iso3": ["USA", "CHN", "IDN"], "year": [2010] * 3,
                         "gprc": [2.0, 0.5, 9.0]})
    out = indices.exposure_weighted_gpr(bilateral, gprc, lag=1).set_index(["iso3", "year"])
    # shares over GPRC partners, renormalised: 40/100 and 60/100; own GPRC (9.0) never enters
    assert out.loc[("IDN", 2010), "gprx"] == pytest.approx(0.4 * 2.0 + 0.6 * 0.5, abs=1e-15)
    assert out.loc[("IDN", 2010), "gprx_coverage"] == pytest.approx(100 / 200)
    # the materiality rule of the time-varying variant: 100 thousand USD < 150 -> missing
    thin = indices.exposure_weighted_gpr(bilateral, gprc, lag=1, min_covered=150.0)
    assert thin["gprx"].isna().all()


def test_gprx_leaves_out_a_self_partner_row():
    """A row with partner = the country itself (e.g. re-imports) never enters GPRX: k != i.

    MYS trades 20 with THA (GPRC 1.0) and 80 with itself (own GPRC 5.0): GPRX = 1.0, not
    (20 * 1.0 + 80 * 5.0) / 100 = 4.2.
    """
    bilateral = pd.DataFrame({
        "iso3": ["MYS", "MYS"], "partner_iso3": ["THA", "MYS"], "year": [2004, 2004],
        "export_value": [15.0, 50.0], "import_value": [5.0, 30.0]})
    gprc = pd.DataFrame({"partner_iso3": ["THA", "MYS"], "year": [2005, 2005],
                         "gprc": [1.0, 5.0]})
    out = indices.exposure_weighted_gpr(bilateral, gprc, lag=1).set_index(["iso3", "year"])
    assert out.loc[("MYS", 2005), "gprx"] == pytest.approx(1.0, abs=1e-15)


def test_shift_share_uses_base_year_exposure_only():
    bilateral = pd.DataFrame({
        "iso3": ["MYS"] * 4, "partner_iso3": ["USA", "JPN", "USA", "JPN"],
        "year": [1995, 1995, 2000, 2000], "export_value": [25.0, 75.0, 90.0, 10.0],
        "import_value": [0.0, 0.0, 0.0, 0.0]})
    gpr = pd.DataFrame({"year": [1999, 2000], "gpr_global": [100.0, 200.0],
                        "gpr_threats": [50.0, 60.0], "gpr_acts": [10.0, 20.0]})
    out = indices.shift_share_gpr(bilateral, gpr, 1995, ["USA", "CHN"]).set_index("year")
    assert out.loc[2000, "ss_exposure"] == pytest.approx(0.25)
    assert out.loc[2000, "gpr_ss"] == pytest.approx(50.0)
    assert out.loc[1999, "gpr_threats_ss"] == pytest.approx(12.5)


def _events() -> pd.DataFrame:
    return pd.DataFrame({
        "event_id": ["a", "b", "c", "d"], "country": ["IDN", "IDN", "IDN", "PHL"],
        "date": ["2014-01-12", "2017-01-12", "2016-05-01", "2012-07-06"],
        "category": ["ban", "ban", "tax_quota", "moratorium_review"],
        "direction": ["tighten", "loosen", "tighten", "tighten"], "partial": [0, 1, 0, 0],
        "verified": ["yes", "yes", "no", "yes"]})


LEVELS = {"ban": 4, "tax_quota": 3, "licensing": 2, "moratorium_review": 1, "non_state": 0}


def test_event_intensity_scale():
    intensity = indices.event_intensity(_events(), LEVELS, 0.5)
    assert intensity.tolist() == [4.0, -2.0, 3.0, 1.0]


def test_event_stock_with_decay_by_hand():
    events = _events().assign(intensity=[4.0, -2.0, 3.0, 1.0])
    stock = indices.event_stock(events, ("IDN", "PHL", "SGP"), (2013, 2014, 2017), 0.8)
    s = stock.set_index(["iso3", "year"])["rn_event_stock"]
    assert s[("IDN", 2013)] == 0.0
    assert s[("IDN", 2014)] == pytest.approx(4.0)
    assert s[("IDN", 2017)] == pytest.approx(4.0 * 0.8 ** 3 - 2.0)  # unverified event excluded
    assert s[("PHL", 2017)] == pytest.approx(0.8 ** 5)
    assert s[("SGP", 2017)] == 0.0
    everything = indices.event_stock(events, ("IDN",), (2017,), 0.8, verified_only=False)
    assert everything["rn_event_stock"].iloc[0] == pytest.approx(4 * 0.8 ** 3 - 2 + 3 * 0.8)


def test_project_event_file_is_coded_by_the_documented_scale():
    events = indices.read_events(config.DATA_RAW / "rn_policy_events.csv")
    spec = specs.load_indices_spec()["rn"]
    np.testing.assert_allclose(indices.event_intensity(events, spec["levels"],
                                                       spec["first_build"]["partial_factor"]),
                               events["intensity"])
    assert events["source"].str.len().min() > 3
    assert set(events["country"]) <= set(load_region().members)


def test_composite_with_missing_renormalises_weights():
    data = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, np.nan],
                         "b": [4.0, 3.0, 2.0, 1.0, 0.0, 2.0],
                         "c": [1.0, 2.0, 2.0, 3.0, 5.0, np.nan]})
    scores, weights, n = indices.composite_with_missing(
        data, {"a": 1, "b": 1, "c": 1}, "equal", 0.0, min_weight_share=0.3)
    assert n == 5 and weights.tolist() == pytest.approx([1 / 3] * 3)
    assert scores.iloc[0] == pytest.approx((0 + 1 + 0) / 3)
    assert scores.iloc[5] == pytest.approx(0.5)  # only b observed: b' = 2/4, weight renormalised
    strict, _, _ = indices.composite_with_missing(
        data, {"a": 1, "b": 1, "c": 1}, "equal", 0.0, min_weight_share=0.5)
    assert np.isnan(strict.iloc[5])


def test_composite_with_missing_topsis_closeness_by_hand():
    """Entropy-TOPSIS with missing indicators: closeness D-/(D+ + D-) over the observed ones.

    Rows P..T are complete (the 5 x 3 example of tests/test_weighting.py, so the entropy
    weights are w = [0.36422, 0.33802, 0.29776]); F misses y1, G misses y2, H has only y2.
    Every observed value lies inside the complete rows' range, so x' is unchanged and the ideal
    and anti-ideal are V+_j = w_j (1 + eps), V-_j = w_j eps. By hand (scratch script in plain
    Python, math.sqrt), over the observed indicators only:

    - F: y2' = 1 + eps, y3' = 15/30 + eps: D+ = 0.148881, D- = 0.369353, C = 0.712715
      (the inverted D+/(D+ + D-) would be 0.287285; counting the missing y1 as 0, 0.484168);
    - G: y1' = 3/10 + eps, y3' = eps: D+ = 0.392000, D- = 0.109266, C = 0.217980;
    - H: only y2 observed, weight share 0.338 < 0.5: no score.
    """
    data = pd.DataFrame({
        "y1": [2.0, 4.0, 7.0, 10.0, 12.0, np.nan, 5.0, np.nan],
        "y2": [5.0, 9.0, 6.0, 1.0, 3.0, 9.0, np.nan, 5.0],
        "y3": [30.0, 10.0, 20.0, 40.0, 15.0, 25.0, 40.0, np.nan],
    }, index=list("PQRSTFGH"))
    scores, weights, n = indices.composite_with_missing(
        data, {"y1": 1, "y2": 1, "y3": -1}, "entropy_topsis", 1e-4, min_weight_share=0.5)
    assert n == 5
    np.testing.assert_allclose(weights.to_numpy(),
                               [0.36422019194139665, 0.3380178449960075, 0.29776196306259584],
                               rtol=1e-8, atol=0)
    expected = [0.30438735585369164, 0.6102994239890126, 0.5847916479728701,
                0.38970057601098745, 0.6346519936076861,  # complete rows: plain TOPSIS
                0.712714723683845, 0.21798027673101636]   # F, G: observed indicators only
    np.testing.assert_allclose(scores.to_numpy()[:7], expected, rtol=1e-8, atol=0)
    assert np.isnan(scores["H"])
    assert scores.index.equals(data.index)


# ------------------------------------------------------------------------- RN events (Rev. 3)
def _rn_flows() -> pd.DataFrame:
    rows = [  # IDN exports: 1996 (the 1995-97 base) and 2000 (the 1998-2020 window)
        ("IDN", "CHN", 1996, "260400", "nickel", 10.0),
        ("IDN", "CHN", 1996, "260300", "copper", 90.0),
        ("IDN", "CHN", 2000, "260400", "nickel", 50.0),
        ("IDN", "JPN", 2000, "260300", "copper", 50.0),
        ("CHN", "IDN", 2000, "260300", "copper", 1.0)]
    frame = pd.DataFrame(rows, columns=["iso3", "partner_iso3", "year", "hs6", "chain",
                                        "export_value"])
    return frame.assign(stage="supply", import_value=0.0)


def _rn_measures() -> pd.DataFrame:
    return pd.DataFrame({
        "measure_id": ["ban", "moratorium", "licence"], "country": ["IDN"] * 3,
        "groups": ["nickel", "copper", "nickel"], "intensity": [4.0, 1.0, 2.0],
        "effective": ["2014-01-01", "2010-01-01", "2005-01-01"],
        "lifted": ["", "2012-01-01", ""], "changes": ["", "", ""],
        "rule": ["documented_dates", "unknown_lift", "unverified"],
        "main": ["yes", "yes", "no"], "all_events": ["yes", "yes", "yes"],
        "second_build_main": ["yes", "yes", "no"]})


def test_rn_event_states_and_variants_by_hand():
    """Weights 1998-2020: nickel 50/100, copper 50/100; 1995-97: nickel 0.1, copper 0.9.

    - main: 2011 copper moratorium (1/4) x 0.5 = 0.125; 2013 0 (ended at its documented date);
      2015 nickel ban x 0.5 = 0.5;
    - 1995-97 weights: 2011 0.9 x 0.25 = 0.225; 2015 0.1 x 1 = 0.1;
    - unknown lift forever: 2013 0.125; 2015 0.5 + 0.125 = 0.625;
    - count of restricted groups: 2011 1, 2015 1;
    - all measures (the unverified licensing from 2005 too): 2006 0.5 x 2/4 = 0.25, 2015 the
      maximum of ban and licensing on nickel: 0.5;
    - second build (sum of intensities, unknown lift never lifted): 2015 4 + 1 = 5.
    """
    states, weights, by_group = indices.rn_event_states(
        _rn_measures(), _rn_flows(), specs.load_indices_spec(), groups=["copper", "nickel"])
    s = states.set_index(["iso3", "year"])
    expected = {
        "rn_events": {2006: 0.0, 2011: 0.125, 2013: 0.0, 2015: 0.5},
        "rn_events_weights_1995_97": {2011: 0.225, 2015: 0.1},
        "rn_events_unknown_lift_forever": {2013: 0.125, 2015: 0.625},
        "rn_events_count": {2011: 1.0, 2015: 1.0, 2006: 0.0},
        "rn_events_all": {2006: 0.25, 2015: 0.5},
        "rn_events_second_build": {2006: 0.0, 2015: 5.0},
    }
    for column, values in expected.items():
        for year, value in values.items():
            assert s.loc[("IDN", year), column] == pytest.approx(value, abs=1e-15), (column, year)
    # no measure in the file: 0 only where the region says the reference found none (BRN,
    # specs/regions/china_asean.yaml measures.none_found); otherwise missing, not 0
    assert (s.loc["BRN", "rn_events"] == 0).all() and (s.loc["BRN", "rn_events_all"] == 0).all()
    assert s.loc["CHN", "rn_events"].isna().all() and s.loc["CHN", "rn_events_all"].isna().all()
    w = weights.set_index(["weight_window", "iso3", "group"])["weight"]
    assert w[("1998-2020", "IDN", "nickel")] == 0.5 and w[("1995-1997", "IDN", "copper")] == 0.9
    assert by_group.set_index(["iso3", "group", "year"]).loc[("IDN", "nickel", 2015),
                                                             "coverage"] == 1.0


def _write_measures(tmp_path, measure_id: str, column: str, value: str):
    frame = pd.read_csv(config.DATA_RAW / "rn_measures.csv", dtype=str, keep_default_na=False)
    frame.loc[frame["measure_id"] == measure_id, column] = value
    path = tmp_path / "rn_measures.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("measure_id", "column", "value", "message"), [
    ("IDN-04", "groups", "nickel;nikel", "'nikel' is not a mineral group"),
    ("IDN-04", "rule", "documented_dates;guess", "'guess' is not a coding rule"),
    ("IDN-04", "country", "IND", "'IND' is not a country of the panel"),
    ("IDN-11", "main", "yes", "disagrees with the rules"),
    ("LAO-03", "lifted", "", "unknown_lift needs the documented end"),
    ("VNM-02", "rule", "broad_scope", "disagrees with the rules"),
    ("CHN-02", "rule", "documented_dates", "only a start coded by the rule uncertain_start_later_date"),
    ("IDN-04", "effective", "2014-13-40", "is not a calendar date"),
    ("PHL-04", "lifted", "2010-01-01", "2010-01-01 is before effective 2017-04-27"),
])
def test_read_measures_rejects_a_bad_entry(tmp_path, measure_id, column, value, message):
    path = _write_measures(tmp_path, measure_id, column, value)
    with pytest.raises(DataError, match=message) as error:
        indices.read_measures(path)
    assert measure_id in str(error.value) and str(path) in str(error.value)


# ---------------------------------------------------------------------------------- TI
def _ti_panel() -> pd.DataFrame:
    """A: log(1 + articles) 0..5 and Internet 0..50; B: 2, 2, 3, 3, 4, missing and 100..50."""
    years = list(range(1998, 2004))
    k = {"A": [0, 1, 2, 3, 4, 5], "B": [2, 2, 3, 3, 4, np.nan]}
    internet = {"A": [0, 10, 20, 30, 40, 50], "B": [100, 90, 80, 70, 60, 50]}
    rows = []
    for c in ("A", "B"):
        for i, year in enumerate(years):
            rows.append({"iso3": c, "year": year,
                         "articles_per_million": np.expm1(k[c][i]),
                         "internet_users": float(internet[c][i]),
                         "rd_gdp": 0.1 * (i + 1) + (c == "B"), "patents_per_million": 5.0 * i,
                         "researchers_per_million": 100.0 + 30 * i * (c == "A"),
                         "hightech_export_share": 10.0 + i})
    panel = pd.DataFrame(rows)
    for column in ("articles_per_million", "internet_users", "rd_gdp", "patents_per_million",
                   "researchers_per_million", "hightech_export_share"):
        panel[f"{column}_filled"] = False
    return panel


def test_ti_main_is_the_equal_weighted_mean_of_two_normalised_inputs():
    """min/max over the window: log articles 0..5, Internet 0..100, so
    A 1998: (0 + 0)/2 = 0; A 2003: (5/5 + 50/100)/2 = 0.75; B 1998: (2/5 + 1)/2 = 0.7;
    B 2003: articles missing -> TI missing (never renormalised onto Internet alone)."""
    spec = specs.load_indices_spec()
    record = {"composites": {}}
    ti = indices.build_ti(_ti_panel(), spec, record).set_index(["iso3", "year"])
    assert ti.loc[("A", 1998), "ti"] == 0.0
    assert ti.loc[("A", 2003), "ti"] == pytest.approx(0.75, abs=1e-15)
    assert ti.loc[("B", 1998), "ti"] == pytest.approx(0.7, abs=1e-15)
    assert np.isnan(ti.loc[("B", 2003), "ti"])
    assert ti.loc[("B", 1999), "ti_science"] == pytest.approx(0.4, abs=1e-15)
    assert ti.loc[("B", 1999), "ti_digital"] == pytest.approx(0.9, abs=1e-15)
    assert record["composites"]["ti"]["weights"] == {"articles_per_million": 0.5,
                                                     "internet_users": 0.5}
    # the entropy variant has other weights; no variant is a copy of the main
    assert record["composites"]["ti_entropy"]["weights"]["internet_users"] != 0.5
    assert "ti_equal" not in ti and "ti_broad" not in ti
    for column in ("ti_entropy", "ti_entropy_topsis", "ti_capacity", "ti_hightech"):
        both = ti[["ti", column]].dropna()
        assert not np.allclose(both["ti"], both[column], rtol=0, atol=1e-3), column
    # with two inputs PCA's squared loadings are 1/2 each (the leading eigenvector of a 2 x 2
    # correlation matrix is (1, 1)/sqrt 2): ti_pca is the main plus epsilon, so the battery
    # does not run it as a TI variant
    assert record["composites"]["ti_pca"]["weights"] == pytest.approx(
        {"articles_per_million": 0.5, "internet_users": 0.5}, abs=1e-12)
    np.testing.assert_allclose((ti["ti_pca"] - ti["ti"]).dropna(), 1e-4, rtol=0, atol=1e-12)
    # the capacity variant is the five-indicator entropy composite
    assert set(record["composites"]["ti_capacity"]["weights"]) == {
        "rd_gdp", "patents_per_million", "researchers_per_million", "articles_per_million",
        "internet_users"}
    assert record["composites"]["ti_capacity"]["method"] == "entropy"


def test_gpr_weights_table_prints_the_rounding_it_uses():
    weights = pd.DataFrame({"iso3": ["A"] * 3, "partner_iso3": ["USA", "ZAF", "MYS"],
                            "weight": [0.61234, 0.1, 0.28766], "country_base": [1234.5] * 3,
                            "thin": [False] * 3})
    row = indices.gpr_weights_table(weights).iloc[0]
    assert row["base 1995-97, USD m (GPRC partners, gold excl.)"] == "1.23"
    assert row["extra-regional weight"] == "0.712"
    assert row["partners with weight >= 5%"] == "USA 0.612, MYS 0.288, ZAF 0.100"
