"""Model inputs from the project's data: policy schedules from the coded measures, the price
schedule from the Pink Sheet, observed flows for the calibration, unit values for export values.

Pure functions over frames the stage has read (the stage does the I/O and the hash checks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from analysis.simulation.runner import decimal_year, step_schedule


class InputError(ValueError):
    """Input data that do not fit what the model needs (names the measure or series)."""


# --------------------------------------------------------------------------- measures
MEASURE_COLUMNS = ("measure_id", "country", "intensity", "effective", "lifted", "changes")


def _changes(text: object) -> list[tuple[float, float]]:
    """``"2017-01-11=2;2020-01-01=4"`` -> [(decimal year, intensity), ...]."""
    if not isinstance(text, str) or not text.strip():
        return []
    out = []
    for part in text.split(";"):
        date, _, level = part.partition("=")
        out.append((decimal_year(date.strip()), float(level)))
    return sorted(out)


def intensity_steps(measure: Mapping[str, object]) -> list[tuple[float, float]]:
    """A coded measure as dated steps of its intensity: the intensity from ``effective``, each
    documented change from its date, 0 from ``lifted`` (blank: still in force). A lift date
    before the effective date means the measure never entered into force (no steps)."""
    start = decimal_year(str(measure["effective"]))
    lifted = measure.get("lifted")
    end = decimal_year(str(lifted)) if isinstance(lifted, str) and lifted.strip() else None
    if end is not None and end <= start:
        return []
    steps = [(start, float(measure["intensity"]))]
    steps += [(t, v) for t, v in _changes(measure.get("changes")) if end is None or t < end]
    if end is not None:
        steps.append((end, 0.0))
    return steps


def measure_schedule(measures: pd.DataFrame, measure_id: str, levels: Mapping[int, float],
                     span: tuple[float, float] = (1990.0, 2100.0)
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Lookup points of a policy schedule from one measure: at each date the value that
    ``levels`` gives the measure's intensity then (an intensity not in ``levels``, and no
    measure in force, give 0). A measure id that is not in the file is an error."""
    missing = [c for c in MEASURE_COLUMNS if c not in measures.columns]
    if missing:
        raise InputError(f"the measures file lacks the columns {missing}")
    rows = measures[measures["measure_id"] == measure_id]
    if rows.empty:
        raise InputError(f"measure {measure_id!r} is not in the measures file")
    steps = intensity_steps(rows.iloc[0].to_dict())
    levels = {float(k): float(v) for k, v in levels.items()}
    values = [(t, levels.get(v, 0.0)) for t, v in steps]
    if not any(v for _, v in values):
        raise InputError(f"measure {measure_id!r}: none of its intensities "
                         f"{sorted({v for _, v in steps})} is mapped by levels "
                         f"{sorted(levels)}; the schedule would be empty")
    return step_schedule(values, 0.0, span)


def combine_schedules(schedules: Sequence[tuple[np.ndarray, np.ndarray]]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Several schedules of one input as one: at every date the largest value (two measures
    in force at once count once, at the stronger level)."""
    xs = np.unique(np.concatenate([s[0] for s in schedules]))
    ys = np.max([np.interp(xs, s[0], s[1]) for s in schedules], axis=0)
    return xs, ys


def override_schedule(schedule: tuple[np.ndarray, np.ndarray],
                      steps: Iterable[tuple[float, float]],
                      span: tuple[float, float] = (1990.0, 2100.0)
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A schedule changed from dates on: before the first new step it is the old schedule;
    from each step on, the step's value."""
    steps = sorted(steps)
    if not steps:
        return schedule
    xs, ys = schedule
    first = steps[0][0]
    keep = xs < first - 1e-9
    points = list(zip(xs[keep], ys[keep], strict=True))
    before = float(np.interp(first - 2e-6, xs, ys))
    current = before
    for time, value in steps:
        points.append((time - 1e-6, current))
        points.append((time, float(value)))
        current = float(value)
    points.append((span[1], current))
    points.sort(key=lambda p: p[0])
    return np.array([p[0] for p in points]), np.array([p[1] for p in points])


# --------------------------------------------------------------------------- prices
def monthly_price_schedule(prices: pd.DataFrame, series: str = "Nickel",
                           span: tuple[float, float] = (1990.0, 2100.0)
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Lookup points of a monthly price: one point at the middle of each month with a price
    (decimal year ``year + (month - 0.5) / 12``), held flat before the first and after the
    last month (the model's lookups hold their end values)."""
    rows = prices[(prices["series"] == series)].dropna(subset=["price"])
    if rows.empty:
        raise InputError(f"no {series} prices")
    rows = rows.sort_values("date")
    xs = (rows["year"] + (rows["month"] - 0.5) / 12).to_numpy(dtype=float)
    ys = rows["price"].to_numpy(dtype=float)
    return (np.concatenate([[span[0]], xs, [span[1]]]),
            np.concatenate([[ys[0]], ys, [ys[-1]]]))


def mean_price(prices: pd.DataFrame, years: tuple[int, int], series: str = "Nickel") -> float:
    """Mean of the monthly prices over whole years ``years`` (inclusive)."""
    rows = prices[(prices["series"] == series) & prices["year"].between(*years)]
    if rows["price"].isna().any() or len(rows) != 12 * (years[1] - years[0] + 1):
        raise InputError(f"{series} prices are incomplete in {years[0]}-{years[1]}")
    return float(rows["price"].mean())


def annual_mean_price(prices: pd.DataFrame, series: str = "Nickel") -> pd.Series:
    rows = prices[prices["series"] == series].dropna(subset=["price"])
    return rows.groupby("year")["price"].mean()


# --------------------------------------------------------------------------- observed flows
def baci_series(flows: pd.DataFrame, exporter: str, importer: str, hs6: str,
                years: Sequence[int], name: str, quantity: str = "quantity_t",
                value: str = "value_kusd") -> pd.DataFrame:
    """Annual tonnes of one BACI flow in thousand tonnes (``series, year, value``, plus the
    trade value in thousand USD); a year without a row is a zero flow (BACI has no rows for
    zero trade). A row with a value but no quantity is an error: it cannot be read as 0."""
    rows = flows[(flows["exporter"] == exporter) & (flows["importer"] == importer)
                 & (flows["hs6"] == hs6) & flows["year"].isin(years)]
    if rows.duplicated("year").any():
        raise InputError(f"{name}: more than one row per year")
    if rows[quantity].isna().any():
        year = int(rows.loc[rows[quantity].isna(), "year"].iloc[0])
        raise InputError(f"{name}: BACI reports a value but no quantity in {year}")
    by_year = rows.set_index("year")
    return pd.DataFrame({"series": name, "year": list(years),
                         "value": [float(by_year[quantity].get(y, 0.0)) / 1000 for y in years],
                         "trade_kusd": [float(by_year[value].get(y, 0.0)) for y in years]})


def production_series(production: pd.DataFrame, country_code: int, material: str,
                      years: Sequence[int], name: str) -> pd.DataFrame:
    """World Mining Data production of one country in thousand tonnes; years the source does
    not cover are NaN (not observed, unlike a zero flow)."""
    rows = production[(production["material"] == material)
                      & (production["country_code"] == country_code)]
    if rows.empty:
        raise InputError(f"{name}: World Mining Data has no {material} for code {country_code}")
    by_year = rows.set_index("year")["production"]
    return pd.DataFrame({"series": name, "year": list(years),
                         "value": [float(by_year[y]) / 1000 if y in by_year.index else np.nan
                                   for y in years]})


def payability(value_kusd: pd.Series, tonnes_kt: pd.Series, content: float,
               price: pd.Series) -> float:
    """Median over years with trade of value / (nickel content × price): the export unit value
    per tonne of contained nickel relative to the nickel price. ``value_kusd`` in thousand USD,
    ``tonnes_kt`` in thousand tonnes gross, ``price`` in USD per tonne (annual mean)."""
    frame = pd.DataFrame({"v": value_kusd, "q": tonnes_kt, "p": price}).dropna()
    frame = frame[(frame["q"] > 0) & (frame["v"] > 0)]
    if frame.empty:
        return float("nan")
    ratio = (frame["v"] * 1000) / (frame["q"] * 1000 * content * frame["p"])
    return float(ratio.median())
