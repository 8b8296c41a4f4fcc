"""The estimation engine against pyfixest and linearmodels, and on a known DGP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from linearmodels.panel import PanelOLS
from pyfixest.demeaners import MapDemeaner

from analysis.econometrics import moderated
from analysis.econometrics.estimation import add_interactions, estimate
from analysis.stages import models

TIGHT = MapDemeaner(fixef_tol=1e-12)  # pyfixest demeaning tolerance tightened for 1e-8 checks

COUNTRIES = ["CHN", "BRN", "KHM", "IDN", "LAO", "MYS", "MMR", "PHL", "SGP", "THA", "VNM"]
TRUTH = {"gpr": 0.5, "rn": -0.3, "ti": 0.4, "gpr:rn": -0.25, "gpr:ti": 0.35, "rn:ti": 0.1,
         "gpr:rn:ti": 0.2, "x1": 1.0, "x2": -0.5}


def simulated_panel(n_years: int = 24, seed: int = 7, noise: float = 0.3,
                    countries: list[str] = COUNTRIES) -> pd.DataFrame:
    """A two-way FE panel with a known moderated DGP (interactions included)."""
    rng = np.random.default_rng(seed)
    rows = []
    alpha = {c: rng.normal(0, 1) for c in countries}
    gamma = {t: rng.normal(0, 1) for t in range(n_years)}
    for c in countries:
        for t in range(n_years):
            gpr = rng.normal(0, 1) + 0.3 * gamma[t]
            rn, ti = rng.normal(0, 1), rng.normal(0, 1)
            x1, x2 = rng.normal(0, 1), rng.normal(0, 1)
            y = (alpha[c] + gamma[t] + TRUTH["gpr"] * gpr + TRUTH["rn"] * rn + TRUTH["ti"] * ti
                 + TRUTH["gpr:rn"] * gpr * rn + TRUTH["gpr:ti"] * gpr * ti
                 + TRUTH["rn:ti"] * rn * ti + TRUTH["gpr:rn:ti"] * gpr * rn * ti
                 + TRUTH["x1"] * x1 + TRUTH["x2"] * x2 + rng.normal(0, noise))
            rows.append({"iso3": c, "year": 2000 + t, "syn": y, "gpr": gpr, "rn": rn, "ti": ti,
                         "x1": x1, "x2": x2})
    return pd.DataFrame(rows)


SPEC = {
    "dependent": "syn", "focal": "gpr", "moderators": ["rn", "ti"], "centre": ["gpr", "rn", "ti"],
    "controls": ["x1", "x2"], "fixed_effects": ["iso3", "year"], "cluster": "iso3",
    "key_terms": ["gpr", "gpr:rn", "gpr:ti", "gpr:rn:ti"], "panel": "panel.parquet",
    "driscoll_kraay": {"kernel": "bartlett"},
    "bootstrap": {"B": 999, "weights": "webb", "seed": 1, "rademacher_enumeration": True},
    "models": {"M1": ["gpr"], "M2": ["gpr", "rn", "gpr:rn"], "M3": ["gpr", "ti", "gpr:ti"],
               "M4": ["gpr", "rn", "ti", "gpr:rn", "gpr:ti"],
               "M5": ["gpr", "rn", "ti", "gpr:rn", "gpr:ti", "rn:ti", "gpr:rn:ti"]},
}


@pytest.fixture(scope="module")
def fitted():
    panel = simulated_panel()
    frame, _ = moderated.estimation_frame(panel, SPEC)
    return frame, moderated.fit_models(frame, SPEC, progress=False)


def test_coefficients_and_crv1_equal_pyfixest(fitted):
    frame, results = fitted
    estimates = models.estimates_frame(results)
    for formula, rows in estimates.groupby("formula", sort=False):
        fit = pf.feols(formula, data=frame, vcov={"CRV1": "iso3"})
        ours = rows.set_index("term")
        theirs_b, theirs_se = fit.coef(), fit.se()
        for term in ours.index:
            assert ours.loc[term, "estimate"] == pytest.approx(theirs_b[term], abs=1e-8)
            assert ours.loc[term, "std_error"] == pytest.approx(theirs_se[term], abs=1e-8)
            assert ours.loc[term, "p_value"] == pytest.approx(fit.pvalue()[term], abs=1e-8)
        assert ours["within_r2"].iloc[0] == pytest.approx(fit._r2_within, abs=1e-8)


def test_crv3_pyfixest_column_and_mnw_ratio(fitted):
    """se_crv3_pyfixest is pyfixest's CRV3; se_crv3 (MNW) is smaller by exactly
    sqrt((G/(G-1))^2 (N-1)/(N-K)), K = k + T (the leave-one-out refits are tested against
    pyfixest in test_wcr_refit.py)."""
    frame, results = fitted
    m4 = results[3]
    fit = pf.feols(m4.formula, data=frame, vcov={"CRV3": "iso3"}, demeaner=TIGHT)
    for term in m4.table.index:
        assert m4.table.loc[term, "se_crv3_pyfixest"] == pytest.approx(fit.se()[term], rel=1e-7)
    G, n, k, T = m4.n_clusters, m4.n_obs, len(m4.regressors), frame["year"].nunique()
    ratio = np.sqrt((G / (G - 1)) ** 2 * (n - 1) / (n - k - T))
    np.testing.assert_allclose(m4.table["se_crv3_pyfixest"] / m4.table["se_crv3"], ratio,
                               rtol=1e-10)


def test_driscoll_kraay_p_uses_t_of_t_minus_one(fitted):
    from scipy import stats

    frame, results = fitted
    m2 = results[1]
    T = frame["year"].nunique()
    assert m2.n_periods == T
    t = m2.table["estimate"] / m2.table["se_dk"]
    np.testing.assert_allclose(m2.table["p_dk"], 2 * stats.t(T - 1).sf(np.abs(t)), rtol=1e-12)


def test_driscoll_kraay_equals_linearmodels_kernel(fitted):
    frame, results = fitted
    m5 = results[4]
    data = frame.set_index(["iso3", "year"])
    fit = PanelOLS(data["syn"], data[m5.regressors], entity_effects=True,
                   time_effects=True).fit(cov_type="kernel", kernel="bartlett")
    np.testing.assert_allclose(m5.table["se_dk"].to_numpy(),
                               fit.std_errors[m5.regressors].to_numpy(), rtol=1e-10)


def test_known_dgp_is_recovered(fitted):
    """Centring shifts lower-order terms, so compare the DGP on the uncentred frame."""
    panel = simulated_panel(n_years=40, seed=3, noise=0.1)
    frame = add_interactions(panel, SPEC["models"]["M5"])
    result = estimate(frame, "M5", "syn", [*SPEC["models"]["M5"], "x1", "x2"])
    for term, value in TRUTH.items():
        assert result.table.loc[term, "estimate"] == pytest.approx(value, abs=0.03), term


def test_wcr_pvalues_present_and_sensible(fitted):
    _, results = fitted
    m5 = results[4].table
    for term in SPEC["key_terms"]:
        assert 0 <= m5.loc[term, "p_wcr"] <= 1
        assert m5.loc[term, "p_wcr_rademacher"] < 0.05  # all true effects are large
    assert np.isnan(m5.loc["x1", "p_wcr"])  # without bootstrap["all_terms"] only key terms


def test_wcr_for_every_term_with_all_terms(fitted):
    frame, _ = fitted
    result = estimate(frame, "M4", "syn", [*SPEC["models"]["M4"], "x1", "x2"],
                      key_terms=SPEC["key_terms"],
                      bootstrap={"B": 999, "weights": "webb", "seed": 1, "all_terms": True})
    assert result.table["p_wcr"].notna().all()
    assert result.table["p_wcr_rademacher"].notna().all()
    assert result.table.loc["x1", "p_wcr"] < 0.01  # x1 has a true coefficient of 1


def test_wcr_does_not_reject_a_true_zero():
    panel = simulated_panel(seed=11)
    panel["placebo"] = np.random.default_rng(5).normal(size=len(panel))
    result = estimate(panel, "P", "syn", ["placebo", "gpr", "x1", "x2"], key_terms=["placebo"],
                      bootstrap={"B": 999, "weights": "webb", "seed": 2})
    assert result.table.loc["placebo", "p_wcr"] > 0.05


def test_estimation_frame_centres_and_builds_terms(fitted):
    frame, _ = fitted
    assert frame["gpr"].mean() == pytest.approx(0, abs=1e-12)
    assert frame["rn"].mean() == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(frame["gpr:rn:ti"], frame["gpr"] * frame["rn"] * frame["ti"])
    np.testing.assert_allclose(frame["gpr_raw"] - frame["gpr"], frame["gpr_raw"].mean())


def test_estimates_csv_is_byte_stable(fitted, tmp_path):
    _, results = fitted
    a = models.write_estimates(models.estimates_frame(results), tmp_path / "a.csv").read_bytes()
    b = models.write_estimates(models.estimates_frame(results), tmp_path / "b.csv").read_bytes()
    assert a == b
    header = a.decode().splitlines()[0].split(",")
    assert header == models.ESTIMATES_COLUMNS


def test_crv3_p_values_use_t_with_g_minus_1_degrees_of_freedom():
    """p_crv3 = 2 t_{G-1}.sf(|b / se_crv3|), from the result's own se_crv3 (any CRV3 scaling).

    7 clusters and N = 140: t(G-1) = t(6) and t(N-k) = t(136) give materially different
    p-values for the moderate t-statistic of ``weak`` (with MNW scaling, a difference above 0.01).
    """
    from scipy import stats

    panel = simulated_panel(n_years=20, seed=28, countries=COUNTRIES[:7])
    panel["weak"] = np.random.default_rng(28).normal(size=len(panel))
    panel["syn"] = panel["syn"] + 0.05 * panel["weak"]
    regressors = ["gpr", "weak", "x1", "x2"]
    result = estimate(panel, "P", "syn", regressors)
    table = result.table
    assert (result.n_clusters, result.n_obs) == (7, 140)
    t_crv3 = (table["estimate"] / table["se_crv3"]).to_numpy()
    expected = 2 * stats.t(result.n_clusters - 1).sf(np.abs(t_crv3))
    np.testing.assert_allclose(table["p_crv3"].to_numpy(), expected, rtol=1e-10, atol=1e-300)
    # the example can tell the two distributions apart
    wrong = 2 * stats.t(result.n_obs - len(regressors)).sf(np.abs(t_crv3))
    assert np.max(np.abs(expected - wrong)) > 0.01


def test_centring_is_on_the_estimation_sample_with_missing_values():
    """With missing values in some rows, gpr, rn and ti are centred on the complete rows.

    Rows with a missing control (x1) or a missing moderator (rn) leave the sample; the centred
    variables must then have mean exactly zero on the returned frame (not on the full panel),
    and the recorded means are the complete-row means of the raw variables.
    """
    panel = simulated_panel(seed=13)
    rng = np.random.default_rng(13)
    rows = rng.choice(len(panel), size=60, replace=False)
    panel.loc[rows[:20], "x1"] = np.nan     # gpr, rn, ti observed: only the control is missing
    panel.loc[rows[20:40], "rn"] = np.nan
    panel.loc[rows[40:], "gpr"] = np.nan
    panel.loc[rows[:20], "gpr"] += 5.0      # shift the rows that leave the sample
    frame, means = moderated.estimation_frame(panel, SPEC)
    complete = panel.dropna(subset=moderated.model_variables(SPEC))
    assert len(frame) == len(panel) - 60 == len(complete)
    for name in ("gpr", "rn", "ti"):
        assert frame[name].mean() == pytest.approx(0.0, abs=1e-12), name
        assert means[name] == pytest.approx(complete[name].mean(), rel=1e-12, abs=1e-12), name
        np.testing.assert_allclose(np.sort(frame[f"{name}_raw"].to_numpy()),
                                   np.sort(complete[name].to_numpy()), rtol=0, atol=0)
    # the full-panel mean of gpr is far from the sample mean, so full-panel centring would show
    assert abs(panel["gpr"].mean() - means["gpr"]) > 0.1
    np.testing.assert_allclose(frame["gpr:rn"], frame["gpr"] * frame["rn"], rtol=1e-15)
