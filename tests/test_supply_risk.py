"""Supply risk (GeoPolRisk) and import dependence: hand computations, bad input, and agreement
with the method's reference implementation geopolrisk-py 2.0.1 on the real data.

The hand-computed examples are non-square on purpose (3 suppliers, 2 materials, 2 importers and
a region of both), so a transposed sum or a wrong denominator cannot pass by symmetry.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import config
from analysis.data import parsers
from analysis.data.io import DataError
from analysis.stages import supply_risk as sr

YEAR = 2020


# =========================================================================== pure formulas
def test_hhi_by_hand_missing_counts_as_zero():
    assert sr.hhi([4.0, 3.0, 1.0, 0.0, np.nan]) == pytest.approx(26 / 64, abs=1e-15)
    assert sr.hhi([5.0]) == 1.0
    assert math.isnan(sr.hhi([0.0, np.nan]))
    with pytest.raises(ValueError):
        sr.hhi([1.0, -1.0])


def test_import_risk_score_price_cf_by_hand():
    m, g, production = [10.0, 5.0, 25.0], [0.2, 0.9, 0.5], 10.0
    ir = sr.import_risk(m, g, production)
    assert ir == pytest.approx((2.0 + 4.5 + 12.5) / (40 + 10), abs=1e-15)  # 0.38
    score = sr.geopolrisk_score(26 / 64, ir)
    assert score == pytest.approx(0.40625 * 0.38, abs=1e-15)
    price = sr.import_price([30.0, 10.0, 60.0], [10.0, 5.0, 25.0])
    assert price == 2.5
    assert sr.characterisation_factor(score, price) == pytest.approx(
        0.40625 * 0.38 * 2.5 / 0.409412948, abs=1e-15)
    assert sr.import_risk([0.0], [0.7], 0.0) == 0.0  # nothing imported or produced
    assert sr.import_price([5.0], [np.nan]) == 0.0
    with pytest.raises(ValueError):
        sr.import_risk([1.0, 2.0], [0.5], 0.0)


# =========================================================================== synthetic inputs
def synthetic_inputs() -> dict[str, pd.DataFrame]:
    """Two importers I1, I2 (a region R of both), three suppliers X, Y, Z, producer W.

    Material A: HS 111111 and 222222, tonnes; material B: HS 333333, kg. Z has no WGI score.
    """
    codes = pd.DataFrame({"code": [1, 2, 3, 4, 5, 6], "iso3": ["I1", "I2", "X", "Y", "Z", "W"]})
    wgi = pd.DataFrame({"iso3": ["I1", "I2", "X", "Y", "TWN"],
                        "country_code": pd.array([1, 2, 3, 4, pd.NA], dtype="Int64"),
                        "year": YEAR, "wgi": [0.3, 0.4, 0.2, 0.8, 0.35], "row": range(5)})
    hs_map = pd.DataFrame({"material": ["A", "A", "B"], "sheet": ["A", "A", "B"],
                           "hs6": ["111111", "222222", "333333"],
                           "role": ["main", "complementary", "main"]})
    production = pd.DataFrame({
        "material": ["A", "A", "A", "B", "B", "B"], "sheet": ["A", "A", "A", "B", "B", "B"],
        "country_code": [1, 3, 6, 4, 5, 2], "year": YEAR,
        "production": [10.0, 50.9, 40.0, 3000.0, 1000.0, 2000.0],
        "unit": ["metr. t"] * 3 + ["kg"] * 3})
    flows = [  # exporter, importer, hs6, value (thousand USD), quantity (t)
        ("X", "I1", "111111", 40.0, 20.0), ("X", "I1", "222222", 10.0, 5.0),
        ("Y", "I1", "111111", 30.0, 10.0), ("Z", "I1", "111111", 20.0, np.nan),
        ("I2", "I1", "111111", 15.0, 15.0), ("X", "I2", "111111", 60.0, 30.0),
        ("Y", "I2", "333333", 80.0, 4.0), ("Z", "I2", "333333", 60.0, 6.0),
        ("I1", "I2", "333333", 10.0, 2.0)]
    baci = pd.DataFrame(flows, columns=["exporter", "importer", "hs6", "value", "quantity"])
    baci.insert(0, "year", YEAR)
    return {"production": production, "hs_map": hs_map, "wgi": wgi, "baci": baci,
            "codes": codes}


METHOD = {"importers": ["I1", "I2", "R"], "materials": "all", "years": "all",
          "missing_wgi": 0.5, "cf_copper": sr.CF_COPPER,
          "tonnes_per_unit": {"metr. t": 1.0, "kg": 0.001}, "wgi_aliases": {}}
GROUPS = {"R": ["I1", "I2"]}


def test_score_table_by_hand_countries_region_missing_wgi_units():
    scores = sr.scores_from_inputs(synthetic_inputs(), METHOD, GROUPS)
    got = scores.set_index(["importer", "material"])
    assert list(scores.columns[:7]) == sr.SCORE_COLUMNS and len(scores) == 3 * 2
    hhi_a = (10**2 + 50**2 + 40**2) / 100**2            # 50.9 truncated to 50, as the reference
    hhi_b = (3000**2 + 1000**2 + 2000**2) / 6000**2
    cf_cu = sr.CF_COPPER
    expected = {
        # I1, A: X 25 t (g .2), Y 10 (.8), Z 0 t (no WGI -> .5; quantity missing), I2 15 (.4);
        # P = 10 t; price over all values incl. Z's flow whose quantity is missing
        ("I1", "A"): (hhi_a, 19 / 60, 115 / 50),
        ("I1", "B"): (hhi_b, 0.0, 0.0),                  # no imports, no production
        ("I2", "A"): (hhi_a, 6 / 30, 2.0),
        # I2, B: Y 4 (.8), Z 6 (.5), I1 2 (.3); P = 2000 kg = 2 t
        ("I2", "B"): (hhi_b, 6.8 / 14, 150 / 12),
        # region: I2 -> I1 is intra-regional (g = 0) but counts in total imports; P pooled
        ("R", "A"): (hhi_a, 19 / 90, 175 / 80),
        ("R", "B"): (hhi_b, 6.2 / 14, 150 / 12),
    }
    for key, (h, ir, price) in expected.items():
        row = got.loc[key]
        assert row["hhi"] == pytest.approx(h, abs=1e-15), key
        assert row["import_risk"] == pytest.approx(ir, abs=1e-15), key
        assert row["score"] == pytest.approx(h * ir, abs=1e-15), key
        assert row["price"] == pytest.approx(price, abs=1e-13), key
        assert row["cf"] == pytest.approx(h * ir * price / cf_cu, abs=1e-13), key
    assert got.loc[("R", "A"), "production"] == 10.0 and got.loc[("I2", "B"), "production"] == 2.0


def test_missing_wgi_value_and_alias_and_reference_units():
    inputs = synthetic_inputs()
    # Y's score is missing this year (NaN cell): it gets missing_wgi, here 0.6
    inputs["wgi"].loc[inputs["wgi"]["iso3"] == "Y", "wgi"] = np.nan
    method = {**METHOD, "missing_wgi": 0.6, "importers": ["I1"]}
    row = sr.scores_from_inputs(inputs, method, GROUPS).set_index("material").loc["A"]
    assert row["import_risk"] == pytest.approx((5 + 6 + 0 + 6) / 60, abs=1e-15)
    # alias: Z (no WGI row by code) takes the row whose Code is TWN (0.35); Z's A quantity is 0,
    # so only B would change; check B for importer I2
    alias = {**METHOD, "importers": ["I2"], "wgi_aliases": {"Z": "TWN"}}
    row = sr.scores_from_inputs(synthetic_inputs(), alias, GROUPS).set_index("material").loc["B"]
    assert row["import_risk"] == pytest.approx((3.2 + 6 * 0.35 + 0.6) / 14, abs=1e-15)
    # reference units: kg converted, million m3 left as they are (the reference's unit error)
    inputs = synthetic_inputs()
    inputs["production"]["unit"] = inputs["production"]["unit"].replace("kg", "Mio m3")
    for units, tonnes in ((sr.REFERENCE_TONNES_PER_UNIT, 2000.0), ({**METHOD["tonnes_per_unit"],
                                                                    "Mio m3": 800.0}, 1.6e6)):
        method = {**METHOD, "importers": ["I2"], "tonnes_per_unit": units}
        row = sr.scores_from_inputs(inputs, method, GROUPS).set_index("material").loc["B"]
        assert row["production"] == tonnes
        assert row["import_risk"] == pytest.approx(6.8 / (12 + tonnes), abs=1e-15)
    with pytest.raises(ValueError, match="no factor for unit"):
        sr.scores_from_inputs(inputs, METHOD, GROUPS)


def test_wgi_by_partner_first_duplicate_row_and_unmatched_codes():
    wgi = pd.DataFrame({"iso3": ["GUY", "GUM", "GUY", "TWN"],
                        "country_code": pd.array([328, 316, 328, pd.NA], dtype="Int64"),
                        "year": 2018, "wgi": [0.397, 0.36, 0.538, 0.35], "row": [0, 1, 2, 3]})
    codes = pd.DataFrame({"code": [328, 316, 490], "iso3": ["GUY", "GUM", "S19"]})
    keyed = sr.wgi_by_partner(wgi, codes).set_index("partner")["wgi"]
    assert keyed["GUY"] == 0.397 and "S19" not in keyed  # first row; 'NA' code matches nothing
    keyed = sr.wgi_by_partner(wgi, codes, {"S19": "TWN"}).set_index("partner")["wgi"]
    assert keyed["S19"] == 0.35
    with pytest.raises(ValueError, match="no WGI row"):
        sr.wgi_by_partner(wgi, codes, {"S19": "XXX"})


# =========================================================================== parsers, bad input
def _write_wgi_db(path: Path, columns: dict[str, list]) -> Path:
    with sqlite3.connect(path) as connection:
        pd.DataFrame(columns).to_sql("Normalized", connection, index=False)
    return path


def test_read_wgi_db_markers_and_types(tmp_path):
    path = _write_wgi_db(tmp_path / "wgi.db", {
        "Country/Territory": ["A", "B", "C"], "Code": ["AAA", "BBB", "TWN"],
        "2018": ["0.25", "nan", "0.5"], "2019": [None, "None", "0.75"],
        "country_code": ["4", "8", "NA"]})
    frame = parsers.read_wgi_db(path)
    assert list(frame.columns) == ["iso3", "country_code", "year", "wgi", "row"]
    got = frame.set_index(["iso3", "year"])
    assert got.loc[("AAA", 2018), "wgi"] == 0.25 and got.loc[("AAA", 2018), "country_code"] == 4
    assert got.loc[["BBB"], "wgi"].isna().all() and np.isnan(got.loc[("AAA", 2019), "wgi"])
    assert pd.isna(got.loc[("TWN", 2019), "country_code"])


def test_wgi_db_without_expected_column_or_table_names_file_and_column(tmp_path):
    path = _write_wgi_db(tmp_path / "wgi.db", {"Code": ["AAA"], "2018": ["0.2"]})
    with pytest.raises(DataError, match=r"wgi\.db, column 'country_code'.*lacks a column"):
        parsers.read_wgi_db(path)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        pd.DataFrame({"x": [1]}).to_sql("Estimate", connection, index=False)
    with pytest.raises(DataError, match=r"other\.db: table 'Normalized' is missing"):
        parsers.read_wgi_db(other)
    bad = _write_wgi_db(tmp_path / "bad.db", {"Code": ["AAA"], "2018": ["high"],
                                              "country_code": ["4"]})
    with pytest.raises(DataError, match=r"bad\.db, column '2018'.*non-numeric.*'high'"):
        parsers.read_wgi_db(bad)
    with pytest.raises(DataError, match="missing"):
        parsers.read_wgi_db(tmp_path / "absent.db")


def _write_wmd(path: Path, hs_code: str = "260400", drop: str | None = None) -> Path:
    mapping = pd.DataFrame({"Sheet_name": ["Nickel", "Gallium"], "Category - WMD": ["x", "x"],
                            "Reference ID": ["Nickel", "Gallium"], "Symbol": ["Ni", "Ga"],
                            "HS Code - Complementary": ["750110;750120", None],
                            "HS Code": [hs_code, "Not Available"]})
    if drop:
        mapping = mapping.drop(columns=drop)
    nickel = pd.DataFrame({"Country": ["China", "Indonesia", "Total"],
                           "Country_Code": ["156", "360", "DELETE"],
                           "2023": [110.0, None, 2000.0], "2024": [100.0, 2200.0, 2300.0],
                           "unit": ["metr. t"] * 3})
    with sqlite3.connect(path) as connection:
        mapping.to_sql("HS Code Map", connection, index=False)
        nickel.to_sql("Nickel", connection, index=False)
        nickel.to_sql("Gallium", connection, index=False)
    return path


def test_read_world_mining_data_maps_codes_and_drops_totals(tmp_path):
    production, hs_map = parsers.read_world_mining_data(_write_wmd(tmp_path / "wmd.db"))
    assert hs_map["hs6"].tolist() == ["260400", "750110", "750120"]
    assert set(hs_map["material"]) == {"Nickel"}  # Gallium has no HS code: not covered
    assert sorted(production["country_code"].unique()) == [156, 360]  # 'Total' row dropped
    got = production.set_index(["country_code", "year"])["production"]
    assert got[(360, 2024)] == 2200.0 and np.isnan(got[(360, 2023)])


def test_world_mining_data_bad_input_names_file_and_column(tmp_path):
    with pytest.raises(DataError, match=r"wmd1\.db, column 'HS Code'.*lacks a column"):
        parsers.read_world_mining_data(_write_wmd(tmp_path / "wmd1.db", drop="HS Code"))
    with pytest.raises(DataError, match=r"wmd2\.db, column 'HS Code'.*'26O400'"):
        parsers.read_world_mining_data(_write_wmd(tmp_path / "wmd2.db", hs_code="26O400"))


# =========================================================================== dependence
def dependence_frame() -> pd.DataFrame:
    flows = [  # year, exporter, importer, hs6, value, quantity
        (2000, "S1", "A1", "100000", 10.0, 1.0), (2000, "S2", "A1", "100000", 30.0, 3.0),
        (2000, "S3", "A1", "100000", 20.0, np.nan), (2000, "S4", "A2", "100000", 40.0, 4.0),
        (2000, "A2", "A1", "100000", 25.0, 2.0), (2000, "S1", "A2", "200000", 5.0, 5.0),
        (2000, "S9", "A1", "200000", 15.0, 15.0), (2001, "S1", "A1", "100000", 7.0, 7.0),
        (2001, "S1", "A2", "100000", 3.0, np.nan), (2001, "A1", "S1", "100000", 9.0, 9.0),
        (2001, "A1", "S3", "100000", 1.0, 1.0), (1999, "S1", "A1", "100000", 99.0, 99.0)]
    return pd.DataFrame(flows, columns=["year", "exporter", "importer", "hs6", "value",
                                        "quantity"])


def test_dependence_shares_by_hand_and_sum_to_one():
    table = sr.dependence_shares(
        dependence_frame(), {"A": ["A1", "A2"], "A1": ["A1"]},
        {"S1": ["S1"], "G": ["S3", "S4"], "A": ["A1", "A2"]},
        {"m1": ["100000"], "both": ["100000", "200000"]}, "imports", True, first_year=2000)
    assert list(table.columns) == sr.DEPENDENCE_COLUMNS
    got = table.set_index(["importer", "supplier", "material", "year"])
    # group A, material m1, 2000: values S1 10, S2 30 (ROW), S3 20 + S4 40 (G), A2->A1 25 (A)
    assert got.loc[("A", "S1", "m1", 2000), "share_value"] == pytest.approx(10 / 125)
    assert got.loc[("A", "G", "m1", 2000), "share_value"] == pytest.approx(60 / 125)
    assert got.loc[("A", "A", "m1", 2000), "share_value"] == pytest.approx(25 / 125)
    assert got.loc[("A", "ROW", "m1", 2000), "share_value"] == pytest.approx(30 / 125)
    # quantity: S3's flow has none, so it leaves numerator and denominator (1+3+4+2 = 10)
    assert got.loc[("A", "G", "m1", 2000), "share_quantity"] == pytest.approx(4 / 10)
    assert got.loc[("A", "S1", "m1", 2000), "share_quantity"] == pytest.approx(1 / 10)
    # one-country importer A1 from group A (= intra flow A2 -> A1), 2001: only S1
    assert got.loc[("A1", "A", "m1", 2000), "share_value"] == pytest.approx(25 / 85)
    assert got.loc[("A1", "S1", "m1", 2001), "share_value"] == 1.0
    assert table["year"].min() == 2000  # first_year drops 1999
    assert got.loc[("A", "S1", "m1", 2001), "share_quantity"] == 1.0  # 3 t missing for A2
    sums = table.groupby(["importer", "material", "year"])[["share_value", "share_quantity"]].sum()
    assert np.allclose(sums.to_numpy(), 1.0)
    assert got.loc[("A", "S1", "both", 2000), "share_value"] == pytest.approx(15 / 145)


def test_dependence_exports_read_as_destination_share():
    table = sr.dependence_shares(dependence_frame(), {"A1": ["A1"]}, {"S1": ["S1"]},
                                 {"m1": ["100000"]}, "exports", True)
    got = table.set_index(["importer", "supplier", "year"])["share_value"]
    assert got[("S1", "A1", 2001)] == pytest.approx(0.9)  # A1 exports 9 to S1, 1 to S3
    assert got[("ROW", "A1", 2001)] == pytest.approx(0.1)
    assert len(table) == 2


def test_spec_checks_overlap_and_row_collisions(tmp_path):
    spec = sr.load_spec()
    assert spec["geopolrisk"]["importers"][-1] == "ASEAN"
    text = sr.SPEC_FILE.read_text().replace("partners: [CHN, RUS, USA, EU27]",
                                            "partners: [CHN, RUS, USA, EU27, FRA]")
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(DataError, match=r"dependence\[central_asia_destinations\]\.partners: .*overlap"):
        sr.load_spec(tmp_path / "s.yaml")
    views = {"groups": {}, "dependence": [
        {"name": "a", "direction": "imports", "reporters": ["CHN"], "partners": ["KAZ"],
         "materials": {"x": ["100000"]}},
        {"name": "b", "direction": "exports", "reporters": ["KAZ"], "partners": ["CHN"],
         "materials": {"x": ["100000"]}}]}
    frame = pd.DataFrame({"year": [2000, 2000], "exporter": ["KAZ", "KAZ"],
                          "importer": ["CHN", "RUS"], "hs6": ["100000"] * 2,
                          "value": [1.0, 1.0], "quantity": [1.0, 1.0]})
    # import view row (CHN, KAZ) = KAZ's share of China's imports; export view row (CHN, KAZ) =
    # China's share of KAZ's exports: the same key read two ways is refused
    with pytest.raises(ValueError, match="two dependence views write the row"):
        sr.dependence_table(frame, views, {})


def test_chain_materials_from_the_project_map():
    chains = sr.chain_materials(pd.read_csv(config.HS_CHAIN_MAP_FILE, dtype={"hs6": str}))
    assert chains["rare_earths"] == ["280530", "284610", "284690"]
    assert "excluded" not in chains and "260400" in chains["nickel"]


def test_pipeline_never_imports_the_reference_library():
    code = ("import sys, analysis.stages.supply_risk, analysis.stages.report; "
            "print(any(m.startswith('geopolrisk') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=config.ROOT, check=True)
    assert out.stdout.strip() == "False"
    help_text = subprocess.run([sys.executable, "-m", "analysis.stages.supply_risk", "--help"],
                               capture_output=True, text=True, cwd=config.ROOT, check=True)
    assert "GeoPolRisk" in help_text.stdout


# =========================================================================== real data
WARM_CACHE = (config.DATA_RAW / ".fetched").exists()


@pytest.fixture(scope="module")
def real_paths():
    if not os.environ.get("DATA_MIRROR") and not WARM_CACHE:
        pytest.skip("no DATA_MIRROR and no fetched data/raw: real-data tests skipped")
    from analysis.data import registry
    from analysis.stages import fetch

    source = registry.source_by_name(registry.load_registry(), sr.SOURCE)
    fetch.fetch_source(source, config.DATA_RAW, config.data_mirror())
    paths = sr.raw_paths()
    sr.verify_inputs(paths)
    return paths


@pytest.fixture(scope="module")
def real_inputs(real_paths):
    return sr.load_inputs(real_paths, say=lambda _: None)


# Cases compared with the reference by default: China and Indonesia (one-country importers) in
# every World Mining Data year, ASEAN as a region in the first and the last (the reference takes
# about 40 s per region-year), each with all 53 materials. SUPPLY_RISK_REFERENCE=all compares
# every importer of the spec in every year (about 15 minutes on 2 busy cores).
DEFAULT_REFERENCE_IMPORTERS = ["CHN", "IDN", "ASEAN"]


@pytest.fixture(scope="module")
def reference(real_paths, real_inputs, tmp_path_factory):
    """Run geopolrisk-py 2.0.1 in a subprocess with HOME in a temporary folder."""
    import importlib.util

    if importlib.util.find_spec("geopolrisk") is None:
        pytest.fail("geopolrisk-py 2.0.1 is not installed: run `make setup`")
    spec = sr.load_spec()
    importers = spec["geopolrisk"]["importers"]
    years = sorted(int(y) for y in real_inputs["production"]["year"].unique())
    years_by_importer = {}
    if os.environ.get("SUPPLY_RISK_REFERENCE") != "all":
        importers = DEFAULT_REFERENCE_IMPORTERS
        years_by_importer = {n: [years[0], years[-1]] for n in importers if n in spec["groups"]}
    codes = real_inputs["codes"].set_index("iso3")["code"]
    work = tmp_path_factory.mktemp("geopolrisk")
    cases = {"data_dir": str(real_paths["baci.db"].parent), "work_dir": str(work),
             "importers": {n: [int(codes[m]) for m in sr.members_of(n, spec["groups"])]
                           for n in importers},
             "materials": sorted(real_inputs["hs_map"]["material"].unique()),
             "years": years, "years_by_importer": years_by_importer}
    (work / "cases.json").write_text(json.dumps(cases))
    home = work / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "USERPROFILE": str(home), "MPLBACKEND": "Agg"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, str(Path(__file__).with_name(
        "geopolrisk_reference.py")), str(work / "cases.json"), str(work / "out.json")],
        cwd=work, env=env, capture_output=True, text=True, timeout=1800, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (home / "Documents" / "geopolrisk").is_dir()  # its folder went to the temporary HOME
    out = json.loads((work / "out.json").read_text())
    assert out["version"] == "2.0.1"
    return cases, out


def _ours(real_inputs, importers, units) -> pd.DataFrame:
    spec = sr.load_spec()
    method = {**spec["geopolrisk"], "importers": importers, "tonnes_per_unit": units}
    return sr.scores_from_inputs(real_inputs, method, spec["groups"])


@pytest.mark.integration
def test_equals_reference_implementation(reference, real_inputs, record_property):
    """Every case the reference computes (finite) equals ours to 1e-9, on the reference's units."""
    cases, out = reference
    ours = _ours(real_inputs, list(cases["importers"]), sr.REFERENCE_TONNES_PER_UNIT)
    ref = pd.DataFrame(out["rows"])
    merged = ref.merge(ours, on=["importer", "material", "year"], suffixes=("_ref", ""),
                       validate="one_to_one")
    assert len(merged) == len(ref)
    finite = merged[np.isfinite(merged["score_ref"])]
    worst = {}
    for column in ("hhi", "import_risk", "score", "cf", "price"):
        diff = (finite[column] - finite[f"{column}_ref"]).abs()
        worst[column] = float(diff.max())
        assert diff.max() <= 1e-9, (column, finite.loc[diff.idxmax()].to_dict())
    # the cases it does not cover are accounted for: NaN scores and failed calls
    requested = len(cases["materials"]) * sum(
        len(cases["years_by_importer"].get(n, cases["years"])) for n in cases["importers"])
    assert len(ref) + len(out["failures"]) == requested
    not_finite = merged[~np.isfinite(merged["score_ref"])]
    # the summary goes to the test report (pytest --junitxml), not between the progress dots
    record_property("reference", f"{len(finite)} cases equal to geopolrisk-py 2.0.1; max abs "
                    f"difference {worst}; NaN in the reference: "
                    f"{not_finite[['importer', 'material', 'year']].values.tolist()}; failed "
                    f"calls: {[list(f.values()) for f in out['failures']]}")


@pytest.mark.integration
def test_departures_from_the_reference_are_the_documented_ones(reference, real_inputs):
    """Where the reference gives NaN or fails because it cannot read a WGI cell ('nan' or
    'None' text), ours equals the reference run with those cells set to NULL, which it scores
    0.5 (its own rule for a missing score). Natural gas: ours converts production from million
    m3 to tonnes (800 t per million m3); with the reference's units the import risk matches, and
    the numerator sum_j g_j m_ij is the same under both."""
    cases, out = reference
    importers = list(cases["importers"])
    ours_ref_units = _ours(real_inputs, importers, sr.REFERENCE_TONNES_PER_UNIT)
    patched = pd.DataFrame(out["patched_rows"])
    if len(patched):
        merged = patched.merge(ours_ref_units, on=["importer", "material", "year"],
                               suffixes=("_ref", ""))
        assert len(merged) == len(patched) and merged["score"].notna().all()
        for column in ("hhi", "import_risk", "score", "cf"):
            assert (merged[column] - merged[f"{column}_ref"]).abs().max() <= 1e-9
    # the only calls that still fail after the patch are years without world production
    for failure in out["patched_failures"]:
        row = ours_ref_units.set_index(["importer", "material", "year"]).loc[
            (failure["importer"], failure["material"], failure["year"])]
        assert np.isnan(row["hhi"])
    spec = sr.load_spec()
    ours = _ours(real_inputs, importers, spec["geopolrisk"]["tonnes_per_unit"])
    key = ["importer", "material", "year"]
    both = ours.merge(ours_ref_units, on=key, suffixes=("", "_ref"))
    changed = both[(both["import_risk"] - both["import_risk_ref"]).abs() > 1e-12]
    assert set(changed["material"]) <= {"Natural gas"}
    gas = both[(both["material"] == "Natural gas") & (both["production_ref"] > 0)]
    assert len(gas) and (gas["production"] == 800.0 * gas["production_ref"]).all()
    assert np.allclose(gas["import_risk"] * (gas["imports"] + gas["production"]),
                       gas["import_risk_ref"] * (gas["imports"] + gas["production_ref"]),
                       rtol=1e-12, atol=1e-9)


@pytest.mark.integration
def test_reference_reads_wgi_from_baci_db_and_the_copy_equals_wgi_db(real_paths):
    """The reference joins the WGI view inside baci.db; the pipeline reads wgi.db: same table."""
    with sqlite3.connect(real_paths["baci.db"]) as a, sqlite3.connect(real_paths["wgi.db"]) as b:
        in_baci = pd.read_sql_query('select * from "Normalized"', a)
        in_wgi = pd.read_sql_query('select * from "Normalized"', b)
    pd.testing.assert_frame_equal(in_baci, in_wgi)


@pytest.mark.integration
def test_stage_outputs_and_us_china_share_by_hand(real_paths, tmp_path):
    _, dependence = sr.run(outputs=tmp_path, figures=True)
    written = pd.read_csv(tmp_path / "supply_risk.csv")
    assert list(written.columns) == sr.SCORE_COLUMNS
    assert len(written) == 12 * 53 * 7 and written["score"].between(0, 1).all()
    assert list(pd.read_csv(tmp_path / "dependence.csv").columns) == sr.DEPENDENCE_COLUMNS
    assert (tmp_path / "figures" / "supply_risk_heatmap.png").exists()
    # China's share of US imports of HS 280530/284610/284690 in 2010, straight from baci.db
    with sqlite3.connect(real_paths["baci.db"]) as connection:
        share = connection.execute(
            "select sum(case when i = '156' then cast(v as real) else 0 end) / sum(cast(v as real))"
            " from baci_trade where j = '842' and t = '2010' and k in (280530, 284610, 284690)"
        ).fetchone()[0]
    got = dependence.set_index(["importer", "supplier", "material", "year"])
    assert got.loc[("USA", "CHN", "rare_earths", 2010), "share_value"] == pytest.approx(
        share, rel=1e-12)
    assert set(dependence["view"]) == {"us_china_rare_earths", "china_asean_by_chain",
                                       "central_asia_destinations"}
    imports = dependence[dependence["view"] != "central_asia_destinations"]
    sums = imports.groupby(["importer", "material", "year"])["share_value"].sum()
    assert np.allclose(sums, 1.0)
    exports = dependence[dependence["view"] == "central_asia_destinations"]
    sums = exports.groupby(["supplier", "material", "year"])["share_value"].sum()
    assert np.allclose(sums, 1.0)


def test_report_section_reads_the_outputs(tmp_path):
    from analysis.stages import report

    rows = [("CHN", "Nickel", 2024, 0.4, 0.5, 0.2, 0.01), ("ASEAN", "Nickel", 2024, 0.4, 0.25, 0.1,
                                                             0.02),
            ("CHN", "Cobalt", 2024, 0.5, 0.9, 0.45, 5.0), ("ASEAN", "Cobalt", 2024, 0.5, 0.6,
                                                            0.3, 4.0)]
    pd.DataFrame(rows, columns=sr.SCORE_COLUMNS).to_csv(tmp_path / "supply_risk.csv", index=False)
    dependence = pd.DataFrame({"importer": "USA", "supplier": "CHN", "material": "rare_earths",
                               "year": [1995, 2000, 2003], "share_value": [0.25, 0.75, 0.5],
                               "share_quantity": [0.5, 0.625, 0.125]})
    dependence.to_csv(tmp_path / "dependence.csv", index=False)
    html = report.supply_risk_section(tmp_path)
    assert "Cobalt (0.45), Nickel (0.20)" in html          # China's scores, highest first
    assert "exceeds the bloc's for 2 of 2 materials" in html
    assert "0.25 in 1995 (by quantity 0.50) and 0.50 in 2003" in html
    assert "highest value share was 0.75, in 2000" in html
    assert "make supply-risk" in report.supply_risk_section(tmp_path / "absent")
