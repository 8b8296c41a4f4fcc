"""Benchmarks (``make bench``), kept out of the test suite on purpose.

1. Runtime of each pipeline stage, as recorded by the last ``make all`` (outputs/timings.json).
2. Estimation time of our engine (linearmodels PanelOLS + CRV1/CRV3/Driscoll–Kraay, no
   bootstrap) against pyfixest ``feols`` with CRV1, on the same models and the same data.
3. A Monte Carlo of test size with 11 clusters: the rejection rate at 5% of a true null for
   CRV1 with normal critical values, CRV1 with t(G-1), and the WCR bootstrap (Webb).

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


def monte_carlo_size(reps: int = 1000, clusters: int = 11, years: int = 24, B: int = 999,
                     seed: int = 20261122) -> pd.DataFrame:
    """Rejection rates at 5% under H0: beta = 0, two-way FE, 11 clusters of unequal size.

    DGP: y = a_i + g_t + 0*x + 0.5*z + u, with x and u both carrying a country component
    (so the score is correlated within countries) and heteroskedasticity across countries.
    """
    rng = np.random.default_rng(seed)
    sizes = np.linspace(years // 2, years, clusters).astype(int)  # unbalanced panel
    iso = np.repeat(np.arange(clusters), sizes)
    year = np.concatenate([np.arange(s) for s in sizes])
    t_crit = stats.t(clusters - 1).ppf(0.975)
    reject = {"CRV1, normal": 0, "CRV1, t(G-1)": 0, "WCR bootstrap (Webb)": 0}
    frame = pd.DataFrame({"iso3": iso, "year": year})
    scale = np.linspace(0.5, 2.0, clusters)[iso]
    for _ in range(reps):
        x = rng.normal(size=clusters)[iso] + rng.normal(size=len(iso))
        z = rng.normal(size=len(iso))
        u = (rng.normal(size=clusters)[iso] + rng.normal(size=len(iso))) * scale
        frame["y"] = rng.normal(size=clusters)[iso] + rng.normal(size=years)[year] + 0.5 * z + u
        frame["x"], frame["z"] = x, z
        wide = inference.partial_out_fixed_effects(frame, ["y", "x", "z"], ["iso3", "year"])
        X, y = wide[["x", "z"]].to_numpy(), wide["y"].to_numpy()
        beta = np.linalg.lstsq(X, y, rcond=None)[0]
        n_abs = inference.count_absorbed_parameters(frame, ["iso3", "year"], "iso3")
        V = inference.crv1_vcov(X, y - X @ beta, iso, n_absorbed=n_abs)
        t = beta[0] / np.sqrt(V[0, 0])
        reject["CRV1, normal"] += abs(t) > 1.959964
        reject["CRV1, t(G-1)"] += abs(t) > t_crit
        wcr = inference.wild_cluster_restricted_bootstrap(y, X, iso, 0, B=B, weights="webb",
                                                          seed=int(rng.integers(2**31)))
        reject["WCR bootstrap (Webb)"] += wcr.p_value < 0.05
    rows = []
    for method, count in reject.items():
        rate = count / reps
        rows.append({"method": method, "rejection_rate": rate,
                     "mc_se": float(np.sqrt(0.05 * 0.95 / reps)), "reps": reps, "G": clusters})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.bench",
        description="Stage runtimes, our estimation time versus pyfixest, and a Monte Carlo of "
        "the size of CRV1-normal, CRV1-t(G-1) and WCR tests with 11 clusters.")
    parser.add_argument("--reps", type=int, default=1000, help="Monte Carlo replications")
    parser.add_argument("--bootstrap-draws", type=int, default=999)
    args = parser.parse_args(argv)
    print("== Stage runtimes (last make all) ==")
    timings = stage_timings()
    print(timings.to_string(index=False) if not timings.empty else "(no timings recorded yet)")
    if not timings.empty:
        print(f"total: {timings['seconds'].sum():.1f}s")
    print("\n== Estimation time per model: ours (PanelOLS + CRV1/CRV3/DK) vs pyfixest (CRV1) ==")
    ratio = estimation_ratio()
    print(ratio.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"mean ratio ours/pyfixest: {ratio['ratio'].mean():.2f}")
    print(f"\n== Monte Carlo size at 5%, G=11, {args.reps} replications ==")
    started = time.perf_counter()
    size = monte_carlo_size(args.reps, B=args.bootstrap_draws)
    print(size.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"({time.perf_counter() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
