"""Stage: a six-dimension scorecard of each mineral's supply chain (METHODS.md section 11).

For China and each ASEAN member, every mineral of ``specs/scorecard.yaml`` and every year the
data reach, the stage computes ten indicators in six dimensions (foreign dependence; chain
control; geopolitical and transport security; demand growth; military demand; domestic
resource sustainability), normalises them with their stated direction, combines them with
equal weights (main) and with entropy weights and entropy-TOPSIS (variants, from
:mod:`analysis.measures.weighting`), reports Kendall's tau between the methods and flags every cell
whose dimension score entered the top quintile since the year before. The maths is in
:mod:`analysis.measures.scorecard`; this module reads files and writes files.

Reads (files only; no other stage is imported):

- ``data/raw/geopolrisk/baci.db`` and ``world_mining_data.db`` (hash-checked, through the parse
  cache and :mod:`analysis.data.parsers`);
- ``outputs/supply_risk.csv`` (the supply-risk stage: GeoPolRisk import risk);
- ``data/hs6_chain_map.csv`` (the stage of every HS6 code);
- the project-authored ``data/chokepoint_partner_regions.csv``, ``data/chokepoint_routes.csv``
  and ``data/defence_critical_minerals.csv``.

Writes ``outputs/scorecard.csv`` (``country, mineral, year, dimension, indicator, value,
score, method``), the tables ``outputs/tables/scorecard_*`` (coverage, early warning, rank
stability, weights, focus scores, trade basis, indicator history) and the figures
``outputs/figures/scorecard_radar_<ISO3>`` and ``scorecard_heatmap``.

Run ``python -m analysis.stages.scorecard --help``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.data import parsers
from analysis.data.io import DataError, atomic_write_text, run_stage
from analysis.measures import scorecard as sc
from analysis.measures.scorecard_spec import (
    SPEC_FILE,
    ScorecardSpec,
    load_spec,
)

STAGE = "scorecard"


SOURCE = "geopolrisk"


MEMBERS = ("baci.db", "world_mining_data.db")


SUPPLY_RISK_FILE = config.OUTPUTS / "supply_risk.csv"


COLUMNS = ["country", "mineral", "year", "dimension", "indicator", "value", "score", "method"]


CSV_OPTIONS = {"index": False, "float_format": "%.10g", "lineterminator": "\n"}


TONNES_PER_UNIT = {"metr. t": 1.0, "kg": 0.001}  # World Mining Data units (gas is not scored)


METHOD_NAMES = ("equal", "entropy", "entropy_topsis")


ROUTE_MODES = ("sea", "land")


def _say(message: str) -> None:
    print(f"[{STAGE}] {message}", flush=True)


# =========================================================================== inputs
def raw_paths(raw_dir: Path = config.DATA_RAW) -> dict[str, tuple[Path, str]]:
    """{member: (path, registry sha256)} of the wheel members the stage reads."""
    from analysis.data.registry import load_registry, raw_path, source_by_name

    source = source_by_name(load_registry(), SOURCE)
    hashes = {m.filename: m.sha256 for m in source.members}
    return {name: (raw_path(source, raw_dir, name), hashes[name]) for name in MEMBERS}


def parse_raw(raw_dir: Path = config.DATA_RAW) -> dict[str, pd.DataFrame]:
    """Re-check each member's sha256, then parse it once through the parse cache (the entries
    are shared with the supply-risk and clean stages)."""
    from analysis.data import cache
    from analysis.data.io import verify_sha256

    paths = raw_paths(raw_dir)
    for path, digest in paths.values():
        verify_sha256(path, digest)
    baci_path, baci_hash = paths["baci.db"]
    wmd_path, wmd_hash = paths["world_mining_data.db"]
    _say("reading baci.db and world_mining_data.db (parse cache)")
    baci = cache.parsed(f"{SOURCE}_baci", baci_hash, parsers.read_baci, baci_path)
    production, hs_map = cache.parsed(f"{SOURCE}_world_mining_data", wmd_hash,
                                      parsers.read_world_mining_data, wmd_path)
    codes = parsers.read_baci_country_codes(baci_path)
    return {"baci": baci, "production": production, "hs_map": hs_map, "codes": codes,
            "baci_path": baci_path, "wmd_path": wmd_path}


def production_tonnes(production: pd.DataFrame, codes: pd.DataFrame, spec: ScorecardSpec,
                      wmd_path: Path) -> pd.DataFrame:
    """World Mining Data production of the spec's minerals: ``country, mineral, year, tonnes``
    (every producing country; BACI labels; kg converted to t; an empty cell is no output)."""
    label = dict(zip(codes["code"], codes["iso3"], strict=True))
    known = set(production["material"])
    frames = []
    for name, mineral in spec.minerals.items():
        if mineral.production not in known:
            raise DataError(wmd_path, f"spec entry 'minerals.{name}.production': "
                            f"{mineral.production!r} is not a World Mining Data material with "
                            "an HS map", column="Reference ID")
        rows = production[production["material"] == mineral.production]
        units = set(rows["unit"])
        if not units <= set(TONNES_PER_UNIT):
            raise DataError(wmd_path, f"minerals.{name}: unit(s) {sorted(units)} cannot be "
                            "converted to tonnes", column="unit")
        country = rows["country_code"].map(label)
        if country.isna().any():
            code = rows.loc[country.isna(), "country_code"].iloc[0]
            raise DataError(wmd_path, f"country code {code} is not in BACI's country table",
                            column="Country_Code")
        frames.append(pd.DataFrame({
            "country": country, "mineral": name, "year": rows["year"].astype(int),
            "tonnes": rows["production"].fillna(0.0) * rows["unit"].map(TONNES_PER_UNIT)}))
    return pd.concat(frames, ignore_index=True)


def check_codes(spec: ScorecardSpec, chain_map: pd.DataFrame, baci: pd.DataFrame,
                path: Path) -> None:
    """Every HS6 code of the spec is an included code of the chain map at the right stage and
    has BACI trade; a code that matches nothing is an error naming the spec entry."""
    parsers.require_columns(chain_map, ["hs6", "chain", "stage", "included"], path)
    table = chain_map.assign(hs6=chain_map["hs6"].astype(str).str.zfill(6)).set_index("hs6")
    traded = set(baci["hs6"].unique())
    for name, mineral in spec.minerals.items():
        for role, stage, codes in (("ore", "supply", mineral.ore),
                                   ("processed", "transformation", mineral.processed)):
            for code in codes:
                where = f"spec entry 'minerals.{name}.{role}': HS {code}"
                if code not in table.index:
                    raise DataError(path, f"{where} is not in the chain map", column="hs6")
                row = table.loc[code]
                if int(row["included"]) != 1 or row["stage"] != stage:
                    raise DataError(path, f"{where} is stage {row['stage']!r} (included "
                                    f"{row['included']}), not an included {stage!r} code",
                                    column="stage")
                if code not in traded:
                    raise DataError(path, f"{where} has no trade in baci.db", column="hs6")


def load_supply_risk(path: Path, spec: ScorecardSpec) -> pd.DataFrame:
    """GeoPolRisk import risk from the supply-risk stage, keyed ``country, mineral, year``."""
    if not path.exists():
        raise DataError(path, "missing; run `make supply-risk` first")
    frame = pd.read_csv(path)
    parsers.require_columns(frame, ["importer", "material", "year", "import_risk"], path)
    materials = set(frame["material"])
    rows = []
    for name, mineral in spec.minerals.items():
        material = mineral.geopolrisk or mineral.production
        if material not in materials:
            raise DataError(path, f"spec entry 'minerals.{name}.geopolrisk': {material!r} is "
                            "not a material of the supply-risk stage", column="material")
        rows.append(frame[frame["material"] == material].assign(mineral=name))
    out = pd.concat(rows, ignore_index=True).rename(columns={"importer": "country"})
    return out[["country", "mineral", "year", "import_risk"]]


def load_defence(path: Path, spec: ScorecardSpec) -> pd.DataFrame:
    """``data/defence_critical_minerals.csv``: one row per mineral x list, with its document.

    Checked: listed is 1, 0 or empty (not verified); a listed or 0 row cites a document; every
    spec mineral has a row for every scored list, and every scored list exists."""
    if not path.exists():
        raise DataError(path, "missing (project-authored table)")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    parsers.require_columns(frame, ["mineral", "list", "listed", "document", "url"], path)
    bad = frame[~frame["listed"].isin(["0", "1", ""])]
    if len(bad):
        raise DataError(path, f"row {bad.index[0] + 2}: listed must be 1, 0 or empty, not "
                        f"{bad['listed'].iloc[0]!r}", column="listed")
    uncited = frame[(frame["listed"] != "") & (frame["document"].str.strip() == "")]
    if len(uncited):
        raise DataError(path, f"row {uncited.index[0] + 2}: an entry without a document",
                        column="document")
    if frame.duplicated(["mineral", "list"]).any():
        dup = frame[frame.duplicated(["mineral", "list"])].iloc[0]
        raise DataError(path, f"two rows for {dup['mineral']} x {dup['list']}", column="list")
    for name in spec.military.lists:
        if name not in set(frame["list"]):
            raise DataError(path, f"spec entry 'military.lists': list {name!r} has no row",
                            column="list")
        missing = sorted(set(spec.minerals) - set(frame.loc[frame["list"] == name, "mineral"]))
        if missing:
            raise DataError(path, f"list {name!r} has no row for mineral(s) {missing}",
                            column="mineral")
    out = frame.assign(listed=pd.to_numeric(frame["listed"], errors="coerce"))
    return out


def resolve_routes(regions_path: Path, routes_path: Path, spec: ScorecardSpec,
                   partners: Sequence[str]) -> pd.DataFrame:
    """(importer, partner) -> ``seaborne``, ``chokepoint``, ``malacca`` for every spec country
    and every BACI partner label, from the two authored tables.

    A row of ``chokepoint_routes.csv`` names a partner (ISO3, BACI label) or a region
    (``region:XXX``); the partner's own row wins over its region's. Every partner needs a region,
    every importer a row for every region, every chokepoint must be one of the spec's, and mode
    must be sea or land: otherwise an error naming the file and the row."""
    for path in (regions_path, routes_path):
        if not path.exists():
            raise DataError(path, "missing (project-authored table)")
    regions = pd.read_csv(regions_path, dtype=str, keep_default_na=False)
    routes = pd.read_csv(routes_path, dtype=str, keep_default_na=False)
    parsers.require_columns(regions, ["partner", "region", "rule", "certain"], regions_path)
    parsers.require_columns(routes, ["importer", "partner", "mode", "chokepoints", "rule",
                                     "certain"], routes_path)
    if regions["partner"].duplicated().any():
        twice = regions.loc[regions["partner"].duplicated(), "partner"].iloc[0]
        raise DataError(regions_path, f"partner {twice!r} is listed twice", column="partner")
    unknown = sorted(set(partners) - set(regions["partner"]))
    if unknown:
        raise DataError(regions_path, f"BACI partners without a region: {unknown[:10]}",
                        column="partner")
    for i, row in routes.iterrows():
        where = f"row {i + 2} ({row['importer']}, {row['partner']})"
        if row["mode"] not in ROUTE_MODES:
            raise DataError(routes_path, f"{where}: mode must be sea or land", column="mode")
        points = [p for p in row["chokepoints"].split(";") if p]
        strange = sorted(set(points) - set(spec.routes.chokepoints))
        if strange:
            raise DataError(routes_path, f"{where}: chokepoint(s) {strange} are not in the "
                            "spec's routes.chokepoints", column="chokepoints")
        if row["mode"] == "land" and points:
            raise DataError(routes_path, f"{where}: a land route passes no sea chokepoint",
                            column="chokepoints")
        if not row["rule"].strip():
            raise DataError(routes_path, f"{where}: no source or rule", column="rule")
    if routes.duplicated(["importer", "partner"]).any():
        dup = routes[routes.duplicated(["importer", "partner"])].iloc[0]
        raise DataError(routes_path, f"two rows for ({dup['importer']}, {dup['partner']})",
                        column="partner")
    region_of = dict(zip(regions["partner"], regions["region"], strict=True))
    table = {(r.importer, r.partner): r for r in routes.itertuples(index=False)}
    rows = []
    for importer in spec.countries:
        for partner in partners:
            if partner == importer:
                continue
            entry = table.get((importer, partner)) or table.get(
                (importer, f"region:{region_of[partner]}"))
            if entry is None:
                raise DataError(routes_path, f"no route for importer {importer} from region "
                                f"{region_of[partner]} (partner {partner})", column="partner")
            points = [p for p in entry.chokepoints.split(";") if p]
            rows.append({"importer": importer, "partner": partner,
                         "seaborne": entry.mode == "sea", "chokepoint": bool(points),
                         "malacca": "malacca" in points, "certain": entry.certain == "yes"})
    return pd.DataFrame(rows)


# =========================================================================== compute
def indicator_cells(spec: ScorecardSpec, trade: pd.DataFrame, production: pd.DataFrame,
                    supply_risk: pd.DataFrame, routes: pd.DataFrame, defence: pd.DataFrame,
                    comparable: Mapping[str, bool], years: Sequence[int]) -> pd.DataFrame:
    """Every indicator of the spec for every country x mineral x year in ``years``:
    ``country, mineral, year, dimension, indicator, value, reason``."""
    chains, countries, names = spec.chains(), spec.countries, list(spec.minerals)
    h, w = spec.growth_horizon, spec.trend_window
    makers = {
        "net_import_reliance": lambda: sc.net_import_reliance(
            trade, production, chains, countries, years, comparable),
        "top_supplier_share": lambda: sc.top_supplier_share(trade, chains, countries, years),
        "processed_export_share": lambda: sc.processed_export_share(
            trade, chains, countries, years),
        "processing_ratio": lambda: sc.processing_ratio(trade, chains, countries, years),
        "geopolrisk_import_risk": lambda: sc.geopolrisk_import_risk(
            supply_risk, countries, names, years),
        "chokepoint_share": lambda: sc.chokepoint_share(trade, routes, chains, countries, years),
        "consumption_growth": lambda: sc.consumption_growth(
            trade, production, chains, countries, years, h, comparable),
        "world_trade_growth": lambda: sc.world_trade_growth(trade, chains, countries, years, h),
        "military_relevance": lambda: sc.military_relevance(
            defence, spec.military.lists, countries, names, years),
        "production_trend": lambda: sc.production_trend(production, countries, names, years, w),
    }
    frames = []
    for indicator, dimension in spec.indicator_dimension.items():
        frames.append(makers[indicator]().assign(dimension=dimension, indicator=indicator))
    cells = pd.concat(frames, ignore_index=True)
    return cells[["country", "mineral", "year", "dimension", "indicator", "value", "reason"]]


def score_all(spec: ScorecardSpec, cells: pd.DataFrame,
              defined: Mapping[tuple[str, str], bool] | None = None) -> dict[str, pd.DataFrame]:
    """Normalise the scored window's cells, aggregate with every method, rank stability and
    early warning. Returns the frames the stage writes."""
    window = cells[cells["year"].between(spec.years.first, spec.years.last)].copy()
    scored = sc.normalise(window, spec.directions)
    composites, weights = [], []
    for method in spec.weighting.methods:
        scores, w = sc.aggregate(scored, spec.dimension_indicators, spec.directions, method,
                                 spec.weighting.epsilon, defined)
        composites.append(scores.assign(method=method))
        weights.append(w)
    composites = pd.concat(composites, ignore_index=True)
    stability = sc.rank_stability(composites, spec.weighting.methods)
    main = composites[composites["method"] == spec.weighting.main]
    warnings = sc.early_warning(main.drop(columns="method"), spec.early_warning.share,
                                spec.early_warning.reference, spec.early_warning.min_rise)
    return {"scored": scored, "composites": composites, "weights": pd.concat(weights),
            "stability": stability, "warnings": warnings}


def tidy_table(scored: pd.DataFrame, composites: pd.DataFrame) -> pd.DataFrame:
    """The rows of outputs/scorecard.csv: one per indicator cell (method 'minmax': the
    normalised score) and one per dimension and overall composite and method (indicator
    '(dimension)' / '(overall)', value empty)."""
    indicators = scored.assign(method="minmax")[COLUMNS]
    dims = composites.assign(
        indicator=np.where(composites["dimension"] == "overall", "(overall)", "(dimension)"),
        value=np.nan)[COLUMNS]
    return pd.concat([indicators, dims], ignore_index=True)


def coverage(spec: ScorecardSpec, scored: pd.DataFrame, composites: pd.DataFrame,
             defined: Mapping[tuple[str, str], bool]) -> pd.DataFrame:
    """Filled and missing cells of every indicator, dimension and the overall score in the
    scored window (main method), with the reasons a cell is missing."""
    main = composites[composites["method"] == spec.weighting.main]
    dims = spec.dimension_indicators
    none_defined = [
        d != "overall" and not any(defined.get((m, j), True) for j in dims[d])
        for m, d in zip(main["mineral"], main["dimension"], strict=True)]
    composite_cells = main.assign(
        indicator=np.where(main["dimension"] == "overall", "(overall)", "(dimension)"),
        value=main["score"],
        reason=np.select([main["dimension"] == "overall", none_defined],
                         ["a dimension is missing",
                          "no indicator of the dimension is defined for the mineral"],
                         "an indicator of the dimension is missing"))
    frame = pd.concat([scored, composite_cells], ignore_index=True)
    order = {d: i for i, d in enumerate([*spec.dimensions, "overall"])}
    table = sc.coverage_table(frame)
    table = table.sort_values(["dimension", "indicator"], key=lambda s: s.map(order)
                              if s.name == "dimension" else s.str.startswith("(").astype(int),
                              kind="stable")
    return table.reset_index(drop=True)


def compute(spec: ScorecardSpec, raw: Mapping[str, object], supply_risk: pd.DataFrame,
            chain_map: pd.DataFrame, chain_map_path: Path, root: Path = config.ROOT
            ) -> dict[str, pd.DataFrame]:
    """Everything the stage writes, from parsed inputs (:func:`parse_raw`)."""
    baci, codes = raw["baci"], raw["codes"]
    labels = set(codes["iso3"])
    missing = sorted(set(spec.countries) - labels)
    if missing:
        raise DataError(SPEC_FILE, f"entry 'countries': {missing} are not BACI country labels",
                        column="countries")
    check_codes(spec, chain_map, baci, chain_map_path)
    production = production_tonnes(raw["production"], codes, spec, raw["wmd_path"])
    wanted = sorted({c for m in spec.chains().values() for c in m.codes})
    trade = baci[baci["hs6"].isin(wanted)]
    partners = sorted(set(trade["exporter"]) | set(trade["importer"]))
    routes = resolve_routes(root / spec.routes.regions, root / spec.routes.routes, spec,
                            partners)
    defence = load_defence(root / spec.military.table, spec)
    basis = sc.trade_basis_ratio(trade, production, spec.chains())
    basis["comparable"] = basis["ratio_median"] <= spec.basis_ratio_max
    comparable = dict(zip(basis["mineral"], basis["comparable"], strict=True))
    years = list(range(spec.history_first_year, spec.years.last + 1))
    _say(f"computing {len(spec.indicator_dimension)} indicators for {len(spec.countries)} "
         f"countries x {len(spec.minerals)} minerals x {len(years)} years")
    cells = indicator_cells(spec, trade, production, supply_risk, routes, defence, comparable,
                            years)
    defined = sc.defined_indicators(spec.chains(), comparable, spec.directions)
    out = score_all(spec, cells, defined)
    out["cells"] = cells
    out["defined"] = pd.DataFrame([{"mineral": m, "indicator": j, "defined": ok}
                                   for (m, j), ok in defined.items()])
    out["basis"] = basis
    out["routes"] = routes
    out["coverage"] = coverage(spec, out["scored"], out["composites"], defined)
    out["tidy"] = tidy_table(out["scored"], out["composites"])
    return out


# =========================================================================== tables
def last_year(spec: ScorecardSpec, composites: pd.DataFrame) -> int:
    if spec.heatmap_year != "last":
        return int(spec.heatmap_year)
    main = composites[(composites["method"] == spec.weighting.main)
                      & composites["score"].notna()]
    return int(main["year"].max()) if len(main) else spec.years.last


def focus_table(spec: ScorecardSpec, composites: pd.DataFrame, year: int,
                countries: Sequence[str] | None = None) -> pd.DataFrame:
    """The six dimension scores and the overall score (main method) of the focus minerals in
    ``year``, one row per country x mineral."""
    main = composites[(composites["method"] == spec.weighting.main)
                      & (composites["year"] == year)
                      & composites["mineral"].isin(spec.focus_minerals)]
    if countries is not None:
        main = main[main["country"].isin(countries)]
    table = main.pivot_table(index=["country", "mineral"], columns="dimension", values="score",
                             dropna=False, aggfunc="first")
    table = table.reindex(columns=[*spec.dimensions, "overall"])
    order = pd.MultiIndex.from_product([countries or spec.countries, spec.focus_minerals])
    return table.reindex(order).rename_axis(["country", "mineral"]).reset_index()


def flags_table(spec: ScorecardSpec, warnings: pd.DataFrame, year: int) -> pd.DataFrame:
    """Early-warning flags of ``year``: country, mineral, dimension, previous and current
    score (main method)."""
    flags = warnings[(warnings["year"] == year) & warnings["flag"]]
    flags = flags.assign(mineral=flags["mineral"].map(lambda m: spec.minerals[m].label),
                         material=np.where(flags["material"], "yes", "no"))
    flags = flags.sort_values(["material", "rise"], ascending=[False, False], kind="stable")
    return flags[["country", "mineral", "dimension", "previous", "score", "rise", "material"]
                 ].rename(columns={"previous": f"score {year - 1}", "score": f"score {year}",
                                   "material": f"rise >= {spec.early_warning.min_rise:g}"}
                          ).reset_index(drop=True)


def write_tables(spec: ScorecardSpec, out: Mapping[str, pd.DataFrame], outputs: Path) -> int:
    from analysis.publish.tables import frame_table

    tables = outputs / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    atomic_write_text(outputs / "scorecard.csv", out["tidy"].to_csv(**CSV_OPTIONS))
    history = out["cells"][["country", "mineral", "year", "dimension", "indicator", "value",
                            "reason"]]
    atomic_write_text(tables / "scorecard_indicator_history.csv",
                      history.to_csv(**CSV_OPTIONS))
    atomic_write_text(tables / "scorecard_weights.csv", out["weights"].to_csv(**CSV_OPTIONS))
    atomic_write_text(tables / "scorecard_basis.csv", out["basis"].to_csv(**CSV_OPTIONS))
    atomic_write_text(tables / "scorecard_defined.csv", out["defined"].to_csv(**CSV_OPTIONS))
    flags = out["warnings"][out["warnings"]["flag"]]
    atomic_write_text(tables / "scorecard_early_warning.csv",
                      flags[["country", "mineral", "year", "dimension", "previous", "score",
                             "rise", "material"]].to_csv(**CSV_OPTIONS))
    year = last_year(spec, out["composites"])
    cov = out["coverage"]
    atomic_write_text(tables / "scorecard_coverage.csv", cov.to_csv(**CSV_OPTIONS))
    frame_table(cov, tables / "scorecard_coverage",
                f"Scorecard coverage, {spec.years.first}-{spec.years.last}: cells filled and "
                "missing, with the reasons")
    last_flags = flags_table(spec, out["warnings"], year)
    frame_table(last_flags, tables / "scorecard_early_warning_last",
                f"Early warning, {year}: dimension scores (equal weights) that entered the top "
                f"quintile since {year - 1}")
    stability = out["stability"]
    atomic_write_text(tables / "scorecard_rank_stability.csv", stability.to_csv(**CSV_OPTIONS))
    frame_table(stability[stability["year"] == year].drop(columns="year"),
                tables / "scorecard_rank_stability",
                f"Rank stability across methods, {year}: Kendall's tau-b over the cells both "
                "methods score")
    focus = focus_table(spec, out["composites"], year)
    atomic_write_text(tables / "scorecard_focus.csv", focus.to_csv(**CSV_OPTIONS))
    frame_table(focus, tables / "scorecard_focus",
                f"Dimension scores, {year} (equal weights; 1 = least secure cell of the scored "
                "set; empty = not measurable)")
    return year


# =========================================================================== figures
def _short(spec: ScorecardSpec, dimension: str) -> str:
    if dimension == "overall":
        return "Overall"
    entry = spec.dimensions[dimension]
    return entry.short or entry.label


def radar_figure(spec: ScorecardSpec, composites: pd.DataFrame, country: str, year: int):
    """Radar chart of the six dimension scores (main method) of the focus minerals for one
    country; a dimension the data cannot fill is marked n/a and breaks the polygon."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = list(spec.dimensions)
    angles = np.linspace(0, 2 * np.pi, len(dims), endpoint=False)
    main = composites[(composites["method"] == spec.weighting.main)
                      & (composites["year"] == year) & (composites["country"] == country)]
    fig = plt.figure(figsize=(7.0, 5.0))
    ax = fig.add_axes((0.12, 0.1, 0.56, 0.78), projection="polar")
    for mineral in spec.focus_minerals:
        row = main[main["mineral"] == mineral].set_index("dimension")["score"]
        values = np.array([row.get(d, np.nan) for d in dims], dtype=float)
        closed = np.append(values, values[0])
        theta = np.append(angles, angles[0])
        label = spec.minerals[mineral].label
        gaps = [_short(spec, d) for d, v in zip(dims, values, strict=True) if np.isnan(v)]
        if gaps:
            label += f"\n  n/a: {', '.join(gaps)}"
        line, = ax.plot(theta, closed, lw=1.4, marker="o", ms=3, label=label)
        ok = ~np.isnan(closed)
        if ok.sum() >= 3:
            ax.fill(theta[ok], closed[ok], alpha=0.06, color=line.get_color())
    ax.set_xticks(angles, [_short(spec, d) for d in dims], fontsize=7)
    ax.tick_params(axis="x", pad=6)
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["0.25", "0.5", "0.75", "1"], fontsize=6)
    fig.suptitle(f"{country}, {year}: dimension scores, equal weights (1 = least secure "
                 "cell of the scored set)", fontsize=8.5)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=6.5, loc="center left",
               bbox_to_anchor=(0.72, 0.5), frameon=False)
    fig.text(0.01, 0.015, "n/a: the data cannot measure the dimension for this cell (the "
             "polygon breaks there); see the coverage table.", fontsize=6)
    return fig


def _heat_panel(ax, spec: ScorecardSpec, table: pd.DataFrame, title: str, labels: bool):
    import matplotlib

    values = table.to_numpy(dtype=float)
    cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="#e4e4e4")
    image = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=cmap, vmin=0, vmax=1)
    ax.set_yticks(range(values.shape[0]), table.index, fontsize=6.5)
    ax.set_xticks(range(values.shape[1]),
                  [spec.minerals[m].label for m in table.columns] if labels else [],
                  rotation=90, fontsize=6.5)
    for (r, c), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=4.3,
                    color="white" if value > 0.55 else "black")
    ax.set_title(title, fontsize=7.5, loc="left")
    return image


def heatmap_figure(spec: ScorecardSpec, composites: pd.DataFrame, year: int):
    """Countries x minerals heat maps (main method) in ``year``: the overall score, then each
    dimension; grey = not measurable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = composites[(composites["method"] == spec.weighting.main)
                      & (composites["year"] == year)]
    panels = ["overall", *spec.dimensions]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9.0, 1.05 + 1.6 * len(panels)),
                             sharex=True, gridspec_kw={"hspace": 0.42})
    fig.subplots_adjust(top=0.95, bottom=0.1, left=0.08, right=0.86)
    image = None
    for i, (ax, dimension) in enumerate(zip(axes, panels, strict=True)):
        rows = main[main["dimension"] == dimension]
        table = rows.pivot_table(index="country", columns="mineral", values="score",
                                 dropna=False, aggfunc="first").reindex(
            index=spec.countries, columns=list(spec.minerals))
        filled = int(np.isfinite(table.to_numpy(dtype=float)).sum())
        image = _heat_panel(ax, spec, table, f"{_short(spec, dimension)} ({filled} of "
                            f"{table.size} cells measurable)", labels=i == len(panels) - 1)
    fig.colorbar(image, ax=list(axes), label="score (1 = least secure cell of the scored set)",
                 shrink=0.5, pad=0.02)
    fig.suptitle(f"Supply-chain scorecard, {year}, equal weights (grey: the data cannot "
                 "measure the cell)", fontsize=9, y=0.985)
    return fig


def write_figures(spec: ScorecardSpec, composites: pd.DataFrame, year: int,
                  figures: Path) -> list[Path]:
    from analysis.publish.figures import save_figure

    paths = save_figure(heatmap_figure(spec, composites, year), figures / "scorecard_heatmap")
    for country in spec.countries:
        paths += save_figure(radar_figure(spec, composites, country, year),
                             figures / f"scorecard_radar_{country}")
    return paths


# =========================================================================== stage
def run(raw_dir: Path = config.DATA_RAW, outputs: Path = config.OUTPUTS,
        spec_path: Path = SPEC_FILE, chain_map_path: Path = config.HS_CHAIN_MAP_FILE,
        supply_risk_path: Path | None = None, figures: bool = True) -> dict[str, pd.DataFrame]:
    """Read the inputs, compute, write outputs/scorecard.csv, the tables and the figures."""
    spec = load_spec(spec_path)
    supply_risk = load_supply_risk(supply_risk_path or outputs / "supply_risk.csv", spec)
    raw = parse_raw(raw_dir)
    chain_map = pd.read_csv(chain_map_path, dtype={"hs6": str})
    out = compute(spec, raw, supply_risk, chain_map, chain_map_path)
    year = write_tables(spec, out, outputs)
    n_flags = int(out["warnings"].query("year == @year")["flag"].sum())
    _say(f"wrote {outputs / 'scorecard.csv'} ({len(out['tidy'])} rows); last scored year "
         f"{year}: {n_flags} early-warning flag(s)")
    if figures:
        write_figures(spec, out["composites"], year, outputs / "figures")
        _say(f"wrote the heat map and {len(spec.countries)} radar charts to "
             f"{outputs / 'figures'}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.stages.scorecard",
        description="Six-dimension scorecard of each mineral's supply chain for China and the "
        "ASEAN members (METHODS.md section 11): indicators, normalised scores, equal-weight, "
        "entropy and TOPSIS composites, rank stability and early-warning flags, from "
        "specs/scorecard.yaml, the hash-checked BACI and World Mining Data in "
        "data/raw/geopolrisk/, outputs/supply_risk.csv and the project-authored route and "
        "defence-list tables. Writes outputs/scorecard.csv, outputs/tables/scorecard_* and the "
        "radar charts and heat map.")
    parser.add_argument("--spec", type=Path, default=SPEC_FILE, help="spec file (YAML)")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")
    args = parser.parse_args(argv)
    return run_stage(STAGE, lambda: run(spec_path=args.spec, figures=not args.no_figures),
                     errors=(DataError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
