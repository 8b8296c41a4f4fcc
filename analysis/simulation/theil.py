"""Fit statistics of a simulated series against data: R², MAPE and Theil's inequality
decomposition of the mean squared error (Sterman 1984, "Appropriate summary statistics for
evaluating the historical fit of system dynamics models", Dynamica 10(2)).

With simulated values S_t and actual values A_t, t = 1..n, means S̄, Ā, standard deviations
s_S, s_A (divided by n) and correlation r:

    MSE = (1/n) Σ (S_t − A_t)² = (S̄ − Ā)² + (s_S − s_A)² + 2 (1 − r) s_S s_A

and the Theil inequality statistics are the shares of the three terms:

    U^M = (S̄ − Ā)² / MSE                 bias (unequal means)
    U^S = (s_S − s_A)² / MSE             unequal variation
    U^C = 2 (1 − r) s_S s_A / MSE        unequal covariation (point-by-point noise)

so U^M + U^S + U^C = 1. An error concentrated in U^C means the model tracks the trend and the
amplitude and misses only the point-by-point variation; a large U^M or U^S is a systematic error.

R² is the coefficient of determination of the simulated values, 1 − Σ(S − A)² / Σ(A − Ā)²,
which is negative when the model predicts worse than the mean of the data (it is not the
squared correlation, which would hide a bias). MAPE is the mean of |S − A| / |A| over the points
with |A| at least ``mape_floor`` (points with almost no flow, such as ban years, would
otherwise dominate it); it is NaN when there is no such point. ``n_material`` counts those
points. With ``min_material`` > 0, R² and MAPE are NaN when fewer than ``min_material`` points
have material flow: a window in which the flow did not yet exist has almost no variance, and its
R² (e.g. −20,000 for a model that opens a flow one year early) measures nothing. RMSE, in the
units of the data, is reported whatever the flow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def fit_statistics(actual: Sequence[float], simulated: Sequence[float],
                   mape_floor: float = 0.0, min_material: int = 0) -> dict[str, float]:
    """``n, n_material, r2, mape, theil_um, theil_us, theil_uc, mse, rmse`` of ``simulated``
    against ``actual``.

    Points where either value is missing are dropped. With MSE = 0 the Theil shares are NaN
    (nothing to decompose); with a constant actual series R² is NaN.
    """
    a = np.asarray(actual, dtype=float)
    s = np.asarray(simulated, dtype=float)
    if a.shape != s.shape:
        raise ValueError(f"actual has shape {a.shape}, simulated {s.shape}")
    keep = np.isfinite(a) & np.isfinite(s)
    a, s = a[keep], s[keep]
    n = len(a)
    out = {"n": n, "n_material": 0, "r2": np.nan, "mape": np.nan, "theil_um": np.nan,
           "theil_us": np.nan, "theil_uc": np.nan, "mse": np.nan, "rmse": np.nan}
    if n == 0:
        return out
    error = s - a
    mse = float(np.mean(error ** 2))
    out["mse"], out["rmse"] = mse, float(np.sqrt(mse))
    large = np.abs(a) >= mape_floor if mape_floor > 0 else np.abs(a) > 0
    out["n_material"] = int(large.sum())
    informative = out["n_material"] >= min_material
    total = float(np.sum((a - a.mean()) ** 2))
    if total > 0 and informative:
        out["r2"] = 1.0 - float(np.sum(error ** 2)) / total
    if large.any() and informative:
        out["mape"] = float(np.mean(np.abs(error[large]) / np.abs(a[large])))
    if mse > 0:
        s_sd, a_sd = s.std(), a.std()
        bias = (s.mean() - a.mean()) ** 2
        variation = (s_sd - a_sd) ** 2
        if s_sd > 0 and a_sd > 0:
            r = float(np.corrcoef(s, a)[0, 1])
            covariation = 2.0 * (1.0 - r) * s_sd * a_sd
        else:
            covariation = 0.0
        out["theil_um"] = bias / mse
        out["theil_us"] = variation / mse
        out["theil_uc"] = covariation / mse
    return out
