"""pandera schemas for every processed table. Each stage validates what it writes.

The countries and years a table may hold are the region's (:func:`analysis.data.specs.load_region`),
so the schemas that check them are functions of the region (default: this run's)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.pandas import Check, Column, DataFrameSchema

from analysis.data.specs import TRADE_YEARS, Region, load_region

STAGES = ("supply", "transformation", "recycling", "demand")
CHAINS = ("nickel", "aluminium", "copper", "tin", "rare_earths", "cobalt", "battery_alloy",
          "precious")
PARTNER_GROUPS = ("world", "region", "china", "asean")

_nonneg = Column(float, Check.ge(0), nullable=True)
#: Years of the trade tables (BACI from 1995, the year before the panel starts).
_trade_year = Column(int, Check.in_range(*TRADE_YEARS))


def _country(region: Region) -> Column:
    return Column(str, Check.isin(list(region.countries)))


def _year(region: Region) -> Column:
    return Column(int, Check.in_range(region.first_year, region.last_year))


def panel_schema(extra_columns: bool = True, region: Region | None = None) -> DataFrameSchema:
    """Country-year panel: key (iso3, year), every country of the region, every year once."""
    region = region or load_region()
    countries = set(region.countries)
    return DataFrameSchema(
        {
            "iso3": _country(region),
            "year": _year(region),
            "gprc": Column(float, Check.ge(0), nullable=True),
            "gpr_global": Column(float, Check.ge(0), nullable=True),
            "wgi_ge": Column(float, Check.in_range(-3, 3), nullable=True),
            "wgi_rq": Column(float, Check.in_range(-3, 3), nullable=True),
            "urban_share": Column(float, Check.in_range(0, 100), nullable=True),
            "internet_users": Column(float, Check.in_range(0, 100), nullable=True),
            "resource_rents_gdp": Column(float, Check.in_range(0, 100), nullable=True),
            "mineral_exports_world": _nonneg,
            "mineral_imports_world": _nonneg,
        },
        checks=[
            Check(lambda df: not df.duplicated(["iso3", "year"]).any(),
                  error="duplicate (iso3, year) keys"),
            Check(lambda df: set(df["iso3"]) == countries,
                  error=f"not all {len(countries)} countries"),
            Check(lambda df: df.groupby("iso3")["year"].nunique().nunique() == 1,
                  error="unbalanced skeleton: countries have different year sets"),
        ],
        strict=not extra_columns,
        coerce=False,
        name="panel",
    )


def dyad_schema(region: Region | None = None) -> DataFrameSchema:
    """Each member with the focal country, by year."""
    region = region or load_region()
    return DataFrameSchema(
        {
            "iso3": Column(str, Check.isin(list(region.members))),
            "partner_iso3": Column(str, Check.eq(region.focal)),
            "year": _year(region),
            "exports_to_china": _nonneg,
            "imports_from_china": _nonneg,
            "dist": Column(float, Check.gt(0)),
        },
        checks=[Check(lambda df: not df.duplicated(["iso3", "year"]).any(),
                      error="duplicate (iso3, year) keys")],
        name="dyad_panel",
    )


def trade_chain_schema(region: Region | None = None) -> DataFrameSchema:
    region = region or load_region()
    return DataFrameSchema(
        {
            "iso3": _country(region),
            "chain": Column(str, Check.isin(CHAINS)),
            "stage": Column(str, Check.isin(STAGES)),
            "partner_group": Column(str, Check.isin(PARTNER_GROUPS)),
            "year": _trade_year,
            "export_value": _nonneg,
            "import_value": Column(float, Check.ge(0)),
            "world_trade_value": Column(float, Check.ge(0)),
        },
        checks=[
            Check(lambda df: not df.duplicated(["iso3", "chain", "stage", "partner_group", "year"]).any(),
                  error="duplicate keys"),
            Check(lambda df: df.loc[df["stage"] == "demand", "export_value"].isna().all(),
                  error="demand rows must not carry exports"),
        ],
        name="trade_chain",
    )


def trade_bilateral_schema(region: Region | None = None) -> DataFrameSchema:
    region = region or load_region()
    return DataFrameSchema(
        {
            "iso3": _country(region),
            "partner_iso3": Column(str, Check.str_length(3, 3)),
            "year": _trade_year,
            "export_value": Column(float, Check.ge(0)),
            "import_value": Column(float, Check.ge(0)),
        },
        checks=[Check(lambda df: not df.duplicated(["iso3", "partner_iso3", "year"]).any(),
                      error="duplicate keys"),
                Check(lambda df: (df["iso3"] != df["partner_iso3"]).all(), error="self-trade rows")],
        name="trade_bilateral",
    )


def trade_hs6_schema(region: Region | None = None) -> DataFrameSchema:
    region = region or load_region()
    return DataFrameSchema(
        {
            "iso3": _country(region),
            "partner_group": Column(str, Check.isin(PARTNER_GROUPS)),
            "hs6": Column(str, Check.str_matches(r"^\d{6}$")),
            "year": _trade_year,
            "export_value": Column(float, Check.ge(0)),
            "import_value": Column(float, Check.ge(0)),
        },
        checks=[Check(lambda df: not df.duplicated(["iso3", "partner_group", "hs6", "year"]).any(),
                      error="duplicate keys")],
        name="trade_hs6",
    )


def validate(frame, schema: DataFrameSchema, path) -> None:
    """Validate ``frame``; a failure raises DataError naming the table and the failing check."""
    from analysis.data.io import DataError

    try:
        schema.validate(frame, lazy=True)
    except (pa.errors.SchemaErrors, pa.errors.SchemaError) as error:
        cases = getattr(error, "failure_cases", None)
        if cases is not None and len(cases):
            first = cases.iloc[0]
            table_level = first.get("schema_context") == "DataFrameSchema"
            # a table-level check names the schema as its column and fails for False
            column = None if table_level else first.get("column")
            value = first.get("failure_case")
            value = value.item() if isinstance(value, np.generic) else value
            what = "" if table_level else f" for {value!r}"
            where = "" if pd.isna(first.get("index")) else f" at row {first['index']}"
            summary = (f"check {first.get('check')!s} fails{what}{where} ({len(cases)} "
                       "failure(s) in all)")
        else:
            column, summary = None, " ".join(str(error).split())
        raise DataError(path, f"schema {schema.name!r}: {summary}",
                        None if column is None or pd.isna(column) else str(column)) from error


def _unique_keys(keys: list[str]) -> Check:
    return Check(lambda df: not df.duplicated(keys).any(), error=f"duplicate {keys} keys")


def indices_schema(region: Region | None = None) -> DataFrameSchema:
    """The indices table. RN events may be missing only for a country without coded measures
    that the region does not list as searched-and-none-found (``measures.none_found``)."""
    region = region or load_region()
    return DataFrameSchema(
        {
            "iso3": _country(region),
            "year": _year(region),
            "syn": Column(float, Check.in_range(0, 1), nullable=True),
            "syn_u_out": Column(float, Check.in_range(0, 1), nullable=True),
            "syn_u_in": Column(float, Check.in_range(0, 1), nullable=True),
            "syn_u1u2": Column(float, Check.in_range(0, 1), nullable=True),
            "gpr": Column(float, Check.ge(0), nullable=True),
            "gprx_reg": Column(float, Check.ge(0), nullable=True),
            "rn": Column(float, Check.in_range(0, 1.01), nullable=True),
            "ti": Column(float, Check.in_range(0, 1.01), nullable=True),
            "rn_events": Column(float, Check.in_range(0, 1), nullable=True),
            "rn_events_all": Column(float, Check.in_range(0, 1), nullable=True),
        },
        checks=[_unique_keys(["iso3", "year"])],
        name="indices",
    )


def estimation_schema(region: Region | None = None) -> DataFrameSchema:
    region = region or load_region()
    return DataFrameSchema(
    {"iso3": _country(region), "year": _year(region), "syn": Column(float, nullable=False),
     "gpr": Column(float, nullable=False), "rn": Column(float, nullable=False),
     "ti": Column(float, nullable=False)},
    checks=[_unique_keys(["iso3", "year"]),
            Check(lambda df: df["iso3"].nunique() >= 2, error="fewer than two clusters")],
    name="estimation_panel",
    )
