"""The WCR bootstrap, CRV3 and cluster influence of analysis.econometrics.estimation against references that
redo the whole computation from the ORIGINAL data, fixed effects and all:

* pyfixest ``Feols.wildboottest`` on ``feols("y ~ ... | iso3 + year")`` (it one-hot encodes both
  fixed effects and refits them in every draw: ``Feols._model_matrix_one_hot``);
* a brute-force loop that refits an explicit dummy-variable regression for every sign vector;
* pyfixest ``feols`` refitted on each leave-one-cluster-out subsample.

Before issue 8 the pipeline bootstrapped arrays that were already two-way demeaned, so the year
effects were not refitted in the draws. Run once against that code (commit 97580a6), the
enumeration test below fails at its first p-value assertion: for ``x`` the old enumeration p was
0.4688 (0.4707 with the two identity draws counted) against pyfixest's 0.5117, for ``c`` 0.8047
against 0.8242; the old Webb p for ``x`` was 0.4835 against 0.5111 with the same draws.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.econometrics import inference
from analysis.econometrics.estimation import estimate

pf = pytest.importorskip("pyfixest")
TIGHT = pytest.importorskip("pyfixest.demeaners").MapDemeaner(fixef_tol=1e-12)

REGRESSORS = ["x", "x:m", "m", "c"]


def year_shock_panel(n_clusters: int = 10, n_years: int = 15, seed: int = 4) -> pd.DataFrame:
    """Unbalanced country-year panel (entry years differ, 12% of cells dropped) with strong
    common year shocks in the outcome and the regressor, heterogeneous country variances and a
    true zero coefficient on ``x``. Countries C00..C09 sort like their integer codes ``cid``."""
    rng = np.random.default_rng(seed)
    rows = []
    shock = rng.normal(0, 2.0, n_years)
    for g in range(n_clusters):
        start = int(rng.integers(0, 5))
        scale = 0.3 + 1.7 * rng.random()
        a = rng.normal()
        for t in range(start, n_years):
            if rng.random() < 0.12:
                continue
            x = 0.7 * shock[t] + 0.5 * a + rng.normal()
            m = rng.normal() + 0.3 * shock[t]
            c = rng.normal()
            u = scale * (rng.normal() + 0.8 * shock[t] * rng.normal())
            rows.append({"iso3": f"C{g:02d}", "cid": g, "year": 2000 + t, "x": x, "m": m,
                         "c": c, "y": a + shock[t] + 0.0 * x + 0.4 * m + 0.3 * c + u})
    frame = pd.DataFrame(rows)
    frame["x:m"] = frame["x"] * frame["m"]
    return frame


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    frame = year_shock_panel()
    assert frame.groupby("iso3").size().nunique() > 3  # really unbalanced
    return frame


@pytest.fixture(scope="module")
def ours(panel: pd.DataFrame):
    return estimate(panel, "T", "y", REGRESSORS, key_terms=["x", "x:m"],
                    bootstrap={"B": 9_999, "weights": "webb", "seed": 77,
                               "rademacher_enumeration": True, "all_terms": True})


def _pyfixest_fit(panel: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # integer cluster codes: wildboottest's numba kernels reject object arrays
        return pf.feols("y ~ x + x:m + m + c | iso3 + year", data=panel,
                        vcov={"CRV1": "cid"}, fixef_rm="none", demeaner=TIGHT)


@pytest.mark.parametrize("term", ["x", "x:m", "c"])
def test_rademacher_enumeration_equals_pyfixest_on_original_data(panel, ours, term) -> None:
    fit = _pyfixest_fit(panel)
    G = panel["iso3"].nunique()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res, t_boot = fit.wildboottest(reps=9_999, param=term, weights_type="rademacher",
                                       seed=1, return_bootstrapped_t_stats=True)
    t_boot = np.asarray(t_boot).ravel()
    t_stat = float(res["t value"])
    assert t_boot.size == 2**G  # full enumeration (wildboottest: 2^G < reps)
    # wildboottest enumerates in itertools.product([-1, 1], repeat=G) order: the first and last
    # draws are the identity draws v = -1 and v = +1, which reproduce the sample (t* = -+t)
    assert t_boot[0] == pytest.approx(-t_stat, rel=1e-8)
    assert t_boot[-1] == pytest.approx(t_stat, rel=1e-8)
    # pyfixest: mean(|t*| > |t|), so the two identity draws count or not by rounding noise;
    # ours: the exact randomisation p, share of |t*| >= |t| with the identity draws set
    # exactly to -+t, so both always count. Put pyfixest on the same convention:
    counted_by_noise = int(np.sum(np.abs(t_boot[[0, -1]]) > abs(t_stat)))
    reference = float(res["Pr(>|t|)"]) + (2 - counted_by_noise) / 2**G
    assert ours.table.loc[term, "p_wcr_rademacher"] == pytest.approx(reference, abs=1e-12)
    # and the bootstrap distributions agree draw by draw (t*/t removes the ssc convention)
    design = ours.design
    j = REGRESSORS.index(term)
    mine = inference.wild_cluster_restricted_bootstrap(
        design.y, design.X, design.clusters, j, B=2**G, weights="rademacher",
        full_enumeration=True, ties="include", return_draws=True,
        n_absorbed=design.n_absorbed)
    np.testing.assert_allclose(mine.t_boot / mine.t_stat, t_boot / t_stat, rtol=0, atol=1e-9)
    # the t statistic itself is pyfixest's CRV1 t
    assert mine.t_stat == pytest.approx(fit.tstat()[term], rel=1e-9)


@pytest.mark.parametrize("term", ["x", "c"])
def test_webb_equals_pyfixest_same_draws_and_within_mc_error(panel, ours, term) -> None:
    fit = _pyfixest_fit(panel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = fit.wildboottest(reps=9_999, param=term, weights_type="webb", seed=77)
        other = fit.wildboottest(reps=9_999, param=term, weights_type="webb", seed=78)
    # same seed: the same 9,999 Webb vectors (numpy default_rng(seed).choice), same p
    assert ours.table.loc[term, "p_wcr"] == pytest.approx(float(same["Pr(>|t|)"]), abs=1e-12)
    # another seed: within Monte Carlo error of two independent runs
    p = ours.table.loc[term, "p_wcr"]
    sd = np.sqrt(2 * p * (1 - p) / 9_999)
    assert abs(p - float(other["Pr(>|t|)"])) < 4 * sd


def _dummy_design(frame: pd.DataFrame) -> np.ndarray:
    dummies = pd.get_dummies(frame[["iso3", "year"]].astype(str), drop_first=True)
    return np.column_stack([frame[REGRESSORS].to_numpy(), np.ones(len(frame)),
                            dummies.to_numpy(float)])


def _crv1_t(X: np.ndarray, y: np.ndarray, codes: np.ndarray, j: int) -> float:
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    u = y - X @ beta
    bread = np.linalg.inv(X.T @ X)
    G = codes.max() + 1
    scores = np.array([X[codes == g].T @ u[codes == g] for g in range(G)])
    n, k = X.shape
    V = G / (G - 1) * (n - 1) / (n - k) * bread @ scores.T @ scores @ bread
    return beta[j] / np.sqrt(V[j, j])


def test_wcr_equals_brute_force_dummy_refit_every_draw() -> None:
    """Every one of the 2^7 sign vectors: restricted fit with explicit country and year dummies,
    y* = X b~ + v_g u~, refit by least squares with all dummies, CRV1 t*. No demeaning anywhere."""
    frame = year_shock_panel(n_clusters=7, n_years=9, seed=12)
    result = estimate(frame, "S", "y", REGRESSORS, key_terms=["x"],
                      bootstrap={"B": 999, "weights": "webb", "seed": 1,
                                 "rademacher_enumeration": True})
    X = _dummy_design(frame)
    y = frame["y"].to_numpy()
    codes = frame["cid"].to_numpy()
    j = 0
    restricted = np.delete(X, j, axis=1)
    b_r = np.linalg.lstsq(restricted, y, rcond=None)[0]
    fitted, u_r = restricted @ b_r, y - restricted @ b_r
    t_stat = _crv1_t(X, y, codes, j)
    t_boot = []
    for signs in itertools.product([-1.0, 1.0], repeat=7):
        v = np.asarray(signs)[codes]
        t_boot.append(_crv1_t(X, fitted + v * u_r, codes, j))
    t_boot = np.array(t_boot)
    p_brute = float(np.mean(np.abs(t_boot) >= abs(t_stat) - 1e-12 * abs(t_stat)))
    assert result.table.loc["x", "p_wcr_rademacher"] == pytest.approx(p_brute, abs=1e-12)
    design = result.design
    mine = inference.wild_cluster_restricted_bootstrap(
        design.y, design.X, design.clusters, j, B=128, weights="rademacher",
        full_enumeration=True, ties="include", return_draws=True)
    np.testing.assert_allclose(mine.t_boot / mine.t_stat, t_boot / t_stat, rtol=0, atol=1e-9)


def test_crv3_is_mnw_leave_one_cluster_out_refit(panel, ours) -> None:
    """se_crv3 = sqrt((G-1)/G sum_g (b_(g) - b)^2), b_(g) from pyfixest feols refitted (country
    and year FE) on the sample without cluster g; std_error_loo is that refit's CRV1 SE."""
    clusters = sorted(panel["iso3"].unique())
    G = len(clusters)
    full = _pyfixest_fit(panel).coef()
    loo, loo_se = [], []
    for g in clusters:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = pf.feols("y ~ x + x:m + m + c | iso3 + year", data=panel[panel["iso3"] != g],
                           vcov={"CRV1": "iso3"}, fixef_rm="none", demeaner=TIGHT)
        loo.append(fit.coef()[REGRESSORS].to_numpy())
        loo_se.append(fit.se()[REGRESSORS].to_numpy())
    loo, loo_se = np.array(loo), np.array(loo_se)
    dev = loo - full[REGRESSORS].to_numpy()
    se_mnw = np.sqrt((G - 1) / G * np.sum(dev**2, axis=0))
    np.testing.assert_allclose(ours.table.loc[REGRESSORS, "se_crv3"], se_mnw, rtol=1e-8)
    # pyfixest's own CRV3 scaling only in the labelled second column
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        crv3 = pf.feols("y ~ x + x:m + m + c | iso3 + year", data=panel, vcov={"CRV3": "iso3"},
                        fixef_rm="none", demeaner=TIGHT).se()
    np.testing.assert_allclose(ours.table.loc[REGRESSORS, "se_crv3_pyfixest"],
                               crv3[REGRESSORS].to_numpy(), rtol=1e-8)
    # p from t(G-1)
    from scipy import stats

    t = ours.table.loc[REGRESSORS, "estimate"] / se_mnw
    np.testing.assert_allclose(ours.table.loc[REGRESSORS, "p_crv3"],
                               2 * stats.t(G - 1).sf(np.abs(t)), rtol=1e-8)
    # leave-one-cluster-out columns of the influence table
    infl = ours.influence[ours.influence["term"] == "x"].set_index("cluster").loc[clusters]
    np.testing.assert_allclose(infl["estimate_loo"], loo[:, 0], rtol=1e-8)
    np.testing.assert_allclose(infl["std_error_loo"], loo_se[:, 0], rtol=1e-8)


def test_partial_leverage_and_gstar_by_hand() -> None:
    # 7 x 2 design, constant as the other column: x~ = x - 4 = (-3..3);
    # clusters A = rows 0-1, B = rows 2-4, C = rows 5-6: SS 13, 2, 13 of 28
    X = np.column_stack([np.arange(1.0, 8.0), np.ones(7)])
    clusters = np.array(["A", "A", "B", "B", "B", "C", "C"])
    labels, lev = inference.partial_leverage(X, clusters, 0)
    assert list(labels) == ["A", "B", "C"]
    np.testing.assert_allclose(lev, [13 / 28, 2 / 28, 13 / 28], rtol=1e-14)
    assert lev.sum() == pytest.approx(1.0, abs=1e-15)
    # G*(0) = G / (1 + Gamma), Gamma = mean(((g - gbar)/gbar)^2) = 242/784: 2352/1026
    assert inference.effective_clusters(X, clusters, 0) == pytest.approx(2352 / 1026, rel=1e-12)
    # one regressor, no other column: x^2 sums 5, 9, 3 -> G* = 3 / (1 + 56/289) = 867/345
    x = np.array([[1.0], [2.0], [3.0], [1.0], [1.0], [1.0]])
    groups = np.array([0, 0, 1, 2, 2, 2])
    assert inference.effective_clusters(x, groups, 0) == pytest.approx(867 / 345, rel=1e-12)
    # identical clusters: every cluster the same block -> equal leverage, G* = G
    block = np.array([[1.0, 0.5], [2.0, -1.0], [0.5, 3.0]])
    Xs = np.vstack([block] * 4)
    g4 = np.repeat(np.arange(4), 3)
    np.testing.assert_allclose(inference.partial_leverage(Xs, g4, 1)[1], 0.25, rtol=1e-14)
    assert inference.effective_clusters(Xs, g4, 1) == pytest.approx(4.0, rel=1e-14)


def test_influence_in_models_sums_to_one_and_flags_dominant_cluster(panel) -> None:
    # make one country dominate the variation of c: its c has 10x the spread
    skewed = panel.copy()
    skewed.loc[skewed["iso3"] == "C03", "c"] *= 10.0
    result = estimate(skewed, "S", "y", REGRESSORS, key_terms=["x", "c"])
    infl = result.influence
    assert list(infl.columns) == ["model", "term", "cluster", "partial_leverage",
                                  "estimate_loo", "std_error_loo", "g_star"]
    sums = infl.groupby("term")["partial_leverage"].sum()
    np.testing.assert_allclose(sums, 1.0, rtol=1e-12)
    top = infl[infl["term"] == "c"].sort_values("partial_leverage").iloc[-1]
    assert top["cluster"] == "C03" and top["partial_leverage"] > 0.5
    assert top["g_star"] < 3
    from analysis.publish.tables import high_leverage_note

    note = high_leverage_note(infl, {"c": "Control"})
    assert "S Control: C03" in note and "x" not in note.split("in:")[1].split(":")[0]
