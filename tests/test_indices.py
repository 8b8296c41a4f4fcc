"""The first build's definitions, kept as robustness variants: GPRX with time-varying shares,
shift-share, the decaying RN event stock and the renormalising composite (the revised
constructs are tested in tests/test_constructs.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import config, indices


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
    spec = indices.load_spec()["rn"]
    np.testing.assert_allclose(indices.event_intensity(events, spec["levels"],
                                                       spec["first_build"]["partial_factor"]),
                               events["intensity"])
    assert events["source"].str.len().min() > 3
    assert set(events["country"]) <= set(config.ASEAN)


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
