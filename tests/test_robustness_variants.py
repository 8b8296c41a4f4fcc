"""The robustness battery's variant transformations, each on a small unbalanced panel with the
numbers written here (issue 18): lags within each country and by year, winsorising at 1/99 on
the estimation sample, singleton countries dropped, centring on the sample, double-demeaned
interactions, row filters, substitutions and extra regressors; every key of a check changes its
frame (a check that read its option from a wrong key would silently equal the main model); the
standardised coefficient the right way up; the specification-curve shares over variants only;
IV p-values from t(G - 1)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.data import specs
from analysis.econometrics import variants
from analysis.stages import robustness

# A: 2000-2004; B: 2000, 2001, 2003, 2004 (no 2002 row); C: two rows, x missing in 2002, so one
# complete row (a singleton); D: one row. Rows are given out of order on purpose.
ROWS = [  # iso3, year, syn, gpr, rn, x, gpr_alt, z, s
    ("B", 2003, 2.0, 40.0, 4.0, 1.0, 0.4, 1.0, 0.3),
    ("A", 2000, 1.0, 1.0, 0.0, 5.0, 0.1, 2.0, 0.5),
    ("A", 2001, 2.0, 2.0, 1.0, 4.0, 0.2, 1.0, 0.5),
    ("C", 2001, 9.0, 7.0, 1.0, 1.0, 0.7, 0.0, 0.1),
    ("A", 2002, 4.0, 3.0, 0.0, 6.0, 0.3, 2.0, 0.5),
    ("A", 2003, 3.0, 4.0, 2.0, 5.0, 0.4, 3.0, 0.5),
    ("B", 2000, 0.0, 10.0, 3.0, 1.0, 0.1, 0.0, 0.3),
    ("A", 2004, 5.0, 5.0, 1.0, 7.0, 0.5, 1.0, 0.5),
    ("B", 2001, 1.0, 20.0, 2.0, 2.0, 0.2, 4.0, 0.3),
    ("C", 2002, 9.5, 8.0, 1.0, np.nan, 0.8, 0.0, 0.1),
    ("B", 2004, 6.0, 50.0, 3.0, 3.0, 0.5, 2.0, 0.3),
    ("D", 2000, 100.0, 9.0, 5.0, 2.0, 0.9, 1.0, 0.2),
]
PANEL = pd.DataFrame(ROWS, columns=["iso3", "year", "syn", "gpr", "rn", "x", "gpr_alt", "z",
                                    "s"])
MODEL = {"dependent": "syn", "terms": ["gpr", "rn", "gpr:rn"], "controls": ["x"], "centre": []}
CENTRED = {**MODEL, "centre": ["gpr", "rn"]}
MAIN_ROWS = [("A", 2000), ("A", 2001), ("A", 2002), ("A", 2003), ("A", 2004),
             ("B", 2000), ("B", 2001), ("B", 2003), ("B", 2004)]


def variant(check: dict, model: dict = MODEL) -> pd.DataFrame:
    return variants.prepare_variant(PANEL, {"id": "t", **check}, model)


def keys(frame: pd.DataFrame) -> list[tuple[str, int]]:
    return list(zip(frame["iso3"], frame["year"].astype(int), strict=True))


def column(frame: pd.DataFrame, name: str) -> dict[tuple[str, int], float]:
    return dict(zip(keys(frame), frame[name], strict=True))


def test_main_variant_drops_singleton_countries_and_sorts():
    """C has one complete row (x missing in 2002) and D one row: both leave, as in models.py."""
    frame = variant({})
    assert keys(frame) == MAIN_ROWS
    assert column(frame, "gpr:rn")[("B", 2003)] == 160.0  # 40 x 4, nothing centred here
    assert column(frame, "syn")[("B", 2000)] == 0.0


def test_lag_is_the_same_country_in_the_previous_year():
    """gpr lagged: A 2001-2004 get 1, 2, 3, 4; B 2001 gets B's 2000 value (10), B 2003 has no
    2002 row to take (missing: a one-row shift would take 2001's 20), B 2004 gets 40; B 2000,
    A 2000 have none (never the previous country's last year). C's one lagged row (2002) has
    no x, D's none: both leave."""
    frame = variant({"lag": ["gpr"]})
    assert column(frame, "gpr") == {("A", 2001): 1.0, ("A", 2002): 2.0, ("A", 2003): 3.0,
                                    ("A", 2004): 4.0, ("B", 2001): 10.0, ("B", 2004): 40.0}
    # the interaction is rebuilt from the lagged value, the moderator is not lagged
    assert column(frame, "gpr:rn")[("B", 2004)] == 40.0 * 3.0
    both = variant({"lag": ["gpr", "rn"]})
    assert column(both, "rn") == {("A", 2001): 0.0, ("A", 2002): 1.0, ("A", 2003): 0.0,
                                  ("A", 2004): 2.0, ("B", 2001): 3.0, ("B", 2004): 4.0}


def test_lag_on_a_panel_with_other_units():
    """The chain panel lags within ``unit`` (country x chain), not within the country."""
    panel = pd.DataFrame({"unit": ["A:x", "A:y", "A:x", "A:y", "A:x", "A:y"],
                          "iso3": "A", "year": [2000, 2000, 2001, 2001, 2002, 2002],
                          "syn": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
                          "gpr": [1.0, 100.0, 2.0, 200.0, 3.0, 300.0], "rn": 1.0, "x": 1.0})
    frame = variants.prepare_variant(panel, {"id": "t", "lag": ["gpr"]}, MODEL, "unit")
    assert frame[["unit", "year", "gpr"]].values.tolist() == [
        ["A:x", 2001, 1.0], ["A:x", 2002, 2.0], ["A:y", 2001, 100.0], ["A:y", 2002, 200.0]]


def test_winsorising_at_1_and_99_percent_of_the_estimation_sample():
    """syn on the sample (A and B, 9 rows): sorted 0, 1, 1, 2, 2, 3, 4, 5, 6. Linear quantiles:
    the 1st at position 8 x 0.01 = 0.08, i.e. 0.08; the 99th at position 7.92, i.e.
    5 + 0.92 x (6 - 5) = 5.92. B 2000 (0) rises to 0.08, B 2004 (6) falls to 5.92. D's
    syn of 100 is not in the sample and does not move the limits."""
    frame = variant({"winsorize": ["syn"]})
    syn = column(frame, "syn")
    assert syn[("B", 2000)] == pytest.approx(0.08, abs=1e-12)
    assert syn[("B", 2004)] == pytest.approx(5.92, abs=1e-12)
    ends = (("B", 2000), ("B", 2004))
    main = column(variant({}), "syn")
    assert {k: v for k, v in syn.items() if k not in ends} == \
        {k: v for k, v in main.items() if k not in ends}
    assert variants.winsorize(pd.Series([0.0, 1, 2, 3, 4, 5, 6, 100])).tolist() == \
        pytest.approx([0.07, 1, 2, 3, 4, 5, 6, 6 + 0.93 * 94], abs=1e-12)


def test_centring_on_the_sample_after_winsorising():
    """gpr and rn are centred on the estimation sample: mean gpr = 135 / 9 = 15, mean rn =
    16 / 9 (C and D, outside the sample, do not count); the interaction is the product of the
    centred terms: A 2000 (1 - 15)(0 - 16/9) = 224/9."""
    frame = variant({}, CENTRED)
    assert column(frame, "gpr")[("A", 2000)] == pytest.approx(1.0 - 15.0, abs=1e-12)
    assert column(frame, "rn")[("B", 2003)] == pytest.approx(4.0 - 16 / 9, abs=1e-12)
    assert column(frame, "gpr:rn")[("A", 2000)] == pytest.approx(224 / 9, abs=1e-12)
    assert frame["gpr"].mean() == pytest.approx(0.0, abs=1e-12)
    # winsorising comes before centring: gpr winsorised on the sample, then centred
    w = variant({"winsorize": ["gpr"]}, CENTRED)
    low = 1.0 + 0.08 * (2.0 - 1.0)                      # the 1st percentile of 1, 2, ..., 50
    high = 40.0 + 0.92 * (50.0 - 40.0)                  # the 99th
    clipped = [low, 2, 3, 4, 5, 10, 20, 40, high]
    assert column(w, "gpr")[("A", 2000)] == pytest.approx(low - np.mean(clipped), abs=1e-12)
    assert column(w, "gpr")[("B", 2004)] == pytest.approx(high - np.mean(clipped), abs=1e-12)


def test_double_demeaned_interaction_by_hand():
    """The interaction of within-country demeaned terms: A's means gpr 3, rn 0.8; B's gpr 30,
    rn 3. A 2000: (1 - 3)(0 - 0.8) = 1.6; B 2001: (20 - 30)(2 - 3) = 10; B 2000: 0. The main
    effects keep their sample-centred values."""
    frame = variant({"double_demean": True}, CENTRED)
    product = column(frame, "gpr:rn")
    assert product[("A", 2000)] == pytest.approx(1.6, abs=1e-12)
    assert product[("B", 2001)] == pytest.approx(10.0, abs=1e-12)
    assert product[("B", 2000)] == pytest.approx(0.0, abs=1e-12)
    assert column(frame, "gpr")[("A", 2000)] == pytest.approx(-14.0, abs=1e-12)


def test_row_filters_substitution_and_extra_regressors_by_hand():
    assert keys(variant({"drop_years": [2004]})) == [k for k in MAIN_ROWS if k[1] != 2004]
    assert keys(variant({"drop_countries": ["A"]})) == [k for k in MAIN_ROWS if k[0] == "B"]
    # keep C and A: C is still a singleton, so only A remains
    assert keys(variant({"keep_countries": ["A", "C"]})) == [k for k in MAIN_ROWS if k[0] == "A"]
    replaced = variant({"replace": {"gpr": "gpr_alt"}})
    assert column(replaced, "gpr")[("B", 2003)] == 0.4
    assert column(replaced, "gpr:rn")[("B", 2003)] == pytest.approx(1.6, abs=1e-12)
    added = variant({"controls_add": ["z"]})
    assert column(added, "_x_z") == column(added, "z") and column(added, "_x_z")[("B", 2001)] == 4
    shares = variant({"share_by_year": "s"})
    assert [c for c in shares if c.startswith("_x_s_")] == ["_x_s_2001", "_x_s_2002",
                                                           "_x_s_2003", "_x_s_2004"]
    assert column(shares, "_x_s_2003") == {k: (0.5 if k[0] == "A" else 0.3) * (k[1] == 2003)
                                           for k in MAIN_ROWS}
    trends = variant({"country_trends": True})
    mean_year = np.mean([k[1] for k in MAIN_ROWS])  # 18018 / 9 = 2002
    assert [c for c in trends if c.startswith("_x_")] == ["_x_trend_B"]  # A: the reference
    assert column(trends, "_x_trend_B") == {k: (k[1] - mean_year if k[0] == "B" else 0.0)
                                            for k in MAIN_ROWS}
    main = {"dependent": "syn", "terms": ["gpr"], "controls": ["x"], "centre": [],
            "main_sample": ["syn", "gpr", "rn", "x", "z"]}
    panel = PANEL.assign(z=PANEL["z"].where(~((PANEL["iso3"] == "A") & (PANEL["year"] == 2002))))
    sample = variants.prepare_variant(panel, {"id": "t", "sample": "main"}, main)
    assert keys(sample) == [k for k in MAIN_ROWS if k != ("A", 2002)]


#: An example value for every key of a check that :func:`variants.prepare_variant` reads.
#: The other keys (id, label, group, model, panel, jackknife, permute, iv) are read elsewhere.
FRAME_KEYS = {
    "replace": {"gpr": "gpr_alt"}, "lag": ["gpr"], "winsorize": ["syn"],
    "controls_add": ["z"], "share_by_year": "s", "country_trends": True,
    "double_demean": True, "sample": "main", "drop_years": [2004],
    "drop_countries": ["A"], "keep_countries": ["B", "D"],
}
READ_ELSEWHERE = {"id", "label", "group", "model", "panel", "jackknife", "permute", "iv"}


def test_every_check_key_is_listed_here():
    assert set(specs.CheckSpec.model_fields) == set(FRAME_KEYS) | READ_ELSEWHERE


@pytest.mark.parametrize("key", list(FRAME_KEYS))
def test_each_check_key_changes_the_frame(key):
    """A check that read its option from a wrong key (``lags`` for ``lag``, ...) would build
    the main model's frame and enter the specification curve as a copy of it."""
    model = {**CENTRED, "main_sample": ["syn", "gpr", "rn", "x", "z"]}
    panel = PANEL.assign(z=PANEL["z"].where(PANEL["year"] != 2000))
    main = variants.prepare_variant(panel, {"id": "main"}, model)
    changed = variants.prepare_variant(panel, {"id": key, key: FRAME_KEYS[key]}, model)
    same = (list(changed.columns) == list(main.columns) and len(changed) == len(main)
            and np.allclose(changed[main.columns[2:]].to_numpy(dtype=float),
                            main[main.columns[2:]].to_numpy(dtype=float)))
    assert not same, f"the check key {key!r} leaves the main frame unchanged"


# --------------------------------------------------------------------------- rows and curve
def fake_result(estimates: dict[str, float], n_obs: int = 9, n_clusters: int = 2,
                dependent: str = "syn"):
    table = pd.DataFrame({"estimate": estimates, "std_error": 0.5, "p_value": 0.04,
                          "p_wcr": 0.2})
    return SimpleNamespace(table=table, n_obs=n_obs, n_clusters=n_clusters, within_r2=0.3,
                           dependent=dependent)


def test_standardised_coefficient_is_sd_term_over_sd_outcome():
    """bstd = b sd(term) / sd(SYN): gpr 1, 3, 5 (sd 2), SYN 0, 4, 8, 12 ... (sd 4 on the
    same rows 0, 4, 8): 0.8 x 2 / 4 = 0.4 (inverted it would be 1.6)."""
    frame = pd.DataFrame({"gpr": [1.0, 3.0, 5.0], "syn": [0.0, 4.0, 8.0],
                          "gpr:rn": [2.0, 2.0, 5.0]})
    row = robustness._row({"id": "v", "label": "V"}, fake_result({"gpr": 0.8, "gpr:rn": -3.0}),
                          ["gpr", "gpr:rn", "gpr:ti"], frame=frame)
    assert robustness.standardiser(frame, "gpr", "syn") == pytest.approx(0.5, abs=1e-15)
    assert row["bstd[gpr]"] == pytest.approx(0.4, abs=1e-15)
    assert row["bstd[gpr:rn]"] == pytest.approx(-3.0 * np.sqrt(3.0) / 4.0, abs=1e-14)
    assert np.isnan(row["b[gpr:ti]"]) and np.isnan(row["bstd[gpr:ti]"])
    assert (row["b[gpr]"], row["se[gpr]"], row["p[gpr]"], row["p_wcr[gpr]"]) == (0.8, 0.5, 0.04,
                                                                               0.2)


def test_curve_shares_count_variants_only():
    """Of 9 rows only v1, v2, v3 are variants (main excluded); loo_A (jackknife), ri (ri),
    pl (placebo) and iv (iv) are not. gpr:rn: main +; v1 + p 0.05, v2 - p 0.2, v3 + p 0.5
    (WCR 0.09, missing, 0.3) -> 2 of 3 keep the sign, 1 of 3 p < 0.10, WCR 1 of 2. v3 is on a
    smaller model for gpr:ti (missing): 2 variants."""
    table = pd.DataFrame({
        "check": ["main", "v1", "v2", "v3", "loo_A", "loo_B", "ri", "pl", "iv"],
        "kind": ["variant", "variant", "variant", "variant", "jackknife", "jackknife", "ri",
                 "placebo", "iv"],
        "b[gpr]": [1.0, 2.0, 3.0, -1.0, -5.0, -5.0, -5.0, -5.0, -5.0],
        "p[gpr]": [0.01, 0.01, 0.5, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01],
        "p_wcr[gpr]": [0.01, 0.5, 0.5, 0.5, 0.01, 0.01, 0.01, 0.01, 0.01],
        "b[gpr:rn]": [0.3, 0.2, -0.1, 0.4, -1.0, -1.0, -1.0, -1.0, -1.0],
        "p[gpr:rn]": [0.01, 0.05, 0.2, 0.5, 0.01, 0.01, 0.01, 0.01, 0.01],
        "p_wcr[gpr:rn]": [0.01, 0.09, np.nan, 0.3, 0.01, 0.01, 0.01, 0.01, 0.01],
        "b[gpr:ti]": [-0.3, -0.2, 0.1, np.nan, 1.0, 1.0, 1.0, 1.0, 1.0],
        "p[gpr:ti]": [0.2, 0.01, 0.01, np.nan, 0.5, 0.5, 0.5, 0.5, 0.5],
        "p_wcr[gpr:ti]": [0.2, 0.2, 0.2, np.nan, 0.5, 0.5, 0.5, 0.5, 0.5],
    })
    summary = robustness.curve_summary(table, ["gpr:rn", "gpr:ti"]).set_index("term")
    assert summary.loc["gpr:rn"].to_dict() == pytest.approx({
        "main_estimate": 0.3, "variants": 3, "share_same_sign": 2 / 3,
        "share_p10_crv1": 1 / 3, "share_p10_wcr": 1 / 2})
    assert summary.loc["gpr:ti"].to_dict() == pytest.approx({
        "main_estimate": -0.3, "variants": 2, "share_same_sign": 0.5,
        "share_p10_crv1": 1.0, "share_p10_wcr": 0.0})
    assert summary.loc["gpr"].to_dict() == pytest.approx({
        "main_estimate": 1.0, "variants": 3, "share_same_sign": 2 / 3,
        "share_p10_crv1": 2 / 3, "share_p10_wcr": 0.0})


# --------------------------------------------------------------------------- IV
def test_iv_p_values_from_t_with_g_minus_1_degrees_of_freedom():
    """The 2SLS p-values equal pyfixest's IV fit of the original data (CRV1, t(G - 1)) and
    2 (1 - F_t(G-1)(|b / se|)); with t(N - K) or the normal they would be smaller."""
    import warnings

    import pyfixest as pf
    from pyfixest.demeaners import MapDemeaner

    from tests.test_iv_ri import iv_panel

    frame = iv_panel()
    model = {"dependent": "y", "terms": ["x1"], "controls": ["w"], "centre": []}
    iv = robustness.iv_estimate(frame, model, "x1", "z1", frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols("y ~ w | iso3 + year | x1 ~ z1", data=frame, vcov={"CRV1": "iso3"},
                       demeaner=MapDemeaner(fixef_tol=1e-12))
    G = frame["iso3"].nunique()
    assert iv["n_clusters"] == G == 9
    for term in ("x1", "w"):
        assert iv["params"][term] == pytest.approx(fit.coef()[term], rel=1e-9)
        assert iv["se"][term] == pytest.approx(fit.se()[term], rel=1e-8)
        assert iv["p"][term] == pytest.approx(fit.pvalue()[term], rel=1e-7)
        t = abs(iv["params"][term] / iv["se"][term])
        assert iv["p"][term] == pytest.approx(2 * stats.t(G - 1).sf(t), rel=1e-12)
    assert iv["p"]["x1"] == pytest.approx(0.11373, abs=5e-5)
