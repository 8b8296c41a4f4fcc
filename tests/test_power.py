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
