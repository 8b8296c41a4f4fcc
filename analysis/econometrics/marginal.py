"""Marginal effects in moderated (interaction) regressions.

Term names follow pyfixest / R formula syntax: main effects ``gpr``, interactions
``gpr:rn``, ``gpr:rn:ti`` (any order of the factors). For a focal regressor ``x`` the
marginal effect is

    dY/dx = b_x + sum_{terms t containing x} b_t * prod_{other factors m of t} m,

which is linear in the coefficients, ``ME = g'b`` with gradient ``g_t = prod m`` (``g_x = 1``,
``g_t = 0`` for terms without ``x``), so its delta-method variance is exact: ``g'Vg``
(Brambor, Clark & Golder 2006, Political Analysis 14(1); Aiken & West 1991).

* :func:`marginal_effect` — effect, SE and CI at chosen moderator values;
* :func:`studentized_band` — bootstrap-t (studentised) bands from wild-bootstrap t draws
  (:func:`analysis.econometrics.inference.wild_bootstrap_t_linear`), on the same CRV1 scale as the
  delta-method intervals; the project shows only these beside t(G-1) intervals;
* :func:`bootstrap_band` — percentile (and sup-t uniform) bands from coefficient draws (not
  used for the reported figures: a raw percentile band of an unscaled bootstrap is narrower
  than the t(G-1) interval it would sit beside);
* :func:`johnson_neyman` — the moderator values where the effect turns significant (pointwise,
  or simultaneous with the sup-t critical value of the bootstrap-t band);
* :func:`region_support` — how many observations and countries lie in such a region;
* :func:`binned_interaction` — Hainmueller, Mummolo & Xu (2019) binning estimator.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "binned_interaction",
    "bootstrap_band",
    "johnson_neyman",
    "marginal_effect",
    "marginal_effect_gradient",
    "region_support",
    "studentized_band",
]


def _critical_value(level: float, df: float | None) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    q = 0.5 + level / 2
    return float(stats.norm.ppf(q) if df is None else stats.t.ppf(q, df))


def _vcov_matrix(vcov: pd.DataFrame | np.ndarray, names: list[str]) -> np.ndarray:
    """Covariance as an array ordered like ``names`` (DataFrames are aligned by label)."""
    if isinstance(vcov, pd.DataFrame):
        return vcov.loc[names, names].to_numpy(np.float64)
    V = np.asarray(vcov, dtype=np.float64)
    if V.shape != (len(names), len(names)):
        raise ValueError(f"vcov must be {len(names)} x {len(names)}, got {V.shape}")
    return V


def _moderator_grid(moderators: Mapping[str, float | np.ndarray]) -> dict[str, np.ndarray]:
    """Broadcast the moderator values to a common 1-D grid."""
    if not moderators:
        return {}
    names = list(moderators)
    arrays = np.broadcast_arrays(*[np.asarray(moderators[m], dtype=np.float64) for m in names])
    return {m: np.atleast_1d(a).ravel() for m, a in zip(names, arrays, strict=True)}


def marginal_effect_gradient(
    names: Sequence[str], focal: str, moderators: Mapping[str, float | np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gradient ``d ME / d b`` for every grid point: array (n_points, n_params).

    Each name is split on ``':'``; a term enters only if ``focal`` is one of its factors,
    with weight equal to the product of the values of its other factors, each of which must
    be given in ``moderators``. A term with ``focal`` more than once (``x:x``) is rejected.
    """
    grid = _moderator_grid(moderators)
    n_points = len(next(iter(grid.values()))) if grid else 1
    grad = np.zeros((n_points, len(names)))
    found = False
    for col, name in enumerate(names):
        factors = [f.strip() for f in str(name).split(":")]
        n_focal = factors.count(focal)
        if n_focal == 0:
            continue
        if n_focal > 1:
            raise ValueError(f"term {name!r} contains {focal!r} more than once")
        found = True
        value = np.ones(n_points)
        for f in factors:
            if f == focal:
                continue
            if f not in grid:
                raise KeyError(f"term {name!r} needs a value for moderator {f!r}")
            value = value * grid[f]
        grad[:, col] = value
    if not found:
        raise KeyError(f"focal variable {focal!r} appears in no term")
    return grad, grid


def marginal_effect(
    params: pd.Series,
    vcov: pd.DataFrame | np.ndarray,
    focal: str,
    moderators: dict[str, float | np.ndarray],
    df: int | None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Marginal effect of ``focal`` with delta-method SE and CI at moderator values.

    ``ME(m) = g(m)'b``, ``SE = sqrt(g(m)' V g(m))``, ``CI = ME -+ q * SE`` with ``q`` the
    ``(1+level)/2`` quantile of ``t(df)`` (with cluster-robust V use ``df = G - 1``), or of the
    standard normal if ``df`` is None. ``moderators`` maps every other factor of the terms
    containing ``focal`` to a scalar or an array (arrays are broadcast against each other).

    Returns
    -------
    DataFrame with one row per grid point: the moderator values, ``estimate``,
    ``std_error``, ``t_stat``, ``p_value``, ``ci_low``, ``ci_high``.
    """
    names = list(params.index)
    b = params.to_numpy(np.float64)
    V = _vcov_matrix(vcov, names)
    grad, grid = marginal_effect_gradient(names, focal, moderators)
    est = grad @ b
    se = np.sqrt(np.einsum("pi,ij,pj->p", grad, V, grad))
    q = _critical_value(level, df)
    t = est / se
    dist = stats.norm if df is None else stats.t(df)
    out = pd.DataFrame(grid) if grid else pd.DataFrame(index=range(len(est)))
    out["estimate"] = est
    out["std_error"] = se
    out["t_stat"] = t
    out["p_value"] = 2 * dist.sf(np.abs(t))
    out["ci_low"] = est - q * se
    out["ci_high"] = est + q * se
    return out


def bootstrap_band(
    draws: np.ndarray,
    names: Sequence[str],
    focal: str,
    moderators: dict[str, float | np.ndarray],
    level: float = 0.95,
    params: pd.Series | np.ndarray | None = None,
) -> pd.DataFrame:
    """Bootstrap bands of the marginal effect from coefficient draws (B x K).

    For every grid point ``m``: ``ME*_b(m) = g(m)'b*_b``; the pointwise percentile band is the
    ``(1-level)/2`` and ``(1+level)/2`` quantiles of ``ME*_b(m)`` (Efron percentile
    interval). If ``params`` (the point estimates, same order as ``names``) is given, a
    uniform sup-t band over the grid is added (Montiel Olea & Plagborg-Møller 2019, J. Appl.
    Econometrics 34(1)): ``ME(m) -+ c * sd*(m)`` with ``c`` the ``level`` quantile of
    ``max_m |ME*_b(m) - ME(m)| / sd*(m)``.

    Returns
    -------
    DataFrame: moderator values, ``estimate`` (from ``params``; else the bootstrap median),
    ``boot_se``, ``ci_low``, ``ci_high`` and, with ``params``, ``uniform_low``,
    ``uniform_high``.
    """
    draws = np.asarray(draws, dtype=np.float64)
    if draws.ndim != 2 or draws.shape[1] != len(names):
        raise ValueError(f"draws must be (B, {len(names)}), got {draws.shape}")
    grad, grid = marginal_effect_gradient(list(names), focal, moderators)
    me_draws = grad @ draws.T  # (n_points, B)
    alpha = 1 - level
    lo, hi = np.quantile(me_draws, [alpha / 2, 1 - alpha / 2], axis=1)
    sd = me_draws.std(axis=1, ddof=1)
    out = pd.DataFrame(grid) if grid else pd.DataFrame(index=range(grad.shape[0]))
    if params is not None:
        est = grad @ np.asarray(params, dtype=np.float64)
        out["estimate"] = est
    else:
        out["estimate"] = np.median(me_draws, axis=1)
    out["boot_se"] = sd
    out["ci_low"] = lo
    out["ci_high"] = hi
    if params is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(me_draws - est[:, None]) / sd[:, None]
        c = float(np.quantile(np.nanmax(z, axis=0), level))
        out["uniform_low"] = est - c * sd
        out["uniform_high"] = est + c * sd
    return out


def studentized_band(
    estimate: np.ndarray, std_error: np.ndarray, t_draws: np.ndarray, level: float = 0.95,
    simultaneous: bool = False,
) -> pd.DataFrame:
    """Symmetric bootstrap-t band: ``estimate -+ q * std_error`` per point.

    ``q`` is the ``level`` quantile of ``|t*_b|`` over the draws of that point, with
    ``t*_b = (theta*_b - theta) / se*_b`` studentised by each draw's own CRV1 standard error
    (Hall 1992, "The Bootstrap and Edgeworth Expansion", sec. 3.5; Cameron, Gelbach & Miller
    2008, REStat 90(3)). ``std_error`` must be the delta-method CRV1 SE with the same
    small-sample factor the draws used, so the band differs from the t(G-1) interval only
    through ``q`` versus the t(G-1) critical value. The symmetric form matches the
    two-sided symmetric bootstrap p-values reported elsewhere.

    ``simultaneous=True`` gives the sup-t band over all points instead: one ``q``, the
    ``level`` quantile of ``max_m |t*_b(m)|`` over the points ``m`` (Montiel Olea &
    Plagborg-Møller 2019, J. Appl. Econometrics 34(1); Freyberger & Rai 2018, Econ. Lett. 162),
    so that the band covers the whole curve with probability ``level``. A moderator value where
    this band excludes zero is significant with the familywise error over the grid controlled,
    which the pointwise band does not do (Esarey & Sumner 2018, Political Analysis 26(3)).

    Returns a DataFrame with ``estimate``, ``std_error``, ``q``, ``ci_low``, ``ci_high``.
    """
    est = np.asarray(estimate, dtype=np.float64).ravel()
    se = np.asarray(std_error, dtype=np.float64).ravel()
    t = np.atleast_2d(np.asarray(t_draws, dtype=np.float64))
    if t.shape[0] != est.shape[0] or se.shape != est.shape:
        raise ValueError(f"shapes differ: estimate {est.shape}, se {se.shape}, draws {t.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if simultaneous:
        q = np.full(est.shape, np.quantile(np.max(np.abs(t), axis=0), level))
    else:
        q = np.quantile(np.abs(t), level, axis=1)
    return pd.DataFrame({"estimate": est, "std_error": se, "q": q,
                         "ci_low": est - q * se, "ci_high": est + q * se})


def johnson_neyman(
    params: pd.Series,
    vcov: pd.DataFrame | np.ndarray,
    focal: str,
    moderator: str,
    df: int | None,
    other_moderators_at: dict[str, float] | None = None,
    level: float = 0.95,
    observed_range: tuple[float, float] | None = None,
    critical_value: float | None = None,
) -> dict[str, object]:
    """Johnson–Neyman interval: moderator values where the effect of ``focal`` is significant.

    With the other moderators fixed, ``ME(z) = a + b z`` and
    ``Var ME(z) = v00 + 2 z v01 + z^2 v11`` (for ``y ~ x + z + x:z``: ``a = b1``, ``b = b3``,
    ``v00 = V11``, ``v01 = V13``, ``v11 = V33``). The effect is significant at ``level`` where
    ``Q(z) = (a + b z)^2 - t^2 Var ME(z) > 0``, ``t`` the ``t(df)`` (normal if None) critical
    value (or ``critical_value`` if given, e.g. the sup-t quantile of a simultaneous bootstrap-t
    band, :func:`studentized_band`, which turns the pointwise region into a simultaneous one);
    the boundaries solve the quadratic

        (b^2 - t^2 v11) z^2 + 2 (a b - t^2 v01) z + (a^2 - t^2 v00) = 0

    (Johnson & Neyman 1936, Stat. Res. Memoirs 1; Bauer & Curran 2005, Multivariate Behav.
    Res. 40(3); Hayes & Matthes 2009). If the leading coefficient ``A = b^2 - t^2 v11`` is
    positive (the interaction itself is significant) the effect is significant *outside* the
    roots, if negative *inside* them; with no real roots it is significant everywhere
    (``A > 0``) or nowhere (``A < 0``). Roots are limits of the *pointwise* test — they do not
    control the familywise error over all ``z`` (Esarey & Sumner 2018).

    Returns
    -------
    dict with ``roots`` (sorted list, 0–2 floats), ``region`` (``"outside"``, ``"inside"``,
    ``"everywhere"``, ``"nowhere"``, ``"above"``, ``"below"``), ``description``,
    ``critical_value``, ``coefficients`` (A, B, C of ``A z^2 + B z + C``), ``slope``,
    ``intercept`` and, if ``observed_range`` is given, ``significant_in_range`` — a list of
    (low, high) sub-intervals of the observed range where the effect is significant.
    """
    names = list(params.index)
    b = params.to_numpy(np.float64)
    V = _vcov_matrix(vcov, names)
    others = dict(other_moderators_at or {})
    if moderator in others:
        raise ValueError("moderator must not also be in other_moderators_at")
    for name in names:
        factors = [f.strip() for f in str(name).split(":")]
        if focal in factors and factors.count(moderator) > 1:
            raise ValueError(f"term {name!r}: effect is not linear in {moderator!r}")
    g0 = marginal_effect_gradient(names, focal, {**others, moderator: 0.0})[0][0]
    g1 = marginal_effect_gradient(names, focal, {**others, moderator: 1.0})[0][0] - g0
    a, s = float(g0 @ b), float(g1 @ b)
    v00, v01, v11 = float(g0 @ V @ g0), float(g0 @ V @ g1), float(g1 @ V @ g1)
    t = _critical_value(level, df) if critical_value is None else float(critical_value)
    A = s**2 - t**2 * v11
    Bq = 2 * (a * s - t**2 * v01)
    C = a**2 - t**2 * v00
    scale = max(abs(A), abs(Bq), abs(C), np.finfo(float).tiny)
    roots: list[float]
    if abs(A) <= 1e-14 * scale:
        # degenerate: Q is (numerically) linear in z
        if Bq == 0:
            roots, region = [], "everywhere" if C > 0 else "nowhere"
        else:
            roots = [float(-C / Bq)]
            region = "above" if Bq > 0 else "below"
    else:
        disc = Bq**2 - 4 * A * C
        if disc <= 0:
            roots, region = [], "everywhere" if A > 0 else "nowhere"
        else:
            # numerically stable roots (Press et al., Numerical Recipes, sec. 5.6)
            q = -0.5 * (Bq + np.copysign(np.sqrt(disc), Bq))
            roots = sorted([float(q / A), float(C / q)])
            region = "outside" if A > 0 else "inside"
    descriptions = {
        "outside": "significant for {m} < {r0:.6g} and for {m} > {r1:.6g}",
        "inside": "significant only for {r0:.6g} < {m} < {r1:.6g}",
        "everywhere": "significant for every value of {m} (no real roots)",
        "nowhere": "significant for no value of {m} (no real roots)",
        "above": "significant for {m} > {r0:.6g}",
        "below": "significant for {m} < {r0:.6g}",
    }
    r0 = roots[0] if roots else np.nan
    r1 = roots[-1] if roots else np.nan
    out: dict[str, object] = {
        "roots": roots,
        "region": region,
        "description": descriptions[region].format(m=moderator, r0=r0, r1=r1),
        "critical_value": t,
        "coefficients": (A, Bq, C),
        "intercept": a,
        "slope": s,
        "level": level,
    }
    if observed_range is not None:
        lo, hi = float(observed_range[0]), float(observed_range[1])
        cuts = [lo, *[r for r in roots if lo < r < hi], hi]
        pieces = []
        for left, right in itertools.pairwise(cuts):
            mid = 0.5 * (left + right)
            if A * mid**2 + Bq * mid + C > 0:
                pieces.append((left, right))
        out["significant_in_range"] = pieces
    return out


def region_support(
    values: np.ndarray, groups: np.ndarray, intervals: Sequence[tuple[float, float]],
    min_share: float = 0.10,
) -> dict[str, object]:
    """How many observations, and of which groups (countries), lie in a region of the
    moderator (a union of closed ``intervals``, e.g. a Johnson–Neyman region within the observed
    range).

    Returns ``n_inside``, ``share`` (of all observations), ``groups`` (``{group: count}``,
    largest first), ``supported`` and ``reason``: a region is *without support* when it holds
    less than ``min_share`` of the observations or only one group, since the effect there is
    then an extrapolation of the linear interaction from the rest of the sample (Hainmueller,
    Mummolo & Xu 2019, Political Analysis 27(2), sec. 3: common support). An empty region
    (nothing significant) has ``supported`` None.
    """
    values = np.asarray(values, dtype=float)
    groups = np.asarray(groups)
    inside = np.zeros(values.shape, dtype=bool)
    for low, high in intervals:
        inside |= (values >= low) & (values <= high)
    n_inside = int(inside.sum())
    counts = pd.Series(groups[inside]).value_counts()
    counts = counts.sort_index().sort_values(ascending=False, kind="stable")
    share = n_inside / len(values) if len(values) else float("nan")
    if not intervals:
        supported, reason = None, "no region"
    elif share < min_share:
        supported, reason = False, f"without support: {share:.0%} of the observations"
    elif len(counts) < 2:
        supported = False
        reason = (f"without support: one country ({counts.index[0]})" if len(counts)
                  else "without support: no observation")
    else:
        supported = True
        reason = f"supported: {share:.0%} of the observations, {len(counts)} countries"
    return {"n_inside": n_inside, "share": share,
            "groups": {str(k): int(v) for k, v in counts.items()},
            "supported": supported, "reason": reason}


def binned_interaction(
    frame: pd.DataFrame,
    y: str,
    focal: str,
    moderator: str,
    controls: Sequence[str],
    fe: Sequence[str],
    n_bins: int = 3,
    cluster: str | None = None,
    level: float = 0.95,
    extra_terms: Sequence[str] = (),
) -> pd.DataFrame:
    """Hainmueller, Mummolo & Xu (2019, Political Analysis 27(2)) binning estimator.

    The moderator ``Z`` is cut into ``n_bins`` quantile bins (terciles by default) with
    medians ``z_j``; with bin dummies ``G_j`` the model

        Y = sum_j [ mu_j + a_j X + e_j (Z - z_j) + c_j X (Z - z_j) ] G_j + controls + FE + u

    is fitted by pyfixest ``feols`` (``mu_1`` absorbed by the FE), so ``a_j`` is the marginal
    effect of ``X`` at ``Z = z_j`` *without* assuming the effect is linear in ``Z``. The
    conventional linear-interaction model ``Y ~ X + Z + X:Z + controls | FE`` is fitted too and
    its marginal effect evaluated at the same ``z_j`` for comparison; if the linear model is
    right, each ``a_j`` should be close to its linear prediction.

    ``extra_terms`` (pyfixest formula terms, e.g. ``"gpr:ti"``) enter *both* models, so the
    check runs inside the full model: in M4, binning RN keeps TI and GPR x TI in both the binned
    and the linear model (the linear model is then M4 itself); other moderators in
    ``controls`` are evaluated at 0 (their centred mean).

    Inference: CRV1 clustered on ``cluster`` (t(G-1)) if given, else HC1.

    Returns
    -------
    DataFrame, one row per bin: ``bin``, ``n_obs``, ``z_low``, ``z_high``, ``z_median``,
    ``estimate``, ``std_error``, ``p_value``, ``ci_low``, ``ci_high``, ``linear_estimate``,
    ``linear_std_error``, ``linear_ci_low``, ``linear_ci_high``.
    """
    import pyfixest as pf

    controls, fe, extra = list(controls), list(fe), list(extra_terms)
    extra_vars = [f for t in extra for f in t.split(":")]
    needed = list(
        dict.fromkeys([y, focal, moderator, *controls, *extra_vars, *fe,
                       *([cluster] if cluster else [])])
    )
    d = frame[needed].dropna().reset_index(drop=True)
    try:
        bins = pd.qcut(d[moderator], n_bins, labels=False)
    except ValueError as err:
        raise ValueError(f"cannot form {n_bins} quantile bins of {moderator!r}: {err}") from err
    bins = bins.to_numpy()
    z = d[moderator].to_numpy(np.float64)
    x = d[focal].to_numpy(np.float64)
    medians = np.array([np.median(z[bins == j]) for j in range(n_bins)])

    rhs_x, rhs_rest = [], []
    for j in range(n_bins):
        gj = (bins == j).astype(np.float64)
        zc = (z - medians[j]) * gj
        d[f"hmx_x_b{j}"] = x * gj
        d[f"hmx_z_b{j}"] = zc
        d[f"hmx_xz_b{j}"] = x * zc
        rhs_x.append(f"hmx_x_b{j}")
        rhs_rest += [f"hmx_z_b{j}", f"hmx_xz_b{j}"]
        if j > 0:
            d[f"hmx_b{j}"] = gj
            rhs_rest.append(f"hmx_b{j}")
    vcov: str | dict[str, str] = {"CRV1": cluster} if cluster else "hetero"
    fe_part = " | " + " + ".join(fe) if fe else ""
    fml_bin = f"{y} ~ " + " + ".join([*rhs_x, *rhs_rest, *controls, *extra]) + fe_part
    fit_bin = pf.feols(fml_bin, data=d, vcov=vcov)
    ci = fit_bin.confint(alpha=1 - level)
    est = fit_bin.coef()[rhs_x].to_numpy()
    se = fit_bin.se()[rhs_x].to_numpy()

    fml_lin = f"{y} ~ " + " + ".join([focal, moderator, f"{focal}:{moderator}", *controls,
                                      *extra])
    fit_lin = pf.feols(fml_lin + fe_part, data=d, vcov=vcov)
    names = list(fit_lin.coef().index)
    V = pd.DataFrame(np.asarray(fit_lin._vcov), index=names, columns=names)
    others = {f: 0.0 for f in extra_vars if f not in (focal, moderator)}
    lin = marginal_effect(
        fit_lin.coef(), V, focal, {moderator: medians, **others}, df=int(fit_lin._df_t),
        level=level,
    )

    return pd.DataFrame(
        {
            "bin": np.arange(1, n_bins + 1),
            "n_obs": np.bincount(bins, minlength=n_bins),
            "z_low": [z[bins == j].min() for j in range(n_bins)],
            "z_high": [z[bins == j].max() for j in range(n_bins)],
            "z_median": medians,
            "estimate": est,
            "std_error": se,
            "p_value": fit_bin.pvalue()[rhs_x].to_numpy(),
            "ci_low": ci.loc[rhs_x].iloc[:, 0].to_numpy(),
            "ci_high": ci.loc[rhs_x].iloc[:, 1].to_numpy(),
            "linear_estimate": lin["estimate"].to_numpy(),
            "linear_std_error": lin["std_error"].to_numpy(),
            "linear_ci_low": lin["ci_low"].to_numpy(),
            "linear_ci_high": lin["ci_high"].to_numpy(),
        }
    )
