"""Tests for analysis.econometrics.marginal with hand-computed literal numbers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.econometrics.marginal import (
    binned_interaction,
    bootstrap_band,
    johnson_neyman,
    marginal_effect,
    marginal_effect_gradient,
    region_support,
    studentized_band,
)

NAMES = ["gpr", "rn", "gpr:rn"]
T10 = 2.228138851986274  # t(10) 0.975 quantile
Z975 = 1.959963984540054  # N(0,1) 0.975 quantile


def _params(b_gpr: float = 0.5, b_rn: float = 0.2, b_int: float = 0.3) -> pd.Series:
    return pd.Series([b_gpr, b_rn, b_int], index=NAMES)


VCOV = pd.DataFrame(
    [[0.04, 0.01, -0.005], [0.01, 0.09, 0.002], [-0.005, 0.002, 0.01]],
    index=NAMES,
    columns=NAMES,
)


def test_marginal_effect_two_way_literal() -> None:
    out = marginal_effect(_params(), VCOV, "gpr", {"rn": np.array([0.0, 2.0, -1.0])}, df=10)
    # rn = 2: 0.5 + 0.3*2 = 1.1; var = 0.04 + 2*2*(-0.005) + 4*0.01 = 0.06
    # rn = -1: 0.5 - 0.3 = 0.2;  var = 0.04 - 2*(-0.005) + 0.01 = 0.06
    np.testing.assert_allclose(out["rn"], [0.0, 2.0, -1.0])
    np.testing.assert_allclose(out["estimate"], [0.5, 1.1, 0.2], atol=1e-15)
    np.testing.assert_allclose(out["std_error"], [0.2, 0.2449489742783178, 0.2449489742783178])
    np.testing.assert_allclose(
        out["ci_low"],
        [0.5 - T10 * 0.2, 1.1 - T10 * 0.2449489742783178, 0.2 - T10 * 0.2449489742783178],
    )
    np.testing.assert_allclose(out["ci_high"][1], 1.1 + T10 * 0.2449489742783178)
    np.testing.assert_allclose(out["t_stat"][0], 2.5)
    # two-sided t(10) p at |t| = 2.5: I_{10/(10+2.5^2)}(5, 1/2)
    np.testing.assert_allclose(out["p_value"][0], 0.03144684423660882, rtol=1e-10)
    # normal critical values when df is None
    z = marginal_effect(_params(), VCOV, "gpr", {"rn": 2.0}, df=None)
    np.testing.assert_allclose(z["ci_high"], 1.1 + Z975 * 0.2449489742783178)
    # effect of the *other* variable: d/d rn = 0.2 + 0.3 gpr
    r = marginal_effect(_params(), VCOV, "rn", {"gpr": 1.0}, df=10)
    # var = 0.09 + 2*0.002 + 0.01 = 0.104
    np.testing.assert_allclose(r["estimate"], 0.5)
    np.testing.assert_allclose(r["std_error"], np.sqrt(0.104))


def test_marginal_effect_three_way_literal() -> None:
    names = ["gpr", "rn", "ti", "gpr:rn", "gpr:ti", "rn:gpr:ti", "ctrl"]
    b = pd.Series([1.0, 9.0, 9.0, 0.5, -0.2, 0.1, 9.0], index=names)
    V = pd.DataFrame(np.diag([0.01, 5, 5, 0.02, 0.03, 0.04, 5]), index=names, columns=names)
    V.loc["gpr", "gpr:rn"] = V.loc["gpr:rn", "gpr"] = 0.005
    out = marginal_effect(b, V, "gpr", {"rn": 2.0, "ti": 3.0}, df=None)
    # gradient (1, 0, 0, 2, 3, 6, 0): ME = 1 + 0.5*2 - 0.2*3 + 0.1*6 = 2.0
    # var = 0.01 + 4*0.02 + 9*0.03 + 36*0.04 + 2*1*2*0.005 = 1.82
    assert out["estimate"].item() == pytest.approx(2.0, abs=1e-14)
    assert out["std_error"].item() == pytest.approx(np.sqrt(1.82), abs=1e-14)
    grad, _ = marginal_effect_gradient(names, "gpr", {"rn": 2.0, "ti": 3.0})
    np.testing.assert_array_equal(grad[0], [1, 0, 0, 2, 3, 6, 0])


def test_marginal_effect_errors() -> None:
    with pytest.raises(KeyError, match="rn"):
        marginal_effect(_params(), VCOV, "gpr", {}, df=10)
    with pytest.raises(KeyError, match="nope"):
        marginal_effect(_params(), VCOV, "nope", {"rn": 1.0}, df=10)


def test_johnson_neyman_outside_roots_literal() -> None:
    jn = johnson_neyman(_params(), VCOV, "gpr", "rn", df=10, observed_range=(-5.0, 5.0))
    # (0.5 + 0.3 z)^2 = t^2 (0.04 - 0.01 z + 0.01 z^2), t = t(10)_.975; roots by hand
    assert jn["roots"] == pytest.approx([-8.514840548577869, -0.14963546785659918], rel=1e-12)
    assert jn["region"] == "outside"
    assert jn["critical_value"] == pytest.approx(T10, rel=1e-14)
    [(low, high)] = jn["significant_in_range"]
    assert (low, high) == pytest.approx((-0.14963546785659918, 5.0))
    # at each root the pointwise t-statistic equals the critical value
    me = marginal_effect(_params(), VCOV, "gpr", {"rn": np.array(jn["roots"])}, df=10)
    np.testing.assert_allclose(np.abs(me["t_stat"]), T10, rtol=1e-10)


def test_johnson_neyman_inside_and_nowhere_literal() -> None:
    inside = johnson_neyman(_params(b_int=0.05), VCOV, "gpr", "rn", df=10)
    assert inside["region"] == "inside"
    assert inside["roots"] == pytest.approx([-0.42893534671069139, 2.5424968248185211], rel=1e-12)
    none = johnson_neyman(_params(b_gpr=0.1, b_int=0.05), VCOV, "gpr", "rn", df=10)
    assert none["region"] == "nowhere" and none["roots"] == []


def test_johnson_neyman_three_way_fixes_other_moderator() -> None:
    names = ["gpr", "gpr:rn", "gpr:ti", "gpr:rn:ti"]
    b = pd.Series([0.5, 0.1, 0.4, 0.05], index=names)
    V = pd.DataFrame(np.diag([0.04, 0.01, 0.02, 0.01]), index=names, columns=names)
    V.loc["gpr", "gpr:rn"] = V.loc["gpr:rn", "gpr"] = -0.005
    jn = johnson_neyman(b, V, "gpr", "rn", df=10, other_moderators_at={"ti": 0.0})
    # at ti = 0: a = 0.5, b = 0.1, v00 = 0.04, v01 = -0.005, v11 = 0.01
    assert jn["intercept"] == 0.5 and jn["slope"] == pytest.approx(0.1)
    A0, B0, C0 = jn["coefficients"]
    assert (A0, B0, C0) == pytest.approx(
        (0.01 - T10**2 * 0.01, 2 * (0.05 + T10**2 * 0.005), 0.25 - T10**2 * 0.04)
    )
    # at ti = 1: a = 0.5 + 0.4 = 0.9, b = 0.1 + 0.05 = 0.15
    jn1 = johnson_neyman(b, V, "gpr", "rn", df=10, other_moderators_at={"ti": 1.0})
    assert jn1["intercept"] == pytest.approx(0.9) and jn1["slope"] == pytest.approx(0.15)
    A, B, C = jn1["coefficients"]
    # v00 = 0.04 + 0.02, v01 = -0.005, v11 = 0.01 + 0.01
    assert A == pytest.approx(0.15**2 - T10**2 * 0.02)
    assert B == pytest.approx(2 * (0.9 * 0.15 - T10**2 * -0.005))
    assert C == pytest.approx(0.9**2 - T10**2 * 0.06)


def test_bootstrap_band_percentiles_literal() -> None:
    # ME*_b = gpr_b + 2 * (gpr:rn)_b; construct draws with ME* = 1, 2, ..., 101
    me = np.arange(1.0, 102.0)
    draws = np.column_stack([me - 2 * 0.5, np.zeros_like(me), np.full_like(me, 0.5)])
    band = bootstrap_band(draws, NAMES, "gpr", {"rn": 2.0}, level=0.90)
    assert band["ci_low"].item() == pytest.approx(6.0)
    assert band["ci_high"].item() == pytest.approx(96.0)
    assert band["estimate"].item() == pytest.approx(51.0)  # median without params


def test_bootstrap_band_uniform_wider_and_close_to_delta_method() -> None:
    rng = np.random.default_rng(0)
    chol = np.linalg.cholesky(VCOV.to_numpy())
    b = _params()
    draws = b.to_numpy() + rng.standard_normal((100_000, 3)) @ chol.T
    grid = np.linspace(-2, 2, 9)
    band = bootstrap_band(draws, NAMES, "gpr", {"rn": grid}, params=b)
    delta = marginal_effect(b, VCOV, "gpr", {"rn": grid}, df=None)
    np.testing.assert_allclose(band["ci_low"], delta["ci_low"], atol=0.01)
    np.testing.assert_allclose(band["boot_se"], delta["std_error"], rtol=0.01)
    assert (band["uniform_low"] < band["ci_low"]).all()
    assert (band["uniform_high"] > band["ci_high"]).all()


def _binned_dgp(seed: int = 5, n_units: int = 40, n_years: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "iso3": np.repeat(np.arange(n_units), n_years),
            "year": np.tile(np.arange(n_years), n_units),
        }
    )
    n = len(frame)
    unit = np.repeat(rng.normal(size=n_units), n_years)
    frame["z"] = rng.normal(size=n) + 0.3 * unit
    frame["x"] = rng.normal(size=n) + 0.5 * unit
    frame["c"] = rng.normal(size=n)
    frame["y"] = (
        (1 + 0.5 * frame["z"]) * frame["x"]  # linear interaction: dY/dx = 1 + 0.5 z
        + 0.3 * frame["z"]
        + 0.2 * frame["c"]
        + unit
        + np.tile(rng.normal(size=n_years), n_units)
        + rng.normal(size=n)
    )
    return frame


def test_binned_interaction_recovers_linear_effect() -> None:
    frame = _binned_dgp()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = binned_interaction(frame, "y", "x", "z", ["c"], ["iso3", "year"], cluster="iso3")
        import pyfixest as pf

        lin = pf.feols("y ~ x + z + x:z + c | iso3 + year", data=frame, vcov={"CRV1": "iso3"})
    assert list(out["bin"]) == [1, 2, 3]
    assert out["n_obs"].sum() == len(frame)
    np.testing.assert_allclose(
        out["z_median"], [frame["z"].quantile(q) for q in (1 / 6, 1 / 2, 5 / 6)], atol=0.05
    )
    truth = 1 + 0.5 * out["z_median"]
    err = (out["estimate"] - truth).abs()
    assert (err < 0.15).all(), err
    assert (err < 4 * out["std_error"]).all()
    # linear-model prediction at the bin medians = b_x + b_xz * z_j (by hand)
    coef = lin.coef()
    np.testing.assert_allclose(
        out["linear_estimate"], coef["x"] + coef["x:z"] * out["z_median"], rtol=1e-12
    )
    assert (out["linear_estimate"] - truth).abs().max() < 0.15


def test_studentized_band_literal() -> None:
    # |t*| for one point: 1..100 -> the 0.9 quantile (linear interpolation) is 90.1
    t = np.arange(1.0, 101.0)[None, :] * np.where(np.arange(100) % 2, 1, -1)[None, :]
    band = studentized_band(np.array([2.0]), np.array([0.5]), t, level=0.9)
    assert band["q"].item() == pytest.approx(90.1)
    assert band["ci_low"].item() == pytest.approx(2.0 - 90.1 * 0.5)
    assert band["ci_high"].item() == pytest.approx(2.0 + 90.1 * 0.5)


def test_wild_bootstrap_t_of_marginal_effects_equals_brute_force_refit() -> None:
    """Rademacher enumeration on a small FE panel (G = 6): every draw refitted with explicit
    dummies, its CRV1 SE of the marginal effect computed by hand; and the sample SE equals the
    delta-method CRV1 SE of pyfixest."""
    import itertools

    import pyfixest as pf

    from analysis.econometrics.inference import cluster_design, wild_bootstrap_t_linear

    frame = _binned_dgp(seed=2, n_units=6, n_years=7)
    frame["x:z"] = frame["x"] * frame["z"]
    names = ["x", "z", "x:z", "c"]
    design = cluster_design(frame, "y", names, ["iso3", "year"], "iso3")
    grid = np.array([-1.0, 0.0, 0.7])
    grad, _ = marginal_effect_gradient(names, "x", {"z": grid})
    R = np.zeros((3, design.X.shape[1]))
    R[:, :4] = grad
    theta, se, t_draws = wild_bootstrap_t_linear(design.y, design.X, design.clusters, R,
                                                 B=64, weights="rademacher",
                                                 n_absorbed=design.n_absorbed)
    fit = pf.feols("y ~ x + z + x:z + c | iso3 + year", data=frame, vcov={"CRV1": "iso3"})
    V = pd.DataFrame(np.asarray(fit._vcov), index=fit.coef().index, columns=fit.coef().index)
    delta = marginal_effect(fit.coef(), V, "x", {"z": grid}, df=5)
    np.testing.assert_allclose(theta, delta["estimate"], rtol=1e-8)
    np.testing.assert_allclose(se, delta["std_error"], rtol=1e-6)
    # brute force: y* = X b + v u, refit with country and year dummies, CRV1 of g'b*
    dummies = pd.get_dummies(frame[["iso3", "year"]].astype(str), drop_first=True)
    X = np.column_stack([frame[names].to_numpy(), np.ones(len(frame)), dummies.to_numpy(float)])
    y = frame["y"].to_numpy()
    codes = frame["iso3"].to_numpy()
    b = np.linalg.lstsq(X, y, rcond=None)[0]
    u = y - X @ b
    n, k = X.shape
    # pyfixest's K: country dummies nested in the clusters count as one parameter
    c = 6 / 5 * (n - 1) / (n - (k - 5))
    gfull = np.zeros((3, k))
    gfull[:, :4] = grad
    bread = np.linalg.inv(X.T @ X)
    expected = []
    for signs in itertools.product([-1.0, 1.0], repeat=6):
        v = np.asarray(signs)[codes]
        bs = np.linalg.lstsq(X, X @ b + v * u, rcond=None)[0]
        us = X @ b + v * u - X @ bs
        scores = np.array([X[codes == g].T @ us[codes == g] for g in range(6)])
        Vs = c * bread @ scores.T @ scores @ bread
        expected.append((gfull @ bs - gfull @ b) / np.sqrt(np.einsum("pi,ij,pj->p", gfull, Vs,
                                                                      gfull)))
    np.testing.assert_allclose(t_draws, np.array(expected).T, rtol=0, atol=1e-9)


def test_binned_inside_the_full_model_includes_the_other_interaction() -> None:
    """With extra_terms the linear model is the full model (here y ~ x*z + x:w + w), so its
    marginal effect at the bin medians equals that model's b_x + b_xz z_j (w at 0)."""
    import pyfixest as pf

    frame = _binned_dgp(seed=9)
    rng = np.random.default_rng(1)
    frame["w"] = rng.normal(size=len(frame))
    frame["y"] = frame["y"] + 0.8 * frame["x"] * frame["w"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = binned_interaction(frame, "y", "x", "z", ["w", "c"], ["iso3", "year"],
                                 cluster="iso3", extra_terms=["x:w"])
        full = pf.feols("y ~ x + z + x:z + w + c + x:w | iso3 + year", data=frame,
                        vcov={"CRV1": "iso3"})
    coef = full.coef()
    np.testing.assert_allclose(out["linear_estimate"],
                               coef["x"] + coef["x:z"] * out["z_median"], rtol=1e-10)
    truth = 1 + 0.5 * out["z_median"]
    assert ((out["estimate"] - truth).abs() < 4 * out["std_error"]).all()


def test_simultaneous_band_takes_the_quantile_of_the_maximum() -> None:
    """Two points, four draws: max |t*| over the points per draw = 3, 5, 2, 4; its 0.5
    quantile (linear interpolation) is 3.5, for both points, against 1.5 and 3.5 pointwise."""
    t = np.array([[1.0, -5.0, 2.0, -1.0], [3.0, 0.5, -1.0, 4.0]])
    est, se = np.array([1.0, 2.0]), np.array([0.1, 0.2])
    sim = studentized_band(est, se, t, level=0.5, simultaneous=True)
    np.testing.assert_allclose(sim["q"], [3.5, 3.5])
    np.testing.assert_allclose(sim["ci_low"], est - 3.5 * se)
    point = studentized_band(est, se, t, level=0.5)
    np.testing.assert_allclose(point["q"], [1.5, 2.0])
    assert (sim["q"] >= point["q"]).all()  # a simultaneous band is never narrower


def test_johnson_neyman_with_a_simultaneous_critical_value() -> None:
    """With critical_value = q the region is where |ME| > q SE: where the band excludes 0."""
    q = 3.1
    jn = johnson_neyman(_params(), VCOV, "gpr", "rn", df=10, observed_range=(-5.0, 5.0),
                        critical_value=q)
    assert jn["critical_value"] == q
    me = marginal_effect(_params(), VCOV, "gpr", {"rn": np.array(jn["roots"])}, df=10)
    np.testing.assert_allclose(np.abs(me["t_stat"]), q, rtol=1e-10)
    pointwise = johnson_neyman(_params(), VCOV, "gpr", "rn", df=10, observed_range=(-5.0, 5.0))
    # a larger critical value shrinks the significant region
    assert jn["significant_in_range"][0][0] > pointwise["significant_in_range"][0][0]


def test_region_support_by_hand() -> None:
    values = np.array([0.1, 0.2, 0.5, 0.6, 0.9, 1.0, 1.5, 2.0, 2.5, 3.0])
    groups = np.array(["A", "A", "B", "B", "C", "C", "C", "D", "D", "D"])
    both = region_support(values, groups, [(0.5, 1.0), (2.9, 4.0)])
    assert both["n_inside"] == 5 and both["share"] == 0.5
    assert both["groups"] == {"B": 2, "C": 2, "D": 1}
    assert both["supported"] and both["reason"].startswith("supported: 50%")
    one = region_support(values, groups, [(2.0, 3.0)])  # 30% of N, but only D
    assert one["supported"] is False and "one country (D)" in one["reason"]
    few = region_support(values, groups, [(0.0, 0.05)])  # nothing inside
    assert few["supported"] is False and few["n_inside"] == 0
    thin = region_support(np.arange(40.0), np.repeat(["A", "B"], 20), [(18.5, 21.0)])
    assert thin["n_inside"] == 3 and thin["supported"] is False  # 7.5% < 10%, two countries
    assert region_support(values, groups, [])["supported"] is None
