"""The nickel stage's design and auxiliary outputs (issue 18), pinned by hand.

- every model of ``specs/nickel.yaml`` builds its own design: terms, years, exporters and fixed
  effects written out by hand for each model, and no variant equals another;
- the post-average, anticipation and pre-trend tests of :func:`analysis.stages.nickel.model_tests` on
  a fake fit whose coefficients and covariance are chosen so that every number is computed by
  hand (two-sided p-values; the joint test uses every pre-period term; a rank-deficient joint
  covariance);
- the stage's own ``nickel_event_tests.csv``, ``nickel_event_models.csv`` and
  ``nickel_placebo_exporters.csv`` on a synthetic chain of the real spec's models: the
  p-values they print are two-sided, the joint test uses every term, the placebo set is the
  other exporters (never the treated one) with the treated exporter dropped from their fits;
- the table thresholds in their units (extract values are thousand USD).

The spec is the real one with fewer exporters and partners (so that the fits take seconds); a
model added to the spec must be added to :data:`EXPECTED` below.
"""

from __future__ import annotations

import contextlib
import io
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.stages import nickel

EXPORTERS = ["IDN", "PHL", "MYS", "THA"]
PARTNERS = ["CHN", "JPN", "USA"]
CODES = {"260400": "ore", "720260": "intermediate", "750110": "intermediate",
         "750120": "intermediate", "750210": "refined"}
MAIN_FE = "exporter^hs6 + partner^year"


def small_spec() -> dict:
    """The real specs/nickel.yaml with four exporters and three partners."""
    spec = nickel.load_nickel_spec()
    spec["event_study"]["exporters"] = list(EXPORTERS)
    spec["event_study"]["partners"] = list(PARTNERS)
    return spec


@pytest.fixture(scope="module")
def spec() -> dict:
    return small_spec()


@pytest.fixture(scope="module")
def chain() -> pd.DataFrame:
    """Poisson flows under the null, every cell positive (mean about e^9 thousand USD)."""
    return nickel.simulate_flows(np.random.default_rng(18), EXPORTERS, PARTNERS, CODES,
                                 list(range(2010, 2025)))


def _window_terms(group: str, ban: int, labels: list[str], level: bool = False) -> list[str]:
    return ([f"{group}_b{ban}_level"] if level else []) + [f"{group}_b{ban}_{x}" for x in labels]


def _main_terms(prefix: str = "") -> list[str]:
    """Reference k = -2, anticipation k = -1: 2010 pre4, 2011 pre3, (2012 reference), 2013 ant1,
    2014-2016 post0-2; 2017 pre3, (2018 reference), 2019 ant1, 2020-2024 post0-4."""
    out = []
    for group in ("ore", "down"):
        out += _window_terms(group, 2014, ["pre4", "pre3", "ant1", "post0", "post1", "post2"])
        out += _window_terms(group, 2020, ["pre3", "ant1", "post0", "post1", "post2", "post3",
                                           "post4"], level=True)
    return [prefix + t for t in out]


# model id -> (years, exporters in the frame, treated, fixed effects, terms): written by hand
EXPECTED = {
    "main": ((2010, 2024), EXPORTERS, "IDN", MAIN_FE, _main_terms()),
    # reference k = -1, no anticipation: 2012 and 2018 become pre2, 2013 and 2019 the reference
    "ref_k1": ((2010, 2024), EXPORTERS, "IDN", MAIN_FE, [
        t for g in ("ore", "down") for t in
        _window_terms(g, 2014, ["pre4", "pre3", "pre2", "post0", "post1", "post2"])
        + _window_terms(g, 2020, ["pre3", "pre2", "post0", "post1", "post2", "post3", "post4"],
                        level=True)]),
    # window 1: reference 2010-2011 pooled, anticipation 2012-2013; window 2: reference
    # 2017-2018 pooled, anticipation 2019
    "ref_pre_announcement": ((2010, 2024), EXPORTERS, "IDN", MAIN_FE, [
        t for g in ("ore", "down") for t in
        _window_terms(g, 2014, ["ant2", "ant1", "post0", "post1", "post2"])
        + _window_terms(g, 2020, ["ant1", "post0", "post1", "post2", "post3", "post4"],
                        level=True)]),
    "spillover_phl": ((2010, 2024), EXPORTERS, "IDN", MAIN_FE,
                      _main_terms() + _main_terms("phl_")),
    "no_asean_to_china": ((2010, 2024), EXPORTERS, "IDN", MAIN_FE, _main_terms()),
    "product_year_fe": ((2010, 2024), EXPORTERS, "IDN", MAIN_FE + " + hs6^year",
                        _main_terms()),
    "placebo_phl": ((2010, 2024), ["PHL", "MYS", "THA"], "PHL", MAIN_FE, _main_terms()),
    # a fake ban in 2012 on 2010-2013: reference 2010 (k = -2), anticipation 2011
    "placebo_dates": ((2010, 2013), EXPORTERS, "IDN", MAIN_FE, [
        t for g in ("ore", "down") for t in _window_terms(g, 2012, ["ant1", "post0", "post1"])]),
}
GROUP_CODES = {"ore": 1, "down": 4}  # codes per treated group in the spec


@pytest.fixture(scope="module")
def designs(spec, chain) -> dict[str, tuple]:
    return {m["id"]: nickel.model_frame(chain, spec, m) for m in spec["event_study"]["models"]}


def test_every_model_of_the_spec_is_pinned_here(spec):
    assert [m["id"] for m in spec["event_study"]["models"]] == list(EXPECTED)


@pytest.mark.parametrize("model_id", list(EXPECTED))
def test_each_model_builds_its_own_terms_years_and_fixed_effects(designs, model_id):
    (first, last), exporters, treated, fixed_effects, terms = EXPECTED[model_id]
    frame, built, formula, groups = designs[model_id]
    assert groups == ["ore", "down"]
    assert built == terms
    assert formula == f"value_kusd ~ {' + '.join(terms)} | {fixed_effects}"
    assert (int(frame["year"].min()), int(frame["year"].max())) == (first, last)
    assert sorted(frame["exporter"].unique()) == sorted(exporters)
    years = last - first + 1
    expected_rows = len(exporters) * len(PARTNERS) * len(CODES) * years
    if model_id == "no_asean_to_china":  # the other exporters' flows to China leave
        expected_rows -= (len(exporters) - 1) * len(CODES) * years
    assert len(frame) == expected_rows
    # each event-time dummy is 1 on the treated exporter's group codes x partners in one year
    for term in terms:
        unit = "PHL" if term.startswith("phl_") else treated
        group = term.removeprefix("phl_").split("_")[0]
        on = frame[frame[term] == 1.0]
        assert set(on["exporter"]) == {unit}, term
        assert frame[term].isin([0.0, 1.0]).all()
        partners = on["partner"].nunique()
        n_years = on["year"].nunique()
        assert len(on) == GROUP_CODES[group] * partners * n_years, term
        if "level" in term:  # every year of the second window
            assert sorted(on["year"].unique()) == list(range(2017, 2025)), term
        else:
            assert n_years == 1, term
    # the treated group's reference years carry no dummy except the window's level term
    ore = frame[(frame["exporter"] == treated) & (frame["hs6"] == "260400")]
    events = [t for t in terms if t.startswith("ore_") and "level" not in t]
    dummies_per_year = ore.groupby("year")[events].sum().sum(axis=1) / len(PARTNERS)
    reference = {"main": [2012, 2018], "ref_k1": [2013, 2019],
                 "ref_pre_announcement": [2010, 2011, 2017, 2018], "spillover_phl": [2012, 2018],
                 "no_asean_to_china": [2012, 2018], "product_year_fe": [2012, 2018],
                 "placebo_phl": [2012, 2018], "placebo_dates": [2010]}[model_id]
    assert sorted(dummies_per_year[dummies_per_year == 0].index) == reference
    assert (dummies_per_year[dummies_per_year != 0] == 1).all()


def test_dropped_china_flows_keep_the_treated_exporter(designs):
    frame = designs["no_asean_to_china"][0]
    to_china = frame[frame["partner"] == "CHN"]
    assert set(to_china["exporter"]) == {"IDN"}
    assert len(to_china) == len(CODES) * 15
    # the other partners keep every exporter
    assert set(frame.loc[frame["partner"] == "JPN", "exporter"]) == set(EXPORTERS)


def test_no_model_of_the_spec_silently_equals_another(designs):
    """A variant whose key is ignored (fixed effects, reference, years, dropped flows,
    spillover, treated unit) would repeat another model's formula and frame."""
    signature = {}
    for model_id, (frame, _, formula, _) in designs.items():
        digest = int(pd.util.hash_pandas_object(frame.sort_index(axis=1), index=False).sum())
        signature[model_id] = (formula, digest, len(frame))
    seen: dict[tuple, str] = {}
    for model_id, key in signature.items():
        assert key not in seen, f"{model_id} builds the same design as {seen.get(key)}"
        seen[key] = model_id


def test_a_model_that_drops_its_own_treated_exporter_stops_on_load(tmp_path):
    """Dropping the treated exporter would leave a model without treated flows (the stage
    would stop later, or fit a design without the treatment): the spec is refused first."""
    import yaml

    from analysis import config
    from analysis.data.io import DataError

    spec = yaml.safe_load((config.SPECS / "nickel.yaml").read_text())
    placebo = next(m for m in spec["event_study"]["models"] if m["id"] == "placebo_phl")
    placebo["drop_exporters"] = ["IDN", "PHL"]
    (tmp_path / "nickel.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(DataError, match=r"nickel\.yaml, event_study\.models\[placebo_phl\]"
                                        r"\.drop_exporters: the treated exporter PHL is dropped"):
        nickel.load_nickel_spec(tmp_path / "nickel.yaml")


def test_window_reference_and_anticipation_override_the_model_and_spec():
    """A window's own reference / anticipation beat the model's, which beat the event study's."""
    grid = nickel.balanced_grid(pd.DataFrame(columns=["exporter", "partner", "year", "hs6",
                                                      "value_kusd"]),
                                ["A", "B"], ["X"], ["1"], list(range(2010, 2019)))
    windows = [{"ban": 2013, "first": 2010, "last": 2014, "reference": -3},
               {"ban": 2017, "first": 2015, "last": 2018, "anticipation": 0}]
    _, terms = nickel.add_event_terms(grid, "A", {"g": ["1"]}, windows, reference=-1,
                                      anticipation=1)
    # window 1: reference 2010 (k = -3, its own), anticipation 2012 (k = -1, the model's)
    # window 2: reference 2016 (k = -1, the model's), no anticipation (its own 0)
    assert terms == ["g_b2013_pre2", "g_b2013_ant1", "g_b2013_post0", "g_b2013_post1",
                     "g_b2017_level", "g_b2017_pre2", "g_b2017_post0", "g_b2017_post1"]


# --------------------------------------------------------------------------- model_tests by hand
def fake_fit(coef: dict[str, float], vcov: np.ndarray, n_clusters: int = 12, n_obs: int = 500):
    """Stands in for a pyfixest fit: what nickel.fit_vcov and model_tests read from it."""
    names = list(coef)
    return SimpleNamespace(coef=lambda: pd.Series(coef, index=names, dtype=float),
                           _vcov=np.asarray(vcov, dtype=float), _G=np.array([n_clusters]),
                           _N=n_obs)


TERMS = ["g_b2014_pre3", "g_b2014_pre2", "g_b2014_ant1", "g_b2014_post0", "g_b2014_post1",
         "h_b2014_pre2", "h_b2014_post0"]


def test_model_tests_two_sided_and_joint_over_every_term_by_hand():
    """Block-diagonal covariance, so that every statistic is a hand computation.

    g pre (0.2, -0.3), V = [[0.04, 0.01], [0.01, 0.09]]: det = 0.0035,
      W = (0.09 * 0.04 + 2 * 0.01 * 0.06 + 0.04 * 0.09) / 0.0035 = 0.0084 / 0.0035 = 2.4,
      chi2(2) p = exp(-1.2);
    g anticipation 0.3, se 0.2: z = 1.5, p = 2 (1 - Phi(1.5));
    g post (1.0, 0.6), V = [[0.09, 0.03], [0.03, 0.16]]: mean 0.8, var (0.09 + 0.16 + 2 * 0.03)
      / 4 = 0.0775;
    h pre 0.5, V 0.25: W = 1, chi2(1); h post -1.2, se 0.6: z = -2, p = 2 (1 - Phi(2));
    joint pre-trend: every pre term of both groups, W = 2.4 + 1 = 3.4 on 3 df.
    """
    coef = dict(zip(TERMS, [0.2, -0.3, 0.3, 1.0, 0.6, 0.5, -1.2], strict=True))
    v = np.zeros((7, 7))
    v[0:2, 0:2] = [[0.04, 0.01], [0.01, 0.09]]
    v[2, 2] = 0.04
    v[3:5, 3:5] = [[0.09, 0.03], [0.03, 0.16]]
    v[5, 5], v[6, 6] = 0.25, 0.36
    rows = nickel.model_tests(fake_fit(coef, v), TERMS, ["g", "h"], [{"ban": 2014}], "m")
    got = {r["test"]: r for r in rows}
    assert list(got) == ["anticipation_g_b2014", "pretrend_g_b2014", "postavg_g_b2014",
                         "post_g_b2014", "pretrend_h_b2014", "postavg_h_b2014", "post_h_b2014",
                         "pretrend_joint"]
    ant = got["anticipation_g_b2014"]
    assert (ant["estimate"], ant["std_error"]) == pytest.approx((0.3, 0.2), abs=1e-15)
    assert ant["p_value"] == pytest.approx(0.13361440253771617, rel=1e-12)  # 2 (1 - Phi(1.5))
    pre = got["pretrend_g_b2014"]
    assert pre["terms"] == "g_b2014_pre3 g_b2014_pre2"
    assert (pre["wald"], pre["df"], pre["q"]) == (pytest.approx(2.4, rel=1e-12), 2, 2)
    assert pre["p_value"] == pytest.approx(np.exp(-1.2), rel=1e-12)
    assert pre["p_f"] == pytest.approx(stats.f.sf(1.2, 2, 11), rel=1e-12)
    post = got["postavg_g_b2014"]
    assert post["estimate"] == pytest.approx(0.8, abs=1e-15)
    assert post["std_error"] == pytest.approx(np.sqrt(0.0775), rel=1e-14)
    assert post["p_value"] == pytest.approx(2 * stats.norm.sf(0.8 / np.sqrt(0.0775)), rel=1e-12)
    assert got["postavg_h_b2014"]["p_value"] == pytest.approx(0.04550026389635842, rel=1e-12)
    assert got["pretrend_h_b2014"]["wald"] == pytest.approx(1.0, rel=1e-12)
    assert got["pretrend_h_b2014"]["p_value"] == pytest.approx(0.31731050786291415, rel=1e-12)
    joint = got["pretrend_joint"]
    assert joint["terms"] == "g_b2014_pre3 g_b2014_pre2 h_b2014_pre2"
    assert (joint["wald"], joint["df"], joint["q"]) == (pytest.approx(3.4, rel=1e-12), 3, 3)
    assert joint["p_value"] == pytest.approx(stats.chi2.sf(3.4, 3), rel=1e-12)
    assert not joint["rank_deficient"]
    assert all(r["n_clusters"] == 12 and r["n_obs"] == 500 for r in rows)


def test_joint_pretrend_with_a_rank_deficient_covariance_by_hand():
    """V = L L' with L = [[0.2, 0], [0, 0.3], [0.2, 0.3]] has rank 2 (the third pre term moves
    with the sum of the other two: one treated cluster drives them all). b = L (1, -1) =
    (0.2, -0.3, -0.1) lies in its column space, so W = b' V^+ b = |(1, -1)|^2 = 2 on rank 2
    degrees of freedom (not 3): chi2(2) p = exp(-1). Per group: g W = 1 + 1 = 2 (df 2), h
    W = 0.01 / 0.13."""
    terms = ["g_b2014_pre3", "g_b2014_pre2", "g_b2014_post0", "h_b2014_pre2"]
    coef = dict(zip(terms, [0.2, -0.3, 0.7, -0.1], strict=True))
    L = np.array([[0.2, 0.0], [0.0, 0.3], [0.2, 0.3]])
    v = np.zeros((4, 4))
    pre = [0, 1, 3]
    v[np.ix_(pre, pre)] = L @ L.T
    v[2, 2] = 0.49
    rows = {r["test"]: r for r in nickel.model_tests(fake_fit(coef, v, n_clusters=9), terms,
                                                     ["g", "h"], [{"ban": 2014}], "m")}
    joint = rows["pretrend_joint"]
    assert (joint["q"], joint["df"], joint["rank_deficient"]) == (3, 2, True)
    assert joint["wald"] == pytest.approx(2.0, rel=1e-10)
    assert joint["p_value"] == pytest.approx(np.exp(-1.0), rel=1e-10)
    assert joint["p_f"] == pytest.approx(stats.f.sf(1.0, 2, 8), rel=1e-10)
    assert rows["pretrend_g_b2014"]["wald"] == pytest.approx(2.0, rel=1e-12)
    assert rows["pretrend_h_b2014"]["wald"] == pytest.approx(0.01 / 0.13, rel=1e-12)
    assert rows["postavg_g_b2014"]["p_value"] == pytest.approx(2 * stats.norm.sf(1.0),
                                                               rel=1e-12)


# --------------------------------------------------------------------------- the stage's files
@pytest.fixture(scope="module")
def stage_files(spec, chain, tmp_path_factory):
    """event_study_outputs on the synthetic chain: every model of the spec, the tests, the
    permutation check; the files it writes, read back."""
    folder = tmp_path_factory.mktemp("nickel_outputs")
    (folder / "tables").mkdir()
    (folder / "figures").mkdir()
    with contextlib.redirect_stdout(io.StringIO()):
        nickel.event_study_outputs(chain, spec, folder, folder)
    return SimpleNamespace(folder=folder,
                           tests=pd.read_csv(folder / "nickel_event_tests.csv"),
                           models=pd.read_csv(folder / "nickel_event_models.csv"),
                           placebo=pd.read_csv(folder / "nickel_placebo_exporters.csv"))


def test_event_models_file_holds_every_model_with_its_own_terms(stage_files):
    models = stage_files.models
    assert list(dict.fromkeys(models["model"])) == list(EXPECTED)
    for model_id, (*_, fixed_effects, terms) in EXPECTED.items():
        part = models[models["model"] == model_id]
        assert part["term"].tolist() == terms, model_id
        assert part["formula"].str.endswith(f"| {fixed_effects}").all()
    dates = models[models["model"] == "placebo_dates"]
    assert dates["n_obs"].iloc[0] == len(EXPORTERS) * len(PARTNERS) * len(CODES) * 4


def test_event_tests_file_p_values_are_two_sided_and_use_every_term(stage_files):
    tests, models = stage_files.tests, stage_files.models
    estimates = models.set_index(["model", "term"])["estimate"]
    z_rows = tests[tests["test"].str.match(r"(postavg|anticipation)_")]
    assert len(z_rows) > 20
    for row in z_rows.itertuples():
        terms = row.terms.split()
        mean = np.mean([estimates[(row.model, t)] for t in terms])
        assert row.estimate == pytest.approx(mean, rel=1e-8, abs=1e-12)
        assert row.p_value == pytest.approx(2 * stats.norm.sf(abs(row.estimate / row.std_error)),
                                            rel=1e-6)
    wald = tests[tests["test"].str.match(r"(pretrend|post)_")]
    for row in wald.itertuples():
        assert row.q == len(row.terms.split())
        assert row.p_value == pytest.approx(stats.chi2.sf(row.wald, row.df), rel=1e-6,
                                            abs=1e-300)
        assert row.p_f == pytest.approx(stats.f.sf(row.wald / row.df, row.df,
                                                   row.n_clusters - 1), rel=1e-6)
    for model_id, part in tests[tests["model"] != "permutation"].groupby("model", sort=False):
        per_window = part[part["test"].str.match(r"pretrend_(ore|down)_b")]
        every = " ".join(per_window["terms"])
        joint = part[part["test"] == "pretrend_joint"]
        if every:
            assert joint["terms"].item() == every, model_id
            assert joint["q"].item() == len(every.split())
            pre_terms = [t for t in EXPECTED[model_id][4] if "_pre" in t
                         and not t.startswith("phl_")]
            assert sorted(every.split()) == sorted(pre_terms)
        else:  # no free pre-period year: reference and anticipation fill the pre-ban years
            assert joint.empty and model_id in ("ref_pre_announcement", "placebo_dates")


def test_placebo_set_is_the_other_exporters_with_the_treated_one_dropped(stage_files):
    placebo, tests = stage_files.placebo, stage_files.tests
    assert set(placebo.loc[placebo["role"] == "treated", "exporter"]) == {"IDN"}
    assert sorted(placebo.loc[placebo["role"] == "placebo", "exporter"].unique()) == \
        ["MYS", "PHL", "THA"]
    # PHL's placebo is the placebo_phl model of the spec (IDN dropped), term for term
    from_model = tests.set_index(["model", "test"])
    phl = placebo[placebo["exporter"] == "PHL"].set_index(["group", "ban"])
    for group in ("ore", "down"):
        for ban in (2014, 2020):
            row = from_model.loc[("placebo_phl", f"postavg_{group}_b{ban}")]
            assert phl.loc[(group, ban), "mean_post"] == pytest.approx(row["estimate"], rel=1e-8)
            assert phl.loc[(group, ban), "se"] == pytest.approx(row["std_error"], rel=1e-6)
    perm = tests[tests["model"] == "permutation"].set_index("test")
    assert list(perm.index) == ["perm_ore_b2014", "perm_ore_b2020", "perm_down_b2014",
                                "perm_down_b2020"]
    for (group, ban), part in placebo.groupby(["group", "ban"]):
        treated = part[part["role"] == "treated"].iloc[0]
        others = part[part["role"] == "placebo"]
        hits = int((others["t"].abs() >= abs(treated["t"])).sum())
        row = perm.loc[f"perm_{group}_b{ban}"]
        assert row["n_placebo"] == 3 and row["smallest_attainable_p"] == 0.25
        assert row["p_perm_t"] == (1 + hits) / 4
        assert "placebo exporters (PHL MYS THA)" in row["description"]


def test_placebo_set_never_holds_the_treated_exporter_even_if_not_dropped(spec, chain):
    """With ``permutation.drop_exporters`` empty, IDN stays in the placebo fits' sample but
    is never a placebo of itself (its |t| would always count against itself)."""
    open_spec = {**spec, "event_study": {**spec["event_study"],
                                         "permutation": {"base_model": "main",
                                                         "drop_exporters": []}}}
    main = open_spec["event_study"]["models"][0]
    frame, terms, formula, groups = nickel.model_frame(chain, open_spec, main)
    fit = nickel.fit_ppml(frame, formula)
    table, p = nickel.permutation_check(chain, open_spec, fit, terms, groups)
    assert sorted(table.loc[table["role"] == "placebo", "exporter"].unique()) == \
        ["MYS", "PHL", "THA"]
    assert (p["n_placebo_exporters"] == 3).all()
    assert (p["placebo_exporters"] == "PHL MYS THA").all()


# --------------------------------------------------------------------------- units of the tables
def test_chain_tables_in_their_units(spec, tmp_path):
    """Extract values are thousand USD. The stage-mix table prints USD million; the
    downstream-share table keeps exporters with over USD 1 m (1,000 thousand USD) of nickel
    exports to China over the years: IDN (USD 2.5 bn), PHL (USD 1.0005 m) in, MYS (USD 0.999 m)
    out, THA (nothing to China) out."""
    rows = [  # year, hs6, exporter, importer, value (thousand USD)
        (2013, "260400", "IDN", "CHN", 2_000_000.0), (2013, "720260", "IDN", "CHN", 500_000.0),
        (2015, "720260", "IDN", "CHN", 1_500.0), (2015, "750210", "IDN", "JPN", 9_999.0),
        (2012, "260400", "PHL", "CHN", 600.5), (2019, "750110", "PHL", "CHN", 400.0),
        (2014, "260400", "MYS", "CHN", 999.0), (2014, "260400", "THA", "JPN", 50_000.0),
    ]
    extract = pd.DataFrame(rows, columns=["year", "hs6", "exporter", "importer", "value_kusd"])
    extract["quantity_t"] = np.nan
    (tmp_path / "tables").mkdir()
    (tmp_path / "figures").mkdir()
    with contextlib.redirect_stdout(io.StringIO()):
        chain, mix = nickel.chain_outputs(extract, spec, tmp_path, tmp_path)
    assert len(chain) == len(rows)
    share = (tmp_path / "tables" / "nickel_downstream_share.md").read_text()
    header = next(line for line in share.splitlines() if line.startswith("|"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["year", "IDN", "PHL"]
    table = (tmp_path / "tables" / "nickel_stage_mix.md").read_text()
    lines = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()
             if line.startswith("|")]
    assert lines[0][2:6] == ["ore (USD m)", "intermediate (USD m)", "refined (USD m)",
                             "total (USD m)"]
    cells = next(cells for cells in lines if cells[:2] == ["IDN", "2013"])
    # exporter, year, ore, intermediate, refined (USD m), total (USD m), downstream share
    assert cells == ["IDN", "2013", "2000.0", "500.0", "0.0", "2500.0", "0.2"]
    idn_2015 = mix.set_index(["exporter", "year"]).loc[("IDN", 2015)]
    assert idn_2015["intermediate"] == 1_500.0 and idn_2015["refined"] == 0.0  # JPN is not China
