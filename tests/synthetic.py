"""Writers of small synthetic files in the official layouts of each source.

They reproduce the awkward parts of the real files: the World Bank's 4 preamble lines and
trailing empty column, the GPR workbook's trailing label columns, WGI's missing 1997/1999/2001
and '..' markers, WUI's quarterly '1995q1' periods, CEPII's '.' missing marker, and BACI's text
columns with numeric country codes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.specs import load_region

COUNTRIES = load_region("china_asean").countries

WDI_AGGREGATES = [("World", "WLD"), ("East Asia & Pacific", "EAS")]


def write_wdi_csv(path: Path, indicator: str, values: dict[str, dict[int, float]],
                  years: range = range(1990, 2001), label: str = "Some indicator",
                  countries: tuple[str, ...] = COUNTRIES) -> Path:
    """World Bank API CSV: 4 preamble lines, header, one row per country, trailing comma."""
    lines = ['\ufeff"Data Source","World Development Indicators",', "",
             '"Last Updated Date","2026-02-24",', ""]
    header = ["Country Name", "Country Code", "Indicator Name", "Indicator Code",
              *map(str, years)]
    lines.append(",".join(f'"{h}"' for h in header) + ",")
    for name, code in [*WDI_AGGREGATES, *[(c.title(), c) for c in countries]]:
        cells = [name, code, label, indicator]
        for year in years:
            value = values.get(code, {}).get(year)
            cells.append("" if value is None else repr(float(value)))
        lines.append(",".join(f'"{c}"' for c in cells) + ",")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def gpr_monthly_frame(years: range = range(2000, 2003), seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    months = pd.date_range(f"{years[0]}-01-01", f"{years[-1]}-12-01", freq="MS")
    frame = pd.DataFrame({"month": months})
    for column in ["GPR", "GPRT", "GPRA", "GPRH"]:
        frame[column] = rng.uniform(50, 150, len(months))
    for iso in ["CHN", "IDN", "MYS", "PHL", "THA", "VNM", "USA", "JPN"]:
        frame[f"GPRC_{iso}"] = rng.uniform(0.1, 2.0, len(months))
        frame[f"GPRHC_{iso}"] = rng.uniform(0.1, 2.0, len(months))
    # The official workbook ends with two label columns that describe each series.
    labels = ["month", "GPR", "GPRT", "GPRA"]
    frame["var_name"] = pd.Series(labels + [None] * (len(frame) - len(labels)), dtype=object)
    frame["var_label"] = pd.Series(["Date (year/month)", "Recent GPR", "Threats", "Acts"]
                                   + [None] * (len(frame) - 4), dtype=object)
    return frame


def write_gpr_workbook(path: Path, frame: pd.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_excel(path, sheet_name="Sheet1", index=False)
    return path


def wgi_frame(years: tuple[int, ...] = (1996, 1998, 2000, 2002, 2003),
              countries: tuple[str, ...] = COUNTRIES) -> pd.DataFrame:
    """WGI long layout; like the real file it has no 1997, 1999 or 2001 rows."""
    rows = []
    for iso in (*countries, "ROM", "ADO"):
        for year in years:
            for k, dim in enumerate(["va", "pv", "ge", "rq", "rl", "cc"]):
                value: object = round(0.1 * k + 0.01 * (year - 1996) + (len(iso) * 0.0), 6)
                if iso == "ADO" and dim == "ge":
                    value = ".."
                rows.append({"codeindyr": f"{iso}{dim}{year}", "code": iso,
                             "countryname": iso.title(), "year": year, "indicator": dim,
                             "estimate": value, "stddev": 0.2, "nsource": 5, "pctrank": 50.0,
                             "pctranklower": 40.0, "pctrankupper": 60.0})
    return pd.DataFrame(rows)


def write_wui_workbook(path: Path, years: range = range(2000, 2003)) -> tuple[Path, pd.DataFrame]:
    periods = [f"{y}q{q}" for y in years for q in range(1, 5)]
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"year": periods})
    for iso in ["CHN", "IDN", "KHM", "LAO", "MYS", "MMR", "PHL", "SGP", "THA", "VNM", "USA"]:
        frame[iso] = rng.uniform(0, 1, len(periods))
    frame.loc[frame["year"] == f"{years[-1]}q4", "KHM"] = np.nan  # an incomplete year
    path.parent.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"note": ["2025Q1 data added."]}).to_excel(writer, sheet_name="T0",
                                                                index=False)
        frame.to_excel(writer, sheet_name="T2", index=False)
    return path, frame


def write_baci_db(path: Path, rows: list[tuple], countries: list[tuple[str, str, str, str]]) -> Path:
    """SQLite with BACI's layout: every column stored as TEXT, numeric country codes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute("create table country_codes_V202401b (country_code TEXT, "
                           "country_name TEXT, country_iso2 TEXT, country_iso3 TEXT)")
        connection.executemany("insert into country_codes_V202401b values (?, ?, ?, ?)",
                               countries)
        connection.execute("create table baci_trade (t TEXT, i TEXT, j TEXT, k INTEGER, "
                           "v TEXT, q TEXT)")
        connection.executemany("insert into baci_trade values (?, ?, ?, ?, ?, ?)", rows)
    return path


BACI_COUNTRIES = [("156", "China", "CN", "CHN"), ("360", "Indonesia", "ID", "IDN"),
                  ("842", "USA", "US", "USA"), ("699", "India", "IN", "IND"),
                  ("4", "Afghanistan", "AF", "AFG"), ("458", "Malaysia", "MY", "MYS")]
