"""Inputs of the scenarios stage: the World Bank Pink Sheet parser on a small synthetic workbook
in the official layout (title block, names in row 5, units in row 6, months from row 7, '…' for a
missing month)."""

from __future__ import annotations

import math
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from analysis.data import parsers
from analysis.data.io import DataError


def write_pink_sheet(path: Path, rows: list[list[object]],
                     names: tuple[str, ...] = ("Crude oil, average", "Nickel", "Copper"),
                     units: tuple[str, ...] = ("($/bbl)", "($/mt)", "($/mt)")) -> Path:
    """A workbook in the official layout: sheets AFOSHEET, Monthly Prices, Monthly Indices."""
    book = openpyxl.Workbook()
    book.active.title = "AFOSHEET"
    sheet = book.create_sheet("Monthly Prices")
    sheet.append(["World Bank Commodity Price Data (The Pink Sheet)"])
    sheet.append(["monthly prices in nominal US dollars, 1960 to present"])
    sheet.append(["(monthly series are available only in nominal US dollars)"])
    sheet.append(["Updated on March 03, 2026"])
    sheet.append([None, *names])
    sheet.append([None, *units])
    for row in rows:
        sheet.append(row)
    book.create_sheet("Monthly Indices")
    book.save(path)
    return path


ROWS = [["2013M11", 105.5, 13_700.25, 7_070.0],
        ["2013M12", 107.0, "\u2026", 7_215.5],
        ["2014M01", 104.0, 14_101.25, 7_291.0]]


def test_pink_sheet_layout_units_and_missing_marker(tmp_path):
    path = write_pink_sheet(tmp_path / "CMO.xlsx", ROWS)
    frame = parsers.parse_pink_sheet(path, ["Nickel", "Copper"])
    assert list(frame.columns) == ["date", "year", "month", "series", "unit", "price"]
    assert len(frame) == 6 and set(frame["unit"]) == {"$/mt"}
    nickel = frame[frame["series"] == "Nickel"].set_index("date")["price"]
    assert nickel[pd.Timestamp("2013-11-01")] == 13_700.25
    assert math.isnan(nickel[pd.Timestamp("2013-12-01")])  # '…' is missing, not zero
    assert nickel[pd.Timestamp("2014-01-01")] == 14_101.25
    copper = frame[frame["series"] == "Copper"]
    assert copper["price"].tolist() == [7_070.0, 7_215.5, 7_291.0]
    assert frame.loc[frame["series"] == "Copper", "month"].tolist() == [11, 12, 1]
    every = parsers.parse_pink_sheet(path)
    assert set(every["series"]) == {"Crude oil, average", "Nickel", "Copper"}
    assert every.loc[every["series"] == "Crude oil, average", "unit"].iloc[0] == "$/bbl"


def test_pink_sheet_unknown_series_is_an_error(tmp_path):
    path = write_pink_sheet(tmp_path / "CMO.xlsx", ROWS)
    with pytest.raises(DataError, match=r"CMO\.xlsx: series \['Nickle'\] not in row 5"):
        parsers.parse_pink_sheet(path, ["Nickle"])


def test_pink_sheet_non_numeric_cell_names_the_column(tmp_path):
    rows = [list(r) for r in ROWS]
    rows[1][2] = "n/a"
    path = write_pink_sheet(tmp_path / "CMO.xlsx", rows)
    with pytest.raises(DataError, match=r"column 'Nickel'.*non-numeric.*'n/a'"):
        parsers.parse_pink_sheet(path, ["Nickel"])


def test_pink_sheet_gap_in_months_and_bad_label_stop(tmp_path):
    path = write_pink_sheet(tmp_path / "gap.xlsx", [ROWS[0], ROWS[2]])
    with pytest.raises(DataError, match=r"column 'A'.*not consecutive at '2014M01'"):
        parsers.parse_pink_sheet(path, ["Nickel"])
    rows = [list(r) for r in ROWS]
    rows[0][0] = "2013-11"
    path = write_pink_sheet(tmp_path / "label.xlsx", rows)
    with pytest.raises(DataError, match=r"month label '2013-11' is not YYYYMmm"):
        parsers.parse_pink_sheet(path, ["Nickel"])


def test_pink_sheet_missing_sheet_and_missing_unit(tmp_path):
    path = write_pink_sheet(tmp_path / "CMO.xlsx", ROWS, units=("($/bbl)", "", "($/mt)"))
    with pytest.raises(DataError, match=r"column 'Nickel'.*no unit in row 6"):
        parsers.parse_pink_sheet(path, ["Nickel"])
    book = openpyxl.Workbook()
    book.save(tmp_path / "empty.xlsx")
    with pytest.raises(DataError, match=r"sheet 'Monthly Prices' not found"):
        parsers.parse_pink_sheet(tmp_path / "empty.xlsx")
