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
:data:`analysis.robustness.RI_SCHEMES`.

Run ``python -m analysis.bench --help``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis import config, inference

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

    from analysis import cache

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

    from analysis.estimation import estimate
    from analysis.models import load_model_spec

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

    from analysis.models import load_model_spec

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


def simulate_null_panel(rng: np.random.Generator, clusters: int = 11, years: int = 24,
                        rho_x: float = 0.8, rho_u: float = 0.8) -> tuple[pd.DataFrame, np.ndarray]:
    """One draw of the size design (H0: beta_x = 0 true).

    Country i is observed in years ``start_i .. years-1``, ``start_i`` from 0 to 14 (panel
    lengths 24 down to 10: unbalanced clusters). For every country-year of the full grid
    ``x_it = rho_x x_i,t-1 + 0.7 eta_t + e_it`` (AR(1), common year shock ``eta_t``), and
    ``y_it = a_i + d_t + 0 x_it + 0.5 z_it + s_i u_it`` with ``u_it = rho_u u_i,t-1 + eps_it``
    (AR(1) within country, stationary start), ``s_i`` from 0.5 to 2 (heteroskedastic
    countries), ``z`` an iid control. Country effects remove the country means, not the
    serial correlation of ``x`` and ``u``: the scores stay correlated within country.
    Returns the observed panel and the full ``clusters x years`` grid of ``x``.
    """
    starts = np.linspace(0, 14, clusters).round().astype(int)
    scale = np.linspace(0.5, 2.0, clusters)
    eta = rng.normal(size=years)
    x = np.empty((clusters, years))
    u = np.empty((clusters, years))
    x[:, 0] = rng.normal(size=clusters) / np.sqrt(1 - rho_x**2) + 0.7 * eta[0]
    u[:, 0] = rng.normal(size=clusters) / np.sqrt(1 - rho_u**2)
    for t in range(1, years):
        x[:, t] = rho_x * (x[:, t - 1] - 0.7 * eta[t - 1]) + 0.7 * eta[t] + rng.normal(
            size=clusters)
        u[:, t] = rho_u * u[:, t - 1] + rng.normal(size=clusters)
    a, d = rng.normal(size=clusters), rng.normal(size=years)
    rows = [(i, t) for i in range(clusters) for t in range(starts[i], years)]
    iso = np.array([r[0] for r in rows])
    year = np.array([r[1] for r in rows])
    z = rng.normal(size=len(rows))
    y = a[iso] + d[year] + 0.5 * z + scale[iso] * u[iso, year]
    frame = pd.DataFrame({"iso3": iso, "year": year, "y": y, "x": x[iso, year], "z": z})
    return frame, x


def _ri_t_stats(design: inference.ClusterDesign, x_draws: np.ndarray,
                studentise: bool = True) -> np.ndarray:
    """CRV1 t of x (column 0 of the design) for each column of ``x_draws`` (raw x values of the
    observed rows under a permutation), everything else of the design held fixed: x is
    re-demeaned within country and residualised on the other columns (FWL) for every draw."""
    codes = pd.factorize(design.clusters, sort=True)[0]
    G = codes.max() + 1
    onehot = np.eye(G)[codes]
    counts = onehot.sum(axis=0)
    xd = x_draws - onehot @ ((onehot.T @ x_draws) / counts[:, None])
    W = design.X[:, 1:]
    WtW = W.T @ W
    xt = xd - W @ np.linalg.solve(WtW, W.T @ xd)
    yt = design.y - W @ np.linalg.solve(WtW, W.T @ design.y)
    sxx = np.sum(xt**2, axis=0)
    b = (xt.T @ yt) / sxx
    resid = yt[:, None] - xt * b[None, :]
    if not studentise:
        return b
    scores = onehot.T @ (xt * resid)
    return b / np.sqrt(np.sum(scores**2, axis=0) / sxx**2)


def monte_carlo_size(reps: int = 4000, clusters: int = 11, years: int = 24, B: int = 399,
                     ri_draws: int = 199, seed: int = 20261122) -> pd.DataFrame:
    """Rejection rates at 5% under H0 in :func:`simulate_null_panel` (see the module doc)."""
    from analysis.robustness import permuted_grids

    rng = np.random.default_rng(seed)
    rng_reference = np.random.default_rng(seed + 1)  # the removed scheme's own stream
    t_crit = stats.t(clusters - 1).ppf(0.975)
    methods = ["CRV1, t(G-1)", "CRV3 (MNW), t(G-1)", "WCR bootstrap (Webb)",
               "WCR Rademacher enumeration", "RI: country paths (countries)",
               "RI: whole years (years)", "RI: joint time shifts (shift)",
               "reference: removed within-country year shuffle, raw b"]
    reject = dict.fromkeys(methods, 0)
    for _ in range(reps):
        frame, grid = simulate_null_panel(rng, clusters, years)
        design = inference.cluster_design(frame, "y", ["x", "z"], ["iso3", "year"], "iso3")
        X, y = design.X, design.y
        beta = np.linalg.lstsq(X, y, rcond=None)[0]
        V1 = inference.crv1_vcov(X, y - X @ beta, design.clusters,
                                 n_absorbed=design.n_absorbed)
        reject["CRV1, t(G-1)"] += abs(beta[0]) / np.sqrt(V1[0, 0]) > t_crit
        V3 = inference.cluster_jackknife_vcov(y, X, design.clusters, "mnw")
        reject["CRV3 (MNW), t(G-1)"] += abs(beta[0]) / np.sqrt(V3[0, 0]) > t_crit
        webb = inference.wild_cluster_restricted_bootstrap(
            y, X, design.clusters, 0, B=B, weights="webb", seed=int(rng.integers(2**31)),
            full_enumeration=False)
        reject["WCR bootstrap (Webb)"] += webb.p_value <= 0.05
        enum = inference.wild_cluster_restricted_bootstrap(
            y, X, design.clusters, 0, B=2**clusters, weights="rademacher",
            full_enumeration=True, ties="include")
        reject["WCR Rademacher enumeration"] += enum.p_value <= 0.05
        iso, year = frame["iso3"].to_numpy(), frame["year"].to_numpy()
        t_obs = _ri_t_stats(design, frame[["x"]].to_numpy())[0]
        for scheme, label in (("countries", "RI: country paths (countries)"),
                              ("years", "RI: whole years (years)"),
                              ("shift", "RI: joint time shifts (shift)")):
            grids = permuted_grids(grid, scheme, ri_draws, rng)
            draws = np.column_stack([g[iso, year] for g in grids])
            t_star = _ri_t_stats(design, draws)
            p = (1 + np.sum(np.abs(t_star) >= abs(t_obs) * (1 - 1e-12))) / (1 + len(grids))
            reject[label] += p <= 0.05
        # the scheme the battery used before issue 8, kept here only to show that the bench
        # detects an invalid scheme: x shuffled across years within each country, raw b
        draws = np.repeat(frame[["x"]].to_numpy(), ri_draws, axis=1)
        for rows_i in frame.groupby("iso3").indices.values():
            for d in range(ri_draws):
                draws[rows_i, d] = draws[rng_reference.permutation(rows_i), d]
        b_star = _ri_t_stats(design, draws, studentise=False)
        b_obs = _ri_t_stats(design, frame[["x"]].to_numpy(), studentise=False)[0]
        p = (1 + np.sum(np.abs(b_star) >= abs(b_obs) * (1 - 1e-12))) / (1 + ri_draws)
        reject["reference: removed within-country year shuffle, raw b"] += p <= 0.05
    rows = []
    for method, count in reject.items():
        rate = count / reps
        rows.append({"method": method, "rejection_rate": rate,
                     "mc_se": float(np.sqrt(max(rate * (1 - rate), 1e-12) / reps)),
                     "reps": reps, "G": clusters})
    return pd.DataFrame(rows)


def bootstrap_time() -> float:
    """Seconds for M1–M5 with every bootstrap of the models stage (specs/models.yaml)."""
    from analysis.models import fit_models, load_model_spec

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
        prog="python -m analysis.bench",
        description="Stage runtimes of make clean && make all run here (warm), our estimation "
        "time versus pyfixest's (CRV1; + CRV3, DK; + WCR) and the WCR bootstrap with B = 99,999 "
        "against pyfixest's wildboottest, on a named machine; with --size also a Monte Carlo of "
        "the size of CRV1, CRV3, WCR and randomisation-inference tests with 11 unbalanced "
        "clusters, AR(1) errors and an AR(1) regressor.")
    parser.add_argument("--runs", default="warm,results-cold,serial",
                        help="pipeline runs, comma-separated from: warm, results-cold, serial; "
                        "'none' reads the last outputs/timings.json instead")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median)")
    parser.add_argument("--size", action="store_true", help="also the Monte Carlo of test size")
    parser.add_argument("--reps", type=int, default=4000, help="Monte Carlo replications")
    parser.add_argument("--bootstrap-draws", type=int, default=399,
                        help="Webb draws per replication")
    parser.add_argument("--ri-draws", type=int, default=199,
                        help="random permutations per replication (countries, years)")
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
    print(f"\n== Monte Carlo size at 5%, G=11 unbalanced, AR(1) x and errors, "
          f"{args.reps} replications ==", flush=True)
    started = time.perf_counter()
    size = monte_carlo_size(args.reps, B=args.bootstrap_draws, ri_draws=args.ri_draws)
    print(size.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"({time.perf_counter() - started:.1f}s)")
    from analysis.robustness import RI_SCHEMES, SIZE_BAND

    print(f"\nRI placebo rule: a scheme is reported as a test only if its size lies in "
          f"{list(SIZE_BAND)} (Bradley's liberal criterion); analysis/robustness.py records:")
    for scheme, info in RI_SCHEMES.items():
        measured = size.loc[size["method"].str.endswith(f"({scheme})"), "rejection_rate"].item()
        if args.reps != 4000 or args.ri_draws != 199:
            print(f"  ({scheme}: recorded values come from the default --reps 4000 --ri-draws 199)")
        verdict = "test" if SIZE_BAND[0] <= measured <= SIZE_BAND[1] else "placebo"
        print(f"  {scheme}: measured {measured:.4f} -> {verdict}; recorded "
              f"{info['bench_size']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
