"""Stage 3, indices: SYN, GPR, RN and TI (and their variants) from the processed panels.

Reads ``data/processed/{panel_clean,trade_chain,trade_bilateral,trade_hs6,trade_flows,
dyad_panel,gprc_partners}.parquet``, the region's coded measures in force (China + ASEAN:
``data/raw/rn_measures.csv``) and its first-build announcement events (``data/raw/
rn_policy_events.csv``, for their variant); the region (countries, years, GPR weight base and
shrinkage target, measures files) comes from ``specs/regions/<name>.yaml``
(:func:`analysis.data.specs.load_region`), the choices from ``specs/indices.yaml``. The formulas are pure functions in
:mod:`analysis.measures.constructs` (the revised constructs of METHODS.md section 3) and, for the first
build's definitions kept as robustness variants, in this module. Writes
``data/processed/indices.parquet``, the final ``panel.parquet``, ``dyad_indices.parquet``,
``chain_panel.parquet``, ``gpr_weights.parquet`` and ``index_weights.json``, plus tables and
figures under ``outputs/``. docs/indices.md documents every construct.

Run ``python -m analysis.stages.indices --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.data import specs
from analysis.data.io import (
    DataError,
    add_verbose_argument,
    atomic_write_text,
    display_path,
    read_parquet,
    run_stage,
    write_parquet,
)
from analysis.data.schemas import indices_schema, validate
from analysis.data.specs import Region, load_region
from analysis.measures import constructs
from analysis.measures.synergy import (
    coupling_coordination,
    grubel_lloyd,
    trade_complementarity,
    trade_intensity,
)
from analysis.measures.weighting import METHODS, minmax_normalise, topsis_closeness
from analysis.publish.figures import save_figure
from analysis.publish.tables import frame_table

PRODUCT_STAGES = ("supply", "transformation", "recycling")
# BACI reports South Africa's trade under the customs-union code 711 ("ZA1") up to this year
# (the clean stage maps it to ZAF); the gpr_no_zaf_mapping variant leaves those years out.
SACU_LAST_YEAR = 1999
FLOWS = (*PRODUCT_STAGES, "demand")


# --------------------------------------------------------------------------- composites
def composite_with_missing(data: pd.DataFrame, directions: Mapping[str, int], method: str,
                           epsilon: float, min_weight_share: float = 0.5
                           ) -> tuple[pd.Series, pd.Series, int]:
    """Composite score that tolerates missing indicators, built on the pure weighting methods.

    1. Weights: the chosen method (``analysis.measures.weighting``) on the complete-case rows.
    2. Normalisation: min–max of each indicator over all its observed values in the panel
       (direction-reversed, plus epsilon), as in METHODS.md section 3.
    3. Score of a row: for entropy, PCA and equal weights, sum_j w_j x'_ij / sum_j w_j over the
       observed indicators; for entropy-TOPSIS, the closeness D-/(D+ + D-) computed over the
       observed indicators. A row is scored only if its observed indicators carry at least
       ``min_weight_share`` of the total weight; otherwise NaN.

    Returns (scores, weights, number of complete rows used for the weights).
    """
    columns = list(directions)
    complete = data[columns].dropna()
    if len(complete) < len(columns) + 2:
        raise ValueError(f"only {len(complete)} complete rows for {columns}: too few for weights")
    weights = METHODS[method](complete, directions, epsilon).weights.reindex(columns)
    normalised = pd.DataFrame(index=data.index, columns=columns, dtype=float)
    for column in columns:
        observed = data[[column]].dropna()
        normalised.loc[observed.index, column] = minmax_normalise(
            observed, {column: directions[column]}, epsilon)[column]
    available = normalised.notna()
    weight_share = available.mul(weights, axis=1).sum(axis=1) / weights.sum()
    if method == "entropy_topsis":
        scores = topsis_closeness(normalised.mul(weights, axis=1))
    else:
        scores = (normalised.mul(weights, axis=1).sum(axis=1, min_count=1)
                  / available.mul(weights, axis=1).sum(axis=1))
    scores = scores.where(weight_share >= min_weight_share - 1e-12)
    return scores.astype(float), weights, len(complete)


# --------------------------------------------------------------------------- SYN
def _safe_share(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator/denominator, defined as 0 where there is no flow at all (0/0)."""
    share = numerator / denominator.where(denominator > 0)
    return share.where(denominator > 0, 0.0)


def subsystem_indicators(chain: pd.DataFrame, group: str = "region") -> pd.DataFrame:
    """The four-flow indicators of U1 (country i) and U2 (its partners), by country-year.

    With X_s = i's exports of stage s, M = i's imports of chain products (demand), and the
    subscripts R (partners in ``group``) and W (world):

    - U1 (country i's side): u1_s = X_s,R / X_s,W for s in supply, transformation, recycling;
      u1_demand = M_R / M_W — the regional share of each of i's flows.
    - U2 (partners' side): u2_s = X_s,R / sum_{j in R} M_j,s,W — i's share in the partners'
      imports of stage s; u2_demand = M_R / sum_{j in R} X_j,W — the share of the partners'
      exports absorbed by i's demand.

    ``chain`` may be the whole trade_chain table or one chain's rows; flows are summed over
    chains first. Shares with a zero denominator (no flow at all) are set to 0.
    """
    summed = chain.groupby(["iso3", "year", "stage", "partner_group"], as_index=False)[
        ["export_value", "import_value"]].sum(min_count=1)
    wide = summed.pivot_table(index=["iso3", "year"], columns=["partner_group", "stage"],
                              values=["export_value", "import_value"], aggfunc="first")
    out = pd.DataFrame(index=wide.index)
    world_imports = wide[("import_value", "world")]
    world_exports = wide[("export_value", "world")]
    # Partner totals: the sum over partners j of j's world flows, by year (j in R excludes i).
    partners = _partner_members(out.index, group)
    for stage in PRODUCT_STAGES:
        x_region = wide[("export_value", group, stage)]
        out[f"u1_{stage}"] = _safe_share(x_region, world_exports[stage])
        partner_imports = _partner_sum(world_imports[stage], partners)
        out[f"u2_{stage}"] = _safe_share(x_region, partner_imports)
    m_region = wide[("import_value", group, "demand")]
    out["u1_demand"] = _safe_share(m_region, world_imports["demand"])
    partner_exports = _partner_sum(world_exports[list(PRODUCT_STAGES)].sum(axis=1), partners)
    out["u2_demand"] = _safe_share(m_region, partner_exports)
    return out.reset_index()


def _partner_members(index: pd.MultiIndex, group: str) -> dict[str, set[str]]:
    from analysis.data.partners import partner_groups

    return {iso3: partner_groups(iso3).get(group) or set() for iso3 in
            index.get_level_values("iso3").unique()}


def _partner_sum(values: pd.Series, partners: dict[str, set[str]]) -> pd.Series:
    """For each (i, year): the sum of ``values`` over i's partners j in the same year."""
    table = values.unstack("iso3")
    out = pd.Series(index=values.index, dtype=float)
    for iso3, members in partners.items():
        cols = [c for c in table.columns if c in members]
        per_year = table[cols].sum(axis=1)
        idx = values.index[values.index.get_level_values("iso3") == iso3]
        out.loc[idx] = per_year.reindex(idx.get_level_values("year")).to_numpy()
    return out


def coupling_synergy(indicators: pd.DataFrame, method: str, epsilon: float,
                     corrected: bool = True, alpha: float = 0.5) -> tuple[pd.DataFrame, dict]:
    """U1, U2 (composites of the four flows) and their coupling coordination D.

    Each subsystem is scored with ``method`` over the whole panel; scores are divided by
    (1 + epsilon) so that U lies in [0, 1], as the coupling degree requires. D = sqrt(C*T),
    with C the corrected (Wang et al. 2021) or textbook coupling degree and
    T = alpha*U1 + (1-alpha)*U2.
    """
    out = indicators[["iso3", "year"]].copy()
    weights = {}
    for side in ("u1", "u2"):
        columns = [f"{side}_{flow}" for flow in FLOWS]
        usable = [c for c in columns if indicators[c].nunique() > 1]
        result = METHODS[method](indicators[usable], dict.fromkeys(usable, 1), epsilon)
        out[side] = np.clip(result.scores.to_numpy() / (1 + epsilon), 0.0, 1.0)
        weights[side] = result.weights.to_dict()
    out["syn"] = coupling_coordination(out["u1"].to_numpy(), out["u2"].to_numpy(),
                                       corrected=corrected, alpha=alpha)
    return out, weights


def product_level_synergy(hs6: pd.DataFrame, focal: str | None = None) -> pd.DataFrame:
    """Grubel–Lloyd with the region, trade complementarity with the focal country (China),
    intensity with the region.

    - syn_gl: 1 - sum_k |X_ik,R - M_ik,R| / sum_k (X_ik,R + M_ik,R) over HS6 products k.
    - syn_tc: 100 (1 - sum_k |m_F,k - x_ik| / 2), x = i's world export shares, m = the focal
      country F's world import shares (Michaely); NaN for F itself. ``focal``: the region's.
    """
    focal = load_region().focal if focal is None else focal
    region = hs6[hs6["partner_group"] == "region"]
    world = hs6[hs6["partner_group"] == "world"]
    rows = []
    china_imports = world[world["iso3"] == focal].pivot_table(
        index="year", columns="hs6", values="import_value", aggfunc="sum")
    # the region rows of each country-year, in their order in hs6 (one pass, not one scan each)
    by_year = {key: rows for key, rows in region.groupby(["iso3", "year"])}
    for (iso3, year), own in world.groupby(["iso3", "year"]):
        reg = by_year.get((iso3, year), region.iloc[:0])
        gl = grubel_lloyd(reg["export_value"].to_numpy(), reg["import_value"].to_numpy()) \
            if len(reg) else np.nan
        tc = np.nan
        if iso3 != focal and year in china_imports.index:
            exports = own.set_index("hs6")["export_value"]
            products = sorted(set(exports.index) | set(china_imports.columns))
            tc = trade_complementarity(exports.reindex(products, fill_value=0).to_numpy(),
                                       china_imports.loc[year].reindex(products).fillna(0)
                                       .to_numpy())
        rows.append({"iso3": iso3, "year": year, "syn_gl": float(gl), "syn_tc": float(tc)})
    return pd.DataFrame(rows)


def regional_trade_intensity(hs6: pd.DataFrame, chain: pd.DataFrame) -> pd.DataFrame:
    """syn_tii = (X_i,R / X_i,W) / (M_R / M_W): i's mineral exports to its regional partners as a
    share of its mineral exports, relative to the partners' share of world mineral imports
    (M_W from every BACI pair, not only the panel)."""
    totals = hs6.groupby(["iso3", "partner_group", "year"])[["export_value", "import_value"]].sum()
    x_world = totals.xs("world", level="partner_group")["export_value"]
    x_region = totals.xs("region", level="partner_group")["export_value"].reindex(
        x_world.index, fill_value=0.0)
    m_world = totals.xs("world", level="partner_group")["import_value"]
    world = (chain[(chain["stage"] != "demand")]
             .drop_duplicates(["year", "chain", "stage"])
             .groupby("year")["world_trade_value"].sum())
    partners = _partner_members(x_world.index, "region")
    m_partners = _partner_sum(m_world, partners)
    years = x_world.index.get_level_values("year")
    tii = trade_intensity(x_region.to_numpy(), x_world.to_numpy(), m_partners.to_numpy(),
                          world.reindex(years).to_numpy())
    return pd.Series(tii, index=x_world.index, name="syn_tii").reset_index()


# --------------------------------------------------------------------------- GPR
def exposure_weighted_gpr(bilateral: pd.DataFrame, gprc: pd.DataFrame, lag: int = 1,
                          min_covered: float | None = None) -> pd.DataFrame:
    """The first build's GPRX: GPRX_it = sum_k s_ik,t-lag * GPRC_kt (raw GPRC levels).

    s_ik,t is i's mineral trade (exports + imports, all chain codes incl. gold) with k in year t
    over its mineral trade with all partners that have a GPRC series (renormalised), k != i.
    Returns ``iso3, year, gprx, gprx_coverage`` (coverage = share of i's total mineral trade in
    t-lag that is with GPRC partners). With ``min_covered`` (thousand USD) the value is missing
    where the lagged trade with GPRC partners is below it (the materiality rule of the
    time-varying variant: the first build's Cambodia 2005-07 rested on USD 20-100 thousand).
    Kept as a robustness variant; the main GPR uses fixed pre-sample weights.
    """
    trade = bilateral.assign(trade=bilateral["export_value"] + bilateral["import_value"],
                             year=bilateral["year"] + lag)
    total = trade.groupby(["iso3", "year"])["trade"].sum().rename("total_trade")
    merged = trade.merge(gprc, on=["partner_iso3", "year"], how="inner")
    merged = merged[merged["partner_iso3"] != merged["iso3"]]
    grouped = merged.groupby(["iso3", "year"])
    covered = grouped["trade"].sum()
    weighted = (merged["trade"] * merged["gprc"]).groupby([merged["iso3"], merged["year"]]).sum()
    out = pd.DataFrame({"gprx": weighted / covered.where(covered > 0),
                        "gprx_coverage": covered / total.reindex(covered.index)})
    if min_covered is not None:
        out.loc[covered < min_covered, "gprx"] = np.nan
    return out.reset_index()


def shift_share_gpr(bilateral: pd.DataFrame, gpr_global: pd.DataFrame, base_year: int,
                    partners: list[str]) -> pd.DataFrame:
    """Shift-share GPR: global series_t × i's base-year share of mineral trade with ``partners``.

    The share is fixed at ``base_year`` (pre-sample), so only the global shift varies over time.
    Returns ``gpr_ss`` (GPR), ``gpr_threats_ss`` (GPRT) and ``gpr_acts_ss`` (GPRA), plus the
    exposure ``ss_exposure``.
    """
    base = bilateral[bilateral["year"] == base_year].assign(
        trade=lambda d: d["export_value"] + d["import_value"])
    total = base.groupby("iso3")["trade"].sum()
    with_partners = base[base["partner_iso3"].isin(partners)].groupby("iso3")["trade"].sum()
    exposure = (with_partners.reindex(total.index, fill_value=0) / total).rename("ss_exposure")
    frame = exposure.reset_index().merge(gpr_global, how="cross")
    frame["gpr_ss"] = frame["ss_exposure"] * frame["gpr_global"]
    frame["gpr_threats_ss"] = frame["ss_exposure"] * frame["gpr_threats"]
    frame["gpr_acts_ss"] = frame["ss_exposure"] * frame["gpr_acts"]
    return frame[["iso3", "year", "ss_exposure", "gpr_ss", "gpr_threats_ss", "gpr_acts_ss"]]


# --------------------------------------------------------------------------- RN
def event_intensity(events: pd.DataFrame, levels: Mapping[str, float],
                    partial_factor: float) -> pd.Series:
    """Intensity of each coded event: level(category) × sign(direction) × (partial_factor if
    partial). Sign: tighten +1, loosen -1, none 0."""
    sign = events["direction"].map({"tighten": 1.0, "loosen": -1.0, "none": 0.0})
    level = events["category"].map(levels)
    if sign.isna().any() or level.isna().any():
        bad = events.loc[sign.isna() | level.isna(), "event_id"].tolist()
        raise ValueError(f"events with an unknown direction or category: {bad}")
    factor = np.where(events["partial"].astype(int) == 1, partial_factor, 1.0)
    return level * sign * factor


def event_stock(events: pd.DataFrame, countries: tuple[str, ...], years: tuple[int, ...],
                decay: float, verified_only: bool = True) -> pd.DataFrame:
    """stock_it = sum over i's events e dated in or before t of intensity_e × decay^(t - year_e).

    Countries without events have a stock of 0 (no recorded measure), not a missing value.
    """
    chosen = events[events["verified"] == "yes"] if verified_only else events
    year = pd.to_datetime(chosen["date"]).dt.year.to_numpy()
    rows = []
    for iso3 in countries:
        mask = (chosen["country"] == iso3).to_numpy()
        for t in years:
            past = mask & (year <= t)
            stock = float(np.sum(chosen["intensity"].to_numpy()[past]
                                 * decay ** (t - year[past])))
            rows.append((iso3, t, stock))
    return pd.DataFrame(rows, columns=["iso3", "year", "rn_event_stock"])


EVENT_COLUMNS = ["event_id", "country", "date", "measure_type", "category", "mineral",
                 "direction", "intensity", "partial", "verified", "description", "source",
                 "coding_note"]


def read_events(path: Path | None = None, spec: dict | None = None) -> pd.DataFrame:
    """The first build's announcement events, validated row by row
    (:class:`analysis.data.specs.PolicyEvent`; with ``spec``, categories and intensities against
    the scale in specs/indices.yaml). ``path``: the region's ``measures.policy_events`` when
    None; a region without one has no events (an empty table)."""
    if path is None:
        path = load_region().policy_events_file
        if path is None:
            return pd.DataFrame(columns=EVENT_COLUMNS).astype({"intensity": float,
                                                               "partial": int})
    spec = spec or specs.load_indices_spec()
    context = {"levels": spec["rn"]["levels"],
               "partial_factor": spec["rn"]["first_build"]["partial_factor"]}
    events = specs.load_table(path, specs.PolicyEvent, context)
    return events.astype({"intensity": float, "partial": int})


# Coding rules of data/raw/rn_measures.csv (column ``rule``, ``;``-separated; docs/indices.md "RN").
# A measure enters the main state unless one of MEASURE_RULES_NOT_MAIN applies, and the
# all-measures variant unless one of MEASURE_RULES_NOT_ANY applies.
MEASURE_RULES = {
    "documented_dates": "a standing restriction between the documented dates",
    "broad_scope": "a class of minerals ('all minerals', 'metal ores'): covers every group in it",
    "uncertain_start_later_date": "start uncertain between documented dates: the later one; main, "
                                  "flagged",
    "unknown_lift": "no lift date: ends at the last date a source documents it in force, a "
                    "documented stay or its documented successor (variant: never lifted)",
    "implemented_by_later_measures": "counts until the measures implementing it take effect",
    "one_off_act": "a one-off act (equity purchase, contract conversion): in no state",
    "never_in_force": "suspended before its entry into force",
    "no_chain_group": "covers no mineral group of the HS6 chain map (technology, refined tin, "
                      "fluorspar, sand)",
    "no_effective_date": "no documented start: in no state",
    "unverified": "a date rests on a single or weak source: all-measures variant only",
    "other_type": "not an export or mining restriction (framework law, production cap, review)",
    "non_state": "a non-state authority or not a measure: in no state",
    "not_strategic": "not a strategic mineral (construction sand)",
}
MEASURE_RULES_NOT_MAIN = specs.Measure.RULES_NOT_MAIN
MEASURE_RULES_NOT_ANY = specs.Measure.RULES_NOT_ANY
MEASURE_COLUMNS = ["measure_id", "country", "mineral", "groups", "measure_type", "category",
                   "intensity", "effective", "lifted", "changes", "verified", "rule", "main",
                   "all_events", "second_build_main", "source", "coding_note"]


def mineral_groups(path: Path = config.HS_CHAIN_MAP_FILE) -> list[str]:
    """The mineral groups of the RN coverage state: the chains of the HS6 map's included codes."""
    try:
        table = pd.read_csv(path, dtype={"hs6": str})
    except (OSError, ValueError) as error:
        raise DataError(path, f"unreadable HS6 chain map ({error})") from error
    from analysis.data.parsers import require_columns

    require_columns(table, ["chain", "included"], path)
    return sorted(table.loc[table["included"] == 1, "chain"].unique())


def read_measures(path: Path | list[Path] | tuple[Path, ...] | None = None,
                  spec: dict | None = None, groups: list[str] | None = None,
                  countries: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The project's coded resource-nationalism measures (one row per measure, with a source).

    ``path``: one measures file or several (read as one table, measure ids unique across them);
    the region's ``measures.files`` when None (``data/raw/rn_measures.csv`` for China + ASEAN).
    ``countries``: the countries a row may name (the region's when None).

    Columns: :data:`MEASURE_COLUMNS`. ``groups`` lists the mineral groups (chains of the HS6
    map, ``;``-separated) a measure covers; ``rule`` the coding rules applied
    (:data:`MEASURE_RULES`); ``main`` / ``all_events`` say whether it enters the main state and
    the all-measures variant, and must agree with the rules; ``second_build_main`` whether it
    entered the second build's main state (for its variant). Every row is validated by
    :class:`analysis.data.specs.Measure` against the panel's countries, the intensity scale of
    ``spec`` (specs/indices.yaml), the mineral groups and the coding rules: a value that matches
    nothing is an error naming the file, the measure and the column. Coding rules:
    docs/indices.md ("RN").
    """
    region = load_region()
    paths = (list(region.measures_files) if path is None
             else [path] if isinstance(path, (str, Path)) else list(path))
    spec = spec or specs.load_indices_spec()
    groups = mineral_groups() if groups is None else list(groups)
    context = {"levels": spec["rn"]["levels"], "groups": groups, "rules": list(MEASURE_RULES),
               "rules_not_main": MEASURE_RULES_NOT_MAIN, "rules_not_any": MEASURE_RULES_NOT_ANY,
               "countries": region.countries if countries is None else tuple(countries)}
    from analysis.data.parsers import require_columns

    tables, seen = [], {}
    for file in paths:
        table = specs.load_table(file, specs.Measure, context)
        require_columns(table, MEASURE_COLUMNS, file)
        for position, measure_id in enumerate(table["measure_id"]):
            if measure_id in seen:
                raise DataError(file, f"{measure_id!r} is used twice as measure_id (also in "
                                f"{seen[measure_id]})", "measure_id",
                                entry=f"line {position + 2} (measure_id {measure_id})")
            seen[measure_id] = display_path(file)
        tables.append(table)
    measures = tables[0] if len(tables) == 1 else pd.concat(tables, ignore_index=True)
    return measures.astype({"intensity": float})


# --------------------------------------------------------------------------- assembly
def _window(spec: dict) -> tuple[int, int]:
    lo, hi = spec["window"]
    return int(lo), int(hi)


def region_partners(countries: tuple[str, ...] | None = None) -> dict[str, set[str]]:
    """i -> the region's countries without i (China + ASEAN without i: the region whose share
    SYN measures)."""
    countries = load_region().countries if countries is None else countries
    return {iso3: set(countries) - {iso3} for iso3 in countries}


def build_syn(flows: pd.DataFrame, hs6: pd.DataFrame, chain: pd.DataFrame, spec: dict,
              years: tuple[int, ...]) -> pd.DataFrame:
    """SYN (main) and its variants by country-year (METHODS.md section 3).

    - ``syn``: textbook coupling coordination of the raw regional shares of i's chain exports
      and imports, gold excluded, USD 1 m materiality (``syn_flag`` says why it is missing);
      ``syn_u_out``, ``syn_u_in`` the shares.
    - ``syn_smoothed``: the same with pseudo-count shares (k = USD 5 m) towards the country's
      long-run share (pooled over all panel years), no materiality rule.
    - ``syn_corrected``: the corrected coupling (Wang et al. 2021) on the same raw shares.
    - ``syn_gold``: the main definition with gold bullion included.
    - ``syn_leave_top``: the main definition without each country's top HS6 code in each flow
      (pooled over the estimation window).
    - ``syn_u1u2`` (+ ``_entropy_topsis``/``_pca``/``_equal``): the first build's four-flow
      U1/U2 definition (corrected C, composites), with the self-partner bug fixed.
    - ``syn_gl``, ``syn_tc``, ``syn_tii``: Grubel-Lloyd, trade complementarity with China and
      trade intensity with the region, gold excluded.
    """
    cfg = spec["synergy"]
    gold = [str(c) for c in spec["gold_hs6"]]
    min_flow = float(cfg["min_flow_kusd"])
    region = region_partners()
    totals = constructs.regional_flow_totals(flows, region, exclude_hs6=gold)
    totals = _complete_years(totals, years)
    main = constructs.synergy_from_totals(totals, min_flow)
    out = main[["iso3", "year", "syn", "u_out", "u_in", "syn_flag", "exports_world",
                "exports_region", "imports_world", "imports_region"]].rename(
        columns={"u_out": "syn_u_out", "u_in": "syn_u_in",
                 "exports_world": "chain_exports_world", "exports_region": "chain_exports_region",
                 "imports_world": "chain_imports_world", "imports_region": "chain_imports_region"})
    # pseudo-count smoothing towards the long-run share
    pooled = totals.groupby("iso3")[["exports_region", "exports_world", "imports_region",
                                     "imports_world"]].sum()
    k = float(cfg["pseudo_count_kusd"])
    long_out = (pooled["exports_region"] / pooled["exports_world"]).reindex(totals["iso3"])
    long_in = (pooled["imports_region"] / pooled["imports_world"]).reindex(totals["iso3"])
    smoothed = totals.assign(
        s_out=constructs.smoothed_share(totals["exports_region"], totals["exports_world"],
                                        long_out.to_numpy(), k),
        s_in=constructs.smoothed_share(totals["imports_region"], totals["imports_world"],
                                       long_in.to_numpy(), k))
    smoothed = constructs.synergy_from_totals(smoothed, min_flow, shares=("s_out", "s_in"))
    out["syn_smoothed"] = smoothed["syn"].to_numpy()
    out["syn_corrected"] = constructs.synergy_from_totals(totals, min_flow, corrected=True)[
        "syn"].to_numpy()
    with_gold = _complete_years(constructs.regional_flow_totals(flows, region), years)
    out["syn_gold"] = constructs.synergy_from_totals(with_gold, min_flow)["syn"].to_numpy()
    lo, hi = _window(spec)
    top = constructs.top_code_shares(flows, gold, range(lo, hi + 1)).set_index("iso3")
    leave_parts = []
    for iso3, own in flows[flows["iso3"].isin(top.index)].groupby("iso3"):
        exports = own.assign(import_value=0.0)
        exports = exports[exports["hs6"] != top.loc[iso3, "top_export_hs6"]]
        imports = own.assign(export_value=0.0)
        imports = imports[imports["hs6"] != top.loc[iso3, "top_import_hs6"]]
        leave_parts.append(pd.concat([exports, imports]))
    leave = _complete_years(constructs.regional_flow_totals(pd.concat(leave_parts), region,
                                                            exclude_hs6=gold), years)
    out["syn_leave_top"] = constructs.synergy_from_totals(leave, min_flow)["syn"].to_numpy()
    # the first build's U1/U2 definition (gold included, as built), self-partner bug fixed
    first = cfg["first_build"]
    indicators = subsystem_indicators(chain)
    indicators = indicators[indicators["year"].isin(years)].reset_index(drop=True)
    for m in spec["methods"]:
        syn, _ = coupling_synergy(indicators, m, spec["epsilon"], first["corrected"],
                                  first["alpha"])
        suffix = "" if m == spec["main_method"] else f"_{m}"
        out = out.merge(syn.rename(columns={"syn": f"syn_u1u2{suffix}", "u1": f"syn_u1{suffix}",
                                            "u2": f"syn_u2{suffix}"}),
                        on=["iso3", "year"], how="left")
    product = product_level_synergy(hs6[~hs6["hs6"].isin(gold)])
    out = out.merge(product, on=["iso3", "year"], how="left")
    tii = regional_trade_intensity(hs6[~hs6["hs6"].isin(gold)], chain)
    return out.merge(tii, on=["iso3", "year"], how="left")


def _complete_years(totals: pd.DataFrame, years: tuple[int, ...]) -> pd.DataFrame:
    """Every country x year of the panel, absent trade as a real zero; sorted."""
    keys = [c for c in totals.columns if c in ("iso3", "year", "chain")]
    grid = pd.MultiIndex.from_product(
        [sorted(totals[c].unique()) if c != "year" else list(years) for c in keys],
        names=keys).to_frame(index=False)
    out = grid.merge(totals, on=keys, how="left").fillna(
        {c: 0.0 for c in ("exports_world", "exports_region", "imports_world", "imports_region")})
    return out.sort_values(keys).reset_index(drop=True)


def gpr_partners(gprc: pd.DataFrame, region: Region) -> list[str]:
    """The partners of the exposure weights: every country with a GPRC series
    (``gpr.partners: all_with_gprc``), or the region's list of extra-regional partners plus the
    region's own countries with a series (the in-region part, GPRX_reg)."""
    available = sorted(gprc["partner_iso3"].unique())
    if region.gpr_partners is None:
        return available
    chosen = set(region.gpr_partners) | set(region.countries)
    return [k for k in available if k in chosen]


def build_gpr(flows: pd.DataFrame, bilateral: pd.DataFrame, gprc: pd.DataFrame,
              panel: pd.DataFrame, spec: dict, region: Region | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GPR (main = extra-regional exposure with fixed pre-sample weights) and its variants.

    Returns (country-year frame, the weights table with each country's base value, coverage and
    flags). Columns: ``gpr`` (= ``gprx_ext``, from the first model year on), ``gprx`` (total),
    ``gprx_ext``, ``gprx_reg``, ``gpr_ext_share`` (sum of extra-regional weights), ``gpr_logratio``
    (log-ratio standardisation), ``gpr_tv`` (the first build's time-varying lagged-share GPRX
    with the materiality rule), ``gprx_first_build`` (exactly as first built, for diagnostics),
    ``gpr_no_zaf_mapping`` (the second build's main: South Africa's 1995-99 trade, BACI code
    711, left unmapped), ``gpr_own``, ``gpr_wui``, the shift-share series, ``gpr_composition``
    (lagged shares x mean
    standardised partner risk: composition only) and ``us_share`` (lagged US share of chain
    trade, gold excluded).

    The region (default: this run's) gives the countries, the weight base
    (``gpr.base_years``), the shrinkage pool of thin bases (``gpr.shrinkage_target``) and the
    partner set (``gpr.partners``); "extra-regional" means outside the region's countries.
    """
    spec_region = region or load_region()
    cfg = spec["gpr"]
    gold = [str(c) for c in spec["gold_hs6"]]
    partners = gpr_partners(gprc, spec_region)
    gprc = gprc[gprc["partner_iso3"].isin(partners)]
    region = set(spec_region.countries)
    countries, pool = spec_region.countries, spec_region.shrinkage_pool
    base_years, years = spec_region.gpr_base_years, spec_region.years
    weights = constructs.base_exposure_weights(
        flows, partners, base_years, countries, pool,
        float(cfg["thin_base_kusd"]), float(cfg["pseudo_count_kusd"]), gold)
    g = constructs.standardise_gprc(gprc, tuple(cfg["gprc_base_years"]), "ratio")
    exposure = constructs.exposure_index(weights, g, region, years)
    g_log = constructs.standardise_gprc(gprc, tuple(cfg["gprc_base_years"]), "log_ratio")
    log_exposure = constructs.exposure_index(weights, g_log, region, years)
    out = panel[["iso3", "year"]].merge(exposure, on=["iso3", "year"], how="left")
    out = out.rename(columns={"ext_share": "gpr_ext_share"})
    first_year = int(cfg["first_year"])
    out["gpr"] = out["gprx_ext"].where(out["year"] >= first_year)
    # The second build's GPR: BACI's code 711 (Southern African Customs Union, to 1999) was not
    # mapped to ZAF, so South Africa had no trade before 2000 and no weight.
    unmapped = flows[~((flows["partner_iso3"] == "ZAF") & (flows["year"] < SACU_LAST_YEAR + 1))]
    weights_unmapped = constructs.base_exposure_weights(
        unmapped, partners, base_years, countries, pool,
        float(cfg["thin_base_kusd"]), float(cfg["pseudo_count_kusd"]), gold)
    out = out.merge(constructs.exposure_index(weights_unmapped, g, region, years)[
        ["iso3", "year", "gprx_ext"]].rename(columns={"gprx_ext": "gpr_no_zaf_mapping"}),
        on=["iso3", "year"], how="left")
    out["gpr_no_zaf_mapping"] = out["gpr_no_zaf_mapping"].where(out["year"] >= first_year)
    out = out.merge(log_exposure[["iso3", "year", "gprx_ext"]].rename(
        columns={"gprx_ext": "gpr_logratio"}), on=["iso3", "year"], how="left")
    out["gpr_logratio"] = out["gpr_logratio"].where(out["year"] >= first_year)
    first = exposure_weighted_gpr(bilateral, gprc, cfg["first_build"]["exposure_lag"])
    out = out.merge(first.rename(columns={"gprx": "gprx_first_build",
                                          "gprx_coverage": "gprx_first_build_coverage"}),
                    on=["iso3", "year"], how="left")
    tv = exposure_weighted_gpr(bilateral, gprc, cfg["first_build"]["exposure_lag"],
                               min_covered=float(cfg["materiality_kusd"]))
    out = out.merge(tv[["iso3", "year", "gprx"]].rename(columns={"gprx": "gpr_tv"}),
                    on=["iso3", "year"], how="left")
    out = out.merge(composition_and_us_share(flows, g, partners, gold, spec),
                    on=["iso3", "year"], how="left")
    out = out.merge(panel[["iso3", "year", "gprc", "wui"]].rename(
        columns={"gprc": "gpr_own", "wui": "gpr_wui"}), on=["iso3", "year"], how="left")
    gpr_global = panel[["year", "gpr_global", "gpr_threats", "gpr_acts"]].drop_duplicates("year")
    out = out.merge(shift_share_gpr(bilateral, gpr_global, cfg["shift_share_base_year"],
                                    cfg["shift_share_partners"]), on=["iso3", "year"], how="left")
    return out, weights


def composition_and_us_share(flows: pd.DataFrame, g: pd.DataFrame, partners: list[str],
                             gold: list[str], spec: dict) -> pd.DataFrame:
    """Diagnostics inputs: the composition-only exposure and the lagged US share.

    gpr_composition_it = sum_k s_ik,t-1 g_bar_k with s the lagged (t-1) shares of i's chain
    trade (gold excluded) over GPRC partners and g_bar_k the partner's mean standardised risk
    over the estimation window: it moves only with trade composition. us_share_it = the USA's
    share of i's chain trade with all partners in t-1.
    """
    lo, hi = _window(spec)
    g_bar = g[g["year"].between(lo, hi)].groupby("partner_iso3")["g"].mean()
    data = flows[~flows["hs6"].isin(gold)]
    trade = (data["export_value"] + data["import_value"]).groupby(
        [data["iso3"], data["partner_iso3"], data["year"]]).sum().rename("trade").reset_index()
    trade["year"] = trade["year"] + 1
    total = trade.groupby(["iso3", "year"])["trade"].sum()
    with_g = trade[trade["partner_iso3"].isin(g_bar.index)
                   & (trade["partner_iso3"] != trade["iso3"])]
    covered = with_g.groupby(["iso3", "year"])["trade"].sum()
    weighted = (with_g["trade"] * with_g["partner_iso3"].map(g_bar)).groupby(
        [with_g["iso3"], with_g["year"]]).sum()
    us = trade[trade["partner_iso3"] == "USA"].groupby(["iso3", "year"])["trade"].sum()
    out = pd.DataFrame({"gpr_composition": weighted / covered.where(covered > 0),
                        "us_share": us.reindex(total.index, fill_value=0.0)
                        / total.where(total > 0)})
    return out.reset_index()


def rn_event_states(measures: pd.DataFrame, flows: pd.DataFrame, spec: dict,
                    groups: list[str] | None = None, region: Region | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every RN events series by country-year, the export weights and the coverage by group.

    - ``rn_events`` (main): trade-weighted coverage of the main measures,
      sum_g w_ig s_igt (:func:`analysis.measures.constructs.coverage_state`), with w_ig pooled over
      ``rn.coverage.weight_years`` (1998-2020, gold excluded). In [0, 1].
    - ``rn_events_weights_1995_97``: the same with 1995-1997 weights.
    - ``rn_events_unknown_lift_forever``: measures with an unknown lift date never lifted.
    - ``rn_events_count``: the unweighted count of restricted groups (intensity ignored).
    - ``rn_events_all``: the coverage of every measure in the all-measures variant.
    - ``rn_events_second_build``: the second build's state, the sum over its main measures of
      intensity x share of the year in force, unknown lift dates read as never lifted.

    A country of the region without any coded measure has these states at 0 only if the
    region lists it in ``measures.none_found`` (the reference searched and found none);
    otherwise they are missing (:func:`uncoded_countries`): a missing row of the measures file
    is not evidence of no restriction.

    Returns (the series, the weights with ``weight_window`` main/base, the main coverage by
    group with each group's weight).
    """
    region = region or load_region()
    cfg = spec["rn"]["coverage"]
    gold = [str(c) for c in spec["gold_hs6"]]
    groups = mineral_groups() if groups is None else groups
    years, countries = region.years, region.countries
    lo, hi = (int(y) for y in cfg["weight_years"])
    weights = constructs.export_group_weights(flows, range(lo, hi + 1), gold, groups)
    blo, bhi = (int(y) for y in cfg["base_weight_years"])
    base = constructs.export_group_weights(flows, range(blo, bhi + 1), gold, groups)
    scale = float(cfg["scale"])
    main = measures[measures["main"] == "yes"]
    unknown_lift = measures["rule"].map(lambda r: "unknown_lift" in constructs.parse_groups(r))
    forever = measures.assign(lifted=measures["lifted"].where(~unknown_lift, ""))

    def state(chosen: pd.DataFrame, w: pd.DataFrame, name: str) -> pd.DataFrame:
        return constructs.coverage_state(chosen, w, countries, years, scale).rename(
            columns={"rn_events": name})

    parts = [
        state(main, weights, "rn_events"),
        state(main, base, "rn_events_weights_1995_97"),
        state(forever[forever["main"] == "yes"], weights, "rn_events_unknown_lift_forever"),
        constructs.group_count_state(main, groups, countries, years).rename(
            columns={"count": "rn_events_count"}),
        state(measures[measures["all_events"] == "yes"], weights, "rn_events_all"),
        constructs.in_force_state(forever[forever["second_build_main"] == "yes"], countries,
                                  years).rename(columns={"rn_events": "rn_events_second_build"}),
    ]
    out = parts[0]
    for part in parts[1:]:
        out = out.merge(part, on=["iso3", "year"], how="left", validate="one_to_one")
    uncoded = uncoded_countries(measures, region)
    if uncoded:
        out.loc[out["iso3"].isin(uncoded), out.columns.drop(["iso3", "year"])] = np.nan
    by_group = constructs.coverage_by_group(main, groups, countries, years, scale).merge(
        weights[["iso3", "group", "weight"]], on=["iso3", "group"], how="left")
    all_weights = pd.concat([weights.assign(weight_window=f"{lo}-{hi}"),
                             base.assign(weight_window=f"{blo}-{bhi}")], ignore_index=True)
    return out, all_weights, by_group


def uncoded_countries(measures: pd.DataFrame, region: Region) -> list[str]:
    """The region's countries without a row in the measures table that the region does not
    list in ``measures.none_found``: nobody searched for their measures, so their RN events
    state is missing, not 0."""
    coded = set(measures["country"])
    return [c for c in region.countries if c not in coded and c not in region.none_found]


# RN composites: (column, the events series it uses instead of rn_events)
RN_EVENT_VARIANTS = {
    "rn_all_events": "rn_events_all",
    "rn_weights_1995_97": "rn_events_weights_1995_97",
    "rn_unknown_lift_forever": "rn_events_unknown_lift_forever",
    "rn_group_count": "rn_events_count",
    "rn_second_build": "rn_events_second_build",
}


def build_rn(panel: pd.DataFrame, measures: pd.DataFrame, events: pd.DataFrame,
             flows: pd.DataFrame, spec: dict, record: dict,
             groups: list[str] | None = None, region: Region | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """RN (main composite with a fixed indicator set) and its variants.

    - ``rn_events`` and its variants: :func:`rn_event_states`.
    - ``rn``: entropy composite of rn_events, resource rents (% GDP) and the ores-and-metals
      export share, normalised and weighted on the estimation window, missing where an input is
      missing (so it never switches definition); ``rn_<method>`` for the other methods,
      ``rn_wholepanel`` normalised over every complete row.
    - The same composite with another events series (:data:`RN_EVENT_VARIANTS`):
      ``rn_all_events``, ``rn_weights_1995_97``, ``rn_unknown_lift_forever``,
      ``rn_group_count`` and ``rn_second_build`` (the second build's main RN: the sum over
      measures).
    - ``rn_event_pulse``: the first build's decaying announcement stock (a variant);
      ``rn_first_build``: the first build's composite (renormalised over observed indicators).

    Returns (the country-year frame, the export weights, the main coverage by group).
    """
    region = region or load_region()
    cfg = spec["rn"]
    states, weights, by_group = rn_event_states(measures, flows, spec, groups, region)
    frame = panel[["iso3", "year", "resource_rents_gdp", "ores_metals_export_share"]].merge(
        states, on=["iso3", "year"], how="left")
    uncoded = frame["iso3"].isin(uncoded_countries(measures, region))
    outside = (frame["rn_events"].isna() & ~uncoded) | ~(
        frame["rn_events"].between(0.0, 1.0) | uncoded)
    if outside.any():
        raise ValueError(f"rn_events outside [0, 1] or missing in {int(outside.sum())} rows")
    directions = {k: v["direction"] for k, v in cfg["indicators"].items()}
    frame = _add_fixed_composites(frame, "rn", directions, spec, record)
    window = _in_window(frame, spec)
    for column, series in RN_EVENT_VARIANTS.items():
        variant = {(series if k == "rn_events" else k): v for k, v in directions.items()}
        scores, weights_used, n = constructs.fixed_set_composite(
            frame, variant, spec["main_method"], spec["epsilon"], window)
        frame[column] = scores.where(window)
        record["composites"][column] = {"method": spec["main_method"],
                                        "weights": weights_used.to_dict(), "reference_rows": n}
    # the first build: decaying pulses and the renormalised composite
    first = cfg["first_build"]
    intensity = event_intensity(events, cfg["levels"], first["partial_factor"])
    if not np.allclose(intensity.to_numpy(), events["intensity"].to_numpy()):
        raise DataError(region.policy_events_file or config.DATA_RAW / "rn_policy_events.csv",
                        "intensity column disagrees with the scale in specs/indices.yaml",
                        column="intensity")
    pulse = event_stock(events, region.countries, region.years, first["decay"],
                        verified_only=True)
    # countries the events file was not coded for have no stock (missing, not 0)
    coded = region.policy_events_countries if region.policy_events_file is not None else ()
    pulse.loc[~pulse["iso3"].isin(coded), "rn_event_stock"] = np.nan
    frame = frame.merge(pulse.rename(columns={"rn_event_stock": "rn_event_pulse"}),
                        on=["iso3", "year"], how="left")
    old = {("rn_event_pulse" if k == "rn_events" else k): v for k, v in directions.items()}
    if frame["rn_event_pulse"].notna().any():
        scores, weights_used, n = composite_with_missing(
            frame, old, spec["main_method"], spec["epsilon"], first["min_weight_share"])
        frame["rn_first_build"] = scores.to_numpy()
        record["composites"]["rn_first_build"] = {"method": spec["main_method"],
                                                  "weights": weights_used.to_dict(),
                                                  "complete_rows": n}
    else:  # a region without the first build's events: no first-build RN
        frame["rn_first_build"] = np.nan
    record["rn_export_weights"] = {
        iso3: {r.group: round(float(r.weight), 4) for r in w.itertuples() if r.weight > 0}
        for iso3, w in weights[weights["weight_window"] == weights["weight_window"].iloc[0]]
        .groupby("iso3")}
    return (frame.drop(columns=["resource_rents_gdp", "ores_metals_export_share"]), weights,
            by_group)


def ti_inputs(panel: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """TI indicators: counts per million as log(1 + x); the others as they are.

    Every indicator of the main set, the capacity variant and the high-tech variant. Gap-filled
    values (at most 4 years, flagged in the clean stage) are kept; ``<name>_observed`` holds
    the value only where it was observed (for the observed-only variant).
    """
    cfg = spec["ti"]
    columns = list(dict.fromkeys([*cfg["indicators"],
                                  *cfg.get("capacity", {}).get("indicators", {}),
                                  *cfg.get("variant_indicators", {})]))
    out = panel[["iso3", "year"]].copy()
    for column in columns:
        values = panel[column].astype(float)
        if column in cfg["log1p"]:
            values = np.log1p(values)
        out[column] = values
        filled = panel[f"{column}_filled"].astype(bool)
        out[f"{column}_observed"] = values.where(~filled)
    return out


def build_ti(panel: pd.DataFrame, spec: dict, record: dict) -> pd.DataFrame:
    """TI (main: science and digital capacity) and its variants (METHODS.md section 3, Rev. 3).

    - ``ti``: science and digital capacity, the equal-weighted mean of log(1 + journal articles
      per million) and internet users (% of population), each min-max normalised over the
      estimation window (no epsilon shift: ti = (x'_articles + x'_internet) / 2), missing where
      either input is missing, never renormalised.
    - ``ti_entropy``, ``ti_entropy_topsis``, ``ti_pca``: the same two inputs with the other
      weighting methods (``ti_entropy`` is the second build's ``ti_broad``);
      ``ti_wholepanel``: normalised over every complete row 1996-latest.
    - ``ti_science`` and ``ti_digital``: the two normalised inputs (sub-indices).
    - ``ti_observed``: the main definition on rows where no input was gap-filled.
    - ``ti_hightech``: the main inputs plus the high-technology export share (from 2007 only).
    - ``ti_capacity``: the second build's main TI, the entropy composite of R&D (% GDP),
      log(1 + resident patents per million), log(1 + researchers per million), log(1 + articles
      per million) and internet users (seven countries).
    - ``ti_first_build``: the first build's composite (raw counts, renormalised over whichever
      indicators were observed, high-tech included).
    """
    cfg = spec["ti"]
    method = cfg["method"]
    frame = ti_inputs(panel, spec)
    window = _in_window(frame, spec)
    everywhere = pd.Series(True, index=frame.index)
    directions = {k: v["direction"] for k, v in cfg["indicators"].items()}

    def composite(name: str, chosen: dict[str, int], how: str, reference: pd.Series,
                  restrict: bool = True) -> None:
        epsilon = 0.0 if how == "equal" else spec["epsilon"]
        scores, weights, n = constructs.fixed_set_composite(frame, chosen, how, epsilon,
                                                            reference)
        frame[name] = scores.where(window) if restrict else scores
        record["composites"][name] = {"method": how, "weights": weights.to_dict(),
                                      "reference_rows": n, "epsilon": epsilon}

    composite("ti", directions, method, window)
    for other in spec["methods"]:
        if other != method:
            composite(f"ti_{other}", directions, other, window)
    composite("ti_wholepanel", directions, method, everywhere, restrict=False)
    for column, entry in cfg["indicators"].items():
        composite(f"ti_{entry['subindex']}", {column: entry["direction"]}, "equal", window)
    composite("ti_observed", {f"{k}_observed": v for k, v in directions.items()}, method, window)
    hightech = {**directions, **{k: v["direction"] for k, v in
                                 cfg.get("variant_indicators", {}).items()}}
    composite("ti_hightech", hightech, method, window)
    capacity = cfg["capacity"]
    composite("ti_capacity", {k: v["direction"] for k, v in capacity["indicators"].items()},
              capacity["method"], window)
    first = cfg["first_build"]
    raw = panel[["iso3", "year", *first["indicators"]]]
    scores, weights, n = composite_with_missing(raw, dict.fromkeys(first["indicators"], 1),
                                                spec["main_method"], spec["epsilon"],
                                                first["min_weight_share"])
    frame["ti_first_build"] = scores.to_numpy()
    record["composites"]["ti_first_build"] = {"method": spec["main_method"],
                                              "weights": weights.to_dict(), "complete_rows": n}
    keep = [c for c in frame.columns if c.startswith("ti")] + ["iso3", "year"]
    return frame[keep]


def _in_window(frame: pd.DataFrame, spec: dict) -> pd.Series:
    lo, hi = _window(spec)
    return frame["year"].between(lo, hi)


def _add_fixed_composites(frame: pd.DataFrame, name: str, directions: dict[str, int],
                          spec: dict, record: dict) -> pd.DataFrame:
    """``name`` (main method), ``name_<method>`` (other methods), ``name_wholepanel``.

    All on the fixed indicator set; missing outside the estimation window, except the
    whole-panel variant, which normalises and weights over every complete row 1996-2024.
    """
    window = _in_window(frame, spec)
    for m in spec["methods"]:
        scores, weights, n = constructs.fixed_set_composite(frame, directions, m,
                                                            spec["epsilon"], window)
        column = name if m == spec["main_method"] else f"{name}_{m}"
        frame[column] = scores.where(window)
        record["composites"][column] = {"method": m, "weights": weights.to_dict(),
                                        "reference_rows": n, "window": list(_window(spec))}
    everywhere = pd.Series(True, index=frame.index)
    scores, weights, n = constructs.fixed_set_composite(frame, directions, spec["main_method"],
                                                        spec["epsilon"], everywhere)
    frame[f"{name}_wholepanel"] = scores
    record["composites"][f"{name}_wholepanel"] = {"method": spec["main_method"],
                                                  "weights": weights.to_dict(),
                                                  "reference_rows": n}
    return frame


def build_indices(panel: pd.DataFrame, chain: pd.DataFrame, bilateral: pd.DataFrame,
                  hs6: pd.DataFrame, flows: pd.DataFrame, gprc: pd.DataFrame,
                  events: pd.DataFrame, measures: pd.DataFrame, spec: dict,
                  groups: list[str] | None = None, region: Region | None = None
                  ) -> tuple[pd.DataFrame, dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All indices and their variants by country-year, the weights record, the GPR weights, the
    RN export weights and the RN coverage by mineral group (for the region, default this
    run's)."""
    region = region or load_region()
    record: dict = {"epsilon": spec["epsilon"], "main_method": spec["main_method"],
                    "window": list(_window(spec)), "composites": {}}
    out = panel[["iso3", "year"]].copy()
    syn = build_syn(flows, hs6, chain, spec, region.years)
    gpr, weights = build_gpr(flows, bilateral, gprc, panel, spec, region)
    rn, rn_weights, rn_coverage = build_rn(panel, measures, events, flows, spec, record, groups,
                                           region)
    ti = build_ti(panel, spec, record)
    for part in (syn, gpr, rn, ti):
        out = out.merge(part, on=["iso3", "year"], how="left", validate="one_to_one")
    size = out["chain_exports_world"] + out["chain_imports_world"]
    out["log_mineral_trade"] = np.log(size.where(size > 0))
    record["gpr_weights"] = {
        iso3: {"base_value_kusd": float(w["country_base"].iloc[0]), "thin": bool(w["thin"].iloc[0]),
               "top_partners": {r.partner_iso3: round(float(r.weight), 4) for r in
                                w.nlargest(5, "weight").itertuples()}}
        for iso3, w in weights.groupby("iso3")}
    return (out.sort_values(["iso3", "year"]).reset_index(drop=True), record, weights,
            rn_weights, rn_coverage)


def dyad_synergy(flows: pd.DataFrame, dyad: pd.DataFrame, spec: dict,
                 region: Region | None = None) -> pd.DataFrame:
    """SYN of each member j with the focal country (each ASEAN member with China), by year
    (the main definition on the dyad).

    U_out = j's chain exports to the focal country / j's chain exports to the world, U_in = j's
    chain imports from it / j's chain imports from the world; gold excluded; textbook coupling
    coordination; USD 1 m materiality. Also the trade intensity index of j's mineral exports to
    the focal country (``syn_tii``, first build).
    """
    region = region or load_region()
    gold = [str(c) for c in spec["gold_hs6"]]
    china = {iso3: {region.focal} for iso3 in region.members}
    totals = constructs.regional_flow_totals(flows[flows["iso3"].isin(region.members)], china,
                                             exclude_hs6=gold)
    totals = _complete_years(totals, region.years)
    syn = constructs.synergy_from_totals(totals, float(spec["synergy"]["min_flow_kusd"]))
    out = dyad.merge(syn[["iso3", "year", "syn", "u_out", "u_in", "syn_flag"]],
                     on=["iso3", "year"], how="left")
    out["syn_tii"] = trade_intensity(dyad["exports_to_china"].to_numpy(),
                                     dyad["mineral_exports_world"].to_numpy(),
                                     dyad["china_mineral_imports_world"].to_numpy(),
                                     dyad["world_mineral_trade"].to_numpy())
    return out


def chain_synergy(flows: pd.DataFrame, spec: dict, region: Region | None = None) -> pd.DataFrame:
    """SYN per mineral chain (main definition chain by chain, USD 1 m materiality per flow)."""
    region = region or load_region()
    gold = [str(c) for c in spec["gold_hs6"]]
    totals = constructs.regional_flow_totals(flows, region_partners(region.countries),
                                             exclude_hs6=gold, by=["chain"])
    totals = _complete_years(totals, region.years)
    syn = constructs.synergy_from_totals(totals, float(spec["synergy"]["min_flow_kusd"]))
    return syn[["iso3", "chain", "year", "u_out", "u_in", "syn", "syn_flag"]]


# --------------------------------------------------------------------------- outputs
def rank_correlations(indices: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Spearman rank correlation of each composite across weighting methods (pairwise)."""
    rows = []
    for name, main in (("rn", spec["main_method"]), ("ti", spec["ti"]["method"])):
        columns = {m: name if m == main else f"{name}_{m}" for m in spec["methods"]}
        frame = indices[list(columns.values())].rename(columns={v: k for k, v in columns.items()})
        corr = frame.corr(method="spearman")
        for a in corr.index:
            for b in corr.columns:
                if a < b:
                    rows.append({"index": name, "method_a": a, "method_b": b,
                                 "spearman": round(float(corr.loc[a, b]), 4),
                                 "n": int(frame[[a, b]].dropna().shape[0])})
    return pd.DataFrame(rows)


def weights_table(record: dict, spec: dict) -> pd.DataFrame:
    labels = {**{k: v["label"] for k, v in spec["rn"]["indicators"].items()},
              **{k: v["label"] for k, v in spec["ti"]["indicators"].items()},
              **{k: v["label"] for k, v in spec["ti"]["capacity"]["indicators"].items()},
              **{k: v["label"] for k, v in spec["ti"].get("variant_indicators", {}).items()}}
    rows = []
    for composite, entry in record["composites"].items():
        for indicator, weight in entry["weights"].items():
            rows.append({"composite": composite, "method": entry["method"],
                         "indicator": indicator,
                         "description": labels.get(indicator.removesuffix("_observed"), ""),
                         "weight": round(float(weight), 4)})
    return pd.DataFrame(rows)


def gpr_weights_table(weights: pd.DataFrame, min_weight: float = 0.05,
                      region: Region | None = None) -> pd.DataFrame:
    """Each country's base value, thin flag, coverage and partners above ``min_weight``.

    Numbers are printed as text with the precision they are rounded to (base in USD m to two
    decimals, weights to three), so every format shows the same digits. The column names give
    the region's weight base (1995-97 for China + ASEAN).
    """
    region = region or load_region()
    lo, hi = region.gpr_base_years
    base = f"base {lo}-{str(hi)[-2:]}, USD m (GPRC partners, gold excl.)"
    rows = []
    for iso3, w in weights.groupby("iso3"):
        top = w[w["weight"] >= min_weight].sort_values("weight", ascending=False)
        extra = float(w.loc[~w["partner_iso3"].isin(region.countries), "weight"].sum())
        rows.append({"iso3": iso3,
                     base: f"{float(w['country_base'].iloc[0]) / 1000:,.2f}",
                     "thin base (shrunk)": "yes" if w["thin"].iloc[0] else "no",
                     "extra-regional weight": f"{extra:.3f}",
                     "partners with weight >= 5%": ", ".join(
                         f"{r.partner_iso3} {r.weight:.3f}" for r in top.itertuples())})
    return pd.DataFrame(rows)


def rn_weights_table(weights: pd.DataFrame) -> pd.DataFrame:
    """Country x weight window (rows) by mineral group (columns): w_ig as text with three
    decimals ("" where undefined); the main window's row comes first for each country."""
    wide = weights.pivot_table(index=["iso3", "weight_window"], columns="group", values="weight",
                               aggfunc="first", dropna=False)
    text = wide.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    text = text.reset_index().rename(columns={"weight_window": "weights"})
    main_first = text["weights"] != text["weights"].max()
    text = text.assign(_order=main_first).sort_values(["iso3", "_order"], kind="stable")
    text.columns.name = None
    return text.drop(columns="_order").reset_index(drop=True)


def rn_state_table(indices: pd.DataFrame, years: tuple[int, ...] = (2000, 2005, 2010, 2015,
                                                                    2020)) -> pd.DataFrame:
    """RN events (main) by country in ``years``, three decimals."""
    wide = indices[indices["year"].isin(years)].pivot(index="iso3", columns="year",
                                                      values="rn_events")
    return wide.map(lambda v: f"{v:.3f}").rename(columns=str).reset_index()


def plot_index(indices: pd.DataFrame, column: str, title: str, out_dir: Path,
               countries: tuple[str, ...] | None = None) -> list[Path]:
    """One panel per country (the region's, in its order), four to a row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    countries = load_region().countries if countries is None else countries
    rows = max(1, -(-len(countries) // 4))
    fig, axes = plt.subplots(rows, 4, figsize=(12, 8 * rows / 3), sharex=True, sharey=True,
                             squeeze=False)
    for ax, iso3 in zip(axes.flat, countries, strict=False):
        own = indices[indices["iso3"] == iso3]
        ax.plot(own["year"], own[column], color="#1f4e79", lw=1.6)
        ax.set_title(iso3, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(countries):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.supxlabel("year")
    fig.tight_layout()
    return save_figure(fig, out_dir / f"index_{column}")


def run(processed: Path = config.DATA_PROCESSED, tables: Path = config.TABLES,
        figures: Path = config.FIGURES, spec_path: Path = config.SPECS / "indices.yaml",
        events_path: Path | None = None,
        measures_path: Path | list[Path] | None = None) -> pd.DataFrame:
    """Build every index for the region of this run (``REGION``); ``events_path`` and
    ``measures_path`` default to the region's ``measures.policy_events`` and ``measures.files``."""
    say = lambda message: print(f"[indices] {message}", flush=True)
    region = load_region()
    spec = specs.load_indices_spec(spec_path, processed)
    events = read_events(events_path, spec)
    groups = mineral_groups()
    measures = read_measures(measures_path, spec, groups)
    uncoded = uncoded_countries(measures, region)
    if uncoded:
        say(f"no coded measures for {', '.join(uncoded)} and not listed in measures.none_found "
            f"of {display_path(region.path)}: their RN events state is missing, not 0")
    panel = read_parquet(processed / "panel_clean.parquet")
    chain = read_parquet(processed / "trade_chain.parquet")
    bilateral = read_parquet(processed / "trade_bilateral.parquet")
    hs6 = read_parquet(processed / "trade_hs6.parquet")
    flows = read_parquet(processed / "trade_flows.parquet")
    gprc = read_parquet(processed / "gprc_partners.parquet")
    dyad = read_parquet(processed / "dyad_panel.parquet")
    say("building SYN, GPR, RN and TI and their variants")
    indices, record, gpr_weights, rn_weights, rn_coverage = build_indices(
        panel, chain, bilateral, hs6, flows, gprc, events, measures, spec, groups, region)
    validate(indices, indices_schema(region), processed / "indices.parquet")
    write_parquet(indices, processed / "indices.parquet")
    write_parquet(gpr_weights, processed / "gpr_weights.parquet")
    write_parquet(rn_coverage, processed / "rn_coverage.parquet")
    final = panel.merge(indices, on=["iso3", "year"], how="left", validate="one_to_one")
    write_parquet(final, processed / "panel.parquet")
    say("dyad and chain panels")
    write_parquet(dyad_synergy(flows, dyad, spec, region), processed / "dyad_indices.parquet")
    chain_syn = chain_synergy(flows, spec, region)
    country_vars = indices[["iso3", "year", "gpr", "gpr_own", "gpr_ss", "rn", "ti"]]
    chain_panel = chain_syn.merge(country_vars, on=["iso3", "year"], how="left").merge(
        panel[["iso3", "year", "log_gdppc_ppp", "trade_openness", "fdi_gdp", "urban_share",
               "wgi_ge", "wgi_rq"]], on=["iso3", "year"], how="left")
    write_parquet(chain_panel, processed / "chain_panel.parquet")
    atomic_write_text(processed / "index_weights.json", json.dumps(record, indent=2,
                                                                   sort_keys=True) + "\n")
    say("tables and figures")
    frame_table(weights_table(record, spec), tables / "index_weights",
                "Index weights by composite and method (reference rows: the estimation window)")
    lo, hi = region.gpr_base_years
    frame_table(gpr_weights_table(gpr_weights, region=region), tables / "gpr_weights",
                f"GPR exposure weights: pooled {lo}-{hi} chain trade with GPRC partners (gold "
                f"excluded); thin bases shrunk towards the pooled {region.pool_label} "
                "composition")
    frame_table(rn_weights_table(rn_weights), tables / "rn_export_weights",
                "RN events: each mineral group's share of the country's chain exports (gold "
                "excluded), the weights w_ig of the coverage state; main 1998-2020, variant "
                "1995-1997")
    frame_table(rn_state_table(indices), tables / "rn_events_by_country",
                "RN events (trade-weighted coverage of chain exports by restrictions in force, "
                "0-1) by country; 0 where the reference records no measure")
    frame_table(rank_correlations(indices, spec), tables / "index_rank_correlations",
                "Spearman rank correlation of RN and TI across weighting methods")
    missing = missing_shares(indices)
    frame_table(missing, tables / "index_missing", "Share of missing country-years per index")
    titles = {"syn": "SYN: coupling coordination of the regional shares of chain exports and "
                     "imports (textbook D, gold excluded)",
              "gpr": f"GPR: extra-regional exposure, fixed {lo}-{str(hi)[-2:]} weights, "
                     "partner GPRC / 1985-95 mean",
              "rn": "RN: resource-nationalism composite (export coverage by measures in force, "
                    "rents, ores share)",
              "rn_events": "RN events: trade-weighted coverage of chain exports by restrictions "
                           "in force (0-1)",
              "ti": "TI: science and digital capacity (log articles per million and Internet "
                    "use, equal weights)"}
    for column, title in titles.items():
        plot_index(indices, column, title, figures, region.countries)
    say(f"indices {indices.shape}; missing shares: "
        + ", ".join(f"{r.index}={r.share_missing:.0%}" for r in missing.itertuples()))
    return indices


def missing_shares(indices: pd.DataFrame, names: tuple[str, ...] = (
        "syn", "gpr", "gpr_own", "gpr_ss", "rn", "rn_events", "ti")) -> pd.DataFrame:
    rows = []
    for name in names:
        observed = indices[name].notna()
        rows.append({"index": name, "share_missing": round(float(1 - observed.mean()), 4),
                     "first_year": int(indices.loc[observed, "year"].min()),
                     "last_year": int(indices.loc[observed, "year"].max())})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.stages.indices",
        description="Build SYN, GPR, RN and TI (and all variants) from data/processed; "
        "choices come from specs/indices.yaml, the region (countries, GPR weight base, coded "
        "measures: data/raw/rn_measures.csv for China + ASEAN) from specs/regions/<REGION>.yaml.")
    parser.add_argument("--spec", type=Path, default=config.SPECS / "indices.yaml")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    return run_stage("indices", lambda: run(spec_path=args.spec), verbose=args.verbose or None,
                     summary=lambda t: f"SYN, GPR, RN, TI and variants for {len(t)} "
                     f"country-years -> {display_path(config.DATA_PROCESSED)}/panel.parquet")


if __name__ == "__main__":
    sys.exit(main())
