"""Stage 4, models: the moderated two-way FE models M1–M5 of METHODS.md section 5.

Reads ``data/processed/panel.parquet`` and ``specs/models.yaml``. Writes
``data/processed/estimation_panel.parquet`` (the exact estimation frame, centred terms included),
``outputs/estimates.csv`` (tidy, one row per model × term), ``outputs/cluster_influence.csv``
(one row per model × key term × cluster), ``outputs/tables/main_results.*`` with the companion
``main_results_pvalues.*`` and ``cluster_influence.*``, descriptive statistics and correlations,
marginal effects (delta-method CIs and studentised wild-bootstrap-t bands),
Johnson–Neyman intervals, the binned linearity check and their figures.

Run ``python -m analysis.models --help``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config, marginal, specs
from analysis.estimation import (
    INFLUENCE_COLUMNS,
    ModelResult,
    add_interactions,
    centre,
    estimate,
    tidy,
)
from analysis.figures import save_figure
from analysis.inference import wild_bootstrap_t_linear
from analysis.io import (
    DataError,
    add_verbose_argument,
    atomic_write_text,
    display_path,
    parquet_columns,
    read_parquet,
    run_stage,
    write_parquet,
)
from analysis.schemas import ESTIMATION_SCHEMA, validate
from analysis.tables import (
    P_VALUE_CONVENTION,
    frame_table,
    high_leverage_note,
    write_docx,
    write_regression_table,
)

ESTIMATES_COLUMNS = ["model", "term", "estimate", "std_error", "p_value", "se_crv3", "se_dk",
                     "p_wcr", "p_wcr_rademacher", "n_obs", "n_clusters", "within_r2", "formula",
                     "p_crv3", "p_dk", "se_crv3_pyfixest", "n_periods"]


def load_model_spec(path: Path = config.SPECS / "models.yaml",
                    processed: Path | None = None) -> dict:
    """``specs/models.yaml``, validated (:class:`analysis.specs.ModelsSpec`); with
    ``processed``, every variable and term is also checked against the columns of the panel
    the spec names, so a typo is reported against the spec file, the model and the term."""
    context_from = None
    if processed is not None:
        def context_from(data):
            panel = processed / data["panel"]
            return {"columns": set(parquet_columns(panel)), "columns_file": display_path(panel)}
    return specs.load(path, "models", context_from=context_from)


def model_variables(spec: dict) -> list[str]:
    base = {t for terms in spec["models"].values() for term in terms for t in term.split(":")}
    return [spec["dependent"], *sorted(base), *spec["controls"]]


def estimation_frame(panel: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, dict[str, float]]:
    """The common estimation sample, with centred focal and moderator variables.

    Rows: country-years complete in every variable of every model (so M1–M5 share one sample).
    The uncentred values are kept as ``<name>_raw``; ``gpr``, ``rn`` and ``ti`` are centred on
    this sample, and every interaction term is added as a column named like the term.
    """
    fe = spec["fixed_effects"]
    variables = model_variables(spec)
    missing = [v for v in variables if v not in panel]
    if missing:
        raise DataError(config.DATA_PROCESSED / spec["panel"], "variables missing", missing[0])
    frame = panel[[*fe, *variables]].dropna().copy()
    # A country with a single complete year has no within variation: with country effects it is
    # fitted exactly and adds nothing but a spurious cluster (pyfixest and fixest drop such
    # singletons by default), so it leaves the sample.
    counts = frame.groupby(fe[0])[fe[1]].transform("size")
    frame = frame[counts >= 2].copy()
    for name in spec["centre"]:
        frame[f"{name}_raw"] = frame[name]
    frame, means = centre(frame, spec["centre"])
    terms = sorted({t for terms in spec["models"].values() for t in terms}, key=len)
    frame = add_interactions(frame, terms)
    return frame.sort_values(fe).reset_index(drop=True), means


def fit_models(frame: pd.DataFrame, spec: dict, bootstrap: dict | str | None = "spec",
               progress: bool = True, only: list[str] | None = None) -> list[ModelResult]:
    """Estimate every model of the spec (or the models named in ``only``) on ``frame``.

    ``bootstrap``: ``"spec"`` (default) uses the spec's bootstrap settings, a dict other
    settings, and None skips the wild cluster bootstrap (its p-values are then missing)."""
    results = []
    chosen = spec["bootstrap"] if isinstance(bootstrap, str) and bootstrap == "spec" \
        else bootstrap
    for name, terms in spec["models"].items():
        if only is not None and name not in only:
            continue
        started = time.perf_counter()
        result = estimate(frame, name, spec["dependent"], [*terms, *spec["controls"]],
                          tuple(spec["fixed_effects"]), spec["cluster"], spec["key_terms"],
                          chosen, spec["driscoll_kraay"]["kernel"])
        if progress:
            print(f"[models] {name}: N={result.n_obs}, G={result.n_clusters}, "
                  f"{time.perf_counter() - started:.1f}s", flush=True)
        results.append(result)
    return results


def estimates_frame(results: list[ModelResult]) -> pd.DataFrame:
    return pd.concat([tidy(r) for r in results], ignore_index=True)[ESTIMATES_COLUMNS]


def influence_frame(results: list[ModelResult]) -> pd.DataFrame:
    """``outputs/cluster_influence.csv``: one row per model x key term x cluster."""
    frames = [r.influence for r in results if r.influence is not None]
    if not frames:
        return pd.DataFrame(columns=INFLUENCE_COLUMNS)
    return pd.concat(frames, ignore_index=True)[INFLUENCE_COLUMNS]


def influence_summary(influence: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """Per model x term: the cluster with the largest partial leverage, G* and the LOO range."""
    rows = []
    for (model, term), group in influence.groupby(["model", "term"], sort=False):
        top = group.loc[group["partial_leverage"].idxmax()]
        rows.append({"model": model, "term": labels.get(term, term),
                     "largest leverage": top["cluster"],
                     "partial leverage": top["partial_leverage"],
                     "G*": group["g_star"].iloc[0],
                     "LOO estimate min": group["estimate_loo"].min(),
                     "LOO estimate max": group["estimate_loo"].max(),
                     "leverage > 0.5": "yes" if top["partial_leverage"] > 0.5 else ""})
    return pd.DataFrame(rows)


def pvalue_table(estimates: pd.DataFrame, labels: dict[str, str], order: list[str]
                 ) -> pd.DataFrame:
    """Every coefficient with its p-value under each inference the pipeline computes."""
    rank = {t: i for i, t in enumerate(order)}
    out = estimates.assign(_r=estimates["term"].map(rank)).sort_values(["model", "_r"])
    return pd.DataFrame({
        "model": out["model"], "term": out["term"].map(lambda t: labels.get(t, t)),
        "estimate": out["estimate"], "SE CRV1": out["std_error"], "p CRV1": out["p_value"],
        "SE CRV3 (MNW)": out["se_crv3"], "p CRV3": out["p_crv3"],
        "SE DK": out["se_dk"], "p DK": out["p_dk"],
        "p WCR Webb": out["p_wcr"], "p WCR Rademacher (enum.)": out["p_wcr_rademacher"]})


def write_estimates(frame: pd.DataFrame, path: Path) -> Path:
    """CSV with a fixed float format, so repeated runs are byte-identical."""
    return atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g",
                                                lineterminator="\n"))


# --------------------------------------------------------------------------- marginal effects
def marginal_effects(result: ModelResult, frame: pd.DataFrame, spec: dict) -> dict:
    """dSYN/dGPR at percentiles of each moderator (the other held at its mean, 0 after centring),
    with delta-method CIs (CRV1, t(G-1)) and symmetric studentised wild-bootstrap-t bands with
    the same CRV1 small-sample factor (:func:`analysis.inference.wild_bootstrap_t_linear`,
    year effects re-estimated in every draw, :func:`analysis.marginal.studentized_band`)."""
    focal = spec["focal"]
    params = result.table["estimate"]
    df = result.n_clusters - 1
    design = result.design
    boot = spec["bootstrap"]

    def band(grid_values: dict) -> pd.DataFrame:
        grad, _ = marginal.marginal_effect_gradient(result.regressors, focal, grid_values)
        R = np.zeros((grad.shape[0], design.X.shape[1]))
        R[:, :grad.shape[1]] = grad
        theta, se, t_draws = wild_bootstrap_t_linear(
            design.y, design.X, design.clusters, R, B=int(boot["band_draws"]),
            weights=boot["weights"], seed=int(boot["seed"]), n_absorbed=design.n_absorbed)
        return marginal.studentized_band(theta, se, t_draws)

    out: dict = {"percentiles": [], "curves": {}, "johnson_neyman": {}}
    for moderator in spec["moderators"]:
        others = {m: 0.0 for m in spec["moderators"] if m != moderator and m in params.index}
        values = np.percentile(frame[moderator], spec["marginal_effects"]["percentiles"])
        table = marginal.marginal_effect(params, result.vcov_crv1, focal,
                                         {moderator: values, **others}, df)
        boot_band = band({moderator: values, **others})
        table["percentile"] = spec["marginal_effects"]["percentiles"]
        table["moderator"] = moderator
        table["moderator_raw"] = values + frame[f"{moderator}_raw"].mean()
        table["boot_t_low"] = boot_band["ci_low"].to_numpy()
        table["boot_t_high"] = boot_band["ci_high"].to_numpy()
        out["percentiles"].append(table)
        grid = np.linspace(frame[moderator].min(), frame[moderator].max(), 60)
        curve = marginal.marginal_effect(params, result.vcov_crv1, focal,
                                         {moderator: grid, **others}, df)
        curve_band = band({moderator: grid, **others})
        curve["boot_t_low"] = curve_band["ci_low"].to_numpy()
        curve["boot_t_high"] = curve_band["ci_high"].to_numpy()
        out["curves"][moderator] = curve
        out["johnson_neyman"][moderator] = marginal.johnson_neyman(
            params, result.vcov_crv1, focal, moderator, df, other_moderators_at=others,
            observed_range=(float(frame[moderator].min()), float(frame[moderator].max())))
    return out


def plot_marginal_effects(effects: dict, frame: pd.DataFrame, spec: dict, figures: Path,
                          model_name: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    moderators = spec["moderators"]
    fig, axes = plt.subplots(1, len(moderators), figsize=(5.5 * len(moderators), 4.2))
    for ax, moderator in zip(np.atleast_1d(axes), moderators, strict=True):
        curve = effects["curves"][moderator]
        x = curve[moderator]
        ax.fill_between(x, curve["ci_low"], curve["ci_high"], color="#9ecae1", alpha=0.6,
                        label="95% CI, delta method (CRV1, t(G-1))")
        ax.plot(x, curve["boot_t_low"], color="#08519c", ls="--", lw=1,
                label="95% band, wild cluster bootstrap-t (CRV1 scale)")
        ax.plot(x, curve["boot_t_high"], color="#08519c", ls="--", lw=1)
        ax.plot(x, curve["estimate"], color="black", lw=1.8, label="dSYN/dGPR")
        ax.axhline(0, color="grey", lw=0.8)
        rug = frame[moderator].to_numpy()
        ax.plot(rug, np.full_like(rug, ax.get_ylim()[0]), "|", color="grey", alpha=0.5)
        ax.set_xlabel(f"{moderator.upper()} (centred)")
        ax.set_ylabel("marginal effect of GPR on SYN")
        ax.set_title(f"{model_name}: effect of GPR across {moderator.upper()}")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="best")
    fig.tight_layout()
    return save_figure(fig, figures / "marginal_effects")


def plot_binned(binned: dict[str, pd.DataFrame], figures: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(binned), figsize=(5.5 * len(binned), 4.0))
    for ax, (moderator, table) in zip(np.atleast_1d(axes), binned.items(), strict=True):
        ax.errorbar(table["z_median"], table["estimate"],
                    yerr=[table["estimate"] - table["ci_low"], table["ci_high"] - table["estimate"]],
                    fmt="o", color="#b30000", capsize=4, label="binned estimate (terciles)")
        ax.plot(table["z_median"], table["linear_estimate"], "k--",
                label="linear interaction model")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel(f"{moderator.upper()} (centred), bin medians")
        ax.set_ylabel("dSYN/dGPR")
        ax.set_title(f"Linearity check: GPR × {moderator.upper()}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, figures / "binned_linearity")


def descriptive_statistics(frame: pd.DataFrame, variables: list[str],
                           labels: dict[str, str]) -> pd.DataFrame:
    rows = []
    for v in variables:
        s = frame[v]
        rows.append({"variable": labels.get(v, v), "N": int(s.notna().sum()), "mean": s.mean(),
                     "sd": s.std(), "min": s.min(), "p50": s.median(), "max": s.max()})
    return pd.DataFrame(rows)


def run(processed: Path = config.DATA_PROCESSED, outputs: Path = config.OUTPUTS,
        spec_path: Path = config.SPECS / "models.yaml") -> list[ModelResult]:
    started = time.perf_counter()
    spec = load_model_spec(spec_path, processed)
    tables, figures = outputs / "tables", outputs / "figures"
    panel = read_parquet(processed / spec["panel"])
    frame, means = estimation_frame(panel, spec)
    years = f"{frame['year'].min()}–{frame['year'].max()}"
    print(f"[models] estimation sample: {len(frame)} country-years, "
          f"{frame['iso3'].nunique()} countries, {years}; centring means "
          + ", ".join(f"{k}={v:.4g}" for k, v in means.items()), flush=True)
    if spec["dependent"] == "syn":
        validate(frame, ESTIMATION_SCHEMA, processed / "estimation_panel.parquet")
    write_parquet(frame, processed / "estimation_panel.parquet")
    boot = spec["bootstrap"]
    print(f"[models] M1–M5 with CRV1, CRV3, Driscoll–Kraay and WCR bootstrap "
          f"(Webb, B={boot['B']:,}, seed {boot['seed']}; Rademacher 2^G enumeration; year effects "
          "re-estimated in every draw)", flush=True)
    results = fit_models(frame, spec)
    estimates = estimates_frame(results)
    write_estimates(estimates, outputs / "estimates.csv")

    influence = influence_frame(results)
    write_estimates(influence, outputs / "cluster_influence.csv")

    labels = spec["labels"]
    order = [*spec["models"]["M5"], *spec["controls"]]
    convention = P_VALUE_CONVENTION.format(B=int(boot["B"]), seed=boot["seed"])
    leverage = high_leverage_note(influence, labels)
    note = (f"Two-way FE (country, year) estimated with linearmodels PanelOLS; GPR, RN and TI "
            f"mean-centred on the estimation sample ({years}). Standard errors in parentheses: "
            "CRV1 clustered by country. Stars from CRV1 with t(G-1): * p<0.1, ** p<0.05, "
            f"*** p<0.01. {convention} CRV3 and enumeration p-values: companion table "
            f"main_results_pvalues. {leverage}").strip()
    write_regression_table(results, labels, order, tables / "main_results",
                           "Geopolitical risk and China–ASEAN mineral-chain synergy", note)
    wcr_note = note.replace("Stars from CRV1 with t(G-1)",
                            "Stars on every row (controls included) from the WCR bootstrap "
                            "(Webb)")
    write_regression_table(results, labels, order, tables / "main_results_wcr_stars",
                           "Main results, stars from the wild cluster bootstrap", wcr_note,
                           star_source="p_wcr")
    write_docx(results, labels, order, tables / "main_results.docx",
               "Geopolitical risk and China–ASEAN mineral-chain synergy", note)
    frame_table(pvalue_table(estimates, labels, order), tables / "main_results_pvalues",
                "p-values of every coefficient under each inference (companion to the main "
                "table). " + convention + (" " + leverage if leverage else ""),
                float_format="%.4f")
    frame_table(influence_summary(influence, labels), tables / "cluster_influence",
                "Cluster influence of the key terms: largest partial leverage, effective "
                "number of clusters G*(0) (Carter, Schnepel & Steigerwald 2017) and the range "
                "of leave-one-country-out estimates")

    raw_vars = [spec["dependent"], *[f"{c}_raw" for c in spec["centre"]], *spec["controls"]]
    raw_labels = {f"{c}_raw": labels.get(c, c) for c in spec["centre"]} | labels | {
        spec["dependent"]: "SYN"}
    frame_table(descriptive_statistics(frame, raw_vars, raw_labels),
                tables / "descriptive_statistics",
                f"Descriptive statistics, estimation sample (N = {len(frame)})")
    corr = frame[raw_vars].corr().round(3)
    corr.index = [raw_labels.get(v, v) for v in corr.index]
    corr.columns = corr.index
    frame_table(corr.reset_index(names="variable"), tables / "correlations",
                "Pearson correlations, estimation sample", float_format="%.3f")

    me_model = next(r for r in results if r.name == spec["marginal_effects"]["model"])
    effects = marginal_effects(me_model, frame, spec)
    me_table = pd.concat(effects["percentiles"], ignore_index=True)[
        ["moderator", "percentile", "moderator_raw", "estimate", "std_error", "p_value",
         "ci_low", "ci_high", "boot_t_low", "boot_t_high"]]
    frame_table(me_table, tables / "marginal_effects",
                f"dSYN/dGPR at percentiles of each moderator ({me_model.name})")
    jn_rows = [{"moderator": m, "region": jn["region"], "roots": ", ".join(
        f"{r:.4f}" for r in jn["roots"]), "description": jn["description"],
        "significant within the observed range": "; ".join(
            f"{a:.4f} to {b:.4f}" for a, b in jn["significant_in_range"]) or "nowhere"}
        for m, jn in effects["johnson_neyman"].items()]
    frame_table(pd.DataFrame(jn_rows), tables / "johnson_neyman",
                f"Johnson–Neyman intervals for dSYN/dGPR ({me_model.name}, 95%)")
    plot_marginal_effects(effects, frame, spec, figures, me_model.name)
    binned = {}
    me_terms = spec["models"][me_model.name]
    for moderator in spec["moderators"]:
        others = [m for m in spec["moderators"] if m != moderator]
        # inside the marginal-effects model: the other moderators and their interactions
        # with the focal variable are in both the binned and the linear model
        extra = [t for t in me_terms if ":" in t and moderator not in t.split(":")]
        binned[moderator] = marginal.binned_interaction(
            frame, spec["dependent"], spec["focal"], moderator,
            [*[m for m in others if m in me_terms], *spec["controls"]],
            spec["fixed_effects"], n_bins=3, cluster=spec["cluster"], extra_terms=extra)
    frame_table(pd.concat([b.assign(moderator=m) for m, b in binned.items()], ignore_index=True),
                tables / "binned_linearity",
                f"Binned estimator (terciles) versus the linear model, both inside "
                f"{me_model.name} (other moderator and its interaction with GPR included)")
    plot_binned(binned, figures)
    print(f"[models] wrote outputs/estimates.csv and tables/figures in "
          f"{time.perf_counter() - started:.1f}s", flush=True)
    print(estimates[estimates["term"].isin(spec["key_terms"])][
        ["model", "term", "estimate", "std_error", "p_value", "p_wcr", "p_wcr_rademacher"]]
        .to_string(index=False), flush=True)
    return results


KEY_COLUMNS = ["model", "term", "estimate", "std_error", "p_value", "p_wcr", "p_wcr_rademacher"]


def run_only(names: list[str], processed: Path = config.DATA_PROCESSED,
             spec_path: Path = config.SPECS / "models.yaml") -> pd.DataFrame:
    """Estimate only the named models on the common sample and print their coefficients;
    writes nothing (``--only``)."""
    spec = load_model_spec(spec_path, processed)
    for name in names:
        if name not in spec["models"]:
            raise DataError(spec_path, f"--only {name}: no such model "
                            f"({', '.join(spec['models'])}){specs.did_you_mean(name, spec['models'])}",
                            entry="models")
    frame, _ = estimation_frame(read_parquet(processed / spec["panel"]), spec)
    estimates = estimates_frame(fit_models(frame, spec, only=names))
    print(estimates[KEY_COLUMNS].to_string(index=False), flush=True)
    return estimates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.models",
        description="Estimate M1–M5 (specs/models.yaml) on data/processed/panel.parquet with "
        "CRV1/CRV3/Driscoll–Kraay and the wild cluster restricted bootstrap; write tables, "
        "figures and outputs/estimates.csv.")
    parser.add_argument("--spec", type=Path, default=config.SPECS / "models.yaml")
    parser.add_argument("--only", nargs="+", metavar="MODEL",
                        help="estimate only these models (e.g. --only M4) on the common sample "
                        "and print their coefficients; writes nothing")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    if args.only:
        return run_stage("models", lambda: run_only(args.only, spec_path=args.spec),
                         verbose=True, record=False)
    return run_stage("models", lambda: run(spec_path=args.spec), verbose=args.verbose or None,
                     summary=lambda results: (
                         f"{', '.join(r.name for r in results)} on N = {results[0].n_obs}, "
                         f"G = {results[0].n_clusters} -> outputs/estimates.csv, "
                         "outputs/tables/main_results.*"))


if __name__ == "__main__":
    sys.exit(main())
