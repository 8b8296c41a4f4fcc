"""The findings table: verdicts, the second H1 row and battery shares, on hand-made outputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.stages.report import findings_table


def _estimates() -> pd.DataFrame:
    rows = [("M1", "gpr", 0.20, 0.03, 0.04), ("M4", "gpr:rn", -0.5, 0.01, 0.08),
            ("M4", "gpr:ti", -0.1, 0.02, 0.01), ("M5", "gpr:rn:ti", 0.3, 0.5, 0.6)]
    return pd.DataFrame([{"model": m, "term": t, "estimate": b, "p_value": p, "p_wcr": w,
                          "n_obs": 100, "n_clusters": 7} for m, t, b, p, w in rows])


def _robustness() -> pd.DataFrame:
    base = {"kind": "variant", "n_obs": 100, "n_clusters": 7}
    rows = [
        {"check": "main", "b[gpr]": 0.1, "p[gpr]": 0.2, "p_wcr[gpr]": 0.3,
         "b[gpr:rn]": -0.5, "p[gpr:rn]": 0.01, "p_wcr[gpr:rn]": 0.08,
         "b[gpr:ti]": -0.1, "p[gpr:ti]": 0.02, "p_wcr[gpr:ti]": 0.01},
        {"check": "a", "b[gpr]": 0.2, "p[gpr]": 0.05, "p_wcr[gpr]": 0.2,
         "b[gpr:rn]": 0.4, "p[gpr:rn]": 0.5, "p_wcr[gpr:rn]": 0.5,
         "b[gpr:ti]": -0.3, "p[gpr:ti]": 0.01, "p_wcr[gpr:ti]": 0.02},
        # a variant on M1: no interaction terms; it must not count against their shares
        {"check": "m1_own_sample", "b[gpr]": 0.05, "p[gpr]": 0.5, "p_wcr[gpr]": 0.45,
         "b[gpr:rn]": np.nan, "p[gpr:rn]": np.nan, "p_wcr[gpr:rn]": np.nan,
         "b[gpr:ti]": np.nan, "p[gpr:ti]": np.nan, "p_wcr[gpr:ti]": np.nan, "n_obs": 150,
         "n_clusters": 10},
        {"check": "loo_X", "kind": "jackknife", "b[gpr]": -9.0, "p[gpr]": 0.0,
         "p_wcr[gpr]": 0.0},
    ]
    return pd.DataFrame([{**base, **r} for r in rows])


def test_verdicts_follow_sign_and_wcr_p():
    table = findings_table(_estimates(), _robustness()).set_index("term")
    assert table.loc["gpr (M1, N = 100, G = 7)", "verdict"] == "supported (WCR p < 0.05)"
    assert table.loc["gpr:rn (M4, N = 100, G = 7)", "verdict"] == "weak (WCR p < 0.10)"
    # wrong sign: never supported, however small the p-value
    assert table.loc["gpr:ti (M4, N = 100, G = 7)", "verdict"] == "not supported"
    assert table.loc["gpr:rn:ti (M5, N = 100, G = 7)", "verdict"] == "not supported"
    own = table.loc["gpr (M1, N = 150, G = 10)"]
    assert own["estimate"] == 0.05 and own["WCR p"] == 0.45


def test_battery_shares_count_only_variants_that_estimate_the_term():
    table = findings_table(_estimates(), _robustness()).set_index("hypothesis")
    h2 = table.loc["H2"]
    # one variant estimates gpr:rn (check "a", positive): share same sign 0 of 1
    assert h2["share same sign"] == pytest.approx(0.0)
    assert h2["share p<0.10 (CRV1)"] == pytest.approx(0.0)
    h1 = table.loc["H1"].iloc[0]
    # gpr: two variants (a, m1_own_sample), both positive like main; jackknife excluded
    assert h1["share same sign"] == pytest.approx(1.0)
    assert h1["share p<0.10 (CRV1)"] == pytest.approx(0.5)


def _power() -> pd.DataFrame:
    rows = [("M1", "gpr", 0.05, 0.47, 0.22, "cannot tell"),
            ("M4", "gpr:rn", -0.40, 0.30, 0.90, "effect detected"),
            ("M4", "gpr:ti", 0.01, 0.15, 0.01, "no effect as large as the SESOI")]
    return pd.DataFrame([{"model": m, "term": t, "estimate_sd": b, "mde_sd_units": mde,
                          "sesoi": 0.2, "tost_p": tost, "verdict": v, "mde_crv1_sd": 0.3,
                          "mde_crv3_sd": 0.4, "ci90_low_sd": b - 0.1, "ci90_high_sd": b + 0.1,
                          "sim_reps": 400} for m, t, b, mde, tost, v in rows])


def _iv(status: str) -> pd.DataFrame:
    return pd.DataFrame([{"check": "iv_m1_shift_share", "term": "gpr", "N": 100, "G": 7,
                          "estimate": 1.9, "p (t(G-1))": 0.19, "first-stage F (CRV1)": 1.70,
                          "first stage: sign": "negative", "AR p (F(q, G-1))": 0.017,
                          "AR 95% set (exact)": "(−∞, -1.113] ∪ [0.579, ∞) (unbounded: union "
                          "of two rays)", "status": status}])


def test_findings_say_whether_the_data_can_tell():
    weak = "not informative: weak instrument (first-stage F = 1.70 < 10; AR set unbounded)"
    table = findings_table(_estimates(), _robustness(), _power(), _iv(weak)).set_index("term")
    h1 = table.loc["gpr (M1, N = 100, G = 7)"]
    assert h1["can the data tell?"] == "cannot tell" and h1["MDE (SD units, WCR)"] == 0.47
    assert table.loc["gpr:rn (M4, N = 100, G = 7)", "can the data tell?"] == "effect detected"
    assert table.loc["gpr:ti (M4, N = 100, G = 7)", "can the data tell?"] == \
        "no effect as large as the SESOI"
    # H4 has no power row: said so, not left blank
    assert table.loc["gpr:rn:ti (M5, N = 100, G = 7)", "can the data tell?"] == "not computed"
    iv = table.loc["gpr (IV, M1, N = 100, G = 7)"]
    assert iv["verdict"] == "not informative (weak instrument)"
    assert iv["can the data tell?"].startswith("no: first-stage F = 1.70, first stage negative")
    assert list(table["hypothesis"]) == ["H1", "H1", "H1", "H2", "H3", "H4"]
    strong = findings_table(_estimates(), _robustness(), _power(), _iv("identified"))
    assert strong.set_index("term").loc["gpr (IV, M1, N = 100, G = 7)",
                                        "verdict"] == "supported (AR p < 0.05)"


def test_power_section_states_each_hypothesis(tmp_path):
    from analysis.stages.report import power_section

    (tmp_path / "tables").mkdir()
    _power().to_csv(tmp_path / "power.csv", index=False)
    text = power_section(tmp_path)
    assert "<b>H1</b>" in text and "the data cannot tell" in text
    assert "<b>H3</b>" in text and "rule out an effect as large as the SESOI" in text
    assert "0.47 SD per SD" in text and "power.html was not produced" in text
    assert "<b>H4</b>" not in text  # no row for it


def test_scenario_summary_fits_the_page_and_keeps_every_number():
    """The report's scenario table: median [5%, 95%] side by side, the peak with its year, and
    'none' where the median gap never rises above 0 (the CSV keeps the raw columns)."""
    from analysis.stages.report import scenario_summary_display

    summary = pd.DataFrame({
        "scenario": ["baseline", "shock"], "gap_p50": [0.0, 46.4], "gap_p05": [0.0, 18.85],
        "gap_p95": [6.07, 105.36], "gap_peak_year": [float("nan"), 2027.0],
        "gap_peak_p50": [0.0, 463.99], "gap_peak_p95": [0.0, 998.72],
        "idn_share_p50": [0.5, 0.481], "idn_share_p05": [0.36, 0.33],
        "idn_share_p95": [0.64, 0.634], "value_ore_p50": [0.0, 7587.33],
        "value_intermediate_p50": [29771.64, 0.0], "value_refined_p50": [136.16, 0.0]})
    shown = scenario_summary_display(summary)
    assert shown.shape == (2, 5)
    assert shown.iloc[0, 1] == "0.0 [0.0, 6.1]"
    assert shown.iloc[1, 1] == "46.4 [18.9, 105.4]"
    assert shown.iloc[0, 2] == "none"
    assert shown.iloc[1, 2] == "464.0 in 2027 (95%: 998.7)"
    assert shown.iloc[1, 3] == "0.48 [0.33, 0.63]"
    assert shown.iloc[0, 4] == "0 / 29,772 / 136"
    assert shown.iloc[1, 4] == "7,587 / 0 / 0"
