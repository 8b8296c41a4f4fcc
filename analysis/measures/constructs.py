"""The revised constructs of METHODS.md section 3 (Revisions 2 and 3), as pure functions.

Nothing here reads or writes files: :mod:`analysis.stages.indices` calls these functions with the
processed tables and the choices of ``specs/indices.yaml``, and the tests call them on small
hand-made examples. Trade values are in thousand USD, as BACI reports them.

SYN, chain synergy of country i with the rest of the region (China + ASEAN excluding i):
    U_out = X_iR / X_iW  (regional share of i's chain exports),
    U_in  = M_iR / M_iW  (regional share of i's chain imports),
    D = sqrt(C T), C = 2 sqrt(U_out U_in) / (U_out + U_in), T = (U_out + U_in) / 2,
      = (U_out U_in)^(1/4)  (textbook coupling coordination, alpha = 1/2, on raw shares).
    A share exists only where its world flow is at least USD 1 m (materiality); zero
    denominators give missing. Gold bullion (HS 7108.12) is excluded.

GPR, exposure to partners' geopolitical risk with weights fixed before the sample:
    w_ik = V_ik / sum_k V_ik, V_ik = i's pooled 1995-1997 chain trade (exports + imports, gold
    excluded) with partner k, over the partners with a GPRC series; thin bases (V_i < USD 10 m)
    shrunk: w = (V_i w_raw + k w_bar) / (V_i + k), w_bar the pooled ASEAN base composition,
    k = USD 10 m; g_kt = GPRC_kt / mean(GPRC_k, 1985-1995);
    GPRX_it = sum_k w_ik g_kt = GPRX_ext (k outside China + ASEAN) + GPRX_reg (k inside).

RN events, trade-weighted coverage of i's chain exports by restrictions in force (Revision 3):
    RN_events_it = sum_g w_ig s_igt, w_ig = mineral group g's share of i's chain exports pooled
    over the weight window (gold excluded; the groups are the chains of the HS6 map), and
    s_igt = (1 / days in t) * sum over the days d of t of max_{m covers g} intensity_m(d) / 4:
    the year-average of the strongest restriction in force on g, so that no restriction counts
    twice. When one measure sets the maximum all year this is intensity_m / 4 x the share of year
    t in force (METHODS.md section 3). It lies in [0, 1]. The second build's state, the sum over
    measures of intensity_m(t) x share of year t in force, is kept for its variant.

Composites with a fixed indicator set: min-max normalisation and weights from the reference
rows (the estimation window), a row is scored only where every indicator is observed (METHODS.md
section 3: "a composite never changes definition inside a series").
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.measures.synergy import coupling_coordination
from analysis.measures.weighting import METHODS, topsis_closeness

__all__ = [
    "base_exposure_weights",
    "coverage_by_group",
    "coverage_state",
    "d_falls_when_a_share_rises",
    "export_group_weights",
    "exposure_index",
    "fixed_set_composite",
    "group_count_state",
    "in_force_state",
    "materiality_share",
    "measure_segments",
    "parse_changes",
    "parse_groups",
    "regional_flow_totals",
    "smoothed_share",
    "standardise_gprc",
    "synergy_from_totals",
    "top_code_shares",
    "year_share_in_force",
]

FLOW_KEYS = ["iso3", "partner_iso3", "year", "hs6", "export_value", "import_value"]


# ----------------------------------------------------------------------------------------- SYN
def regional_flow_totals(flows: pd.DataFrame, region_of: Mapping[str, set[str]],
                         exclude_hs6: Sequence[str] = (), by: Sequence[str] = ()
                         ) -> pd.DataFrame:
    """World and regional chain exports and imports of each country-year (thousand USD).

    ``flows`` has one row per (iso3, partner_iso3, year, hs6) with ``export_value`` (i to the
    partner) and ``import_value`` (partner to i). ``region_of[i]`` is i's set of regional
    partners (China + ASEAN without i). Codes in ``exclude_hs6`` are dropped first. ``by`` adds
    grouping columns (e.g. ``chain``). Returns ``iso3, year, *by, exports_world,
    exports_region, imports_world, imports_region``.
    """
    data = flows[~flows["hs6"].isin(list(exclude_hs6))]
    pairs = [(iso3, partner) for iso3, partners in region_of.items() for partner in partners]
    regional = (pd.MultiIndex.from_frame(data[["iso3", "partner_iso3"]]).isin(pairs) if pairs
                else np.zeros(len(data), dtype=bool))
    keys = ["iso3", "year", *by]
    world = data.groupby(keys)[["export_value", "import_value"]].sum()
    region = data[regional].groupby(keys)[["export_value", "import_value"]].sum()
    region = region.reindex(world.index, fill_value=0.0)
    out = pd.DataFrame({"exports_world": world["export_value"],
                        "exports_region": region["export_value"],
                        "imports_world": world["import_value"],
                        "imports_region": region["import_value"]}, index=world.index)
    return out.reset_index()


def materiality_share(region: pd.Series | np.ndarray, world: pd.Series | np.ndarray,
                      min_flow: float) -> np.ndarray:
    """region / world where world >= ``min_flow`` (and > 0); NaN otherwise.

    A share computed from a flow under the materiality threshold is noise (a USD 10 m ore
    export gave Thailand a supply share of 0.63 in the first build), so it is missing, never 0.
    """
    region = np.asarray(region, dtype=float)
    world = np.asarray(world, dtype=float)
    ok = (world >= min_flow) & (world > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, region / np.where(ok, world, 1.0), np.nan)


def smoothed_share(region: pd.Series | np.ndarray, world: pd.Series | np.ndarray,
                   long_run: pd.Series | np.ndarray, pseudo_count: float) -> np.ndarray:
    """Pseudo-count shrinkage U = (R + k U_bar) / (F + k) towards the long-run share U_bar.

    With k = USD 5 m a thin year's share is pulled towards the country's long-run share; a thick
    year's is almost unchanged. NaN where U_bar is NaN.
    """
    region = np.asarray(region, dtype=float)
    world = np.asarray(world, dtype=float)
    long_run = np.asarray(long_run, dtype=float)
    return (region + pseudo_count * long_run) / (world + pseudo_count)


def synergy_from_totals(totals: pd.DataFrame, min_flow: float, corrected: bool = False,
                        shares: tuple[str, str] | None = None) -> pd.DataFrame:
    """U_out, U_in, D and a reason flag from :func:`regional_flow_totals` output.

    D is the textbook coupling coordination (alpha = 1/2) of the raw shares, (U_out U_in)^(1/4),
    or with ``corrected=True`` the corrected coupling degree of Wang et al. (2021) on the same
    shares (a labelled variant). If ``shares`` names two existing columns they are used as
    (U_out, U_in) instead (e.g. smoothed shares). ``syn_flag`` says why D is missing:
    ``exports_below_min``, ``imports_below_min`` or ``both_below_min``; "" where D exists.
    """
    out = totals.copy()
    if shares is None:
        out["u_out"] = materiality_share(out["exports_region"], out["exports_world"], min_flow)
        out["u_in"] = materiality_share(out["imports_region"], out["imports_world"], min_flow)
        u_out, u_in = out["u_out"], out["u_in"]
    else:
        u_out, u_in = out[shares[0]], out[shares[1]]
    present = u_out.notna() & u_in.notna()
    d = np.full(len(out), np.nan)
    d[present.to_numpy()] = coupling_coordination(u_out[present].to_numpy(),
                                                  u_in[present].to_numpy(),
                                                  corrected=corrected, alpha=0.5)
    out["syn"] = d
    low_x = out["exports_world"] < min_flow
    low_m = out["imports_world"] < min_flow
    out["syn_flag"] = np.select([low_x & low_m, low_x, low_m],
                                ["both_below_min", "exports_below_min", "imports_below_min"], "")
    return out


def d_falls_when_a_share_rises(u_out: np.ndarray, u_in: np.ndarray,
                               aggregator: Callable[[np.ndarray, np.ndarray], np.ndarray],
                               step: float = 1e-3) -> float:
    """Share of rows in which D falls when one subsystem share rises by ``step`` (capped at 1).

    A coordination measure that falls when a share rises ranks countries against the concept;
    the textbook D = (U_out U_in)^(1/4) never does (0 by construction), the corrected coupling
    on raw shares does in most rows. Rows with a missing share are ignored.
    """
    u_out = np.asarray(u_out, dtype=float)
    u_in = np.asarray(u_in, dtype=float)
    ok = ~(np.isnan(u_out) | np.isnan(u_in))
    if not ok.any():
        return float("nan")
    a, b = u_out[ok], u_in[ok]
    base = aggregator(a, b)
    up_out = aggregator(np.minimum(a + step, 1.0), b)
    up_in = aggregator(a, np.minimum(b + step, 1.0))
    falls = (up_out < base - 1e-12) | (up_in < base - 1e-12)
    return float(falls.mean())


def top_code_shares(flows: pd.DataFrame, exclude_hs6: Sequence[str] = (),
                    years: Sequence[int] | None = None) -> pd.DataFrame:
    """Each country's top HS6 code in its chain exports and imports, pooled over ``years``.

    Returns ``iso3, top_export_hs6, top_export_share, top_import_hs6, top_import_share`` where a
    share is the code's value over the country's total chain exports (imports) to the world.
    """
    data = flows[~flows["hs6"].isin(list(exclude_hs6))]
    if years is not None:
        data = data[data["year"].isin(list(years))]
    by_code = data.groupby(["iso3", "hs6"])[["export_value", "import_value"]].sum()
    rows = []
    for iso3, own in by_code.groupby(level="iso3"):
        own = own.droplevel("iso3")
        row = {"iso3": iso3}
        for flow, column in (("export", "export_value"), ("import", "import_value")):
            total = own[column].sum()
            top = own[column].idxmax() if total > 0 else ""
            row[f"top_{flow}_hs6"] = top
            row[f"top_{flow}_share"] = float(own[column].max() / total) if total > 0 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- GPR
def standardise_gprc(gprc: pd.DataFrame, base_years: tuple[int, int] = (1985, 1995),
                     method: str = "ratio") -> pd.DataFrame:
    """Each partner's GPRC relative to its own pre-sample baseline.

    ``ratio``: g_kt = GPRC_kt / mean(GPRC_k over base_years); ``log_ratio``: log of that ratio.
    GPRC levels are not comparable across countries (USA 1-4, ASEAN partners 0.02-0.05), so the
    exposure index uses each partner's risk relative to its baseline. A partner without a
    positive baseline mean is dropped. Returns ``partner_iso3, year, g``.
    """
    lo, hi = base_years
    base = gprc[(gprc["year"] >= lo) & (gprc["year"] <= hi)].groupby("partner_iso3")["gprc"]
    complete = base.count() == hi - lo + 1
    mean = base.mean()[complete]
    mean = mean[mean > 0]
    out = gprc[gprc["partner_iso3"].isin(mean.index)].copy()
    ratio = out["gprc"].to_numpy() / out["partner_iso3"].map(mean).to_numpy()
    if method == "ratio":
        out["g"] = ratio
    elif method == "log_ratio":
        with np.errstate(divide="ignore"):
            out["g"] = np.log(ratio)
    else:
        raise ValueError(f"unknown standardisation {method!r}: use ratio or log_ratio")
    return out[["partner_iso3", "year", "g"]].reset_index(drop=True)


def base_exposure_weights(flows: pd.DataFrame, partners: Sequence[str],
                          base_years: tuple[int, int], countries: Sequence[str],
                          pool: Sequence[str], thin_threshold: float, pseudo_count: float,
                          exclude_hs6: Sequence[str] = ()) -> pd.DataFrame:
    """Pre-sample exposure weights w_ik with shrinkage of thin bases.

    V_ik = sum over the base years of i's chain exports to and imports from partner k (codes in
    ``exclude_hs6`` dropped), for k in ``partners`` (those with a GPRC series), k != i;
    V_i = sum_k V_ik; w_raw = V_ik / V_i. The pooled base composition of the ``pool`` countries
    (ASEAN) for importer i is w_bar_ik = sum_{m in pool} V_mk / sum_{m in pool} sum_{k' != i}
    V_mk', over k != i. Where V_i < ``thin_threshold``:
    w_ik = (V_i w_raw_ik + kappa w_bar_ik) / (V_i + kappa), kappa = ``pseudo_count``.

    Returns ``iso3, partner_iso3, base_value (V_ik), country_base (V_i), weight_raw, weight,
    thin`` for every country in ``countries`` and partner in ``partners`` other than itself.
    """
    lo, hi = base_years
    data = flows[(flows["year"] >= lo) & (flows["year"] <= hi)
                 & ~flows["hs6"].isin(list(exclude_hs6))
                 & flows["partner_iso3"].isin(list(partners))]
    value = (data["export_value"] + data["import_value"]).groupby(
        [data["iso3"], data["partner_iso3"]]).sum()
    value = value.to_dict()  # (iso3, partner) -> V_ik: dict lookups, the same numbers
    rows = []
    for iso3 in countries:
        own_partners = [k for k in partners if k != iso3]
        v = pd.Series([float(value.get((iso3, k), 0.0)) for k in own_partners], index=own_partners)
        pooled = pd.Series([sum(float(value.get((m, k), 0.0)) for m in pool) for k in own_partners],
                           index=own_partners)
        total = float(v.sum())
        w_raw = v / total if total > 0 else pd.Series(np.nan, index=own_partners)
        w_bar = pooled / pooled.sum()
        thin = total < thin_threshold
        if thin:
            w = (total * w_raw.fillna(0.0) + pseudo_count * w_bar) / (total + pseudo_count)
        else:
            w = w_raw
        for k in own_partners:
            rows.append({"iso3": iso3, "partner_iso3": k, "base_value": v[k],
                         "country_base": total, "weight_raw": w_raw[k], "weight": w[k],
                         "thin": thin})
    return pd.DataFrame(rows)


def exposure_index(weights: pd.DataFrame, g: pd.DataFrame, region: set[str],
                   years: Sequence[int] | None = None) -> pd.DataFrame:
    """GPRX_it = sum_k w_ik g_kt and its split into partners outside / inside ``region``.

    Returns ``iso3, year, gprx, gprx_ext, gprx_reg, ext_share`` where ext_share = sum of the
    weights on partners outside the region (time-invariant; the incomplete-shares control of
    Borusyak, Hull & Jaravel 2022). A year in which a partner with positive weight has no g is
    missing (the partner set never changes inside the series).
    """
    all_years = sorted(g["year"].unique()) if years is None else list(years)
    grid = weights.loc[weights["weight"] > 0, ["iso3", "partner_iso3", "weight"]].merge(
        pd.DataFrame({"year": all_years}), how="cross")
    merged = grid.merge(g, on=["partner_iso3", "year"], how="left")
    merged["external"] = ~merged["partner_iso3"].isin(region)
    merged["contribution"] = merged["weight"] * merged["g"]
    keys = ["iso3", "year"]
    grouped = merged.groupby(keys)
    out = pd.DataFrame({
        "gprx": grouped["contribution"].sum(min_count=1),
        "gprx_ext": merged[merged["external"]].groupby(keys)["contribution"].sum(min_count=1),
        "gprx_reg": merged[~merged["external"]].groupby(keys)["contribution"].sum(min_count=1),
        "partners_missing": grouped["g"].apply(lambda s: int(s.isna().sum())),
    })
    out[["gprx_ext", "gprx_reg"]] = out[["gprx_ext", "gprx_reg"]].fillna(0.0)
    incomplete = out["partners_missing"] > 0
    out.loc[incomplete, ["gprx", "gprx_ext", "gprx_reg"]] = np.nan
    share = weights.assign(external=~weights["partner_iso3"].isin(region))
    ext_share = share[share["external"]].groupby("iso3")["weight"].sum()
    out = out.reset_index()
    out["ext_share"] = out["iso3"].map(ext_share).fillna(0.0)
    return out.drop(columns="partners_missing")


# ------------------------------------------------------------------------------------------ RN
def parse_changes(text: object) -> list[tuple[dt.date, float]]:
    """``"2017-01-11=2;2020-01-01=4"`` -> [(date, level), ...]: the intensity from each date on."""
    if not isinstance(text, str) or not text.strip():
        return []
    out = []
    for part in text.split(";"):
        date, _, level = part.partition("=")
        out.append((_to_date(date.strip()), float(level)))
    return sorted(out)


def _to_date(text: str) -> dt.date:
    """ISO date; ``YYYY-MM`` is read as the first of the month, ``YYYY`` as 1 January."""
    parts = [int(p) for p in text.strip().split("-")]
    while len(parts) < 3:
        parts.append(1)
    return dt.date(*parts)


def year_share_in_force(start: dt.date, end: dt.date | None, year: int) -> float:
    """Share of the days of ``year`` in [start, end); ``end`` None means still in force."""
    first, last = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    lo = max(start, first)
    hi = min(end, last) if end is not None else last
    return max((hi - lo).days, 0) / (last - first).days


def in_force_state(measures: pd.DataFrame, countries: Sequence[str],
                   years: Sequence[int]) -> pd.DataFrame:
    """RN_events_it = sum over i's measures of intensity(t) × share of year t in force.

    ``measures`` has ``country, intensity, effective, lifted, changes`` (dates as text;
    ``changes`` as in :func:`parse_changes`). A measure contributes from ``effective`` until
    ``lifted`` (blank: still in force); a lift date before the effective date means it never
    entered into force. Each documented change sets the intensity from its date on. Intensities
    must be >= 0, so the state is never negative. Countries without measures get 0.
    """
    if (measures["intensity"].astype(float) < 0).any():
        raise ValueError("measure intensities must be >= 0 (lifting a measure ends it; it is "
                         "never a negative event)")
    totals = {(c, t): 0.0 for c in countries for t in years}
    for _, m in measures.iterrows():
        if m["country"] not in countries:
            continue
        start = _to_date(m["effective"])
        end = _to_date(m["lifted"]) if isinstance(m["lifted"], str) and m["lifted"] else None
        if end is not None and end <= start:
            continue
        pieces = [(start, float(m["intensity"]))] + parse_changes(m.get("changes"))
        for level in (p[1] for p in pieces):
            if level < 0:
                raise ValueError(f"{m.get('measure_id', '?')}: negative intensity in changes")
        for (a, level), nxt in zip(pieces, [*pieces[1:], (None, None)], strict=True):
            b = nxt[0]
            seg_end = end if b is None else (min(b, end) if end is not None else b)
            for t in years:
                totals[(m["country"], t)] += level * year_share_in_force(a, seg_end, t)
    return pd.DataFrame([(c, t, v) for (c, t), v in totals.items()],
                        columns=["iso3", "year", "rn_events"])


def parse_groups(text: object) -> list[str]:
    """``"copper;nickel"`` -> ["copper", "nickel"]; blank -> [] (a measure that covers no group)."""
    if not isinstance(text, str) or not text.strip():
        return []
    return [part.strip() for part in text.split(";") if part.strip()]


def measure_segments(measure: Mapping[str, object]
                     ) -> list[tuple[dt.date, dt.date | None, float]]:
    """The intensity path of one measure as ``(start, end, level)`` pieces, ``end`` exclusive.

    The measure is in force from ``effective`` until ``lifted`` (blank or None: still in force);
    each documented change (``changes``, see :func:`parse_changes`) sets the level from its date
    on (a change dated before the effective date is ignored). A lift date on or before the
    effective date means it never entered into force (no pieces). Pieces with level 0 are dropped
    (a change to 0 ends the restriction).
    """
    start = _to_date(str(measure["effective"]))
    lifted = measure.get("lifted")
    end = _to_date(lifted) if isinstance(lifted, str) and lifted.strip() else None
    if end is not None and end <= start:
        return []
    levels = {start: float(measure["intensity"])}
    for date, level in parse_changes(measure.get("changes")):
        if date >= start:  # a change dated on the effective date replaces the initial level
            levels[date] = level
    pieces = sorted(levels.items())
    out = []
    for (a, level), nxt in zip(pieces, [*pieces[1:], (None, None)], strict=True):
        b = nxt[0]
        if b is None:
            b = end
        elif end is not None:
            b = min(b, end)
        if level < 0:
            raise ValueError(f"{measure.get('measure_id', '?')}: negative intensity {level}")
        if level > 0 and (b is None or b > a):
            out.append((a, b, level))
    return out


def coverage_by_group(measures: pd.DataFrame, groups: Sequence[str], countries: Sequence[str],
                      years: Sequence[int], scale: float = 4.0) -> pd.DataFrame:
    """s_igt: the year-average of the strongest restriction in force on group g of country i.

    s_igt = (1 / days in year t) * sum over the days d of t of max_m intensity_m(d) / ``scale``,
    the maximum over the measures m of country i whose ``groups`` (``;``-separated, see
    :func:`parse_groups`) include g, with each measure's path from :func:`measure_segments`
    (0 on a day where no measure covers g). So a group covered by two measures at once counts
    once, at the stronger one; a broad-scope measure lists every group in its scope. When a
    single measure sets the maximum for the whole year, s_igt = intensity / scale x the share of
    year t it is in force (METHODS.md section 3); where one measure replaces another inside a
    year, the year is not shown as a dip.

    ``measures`` has ``country, groups, intensity, effective, lifted, changes`` (and optionally
    ``measure_id`` for messages). A group name outside ``groups``, or an intensity outside
    [0, ``scale``], raises ValueError. Returns ``iso3, group, year, coverage`` for every country,
    group and year.
    """
    known = set(groups)
    paths: dict[tuple[str, str], list[tuple[dt.date, dt.date | None, float]]] = {}
    for _, m in measures.iterrows():
        if m["country"] not in countries:
            continue
        level = float(m["intensity"])
        if not 0 <= level <= scale:
            raise ValueError(f"{m.get('measure_id', '?')}: intensity {level} outside [0, {scale}]")
        covered = parse_groups(m["groups"])
        unknown = sorted(set(covered) - known)
        if unknown:
            raise ValueError(f"{m.get('measure_id', '?')}: groups {unknown} are not mineral "
                             f"groups ({sorted(known)})")
        pieces = measure_segments(m)
        if any(p[2] > scale for p in pieces):
            raise ValueError(f"{m.get('measure_id', '?')}: a change sets an intensity above "
                             f"{scale}")
        for group in covered:
            paths.setdefault((m["country"], group), []).extend(pieces)
    years = sorted(int(t) for t in years)
    rows = []
    for iso3 in countries:
        for group in groups:
            pieces = paths.get((iso3, group), [])
            for t in years:
                rows.append((iso3, group, t, _year_average_of_max(pieces, t) / scale))
    return pd.DataFrame(rows, columns=["iso3", "group", "year", "coverage"])


def _year_average_of_max(pieces: Sequence[tuple[dt.date, dt.date | None, float]],
                         year: int) -> float:
    """(1 / days in ``year``) * sum over its days of the largest level of the pieces in force."""
    first, last = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    inside = [(max(a, first), last if b is None else min(b, last), level)
              for a, b, level in pieces if a < last and (b is None or b > first)]
    if not inside:
        return 0.0
    cuts = sorted({first, last, *(a for a, _, _ in inside), *(b for _, b, _ in inside)})
    total = 0.0
    for lo, hi in itertools.pairwise(cuts):
        levels = [level for a, b, level in inside if a <= lo and b >= hi]
        if levels:
            total += (hi - lo).days * max(levels)
    return total / (last - first).days


def export_group_weights(flows: pd.DataFrame, years: Sequence[int],
                         exclude_hs6: Sequence[str] = (), groups: Sequence[str] | None = None
                         ) -> pd.DataFrame:
    """w_ig: group (chain) g's share of country i's chain exports pooled over ``years``.

    w_ig = sum_{t in years} X_igt / sum_g sum_{t in years} X_igt, X = exports to the world
    (``flows`` as in :func:`regional_flow_totals`, with a ``chain`` column), codes in
    ``exclude_hs6`` (gold bullion) dropped. Every country of ``flows`` gets a row for every group
    (``groups``; default: the chains in ``flows``); where a country exported nothing over
    ``years`` its weights are NaN. Returns ``iso3, group, exports, weight``.
    """
    data = flows[flows["year"].isin(list(years)) & ~flows["hs6"].isin(list(exclude_hs6))]
    groups = sorted(flows["chain"].unique()) if groups is None else list(groups)
    exports = data.groupby(["iso3", "chain"])["export_value"].sum()
    rows = []
    for iso3 in sorted(flows["iso3"].unique()):
        own = [float(exports.get((iso3, g), 0.0)) for g in groups]
        total = sum(own)
        for group, value in zip(groups, own, strict=True):
            rows.append((iso3, group, value, value / total if total > 0 else np.nan))
    return pd.DataFrame(rows, columns=["iso3", "group", "exports", "weight"])


def coverage_state(measures: pd.DataFrame, weights: pd.DataFrame, countries: Sequence[str],
                   years: Sequence[int], scale: float = 4.0) -> pd.DataFrame:
    """RN_events_it = sum_g w_ig s_igt (trade-weighted coverage; METHODS.md section 3, Rev. 3).

    ``weights`` has ``iso3, group, weight`` (:func:`export_group_weights`); the groups are its
    groups, and s_igt comes from :func:`coverage_by_group`. Where a country's weights are
    undefined (no exports in the weight window) the state is 0 if no measure covers any of its
    groups that year and NaN otherwise. With weights summing to one and s in [0, 1], the state
    lies in [0, 1]. Returns ``iso3, year, rn_events``.
    """
    groups = sorted(weights["group"].unique())
    s = coverage_by_group(measures, groups, countries, years, scale)
    merged = s.merge(weights[["iso3", "group", "weight"]], on=["iso3", "group"], how="left")
    merged["term"] = merged["weight"] * merged["coverage"]
    grouped = merged.groupby(["iso3", "year"], sort=False)
    out = pd.DataFrame({"rn_events": grouped["term"].sum(min_count=1),
                        "covered": grouped["coverage"].max()}).reset_index()
    undefined = out["rn_events"].isna() & (out["covered"] == 0)
    out.loc[undefined, "rn_events"] = 0.0
    return out[["iso3", "year", "rn_events"]]


def group_count_state(measures: pd.DataFrame, groups: Sequence[str], countries: Sequence[str],
                      years: Sequence[int]) -> pd.DataFrame:
    """The unweighted count of restricted groups: sum_g (share of year t in which any measure
    restricts g), intensities ignored (a variant of RN events). Returns ``iso3, year, count``."""
    binary = measures.copy()
    binary["intensity"] = (binary["intensity"].astype(float) > 0).astype(float)
    if "changes" in binary:
        binary["changes"] = binary["changes"].map(
            lambda text: ";".join(f"{d.isoformat()}={1.0 if level > 0 else 0.0}"
                                  for d, level in parse_changes(text)))
    s = coverage_by_group(binary, groups, countries, years, scale=1.0)
    out = s.groupby(["iso3", "year"], sort=False)["coverage"].sum().rename("count")
    return out.reset_index()


# ----------------------------------------------------------------------------------- composites
def fixed_set_composite(data: pd.DataFrame, directions: Mapping[str, int], method: str,
                        epsilon: float, reference: pd.Series | np.ndarray
                        ) -> tuple[pd.Series, pd.Series, int]:
    """Composite with a fixed indicator set, scored only where every indicator is observed.

    1. Complete rows: every indicator in ``directions`` observed. Other rows get NaN (a
       composite never renormalises its weights over whichever indicators are present).
    2. Reference rows: complete rows with ``reference`` True (the estimation window). The
       weights come from ``method`` (:data:`analysis.measures.weighting.METHODS`) on the reference rows,
       and the min-max normalisation x' = (x - min) / (max - min) + epsilon (reversed for a
       negative indicator) uses the reference rows' min and max, so scores compare over time.
    3. Scores: sum_j w_j x'_ij for entropy, PCA and equal weights; for entropy-TOPSIS the
       closeness D- / (D+ + D-) with the ideal and anti-ideal points of the reference rows.
       On the reference rows the scores equal the method's own scores.

    Returns (scores indexed like ``data``, weights, number of reference rows).
    """
    columns = list(directions)
    reference = pd.Series(np.asarray(reference, dtype=bool), index=data.index)
    complete = data[columns].notna().all(axis=1)
    ref = complete & reference
    if ref.sum() < len(columns) + 2:
        raise ValueError(f"only {int(ref.sum())} complete reference rows for {columns}")
    weights = METHODS[method](data.loc[ref, columns], directions, epsilon).weights.reindex(columns)
    low = data.loc[ref, columns].min()
    high = data.loc[ref, columns].max()
    x = data.loc[complete, columns].to_numpy(dtype=float)
    positive = np.array([directions[c] > 0 for c in columns])
    span = (high - low).to_numpy()
    values = np.where(positive, (x - low.to_numpy()) / span, (high.to_numpy() - x) / span)
    normalised = pd.DataFrame(values + epsilon, index=data.index[complete], columns=columns)
    if method == "entropy_topsis":
        weighted = normalised * weights
        ref_weighted = weighted.loc[ref[complete].to_numpy()]
        scores_complete = topsis_closeness(weighted, ref_weighted.max().to_numpy(),
                                           ref_weighted.min().to_numpy())
    else:
        scores_complete = normalised @ weights
    scores = pd.Series(np.nan, index=data.index, dtype=float)
    scores.loc[complete] = scores_complete.to_numpy()
    return scores, weights, int(ref.sum())
