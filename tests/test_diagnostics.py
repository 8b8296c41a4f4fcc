"""Construct diagnostics (METHODS.md 3a) on small panels with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.stages import diagnostics


def _panel(values: dict[str, list[float]], years: list[int]) -> pd.DataFrame:
    rows = [{"iso3": c, "year": y, "x": v} for c, vs in values.items() for y, v in
            zip(years, vs, strict=True)]
    return pd.DataFrame(rows)


def test_country_shares_by_hand():
    # 3 countries x 4 years; only A moves (+1, -1, +1, -1 around its mean), B and C flat.
    frame = _panel({"A": [1.0, -1.0, 1.0, -1.0], "B": [0.0] * 4, "C": [0.0] * 4},
                   [2000, 2001, 2002, 2003])
    shares = diagnostics.country_shares(frame, "x")
    # two-way demeaning: year means are +-1/3, so A's deviations are +-2/3, B's and C's -+1/3
    assert shares["A"] == pytest.approx((4 * (2 / 3) ** 2) / (4 * (2 / 3) ** 2 + 8 * (1 / 3) ** 2))
    assert shares["B"] == pytest.approx(shares["C"])
    assert shares.sum() == pytest.approx(1.0)


def test_within_correlation_ignores_levels_and_common_shocks():
    years = list(range(2000, 2006))
    rng = np.random.default_rng(0)
    base = {c: rng.normal(size=6) for c in "ABC"}
    frame = pd.concat([pd.DataFrame({"iso3": c, "year": years, "x": v,
                                     # y = 2x + country level + common year shock
                                     "y": 2 * v + 10 * i + np.arange(6) ** 2})
                       for i, (c, v) in enumerate(base.items())])
    assert diagnostics.within_correlation(frame, "x", "y") == pytest.approx(1.0)


def test_trend_r2_is_one_for_pure_country_trends_and_small_for_noise():
    years = list(range(2000, 2010))
    frame = pd.concat([pd.DataFrame({"iso3": c, "year": years,
                                     "x": slope * np.arange(10) + level})
                       for c, slope, level in (("A", 1.0, 0.0), ("B", -0.5, 3.0),
                                               ("C", 0.2, 1.0))])
    assert diagnostics.trend_r2(frame, "x") == pytest.approx(1.0)
    noise = frame.assign(x=np.random.default_rng(1).normal(size=len(frame)))
    assert diagnostics.trend_r2(noise, "x") < 0.5


def test_definition_switches_by_hand():
    frame = pd.DataFrame({
        "iso3": ["A"] * 4 + ["B"] * 3, "year": [1, 2, 3, 4, 1, 2, 3],
        "a": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
        "b": [1.0, np.nan, np.nan, 1.0, 1.0, 1.0, np.nan],
        # a composite that renormalised over what was present stays defined throughout A
        "index": [0.5, 0.4, 0.4, 0.5, 0.2, 0.3, np.nan]})
    # A switches at years 2 and 4; B's year 3 is undefined, so it is not a switch
    assert diagnostics.definition_switches(frame, "index", ["a", "b"]) == 2


def test_partner_decomposition_shares_sum_to_one_and_effective_number():
    weights = pd.DataFrame({"iso3": ["A", "A", "B", "B", "C", "C"],
                            "partner_iso3": ["USA", "JPN"] * 3,
                            "weight": [0.8, 0.2, 0.5, 0.5, 0.1, 0.9]})
    years = list(range(2000, 2008))
    rng = np.random.default_rng(2)
    g = pd.DataFrame({"partner_iso3": np.repeat(["USA", "JPN"], 8), "year": years * 2,
                      "g": np.r_[rng.normal(1, 0.5, 8), rng.normal(1, 0.1, 8)]})
    sample = pd.DataFrame({"iso3": np.repeat(["A", "B", "C"], 8), "year": years * 3})
    out = diagnostics.partner_decomposition(sample, weights, g)
    assert out["share_of_within_variation"].sum() == pytest.approx(1.0)
    assert out["mean_exposure_weight"].sum() == pytest.approx(1.0)
    assert out.iloc[0]["partner_iso3"] == "USA"  # the volatile partner carries the variation
    assert diagnostics.effective_number(np.array([0.5, 0.5])) == pytest.approx(2.0)
    assert diagnostics.effective_number(np.array([0.6, 0.2, 0.2])) == pytest.approx(
        1 / (0.36 + 0.04 + 0.04))


def test_sample_by_country_counts_rows_and_binding_inputs():
    panel = pd.DataFrame({
        "iso3": ["A"] * 4 + ["B"] * 4, "year": [1997, 1998, 1999, 2000] * 2,
        "syn": [1.0, 1.0, np.nan, 1.0, np.nan, np.nan, np.nan, np.nan],
        "ti": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, np.nan, 1.0]})
    sample = panel[panel["syn"].notna() & panel["ti"].notna() & (panel["year"] >= 1998)]
    out = diagnostics.sample_by_country(panel, sample, (1998, 2000), variables=("syn", "ti"))
    rows = out.set_index("iso3")
    assert rows.loc["A", "rows in the sample"] == 2
    assert (rows.loc["A", "first year"], rows.loc["A", "last year"]) == (1998, 2000)
    assert rows.loc["A", "syn observed"] == 2 and rows.loc["A", "ti observed"] == 3
    assert rows.loc["B", "rows in the sample"] == 0 and rows.loc["B", "syn observed"] == 0
    assert rows.loc["B", "ti observed"] == 2 and rows.loc["total", "rows in the sample"] == 2


def test_second_build_correlation_uses_the_rows_both_definitions_cover():
    years = list(range(2000, 2006))
    rng = np.random.default_rng(3)
    frame = pd.concat([pd.DataFrame({"iso3": c, "year": years, "ti": rng.normal(size=6)})
                       for c in "ABC"], ignore_index=True)
    frame["ti_capacity"] = 2 * frame["ti"] + 1
    frame.loc[frame["iso3"] == "C", "ti_capacity"] = np.nan   # the old TI misses country C
    frame.loc[frame["iso3"] == "B", "ti_capacity"] += rng.normal(size=6)
    rows = diagnostics.second_build_rows(frame, "ti")
    value, note, _ = rows["correlation with the second build's definition (within)"]
    assert value == pytest.approx(diagnostics.within_correlation(
        frame[frame["iso3"] != "C"], "ti", "ti_capacity"))
    assert "12 rows, 2 countries" in note
    assert diagnostics.second_build_rows(frame, "syn") == {}
