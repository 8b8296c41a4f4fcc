"""Six-dimension scorecard of critical-mineral supply chains (METHODS.md section 11): pure maths.

Every function here takes tidy frames and returns tidy frames; the stage
``analysis.stages.scorecard`` reads the files and writes the outputs. Notation, for country c,
mineral r and year t (all trade from CEPII BACI, all production from World Mining Data):

- ``M`` = sum of BACI quantities (tonnes) imported by c in the mineral's HS6 codes (ore and
  processed stages), ``X`` = the same exported; a flow whose quantity BACI does not report is
  left out (it counts 0 t, as in the GeoPolRisk method);
- ``P`` = c's mine production in World Mining Data (tonnes of the table's basis; a country the
  table does not list produced nothing);
- ``V_proc``, ``V_ore`` = c's export values (thousand USD) in the mineral's processed (refined,
  intermediate-chemical) and ore/concentrate codes; ``W_proc`` = world exports of the processed
  codes (every exporter).

Indicators (``INDICATORS``; the direction is the spec's, +1 = a higher value means a less
secure supply chain, -1 = a higher value means a more secure one):

=========================  =========================================================  =====
indicator                  formula                                                    dir.
=========================  =========================================================  =====
net_import_reliance        (M - X) / (P + M - X); 0 for a net exporter (M <= X)       +1
top_supplier_share         max_j M_cj / sum_j M_cj (quantities)                       +1
processed_export_share     V_proc(c) / W_proc                                         -1
processing_ratio           V_proc / (V_proc + V_ore) = R / (1 + R), R = V_proc/V_ore  -1
geopolrisk_import_risk     the GeoPolRisk import risk of the supply-risk stage        +1
chokepoint_share           sum_j M_cj k_cj / sum_j M_cj s_cj over seaborne partners   +1
consumption_growth         (A_t / A_{t-h})^(1/h) - 1, A = P + M - X                   +1
world_trade_growth         (T_t / T_{t-h})^(1/h) - 1, T = world quantity traded       +1
military_relevance         share of the scored defence lists naming the mineral       +1
production_trend           OLS slope of P over t-w+1..t divided by its mean           -1
=========================  =========================================================  =====

(s_cj = 1 if c's imports from j come by sea, k_cj = 1 if that sea route passes a chokepoint.)
Net import reliance follows the US Geological Survey's definition (Mineral Commodity Summaries:
imports minus exports as a share of apparent consumption; a net exporter is reported as "E",
here 0). The processing ratio is reported as R/(1+R), a monotone, bounded transform of the
design's refined-over-ore export ratio R, defined also where ore exports are zero.

A cell the data cannot fill is NaN with a ``reason``; nothing is imputed. Scores
(:func:`normalise`) are min-max normalised over every observed cell of an indicator (countries,
minerals and years of the scored set) with the direction applied, so 1 = the least secure cell.
Dimension and overall scores (:func:`aggregate`) use the project's weighting module
(:mod:`analysis.measures.weighting`): equal weights (main), entropy weights and entropy-TOPSIS (variants);
a composite is missing wherever one of its inputs is (never re-weighted over whichever inputs
happen to be present, METHODS.md section 3). :func:`rank_stability` gives Kendall's tau between
methods; :func:`early_warning` flags cells that entered the top quintile since the year before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.measures import weighting

__all__ = [
    "INDICATORS",
    "KEYS",
    "Indicator",
    "MineralChain",
    "aggregate",
    "chokepoint_share",
    "consumption_growth",
    "coverage_table",
    "defined_indicators",
    "early_warning",
    "geopolrisk_import_risk",
    "in_top_share",
    "military_relevance",
    "net_import_reliance",
    "normalise",
    "processed_export_share",
    "processing_ratio",
    "production_trend",
    "rank_stability",
    "top_supplier_share",
    "trade_basis_ratio",
    "world_trade_growth",
]

KEYS = ["country", "mineral", "year"]
CELL_COLUMNS = [*KEYS, "value", "reason"]


@dataclass(frozen=True)
class Indicator:
    """What an indicator is: its formula and unit, in words, for tables and documentation."""

    name: str
    formula: str
    unit: str


INDICATORS: dict[str, Indicator] = {i.name: i for i in (
    Indicator("net_import_reliance", "(M - X) / (P + M - X), 0 for a net exporter",
              "share of apparent consumption"),
    Indicator("top_supplier_share", "largest single partner's share of imports (tonnes)",
              "share"),
    Indicator("processed_export_share", "country's share of world exports of the processed "
              "codes (value)", "share"),
    Indicator("processing_ratio", "processed exports / (processed + ore exports) (value)",
              "share"),
    Indicator("geopolrisk_import_risk", "GeoPolRisk import risk (supply-risk stage)",
              "0-1"),
    Indicator("chokepoint_share", "share of seaborne imports (tonnes) whose route passes a "
              "chokepoint", "share"),
    Indicator("consumption_growth", "compound annual growth of apparent consumption P + M - X "
              "over h years", "per year"),
    Indicator("world_trade_growth", "compound annual growth of world trade (tonnes) in the "
              "mineral's codes over h years", "per year"),
    Indicator("military_relevance", "share of the scored defence-critical lists naming the "
              "mineral", "share"),
    Indicator("production_trend", "OLS slope of own production over w years / its mean "
              "(proxy for resource sustainability)", "per year"),
)}


@dataclass(frozen=True)
class MineralChain:
    """A mineral's HS6 codes by stage (ore/concentrate and processed/refined)."""

    name: str
    ore: tuple[str, ...] = ()
    processed: tuple[str, ...] = ()

    @property
    def codes(self) -> tuple[str, ...]:
        return (*self.ore, *self.processed)


# =========================================================================== helpers
def _grid(countries: Sequence[str], minerals: Iterable[str], years: Iterable[int]) -> pd.DataFrame:
    index = pd.MultiIndex.from_product([list(countries), list(minerals), list(years)],
                                       names=KEYS)
    return pd.DataFrame(index=index).reset_index()


def _finish(grid: pd.DataFrame, value: pd.Series | np.ndarray, reason: pd.Series | np.ndarray
            ) -> pd.DataFrame:
    out = grid[KEYS].copy()
    out["value"] = np.asarray(value, dtype=float)
    out["reason"] = np.where(np.isnan(out["value"]), np.asarray(reason, dtype=object), "")
    return out[CELL_COLUMNS]


def _tagged_trade(trade: pd.DataFrame, minerals: Mapping[str, MineralChain],
                  stage: str = "all") -> pd.DataFrame:
    """BACI flows of each mineral's codes with a ``mineral`` column (a code may serve several
    minerals). ``stage``: 'all', 'ore' or 'processed'."""
    pairs = [(code, m.name) for m in minerals.values()
             for code in (m.codes if stage == "all" else getattr(m, stage))]
    if not pairs:
        return trade.iloc[0:0].assign(mineral=pd.Series(dtype=object))
    key = pd.DataFrame(pairs, columns=["hs6", "mineral"])
    return trade.merge(key, on="hs6", how="inner")


def _flow_sums(tagged: pd.DataFrame, side: str, column: str) -> pd.Series:
    """Sum of ``column`` by (``side`` country, mineral, year); NaN quantities count 0."""
    return (tagged.groupby([side, "mineral", "year"])[column].sum(min_count=1)
            .fillna(0.0).rename_axis(KEYS))


def _lookup(grid: pd.DataFrame, series: pd.Series, fill: float = 0.0) -> np.ndarray:
    index = pd.MultiIndex.from_frame(grid[KEYS])
    return series.reindex(index).fillna(fill).to_numpy(dtype=float)


def _production_lookup(grid: pd.DataFrame, production: pd.DataFrame) -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """(P, covered): P = the country's production (0 if World Mining Data does not list it);
    covered = the mineral-year is in World Mining Data at all."""
    sums = production.groupby(KEYS)["tonnes"].sum()
    covered_pairs = set(zip(production["mineral"], production["year"], strict=True))
    covered = np.array([(m, y) in covered_pairs for m, y in zip(grid["mineral"], grid["year"],
                                                                strict=True)])
    return _lookup(grid, sums), covered


# =========================================================================== indicators
def trade_basis_ratio(trade: pd.DataFrame, production: pd.DataFrame,
                      minerals: Mapping[str, MineralChain]) -> pd.DataFrame:
    """Whether traded tonnes and produced tonnes are on one basis, mineral by mineral.

    ratio_rt = world exports of the mineral's codes (BACI tonnes) / world production (World
    Mining Data tonnes), and its median over the production years. World exports cannot exceed
    world production by much when both count the same thing (re-exports and stock changes aside):
    a median far above 1 shows that the traded codes are gross weights of ores or intermediate
    compounds while production counts metal or oxide content (nickel ore: about 15). Returns
    ``mineral, ratio_median, years`` (NaN where the mineral has no production or no trade).
    """
    tagged = _tagged_trade(trade, minerals)
    exports = tagged.groupby(["mineral", "year"])["quantity"].sum(min_count=1).fillna(0.0)
    world = production.groupby(["mineral", "year"])["tonnes"].sum()
    rows = []
    for name in minerals:
        years = sorted(production.loc[production["mineral"] == name, "year"].unique())
        ratios = []
        for year in years:
            total = world.get((name, year), 0.0)
            if total > 0:
                ratios.append(exports.get((name, year), 0.0) / total)
        rows.append({"mineral": name, "ratio_median": float(np.median(ratios)) if ratios
                     else float("nan"), "years": len(ratios)})
    return pd.DataFrame(rows, columns=["mineral", "ratio_median", "years"])


def net_import_reliance(trade: pd.DataFrame, production: pd.DataFrame,
                        minerals: Mapping[str, MineralChain], countries: Sequence[str],
                        years: Iterable[int], comparable: Mapping[str, bool] | None = None
                        ) -> pd.DataFrame:
    """NIR = (M - X) / (P + M - X) in tonnes; 0 for a net exporter (M <= X).

    USGS Mineral Commodity Summaries define net import reliance as imports minus exports
    (adjusted for stock changes, which BACI does not have) as a percentage of apparent
    consumption P + M - X, and report net exporters as "E"; here they are 0. Missing: the year
    is not in World Mining Data; the country neither trades nor produces the mineral; or
    ``comparable[mineral]`` is False (traded and produced tonnes on different bases, see
    :func:`trade_basis_ratio`).
    """
    grid = _grid(countries, minerals, years)
    tagged = _tagged_trade(trade, minerals)
    imports = _lookup(grid, _flow_sums(tagged, "importer", "quantity"))
    exports = _lookup(grid, _flow_sums(tagged, "exporter", "quantity"))
    produced, covered = _production_lookup(grid, production)
    net = imports - exports
    consumption = produced + net
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(net <= 0, 0.0, net / np.where(consumption > 0, consumption, np.nan))
    none = (imports == 0) & (exports == 0) & (produced == 0)
    ok = np.array([True if comparable is None else bool(comparable.get(m, False))
                   for m in grid["mineral"]])
    value = np.where(covered & ~none & ok, value, np.nan)
    reason = np.select([~covered, ~ok, none],
                       ["no World Mining Data production for the year",
                        ("traded tonnes are not on the production basis (gross ore or "
                         "compound weight against metal content)"),
                        "neither trades nor produces the mineral"], "")
    return _finish(grid, value, reason)


def top_supplier_share(trade: pd.DataFrame, minerals: Mapping[str, MineralChain],
                       countries: Sequence[str], years: Iterable[int]) -> pd.DataFrame:
    """max_j M_cj / sum_j M_cj: the largest single partner's share of c's imports (tonnes),
    over the flows with a reported quantity. Missing where c imports none."""
    grid = _grid(countries, minerals, years)
    tagged = _tagged_trade(trade, minerals)
    tagged = tagged[tagged["quantity"].notna() & tagged["importer"].isin(countries)]
    by_partner = tagged.groupby(["importer", "mineral", "year", "exporter"])["quantity"].sum()
    top = by_partner.groupby(level=[0, 1, 2]).max().rename_axis(KEYS)
    total = by_partner.groupby(level=[0, 1, 2]).sum().rename_axis(KEYS)
    largest, imports = _lookup(grid, top), _lookup(grid, total)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(imports > 0, largest / np.where(imports > 0, imports, 1.0), np.nan)
    return _finish(grid, value, "no imports with a reported quantity")


def processed_export_share(trade: pd.DataFrame, minerals: Mapping[str, MineralChain],
                           countries: Sequence[str], years: Iterable[int]) -> pd.DataFrame:
    """V_proc(c) / W_proc: c's share of world exports (value) of the mineral's processed codes.

    Missing where the mineral has no processed-stage code in the data or nobody exported them."""
    grid = _grid(countries, minerals, years)
    tagged = _tagged_trade(trade, minerals, "processed")
    own = _lookup(grid, _flow_sums(tagged, "exporter", "value"))
    world = tagged.groupby(["mineral", "year"])["value"].sum()
    total = np.array([world.get((m, y), 0.0) for m, y in zip(grid["mineral"], grid["year"],
                                                             strict=True)])
    has_codes = grid["mineral"].map(lambda m: bool(minerals[m].processed)).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(has_codes & (total > 0), own / np.where(total > 0, total, 1.0), np.nan)
    reason = np.where(~has_codes, "no processed-stage HS code for the mineral in the data",
                      "no world trade in the processed codes")
    return _finish(grid, value, reason)


def processing_ratio(trade: pd.DataFrame, minerals: Mapping[str, MineralChain],
                     countries: Sequence[str], years: Iterable[int]) -> pd.DataFrame:
    """V_proc / (V_proc + V_ore): the processed share of c's exports of the chain (value).

    Equal to R / (1 + R) with R = V_proc / V_ore, the design's processing ratio, so it ranks
    cells as R does and stays defined where c exports no ore. Missing where the mineral lacks
    an ore or a processed code, or c exports neither stage."""
    grid = _grid(countries, minerals, years)
    processed = _lookup(grid, _flow_sums(_tagged_trade(trade, minerals, "processed"),
                                         "exporter", "value"))
    ore = _lookup(grid, _flow_sums(_tagged_trade(trade, minerals, "ore"), "exporter", "value"))
    both = grid["mineral"].map(lambda m: bool(minerals[m].processed and minerals[m].ore)
                               ).to_numpy()
    total = processed + ore
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(both & (total > 0), processed / np.where(total > 0, total, 1.0),
                         np.nan)
    reason = np.where(~both, "the mineral lacks an ore or a processed code in the data",
                      "exports neither stage")
    return _finish(grid, value, reason)


def geopolrisk_import_risk(supply_risk: pd.DataFrame, countries: Sequence[str],
                           minerals: Iterable[str], years: Iterable[int]) -> pd.DataFrame:
    """The GeoPolRisk import risk IR = sum_j g_j m_j / (sum_j m_j + P) of the supply-risk stage
    (``country, mineral, year, import_risk``), unchanged. Missing where the stage has no score."""
    grid = _grid(countries, minerals, years)
    series = supply_risk.set_index(KEYS)["import_risk"]
    value = _lookup(grid, series, fill=np.nan)
    return _finish(grid, value, "not scored by the supply-risk stage")


def chokepoint_share(trade: pd.DataFrame, routes: pd.DataFrame,
                     minerals: Mapping[str, MineralChain], countries: Sequence[str],
                     years: Iterable[int]) -> pd.DataFrame:
    """Share of c's seaborne imports (tonnes) whose route passes at least one chokepoint.

    sum_j M_cj s_cj k_cj / sum_j M_cj s_cj, with ``routes`` giving for every (importer,
    partner) ``seaborne`` (s) and ``chokepoint`` (k) as booleans. Missing where c has no
    seaborne imports with a reported quantity. A partner without a route is an error.
    """
    grid = _grid(countries, minerals, years)
    tagged = _tagged_trade(trade, minerals)
    tagged = tagged[tagged["quantity"].notna() & tagged["importer"].isin(countries)]
    flows = tagged.merge(routes[["importer", "partner", "seaborne", "chokepoint"]],
                         left_on=["importer", "exporter"], right_on=["importer", "partner"],
                         how="left")
    if flows["seaborne"].isna().any():
        bad = flows.loc[flows["seaborne"].isna(), ["importer", "exporter"]].iloc[0]
        raise ValueError(f"no route for imports of {bad['importer']} from {bad['exporter']}")
    sea = flows[flows["seaborne"].astype(bool)]
    sea = sea.assign(exposed=sea["quantity"] * sea["chokepoint"].astype(bool))
    sums = sea.groupby(["importer", "mineral", "year"])[["quantity", "exposed"]].sum()
    sums = sums.rename_axis(KEYS)
    seaborne, exposed = _lookup(grid, sums["quantity"]), _lookup(grid, sums["exposed"])
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(seaborne > 0, exposed / np.where(seaborne > 0, seaborne, 1.0), np.nan)
    return _finish(grid, value, "no seaborne imports with a reported quantity")


def _compound_growth(now: np.ndarray, before: np.ndarray, horizon: int) -> np.ndarray:
    """(now / before)^(1/h) - 1 where both are > 0, else NaN."""
    ok = (now > 0) & (before > 0)
    ratio = np.where(ok, now, 1.0) / np.where(ok, before, 1.0)
    return np.where(ok, ratio ** (1.0 / horizon) - 1.0, np.nan)


def consumption_growth(trade: pd.DataFrame, production: pd.DataFrame,
                       minerals: Mapping[str, MineralChain], countries: Sequence[str],
                       years: Iterable[int], horizon: int = 5,
                       comparable: Mapping[str, bool] | None = None) -> pd.DataFrame:
    """(A_t / A_{t-h})^(1/h) - 1 with apparent consumption A = P + M - X (tonnes).

    Missing where year t or t-h is not in World Mining Data, A <= 0 in either year, or the
    traded and produced tonnes are on different bases (``comparable``)."""
    years = list(years)
    grid = _grid(countries, minerals, years)
    back = grid.assign(year=grid["year"] - horizon)
    tagged = _tagged_trade(trade, minerals)
    imports, exports = (_flow_sums(tagged, "importer", "quantity"),
                        _flow_sums(tagged, "exporter", "quantity"))

    def apparent(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        produced, covered = _production_lookup(frame, production)
        return produced + _lookup(frame, imports) - _lookup(frame, exports), covered

    now, covered_now = apparent(grid)
    before, covered_before = apparent(back)
    ok = np.array([True if comparable is None else bool(comparable.get(m, False))
                   for m in grid["mineral"]])
    covered = covered_now & covered_before
    value = np.where(covered & ok, _compound_growth(now, before, horizon), np.nan)
    reason = np.select([~covered, ~ok],
                       [f"year t or t-{horizon} outside World Mining Data",
                        "traded tonnes are not on the production basis"],
                       "apparent consumption <= 0 in year t or t-h")
    return _finish(grid, value, reason)


def world_trade_growth(trade: pd.DataFrame, minerals: Mapping[str, MineralChain],
                       countries: Sequence[str], years: Iterable[int], horizon: int = 5
                       ) -> pd.DataFrame:
    """(T_t / T_{t-h})^(1/h) - 1, T = world trade (BACI tonnes, all pairs) in the mineral's
    codes; the same for every country. Missing where T <= 0 in either year or t-h precedes the
    data."""
    grid = _grid(countries, minerals, years)
    tagged = _tagged_trade(trade, minerals)
    world = tagged.groupby(["mineral", "year"])["quantity"].sum(min_count=1).fillna(0.0)
    first = int(trade["year"].min()) if len(trade) else 0
    now = np.array([world.get((m, y), 0.0) for m, y in zip(grid["mineral"], grid["year"],
                                                           strict=True)])
    before = np.array([world.get((m, y - horizon), 0.0)
                       for m, y in zip(grid["mineral"], grid["year"], strict=True)])
    inside = (grid["year"] - horizon >= first).to_numpy()
    value = np.where(inside, _compound_growth(now, before, horizon), np.nan)
    reason = np.where(~inside, f"year t-{horizon} precedes the trade data",
                      "no world trade in year t or t-h")
    return _finish(grid, value, reason)


def military_relevance(listed: pd.DataFrame, lists: Sequence[str], countries: Sequence[str],
                       minerals: Iterable[str], years: Iterable[int]) -> pd.DataFrame:
    """Share of the scored defence-critical lists that name the mineral (the same for every
    country and year). ``listed``: ``mineral, list, listed`` with listed in {0, 1} or NaN (not
    verified). Missing where one of ``lists`` has no verified entry for the mineral."""
    grid = _grid(countries, minerals, years)
    table = listed[listed["list"].isin(lists)].pivot(index="mineral", columns="list",
                                                     values="listed")
    table = table.reindex(columns=list(lists))
    share = table.mean(axis=1, skipna=False)
    value = grid["mineral"].map(share).to_numpy(dtype=float)
    return _finish(grid, value, "a scored list has no verified entry for the mineral")


def production_trend(production: pd.DataFrame, countries: Sequence[str],
                     minerals: Iterable[str], years: Iterable[int], window: int = 5
                     ) -> pd.DataFrame:
    """Relative linear trend of own production: b / mean(P) over the ``window`` years ending t.

    b = OLS slope of P_s on s, s = t-w+1..t (np.polyfit, degree 1). A proxy for domestic
    resource sustainability: reserves are not in the data, so a falling output (negative
    trend) stands in for a depleting resource base. Missing where the window leaves World
    Mining Data or the country produced nothing in it."""
    minerals = list(minerals)
    grid = _grid(countries, minerals, years)
    sums = production.groupby(KEYS)["tonnes"].sum()
    covered = {(m, y) for m, y in zip(production["mineral"], production["year"], strict=True)}
    steps = np.arange(window, dtype=float)
    values, reasons = [], []
    for country, mineral, year in zip(grid["country"], grid["mineral"], grid["year"],
                                      strict=True):
        span = range(year - window + 1, year + 1)
        if not all((mineral, s) in covered for s in span):
            values.append(np.nan)
            reasons.append(f"the {window} years to t are not all in World Mining Data")
            continue
        p = np.array([sums.get((country, mineral, s), 0.0) for s in span], dtype=float)
        if p.mean() <= 0:
            values.append(np.nan)
            reasons.append("no domestic production in the window")
            continue
        slope = np.polyfit(steps, p, 1)[0]
        values.append(slope / p.mean())
        reasons.append("")
    return _finish(grid, np.array(values, dtype=float), np.array(reasons, dtype=object))


# =========================================================================== scores
def normalise(cells: pd.DataFrame, directions: Mapping[str, int]) -> pd.DataFrame:
    """Min-max score of each indicator over its observed cells, with its direction.

    score = (value - min) / (max - min) for direction +1 and (max - value) / (max - min) for
    -1, min and max over every observed cell of the indicator (all countries, minerals and
    years passed in), via :func:`analysis.measures.weighting.minmax_normalise` with epsilon 0. So 1 is
    the least secure cell whatever the indicator. ``cells``: ``country, mineral, year,
    indicator, value``; returns it with ``score`` (NaN where value is NaN). An indicator
    without a direction, or constant over its cells, is an error naming it.
    """
    parts = []
    for indicator, rows in cells.groupby("indicator", sort=False):
        if indicator not in directions:
            raise ValueError(f"indicator {indicator!r} has no direction")
        observed = rows[rows["value"].notna()]
        score = pd.Series(np.nan, index=rows.index)
        if len(observed):
            normalised = weighting.minmax_normalise(observed[["value"]], {"value":
                                                    directions[indicator]}, epsilon=0.0)
            score.loc[observed.index] = normalised["value"]
        parts.append(rows.assign(score=score))
    return pd.concat(parts).loc[cells.index]


def _wide(cells: pd.DataFrame, column: str, order: Sequence[str]) -> pd.DataFrame:
    table = cells.pivot_table(index=KEYS, columns="indicator", values=column, dropna=False,
                              aggfunc="first")
    return table.reindex(columns=list(order))


def defined_indicators(minerals: Mapping[str, MineralChain], comparable: Mapping[str, bool],
                       indicators: Iterable[str]) -> dict[tuple[str, str], bool]:
    """Which indicators the data can define for each mineral at all (structurally).

    processed_export_share needs a processed code; processing_ratio an ore and a processed
    code; net_import_reliance and consumption_growth traded tonnes on the production basis
    (``comparable``). Every other indicator is defined for every mineral. A structurally
    undefined indicator is left out of its dimension for that mineral in every country and year
    (a fixed set per mineral, so no series changes definition); a merely missing cell is not
    left out: it makes the dimension missing."""
    rules = {
        "processed_export_share": lambda m: bool(m.processed),
        "processing_ratio": lambda m: bool(m.processed and m.ore),
        "net_import_reliance": lambda m: bool(comparable.get(m.name, False)),
        "consumption_growth": lambda m: bool(comparable.get(m.name, False)),
    }
    return {(name, j): rules.get(j, lambda _: True)(chain)
            for name, chain in minerals.items() for j in indicators}


def _composite(frame: pd.DataFrame, directions: Mapping[str, int], method: str,
               epsilon: float) -> tuple[pd.Series, pd.Series]:
    """Score complete rows of ``frame`` with one weighting method; other rows NaN."""
    complete = frame.dropna()
    scores = pd.Series(np.nan, index=frame.index)
    if method == "equal":
        # equal weights on the already-normalised scores: the mean of the row
        scores.loc[complete.index] = complete.mean(axis=1)
        weights = pd.Series(1.0 / frame.shape[1], index=frame.columns)
        return scores, weights
    if len(complete) < 2 or (complete.nunique() < 2).any():
        return scores, pd.Series(np.nan, index=frame.columns)
    result = weighting.composite_index(complete, directions, method, epsilon)
    scores.loc[complete.index] = result.scores
    return scores, result.weights


def aggregate(cells: pd.DataFrame, dimensions: Mapping[str, Sequence[str]],
              directions: Mapping[str, int], method: str = "equal", epsilon: float = 1e-4,
              defined: Mapping[tuple[str, str], bool] | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dimension and overall scores of every cell with one method.

    ``cells``: the output of :func:`normalise`. For mineral r, the dimension d uses the
    indicators J_dr of d that are ``defined`` for r (all of them by default; see
    :func:`defined_indicators`); a mineral with none has no score on d. Within d:

    - ``equal`` (main): S_d = (1/|J_dr|) sum_j score_j (the normalised scores);
    - ``entropy`` / ``entropy_topsis``: :func:`analysis.measures.weighting.composite_index` on the raw
      values of J_dr with their directions (its min-max normalisation, epsilon shift, entropy
      weights, and TOPSIS closeness for the latter), over the cells of the minerals sharing
      that indicator set where every indicator of the set is observed.

    Across dimensions the same method combines the six S_d (direction +1): the mean for equal,
    entropy weights or entropy-TOPSIS over the cells with every dimension. A cell missing an
    input of a composite has no composite (nothing is re-weighted over whichever inputs happen
    to be present). Returns (scores, weights): scores ``country, mineral, year, dimension,
    score`` with dimension 'overall' for the total; weights ``method, level, dimension,
    indicator, minerals, weight``.
    """
    raw = _wide(cells, "value", [j for js in dimensions.values() for j in js])
    normalised = _wide(cells, "score", list(raw.columns))
    source = normalised if method == "equal" else raw
    mineral_of_row = raw.index.get_level_values("mineral")
    dimension_scores, weight_rows = {}, []
    for dimension, members in dimensions.items():
        scores = pd.Series(np.nan, index=raw.index)
        groups: dict[tuple[str, ...], list[str]] = {}
        for mineral in sorted(set(mineral_of_row)):
            used = tuple(j for j in members
                         if defined is None or defined.get((mineral, j), True))
            if used:
                groups.setdefault(used, []).append(mineral)
        for used, minerals_in_group in groups.items():
            rows = source[mineral_of_row.isin(minerals_in_group)]
            group_scores, weights = _composite(rows[list(used)], directions, method, epsilon)
            scores.loc[group_scores.index] = group_scores
            weight_rows += [{"method": method, "level": "within", "dimension": dimension,
                             "indicator": j, "minerals": ", ".join(minerals_in_group),
                             "weight": float(w)} for j, w in weights.items()]
        dimension_scores[dimension] = scores
    dims = pd.DataFrame(dimension_scores)
    total, weights = _composite(dims, dict.fromkeys(dims.columns, 1), method, epsilon)
    weight_rows += [{"method": method, "level": "across", "dimension": d, "indicator": "",
                     "minerals": "all", "weight": float(w)} for d, w in weights.items()]
    dims["overall"] = total
    long = dims.rename_axis(columns="dimension").stack(future_stack=True).rename("score")
    return long.reset_index(), pd.DataFrame(weight_rows)


def rank_stability(scores: pd.DataFrame, methods: Sequence[str],
                   by: Sequence[str] = ("year", "dimension")) -> pd.DataFrame:
    """Kendall's tau-b between the scores of every pair of methods, within each group.

    ``scores``: ``country, mineral, year, dimension, method, score``. Within each group of
    ``by`` (by default one year and one dimension, 'overall' included) the cells scored by both
    methods are ranked and compared with :func:`scipy.stats.kendalltau` (tau-b, which corrects
    for ties: tau = (C - D) / sqrt((n0 - n1)(n0 - n2)), C concordant and D discordant pairs).
    Returns ``*by, method_a, method_b, n, tau`` (tau NaN below 3 common cells).
    """
    from scipy.stats import kendalltau

    wide = scores.pivot_table(index=[*KEYS, "dimension"], columns="method", values="score",
                              aggfunc="first")
    rows = []
    for key, group in wide.groupby(level=list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        for i, a in enumerate(methods):
            for b in methods[i + 1:]:
                if a not in group or b not in group:
                    continue
                both = group[[a, b]].dropna()
                tau = float(kendalltau(both[a], both[b]).statistic) if len(both) >= 3 \
                    else float("nan")
                rows.append({**dict(zip(by, key, strict=True)), "method_a": a, "method_b": b,
                             "n": len(both), "tau": tau})
    return pd.DataFrame(rows, columns=[*by, "method_a", "method_b", "n", "tau"])


def in_top_share(values: np.ndarray | pd.Series, reference: np.ndarray | pd.Series,
                 share: float = 0.2) -> np.ndarray:
    """Whether each value lies in the top ``share`` of ``reference``.

    v is in the top quintile (share 0.2) when fewer than share x n of the n reference scores
    are strictly higher than v: ties at the boundary are all in, and a value at the maximum
    always is. NaN values are never in; NaN reference scores are ignored."""
    ref = np.asarray(reference, dtype=float)
    ref = np.sort(ref[~np.isnan(ref)])
    v = np.asarray(values, dtype=float)
    higher = len(ref) - np.searchsorted(ref, v, side="right")
    return (~np.isnan(v)) & (higher < share * len(ref))


def early_warning(scores: pd.DataFrame, share: float = 0.2, reference: str = "pooled",
                  min_rise: float = 0.0) -> pd.DataFrame:
    """Flag every cell whose score entered the top quintile since the previous year.

    ``scores``: ``country, mineral, year, dimension, score`` (one method). For each dimension
    the reference distribution is every score of that dimension in the window (``pooled``, a
    fixed threshold, so a flag means the score itself rose past it) or the scores of the same
    year (``year``, a relative position). flag = in_top(t) and score(t-1) exists and not
    in_top(t-1). Where more than ``share`` of the scores tie at the maximum (a dimension on
    which many cells score 1), the top quintile is that tied block, and reaching it from just
    below is a flag: ``rise`` = score(t) - score(t-1) and ``material`` = flag and rise >=
    ``min_rise`` separate such moves from material ones. Returns the input with ``previous``,
    ``in_top``, ``in_top_previous``, ``flag``, ``rise`` and ``material``.
    """
    if reference not in ("pooled", "year"):
        raise ValueError(f"reference must be 'pooled' or 'year', not {reference!r}")
    out = scores.sort_values([*KEYS, "dimension"]).reset_index(drop=True)
    out["in_top"] = False
    for dimension, rows in out.groupby("dimension"):
        if reference == "pooled":
            out.loc[rows.index, "in_top"] = in_top_share(rows["score"], rows["score"], share)
        else:
            for _, year_rows in rows.groupby("year"):
                out.loc[year_rows.index, "in_top"] = in_top_share(
                    year_rows["score"], year_rows["score"], share)
    before = out[[*KEYS, "dimension", "score", "in_top"]].assign(year=out["year"] + 1)
    before = before.rename(columns={"score": "previous", "in_top": "in_top_previous"})
    out = out.merge(before, on=[*KEYS, "dimension"], how="left")
    out["in_top_previous"] = out["in_top_previous"].astype("boolean").fillna(False).astype(bool)
    out["flag"] = out["in_top"] & out["previous"].notna() & ~out["in_top_previous"]
    out["rise"] = out["score"] - out["previous"]
    out["material"] = out["flag"] & (out["rise"] >= min_rise)
    return out


def coverage_table(cells: pd.DataFrame, by: Sequence[str] = ("dimension", "indicator")
                   ) -> pd.DataFrame:
    """Filled and missing cells per group, with the reasons for the missing ones.

    ``cells``: ``dimension, indicator, value, reason`` (+ keys). Returns ``*by, cells, filled,
    missing, share_filled, reasons`` (reasons: 'reason: count' joined by '; ', most frequent
    first)."""
    rows = []
    for key, group in cells.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        missing = group[group["value"].isna()]
        counts = missing["reason"].value_counts()
        rows.append({**dict(zip(by, key, strict=True)), "cells": len(group),
                     "filled": int(group["value"].notna().sum()), "missing": len(missing),
                     "share_filled": float(group["value"].notna().mean()),
                     "reasons": "; ".join(f"{r}: {n}" for r, n in counts.items())})
    return pd.DataFrame(rows, columns=[*by, "cells", "filled", "missing", "share_filled",
                                       "reasons"])
