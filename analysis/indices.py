"""Stage 3, indices: SYN, GPR, RN and TI from the processed panels.

Reads ``data/processed/{panel_clean,trade_chain,trade_bilateral,trade_hs6,dyad_panel,
gprc_partners}.parquet`` and ``data/raw/rn_policy_events.csv``; the choices (indicators,
directions, method, epsilon, decay) come from ``specs/indices.yaml``. Writes
``data/processed/indices.parquet``, the final ``data/processed/panel.parquet``,
``dyad_indices.parquet``, ``chain_panel.parquet`` and ``index_weights.json``, plus tables and
figures under ``outputs/``. The formulas and sources are in ``docs/indices.md``.

Run ``python -m analysis.indices --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import config
from analysis.figures import save_figure
from analysis.io import DataError, atomic_write_text, read_parquet, record_timing, write_parquet
from analysis.schemas import INDICES_SCHEMA, validate
from analysis.synergy import (
    coupling_coordination,
    grubel_lloyd,
    trade_complementarity,
    trade_intensity,
)
from analysis.tables import frame_table
from analysis.weighting import METHODS, minmax_normalise, topsis_closeness

PRODUCT_STAGES = ("supply", "transformation", "recycling")
FLOWS = (*PRODUCT_STAGES, "demand")


def load_spec(path: Path = config.SPECS / "indices.yaml") -> dict:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DataError(path, f"cannot read the index specification ({error})") from error


# --------------------------------------------------------------------------- composites
def composite_with_missing(data: pd.DataFrame, directions: Mapping[str, int], method: str,
                           epsilon: float, min_weight_share: float = 0.5
                           ) -> tuple[pd.Series, pd.Series, int]:
    """Composite score that tolerates missing indicators, built on the pure weighting methods.

    1. Weights: the chosen method (``analysis.weighting``) on the complete-case rows.
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
    from analysis.clean import partner_groups

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


def product_level_synergy(hs6: pd.DataFrame) -> pd.DataFrame:
    """Grubel–Lloyd with the region, trade complementarity with China, intensity with the region.

    - syn_gl: 1 - sum_k |X_ik,R - M_ik,R| / sum_k (X_ik,R + M_ik,R) over HS6 products k.
    - syn_tc: 100 (1 - sum_k |m_CHN,k - x_ik| / 2), x = i's world export shares, m = China's
      world import shares (Michaely); NaN for China itself.
    """
    region = hs6[hs6["partner_group"] == "region"]
    world = hs6[hs6["partner_group"] == "world"]
    rows = []
    china_imports = world[world["iso3"] == config.CHINA].pivot_table(
        index="year", columns="hs6", values="import_value", aggfunc="sum")
    for (iso3, year), own in world.groupby(["iso3", "year"]):
        reg = region[(region["iso3"] == iso3) & (region["year"] == year)]
        gl = grubel_lloyd(reg["export_value"].to_numpy(), reg["import_value"].to_numpy()) \
            if len(reg) else np.nan
        tc = np.nan
        if iso3 != config.CHINA and year in china_imports.index:
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
def exposure_weighted_gpr(bilateral: pd.DataFrame, gprc: pd.DataFrame, lag: int = 1
                          ) -> pd.DataFrame:
    """GPRX_it = sum_k s_ik,t-lag * GPRC_kt over partners k != i that have a GPRC series.

    s_ik,t is i's mineral trade (exports + imports) with k in year t over its mineral trade with
    all partners that have a GPRC series in year t+lag (renormalised to sum to one). Returns
    ``iso3, year, gprx, gprx_coverage`` where coverage is the share of i's total mineral trade
    (year t-lag) that is with GPRC partners.
    """
    trade = bilateral.assign(trade=bilateral["export_value"] + bilateral["import_value"],
                             year=bilateral["year"] + lag)
    total = trade.groupby(["iso3", "year"])["trade"].sum().rename("total_trade")
    merged = trade.merge(gprc.rename(columns={"partner_iso3": "partner_iso3"}),
                         on=["partner_iso3", "year"], how="inner")
    merged = merged[merged["partner_iso3"] != merged["iso3"]]
    grouped = merged.groupby(["iso3", "year"])
    covered = grouped["trade"].sum()
    weighted = (merged["trade"] * merged["gprc"]).groupby([merged["iso3"], merged["year"]]).sum()
    out = pd.DataFrame({"gprx": weighted / covered.where(covered > 0),
                        "gprx_coverage": covered / total.reindex(covered.index)})
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


def read_events(path: Path = config.DATA_RAW / "rn_policy_events.csv") -> pd.DataFrame:
    try:
        events = pd.read_csv(path, dtype={"partial": int})
    except (OSError, ValueError) as error:
        raise DataError(path, f"unreadable event file ({error})") from error
    needed = ["event_id", "country", "date", "measure_type", "category", "mineral", "direction",
              "intensity", "partial", "verified", "source"]
    from analysis.parsers import require_columns

    require_columns(events, needed, path)
    if events["source"].isna().any():
        raise DataError(path, "every event needs a source citation", column="source")
    if not events["verified"].isin(["yes", "no"]).all():
        raise DataError(path, "verified must be yes or no", column="verified")
    return events


# --------------------------------------------------------------------------- assembly
def build_indices(panel: pd.DataFrame, chain: pd.DataFrame, bilateral: pd.DataFrame,
                  hs6: pd.DataFrame, gprc: pd.DataFrame, events: pd.DataFrame, spec: dict
                  ) -> tuple[pd.DataFrame, dict]:
    """All indices and their variants by country-year, and a record of the weights."""
    eps, method = spec["epsilon"], spec["main_method"]
    record: dict = {"epsilon": eps, "main_method": method, "composites": {}}
    years = config.YEARS
    out = panel[["iso3", "year"]].copy()

    # SYN ------------------------------------------------------------------
    indicators = subsystem_indicators(chain)
    indicators = indicators[indicators["year"].isin(years)].reset_index(drop=True)
    syn_cfg = spec["synergy"]
    for m in spec["methods"]:
        syn, weights = coupling_synergy(indicators, m, eps, syn_cfg["corrected"], syn_cfg["alpha"])
        suffix = "" if m == method else f"_{m}"
        renamed = syn.rename(columns={"syn": f"syn{suffix}", "u1": f"syn_u1{suffix}",
                                      "u2": f"syn_u2{suffix}"})
        out = out.merge(renamed, on=["iso3", "year"], how="left")
        record["composites"][f"syn_u1{suffix}"] = _weights_record(m, weights["u1"], indicators)
        record["composites"][f"syn_u2{suffix}"] = _weights_record(m, weights["u2"], indicators)
    textbook, _ = coupling_synergy(indicators, method, eps, False, syn_cfg["alpha"])
    out = out.merge(textbook[["iso3", "year", "syn"]].rename(columns={"syn": "syn_textbook"}),
                    on=["iso3", "year"], how="left")
    out = out.merge(indicators, on=["iso3", "year"], how="left")
    out = out.merge(product_level_synergy(hs6), on=["iso3", "year"], how="left")
    out = out.merge(regional_trade_intensity(hs6, chain), on=["iso3", "year"], how="left")

    # GPR ------------------------------------------------------------------
    gpr_cfg = spec["gpr"]
    out = out.merge(exposure_weighted_gpr(bilateral, gprc, gpr_cfg["exposure_lag"]),
                    on=["iso3", "year"], how="left")
    out["gpr"] = out["gprx"]
    out = out.merge(panel[["iso3", "year", "gprc", "wui"]].rename(columns={"gprc": "gpr_own",
                                                                           "wui": "gpr_wui"}),
                    on=["iso3", "year"], how="left")
    gpr_global = panel[["year", "gpr_global", "gpr_threats", "gpr_acts"]].drop_duplicates("year")
    out = out.merge(shift_share_gpr(bilateral, gpr_global, gpr_cfg["shift_share_base_year"],
                                    gpr_cfg["shift_share_partners"]), on=["iso3", "year"],
                    how="left")

    # RN -------------------------------------------------------------------
    rn_cfg = spec["rn"]
    intensity = event_intensity(events, rn_cfg["levels"], rn_cfg["partial_factor"])
    if not np.allclose(intensity.to_numpy(), events["intensity"].to_numpy()):
        raise DataError(config.DATA_RAW / "rn_policy_events.csv",
                        "intensity column disagrees with the scale in specs/indices.yaml",
                        column="intensity")
    stock = event_stock(events, config.COUNTRIES, years, rn_cfg["decay"], verified_only=True)
    stock_all = event_stock(events, config.COUNTRIES, years, rn_cfg["decay"],
                            verified_only=False).rename(
        columns={"rn_event_stock": "rn_event_stock_all"})
    rn_frame = panel[["iso3", "year", "resource_rents_gdp", "ores_metals_export_share"]].merge(
        stock, on=["iso3", "year"]).merge(stock_all, on=["iso3", "year"])
    directions = {k: v["direction"] for k, v in rn_cfg["indicators"].items()}
    rn_frame = _add_composites(rn_frame, "rn", directions, spec, record)
    all_events = rn_frame.drop(columns="rn_event_stock").rename(
        columns={"rn_event_stock_all": "rn_event_stock"})
    scores, weights, n = composite_with_missing(all_events, directions, method, eps,
                                                spec["min_weight_share"])
    rn_frame["rn_all_events"] = scores.to_numpy()
    record["composites"]["rn_all_events"] = {"method": method, "weights": weights.to_dict(),
                                             "complete_rows": n}
    out = out.merge(rn_frame.drop(columns=["resource_rents_gdp", "ores_metals_export_share"]),
                    on=["iso3", "year"], how="left")

    # TI -------------------------------------------------------------------
    ti_cfg = spec["ti"]["indicators"]
    ti_frame = panel[["iso3", "year", *ti_cfg]].copy()
    directions = {k: v["direction"] for k, v in ti_cfg.items()}
    ti_frame = _add_composites(ti_frame, "ti", directions, spec, record)
    for sub in sorted({v["subindex"] for v in ti_cfg.values()}):
        members = {k: v["direction"] for k, v in ti_cfg.items() if v["subindex"] == sub}
        if len(members) == 1:
            column = next(iter(members))
            observed = ti_frame[[column]].dropna()
            ti_frame[f"ti_{sub}"] = minmax_normalise(observed, members, eps)[column].reindex(
                ti_frame.index)
            record["composites"][f"ti_{sub}"] = {"method": "single indicator (min-max)",
                                                 "weights": {column: 1.0}}
        else:
            scores, weights, n = composite_with_missing(ti_frame, members, method, eps,
                                                        spec["min_weight_share"])
            ti_frame[f"ti_{sub}"] = scores
            record["composites"][f"ti_{sub}"] = {"method": method, "weights": weights.to_dict(),
                                                 "complete_rows": n}
    out = out.merge(ti_frame.drop(columns=list(ti_cfg)), on=["iso3", "year"], how="left")
    return out.sort_values(["iso3", "year"]).reset_index(drop=True), record


def _weights_record(method: str, weights: dict, indicators: pd.DataFrame) -> dict:
    return {"method": method, "weights": weights, "complete_rows": len(indicators)}


def _add_composites(frame: pd.DataFrame, name: str, directions: dict[str, int], spec: dict,
                    record: dict) -> pd.DataFrame:
    """Add ``name`` (main method) and ``name_<method>`` for the other methods."""
    for m in spec["methods"]:
        scores, weights, n = composite_with_missing(frame, directions, m, spec["epsilon"],
                                                    spec["min_weight_share"])
        column = name if m == spec["main_method"] else f"{name}_{m}"
        frame[column] = scores.to_numpy()
        record["composites"][column] = {"method": m, "weights": weights.to_dict(),
                                        "complete_rows": n}
    return frame


def dyad_synergy(dyad: pd.DataFrame, method: str, epsilon: float, alpha: float = 0.5
                 ) -> pd.DataFrame:
    """SYN between ASEAN member j (U1) and China (U2), from the bilateral flows by stage.

    u1_s = j's stage-s exports to China / j's world mineral exports, u1_demand = j's imports from
    China / j's world mineral imports; u2_s = China's stage-s imports from j / China's world
    mineral imports, u2_demand = China's exports to j / China's world mineral exports.
    Also the trade intensity index of j's mineral exports to China (syn_tii_dyad).
    """
    out = dyad[["iso3", "year"]].copy()
    ind = pd.DataFrame(index=dyad.index)
    for stage in PRODUCT_STAGES:
        ind[f"u1_{stage}"] = _safe_share(dyad[f"exports_to_china_{stage}"],
                                         dyad["mineral_exports_world"])
        ind[f"u2_{stage}"] = _safe_share(dyad[f"exports_to_china_{stage}"],
                                         dyad["china_mineral_imports_world"])
    ind["u1_demand"] = _safe_share(dyad["imports_from_china"], dyad["mineral_imports_world"])
    ind["u2_demand"] = _safe_share(dyad["imports_from_china"], dyad["china_mineral_exports_world"])
    ind = pd.concat([out, ind], axis=1)
    syn, _ = coupling_synergy(ind, method, epsilon, True, alpha)
    textbook, _ = coupling_synergy(ind, method, epsilon, False, alpha)
    result = dyad.merge(syn, on=["iso3", "year"]).merge(
        textbook[["iso3", "year", "syn"]].rename(columns={"syn": "syn_textbook"}),
        on=["iso3", "year"])
    result["syn_tii"] = trade_intensity(dyad["exports_to_china"].to_numpy(),
                                        dyad["mineral_exports_world"].to_numpy(),
                                        dyad["china_mineral_imports_world"].to_numpy(),
                                        dyad["world_mineral_trade"].to_numpy())
    return result


def chain_synergy(chain: pd.DataFrame, method: str, epsilon: float, alpha: float = 0.5
                  ) -> pd.DataFrame:
    """SYN per mineral chain: the four-flow U1/U2 and coupling coordination, chain by chain.

    Flows a chain never has (for example no recycling code) are dropped from that chain's
    subsystems rather than entering as constant zeros.
    """
    parts = []
    for name, rows in chain.groupby("chain"):
        ind = subsystem_indicators(rows)
        ind = ind[ind["year"].isin(config.YEARS)].reset_index(drop=True)
        syn, _ = coupling_synergy(ind, method, epsilon, True, alpha)
        parts.append(syn.assign(chain=name))
    return pd.concat(parts, ignore_index=True)[["iso3", "chain", "year", "u1", "u2", "syn"]]


# --------------------------------------------------------------------------- outputs
def rank_correlations(indices: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Spearman rank correlation of each index across weighting methods (pairwise complete)."""
    rows = []
    for name in ("syn", "rn", "ti"):
        columns = {m: name if m == spec["main_method"] else f"{name}_{m}" for m in spec["methods"]}
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
              **{k: v["label"] for k, v in spec["ti"]["indicators"].items()}}
    rows = []
    for composite, entry in record["composites"].items():
        for indicator, weight in entry["weights"].items():
            rows.append({"composite": composite, "method": entry["method"],
                         "indicator": indicator, "description": labels.get(indicator, ""),
                         "weight": round(float(weight), 4)})
    return pd.DataFrame(rows)


def plot_index(indices: pd.DataFrame, column: str, title: str, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 4, figsize=(12, 8), sharex=True, sharey=True)
    for ax, iso3 in zip(axes.flat, config.COUNTRIES, strict=False):
        own = indices[indices["iso3"] == iso3]
        ax.plot(own["year"], own[column], color="#1f4e79", lw=1.6)
        ax.set_title(iso3, fontsize=10)
        ax.grid(alpha=0.3)
    axes.flat[-1].axis("off")
    fig.suptitle(title)
    fig.supxlabel("year")
    fig.tight_layout()
    return save_figure(fig, out_dir / f"index_{column}")


def run(processed: Path = config.DATA_PROCESSED, tables: Path = config.TABLES,
        figures: Path = config.FIGURES, spec_path: Path = config.SPECS / "indices.yaml",
        events_path: Path = config.DATA_RAW / "rn_policy_events.csv") -> pd.DataFrame:
    say = lambda message: print(f"[indices] {message}", flush=True)
    spec = load_spec(spec_path)
    panel = read_parquet(processed / "panel_clean.parquet")
    chain = read_parquet(processed / "trade_chain.parquet")
    bilateral = read_parquet(processed / "trade_bilateral.parquet")
    hs6 = read_parquet(processed / "trade_hs6.parquet")
    gprc = read_parquet(processed / "gprc_partners.parquet")
    dyad = read_parquet(processed / "dyad_panel.parquet")
    events = read_events(events_path)
    say("building SYN, GPR, RN and TI with every weighting method")
    indices, record = build_indices(panel, chain, bilateral, hs6, gprc, events, spec)
    validate(indices, INDICES_SCHEMA, processed / "indices.parquet")
    write_parquet(indices, processed / "indices.parquet")
    final = panel.merge(indices, on=["iso3", "year"], how="left", validate="one_to_one")
    write_parquet(final, processed / "panel.parquet")
    say("dyad and chain panels")
    dyad_out = dyad_synergy(dyad, spec["main_method"], spec["epsilon"], spec["synergy"]["alpha"])
    write_parquet(dyad_out, processed / "dyad_indices.parquet")
    chain_syn = chain_synergy(chain, spec["main_method"], spec["epsilon"],
                              spec["synergy"]["alpha"])
    country_vars = indices[["iso3", "year", "gpr", "gpr_own", "gpr_ss", "rn", "ti"]]
    chain_panel = chain_syn.merge(country_vars, on=["iso3", "year"], how="left").merge(
        panel[["iso3", "year", "log_gdppc_ppp", "trade_openness", "fdi_gdp", "urban_share",
               "wgi_ge", "wgi_rq"]], on=["iso3", "year"], how="left")
    write_parquet(chain_panel, processed / "chain_panel.parquet")
    atomic_write_text(processed / "index_weights.json", json.dumps(record, indent=2,
                                                                   sort_keys=True) + "\n")
    say("tables and figures")
    frame_table(weights_table(record, spec), tables / "index_weights",
                "Index weights by composite and method")
    frame_table(rank_correlations(indices, spec), tables / "index_rank_correlations",
                "Spearman rank correlation of each index across weighting methods")
    missing = missing_shares(indices)
    frame_table(missing, tables / "index_missing", "Share of missing country-years per index")
    titles = {"syn": "SYN: coupling coordination with the region (corrected C, entropy)",
              "gpr": "GPR: exposure-weighted geopolitical risk (GPRX)",
              "rn": "RN: resource nationalism composite (entropy)",
              "ti": "TI: technological innovation composite (entropy)"}
    for column, title in titles.items():
        plot_index(indices, column, title, figures)
    say(f"indices {indices.shape}; missing shares: "
        + ", ".join(f"{r.index}={r.share_missing:.0%}" for r in missing.itertuples()))
    return indices


def missing_shares(indices: pd.DataFrame, names: tuple[str, ...] = ("syn", "gpr", "gpr_own",
                                                                    "gpr_ss", "rn", "ti")
                   ) -> pd.DataFrame:
    rows = []
    for name in names:
        observed = indices[name].notna()
        rows.append({"index": name, "share_missing": round(float(1 - observed.mean()), 4),
                     "first_year": int(indices.loc[observed, "year"].min()),
                     "last_year": int(indices.loc[observed, "year"].max())})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.indices",
        description="Build SYN, GPR, RN and TI (and all variants) from data/processed; "
        "choices come from specs/indices.yaml.")
    parser.add_argument("--spec", type=Path, default=config.SPECS / "indices.yaml")
    args = parser.parse_args(argv)
    try:
        started = time.perf_counter()
        run(spec_path=args.spec)
        record_timing("indices", time.perf_counter() - started)
    except DataError as error:
        print(f"[indices] ERROR {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
