"""The revised constructs (METHODS.md section 3), pinned by hand on small examples."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analysis.data import partners, specs
from analysis.measures import constructs
from analysis.measures.weighting import METHODS
from analysis.stages import clean, indices

REGION = specs.load_region("china_asean")

GOLD = ["710812"]


def _flows(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["iso3", "partner_iso3", "year", "hs6", "export_value",
                                       "import_value"])


# --------------------------------------------------------------------------------- SYN
def test_synergy_shares_and_textbook_d_by_hand():
    region = {"A": {"B", "C"}, "B": {"A", "C"}}
    flows = _flows([
        # A in 2000: exports 3000 to B, 1000 to W, 9000 of gold to B (excluded);
        # imports 500 from C, 1500 from W
        ("A", "B", 2000, "260400", 3000.0, 0.0),
        ("A", "W", 2000, "260400", 1000.0, 1500.0),
        ("A", "B", 2000, "710812", 9000.0, 0.0),
        ("A", "C", 2000, "760110", 0.0, 500.0),
        # B in 2000: exports 2000 to W, 600 to A; imports 800 (under USD 1 m) from A
        ("B", "W", 2000, "260400", 2000.0, 0.0),
        ("B", "A", 2000, "260400", 600.0, 800.0),
    ])
    totals = constructs.regional_flow_totals(flows, region, exclude_hs6=GOLD)
    out = constructs.synergy_from_totals(totals, min_flow=1000.0).set_index("iso3")
    assert out.loc["A", "u_out"] == pytest.approx(3000 / 4000)
    assert out.loc["A", "u_in"] == pytest.approx(500 / 2000)
    assert out.loc["A", "syn"] == pytest.approx((0.75 * 0.25) ** 0.25, abs=1e-15)
    # the textbook D also equals sqrt(C T) with C = 2 sqrt(ab)/(a+b), T = (a+b)/2
    a, b = 0.75, 0.25
    assert out.loc["A", "syn"] == pytest.approx(np.sqrt(2 * np.sqrt(a * b) / (a + b)
                                                        * (a + b) / 2), abs=1e-15)
    # B's imports (800 thousand USD) are under USD 1 m: U_in and SYN missing, flagged
    assert out.loc["B", "u_out"] == pytest.approx(600 / 2600)
    assert np.isnan(out.loc["B", "u_in"]) and np.isnan(out.loc["B", "syn"])
    assert out.loc["B", "syn_flag"] == "imports_below_min"
    assert out.loc["A", "syn_flag"] == ""


def test_zero_denominator_is_missing_not_zero():
    assert np.isnan(constructs.materiality_share([0.0], [0.0], 0.0)[0])
    assert constructs.materiality_share([0.0], [1000.0], 1000.0)[0] == 0.0
    assert np.isnan(constructs.materiality_share([10.0], [999.0], 1000.0)[0])


def test_smoothed_share_by_hand():
    # (R + k U_bar) / (F + k) with k = 5000: a thin year is pulled to the long-run share
    assert constructs.smoothed_share(100.0, 200.0, 0.2, 5000.0) == pytest.approx(
        (100 + 1000) / 5200)
    assert constructs.smoothed_share(8e5, 1e6, 0.2, 5000.0) == pytest.approx(
        (8e5 + 1000) / (1e6 + 5000))


def test_d_rises_with_each_share_on_a_grid():
    """Property: the main aggregator never falls when a share rises; the corrected one does."""
    grid = np.linspace(0.0, 1.0, 41)
    a, b = np.meshgrid(grid, grid)
    a, b = a.ravel(), b.ravel()

    def textbook(x, y):
        return np.asarray(constructs.coupling_coordination(x, y, corrected=False))

    def corrected(x, y):
        return np.asarray(constructs.coupling_coordination(x, y, corrected=True))

    d = textbook(a, b)
    assert np.all(textbook(np.minimum(a + 0.025, 1), b) >= d - 1e-15)
    assert np.all(textbook(a, np.minimum(b + 0.025, 1)) >= d - 1e-15)
    assert constructs.d_falls_when_a_share_rises(a, b, textbook) == 0.0
    assert constructs.d_falls_when_a_share_rises(a, b, corrected) > 0.3


def test_region_excludes_the_country_itself_for_china():
    """The first build counted China as its own regional partner (no monkeypatching here)."""
    assert "CHN" not in partners.partner_groups("CHN")["region"]
    assert partners.partner_groups("CHN")["region"] == set(REGION.members)
    assert partners.partner_groups("IDN")["region"] == set(REGION.countries) - {"IDN"}
    assert all(iso3 not in partners for iso3, partners in indices.region_partners().items())


def test_first_build_u2_for_china_uses_only_its_partners_imports():
    """u2_supply(CHN) = CHN's regional supply exports / the partners' (IDN, MYS) world supply
    imports; China's own world imports (1000) must not enter the denominator."""
    rows = []

    def add(iso, stage, group, exp, imp):
        rows.append({"iso3": iso, "chain": "nickel", "stage": stage, "partner_group": group,
                     "year": 2000, "export_value": exp, "import_value": imp})
    for iso in ("CHN", "IDN", "MYS"):
        for stage in ("transformation", "recycling"):
            for group in ("world", "region"):
                add(iso, stage, group, 0.0, 0.0)
        add(iso, "demand", "world", np.nan, 5.0)
        add(iso, "demand", "region", np.nan, 1.0)
    add("CHN", "supply", "world", 40.0, 1000.0)
    add("CHN", "supply", "region", 30.0, 2.0)
    add("IDN", "supply", "world", 5.0, 60.0)
    add("IDN", "supply", "region", 0.0, 10.0)
    add("MYS", "supply", "world", 5.0, 40.0)
    add("MYS", "supply", "region", 0.0, 20.0)
    out = indices.subsystem_indicators(pd.DataFrame(rows)).set_index("iso3")
    assert out.loc["CHN", "u2_supply"] == pytest.approx(30 / (60 + 40))
    assert out.loc["IDN", "u2_supply"] == pytest.approx(0.0)


def test_top_code_shares_by_hand():
    flows = _flows([("A", "B", 2000, "760110", 0.0, 300.0), ("A", "B", 2000, "260400", 50.0,
                                                             100.0),
                    ("A", "B", 2001, "260400", 150.0, 0.0), ("A", "B", 2000, "710812", 999.0,
                                                             999.0)])
    top = constructs.top_code_shares(flows, GOLD).set_index("iso3")
    assert top.loc["A", "top_import_hs6"] == "760110"
    assert top.loc["A", "top_import_share"] == pytest.approx(300 / 400)
    assert top.loc["A", "top_export_share"] == pytest.approx(1.0)


# --------------------------------------------------------------------------------- GPR
def test_base_exposure_weights_with_shrinkage_by_hand():
    flows = _flows([
        # A (thick, USD 80 m): 1995-97 trade with P 60000, Q 20000 (+ gold with P, excluded),
        # and with Z (no GPRC series)
        ("A", "P", 1995, "260400", 30000.0, 10000.0), ("A", "P", 1996, "260400", 20000.0, 0.0),
        ("A", "Q", 1997, "260400", 0.0, 20000.0), ("A", "P", 1996, "710812", 5e6, 0.0),
        ("A", "Z", 1996, "260400", 7e5, 0.0),
        ("A", "Q", 1998, "260400", 9e9, 0.0),  # after the base: ignored
        # B (thin, 200 = USD 0.2 m): all with Q
        ("B", "Q", 1996, "260400", 200.0, 0.0),
    ])
    w = constructs.base_exposure_weights(flows, ["P", "Q", "R"], (1995, 1997), ["A", "B"],
                                         pool=["A", "B"], thin_threshold=10000.0,
                                         pseudo_count=10000.0, exclude_hs6=GOLD)
    w = w.set_index(["iso3", "partner_iso3"])
    assert w.loc[("A", "P"), "weight"] == pytest.approx(60000 / 80000)
    assert w.loc[("A", "Q"), "weight"] == pytest.approx(20000 / 80000)
    assert w.loc[("A", "R"), "weight"] == 0.0 and not w.loc[("A", "P"), "thin"]
    # pooled composition over P, Q, R: P 60000, Q 20200, R 0 of 80200
    v, k = 200.0, 10000.0
    assert w.loc[("B", "Q"), "thin"]
    assert w.loc[("B", "Q"), "weight_raw"] == pytest.approx(1.0)
    assert w.loc[("B", "Q"), "weight"] == pytest.approx((v * 1.0 + k * 20200 / 80200) / (v + k))
    assert w.loc[("B", "P"), "weight"] == pytest.approx((k * 60000 / 80200) / (v + k))
    assert w.groupby("iso3")["weight"].sum().tolist() == pytest.approx([1.0, 1.0])


def test_standardise_gprc_by_hand():
    years = list(range(1985, 1996))
    gprc = pd.DataFrame({"partner_iso3": ["P"] * 12 + ["Q"] * 2,
                         "year": [*years, 2000, 1990, 2000],
                         "gprc": [2.0] * 5 + [4.0] * 6 + [6.0, 1.0, 1.0]})
    g = constructs.standardise_gprc(gprc, (1985, 1995)).set_index(["partner_iso3", "year"])
    base = (5 * 2.0 + 6 * 4.0) / 11
    assert g.loc[("P", 2000), "g"] == pytest.approx(6.0 / base)
    assert g.loc[("P", 1985), "g"] == pytest.approx(2.0 / base)
    assert "Q" not in g.index.get_level_values(0)  # incomplete base window: dropped
    log = constructs.standardise_gprc(gprc, (1985, 1995), "log_ratio").set_index(
        ["partner_iso3", "year"])
    assert log.loc[("P", 2000), "g"] == pytest.approx(np.log(6.0 / base))


def test_exposure_index_split_and_missing_partner():
    weights = pd.DataFrame({"iso3": ["A", "A", "A"], "partner_iso3": ["USA", "CHN", "JPN"],
                            "weight": [0.5, 0.3, 0.2]})
    g = pd.DataFrame({"partner_iso3": ["USA", "CHN", "JPN", "USA", "CHN"],
                      "year": [2000, 2000, 2000, 2001, 2001], "g": [2.0, 1.5, 0.5, 1.0, 1.0]})
    out = constructs.exposure_index(weights, g, region={"CHN", "A"}).set_index("year")
    assert out.loc[2000, "gprx_ext"] == pytest.approx(0.5 * 2.0 + 0.2 * 0.5)
    assert out.loc[2000, "gprx_reg"] == pytest.approx(0.3 * 1.5)
    assert out.loc[2000, "gprx"] == pytest.approx(1.1 + 0.45)
    assert out.loc[2000, "ext_share"] == pytest.approx(0.7)
    assert np.isnan(out.loc[2001, "gprx_ext"])  # JPN has no 2001 value: never renormalised


# ---------------------------------------------------------------------------------- RN
def test_in_force_state_with_partial_loosening_and_lift_by_hand():
    measures = pd.DataFrame({
        "measure_id": ["ban", "moratorium", "never"],
        "country": ["IDN", "PHL", "CHN"],
        "intensity": [4.0, 1.0, 2.0],
        "effective": ["2014-01-12", "2012-07-06", "2025-11-08"],
        "lifted": ["", "2021-04-14", "2025-11-07"],
        "changes": ["2017-01-11=2;2020-01-01=4", "", ""],
    })
    years = (2013, 2014, 2017, 2019, 2020, 2021, 2022, 2025)
    state = constructs.in_force_state(measures, ("IDN", "PHL", "CHN", "SGP"), years)
    s = state.set_index(["iso3", "year"])["rn_events"]
    assert s[("IDN", 2013)] == 0.0
    assert s[("IDN", 2014)] == pytest.approx(4 * (365 - 11) / 365)
    assert s[("IDN", 2017)] == pytest.approx(4 * 10 / 365 + 2 * 355 / 365)
    assert s[("IDN", 2019)] == pytest.approx(2.0)
    assert s[("IDN", 2020)] == pytest.approx(4.0)
    assert s[("PHL", 2021)] == pytest.approx(1 * 103 / 365)  # lifted 14 April: back to zero
    assert s[("PHL", 2022)] == 0.0                         # lifting never goes negative
    assert s[("CHN", 2025)] == 0.0                         # never entered into force
    assert (state["rn_events"] >= 0).all() and s[("SGP", 2020)] == 0.0
    with pytest.raises(ValueError, match=">= 0"):
        constructs.in_force_state(measures.assign(intensity=[-1.0, 1.0, 1.0]), ("IDN",), (2014,))


def test_year_share_and_dates():
    assert constructs.year_share_in_force(dt.date(2020, 7, 1), None, 2020) == pytest.approx(
        184 / 366)
    assert constructs._to_date("2006-11") == dt.date(2006, 11, 1)
    assert constructs.parse_changes("2020-01-01=4;2017-01-11=2") == [
        (dt.date(2017, 1, 11), 2.0), (dt.date(2020, 1, 1), 4.0)]


def _coverage_measures() -> pd.DataFrame:
    """Country A: a tin-ore ban (4) and a licensing rule (2) over tin and copper (a broad scope,
    two groups) overlap on tin; on nickel a duty (3) is replaced mid-2015 by a ban (4). Country
    C has a measure but no exports in the weight window; B has neither."""
    return pd.DataFrame({
        "measure_id": ["ban_tin", "licence", "duty_ni", "ban_ni", "c_ban"],
        "country": ["A", "A", "A", "A", "C"],
        "groups": ["tin", "copper;tin", "nickel", "nickel", "copper"],
        "intensity": [4.0, 2.0, 3.0, 4.0, 4.0],
        "effective": ["2002-06-01", "2014-07-02", "2015-01-01", "2015-07-01", "2015-01-01"],
        "lifted": ["", "2015-04-01", "2015-07-01", "", ""],
        "changes": ["", "", "", "", ""],
    })


def _coverage_weights() -> pd.DataFrame:
    return pd.DataFrame({"iso3": ["A"] * 3 + ["B"] * 3 + ["C"] * 3,
                         "group": ["copper", "nickel", "tin"] * 3,
                         "weight": [0.3, 0.5, 0.2, 0.6, 0.4, 0.0, np.nan, np.nan, np.nan]})


def test_coverage_state_by_hand():
    """RN_events = sum_g w_g s_g, s_g the year-average of the strongest measure / 4 on g.

    A's weights: copper 0.3, nickel 0.5, tin 0.2 (3 groups x 2 years, unequal weights).
    - tin: ban (4) all along and licensing (2) from 2014-07-02 overlap: the maximum, s = 1 in
      both years (a sum over measures would give 1 + 0.5 x 183/365 in 2014);
    - copper: only the broad-scope licensing: 2014-07-02..2014-12-31 is 183 of 365 days,
      s = 2/4 x 183/365; 2015-01-01..2015-03-31 is 90 days, s = 2/4 x 90/365;
    - nickel: 2015 duty (3) for 181 days (to 2015-07-01) then a ban (4) for 184 days:
      s = (3 x 181 + 4 x 184) / (4 x 365) (no dip in the handover year); 0 in 2014.
    2014: 0.2 + 0.3 x 0.5 x 183/365 = 0.27520548; 2015: 0.2 + 0.3 x 0.5 x 90/365
    + 0.5 x (543 + 736)/1460 = 0.67500000.
    """
    groups = ["copper", "nickel", "tin"]
    s = constructs.coverage_by_group(_coverage_measures(), groups, ("A", "B", "C"),
                                     (2014, 2015)).set_index(["iso3", "group", "year"])["coverage"]
    assert s[("A", "tin", 2014)] == 1.0 and s[("A", "tin", 2015)] == 1.0
    assert s[("A", "copper", 2014)] == pytest.approx(0.5 * 183 / 365, abs=1e-15)
    assert s[("A", "copper", 2015)] == pytest.approx(0.5 * 90 / 365, abs=1e-15)
    assert s[("A", "nickel", 2014)] == 0.0
    assert s[("A", "nickel", 2015)] == pytest.approx((3 * 181 + 4 * 184) / (4 * 365), abs=1e-15)
    state = constructs.coverage_state(_coverage_measures(), _coverage_weights(),
                                      ("A", "B", "C"), (2014, 2015))
    rn = state.set_index(["iso3", "year"])["rn_events"]
    assert rn[("A", 2014)] == pytest.approx(0.2 + 0.3 * 0.5 * 183 / 365, abs=1e-15)
    assert rn[("A", 2014)] == pytest.approx(0.27520548, abs=1e-8)
    assert rn[("A", 2015)] == pytest.approx(0.675, abs=1e-15)
    assert rn[("B", 2014)] == 0.0 and rn[("B", 2015)] == 0.0   # no measure: 0
    assert rn[("C", 2014)] == 0.0         # no exports to weight, but nothing in force: 0
    assert np.isnan(rn[("C", 2015)])      # no exports to weight a measure in force: missing
    assert state["rn_events"].dropna().between(0.0, 1.0).all()


def test_coverage_state_stays_in_unit_interval_and_checks_its_input():
    # every group banned all year by two measures each: the state is 1, never 2
    measures = pd.DataFrame({"measure_id": ["x", "y"], "country": ["A", "A"],
                             "groups": ["copper;nickel;tin", "copper;nickel;tin"],
                             "intensity": [4.0, 4.0], "effective": ["2000-01-01"] * 2,
                             "lifted": ["", ""], "changes": ["", ""]})
    state = constructs.coverage_state(measures, _coverage_weights(), ("A",), (2001,))
    assert state["rn_events"].iloc[0] == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(ValueError, match="not mineral groups"):
        constructs.coverage_state(measures.assign(groups="copper;cobalt"), _coverage_weights(),
                                  ("A",), (2001,))
    with pytest.raises(ValueError, match="outside"):
        constructs.coverage_state(measures.assign(intensity=[5.0, 1.0]), _coverage_weights(),
                                  ("A",), (2001,))


def test_group_count_ignores_intensity_and_weights():
    count = constructs.group_count_state(_coverage_measures(), ["copper", "nickel", "tin"],
                                         ("A", "B"), (2014, 2015))
    c = count.set_index(["iso3", "year"])["count"]
    # 2014: tin all year + copper 183 days; 2015: tin + copper 90 days + nickel all year
    assert c[("A", 2014)] == pytest.approx(1 + 183 / 365, abs=1e-15)
    assert c[("A", 2015)] == pytest.approx(2 + 90 / 365, abs=1e-15)
    assert c[("B", 2015)] == 0.0


def test_measure_segments_changes_lift_and_never_in_force():
    m = {"effective": "2014-01-12", "lifted": "", "intensity": 4.0,
         "changes": "2017-01-11=2;2020-01-01=4"}
    assert constructs.measure_segments(m) == [
        (dt.date(2014, 1, 12), dt.date(2017, 1, 11), 4.0),
        (dt.date(2017, 1, 11), dt.date(2020, 1, 1), 2.0),
        (dt.date(2020, 1, 1), None, 4.0)]
    # a change to 0 ends the restriction (the 2009 mandate carried by the 2014 bans)
    assert constructs.measure_segments({"effective": "2009-01-12", "lifted": "", "intensity": 3,
                                        "changes": "2014-01-12=0"}) == [
        (dt.date(2009, 1, 12), dt.date(2014, 1, 12), 3.0)]
    assert constructs.measure_segments({"effective": "2025-11-08", "lifted": "2025-11-07",
                                        "intensity": 2, "changes": ""}) == []
    # a change dated on the effective date replaces the initial level
    assert constructs.measure_segments({"effective": "2010-01-01", "lifted": "2011-01-01",
                                        "intensity": 3, "changes": "2010-01-01=2"}) == [
        (dt.date(2010, 1, 1), dt.date(2011, 1, 1), 2.0)]


def test_export_group_weights_by_hand():
    """Pooled over the window, gold excluded: A exports nickel 30 + 10, copper 60, gold 500
    (excluded), and 900 copper in 1997 (outside the window): w = 0.4 nickel, 0.6 copper."""
    flows = _flows([
        ("A", "CHN", 1998, "260400", 30.0, 0.0), ("A", "JPN", 1999, "260400", 10.0, 5.0),
        ("A", "CHN", 1999, "260300", 60.0, 0.0), ("A", "CHN", 1999, "710812", 500.0, 0.0),
        ("A", "CHN", 1997, "260300", 900.0, 0.0), ("B", "CHN", 1997, "260300", 4.0, 0.0)])
    flows["chain"] = flows["hs6"].map({"260400": "nickel", "260300": "copper",
                                       "710812": "precious"})
    w = constructs.export_group_weights(flows, range(1998, 2000), GOLD,
                                       ["copper", "nickel", "precious"])
    w = w.set_index(["iso3", "group"])["weight"]
    assert w[("A", "nickel")] == pytest.approx(0.4) and w[("A", "copper")] == pytest.approx(0.6)
    assert w[("A", "precious")] == 0.0
    assert w.loc["B"].isna().all()   # no exports in the window: undefined, not 0
    base = constructs.export_group_weights(flows, [1997], GOLD, ["copper", "nickel"])
    assert base.set_index(["iso3", "group"])["weight"][("B", "copper")] == 1.0


def test_project_measures_file_follows_the_coding_rules():
    measures = indices.read_measures()
    main = measures[measures["main"] == "yes"]
    assert "CHN" in set(main["country"])
    assert not main["mineral"].str.contains("sand").any()
    assert (measures["source"].str.len() > 10).all()
    levels = specs.load_indices_spec()["rn"]["levels"]
    assert (measures["intensity"] == measures["category"].map(levels)).all()
    rules = measures.set_index("measure_id")["rule"]
    assert rules["IDN-11"] == "one_off_act" and "IDN-11" not in set(main["measure_id"])
    # China's 2007-2015 duties and its W/Mo quotas enter the main state at the later start
    for mid, start in (("CHN-02", "2007-01-01"), ("CHN-04", "2007-01-01"),
                       ("CHN-06", "2007-01-01"), ("CHN-03", "1999-01"),
                       ("CHN-05", "2008-01-01"), ("CHN-09", "2006-12-31")):
        row = measures.set_index("measure_id").loc[mid]
        assert (row["main"], row["effective"]) == ("yes", start), mid
        assert "uncertain_start_later_date" in rules[mid]
    # unverified main rows only under the uncertain-start rule
    assert main.loc[main["verified"] == "no", "rule"].str.contains(
        "uncertain_start_later_date").all()
    # unknown lift dates end at the documented stay or last documented date
    lifted = measures.set_index("measure_id")["lifted"]
    assert (lifted["PHL-02"], lifted["PHL-03"], lifted["LAO-03"]) == (
        "2017-02-09", "2017-02-15", "2016-10-20")


def test_real_measures_coverage_by_group_by_hand():
    """The coverage of a few real country-groups, from the coded dates."""
    measures = indices.read_measures()
    main = measures[measures["main"] == "yes"]
    s = constructs.coverage_by_group(main, indices.mineral_groups(), REGION.countries,
                                     (2005, 2016, 2017, 2019)).set_index(
        ["iso3", "group", "year"])["coverage"]
    assert s[("CHN", "rare_earths", 2005)] == 0.75      # RE export quota 1999-2014
    assert s[("CHN", "battery_alloy", 2005)] == 0.75    # W quota 1999-2014, W/Mo duties 2007-
    assert s[("CHN", "rare_earths", 2016)] == 0.0       # abolished 2015 after WTO DS431
    assert s[("CHN", "battery_alloy", 2016)] == 0.5     # graphite licensing (CHN-09) to 2023
    # Indonesia 2016: bans (4) on nickel, bauxite, the refined ores and tin ore; copper
    # concentrates under the duty (3) only
    for group, value in (("nickel", 1.0), ("aluminium", 1.0), ("precious", 1.0), ("tin", 1.0),
                         ("battery_alloy", 1.0), ("copper", 0.75)):
        assert s[("IDN", group, 2016)] == value, group
    # 2019: the nickel and bauxite bans relaxed to 2 from 2017-01-11; Grasberg adds nothing
    assert s[("IDN", "nickel", 2019)] == 0.5 and s[("IDN", "aluminium", 2019)] == 0.5
    assert s[("IDN", "copper", 2019)] == 0.75
    # Laos's moratorium, last documented in force on 2016-10-19: 293 of 366 days of 2016
    laos = constructs.coverage_by_group(main, indices.mineral_groups(), ("LAO",), (2016, 2017))
    laos = laos[laos["group"] == "copper"]
    assert laos["coverage"].tolist() == pytest.approx([0.25 * 293 / 366, 0.0], abs=1e-15)
    # the Philippine closure orders (stayed after a week) add nothing to EO 79's 0.25
    assert s[("PHL", "nickel", 2017)] == 0.25
    assert s[("SGP", "copper", 2017)] == 0.0            # the reference has no measure for SGP


def test_second_build_state_is_reproduced_from_the_file():
    """The second build's sum over measures (its main rows, unknown lift dates never lifted):
    CHN 2005 = 3 (RE quota); IDN 2016 = nickel, bauxite and other-ore bans (4 each), concentrate
    duty 3, tin-ore ban 4, tin exchange rule 2 = 21; 2019: nickel and bauxite relaxed to 2,
    Grasberg (3) added = 20."""
    measures = indices.read_measures()
    unknown = measures["rule"].str.contains("unknown_lift")
    second = measures.assign(lifted=measures["lifted"].where(~unknown, ""))
    second = second[second["second_build_main"] == "yes"]
    state = constructs.in_force_state(second, REGION.countries, tuple(range(1996, 2025)))
    s = state.set_index(["iso3", "year"])["rn_events"]
    assert s[("CHN", 2005)] == pytest.approx(3.0)
    assert s[("CHN", 2016)] == 0.0
    assert s[("IDN", 2016)] == pytest.approx(21.0)
    assert s[("IDN", 2019)] == pytest.approx(20.0)
    assert s[("PHL", 2019)] == pytest.approx(4.0)     # EO 79, PHL-02/03 never lifted, PHL-04


# ---------------------------------------------------------------------------------- TI
def test_ti_inputs_log_transform_and_observed_only():
    panel = pd.DataFrame({"iso3": ["A", "A"], "year": [2000, 2001],
                          "patents_per_million": [0.0, 999.0],
                          "patents_per_million_filled": [False, True],
                          "internet_users": [10.0, 20.0], "internet_users_filled": [False, False]})
    spec = {"ti": {"log1p": ["patents_per_million"],
                   "indicators": {"patents_per_million": {}, "internet_users": {}}}}
    out = indices.ti_inputs(panel, spec)
    assert out["patents_per_million"].tolist() == pytest.approx([0.0, np.log(1000.0)])
    assert out["internet_users"].tolist() == [10.0, 20.0]
    assert np.isnan(out["patents_per_million_observed"].iloc[1])


def test_interior_gaps_are_filled_up_to_four_years_only():
    years = list(range(2000, 2013))
    values = [0.0, np.nan, np.nan, np.nan, np.nan, 5.0,            # gap of 4: filled
              np.nan, np.nan, np.nan, np.nan, np.nan, 11.0, np.nan]  # gap of 5: not; trailing
    frame = pd.DataFrame({"iso3": "A", "year": years, "x": values})
    out = clean.fill_interior_gaps(frame, ["x"])
    assert out["x"].iloc[1:5].tolist() == pytest.approx([1.0, 2.0, 3.0, 4.0])
    assert out["x"].iloc[6:11].isna().all() and np.isnan(out["x"].iloc[12])
    assert out["x_filled"].sum() == 4
    uncapped = clean.fill_interior_gaps(frame, ["x"], max_gap=None)
    assert uncapped["x"].iloc[8] == pytest.approx(8.0)
    assert np.isnan(uncapped["x"].iloc[12])  # without a cap, still never extrapolated


# --------------------------------------------------------------------------- composites
@pytest.mark.parametrize("method", list(METHODS))
def test_fixed_set_composite_equals_the_method_on_reference_rows(method):
    rng = np.random.default_rng(3)
    data = pd.DataFrame(rng.uniform(0, 10, size=(9, 3)), columns=["a", "b", "c"])
    data.loc[7, "b"] = np.nan
    directions = {"a": 1, "b": -1, "c": 1}
    reference = pd.Series([True] * 6 + [False] * 3)
    scores, weights, n = constructs.fixed_set_composite(data, directions, method, 1e-4,
                                                        reference)
    own = METHODS[method](data.loc[:5], directions, 1e-4)
    assert n == 6
    np.testing.assert_allclose(scores.loc[:5], own.scores, rtol=0, atol=1e-12)
    np.testing.assert_allclose(weights, own.weights, rtol=0, atol=1e-12)
    assert np.isnan(scores.loc[7])  # a missing input: missing, never renormalised
    assert np.isfinite(scores.loc[[6, 8]]).all()


def test_fixed_set_composite_outside_the_window_uses_window_min_max():
    data = pd.DataFrame({"a": [0.0, 4.0, 2.0, 1.0, 6.0], "b": [1.0, 3.0, 2.0, 2.0, 0.0]})
    reference = pd.Series([True, True, True, True, False])
    scores, weights, _ = constructs.fixed_set_composite(data, {"a": 1, "b": -1}, "equal", 0.0,
                                                        reference)
    assert weights.tolist() == [0.5, 0.5]
    # row 4: a' = (6 - 0) / 4 = 1.5 (outside [0, 1]), b' = (3 - 0) / 2 = 1.5 (reversed)
    assert scores.loc[4] == pytest.approx((1.5 + 1.5) / 2)
    assert scores.loc[0] == pytest.approx((0.0 + 1.0) / 2)
