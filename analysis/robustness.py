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
from tqdm import tqdm

from analysis import config, inference
from analysis.estimation import add_interactions, estimate
from analysis.figures import save_figure
from analysis.io import DataError, atomic_write_text, read_parquet, record_timing
from analysis.models import load_model_spec
from analysis.tables import frame_table

KNOWN_KEYS = {"id", "label", "group", "replace", "lag", "winsorize", "drop_years",
              "drop_countries", "keep_countries", "double_demean", "panel", "jackknife",
              "permute", "iv"}


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
    needed = [model["dependent"], *base, *model["controls"]]
    keys = list(dict.fromkeys([entity, "iso3", "year"]))
    frame = frame[[*keys, *needed]].dropna().copy()
    for variable in check.get("winsorize") or []:
        frame[variable] = winsorize(frame[variable])
    for variable in model["centre"]:
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
def check_kind(check: dict) -> str:
    """variant (enters the specification curve), jackknife, placebo or iv."""
    if check.get("jackknife"):
        return "jackknife"
    if check.get("permute"):
        return "placebo"
    if check.get("iv"):
        return "iv"
    return "variant"


def _row(check: dict, result, terms: list[str], suffix: str = "", label: str | None = None,
         frame: pd.DataFrame | None = None) -> dict:
    row = {"check": check["id"] + suffix, "label": label or check["label"],
           "group": check.get("group", ""), "kind": check_kind(check), "n_obs": result.n_obs,
           "n_clusters": result.n_clusters, "within_r2": result.within_r2}
    for term in terms:
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


def permutation_test(frame: pd.DataFrame, model: dict, variable: str, scheme: str, draws: int,
                     seed: int, terms: list[str], entity: str = "iso3") -> dict[str, float]:
    """Randomisation-inference p-values: share of |b*| >= |b| over permuted data (+1 smoothing).

    scheme "years": the variable's values are shuffled across years within each country;
    scheme "countries": its values are shuffled across countries within each year. Centring and
    the interaction terms are recomputed on each permuted sample.
    """
    rng = np.random.default_rng(seed)
    regressors = [*model["terms"], *model["controls"]]
    observed = _coefficients(frame, model, regressors, entity)
    hits = dict.fromkeys(terms, 0)
    group = entity if scheme == "years" else "year"
    if scheme not in ("years", "countries"):
        raise ValueError(f"unknown permutation scheme {scheme!r}")
    positions = list(frame.groupby(group).indices.values())
    base_values = frame[variable].to_numpy()
    for _ in range(draws):
        permuted = frame.copy()
        values = base_values.copy()
        for idx in positions:
            values[idx] = base_values[rng.permutation(idx)]
        permuted[variable] = values - values.mean()
        permuted = add_interactions(permuted.drop(columns=[t for t in model["terms"] if ":" in t]),
                                    [t for t in model["terms"] if ":" in t])
        b = _coefficients(permuted, model, regressors, entity)
        for term in terms:
            hits[term] += abs(b[term]) >= abs(observed[term]) - 1e-15
    return {term: (hits[term] + 1) / (draws + 1) for term in terms}


def _coefficients(frame: pd.DataFrame, model: dict, regressors: list[str], entity: str
                  ) -> dict[str, float]:
    wide = inference.partial_out_fixed_effects(frame, [model["dependent"], *regressors],
                                               [entity, "year"])
    beta = np.linalg.lstsq(wide[regressors].to_numpy(), wide[model["dependent"]].to_numpy(),
                           rcond=None)[0]
    return dict(zip(regressors, beta, strict=True))


def iv_estimate(frame: pd.DataFrame, model: dict, endogenous: str, instrument: str,
                panel: pd.DataFrame, entity: str = "iso3") -> dict:
    """2SLS with two-way FE (partialled out), clustered by country.

    The endogenous variable and its interactions with the moderators are instrumented by the
    instrument and the same interactions with it (all centred). linearmodels IV2SLS on the
    FE-partialled data; CRV1 with linearmodels' finite-sample correction; p-values from t(G-1).
    """
    from linearmodels.iv import IV2SLS
    from scipy import stats

    data = frame.merge(panel[[entity, "year", instrument]].rename(
        columns={instrument: "_z"}), on=[entity, "year"], how="left").dropna(subset=["_z"])
    data["_z"] = data["_z"] - data["_z"].mean()
    endog_terms = [t for t in model["terms"] if endogenous in t.split(":")]
    exog_terms = [t for t in model["terms"] if t not in endog_terms] + model["controls"]
    z_terms = []
    for term in endog_terms:
        name = term.replace(endogenous, "_z")
        data[name] = np.prod([data[f] for f in name.split(":")], axis=0)
        z_terms.append(name)
    cols = [model["dependent"], *endog_terms, *exog_terms, *z_terms]
    wide = inference.partial_out_fixed_effects(data, cols, [entity, "year"])
    fit = IV2SLS(wide[model["dependent"]], wide[exog_terms], wide[endog_terms],
                 wide[z_terms]).fit(cov_type="clustered", clusters=data[entity].to_numpy())
    g = data["iso3"].nunique()
    t = fit.params / fit.std_errors
    p = pd.Series(2 * stats.t(g - 1).sf(np.abs(t)), index=fit.params.index)
    first_stage = fit.first_stage.diagnostics
    return {"params": fit.params, "se": fit.std_errors, "p": p, "n_obs": int(fit.nobs),
            "n_clusters": g, "first_stage_f": first_stage["f.stat"].to_dict()}


def run_check(check: dict, model: dict, processed: Path, terms: list[str], bootstrap: dict,
              seed: int) -> tuple[list[dict], dict]:
    """Rows for the robustness table, and extra detail (jackknife rows, RI p-values, IV)."""
    panel, entity, cluster = variant_panel(check.get("panel"), processed)
    regressors = [*model["terms"], *model["controls"]]
    frame = prepare_variant(panel, check, model, entity)
    if frame.empty:
        raise DataError(Path(check["id"]), "the variant leaves no complete observations")
    result = estimate(frame, check["id"], model["dependent"], regressors, (entity, "year"),
                      cluster, ["gpr", *terms], bootstrap)
    rows = [_row(check, result, ["gpr", *terms], frame=frame)]
    extra: dict = {}
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
        ri = permutation_test(frame, model, perm["variable"], perm["scheme"],
                              int(perm["draws"]), seed, tested, entity)
        for term, p in ri.items():
            rows[0][f"p_ri[{term}]"] = p
        extra["ri"] = ri
    if check.get("iv"):
        iv = iv_estimate(frame, model, check["iv"]["endogenous"], check["iv"]["instrument"],
                         panel, entity)
        row = {"check": check["id"], "label": check["label"], "group": check.get("group", ""),
               "kind": "iv", "n_obs": iv["n_obs"], "n_clusters": iv["n_clusters"], "within_r2": np.nan}
        for term in ["gpr", *terms]:
            row |= {f"b[{term}]": iv["params"][term], f"se[{term}]": iv["se"][term],
                    f"p[{term}]": iv["p"][term], f"p_wcr[{term}]": np.nan,
                    f"bstd[{term}]": iv["params"][term] * standardiser(frame, term,
                                                                        model["dependent"])}
        row["first_stage_f_min"] = min(iv["first_stage_f"].values())
        rows = [row]
        extra["iv"] = iv
    return rows, extra


def run_heterogeneity(spec: dict, model: dict, processed: Path, terms: list[str],
                      bootstrap: dict) -> pd.DataFrame:
    rows = []
    panel, entity, cluster = variant_panel(None, processed)
    regressors = [*model["terms"], *model["controls"]]
    for group in spec["heterogeneity"]["groups"]:
        check = {"group": "Country group", **group}
        frame = prepare_variant(panel, check, model, entity)
        res = estimate(frame, group["id"], model["dependent"], regressors, (entity, "year"),
                       cluster, ["gpr", *terms], bootstrap)
        rows.append(_row(check, res, ["gpr", *terms], frame=frame))
    if spec["heterogeneity"].get("by_chain"):
        chain_panel, entity, cluster = variant_panel("chain", processed)
        for chain in sorted(chain_panel["chain"].unique()):
            check = {"id": f"chain_{chain}", "label": f"Chain: {chain}", "group": "Mineral chain"}
            frame = prepare_variant(chain_panel[chain_panel["chain"] == chain], check, model,
                                    entity)
            res = estimate(frame, check["id"], model["dependent"], regressors,
                           (entity, "year"), cluster, ["gpr", *terms], bootstrap)
            rows.append(_row(check, res, ["gpr", *terms], frame=frame))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- outputs
def display_table(table: pd.DataFrame, terms: list[str]) -> pd.DataFrame:
    """Compact, paper-ready robustness table."""
    out = table[["label", "n_obs", "n_clusters"]].rename(
        columns={"label": "Check", "n_obs": "N", "n_clusters": "G"}).copy()
    for term in ["gpr", *terms]:
        name = term.replace("gpr", "GPR").replace(":rn", "×RN").replace(":ti", "×TI")
        out[f"b {name}"] = table[f"b[{term}]"].map(lambda v: f"{v:.4f}")
        out[f"p {name}"] = table[f"p[{term}]"].map(lambda v: f"{v:.3f}")
        out[f"WCR p {name}"] = table[f"p_wcr[{term}]"].map(
            lambda v: "" if pd.isna(v) else f"{v:.3f}")
        if f"p_ri[{term}]" in table and table[f"p_ri[{term}]"].notna().any():
            out[f"RI p {name}"] = table[f"p_ri[{term}]"].map(
                lambda v: "" if pd.isna(v) else f"{v:.3f}")
    if "first_stage_f_min" in table and table["first_stage_f_min"].notna().any():
        out["IV first-stage F (min)"] = table["first_stage_f_min"].map(
            lambda v: "" if pd.isna(v) else f"{v:.1f}")
    return out


def curve_summary(table: pd.DataFrame, terms: list[str], main_id: str = "main") -> pd.DataFrame:
    """Share of variants keeping the main sign, and significant at 10% (CRV1 and WCR)."""
    main = table[table["check"] == main_id].iloc[0]
    variants = table[(table["check"] != main_id) & (table["kind"] == "variant")]
    rows = []
    for term in ["gpr", *terms]:
        sign = np.sign(main[f"b[{term}]"])
        b = variants[f"b[{term}]"]
        rows.append({"term": term, "main_estimate": main[f"b[{term}]"],
                     "variants": int(b.notna().sum()),
                     "share_same_sign": float((np.sign(b) == sign).mean()),
                     "share_p10_crv1": float((variants[f"p[{term}]"] < 0.1).mean()),
                     "share_p10_wcr": float((variants[f"p_wcr[{term}]"] < 0.1).sum()
                                            / variants[f"p_wcr[{term}]"].notna().sum())})
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


def run(processed: Path = config.DATA_PROCESSED, outputs: Path = config.OUTPUTS,
        spec_path: Path = config.SPECS / "robustness.yaml",
        model_spec_path: Path = config.SPECS / "models.yaml") -> pd.DataFrame:
    started = time.perf_counter()
    spec = load_robustness_spec(spec_path)
    models = load_model_spec(model_spec_path)
    model = {"dependent": models["dependent"], "terms": models["models"][spec["base_model"]],
             "controls": models["controls"], "centre": models["centre"]}
    terms = spec["curve_terms"]
    bootstrap = {**models["bootstrap"], "rademacher_enumeration": False}
    rows = []
    for check in tqdm(spec["checks"], desc="[robustness] checks", unit="check",
                      file=sys.stdout, mininterval=0, ascii=True):
        check_rows, _ = run_check(check, model, processed, terms, bootstrap, spec["ri_seed"])
        rows += check_rows
    table = pd.DataFrame(rows)
    tables, figures = outputs / "tables", outputs / "figures"
    atomic_write_text(outputs / "robustness.csv",
                      table.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
    frame_table(display_table(table, terms), tables / "robustness",
                f"Robustness of the base model ({spec['base_model']}): estimates, CRV1 t(G-1) "
                "p-values, WCR bootstrap p-values (Webb) and randomisation-inference p-values")
    summary = curve_summary(table, terms)
    frame_table(summary, tables / "specification_curve_summary",
                "Share of robustness variants that keep the main sign and are significant at 10%")
    atomic_write_text(outputs / "specification_curve_summary.csv",
                      summary.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
    plot_specification_curve(table[table["kind"] == "variant"], terms, figures)
    plot_leave_one_out(table, terms, figures)
    print("[robustness] heterogeneity: CLMV versus others, and by mineral chain", flush=True)
    hetero = run_heterogeneity(spec, model, processed, terms, bootstrap)
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
