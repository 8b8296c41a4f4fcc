"""Stage nickel: resource nationalism and chain restructuring, the Indonesian nickel case.

METHODS.md section 8. Reads the hash-checked CEPII BACI HS07 V202601 extract (registry entry
``baci_hs07_asean``, a third party's extract of the official release) and, for the dyad variant,
``data/processed/trade_hs6.parquet`` from the clean stage. Specification: ``specs/nickel.yaml``;
design choices: ``docs/nickel.md``.

The case is Indonesia's nickel chain with China, whatever the region of the run: the exporters
and China come from ``specs/nickel.yaml``, not from the region, so every region that contains
them (China as its focal country, the ASEAN exporters as members) gets the same results, written
to its own folders; for another region the stage stops with a one-line error.

Writes:

- ``data/processed/nickel_chain.parquet``: one row per ``exporter, partner, year, hs6`` with the
  nickel ``stage`` (ore, intermediate, refined), ``value_kusd`` (thousand USD) and
  ``quantity_t`` (tonnes, missing where BACI has none);
- ``data/processed/nickel_event_frame.parquet`` (and ``nickel_event_frame_<model>.parquet`` for
  the other models): the balanced exporter x partner x product x year estimation frame, zeros
  included, with the event-time dummies;
- ``outputs/nickel_event_study.csv``: the main PPML event study, ``term, estimate, std_error,
  p_value, n_obs, formula``; ``pyfixest.fepois(formula, data=<frame>, vcov={"CRV1": "dyad"})``
  refits it; ``outputs/nickel_event_models.csv`` (every model of the spec),
  ``outputs/nickel_event_tests.csv`` (pre-trend Wald tests, placebo tests, the permutation
  check across placebo exporters);
- ``data/processed/dyad_nickel.parquet``: the ASEAN member-China dyad SYN with the HS07 nickel
  intermediates added (``syn``) and without (``syn_base``), with components and flows;
- tables ``outputs/tables/nickel_*.{md,html,tex}`` and figures
  ``outputs/figures/nickel_{stage_mix,event_study}.{png,pdf}``.

``make nickel`` runs the stage with ``PYTHONHASHSEED=0``: pyfixest orders fixed effects by string
hashing, which moves clustered SEs of the three-way FE variant in the tenth digit between
processes. ``python -m analysis.stages.nickel --size-mc R`` prints the rejection rates of the event-study
tests under a true null on R synthetic replications instead of running the stage.

Run ``python -m analysis.stages.nickel --help``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis import config
from analysis.data import parsers, specs
from analysis.data.io import (
    DataError,
    add_verbose_argument,
    atomic_write_text,
    display_path,
    read_parquet,
    run_stage,
    verify_sha256,
    write_parquet,
)
from analysis.data.registry import load_registry, raw_path, source_by_name
from analysis.data.specs import load_region
from analysis.measures.synergy import coupling_coordination
from analysis.publish.figures import save_figure
from analysis.publish.tables import frame_table

STAGES = ("ore", "intermediate", "refined")
EVENT_COLUMNS = ["term", "estimate", "std_error", "p_value", "n_obs", "formula"]
CHAIN_COLUMNS = ["exporter", "partner", "year", "hs6", "stage", "value_kusd", "quantity_t"]


def _say(message: str) -> None:
    print(f"[nickel] {message}", flush=True)


# --------------------------------------------------------------------------- specification
def load_nickel_spec(path: Path = config.SPECS / "nickel.yaml",
                     registry: Path = config.REGISTRY_FILE) -> dict:
    """``specs/nickel.yaml``, validated (:class:`analysis.data.specs.NickelSpec`): the stage map,
    the ban windows (first < ban <= last, inside the years), the event-study models and
    groups, and the source against ``data/registry.yaml``."""
    sources = {s.name for s in load_registry(registry)}
    return specs.load(path, "nickel", context={"sources": sources})


def stage_map(spec: dict) -> pd.DataFrame:
    """The spec's HS6 -> stage table: ``hs6, stage, description``."""
    table = pd.DataFrame(spec["stages"])
    table["hs6"] = table["hs6"].astype(str)
    return table[["hs6", "stage", "description"]]


# --------------------------------------------------------------------------- nickel chain
def build_nickel_chain(extract: pd.DataFrame, stages: pd.DataFrame) -> pd.DataFrame:
    """Nickel rows of the parsed extract with their stage.

    One row per ``exporter, partner, year, hs6`` (the extract's key), only for the HS6 codes of
    the stage map; ``value_kusd`` in thousand USD, ``quantity_t`` in tonnes (missing stays
    missing). Both directions of the extract are kept (ASEAN member -> partner and partner ->
    ASEAN member).
    """
    rows = extract.merge(stages[["hs6", "stage"]], on="hs6", how="inner")
    rows = rows.rename(columns={"importer": "partner"})[CHAIN_COLUMNS]
    return rows.sort_values(["exporter", "partner", "year", "hs6"]).reset_index(drop=True)


def stage_mix(chain: pd.DataFrame, exporters: list[str], partner: str, years: list[int],
              downstream: tuple[str, ...] = ("intermediate", "refined")) -> pd.DataFrame:
    """Exports of each exporter to ``partner`` by year and stage, thousand USD.

    Columns ``exporter, year, ore, intermediate, refined, total, downstream_share`` with
    downstream_share = (sum of the downstream stages) / total, missing where total = 0. Years
    without a row in the extract are zeros (a BACI record absent means no recorded flow).
    """
    rows = chain[(chain["partner"] == partner) & chain["exporter"].isin(exporters)]
    table = rows.pivot_table(index=["exporter", "year"], columns="stage", values="value_kusd",
                             aggfunc="sum", fill_value=0.0)
    full = pd.MultiIndex.from_product([exporters, years], names=["exporter", "year"])
    table = table.reindex(index=full, columns=list(STAGES), fill_value=0.0).astype(float)
    table["total"] = table[list(STAGES)].sum(axis=1)
    down = table[list(downstream)].sum(axis=1)
    table["downstream_share"] = np.where(table["total"] > 0, down / table["total"].where(
        table["total"] > 0, 1.0), np.nan)
    table.columns.name = None
    return table.reset_index()


# --------------------------------------------------------------------------- event study
def balanced_grid(chain: pd.DataFrame, exporters: list[str], partners: list[str],
                  codes: list[str], years: list[int], outcome: str = "value_kusd"
                  ) -> pd.DataFrame:
    """Exporter x partner x product x year grid with the flow, 0 where the extract has no row.

    BACI records only positive flows, so a pair absent from BACI is a pair without recorded
    trade: a zero, which PPML keeps. Adds ``dyad`` = exporter_partner (the cluster variable).
    """
    index = pd.MultiIndex.from_product([exporters, partners, codes, years],
                                       names=["exporter", "partner", "hs6", "year"])
    flows = chain.groupby(["exporter", "partner", "hs6", "year"])[outcome].sum()
    grid = flows.reindex(index, fill_value=0.0).rename(outcome).reset_index()
    grid["dyad"] = grid["exporter"] + "_" + grid["partner"]
    return grid


def reference_times(window: dict, reference: int | list[int]) -> list[int]:
    """The omitted event times of a window: its own ``reference`` if it has one, else the
    model's; an int or a list (a list pools several years into the reference level)."""
    value = window.get("reference", reference)
    return sorted(int(k) for k in (value if isinstance(value, list | tuple) else [value]))


def check_windows(windows: list[dict], years: list[int], reference: int | list[int]) -> None:
    """Windows must tile the sample years in order, each containing its reference years."""
    expected = min(years)
    for window in windows:
        if window["first"] != expected or window["last"] < window["first"]:
            raise ValueError(f"event windows must tile {min(years)}-{max(years)} without gaps "
                             f"or overlaps; window {window} does not start at {expected}")
        for k in reference_times(window, reference):
            if not window["first"] <= window["ban"] + k <= window["last"]:
                raise ValueError(f"window {window}: reference year {window['ban'] + k} "
                                 "lies outside the window")
        expected = window["last"] + 1
    if expected != max(years) + 1:
        raise ValueError(f"event windows end in {expected - 1}, the sample in {max(years)}")


def event_term(group: str, ban: int, k: int) -> str:
    """Name of the dummy for product group ``group``, event time ``k`` around ``ban``."""
    return f"{group}_b{ban}_{'pre' if k < 0 else 'post'}{abs(k)}"


def anticipation_term(group: str, ban: int, k: int) -> str:
    """Name of the dummy for an anticipation year ``k < 0`` (announced ban, exports rushing)."""
    return f"{group}_b{ban}_ant{abs(k)}"


def add_event_terms(grid: pd.DataFrame, treated: str, groups: dict[str, list[str]],
                    windows: list[dict], reference: int | list[int] = -1,
                    anticipation: int = 0, prefix: str = ""
                    ) -> tuple[pd.DataFrame, list[str]]:
    """Event-time dummies for the treated exporter's product groups; returns (frame, terms).

    For group g and window w (ban year b, years first..last): D[g, b, k] = 1 for the treated
    exporter's products of g in year b + k, for every k with first <= b + k <= last except the
    reference event times (:func:`reference_times`: one year, or several pooled into one
    reference level); windows after the first also get a level term L[g, b] = 1 for all the
    treated group's years in the window. The ``anticipation`` years before each ban
    (``-anticipation <= k < 0``, or the window's own ``anticipation``) are named
    ``<g>_b<b>_ant<|k|>`` (:func:`anticipation_term`): the announced ban's rush, modelled
    explicitly and kept out of the pre-trend tests. The windows tile the sample, so with
    exporter x product fixed effects the treated group's year profile is saturated: D[g, b, k]
    is the log change from the window's reference level to year b + k, and L[g, b] the log
    change between the first window's reference level and this window's. ``prefix`` names the
    terms of a second unit (a spillover exporter, e.g. ``phl_``).
    """
    years = sorted(grid["year"].unique())
    check_windows(windows, years, reference)
    frame = grid.copy()
    terms: list[str] = []
    for group, codes in groups.items():
        member = (frame["exporter"] == treated) & frame["hs6"].isin(codes)
        for number, window in enumerate(windows):
            ban = window["ban"]
            omitted = reference_times(window, reference)
            lead = int(window.get("anticipation", anticipation))
            if number > 0:
                name = f"{prefix}{group}_b{ban}_level"
                frame[name] = (member & frame["year"].between(window["first"], window["last"])
                               ).astype(float)
                terms.append(name)
            for year in range(window["first"], window["last"] + 1):
                k = year - ban
                if k in omitted:
                    continue
                name = prefix + (anticipation_term(group, ban, k) if -lead <= k < 0
                                 else event_term(group, ban, k))
                frame[name] = (member & (frame["year"] == year)).astype(float)
                terms.append(name)
    return frame, terms


def event_formula(outcome: str, terms: list[str], fixed_effects: str) -> str:
    """pyfixest formula ``outcome ~ terms | fixed effects``."""
    return f"{outcome} ~ {' + '.join(terms)} | {fixed_effects}"


PPML_OPTIONS = {"fixef_tol": 1e-12, "iwls_tol": 1e-12, "iwls_maxiter": 100}


def ppml_kwargs(options: dict | None = None) -> dict:
    """Keyword arguments for ``pyfixest.fepois``: ``demeaner=MapDemeaner(fixef_tol=...)``,
    ``iwls_tol`` and ``iwls_maxiter`` from ``options`` (default :data:`PPML_OPTIONS`)."""
    from pyfixest.demeaners import MapDemeaner

    options = dict(PPML_OPTIONS if options is None else options)
    return {"demeaner": MapDemeaner(fixef_tol=float(options.pop("fixef_tol"))),
            **{key: (float(v) if key.endswith("tol") else int(v)) for key, v in options.items()}}


def fit_ppml(frame: pd.DataFrame, formula: str, cluster: str = "dyad",
             options: dict | None = None):
    """pyfixest ``fepois`` with CRV1 standard errors clustered by ``cluster``.

    ``pyfixest.fepois(formula, data=frame, vcov={"CRV1": cluster}, **ppml_kwargs(options))``
    gives the same numbers: the IRLS and demeaning tolerances are tightened to 1e-12
    (:data:`PPML_OPTIONS`, the spec's ``pyfixest`` entry); with pyfixest's defaults (demeaning
    tolerance 1e-6) the clustered SEs of a three-way FE model move in the fifth digit from one
    run to the next. Observations in fixed-effect groups with only zeros are dropped by
    pyfixest (they carry no information in PPML).
    """
    import pyfixest as pf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pf.fepois(formula, data=frame, vcov={"CRV1": cluster}, **ppml_kwargs(options))


def tidy_fit(fit, formula: str) -> pd.DataFrame:
    """``term, estimate, std_error, p_value, n_obs, formula`` plus 95% CI and G.

    p-values and intervals are pyfixest's for fepois (normal reference distribution)."""
    table = fit.tidy()
    out = pd.DataFrame({
        "term": table.index.astype(str), "estimate": table["Estimate"].to_numpy(),
        "std_error": table["Std. Error"].to_numpy(), "p_value": table["Pr(>|t|)"].to_numpy(),
        "n_obs": int(fit._N), "formula": formula,
        "ci_low": table["2.5%"].to_numpy(), "ci_high": table["97.5%"].to_numpy(),
        "n_clusters": int(np.asarray(fit._G).ravel()[0]),
    })
    return out.reset_index(drop=True)


def wald_test(coef: pd.Series, vcov: pd.DataFrame, terms: list[str], n_clusters: int,
              tolerance: float = 1e-10) -> dict:
    """Joint Wald test of H0: beta[terms] = 0 with the clustered covariance V.

    W = b' V^+ b with chi2(r) p-value, r the numerical rank of V (eigenvalues above
    ``tolerance`` times the largest); the F form F = W / r is referred to F(r, G - 1), the
    few-cluster convention used elsewhere in the project. When r equals the number of terms q,
    V^+ = V^-1 and this is the usual test. A clustered covariance has rank at most the number of
    clusters whose scores move the terms, so with few treated clusters r < q can happen; the
    test then has r degrees of freedom (as Stata's ``test`` drops the dependent constraints) and
    ``rank_deficient`` is True: read it as a warning that the test rests on fewer independent
    clusters than it has restrictions.
    """
    b = coef.loc[terms].to_numpy()
    v = vcov.loc[terms, terms].to_numpy()
    eigenvalues, eigenvectors = np.linalg.eigh(v)
    keep = eigenvalues > tolerance * eigenvalues.max()
    r = int(keep.sum())
    projected = eigenvectors[:, keep].T @ b
    w = float(projected @ (projected / eigenvalues[keep]))
    return {"wald": w, "df": r, "p_value": float(stats.chi2.sf(w, r)), "f": w / r,
            "p_f": float(stats.f.sf(w / r, r, n_clusters - 1)), "q": len(terms),
            "rank_deficient": r < len(terms)}


def linear_combination(coef: pd.Series, vcov: pd.DataFrame, terms: list[str]
                       ) -> tuple[float, float]:
    """Mean of ``coef[terms]`` and its standard error sqrt(w' V w), w = 1/q."""
    weights = np.full(len(terms), 1.0 / len(terms))
    b = float(weights @ coef.loc[terms].to_numpy())
    se = float(np.sqrt(weights @ vcov.loc[terms, terms].to_numpy() @ weights))
    return b, se


def fit_vcov(fit) -> tuple[pd.Series, pd.DataFrame]:
    """Coefficients and clustered covariance of a pyfixest fit, labelled by term."""
    coef = fit.coef()
    names = list(coef.index)
    return coef, pd.DataFrame(np.asarray(fit._vcov), index=names, columns=names)


def eligible_groups(grid: pd.DataFrame, exporter: str, groups: dict[str, list[str]],
                    years: list[int], outcome: str = "value_kusd") -> list[str]:
    """Groups whose exports by ``exporter`` (over all partners) are positive in every year.

    Only then is every event-time coefficient of the group finite: a treated cell with only
    zeros has no PPML estimate (the coefficient diverges to minus infinity)."""
    out = []
    for group, codes in groups.items():
        rows = grid[(grid["exporter"] == exporter) & grid["hs6"].isin(codes)]
        by_year = rows.groupby("year")[outcome].sum().reindex(years, fill_value=0.0)
        if (by_year > 0).all():
            out.append(group)
    return out


def model_frame(chain: pd.DataFrame, spec: dict, model: dict
                ) -> tuple[pd.DataFrame, list[str], str, list[str]]:
    """(frame, terms, formula, groups) of one event-study model of the spec.

    Model keys beside ``treated`` and ``windows``: ``years``, ``drop_exporters``,
    ``fixed_effects``, ``reference`` and ``anticipation`` (else the event study's);
    ``spillover`` (exporters whose nickel groups get their own event-time dummies, prefixed
    ``<iso3>_``: their response to the ban is estimated instead of serving as the comparison);
    ``drop_flows_to`` (partners whose flows from every exporter but the treated one leave the
    sample: those partner x year effects are then estimated without the other exporters'
    flows, which the ban may have moved)."""
    event = spec["event_study"]
    first, last = model.get("years", spec["years"])
    years = list(range(first, last + 1))
    exporters = [e for e in event["exporters"] if e not in model.get("drop_exporters", [])]
    codes = [c for group in event["groups"].values() for c in group]
    grid = balanced_grid(chain, exporters, event["partners"], codes, years, event["outcome"])
    if model.get("drop_flows_to"):
        grid = grid[~(grid["partner"].isin(model["drop_flows_to"])
                      & (grid["exporter"] != model["treated"]))].reset_index(drop=True)
    groups = eligible_groups(grid, model["treated"], event["groups"], years, event["outcome"])
    if not groups:
        raise ValueError(f"model {model['id']}: {model['treated']} has no product group with "
                         "positive exports in every year")
    reference = model.get("reference", event["reference"])
    anticipation = int(model.get("anticipation", event.get("anticipation", 0)))
    frame, terms = add_event_terms(grid, model["treated"],
                                   {g: event["groups"][g] for g in groups},
                                   model["windows"], reference, anticipation)
    for unit in model.get("spillover", []):
        unit_groups = eligible_groups(frame, unit, event["groups"], years, event["outcome"])
        frame, unit_terms = add_event_terms(frame, unit,
                                            {g: event["groups"][g] for g in unit_groups},
                                            model["windows"], reference, anticipation,
                                            prefix=f"{unit.lower()}_")
        terms += unit_terms
    formula = event_formula(event["outcome"], terms,
                            model.get("fixed_effects", event["fixed_effects"]))
    return frame, terms, formula, groups


def pre_post_terms(terms: list[str], group: str, ban: int) -> tuple[list[str], list[str]]:
    """The pre-period and post-period event-time terms of a group around a ban (anticipation
    terms are neither: :func:`anticipation_terms`)."""
    prefix = f"{group}_b{ban}_"
    pre = [t for t in terms if t.startswith(prefix + "pre")]
    post = [t for t in terms if t.startswith(prefix + "post")]
    return pre, post


def anticipation_terms(terms: list[str], group: str, ban: int) -> list[str]:
    """The anticipation terms of a group around a ban."""
    return [t for t in terms if t.startswith(f"{group}_b{ban}_ant")]


def model_tests(fit, terms: list[str], groups: list[str], windows: list[dict], model_id: str
                ) -> list[dict]:
    """Pre-trend Wald tests (per group and ban, and jointly) and post-period averages."""
    coef, vcov = fit_vcov(fit)
    n_clusters = int(np.asarray(fit._G).ravel()[0])
    rows = []
    all_pre = []
    for group in groups:
        for window in windows:
            pre, post = pre_post_terms(terms, group, window["ban"])
            lead = anticipation_terms(terms, group, window["ban"])
            if lead:
                b, se = linear_combination(coef, vcov, lead)
                rows.append({"model": model_id, "test": f"anticipation_{group}_b{window['ban']}",
                             "description": f"Mean of the {group} anticipation coefficients "
                             f"before {window['ban']} (announced ban; estimate, z-test)",
                             "terms": " ".join(lead), "estimate": b, "std_error": se,
                             "p_value": float(2 * stats.norm.sf(abs(b / se)))})
            if pre:
                all_pre += pre
                rows.append({"model": model_id, "test": f"pretrend_{group}_b{window['ban']}",
                             "description": f"Wald: {group} pre-period coefficients around "
                             f"{window['ban']} = 0", "terms": " ".join(pre),
                             **wald_test(coef, vcov, pre, n_clusters)})
            if post:
                b, se = linear_combination(coef, vcov, post)
                rows.append({"model": model_id, "test": f"postavg_{group}_b{window['ban']}",
                             "description": f"Mean of the {group} post-period coefficients "
                             f"around {window['ban']} (estimate, z-test)",
                             "terms": " ".join(post), "estimate": b, "std_error": se,
                             "p_value": float(2 * stats.norm.sf(abs(b / se)))})
                rows.append({"model": model_id, "test": f"post_{group}_b{window['ban']}",
                             "description": f"Wald: {group} post-period coefficients around "
                             f"{window['ban']} = 0", "terms": " ".join(post),
                             **wald_test(coef, vcov, post, n_clusters)})
    if len(all_pre) > 0:
        rows.append({"model": model_id, "test": "pretrend_joint",
                     "description": "Wald: all pre-period coefficients = 0",
                     "terms": " ".join(all_pre), **wald_test(coef, vcov, all_pre, n_clusters)})
    for row in rows:
        row["n_obs"] = int(fit._N)
        row["n_clusters"] = n_clusters
    return rows


def permutation_check(chain: pd.DataFrame, spec: dict, main_fit, main_terms: list[str],
                      main_groups: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The main model's treatment assigned to each other exporter in turn (IDN dropped).

    For every group g and ban b the statistic is the mean post-period coefficient, raw and
    studentised (t = mean / se). Its permutation p-value compares the treated exporter's
    |statistic| with the placebo exporters': p = (1 + #{|s_e| >= |s_IDN|}) / (1 + n), so the
    smallest attainable p is 1 / (1 + n). Returns (placebo statistics, p-values).
    """
    event = spec["event_study"]
    base = next(m for m in event["models"] if m["id"] == event["permutation"]["base_model"])
    rows = []
    coef, vcov = fit_vcov(main_fit)
    for group in main_groups:
        for window in base["windows"]:
            _, post = pre_post_terms(main_terms, group, window["ban"])
            b, se = linear_combination(coef, vcov, post)
            rows.append({"exporter": base["treated"], "group": group, "ban": window["ban"],
                         "role": "treated", "mean_post": b, "se": se, "t": b / se})
    drop = event["permutation"]["drop_exporters"]
    for exporter in event["exporters"]:
        if exporter in drop or exporter == base["treated"]:
            continue
        placebo = {**base, "id": f"perm_{exporter}", "treated": exporter,
                   "drop_exporters": drop}
        try:
            frame, terms, formula, groups = model_frame(chain, spec, placebo)
        except ValueError:
            continue  # no group with positive exports in every year: nothing to assign
        fit = fit_ppml(frame, formula, event["cluster"], event.get("pyfixest"))
        coef_e, vcov_e = fit_vcov(fit)
        for group in groups:
            for window in base["windows"]:
                _, post = pre_post_terms(terms, group, window["ban"])
                if not set(post) <= set(coef_e.index):
                    continue
                b, se = linear_combination(coef_e, vcov_e, post)
                rows.append({"exporter": exporter, "group": group, "ban": window["ban"],
                             "role": "placebo", "mean_post": b, "se": se, "t": b / se})
    table = pd.DataFrame(rows)
    return table, permutation_pvalues(table)


def permutation_pvalues(table: pd.DataFrame) -> pd.DataFrame:
    """Permutation p-values per (group, ban) from the treated and placebo statistics.

    p = (1 + #{placebo e: |s_e| >= |s_treated|}) / (1 + n), n placebo exporters, for the mean
    post-period coefficient (``p_perm_estimate``) and its t ratio (``p_perm_t``); the smallest
    attainable p is 1 / (1 + n) (Fisher's exact randomisation logic with the treated unit
    counted once; Conley & Taber 2011 motivate comparing one treated unit with its controls).
    """
    pvalues = []
    for (group, ban), part in table.groupby(["group", "ban"], sort=False):
        treated = part[part["role"] == "treated"].iloc[0]
        placebos = part[part["role"] == "placebo"]
        n = len(placebos)
        pvalues.append({
            "group": group, "ban": ban, "n_placebo_exporters": n,
            "placebo_exporters": " ".join(placebos["exporter"]),
            "treated_mean_post": treated["mean_post"], "treated_t": treated["t"],
            "p_perm_estimate": (1 + int((placebos["mean_post"].abs()
                                         >= abs(treated["mean_post"])).sum())) / (1 + n),
            "p_perm_t": (1 + int((placebos["t"].abs() >= abs(treated["t"])).sum())) / (1 + n),
            "smallest_attainable_p": 1 / (1 + n)})
    return pd.DataFrame(pvalues)


def variant_table(tests: pd.DataFrame, models: list[str], groups: list[str], bans: list[int]
                  ) -> pd.DataFrame:
    """One row per model x group x ban: the mean post-period coefficient and its SE, the mean
    anticipation coefficient and its SE, and the pre-trend Wald p-value (NaN where a model
    has no such term: the pre-announcement reference leaves no free pre-period year in the
    second window, the date placebo has other bans)."""
    indexed = tests.set_index(["model", "test"])
    rows = []
    for model in models:
        for group in groups:
            for ban in bans:
                def get(test: str, column: str, model: str = model, group: str = group,
                        ban: int = ban) -> float:
                    key = (model, f"{test}_{group}_b{ban}")
                    return float(indexed.loc[key, column]) if key in indexed.index else np.nan
                rows.append({"model": model, "group": group, "ban": ban,
                             "mean post": get("postavg", "estimate"),
                             "SE post": get("postavg", "std_error"),
                             "mean anticipation": get("anticipation", "estimate"),
                             "SE anticipation": get("anticipation", "std_error"),
                             "pre-trend p": get("pretrend", "p_value")})
    table = pd.DataFrame(rows)
    values = ["mean post", "mean anticipation", "pre-trend p"]
    return table[table[values].notna().any(axis=1)].reset_index(drop=True)


def treated_units(chain: pd.DataFrame, spec: dict, frame: pd.DataFrame, fit) -> pd.DataFrame:
    """How few units carry the event study: per treated group, the products, the partner dyads
    with any flow, and the share of the treated exporter's group exports that go to China."""
    event = spec["event_study"]
    main = next(m for m in event["models"] if m["id"] == "main")
    sample = frame.loc[fit._data.index]  # rows pyfixest kept (all-zero FE groups dropped)
    if len(sample) != fit._N:
        raise ValueError("pyfixest's estimation sample does not match the frame")
    rows = []
    for group, codes in event["groups"].items():
        own = chain[(chain["exporter"] == main["treated"]) & chain["hs6"].isin(codes)
                    & chain["partner"].isin(event["partners"])]
        by_partner = own.groupby("partner")["value_kusd"].sum().sort_values(ascending=False)
        total = by_partner.sum()
        rows.append({
            "group": group, "treated_exporter": main["treated"], "products": len(codes),
            "partner_dyads_with_flows": int((by_partner > 0).sum()),
            "share_to_china": float(by_partner.get(spec["china"], 0.0) / total),
            "largest_partners": ", ".join(f"{p} {v / total:.1%}"
                                          for p, v in by_partner.head(3).items()),
            "clusters_in_sample": int(sample["dyad"].nunique()),
            "treated_clusters_in_sample": int(
                sample.loc[sample["exporter"] == main["treated"], "dyad"].nunique())})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- size check
def simulate_flows(rng: np.random.Generator, exporters: list[str], partners: list[str],
                   codes: dict[str, str], years: list[int], china_share: float | None = None,
                   mean_log: float = 9.0, dispersion: float = 0.0, rho: float = 0.0
                   ) -> pd.DataFrame:
    """Flows under the null (no treatment effect), in the chain layout.

    ``log mu = a[e, k] + d[p, t]`` (+ log partner weight), a ~ N(mean_log, 0.5),
    d ~ N(0, 0.3); with ``china_share`` the first partner gets that share of every exporter's
    flows (the real treated exporter sends about 90% of its nickel to China). Zero draws have
    no row, as in BACI. The count given the mean:

    * ``dispersion = 0``: Poisson(mu);
    * ``dispersion = alpha > 0`` and ``rho = 0``: negative binomial NB2, Poisson(mu g) with
      g ~ Gamma(1/alpha, alpha), so Var = mu + alpha mu^2 (Cameron & Trivedi 2013, ch. 3);
    * ``rho > 0``: serially persistent overdispersion, Poisson(mu g_t) with
      ``log g_t = e_t - s^2/2``, ``e_t`` a stationary AR(1) in years within each exporter x
      partner x product cell, ``s^2 = log(1 + alpha)``: mean mu and the same variance
      function Var = mu + alpha mu^2 as NB2, and corr(e_t, e_t-1) = rho.
    """
    weights = np.full(len(partners), 1.0 / len(partners))
    if china_share is not None:
        weights = np.r_[china_share, np.full(len(partners) - 1,
                                             (1 - china_share) / (len(partners) - 1))]
    a = rng.normal(mean_log, 0.5, size=(len(exporters), len(codes)))
    d = rng.normal(0.0, 0.3, size=(len(partners), len(years))) + np.log(
        weights * len(partners))[:, None]
    mu = np.exp(a[:, None, :, None] + d[None, :, None, :])
    if dispersion > 0 and rho > 0:
        s2 = np.log1p(dispersion)
        e = np.empty(mu.shape)
        e[..., 0] = rng.normal(0.0, np.sqrt(s2), size=mu.shape[:-1])
        for t in range(1, len(years)):
            e[..., t] = rho * e[..., t - 1] + rng.normal(0.0, np.sqrt(s2 * (1 - rho**2)),
                                                         size=mu.shape[:-1])
        mu = mu * np.exp(e - s2 / 2)
    elif dispersion > 0:
        mu = mu * rng.gamma(1 / dispersion, dispersion, size=mu.shape)
    y = rng.poisson(mu)
    index = pd.MultiIndex.from_product([exporters, partners, list(codes), years],
                                       names=["exporter", "partner", "hs6", "year"])
    frame = pd.DataFrame({"value_kusd": y.reshape(-1).astype(float)}, index=index).reset_index()
    frame = frame[frame["value_kusd"] > 0]
    frame["stage"] = frame["hs6"].map(codes)
    frame["quantity_t"] = np.nan
    return frame[CHAIN_COLUMNS].reset_index(drop=True)


def overdispersion(fit, frame: pd.DataFrame, outcome: str = "value_kusd",
                   cell: tuple[str, ...] = ("exporter", "partner", "hs6")) -> dict[str, float]:
    """Overdispersion and serial persistence of a PPML fit's flows, to calibrate the size
    simulation. ``alpha``: the NB2 moment estimate ``sum[(y - mu)^2 - y] / sum mu^2``
    (Cameron & Trivedi 1990, J. Econometrics 46(3), the regression-based estimate without
    intercept); ``rho``: the first-order autocorrelation, within exporter x partner x product
    cells and over consecutive years, of ``log(y / mu)`` where the flow is positive in both
    years (the persistence of the multiplicative noise)."""
    data = frame.loc[fit._data.index].copy()
    data["mu"] = np.asarray(fit._Y_hat_response, dtype=float)
    y, mu = data[outcome].to_numpy(dtype=float), data["mu"].to_numpy()
    alpha = float(np.sum((y - mu) ** 2 - y) / np.sum(mu**2))
    data["e"] = np.where(y > 0, np.log(np.where(y > 0, y, 1.0) / mu), np.nan)
    data = data.sort_values([*cell, "year"])
    previous = data.groupby(list(cell))["e"].shift(1)
    consecutive = data.groupby(list(cell))["year"].diff() == 1
    pairs = pd.DataFrame({"e": data["e"], "lag": previous})[consecutive].dropna()
    rho = float(np.corrcoef(pairs["e"], pairs["lag"])[0, 1]) if len(pairs) > 2 else 0.0
    return {"alpha": alpha, "rho": rho, "pairs": len(pairs)}


def size_monte_carlo(replications: int = 200, seed: int = 20261129,
                     china_shares: tuple[float | None, ...] = (None, 0.9),
                     reference: int | list[int] = -2, anticipation: int = 1,
                     dgps: dict[str, dict] | None = None) -> pd.DataFrame:
    """Rejection rates at 5% under a true null of the main design's tests, on synthetic flows.

    Design: 6 exporters (one treated), 5 partners, one ore and two downstream codes, 2010-2024,
    the main model's windows, reference and anticipation years and fixed effects, CRV1 by
    exporter x partner (30 clusters, 5 of them treated). ``dgps``: name -> keyword arguments
    of :func:`simulate_flows` (default: Poisson only). Reports, for each DGP and partner
    concentration, the share of replications in which the ore pre-trend Wald test (chi2 and
    F(q, G-1)), the t-test of the pre-period coefficient nearest the reference and the mean
    post-period z-test reject at 5%.
    """
    exporters = ["IDN", "PHL", "MYS", "SGP", "THA", "VNM"]
    partners = ["CHN", "JPN", "KOR", "USA", "AUS"]
    codes = {"260400": "ore", "720260": "intermediate", "750120": "intermediate"}
    spec = {"years": [2010, 2024], "event_study": {
        "outcome": "value_kusd", "exporters": exporters, "partners": partners,
        "groups": {"ore": ["260400"], "down": ["720260", "750120"]},
        "fixed_effects": "exporter^hs6 + partner^year", "reference": reference,
        "anticipation": anticipation}}
    model = {"id": "mc", "treated": "IDN", "windows": [{"ban": 2014, "first": 2010, "last": 2016},
                                                       {"ban": 2020, "first": 2017, "last": 2024}]}
    dgps = dgps or {"poisson": {}}
    rng = np.random.default_rng(seed)
    rows = []
    for name, options in dgps.items():
        for share in china_shares:
            hits = {"wald_chi2": 0, "wald_f": 0, "t_single": 0, "post_mean": 0}
            for _ in range(replications):
                chain = simulate_flows(rng, exporters, partners, codes,
                                       list(range(2010, 2025)), share, **options)
                frame, terms, formula, _ = model_frame(chain, spec, model)
                fit = fit_ppml(frame, formula)
                coef, vcov = fit_vcov(fit)
                pre, post = pre_post_terms(terms, "ore", 2014)
                wald = wald_test(coef, vcov, pre, int(np.asarray(fit._G).ravel()[0]))
                hits["wald_chi2"] += wald["p_value"] < 0.05
                hits["wald_f"] += wald["p_f"] < 0.05
                hits["t_single"] += abs(coef[pre[-1]] / np.sqrt(vcov.loc[pre[-1], pre[-1]])
                                        ) > 1.96
                b, se = linear_combination(coef, vcov, post)
                hits["post_mean"] += abs(b / se) > 1.96
            rows.append({"dgp": name, **{k: v for k, v in options.items()},
                         "china_share": "equal" if share is None else share,
                         "replications": replications,
                         **{f"reject_{k}": v / replications for k, v in hits.items()}})
            _say(f"size Monte Carlo, {name}, China share {rows[-1]['china_share']}: "
                 f"{rows[-1]}")
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- dyad SYN variant
def hs07_dyad_flows(extract: pd.DataFrame, codes: list[str], members: tuple[str, ...],
                    china: str = "CHN") -> pd.DataFrame:
    """Each member's flows of ``codes`` in the HS07 extract, thousand USD.

    ``x_china`` (member -> China), ``m_china`` (China -> member), ``x_world`` and ``m_world``
    (with all partners the extract holds: 15 incl. China, no intra-ASEAN, so the "world" total is
    an undercount). Every member-year is present; no row is a zero.
    """
    rows = extract[extract["hs6"].isin(codes)]
    years = sorted(extract["year"].unique())
    index = pd.MultiIndex.from_product([list(members), years], names=["iso3", "year"])
    out = pd.DataFrame(index=index)
    exports = rows[rows["exporter"].isin(members)]
    imports = rows[rows["importer"].isin(members)]
    out["x_china"] = exports[exports["importer"] == china].groupby(["exporter", "year"])[
        "value_kusd"].sum().rename_axis(["iso3", "year"])
    out["m_china"] = imports[imports["exporter"] == china].groupby(["importer", "year"])[
        "value_kusd"].sum().rename_axis(["iso3", "year"])
    out["x_world"] = exports.groupby(["exporter", "year"])["value_kusd"].sum().rename_axis(
        ["iso3", "year"])
    out["m_world"] = imports.groupby(["importer", "year"])["value_kusd"].sum().rename_axis(
        ["iso3", "year"])
    return out.fillna(0.0).reset_index()


def hs92_dyad_flows(trade_hs6: pd.DataFrame, members: tuple[str, ...], years: list[int],
                    exclude: list[str]) -> pd.DataFrame:
    """Each member's chain flows from the HS92 table ``trade_hs6`` (codes of the chain map),
    ``exclude`` (gold bullion) dropped: ``x_china, m_china, x_world, m_world``, thousand USD."""
    rows = trade_hs6[trade_hs6["iso3"].isin(members) & trade_hs6["year"].isin(years)
                     & ~trade_hs6["hs6"].isin(exclude)
                     & trade_hs6["partner_group"].isin(["china", "world"])]
    sums = rows.groupby(["iso3", "year", "partner_group"])[["export_value", "import_value"]].sum()
    wide = sums.unstack("partner_group")
    index = pd.MultiIndex.from_product([list(members), years], names=["iso3", "year"])
    out = pd.DataFrame(index=index)
    for flow, column in (("x", "export_value"), ("m", "import_value")):
        for group in ("china", "world"):
            values = wide[(column, group)] if (column, group) in wide else pd.Series(dtype=float)
            out[f"{flow}_{group}"] = values.reindex(index).fillna(0.0)
    return out.reset_index()


def material_share(numerator: pd.Series, denominator: pd.Series, threshold: float) -> pd.Series:
    """numerator / denominator where denominator >= threshold (and > 0), else missing."""
    ok = (denominator >= threshold) & (denominator > 0)
    return (numerator / denominator.where(ok)).where(ok)


def dyad_syn(flows: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """U_out = x_china / x_world, U_in = m_china / m_world (raw shares, missing below the
    materiality threshold or at a zero denominator) and SYN = textbook coupling coordination
    with alpha = 1/2, D = sqrt(C T) = (U_out U_in)^(1/4) (METHODS.md section 3)."""
    out = flows[["iso3", "year"]].copy()
    out["u_out"] = material_share(flows["x_china"], flows["x_world"], threshold)
    out["u_in"] = material_share(flows["m_china"], flows["m_world"], threshold)
    out["syn"] = coupling_coordination(out["u_out"], out["u_in"], corrected=False)
    return out


def build_dyad_nickel(trade_hs6: pd.DataFrame, extract: pd.DataFrame, spec: dict,
                      members: tuple[str, ...] | None = None) -> pd.DataFrame:
    """ASEAN member-China dyad SYN with (``syn``) and without (``syn_base``) the HS07 nickel
    intermediates added to the HS92 chain flows. ``members``: the extract's exporters
    (``event_study.exporters`` of the spec, the ASEAN-10) when None.

    Base flows: ``trade_hs6`` (HS92, chain-map codes, gold bullion excluded). Additions: the HS07
    extract's flows of ``dyad.hs07_additions`` (codes absent from the HS92 table; nickel ore
    260400 is taken from HS92 only), member <-> China into the China numerators and member <->
    the extract's 15 partners into the world denominators.
    """
    members = tuple(spec["event_study"]["exporters"]) if members is None else members
    dyad = spec["dyad"]
    first, last = dyad["years"]
    years = list(range(first, last + 1))
    additions = [str(c) for c in dyad["hs07_additions"]]
    overlap = sorted(set(additions) & set(trade_hs6["hs6"]))
    if overlap:
        raise ValueError(f"HS07 additions {overlap} are already in the HS92 table: they would "
                         "be counted twice")
    base = hs92_dyad_flows(trade_hs6, members, years, [str(c) for c in dyad["exclude_hs6"]])
    add = hs07_dyad_flows(extract[extract["year"].isin(years)], additions, members)
    flows = base.merge(add, on=["iso3", "year"], how="left", suffixes=("_base", "_hs07"))
    flows = flows.fillna({c: 0.0 for c in flows.columns if c.endswith("_hs07")})
    for flow in ("x_china", "m_china", "x_world", "m_world"):
        flows[flow] = flows[f"{flow}_base"] + flows[f"{flow}_hs07"]
    threshold = float(dyad["materiality_kusd"])
    with_nickel = dyad_syn(flows, threshold)
    base_syn = dyad_syn(_base_view(flows), threshold)
    out = flows[["iso3", "year"]].copy()
    out["syn"] = with_nickel["syn"]
    out["syn_base"] = base_syn["syn"]
    out["u_out"], out["u_in"] = with_nickel["u_out"], with_nickel["u_in"]
    out["u_out_base"], out["u_in_base"] = base_syn["u_out"], base_syn["u_in"]
    flow_columns = [c for c in flows.columns if c not in ("iso3", "year")]
    return pd.concat([out, flows[flow_columns]], axis=1).sort_values(
        ["iso3", "year"]).reset_index(drop=True)


def _base_view(flows: pd.DataFrame) -> pd.DataFrame:
    view = flows[["iso3", "year"]].copy()
    for flow in ("x_china", "m_china", "x_world", "m_world"):
        view[flow] = flows[f"{flow}_base"]
    return view


def concordance_check(extract: pd.DataFrame, trade_hs6: pd.DataFrame, code: str,
                      members: tuple[str, ...], china: str = "CHN") -> pd.DataFrame:
    """A code in both extracts (nickel ore): member -> China exports in HS92 and HS07, and the
    share of the member's HS92 world exports that the HS07 extract's 15 partners cover."""
    hs07 = extract[(extract["hs6"] == code) & extract["exporter"].isin(members)]
    to_china = hs07[hs07["importer"] == china].groupby(["exporter", "year"])["value_kusd"].sum()
    to_15 = hs07.groupby(["exporter", "year"])["value_kusd"].sum()
    hs92 = trade_hs6[(trade_hs6["hs6"] == code) & trade_hs6["iso3"].isin(members)]
    hs92 = hs92.pivot_table(index=["iso3", "year"], columns="partner_group",
                            values="export_value", aggfunc="sum")
    years = sorted(extract["year"].unique())
    index = pd.MultiIndex.from_product([list(members), years], names=["iso3", "year"])
    out = pd.DataFrame(index=index)
    out["hs07_to_china"] = to_china.rename_axis(["iso3", "year"]).reindex(index).fillna(0.0)
    out["hs92_to_china"] = hs92.get("china", pd.Series(dtype=float)).reindex(index).fillna(0.0)
    out["hs07_to_15_partners"] = to_15.rename_axis(["iso3", "year"]).reindex(index).fillna(0.0)
    out["hs92_to_world"] = hs92.get("world", pd.Series(dtype=float)).reindex(index).fillna(0.0)
    out = out.reset_index()
    return out[(out[["hs07_to_china", "hs92_to_china", "hs92_to_world"]] > 0).any(axis=1)]


# --------------------------------------------------------------------------- figures
def _policy_x(date: str) -> float:
    """Position of a date on an axis whose bars are centred on the years: year - 0.5 + day
    fraction (so 2014-01-12 sits just right of the 2013/2014 boundary)."""
    when = pd.Timestamp(date)
    return when.year - 0.5 + (when.dayofyear - 1) / 365.0


def plot_stage_mix(mix: pd.DataFrame, spec: dict, figures: Path) -> None:
    """Stacked bars of each figure exporter's nickel exports to China by stage, policy dates
    marked, and the downstream share of the first exporter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exporters = spec["figure_exporters"]
    colours = {"ore": "#8c6d31", "intermediate": "#3182bd", "refined": "#31a354"}
    fig, axes = plt.subplots(len(exporters) + 1, 1, figsize=(10, 3.3 * (len(exporters) + 1)),
                             sharex=True)
    for ax, exporter in zip(axes, exporters, strict=False):
        part = mix[mix["exporter"] == exporter].set_index("year")
        bottom = np.zeros(len(part))
        for stage in STAGES:
            values = part[stage].to_numpy() / 1e6
            ax.bar(part.index, values, bottom=bottom, color=colours[stage], label=stage,
                   width=0.8)
            bottom += values
        ax.set_ylabel("USD bn")
        ax.set_ylim(0, max(bottom.max(), 1e-9) * 1.08)
        ax.set_title(f"{exporter}: nickel exports to China by stage (BACI HS07, current USD)")
        ax.grid(alpha=0.3, axis="y")
    share = mix[mix["exporter"] == exporters[0]].set_index("year")["downstream_share"]
    axes[-1].plot(share.index, share.to_numpy() * 100, marker="o", color="#08519c")
    axes[-1].set_ylim(0, 105)
    axes[-1].set_ylabel("% of nickel exports to China")
    axes[-1].set_title(f"{exporters[0]}: downstream share (intermediate + refined) of nickel "
                       "exports to China")
    axes[-1].grid(alpha=0.3)
    for ax in axes:
        for number, event in enumerate(spec["policy_dates"]):
            ax.axvline(_policy_x(event["date"]), color="#d94801", ls="--", lw=1,
                       label=f"{event['date']}: {event['label']}" if ax is axes[0] else None)
            if ax is axes[-1]:
                ax.text(_policy_x(event["date"]) + 0.08, 8 + 14 * number, event["label"],
                        fontsize=7, color="#d94801")
    axes[0].legend(fontsize=8, loc="upper left")
    axes[-1].set_xticks(sorted(mix["year"].unique()))
    axes[-1].tick_params(axis="x", labelrotation=45)
    fig.tight_layout()
    save_figure(fig, figures / "nickel_stage_mix")


def plot_event_study(models: pd.DataFrame, spec: dict, figures: Path) -> None:
    """Event-time coefficients with 95% CIs (CRV1 by exporter x partner), by group and ban;
    the main model in colour, the Philippines placebo in grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    event = spec["event_study"]
    main = next(m for m in event["models"] if m["id"] == "main")
    reference = main.get("reference", event["reference"])
    groups = list(event["groups"])
    fig, axes = plt.subplots(len(groups), len(main["windows"]),
                             figsize=(5.5 * len(main["windows"]), 3.8 * len(groups)),
                             squeeze=False)
    styles = {"main": ("#08519c", "IDN (main)", 0.0), "placebo_phl": ("#969696", "PHL placebo",
                                                                       0.15)}
    for row, group in enumerate(groups):
        for col, window in enumerate(main["windows"]):
            ax = axes[row][col]
            for model_id, (colour, label, shift) in styles.items():
                part = models[models["model"] == model_id].set_index("term")
                ks, b, lo, hi = [], [], [], []
                for year in range(window["first"], window["last"] + 1):
                    k = year - window["ban"]
                    names = [event_term(group, window["ban"], k),
                             anticipation_term(group, window["ban"], k)]
                    term = next((n for n in names if n in part.index), None)
                    if k in reference_times(window, reference):
                        point = (0.0, 0.0, 0.0)
                    elif term is not None:
                        point = tuple(part.loc[term, ["estimate", "ci_low", "ci_high"]])
                    else:
                        continue
                    ks.append(k)
                    b.append(point[0])
                    lo.append(point[1])
                    hi.append(point[2])
                if not ks:
                    continue
                x = np.asarray(ks, dtype=float) + shift
                ax.errorbar(x, b, yerr=[np.subtract(b, lo), np.subtract(hi, b)], fmt="o-",
                            color=colour, ecolor=colour, alpha=0.9, capsize=2, label=label)
            ax.axhline(0, color="black", lw=0.8)
            ax.axvline(-0.5, color="#d94801", ls="--", lw=1)
            omitted = ", ".join(str(k) for k in reference_times(window, reference))
            ax.set_title(f"{group}: ban of {window['ban']} (ref. k = {omitted}; k < 0 "
                         "nearest the ban: anticipation)")
            ax.set_xlabel("event time k (years since the ban)")
            ax.set_ylabel("PPML coefficient (log points)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("Event study of Indonesia's nickel-ore export bans: exporter x product and "
                 "partner x year FE, 95% CI clustered by exporter x partner", fontsize=10)
    fig.tight_layout()
    save_figure(fig, figures / "nickel_event_study")


# --------------------------------------------------------------------------- I/O edge
def _csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g", lineterminator="\n"))


def read_extract(raw_dir: Path = config.DATA_RAW, registry: Path = config.REGISTRY_FILE,
                 name: str = "baci_hs07_asean", years: tuple[int, int] = (2010, 2024)
                 ) -> pd.DataFrame:
    """The parsed HS07 extract, after re-checking its sha256 against the registry (parsed once,
    then read from the parse cache keyed by that hash: :func:`analysis.data.cache.parsed`)."""
    from analysis.data import cache

    source = source_by_name(load_registry(registry), name)
    path = raw_path(source, raw_dir)
    verify_sha256(path, source.sha256)
    return cache.parsed(name, source.sha256, parsers.parse_baci_hs07_extract, path, *years)


def check_extract(extract: pd.DataFrame, spec: dict, spec_path: Path) -> None:
    """The spec must match the extract: every stage-map code present, every partner listed."""
    missing = sorted(set(stage_map(spec)["hs6"]) - set(extract["hs6"]))
    if missing:
        raise DataError(spec_path, f"stage-map codes absent from the extract: {missing}",
                        column="hs6")
    event = spec["event_study"]
    outside = sorted(set(extract.loc[extract["exporter"].isin(event["exporters"]), "importer"])
                     - set(event["partners"]) - set(event["exporters"]))
    if outside:
        raise DataError(spec_path, f"the extract has partners the spec does not list: {outside}",
                        column="partners")


def chain_outputs(extract: pd.DataFrame, spec: dict, processed: Path, outputs: Path
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """nickel_chain.parquet, the stage-mix and downstream-share tables and the stage figure."""
    tables, figures = outputs / "tables", outputs / "figures"
    event = spec["event_study"]
    chain = build_nickel_chain(extract, stage_map(spec))
    write_parquet(chain, processed / "nickel_chain.parquet")
    _say(f"nickel_chain: {len(chain)} rows, {chain['exporter'].nunique()} exporters")
    years = list(range(spec["years"][0], spec["years"][1] + 1))
    mix = stage_mix(chain, spec["figure_exporters"], spec["china"], years)
    wide = mix.assign(**{s: mix[s] / 1e3 for s in [*STAGES, "total"]})
    wide = wide.rename(columns={"ore": "ore (USD m)", "intermediate": "intermediate (USD m)",
                                "refined": "refined (USD m)", "total": "total (USD m)",
                                "downstream_share": "downstream share"})
    frame_table(wide, tables / "nickel_stage_mix",
                "Nickel exports to China by stage, USD million (CEPII BACI HS07 V202601, "
                "third-party extract); downstream share = (intermediate + refined) / total",
                float_format="%.1f")
    _csv(mix, outputs / "nickel_stage_mix.csv")
    all_mix = stage_mix(chain, list(event["exporters"]), spec["china"], years)
    shares = all_mix.pivot(index="year", columns="exporter", values="downstream_share")
    shares = shares.loc[:, all_mix.groupby("exporter")["total"].sum().gt(1000).reindex(
        shares.columns)].reset_index()
    shares.columns.name = None
    frame_table(shares, tables / "nickel_downstream_share",
                "Downstream share (intermediate + refined) of each ASEAN exporter's nickel "
                "exports to China, by year (exporters with over USD 1 m in 2010-2024; blank: "
                "no nickel exports to China that year)", float_format="%.3f")
    plot_stage_mix(mix, spec, figures)
    return chain, mix


def event_study_outputs(chain: pd.DataFrame, spec: dict, processed: Path, outputs: Path
                        ) -> dict[str, pd.DataFrame]:
    """Every event-study model of the spec, its frame, tests, the permutation check, tables
    and the figure. ``outputs/nickel_event_study.csv`` holds the main model."""
    tables, figures = outputs / "tables", outputs / "figures"
    event = spec["event_study"]
    _say("PPML event study (pyfixest fepois), one fit per model")
    model_rows, test_rows, fits = [], [], {}
    for model in event["models"]:
        frame, terms, formula, groups = model_frame(chain, spec, model)
        fit = fit_ppml(frame, formula, event["cluster"], event.get("pyfixest"))
        fits[model["id"]] = (fit, frame, terms, groups)
        name = "nickel_event_frame" + ("" if model["id"] == "main" else f"_{model['id']}")
        write_parquet(frame, processed / f"{name}.parquet")
        tidy = tidy_fit(fit, formula).assign(model=model["id"], label=model["label"])
        model_rows.append(tidy)
        test_rows += model_tests(fit, terms, groups, model["windows"], model["id"])
        _say(f"  {model['id']}: {len(terms)} terms, N = {fit._N}, groups {groups}")
    models = pd.concat(model_rows, ignore_index=True)
    main_fit, main_frame, main_terms, main_groups = fits["main"]
    main_table = models.loc[models["model"] == "main", EVENT_COLUMNS]
    _csv(main_table, outputs / "nickel_event_study.csv")
    _csv(models[["model", "label", "term", "estimate", "std_error", "p_value", "ci_low",
                 "ci_high", "n_obs", "n_clusters", "formula"]],
         outputs / "nickel_event_models.csv")

    _say("permutation check: the treatment assigned to each other exporter")
    placebo_stats, perm = permutation_check(chain, spec, main_fit, main_terms, main_groups)
    _csv(placebo_stats, outputs / "nickel_placebo_exporters.csv")
    for row in perm.to_dict("records"):
        test_rows.append({"model": "permutation", "test": f"perm_{row['group']}_b{row['ban']}",
                          "description": "Permutation across placebo exporters "
                          f"({row['placebo_exporters'] or 'none'}): share with |t| >= IDN's",
                          "estimate": row["treated_mean_post"], "p_value": np.nan,
                          "p_perm_estimate": row["p_perm_estimate"],
                          "p_perm_t": row["p_perm_t"],
                          "n_placebo": row["n_placebo_exporters"],
                          "smallest_attainable_p": row["smallest_attainable_p"]})
    tests = pd.DataFrame(test_rows)
    _csv(tests, outputs / "nickel_event_tests.csv")
    units = treated_units(chain, spec, main_frame, main_fit)
    _csv(units, outputs / "nickel_treated_units.csv")
    calibration = overdispersion(main_fit, main_frame, event["outcome"])
    _csv(pd.DataFrame([calibration]), outputs / "nickel_overdispersion.csv")
    _say(f"overdispersion of the main fit (size-simulation calibration): {calibration}")

    variants = variant_table(tests, [m["id"] for m in event["models"]], main_groups,
                             [w["ban"] for w in next(m for m in event["models"]
                                                     if m["id"] == "main")["windows"]])
    _csv(variants, outputs / "nickel_variants.csv")
    frame_table(variants, tables / "nickel_variants",
                "Every event-study model of the spec side by side: the mean post-ban "
                "coefficient (log points, SE clustered by exporter x partner) of IDN's ore and "
                "downstream exports around each ban, the mean anticipation coefficient (the "
                "rush year(s) before the ban) and the pre-trend Wald p (chi2). main: reference "
                "k = -2, anticipation k = -1; ref_k1: the first build's reference k = -1; "
                "ref_pre_announcement: the years before each announcement pooled as the "
                "reference; spillover_phl and no_asean_to_china: comparisons without the "
                "flows the ban may have moved (docs/nickel.md)", float_format="%.3f")
    display = models[models["model"].isin(["main", "placebo_phl"])].pivot(
        index="term", columns="model", values=["estimate", "std_error", "p_value"])
    display.columns = [f"{m} {v}" for v, m in display.columns]
    display = display.reindex(main_terms).reset_index()
    frame_table(display, tables / "nickel_event_study",
                "PPML event study of Indonesia's nickel-ore export bans: event-time "
                "coefficients (log points) for IDN's ore and downstream exports, exporter x "
                "product and partner x year FE, SE clustered by exporter x partner (pyfixest "
                "CRV1, normal p-values); the PHL columns assign the same bans to the "
                "Philippines (IDN dropped)")
    test_view = tests[["model", "test", "description", "wald", "q", "df", "p_value", "p_f",
                       "estimate", "std_error", "p_perm_t"]].copy()
    frame_table(test_view, tables / "nickel_event_tests",
                "Pre-trend, post-period and placebo tests of the nickel event study (Wald tests "
                "on clustered covariances with q restrictions and rank df: chi2(df) and "
                "F(df, G-1) p-values; permutation p-values across placebo exporters)")
    frame_table(units, tables / "nickel_treated_units",
                "How few units carry the event study: the treated exporter's product groups, "
                "partner dyads with flows, and China's share of the group's value, 2010-2024")
    plot_event_study(models, spec, figures)
    _say("main event study:\n" + main_table[["term", "estimate", "std_error", "p_value"]]
         .to_string(index=False))
    _say("tests:\n" + tests[["model", "test", "wald", "q", "df", "p_value", "estimate",
                              "p_perm_t"]].to_string(index=False))
    return {"models": models, "tests": tests, "placebo": placebo_stats, "units": units,
            "main": main_table}


def dyad_outputs(extract: pd.DataFrame, spec: dict, processed: Path, outputs: Path
                 ) -> pd.DataFrame:
    """dyad_nickel.parquet, its table and the HS92/HS07 concordance check on nickel ore."""
    tables = outputs / "tables"
    _say("dyad SYN with the HS07 nickel intermediates")
    trade_hs6 = read_parquet(processed / "trade_hs6.parquet")
    dyad = build_dyad_nickel(trade_hs6, extract, spec)
    write_parquet(dyad, processed / "dyad_nickel.parquet")
    view = dyad[dyad["iso3"].isin(spec["figure_exporters"])][
        ["iso3", "year", "syn_base", "syn", "u_out_base", "u_out", "u_in_base", "u_in",
         "x_china_hs07", "x_world_hs07"]]
    frame_table(view, tables / "nickel_dyad_syn",
                "Dyad SYN with China (textbook CCD on raw shares, gold excluded, USD 1 m "
                "materiality) without (base) and with the HS07 nickel intermediates "
                "(720260, 750110, 750120, 750210; flows in thousand USD)")
    concordance = concordance_check(extract, trade_hs6, "260400",
                                    tuple(spec["event_study"]["exporters"]), spec["china"])
    _csv(concordance, outputs / "nickel_concordance_260400.csv")
    frame_table(concordance[concordance["iso3"].isin(spec["figure_exporters"])],
                tables / "nickel_concordance",
                "Nickel ore 260400, member -> China, in the HS92 (V202401b) and HS07 (V202601) "
                "extracts, and the 15 HS07 partners' coverage of HS92 world exports "
                "(thousand USD)", float_format="%.0f")
    return dyad


def run(raw_dir: Path = config.DATA_RAW, processed: Path = config.DATA_PROCESSED,
        outputs: Path = config.OUTPUTS, spec_path: Path = config.SPECS / "nickel.yaml",
        registry: Path = config.REGISTRY_FILE) -> dict[str, pd.DataFrame]:
    """Build every output of the stage (see the module docstring)."""
    spec = load_nickel_spec(spec_path, registry)
    region = load_region()
    outside = [c for c in spec["event_study"]["exporters"] if c not in region.members]
    if spec["china"] != region.focal or outside:
        raise DataError(spec_path, f"the nickel case needs {spec['china']} as the region's focal "
                        f"country and the exporters among its members ({', '.join(outside)} "
                        f"are not); region {region.name} ({display_path(region.path)}) has "
                        f"focal {region.focal}: run the nickel stage with a region that "
                        "contains China and ASEAN", entry="china")
    _say("parsing the BACI HS07 extract (value thousand USD, quantity tonnes)")
    extract = read_extract(raw_dir, registry, spec["source"], tuple(spec["years"]))
    check_extract(extract, spec, spec_path)
    chain, mix = chain_outputs(extract, spec, processed, outputs)
    idn = mix[(mix["exporter"] == "IDN") & mix["year"].isin(spec["table_years"])]
    _say("IDN -> CHN by stage (USD m):\n" + (idn.set_index("year")[[*STAGES, "total"]] / 1e3)
         .round(1).to_string())
    results = event_study_outputs(chain, spec, processed, outputs)
    dyad = dyad_outputs(extract, spec, processed, outputs)
    return {"chain": chain, "mix": mix, "dyad": dyad, **results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.stages.nickel",
        description="The nickel case (METHODS.md section 8): nickel chain by stage from the "
        "BACI HS07 extract, a PPML event study of Indonesia's ore-export bans with pre-trend, "
        "placebo and permutation checks, and the dyad SYN with the HS07 nickel intermediates. "
        "Needs `make data` and `make panel` first. Specification: specs/nickel.yaml.")
    parser.add_argument("--spec", type=Path, default=config.SPECS / "nickel.yaml")
    parser.add_argument("--size-mc", type=int, metavar="R", default=0,
                        help="instead of the stage, print the rejection rates under a true "
                        "null of the event-study tests on R synthetic replications")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    if args.size_mc:
        print(size_simulation(args.size_mc, args.spec).to_string(index=False), flush=True)
        return 0
    return run_stage("nickel", lambda: run(spec_path=args.spec), verbose=args.verbose or None,
                     summary=lambda out: "event study, placebos and dyad SYN -> "
                     f"{display_path(config.OUTPUTS)}/nickel_event_study.csv, "
                     f"{display_path(config.TABLES)}/nickel_*")


def size_simulation(replications: int, spec_path: Path = config.SPECS / "nickel.yaml"
                    ) -> pd.DataFrame:
    """``--size-mc``: the size Monte Carlo under Poisson, negative binomial and persistent
    overdispersion calibrated on the real main fit (:func:`overdispersion`), with the main
    model's reference and anticipation years."""
    spec = load_nickel_spec(spec_path)
    extract = read_extract(config.DATA_RAW, config.REGISTRY_FILE, spec["source"],
                           tuple(spec["years"]))
    chain = build_nickel_chain(extract, stage_map(spec))
    event = spec["event_study"]
    main = next(m for m in event["models"] if m["id"] == "main")
    frame, _, formula, _ = model_frame(chain, spec, main)
    calibration = overdispersion(fit_ppml(frame, formula, event["cluster"],
                                          event.get("pyfixest")), frame, event["outcome"])
    _say(f"calibration on the real main fit: {calibration}")
    alpha, rho = calibration["alpha"], max(calibration["rho"], 0.0)
    dgps = {"poisson": {}, "negative binomial": {"dispersion": alpha},
            "NB-like, AR(1) persistence": {"dispersion": alpha, "rho": rho}}
    return size_monte_carlo(replications, reference=main.get("reference", event["reference"]),
                            anticipation=int(main.get("anticipation",
                                                      event.get("anticipation", 0))),
                            dgps=dgps)


if __name__ == "__main__":
    sys.exit(main())
