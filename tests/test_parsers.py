"""Each parser on small synthetic files written in the official layouts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.data import parsers
from analysis.data.io import DataError
from tests import synthetic


def test_wdi_csv_reads_preamble_layout_and_drops_aggregates(tmp_path):
    path = synthetic.write_wdi_csv(tmp_path / "API_X.csv", "NY.GDP.TOTL.RT.ZS",
                                   {"IDN": {1995: 4.5, 1996: 5.25}, "WLD": {1995: 99.0}})
    frame = parsers.parse_wdi_csv(path, "NY.GDP.TOTL.RT.ZS", "rents")
    assert set(frame["iso3"]) == {"CHN", "BRN", "KHM", "IDN", "LAO", "MYS", "MMR", "PHL", "SGP",
                                  "THA", "VNM"}
    assert list(frame.columns) == ["iso3", "year", "rents"]
    idn = frame.set_index(["iso3", "year"])["rents"]
    assert idn[("IDN", 1995)] == 4.5 and idn[("IDN", 1996)] == 5.25
    assert np.isnan(idn[("IDN", 1997)])
    assert len(frame) == 11 * 11  # 11 countries × 1990–2000, no aggregates


def test_wdi_wrong_indicator_names_file_and_column(tmp_path):
    path = synthetic.write_wdi_csv(tmp_path / "API_X.csv", "SP.POP.TOTL", {})
    with pytest.raises(DataError, match=r"API_X\.csv, column 'Indicator Code'.*SP\.POP\.TOTL"):
        parsers.parse_wdi_csv(path, "NY.GDP.TOTL.RT.ZS", "rents")


def test_wdi_renamed_column_stops(tmp_path):
    path = synthetic.write_wdi_csv(tmp_path / "API_X.csv", "SP.POP.TOTL", {})
    path.write_text(path.read_text().replace('"Country Code"', '"Country ISO"'))
    with pytest.raises(DataError, match=r"API_X\.csv, column 'Country Code'"):
        parsers.parse_wdi_csv(path, "SP.POP.TOTL", "population")


def test_wdi_truncated_file_stops(tmp_path):
    path = synthetic.write_wdi_csv(tmp_path / "API_X.csv", "SP.POP.TOTL", {})
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:9]) + "\n")  # preamble + header + a few rows
    with pytest.raises(DataError, match=r"API_X\.csv: countries missing .*truncated"):
        parsers.parse_wdi_csv(path, "SP.POP.TOTL", "population")


def test_wdi_non_numeric_value_is_an_error_not_a_silent_nan(tmp_path):
    path = synthetic.write_wdi_csv(tmp_path / "API_X.csv", "SP.POP.TOTL", {"IDN": {1995: 1.0}})
    path.write_text(path.read_text().replace('"1.0"', '"1,0x"'))
    with pytest.raises(DataError, match=r"column 'population'.*non-numeric.*1,0x"):
        parsers.parse_wdi_csv(path, "SP.POP.TOTL", "population")


def test_gpr_workbook_trailing_label_columns_and_annual_means(tmp_path):
    monthly = synthetic.gpr_monthly_frame(range(2000, 2003))
    path = synthetic.write_gpr_workbook(tmp_path / "data_gpr_export.xlsx", monthly)
    parsed = parsers.parse_gpr_monthly(path)
    assert "var_name" not in parsed and "var_label" not in parsed
    assert len(parsed) == 36
    global_series, country = parsers.annualise_gpr(parsed)
    expected = monthly.loc[monthly["month"].dt.year == 2001, "GPRC_IDN"].mean()
    got = country.set_index(["partner_iso3", "year"]).loc[("IDN", 2001), "gprc"]
    assert got == pytest.approx(expected, rel=1e-12)
    assert global_series.set_index("year").loc[2002, "gpr_threats"] == pytest.approx(
        monthly.loc[monthly["month"].dt.year == 2002, "GPRT"].mean(), rel=1e-12)
    assert set(country["partner_iso3"]) == {"CHN", "IDN", "MYS", "PHL", "THA", "VNM", "USA", "JPN"}


def test_gpr_incomplete_year_is_not_averaged(tmp_path):
    monthly = synthetic.gpr_monthly_frame(range(2000, 2002))
    monthly.loc[monthly["month"] == "2001-07-01", "GPRC_THA"] = np.nan
    path = synthetic.write_gpr_workbook(tmp_path / "g.xlsx", monthly)
    _, country = parsers.annualise_gpr(parsers.parse_gpr_monthly(path))
    tha = country[country["partner_iso3"] == "THA"].set_index("year")["gprc"]
    assert 2001 not in tha.index and 2000 in tha.index


def test_gpr_missing_country_column_names_it(tmp_path):
    monthly = synthetic.gpr_monthly_frame().drop(columns="GPRC_VNM")
    path = synthetic.write_gpr_workbook(tmp_path / "g.xlsx", monthly)
    with pytest.raises(DataError, match=r"g\.xlsx, column 'GPRC_VNM'"):
        parsers.parse_gpr_monthly(path)


def test_wgi_missing_years_and_markers(tmp_path):
    path = tmp_path / "wgidataset.xlsx"
    synthetic.wgi_frame().to_excel(path, index=False)
    wgi = parsers.parse_wgi(path)
    assert sorted(wgi["year"].unique()) == [1996, 1998, 2000, 2002, 2003]  # no 1997/1999/2001
    assert set(wgi["iso3"]) == set(synthetic.COUNTRIES)  # ROM/ADO are not panel countries
    row = wgi.set_index(["iso3", "year"]).loc[("IDN", 2002)]
    assert row["wgi_ge"] == pytest.approx(0.1 * 2 + 0.01 * 6)
    assert row["wgi_cc"] == pytest.approx(0.1 * 5 + 0.01 * 6)


def test_wgi_renamed_estimate_column(tmp_path):
    path = tmp_path / "wgidataset.xlsx"
    synthetic.wgi_frame().rename(columns={"estimate": "est"}).to_excel(path, index=False)
    with pytest.raises(DataError, match=r"wgidataset\.xlsx, column 'estimate'"):
        parsers.parse_wgi(path)


def test_wui_quarterly_to_annual(tmp_path):
    path, frame = synthetic.write_wui_workbook(tmp_path / "WUI_Data.xlsx")
    wui = parsers.parse_wui(path).set_index(["iso3", "year"])["wui"]
    assert wui[("IDN", 2001)] == pytest.approx(frame.loc[4:7, "IDN"].mean(), rel=1e-12)
    assert np.isnan(wui[("KHM", 2002)])  # one quarter missing → no annual value
    assert "BRN" not in wui.index.get_level_values("iso3")


def test_pwt_stata(tmp_path):
    frame = pd.DataFrame({"countrycode": list(synthetic.COUNTRIES) * 2,
                          "year": [2018] * 11 + [2019] * 11,
                          "hc": np.linspace(1.5, 3.5, 22).astype("float32")})
    path = tmp_path / "pwt100.dta"
    frame.to_stata(path, write_index=False)
    pwt = parsers.parse_pwt(path)
    assert pwt.set_index(["iso3", "year"]).loc[("CHN", 2018), "pwt_hc"] == pytest.approx(1.5)


def test_cepii_dot_is_missing(tmp_path):
    rows = [{"iso_o": o, "iso_d": d, "contig": "0", "comlang_off": "0", "colony": "0",
             "dist": "1000.5" if o != d else ".", "distw": "990"}
            for o in synthetic.COUNTRIES for d in synthetic.COUNTRIES]
    path = tmp_path / "dist_cepii.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    dist = parsers.parse_cepii_dist(path)
    assert len(dist) == 121
    assert dist.loc[(dist.iso3 == "CHN") & (dist.partner_iso3 == "CHN"), "dist"].isna().all()
    assert dist.loc[(dist.iso3 == "CHN") & (dist.partner_iso3 == "IDN"), "dist"].iloc[0] == 1000.5


def test_baci_numeric_country_codes(tmp_path):
    rows = [("2019", "360", "156", 260400, " 1500.5", "10"),   # IDN → CHN nickel ore
            ("2019", "4", "699", 260300, "2.25", "1"),         # '4' is Afghanistan (004)
            ("2019", "842", "458", 283691, "7", "")]           # USA → MYS, empty quantity
    path = synthetic.write_baci_db(tmp_path / "baci.db", rows, synthetic.BACI_COUNTRIES)
    baci = parsers.read_baci(path)
    assert baci[["exporter", "importer"]].values.tolist() == [["IDN", "CHN"], ["AFG", "IND"],
                                                              ["USA", "MYS"]]
    assert baci["hs6"].tolist() == ["260400", "260300", "283691"]
    assert baci["value"].tolist() == [1500.5, 2.25, 7.0]


def test_baci_unknown_country_code_stops(tmp_path):
    rows = [("2019", "999", "156", 260400, "1", "1")]
    path = synthetic.write_baci_db(tmp_path / "baci.db", rows, synthetic.BACI_COUNTRIES)
    with pytest.raises(DataError, match=r"baci\.db.*without an ISO3 entry: \[999\]"):
        parsers.read_baci(path)


def test_baci_not_a_database(tmp_path):
    path = tmp_path / "baci.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DataError, match=r"baci\.db: unreadable SQLite"):
        parsers.read_baci(path)


def test_unreadable_workbook_names_file(tmp_path):
    path = tmp_path / "data_gpr_export.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0 truncated")
    with pytest.raises(DataError, match=r"data_gpr_export\.xls: unreadable GPR workbook"):
        parsers.parse_gpr_monthly(path)


def _keep_by_country_converter(frame: pd.DataFrame, code_column: str) -> pd.DataFrame:
    """The first build's matching: every code through country_converter (ISO3 -> ISO3), then
    the panel countries kept (the reference the direct matching must reproduce)."""
    COUNTRIES = synthetic.COUNTRIES

    mapping = parsers.harmonise_iso3(frame[code_column].dropna().unique())
    out = frame.assign(iso3=frame[code_column].map(mapping))
    return out[out["iso3"].isin(COUNTRIES)]


def test_direct_iso3_matching_equals_country_converter_on_awkward_codes() -> None:
    codes = ["CHN", "IDN", "ROM", "ZAR", "WLD", "EAS", " VNM", "vnm", "TWN", None, "MMR", "BUR",
             "KSV", "XKX", "TMP", "SGP", "THA", "PHL", "MYS", "LAO", "KHM", "BRN"]
    frame = pd.DataFrame({"code": codes, "value": np.arange(len(codes), dtype=float)})
    direct = parsers._keep_panel_countries(frame, "code")
    pd.testing.assert_frame_equal(direct, _keep_by_country_converter(frame, "code"))
    # 'vnm' is VNM (case is ignored, as country_converter does); ' VNM' is not a code
    assert list(direct["iso3"]) == ["CHN", "IDN", "VNM", "MMR", "SGP", "THA", "PHL", "MYS",
                                    "LAO", "KHM", "BRN"]


@pytest.mark.integration
def test_direct_iso3_matching_equals_country_converter_on_every_real_file() -> None:
    """Every row of every WDI file, of the WGI workbook and of PWT: the same rows kept, with
    the same ISO3 code, as with country_converter."""
    import os

    from analysis import config
    from analysis.data import registry

    if not os.environ.get("DATA_MIRROR") and not (config.DATA_RAW / ".fetched").exists():
        pytest.skip("no DATA_MIRROR and no fetched data/raw: real-data tests skipped")
    sources = registry.load_registry()
    frames = [(s.name, pd.read_csv(registry.raw_path(s), skiprows=parsers.WDI_PREAMBLE_LINES,
                                   encoding="utf-8-sig"), "Country Code")
              for s in sources if s.kind == "wdi_csv"]
    frames.append(("wgi", pd.read_excel(registry.raw_path(registry.source_by_name(sources, "wgi")),
                                        sheet_name=0), "code"))
    frames.append(("pwt", pd.read_stata(registry.raw_path(registry.source_by_name(sources, "pwt"))),
                   "countrycode"))
    assert len(frames) == 19  # 17 WDI files, WGI, PWT
    for name, frame, column in frames:
        direct = parsers._keep_panel_countries(frame, column)
        reference = _keep_by_country_converter(frame, column)
        pd.testing.assert_frame_equal(direct, reference, obj=name)
        assert direct["iso3"].nunique() == 11, name
