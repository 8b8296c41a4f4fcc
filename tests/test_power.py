"""Power, MDE and equivalence (analysis/econometrics/power.py): hand computations, the simulation engine
against the one-outcome inference functions, and a known DGP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.econometrics import inference, power
from analysis.econometrics.estimation import estimate
from tests.test_models import COUNTRIES, simulated_panel


def test_analytic_mde_by_hand():
    # (t_0.975,6 + t_0.80,6) SE = (2.4469119 + 0.9057033) x 0.1
    assert float(power.analytic_mde(0.1, 6)) == pytest.approx(0.3352615, abs=1e-7)
    # G = 10: multiplier 3.1455610; arrays keep their shape
    np.testing.assert_allclose(power.analytic_mde(np.array([1.0, 2.0]), 9),
                               [3.1455610, 6.2911220], atol=1e-7)
    # the normal limit: 1.959964 + 0.841621
    assert float(power.analytic_mde(1.0, 10**7)) == pytest.approx(2.801585, abs=1e-5)
    with pytest.raises(ValueError):
        power.analytic_mde(1.0, 6, power=1.2)


def test_tost_by_hand():
    # b = 0.05, se = 0.1, margin 0.2, t(6): P(t >= 2.5) = 0.0232641, P(t <= -1.5) = 0.0921404
    out = power.tost(0.05, 0.1, 0.2, 6)
    assert out["p_lower"] == pytest.approx(0.0232641, abs=1e-7)
    assert out["p_upper"] == pytest.approx(0.0921404, abs=1e-7)
    assert out["p"] == out["p_upper"]
    # TOST at 5% <=> the 90% interval inside (-margin, margin)
    for b in (0.0, 0.03, 0.05, 0.1):
        half = stats.t(6).ppf(0.95) * 0.1
        assert (power.tost(b, 0.1, 0.2, 6)["p"] < 0.05) == (abs(b) + half < 0.2)


def test_equivalence_verdicts():
    assert power.equivalence_verdict(0.01, 0.40) == "effect detected"
    assert power.equivalence_verdict(0.60, 0.01) == "no effect as large as the SESOI"
    assert power.equivalence_verdict(0.01, 0.01) == "detected, smaller than the SESOI"
    assert power.equivalence_verdict(0.30, 0.30) == "cannot tell"
    assert power.equivalence_verdict(np.nan, 0.3) == "not computed"
    # the conservative CRV3 pair agrees: a firm verdict; it disagrees: the verdict says so
    assert power.equivalence_verdict(0.60, 0.01, 0.05, 0.70, 0.04) == \
        "no effect as large as the SESOI"
    assert power.equivalence_verdict(0.60, 0.044, 0.05, 0.70, 0.097) == \
        "no effect as large as the SESOI by WCR only (CRV3: cannot tell)"
    assert power.equivalence_verdict(0.004, 0.85, 0.05, 0.14, 0.76) == \
        "effect detected by WCR only (CRV3: cannot tell)"
    assert power.equivalence_verdict(0.30, 0.30, 0.05, np.nan, 0.2) == "cannot tell"


def test_within_sd_by_hand():
    # A: 1, 2, 6; B: 3, 3, 3 -> two-way demeaned -1, -0.5, 1.5, 1, 0.5, -1.5: SS 7, df 5
    fe = pd.DataFrame({"iso3": ["A"] * 3 + ["B"] * 3, "year": [1, 2, 3] * 2})
    assert power.within_sd(np.array([1, 2, 6, 3, 3, 3.0]), fe) == pytest.approx(
        np.sqrt(7 / 5), rel=1e-10)
    assert float(power.sd_units(0.5, 2.0, 4.0)) == 0.25


def test_estimate_ar1_with_nickell_correction_by_hand():
    path = 0.2 ** np.arange(6)  # u_t = 0.2 u_t-1 exactly: rho_raw = 0.2
    unit = np.repeat(["A", "B"], 6)
    period = np.tile(np.arange(2000, 2006), 2)
    out = power.estimate_ar1(np.r_[path, -path], unit, period)
    assert out["rho_raw"] == pytest.approx(0.2)
    # T = 6: rho_raw = rho - (1 + rho)/5  ->  rho = (0.2 + 0.2)/(1 - 0.2) = 0.5
    assert out["rho"] == pytest.approx(0.5)
    assert out["pairs"] == 10
    # a gap breaks the pair: drop 2003 of A; only consecutive years count
    keep = ~((unit == "A") & (period == 2003))
    gapped = power.estimate_ar1(np.r_[path, -path][keep], unit[keep], period[keep])
    assert gapped["pairs"] == 8


def test_ar1_errors_have_the_stated_autocorrelation_and_scale():
    rng = np.random.default_rng(3)
    unit = np.repeat(["A", "B"], [30, 12])
    period = np.r_[np.arange(1990, 2020), np.arange(2000, 2012)]
    u = power.ar1_errors(rng, unit, period, 0.6, 4000, scale=np.array([1.0, 3.0]))
    assert u.shape == (42, 4000)
    assert np.std(u[:30]) == pytest.approx(1.0, rel=0.03)
    assert np.std(u[30:]) == pytest.approx(3.0, rel=0.03)
    lag = np.mean(u[1:30] * u[:29]) / np.mean(u[:29] ** 2)
    assert lag == pytest.approx(0.6, abs=0.02)
    lag2 = np.mean(u[2:30] * u[:28]) / np.mean(u[:28] ** 2)
    assert lag2 == pytest.approx(0.36, abs=0.02)


def test_mde_from_power_curve_by_hand():
    deltas = np.array([0.0, 1.0, 2.0, 3.0])
    assert power.mde_from_power_curve(deltas, np.array([0.05, 0.5, 0.9, 1.0])) == \
        pytest.approx(1.75)
    assert power.mde_from_power_curve(deltas, np.array([0.05, 0.2, 0.4, 0.6])) == np.inf


@pytest.fixture(scope="module")
def design():
    """A 7-country unbalanced panel, M4's regressors, the pipeline's estimate()."""
    panel = simulated_panel(n_years=15, seed=9, countries=COUNTRIES[:7])
    panel = panel[~((panel["iso3"] == "IDN") & (panel["year"] < 2006))].reset_index(drop=True)
    panel["gpr:rn"] = panel["gpr"] * panel["rn"]
    regressors = ["gpr", "rn", "gpr:rn", "x1", "x2"]
    result = estimate(panel, "M", "syn", regressors, key_terms=["gpr", "gpr:rn"],
                      bootstrap={"B": 999, "weights": "webb", "seed": 4})
    sim = power.SimulationDesign.from_cluster_design(result.design, result.periods,
                                                     dk_bandwidth=result.dk_bandwidth)
    return result, sim


def test_simulation_design_equals_the_pipeline_on_the_sample(design):
    result, sim = design
    v, _ = inference.draw_wild_weights(result.n_clusters, 999, "webb", 4)
    for term in ("gpr", "gpr:rn"):
        j = result.regressors.index(term)
        row = result.table.loc[term]
        st = sim.statistics(result.design.y, j)
        assert st["se_crv1"][0] == pytest.approx(row["std_error"], rel=1e-10)
        assert st["se_crv3"][0] == pytest.approx(row["se_crv3"], rel=1e-8)
        assert st["se_dk"][0] == pytest.approx(row["se_dk"], rel=1e-10)  # linearmodels
        assert sim.wcr_pvalues(result.design.y, j, v)[0] == pytest.approx(row["p_wcr"],
                                                                         abs=1e-12)


def test_simulation_design_vectorises_over_outcomes(design):
    result, sim = design
    rng = np.random.default_rng(8)
    Y = sim.partial_nested(rng.normal(size=(sim.n_obs, 5)))
    j = result.regressors.index("gpr:rn")
    st = sim.statistics(Y, j)
    v, _ = inference.draw_wild_weights(result.n_clusters, 499, "webb", 2)
    p = sim.wcr_pvalues(Y, j, v, chunk=2)
    within = sim.within
    for r in range(Y.shape[1]):
        y = Y[:, r]
        b = np.linalg.lstsq(sim.X, y, rcond=None)[0]
        V1 = inference.crv1_vcov(sim.X, y - sim.X @ b, sim.clusters, n_absorbed=sim.n_absorbed)
        V3 = inference.cluster_jackknife_vcov(y, sim.X, sim.clusters, "mnw")
        dummies = sim.X[:, sim.n_regressors:]
        yw = y - dummies @ np.linalg.lstsq(dummies, y, rcond=None)[0]  # two-way within
        bw = np.linalg.lstsq(within, yw, rcond=None)[0]
        Vdk = inference.driscoll_kraay_vcov(within, yw - within @ bw, sim.period,
                                            result.dk_bandwidth, sim.n_units + sim.T - 1)
        assert st["t_crv1"][r] == pytest.approx(b[j] / np.sqrt(V1[j, j]), rel=1e-9)
        assert st["t_crv3"][r] == pytest.approx(b[j] / np.sqrt(V3[j, j]), rel=1e-8)
        assert st["t_dk"][r] == pytest.approx(bw[j] / np.sqrt(Vdk[j, j]), rel=1e-9)
        ref = inference.wild_cluster_restricted_bootstrap(y, sim.X, sim.clusters, j, B=499,
                                                          weights="webb", seed=2)
        assert p[r] == pytest.approx(ref.p_value, abs=1e-12)


def test_restricted_fit_imposes_the_null(design):
    result, sim = design
    j = result.regressors.index("gpr")
    b = sim.restricted_fit(result.design.y, j)
    assert b[j] == 0.0
    # it is the least-squares fit without column j
    others = np.delete(sim.X, j, axis=1)
    np.testing.assert_allclose(np.delete(b, j),
                               np.linalg.lstsq(others, result.design.y, rcond=None)[0],
                               rtol=1e-8, atol=1e-10)


def test_simulated_wcr_mde_matches_the_analytic_formula_with_many_clusters():
    """30 clusters x 10 years, iid errors, one regressor: the WCR test's simulated MDE is
    close to (t_.975,29 + t_.80,29) times the true SE, and its size close to 5%."""
    rng = np.random.default_rng(11)
    G, T = 30, 10
    frame = pd.DataFrame({"iso3": np.repeat([f"C{g:02d}" for g in range(G)], T),
                          "year": np.tile(np.arange(T), G)})
    frame["x"] = rng.normal(size=len(frame))
    frame["y"] = rng.normal(size=len(frame))
    d = inference.cluster_design(frame, "y", ["x"], ["iso3", "year"], "iso3")
    sim = power.SimulationDesign.from_cluster_design(d, frame["year"].to_numpy())
    errors = sim.partial_nested(rng.normal(size=(len(frame), 600)))
    xt = sim.within[:, 0]
    true_se = 1 / np.sqrt(xt @ xt)
    analytic = float(power.analytic_mde(true_se, G - 1))
    grid = analytic * np.array([0.0, 0.5, 0.8, 0.9, 1.0, 1.1, 1.2, 1.5])
    v, _ = inference.draw_wild_weights(G, 199, "webb", 5)
    curve = power.wcr_power_curve(sim, 0, errors, grid, v)
    assert curve[0] == pytest.approx(0.05, abs=0.03)
    assert np.all(np.diff(curve) >= -0.02)  # power rises with the effect
    assert power.mde_from_power_curve(grid, curve) == pytest.approx(analytic, rel=0.12)


def test_wcr_tost_agrees_with_the_t_test_with_many_clusters():
    rng = np.random.default_rng(12)
    G, T = 40, 8
    frame = pd.DataFrame({"iso3": np.repeat([f"C{g:02d}" for g in range(G)], T),
                          "year": np.tile(np.arange(T), G)})
    frame["x"] = rng.normal(size=len(frame))
    frame["y"] = 0.05 * frame["x"] + rng.normal(size=len(frame))
    result = estimate(frame, "T", "y", ["x"])
    d = result.design
    row = result.table.loc["x"]
    margin = 0.15
    ours = power.wcr_tost(d.y, d.X, d.clusters, 0, margin, B=9999, seed=1,
                          n_absorbed=d.n_absorbed)
    reference = power.tost(row["estimate"], row["std_error"], margin, G - 1)
    assert ours["p_lower"] == pytest.approx(reference["p_lower"], abs=0.03)
    assert ours["p_upper"] == pytest.approx(reference["p_upper"], abs=0.03)
    assert ours["p"] == max(ours["p_lower"], ours["p_upper"])


def test_nickell_correction_uses_the_mean_number_of_periods():
    """Unbalanced: A has 6 periods, B 3, both u_t = 0.2 u_t-1 exactly (rho_raw = 0.2). T is
    the mean, 4.5, so the bias is 1/3.5 = 2/7 and rho = (0.2 + 2/7) / (1 - 2/7) = 3.4/5 =
    0.68 (with T = 6, the longest unit, it would be 0.5)."""
    u = np.r_[0.2 ** np.arange(6), -(0.2 ** np.arange(3))]
    unit = np.repeat(["A", "B"], [6, 3])
    period = np.r_[np.arange(2000, 2006), np.arange(2010, 2013)]
    out = power.estimate_ar1(u, unit, period)
    assert out["mean_periods"] == 4.5
    assert out["pairs"] == 5 + 2
    assert out["rho_raw"] == pytest.approx(0.2)
    assert out["rho"] == pytest.approx(0.68)


def test_ar1_errors_are_simulated_through_the_gaps():
    """A unit observed in 2000, 2001 and 2004 is simulated on 2000-2004 and read at its
    years: with the same random numbers, its 2004 value is the 2004 value of the same unit
    observed every year (not the 2002 one), and the scale multiplies the path."""
    full_years = np.arange(2000, 2005)
    gapped_years = np.array([2000, 2001, 2004])
    full = power.ar1_errors(np.random.default_rng(4), np.repeat("A", 5), full_years, 0.7, 3)
    gapped = power.ar1_errors(np.random.default_rng(4), np.repeat("A", 3), gapped_years, 0.7,
                              3, scale=np.array([2.0]))
    np.testing.assert_array_equal(gapped, 2.0 * full[[0, 1, 4]])
    assert not np.allclose(gapped[2], 2.0 * full[2])


def test_calibrate_scales_reproduces_each_units_residual_sd():
    """30 countries x 10 years, one regressor, AR(1) errors with rho 0.5: the scales bring
    the residual SD of every unit close to its target (1 for the first 15, 3 for the others)
    on fresh draws, and scale linearly with the target (s_i = target_i / pilot_i, the same
    pilot draws)."""
    rng = np.random.default_rng(21)
    G, T = 30, 10
    frame = pd.DataFrame({"iso3": np.repeat([f"C{g:02d}" for g in range(G)], T),
                          "year": np.tile(np.arange(2000, 2000 + T), G)})
    frame["x"] = rng.normal(size=len(frame))
    frame["y"] = rng.normal(size=len(frame))
    d = inference.cluster_design(frame, "y", ["x"], ["iso3", "year"], "iso3")
    sim = power.SimulationDesign.from_cluster_design(d, frame["year"].to_numpy())
    target = np.where(np.arange(G) < 15, 1.0, 3.0)
    scales = power.calibrate_scales(sim, target, 0.5, np.random.default_rng(5), reps=400)
    unit_scales = power.calibrate_scales(sim, np.ones(G), 0.5, np.random.default_rng(5),
                                         reps=400)
    np.testing.assert_allclose(scales, target * unit_scales, rtol=1e-12)
    assert np.all(scales > target)  # the FE absorb part of the variance: s_i > target_i
    errors = power.ar1_errors(np.random.default_rng(6), sim.unit, sim.period, 0.5, 400,
                              scales)
    resid = sim.residuals(sim.partial_nested(errors))
    achieved = np.sqrt(np.array([np.mean(resid[sim.unit_codes == g] ** 2) for g in range(G)]))
    # within 15%: the pilot draws have s = 1 for every unit, while the year effects mix in
    # the variance of the other units (here the 3s lift the 1s by about 8%)
    np.testing.assert_allclose(achieved, target, rtol=0.15)
    assert np.mean(achieved[15:]) == pytest.approx(3.0, rel=0.05)


def test_mde_from_power_curve_sorts_the_grid():
    """The same curve as test_mde_from_power_curve_by_hand, given out of order: 1.75."""
    deltas = np.array([2.0, 0.0, 3.0, 1.0])
    curve = np.array([0.9, 0.05, 1.0, 0.5])
    assert power.mde_from_power_curve(deltas, curve) == pytest.approx(1.75)


def _two_way_residuals(values: np.ndarray, frame: pd.DataFrame) -> np.ndarray:
    """Residuals of values on country and year dummies by least squares (the two-way within
    transformation, computed without the inference module)."""
    dummies = pd.get_dummies(frame[["iso3", "year"]].astype(str), drop_first=False
                             ).to_numpy(dtype=float)
    coef = np.linalg.lstsq(dummies, values, rcond=None)[0]
    return values - dummies @ coef


def test_power_table_by_hand():
    """The models stage's power table on a 6-country unbalanced panel: every analytic column
    recomputed from the model's estimates with scipy's t(G - 1) quantiles and two-way
    within-SDs from a dummy regression."""
    from analysis.stages import models

    panel = simulated_panel(n_years=12, seed=5, countries=COUNTRIES[:6])
    panel = panel[~((panel["iso3"] == COUNTRIES[0]) & (panel["year"] < 2004))].reset_index(
        drop=True)
    panel["gpr:rn"] = panel["gpr"] * panel["rn"]
    regressors = ["gpr", "rn", "gpr:rn", "x1"]
    boot = {"B": 199, "weights": "webb", "seed": 3}
    result = estimate(panel, "M2", "syn", regressors, key_terms=["gpr", "gpr:rn"],
                      bootstrap=boot)
    spec = {"dependent": "syn", "fixed_effects": ["iso3", "year"], "bootstrap": boot,
            "key_terms": ["gpr", "gpr:rn"],
            "power": {"reps": 40, "bootstrap_draws": 99, "calibration_reps": 20, "seed": 2}}
    table = models.power_analysis([result], panel, spec).set_index("term")
    G = 6
    assert result.n_clusters == G
    assert list(table.index) == ["gpr", "gpr:rn"]
    sd_y = np.std(_two_way_residuals(panel["syn"].to_numpy(), panel), ddof=1)
    multiplier = stats.t(G - 1).ppf(0.975) + stats.t(G - 1).ppf(0.8)
    for term, row in table.iterrows():
        estimate_row = result.table.loc[term]
        b, se1, se3 = (estimate_row["estimate"], estimate_row["std_error"],
                       estimate_row["se_crv3"])
        sd_x = np.std(_two_way_residuals(panel[term].to_numpy(), panel), ddof=1)
        assert row["sd_within_outcome"] == pytest.approx(sd_y, rel=1e-9)
        assert row["sd_within_term"] == pytest.approx(sd_x, rel=1e-9)
        assert row["mde_crv1"] == pytest.approx(multiplier * se1, rel=1e-12)
        assert row["mde_crv3"] == pytest.approx(multiplier * se3, rel=1e-12)
        assert row["mde_crv3_sd"] == pytest.approx(multiplier * se3 * sd_x / sd_y, rel=1e-9)
        assert row["estimate_sd"] == pytest.approx(b * sd_x / sd_y, rel=1e-9)
        margin = 0.2 * sd_y / sd_x  # the SESOI, 0.2 within-SDs, in coefficient units
        assert row["sesoi_coef"] == pytest.approx(margin, rel=1e-9)
        half = stats.t(G - 1).ppf(0.95) * se3  # the 90% interval of the 5% TOST
        assert row["ci90_low_sd"] == pytest.approx((b - half) * sd_x / sd_y, rel=1e-9)
        assert row["ci90_high_sd"] == pytest.approx((b + half) * sd_x / sd_y, rel=1e-9)
        p_tost = max(stats.t(G - 1).sf((b + margin) / se3),
                     stats.t(G - 1).cdf((b - margin) / se3))
        assert row["tost_p_crv3"] == pytest.approx(p_tost, rel=1e-9)
        assert 0 <= row["wcr_size_sim"] <= 1 and row["mde_wcr_sim"] > 0
