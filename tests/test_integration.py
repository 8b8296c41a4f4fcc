"""The real panel, built from the hash-checked raw files (needs DATA_MIRROR or a warm cache).

Under CI, DATA_MIRROR is always set, so these tests always run there.
"""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pandas as pd
import pytest

from analysis import config
from analysis.data import registry
from analysis.data.specs import load_region
from analysis.stages import clean, fetch

REGION = load_region("china_asean")

pytestmark = pytest.mark.integration

WARM_CACHE = (config.DATA_RAW / ".fetched").exists()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not os.environ.get("DATA_MIRROR") and not WARM_CACHE:
        pytest.skip("no DATA_MIRROR and no fetched data/raw: real-data tests skipped")
    fetch.fetch_all(registry.load_registry(), config.DATA_RAW, config.data_mirror())
    out = tmp_path_factory.mktemp("processed")
    tables = tmp_path_factory.mktemp("tables")
    result = clean.build_all(config.DATA_RAW, out, tables)
    return result, out, tables


def test_panel_has_all_countries_and_years(built):
    _tables, out, _ = built
    panel = pd.read_parquet(out / "panel.parquet")
    assert sorted(panel["iso3"].unique()) == sorted(REGION.countries)
    assert panel.groupby("iso3")["year"].agg(["min", "max", "count"]).drop_duplicates().values.tolist() \
        == [[1996, 2024, 29]]
    assert not panel.duplicated(["iso3", "year"]).any()
    for name in ["dyad_panel", "trade_chain", "trade_bilateral", "trade_hs6"]:
        assert len(pd.read_parquet(out / f"{name}.parquet")) > 0


@pytest.mark.parametrize(("iso3", "year"), [("IDN", 2014), ("CHN", 2001), ("VNM", 2020),
                                            ("THA", 1996)])
def test_gprc_is_the_mean_of_the_twelve_raw_months(built, iso3, year):
    tables, _, _ = built
    source = registry.source_by_name(registry.load_registry(), "gpr")
    raw = pd.read_excel(registry.raw_path(source), usecols=["month", f"GPRC_{iso3}"])
    months = raw[pd.to_datetime(raw["month"]).dt.year == year][f"GPRC_{iso3}"]
    assert len(months) == 12 and months.notna().all()
    panel = tables["panel"].set_index(["iso3", "year"])
    assert panel.loc[(iso3, year), "gprc"] == pytest.approx(months.mean(), rel=1e-12)


def test_gprc_missing_where_no_series(built):
    panel = built[0]["panel"]
    no_series = panel[~panel["iso3"].isin(REGION.gprc_countries)]
    assert no_series["gprc"].isna().all()
    assert panel[panel["iso3"].isin(REGION.gprc_countries) & (panel["year"] <= 2024)][
        "gprc"].notna().all()


def test_wgi_gap_years_are_filled_and_flagged(built):
    panel = built[0]["panel"].set_index(["iso3", "year"])
    for year in (1997, 1999, 2001):
        assert panel.loc[("MYS", year), "wgi_ge_filled"]
        expected = (panel.loc[("MYS", year - 1), "wgi_ge"] + panel.loc[("MYS", year + 1),
                                                                         "wgi_ge"]) / 2
        assert panel.loc[("MYS", year), "wgi_ge"] == pytest.approx(expected, rel=1e-12)
    assert not panel.loc[("MYS", 1998), "wgi_ge_filled"]


def test_indonesian_nickel_ban_shows_in_trade_chain(built):
    """Indonesia's 2014 raw-ore export ban: nickel ore exports to China collapse."""
    chain = built[0]["trade_chain"].set_index(["iso3", "chain", "stage", "partner_group", "year"])
    before = chain.loc[("IDN", "nickel", "supply", "china", 2013), "export_value"]
    during = chain.loc[("IDN", "nickel", "supply", "china", 2015), "export_value"]
    assert before > 1e6 and during < 0.05 * before  # thousand USD


def test_dyad_panel_is_consistent_with_bilateral(built):
    tables = built[0]
    dyad = tables["dyad_panel"].set_index(["iso3", "year"])
    bilateral = tables["trade_bilateral"].set_index(["iso3", "partner_iso3", "year"])
    assert dyad.loc[("MYS", 2010), "exports_to_china"] == pytest.approx(
        bilateral.loc[("MYS", "CHN", 2010), "export_value"])
    stages = [c for c in dyad.columns if c.startswith("exports_to_china_")]
    assert np.allclose(dyad[stages].sum(axis=1), dyad["exports_to_china"])
    assert len(dyad) == 10 * len(REGION.years)


def test_coverage_table_lists_every_country_and_variable(built):
    """(The table used to be printed in the middle of the test run; it is in the report.)"""
    _, _, tables_dir = built
    text = (tables_dir / "data_coverage.md").read_text()
    assert "| gprc" in text and "wgi_ge" in text
    header = next(line for line in text.splitlines() if line.startswith("| variable"))
    assert all(f" {iso3} " in header for iso3 in REGION.countries)


@pytest.fixture(scope="module")
def with_indices(built, tmp_path_factory):
    from analysis.stages import indices

    _, out, tables = built
    figures = tmp_path_factory.mktemp("figures")
    frame = indices.run(out, tables, figures)
    return frame, out


def test_real_gpr_equals_hand_computation(with_indices):
    """The main GPR for VNM 2015 recomputed from the processed flows with plain pandas:
    w = pooled 1995-97 chain trade (gold excluded) with GPRC partners, g = GPRC / 1985-95 mean,
    gpr = sum over partners outside China + ASEAN of w g."""
    frame, out = with_indices
    flows = pd.read_parquet(out / "trade_flows.parquet")
    gprc = pd.read_parquet(out / "gprc_partners.parquet")
    iso3, year = "VNM", 2015
    base = flows[(flows["iso3"] == iso3) & flows["year"].between(1995, 1997)
                 & (flows["hs6"] != "710812") & flows["partner_iso3"].isin(gprc["partner_iso3"])]
    value = (base["export_value"] + base["import_value"]).groupby(base["partner_iso3"]).sum()
    assert value.sum() > 10000  # VNM's base is above the thin-base threshold: no shrinkage
    weight = value / value.sum()
    mean = gprc[gprc["year"].between(1985, 1995)].groupby("partner_iso3")["gprc"].mean()
    now = gprc[gprc["year"] == year].set_index("partner_iso3")["gprc"]
    external = [k for k in weight.index if k not in REGION.countries]
    expected = float(sum(weight[k] * now[k] / mean[k] for k in external))
    got = frame.set_index(["iso3", "year"]).loc[(iso3, year), "gpr"]
    assert got == pytest.approx(expected, rel=1e-12)


def test_real_indices_cover_the_window(with_indices):
    frame, _ = with_indices
    window = frame[frame["year"].between(1998, 2020)]
    assert window["gpr"].notna().all()          # fixed weights: every country, every year
    assert frame.loc[frame["year"] < 1998, "gpr"].isna().all()
    assert frame["rn_events"].between(0.0, 1.0).all()   # trade-weighted coverage
    assert frame["rn_events_all"].between(0.0, 1.0).all()
    assert frame["syn"].dropna().between(0, 1).all()
    # SYN is missing exactly where a flow is under USD 1 m (BRN every year)
    assert frame.loc[frame["iso3"] == "BRN", "syn"].isna().all()
    assert (frame["syn"].isna() == (frame["syn_flag"] != "")).all()
    for column in ("rn", "ti"):  # composites exist only inside the window
        assert frame.loc[~frame["year"].between(1998, 2020), column].isna().all()


def _raw_baci(columns: str, where: str) -> pd.DataFrame:
    """Rows of the raw BACI table read with plain sqlite3 (not the pipeline's parser)."""
    source = registry.source_by_name(registry.load_registry(), "geopolrisk")
    path = clean.verified_path(source, config.DATA_RAW, "baci.db")   # sha256 re-checked
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        codes = pd.read_sql_query("select country_code, country_name, country_iso3 from "
                                  "country_codes_V202401b", connection)
        trade = pd.read_sql_query(f"select {columns} from baci_trade where {where}", connection)
    return codes, trade


def test_every_baci_label_without_an_iso3_code_has_a_documented_decision(built):
    """A label of BACI's country table that is not an ISO 3166 alpha-3 code (a customs union,
    a 'nes' aggregate, a dissolved state) may hide a GPRC partner's trade: each needs a
    decision in clean.BACI_LABEL_DECISIONS (mapped to a partner, or why not)."""
    import country_converter as coco

    codes, _ = _raw_baci("t", "0")
    valid = set(coco.CountryConverter().data["ISO3"])
    undecided = sorted(set(codes["country_iso3"]) - valid - set(clean.BACI_LABEL_DECISIONS))
    assert undecided == []
    assert clean.BACI_CODE_OVERRIDES["ZA1"] == "ZAF"


def test_every_gprc_partner_trades_in_every_base_year_after_the_mapping(with_indices):
    """Each partner with a GPRC series appears in BACI in each year 1995-1997 once the labels
    are mapped: South Africa's 1995-99 trade (code 711, ZA1) would otherwise be missing."""
    _, out = with_indices
    partners = set(pd.read_parquet(out / "gprc_partners.parquet")["partner_iso3"])
    codes, trade = _raw_baci("distinct t, i, j", "cast(t as integer) between 1995 and 1997")
    label = dict(zip(codes["country_code"].astype(int), codes["country_iso3"], strict=True))
    seen = pd.concat([trade[["t", "i"]].rename(columns={"i": "c"}),
                      trade[["t", "j"]].rename(columns={"j": "c"})])
    seen["c"] = seen["c"].astype(int).map(label).replace(clean.BACI_CODE_OVERRIDES)
    years = seen.drop_duplicates().groupby("c")["t"].nunique()
    missing = {k: int(years.get(k, 0)) for k in partners if years.get(k, 0) < 3}
    assert missing == {}


def test_gprc_partner_with_base_trade_is_never_left_unweighted(with_indices):
    """Recomputed from the raw baci.db: every GPRC partner k with chain trade (gold excluded)
    with panel country i in 1995-1997 gets a positive weight, and for a country whose base is
    not shrunk w_ik = V_ik / V_i. Fails if a partner's trade is filed under a code left
    unmapped (the second build gave South Africa no weight)."""
    frame, out = with_indices
    weights = pd.read_parquet(out / "gpr_weights.parquet").set_index(["iso3", "partner_iso3"])
    partners = set(pd.read_parquet(out / "gprc_partners.parquet")["partner_iso3"])
    chain = pd.read_csv(config.HS_CHAIN_MAP_FILE, dtype={"hs6": str})
    codes_in = chain.loc[(chain["included"] == 1) & (chain["hs6"] != "710812"), "hs6"]
    codes, trade = _raw_baci("t, i, j, k, v", "cast(t as integer) between 1995 and 1997")
    label = dict(zip(codes["country_code"].astype(int), codes["country_iso3"], strict=True))
    trade = trade[trade["k"].astype(int).map("{:06d}".format).isin(set(codes_in))]
    trade = pd.DataFrame({
        "i": trade["i"].astype(int).map(label).replace(clean.BACI_CODE_OVERRIDES),
        "j": trade["j"].astype(int).map(label).replace(clean.BACI_CODE_OVERRIDES),
        "v": trade["v"].astype(str).str.strip().astype(float)})
    both = pd.concat([trade.rename(columns={"i": "iso3", "j": "k"}),
                      trade.rename(columns={"j": "iso3", "i": "k"})])
    both = both[both["iso3"].isin(REGION.countries) & both["k"].isin(partners)
                & (both["iso3"] != both["k"])]
    value = both.groupby(["iso3", "k"])["v"].sum()
    unweighted = [key for key, v in value.items() if v > 0 and weights.loc[key, "weight"] <= 0]
    assert unweighted == []
    for iso3, own in value.groupby(level="iso3"):
        if not weights.loc[iso3, "thin"].iloc[0]:
            expected = own.droplevel("iso3") / own.sum()
            got = weights.loc[iso3, "weight"].reindex(expected.index)
            np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-9)
    # South Africa: about a tenth of Thailand's base, 8% of Malaysia's, 6.5% of Singapore's
    assert weights.loc[("THA", "ZAF"), "weight"] == pytest.approx(0.109, abs=5e-4)
    assert weights.loc[("MYS", "ZAF"), "weight"] == pytest.approx(0.080, abs=5e-4)
    assert weights.loc[("SGP", "ZAF"), "weight"] == pytest.approx(0.065, abs=5e-4)
    # the second build's definition (ZA1 unmapped) is kept as a variant and differs
    assert (frame["gpr_no_zaf_mapping"] - frame["gpr"]).abs().max() > 0.01


def test_main_models_share_the_ten_country_sample(with_indices):
    """The common sample of M1-M5 with TI = science and digital capacity: G = 10, N = 182.
    Brunei never passes SYN's USD 1 m rule; Cambodia, Laos and Myanmar enter where SYN (and,
    for Laos and Myanmar, the ores share and trade openness) exist."""
    from analysis.econometrics.moderated import estimation_frame, load_model_spec

    _, out = with_indices
    panel = pd.read_parquet(out / "panel.parquet")
    frame, _ = estimation_frame(panel, load_model_spec())
    counts = frame.groupby("iso3")["year"].agg(["count", "min", "max"])
    assert len(frame) == 182 and len(counts) == 10 and "BRN" not in counts.index
    for iso3 in ("CHN", "IDN", "MYS", "PHL", "SGP", "THA", "VNM"):
        assert tuple(counts.loc[iso3]) == (23, 1998, 2020), iso3
    assert tuple(counts.loc["KHM"]) == (6, 2013, 2020)
    assert tuple(counts.loc["LAO"]) == (6, 2011, 2016)
    assert tuple(counts.loc["MMR"]) == (9, 2012, 2020)
