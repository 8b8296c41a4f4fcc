"""Tests for analysis.econometrics.inference against pyfixest and wildboottest on a simulated FE panel."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.econometrics.inference import (
    WEBB_POINTS,
    coefficient_table,
    count_absorbed_parameters,
    crv1_vcov,
    crv3_vcov,
    draw_wild_weights,
    partial_out_fixed_effects,
    wild_bootstrap_coefficient_draws,
    wild_cluster_restricted_bootstrap,
)

pf = pytest.importorskip("pyfixest")
sm = pytest.importorskip("statsmodels.api")
wbt = pytest.importorskip("wildboottest.wildboottest")

G, T = 11, 25
FE = ["iso3", "year"]
XCOLS = ["gpr", "rn", "gpr:rn", "ctrl"]
FML = "syn ~ gpr + rn + gpr:rn + ctrl | iso3 + year"


def simulate_panel(seed: int = 3, n_clusters: int = G, n_years: int = T) -> pd.DataFrame:
    """Unbalanced country-year panel (~10% of cells dropped) with two-way FE.

    True model: syn = 0.8 gpr + 0 rn + 0.3 gpr*rn + 0.2 ctrl + a_i + d_t + u, u with a
    country-specific heteroskedastic component (so clustering matters).
    """
    rng = np.random.default_rng(seed)
    names = [f"C{g:02d}" for g in range(n_clusters)]
    frame = pd.DataFrame(
        {
            "iso3": np.repeat(names, n_years),
            "year": np.tile(np.arange(2000, 2000 + n_years), n_clusters),
        }
    )
    frame = frame[rng.random(len(frame)) > 0.1].reset_index(drop=True)
    n = len(frame)
    a = pd.Series(rng.normal(size=n_clusters), index=names)
    d = pd.Series(rng.normal(size=n_years), index=np.arange(2000, 2000 + n_years))
    sig = pd.Series(rng.normal(size=n_clusters), index=names)
    a_i = frame["iso3"].map(a).to_numpy()
    d_t = frame["year"].map(d).to_numpy()
    frame["gpr"] = rng.normal(size=n) + 0.5 * a_i
    frame["rn"] = rng.normal(size=n) + 0.3 * d_t
    frame["ctrl"] = rng.normal(size=n)
    frame["gpr:rn"] = frame["gpr"] * frame["rn"]
    u = rng.normal(size=n) + 0.7 * frame["iso3"].map(sig).to_numpy() * rng.normal(size=n)
    frame["syn"] = 0.8 * frame["gpr"] + 0.3 * frame["gpr:rn"] + 0.2 * frame["ctrl"] + a_i + d_t + u
    return frame


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return simulate_panel()


@pytest.fixture(scope="module")
def partialled(panel: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    wide = partial_out_fixed_effects(panel, ["syn", *XCOLS], FE)
    y = wide["syn"].to_numpy()
    X = wide[XCOLS].to_numpy()
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    codes = np.unique(panel["iso3"], return_inverse=True)[1]
    return y, X, beta, codes


def _fit(panel: pd.DataFrame, vcov: dict[str, str]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pf.feols(FML, data=panel, vcov=vcov)


def _order(fit) -> list[int]:
    return [XCOLS.index(c) for c in fit.coef().index]


# ------------------------------------------------------------------------------------------
# fixed effects
# ------------------------------------------------------------------------------------------
def test_partial_out_equals_dummy_regression_unbalanced(panel: pd.DataFrame) -> None:
    cols = ["syn", *XCOLS]
    assert panel.groupby("iso3").size().nunique() > 1  # really unbalanced
    dummies = pd.get_dummies(panel[FE].astype(str)).to_numpy(float)
    x = panel[cols].to_numpy()
    exact = x - dummies @ np.linalg.lstsq(dummies, x, rcond=None)[0]
    for engine in ("pyfixest", "numpy"):
        got = partial_out_fixed_effects(panel, cols, FE, engine=engine)
        assert list(got.columns) == cols
        assert got.index.equals(panel.index)
        np.testing.assert_allclose(got.to_numpy(), exact, rtol=0, atol=1e-12)


def test_partial_out_is_scale_invariant(panel: pd.DataFrame) -> None:
    base = partial_out_fixed_effects(panel, ["syn"], FE)["syn"].to_numpy()
    big = panel.assign(syn=panel["syn"] * 1e9)
    scaled = partial_out_fixed_effects(big, ["syn"], FE)["syn"].to_numpy() / 1e9
    np.testing.assert_allclose(scaled, base, rtol=0, atol=1e-12)


def test_partial_out_rejects_missing(panel: pd.DataFrame) -> None:
    bad = panel.copy()
    bad.loc[0, "gpr"] = np.nan
    with pytest.raises(ValueError, match="missing"):
        partial_out_fixed_effects(bad, ["gpr"], FE)


def test_count_absorbed_parameters_matches_pyfixest(panel: pd.DataFrame) -> None:
    fit = _fit(panel, {"CRV1": "iso3"})
    # country FE nested in the country clusters: only the T year levels count
    assert count_absorbed_parameters(panel, FE, "iso3") == T
    assert fit._df_k == len(XCOLS) + T
    # no clustering: G + T - 1; clustered by year: year FE nested, so (G + T - 1) - T + 1
    assert count_absorbed_parameters(panel, FE) == G + T - 1
    assert count_absorbed_parameters(panel, FE, "year") == G


# ------------------------------------------------------------------------------------------
# CRV1 / CRV3 against pyfixest
# ------------------------------------------------------------------------------------------
def test_crv1_equals_pyfixest(panel: pd.DataFrame, partialled) -> None:
    y, X, beta, _ = partialled
    fit = _fit(panel, {"CRV1": "iso3"})
    order = _order(fit)
    np.testing.assert_allclose(beta[order], fit.coef().to_numpy(), rtol=0, atol=1e-10)
    V = crv1_vcov(
        X, y - X @ beta, panel["iso3"], n_absorbed=count_absorbed_parameters(panel, FE, "iso3")
    )
    np.testing.assert_allclose(np.sqrt(np.diag(V))[order], fit.se().to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(V[np.ix_(order, order)], fit._vcov, rtol=0, atol=1e-8)
    # t(G-1) p-values and CIs
    table = coefficient_table(beta, V, df=G - 1, names=XCOLS).loc[fit.coef().index]
    np.testing.assert_allclose(table["p_value"], fit.pvalue().to_numpy(), rtol=0, atol=1e-8)
    ci = fit.confint()
    np.testing.assert_allclose(table["ci_low"], ci.iloc[:, 0].to_numpy(), rtol=0, atol=1e-8)
    # the wrong K (FE not counted) is measurably different: ratio (N-k-T)/(N-k)
    V0 = crv1_vcov(X, y - X @ beta, panel["iso3"], n_absorbed=0)
    n, k = X.shape
    np.testing.assert_allclose(V0 / V, (n - k - T) / (n - k), rtol=1e-12)
    assert abs(np.sqrt(V0[0, 0]) - fit.se()["gpr"]) > 1e-3


def test_linearmodels_panelols_conventions(panel: pd.DataFrame, partialled) -> None:
    """Document how PanelOLS two-way clustered SEs relate to crv1_vcov (linearmodels 7.1)."""
    lm = pytest.importorskip("linearmodels.panel")
    y, X, beta, codes = partialled
    n, k = X.shape
    indexed = panel.set_index(["iso3", "year"])
    model = lm.PanelOLS(indexed["syn"], indexed[XCOLS], entity_effects=True, time_effects=True)
    k_all = count_absorbed_parameters(panel, FE)  # G + T - 1, every absorbed effect
    V = crv1_vcov(X, y - X @ beta, codes, n_absorbed=k_all)
    debiased = model.fit(cov_type="clustered", cluster_entity=True, group_debias=True)
    np.testing.assert_allclose(debiased.std_errors.to_numpy(), np.sqrt(np.diag(V)), rtol=1e-9)
    default = model.fit(cov_type="clustered", cluster_entity=True)
    raw = V / (G / (G - 1) * (n - 1) / (n - k - k_all))
    np.testing.assert_allclose(
        default.std_errors.to_numpy() ** 2, np.diag(raw) * n / (n - k - k_all), rtol=1e-9
    )
    assert default.df_resid == n - k - k_all  # its p-values use t(N - K), not t(G - 1)


def test_crv3_equals_pyfixest(panel: pd.DataFrame) -> None:
    fit = _fit(panel, {"CRV3": "iso3"})
    order = _order(fit)
    na = count_absorbed_parameters(panel, FE, "iso3")
    V3 = crv3_vcov(panel[XCOLS], panel["syn"], panel["iso3"], fe=panel[FE], n_absorbed=na)
    np.testing.assert_allclose(np.sqrt(np.diag(V3))[order], fit.se().to_numpy(), rtol=0, atol=1e-8)
    np.testing.assert_allclose(V3[np.ix_(order, order)], fit._vcov, rtol=0, atol=1e-8)
    # MNW (2023) scaling (G-1)/G instead of pyfixest's CRV1 factor
    n, k = len(panel), len(XCOLS)
    V3m = crv3_vcov(panel[XCOLS], panel["syn"], panel["iso3"], fe=panel[FE], scale="mnw")
    factor = (G / (G - 1)) ** 2 * (n - 1) / (n - k - na)
    np.testing.assert_allclose(V3 / V3m, factor, rtol=1e-12)


def test_crv3_without_fe_equals_pyfixest_fast_path(panel: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = pf.feols("syn ~ gpr + rn + gpr:rn + ctrl", data=panel, vcov={"CRV3": "iso3"})
    X = np.column_stack([np.ones(len(panel)), panel[XCOLS].to_numpy()])
    V3 = crv3_vcov(X, panel["syn"], panel["iso3"])
    names = ["Intercept", *XCOLS]
    order = [names.index(c) for c in fit.coef().index]
    np.testing.assert_allclose(np.sqrt(np.diag(V3))[order], fit.se().to_numpy(), rtol=0, atol=1e-8)


# ------------------------------------------------------------------------------------------
# wild cluster restricted bootstrap against wildboottest
# ------------------------------------------------------------------------------------------
def _wildboottest_class(X, y, codes, j: int, B: int, seed: int, weights: str):
    R = np.zeros(X.shape[1])
    R[j] = 1.0
    wb = wbt.WildboottestCL(X=X, Y=y, cluster=codes, R=R, B=B, seed=seed)
    wb.get_scores(bootstrap_type="11", impose_null=True)
    wb.get_weights(weights_type=weights)
    wb.get_numer()
    wb.get_denom()
    wb.get_tboot()
    wb.get_vcov()
    wb.get_tstat()
    wb.get_pvalue(pval_type="two-tailed")
    return wb


def _wildboottest_public(X, y, codes, j: int, B: int, seed: int, weights: str) -> pd.Series:
    names = ["gpr", "rn", "gpr_x_rn", "ctrl"]
    model = sm.OLS(y, pd.DataFrame(X, columns=names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = wbt.wildboottest(
            model,
            B=B,
            cluster=codes,
            param=names[j],
            weights_type=weights,
            impose_null=True,
            bootstrap_type="11",
            seed=seed,
            show=False,
        )
    return res.iloc[0]


@pytest.mark.parametrize("j", [0, 1, 2])  # gpr, rn, gpr:rn
def test_wcr_rademacher_enumeration_equals_wildboottest(partialled, j: int) -> None:
    y, X, _, codes = partialled
    ours = wild_cluster_restricted_bootstrap(
        y, X, codes, j, B=9_999, weights="rademacher", seed=11, return_draws=True
    )
    assert ours.enumerated and ours.n_draws == 2**11 == 2048
    public = _wildboottest_public(X, y, codes, j, B=9_999, seed=11, weights="rademacher")
    wb = _wildboottest_class(X, y, codes, j, B=9_999, seed=11, weights="rademacher")
    assert wb.B == 2048 and wb.pvalue == pytest.approx(public["p-value"], abs=1e-15)
    # same t statistic (n_absorbed=0 is wildboottest's (N-1)/(N-k) convention)
    assert ours.t_stat == pytest.approx(float(np.ravel(public["statistic"])[0]), abs=1e-10)
    # identical bootstrap distribution, draw by draw (same enumeration order)
    np.testing.assert_allclose(ours.t_boot, wb.t_boot, rtol=0, atol=1e-10)
    # p-value: mean(|t*| > |t|). The only exact ties are the draws v = +-1 (they reproduce
    # the sample, t* = +-t); ours decides them exactly (not counted), wildboottest by
    # floating-point noise. Account for wildboottest's decision on those two draws:
    constant = np.ptp(wb.v, axis=0) == 0
    assert constant.sum() == 2
    noise_counted = int(np.sum(np.abs(wb.t_boot[constant]) > np.abs(wb.t_stat)))
    assert noise_counted in (0, 2)
    assert ours.p_value + noise_counted / 2048 == pytest.approx(public["p-value"], abs=1e-10)
    # and on the 2046 other draws the exceedance counts agree exactly
    ours_other = np.sum(np.abs(ours.t_boot[~constant]) > abs(ours.t_stat))
    wb_other = np.sum(np.abs(wb.t_boot[~constant]) > np.abs(wb.t_stat))
    assert ours_other == wb_other
    # ties="include" is larger by exactly the two identity draws
    incl = wild_cluster_restricted_bootstrap(
        y, X, codes, j, B=9_999, weights="rademacher", ties="include"
    )
    assert incl.p_value == pytest.approx(ours.p_value + 2 / 2048, abs=1e-12)


def test_wcr_webb_equals_wildboottest_same_draws(partialled) -> None:
    y, X, _, codes = partialled
    ours = wild_cluster_restricted_bootstrap(y, X, codes, 1, B=9_999, weights="webb", seed=5)
    public = _wildboottest_public(X, y, codes, 1, B=9_999, seed=5, weights="webb")
    assert not ours.enumerated and ours.n_draws == 9_999
    assert ours.p_value == pytest.approx(public["p-value"], abs=1e-10)


def test_wcr_webb_within_monte_carlo_error_of_wildboottest(partialled) -> None:
    y, X, _, codes = partialled
    B = 99_999
    for j in (1, 3):  # rn (p ~ 0.086), ctrl (p ~ 0.17)
        ours = wild_cluster_restricted_bootstrap(y, X, codes, j, B=B, weights="webb", seed=1)
        theirs = _wildboottest_public(X, y, codes, j, B=B, seed=2, weights="webb")["p-value"]
        p = 0.5 * (ours.p_value + theirs)
        mc_sd = np.sqrt(2 * p * (1 - p) / B)  # sd of a difference of two independent runs
        assert abs(ours.p_value - theirs) < 4 * mc_sd
        assert 0.01 < ours.p_value < 0.5


def test_wcr_power_and_null(partialled) -> None:
    y, X, _, codes = partialled
    res = wild_cluster_restricted_bootstrap(y, X, codes, [0, 1], B=9_999, weights="webb", seed=3)
    assert set(res) == {0, 1}
    assert res[0].p_value < 0.01  # gpr: true effect 0.8 (t ~ 19)
    assert res[1].p_value > 0.05  # rn: true effect 0 (p ~ 0.086 with this seed)
    # a list call equals the single calls (same weight matrix)
    single = wild_cluster_restricted_bootstrap(y, X, codes, 1, B=9_999, weights="webb", seed=3)
    assert single.p_value == res[1].p_value and single.t_stat == res[1].t_stat


def test_wcr_t_stat_matches_pyfixest_crv1_with_fe_count(panel: pd.DataFrame, partialled) -> None:
    y, X, _, codes = partialled
    fit = _fit(panel, {"CRV1": "iso3"})
    res = wild_cluster_restricted_bootstrap(
        y, X, codes, 2, B=99, weights="webb", seed=0, n_absorbed=T
    )
    assert res.t_stat == pytest.approx(fit.tstat()["gpr:rn"], abs=1e-8)


def test_enumeration_rules() -> None:
    v, enum = draw_wild_weights(11, 2048, "rademacher")
    assert enum and v.shape == (11, 2048)
    assert len({tuple(c) for c in v.T}) == 2048  # all distinct sign vectors
    _, enum = draw_wild_weights(11, 2047, "rademacher", seed=0)
    assert not enum
    v, enum = draw_wild_weights(11, 99_999, "webb", seed=0)
    assert not enum and set(np.unique(v)) <= set(WEBB_POINTS)
    with pytest.raises(ValueError):
        draw_wild_weights(11, 99_999, "webb", full_enumeration=True)


def test_unrestricted_draws_moments_under_enumeration(partialled) -> None:
    y, X, beta, codes = partialled
    draws = wild_bootstrap_coefficient_draws(y, X, codes, B=4096, weights="rademacher")
    assert draws.shape == (2048, X.shape[1])
    # enumeration: sum_b v_b = 0 and (1/2^G) sum_b v_b v_b' = I exactly, hence the draws
    # average to b and their covariance is the unscaled CRV1 sandwich
    np.testing.assert_allclose(draws.mean(axis=0), beta, rtol=0, atol=1e-12)
    n, k = X.shape
    c = G / (G - 1) * (n - 1) / (n - k)
    sandwich = crv1_vcov(X, y - X @ beta, codes) / c
    np.testing.assert_allclose(np.cov(draws.T, ddof=0), sandwich, rtol=1e-9, atol=1e-14)


# ------------------------------------------------------------------------------------------
# wild-bootstrap weight distributions: values and moments
# ------------------------------------------------------------------------------------------
def test_webb_points_values_and_exact_moments() -> None:
    """Webb (2023): +-sqrt(1/2), +-1, +-sqrt(3/2), each 1/6; E v = 0, E v^2 = 1, E v^4 = 7/6.

    The six values are written out (sqrt(1/2) = 0.7071067811865476, sqrt(3/2) =
    1.224744871391589), in wildboottest's order. Exact moments over the six equally likely
    points: E v^2 = 2 (1/2 + 1 + 3/2) / 6 = 1, E v^4 = 2 (1/4 + 1 + 9/4) / 6 = 7/6.
    """
    expected = [-1.224744871391589, -1.0, -0.7071067811865476,
                0.7071067811865476, 1.0, 1.224744871391589]
    np.testing.assert_allclose(WEBB_POINTS, expected, rtol=1e-15, atol=0)
    assert WEBB_POINTS.mean() == pytest.approx(0.0, abs=1e-15)
    assert np.mean(WEBB_POINTS**2) == pytest.approx(1.0, rel=1e-14)
    assert np.mean(WEBB_POINTS**3) == pytest.approx(0.0, abs=1e-15)
    assert np.mean(WEBB_POINTS**4) == pytest.approx(7 / 6, rel=1e-14)


@pytest.mark.parametrize(("weights", "fourth"), [("webb", 7 / 6), ("rademacher", 1.0)])
def test_drawn_wild_weights_have_the_right_moments(weights: str, fourth: float) -> None:
    """A large random draw (11 x 100,000, no enumeration) matches E v = 0, E v^2 = 1, E v^4 within Monte Carlo error.

    Standard errors of the sample means (n = 1.1e6 draws): Var v = 1; Var v^2 = E v^4 - 1
    (1/6 for Webb); Var v^4 = E v^8 - (E v^4)^2 with E v^8 = 2 (1/16 + 1 + 81/16) / 6 = 49/24
    for Webb. Tolerance 5 standard errors. Each Webb point has frequency 1/6 (sd 3.6e-4).
    """
    v, enumerated = draw_wild_weights(11, 100_000, weights, seed=20240601, full_enumeration=False)
    assert not enumerated and v.shape == (11, 100_000)
    n = v.size
    var_v2 = fourth - 1.0
    var_v4 = (49 / 24 - (7 / 6) ** 2) if weights == "webb" else 0.0
    assert abs(v.mean()) < 5 * np.sqrt(1.0 / n)
    assert abs(np.mean(v**2) - 1.0) < 5 * np.sqrt(var_v2 / n) + 1e-12
    assert abs(np.mean(v**4) - fourth) < 5 * np.sqrt(var_v4 / n) + 1e-12
    if weights == "webb":
        values, counts = np.unique(v, return_counts=True)
        np.testing.assert_array_equal(values, WEBB_POINTS)
        np.testing.assert_allclose(counts / n, 1 / 6, atol=5 * np.sqrt((1 / 6) * (5 / 6) / n))


def test_driscoll_kraay_on_arrays_equals_linearmodels():
    """inference.driscoll_kraay_vcov (the bench's DK) against linearmodels' PanelOLS kernel
    covariance with entity and time effects, on an unbalanced panel, bandwidths 1-3."""
    from linearmodels.panel import PanelOLS

    from analysis.econometrics import inference

    rng = np.random.default_rng(4)
    rows = [(g, t) for g in range(6) for t in range(rng.integers(0, 3), 15)]
    frame = pd.DataFrame(rows, columns=["unit", "year"])
    frame["x1"], frame["x2"] = rng.normal(size=len(frame)), rng.normal(size=len(frame))
    frame["y"] = 0.5 * frame["x1"] + rng.normal(size=len(frame)) + 0.1 * frame["year"]
    data = frame.set_index(["unit", "year"])
    wide = inference.partial_out_fixed_effects(frame, ["y", "x1", "x2"], ["unit", "year"])
    X, y = wide[["x1", "x2"]].to_numpy(), wide["y"].to_numpy()
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    for bandwidth in (1, 2, 3):
        fit = PanelOLS(data["y"], data[["x1", "x2"]], entity_effects=True,
                       time_effects=True).fit(cov_type="kernel", kernel="bartlett",
                                              bandwidth=bandwidth)
        V = inference.driscoll_kraay_vcov(X, y - X @ b, frame["year"], bandwidth,
                                          6 + frame["year"].nunique() - 1)
        np.testing.assert_allclose(np.sqrt(np.diag(V)), fit.std_errors.to_numpy(), rtol=1e-9)
