"""analysis/data/schemas.py: a table that breaks its schema stops the stage with one line
naming the file, the table, the column, the failing check, the value and the row."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.data.io import DataError
from analysis.data.schemas import estimation_schema, indices_schema, validate
from analysis.data.specs import load_region

REGION = load_region("china_asean")
INDICES_SCHEMA = indices_schema(REGION)
ESTIMATION_SCHEMA = estimation_schema(REGION)


def _indices() -> pd.DataFrame:
    """Three country-years that pass the indices schema."""
    frame = pd.DataFrame({"iso3": ["IDN", "IDN", "VNM"], "year": [2010, 2011, 2010]})
    for column in ("syn", "syn_u_out", "syn_u_in", "syn_u1u2", "rn", "ti", "rn_events",
                   "rn_events_all"):
        frame[column] = [0.2, 0.4, 0.6]
    frame["gpr"] = frame["gprx_reg"] = [1.0, 2.0, 0.5]
    return frame


def test_a_valid_table_passes():
    validate(_indices(), INDICES_SCHEMA, "indices.parquet")


def test_a_value_out_of_range_names_column_check_value_and_row():
    frame = _indices()
    frame.loc[2, "syn"] = 1.25
    with pytest.raises(DataError) as error:
        validate(frame, INDICES_SCHEMA, "data/processed/indices.parquet")
    assert error.value.column == "syn"
    assert str(error.value).startswith("data/processed/indices.parquet, column 'syn': schema "
                                       "'indices': check in_range(0, 1) fails for 1.25 at row 2 "
                                       "(1 failure(s) in all)")


def test_a_table_level_check_has_no_column():
    frame = pd.DataFrame({"iso3": ["IDN", "IDN", "IDN"], "year": [2010, 2011, 2010],
                          "syn": [0.1, 0.2, 0.3], "gpr": [1.0, 1.0, 1.0],
                          "rn": [0.0, 0.5, 1.0], "ti": [0.3, 0.3, 0.3]})
    with pytest.raises(DataError) as error:
        validate(frame, ESTIMATION_SCHEMA, "estimation_panel.parquet")
    assert error.value.column is None
    assert str(error.value) == ("estimation_panel.parquet: schema 'estimation_panel': check "
                                "duplicate ['iso3', 'year'] keys fails (2 failure(s) in all)")
