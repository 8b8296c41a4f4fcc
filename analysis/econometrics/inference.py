"""Few-cluster inference for fixed-effects panel regressions.

Everything here works on plain numpy arrays so that the same code serves a
PanelOLS / pyfixest fit, a simulation or a test. The typical flow is::

    wide = partial_out_fixed_effects(frame, ["syn", "gpr", "rn", "gpr:rn"], ["iso3", "year"])
    y, X = wide["syn"].to_numpy(), wide[["gpr", "rn", "gpr:rn"]].to_numpy()
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    V1 = crv1_vcov(X, y - X @ beta, frame["iso3"], n_absorbed=count_absorbed_parameters(...))
    # the bootstrap and the jackknife refit the year effects: use the cluster design
    d = cluster_design(frame, "syn", ["gpr", "rn", "gpr:rn"], ["iso3", "year"], "iso3")
    V3 = cluster_jackknife_vcov(d.y, d.X, d.clusters, "mnw")
    wcr = wild_cluster_restricted_bootstrap(d.y, d.X, d.clusters, param=[0, 2], B=99_999)

Conventions (all verified in ``tests/test_inference.py`` and ``tests/test_wcr_refit.py``)
----------------------------------------------------------------------------------------
* CRV1 equals ``pyfixest.feols(..., vcov={"CRV1": cluster})`` with pyfixest's default
  ``ssc(k_adj=True, k_fixef="nonnested", G_adj=True)``:
  ``V = G/(G-1) * (N-1)/(N-K) * (X'X)^-1 (sum_g s_g s_g') (X'X)^-1`` with
  ``K = k + n_absorbed`` and ``n_absorbed`` from :func:`count_absorbed_parameters`
  (for ``| iso3 + year`` clustered by ``iso3``: ``n_absorbed = T``, the number of years).
* **Year effects are not nested in country clusters**, so a wild cluster bootstrap or a
  leave-one-cluster-out jackknife must re-estimate them in every draw / refit. Partialling
  them out of ``y`` and ``X`` first and bootstrapping the demeaned arrays is wrong (the
  draws' residuals then keep year means a refit removes; the first build's p-values were
  0.02–0.10 too small). :func:`cluster_design` partials out only the FE nested in the
  clusters and keeps the others as dummy regressors; pass its ``y, X`` to the bootstrap and
  the jackknife. Then WCR equals pyfixest ``Feols.wildboottest`` (which one-hot encodes
  every FE) on the original data, draw by draw.
* CRV3: ``scale="mnw"`` is the CV3 of MacKinnon, Nielsen & Webb (2023), factor ``(G-1)/G``,
  the project's ``se_crv3``; ``scale="pyfixest"`` (the default of :func:`crv3_vcov`, kept for
  the pyfixest comparison) multiplies by pyfixest's CRV1 factor ``G/(G-1) (N-1)/(N-K)``.
* Wild cluster restricted bootstrap (``bootstrap_type="11"``, ``impose_null=True``):
  two-sided symmetric p-value. ``ties="exclude"``: ``mean(|t*_b| > |t|)``, wildboottest's
  convention; ``ties="include"``: ``mean(|t*_b| >= |t|)``, the exact randomisation p-value
  under full enumeration, which counts every draw. Draws proportional to a constant vector
  (``v = +-1``) reproduce the sample, ``|t*| = |t|`` exactly; they are set exactly so the tie
  is decided without rounding, while wildboottest decides them by floating-point noise. The
  pipeline reports the enumeration with ``ties="include"`` (both identity draws counted), so
  it equals wildboottest's p plus ``(2 - #identity draws wildboottest counted) / 2**G``.
  Same random draws as wildboottest for the same seed. wildboottest enumerates when
  ``2**G < B``, this module when ``2**G <= B``.
* linearmodels ``PanelOLS(..., entity_effects=True, time_effects=True).fit(
  cov_type="clustered", cluster_entity=True)`` is *not* the pyfixest convention: by default it
  scales the sandwich by ``N/(N-K_all)`` with ``K_all = k + G + T - 1`` (all absorbed effects
  counted, no ``G/(G-1)``) and its p-values use ``t(N-K_all)``; with ``group_debias=True`` it
  is ``crv1_vcov(..., n_absorbed=G+T-1)``. Either way use ``t(G-1)`` for inference.
* Singletons: these functions keep every observation; pyfixest drops singleton FE levels
  by default (``fixef_rm="singleton"``), which changes ``N`` if there are any.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal, overload

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "WEBB_POINTS",
    "ClusterDesign",
    "WildBootstrapResult",
    "anderson_rubin",
    "anderson_rubin_closed_form",
    "anderson_rubin_pvalues",
    "anderson_rubin_set",
    "cluster_design",
    "cluster_jackknife_vcov",
    "coefficient_table",
    "count_absorbed_parameters",
    "crv1_vcov",
    "crv3_vcov",
    "draw_wild_weights",
    "driscoll_kraay_vcov",
    "effective_clusters",
    "fe_nested_in_cluster",
    "first_stage_f",
    "leave_one_cluster_out",
    "partial_leverage",
    "partial_out_fixed_effects",
    "sanderson_windmeijer_f",
    "tsls",
    "wild_bootstrap_coefficient_draws",
    "wild_bootstrap_t_linear",
    "wild_cluster_restricted_bootstrap",
]

#: Webb (2023) six-point distribution: +-sqrt(1/2), +-1, +-sqrt(3/2), each with prob. 1/6.
#: Ordered exactly as in ``wildboottest.weights.webb`` so that a seed yields the same draws.
WEBB_POINTS: np.ndarray = np.concatenate(
    [-np.sqrt(np.array([3.0, 2.0, 1.0]) / 2.0), np.sqrt(np.array([1.0, 2.0, 3.0]) / 2.0)]
)

WeightType = Literal["webb", "rademacher"]
ArrayLike = np.ndarray | pd.Series | pd.DataFrame | Sequence[float]

#: Full enumeration of 2^G Rademacher vectors is refused beyond this many clusters.
_MAX_ENUMERATION_CLUSTERS = 22


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _as_2d(a: ArrayLike) -> np.ndarray:
    out = np.asarray(a, dtype=np.float64)
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D array, got shape {out.shape}")
    return out


def _as_1d(a: ArrayLike) -> np.ndarray:
    out = np.asarray(a, dtype=np.float64)
    if out.ndim == 2 and out.shape[1] == 1:
        out = out[:, 0]
    if out.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {out.shape}")
    return out


def _cluster_codes(clusters: ArrayLike, n: int) -> tuple[np.ndarray, int]:
    """Integer codes 0..G-1 in *sorted* label order (as ``np.unique``; wildboottest does so)."""
    labels = np.asarray(clusters)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"clusters must be 1-D with {n} entries, got shape {labels.shape}")
    if pd.isna(labels).any():
        raise ValueError("clusters contain missing values")
    _, codes = np.unique(labels, return_inverse=True)
    codes = codes.ravel()
    return codes, int(codes.max()) + 1


def _group_sum(a: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum the rows of ``a`` (shape (N, ...)) within groups: returns (n_groups, ...)."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sums = np.add.reduceat(a[order], starts, axis=0)
    out = np.zeros((n_groups, *a.shape[1:]), dtype=np.float64)
    out[sorted_codes[starts]] = sums
    return out


def _fe_codes(fe: pd.DataFrame | np.ndarray) -> np.ndarray:
    """(N, n_fe) integer codes for the fixed-effect columns."""
    if isinstance(fe, pd.Series):
        fe = fe.to_frame()
    if isinstance(fe, pd.DataFrame):
        if fe.isna().to_numpy().any():
            raise ValueError("fixed-effect columns contain missing values")
        cols = [pd.factorize(fe[c], sort=True)[0] for c in fe.columns]
    else:
        arr = np.asarray(fe)
        arr = arr[:, None] if arr.ndim == 1 else arr
        cols = [pd.factorize(arr[:, j], sort=True)[0] for j in range(arr.shape[1])]
    return np.column_stack(cols).astype(np.uint64)


def _demean_numpy(x: np.ndarray, codes: np.ndarray, tol: float, maxiter: int) -> np.ndarray:
    """Reference alternating projections (method of alternating projections, Gaure 2013)."""
    out = x.copy()
    groups = [codes[:, j].astype(np.intp) for j in range(codes.shape[1])]
    counts = [np.bincount(g).astype(np.float64) for g in groups]
    for _ in range(maxiter):
        previous = out.copy()
        for g, c in zip(groups, counts, strict=True):
            means = _group_sum(out, g, c.shape[0]) / c[:, None]
            out -= means[g]
        if np.max(np.abs(out - previous)) < tol:
            return out
    raise RuntimeError(f"alternating projections did not converge to {tol} in {maxiter} sweeps")


def _demean_array(
    x: np.ndarray,
    codes: np.ndarray,
    tol: float = 1e-14,
    maxiter: int = 100_000,
    engine: Literal["pyfixest", "numpy"] = "pyfixest",
) -> np.ndarray:
    """Within-transform the columns of ``x`` (N, p) on the FE ``codes`` (N, n_fe).

    The columns are first divided by their largest absolute value because the convergence
    criterion (max absolute change < tol) is absolute; the transformation is linear, so the
    result is rescaled afterwards.
    """
    x = _as_2d(x)
    if not np.isfinite(x).all():
        raise ValueError("columns to demean contain missing or infinite values")
    scale = np.max(np.abs(x), axis=0)
    scale[scale == 0] = 1.0
    xs = x / scale
    if engine == "pyfixest":
        from pyfixest.core.demean import demean

        # re-code every FE to 0..L-1 on this (sub)sample
        local = np.column_stack(
            [pd.factorize(codes[:, j])[0] for j in range(codes.shape[1])]
        ).astype(np.uint64)
        out, converged = demean(xs, local, np.ones(x.shape[0]), tol=tol, maxiter=maxiter)
        if not converged:
            raise RuntimeError(f"pyfixest demean did not converge to tol={tol}")
    elif engine == "numpy":
        local = np.column_stack([pd.factorize(codes[:, j])[0] for j in range(codes.shape[1])])
        out = _demean_numpy(xs, local, tol, maxiter)
    else:
        raise ValueError(f"unknown engine {engine!r}")
    return np.asarray(out) * scale


def _resolve_params(param: int | str | Sequence[int | str], X: ArrayLike, k: int) -> list[int]:
    items = [param] if isinstance(param, int | str | np.integer) else list(param)
    names = list(X.columns) if isinstance(X, pd.DataFrame) else None
    out: list[int] = []
    for p in items:
        if isinstance(p, str):
            if names is None or p not in names:
                raise ValueError(f"parameter {p!r} not found among the columns of X")
            out.append(names.index(p))
        else:
            j = int(p)
            if not 0 <= j < k:
                raise ValueError(f"parameter index {j} out of range for {k} columns")
            out.append(j)
    return out


# ---------------------------------------------------------------------------------------------
# fixed effects
# ---------------------------------------------------------------------------------------------
def partial_out_fixed_effects(
    frame: pd.DataFrame,
    columns: list[str],
    fe: list[str],
    *,
    tol: float = 1e-14,
    maxiter: int = 100_000,
    engine: Literal["pyfixest", "numpy"] = "pyfixest",
) -> pd.DataFrame:
    """Within-transform ``columns`` on the (n-way) fixed effects ``fe``.

    Computes ``M_D x = x - D (D'D)^+ D'x`` for the dummy matrix ``D`` of all FE levels by the
    method of alternating projections: repeatedly subtract the group means of each FE in turn
    until the largest absolute change in a sweep is below ``tol``
    (Guimarães & Portugal 2010, Stata J. 10(4); Gaure 2013, Comput. Stat. Data Anal. 66).
    Unbalanced panels are fine (the projections do not assume balance; with balance one sweep
    is exact). By Frisch–Waugh–Lovell, OLS of the demeaned ``y`` on the demeaned ``X`` (no
    constant) reproduces the FE coefficients and residuals.

    ``engine="pyfixest"`` (default) uses pyfixest's compiled ``demean`` (the routine behind
    ``feols``); ``engine="numpy"`` is a pure-numpy reference implementation. Both agree with
    an explicit dummy-variable regression to ~1e-14 (see tests). Columns are scaled to max
    |x| = 1 before demeaning because the tolerance is absolute.

    Parameters
    ----------
    frame : DataFrame holding ``columns`` and ``fe``; must have no missing values in them.
    columns : numeric columns to demean.
    fe : fixed-effect identifiers, e.g. ``["iso3", "year"]``.

    Returns
    -------
    DataFrame with the demeaned ``columns``, same index as ``frame``.
    """
    if not fe:
        raise ValueError("need at least one fixed effect")
    missing = [c for c in [*columns, *fe] if c not in frame.columns]
    if missing:
        raise KeyError(f"columns not in frame: {missing}")
    codes = _fe_codes(frame[fe])
    out = _demean_array(frame[columns].to_numpy(np.float64), codes, tol, maxiter, engine)
    return pd.DataFrame(out, index=frame.index, columns=columns)


def count_absorbed_parameters(
    frame: pd.DataFrame, fe: list[str], cluster: str | None = None
) -> int:
    """Number of absorbed FE parameters pyfixest counts in ``K`` for ``(N-1)/(N-K)``.

    pyfixest's default ``ssc(k_fixef="nonnested")`` (``pyfixest.utils.utils.get_ssc``)::

        k_fe_adj = sum_f L_f - (n_fe - 1)                   # L_f levels of FE f
        if some FE are fully nested in the cluster variable:
            k_fe_adj = k_fe_adj - sum_{f nested} L_f + n_nested

    i.e. FE nested in the clusters are dropped, but each counts one (as fixest,
    https://github.com/lrberge/fixest/issues/554). For ``| iso3 + year`` clustered by
    ``iso3``: ``(G + T - 1) - G + 1 = T``; unclustered (iid/hetero): ``G + T - 1``.
    A FE is "nested" when every one of its levels lies within a single cluster.
    """
    levels = np.array([frame[f].nunique() for f in fe])
    n_fe = len(fe)
    k_fe_adj = int(levels.sum()) - (n_fe - 1 if n_fe > 1 else 0)
    if cluster is None:
        return k_fe_adj
    nested = np.array(
        [f == cluster or int(frame.groupby(f)[cluster].nunique().max()) == 1 for f in fe]
    )
    if not nested.any():
        return k_fe_adj
    return k_fe_adj - int(levels[nested].sum()) + int(nested.sum())


# ---------------------------------------------------------------------------------------------
# analytic cluster-robust variances
# ---------------------------------------------------------------------------------------------
def crv1_vcov(
    X: ArrayLike, resid: ArrayLike, clusters: ArrayLike, n_absorbed: int = 0
) -> np.ndarray:
    """CRV1 cluster-robust covariance (Liang & Zeger 1986; Cameron & Miller 2015, JHR 50(2)).

    ``V = c (X'X)^-1 [sum_g X_g' u_g u_g' X_g] (X'X)^-1`` with
    ``c = G/(G-1) * (N-1)/(N-K)``, ``K = X.shape[1] + n_absorbed``.

    ``X`` and ``resid`` are the FE-partialled regressors and the FE-model residuals. With
    ``n_absorbed = count_absorbed_parameters(frame, fe, cluster)`` this equals pyfixest's
    ``vcov={"CRV1": cluster}`` (verified to 1e-8 in the tests); ``n_absorbed = 0`` is the
    ``(N-1)/(N-k)`` of a regression on demeaned data that ignores the FE (wildboottest). Use
    ``t(G-1)`` critical values (Bester, Conley & Hansen 2011; pyfixest and fixest do).
    """
    X = _as_2d(X)
    u = _as_1d(resid)
    n, k = X.shape
    codes, G = _cluster_codes(np.asarray(clusters), n)
    if G < 2:
        raise ValueError("need at least two clusters")
    bread = np.linalg.inv(X.T @ X)
    scores = _group_sum(X * u[:, None], codes, G)  # (G, k): s_g = X_g' u_g
    meat = scores.T @ scores
    K = k + int(n_absorbed)
    c = G / (G - 1) * (n - 1) / (n - K)
    return c * bread @ meat @ bread


def crv3_vcov(
    X: ArrayLike,
    y: ArrayLike,
    clusters: ArrayLike,
    *,
    fe: pd.DataFrame | np.ndarray | None = None,
    n_absorbed: int = 0,
    scale: Literal["pyfixest", "mnw"] = "pyfixest",
    tol: float = 1e-14,
) -> np.ndarray:
    """CRV3 leave-one-cluster-out jackknife covariance.

    ``V = c * sum_g (b_(g) - b)(b_(g) - b)'`` where ``b_(g)`` is the FE estimate with cluster
    ``g`` deleted and ``b`` the full-sample estimate (centering at ``b``, not at the mean of
    the ``b_(g)``).

    * ``scale="pyfixest"`` (default): ``c = G/(G-1) * (N-1)/(N-K)``, ``K = k + n_absorbed``.
      This is what ``pyfixest`` does (``Feols.vcov``: ``ssc * _vcov_crv3_slow``, the same
      small-sample factor as CRV1) and equals ``feols(..., vcov={"CRV3": cluster})`` when
      ``n_absorbed = count_absorbed_parameters(frame, fe, cluster)``.
    * ``scale="mnw"``: ``c = (G-1)/G``, the CV3 of MacKinnon, Nielsen & Webb (2023, J. Econom.
      232(2), "Cluster-robust inference: a guide to empirical practice"; also 2023 Stata J.
      "summclust"); it is ``(G/(G-1))^2 (N-1)/(N-K)`` times smaller in variance.

    Fixed effects: if ``fe`` is given, ``X`` and ``y`` must be the *raw* (undemeaned) data and
    the FE are re-partialled on every leave-one-out sample (what pyfixest's ``feols`` refit
    does; required for FE that are not nested in the clusters, such as year FE when
    clustering by country). If ``fe`` is None, ``X`` and ``y`` are used as they are (no FE,
    or FE nested within clusters already partialled out), and the leave-one-out estimates come
    from the cluster blocks: ``b_(g) = (X'X - X_g'X_g)^+ (X'y - X_g'y_g)`` (pseudo-inverse as
    in pyfixest / wildboottest).
    """
    Xr = _as_2d(X)
    yr = _as_1d(y)
    n, k = Xr.shape
    codes, G = _cluster_codes(np.asarray(clusters), n)
    if G < 2:
        raise ValueError("need at least two clusters")
    if fe is None:
        xx_g = _group_sum(Xr[:, :, None] * Xr[:, None, :], codes, G)  # (G, k, k)
        xy_g = _group_sum(Xr * yr[:, None], codes, G)  # (G, k)
        xx, xy = xx_g.sum(axis=0), xy_g.sum(axis=0)
        beta = np.linalg.solve(xx, xy)
        loo = np.einsum("gij,gj->gi", np.linalg.pinv(xx[None] - xx_g), xy[None] - xy_g)
    else:
        fe_codes = _fe_codes(fe)
        if fe_codes.shape[0] != n:
            raise ValueError("fe must have one row per observation")
        yx = np.column_stack([yr, Xr])
        full = _demean_array(yx, fe_codes, tol)
        beta = np.linalg.lstsq(full[:, 1:], full[:, 0], rcond=None)[0]
        loo = np.empty((G, k))
        for g in range(G):
            keep = codes != g
            d = _demean_array(yx[keep], fe_codes[keep], tol)
            loo[g] = np.linalg.lstsq(d[:, 1:], d[:, 0], rcond=None)[0]
    dev = loo - beta
    if scale == "pyfixest":
        c = G / (G - 1) * (n - 1) / (n - (k + int(n_absorbed)))
    elif scale == "mnw":
        c = (G - 1) / G
    else:
        raise ValueError(f"unknown scale {scale!r}")
    return c * dev.T @ dev


def coefficient_table(
    params: ArrayLike,
    vcov: ArrayLike,
    df: int | None,
    names: Sequence[str] | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Estimates, SEs, t, two-sided p and CIs with ``t(df)`` (normal if ``df`` is None).

    With cluster-robust variances pass ``df = G - 1`` (Bester, Conley & Hansen 2011, J.
    Econom. 165(2); what pyfixest/fixest report).
    """
    b = _as_1d(params)
    se = np.sqrt(np.diag(np.asarray(vcov, dtype=np.float64)))
    dist = stats.norm if df is None else stats.t(df)
    crit = dist.ppf(0.5 + level / 2)
    t = b / se
    return pd.DataFrame(
        {
            "estimate": b,
            "std_error": se,
            "t_stat": t,
            "p_value": 2 * dist.sf(np.abs(t)),
            "ci_low": b - crit * se,
            "ci_high": b + crit * se,
        },
        index=None if names is None else list(names),
    )


# ---------------------------------------------------------------------------------------------
# wild cluster bootstrap
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WildBootstrapResult:
    """Outcome of a wild cluster restricted (WCR11) bootstrap-t test of ``beta_param = 0``."""

    param: int
    estimate: float
    t_stat: float
    p_value: float
    n_draws: int
    enumerated: bool
    weights: str
    n_clusters: int
    t_boot: np.ndarray | None = field(default=None, compare=False, repr=False)


def draw_wild_weights(
    n_clusters: int,
    B: int,
    weights: WeightType = "webb",
    seed: int | np.random.Generator | None = None,
    full_enumeration: bool | None = None,
) -> tuple[np.ndarray, bool]:
    """Return a ``(G, B')`` matrix of wild-bootstrap weights and whether it is an enumeration.

    * Rademacher: +-1 with probability 1/2. If ``full_enumeration`` is None it is switched on
      when ``2**G <= B``; then all ``2**G`` sign vectors are returned (``B' = 2**G``), in the
      order of ``itertools.product([-1, 1], repeat=G)`` (first cluster = most significant
      digit), as ``wildboottest.weights.draw_weights`` does. NB wildboottest itself only
      enumerates when ``2**G < B`` (strictly); the two differ only at ``B == 2**G``.
    * Webb (2023, Can. J. Econ. 56(3), "Reworking wild bootstrap-based inference for clustered
      errors"): six points +-sqrt(1/2), +-1, +-sqrt(3/2) with probability 1/6 each; never
      enumerated (6**G draws).

    Random draws use ``np.random.default_rng(seed).choice(points, size=G*B).reshape(G, B)``,
    identical to wildboottest's generator, so a common seed yields identical draws.
    """
    if weights not in ("webb", "rademacher"):
        raise ValueError(f"weights must be 'webb' or 'rademacher', got {weights!r}")
    G = int(n_clusters)
    if full_enumeration is None:
        full_enumeration = weights == "rademacher" and 2**G <= B
    if full_enumeration:
        if weights != "rademacher":
            raise ValueError("full enumeration is only available for Rademacher weights")
        if G > _MAX_ENUMERATION_CLUSTERS:
            raise ValueError(f"refusing to enumerate 2**{G} sign vectors")
        b = np.arange(2**G, dtype=np.int64)
        bits = (b[None, :] >> np.arange(G - 1, -1, -1, dtype=np.int64)[:, None]) & 1
        return (2.0 * bits - 1.0), True
    if isinstance(seed, int | np.integer):
        return _seeded_weights(G, int(B), weights, int(seed)), False
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return _random_weights(G, int(B), weights, rng), False


def _random_weights(G: int, B: int, weights: str, rng: np.random.Generator) -> np.ndarray:
    points = np.array([-1, 1]) if weights == "rademacher" else WEBB_POINTS
    return rng.choice(points, size=G * B, replace=True).reshape(G, B).astype(np.float64)


@lru_cache(maxsize=4)
def _seeded_weights(G: int, B: int, weights: str, seed: int) -> np.ndarray:
    """The draws of an integer seed, made once per process (the robustness stage asks for the
    same G x 99,999 matrix in every check); read-only, so no caller can change them."""
    v = _random_weights(G, B, weights, np.random.default_rng(seed))
    v.flags.writeable = False
    return v


def _wcr_one(
    xx_g: np.ndarray,
    xy_g: np.ndarray,
    xx_inv: np.ndarray,
    beta: np.ndarray,
    j: int,
    v: np.ndarray,
    constant_draw: np.ndarray,
    ssc: float,
    ties: str,
) -> tuple[float, float, np.ndarray]:
    """WCR11 bootstrap-t for ``beta_j = 0`` (Roodman, MacKinnon, Nielsen & Webb 2019, sec. 3).

    Restricted estimate ``b~ = b - (X'X)^-1 e_j (e_j'(X'X)^-1 e_j)^-1 b_j`` (so ``b~_j = 0``),
    restricted cluster scores ``S_g = X_g'y_g - X_g'X_g b~``. For weights ``v`` (G x B):

    * numerator   ``b*_j - 0 = c'v``, ``c_g = e_j'(X'X)^-1 S_g``;
    * denominator ``ssc * sum_g Z_gb^2``, ``Z = diag(c) v - H v``,
      ``H_gh = e_j'(X'X)^-1 X_g'X_g (X'X)^-1 S_h``,

    since the bootstrap score of cluster ``g`` is ``v_g S_g - X_g'X_g (X'X)^-1 sum_h v_h S_h``.
    All draws are handled by one (G x G) @ (G x B) product.
    """
    a = xx_inv[:, j]  # (X'X)^-1 e_j  (symmetric)
    beta_r = beta - a * (beta[j] / a[j])
    scores_r = xy_g - xx_g @ beta_r  # (G, k)
    c = scores_r @ a  # (G,)
    H = np.einsum("i,gik,kh->gh", a, xx_g, xx_inv @ scores_r.T)
    numer = c @ v
    Z = c[:, None] * v - H @ v
    denom = ssc * np.einsum("gb,gb->b", Z, Z)
    t_boot = numer / np.sqrt(denom)
    # original t: unrestricted scores u_g = X_g'y_g - X_g'X_g b
    scores_u = xy_g - xx_g @ beta
    se = np.sqrt(ssc * np.sum((scores_u @ a) ** 2))
    t_stat = float(beta[j] / se)
    # draws proportional to a constant vector (v = +-1 for Rademacher) reproduce the sample
    # exactly, t* = sign(v) t: set them exactly so the tie is decided without rounding noise
    if constant_draw.any():
        t_boot[constant_draw] = np.sign(v[0, constant_draw]) * t_stat
    if ties == "exclude":
        p = float(np.mean(np.abs(t_boot) > abs(t_stat)))
    elif ties == "include":
        p = float(np.mean(np.abs(t_boot) >= abs(t_stat)))
    else:
        raise ValueError(f"ties must be 'exclude' or 'include', got {ties!r}")
    return t_stat, p, t_boot


@overload
def wild_cluster_restricted_bootstrap(
    y: ArrayLike,
    X: ArrayLike,
    clusters: ArrayLike,
    param: int | str,
    B: int = ...,
    weights: WeightType = ...,
    seed: int | np.random.Generator | None = ...,
    full_enumeration: bool | None = ...,
    *,
    n_absorbed: int = ...,
    ties: Literal["exclude", "include"] = ...,
    return_draws: bool = ...,
) -> WildBootstrapResult: ...


@overload
def wild_cluster_restricted_bootstrap(
    y: ArrayLike,
    X: ArrayLike,
    clusters: ArrayLike,
    param: Sequence[int | str],
    B: int = ...,
    weights: WeightType = ...,
    seed: int | np.random.Generator | None = ...,
    full_enumeration: bool | None = ...,
    *,
    n_absorbed: int = ...,
    ties: Literal["exclude", "include"] = ...,
    return_draws: bool = ...,
) -> dict[int, WildBootstrapResult]: ...


def wild_cluster_restricted_bootstrap(
    y: ArrayLike,
    X: ArrayLike,
    clusters: ArrayLike,
    param: int | str | Sequence[int | str],
    B: int = 99_999,
    weights: WeightType = "webb",
    seed: int | np.random.Generator | None = None,
    full_enumeration: bool | None = None,
    *,
    n_absorbed: int = 0,
    ties: Literal["exclude", "include"] = "exclude",
    return_draws: bool = False,
) -> WildBootstrapResult | dict[int, WildBootstrapResult]:
    """Wild cluster restricted bootstrap-t ("WCR11") test of ``H0: beta_param = 0``.

    Cameron, Gelbach & Miller (2008, REStat 90(3)); algorithm of Roodman, MacKinnon, Nielsen
    & Webb (2019, Stata J. 19(1), "Fast and wild"), section 3: everything is reduced to
    cluster-level blocks ``X_g'X_g``, ``X_g'y_g`` once, after which each parameter costs one
    ``(G x G) @ (G x B)`` product. Only FE *nested in the clusters* may be partialled out of
    ``y`` and ``X`` beforehand; every other FE (year effects with country clusters) must be
    columns of ``X`` so that each draw re-estimates them: pass the ``y, X`` of
    :func:`cluster_design`. (Arrays demeaned on non-nested FE give wrong p-values: the
    bootstrap residuals keep year means that a refit would remove.)

    Bootstrap DGP ``y*_b = X b~ + v_{g(i)b} u~_i`` with ``u~`` the restricted residuals; each
    draw is re-estimated and its CRV1 t-statistic for ``beta_param - 0`` is formed.
    p-value (two-sided, symmetric) ``= mean_b 1{|t*_b| > |t|}`` over the ``B'`` draws, which
    is wildboottest's ``pval_type="two-tailed"``; ``ties="include"`` uses ``>=`` instead
    (with full enumeration this is the exact randomisation p-value, which counts the draws
    ``v = +-1`` that reproduce ``|t|``; it is larger by ``2 / 2**G``).

    Parameters
    ----------
    y, X : outcome (N,) and regressors (N, k) with only cluster-nested FE partialled out
        (:class:`ClusterDesign`), no constant.
    clusters : cluster labels (N,).
    param : column index (or name, if ``X`` is a DataFrame) or a list of them; every
        parameter is tested against the same weight matrix.
    B : requested number of draws (99,999 gives ``alpha (B+1)`` integer for usual alphas).
    weights : ``"webb"`` (default; preferred with G < ~12, Webb 2023) or ``"rademacher"``.
    seed : seed or Generator for the draws (same stream as wildboottest for the same seed).
    full_enumeration : None = automatic (Rademacher and ``2**G <= B``).
    n_absorbed : only scales the reported t-statistic (``(N-1)/(N-K)``, K = k + n_absorbed);
        the p-value is invariant to it. 0 reproduces wildboottest's statistic, the pyfixest
        count (:func:`count_absorbed_parameters`) reproduces the CRV1 t of ``feols``.
    ties : "exclude" (``>``, wildboottest) or "include" (``>=``).
    return_draws : keep the ``B'`` bootstrap t-statistics in the result.

    Returns
    -------
    :class:`WildBootstrapResult` for a single ``param``; ``{index: result}`` for a list.
    """
    Xa = _as_2d(X)
    ya = _as_1d(y)
    n, k = Xa.shape
    if ya.shape[0] != n:
        raise ValueError("y and X have different numbers of rows")
    codes, G = _cluster_codes(np.asarray(clusters), n)
    if G < 2:
        raise ValueError("need at least two clusters")
    idx = _resolve_params(param, X, k)

    xx_g = _group_sum(Xa[:, :, None] * Xa[:, None, :], codes, G)  # (G, k, k)
    xy_g = _group_sum(Xa * ya[:, None], codes, G)  # (G, k)
    xx_inv = np.linalg.inv(xx_g.sum(axis=0))
    beta = xx_inv @ xy_g.sum(axis=0)
    ssc = G / (G - 1) * (n - 1) / (n - (k + int(n_absorbed)))

    v, enumerated = draw_wild_weights(G, B, weights, seed, full_enumeration)
    constant_draw = np.ptp(v, axis=0) == 0

    results: dict[int, WildBootstrapResult] = {}
    for j in idx:
        t_stat, p, t_boot = _wcr_one(xx_g, xy_g, xx_inv, beta, j, v, constant_draw, ssc, ties)
        results[j] = WildBootstrapResult(
            param=j,
            estimate=float(beta[j]),
            t_stat=t_stat,
            p_value=p,
            n_draws=int(v.shape[1]),
            enumerated=enumerated,
            weights=weights,
            n_clusters=G,
            t_boot=t_boot if return_draws else None,
        )
    if isinstance(param, int | str | np.integer):
        return results[idx[0]]
    return results


def wild_bootstrap_coefficient_draws(
    y: ArrayLike,
    X: ArrayLike,
    clusters: ArrayLike,
    B: int = 9_999,
    weights: WeightType = "webb",
    seed: int | np.random.Generator | None = None,
    full_enumeration: bool | None = None,
) -> np.ndarray:
    """Unrestricted wild cluster bootstrap (WCU) draws of all coefficients, shape (B', k).

    ``b*_b = b + (X'X)^-1 sum_g v_gb X_g'u_g`` with ``u`` the unrestricted residuals — the
    coefficient vector re-estimated on ``y* = X b + v u`` (Cameron, Gelbach & Miller 2008;
    Roodman et al. 2019, sec. 3). ``y`` and ``X`` as for
    :func:`wild_cluster_restricted_bootstrap`. Not used for the reported marginal-effect bands
    (those are studentised: :func:`wild_bootstrap_t_linear`); for *tests* prefer the
    restricted bootstrap-t, which is far more reliable with few clusters (MacKinnon & Webb
    2017; Djogbenou, MacKinnon & Nielsen 2019).
    """
    Xa = _as_2d(X)
    ya = _as_1d(y)
    codes, G = _cluster_codes(np.asarray(clusters), Xa.shape[0])
    xx_inv = np.linalg.inv(Xa.T @ Xa)
    beta = xx_inv @ (Xa.T @ ya)
    scores = _group_sum(Xa * (ya - Xa @ beta)[:, None], codes, G)  # (G, k)
    v, _ = draw_wild_weights(G, B, weights, seed, full_enumeration)
    return beta[None, :] + (v.T @ scores) @ xx_inv


# ---------------------------------------------------------------------------------------------
# the design the cluster bootstrap refits: nested FE partialled out, the others as dummies
# ---------------------------------------------------------------------------------------------
def fe_nested_in_cluster(frame: pd.DataFrame, fe: str, cluster: str) -> bool:
    """True when every level of ``fe`` lies within one cluster (e.g. country FE in country
    clusters, or country x chain FE in country clusters); year FE are not nested in country
    clusters."""
    return fe == cluster or int(frame.groupby(fe)[cluster].nunique().max()) == 1


@dataclass(frozen=True)
class ClusterDesign:
    """Outcome and regressors of a FE model in the form the cluster bootstrap must refit.

    ``y`` and ``X`` have the FE *nested in the clusters* partialled out (within-cluster
    demeaning, which commutes with any cluster-level operation: bootstrap weights constant
    within a cluster, dropping a whole cluster); every other FE enters ``X`` as explicit dummy
    columns (one level dropped), so that every bootstrap draw and every leave-one-cluster-out
    refit re-estimates them. ``X`` holds ``regressors`` first, then the dummies.
    """

    y: np.ndarray
    X: np.ndarray
    names: list[str]
    regressors: list[str]
    clusters: np.ndarray
    n_nested: int  # FE partialled out (each counts one parameter in pyfixest's K)

    @property
    def n_absorbed(self) -> int:
        """pyfixest's count of absorbed parameters for this design: the dummies are in X,
        each nested FE counts one (``count_absorbed_parameters``)."""
        return self.n_nested


def cluster_design(
    frame: pd.DataFrame,
    dependent: str,
    regressors: list[str],
    fixed_effects: Sequence[str],
    cluster: str,
    *,
    tol: float = 1e-14,
) -> ClusterDesign:
    """Build the :class:`ClusterDesign` of ``dependent ~ regressors | fixed_effects``.

    FE nested in ``cluster`` are partialled out once (Frisch–Waugh–Lovell; valid for the
    bootstrap because the wild weights are constant within a cluster, so the within-cluster
    projection commutes with them: MacKinnon, Nielsen & Webb 2023, J. Econom. 232(2), sec. 5;
    Roodman et al. 2019, sec. 3.3). Non-nested FE (year effects when clustering by country)
    become dummy regressors, the first level dropped; dummy columns made redundant by the
    others (e.g. an all-zero column after within-cluster demeaning) are dropped, so ``X`` has
    full column rank. If no FE is nested, every level of the first non-nested FE is kept
    (it then plays the intercept).

    OLS of ``y`` on ``X`` reproduces the two-way FE coefficients and residuals, and its CRV1
    with ``n_absorbed = n_nested`` equals pyfixest's ``feols(..., vcov={"CRV1": cluster})``.
    """
    fe = list(fixed_effects)
    missing = [c for c in [dependent, *regressors, *fe, cluster] if c not in frame.columns]
    if missing:
        raise KeyError(f"columns not in frame: {missing}")
    nested = [f for f in fe if fe_nested_in_cluster(frame, f, cluster)]
    other = [f for f in fe if f not in nested]
    cols = [dependent, *regressors]
    dummy_names: list[str] = []
    dummy_blocks: list[np.ndarray] = []
    for i, f in enumerate(other):
        levels = np.sort(frame[f].unique())
        keep = levels if (not nested and i == 0) else levels[1:]
        block = (frame[f].to_numpy()[:, None] == keep[None, :]).astype(np.float64)
        dummy_blocks.append(block)
        dummy_names += [f"{f}[{level}]" for level in keep]
    data = frame[cols].to_numpy(np.float64)
    if dummy_blocks:
        data = np.column_stack([data, *dummy_blocks])
    if nested:
        data = _demean_array(data, _fe_codes(frame[nested]), tol)
    y, X = data[:, 0], data[:, 1:]
    names = [*regressors, *dummy_names]
    # drop redundant dummy columns (never a regressor: a collinear regressor is an error)
    k = len(regressors)
    if np.linalg.matrix_rank(X[:, :k]) < k:
        raise ValueError("regressors are collinear once the fixed effects are removed")
    keep_cols = list(range(k))
    for c in range(k, X.shape[1]):
        trial = keep_cols + [c]
        if np.linalg.matrix_rank(X[:, trial]) == len(trial):
            keep_cols = trial
    X = X[:, keep_cols]
    names = [names[c] for c in keep_cols]
    return ClusterDesign(y=y, X=X, names=names, regressors=list(regressors),
                         clusters=frame[cluster].to_numpy(), n_nested=len(nested))


def leave_one_cluster_out(
    y: ArrayLike, X: ArrayLike, clusters: ArrayLike, n_absorbed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-cluster-out estimates and their CRV1 standard errors.

    For each cluster g: ``b_(g) = (X'X - X_g'X_g)^+ (X'y - X_g'y_g)`` (the refit on the other
    clusters; with a :class:`ClusterDesign` the year dummies are re-estimated and nested FE
    stay partialled, as in summclust), its residuals and the CRV1 covariance on the ``G - 1``
    remaining clusters with ``c = (G-1)/(G-2) (N_-g - 1)/(N_-g - K_-g)``, ``K_-g`` the rank of
    the remaining design plus ``n_absorbed``. Columns that vanish without cluster g (e.g. a year
    observed only there) are dropped from that refit.

    Returns (cluster labels (G,), estimates (G, k), CRV1 SEs (G, k)); NaN where a coefficient
    is not identified without cluster g.
    """
    Xa, ya = _as_2d(X), _as_1d(y)
    n, k = Xa.shape
    labels = np.asarray(clusters)
    codes, G = _cluster_codes(labels, n)
    if G < 3:
        raise ValueError("need at least three clusters")
    uniq = np.unique(labels)
    est = np.full((G, k), np.nan)
    ses = np.full((G, k), np.nan)
    for g in range(G):
        keep = codes != g
        Xg, yg, cg = Xa[keep], ya[keep], codes[keep]
        active = np.flatnonzero(np.any(Xg != 0, axis=0))
        Xs = Xg[:, active]
        rank = np.linalg.matrix_rank(Xs)
        if rank < Xs.shape[1]:
            # keep columns in order while they add rank (regressors come before dummies)
            chosen: list[int] = []
            for c in active:
                if np.linalg.matrix_rank(Xg[:, [*chosen, c]]) == len(chosen) + 1:
                    chosen.append(int(c))
            active = np.array(chosen)
            Xs = Xg[:, active]
        b = np.linalg.lstsq(Xs, yg, rcond=None)[0]
        V = crv1_vcov(Xs, yg - Xs @ b, cg, n_absorbed=n_absorbed)
        est[g, active] = b
        ses[g, active] = np.sqrt(np.diag(V))
    return uniq, est, ses


def cluster_jackknife_vcov(
    y: ArrayLike,
    X: ArrayLike,
    clusters: ArrayLike,
    scale: Literal["mnw", "pyfixest"] = "mnw",
    n_absorbed: int = 0,
) -> np.ndarray:
    """CV3 cluster jackknife on a :class:`ClusterDesign` (or any design without non-nested FE).

    ``V = c sum_g (b_(g) - b)(b_(g) - b)'`` with ``b_(g)`` from the cluster blocks (pseudo-
    inverse, as summclust and pyfixest) and ``c = (G-1)/G`` (``scale="mnw"``: MacKinnon,
    Nielsen & Webb 2023, J. Econom. 232(2), eq. (20), the CV3 of summclust) or pyfixest's CRV1
    factor ``G/(G-1) (N-1)/(N-K)``, ``K = k + n_absorbed`` (``scale="pyfixest"``).
    """
    return crv3_vcov(X, y, clusters, n_absorbed=n_absorbed, scale=scale)


def partial_leverage(X: ArrayLike, clusters: ArrayLike, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Each cluster's partial leverage for coefficient ``j`` (MacKinnon, Nielsen & Webb 2023,
    J. Econom. 232(2), sec. 6; summclust's "Partial L.").

    ``x~`` = residual of column ``j`` of ``X`` on all other columns (FWL: with a
    :class:`ClusterDesign` this is the regressor net of the other regressors, the nested FE
    and the year effects); ``L_g = x~_g'x~_g / x~'x~``, so ``sum_g L_g = 1``.
    Returns (cluster labels, L).
    """
    Xa = _as_2d(X)
    n = Xa.shape[0]
    labels = np.asarray(clusters)
    codes, G = _cluster_codes(labels, n)
    others = np.delete(Xa, j, axis=1)
    xj = Xa[:, j]
    if others.shape[1]:
        xj = xj - others @ np.linalg.lstsq(others, xj, rcond=None)[0]
    ss = np.bincount(codes, weights=xj**2, minlength=G)
    return np.unique(labels), ss / ss.sum()


def effective_clusters(X: ArrayLike, clusters: ArrayLike, j: int, rho: float = 0.0) -> float:
    """Effective number of clusters G*(rho) of Carter, Schnepel & Steigerwald (2017, REStat
    99(4), "Asymptotic behavior of a t-test robust to cluster heterogeneity"), for coefficient j.

    With ``w = (X'X)^-1 e_j`` and ``Omega_g = rho 1 1' + (1 - rho) I``:
    ``gamma_g = w' X_g' Omega_g X_g w``, ``Gamma = (1/G) sum_g ((gamma_g - gamma_bar) /
    gamma_bar)^2`` and ``G* = G / (1 + Gamma)``. ``rho = 0`` (the default, summclust's G*(0))
    makes ``gamma_g`` proportional to the partial leverage, so
    ``G*(0) = G / (1 + G^2 var(L_g))`` (var with divisor G); ``G* = G`` iff all clusters have
    the same partial leverage.
    """
    Xa = _as_2d(X)
    n, k = Xa.shape
    codes, G = _cluster_codes(np.asarray(clusters), n)
    w = np.linalg.solve(Xa.T @ Xa, np.eye(k)[:, j])
    xw = Xa @ w
    gamma0 = np.bincount(codes, weights=xw**2, minlength=G)
    gamma1 = np.bincount(codes, weights=xw, minlength=G) ** 2
    gamma = rho * gamma1 + (1 - rho) * gamma0
    bar = gamma.mean()
    Gamma = float(np.mean(((gamma - bar) / bar) ** 2))
    return G / (1 + Gamma)


def wild_bootstrap_t_linear(
    y: ArrayLike,
    X: ArrayLike,
    clusters: ArrayLike,
    R: ArrayLike,
    B: int = 9_999,
    weights: WeightType = "webb",
    seed: int | np.random.Generator | None = None,
    n_absorbed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unrestricted wild cluster bootstrap-t ("WCU11") of linear combinations ``theta = R b``.

    Bootstrap samples ``y* = X b + v_g u`` (``u`` the OLS residuals, one weight per cluster);
    each draw's ``theta*_b = R b*_b`` and its CRV1 standard error ``se*_b`` (same small-sample
    factor ``c = G/(G-1)(N-1)/(N-K)`` as the sample's) give ``t*_b = (theta*_b - theta)/se*_b``.
    Computed without refitting (Roodman et al. 2019, sec. 3): for ``a = (X'X)^-1 r``, the draw's
    cluster score contributions are ``Z_g = v_g c_g - sum_h H_gh v_h`` with ``c_g = a'S_g``,
    ``H_gh = a'X_g'X_g (X'X)^-1 S_h``, ``S_g = X_g'u_g``; ``theta*_b - theta = sum_g v_g c_g``.

    Returns (theta (m,), CRV1 se (m,), t* (m, B)). A studentised (bootstrap-t) interval is
    ``theta -+ q se`` with ``q`` a quantile of ``|t*|`` (Hall 1992; Cameron, Gelbach & Miller
    2008, sec. IV).
    """
    Xa, ya = _as_2d(X), _as_1d(y)
    n, k = Xa.shape
    codes, G = _cluster_codes(np.asarray(clusters), n)
    Rm = np.atleast_2d(np.asarray(R, dtype=np.float64))
    if Rm.shape[1] != k:
        raise ValueError(f"R must have {k} columns, got {Rm.shape}")
    xx_g = _group_sum(Xa[:, :, None] * Xa[:, None, :], codes, G)
    xx_inv = np.linalg.inv(xx_g.sum(axis=0))
    beta = xx_inv @ (Xa.T @ ya)
    scores = _group_sum(Xa * (ya - Xa @ beta)[:, None], codes, G)  # (G, k)
    ssc = G / (G - 1) * (n - 1) / (n - (k + int(n_absorbed)))
    v, _ = draw_wild_weights(G, B, weights, seed)
    A = Rm @ xx_inv  # (m, k): rows a'
    C = scores @ A.T  # (G, m): c_g for each combination
    M = xx_inv @ scores.T  # (k, G)
    theta = Rm @ beta
    se = np.sqrt(ssc * np.sum(C**2, axis=0))
    t_boot = np.empty((Rm.shape[0], v.shape[1]))
    for i in range(Rm.shape[0]):
        H = np.einsum("i,gik,kh->gh", A[i], xx_g, M)
        numer = C[:, i] @ v
        Z = C[:, i][:, None] * v - H @ v
        t_boot[i] = numer / np.sqrt(ssc * np.einsum("gb,gb->b", Z, Z))
    return theta, se, t_boot


# ---------------------------------------------------------------------------------------------
# instrumental variables: 2SLS with CRV1, first-stage and Sanderson–Windmeijer F, Anderson–Rubin
# ---------------------------------------------------------------------------------------------
def _cluster_wald(X: np.ndarray, y: np.ndarray, clusters: np.ndarray, cols: list[int],
                  n_absorbed: int) -> tuple[np.ndarray, float]:
    """OLS of y on X and the CRV1 Wald statistic ``b_S' V_SS^-1 b_S`` of the columns S."""
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    V = crv1_vcov(X, y - X @ b, clusters, n_absorbed=n_absorbed)
    bs = b[cols]
    return b, float(bs @ np.linalg.solve(V[np.ix_(cols, cols)], bs))


def tsls(
    y: ArrayLike,
    endog: ArrayLike,
    exog: ArrayLike | None,
    instruments: ArrayLike,
    clusters: ArrayLike,
    n_absorbed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Two-stage least squares with a CRV1 covariance (FE partialled out beforehand).

    ``X = [endog, exog]``, ``Z = [instruments, exog]``, ``Xh = Z (Z'Z)^-1 Z'X``;
    ``b = (Xh'X)^-1 Xh'y``, ``u = y - X b`` and
    ``V = c (Xh'Xh)^-1 [sum_g Xh_g'u_g u_g'Xh_g] (Xh'Xh)^-1`` with the CRV1 factor
    ``c = G/(G-1) (N-1)/(N-K)``, ``K = cols(X) + n_absorbed`` (pyfixest's IV convention;
    Cameron & Miller 2015, sec. VI). Returns (b, V) in the order ``[endog, exog]``.
    """
    E = _as_2d(endog)
    Wx = np.empty((E.shape[0], 0)) if exog is None else _as_2d(exog)
    X = np.column_stack([E, Wx])
    Z = np.column_stack([_as_2d(instruments), Wx])
    ya = _as_1d(y)
    if Z.shape[1] < X.shape[1]:
        raise ValueError("fewer instruments than endogenous regressors: not identified")
    Xh = Z @ np.linalg.lstsq(Z, X, rcond=None)[0]
    b = np.linalg.solve(Xh.T @ X, Xh.T @ ya)
    u = ya - X @ b
    return b, crv1_vcov(Xh, u, clusters, n_absorbed=n_absorbed)


def first_stage_f(
    endog: ArrayLike,
    exog: ArrayLike | None,
    instruments: ArrayLike,
    clusters: ArrayLike,
    n_absorbed: int = 0,
) -> np.ndarray:
    """Cluster-robust first-stage F of each endogenous regressor.

    For endogenous ``x_j``: OLS of ``x_j`` on ``[Z, W]`` and ``F_j = pi' V_pi^-1 pi / q`` with
    ``V_pi`` the CRV1 covariance of the ``q`` excluded-instrument coefficients (the Wald
    statistic divided by its degrees of freedom; compare with F(q, G-1)). With one endogenous
    regressor this is the robust first-stage F of Olea & Pflueger's setting without their
    bias correction; with several, see :func:`sanderson_windmeijer_f`.
    """
    E = _as_2d(endog)
    Zx = _as_2d(instruments)
    Wx = np.empty((E.shape[0], 0)) if exog is None else _as_2d(exog)
    q = Zx.shape[1]
    A = np.column_stack([Zx, Wx])
    cols = list(range(q))
    return np.array([_cluster_wald(A, E[:, j], np.asarray(clusters), cols, n_absorbed)[1] / q
                     for j in range(E.shape[1])])


def sanderson_windmeijer_f(
    endog: ArrayLike,
    exog: ArrayLike | None,
    instruments: ArrayLike,
    clusters: ArrayLike,
    n_absorbed: int = 0,
) -> np.ndarray:
    """Sanderson & Windmeijer (2016, J. Econom. 190(2)) conditional first-stage F, cluster-robust.

    For endogenous ``x_j`` among ``p``: the 2SLS regression of ``x_j`` on the other endogenous
    regressors ``X_-j`` (and ``W``) with instruments ``[Z, W]`` gives residuals ``e_j``; OLS of
    ``e_j`` on ``[Z, W]`` and ``F_j = e' V^-1 e / (q - p + 1)`` with the CRV1 Wald statistic of
    the ``q`` instrument coefficients (ivreg2's robust SW statistic divides the same Wald by
    ``q - p + 1``). It measures whether ``x_j`` is identified *given* the others; with
    ``p = 1`` it equals :func:`first_stage_f`.
    """
    E = _as_2d(endog)
    Zx = _as_2d(instruments)
    Wx = np.empty((E.shape[0], 0)) if exog is None else _as_2d(exog)
    p = E.shape[1]
    q = Zx.shape[1]
    if q < p:
        raise ValueError("fewer instruments than endogenous regressors: not identified")
    A = np.column_stack([Zx, Wx])
    cols = list(range(q))
    out = np.empty(p)
    for j in range(p):
        if p == 1:
            e = E[:, 0]
        else:
            others = np.delete(E, j, axis=1)
            b, _ = tsls(E[:, j], others, Wx if Wx.shape[1] else None, Zx, clusters, n_absorbed)
            e = E[:, j] - np.column_stack([others, Wx]) @ b
        out[j] = _cluster_wald(A, e, np.asarray(clusters), cols, n_absorbed)[1] / (q - p + 1)
    return out


def anderson_rubin(
    y: ArrayLike,
    endog: ArrayLike,
    exog: ArrayLike | None,
    instruments: ArrayLike,
    clusters: ArrayLike,
    beta0: ArrayLike,
    n_absorbed: int = 0,
) -> tuple[float, float]:
    """Cluster-robust Anderson–Rubin (1949) test of ``H0: beta_endog = beta0`` (all endogenous).

    OLS of ``y - X_endog beta0`` on ``[Z, W]``; ``AR = Wald(Z coefficients, CRV1) / q``,
    p-value from ``F(q, G-1)`` (the few-cluster reference distribution of a CRV1 Wald
    statistic, as for the t tests; Andrews, Stock & Sun 2019, Annu. Rev. Econ. 11, sec. 5).
    Valid however weak the instruments are. Returns (AR statistic, p-value).
    """
    E = _as_2d(endog)
    Zx = _as_2d(instruments)
    Wx = np.empty((E.shape[0], 0)) if exog is None else _as_2d(exog)
    q = Zx.shape[1]
    labels = np.asarray(clusters)
    G = int(np.unique(labels).size)
    ytil = _as_1d(y) - E @ np.atleast_1d(np.asarray(beta0, dtype=np.float64))
    _, wald = _cluster_wald(np.column_stack([Zx, Wx]), ytil, labels, list(range(q)), n_absorbed)
    stat = wald / q
    return stat, float(stats.f(q, G - 1).sf(stat))


def anderson_rubin_pvalues(
    y: ArrayLike,
    endog: ArrayLike,
    exog: ArrayLike | None,
    instruments: ArrayLike,
    clusters: ArrayLike,
    grid: np.ndarray,
    n_absorbed: int = 0,
) -> np.ndarray:
    """The :func:`anderson_rubin` p-value of ``H0: beta = b0`` for every ``b0`` of ``grid`` (one
    endogenous regressor): the same statistic per point, and the ``F(q, G-1)`` tail of all of
    them in one call (the same values as one call per point, without rebuilding the
    distribution object 801 times)."""
    E = _as_2d(endog)
    Zx = _as_2d(instruments)
    Wx = np.empty((E.shape[0], 0)) if exog is None else _as_2d(exog)
    q = Zx.shape[1]
    labels = np.asarray(clusters)
    G = int(np.unique(labels).size)
    design = np.column_stack([Zx, Wx])
    yv = _as_1d(y)
    statistics = np.array([
        _cluster_wald(design, yv - E @ np.atleast_1d(np.asarray([b0], dtype=np.float64)),
                      labels, list(range(q)), n_absorbed)[1] / q for b0 in grid])
    return np.asarray(stats.f(q, G - 1).sf(statistics), dtype=float)


def anderson_rubin_set(
    y: ArrayLike,
    endog: ArrayLike,
    exog: ArrayLike | None,
    instruments: ArrayLike,
    clusters: ArrayLike,
    grid: np.ndarray,
    level: float = 0.95,
    n_absorbed: int = 0,
) -> tuple[list[tuple[float, float]], bool]:
    """Anderson–Rubin confidence set of one endogenous coefficient by test inversion on ``grid``:
    the values ``b0`` with AR p-value above ``1 - level``, as a list of (low, high) runs of
    grid points. The flag is True when the set reaches an end of the grid (it may then be
    unbounded: with weak instruments AR sets can be unbounded or disjoint)."""
    accepted = anderson_rubin_pvalues(y, endog, exog, instruments, clusters, grid,
                                      n_absorbed) > 1 - level
    runs: list[tuple[float, float]] = []
    start = None
    for i, ok in enumerate(accepted):
        if ok and start is None:
            start = i
        if start is not None and (not ok or i == len(grid) - 1):
            end = i if ok else i - 1
            runs.append((float(grid[start]), float(grid[end])))
            start = None
    return runs, bool(accepted[0] or accepted[-1])


def anderson_rubin_closed_form(
    y: ArrayLike,
    endog: ArrayLike,
    exog: ArrayLike | None,
    instrument: ArrayLike,
    clusters: ArrayLike,
    level: float = 0.95,
    n_absorbed: int = 0,
) -> dict:
    """The exact Anderson–Rubin confidence set of one endogenous coefficient with one instrument.

    With ``A = [z, W]``, the reduced form (``y`` on ``A``) and the first stage (``x`` on ``A``)
    give the instrument coefficients ``pi_y`` and ``pi_x`` and their joint CRV1 covariance
    ``V_yy, V_xy, V_xx`` (scores ``a'A_g'e_g`` with ``a = (A'A)^-1 e_1``, the factor
    ``c = G/(G-1)(N-1)/(N-K)`` of :func:`crv1_vcov`). For ``H0: beta = b`` the residuals of
    ``y - b x`` on ``A`` are ``e_y - b e_x``, so the statistic of :func:`anderson_rubin` is

        AR(b) = (pi_y - b pi_x)^2 / (V_yy - 2 b V_xy + b^2 V_xx),

    and ``b`` is in the set when ``AR(b) <= kappa``, ``kappa`` the ``level`` quantile of
    ``F(1, G-1)``: the quadratic inequality ``a2 b^2 + a1 b + a0 <= 0`` with
    ``a2 = pi_x^2 - kappa V_xx``, ``a1 = -2 (pi_y pi_x - kappa V_xy)``,
    ``a0 = pi_y^2 - kappa V_yy`` (Dufour & Taamouti 2005, Econometrica 73(4); Andrews, Stock &
    Sun 2019, Annu. Rev. Econ. 11, sec. 5.1). ``a2 > 0`` exactly when the first-stage t^2
    exceeds ``kappa``; then the set is a bounded interval (or empty). With ``a2 < 0`` it is the
    union of two rays or, if the quadratic has no real roots, the whole line. So the set is
    unbounded whenever the first-stage F is below ``F_{level}(1, G-1)``.

    Returns a dict: ``kind`` ("bounded interval", "union of two rays", "whole line", "empty",
    "ray"), ``bounded`` (bool), ``intervals`` (list of (low, high), with +-inf), ``quadratic``
    (a2, a1, a0), ``critical_value`` kappa, and ``first_stage`` / ``reduced_form`` dicts with
    the instrument coefficient, its CRV1 SE and t(G-1) p-value.
    """
    x = _as_1d(endog)
    ya = _as_1d(y)
    z = _as_2d(instrument)
    if z.shape[1] != 1:
        raise ValueError("the closed form is for one instrument; use anderson_rubin_set")
    W = np.empty((x.shape[0], 0)) if exog is None else _as_2d(exog)
    A = np.column_stack([z, W])
    n, k = A.shape
    codes, G = _cluster_codes(np.asarray(clusters), n)
    AtA_inv = np.linalg.inv(A.T @ A)
    a = AtA_inv[:, 0]
    coef_y, coef_x = AtA_inv @ (A.T @ ya), AtA_inv @ (A.T @ x)
    e_y, e_x = ya - A @ coef_y, x - A @ coef_x
    s_y = _group_sum((A @ a) * e_y, codes, G)
    s_x = _group_sum((A @ a) * e_x, codes, G)
    c = G / (G - 1) * (n - 1) / (n - (k + int(n_absorbed)))
    V_yy, V_xx, V_xy = c * s_y @ s_y, c * s_x @ s_x, c * s_y @ s_x
    pi_y, pi_x = float(coef_y[0]), float(coef_x[0])
    kappa = float(stats.f(1, G - 1).ppf(level))
    a2 = pi_x**2 - kappa * V_xx
    a1 = -2.0 * (pi_y * pi_x - kappa * V_xy)
    a0 = pi_y**2 - kappa * V_yy
    scale = max(abs(a2), abs(a1), abs(a0), np.finfo(float).tiny)
    inf = float("inf")
    intervals: list[tuple[float, float]]
    if abs(a2) <= 1e-14 * scale:
        if a1 == 0:
            kind, intervals = ("whole line", [(-inf, inf)]) if a0 <= 0 else ("empty", [])
        else:
            root = -a0 / a1
            kind = "ray"
            intervals = [(root, inf)] if a1 < 0 else [(-inf, root)]
    else:
        disc = a1**2 - 4 * a2 * a0
        if disc < 0:
            kind, intervals = ("empty", []) if a2 > 0 else ("whole line", [(-inf, inf)])
        else:
            q = -0.5 * (a1 + np.copysign(np.sqrt(disc), a1))
            roots = sorted([q / a2, a0 / q]) if q != 0 else [0.0, 0.0]
            if a2 > 0:
                kind, intervals = "bounded interval", [(float(roots[0]), float(roots[1]))]
            else:
                kind = "union of two rays"
                intervals = [(-inf, float(roots[0])), (float(roots[1]), inf)]
    t_dist = stats.t(G - 1)

    def summary(coef: float, var: float) -> dict:
        se = float(np.sqrt(var))
        return {"estimate": coef, "std_error": se, "t": coef / se,
                "p_value": float(2 * t_dist.sf(abs(coef / se)))}

    return {"kind": kind, "bounded": kind in ("bounded interval", "empty"),
            "intervals": intervals, "quadratic": (float(a2), float(a1), float(a0)),
            "critical_value": kappa, "level": level, "n_clusters": G,
            "first_stage": summary(pi_x, V_xx), "reduced_form": summary(pi_y, V_yy)}


def driscoll_kraay_vcov(
    X: ArrayLike,
    resid: ArrayLike,
    time: ArrayLike,
    bandwidth: float,
    n_extra: int = 0,
) -> np.ndarray:
    """Driscoll & Kraay (1998, REStat 80(4)) covariance with the Bartlett kernel, on arrays.

    ``xi_t = sum_{i in t} x_it u_it`` (the scores summed over the units of period t, periods in
    sorted order), ``Gamma_j = sum_t xi_t xi_{t-j}'`` and
    ``S = Gamma_0 + sum_{j=1}^{L} (1 - j/(L+1)) (Gamma_j + Gamma_j')`` with ``L`` the integer
    part of ``bandwidth``; ``V = N/(N - k - n_extra) (X'X)^-1 S (X'X)^-1``. With the
    FE-partialled ``X`` (k columns), the residuals and ``n_extra`` = the number of absorbed
    effects (``G + T - 1`` for entity and time effects) this is linearmodels'
    ``PanelOLS.fit(cov_type="kernel", kernel="bartlett", bandwidth=L)`` with its default
    ``debiased=True`` (tested), without its pandas overhead, so that the bench can size it on
    many simulated samples.
    """
    Xa = _as_2d(X)
    u = _as_1d(resid)
    n, k = Xa.shape
    times = np.asarray(time)
    _, codes = np.unique(times, return_inverse=True)
    T = int(codes.max()) + 1
    xi = _group_sum(Xa * u[:, None], codes.ravel(), T)  # (T, k), periods sorted
    lags = int(np.floor(bandwidth))
    if lags >= T:
        raise ValueError(f"bandwidth {bandwidth} must be below the number of periods {T}")
    S = xi.T @ xi
    for j in range(1, lags + 1):
        gamma = xi[j:].T @ xi[:-j]
        S = S + (1 - j / (lags + 1)) * (gamma + gamma.T)
    bread = np.linalg.inv(Xa.T @ Xa)
    V = n / (n - k - int(n_extra)) * bread @ S @ bread
    return (V + V.T) / 2
