"""IV diagnostics and randomisation inference of the robustness battery, against pyfixest fits of
the original data (fixed effects and all) and against loops written out by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.econometrics import inference, variants
from analysis.stages import robustness

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
    for g in variants.permuted_grids(grid, "countries", 5, rng):
        assert sorted(map(tuple, g)) == sorted(map(tuple, grid))  # rows = whole paths
        assert all(any((row == orig).all() for orig in grid) for row in g)
    for g in variants.permuted_grids(grid, "years", 5, rng):
        assert sorted(map(tuple, g.T)) == sorted(map(tuple, grid.T))  # whole cross-sections
    with pytest.raises(ValueError, match="circular time shift was removed"):
        variants.permuted_grids(grid, "shift", 99, rng)
    with pytest.raises(ValueError, match="unknown"):
        variants.permuted_grids(grid, "within", 1, rng)


def test_permutation_grid_is_the_estimation_window_of_the_sample() -> None:
    """The grid covers the sample's countries and the years from its first to its last only:
    a country outside the sample and years outside the window never enter a draw."""
    panel = _small_panel()  # 2000-2007
    frame = panel[(panel["year"].between(2001, 2005)) & (panel["iso3"] != "THA")]
    grid, rows, cols = variants.permutation_grid(panel, frame, "gpr")
    assert grid.shape == (5, 5)  # CHN, IDN, MYS, PHL, VNM x 2001-2005
    outside = (panel["year"] < 2001) | (panel["year"] > 2005) | (panel["iso3"] == "THA")
    assert (rows[outside.to_numpy()] == -1).all() and (rows[~outside.to_numpy()] >= 0).all()
    values = variants.grid_values(grid, rows, cols)
    np.testing.assert_array_equal(values[~outside.to_numpy()],
                                  panel.loc[~outside, "gpr"].to_numpy())
    assert np.isnan(values[outside.to_numpy()]).all()


def _small_panel(seed: int = 8) -> pd.DataFrame:
    from tests.test_models import simulated_panel

    panel = simulated_panel(n_years=8, seed=seed, countries=["CHN", "IDN", "MYS", "PHL", "THA",
                                                             "VNM"])
    panel.loc[(panel["iso3"] == "VNM") & (panel["year"] == 2001), "gpr"] = np.nan  # a hole
    return panel


MODEL = {"dependent": "syn", "terms": ["gpr", "rn", "gpr:rn"], "controls": ["x1"],
         "centre": ["gpr", "rn"]}


def _hand_t(data: pd.DataFrame, interaction_from: str | None = None) -> pd.Series:
    """pyfixest CRV1 t of M2-like MODEL on complete rows, gpr and rn centred on the sample;
    with ``interaction_from`` the interaction is gpr x (that column, centred), rn observed."""
    needed = ["syn", "gpr", "rn", "x1"] + ([interaction_from] if interaction_from else [])
    d = data.dropna(subset=needed).copy()
    counts = d.groupby("iso3")["year"].transform("size")
    d = d[counts >= 2].copy()
    d["gpr"] -= d["gpr"].mean()
    d["rn"] -= d["rn"].mean()
    moderator = d[interaction_from] - d[interaction_from].mean() if interaction_from \
        else d["rn"]
    d["gxr"] = d["gpr"] * moderator
    return _feols("syn ~ gpr + rn + gxr + x1 | iso3 + year", d).tstat().rename(
        {"gxr": "gpr:rn"})


def test_years_ri_equals_a_hand_loop_with_pyfixest_t() -> None:
    """Whole years of GPR's grid permuted within the window (the hole moves with its year and
    drops its row), centring and GPR x RN rebuilt, t from pyfixest CRV1; p = (1 + #)/(1 + B)."""
    panel = _small_panel()
    check = {"id": "ri", "label": "ri"}
    draws, seed = 25, 3
    got = robustness.permutation_test(panel, check, MODEL, "gpr", "years", draws, seed,
                                      ["gpr"], return_t=True)
    frame = variants.prepare_variant(panel, check, MODEL)
    grid, rows, cols = variants.permutation_grid(panel, frame, "gpr")
    grids = variants.permuted_grids(grid, "years", draws, np.random.default_rng(seed))
    observed = _hand_t(panel)["gpr"]
    hits = 0
    for b, g in enumerate(grids):
        t = _hand_t(panel.assign(gpr=variants.grid_values(g, rows, cols)))["gpr"]
        assert got["t_perm"][b, 0] == pytest.approx(t, rel=1e-7)
        hits += abs(t) >= abs(observed) * (1 - 1e-9)
    assert got["p"]["gpr"] == pytest.approx((1 + hits) / (1 + draws), abs=1e-15)


def test_interaction_ri_rebuilds_only_the_interaction() -> None:
    """RN's country paths permuted for GPR x RN: rn itself and gpr keep their observed values,
    the interaction is gpr x (permuted rn, centred on the draw's sample); a hole in LAO's RN
    moves with its path. Against a pyfixest loop draw by draw."""
    panel = _small_panel()
    panel.loc[(panel["iso3"] == "PHL") & (panel["year"] <= 2001), "rn"] = np.nan
    check = {"id": "ri", "label": "ri"}
    draws, seed = 20, 4
    got = robustness.permutation_test(panel, check, MODEL, "rn", "countries", draws, seed,
                                      ["gpr:rn"], return_t=True)
    frame = variants.prepare_variant(panel, check, MODEL)
    grid, rows, cols = variants.permutation_grid(panel, frame, "rn")
    grids = variants.permuted_grids(grid, "countries", draws, np.random.default_rng(seed))
    observed = _hand_t(panel)["gpr:rn"]
    assert got["t"]["gpr:rn"] == pytest.approx(observed, rel=1e-8)
    hits, sizes = 0, set()
    for b, g in enumerate(grids):
        permuted = panel.assign(rn_perm=variants.grid_values(g, rows, cols))
        t = _hand_t(permuted, "rn_perm")["gpr:rn"]
        sizes.add(int(permuted.dropna(subset=["syn", "gpr", "rn", "x1", "rn_perm"]).shape[0]))
        assert got["t_perm"][b, 0] == pytest.approx(t, rel=1e-7)
        hits += abs(t) >= abs(observed) * (1 - 1e-9)
    assert got["p"]["gpr:rn"] == pytest.approx((1 + hits) / (1 + draws), abs=1e-15)
    assert len(sizes) > 1  # PHL's hole moves with its path: the sample changes
    with pytest.raises(Exception, match="array engine"):
        robustness.permutation_test(panel, {**check, "lag": ["gpr"]}, MODEL, "rn",
                                    "countries", 5, 1, ["gpr:rn"])


def test_many_outcomes_equal_one_outcome_at_a_time() -> None:
    """PermutationDesign.t_stats_many (the bench's engine) gives t_stats with the dependent
    variable replaced, outcome by outcome."""
    panel = _small_panel()
    design = variants.PermutationDesign(panel, {"id": "ri"}, MODEL, "rn", ["gpr:rn"],
                                          interaction="gpr:rn")
    frame = variants.prepare_variant(panel, {"id": "ri"}, MODEL)
    grid, rows, cols = variants.permutation_grid(panel, frame, "rn")
    grids = variants.permuted_grids(grid, "countries", 6, np.random.default_rng(2))
    values = np.stack([variants.grid_values(g, rows, cols) for g in grids])
    rng = np.random.default_rng(5)
    defined = panel["syn"].notna().to_numpy()
    outcomes = np.where(defined[None, :], rng.normal(size=(3, len(panel))), np.nan)
    many = design.t_stats_many(values, outcomes)
    for r in range(3):
        one = variants.PermutationDesign(panel.assign(syn=outcomes[r]), {"id": "ri"}, MODEL,
                                           "rn", ["gpr:rn"], interaction="gpr:rn")
        np.testing.assert_allclose(many[:, r], one.t_stats(values)[:, 0], rtol=1e-9)


def test_country_path_ri_has_power_and_is_reproducible() -> None:
    from tests.test_models import simulated_panel

    panel = simulated_panel(n_years=24, seed=4)  # true GPR x RN = -0.25
    check = {"id": "ri", "label": "ri"}
    first = robustness.permutation_test(panel, check, MODEL, "rn", "countries", 99, 5,
                                        ["gpr:rn"])
    again = robustness.permutation_test(panel, check, MODEL, "rn", "countries", 99, 5,
                                        ["gpr:rn"])
    assert first == again
    # only the interaction is permuted (rn's main effect stays in the model): the studentised
    # permutation distribution has fat tails with 11 clusters, but the true interaction is
    # found
    assert first["gpr:rn"] < 0.05


def test_placebo_rule_follows_the_size_measured_at_this_design() -> None:
    design = {"n_obs": 126, "n_clusters": 7, "n_periods": 23, "clusters": ["A", "B"]}
    sizes = {"design": design, "ri": {
        "ri_years": {"variable": "gpr", "scheme": "years", "term": "gpr", "size": 0.09},
        "ri_rn": {"variable": "rn", "scheme": "countries", "term": "gpr:rn", "size": 0.052}}}
    years = {"id": "ri_years", "permute": {"variable": "gpr", "scheme": "years"}}
    rn = {"id": "ri_rn", "permute": {"variable": "rn", "scheme": "countries",
                                     "term": "gpr:rn"}}
    assert robustness.check_kind(years, sizes, design) == "placebo"  # 9% > 7.5%
    assert robustness.check_kind(rn, sizes, design) == "ri"
    assert robustness.ri_size(rn, sizes, design) == 0.052
    # measured at another design (G = 10 after a sample change): not a test any more
    assert robustness.check_kind(rn, sizes, {**design, "n_clusters": 10}) == "placebo"
    # measured for another permutation of the same check id: not this check's size
    other = {"id": "ri_rn", "permute": {"variable": "rn", "scheme": "countries"}}
    assert robustness.ri_size(other, sizes, design) is None
    assert robustness.check_kind(rn, None, design) == "placebo"  # never measured


@pytest.mark.parametrize(("variable", "scheme", "check"), [
    ("rn", "countries", {"id": "ri", "label": "ri"}),
    ("gpr", "years", {"id": "ri", "label": "ri"}),
    ("gpr", "countries", {"id": "ri", "label": "ri"}),
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
    terms = [variable]  # the sharp null: the variable replaced in every term
    out = {engine: robustness.permutation_test(panel, check, MODEL, variable, scheme, 40, 11,
                                               terms, engine=engine, return_t=True)
           for engine in ("numpy", "pandas")}
    fast, slow = out["numpy"], out["pandas"]
    assert fast["p"] == slow["p"]
    for term in terms:
        assert fast["t"][term] == pytest.approx(slow["t"][term], rel=1e-9)
    np.testing.assert_allclose(fast["t_perm"], slow["t_perm"], rtol=1e-8)
    design = variants.PermutationDesign(panel, check, MODEL, variable, terms)
    frame = variants.prepare_variant(panel, check, MODEL)
    grid, rows, cols = variants.permutation_grid(
        panel, frame, (check.get("replace") or {}).get(variable, variable))
    grids = variants.permuted_grids(grid, scheme, 40, np.random.default_rng(11))
    masks = {design._sample(design._frame_columns(variants.grid_values(g, rows, cols)))
             .tobytes() for g in grids}
    assert len(masks) > 1  # the samples do vary


def test_auto_engine_takes_the_frame_engine_for_keys_it_does_not_implement() -> None:
    panel = _small_panel()
    check = {"id": "ri", "label": "ri", "lag": ["gpr"]}
    with pytest.raises(ValueError, match="does not implement"):
        variants.PermutationDesign(panel, check, MODEL, "gpr", ["gpr"])
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


# ------------------------------------------------------------------------ exact AR set
def _ar_example(first_stage: float, seed: int = 31):
    rng = np.random.default_rng(seed)
    n, clusters = 70, np.repeat(np.arange(8), [7, 8, 9, 10, 8, 9, 10, 9])
    z = rng.normal(size=n)
    w = rng.normal(size=(n, 2))
    v = rng.normal(size=n)
    x = first_stage * z + w @ np.array([0.2, 0.1]) + v + rng.normal(size=n)
    y = 0.5 * x + w @ np.array([0.3, -0.2]) + v + rng.normal(size=n)
    return y, x, w, z, clusters


@pytest.mark.parametrize("first_stage", [1.0, 0.05])
def test_closed_form_ar_set_equals_the_test_inverted_point_by_point(first_stage) -> None:
    """The quadratic's set is exactly {b: AR p(b) > 5%}: every grid point agrees with
    anderson_rubin, and the boundaries have p = 0.05."""
    y, x, w, z, clusters = _ar_example(first_stage)
    ar = inference.anderson_rubin_closed_form(y, x, w, z, clusters, 0.95, n_absorbed=2)
    grid = np.linspace(-60, 60, 2401)
    p = inference.anderson_rubin_pvalues(y, x, w, z[:, None], clusters, grid, n_absorbed=2)

    def inside(b: float) -> bool:
        return any(lo <= b <= hi for lo, hi in ar["intervals"])
    agree = [inside(b) == (pv > 0.05) for b, pv in zip(grid, p, strict=True)]
    assert all(agree)
    for lo, hi in ar["intervals"]:
        for edge in (lo, hi):
            if np.isfinite(edge):
                edge_p = inference.anderson_rubin(y, x, w, z, clusters, [edge], 2)[1]
                assert edge_p == pytest.approx(0.05, abs=1e-9)
    fs = inference.first_stage_f(x, w, z, clusters, n_absorbed=2)[0]
    assert ar["bounded"] == (fs > ar["critical_value"])  # bounded iff F > F_0.95(1, G-1)
    assert ar["first_stage"]["t"] ** 2 == pytest.approx(fs, rel=1e-10)
    stat, _ = inference.anderson_rubin(y, x, w, z, clusters, [0.0], 2)
    assert ar["reduced_form"]["t"] ** 2 == pytest.approx(stat, rel=1e-10)  # AR(0) = RF t^2
    if first_stage == 1.0:
        assert ar["kind"] == "bounded interval" and len(ar["intervals"]) == 1
    else:
        assert ar["kind"] in ("union of two rays", "whole line") and not ar["bounded"]


def test_closed_form_ar_set_by_hand() -> None:
    """A 2 x 2 hand example of the quadratic: pi_y, pi_x and their CRV1 (co)variances from
    explicit regressions, then the roots of a2 b^2 + a1 b + a0."""
    y, x, w, z, clusters = _ar_example(0.6, seed=5)
    A = np.column_stack([z, w])
    G, n = 8, len(y)
    c = G / (G - 1) * (n - 1) / (n - 3)
    bread = np.linalg.inv(A.T @ A)
    ry, rx = y - A @ (bread @ A.T @ y), x - A @ (bread @ A.T @ x)
    h = A @ bread[:, 0]
    sy = np.array([np.sum(h[clusters == g] * ry[clusters == g]) for g in range(G)])
    sx = np.array([np.sum(h[clusters == g] * rx[clusters == g]) for g in range(G)])
    pi_y, pi_x = (bread @ A.T @ y)[0], (bread @ A.T @ x)[0]
    kappa = stats.f(1, G - 1).ppf(0.95)
    a2 = pi_x**2 - kappa * c * sx @ sx
    a1 = -2 * (pi_y * pi_x - kappa * c * sy @ sx)
    a0 = pi_y**2 - kappa * c * sy @ sy
    roots = np.sort(np.roots([a2, a1, a0]).real)
    ar = inference.anderson_rubin_closed_form(y, x, w, z, clusters)
    np.testing.assert_allclose(ar["quadratic"], [a2, a1, a0], rtol=1e-10)
    assert ar["kind"] == ("bounded interval" if a2 > 0 else "union of two rays")
    finite = [e for interval in ar["intervals"] for e in interval if np.isfinite(e)]
    np.testing.assert_allclose(finite, roots, rtol=1e-9)


def test_headline_iv_runs_on_the_main_sample() -> None:
    """``sample: main`` restricts M1's IV to the rows complete in every model's variables."""
    from tests.test_models import simulated_panel

    panel = simulated_panel(n_years=10, seed=6)
    panel["gpr_ss"] = panel["gpr"] + np.random.default_rng(1).normal(size=len(panel))
    panel.loc[panel.index[:15], "ti"] = np.nan  # TI missing: M1's own sample is larger
    model = {"dependent": "syn", "terms": ["gpr"], "controls": ["x1"], "centre": ["gpr"],
             "main_sample": ["syn", "gpr", "rn", "ti", "x1"]}
    own = variants.prepare_variant(panel, {"id": "own"}, model)
    main = variants.prepare_variant(panel, {"id": "main", "sample": "main"}, model)
    assert len(own) == len(panel) and len(main) == len(panel) - 15
    iv = robustness.iv_estimate(main, model, "gpr", "gpr_ss", panel)
    assert iv["n_obs"] == len(main)
    assert iv["ar_set"]["bounded"] and iv["status"] == "identified"
    assert iv["ar_set"]["first_stage"]["estimate"] > 0
    text = robustness.format_ar_set(iv["ar_set"])
    assert text.startswith("[") and "bounded" in text
    rays = robustness.format_ar_set({"kind": "union of two rays", "bounded": False,
                                     "intervals": [(-np.inf, -14.03), (0.4623, np.inf)]})
    assert rays == "(−∞, -14.03] ∪ [0.4623, ∞) (unbounded: union of two rays)"
