"""Stage 5, robustness: every check in ``specs/robustness.yaml`` as a variant of the base model.

Each entry of the spec is data; :func:`prepare_variant` turns its keys (replace, lag, winsorize,
drop_years, drop_countries, keep_countries, double_demean, panel) into an estimation frame, and
:func:`run_check` adds the three kinds that need more than one fit: the leave-one-country-out
jackknife, randomisation inference (permutations) and IV. Adding a check is one entry in the
spec. Writes ``outputs/robustness.csv``, ``outputs/tables/robustness.*``, the heterogeneity
tables, the specification curve and the leave-one-out figure.

The Hansen (1999) panel threshold model is not implemented: no implementation in this
environment could be validated against a published result, so it is reported as not done.

Run ``python -m analysis.robustness --help``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from linearmodels.panel.utility import AbsorbingEffectError
from tqdm import tqdm

from analysis import config, inference
from analysis.estimation import add_interactions, estimate
from analysis.figures import save_figure
from analysis.io import DataError, atomic_write_text, read_parquet, record_timing
from analysis.models import load_model_spec
from analysis.tables import frame_table

KNOWN_KEYS = {"id", "label", "group", "replace", "lag", "winsorize", "drop_years",
              "drop_countries", "keep_countries", "double_demean", "panel", "jackknife",
              "permute", "iv", "model", "controls_add", "share_by_year", "country_trends"}
EXTRA = "_x_"  # prefix of the extra regressors a check adds (controls_add, share_by_year, trends)


def load_robustness_spec(path: Path = config.SPECS / "robustness.yaml") -> dict:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DataError(path, f"cannot read the robustness specification ({error})") from error
    ids = [c["id"] for c in spec["checks"]]
    if len(set(ids)) != len(ids):
        raise DataError(path, "duplicate check ids")
    for check in spec["checks"]:
        unknown = set(check) - KNOWN_KEYS
        if unknown:
            raise DataError(path, f"check {check['id']!r} has unknown keys {sorted(unknown)}; "
                            f"known keys: {sorted(KNOWN_KEYS)}")
    return spec


# --------------------------------------------------------------------------- panels
def variant_panel(kind: str | None, processed: Path) -> tuple[pd.DataFrame, str, str]:
    """(panel, entity column, cluster column) for the main, dyad or chain panel."""
    panel = read_parquet(processed / "panel.parquet")
    if kind in (None, "main"):
        return panel, "iso3", "iso3"
    country = panel.drop(columns=["syn"])
    if kind == "dyad":
        dyad = read_parquet(processed / "dyad_indices.parquet")[["iso3", "year", "syn"]]
        return dyad.merge(country, on=["iso3", "year"], how="left"), "iso3", "iso3"
    if kind == "dyad_nickel":
        dyad = read_parquet(processed / "dyad_nickel.parquet")[["iso3", "year", "syn"]]
        return dyad.merge(country, on=["iso3", "year"], how="left"), "iso3", "iso3"
    if kind == "chain":
        chain = read_parquet(processed / "chain_panel.parquet")[["iso3", "chain", "year", "syn"]]
        merged = chain.merge(country, on=["iso3", "year"], how="left")
        merged["unit"] = merged["iso3"] + ":" + merged["chain"]
        return merged, "unit", "iso3"
    raise ValueError(f"unknown panel {kind!r}: use dyad or chain")


def winsorize(series: pd.Series, lower: float = 0.01, upper: float = 0.99) -> pd.Series:
    """Clip at the sample's lower/upper quantiles (linear interpolation of quantiles)."""
    lo, hi = series.quantile([lower, upper])
    return series.clip(lo, hi)


def prepare_variant(panel: pd.DataFrame, check: dict, model: dict, entity: str = "iso3"
                    ) -> pd.DataFrame:
    """The estimation frame of one check: substitutions, lags, sample, winsorising, centring.

    Order: replace → lag (within unit, before any row is dropped) → drop/keep → complete cases
    on the model's variables → winsorise → centre focal and moderators on the sample →
    interactions (of within-unit demeaned terms if ``double_demean``).
    """
    frame = panel.copy()
    for variable, column in (check.get("replace") or {}).items():
        if column not in frame:
            raise DataError(Path(column), f"check {check['id']!r}: column not in the panel")
        frame[variable] = frame[column]
    for variable in check.get("lag") or []:
        frame = frame.sort_values([entity, "year"])
        frame[variable] = frame.groupby(entity)[variable].shift(1)
    if check.get("drop_years"):
        frame = frame[~frame["year"].isin(check["drop_years"])]
    if check.get("drop_countries"):
        frame = frame[~frame["iso3"].isin(check["drop_countries"])]
    if check.get("keep_countries"):
        frame = frame[frame["iso3"].isin(check["keep_countries"])]
    base = sorted({f for t in model["terms"] for f in t.split(":")})
    added = list(check.get("controls_add") or [])
    share = [check["share_by_year"]] if check.get("share_by_year") else []
    needed = list(dict.fromkeys([model["dependent"], *base, *model["controls"], *added, *share]))
    keys = list(dict.fromkeys([entity, "iso3", "year"]))
    frame = frame[[*keys, *needed]].dropna().copy()
    counts = frame.groupby(entity)["year"].transform("size")
    frame = frame[counts >= 2].copy()  # singletons: no within variation (as in models.py)
    for column in added:
        frame[f"{EXTRA}{column}"] = frame[column]
    if share:
        # incomplete-shares control (Borusyak, Hull & Jaravel 2022): share x year dummies
        years = sorted(frame["year"].unique())
        for year in years[1:]:
            frame[f"{EXTRA}{share[0]}_{year}"] = frame[share[0]] * (frame["year"] == year)
    if check.get("country_trends"):
        # with year effects the trends of all units sum to a function of the year, so one
        # unit (the first) is the reference
        centre_year = frame["year"].mean()
        for unit in sorted(frame[entity].unique())[1:]:
            frame[f"{EXTRA}trend_{unit}"] = np.where(frame[entity] == unit,
                                                     frame["year"] - centre_year, 0.0)
    for variable in check.get("winsorize") or []:
        frame[variable] = winsorize(frame[variable])
    for variable in [v for v in model["centre"] if v in frame]:
        frame[variable] = frame[variable] - frame[variable].mean()
    interactions = [t for t in model["terms"] if ":" in t]
    if check.get("double_demean"):
        demeaned = frame.copy()
        for variable in base:
            demeaned[variable] = frame[variable] - frame.groupby(entity)[variable].transform("mean")
        products = add_interactions(demeaned, interactions)
        for term in interactions:
            frame[term] = products[term]
    else:
        frame = add_interactions(frame, interactions)
    return frame.sort_values([entity, "year"]).reset_index(drop=True)


# --------------------------------------------------------------------------- checks
def extra_regressors(frame: pd.DataFrame) -> list[str]:
    """The columns a check added as extra regressors (prefix ``EXTRA``), in frame order."""
    return [c for c in frame.columns if c.startswith(EXTRA)]


def model_for(check: dict, model: dict, models_spec: dict) -> dict:
    """The base model, or the model a check names with ``model:`` (e.g. M1 on its own sample)."""
    if not check.get("model"):
        return model
    name = check["model"]
    if name not in models_spec["models"]:
        raise DataError(Path(check["id"]), f"unknown model {name!r}")
    return {**model, "terms": models_spec["models"][name]}


#: Randomisation-inference schemes (METHODS.md section 6) and their size at 5% under a true
#: null, measured by ``make bench`` (analysis/bench.py: G = 11 unbalanced clusters, AR(1)
#: regressor with a common year shock, AR(1) errors within country; 4,000 replications, 199
#: permutations each, Monte Carlo s.e. about 0.0035). Rule (Bradley 1978, "Robustness?", Br. J. Math. Stat. Psychol.
#: 31(2), liberal criterion): a scheme whose rejection rate lies within [0.025, 0.075] reports
#: its p-value as inference (kind "ri"); otherwise its row is kind "placebo" (shown, never read
#: as a test). Update these numbers when the bench changes.
RI_SCHEMES: dict[str, dict] = {
    "countries": {"description": "whole country paths permuted across countries",
                  "bench_size": 0.0510},
    "years": {"description": "whole years of the cross-section permuted jointly",
              "bench_size": 0.0548},
    "shift": {"description": "all countries' paths shifted jointly in time (circular, every "
                             "shift enumerated)", "bench_size": 0.0490},
}
SIZE_BAND = (0.025, 0.075)


def ri_size_ok(scheme: str) -> bool:
    """True when the scheme's bench size at 5% is within Bradley's liberal band."""
    size = RI_SCHEMES[scheme]["bench_size"]
    return size is not None and SIZE_BAND[0] <= size <= SIZE_BAND[1]


def check_kind(check: dict) -> str:
    """variant (enters the specification curve), jackknife, ri (randomisation inference whose
    size the bench confirms), placebo (a permutation scheme whose size is off) or iv."""
    if check.get("jackknife"):
        return "jackknife"
    if check.get("permute"):
        return "ri" if ri_size_ok(check["permute"]["scheme"]) else "placebo"
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


def permuted_grids(grid: np.ndarray, scheme: str, draws: int, rng: np.random.Generator
                   ) -> list[np.ndarray]:
    """Permutations of a countries x years grid of one variable (NaN where missing).

    * ``countries``: row i gets row pi(i), a whole country path moved to another country;
    * ``years``: column t gets column pi(t), the whole cross-section of year pi(t) moved to
      year t jointly for every country (keeps the cross-sectional dependence);
    * ``shift``: every country's path shifted by the same s years, circularly; all T - 1
      non-zero shifts are enumerated (``draws`` is ignored), so p has resolution 1/T.
    Random permutations may repeat and may include the identity (Lehmann & Romano 2005,
    sec. 15.2.1: the (1 + #)/(1 + draws) p-value is then still valid).
    """
    if scheme == "countries":
        return [grid[rng.permutation(grid.shape[0]), :] for _ in range(draws)]
    if scheme == "years":
        return [grid[:, rng.permutation(grid.shape[1])] for _ in range(draws)]
    if scheme == "shift":
        return [np.roll(grid, s, axis=1) for s in range(1, grid.shape[1])]
    raise ValueError(f"unknown permutation scheme {scheme!r}: use countries, years or shift")


def permutation_test(panel: pd.DataFrame, check: dict, model: dict, variable: str, scheme: str,
                     draws: int, seed: int, terms: list[str], entity: str = "iso3",
                     cluster: str = "iso3") -> dict[str, float]:
    """Randomisation-inference p-values that respect the data's dependence (METHODS.md sec. 6).

    The variable's country x year grid (from the full panel, before any row is dropped) is
    permuted as a whole (:func:`permuted_grids`: whole country paths, whole years of the
    cross-section, or joint time shifts); the permuted grid replaces the variable in the panel,
    and the check's estimation frame is rebuilt by :func:`prepare_variant`, so the complete-row
    restriction, centring and interaction terms are recomputed in every draw (a permuted value
    that lands on a missing cell drops that row, exactly as missing data do in the sample).
    Statistic: the CRV1 t (studentised; Chung & Romano 2013, Ann. Stat. 41(2); DiCiccio &
    Romano 2017, JASA 112), p = (1 + #{|t*| >= |t|}) / (1 + number of draws), two-sided.
    """
    rng = np.random.default_rng(seed)
    regressors = [*model["terms"], *model["controls"]]
    frame = prepare_variant(panel, check, model, entity)
    observed = crv1_t(frame, model["dependent"], regressors, terms, entity, cluster)
    cells = panel[["iso3", "year", variable]].drop_duplicates(["iso3", "year"])
    countries = np.sort(cells["iso3"].unique())
    years = np.sort(cells["year"].unique())
    grid = np.full((len(countries), len(years)), np.nan)
    grid[np.searchsorted(countries, cells["iso3"]), np.searchsorted(years, cells["year"])] = \
        cells[variable].to_numpy(dtype=float)
    rows = np.searchsorted(countries, panel["iso3"].to_numpy())
    cols = np.searchsorted(years, panel["year"].to_numpy())
    hits = dict.fromkeys(terms, 0)
    grids = permuted_grids(grid, scheme, draws, rng)
    for permuted_grid in grids:
        permuted = panel.copy()
        permuted[variable] = permuted_grid[rows, cols]
        sample = prepare_variant(permuted, check, model, entity)
        t = crv1_t(sample, model["dependent"], regressors, terms, entity, cluster)
        for term in terms:
            hits[term] += abs(t[term]) >= abs(observed[term]) * (1 - 1e-12)
    return {term: (hits[term] + 1) / (len(grids) + 1) for term in terms}


def iv_estimate(frame: pd.DataFrame, model: dict, endogenous: str, instrument: str,
                panel: pd.DataFrame, entity: str = "iso3", cluster: str = "iso3",
                min_f: float = 10.0) -> dict:
    """2SLS with two-way FE, CRV1 by country, and weak-instrument diagnostics.

    The endogenous variable and every model term containing it are instrumented by the
    (centred) instrument and the same terms with the instrument in its place. FE are
    partialled out of every variable (FWL holds for 2SLS); the controls and the other terms
    are included exogenous regressors. Reports, per endogenous term, the cluster-robust
    first-stage F and the Sanderson–Windmeijer conditional F
    (:func:`analysis.inference.first_stage_f`, :func:`~analysis.inference.sanderson_windmeijer_f`),
    and an Anderson–Rubin test (F(q, G-1)): with one endogenous regressor of ``H0: beta = 0``
    plus the 95% AR confidence set by grid inversion; with several, the joint test that all
    endogenous coefficients are 0. SEs: CRV1 with pyfixest's factor ``G/(G-1)(N-1)/(N-K)``;
    p-values from t(G-1).

    Status: with one endogenous regressor, "identified" if F >= ``min_f`` else "weak
    instrument: use the AR test"; with several, "not identified" when the smallest SW F is
    below ``min_f`` (Staiger & Stock's rule of thumb, applied to the conditional F as SW do).
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
    out = {"params": params, "se": se, "p": p, "n_obs": len(data), "n_clusters": g,
           "endogenous": endog_terms, "instruments": z_terms,
           "first_stage_f": dict(zip(endog_terms, fs, strict=True)),
           "sw_f": dict(zip(endog_terms, sw, strict=True)),
           "ar_stat": ar_stat, "ar_p": ar_p, "ar_set": None, "ar_set_open": None}
    if len(endog_terms) == 1:
        grid = b[0] + se.iloc[0] * np.linspace(-20, 20, 801)
        runs, open_ = inference.anderson_rubin_set(y, E, W, Z, clusters, grid,
                                                   n_absorbed=n_abs)
        out["ar_set"], out["ar_set_open"] = runs, open_
        out["status"] = ("identified" if fs[0] >= min_f
                         else f"weak instrument (F < {min_f:g}): use the AR test")
    else:
        out["status"] = ("identified" if sw.min() >= min_f
                         else f"not identified (smallest SW F < {min_f:g})")
    return out


def iv_diagnostics_table(ivs: dict[str, dict]) -> pd.DataFrame:
    """One row per IV check x endogenous term: estimate, CRV1 SE, first-stage F, SW F, AR."""
    rows = []
    for check_id, iv in ivs.items():
        for term in iv["endogenous"]:
            ar_set = "" if iv["ar_set"] is None else (
                " ∪ ".join(f"[{lo:.4g}, {hi:.4g}]" for lo, hi in iv["ar_set"]) or "empty")
            if iv["ar_set_open"]:
                ar_set += " (reaches the grid edge, ±20 SE: may be unbounded)"
            rows.append({"check": check_id, "term": term, "estimate": iv["params"][term],
                         "SE (CRV1)": iv["se"][term], "p (t(G-1))": iv["p"][term],
                         "first-stage F (CRV1)": iv["first_stage_f"][term],
                         "SW conditional F": iv["sw_f"][term],
                         "AR test": ("beta = 0" if len(iv["endogenous"]) == 1
                                     else "all endogenous = 0 (joint)"),
                         "AR p (F(q, G-1))": iv["ar_p"], "AR 95% set": ar_set,
                         "status": iv["status"]})
    return pd.DataFrame(rows)


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
        row |= {"iv_first_stage_f_min": min(iv["first_stage_f"].values()),
                "iv_sw_f_min": min(iv["sw_f"].values()), "iv_ar_p": iv["ar_p"],
                "iv_status": iv["status"]}
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
        tested = [t for t in ["gpr", *terms] if perm["variable"] in t.split(":")]
        ri = permutation_test(panel, check, model, perm["variable"], perm["scheme"],
                              int(perm["draws"]), seed, tested, entity, cluster)
        for term, p in ri.items():
            rows[0][f"p_ri[{term}]"] = p
        rows[0]["ri_scheme"] = perm["scheme"]
        rows[0]["ri_bench_size"] = RI_SCHEMES[perm["scheme"]]["bench_size"]
        extra["ri"] = ri
    return rows, extra


def run_heterogeneity(spec: dict, model: dict, processed: Path, terms: list[str],
                      bootstrap: dict, models_spec: dict | None = None) -> pd.DataFrame:
    """Country groups (each may name its own ``model``) and, if asked, chain by chain.

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
    return pd.DataFrame(rows)


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
    placebo rows show their p in brackets, never as a test. IV rows show their status, and
    "n.i." instead of p-values where the diagnostics say the model is not identified."""
    out = table[["label", "n_obs", "n_clusters"]].rename(
        columns={"label": "Check", "n_obs": "N", "n_clusters": "G"}).copy()
    kind = table["kind"] if "kind" in table else pd.Series("", index=table.index)
    status = table["iv_status"] if "iv_status" in table else pd.Series(np.nan, index=table.index)
    not_identified = status.fillna("").astype(str).str.startswith("not identified")
    for term in ["gpr", *terms]:
        name = term.replace("gpr", "GPR").replace(":rn", "×RN").replace(":ti", "×TI")
        out[f"b {name}"] = table[f"b[{term}]"].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
        out[f"p {name}"] = [("n.i." if ni else ("" if pd.isna(v) else f"{v:.3f}"))
                            for v, ni in zip(table[f"p[{term}]"], not_identified, strict=True)]
        out[f"WCR p {name}"] = table[f"p_wcr[{term}]"].map(
            lambda v: "" if pd.isna(v) else f"{v:.3f}")
        if f"p_ri[{term}]" in table and table[f"p_ri[{term}]"].notna().any():
            out[f"RI p {name}"] = [
                "" if pd.isna(v) else (f"{v:.3f}" if k == "ri" else f"[{v:.3f}] placebo")
                for v, k in zip(table[f"p_ri[{term}]"], kind, strict=True)]
    if status.notna().any():
        out["IV first-stage F (CRV1, min)"] = table["iv_first_stage_f_min"].map(
            lambda v: "" if pd.isna(v) else f"{v:.2f}")
        out["IV SW F (min)"] = table["iv_sw_f_min"].map(
            lambda v: "" if pd.isna(v) else f"{v:.2f}")
        out["IV AR p"] = table["iv_ar_p"].map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
        out["IV status"] = status.fillna("")
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


def variant_shares(variants: pd.DataFrame, term: str, sign: float) -> dict[str, float]:
    """Among the variants that estimate ``term`` (a variant on a smaller model has no value):
    their number, the share with the given sign, and the shares with p < 0.10 under CRV1 and
    under WCR (over the variants that report each p)."""
    b = variants[f"b[{term}]"].dropna()
    p = variants[f"p[{term}]"].dropna()
    wcr = variants[f"p_wcr[{term}]"].dropna()
    return {"variants": int(len(b)),
            "share_same_sign": float((np.sign(b) == sign).mean()) if len(b) else np.nan,
            "share_p10_crv1": float((p < 0.1).mean()) if len(p) else np.nan,
            "share_p10_wcr": float((wcr < 0.1).mean()) if len(wcr) else np.nan}


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


def run(processed: Path = config.DATA_PROCESSED, outputs: Path = config.OUTPUTS,
        spec_path: Path = config.SPECS / "robustness.yaml",
        model_spec_path: Path = config.SPECS / "models.yaml") -> pd.DataFrame:
    started = time.perf_counter()
    spec = load_robustness_spec(spec_path)
    models = load_model_spec(model_spec_path)
    model = {"dependent": models["dependent"], "terms": models["models"][spec["base_model"]],
             "controls": models["controls"], "centre": models["centre"]}
    terms = spec["curve_terms"]
    bootstrap = {**models["bootstrap"], "rademacher_enumeration": False, "all_terms": False}
    rows = []
    ivs: dict[str, dict] = {}
    for check in tqdm(spec["checks"], desc="[robustness] checks", unit="check",
                      file=sys.stdout, mininterval=0, ascii=True):
        check_rows, extra = run_check(check, model_for(check, model, models), processed,
                                      terms, bootstrap, spec["ri_seed"], models)
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
                "(studentised: CRV1 t; (1 + #|t*| >= |t|)/(1 + draws)). RI p-values in "
                "brackets are placebos: that scheme's size at 5% in make bench lies outside "
                f"[{SIZE_BAND[0]}, {SIZE_BAND[1]}]. IV rows: see iv_diagnostics; n.i. = not "
                "identified")
    if ivs:
        iv_table = iv_diagnostics_table(ivs)
        atomic_write_text(outputs / "iv_diagnostics.csv",
                          iv_table.to_csv(index=False, float_format="%.10g",
                                          lineterminator="\n"))
        frame_table(iv_table, tables / "iv_diagnostics",
                    "IV diagnostics: 2SLS with two-way FE, CRV1 SEs (pyfixest's small-sample "
                    "factor) and t(G-1) p-values; per endogenous term the cluster-robust "
                    "first-stage F and the Sanderson–Windmeijer conditional F; "
                    "Anderson–Rubin test with F(q, G-1) and its 95% set by grid inversion")
    summary = curve_summary(table, terms)
    frame_table(summary, tables / "specification_curve_summary",
                "Share of robustness variants that keep the main sign and are significant at 10%")
    atomic_write_text(outputs / "specification_curve_summary.csv",
                      summary.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
    plot_specification_curve(table[table["kind"] == "variant"], terms, figures)
    plot_leave_one_out(table, terms, figures)
    print("[robustness] heterogeneity: CLMV versus others, and by mineral chain", flush=True)
    hetero = run_heterogeneity(spec, model, processed, terms, bootstrap, models)
    frame_table(display_table(hetero, terms), tables / "heterogeneity",
                "Heterogeneity: CLMV versus the other members, and by mineral chain")
    atomic_write_text(outputs / "heterogeneity.csv",
                      hetero.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
    print(f"[robustness] {len(table)} rows in {time.perf_counter() - started:.1f}s", flush=True)
    print(summary.to_string(index=False), flush=True)
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.robustness",
        description="Run every check in specs/robustness.yaml (a variant of the base model) "
        "and write the robustness table, specification curve, leave-one-out figure and "
        "heterogeneity tables.")
    parser.add_argument("--spec", type=Path, default=config.SPECS / "robustness.yaml")
    args = parser.parse_args(argv)
    try:
        started = time.perf_counter()
        run(spec_path=args.spec)
        record_timing("robustness", time.perf_counter() - started)
    except DataError as error:
        print(f"[robustness] ERROR {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
