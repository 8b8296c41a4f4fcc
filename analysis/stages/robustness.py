"""Stage 5, robustness: every check in ``specs/robustness.yaml`` as a variant of the base model.

Each entry of the spec is data; :func:`prepare_variant` turns its keys (replace, lag, winsorize,
drop_years, drop_countries, keep_countries, double_demean, panel) into an estimation frame, and
:func:`run_check` adds the three kinds that need more than one fit: the leave-one-country-out
jackknife, randomisation inference (permutations) and IV. Adding a check is one entry in the
spec. Writes ``outputs/robustness.csv``, ``outputs/tables/robustness.*``, the heterogeneity
tables, the specification curve and the leave-one-out figure.

A check whose spec entry, model, input files and code are unchanged is read back from
``data/cache/robustness`` (:func:`check_key`, :mod:`analysis.data.cache`), so editing one entry
re-estimates that entry only; the checks to estimate are shared between this process and a
worker process (:func:`run_jobs`). Randomisation inference runs on arrays
(:class:`PermutationDesign`). The outputs are the same bytes either way.

The Hansen (1999) panel threshold model is not implemented: no implementation in this
environment could be validated against a published result, so it is reported as not done.

Run ``python -m analysis.stages.robustness --help``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from linearmodels.panel.utility import AbsorbingEffectError
from tqdm import tqdm

from analysis import config
from analysis.data import cache, specs
from analysis.data.io import (
    DataError,
    add_verbose_argument,
    atomic_write_text,
    block_interrupts,
    current_log,
    display_path,
    run_stage,
    worker_initializer,
)
from analysis.econometrics import inference
from analysis.econometrics.estimation import estimate
from analysis.econometrics.moderated import (
    design_summary,
    load_model_spec,
    load_sizes,
    model_variables,
)
from analysis.econometrics.variants import (
    EXTRA,
    FAST_RI_KEYS,
    PermutationDesign,
    grid_values,
    load_robustness_spec,
    model_for,
    panel_files,
    permutation_grid,
    permuted_grids,
    prepare_variant,
    ri_mode,
    variant_panel,
    variant_shares,
)
from analysis.publish.figures import save_figure
from analysis.publish.tables import TERM_LABELS, frame_table


# --------------------------------------------------------------------------- checks
def extra_regressors(frame: pd.DataFrame) -> list[str]:
    """The columns a check added as extra regressors (prefix ``EXTRA``), in frame order."""
    return [c for c in frame.columns if c.startswith(EXTRA)]


SIZE_BAND = (0.025, 0.075)


def ri_size(check: dict, sizes: dict | None, design: dict | None = None) -> float | None:
    """The recorded size at 5% of a randomisation-inference check, or None when it was not
    measured, was measured for another permutation (variable, scheme, term, draws differ) or
    at another design (``design``: N, G, T and clusters of the main estimation sample)."""
    if not sizes:
        return None
    if design is not None:
        recorded = sizes.get("design", {})
        if any(recorded.get(k) != design[k] for k in ("n_obs", "n_clusters", "n_periods",
                                                     "clusters")):
            return None
    entry = (sizes.get("ri") or {}).get(check["id"])
    if entry is None:
        return None
    permute = check["permute"]
    same = (entry.get("variable") == permute["variable"]
            and entry.get("scheme") == permute["scheme"]
            and entry.get("term", permute["variable"]) == permute.get("term",
                                                                       permute["variable"]))
    return float(entry["size"]) if same else None


def check_kind(check: dict, sizes: dict | None = None, design: dict | None = None) -> str:
    """variant (enters the specification curve), jackknife, ri (randomisation inference whose
    size at this design the bench measured inside :data:`SIZE_BAND`), placebo (a permutation
    check whose size is outside the band or was not measured at this design) or iv."""
    if check.get("jackknife"):
        return "jackknife"
    if check.get("permute"):
        size = ri_size(check, sizes, design)
        return "ri" if size is not None and SIZE_BAND[0] <= size <= SIZE_BAND[1] else "placebo"
    if check.get("iv"):
        return "iv"
    return "variant"


def _row(check: dict, result, terms: list[str], suffix: str = "", label: str | None = None,
         frame: pd.DataFrame | None = None) -> dict:
    row = {"check": check["id"] + suffix, "label": label or check["label"],
           "group": check.get("group", ""), "kind": check_kind(check), "n_obs": result.n_obs,
           "n_clusters": result.n_clusters, "within_r2": result.within_r2}
    for term in terms:
        if term not in result.table.index:  # a check on a smaller model (e.g. M1)
            row |= {f"b[{term}]": np.nan, f"se[{term}]": np.nan, f"p[{term}]": np.nan,
                    f"p_wcr[{term}]": np.nan, f"bstd[{term}]": np.nan}
            continue
        t = result.table.loc[term]
        row |= {f"b[{term}]": t["estimate"], f"se[{term}]": t["std_error"],
                f"p[{term}]": t["p_value"], f"p_wcr[{term}]": t["p_wcr"]}
        if frame is not None:
            row[f"bstd[{term}]"] = t["estimate"] * standardiser(frame, term, result.dependent)
    return row


def standardiser(frame: pd.DataFrame, term: str, dependent: str) -> float:
    """sd(term) / sd(dependent) on the estimation sample: multiplies a coefficient into the
    effect of a one-sd change in the term, in sd of the dependent variable, so that variants
    measured in different units (TC in 0-100, GPR on other scales) compare on one axis."""
    return float(frame[term].std() / frame[dependent].std())


def crv1_t(frame: pd.DataFrame, dependent: str, regressors: list[str], terms: list[str],
           entity: str = "iso3", cluster: str = "iso3") -> dict[str, float]:
    """CRV1 t statistics (pyfixest's small-sample factor) of ``terms`` in the two-way FE model."""
    wide = inference.partial_out_fixed_effects(frame, [dependent, *regressors], [entity, "year"])
    X, y = wide[regressors].to_numpy(), wide[dependent].to_numpy()
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    n_abs = inference.count_absorbed_parameters(frame, [entity, "year"], cluster)
    V = inference.crv1_vcov(X, y - X @ beta, frame[cluster].to_numpy(), n_absorbed=n_abs)
    idx = {t: regressors.index(t) for t in terms}
    return {t: float(beta[i] / np.sqrt(V[i, i])) for t, i in idx.items()}


def permutation_test(panel: pd.DataFrame, check: dict, model: dict, variable: str, scheme: str,
                     draws: int, seed: int, terms: list[str], entity: str = "iso3",
                     cluster: str = "iso3", engine: str = "auto",
                     return_t: bool = False) -> dict[str, float]:
    """Randomisation-inference p-values that respect the data's dependence (METHODS.md sec. 6).

    The grid of the variable over the estimation sample's countries and window
    (:func:`permutation_grid`; after the check's ``replace``) is permuted as a whole
    (:func:`permuted_grids`: whole country paths or whole years of the cross-section).

    * **Main effect** (``terms == [variable]``): the permuted grid replaces the variable
      everywhere and the check's estimation frame is rebuilt as :func:`prepare_variant` builds
      it (complete rows, centring, interaction terms recomputed in every draw): the sharp null
      that the variable has no effect at all. Use it for a variable that enters one term only
      (GPR in M1).
    * **Interaction** (``terms == [interaction]``, an interaction containing the variable):
      only that interaction is rebuilt, from the permuted moderator paths (centred on the
      draw's sample) times the other factors' observed values; the variable's own column and
      every other term keep their observed values, so the main effects' design is held fixed
      and the null is about the interaction, not about the variable as a whole. Array engine
      only.

    A permuted value that is missing drops that row from the draw's sample, as missing data
    do. Statistic: the CRV1 t (studentised; Chung & Romano 2013, Ann. Stat. 41(2); DiCiccio &
    Romano 2017, JASA 112), p = (1 + #{|t*| >= |t|}) / (1 + number of draws), two-sided.

    ``engine="pandas"`` rebuilds each draw's frame with :func:`prepare_variant` and fits it
    with :func:`crv1_t`; ``engine="numpy"`` (:class:`PermutationDesign`) does the same steps
    on arrays, and all draws that share an estimation sample in one block. The two differ only
    by rounding, so they count the same draws: a draw counts when ``|t*| >= |t| (1 - 1e-12)``.
    ``tests/test_iv_ri.py`` checks both engines draw by draw. ``"auto"`` takes numpy when the
    check uses only the keys it implements (:data:`FAST_RI_KEYS`), else pandas. ``return_t``:
    also return the observed and permuted t statistics.
    """
    rng = np.random.default_rng(seed)
    regressors = [*model["terms"], *model["controls"]]
    interactions = {ri_mode(model, variable, t) for t in terms}
    if len(interactions) != 1:
        raise ValueError("test either the variable itself or one interaction containing it")
    interaction = interactions.pop()
    if engine == "auto":
        engine = "numpy" if set(check) <= FAST_RI_KEYS else "pandas"
    if interaction and engine != "numpy":
        raise DataError(Path(check["id"]), "randomisation inference of an interaction runs on "
                        f"the array engine, which does not implement "
                        f"{sorted(set(check) - FAST_RI_KEYS)}")
    source = (check.get("replace") or {}).get(variable, variable)
    frame = prepare_variant(panel, check, model, entity)
    grid, rows, cols = permutation_grid(panel, frame, source, entity)
    grids = permuted_grids(grid, scheme, draws, rng)
    if engine == "numpy":
        design = PermutationDesign(panel, check, model, variable, terms, entity, cluster,
                                   interaction=interaction)
        observed_t = design.t_stats(design.observed_values()[None, :])[0]
        observed = dict(zip(terms, observed_t, strict=True))
        values = np.stack([grid_values(g, rows, cols) for g in grids]) if grids else \
            np.empty((0, len(panel)))
        t_perm = design.t_stats(values)
    elif engine == "pandas":
        observed = crv1_t(frame, model["dependent"], regressors, terms, entity, cluster)
        t_perm = np.empty((len(grids), len(terms)))
        for b, permuted_grid in enumerate(grids):
            permuted = panel.copy()
            permuted[source] = grid_values(permuted_grid, rows, cols)
            sample = prepare_variant(permuted, check, model, entity)
            t = crv1_t(sample, model["dependent"], regressors, terms, entity, cluster)
            t_perm[b] = [t[term] for term in terms]
    else:
        raise ValueError(f"unknown engine {engine!r}: use auto, numpy or pandas")
    p = {}
    for i, term in enumerate(terms):
        hits = int(np.sum(np.abs(t_perm[:, i]) >= abs(observed[term]) * (1 - 1e-12)))
        p[term] = (hits + 1) / (len(grids) + 1)
    if return_t:
        return {"p": p, "t": observed, "t_perm": t_perm}
    return p


def iv_estimate(frame: pd.DataFrame, model: dict, endogenous: str, instrument: str,
                panel: pd.DataFrame, entity: str = "iso3", cluster: str = "iso3",
                min_f: float = 10.0) -> dict:
    """2SLS with two-way FE, CRV1 by country, and weak-instrument diagnostics.

    The endogenous variable and every model term containing it are instrumented by the
    (centred) instrument and the same terms with the instrument in its place. FE are
    partialled out of every variable (FWL holds for 2SLS); the controls and the other terms
    are included exogenous regressors. Reports, per endogenous term, the cluster-robust
    first-stage F and the Sanderson–Windmeijer conditional F
    (:func:`analysis.econometrics.inference.first_stage_f`, :func:`~analysis.econometrics.inference.sanderson_windmeijer_f`),
    and an Anderson–Rubin test (F(q, G-1)): with one endogenous regressor of ``H0: beta = 0``
    plus the 95% AR confidence set by grid inversion; with several, the joint test that all
    endogenous coefficients are 0. SEs: CRV1 with pyfixest's factor ``G/(G-1)(N-1)/(N-K)``;
    p-values from t(G-1).

    With one endogenous regressor and one instrument: the exact AR confidence set
    (:func:`analysis.econometrics.inference.anderson_rubin_closed_form`: a bounded interval, the union of
    two rays or the whole line), the first stage (the instrument's coefficient: its sign says
    which way the instrument moves the regressor) and the reduced form (the instrument's
    coefficient in the outcome equation; with one instrument its t^2 is the AR statistic of
    beta = 0), and the OLS estimate on the same sample for comparison.

    Status: with one endogenous regressor, "identified" if F >= ``min_f`` and the AR set is
    bounded, else "not informative: weak instrument ..."; with several, "not identified" when
    the smallest SW F is below ``min_f`` (Staiger & Stock's rule of thumb, applied to the
    conditional F as SW do).
    """
    from scipy import stats

    data = frame.merge(panel[[entity, "year", instrument]].rename(
        columns={instrument: "_z"}), on=[entity, "year"], how="left").dropna(subset=["_z"])
    data["_z"] = data["_z"] - data["_z"].mean()
    endog_terms = [t for t in model["terms"] if endogenous in t.split(":")]
    exog_terms = [t for t in model["terms"] if t not in endog_terms] + model["controls"]
    z_terms = []
    for term in endog_terms:
        name = ":".join("_z" if f == endogenous else f for f in term.split(":"))
        data[name] = np.prod([data[f] for f in name.split(":")], axis=0)
        z_terms.append(name)
    cols = [model["dependent"], *endog_terms, *exog_terms, *z_terms]
    wide = inference.partial_out_fixed_effects(data, cols, [entity, "year"])
    clusters = data[cluster].to_numpy()
    n_abs = inference.count_absorbed_parameters(data, [entity, "year"], cluster)
    y, E = wide[model["dependent"]].to_numpy(), wide[endog_terms].to_numpy()
    W, Z = wide[exog_terms].to_numpy(), wide[z_terms].to_numpy()
    b, V = inference.tsls(y, E, W, Z, clusters, n_abs)
    names = [*endog_terms, *exog_terms]
    g = int(pd.unique(clusters).size)
    se = np.sqrt(np.diag(V))
    params, se = pd.Series(b, index=names), pd.Series(se, index=names)
    p = pd.Series(2 * stats.t(g - 1).sf(np.abs(params / se)), index=names)
    fs = inference.first_stage_f(E, W, Z, clusters, n_abs)
    sw = inference.sanderson_windmeijer_f(E, W, Z, clusters, n_abs)
    ar_stat, ar_p = inference.anderson_rubin(y, E, W, Z, clusters, np.zeros(len(endog_terms)),
                                             n_abs)
    ols = np.linalg.lstsq(np.column_stack([E, W]), y, rcond=None)[0]
    out = {"params": params, "se": se, "p": p, "n_obs": len(data), "n_clusters": g,
           "endogenous": endog_terms, "instruments": z_terms,
           "first_stage_f": dict(zip(endog_terms, fs, strict=True)),
           "sw_f": dict(zip(endog_terms, sw, strict=True)),
           "ols": dict(zip(endog_terms, ols[:len(endog_terms)], strict=True)),
           "ar_stat": ar_stat, "ar_p": ar_p, "ar_set": None}
    if len(endog_terms) == 1 and len(z_terms) == 1:
        ar_set = inference.anderson_rubin_closed_form(y, E, W, Z, clusters, 0.95, n_abs)
        out["ar_set"] = ar_set
        weak = fs[0] < min_f or not ar_set["bounded"]
        out["status"] = (f"not informative: weak instrument (first-stage F = {fs[0]:.2f} < "
                         f"{min_f:g}; AR set {'unbounded' if not ar_set['bounded'] else 'bounded'})"
                         if weak else "identified")
    elif len(endog_terms) == 1:
        out["status"] = ("identified" if fs[0] >= min_f
                         else f"not informative: weak instruments (F < {min_f:g})")
    else:
        out["status"] = ("identified" if sw.min() >= min_f
                         else f"not identified (smallest SW F < {min_f:g})")
    return out


def format_ar_set(ar_set: dict) -> str:
    """An exact AR set as text: ``[a, b]``, ``(-inf, a] ∪ [b, inf)``, ``(-inf, inf)``, with
    bounded or unbounded."""
    def bound(v: float) -> str:
        return "∞" if v == np.inf else "−∞" if v == -np.inf else f"{v:.4g}"
    parts = []
    for low, high in ar_set["intervals"]:
        left = "(" if low == -np.inf else "["
        right = ")" if high == np.inf else "]"
        parts.append(f"{left}{bound(low)}, {bound(high)}{right}")
    text = " ∪ ".join(parts) or "empty"
    return f"{text} ({'bounded' if ar_set['bounded'] else 'unbounded'}: {ar_set['kind']})"


def iv_diagnostics_table(ivs: dict[str, dict]) -> pd.DataFrame:
    """One row per IV check x endogenous term: estimate, CRV1 SE, OLS on the same sample, the
    first stage (sign, coefficient, F), SW F, the reduced form and the AR test and set."""
    rows = []
    for check_id, iv in ivs.items():
        ar_set = iv.get("ar_set")
        for term in iv["endogenous"]:
            first = ar_set["first_stage"] if ar_set else None
            reduced = ar_set["reduced_form"] if ar_set else None
            rows.append({"check": check_id, "term": term, "N": iv["n_obs"],
                         "G": iv["n_clusters"], "estimate": iv["params"][term],
                         "SE (CRV1)": iv["se"][term], "p (t(G-1))": iv["p"][term],
                         "OLS, same sample": iv["ols"][term] if "ols" in iv else np.nan,
                         "first stage: coefficient": first["estimate"] if first else np.nan,
                         "first stage: sign": ("" if not first else
                                               "positive" if first["estimate"] > 0
                                               else "negative"),
                         "first-stage F (CRV1)": iv["first_stage_f"][term],
                         "SW conditional F": iv["sw_f"][term],
                         "reduced form: coefficient": reduced["estimate"] if reduced else np.nan,
                         "reduced form: p (t(G-1))": reduced["p_value"] if reduced else np.nan,
                         "AR test": ("beta = 0" if len(iv["endogenous"]) == 1
                                     else "all endogenous = 0 (joint)"),
                         "AR p (F(q, G-1))": iv["ar_p"],
                         "AR 95% set (exact)": format_ar_set(ar_set) if ar_set else "",
                         "status": iv["status"]})
    return pd.DataFrame(rows)


def iv_display_table(iv_table: pd.DataFrame) -> pd.DataFrame:
    """The IV diagnostics turned for print: one row per statistic, one column per IV check x
    endogenous term (so the table fits a page); numbers with four decimals, N and G whole."""
    columns = {}
    for _, row in iv_table.iterrows():
        cells = {}
        for name, value in row.drop(["check", "term"]).items():
            if isinstance(value, str):
                cells[name] = value
            elif name in ("N", "G"):
                cells[name] = f"{int(value)}"
            else:
                cells[name] = "" if pd.isna(value) else f"{value:.4f}"
        columns[f"{row['check']}: {TERM_LABELS.get(row['term'], row['term'])}"] = cells
    out = pd.DataFrame(columns)
    return out.rename_axis("statistic").reset_index()


def run_check(check: dict, model: dict, processed: Path, terms: list[str], bootstrap: dict,
              seed: int, models: dict | None = None) -> tuple[list[dict], dict]:
    """Rows for the robustness table, and extra detail (jackknife rows, RI p-values, IV).

    ``models`` (the model spec) lets an IV check name another model (``iv: {model: M1}``)."""
    panel, entity, cluster = variant_panel(check.get("panel"), processed)
    iv_spec = check.get("iv") or {}
    if iv_spec.get("model"):
        if not models or iv_spec["model"] not in models["models"]:
            raise DataError(Path(check["id"]), f"IV model {iv_spec['model']!r} not in the spec")
        iv_terms = models["models"][iv_spec["model"]]
        base = {f for t in iv_terms for f in t.split(":")}
        model = {**model, "terms": iv_terms,
                 "centre": [c for c in model["centre"] if c in base]}
    regressors = [*model["terms"], *model["controls"]]
    frame = prepare_variant(panel, check, model, entity)
    if frame.empty:
        raise DataError(Path(check["id"]), "the variant leaves no complete observations")
    regressors += extra_regressors(frame)
    extra: dict = {}
    if iv_spec:
        iv = iv_estimate(frame, model, iv_spec["endogenous"], iv_spec["instrument"], panel,
                         entity, cluster)
        row = {"check": check["id"], "label": check["label"], "group": check.get("group", ""),
               "kind": "iv", "n_obs": iv["n_obs"], "n_clusters": iv["n_clusters"],
               "within_r2": np.nan}
        for term in ["gpr", *terms]:
            present = term in iv["params"]
            row |= {f"b[{term}]": iv["params"][term] if present else np.nan,
                    f"se[{term}]": iv["se"][term] if present else np.nan,
                    f"p[{term}]": iv["p"][term] if present else np.nan,
                    f"p_wcr[{term}]": np.nan,
                    f"bstd[{term}]": (iv["params"][term] * standardiser(
                        frame, term, model["dependent"]) if present else np.nan)}
        ar_set = iv.get("ar_set")
        row |= {"iv_first_stage_f_min": min(iv["first_stage_f"].values()),
                "iv_sw_f_min": min(iv["sw_f"].values()), "iv_ar_p": iv["ar_p"],
                "iv_status": iv["status"],
                "iv_first_stage_coef": (ar_set["first_stage"]["estimate"] if ar_set
                                        else np.nan),
                "iv_reduced_form": ar_set["reduced_form"]["estimate"] if ar_set else np.nan,
                "iv_reduced_form_p": ar_set["reduced_form"]["p_value"] if ar_set else np.nan,
                "iv_ar_set": format_ar_set(ar_set) if ar_set else "",
                "iv_ar_bounded": ar_set["bounded"] if ar_set else np.nan}
        return [row], {"iv": iv}
    result = estimate(frame, check["id"], model["dependent"], regressors, (entity, "year"),
                      cluster, ["gpr", *terms], bootstrap)
    rows = [_row(check, result, ["gpr", *terms], frame=frame)]
    if check.get("jackknife"):
        rows = []
        for country in sorted(frame["iso3"].unique()):
            sub = prepare_variant(panel, {**check, "drop_countries": [country]}, model, entity)
            res = estimate(sub, f"loo_{country}", model["dependent"], regressors,
                           (entity, "year"), cluster, ["gpr", *terms], bootstrap)
            rows.append(_row(check, res, ["gpr", *terms], f"_{country}",
                             f"Leave out {country}", frame=sub))
    if check.get("permute"):
        perm = check["permute"]
        tested = perm.get("term", perm["variable"])
        ri = permutation_test(panel, check, model, perm["variable"], perm["scheme"],
                              int(perm["draws"]), seed, [tested], entity, cluster)
        for term, p in ri.items():
            rows[0][f"p_ri[{term}]"] = p
        rows[0]["ri_scheme"] = perm["scheme"]
        rows[0]["ri_term"] = tested
        extra["ri"] = ri
    return rows, extra


def heterogeneity_rows(spec: dict, model: dict, processed: Path, terms: list[str],
                       bootstrap: dict, models_spec: dict | None = None) -> list[dict]:
    """The heterogeneity rows, one dict per group or chain: country groups (each may name its
    own ``model``) and, if asked, chain by chain.

    A subsample that cannot identify the model (fewer than three clusters, or a regressor
    absorbed by the fixed effects) gets a row saying so instead of stopping the stage.
    """
    rows = []
    panel, entity, cluster = variant_panel(None, processed)
    for group in spec["heterogeneity"]["groups"]:
        check = {"group": "Country group", **group}
        group_model = model_for(check, model, models_spec) if models_spec else model
        frame = prepare_variant(panel, check, group_model, entity)
        rows.append(_estimable_row(check, frame, group_model, entity, cluster, terms, bootstrap))
    if spec["heterogeneity"].get("by_chain"):
        chain_panel, entity, cluster = variant_panel("chain", processed)
        for chain in sorted(chain_panel["chain"].unique()):
            check = {"id": f"chain_{chain}", "label": f"Chain: {chain}", "group": "Mineral chain"}
            frame = prepare_variant(chain_panel[chain_panel["chain"] == chain], check, model,
                                    entity)
            rows.append(_estimable_row(check, frame, model, entity, cluster, terms, bootstrap))
    return rows


def _estimable_row(check: dict, frame: pd.DataFrame, model: dict, entity: str, cluster: str,
                   terms: list[str], bootstrap: dict) -> dict:
    regressors = [*model["terms"], *model["controls"], *extra_regressors(frame)]
    n_clusters = frame[cluster].nunique() if not frame.empty else 0
    try:
        if n_clusters < 3:
            raise ValueError(f"{n_clusters} cluster(s) with complete data")
        result = estimate(frame, check["id"], model["dependent"], regressors, (entity, "year"),
                          cluster, ["gpr", *terms], bootstrap)
    except (ValueError, AbsorbingEffectError) as error:
        print(f"[robustness] {check['id']}: not estimable ({str(error).splitlines()[0]})",
              flush=True)
        return {"check": check["id"], "label": f"{check['label']} (not estimable)",
                "group": check.get("group", ""), "kind": "not estimable",
                "n_obs": len(frame), "n_clusters": n_clusters, "within_r2": np.nan}
    return _row(check, result, ["gpr", *terms], frame=frame)


# --------------------------------------------------------------------------- outputs
def display_table(table: pd.DataFrame, terms: list[str]) -> pd.DataFrame:
    """Compact, paper-ready robustness table.

    RI p-values appear only on rows whose scheme passed the bench size check (kind "ri");
    placebo rows show their p in brackets, never as a test. IV rows show "n.i." instead of
    p-values where the diagnostics say the model is not identified; their first-stage and
    Anderson–Rubin statistics and status are in the IV diagnostics table."""
    out = table[["label", "n_obs", "n_clusters"]].rename(
        columns={"label": "Check", "n_obs": "N", "n_clusters": "G"}).copy()
    kind = table["kind"] if "kind" in table else pd.Series("", index=table.index)
    status = table["iv_status"] if "iv_status" in table else pd.Series(np.nan, index=table.index)
    not_identified = status.fillna("").astype(str).str.startswith(("not identified",
                                                                     "not informative"))
    for term in ["gpr", *terms]:
        name = term.replace("gpr", "GPR").replace(":rn", "×RN").replace(":ti", "×TI")
        out[f"b {name}"] = table[f"b[{term}]"].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
        out[f"p {name}"] = [("n.i." if ni else ("" if pd.isna(v) else f"{v:.3f}"))
                            for v, ni in zip(table[f"p[{term}]"], not_identified, strict=True)]
        out[f"WCR p {name}"] = table[f"p_wcr[{term}]"].map(
            lambda v: "" if pd.isna(v) else f"{v:.3f}")
        if f"p_ri[{term}]" in table and table[f"p_ri[{term}]"].notna().any():
            out[f"RI p {name}"] = [
                "" if pd.isna(v) else (f"{v:.3f}" if k == "ri" else f"[{v:.3f}]")
                for v, k in zip(table[f"p_ri[{term}]"], kind, strict=True)]
    return out


def curve_summary(table: pd.DataFrame, terms: list[str], main_id: str = "main") -> pd.DataFrame:
    """Share of variants keeping the main sign, and significant at 10% (CRV1 and WCR)."""
    main = table[table["check"] == main_id].iloc[0]
    variants = table[(table["check"] != main_id) & (table["kind"] == "variant")]
    rows = []
    for term in ["gpr", *terms]:
        rows.append({"term": term, "main_estimate": main[f"b[{term}]"],
                     **variant_shares(variants, term, np.sign(main[f"b[{term}]"]))})
    return pd.DataFrame(rows)


def t_critical(n_clusters: pd.Series, level: float = 0.95) -> np.ndarray:
    """Two-sided t(G-1) critical values, one per row."""
    from scipy import stats

    return stats.t(n_clusters.to_numpy() - 1).ppf(0.5 + level / 2)


def plot_specification_curve(table: pd.DataFrame, terms: list[str], figures: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(terms), 1, figsize=(11, 4 * len(terms)))
    for ax, term in zip(np.atleast_1d(axes), terms, strict=True):
        data = table.dropna(subset=[f"bstd[{term}]"]).sort_values(f"bstd[{term}]").reset_index()
        x = np.arange(len(data))
        scale = data[f"bstd[{term}]"] / data[f"b[{term}]"]
        b, se = data[f"bstd[{term}]"], data[f"se[{term}]"] * scale.abs()
        significant = data[f"p[{term}]"] < 0.1
        crit = t_critical(data["n_clusters"])
        ax.errorbar(x, b, yerr=crit * se, fmt="none", ecolor="#bbbbbb", lw=1)
        ax.scatter(x[~significant], b[~significant], color="#6baed6", zorder=3,
                   label="p ≥ 0.10 (CRV1, t(G-1))")
        ax.scatter(x[significant], b[significant], color="#08306b", zorder=3,
                   label="p < 0.10")
        main = data.index[data["check"] == "main"]
        ax.scatter(x[main], b[main], marker="D", s=60, color="#d94801", zorder=4,
                   label="main specification")
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(data["check"], rotation=75, fontsize=7)
        name = term.replace("gpr", "GPR").replace(":rn", " × RN").replace(":ti", " × TI")
        ax.set_ylabel(f"standardised β({name})")
        ax.set_title(f"Specification curve: β({name}) across {len(data)} variants, in sd of "
                     "SYN per sd of the term (95% CI: CRV1, t(G-1))")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    save_figure(fig, figures / "specification_curve")


def plot_leave_one_out(table: pd.DataFrame, terms: list[str], figures: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loo = table[table["kind"] == "jackknife"]
    main = table[table["check"] == "main"].iloc[0]
    fig, axes = plt.subplots(1, len(terms) + 1, figsize=(4.5 * (len(terms) + 1), 4.5),
                             sharey=True)
    for ax, term in zip(axes, ["gpr", *terms], strict=True):
        y = np.arange(len(loo))
        ax.errorbar(loo[f"b[{term}]"], y, xerr=t_critical(loo["n_clusters"]) * loo[f"se[{term}]"],
                    fmt="o",
                    color="#08519c", ecolor="#9ecae1")
        ax.axvline(main[f"b[{term}]"], color="#d94801", ls="--", label="full sample")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels(loo["label"].str.replace("Leave out ", "without "))
        ax.set_title(f"β({term.upper()})")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Leave-one-country-out estimates (95% CI: CRV1, t(G-1))")
    fig.tight_layout()
    save_figure(fig, figures / "leave_one_out")


# --------------------------------------------------------------------------- result cache
#: Modules whose code a check's result depends on (their source hashes enter its cache key).
CHECK_CODE = ("analysis.stages.robustness", "analysis.econometrics.variants",
              "analysis.econometrics.moderated", "analysis.econometrics.estimation",
              "analysis.econometrics.inference", "analysis.config", "analysis.data.io",
              "analysis.data.cache")


#: Libraries whose arithmetic a check's result depends on (their versions enter the key).
CHECK_LIBRARIES = ("numpy", "pandas", "scipy", "linearmodels", "pyfixest")


_HASHES: dict[tuple[str, int, int], str] = {}


def _inputs_sha256(paths: list[Path]) -> dict[str, str]:
    """{file name: sha256} of a check's input files (hashed once per file version)."""
    out = {}
    for path in paths:
        if not path.exists():  # the check itself then stops with the DataError naming it
            out[path.name] = "missing"
            continue
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in _HASHES:
            _HASHES[key] = cache.files_sha256([path])[path.name]
        out[path.name] = _HASHES[key]
    return out


def _code_and_libraries() -> dict:
    return {"code": cache.code_version(*CHECK_CODE),
            "libraries": cache.library_versions(*CHECK_LIBRARIES)}


def check_key(check: dict, model: dict, models: dict, terms: list[str], bootstrap: dict,
              seed: int, processed: Path) -> str:
    """Cache key of one check's result: sha256 over the check's spec entry (canonical JSON), the
    model it estimates, the model spec (an IV check may name another model), the curve terms,
    the bootstrap settings and RI seed, the sha256 of every processed file the check reads
    (:func:`panel_files`), the source of the modules it runs (:data:`CHECK_CODE`) and the
    library versions (:data:`CHECK_LIBRARIES`). Any change to one of them is a new key, so
    the check is estimated again; an unchanged check is read back from ``data/cache``."""
    return cache.key_of({
        "kind": "robustness_check", "check": check, "model": model, "models": models,
        "terms": terms, "bootstrap": bootstrap, "seed": seed,
        "inputs": _inputs_sha256(panel_files(check.get("panel"), processed)),
        **_code_and_libraries()})


#: Fewest jobs worth starting worker processes for (each one imports the stage, ~1.5 s).
MIN_POOL_JOBS = 4


def workers() -> int:
    """Worker processes for the checks to estimate: ``PIPELINE_WORKERS`` if set, else 2 (at
    most the number of cores). Each check is estimated by the same code in any process, with
    one BLAS thread per worker, so the results do not depend on the number
    (``tests/test_robustness_cache.py``)."""
    value = os.environ.get("PIPELINE_WORKERS")
    if value:
        return max(1, int(value))
    return max(1, min(2, os.cpu_count() or 1))


def _run_job(job: tuple) -> tuple[object, object]:
    """One unit of work, in this process or a worker: ("check", position, run_check args) or
    ("heterogeneity", tag, heterogeneity_rows args)."""
    kind, tag, args = job
    if kind == "check":
        return tag, run_check(*args)
    return tag, heterogeneity_rows(*args)


def _cost(job: tuple) -> int:
    """Rough order of cost, to start the longest jobs first when they are shared out."""
    kind, _, args = job
    if kind != "check":
        return 3
    check = args[0]
    return 3 if check.get("jackknife") else 2 if check.get("permute") or check.get("iv") else 0


def run_jobs(jobs: list[tuple]):
    """Run ``jobs`` (see :func:`_run_job`); yields (tag, result) as they finish.

    With at least :data:`MIN_POOL_JOBS` jobs and :func:`workers` > 1, this process and
    ``workers() - 1`` worker processes share them: the workers take them from the front of the
    queue (the longest first), this process from the back, each job once (a job a worker has
    not started is cancelled there before it runs here). The workers are started fresh
    ("spawn", not fork: a fork of a process with running threads, from OpenBLAS, Arrow or
    tqdm, can hang in the child) with ``OPENBLAS_NUM_THREADS=1``; every output is
    byte-identical with one or two BLAS threads. Otherwise the jobs run here, in order."""
    bar = tqdm(total=len(jobs), desc="[robustness] checks", unit="check", file=sys.stdout,
               mininterval=0, ascii=True)
    n_workers = min(workers(), len(jobs))
    if n_workers <= 1 or len(jobs) < MIN_POOL_JOBS:
        for job in jobs:
            yield _run_job(job)
            bar.update()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        queue = sorted(jobs, key=_cost, reverse=True)
        saved = os.environ.get("OPENBLAS_NUM_THREADS")
        log = current_log()
        pool = ProcessPoolExecutor(n_workers - 1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=worker_initializer,
                                   initargs=(None if log is None else str(log),))
        try:
            os.environ["OPENBLAS_NUM_THREADS"] = "1"  # for the workers, started on submit
            try:
                with block_interrupts():  # a Ctrl-C now reaches this process, not the workers
                    futures = [pool.submit(_run_job, job) for job in queue]
            finally:
                if saved is None:
                    os.environ.pop("OPENBLAS_NUM_THREADS", None)
                else:
                    os.environ["OPENBLAS_NUM_THREADS"] = saved
            for job, future in zip(reversed(queue), reversed(futures), strict=True):
                if future.cancel():  # not started by a worker: run it here
                    yield _run_job(job)
                    bar.update()
            for future in as_completed([f for f in futures if not f.cancelled()]):
                yield future.result()
                bar.update()
        finally:
            # on an error (here, in a worker, or in the caller) or Ctrl-C: no job starts any
            # more and the workers are joined before the error leaves this function, so no
            # process or thread of the pool outlives it
            pool.shutdown(wait=True, cancel_futures=True)
    bar.close()


def cache_name(check_id: str) -> str:
    """A file-name-safe form of a check id."""
    return re.sub(r"[^A-Za-z0-9_]", "_", str(check_id))


def run(processed: Path = config.DATA_PROCESSED, outputs: Path = config.OUTPUTS,
        spec_path: Path = config.SPECS / "robustness.yaml",
        model_spec_path: Path = config.SPECS / "models.yaml") -> pd.DataFrame:
    started = time.perf_counter()
    models = load_model_spec(model_spec_path, processed)
    spec = load_robustness_spec(spec_path, models, processed)
    model = {"dependent": models["dependent"], "terms": models["models"][spec["base_model"]],
             "controls": models["controls"], "centre": models["centre"],
             "main_sample": model_variables(models)}
    terms = spec["curve_terms"]
    bootstrap = {**models["bootstrap"], "rademacher_enumeration": False, "all_terms": False}
    results: dict[int, tuple[list[dict], dict]] = {}
    jobs: list[tuple] = []
    keys: dict[object, str] = {}
    for i, check in enumerate(spec["checks"]):
        check_model = model_for(check, model, models)
        keys[i] = check_key(check, check_model, models, terms, bootstrap, spec["ri_seed"],
                            processed)
        stored = cache.load_result("robustness", cache_name(check["id"]), keys[i])
        if stored is None:
            jobs.append(("check", i, (check, check_model, processed, terms, bootstrap,
                                      spec["ri_seed"], models)))
        else:
            results[i] = (stored["rows"], stored["extra"])
    keys["heterogeneity"] = cache.key_of({
        "kind": "robustness_heterogeneity", "heterogeneity": spec["heterogeneity"],
        "model": model, "models": models, "terms": terms, "bootstrap": bootstrap,
        "inputs": _inputs_sha256(panel_files(
            "chain" if spec["heterogeneity"].get("by_chain") else None, processed)),
        **_code_and_libraries()})
    stored = cache.load_result("robustness", "_heterogeneity", keys["heterogeneity"])
    hetero_rows = None if stored is None else stored["rows"]
    if hetero_rows is None:
        jobs.append(("heterogeneity", "heterogeneity",
                     (spec, model, processed, terms, bootstrap, models)))
    print(f"[robustness] {sum(j[0] == 'check' for j in jobs)} check(s) to estimate, "
          f"{len(results)} unchanged (read from data/cache/robustness); heterogeneity "
          f"{'to estimate' if hetero_rows is None else 'unchanged'}", flush=True)
    for tag, result in run_jobs(jobs):
        if tag == "heterogeneity":
            hetero_rows = result
            cache.store_result("robustness", "_heterogeneity", keys[tag], {"rows": result})
            continue
        check_rows, extra = result
        cache.store_result("robustness", cache_name(spec["checks"][tag]["id"]), keys[tag],
                           {"rows": check_rows, "extra": extra})
        results[tag] = (check_rows, extra)
    rows = []
    ivs: dict[str, dict] = {}
    sizes = load_sizes()
    panel, _, _ = variant_panel(None, processed)
    design = design_summary(prepare_variant(panel, {"id": "main", "sample": "main"}, model),
                            models)
    for i, check in enumerate(spec["checks"]):
        check_rows, extra = results[i]
        if check.get("permute"):  # labelled here, from the sizes recorded now (not cached)
            size = ri_size(check, sizes, design)
            check_rows = [{**r, "kind": check_kind(check, sizes, design),
                           "ri_size": np.nan if size is None else size} for r in check_rows]
        rows += check_rows
        if "iv" in extra:
            ivs[check["id"]] = extra["iv"]
    table = pd.DataFrame(rows)
    tables, figures = outputs / "tables", outputs / "figures"
    atomic_write_text(outputs / "robustness.csv",
                      table.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
    frame_table(display_table(table, terms), tables / "robustness",
                f"Robustness of the base model ({spec['base_model']}): estimates, CRV1 p-values "
                "(two-sided, t(G-1)), WCR bootstrap p-values (Webb, year effects re-estimated "
                "in every draw, two-sided symmetric) and randomisation-inference p-values "
                "(studentised: CRV1 t; (1 + #|t*| >= |t|)/(1 + draws); for an interaction "
                "only the interaction is rebuilt from the permuted moderator paths, the main "
                "effects stay fixed). RI p-values in brackets are placebos: that check's size "
                "at 5% on this design (make bench BENCH_ARGS=\"--size --record\") lies outside "
                f"[{SIZE_BAND[0]}, {SIZE_BAND[1]}] or was not measured. IV rows: first-stage F, "
                "Sanderson–Windmeijer F, Anderson–Rubin test and status in the IV diagnostics "
                "table; n.i. = not identified or not informative (weak instrument)")
    if ivs:
        iv_table = iv_diagnostics_table(ivs)
        atomic_write_text(outputs / "iv_diagnostics.csv",
                          iv_table.to_csv(index=False, float_format="%.10g",
                                          lineterminator="\n"))
        frame_table(iv_display_table(iv_table), tables / "iv_diagnostics",
                    "IV diagnostics: 2SLS with two-way FE, CRV1 SEs (pyfixest's small-sample "
                    "factor) and t(G-1) p-values, and OLS on the same sample; per endogenous "
                    "term the first stage (the instrument's coefficient and sign, cluster-robust "
                    "F), the Sanderson–Windmeijer conditional F, the reduced form (the "
                    "instrument's coefficient in the SYN equation) and the Anderson–Rubin test "
                    "with F(q, G-1); with one instrument the exact 95% AR set (closed form: "
                    "bounded only if the first-stage F exceeds F(1, G-1)'s 95% quantile). A "
                    "weak instrument makes the IV not informative.")
    summary = curve_summary(table, terms)
    frame_table(summary, tables / "specification_curve_summary",
                "Share of robustness variants that keep the main sign and are significant at 10%")
    atomic_write_text(outputs / "specification_curve_summary.csv",
                      summary.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
    plot_specification_curve(table[table["kind"] == "variant"], terms, figures)
    plot_leave_one_out(table, terms, figures)
    print("[robustness] heterogeneity: CLMV versus others, and by mineral chain", flush=True)
    hetero = pd.DataFrame(hetero_rows)
    frame_table(display_table(hetero, terms), tables / "heterogeneity",
                "Heterogeneity: CLMV versus the other members, and by mineral chain")
    atomic_write_text(outputs / "heterogeneity.csv",
                      hetero.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
    print(f"[robustness] {len(table)} rows in {time.perf_counter() - started:.1f}s", flush=True)
    print(summary.to_string(index=False), flush=True)
    return table


def check_rows(check_id: str, processed: Path = config.DATA_PROCESSED,
               spec_path: Path = config.SPECS / "robustness.yaml",
               model_spec_path: Path = config.SPECS / "models.yaml") -> pd.DataFrame:
    """The robustness-table rows of one check of the spec (validated like the whole battery),
    as :func:`run` computes them; read from, or stored in, the result cache like any check.
    Writes nothing under outputs/ (``--check``; :func:`analysis.api.check`)."""
    models = load_model_spec(model_spec_path, processed)
    spec = load_robustness_spec(spec_path, models, processed)
    ids = [c["id"] for c in spec["checks"]]
    if check_id not in ids:
        raise DataError(spec_path, f"no check with the id {check_id!r}"
                        f"{specs.did_you_mean(check_id, ids)}", entry="checks")
    check = spec["checks"][ids.index(check_id)]
    model = {"dependent": models["dependent"], "terms": models["models"][spec["base_model"]],
             "controls": models["controls"], "centre": models["centre"]}
    terms = spec["curve_terms"]
    bootstrap = {**models["bootstrap"], "rademacher_enumeration": False, "all_terms": False}
    check_model = model_for(check, model, models)
    key = check_key(check, check_model, models, terms, bootstrap, spec["ri_seed"], processed)
    stored = cache.load_result("robustness", cache_name(check_id), key)
    if stored is None:
        rows, extra = run_check(check, check_model, processed, terms, bootstrap,
                                spec["ri_seed"], models)
        cache.store_result("robustness", cache_name(check_id), key,
                           {"rows": rows, "extra": extra})
    else:
        rows = stored["rows"]
    return pd.DataFrame(rows)


def run_one(check_id: str, processed: Path = config.DATA_PROCESSED,
            spec_path: Path = config.SPECS / "robustness.yaml",
            model_spec_path: Path = config.SPECS / "models.yaml") -> pd.DataFrame:
    """``--check ID``: :func:`check_rows`, printed as the robustness table shows them."""
    table = check_rows(check_id, processed, spec_path, model_spec_path)
    terms = load_robustness_spec(spec_path)["curve_terms"]
    print(display_table(table, terms).to_string(index=False), flush=True)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.stages.robustness",
        description="Run every check in specs/robustness.yaml (a variant of the base model) "
        "and write the robustness table, specification curve, leave-one-out figure and "
        "heterogeneity tables. Every entry is checked against the data first.")
    parser.add_argument("--spec", type=Path, default=config.SPECS / "robustness.yaml")
    parser.add_argument("--check", metavar="ID",
                        help="estimate only this check and print its row(s); writes nothing "
                        "under outputs/")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    if args.check:
        return run_stage("robustness", lambda: run_one(args.check, spec_path=args.spec),
                         verbose=True, record=False)
    return run_stage("robustness", lambda: run(spec_path=args.spec),
                     verbose=args.verbose or None,
                     summary=lambda table: f"{len(table)} rows -> "
                     f"{display_path(config.OUTPUTS)}/robustness.csv, "
                     f"{display_path(config.TABLES)}/robustness.*")


if __name__ == "__main__":
    sys.exit(main())
