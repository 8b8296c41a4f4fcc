"""Sobol indices of a model output with the parameters grouped into disruption nodes.

SALib's Sobol' design with groups (``problem["groups"]``; Saltelli 2002, Saltelli et al. 2010):
N base points of a Sobol' sequence give N (G + 2) runs for G groups (first-order and total
indices, no second order); ``SALib.analyze.sobol.analyze`` returns, per group, the first-order
index S1 (the share of the output's variance explained by the group alone) and the total index
ST (alone and in interaction with the others), with bootstrap confidence intervals. The
ranking of the disruption nodes is by ST.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd


def grouped_sobol(evaluate: Callable[[dict[str, np.ndarray]], np.ndarray],
                  ranges: Mapping[str, tuple[float, float]], groups: Mapping[str, str],
                  base_samples: int, seed: int) -> pd.DataFrame:
    """Sobol indices of ``evaluate`` (parameter arrays -> output array) per group.

    ``ranges``: {parameter: (low, high)} drawn uniformly; ``groups``: {parameter: group}. A
    group needs at least one parameter with low < high. Returns ``group, parameters, S1,
    S1_conf, ST, ST_conf, rank`` (rank 1 = largest ST), and attaches the output's variance and
    the number of runs as ``frame.attrs``.
    """
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    names = [n for n, (lo, hi) in ranges.items() if hi > lo]
    missing = [n for n in names if n not in groups]
    if missing:
        raise ValueError(f"parameters without a group: {missing}")
    problem = {"num_vars": len(names), "names": names,
               "bounds": [list(map(float, ranges[n])) for n in names],
               "groups": [groups[n] for n in names]}
    sample = sobol_sample.sample(problem, base_samples, calc_second_order=False, seed=seed,
                                 scramble=True)
    output = np.asarray(evaluate({n: sample[:, i] for i, n in enumerate(names)}), dtype=float)
    if output.shape != (sample.shape[0],):
        raise ValueError(f"the output has shape {output.shape}, expected ({sample.shape[0]},)")
    result = sobol_analyze.analyze(problem, output, calc_second_order=False, seed=seed,
                                   print_to_console=False)
    labels = list(dict.fromkeys(problem["groups"]))
    frame = pd.DataFrame({
        "group": labels,
        "parameters": [", ".join(n for n in names if groups[n] == g) for g in labels],
        "S1": result["S1"], "S1_conf": result["S1_conf"],
        "ST": result["ST"], "ST_conf": result["ST_conf"]})
    frame["rank"] = frame["ST"].rank(ascending=False, method="min").astype(int)
    frame.attrs["variance"] = float(np.var(output))
    frame.attrs["runs"] = int(sample.shape[0])
    return frame.sort_values("rank").reset_index(drop=True)


def window_total(annual: np.ndarray, years: Sequence[int], window: tuple[int, int]
                 ) -> np.ndarray:
    """Sum of annual values (years × draws) over the years of ``window`` (inclusive)."""
    years = np.asarray(years)
    keep = (years >= window[0]) & (years <= window[1])
    if not keep.any():
        raise ValueError(f"no year of {window} in the run")
    return annual[keep].sum(axis=0)
