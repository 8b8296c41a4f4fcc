"""The region is data (issue 21): specs/regions/<name>.yaml, validated on load.

- every bad input stops with one line naming the file, the entry and the problem;
- the default region reproduces the constants analysis/config.py held before (the country set,
  CLMV, the GPRC countries, the years) and today's folders;
- the Central Asia region loads with its 17 countries, and its measures file passes the same
  validation as the China–ASEAN table;
- RN events are 0 for a country without measures only where the region says the reference
  found none (hand-computed coverage states on the coded Mongolian measures).
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis import config
from analysis.data import specs
from analysis.data.io import DataError
from analysis.stages import indices

DEFAULT = config.REGIONS / "china_asean.yaml"
CENTRAL_ASIA = config.REGIONS / "china_asean_central_asia.yaml"
ASEAN = ("BRN", "KHM", "IDN", "LAO", "MYS", "MMR", "PHL", "SGP", "THA", "VNM")
NEW_MEMBERS = ("KAZ", "KGZ", "TJK", "TKM", "UZB", "MNG")


def _write(tmp_path: Path, name: str, edit) -> Path:
    """The default region's YAML, changed by ``edit(data)``, as ``<tmp>/<name>.yaml``."""
    data = yaml.safe_load(DEFAULT.read_text(encoding="utf-8"))
    data["name"] = name
    data["measures"]["files"] = [str(config.ROOT / f) for f in data["measures"]["files"]]
    data["measures"]["policy_events"] = str(config.ROOT / data["measures"]["policy_events"])
    edit(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _error(path: Path, context: dict | None = None) -> str:
    with pytest.raises(DataError) as caught:
        specs.load_region_file(path, context)
    message = str(caught.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------- bad input
def _set(keys: str, value):
    def edit(data):
        node = data
        *path, last = keys.split(".")
        for key in path:
            node = node[key]
        node[last] = value
    return edit


BAD = {  # case -> (edit, the entry and problem the message must name)
    "unknown key": (_set("memberz", ["IDN"]),
                    r"r\.yaml: unknown key 'memberz' \(did you mean 'members'\?\)"),
    "lower-case ISO3": (_set("members", ["BRN", "idn"]),
                        r"r\.yaml, members: 'idn' is not an ISO3 country code"),
    "repeated member": (_set("members", ["BRN", "IDN", "BRN"]),
                        r"r\.yaml, members: 'BRN' is listed twice"),
    "focal among members": (_set("members", ["CHN", *ASEAN]),
                            r"r\.yaml, members: the focal country 'CHN' is listed among"),
    "years reversed": (_set("years", [2024, 1996]),
                       (r"r\.yaml, years: years \[2024, 1996\] is reversed: the first year "
                        r"must not be after the last")),
    "years before the trade data": (_set("years", [1990, 2024]),
                                    (r"r\.yaml, years: years \[1990, 2024\] lie outside the "
                                    r"trade data \(1995–2024\)")),
    "years as text": (_set("years", ["1996", 2024]),
                      r"r\.yaml, years: '1996' is text, not a number: write 1996 without quotes"),
    "base window after the trade data": (_set("gpr.base_years", [2023, 2026]),
                                         (r"r\.yaml, gpr\.base_years: base_years \[2023, 2026\] "
                                         r"lie outside the trade data")),
    "missing measures file": (_set("measures.files", ["data/raw/rn_measures_nowhere.csv"]),
                              (r"r\.yaml, measures\.files: 'data/raw/rn_measures_nowhere\.csv' "
                              r"does not exist")),
    "missing events file": (_set("measures.policy_events", "data/raw/nothing.csv"),
                            (r"r\.yaml, measures\.policy_events: 'data/raw/nothing\.csv' does "
                            r"not exist")),
    "none found but coded": (_set("measures.none_found", ["BRN", "IDN"]),
                             (r"r\.yaml, measures\.none_found: 'IDN' has a measure in .*"
                             r"rn_measures\.csv \(IDN-01\)")),
    "none found outside the region": (_set("measures.none_found", ["KAZ"]),
                                      (r"r\.yaml, measures\.none_found: 'KAZ' is not a country "
                                      r"of the region")),
    "shrinkage target outside": (_set("gpr.shrinkage_target", ["IDN", "USA"]),
                                 (r"r\.yaml, gpr\.shrinkage_target: 'USA' is not a country of "
                                 r"the region")),
    "subgroup outside": (_set("subgroups", {"CLMV": ["KHM", "LAO", "MMR", "VMN"]}),
                         (r"r\.yaml, subgroups\.CLMV: 'VMN' is not a country of the region .*"
                         r"\(did you mean 'VNM'\?\)")),
    "partner list empty": (_set("gpr.partners", []),
                           r"r\.yaml, gpr\.partners: an empty partner list"),
    "partners neither keyword nor list": (_set("gpr.partners", "all"),
                                          (r"r\.yaml, gpr\.partners: input should be "
                                          r"'all_with_gprc'")),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_region_stops_with_one_line_naming_file_entry_and_problem(tmp_path, case):
    edit, pattern = BAD[case]
    message = _error(_write(tmp_path, "r", edit))
    assert re.search(pattern, message), message


def test_the_name_must_be_the_file_name(tmp_path):
    path = _write(tmp_path, "r", _set("name", "other_region"))
    assert _error(path).endswith("r.yaml, name: 'other_region' differs from the file name "
                                 "'r'.yaml: the name is the REGION a run is started with")


def test_an_unknown_region_names_the_known_ones():
    with pytest.raises(DataError) as caught:
        specs.region_path("china_asaen")
    assert str(caught.value).endswith(
        "china_asaen.yaml: no region 'china_asaen' (REGION=china_asaen); the regions are "
        "china_asean, china_asean_central_asia (did you mean 'china_asean'?)")
    with pytest.raises(DataError, match=r"no region '\.\./models'"):
        specs.region_path("../models")


def test_countries_and_gprc_series_are_checked_against_the_data(tmp_path):
    path = _write(tmp_path, "r", _set("members", [*ASEAN, "KAZ"]))
    data = {"countries_in_data": {"CHN", *ASEAN}, "countries_source": "the World Bank files",
            "gprc_in_data": {"CHN", "IDN", "MYS", "PHL", "THA", "VNM", "USA", "RUS"},
            "gprc_source": "data_gpr_export.xls"}
    assert _error(path, data).endswith(
        "r.yaml, members: 'KAZ' is not a country of the World Bank files")
    path = _write(tmp_path, "r", lambda d: None)
    assert specs.load_region_file(path, data).countries == ("CHN", *ASEAN)
    # a listed country without a series, and a region country whose series is not listed
    assert _error(path, {**data, "gprc_in_data": {"CHN", "IDN", "MYS", "PHL", "THA"}}).endswith(
        "r.yaml, gprc_countries: 'VNM' has no GPRC series in data_gpr_export.xls")
    assert _error(path, {**data, "gprc_in_data": {*data["gprc_in_data"], "SGP"}}).endswith(
        "r.yaml, gprc_countries: 'SGP' has a GPRC series in data_gpr_export.xls but is not "
        "listed")
    partners = _write(tmp_path, "r", _set("gpr.partners", ["USA", "JPN"]))
    assert _error(partners, data).endswith(
        "r.yaml, gpr.partners: 'JPN' has no GPRC series in data_gpr_export.xls")


def test_the_cli_checks_region_files(tmp_path, capsys):
    (tmp_path / "regions").mkdir()
    bad = _write(tmp_path / "regions", "r", _set("years", [1990, 2024]))
    assert specs.main([str(DEFAULT), str(bad)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[specs] specs/regions/china_asean.yaml: ok"
    assert out[1].startswith("[specs] ERROR ") and "years: years [1990, 2024]" in out[1]


# ------------------------------------------------------------------------- the default region
def test_the_default_region_reproduces_the_constants_config_held():
    region = specs.load_region("china_asean")
    # the constants of analysis/config.py before issue 21
    assert region.focal == "CHN"
    assert region.members == ASEAN
    assert region.countries == ("CHN", *ASEAN)
    assert region.subgroups == {"CLMV": ("KHM", "LAO", "MMR", "VNM")}
    assert region.gprc_countries == ("CHN", "IDN", "MYS", "PHL", "THA", "VNM")
    assert (region.first_year, region.last_year) == (1996, 2024)
    assert region.years == tuple(range(1996, 2025)) and len(region.years) == 29
    # what specs/indices.yaml and the indices stage held
    assert region.gpr_base_years == (1995, 1997)
    assert region.shrinkage_pool == ASEAN and region.pool_label == "ASEAN"
    assert region.gpr_partners is None  # every partner with a GPRC series
    assert region.measures_files == (config.ROOT / "data/raw/rn_measures.csv",)
    assert region.policy_events_file == config.ROOT / "data/raw/rn_policy_events.csv"
    assert region.none_found == ("BRN", "SGP") and region.is_default


def _config_paths(**env: str) -> list[str]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("REGION", "PIPELINE_PROCESSED_DIR", "PIPELINE_OUTPUTS_DIR")}
    code = ("from analysis import config; print(config.REGION); "
            "print(config.DATA_PROCESSED.relative_to(config.ROOT)); "
            "print(config.OUTPUTS.relative_to(config.ROOT)); print(config.TABLES.name)")
    run = subprocess.run([sys.executable, "-c", code], cwd=config.ROOT, capture_output=True,
                         text=True, env={**environment, **env}, check=True)
    return run.stdout.split()


def test_the_region_decides_the_folders_and_an_explicit_override_wins():
    assert _config_paths() == ["china_asean", "data/processed", "outputs", "tables"]
    assert _config_paths(REGION="china_asean") == ["china_asean", "data/processed", "outputs",
                                                   "tables"]
    assert _config_paths(REGION="china_asean_central_asia") == [
        "china_asean_central_asia", "data/processed/china_asean_central_asia",
        "outputs/china_asean_central_asia", "tables"]
    assert _config_paths(REGION="china_asean_central_asia",
                         PIPELINE_PROCESSED_DIR=str(config.ROOT / "build/p"),
                         PIPELINE_OUTPUTS_DIR=str(config.ROOT / "build/o")) == [
        "china_asean_central_asia", "build/p", "build/o", "tables"]


# ------------------------------------------------------------------------- Central Asia
def test_the_central_asia_region_loads_with_its_countries():
    region = specs.load_region("china_asean_central_asia")
    assert region.focal == "CHN"
    assert region.members == (*ASEAN, *NEW_MEMBERS)
    assert len(region.countries) == 17 and len(set(region.countries)) == 17
    # Caldara-Iacoviello publish no GPRC for any of the six new members
    assert region.gprc_countries == ("CHN", "IDN", "MYS", "PHL", "THA", "VNM")
    assert region.none_found == ("BRN", "SGP", "TJK", "TKM")
    assert region.policy_events_countries == ("CHN", *ASEAN)
    assert region.measures_files == (config.ROOT / "data/raw/rn_measures.csv",
                                     config.ROOT / "data/raw/rn_measures_central_asia.csv")
    assert region.shrinkage_pool == region.members and not region.is_default


def _central_asia_measures() -> pd.DataFrame:
    return indices.read_measures(config.ROOT / "data/raw/rn_measures_central_asia.csv",
                                 countries=specs.load_region("china_asean_central_asia").countries)


def test_the_central_asia_measures_pass_the_same_validation():
    table = _central_asia_measures()
    assert len(table) == 22
    assert table.groupby("country").size().to_dict() == {"KAZ": 5, "KGZ": 5, "MNG": 8, "UZB": 4}
    assert not {"TJK", "TKM"} & set(table["country"])      # the reference found none
    assert table["source"].str.strip().ne("").all()         # a source per row
    main = table.loc[table["main"] == "yes", "measure_id"].tolist()
    assert main == ["KAZ-05", "UZB-01", "MNG-02", "MNG-04"]
    by_id = table.set_index("measure_id")
    # scrap-only and coal rows cover no mineral group, by the rule of the China-ASEAN table
    for measure in ("KAZ-02", "UZB-02", "UZB-04", "MNG-07"):
        assert by_id.loc[measure, "groups"] == "" and "no_chain_group" in by_id.loc[measure, "rule"]
    assert "FLAG:coal" in by_id.loc["MNG-07", "coding_note"]
    # the reference's 2016-01 (= 2016-01-01) precedes the law's signature of 2016-01-14
    assert by_id.loc["KAZ-05", "effective"] == "2016-07-22"
    assert by_id.loc["KGZ-03", "rule"].startswith("never_in_force")
    # and with both tables the region reads 76 measures with unique ids
    both = indices.read_measures(list(specs.load_region("china_asean_central_asia")
                                      .measures_files),
                                 countries=specs.load_region("china_asean_central_asia").countries)
    assert len(both) == 76 and both["measure_id"].is_unique


def test_a_measure_outside_the_region_or_an_id_used_twice_is_an_error(tmp_path):
    source = config.ROOT / "data/raw/rn_measures_central_asia.csv"
    with pytest.raises(DataError) as caught:  # the default region has no KAZ
        indices.read_measures(source, countries=specs.load_region("china_asean").countries)
    assert "rn_measures_central_asia.csv, line 2 (measure_id KAZ-01), column 'country': 'KAZ' " \
           "is not a country of the panel" in str(caught.value)
    copy = tmp_path / "again.csv"
    copy.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(DataError) as caught:
        indices.read_measures([source, copy],
                              countries=specs.load_region("china_asean_central_asia").countries)
    assert str(caught.value).endswith("again.csv, line 2 (measure_id KAZ-01), column "
                                      "'measure_id': 'KAZ-01' is used twice as measure_id (also "
                                      "in data/raw/rn_measures_central_asia.csv)")


def test_rn_events_of_the_coded_mongolian_measures_by_hand():
    """Mongolia's chain exports: copper 90, precious 10 (1998-2020 weights 0.9 and 0.1).

    MNG-02 (windfall tax, copper and precious, 3/4) from 2006-06-01 to 2011-01-01; MNG-04
    (licence moratorium, every group, 1/4) from 2010-06-17 to 2014-07-01; MNG-01 (other_type)
    and MNG-05 (one-off) are in no main state.

    - 2006: 214 of 365 days at 3/4 on both groups: 0.75 x 214/365 = 0.43972...;
    - 2010: the tax all year (the moratorium's 1/4 is below it): 0.75;
    - 2011: the moratorium all year: 0.25; 2014: 181 of 365 days: 0.25 x 181/365;
    - Tajikistan (none found) 0 every year; Kyrgyzstan (coded, nothing main) 0;
    - a country the region does not list as none-found and without measures: missing.
    """
    region = specs.load_region("china_asean_central_asia")
    flows = pd.DataFrame({
        "iso3": ["MNG", "MNG", "TJK", "KGZ"], "partner_iso3": ["CHN"] * 4,
        "year": [2000] * 4, "hs6": ["260300", "261690", "260300", "261690"],
        "chain": ["copper", "precious", "copper", "precious"],
        "export_value": [90.0, 10.0, 5.0, 5.0], "import_value": 0.0, "stage": "supply"})
    measures = _central_asia_measures()
    states, _, _ = indices.rn_event_states(measures, flows, specs.load_indices_spec(),
                                           groups=indices.mineral_groups(), region=region)
    s = states.set_index(["iso3", "year"])["rn_events"]
    assert s[("MNG", 2006)] == pytest.approx(0.75 * 214 / 365, abs=1e-15)
    assert s[("MNG", 2010)] == pytest.approx(0.75, abs=1e-15)
    assert s[("MNG", 2011)] == pytest.approx(0.25, abs=1e-15)
    assert s[("MNG", 2014)] == pytest.approx(0.25 * 181 / 365, abs=1e-15)
    assert s[("MNG", 2005)] == 0.0
    assert (s["TJK"] == 0).all() and (s["KGZ"] == 0).all()
    # the same measures for a region that does not say Tajikistan was searched: missing
    unsearched = dataclasses.replace(region, none_found=("BRN", "SGP", "TKM"))
    # (only the Central Asian table here, so China and ASEAN have no rows either)
    assert indices.uncoded_countries(measures, unsearched) == [
        "CHN", "KHM", "IDN", "LAO", "MYS", "MMR", "PHL", "THA", "VNM", "TJK"]
    states, _, _ = indices.rn_event_states(measures, flows, specs.load_indices_spec(),
                                           groups=indices.mineral_groups(), region=unsearched)
    s = states.set_index(["iso3", "year"])
    assert s.loc["TJK", "rn_events"].isna().all() and s.loc["TJK", "rn_events_all"].isna().all()
    assert (s.loc["TKM", "rn_events"] == 0).all()


# ------------------------------------------------------------------------- the data and make
WARM = (config.DATA_RAW / ".fetched").exists()


@pytest.mark.skipif(not WARM and not os.environ.get("DATA_MIRROR"),
                    reason="no fetched data/raw: real-data check skipped")
def test_the_central_asia_region_agrees_with_the_real_data(tmp_path):
    from analysis.data import parsers, registry
    from analysis.stages import clean, fetch

    sources = registry.load_registry()
    fetch.fetch_all(sources, config.DATA_RAW, config.data_mirror())
    gpr = registry.source_by_name(sources, "gpr")
    monthly = parsers.parse_gpr_monthly(registry.raw_path(gpr, config.DATA_RAW), ())
    region = specs.load_region("china_asean_central_asia")
    checked = clean.region_against_data(region, sources, config.DATA_RAW, monthly)
    assert checked.countries == region.countries
    # none of the six new members has a GPRC series: listing one is an error naming the file
    bad = _write(tmp_path, "r", lambda d: d.update(
        members=[*ASEAN, *NEW_MEMBERS], gprc_countries=["CHN", "IDN", "MYS", "PHL", "THA",
                                                        "VNM", "KAZ"]))
    with pytest.raises(DataError) as caught:
        clean.region_against_data(specs.load_region_file(bad), sources, config.DATA_RAW, monthly)
    assert str(caught.value).endswith(
        "r.yaml, gprc_countries: 'KAZ' has no GPRC series in data_gpr_export.xls")


def _make_rules(region: str | None) -> dict[str, list[str]]:
    """target -> prerequisites, from make's database for REGION=region."""
    import shutil

    make = shutil.which("make")
    if make is None:
        pytest.skip("GNU make is not installed")
    extra = [] if region is None else [f"REGION={region}"]
    run = subprocess.run([make, "-pq", "--no-print-directory", "help", *extra], cwd=config.ROOT,
                         capture_output=True, text=True, check=False, timeout=120)
    rules: dict[str, list[str]] = {}
    for line in run.stdout.splitlines():
        match = re.match(r"^([^#\s][^:=]*):(?!=)\s*(.*)$", line)
        if match and not line.startswith(("\t", " ")):
            rules.setdefault(match.group(1).strip(), []).extend(
                match.group(2).split("|")[0].split())
    return rules


def test_make_writes_each_region_to_its_own_folders():
    default = _make_rules(None)
    assert "specs/regions/china_asean.yaml" in default["outputs/estimates.csv"]
    assert "data/processed/panel_clean.parquet" in default["data/processed/indices.parquet"]
    other = _make_rules("china_asean_central_asia")
    folder = "china_asean_central_asia"
    indices_out = f"data/processed/{folder}/indices.parquet"
    assert f"data/processed/{folder}/panel_clean.parquet" in other[indices_out]
    assert "data/raw/rn_measures_central_asia.csv" in other[indices_out]
    assert f"specs/regions/{folder}.yaml" in other[indices_out]
    assert f"outputs/{folder}/robustness.csv" in other[f"outputs/{folder}/report.html"]
    assert "outputs/estimates.csv" not in other


def test_make_names_the_regions_when_the_region_is_unknown():
    import shutil

    make = shutil.which("make")
    if make is None:
        pytest.skip("GNU make is not installed")
    run = subprocess.run([make, "-n", "help", "REGION=china_asaen"], cwd=config.ROOT,
                         capture_output=True, text=True, check=False, timeout=60)
    assert run.returncode != 0
    assert ("REGION=china_asaen: no region spec specs/regions/china_asaen.yaml; the regions are "
            "china_asean china_asean_central_asia") in run.stderr
