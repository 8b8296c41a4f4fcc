"""Benchmarks (``make bench``), kept out of the test suite on purpose.

Timing part (the default; one run on one machine, which it names):

1. The machine: CPU model (``lscpu``), logical cores, platform, load average before and after.
2. ``make clean && make all`` run here, warm (raw data, ``.venv`` and the parse cache present):
   the wall-clock time, and each stage's time and share from ``outputs/timings.json``. Three
   runs by default (``--runs``): ``warm`` (every cache as it is: unchanged robustness checks
   are read back), ``results-cold`` (parsed tables cached, every robustness check estimated
   again: a copy of ``data/cache/parsed`` only) and ``serial`` (as ``warm`` with ``JOBS=1``,
   one stage at a time).
3. Per-model estimation time, ours against pyfixest on the same models and data
   (``estimation_panel.parquet``), in three tiers: point estimates with CRV1; plus CRV3 and
   Driscoll–Kraay (ours also computes the cluster influence); plus the WCR bootstrap of the
   key terms (B = 99,999 Webb draws; pyfixest: ``Feols.wildboottest`` once per term).
4. The WCR bootstrap alone, B = 99,999 Webb draws for one coefficient of M4 with the year
   effects re-estimated in every draw: ours against pyfixest's ``Feols.wildboottest`` (which
   one-hot encodes every fixed effect), same seed, with both p-values.

Size part (``--size``): a Monte Carlo of test size with G = 11 unbalanced clusters under a true
null, in a design with genuine within-country dependence that the fixed effects do NOT remove:
AR(1) errors within each country, an AR(1) regressor, a common year shock and heteroskedastic
countries. Rejection rates at 5% of CRV1 with t(G-1), CRV3 (MacKinnon–Nielsen–Webb scaling)
with t(G-1), the WCR bootstrap (Webb) and the WCR Rademacher enumeration (all 2^11 draws,
identity draws counted), all refitting the year effects; and of the three
randomisation-inference schemes of the robustness battery (whole country paths, whole years of
the cross-section, joint time shifts) with the studentised CRV1 t; for reference, also the
within-country year shuffle with the raw coefficient that the battery used before (removed
from it: it destroys the serial correlation of the regressor). Monte Carlo s.e.
sqrt(p(1-p)/reps) is printed beside each rate. The RI sizes feed the placebo rule of
:data:`analysis.variants.RI_SCHEMES`.

Run ``python -m analysis.stages.bench --help``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy import stats

from analysis import config
from analysis.econometrics import inference, power

STAGE_ORDER = ["fetch", "clean", "supply_risk", "indices", "nickel", "diagnostics", "models",
               "robustness", "report"]


def stage_timings(path: Path | None = None) -> pd.DataFrame:
    """Stage, seconds and share of the summed stage time, from ``outputs/timings.json``."""
    path = path or config.OUTPUTS / "timings.json"
    if not path.exists():
        return pd.DataFrame(columns=["stage", "seconds", "share"])
    timings = json.loads(path.read_text())
    order = [s for s in STAGE_ORDER if s in timings] + sorted(set(timings) - set(STAGE_ORDER))
    table = pd.DataFrame([{"stage": s, "seconds": float(timings[s])} for s in order])
    table["share"] = table["seconds"] / table["seconds"].sum()
    return table


def machine() -> dict:
    """What the timings were measured on: CPU model, logical cores, platform, load average."""
    import os
    import platform
    import subprocess

    model = ""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                      if line.startswith("Model name")), "")
    except OSError:
        pass
    return {"cpu": model or platform.processor() or "unknown", "logical_cores": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version(),
            "load_average": tuple(round(v, 2) for v in os.getloadavg())}


def run_pipeline(label: str, jobs: int = 2, results_cold: bool = False) -> dict:
    """``make clean && make all JOBS=jobs`` in the project root; returns the wall-clock time,
    the stage timings and the load average before and after. ``results_cold``: the caches
    are a fresh folder holding only a copy of the parsed tables (robustness checks are all
    estimated again; the real ``data/cache`` is not touched)."""
    import os
    import shutil
    import subprocess
    import tempfile

    from analysis.data import cache

    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    scratch = None
    if results_cold:
        scratch = Path(tempfile.mkdtemp(prefix="bench-cache-"))
        parsed = cache.cache_dir() / "parsed"
        if parsed.exists():
            shutil.copytree(parsed, scratch / "parsed")
        env["PIPELINE_CACHE_DIR"] = str(scratch)
    try:
        subprocess.run(["make", "--no-print-directory", "clean"], cwd=config.ROOT, env=env,
                       check=True, capture_output=True)
        load_before = os.getloadavg()
        started = time.perf_counter()
        done = subprocess.run(["make", "--no-print-directory", "all", f"JOBS={jobs}"],
                              cwd=config.ROOT, env=env, capture_output=True, text=True,
                              check=False)
        wall = time.perf_counter() - started
        load_after = os.getloadavg()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"make all failed ({label}):\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-2000:]}")
    return {"label": label, "jobs": jobs, "wall": wall, "stages": stage_timings(),
            "load_before": tuple(round(v, 2) for v in load_before),
            "load_after": tuple(round(v, 2) for v in load_after)}


def _median_time(function, repeats: int, *args) -> float:
    """Median wall-clock seconds of ``function(*args)`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def _crv1_only(frame: pd.DataFrame, dependent: str, regressors: list[str]) -> np.ndarray:
    """Our point estimates and CRV1 SEs alone (FE partialled out, OLS, CRV1 with pyfixest's
    small-sample factor): the engine of the randomisation inference."""
    wide = inference.partial_out_fixed_effects(frame, [dependent, *regressors], ["iso3", "year"])
    X, y = wide[regressors].to_numpy(), wide[dependent].to_numpy()
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    n_abs = inference.count_absorbed_parameters(frame, ["iso3", "year"], "iso3")
    V = inference.crv1_vcov(X, y - X @ beta, frame["iso3"].to_numpy(), n_absorbed=n_abs)
    return np.sqrt(np.diag(V))


def _pyfixest_fit(frame: pd.DataFrame, formula: str):
    import warnings

    import pyfixest as pf
    from pyfixest.demeaners import MapDemeaner

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # tight demeaning and no singleton removal: the same sample and numbers as ours
        # (tests/test_wcr_refit.py); integer cluster codes for wildboottest's kernels
        return pf.feols(formula, data=frame, vcov={"CRV1": "cid"}, fixef_rm="none",
                        demeaner=MapDemeaner(fixef_tol=1e-12))


def estimation_ratio(repeats: int = 3, B: int = 99_999) -> pd.DataFrame:
    """Seconds per model (median of ``repeats``), ours and pyfixest, in three tiers (module
    doc, item 3), on estimation_panel.parquet."""
    import warnings

    from analysis.econometrics.estimation import estimate
    from analysis.econometrics.moderated import load_model_spec

    spec = load_model_spec()
    path = config.DATA_PROCESSED / "estimation_panel.parquet"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make models` first")
    frame = pd.read_parquet(path)
    frame["cid"] = pd.factorize(frame["iso3"], sort=True)[0]
    seed = int(spec["bootstrap"]["seed"])
    boot = {"B": B, "weights": "webb", "seed": seed, "rademacher_enumeration": False,
            "all_terms": False}
    dependent = spec["dependent"]

    def ours_crv1(name, regressors, key):
        _crv1_only(frame, dependent, regressors)

    def ours_more(name, regressors, key):
        estimate(frame, name, dependent, regressors, key_terms=key)

    def ours_wcr(name, regressors, key):
        estimate(frame, name, dependent, regressors, key_terms=key, bootstrap=boot)

    def theirs_crv1(formula, key):
        _pyfixest_fit(frame, formula).se()

    def theirs_more(formula, key, wcr=False):
        fit = _pyfixest_fit(frame, formula)
        fit.se()
        fit.vcov({"CRV3": "cid"}).se()
        fit.vcov("DK", vcov_kwargs={"lag": 2, "time_id": "year", "panel_id": "cid"}).se()
        if wcr:
            fit.vcov({"CRV1": "cid"})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for term in key:
                    fit.wildboottest(reps=B, param=term, weights_type="webb", seed=seed)

    def theirs_wcr(formula, key):
        theirs_more(formula, key, wcr=True)

    tiers = [("point + CRV1", ours_crv1, theirs_crv1), ("+ CRV3, DK", ours_more, theirs_more),
             (f"+ WCR of the key terms, B = {B:,}", ours_wcr, theirs_wcr)]
    rows = []
    for name, terms in spec["models"].items():
        regressors = [*terms, *spec["controls"]]
        key = [t for t in spec["key_terms"] if t in regressors]
        formula = f"{dependent} ~ {' + '.join(regressors)} | iso3 + year"
        for tier, ours, theirs in tiers:
            ours(name, regressors, key)  # warm-up: imports, numba compilation
            theirs(formula, key)
            t_ours = _median_time(ours, repeats, name, regressors, key)
            t_theirs = _median_time(theirs, repeats, formula, key)
            rows.append({"model": name, "tier": tier, "key_terms": len(key), "ours_s": t_ours,
                         "pyfixest_s": t_theirs, "ratio": t_ours / t_theirs})
    return pd.DataFrame(rows)


def wcr_comparison(model: str = "M4", term: str = "gpr:rn", B: int = 99_999,
                   repeats: int = 3) -> dict:
    """Seconds (median of ``repeats``) for the WCR bootstrap-t of one coefficient with B Webb
    draws and the year effects re-estimated in every draw: ours (cluster design + bootstrap)
    and pyfixest's ``Feols.wildboottest`` on its fitted model (same data, same seed); with
    both p-values."""
    import warnings

    from analysis.econometrics.moderated import load_model_spec

    spec = load_model_spec()
    frame = pd.read_parquet(config.DATA_PROCESSED / "estimation_panel.parquet")
    frame["cid"] = pd.factorize(frame["iso3"], sort=True)[0]
    regressors = [*spec["models"][model], *spec["controls"]]
    seed = int(spec["bootstrap"]["seed"])
    formula = f"{spec['dependent']} ~ {' + '.join(regressors)} | iso3 + year"
    fit = _pyfixest_fit(frame, formula)
    result: dict = {}

    def ours():
        design = inference.cluster_design(frame, spec["dependent"], regressors,
                                          ["iso3", "year"], "iso3")
        result["ours"] = inference.wild_cluster_restricted_bootstrap(
            design.y, design.X, design.clusters, regressors.index(term), B=B, weights="webb",
            seed=seed, n_absorbed=design.n_absorbed).p_value

    def theirs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fit.wildboottest(reps=B, param=term, weights_type="webb", seed=seed)
        result["pyfixest"] = float(out["Pr(>|t|)"])

    ours()
    theirs()  # warm-up: numba compilation
    t_ours, t_theirs = _median_time(ours, repeats), _median_time(theirs, repeats)
    # draws with one weight for every cluster reproduce the sample (|t*| = |t|): ours sets
    # them exactly and does not count them (ties excluded, as wildboottest's ">"), wildboottest
    # counts them or not by rounding noise, so the two p differ by at most this many / B
    v, _ = inference.draw_wild_weights(int(frame["iso3"].nunique()), B, "webb", seed)
    constant = int(np.sum(np.ptp(v, axis=0) == 0))
    return {"model": model, "term": term, "B": B, "ours_s": t_ours, "pyfixest_s": t_theirs,
            "ratio": t_ours / t_theirs, "p_ours": result["ours"],
            "p_pyfixest": result["pyfixest"], "constant_draws": constant,
            "clusters": int(frame["iso3"].nunique())}


def _model_fits(frame: pd.DataFrame, spec: dict) -> list:
    """M1–M5 on the estimation panel without the bootstrap (designs, residuals, periods)."""
    from analysis.econometrics.moderated import fit_models

    return fit_models(frame, spec, bootstrap={}, progress=False)


def _null_errors(result, rng: np.random.Generator, reps: int, rho: float | None,
                 calibration_reps: int = 200) -> tuple[power.SimulationDesign, np.ndarray, dict]:
    """The simulation design of a fitted model and ``reps`` null error draws (N x reps, country
    effects partialled out): AR(1) within country at the residuals' Nickell-corrected
    autocorrelation (or ``rho``), country scales matching the residual SDs."""
    design = result.design
    sim = power.SimulationDesign.from_cluster_design(design, result.periods,
                                                     dk_bandwidth=result.dk_bandwidth)
    resid = design.y - design.X @ (sim.xx_inv @ (design.X.T @ design.y))
    ar = power.estimate_ar1(resid, design.clusters, result.periods)
    if rho is not None:
        ar = {**ar, "rho": float(rho)}
    target = np.sqrt(np.array([np.mean(resid[sim.unit_codes == g] ** 2)
                               for g in range(sim.n_units)]))
    scales = power.calibrate_scales(sim, target, ar["rho"], rng, calibration_reps)
    errors = power.ar1_errors(rng, design.clusters, result.periods, ar["rho"], reps, scales)
    return sim, errors, ar


def _shuffle_reference(sim: power.SimulationDesign, j: int, Y: np.ndarray, draws: int,
                       rng: np.random.Generator) -> np.ndarray:
    """p-values of the scheme the first build used (removed from the battery): x_j shuffled
    across years within each country, raw coefficient, everything else fixed (FWL)."""
    W = np.delete(sim.X, j, axis=1)
    Q, _ = np.linalg.qr(W)

    def residual(a: np.ndarray) -> np.ndarray:
        return a - Q @ (Q.T @ a)

    x = sim.X[:, j]
    P = np.repeat(x[:, None], draws, axis=1)
    for g in range(sim.n_units):
        rows = np.flatnonzero(sim.unit_codes == g)
        for d in range(draws):
            P[rows, d] = x[rng.permutation(rows)]
    Pt, xt, Yt = residual(P), residual(x), residual(Y)
    b_star = (Pt.T @ Yt) / np.sum(Pt**2, axis=0)[:, None]  # (draws, R)
    b_obs = (xt @ Yt) / np.sum(xt**2)
    hits = np.sum(np.abs(b_star) >= np.abs(b_obs)[None, :] * (1 - 1e-12), axis=0)
    return (1 + hits) / (1 + draws)


def _ri_sizes(reps: int, ri_draws: int, rng: np.random.Generator, rho: float | None,
              chunk: int = 50) -> list[dict]:
    """Size of every randomisation-inference check of specs/robustness.yaml on the real
    design: the check's own estimation frame, regressors and permutations
    (:class:`analysis.variants.PermutationDesign`, the same statistic as the battery), with
    the outcome replaced by ``X b~ + u``: ``b~`` the check model's estimate with the tested
    coefficient set to 0 (so the other effects, main effects included, are the estimated
    ones), ``u`` the null errors of :func:`_null_errors`. A fresh set of ``ri_draws``
    permutations for every ``chunk`` replications."""
    from analysis.econometrics import variants
    from analysis.econometrics.estimation import estimate
    from analysis.econometrics.moderated import load_model_spec, model_variables

    models = load_model_spec()
    battery = variants.load_robustness_spec()
    base = {"dependent": models["dependent"], "terms": models["models"][battery["base_model"]],
            "controls": models["controls"], "centre": models["centre"],
            "main_sample": model_variables(models)}
    panel, entity, cluster = variants.variant_panel(None, config.DATA_PROCESSED)
    out = []
    for check in battery["checks"]:
        if not check.get("permute") or check.get("panel"):
            continue
        perm = check["permute"]
        model = variants.model_for(check, base, models)
        term = perm.get("term", perm["variable"])
        interaction = variants.ri_mode(model, perm["variable"], term)
        frame = variants.prepare_variant(panel, check, model, entity)
        regressors = [*model["terms"], *model["controls"]]
        result = estimate(frame, check["id"], model["dependent"], regressors)
        sim, errors, ar = _null_errors(result, rng, reps, rho)
        j = regressors.index(term)
        y = sim.X @ sim.restricted_fit(result.design.y, j)
        # back to panel rows: the design's rows are the frame's (sorted by entity, year)
        keys = pd.MultiIndex.from_frame(frame[["iso3", "year"]])
        position = pd.Series(np.arange(len(frame)), index=keys)
        where = pd.MultiIndex.from_frame(panel[["iso3", "year"]])
        rows = position.reindex(where).to_numpy()
        design = variants.PermutationDesign(panel, check, model, perm["variable"], [term],
                                              entity, cluster, interaction=interaction)
        source = (check.get("replace") or {}).get(perm["variable"], perm["variable"])
        grid, grid_rows, grid_cols = variants.permutation_grid(panel, frame, source, entity)
        rejections = 0
        for start in range(0, reps, chunk):
            block = errors[:, start:start + chunk] + y[:, None]
            outcomes = np.full((block.shape[1], len(panel)), np.nan)
            inside = ~np.isnan(rows)
            outcomes[:, inside] = block[rows[inside].astype(int)].T
            grids = variants.permuted_grids(grid, perm["scheme"], ri_draws, rng)
            values = np.stack([variants.grid_values(g, grid_rows, grid_cols) for g in grids])
            t_obs = design.t_stats_many(design.observed_values()[None, :], outcomes)[0]
            t_star = design.t_stats_many(values, outcomes)
            hits = np.sum(np.abs(t_star) >= np.abs(t_obs)[None, :] * (1 - 1e-12), axis=0)
            rejections += int(np.sum((1 + hits) / (1 + ri_draws) <= 0.05))
        rate = rejections / reps
        out.append({"method": f"RI {check['id']} ({perm['scheme']}, {term})",
                    "model": check.get("model", battery["base_model"]), "term": term,
                    "rejection_rate": rate, "mc_se": float(np.sqrt(max(rate * (1 - rate),
                                                                       1e-12) / reps)),
                    "check": check["id"], "variable": perm["variable"],
                    "scheme": perm["scheme"], "rho": ar["rho"]})
    return out


def real_design_size(reps: int = 1000, B: int = 399, ri_draws: int = 199,
                     seed: int = 20261122, rho: float | None = None) -> pd.DataFrame:
    """Rejection rates at 5% under a true null of every test the pipeline reports, on the real
    estimation design (``estimation_panel.parquet``: its regressors, clusters, years and
    sample, so G, T and N are the findings table's).

    For each model M1–M5 and key term: outcomes ``y = u`` with ``u`` AR(1) within country at the
    Nickell-corrected autocorrelation of the model's residuals (or ``rho``) and country scales
    matching the residual SDs (:mod:`analysis.econometrics.power`). CRV1, CRV3 (MNW) and Driscoll–Kraay
    t tests (t(G-1), t(G-1), t(T-1); DK with the Bartlett bandwidth the models stage uses) and
    the WCR bootstrap (Webb, ``B`` draws, fresh weights for every 64 samples; and the
    Rademacher enumeration, identity draws counted) are invariant to the other coefficients,
    so zero is as good as any. The randomisation-inference checks of the battery are not: see
    :func:`_ri_sizes`. Reference only: the within-country shuffle the first build used."""
    from analysis.econometrics.moderated import load_model_spec

    spec = load_model_spec()
    path = config.DATA_PROCESSED / "estimation_panel.parquet"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make models` first")
    frame = pd.read_parquet(path)
    rng = np.random.default_rng(seed)
    rows = []
    for result in _model_fits(frame, spec):
        terms = [t for t in spec["key_terms"] if t in result.regressors]
        sim, errors, ar = _null_errors(result, rng, reps, rho)
        Y = sim.partial_nested(errors)
        G, T = result.n_clusters, result.n_periods
        crit_g, crit_t = stats.t(G - 1).ppf(0.975), stats.t(T - 1).ppf(0.975)
        enum, _ = inference.draw_wild_weights(G, 2**G, "rademacher", full_enumeration=True)
        for term in terms:
            j = result.regressors.index(term)
            st = sim.statistics(Y, j)
            webb = np.concatenate([
                sim.wcr_pvalues(Y[:, s:s + 64], j, inference.draw_wild_weights(
                    G, B, "webb", int(rng.integers(2**31)))[0]) for s in range(0, reps, 64)])
            rademacher = _enumeration_pvalues(sim, Y, j, enum)
            rejected = {"CRV1": np.abs(st["t_crv1"]) > crit_g,
                        "CRV3": np.abs(st["t_crv3"]) > crit_g,
                        "DK": np.abs(st["t_dk"]) > crit_t,
                        "WCR": webb <= 0.05, "WCR Rademacher": rademacher <= 0.05}
            if result.name == "M1":
                rejected["reference: within-country shuffle, raw b"] = _shuffle_reference(
                    sim, j, Y, 199, rng) <= 0.05
            for method, hits in rejected.items():
                rate = float(np.mean(hits))
                rows.append({"method": method, "model": result.name, "term": term,
                             "rejection_rate": rate,
                             "mc_se": float(np.sqrt(max(rate * (1 - rate), 1e-12) / reps)),
                             "rho": ar["rho"]})
    rows += _ri_sizes(reps, ri_draws, rng, rho)
    table = pd.DataFrame(rows)
    table["reps"], table["G"] = reps, int(frame["iso3"].nunique())
    table["T"], table["N"] = int(frame["year"].nunique()), len(frame)
    return table


def _enumeration_pvalues(sim: power.SimulationDesign, Y: np.ndarray, j: int, v: np.ndarray
                         ) -> np.ndarray:
    """WCR p-values with all 2^G Rademacher sign vectors, ties counted (the pipeline's
    ``p_wcr_rademacher``): the identity draws reproduce |t|, so ``p = p_exclude + 2/2^G``
    up to other exact ties, which have probability zero."""
    return sim.wcr_pvalues(Y, j, v) + 2 / v.shape[1]


def size_record(table: pd.DataFrame, design: dict, settings: dict) -> dict:
    """What ``--record`` writes to specs/inference_sizes.yaml: the design, the simulation
    settings, for each method its largest rejection rate over the key terms and each term's,
    and each RI check's rate with the permutation it sized."""
    methods = {}
    plain = table[~table["method"].str.startswith("RI ")]
    for method, part in plain.groupby("method", sort=False):
        methods[method] = {"size": round(float(part["rejection_rate"].max()), 4),
                           "terms": {f"{r.model} {r.term}": round(float(r.rejection_rate), 4)
                                     for r in part.itertuples()}}
    ri = {}
    for r in table[table["method"].str.startswith("RI ")].itertuples():
        ri[r.check] = {"variable": r.variable, "scheme": r.scheme, "term": r.term,
                       "model": r.model, "size": round(float(r.rejection_rate), 4)}
    return {"design": design, "simulation": settings, "methods": methods, "ri": ri}


def write_size_record(record: dict, path: Path) -> Path:
    from analysis.data.io import atomic_write_text

    header = ("# Size at 5% of every test the pipeline reports, under a true null on the real\n"
              "# estimation design. Written by `make bench BENCH_ARGS=\"--size --record\"`\n"
              "# (analysis/stages/bench.py real_design_size); read by the models stage (table notes) and\n"
              "# the robustness stage (an RI check is a test only if its size lies in\n"
              "# [0.025, 0.075]). The stages ignore it, and say so, when `design` differs from\n"
              "# the estimation sample: re-run the bench after the sample changes.\n")
    return atomic_write_text(path, header + yaml.safe_dump(record, sort_keys=False,
                                                           allow_unicode=True))


def bootstrap_time() -> float:
    """Seconds for M1–M5 with every bootstrap of the models stage (specs/models.yaml)."""
    from analysis.econometrics.moderated import fit_models, load_model_spec

    spec = load_model_spec()
    frame = pd.read_parquet(config.DATA_PROCESSED / "estimation_panel.parquet")
    started = time.perf_counter()
    fit_models(frame, spec, progress=False)
    return time.perf_counter() - started


RUNS = {"warm": {"jobs": 2, "results_cold": False},
        "results-cold": {"jobs": 2, "results_cold": True},
        "serial": {"jobs": 1, "results_cold": False}}


def _seconds(v: float) -> str:
    return f"{v:.1f}"


def readme_table(info: dict, runs: list[dict], ratio: pd.DataFrame | None,
                 wcr: dict | None) -> str:
    """The README's benchmark table (Markdown), from one bench run."""
    header = (f"Machine: {info['cpu']}, {info['logical_cores']} logical cores, "
              f"{info['platform']}, Python {info['python']}.")
    lines = [header, "",
             "| what | result |", "|---|---|"]
    for run in runs:
        stages = run["stages"]
        parts = ", ".join(f"{r.stage} {r.seconds:.1f} s ({r.share:.0%})"
                          for r in stages.itertuples())
        lines.append(f"| `make clean && make all`, {run['label']} (JOBS={run['jobs']}; load "
                     f"{run['load_before'][0]:.2f} before) | {run['wall']:.1f} s wall; stages: "
                     f"{parts}; sum {stages['seconds'].sum():.1f} s |")
    if ratio is not None:
        for tier, part in ratio.groupby("tier", sort=False):
            lines.append(f"| per model, ours / pyfixest, {tier} | "
                         f"{part['ratio'].min():.2f}–{part['ratio'].max():.2f}× (M1–M5; "
                         f"ours {part['ours_s'].min() * 1000:.0f}–"
                         f"{part['ours_s'].max() * 1000:.0f} ms, pyfixest "
                         f"{part['pyfixest_s'].min() * 1000:.0f}–"
                         f"{part['pyfixest_s'].max() * 1000:.0f} ms) |")
    if wcr is not None:
        lines.append(f"| WCR, B = {wcr['B']:,} Webb draws, {wcr['model']} {wcr['term']}, year "
                     f"effects refitted: ours / pyfixest `wildboottest` | "
                     f"{wcr['ours_s']:.3f} s / {wcr['pyfixest_s']:.3f} s = "
                     f"{wcr['ratio']:.2f}× (p {wcr['p_ours']:.5f} / {wcr['p_pyfixest']:.5f}; "
                     f"the {wcr['constant_draws']} draws with one weight for all "
                     f"{wcr['clusters']} clusters reproduce t: not counted by ours, counted by "
                     "rounding noise in wildboottest) |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.stages.bench",
        description="Stage runtimes of make clean && make all run here (warm), our estimation "
        "time versus pyfixest's (CRV1; + CRV3, DK; + WCR) and the WCR bootstrap with B = 99,999 "
        "against pyfixest's wildboottest, on a named machine; with --size also a Monte Carlo of "
        "the size of CRV1, CRV3, WCR and randomisation-inference tests with 11 unbalanced "
        "clusters, AR(1) errors and an AR(1) regressor.")
    parser.add_argument("--runs", default="warm,results-cold,serial",
                        help="pipeline runs, comma-separated from: warm, results-cold, serial; "
                        "'none' reads the last outputs/timings.json instead")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument("--size", action="store_true",
                        help="also the Monte Carlo of test size on the real design")
    parser.add_argument("--reps", type=int, default=1000, help="Monte Carlo replications")
    parser.add_argument("--bootstrap-draws", type=int, default=399,
                        help="Webb draws per replication")
    parser.add_argument("--ri-draws", type=int, default=199,
                        help="random permutations per replication (countries, years)")
    parser.add_argument("--rho", type=float, default=None,
                        help="AR(1) coefficient of the simulated errors (default: each model's "
                        "residuals, Nickell-corrected); e.g. 0.9 for a near unit root")
    parser.add_argument("--record", action="store_true",
                        help="with --size: write the sizes to specs/inference_sizes.yaml, "
                        "which the models and robustness stages read")
    args = parser.parse_args(argv)
    info = machine()
    print("== Machine ==")
    print(f"{info['cpu']}; {info['logical_cores']} logical cores; {info['platform']}; Python "
          f"{info['python']}; load average (1, 5, 15 min) {info['load_average']}", flush=True)
    runs = []
    names = [] if args.runs == "none" else [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        parser.error(f"unknown runs {unknown}; use {sorted(RUNS)} or none")
    for name in names:
        print(f"\n== make clean && make all: {name} ==", flush=True)
        run = run_pipeline(name, **RUNS[name])
        runs.append(run)
        stages = run["stages"]
        print(stages.to_string(index=False, formatters={"seconds": _seconds,
                                                        "share": "{:.1%}".format}))
        print(f"wall clock {run['wall']:.1f} s (JOBS={run['jobs']}); sum of stage times "
              f"{stages['seconds'].sum():.1f} s; the rest is Python start-up and imports"
              f"{' and waiting' if run['jobs'] == 1 else ', minus the overlap of parallel stages'}"
              f"; load average before {run['load_before']}, after {run['load_after']}",
              flush=True)
    if not runs:
        print("\n== Stage runtimes (last make all, outputs/timings.json) ==")
        timings = stage_timings()
        print(timings.to_string(index=False) if not timings.empty
              else "(no timings recorded yet)")
    ratio = wcr = None
    if (config.DATA_PROCESSED / "estimation_panel.parquet").exists():
        print("\n== Estimation time per model, ours vs pyfixest (median of "
              f"{args.repeats}) ==", flush=True)
        print("tiers: point + CRV1 (ours: FE partialled out, OLS, CRV1: the RI engine); "
              "+ CRV3, DK (ours: the models stage's estimate(): PanelOLS with Driscoll-Kraay, "
              "CRV1, CRV3 in two scalings, cluster influence; pyfixest: feols, vcov CRV3 and "
              "DK); + WCR of the key terms (ours: estimate() with the bootstrap; pyfixest: "
              "wildboottest per key term)", flush=True)
        ratio = estimation_ratio(args.repeats)
        print(ratio.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        for tier, part in ratio.groupby("tier", sort=False):
            print(f"mean ratio ours/pyfixest, {tier}: {part['ratio'].mean():.2f}")
        print(f"M1–M5 as the models stage runs them (B = 99,999 Webb draws for every term + "
              f"2^G enumeration): {bootstrap_time():.1f}s", flush=True)
        print("\n== WCR bootstrap, B = 99,999 Webb draws, year effects refitted: ours vs "
              "pyfixest Feols.wildboottest ==", flush=True)
        wcr = wcr_comparison(repeats=args.repeats)
        print(f"{wcr['model']} {wcr['term']}: ours {wcr['ours_s']:.3f} s, pyfixest "
              f"{wcr['pyfixest_s']:.3f} s, ratio {wcr['ratio']:.2f}; p ours "
              f"{wcr['p_ours']:.6f}, pyfixest {wcr['p_pyfixest']:.6f} (G = {wcr['clusters']}: "
              f"{wcr['constant_draws']} of the draws give every cluster the same weight and "
              "reproduce |t|; ours does not count them, wildboottest counts them by rounding "
              f"noise, so the p may differ by up to {wcr['constant_draws']}/B)")
    else:
        print("\n(no estimation panel: run `make models` for the timing comparison)")
    print("\n== Scenarios: 1,000 Monte Carlo runs of one scenario (vectorised engine) ==",
          flush=True)
    from analysis.simulation.runner import time_monte_carlo

    mc = time_monte_carlo(config.SPECS / "scenarios.yaml")
    print(f"{mc['runs']} runs of {mc['scenario']} ({mc['equations']} equations, {mc['steps']} "
          f"steps, {mc['drawn_parameters']} parameters drawn): {mc['seconds']:.2f} s (median of "
          f"{mc['all_seconds']}); PySD runs one parameter set at a time (its time per run: "
          "outputs/scenario_pysd_check.json)", flush=True)
    info_after = machine()
    print(f"\nload average at the end: {info_after['load_average']}")
    print("\n== README benchmark table ==")
    print(readme_table(info, runs, ratio, wcr), flush=True)
    if not args.size:
        return 0
    from analysis.econometrics.moderated import SIZES_FILE, design_summary, load_model_spec

    frame = pd.read_parquet(config.DATA_PROCESSED / "estimation_panel.parquet")
    design = design_summary(frame, load_model_spec())
    print(f"\n== Monte Carlo size at 5% on the real design (N = {design['n_obs']}, G = "
          f"{design['n_clusters']}, T = {design['n_periods']}), {args.reps} replications, "
          f"B = {args.bootstrap_draws} Webb draws, {args.ri_draws} permutations ==", flush=True)
    started = time.perf_counter()
    size = real_design_size(args.reps, args.bootstrap_draws, args.ri_draws, rho=args.rho)
    elapsed = time.perf_counter() - started
    print(size[["method", "model", "term", "rejection_rate", "mc_se", "rho"]].to_string(
        index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"({elapsed:.1f}s)")
    summary = size.groupby("method", sort=False)["rejection_rate"].agg(["min", "max"])
    print("\nlargest and smallest rejection rate over the key terms:")
    print(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    settings = {"reps": args.reps, "bootstrap_draws": args.bootstrap_draws,
                "ri_draws": args.ri_draws,
                "rho": "estimated per model" if args.rho is None else args.rho,
                "seconds": round(elapsed, 1)}
    record = size_record(size, design, settings)
    print("\n== README size table ==")
    print(size_readme_table(size, design, settings), flush=True)
    if args.record:
        write_size_record(record, SIZES_FILE)
        print(f"\nrecorded in {SIZES_FILE.relative_to(config.ROOT)}: the models and robustness "
              "stages read it (make all again to update the notes and RI labels)")
    return 0


def size_readme_table(size: pd.DataFrame, design: dict, settings: dict) -> str:
    """The README's size table: each method's rejection rate per key term (Markdown)."""
    caption = (f"Real design: N = {design['n_obs']}, G = {design['n_clusters']}, "
               f"T = {design['n_periods']}; {settings['reps']} replications, "
               f"B = {settings['bootstrap_draws']}, {settings['ri_draws']} permutations, "
               f"rho {settings['rho']}.")
    lines = [caption, "",
             "| method | model | term | size at 5% (MC s.e.) |", "|---|---|---|---|"]
    for r in size.itertuples():
        lines.append(f"| {r.method} | {r.model} | {r.term} | {r.rejection_rate:.1%} "
                     f"({r.mc_se:.1%}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
