"""The behaviour patterns METHODS.md section 10 asks of the calibrated nickel model, measured
on a run's annual flows (kt of nickel a year).

1. Ore exports near zero in a ban year: Indonesia's ore exports to China in every full ban
   year below ``near_zero`` (5%) of their level in the last year before the first ban.
2. Intermediates rising with a one-to-two-year lag: after the first ban starts (year b),
   Indonesia's NPI exports to China first exceed ``lag_share`` (10%) of their level in the last
   pre-Covid year of the calibration window one or two years later (b + 1 or b + 2), and rise
   every year from b to b + 2.
3. Pre-ban export rushes: ore exports in the year before each ban exceed those two years
   before it.
4. Philippine ore rising in 2014-2016: the Philippines' mean ore exports to China in the
   three years from the first ban exceed those of the year before it.

Each pattern gives what the run shows and a verdict; the stage writes the table and the
suite asserts it on a calibrated run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def full_ban_years(schedule: tuple[np.ndarray, np.ndarray], years: Sequence[int]
                   ) -> list[int]:
    """Years in which the ban schedule is 1 on every day (sampled weekly)."""
    out = []
    for year in years:
        grid = year + np.arange(0, 1, 1 / 52)
        if np.all(np.interp(grid, schedule[0], schedule[1]) >= 1 - 1e-9):
            out.append(int(year))
    return out


def ban_starts(schedule: tuple[np.ndarray, np.ndarray], years: Sequence[int]) -> list[int]:
    """Years in which a ban (schedule reaching 1) starts."""
    out = []
    for year in years:
        before = np.interp(year - 1e-3, schedule[0], schedule[1])
        inside = np.interp(year + np.arange(0, 1, 1 / 52), schedule[0], schedule[1])
        if before < 1 - 1e-9 and np.any(inside >= 1 - 1e-9):
            out.append(int(year))
    return out


def nickel_patterns(flows: pd.DataFrame, bans: Sequence[int], starts: Sequence[int],
                    reference_year: int, names: Mapping[str, str] | None = None,
                    near_zero: float = 0.05, lag_share: float = 0.10) -> pd.DataFrame:
    """``pattern, model, verdict`` from annual flows indexed by year (columns: the model's
    variable names, renamed through ``names``)."""
    names = {"ore": "Indonesian ore exports to China", "npi": "Indonesian NPI exports to China",
             "phl": "Philippine ore exports to China", **(names or {})}
    ore, npi, phl = (flows[names[k]] for k in ("ore", "npi", "phl"))
    first = min(starts)
    rows = []
    level = float(ore.loc[first - 1])
    in_run = [y for y in bans if y in ore.index]
    worst = max(float(ore.loc[y]) for y in in_run) if in_run else np.nan
    rows.append({"pattern": "ore exports near zero in ban years",
                 "model": f"largest ban-year ore exports {worst:.1f} kt, "
                 f"{worst / level:.1%} of {first - 1} ({len(in_run)} ban years)",
                 "verdict": "reproduced" if in_run and worst <= near_zero * level
                 else "missed"})
    target = lag_share * float(npi.loc[reference_year])
    after = [y for y in range(first, reference_year + 1) if float(npi.loc[y]) > target]
    lag = (after[0] - first) if after else None
    rising = all(float(npi.loc[y + 1]) > float(npi.loc[y]) for y in range(first, first + 2))
    rows.append({"pattern": "intermediates rise with a one-to-two-year lag",
                 "model": f"NPI exports pass {lag_share:.0%} of their {reference_year} level "
                 f"{lag} years after the {first} ban; rising {first}-{first + 2}: {rising}",
                 "verdict": "reproduced" if lag in (1, 2) and rising else "missed"})
    rushes = []
    for start in starts:
        if start - 2 in ore.index:
            rushes.append((start, float(ore.loc[start - 1]), float(ore.loc[start - 2])))
    rows.append({"pattern": "pre-ban export rushes",
                 "model": "; ".join(f"{s - 1}: {a:.0f} kt vs {s - 2}: {b:.0f} kt"
                                    for s, a, b in rushes),
                 "verdict": "reproduced" if rushes and all(a > b for _, a, b in rushes)
                 else "missed"})
    before, during = float(phl.loc[first - 1]), float(phl.loc[first:first + 2].mean())
    rows.append({"pattern": "Philippine ore rises after the first ban",
                 "model": f"mean {first}-{first + 2}: {during:.0f} kt against {before:.0f} kt "
                 f"in {first - 1}",
                 "verdict": "reproduced" if during > before else "missed"})
    return pd.DataFrame(rows)
