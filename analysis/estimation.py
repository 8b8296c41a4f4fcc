"""The estimation engine shared by the models and robustness stages.

One call, :func:`estimate`, fits a two-way fixed-effects model with linearmodels ``PanelOLS`` and
attaches every inference the tables report:

- CRV1 by country with the small-sample factor pyfixest uses, and p-values from t(G-1);
- CRV3, the leave-one-cluster-out jackknife (pyfixest's scaling);
- Driscoll–Kraay (linearmodels' kernel covariance, Bartlett kernel);
- the wild cluster restricted (WCR) bootstrap-t for the key terms, with Webb six-point weights
  and, where G <= 12, the exact enumeration of all 2^G Rademacher sign vectors.

Frames carry interaction columns named in pyfixest syntax (``gpr:rn``), so the formula written to
``estimates.csv`` refits the same model in pyfixest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from linearmodels.panel import PanelOLS

from analysis import inference


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


def estimate(frame: pd.DataFrame, name: str, dependent: str, regressors: list[str],
             fixed_effects: tuple[str, str] = ("iso3", "year"), cluster: str = "iso3",
             key_terms: list[str] | None = None, bootstrap: dict | None = None,
             dk_kernel: str = "bartlett") -> ModelResult:
    """Fit ``dependent ~ regressors | entity + time`` and compute every inference.

    ``frame`` must already hold every regressor as a column (interactions included, see
    :func:`add_interactions`) and no missing values in the variables used.
    ``bootstrap`` = {"B", "weights", "seed", "rademacher_enumeration"}; None skips the bootstrap.
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
    fit = model.fit(cov_type="unadjusted")
    params = fit.params.reindex(regressors)

    partialled = inference.partial_out_fixed_effects(data, used, [entity, time])
    y_w = partialled[dependent].to_numpy()
    X_w = partialled[regressors].to_numpy()
    resid = y_w - X_w @ params.to_numpy()
    clusters = data[cluster].to_numpy()
    n_clusters = int(pd.unique(clusters).size)
    n_absorbed = inference.count_absorbed_parameters(data, [entity, time], cluster)
    v_crv1 = inference.crv1_vcov(X_w, resid, clusters, n_absorbed=n_absorbed)
    v_crv3 = inference.crv3_vcov(data[regressors], data[dependent], clusters,
                                 fe=data[[entity, time]], n_absorbed=n_absorbed)
    dk_bandwidth = driscoll_kraay_bandwidth(data[time].nunique())
    dk = model.fit(cov_type="kernel", kernel=dk_kernel, bandwidth=dk_bandwidth)
    table = inference.coefficient_table(params.to_numpy(), v_crv1, df=n_clusters - 1,
                                        names=regressors)
    table["se_crv3"] = np.sqrt(np.diag(v_crv3))
    table["p_crv3"] = 2 * _t_sf(params.to_numpy() / table["se_crv3"].to_numpy(), n_clusters - 1)
    table["se_dk"] = dk.std_errors.reindex(regressors).to_numpy()
    table["p_dk"] = dk.pvalues.reindex(regressors).to_numpy()
    table["p_wcr"] = np.nan
    table["p_wcr_rademacher"] = np.nan
    if bootstrap and key_terms:
        present = [t for t in key_terms if t in regressors]
        if present:
            idx = [regressors.index(t) for t in present]
            webb = inference.wild_cluster_restricted_bootstrap(
                y_w, X_w, clusters, idx, B=int(bootstrap["B"]), weights=bootstrap["weights"],
                seed=int(bootstrap["seed"]))
            for i in idx:
                table.loc[table.index[i], "p_wcr"] = webb[i].p_value
            if bootstrap.get("rademacher_enumeration", True) and n_clusters <= 12:
                exact = inference.wild_cluster_restricted_bootstrap(
                    y_w, X_w, clusters, idx, B=2 ** n_clusters, weights="rademacher",
                    seed=int(bootstrap["seed"]), full_enumeration=True)
                for i in idx:
                    table.loc[table.index[i], "p_wcr_rademacher"] = exact[i].p_value
    within_r2 = float(1 - np.sum(resid ** 2) / np.sum((y_w - y_w.mean()) ** 2))
    table.index = pd.Index(regressors, name="term")
    return ModelResult(
        name=name, formula=pyfixest_formula(dependent, regressors, list(fixed_effects)),
        table=table, n_obs=len(data), n_clusters=n_clusters, within_r2=within_r2,
        dk_bandwidth=dk_bandwidth,
        vcov_crv1=pd.DataFrame(v_crv1, index=regressors, columns=regressors),
        partialled=partialled, regressors=regressors, dependent=dependent,
        cluster_values=clusters)


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
    })
