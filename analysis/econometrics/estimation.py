"""The estimation engine shared by the models and robustness stages.

One call, :func:`estimate`, fits a two-way fixed-effects model with linearmodels ``PanelOLS`` and
attaches every inference the tables report:

- CRV1 by country with the small-sample factor pyfixest uses, and p-values from t(G-1);
- CRV3, the leave-one-cluster-out jackknife with the MacKinnon–Nielsen–Webb (G-1)/G factor
  (pyfixest's scaling as a second, labelled column), p from t(G-1);
- Driscoll–Kraay (linearmodels' kernel covariance, Bartlett kernel), p from t(T-1);
- the wild cluster restricted (WCR) bootstrap-t, refitting the year effects in every draw, with
  Webb six-point weights and, where G <= 12, the exact enumeration of all 2^G Rademacher sign
  vectors (identity draws counted);
- cluster influence (partial leverage, effective number of clusters, leave-one-cluster-out).

Frames carry interaction columns named in pyfixest syntax (``gpr:rn``), so the formula written to
``estimates.csv`` refits the same model in pyfixest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from linearmodels.panel import PanelOLS

from analysis.econometrics import inference


def add_interactions(frame: pd.DataFrame, terms: list[str]) -> pd.DataFrame:
    """Add a column for each interaction term ``a:b[:c]`` as the product of its factors."""
    out = frame.copy()
    for term in terms:
        if ":" in term and term not in out:
            factors = term.split(":")
            out[term] = np.prod([out[f].to_numpy(dtype=float) for f in factors], axis=0)
    return out


def centre(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, dict[str, float]]:
    """Mean-centre ``columns`` on this frame; returns the centred frame and the means."""
    out = frame.copy()
    means = {c: float(out[c].mean()) for c in columns}
    for column, mean in means.items():
        out[column] = out[column] - mean
    return out, means


def pyfixest_formula(dependent: str, regressors: list[str], fixed_effects: list[str]) -> str:
    return f"{dependent} ~ {' + '.join(regressors)} | {' + '.join(fixed_effects)}"


@dataclass
class ModelResult:
    """Coefficients and all inference for one model."""

    name: str
    formula: str
    table: pd.DataFrame  # one row per regressor
    n_obs: int
    n_clusters: int
    within_r2: float
    dk_bandwidth: float
    vcov_crv1: pd.DataFrame
    partialled: pd.DataFrame = field(repr=False)
    regressors: list[str] = field(default_factory=list)
    dependent: str = ""
    cluster_values: np.ndarray | None = field(default=None, repr=False)
    design: inference.ClusterDesign | None = field(default=None, repr=False)
    influence: pd.DataFrame | None = field(default=None, repr=False)
    n_periods: int = 0
    periods: np.ndarray | None = field(default=None, repr=False)  # each row's period, in the
    # row order of ``design`` and ``cluster_values``
    r2: float = float("nan")  # R² of the full model, fixed effects included (fixest's r2)
    mean_dependent: float = float("nan")  # mean of the dependent variable on the sample


INFLUENCE_COLUMNS = ["model", "term", "cluster", "partial_leverage", "estimate_loo",
                     "std_error_loo", "g_star"]


def estimate(frame: pd.DataFrame, name: str, dependent: str, regressors: list[str],
             fixed_effects: tuple[str, str] = ("iso3", "year"), cluster: str = "iso3",
             key_terms: list[str] | None = None, bootstrap: dict | None = None,
             dk_kernel: str = "bartlett") -> ModelResult:
    """Fit ``dependent ~ regressors | entity + time`` and compute every inference.

    ``frame`` must already hold every regressor as a column (interactions included, see
    :func:`add_interactions`) and no missing values in the variables used.

    * CRV1 by ``cluster`` (pyfixest's small-sample factor), p from t(G-1);
    * CRV3 ``se_crv3``: the cluster jackknife with the MacKinnon–Nielsen–Webb (2023) factor
      (G-1)/G, p from t(G-1) (``p_crv3``); ``se_crv3_pyfixest``: the same jackknife with
      pyfixest's CRV1 factor, for comparison only;
    * Driscoll–Kraay (linearmodels, Bartlett kernel), p from t(T-1) (``p_dk``);
    * the wild cluster restricted bootstrap-t (WCR11) refitting the year effects in every
      draw: only the FE nested in the clusters are partialled out
      (:func:`analysis.econometrics.inference.cluster_design`), the others are dummy regressors. Webb
      weights (``p_wcr``), and with G <= 12 the exact enumeration of all 2^G Rademacher
      vectors (``p_wcr_rademacher``) counting every draw, identity draws included
      (share of |t*| >= |t|). Both two-sided symmetric;
    * cluster influence for the key terms (partial leverage, G*, leave-one-cluster-out).

    ``bootstrap`` = {"B", "weights", "seed", "rademacher_enumeration", "all_terms"}; None skips
    the bootstrap. ``all_terms: true`` bootstraps every regressor (controls included), else
    only the ``key_terms``.
    """
    entity, time = fixed_effects
    used = [dependent, *regressors]
    keys = list(dict.fromkeys([entity, time, cluster]))
    data = frame[[*keys, *used]].copy()
    if data[used].isna().any().any():
        missing = data[used].isna().sum()
        raise ValueError(f"{name}: missing values in {missing[missing > 0].to_dict()}")
    data = data.sort_values([entity, time]).reset_index(drop=True)
    indexed = data.set_index([entity, time])
    model = PanelOLS(indexed[dependent], indexed[regressors], entity_effects=True,
                     time_effects=True, drop_absorbed=False, check_rank=True)
    # one fit: the estimates do not depend on cov_type (linearmodels computes the parameters
    # before the covariance), so the Driscoll-Kraay fit also gives the point estimates
    dk_bandwidth = driscoll_kraay_bandwidth(int(data[time].nunique()))
    dk = model.fit(cov_type="kernel", kernel=dk_kernel, bandwidth=dk_bandwidth)
    params = dk.params.reindex(regressors)

    partialled = inference.partial_out_fixed_effects(data, used, [entity, time])
    y_w = partialled[dependent].to_numpy()
    X_w = partialled[regressors].to_numpy()
    resid = y_w - X_w @ params.to_numpy()
    clusters = data[cluster].to_numpy()
    n_clusters = int(pd.unique(clusters).size)
    n_periods = int(data[time].nunique())
    n_absorbed = inference.count_absorbed_parameters(data, [entity, time], cluster)
    v_crv1 = inference.crv1_vcov(X_w, resid, clusters, n_absorbed=n_absorbed)
    design = inference.cluster_design(data, dependent, regressors, [entity, time], cluster)
    k = len(regressors)
    v_crv3 = inference.cluster_jackknife_vcov(design.y, design.X, clusters, "mnw")[:k, :k]
    v_crv3_pf = inference.cluster_jackknife_vcov(
        design.y, design.X, clusters, "pyfixest", n_absorbed=design.n_absorbed)[:k, :k]
    b = params.to_numpy()
    table = inference.coefficient_table(b, v_crv1, df=n_clusters - 1, names=regressors)
    table["se_crv3"] = np.sqrt(np.diag(v_crv3))
    table["p_crv3"] = 2 * _t_sf(b / table["se_crv3"].to_numpy(), n_clusters - 1)
    table["se_dk"] = dk.std_errors.reindex(regressors).to_numpy()
    table["p_dk"] = 2 * _t_sf(b / table["se_dk"].to_numpy(), n_periods - 1)
    table["se_crv3_pyfixest"] = np.sqrt(np.diag(v_crv3_pf))
    table["p_wcr"] = np.nan
    table["p_wcr_rademacher"] = np.nan
    present = [t for t in (key_terms or []) if t in regressors]
    if bootstrap:
        tested = regressors if bootstrap.get("all_terms") else present
        if tested:
            idx = [regressors.index(t) for t in tested]
            webb = inference.wild_cluster_restricted_bootstrap(
                design.y, design.X, clusters, idx, B=int(bootstrap["B"]),
                weights=bootstrap["weights"], seed=int(bootstrap["seed"]),
                full_enumeration=False, n_absorbed=design.n_absorbed)
            for i in idx:
                table.loc[table.index[i], "p_wcr"] = webb[i].p_value
            if bootstrap.get("rademacher_enumeration", True) and n_clusters <= 12:
                exact = inference.wild_cluster_restricted_bootstrap(
                    design.y, design.X, clusters, idx, B=2 ** n_clusters,
                    weights="rademacher", full_enumeration=True, ties="include",
                    n_absorbed=design.n_absorbed)
                for i in idx:
                    table.loc[table.index[i], "p_wcr_rademacher"] = exact[i].p_value
    within_r2 = float(1 - np.sum(resid ** 2) / np.sum((y_w - y_w.mean()) ** 2))
    # the residuals of the within regression are those of the full model (FWL), so the R² of
    # the two-way FE model is 1 - SSR / sum (y - mean y)² (fixest's r2, esttab's r2 for areg)
    y = data[dependent].to_numpy(dtype=float)
    r2 = float(1 - np.sum(resid ** 2) / np.sum((y - y.mean()) ** 2))
    table.index = pd.Index(regressors, name="term")
    influence = cluster_influence(name, design, present) if present else None
    return ModelResult(
        name=name, formula=pyfixest_formula(dependent, regressors, list(fixed_effects)),
        table=table, n_obs=len(data), n_clusters=n_clusters, within_r2=within_r2,
        dk_bandwidth=dk_bandwidth,
        vcov_crv1=pd.DataFrame(v_crv1, index=regressors, columns=regressors),
        partialled=partialled, regressors=regressors, dependent=dependent,
        cluster_values=clusters, design=design, influence=influence, n_periods=n_periods,
        periods=data[time].to_numpy(), r2=r2, mean_dependent=float(y.mean()))


def cluster_influence(name: str, design: inference.ClusterDesign, terms: list[str]
                      ) -> pd.DataFrame:
    """One row per term x cluster: partial leverage, leave-one-cluster-out estimate and CRV1
    SE (year effects re-estimated), and the term's effective number of clusters G*(0)
    (Carter, Schnepel & Steigerwald 2017; rho = 0 as summclust's G*(0)).
    See MacKinnon, Nielsen & Webb (2023, J. Econom. 232(2), sec. 6) and summclust."""
    labels, loo_b, loo_se = inference.leave_one_cluster_out(
        design.y, design.X, design.clusters, n_absorbed=design.n_absorbed)
    rows = []
    for term in terms:
        j = design.regressors.index(term)
        _, lev = inference.partial_leverage(design.X, design.clusters, j)
        g_star = inference.effective_clusters(design.X, design.clusters, j, rho=0.0)
        rows.append(pd.DataFrame({
            "model": name, "term": term, "cluster": labels, "partial_leverage": lev,
            "estimate_loo": loo_b[:, j], "std_error_loo": loo_se[:, j], "g_star": g_star}))
    return pd.concat(rows, ignore_index=True)[INFLUENCE_COLUMNS]


def driscoll_kraay_bandwidth(n_periods: int) -> float:
    """Rule-of-thumb Bartlett bandwidth floor(4 (T/100)^(2/9)) (Newey & West 1994), the
    default linearmodels applies; stated explicitly so the output can record it."""
    return float(np.floor(4 * (n_periods / 100) ** (2 / 9)))


def _t_sf(t: np.ndarray, df: int) -> np.ndarray:
    from scipy import stats

    return stats.t(df).sf(np.abs(t))


def tidy(result: ModelResult) -> pd.DataFrame:
    """One row per term, the columns of ``outputs/estimates.csv``."""
    t = result.table
    return pd.DataFrame({
        "model": result.name,
        "term": t.index,
        "estimate": t["estimate"].to_numpy(),
        "std_error": t["std_error"].to_numpy(),
        "p_value": t["p_value"].to_numpy(),
        "se_crv3": t["se_crv3"].to_numpy(),
        "se_dk": t["se_dk"].to_numpy(),
        "p_wcr": t["p_wcr"].to_numpy(),
        "p_wcr_rademacher": t["p_wcr_rademacher"].to_numpy(),
        "n_obs": result.n_obs,
        "n_clusters": result.n_clusters,
        "within_r2": result.within_r2,
        "formula": result.formula,
        "p_crv3": t["p_crv3"].to_numpy(),
        "p_dk": t["p_dk"].to_numpy(),
        "se_crv3_pyfixest": t["se_crv3_pyfixest"].to_numpy(),
        "n_periods": result.n_periods,
    })
