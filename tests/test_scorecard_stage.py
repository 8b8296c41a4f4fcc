"""The scorecard stage: the spec's validation (a bad entry stops with one line naming it, exit
code 2), the project-authored route and defence-list tables, and, on the real data, agreement
of the indicators with a reference that recomputes them from the raw SQLite files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import config
from analysis.data.io import DataError
from analysis.stages import scorecard as stage

SPEC = yaml.safe_load(stage.SPEC_FILE.read_text(encoding="utf-8"))


def write_spec(tmp_path: Path, change) -> Path:
    spec = yaml.safe_load(stage.SPEC_FILE.read_text(encoding="utf-8"))
    change(spec)
    path = tmp_path / "scorecard.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


# =========================================================================== spec
def test_the_project_spec_loads():
    spec = stage.load_spec()
    assert spec.weighting.methods == ["equal", "entropy", "entropy_topsis"]
    assert len(spec.dimensions) == 6
    assert {"nickel", "rare_earths", "cobalt", "lithium"} <= set(spec.minerals)
    assert spec.countries[0] == "CHN" and len(spec.countries) == 11


def _direction(spec):
    spec["dimensions"]["foreign_dependence"]["indicators"]["net_import_reliance"]["direction"] = 2


def _unknown_indicator(spec):
    spec["dimensions"]["demand_growth"]["indicators"]["reserves_ratio"] = {"direction": -1}


def _typo_key(spec):
    spec["minerls"] = spec.pop("minerals")


def _bad_code(spec):
    spec["minerals"]["nickel"]["ore"] = [260400]


def _twice(spec):
    spec["dimensions"]["military_demand"]["indicators"]["top_supplier_share"] = {"direction": 1}


def _focus(spec):
    spec["focus_minerals"] = ["nickel", "unobtainium"]


def _years(spec):
    spec["years"] = {"first": 2024, "last": 2018}


def _method(spec):
    spec["weighting"]["variants"] = ["entropy", "pca_squared"]


BAD_ENTRIES = [
    (_direction, "dimensions.foreign_dependence.indicators.net_import_reliance.direction"),
    (_unknown_indicator, "dimensions.demand_growth.indicators"),
    (_typo_key, "minerls"),
    (_bad_code, "minerals.nickel.ore"),
    (_twice, "'top_supplier_share' is in dimensions 'foreign_dependence' and 'military_demand'"),
    (_focus, "'unobtainium' is not a mineral of the spec"),
    (_years, "years"),
    (_method, "weighting.variants.1"),
]


@pytest.mark.parametrize(("change", "named"), BAD_ENTRIES, ids=[c.__name__ for c, _ in
                                                                  BAD_ENTRIES])
def test_a_bad_entry_stops_with_a_message_naming_it(tmp_path, change, named):
    path = write_spec(tmp_path, change)
    with pytest.raises(DataError) as caught:
        stage.load_spec(path)
    message = str(caught.value)
    assert named in message
    assert str(path) in message
    assert "\n" not in message


def test_the_stage_exits_2_with_one_line_naming_the_entry(tmp_path):
    path = write_spec(tmp_path, _direction)
    result = subprocess.run([sys.executable, "-m", "analysis.stages.scorecard", "--spec", str(path),
                             "--no-figures"], capture_output=True, text=True, cwd=config.ROOT,
                            env={**os.environ, "PIPELINE_CACHE": "off"}, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("[scorecard] ERROR ")
    assert "dimensions.foreign_dependence.indicators.net_import_reliance.direction" in lines[0]


def test_help_and_no_stage_imports():
    code = ("import sys, analysis.stages.scorecard; stages = ['supply_risk', 'clean', 'indices', "
            "'models', 'nickel', 'robustness', 'report', 'diagnostics']; "
            "print([s for s in stages if 'analysis.' + s in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=config.ROOT, check=True)
    assert out.stdout.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "analysis.stages.scorecard", "--help"],
                               capture_output=True, text=True, cwd=config.ROOT, check=True)
    assert "six-dimension" in help_text.stdout.lower().replace("\n", " ")


# =========================================================================== authored tables
REGIONS = pd.read_csv(config.ROOT / SPEC["routes"]["regions"], dtype=str, keep_default_na=False)
PARTNERS = sorted(REGIONS["partner"])


@pytest.fixture(scope="module")
def routes():
    spec = stage.load_spec()
    return stage.resolve_routes(config.ROOT / spec.routes.regions,
                                config.ROOT / spec.routes.routes, spec, PARTNERS).set_index(
        ["importer", "partner"])


def test_every_importer_has_a_route_from_every_partner(routes):
    spec = stage.load_spec()
    assert len(routes) == len(spec.countries) * len(PARTNERS) - len(spec.countries)
    table = pd.read_csv(config.ROOT / spec.routes.routes, dtype=str, keep_default_na=False)
    assert (table["rule"].str.len() > 20).all()
    assert set(table["certain"]) == {"yes", "no"}
    assert set(REGIONS["certain"]) == {"yes", "no"}


@pytest.mark.parametrize(("importer", "partner", "seaborne", "chokepoint", "malacca"), [
    ("CHN", "COD", True, True, True),     # DR Congo cobalt via Dar es Salaam/Durban, Malacca
    ("CHN", "PHL", True, False, False),   # Philippine nickel ore across the South China Sea
    ("CHN", "MMR", False, False, False),  # Myanmar rare earths by road into Yunnan
    ("CHN", "AUS", True, False, False),   # Australia: no EIA chokepoint
    ("CHN", "SAU", True, True, True),     # Persian Gulf: Hormuz and Malacca
    ("CHN", "CHL", True, False, False),   # transpacific
    ("CHN", "BRA", True, True, True),     # round the Cape (not a chokepoint), then Malacca
    ("IDN", "ZAF", True, False, False),   # into Java through Sunda/Lombok, not on the EIA list
    ("IDN", "DEU", True, True, False),    # Suez and Bab el-Mandeb
    ("MMR", "CHN", False, False, False),  # road from Yunnan
    ("MMR", "JPN", True, True, True),     # from the east through Malacca into the Andaman Sea
    ("MYS", "JPN", True, True, True),     # Port Klang lies in the strait
    ("SGP", "JPN", True, False, False),   # Singapore from the east
    ("SGP", "IND", True, True, True),     # Singapore from the Indian Ocean
    ("THA", "LAO", False, False, False),  # across the Mekong
    ("VNM", "COL", True, True, False),    # Panama
    ("PHL", "FIN", True, True, True),     # Danish Straits, Suez, Bab el-Mandeb, Malacca
])
def test_known_routes(routes, importer, partner, seaborne, chokepoint, malacca):
    row = routes.loc[(importer, partner)]
    assert (bool(row["seaborne"]), bool(row["chokepoint"]), bool(row["malacca"])) == \
        (seaborne, chokepoint, malacca)


def test_a_bad_route_row_is_an_error_naming_it(tmp_path):
    spec = stage.load_spec()
    table = pd.read_csv(config.ROOT / spec.routes.routes, dtype=str, keep_default_na=False)
    table.loc[3, "mode"] = "air"
    bad = tmp_path / "routes.csv"
    table.to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"row 5 .*mode must be sea or land"):
        stage.resolve_routes(config.ROOT / spec.routes.regions, bad, spec, PARTNERS)
    table = pd.read_csv(config.ROOT / spec.routes.routes, dtype=str, keep_default_na=False)
    table.loc[0, "chokepoints"] = "strait_of_gibraltar"
    table.to_csv(bad, index=False)
    with pytest.raises(DataError, match="strait_of_gibraltar"):
        stage.resolve_routes(config.ROOT / spec.routes.regions, bad, spec, PARTNERS)
    with pytest.raises(DataError, match="without a region"):
        stage.resolve_routes(config.ROOT / spec.routes.regions, config.ROOT / spec.routes.routes,
                             spec, [*PARTNERS, "XXX"])


def test_defence_lists():
    spec = stage.load_spec()
    table = stage.load_defence(config.ROOT / spec.military.table, spec)
    wide = table.pivot(index="mineral", columns="list", values="listed")
    # Regulation (EU) 2024/1252 Annex I: 15 of the 24 scored minerals are strategic
    assert int(wide["eu_crma_strategic"].sum()) == 15
    assert wide.loc[["nickel", "cobalt", "lithium", "rare_earths"], "eu_crma_strategic"].eq(1).all()
    # Annex II has tin, chromium, molybdenum and zirconium off, antimony and tantalum on
    assert wide.loc[["tin", "chromium", "molybdenum", "zirconium"], "eu_crma_critical"].eq(0).all()
    assert wide.loc[["antimony", "tantalum", "vanadium"], "eu_crma_critical"].eq(1).all()
    # China 2016: 13 of the 24 (the metals but iron and gold, plus crystalline graphite)
    assert int(wide["cn_2016_strategic"].sum()) == 13
    assert wide.loc[["manganese", "titanium", "vanadium", "platinum"], "cn_2016_strategic"
                    ].eq(0).all()
    # the US stockpile is recorded where verified and left blank (not 0) elsewhere
    assert wide.loc["cobalt", "us_nds"] == 1 and np.isnan(wide.loc["nickel", "us_nds"])
    cited = table[table["listed"].notna()]
    assert (cited["document"].str.len() > 20).all() and (cited["url"].str.len() > 10).all()


def test_a_bad_defence_row_is_an_error(tmp_path):
    spec = stage.load_spec()
    table = pd.read_csv(config.ROOT / spec.military.table, dtype=str, keep_default_na=False)
    table.loc[1, "listed"] = "yes"
    bad = tmp_path / "defence.csv"
    table.to_csv(bad, index=False)
    with pytest.raises(DataError, match="row 3: listed must be 1, 0 or empty"):
        stage.load_defence(bad, spec)
    table = pd.read_csv(config.ROOT / spec.military.table, dtype=str, keep_default_na=False)
    table = table[~((table["mineral"] == "lithium") & (table["list"] == "cn_2016_strategic"))]
    table.to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"cn_2016_strategic' has no row for mineral\(s\) "
                                        r"\['lithium'\]"):
        stage.load_defence(bad, spec)


# =========================================================================== real data
WARM = (config.DATA_RAW / ".fetched").exists()


@pytest.fixture(scope="module")
def real():
    """The stage's outputs on the real data (supply-risk import risk computed here with the
    supply-risk stage's own functions, so that the test needs no earlier `make` run)."""
    if not os.environ.get("DATA_MIRROR") and not WARM:
        pytest.skip("no DATA_MIRROR and no fetched data/raw: real-data tests skipped")
    from analysis.data import registry
    from analysis.stages import fetch
    from analysis.stages import supply_risk as sr

    source = registry.source_by_name(registry.load_registry(), sr.SOURCE)
    fetch.fetch_source(source, config.DATA_RAW, config.data_mirror())
    paths = sr.raw_paths()
    hashes = sr.verify_inputs(paths)
    inputs = sr.load_inputs(paths, say=lambda _: None, hashes=hashes)
    risk_spec = sr.load_spec()
    scores = sr.scores_from_inputs(inputs, risk_spec["geopolrisk"], risk_spec["groups"])
    spec = stage.load_spec()
    supply_risk = pd.concat(
        [scores[scores["material"] == (m.geopolrisk or m.production)].assign(mineral=name)
         for name, m in spec.minerals.items()]).rename(columns={"importer": "country"})
    raw = stage.parse_raw()
    chain_map = pd.read_csv(config.HS_CHAIN_MAP_FILE, dtype={"hs6": str})
    out = stage.compute(spec, raw, supply_risk[["country", "mineral", "year", "import_risk"]],
                        chain_map, config.HS_CHAIN_MAP_FILE)
    return spec, out, paths


def value(out, country, mineral, year, indicator) -> float:
    cells = out["cells"]
    row = cells[(cells["country"] == country) & (cells["mineral"] == mineral)
                & (cells["year"] == year) & (cells["indicator"] == indicator)]
    assert len(row) == 1
    return float(row["value"].iloc[0])


def sql(path: Path, query: str) -> list[tuple]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return connection.execute(query).fetchall()


def q(text: str) -> float:
    text = str(text).strip()
    return float(text) if text not in ("", "None", "nan", "NA") else float("nan")


def test_indicators_equal_a_recomputation_from_the_raw_files(real):
    """Reference: plain SQL on baci.db and world_mining_data.db (BACI codes 156 China, 360
    Indonesia), summed in Python, without the project's parsers or frames."""
    spec, out, paths = real
    baci = paths["baci.db"]
    # China's top supplier of cobalt (HS 282200, 810510) in 2024, tonnes
    rows = sql(baci, "select i, q from baci_trade where j = '156' and t = '2024' and "
                     "k in ('282200', '810510')")
    by = {}
    for exporter, quantity in rows:
        if not np.isnan(q(quantity)):
            by[int(exporter)] = by.get(int(exporter), 0.0) + q(quantity)
    expected = max(by.values()) / sum(by.values())
    assert value(out, "CHN", "cobalt", 2024, "top_supplier_share") == pytest.approx(
        expected, rel=1e-12)
    # China's share of world exports (value) of rare-earth compounds and metals, 2024
    codes = "('280530', '284610', '284690')"
    world = sum(q(v) for (v,) in sql(baci, f"select v from baci_trade where t = '2024' and "
                                          f"k in {codes}"))
    china = sum(q(v) for (v,) in sql(baci, f"select v from baci_trade where t = '2024' and "
                                          f"k in {codes} and i = '156'"))
    assert value(out, "CHN", "rare_earths", 2024, "processed_export_share") == pytest.approx(
        china / world, rel=1e-12)
    # Indonesia's net import reliance for lithium (HS 282520, 283691), 2022, with World Mining
    # Data's Li2O production for Indonesia (code 360; none listed = 0)
    lithium = "('282520', '283691')"
    imports = sum(q(x) for (x,) in sql(baci, f"select q from baci_trade where t = '2022' and "
                                             f"k in {lithium} and j = '360'") if not
                  np.isnan(q(x)))
    exports = sum(q(x) for (x,) in sql(baci, f"select q from baci_trade where t = '2022' and "
                                             f"k in {lithium} and i = '360'") if not
                  np.isnan(q(x)))
    produced = sql(paths["world_mining_data.db"],
                   'select "2022" from "Lithium (Li2O)" where Country_Code = \'360\'')
    p = sum(q(x) for (x,) in produced if not np.isnan(q(x)))
    net = imports - exports
    expected = max(net, 0.0) / (p + net) if net > 0 else 0.0
    assert value(out, "IDN", "lithium", 2022, "net_import_reliance") == pytest.approx(
        expected, rel=1e-12)
    # China's nickel (HS 260400) imports 2024: share that is seaborne through a chokepoint,
    # with the authored tables read directly
    regions = dict(zip(REGIONS["partner"], REGIONS["region"], strict=True))
    table = pd.read_csv(config.ROOT / spec.routes.routes, dtype=str, keep_default_na=False)
    rule = {(r.importer, r.partner): r for r in table.itertuples()}
    codes_to_label = dict(sql(baci, "select country_code, country_iso3 from "
                                    "country_codes_V202401b"))
    codes_to_label = {int(k): v for k, v in codes_to_label.items()}
    sea = exposed = 0.0
    for exporter, quantity in sql(baci, "select i, q from baci_trade where j = '156' and "
                                        "t = '2024' and k = '260400'"):
        if np.isnan(q(quantity)):
            continue
        label = codes_to_label[int(exporter)]
        entry = rule.get(("CHN", label)) or rule[("CHN", f"region:{regions[label]}")]
        if entry.mode == "sea":
            sea += q(quantity)
            exposed += q(quantity) * bool(entry.chokepoints)
    assert value(out, "CHN", "nickel", 2024, "chokepoint_share") == pytest.approx(
        exposed / sea, rel=1e-12)


def test_real_outputs_are_complete_and_honest(real):
    spec, out, _ = real
    tidy = out["tidy"]
    assert list(tidy.columns) == stage.COLUMNS
    window = tidy[tidy["method"] == "minmax"]
    n_cells = len(spec.countries) * len(spec.minerals) * (spec.years.last - spec.years.first + 1)
    assert len(window) == n_cells * len(spec.directions)   # every cell, filled or not
    assert window["score"].dropna().between(0, 1).all()
    # nickel's traded tonnes are gross ore: reliance and consumption growth are not computed
    basis = out["basis"].set_index("mineral")
    assert not basis.loc["nickel", "comparable"] and basis.loc["nickel", "ratio_median"] > 5
    assert basis.loc["rare_earths", "comparable"] and basis.loc["lithium", "comparable"]
    cells = out["cells"]
    nickel = cells[(cells["mineral"] == "nickel") & (cells["indicator"] == "net_import_reliance")]
    assert nickel["value"].isna().all()
    # no processed nickel code and no ore code for rare earths, cobalt, lithium
    ratio = cells[(cells["indicator"] == "processing_ratio")
                  & cells["mineral"].isin(["nickel", "rare_earths", "cobalt", "lithium"])]
    assert ratio["value"].isna().all()
    # the coverage table counts every missing cell of the window
    cov = out["coverage"].set_index(["dimension", "indicator"])
    scored = out["scored"]
    for (dimension, indicator), row in cov.iterrows():
        if indicator.startswith("("):
            continue
        assert row["missing"] == int(scored.loc[scored["indicator"] == indicator,
                                                "value"].isna().sum())
    # the focus cells the report shows exist for the last year
    assert (out["composites"]["year"] == spec.years.last).any()
    assert out["stability"]["tau"].between(-1, 1).all()
