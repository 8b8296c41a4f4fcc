"""Benchmarks (``make bench``), kept out of the test suite on purpose.

1. Runtime of each pipeline stage, as recorded by the last ``make all`` (outputs/timings.json).
2. Estimation time of our engine (PanelOLS + CRV1/CRV3/Driscoll–Kraay + cluster influence, no
   bootstrap) against pyfixest ``feols`` with CRV1, on the same models and the same data; and
   the time of M1–M5 with every bootstrap (B = 99,999 Webb draws for every term, plus the
   Rademacher enumeration), as the models stage runs them.
3. A Monte Carlo of test size with G = 11 unbalanced clusters under a true null, in a design
   with genuine within-country dependence that the fixed effects do NOT remove: AR(1) errors
   within each country, an AR(1) regressor, a common year shock and heteroskedastic countries.
   Rejection rates at 5% of CRV1 with t(G-1), CRV3 (MacKinnon–Nielsen–Webb scaling) with
   t(G-1), the WCR bootstrap (Webb) and the WCR Rademacher enumeration (all 2^11 draws,
   identity draws counted), all refitting the year effects; and of the three
   randomisation-inference schemes of the robustness battery (whole country paths, whole
   years of the cross-section, joint time shifts) with the studentised CRV1 t; for reference,
   also the within-country year shuffle with the raw coefficient that the battery used before
   (removed from it: it destroys the serial correlation of the regressor). Monte Carlo
   s.e. sqrt(p(1-p)/reps) is printed beside each rate. The RI sizes feed the placebo rule of
   :data:`analysis.robustness.RI_SCHEMES`.

Run ``python -m analysis.bench --help``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
from scipy import stats

from analysis import config, inference


def stage_timings() -> pd.DataFrame:
    path = config.OUTPUTS / "timings.json"
    if not path.exists():
        return pd.DataFrame(columns=["stage", "seconds"])
    timings = json.loads(path.read_text())
    order = ["fetch", "clean", "indices", "models", "robustness", "report"]
    return pd.DataFrame([{"stage": s, "seconds": timings[s]} for s in order if s in timings])


def estimation_ratio(repeats: int = 5) -> pd.DataFrame:
    """Seconds per model for our engine and for pyfixest, on estimation_panel.parquet."""
    import pyfixest as pf

    from analysis.estimation import estimate
    from analysis.models import load_model_spec

    spec = load_model_spec()
    path = config.DATA_PROCESSED / "estimation_panel.parquet"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `make models` first")
    frame = pd.read_parquet(path)
    rows = []
    for name, terms in spec["models"].items():
        regressors = [*terms, *spec["controls"]]
        formula = f"{spec['dependent']} ~ {' + '.join(regressors)} | iso3 + year"
        pf.feols(formula, data=frame, vcov={"CRV1": "iso3"})  # warm-up (compilation)
        estimate(frame, name, spec["dependent"], regressors)
        t0 = time.perf_counter()
        for _ in range(repeats):
            estimate(frame, name, spec["dependent"], regressors)
        ours = (time.perf_counter() - t0) / repeats
        t0 = time.perf_counter()
        for _ in range(repeats):
            pf.feols(formula, data=frame, vcov={"CRV1": "iso3"}).se()
        theirs = (time.perf_counter() - t0) / repeats
        rows.append({"model": name, "ours_s": ours, "pyfixest_s": theirs,
                     "ratio": ours / theirs})
    return pd.DataFrame(rows)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.bench",
        description="Stage runtimes, our estimation time versus pyfixest, and a Monte Carlo of "
        "the size of CRV1, CRV3, WCR and randomisation-inference tests with 11 unbalanced "
        "clusters, AR(1) errors and an AR(1) regressor.")
    parser.add_argument("--reps", type=int, default=4000, help="Monte Carlo replications")
    parser.add_argument("--bootstrap-draws", type=int, default=399,
                        help="Webb draws per replication")
    parser.add_argument("--ri-draws", type=int, default=199,
                        help="random permutations per replication (countries, years)")
    args = parser.parse_args(argv)
    print("== Stage runtimes (last make all) ==")
    timings = stage_timings()
    print(timings.to_string(index=False) if not timings.empty else "(no timings recorded yet)")
    if not timings.empty:
        print(f"total: {timings['seconds'].sum():.1f}s")
    if (config.DATA_PROCESSED / "estimation_panel.parquet").exists():
        print("\n== Estimation time per model: ours (PanelOLS + CRV1/CRV3/DK + influence) vs "
              "pyfixest (CRV1) ==")
        ratio = estimation_ratio()
        print(ratio.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
        print(f"mean ratio ours/pyfixest: {ratio['ratio'].mean():.2f}")
        print(f"M1–M5 with all bootstraps (B = 99,999 Webb for every term + 2^G enumeration): "
              f"{bootstrap_time():.1f}s")
    else:
        print("\n(no estimation panel: run `make models` for the timing comparison)")
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
