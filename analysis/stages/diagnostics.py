"""Stage 3a, construct diagnostics (METHODS.md section 3a): does each index measure its concept?

Reads ``data/processed/panel.parquet``, ``gpr_weights.parquet``, ``trade_flows.parquet`` and the
specs; the estimation sample is the models stage's (``analysis.econometrics.moderated.estimation_frame``: the
country-years complete for M5), so every number refers to the variation the regressions use.
For SYN, GPR, RN and TI it reports, on the two-way (country and year) demeaned variation:

- each country's share of the index's within variation (flag: a country above 40%);
- the within correlation with the size of the country's mineral trade (log value);
- the R² of country-specific linear trends in the within variation;
- definition switches inside the window (rows where the set of observed inputs changes while
  the index stays defined; must be 0);
- the correlation with the first build's definition (pooled and within), and with the second
  build's (Revision 2) main definition where it changed: GPR without South Africa's 1995-99
  trade, RN with the sum-over-measures state, the five-indicator TI (``ti_capacity``);
- RN's events component on its own (country shares, trend R², country-years at 0);
- GPR: within correlation with a composition-only index and with the lagged US share of trade,
  the partner decomposition of the within variation, the effective number of partner shocks and
  the in-region share;
- SYN: the share of rows in which D falls when a subsystem share rises, each country's top HS6
  code share, the leave-top-code-out correlation, and counts of thin flows (under USD 1 m),
  shares of exactly 0 or 1, D = 0 and undefined rows.

Nothing here feeds back into a construct: it is read before the results, never tuned.
Writes ``outputs/tables/construct_diagnostics.{csv,md,html,tex}`` and companion tables
(``construct_country_shares``, ``gpr_partner_decomposition``, ``syn_top_codes`` and
``estimation_sample``, the common sample by country and what binds it).

Run ``python -m analysis.stages.diagnostics --help``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.data import specs
from analysis.data.io import (
    add_verbose_argument,
    atomic_write_text,
    display_path,
    read_parquet,
    run_stage,
)
from analysis.econometrics import inference
from analysis.measures import constructs
from analysis.measures.synergy import coupling_coordination
from analysis.publish.tables import frame_table

FLAG_SHARE = 0.40
INDEX_INPUTS = {
    "syn": ["syn_u_out", "syn_u_in"],
    "rn": ["rn_events", "resource_rents_gdp", "ores_metals_export_share"],
    "ti": ["articles_per_million", "internet_users"],
}
FIRST_BUILD = {"syn": "syn_u1u2", "gpr": "gprx_first_build", "rn": "rn_first_build",
               "ti": "ti_first_build"}
# The second build's main definitions (Revision 2), kept as variants (SYN did not change).
SECOND_BUILD = {"gpr": "gpr_no_zaf_mapping", "rn": "rn_second_build", "ti": "ti_capacity"}
SAMPLE_VARIABLES = ("syn", "gpr", "rn", "ti")
FIRST_BUILD_INPUTS = {
    "rn_first_build": ["rn_event_pulse", "resource_rents_gdp", "ores_metals_export_share"],
    "ti_first_build": ["rd_gdp", "patents_per_million", "researchers_per_million",
                       "articles_per_million", "internet_users", "hightech_export_share"],
}


# ------------------------------------------------------------------------------- pure maths
def within(frame: pd.DataFrame, columns: list[str], fe: tuple[str, str] = ("iso3", "year")
           ) -> pd.DataFrame:
    """Two-way (country and year) demeaned ``columns`` on the rows where all are present."""
    rows = frame.dropna(subset=columns)
    return inference.partial_out_fixed_effects(rows, columns, list(fe)).assign(
        iso3=rows["iso3"].to_numpy(), year=rows["year"].to_numpy())


def country_shares(frame: pd.DataFrame, column: str) -> pd.Series:
    """Each country's share of sum(x~^2), x~ the two-way demeaned ``column`` (shares sum to 1)."""
    demeaned = within(frame, [column])
    squares = demeaned[column] ** 2
    return (squares.groupby(demeaned["iso3"]).sum() / squares.sum()).sort_values(ascending=False)


def within_correlation(frame: pd.DataFrame, a: str, b: str) -> float:
    """Correlation of the two-way demeaned ``a`` and ``b`` (rows where both are present)."""
    demeaned = within(frame, [a, b])
    if demeaned[a].std() == 0 or demeaned[b].std() == 0:
        return float("nan")
    return float(np.corrcoef(demeaned[a], demeaned[b])[0, 1])


def trend_r2(frame: pd.DataFrame, column: str) -> float:
    """R² of country-specific linear trends in the two-way demeaned ``column``.

    Regresses x~ on the two-way demeaned country x year interactions (one per country): the
    share of the index's within variation that smooth country trends explain.
    """
    rows = frame.dropna(subset=[column]).copy()
    trend_columns = []
    for iso3 in sorted(rows["iso3"].unique()):
        name = f"_trend_{iso3}"
        rows[name] = np.where(rows["iso3"] == iso3, rows["year"] - rows["year"].mean(), 0.0)
        trend_columns.append(name)
    demeaned = inference.partial_out_fixed_effects(rows, [column, *trend_columns],
                                                   ["iso3", "year"])
    y = demeaned[column].to_numpy()
    X = demeaned[trend_columns].to_numpy()
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    resid = y - X @ beta
    return float(1 - resid @ resid / (y @ y)) if y @ y > 0 else float("nan")


def definition_switches(frame: pd.DataFrame, index: str, inputs: list[str]) -> int:
    """Rows where the set of observed inputs differs from the same country's previous row while
    the index is defined in both (a composite that changes definition inside its series)."""
    count = 0
    for _, own in frame.sort_values(["iso3", "year"]).groupby("iso3"):
        present = own[inputs].notna().to_numpy()
        defined = own[index].notna().to_numpy()
        for t in range(1, len(own)):
            if defined[t] and defined[t - 1] and (present[t] != present[t - 1]).any():
                count += 1
    return count


def partner_decomposition(sample: pd.DataFrame, weights: pd.DataFrame, g: pd.DataFrame,
                          partners: set[str] | None = None) -> pd.DataFrame:
    """Shares of GPRX's within variation by partner: cov(c~_k, G~) / var(G~), c_k = w_ik g_kt.

    ``partners`` restricts the index to those partners (e.g. the extra-regional ones). The
    shares sum to 1. Also the partner's mean exposure weight on the sample (``exposure``).
    """
    w = weights if partners is None else weights[weights["partner_iso3"].isin(partners)]
    w = w[w["weight"] > 0]
    contrib = sample[["iso3", "year"]].merge(w[["iso3", "partner_iso3", "weight"]], on="iso3")
    contrib = contrib.merge(g, on=["partner_iso3", "year"], how="left")
    contrib["c"] = contrib["weight"] * contrib["g"]
    wide = contrib.pivot_table(index=["iso3", "year"], columns="partner_iso3", values="c",
                               aggfunc="sum", fill_value=0.0)
    exposure = contrib.pivot_table(index=["iso3", "year"], columns="partner_iso3",
                                   values="weight", aggfunc="sum", fill_value=0.0).mean()
    frame = wide.reset_index()
    frame["_total"] = wide.sum(axis=1).to_numpy()
    columns = [*wide.columns, "_total"]
    demeaned = inference.partial_out_fixed_effects(frame, columns, ["iso3", "year"])
    total = demeaned["_total"]
    shares = demeaned[list(wide.columns)].apply(lambda c: float(c @ total / (total @ total)))
    out = pd.DataFrame({"partner_iso3": shares.index, "share_of_within_variation": shares.values,
                        "mean_exposure_weight": exposure.reindex(shares.index).values})
    return out.sort_values("share_of_within_variation", ascending=False).reset_index(drop=True)


def effective_number(weights: np.ndarray) -> float:
    """Inverse Herfindahl 1 / sum s_k^2 of non-negative weights normalised to sum to 1
    (Borusyak, Hull & Jaravel 2022's effective number of shocks, with s_k the exposure)."""
    s = np.asarray(weights, dtype=float)
    s = s[s > 0] / s[s > 0].sum()
    return float(1 / np.sum(s ** 2))


# -------------------------------------------------------------------------------- assembly
def common_rows(sample: pd.DataFrame, index: str) -> dict:
    """Diagnostics every index gets."""
    shares = country_shares(sample, index)
    top = shares.index[0]
    first = FIRST_BUILD[index]
    both = sample.dropna(subset=[index, first])
    return {
        "largest country share of within variation": (float(shares.iloc[0]), top,
                                                      shares.iloc[0] > FLAG_SHARE),
        "countries above 40% of within variation": (int((shares > FLAG_SHARE).sum()), "",
                                                    bool((shares > FLAG_SHARE).any())),
        "within correlation with log mineral trade": (
            within_correlation(sample, index, "log_mineral_trade"), "", False),
        "R² of country-specific linear trends (within)": (trend_r2(sample, index), "", False),
        "correlation with the first build's definition (pooled)": (
            float(both[index].corr(both[first])) if len(both) > 2 else np.nan, first, False),
        "correlation with the first build's definition (within)": (
            within_correlation(sample, index, first), first, False),
    }


def second_build_rows(sample: pd.DataFrame, index: str) -> dict:
    """Correlation of the index with the second build's main definition (Revision 2), on the
    sample rows where both exist (the five-indicator TI covers seven countries)."""
    old = SECOND_BUILD.get(index)
    if old is None:
        return {}
    both = sample.dropna(subset=[index, old])
    note = f"{old}; {len(both)} rows, {both['iso3'].nunique()} countries"
    return {"correlation with the second build's definition (pooled)": (
                float(both[index].corr(both[old])) if len(both) > 2 else np.nan, note, False),
            "correlation with the second build's definition (within)": (
                within_correlation(both, index, old), note, False)}


def events_rows(sample: pd.DataFrame, column: str = "rn_events") -> dict:
    """RN's events component on its own: country shares and trend R² of its within variation."""
    shares = country_shares(sample, column)
    return {
        "events component: largest country share of within variation": (
            float(shares.iloc[0]), f"{column}: {shares.index[0]}", shares.iloc[0] > FLAG_SHARE),
        "events component: R² of country-specific linear trends (within)": (
            trend_r2(sample, column), column, False),
        "events component: country-years at 0": (
            int((sample[column] == 0).sum()), f"of {len(sample)}", False),
    }


def sample_by_country(panel: pd.DataFrame, sample: pd.DataFrame, window: tuple[int, int],
                      variables: tuple[str, ...] = SAMPLE_VARIABLES,
                      controls: tuple[str, ...] = ()) -> pd.DataFrame:
    """The estimation sample by country: rows, first and last year, and for each index and
    control the number of window years it is observed (what binds the sample)."""
    lo, hi = window
    inside = panel[panel["year"].between(lo, hi)]
    rows = []
    for iso3, own in inside.groupby("iso3"):
        used = sample[sample["iso3"] == iso3]["year"]
        row = {"iso3": iso3, "rows in the sample": len(used),
               "first year": int(used.min()) if len(used) else "",
               "last year": int(used.max()) if len(used) else ""}
        for column in (*variables, *controls):
            row[f"{column} observed"] = int(own[column].notna().sum())
        rows.append(row)
    total = {"iso3": "total", "rows in the sample": len(sample), "first year": "",
             "last year": ""}
    rows.append({**dict.fromkeys(rows[0], ""), **total})
    return pd.DataFrame(rows).astype(object)


def build_diagnostics(panel: pd.DataFrame, sample: pd.DataFrame, weights: pd.DataFrame,
                      flows: pd.DataFrame, gprc: pd.DataFrame, spec: dict,
                      region: specs.Region | None = None) -> dict[str, pd.DataFrame]:
    """All diagnostics tables (see the module docstring); "in-region" and "extra-regional"
    refer to the region's countries (default: this run's region)."""
    region_spec = region or specs.load_region()
    lo, hi = spec["window"]
    window = panel[panel["year"].between(lo, hi)]
    rows: list[dict] = []

    def add(index: str, name: str, value: float, note: str = "", flag: bool = False) -> None:
        rows.append({"index": index, "diagnostic": name, "value": value,
                     "flag": "FLAG" if flag else "", "note": note})

    for index in ("syn", "gpr", "rn", "ti"):
        for name, (value, note, flag) in common_rows(sample, index).items():
            add(index, name, value, note, flag)
        for name, (value, note, flag) in second_build_rows(sample, index).items():
            add(index, name, value, note, flag)
        if index == "rn":
            for name, (value, note, flag) in events_rows(sample).items():
                add(index, name, value, note, flag)
        inputs = INDEX_INPUTS.get(index)
        if inputs:
            switches = definition_switches(window, index, inputs)
            add(index, "definition switches inside the window", switches,
                f"{lo}-{hi}, all country-years", switches > 0)
    # GPR: fixed weights, so its definition can only change if a weighted partner's GPRC is
    # missing in some year (exposure_index then leaves the year missing): count such years
    g_all = constructs.standardise_gprc(gprc, tuple(spec["gpr"]["gprc_base_years"]), "ratio")
    weighted = set(weights.loc[weights["weight"] > 0, "partner_iso3"])
    present = g_all[g_all["year"].between(lo, hi)].groupby("year")["partner_iso3"].apply(set)
    gaps = int(sum(not weighted <= partners for partners in present))
    add("gpr", "definition switches inside the window", gaps,
        f"fixed {region_spec.gpr_base_years[0]}-{str(region_spec.gpr_base_years[1])[-2:]} "
        "weights; years with a weighted partner's GPRC missing", gaps > 0)
    for old, inputs in FIRST_BUILD_INPUTS.items():
        add(old.split("_")[0], "definition switches, first build (for comparison)",
            definition_switches(window, old, inputs), old)

    # GPR ------------------------------------------------------------------------------
    region = set(region_spec.countries)
    add("gpr", "within correlation with the composition-only index",
        within_correlation(sample, "gpr", "gpr_composition"),
        "lagged trade shares x mean partner risk")
    add("gpr", "within correlation with the lagged US share of chain trade",
        within_correlation(sample, "gpr", "us_share"))
    add("gpr", "first build: within correlation with the composition-only index",
        within_correlation(sample, "gprx_first_build", "gpr_composition"))
    add("gpr", "first build: within correlation with the lagged US share",
        within_correlation(sample, "gprx_first_build", "us_share"))
    g = constructs.standardise_gprc(gprc, tuple(spec["gpr"]["gprc_base_years"]), "ratio")
    external = sorted(set(weights["partner_iso3"]) - region)
    decomposition = partner_decomposition(sample, weights, g, set(external))
    add("gpr", "effective number of partner shocks (1 / HHI of mean exposure)",
        effective_number(decomposition["mean_exposure_weight"].to_numpy()), "extra-regional")
    variance_shares = decomposition["share_of_within_variation"].clip(lower=0).to_numpy()
    add("gpr", "effective number of partner shocks (1 / HHI of within-variation shares)",
        effective_number(variance_shares), "negative shares set to 0")
    top = decomposition.iloc[0]
    add("gpr", "largest partner share of within variation",
        float(top["share_of_within_variation"]), top["partner_iso3"])
    total = partner_decomposition(sample, weights, g)
    in_region = float(total.loc[total["partner_iso3"].isin(region),
                                "share_of_within_variation"].sum())
    add("gpr", "in-region partners' share of total GPRX within variation", in_region,
        "GPRX_reg; the main gpr is extra-regional only")
    add("gpr", "thin bases shrunk (countries)", int(weights.groupby("iso3")["thin"].first().sum()),
        ", ".join(sorted(weights.loc[weights["thin"], "iso3"].unique())))

    # SYN ------------------------------------------------------------------------------
    def textbook(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(coupling_coordination(a, b, corrected=False, alpha=0.5))

    def corrected(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray(coupling_coordination(a, b, corrected=True, alpha=0.5))

    u = window[["syn_u_out", "syn_u_in"]]
    add("syn", "share of rows in which D falls when a share rises (main)",
        constructs.d_falls_when_a_share_rises(u["syn_u_out"], u["syn_u_in"], textbook))
    add("syn", "share of rows in which D falls when a share rises (corrected-C variant)",
        constructs.d_falls_when_a_share_rises(u["syn_u_out"], u["syn_u_in"], corrected))
    add("syn", "within correlation with the leave-top-code-out SYN",
        within_correlation(sample, "syn", "syn_leave_top"))
    add("syn", "within correlation with the gold-inclusive SYN",
        within_correlation(sample, "syn", "syn_gold"))
    min_flow = float(spec["synergy"]["min_flow_kusd"])
    add("syn", "country-years with chain exports under USD 1 m",
        int((window["chain_exports_world"] < min_flow).sum()), f"of {len(window)} in {lo}-{hi}")
    add("syn", "country-years with chain imports under USD 1 m",
        int((window["chain_imports_world"] < min_flow).sum()), f"of {len(window)}")
    add("syn", "shares exactly 0 or 1",
        int(((u == 0) | (u == 1)).sum().sum()), "U_out and U_in cells")
    add("syn", "rows with D = 0", int((window["syn"] == 0).sum()))
    add("syn", "undefined rows (D missing)", int(window["syn"].isna().sum()),
        "materiality or zero denominator")
    top_codes = constructs.top_code_shares(flows, [str(c) for c in spec["gold_hs6"]],
                                           range(lo, hi + 1))
    add("syn", "largest top-HS6 share of chain imports", float(top_codes["top_import_share"].max()),
        top_codes.loc[top_codes["top_import_share"].idxmax(), "iso3"])

    diagnostics = pd.DataFrame(rows)
    shares = pd.concat([country_shares(sample, i).rename(i)
                        for i in ("syn", "gpr", "rn", "rn_events", "ti")],
                       axis=1).reset_index(names="iso3")
    return {"construct_diagnostics": diagnostics, "construct_country_shares": shares,
            "gpr_partner_decomposition": decomposition.head(15),
            "syn_top_codes": top_codes}


def run(processed: Path = config.DATA_PROCESSED, tables: Path = config.TABLES) -> dict:
    from analysis.econometrics.moderated import estimation_frame, load_model_spec

    spec = specs.load_indices_spec()
    panel = read_parquet(processed / "panel.parquet")
    weights = read_parquet(processed / "gpr_weights.parquet")
    flows = read_parquet(processed / "trade_flows.parquet")
    gprc = read_parquet(processed / "gprc_partners.parquet")
    model_spec = load_model_spec()
    frame, _ = estimation_frame(panel, model_spec)
    keys = frame[["iso3", "year"]]
    sample = keys.merge(panel, on=["iso3", "year"], how="left")
    print(f"[diagnostics] estimation sample: {len(sample)} country-years, "
          f"{sample['iso3'].nunique()} countries", flush=True)
    out = build_diagnostics(panel, sample, weights, flows, gprc, spec)
    out["estimation_sample"] = sample_by_country(panel, sample, tuple(spec["window"]),
                                                 controls=tuple(model_spec["controls"]))
    print(out["estimation_sample"].to_string(index=False), flush=True)
    captions = {
        "construct_diagnostics": "Construct diagnostics (METHODS.md 3a), on the two-way demeaned "
        f"estimation sample (N = {len(sample)}); FLAG marks a country above 40% of an index's "
        "within variation or a definition switch",
        "construct_country_shares": "Each country's share of each index's within variation "
        "(estimation sample)",
        "gpr_partner_decomposition": "GPR (extra-regional): partners' shares of its within "
        "variation and mean exposure weights",
        "syn_top_codes": f"Top HS6 code of each country's chain exports and imports, "
        f"{spec['window'][0]}-{spec['window'][1]} (gold excluded)",
        "estimation_sample": f"The common estimation sample of M1-M5 by country (N = "
        f"{len(sample)}, G = {sample['iso3'].nunique()}), and the years "
        f"{spec['window'][0]}-{spec['window'][1]} each index and control is observed",
    }
    for name, table in out.items():
        frame_table(table, tables / name, captions[name])
        atomic_write_text(tables / f"{name}.csv", table.to_csv(
            index=False, float_format="%.10g", lineterminator="\n"))
    shown = out["construct_diagnostics"]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.stages.diagnostics",
        description="Construct diagnostics (METHODS.md 3a) for SYN, GPR, RN and TI on the "
        "estimation sample; writes outputs/tables/construct_diagnostics.* and companions.")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    return run_stage("diagnostics", run, verbose=args.verbose or None,
                     summary=lambda out: f"{len(out['construct_diagnostics'])} diagnostics "
                     f"-> {display_path(config.TABLES)}/construct_diagnostics.*")


if __name__ == "__main__":
    sys.exit(main())
