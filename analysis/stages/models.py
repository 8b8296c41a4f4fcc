"""Stage 4, models: the moderated two-way FE models M1–M5 of METHODS.md section 5.

Reads ``data/processed/panel.parquet`` and ``specs/models.yaml``. Writes
``data/processed/estimation_panel.parquet`` (the exact estimation frame, centred terms included),
``outputs/estimates.csv`` (tidy, one row per model × term), ``outputs/cluster_influence.csv``
(one row per model × key term × cluster), ``outputs/tables/main_results.*`` with the companion
``main_results_pvalues.*`` and ``cluster_influence.*`` (the main table's stars come from the
WCR bootstrap, its parentheses hold the CRV3 SE), descriptive statistics and correlations,
marginal effects (delta-method CIs, pointwise and simultaneous studentised wild-bootstrap-t
bands), Johnson–Neyman regions with their support (``outputs/johnson_neyman.csv``), the binned
linearity check, their figures, and ``outputs/power.csv`` with ``outputs/tables/power.*`` (MDEs
and equivalence tests of every key term, :func:`power_analysis`). The table notes quote the
test sizes ``make bench BENCH_ARGS="--size --record"`` measured at this design
(``specs/inference_sizes.yaml``).

Run ``python -m analysis.stages.models --help``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis import config
from analysis.data import specs
from analysis.data.io import (
    DataError,
    add_verbose_argument,
    atomic_write_text,
    display_path,
    read_parquet,
    run_stage,
    write_parquet,
)
from analysis.data.schemas import estimation_schema, validate
from analysis.econometrics import inference, marginal, power
from analysis.econometrics.estimation import (
    INFLUENCE_COLUMNS,
    ModelResult,
    tidy,
)
from analysis.econometrics.moderated import (
    design_summary,
    estimation_frame,
    fit_models,
    load_model_spec,
    load_sizes,
)
from analysis.publish.figures import save_figure
from analysis.publish.tables import (
    P_VALUE_CONVENTION,
    frame_table,
    high_leverage_note,
    write_docx,
    write_regression_table,
)

ESTIMATES_COLUMNS = ["model", "term", "estimate", "std_error", "p_value", "se_crv3", "se_dk",
                     "p_wcr", "p_wcr_rademacher", "n_obs", "n_clusters", "within_r2", "formula",
                     "p_crv3", "p_dk", "se_crv3_pyfixest", "n_periods"]


POWER_COLUMNS = ["model", "term", "mde_crv1", "mde_crv3", "mde_wcr_sim", "mde_sd_units", "sesoi",
                 "tost_p", "estimate", "estimate_sd", "se_crv1", "se_crv3", "p_wcr",
                 "mde_crv1_sd", "mde_crv3_sd", "sd_within_term", "sd_within_outcome",
                 "sesoi_coef", "tost_p_crv3", "p_crv3", "ci90_low_sd", "ci90_high_sd", "verdict",
                 "wcr_size_sim", "rho", "sim_reps", "n_obs", "n_clusters", "n_periods"]


#: Defaults of the ``power`` block of specs/models.yaml.
POWER_DEFAULTS = {"alpha": 0.05, "power": 0.8, "sesoi_sd": 0.2, "reps": 400,
                  "bootstrap_draws": 399, "seed": 20261123, "calibration_reps": 200}


#: Multiples of the analytic CRV3 MDE at which the WCR power is simulated (0 gives its size).
MDE_GRID = np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0])


SIZE_BAND = (0.025, 0.075)  # Bradley (1978) liberal criterion at 5%


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
        "SE DK (variant)": out["se_dk"], "p DK (variant)": out["p_dk"],
        "p WCR Webb": out["p_wcr"], "p WCR Rademacher (enum.)": out["p_wcr_rademacher"]})


def write_estimates(frame: pd.DataFrame, path: Path) -> Path:
    """CSV with a fixed float format, so repeated runs are byte-identical."""
    return atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g",
                                                lineterminator="\n"))


def sizes_status(sizes: dict | None, design: dict) -> tuple[bool, str]:
    """(match, sentence): whether the recorded sizes were measured at this design."""
    if not sizes:
        return False, ("Test sizes at this design have not been measured: run make bench "
                       "BENCH_ARGS=\"--size --record\".")
    recorded = sizes.get("design", {})
    keys = ("n_obs", "n_clusters", "n_periods", "clusters")
    if all(recorded.get(k) == design[k] for k in keys):
        return True, ""
    return False, (f"The recorded test sizes were measured at N = {recorded.get('n_obs')}, "
                   f"G = {recorded.get('n_clusters')}, T = {recorded.get('n_periods')}, not at "
                   f"this sample's N = {design['n_obs']}, G = {design['n_clusters']}, "
                   f"T = {design['n_periods']}: re-run make bench BENCH_ARGS=\"--size "
                   "--record\".")


def method_size(sizes: dict | None, method: str) -> float | None:
    """The largest rejection rate at 5% of ``method`` over the key terms, or None."""
    if not sizes:
        return None
    entry = (sizes.get("methods") or {}).get(method)
    return None if entry is None else float(entry["size"])


def method_size_range(sizes: dict | None, method: str) -> tuple[float, float] | None:
    """The smallest and largest rejection rate at 5% of ``method`` over the key terms."""
    entry = ((sizes or {}).get("methods") or {}).get(method)
    if not entry:
        return None
    rates = [float(v) for v in entry["terms"].values()]
    return min(rates), max(rates)


def size_sentence(sizes: dict | None, design: dict) -> str:
    """One sentence with the measured sizes of WCR, CRV3 and CRV1 at this design."""
    match, warning = sizes_status(sizes, design)
    if not match:
        return warning
    parts = []
    for method, label in (("WCR", "WCR (Webb)"), ("CRV3", "CRV3"), ("CRV1", "CRV1")):
        span = method_size_range(sizes, method)
        if span is not None:
            parts.append(f"{label} {span[0]:.1%}–{span[1]:.1%}")
    sim = sizes.get("simulation", {})
    return (f"Rejection rates at 5% under a true null over the key terms, simulated on this "
            f"design (N = {design['n_obs']}, G = {design['n_clusters']}, "
            f"T = {design['n_periods']}; {sim.get('reps')} replications, make bench): "
            + ", ".join(parts) + ".")


def dk_sentence(sizes: dict | None, design: dict) -> str:
    """How Driscoll–Kraay is reported: a variant if its measured size is outside the band."""
    match, _ = sizes_status(sizes, design)
    dk = method_size(sizes, "DK") if match else None
    if dk is None:
        return ("Driscoll–Kraay (t(T-1)) is reported as a variant only: its size at this "
                "design has not been measured.")
    low, high = method_size_range(sizes, "DK") or (dk, dk)
    if SIZE_BAND[0] <= low and high <= SIZE_BAND[1]:
        return f"Driscoll–Kraay (t(T-1)) rejects {low:.1%}–{high:.1%} at 5% on this design."
    return (f"Driscoll–Kraay (t(T-1), Bartlett bandwidth floor(4(T/100)^(2/9))) rejects "
            f"{low:.1%}–{high:.1%} at 5% under a true null on this design: a variant, not a "
            "test.")


# --------------------------------------------------------------------------- power
def power_analysis(results: list[ModelResult], frame: pd.DataFrame, spec: dict
                   ) -> pd.DataFrame:
    """``outputs/power.csv``: for every key term of every model, what the design can detect.

    * ``mde_crv1``, ``mde_crv3``: analytic MDE at ``power`` (80%) of a two-sided ``alpha`` (5%)
      t test with t(G-1) (:func:`analysis.econometrics.power.analytic_mde`), coefficient units;
    * ``mde_wcr_sim``: the MDE of the WCR test (Webb, ``bootstrap_draws`` draws) simulated on
      the real regressors and clusters: ``y = delta x_j + u``, ``u`` AR(1) within country with
      the Nickell-corrected autocorrelation of the model's residuals and country scales that
      reproduce each country's residual SD (:mod:`analysis.econometrics.power`), ``reps`` samples, power
      interpolated on :data:`MDE_GRID` multiples of the CRV3 MDE (``inf``: 80% not reached at
      6 times it); ``wcr_size_sim`` is the rejection rate at delta = 0;
    * ``mde_sd_units``: ``mde_wcr_sim`` in within-SDs of the outcome per within-SD of the term
      (two-way demeaned SDs on the estimation sample); ``mde_crv1_sd``, ``mde_crv3_sd`` alike;
    * ``sesoi``: the smallest effect of interest in the same SD units (spec ``sesoi_sd``, 0.2:
      a one-SD change in the term moving SYN by a fifth of its within-SD, Cohen's "small");
      ``tost_p``: two one-sided WCR tests of ``|beta| >= sesoi`` (:func:`analysis.econometrics.power.wcr_tost`,
      the main test's B, weights and seed); ``tost_p_crv3`` the same with CRV3 and t(G-1);
      ``ci90_low_sd``/``ci90_high_sd``: the 90% CRV3 t(G-1) interval in SD units;
    * ``verdict``: :func:`analysis.econometrics.power.equivalence_verdict` of the WCR p and ``tost_p``,
      checked against the CRV3 p (``p_crv3``) and ``tost_p_crv3``: a conclusion only the WCR
      pair reaches says so ("... by WCR only (CRV3: ...)").
    """
    settings = {**POWER_DEFAULTS, **(spec.get("power") or {})}
    alpha, target = float(settings["alpha"]), float(settings["power"])
    entity, time = spec["fixed_effects"]
    boot = spec["bootstrap"]
    rng = np.random.default_rng(int(settings["seed"]))
    sd_y = power.within_sd(frame[spec["dependent"]].to_numpy(), frame[[entity, time]])
    rows = []
    for result in results:
        terms = [t for t in spec["key_terms"] if t in result.regressors]
        if not terms:
            continue
        design = result.design
        G, df = result.n_clusters, result.n_clusters - 1
        sim = power.SimulationDesign.from_cluster_design(design, result.periods,
                                                         dk_bandwidth=result.dk_bandwidth)
        beta = sim.xx_inv @ (design.X.T @ design.y)
        resid = design.y - design.X @ beta
        ar = power.estimate_ar1(resid, design.clusters, result.periods)
        target_sd = np.sqrt(np.array([np.mean(resid[sim.unit_codes == g] ** 2)
                                      for g in range(sim.n_units)]))
        scales = power.calibrate_scales(sim, target_sd, ar["rho"], rng,
                                        int(settings["calibration_reps"]))
        errors = power.ar1_errors(rng, design.clusters, result.periods, ar["rho"],
                                  int(settings["reps"]), scales)
        null = sim.partial_nested(errors)
        v, _ = inference.draw_wild_weights(G, int(settings["bootstrap_draws"]), "webb",
                                           int(settings["seed"]))
        for term in terms:
            j = result.regressors.index(term)
            row = result.table.loc[term]
            b, se1, se3 = float(row["estimate"]), float(row["std_error"]), float(row["se_crv3"])
            sd_x = power.within_sd(frame[term].to_numpy(), frame[[entity, time]])
            to_sd = sd_x / sd_y
            mde1, mde3 = float(power.analytic_mde(se1, df, alpha, target)), \
                float(power.analytic_mde(se3, df, alpha, target))
            grid = MDE_GRID * mde3
            curve = power.wcr_power_curve(sim, j, null, grid, v, alpha)
            mde_sim = power.mde_from_power_curve(grid, curve, target)
            sesoi_coef = float(settings["sesoi_sd"]) / to_sd
            tost_wcr = power.wcr_tost(design.y, design.X, design.clusters, j, sesoi_coef,
                                      B=int(boot["B"]), weights=boot["weights"],
                                      seed=int(boot["seed"]), n_absorbed=design.n_absorbed)
            tost_crv3 = power.tost(b, se3, sesoi_coef, df)
            half = stats.t(df).ppf(1 - alpha) * se3
            rows.append({
                "model": result.name, "term": term, "mde_crv1": mde1, "mde_crv3": mde3,
                "mde_wcr_sim": mde_sim, "mde_sd_units": mde_sim * to_sd,
                "sesoi": float(settings["sesoi_sd"]), "tost_p": tost_wcr["p"],
                "estimate": b, "estimate_sd": b * to_sd, "se_crv1": se1, "se_crv3": se3,
                "p_wcr": float(row["p_wcr"]), "mde_crv1_sd": mde1 * to_sd,
                "mde_crv3_sd": mde3 * to_sd, "sd_within_term": sd_x, "sd_within_outcome": sd_y,
                "sesoi_coef": sesoi_coef, "tost_p_crv3": tost_crv3["p"],
                "ci90_low_sd": (b - half) * to_sd, "ci90_high_sd": (b + half) * to_sd,
                "p_crv3": float(row["p_crv3"]),
                "verdict": power.equivalence_verdict(float(row["p_wcr"]), tost_wcr["p"], alpha,
                                                     float(row["p_crv3"]), tost_crv3["p"]),
                "wcr_size_sim": float(curve[0]), "rho": ar["rho"],
                "sim_reps": int(settings["reps"]), "n_obs": result.n_obs, "n_clusters": G,
                "n_periods": result.n_periods})
    return pd.DataFrame(rows, columns=POWER_COLUMNS)


def power_display(table: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """The power table as the report and the paper show it (SD units first)."""
    return pd.DataFrame({
        "model": table["model"], "term": table["term"].map(lambda t: labels.get(t, t)),
        "estimate (SD units)": table["estimate_sd"],
        "90% CI (CRV3, SD units)": [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in
                                    zip(table["ci90_low_sd"], table["ci90_high_sd"],
                                        strict=True)],
        "MDE CRV1": table["mde_crv1_sd"], "MDE CRV3": table["mde_crv3_sd"],
        "MDE WCR (simulated)": table["mde_sd_units"], "SESOI": table["sesoi"],
        "WCR p": table["p_wcr"], "TOST p (WCR)": table["tost_p"],
        "can the data tell?": table["verdict"]})


# --------------------------------------------------------------------------- marginal effects
def marginal_effects(result: ModelResult, frame: pd.DataFrame, spec: dict) -> dict:
    """dSYN/dGPR at percentiles of each moderator (the other held at its mean, 0 after centring),
    with delta-method CIs (CRV1, t(G-1)), pointwise and simultaneous studentised
    wild-bootstrap-t bands with the same CRV1 small-sample factor
    (:func:`analysis.econometrics.inference.wild_bootstrap_t_linear`, year effects re-estimated in every
    draw, :func:`analysis.econometrics.marginal.studentized_band`), and the Johnson–Neyman regions of both
    tests with their support (:func:`analysis.econometrics.marginal.region_support`).

    The simultaneous (sup-t) band over 60 points spanning the observed range of the moderator
    is the main test: its critical value ``q_sup`` replaces t(G-1) in the Johnson–Neyman
    quadratic (``johnson_neyman[moderator]["simultaneous"]``); the pointwise CRV1 t(G-1) region
    is the variant (``["pointwise"]``)."""
    focal = spec["focal"]
    params = result.table["estimate"]
    df = result.n_clusters - 1
    design = result.design
    boot = spec["bootstrap"]

    def band(grid_values: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
        grad, _ = marginal.marginal_effect_gradient(result.regressors, focal, grid_values)
        R = np.zeros((grad.shape[0], design.X.shape[1]))
        R[:, :grad.shape[1]] = grad
        theta, se, t_draws = inference.wild_bootstrap_t_linear(
            design.y, design.X, design.clusters, R, B=int(boot["band_draws"]),
            weights=boot["weights"], seed=int(boot["seed"]), n_absorbed=design.n_absorbed)
        return (marginal.studentized_band(theta, se, t_draws),
                marginal.studentized_band(theta, se, t_draws, simultaneous=True))

    out: dict = {"percentiles": [], "curves": {}, "johnson_neyman": {}}
    countries = frame[spec["cluster"]].to_numpy()
    for moderator in spec["moderators"]:
        others = {m: 0.0 for m in spec["moderators"] if m != moderator and m in params.index}
        observed = (float(frame[moderator].min()), float(frame[moderator].max()))
        grid = np.linspace(*observed, 60)
        curve = marginal.marginal_effect(params, result.vcov_crv1, focal,
                                         {moderator: grid, **others}, df)
        pointwise, simultaneous = band({moderator: grid, **others})
        curve["boot_t_low"] = pointwise["ci_low"].to_numpy()
        curve["boot_t_high"] = pointwise["ci_high"].to_numpy()
        curve["sim_low"] = simultaneous["ci_low"].to_numpy()
        curve["sim_high"] = simultaneous["ci_high"].to_numpy()
        q_sup = float(simultaneous["q"].iloc[0])
        out["curves"][moderator] = curve
        values = np.percentile(frame[moderator], spec["marginal_effects"]["percentiles"])
        table = marginal.marginal_effect(params, result.vcov_crv1, focal,
                                         {moderator: values, **others}, df)
        boot_band, _ = band({moderator: values, **others})
        table["percentile"] = spec["marginal_effects"]["percentiles"]
        table["moderator"] = moderator
        table["moderator_raw"] = values + frame[f"{moderator}_raw"].mean()
        table["boot_t_low"] = boot_band["ci_low"].to_numpy()
        table["boot_t_high"] = boot_band["ci_high"].to_numpy()
        table["sim_low"] = table["estimate"] - q_sup * table["std_error"]
        table["sim_high"] = table["estimate"] + q_sup * table["std_error"]
        out["percentiles"].append(table)
        regions = {}
        for kind, critical in (("simultaneous", q_sup), ("pointwise", None)):
            jn = marginal.johnson_neyman(params, result.vcov_crv1, focal, moderator, df,
                                         other_moderators_at=others, observed_range=observed,
                                         critical_value=critical)
            jn["support"] = marginal.region_support(frame[moderator].to_numpy(), countries,
                                                    jn["significant_in_range"])
            regions[kind] = jn
        out["johnson_neyman"][moderator] = regions
    return out


def johnson_neyman_table(effects: dict, frame: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """One row per moderator x test: the region where dSYN/dGPR is significant at 95% inside
    the observed range (centred and raw units), the observations and countries in it, and
    whether it has support (at least 10% of the observations and two countries)."""
    rows = []
    for moderator, regions in effects["johnson_neyman"].items():
        shift = float(frame[f"{moderator}_raw"].mean())
        for kind, jn in regions.items():
            pieces = jn["significant_in_range"]
            support = jn["support"]
            rows.append({
                "moderator": moderator.upper(),
                "test": ("simultaneous bootstrap-t band (main)" if kind == "simultaneous"
                         else "pointwise CRV1 t(G-1) (variant)"),
                "critical value": jn["critical_value"],
                "significant within the observed range (centred)": "; ".join(
                    f"{a:.4f} to {b:.4f}" for a, b in pieces) or "nowhere",
                "same, raw units": "; ".join(
                    f"{a + shift:.4f} to {b + shift:.4f}" for a, b in pieces) or "",
                "N inside": support["n_inside"], "share of N": support["share"],
                "countries inside": ", ".join(f"{c} {n}" for c, n in support["groups"].items()),
                "support": support["reason"] if pieces else "no region"})
    return pd.DataFrame(rows)


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
        ax.fill_between(x, curve["sim_low"], curve["sim_high"], color="#9ecae1", alpha=0.6,
                        label="95% simultaneous band, wild cluster bootstrap-t (sup-t; main)")
        ax.plot(x, curve["ci_low"], color="#08519c", ls="--", lw=1,
                label="95% pointwise CI, delta method (CRV1, t(G-1); variant)")
        ax.plot(x, curve["ci_high"], color="#08519c", ls="--", lw=1)
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
        validate(frame, estimation_schema(), processed / "estimation_panel.parquet")
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
    design = design_summary(frame, spec)
    sizes = load_sizes()
    match, warning = sizes_status(sizes, design)
    if not match:
        print(f"[models] warning: {warning}", flush=True)
    note = (f"Two-way FE (country, year) estimated with linearmodels PanelOLS; GPR, RN and TI "
            f"mean-centred on the estimation sample ({years}). Standard errors in parentheses: "
            "CRV3, the MacKinnon–Nielsen–Webb cluster jackknife by country (factor (G-1)/G). "
            "Stars on every row, controls included, from the wild cluster restricted "
            "bootstrap (WCR, Webb) p-value: * p<0.1, ** p<0.05, *** p<0.01. "
            f"{size_sentence(sizes, design)} {convention} CRV1 standard errors and p-values "
            "(which over-reject with this few clusters), CRV3 p-values, the Rademacher "
            "enumeration and Driscoll–Kraay (a variant): companion table "
            f"main_results_pvalues. {leverage}").strip()
    title = f"Geopolitical risk and {specs.load_region().label} mineral-chain synergy"
    write_regression_table(results, labels, order, tables / "main_results", title, note,
                           star_source="p_wcr", se_source="se_crv3")
    write_docx(results, labels, order, tables / "main_results.docx", title, note,
               star_source="p_wcr", se_source="se_crv3")
    frame_table(pvalue_table(estimates, labels, order), tables / "main_results_pvalues",
                "p-values of every coefficient under each inference (companion to the main "
                "table, whose stars come from WCR Webb and whose parentheses hold the CRV3 SE). "
                + convention + " " + dk_sentence(sizes, design) + " "
                + size_sentence(sizes, design) + (" " + leverage if leverage else ""),
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
         "ci_low", "ci_high", "boot_t_low", "boot_t_high", "sim_low", "sim_high"]]
    frame_table(me_table, tables / "marginal_effects",
                f"dSYN/dGPR at percentiles of each moderator ({me_model.name}): delta-method "
                "95% CI (CRV1, t(G-1)), pointwise wild bootstrap-t band (boot_t) and the "
                "simultaneous sup-t band over the observed range (sim; the main test)")
    jn_table = johnson_neyman_table(effects, frame, spec)
    atomic_write_text(outputs / "johnson_neyman.csv",
                      jn_table.to_csv(index=False, float_format="%.10g", lineterminator="\n"))
    frame_table(jn_table, tables / "johnson_neyman",
                f"Johnson–Neyman regions for dSYN/dGPR ({me_model.name}, 95%): where the "
                "effect is significant inside the observed range of the moderator, by the "
                "simultaneous wild bootstrap-t band (main test: familywise over the range) and "
                "by the pointwise CRV1 t(G-1) test (variant), with the observations and "
                "countries inside each region. A region holding less than 10% of the "
                "observations or only one country is without support: the effect there is "
                "an extrapolation of the linear interaction from the other countries.")
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
    power_table = power_analysis(results, frame, spec)
    write_estimates(power_table, outputs / "power.csv")
    settings = {**POWER_DEFAULTS, **(spec.get("power") or {})}
    frame_table(power_display(power_table, labels), tables / "power",
                f"What the design can detect: minimum detectable effects at "
                f"{settings['power']:.0%} power, two-sided {settings['alpha']:.0%}, in within-SDs "
                "of SYN per within-SD of the term (two-way demeaned SDs on the estimation "
                "sample): analytic with t(G-1) for CRV1 and CRV3, and simulated for the WCR "
                f"test on the real regressors and clusters ({settings['reps']} samples, AR(1) "
                "errors within country at the residuals' Nickell-corrected autocorrelation, "
                "country scales matching the residuals). SESOI: the smallest effect of interest, "
                f"{settings['sesoi_sd']} SD per SD. TOST: two one-sided WCR tests of |beta| >= "
                "SESOI; the 90% CRV3 interval in SD units lies inside (-SESOI, SESOI) when the "
                "CRV3 TOST rejects. Can the data tell: effect detected (WCR p <= 0.05), no "
                "effect as large as the SESOI (TOST p < 0.05), or cannot tell (neither).",
                float_format="%.3f")
    print(f"[models] wrote outputs/estimates.csv and tables/figures in "
          f"{time.perf_counter() - started:.1f}s", flush=True)
    print(estimates[estimates["term"].isin(spec["key_terms"])][
        ["model", "term", "estimate", "std_error", "p_value", "p_wcr", "p_wcr_rademacher"]]
        .to_string(index=False), flush=True)
    print(power_table[["model", "term", "mde_crv1_sd", "mde_crv3_sd", "mde_sd_units", "sesoi",
                       "tost_p", "verdict"]].to_string(index=False), flush=True)
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
        prog="python -m analysis.stages.models",
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
                         f"G = {results[0].n_clusters} -> {display_path(config.OUTPUTS)}/"
                         f"estimates.csv, {display_path(config.TABLES)}/main_results.*"))


if __name__ == "__main__":
    sys.exit(main())
