"""IV diagnostics and randomisation inference of the robustness battery, against pyfixest fits of
the original data (fixed effects and all) and against loops written out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import inference, robustness

pf = pytest.importorskip("pyfixest")
TIGHT = pytest.importorskip("pyfixest.demeaners").MapDemeaner(fixef_tol=1e-12)


def iv_panel(seed: int = 21, n_clusters: int = 9, n_years: int = 12) -> pd.DataFrame:
    """Unbalanced two-way FE panel with two endogenous regressors x1, x2 (common shock v with
    y), two instruments z1, z2 and an exogenous control w; true effects 0.5 and -0.3."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_clusters):
        a = rng.normal()
        for t in range(int(rng.integers(0, 3)), n_years):
            z1, z2, w, v = rng.normal(), rng.normal(), rng.normal(), rng.normal()
            x1 = 0.8 * z1 + 0.3 * z2 + 0.5 * v + 0.3 * a + rng.normal()
            x2 = 0.2 * z1 + 0.7 * z2 + 0.5 * v + rng.normal()
            y = 0.5 * x1 - 0.3 * x2 + 0.4 * w + a + 0.1 * t + v + rng.normal()
            rows.append({"iso3": f"C{g}", "year": 2000 + t, "y": y, "x1": x1, "x2": x2,
                         "z1": z1, "z2": z2, "w": w})
    return pd.DataFrame(rows)


def _partialled(frame: pd.DataFrame):
    cols = ["y", "x1", "x2", "z1", "z2", "w"]
    wide = inference.partial_out_fixed_effects(frame, cols, ["iso3", "year"])
    n_abs = inference.count_absorbed_parameters(frame, ["iso3", "year"], "iso3")
    return wide, frame["iso3"].to_numpy(), n_abs


def _feols(formula: str, data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pf.feols(formula, data=data, vcov={"CRV1": "iso3"}, demeaner=TIGHT)


def test_tsls_equals_pyfixest_iv_crv1() -> None:
    """One endogenous regressor, two instruments: pyfixest IV refitted on the original data."""
    frame = iv_panel()
    wide, clusters, n_abs = _partialled(frame)
    b, V = inference.tsls(wide["y"], wide[["x1"]], wide[["w", "x2"]], wide[["z1", "z2"]],
                          clusters, n_abs)
    fit = _feols("y ~ w + x2 | iso3 + year | x1 ~ z1 + z2", frame)
    names = ["x1", "w", "x2"]
    np.testing.assert_allclose(b, fit.coef()[names].to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(np.sqrt(np.diag(V)), fit.se()[names].to_numpy(), rtol=1e-8)


def test_tsls_two_endogenous_equals_linearmodels_with_stated_scaling() -> None:
    """pyfixest 0.60 takes one endogenous regressor only; linearmodels IV2SLS (clustered,
    debiased) on the FE-partialled data scales by G/(G-1) (N-1)/(N-k) without the absorbed
    year effects; ours counts them (K = k + T), so V_ours = V_lm (N-k)/(N-k-T)."""
    from linearmodels.iv import IV2SLS

    frame = iv_panel()
    wide, clusters, n_abs = _partialled(frame)
    b, V = inference.tsls(wide["y"], wide[["x1", "x2"]], wide[["w"]], wide[["z1", "z2"]],
                          clusters, n_abs)
    fit = IV2SLS(wide["y"], wide[["w"]], wide[["x1", "x2"]], wide[["z1", "z2"]]).fit(
        cov_type="clustered", clusters=pd.Series(clusters), debiased=True)
    names = ["x1", "x2", "w"]
    np.testing.assert_allclose(b, fit.params[names].to_numpy(), rtol=1e-10)
    n, k = len(frame), 3
    np.testing.assert_allclose(V, fit.cov.loc[names, names].to_numpy() * (n - k)
                               / (n - k - n_abs), rtol=1e-9)
    # CRV1, not CRV0: larger than the unscaled sandwich by G/(G-1) (N-1)/(N-K) > 1.1
    G = frame["iso3"].nunique()
    assert G / (G - 1) * (n - 1) / (n - k - n_abs) > 1.1


def test_first_stage_f_equals_pyfixest_wald_of_the_instruments() -> None:
    frame = iv_panel()
    wide, clusters, n_abs = _partialled(frame)
    F = inference.first_stage_f(wide[["x1", "x2"]], wide[["w"]], wide[["z1", "z2"]], clusters,
                                n_abs)
    for j, x in enumerate(["x1", "x2"]):
        fit = _feols(f"{x} ~ z1 + z2 + w | iso3 + year", frame)
        # by hand: CRV1 Wald of (z1, z2) divided by q = 2
        b = fit.coef()[["z1", "z2"]].to_numpy()
        V = pd.DataFrame(np.asarray(fit._vcov), index=fit.coef().index,
                         columns=fit.coef().index).loc[["z1", "z2"], ["z1", "z2"]].to_numpy()
        assert F[j] == pytest.approx(float(b @ np.linalg.solve(V, b)) / 2, rel=1e-8)
    # one instrument: F = t^2 of the instrument in the first stage
    F1 = inference.first_stage_f(wide[["x1"]], wide[["w"]], wide[["z1"]], clusters, n_abs)
    t = _feols("x1 ~ z1 + w | iso3 + year", frame).tstat()["z1"]
    assert F1[0] == pytest.approx(t**2, rel=1e-8)


def test_sanderson_windmeijer_f_by_hand() -> None:
    """SW F of x1: 2SLS of x1 on x2 (instruments z1, z2; control w; FE), its residual e,
    then the CRV1 Wald of (z1, z2) in e ~ z1 + z2 + w | FE, divided by q - p + 1 = 1."""
    frame = iv_panel()
    wide, clusters, n_abs = _partialled(frame)
    sw = inference.sanderson_windmeijer_f(wide[["x1", "x2"]], wide[["w"]], wide[["z1", "z2"]],
                                          clusters, n_abs)
    for j, (x, other) in enumerate((("x1", "x2"), ("x2", "x1"))):
        stage = _feols(f"{x} ~ w | iso3 + year | {other} ~ z1 + z2", frame)
        e = frame.assign(e=stage.resid())
        fit = _feols("e ~ z1 + z2 + w | iso3 + year", e)
        b = fit.coef()[["z1", "z2"]].to_numpy()
        V = pd.DataFrame(np.asarray(fit._vcov), index=fit.coef().index,
                         columns=fit.coef().index).loc[["z1", "z2"], ["z1", "z2"]].to_numpy()
        assert sw[j] == pytest.approx(float(b @ np.linalg.solve(V, b)) / 1, rel=1e-7)
    # one endogenous regressor: SW F = first-stage F
    one = inference.sanderson_windmeijer_f(wide[["x1"]], wide[["w"]], wide[["z1", "z2"]],
                                           clusters, n_abs)
    fs = inference.first_stage_f(wide[["x1"]], wide[["w"]], wide[["z1", "z2"]], clusters, n_abs)
    assert one[0] == pytest.approx(fs[0], rel=1e-12)


def test_sw_f_detects_a_single_instrument_family() -> None:
    """Both endogenous regressors driven by z1 only, z2 irrelevant: each own first-stage F is
    large, but given the other regressor neither is identified (SW F small)."""
    frame = iv_panel(seed=3)
    rng = np.random.default_rng(0)
    frame["x1"] = frame["z1"] + 0.5 * rng.normal(size=len(frame))
    frame["x2"] = 0.8 * frame["z1"] + 0.5 * rng.normal(size=len(frame))
    wide, clusters, n_abs = _partialled(frame)
    fs = inference.first_stage_f(wide[["x1", "x2"]], wide[["w"]], wide[["z1", "z2"]], clusters,
                                 n_abs)
    sw = inference.sanderson_windmeijer_f(wide[["x1", "x2"]], wide[["w"]], wide[["z1", "z2"]],
                                          clusters, n_abs)
    assert fs.min() > 10 and sw.max() < 10


def test_anderson_rubin_by_hand() -> None:
    frame = iv_panel()
    wide, clusters, n_abs = _partialled(frame)
    G = frame["iso3"].nunique()
    stat, p = inference.anderson_rubin(wide["y"], wide[["x1"]], wide[["w", "x2"]], wide[["z1"]],
                                       clusters, [0.2], n_abs)
    fit = _feols("ytil ~ z1 + w + x2 | iso3 + year", frame.assign(ytil=frame["y"] - 0.2 *
                                                                  frame["x1"]))
    assert stat == pytest.approx(fit.tstat()["z1"] ** 2, rel=1e-8)
    assert p == pytest.approx(stats.f(1, G - 1).sf(stat), rel=1e-12)
    # the AR set contains the 2SLS estimate of a just-identified model (AR = 0 there)
    b, V = inference.tsls(wide["y"], wide[["x1"]], wide[["w", "x2"]], wide[["z1"]], clusters,
                          n_abs)
    assert inference.anderson_rubin(wide["y"], wide[["x1"]], wide[["w", "x2"]], wide[["z1"]],
                                    clusters, [b[0]], n_abs)[0] == pytest.approx(0, abs=1e-16)
    runs, open_ = inference.anderson_rubin_set(
        wide["y"], wide[["x1"]], wide[["w", "x2"]], wide[["z1"]], clusters,
        b[0] + np.sqrt(V[0, 0]) * np.linspace(-10, 10, 201), n_absorbed=n_abs)
    assert len(runs) == 1 and runs[0][0] < b[0] < runs[0][1] and not open_


# ------------------------------------------------------------------------ randomisation inference
def test_permuted_grids_move_whole_paths_and_cross_sections() -> None:
    grid = np.arange(12.0).reshape(3, 4)  # 3 countries x 4 years
    rng = np.random.default_rng(0)
    for g in robustness.permuted_grids(grid, "countries", 5, rng):
        assert sorted(map(tuple, g)) == sorted(map(tuple, grid))  # rows = whole paths
        assert all(any((row == orig).all() for orig in grid) for row in g)
    for g in robustness.permuted_grids(grid, "years", 5, rng):
        assert sorted(map(tuple, g.T)) == sorted(map(tuple, grid.T))  # whole cross-sections
    shifts = robustness.permuted_grids(grid, "shift", 99, rng)
    assert len(shifts) == 3  # T - 1 non-zero shifts, all enumerated
    np.testing.assert_array_equal(shifts[0], [[3, 0, 1, 2], [7, 4, 5, 6], [11, 8, 9, 10]])
    with pytest.raises(ValueError, match="unknown"):
        robustness.permuted_grids(grid, "within", 1, rng)


def _small_panel(seed: int = 8) -> pd.DataFrame:
    from tests.test_models import simulated_panel

    panel = simulated_panel(n_years=8, seed=seed, countries=["CHN", "IDN", "MYS", "PHL", "THA",
                                                             "VNM"])
    panel.loc[(panel["iso3"] == "VNM") & (panel["year"] == 2001), "gpr"] = np.nan  # a hole
    return panel


MODEL = {"dependent": "syn", "terms": ["gpr", "rn", "gpr:rn"], "controls": ["x1"],
         "centre": ["gpr", "rn"]}


def test_shift_ri_equals_a_hand_loop_with_pyfixest_t() -> None:
    """Every joint time shift of GPR's country x year grid (the hole moves with its path and
    drops its row), centring and GPR x RN rebuilt, t from pyfixest CRV1; p = (1 + #)/T."""
    panel = _small_panel()
    check = {"id": "ri", "label": "ri"}
    got = robustness.permutation_test(panel, check, MODEL, "gpr", "shift", 0, 1,
                                      ["gpr", "gpr:rn"])
    years = np.sort(panel["year"].unique())
    countries = np.sort(panel["iso3"].unique())
    grid = panel.pivot(index="iso3", columns="year", values="gpr").loc[countries, years]

    def t_stats(p: pd.DataFrame) -> pd.Series:
        d = p.dropna(subset=["syn", "gpr", "rn", "x1"]).copy()
        d["gpr"] -= d["gpr"].mean()
        d["rn"] -= d["rn"].mean()
        return _feols("syn ~ gpr + rn + gpr:rn + x1 | iso3 + year", d).tstat()

    observed = t_stats(panel)
    hits = {"gpr": 0, "gpr:rn": 0}
    for s in range(1, len(years)):
        rolled = pd.DataFrame(np.roll(grid.to_numpy(), s, axis=1), index=countries,
                              columns=years).stack(future_stack=True).rename("gpr")
        shifted = panel.drop(columns="gpr").merge(rolled.reset_index().rename(
            columns={"level_0": "iso3", "level_1": "year"}), on=["iso3", "year"])
        t = t_stats(shifted)
        for term in hits:
            hits[term] += abs(t[term]) >= abs(observed[term]) * (1 - 1e-9)
    for term, count in hits.items():
        assert got[term] == pytest.approx((1 + count) / len(years), abs=1e-15)


def test_country_path_ri_has_power_and_is_reproducible() -> None:
    from tests.test_models import simulated_panel

    panel = simulated_panel(n_years=12, seed=4)  # true GPR x RN = -0.25, RN moved by country
    check = {"id": "ri", "label": "ri"}
    first = robustness.permutation_test(panel, check, MODEL, "rn", "countries", 49, 5,
                                        ["gpr:rn"])
    again = robustness.permutation_test(panel, check, MODEL, "rn", "countries", 49, 5,
                                        ["gpr:rn"])
    assert first == again
    # 11! paths: random permutations that leave most countries in place can tie with the
    # sample, but the true interaction is found
    assert first["gpr:rn"] < 0.05


def test_placebo_rule_follows_the_bench_size() -> None:
    saved = {k: v["bench_size"] for k, v in robustness.RI_SCHEMES.items()}
    try:
        robustness.RI_SCHEMES["years"]["bench_size"] = 0.09
        robustness.RI_SCHEMES["countries"]["bench_size"] = 0.052
        assert robustness.check_kind({"permute": {"scheme": "years"}}) == "placebo"
        assert robustness.check_kind({"permute": {"scheme": "countries"}}) == "ri"
    finally:
        for k, v in saved.items():
            robustness.RI_SCHEMES[k]["bench_size"] = v


@pytest.mark.parametrize(("variable", "scheme", "check"), [
    ("rn", "countries", {"id": "ri", "label": "ri"}),
    ("gpr", "years", {"id": "ri", "label": "ri"}),
    ("gpr", "shift", {"id": "ri", "label": "ri"}),
    ("gpr", "years", {"id": "ri", "label": "ri", "drop_countries": ["IDN"],
                      "replace": {"rn": "x2"}}),
])
def test_array_engine_counts_the_same_draws_as_the_frame_engine(variable, scheme, check) -> None:
    """The numpy engine (samples grouped, FE projected once per sample, draws as stacked
    products) against prepare_variant + crv1_t draw by draw: the same t statistics to
    rounding and the same p-values. The hole in VNM's GPR moves with the permutations, so
    the estimation sample changes from draw to draw."""
    from tests.test_models import simulated_panel

    panel = simulated_panel(n_years=9, seed=3)
    panel.loc[(panel["iso3"] == "VNM") & (panel["year"] == 2001), "gpr"] = np.nan
    panel.loc[(panel["iso3"] == "LAO") & (panel["year"] <= 2002), "rn"] = np.nan
    terms = [t for t in ["gpr", "gpr:rn"] if variable in t.split(":")]
    out = {engine: robustness.permutation_test(panel, check, MODEL, variable, scheme, 40, 11,
                                               terms, engine=engine, return_t=True)
           for engine in ("numpy", "pandas")}
    fast, slow = out["numpy"], out["pandas"]
    assert fast["p"] == slow["p"]
    for term in terms:
        assert fast["t"][term] == pytest.approx(slow["t"][term], rel=1e-9)
    np.testing.assert_allclose(fast["t_perm"], slow["t_perm"], rtol=1e-8)
    design = robustness.PermutationDesign(panel, check, MODEL, variable, terms)
    grids = robustness.permuted_grids(
        panel.pivot(index="iso3", columns="year", values=variable).to_numpy(), scheme, 40,
        np.random.default_rng(11))
    rows = np.searchsorted(np.sort(panel["iso3"].unique()), panel["iso3"])
    cols = np.searchsorted(np.sort(panel["year"].unique()), panel["year"])
    masks = {design._sample(design._frame_columns(g[rows, cols])).tobytes() for g in grids}
    assert len(masks) > 1  # the samples do vary


def test_auto_engine_takes_the_frame_engine_for_keys_it_does_not_implement() -> None:
    panel = _small_panel()
    check = {"id": "ri", "label": "ri", "lag": ["gpr"]}
    with pytest.raises(ValueError, match="does not implement"):
        robustness.PermutationDesign(panel, check, MODEL, "gpr", ["gpr"])
    auto = robustness.permutation_test(panel, check, MODEL, "gpr", "years", 15, 2, ["gpr"])
    slow = robustness.permutation_test(panel, check, MODEL, "gpr", "years", 15, 2, ["gpr"],
                                       engine="pandas")
    assert auto == slow


def test_anderson_rubin_pvalues_equal_one_test_per_grid_point() -> None:
    rng = np.random.default_rng(12)
    n, clusters = 60, np.repeat(np.arange(7), [6, 7, 8, 9, 10, 9, 11])
    z = rng.normal(size=(n, 1))
    w = rng.normal(size=(n, 2))
    e = 1.5 * z[:, 0] + rng.normal(size=n)
    y = 0.4 * e + w @ np.array([0.3, -0.2]) + rng.normal(size=n)
    grid = np.linspace(-4.0, 5.0, 61)
    batch = inference.anderson_rubin_pvalues(y, e, w, z, clusters, grid, n_absorbed=3)
    single = np.array([inference.anderson_rubin(y, e, w, z, clusters, [b0], n_absorbed=3)[1]
                       for b0 in grid])
    np.testing.assert_array_equal(batch, single)  # the same numbers, bit for bit
    assert single.max() > 0.05 > single.min()  # the grid crosses the 5% boundary
