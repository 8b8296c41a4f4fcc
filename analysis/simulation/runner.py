"""Load and run the stock-flow models of ``specs/sd/``: PySD as the reference runner, the
vectorised engine for many runs, policy schedules from dated measures, Monte Carlo bands.

- :func:`load` parses and compiles a model file (:mod:`analysis.simulation.mdl`,
  :mod:`analysis.simulation.engine`); :meth:`SimulationModel.run` runs n parameter sets at once.
- :func:`run_pysd` runs the same file in PySD 3.14 (translated once into the cache folder, never
  beside the model): the reference the engine is tested against, and the runner of the single
  calibrated run the stage checks.
- :func:`step_schedule` turns dated steps (a measure in force from a date, a scenario's change
  from a date) into the lookup points PySD and the engine both read (``model.run(params=...)``):
  a step at date d is the pair of points (d - 1e-6, old), (d, new).
- :func:`latin_hypercube` and :func:`monte_carlo` draw parameter sets over ranges (SALib's Latin
  hypercube) and summarise the runs as 5, 50 and 95% quantiles per variable and year.
"""

from __future__ import annotations

import datetime as dt
import shutil
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.simulation import engine, mdl

STEP_EPSILON = 1e-6  # years between the two points of a step (about 30 seconds)
QUANTILES = (0.05, 0.5, 0.95)


def decimal_year(value: str | dt.date | float) -> float:
    """``2014-01-12`` -> 2014 + 11/365 (day of the year over the days of that year); ``YYYY-MM``
    is the first of the month, ``YYYY`` 1 January; numbers pass through."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        parts = [int(p) for p in value.strip().split("-")]
        while len(parts) < 3:
            parts.append(1)
        value = dt.date(*parts)
    first = dt.date(value.year, 1, 1)
    days = (dt.date(value.year + 1, 1, 1) - first).days
    return value.year + (value - first).days / days


def step_schedule(steps: Iterable[tuple[float, float]], initial: float = 0.0,
                  span: tuple[float, float] = (1990.0, 2100.0)) -> tuple[np.ndarray, np.ndarray]:
    """Lookup points of a step function: ``initial`` before the first step, then each
    ``(time, value)`` from its time on (sorted; a later step at the same time wins)."""
    points = [(span[0], initial)]
    current = initial
    for time, value in sorted(steps, key=lambda s: s[0]):
        if not span[0] < time < span[1]:
            raise ValueError(f"a step at {time} lies outside {span}")
        points.append((time - STEP_EPSILON, current))
        points.append((time, float(value)))
        current = float(value)
    points.append((span[1], current))
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    return xs, ys


def schedule_value(schedule: tuple[np.ndarray, np.ndarray], time: float) -> float:
    """A schedule's value at a time (linear interpolation, as the model reads it)."""
    return float(np.interp(time, schedule[0], schedule[1]))


# --------------------------------------------------------------------------- models
@dataclass
class SimulationModel:
    """A parsed and compiled model file."""

    model: mdl.Model
    compiled: engine.CompiledModel

    @property
    def path(self) -> Path:
        return self.model.path

    @property
    def sha256(self) -> str:
        return self.model.sha256

    def defaults(self) -> dict[str, float]:
        """{constant name as written: value in the file}."""
        return {e.name: e.value for e in self.model.of_kind("constant")}

    def ranges(self) -> dict[str, tuple[float, float]]:
        """{constant name as written: (low, high)} for constants with a two-sided range."""
        out = {}
        for eq in self.model.of_kind("constant"):
            if eq.limits and None not in eq.limits:
                out[eq.name] = (float(eq.limits[0]), float(eq.limits[1]))
        return out

    def name(self, name: str) -> str:
        """The name as the file writes it (KeyError naming the file if there is none)."""
        return self.model[name].name

    def run(self, params: Mapping[str, float | np.ndarray] | None = None,
            lookups: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
            **kwargs) -> dict[str, np.ndarray]:
        """:meth:`analysis.simulation.engine.CompiledModel.run`."""
        return self.compiled.run(params, lookups, **kwargs)


@lru_cache(maxsize=8)
def _load(path: str, sha256: str) -> SimulationModel:
    model = mdl.parse_model(Path(path))
    return SimulationModel(model, engine.compile_model(model))


def load(path: Path | str) -> SimulationModel:
    """Parse and compile a model file (kept in memory per file content)."""
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"{path}: model file is missing")
    import hashlib

    return _load(str(path), hashlib.sha256(path.read_bytes()).hexdigest())


# --------------------------------------------------------------------------- PySD
def pysd_dir() -> Path:
    """Folder where PySD's translations of the model files live (``data/cache/sd``)."""
    from analysis.data import cache

    return cache.cache_dir() / "sd"


def pysd_model(path: Path | str):
    """The PySD model of a file, translated once per file content into :func:`pysd_dir`
    (PySD writes its ``.py`` beside the model it reads, so the file is copied there first)."""
    import pysd

    path = Path(path)
    model = load(path)
    folder = pysd_dir() / f"{path.stem}-{model.sha256[:16]}"
    target = folder / path.name
    translated = target.with_suffix(".py")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if translated.exists():
            try:
                return pysd.load(str(translated))
            except Exception as error:  # noqa: BLE001 - a damaged translation is made again
                print(f"[scenarios] PySD translation {translated.name} unusable ({error}); "
                      "translated again", flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        return pysd.read_vensim(str(target))


def run_pysd(path: Path | str, params: Mapping[str, float] | None = None,
             lookups: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
             time_step: float | None = None, final_time: float | None = None,
             return_columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Run a model file in PySD: constants in ``params``, lookups replaced by the points in
    ``lookups`` (PySD's ``model.run(params={name: pandas.Series})``). Returns PySD's frame
    (index: time; columns: Vensim names)."""
    model = pysd_model(path)
    values: dict[str, object] = dict(params or {})
    for name, (xs, ys) in (lookups or {}).items():
        values[name] = pd.Series(np.asarray(ys, dtype=float), index=np.asarray(xs, dtype=float))
    kwargs = {}
    if time_step is not None or final_time is not None:
        kwargs["final_time"] = final_time
        kwargs["time_step"] = time_step
        kwargs["saveper"] = time_step
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.run(params=values, return_columns=list(return_columns)
                         if return_columns else None, **{k: v for k, v in kwargs.items()
                                                         if v is not None})


# --------------------------------------------------------------------------- Monte Carlo
def latin_hypercube(ranges: Mapping[str, tuple[float, float]], runs: int, seed: int
                    ) -> dict[str, np.ndarray]:
    """``runs`` Latin-hypercube draws, uniform over each (low, high), from SALib's sampler
    (``SALib.sample.latin``); a range with low == high is held fixed."""
    from SALib.sample import latin

    free = {k: v for k, v in ranges.items() if v[1] > v[0]}
    fixed = {k: v[0] for k, v in ranges.items() if v[1] <= v[0]}
    out = {k: np.full(runs, float(v)) for k, v in fixed.items()}
    if free:
        problem = {"num_vars": len(free), "names": list(free),
                   "bounds": [list(map(float, v)) for v in free.values()]}
        sample = latin.sample(problem, runs, seed=seed)
        out.update({name: sample[:, i] for i, name in enumerate(free)})
    return out


def quantile_table(values: np.ndarray, years: Sequence[int], variable: str,
                   quantiles: Sequence[float] = QUANTILES) -> pd.DataFrame:
    """``variable, year, p05, p50, p95`` from an array (years × draws)."""
    q = np.quantile(values, quantiles, axis=1)
    return pd.DataFrame({"variable": variable, "year": np.asarray(years, dtype=int),
                         "p05": q[0], "p50": q[1], "p95": q[2]})


def monte_carlo(model: SimulationModel, fixed: Mapping[str, float],
                ranges: Mapping[str, tuple[float, float]],
                lookups: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                runs: int, seed: int, annual: Sequence[str] = (),
                levels: Sequence[str] = (), first_year: int | None = None,
                batch: int = 1000) -> dict[str, object]:
    """Latin-hypercube Monte Carlo of one scenario.

    ``fixed`` constants hold in every run, ``ranges`` are drawn (:func:`latin_hypercube`).
    ``annual`` flows are integrated over each year; ``levels`` (stocks, shares) are read at
    the end of each year (the last step before the next 1 January, i.e. the value at
    ``year + 1 - dt``). Returns ``draws`` (the parameter sets), ``years`` and ``values``
    {variable: array years × runs}."""
    draws = latin_hypercube(ranges, runs, seed)
    dt_ = model.model.control["time step"]
    per_year = round(1 / dt_)
    values: dict[str, list[np.ndarray]] = {v: [] for v in (*annual, *levels)}
    years = None
    for start in range(0, runs, batch):
        part = {k: v[start:start + batch] for k, v in draws.items()}
        params = {**fixed, **part}
        result = model.run(params, lookups, n=len(next(iter(part.values())))
                           if part else 1, annual=annual, record=levels)
        years = result["years"]
        for name in annual:
            values[name].append(result[f"annual:{mdl.normalise(name)}"])
        for name in levels:
            series = result[mdl.normalise(name)]
            # the value at the last step of each year: index (year - t0 + 1) * per_year - 1
            index = (np.arange(len(years)) + 1) * per_year - 1
            values[name].append(series[index])
    stacked = {k: np.concatenate(v, axis=1) for k, v in values.items()}
    if first_year is not None:
        keep = years >= first_year
        years = years[keep]
        stacked = {k: v[keep] for k, v in stacked.items()}
    return {"draws": draws, "years": years, "values": stacked}


def time_monte_carlo(spec_path: Path | str, runs: int = 1000, repeats: int = 3,
                     scenario: str = "combined_extreme",
                     measures_path: Path | str | None = None) -> dict[str, object]:
    """Wall-clock time of ``runs`` Monte Carlo runs of one scenario of the spec, as the
    scenarios stage runs them (every output of the spec, the whole horizon, one process),
    the median of ``repeats``; for ``make bench``. Policy schedules from the measures file;
    constants at the model file's values (the calibrated ones do not change the time)."""
    import time

    from analysis.simulation import inputs, scenario_spec

    spec_path = Path(spec_path)
    spec = scenario_spec.load_spec(spec_path)
    root = spec_path.resolve().parent.parent
    model = load(root / spec.model)
    measures = pd.read_csv(measures_path or root / "data" / "raw" / "rn_measures.csv",
                           dtype=str, keep_default_na=False)
    parts: dict[str, list] = {}
    for entry in spec.measures:
        parts.setdefault(entry.schedule, []).append(
            inputs.measure_schedule(measures, entry.measure, entry.levels))
    lookups = {k: inputs.combine_schedules(v) for k, v in parts.items()}
    chosen = spec.scenario(scenario)
    ranges = {model.name(n): model.ranges()[model.name(n)] for n in spec.uncertain}
    fixed = {}
    for name, value in chosen.parameters.items():
        number = scenario_spec.parameter_value(value)
        if isinstance(number, tuple):
            ranges[model.name(name)] = number
        else:
            fixed[model.name(name)] = number
    for schedule, steps in chosen.policies.items():
        name = model.name(schedule)
        base = lookups.get(name) or (np.array([p[0] for p in model.model[name].points]),
                                     np.array([p[1] for p in model.model[name].points]))
        lookups[name] = inputs.override_schedule(base, [(s.start, s.value) for s in steps])
    annual = [*spec.outputs.flows, *spec.outputs.means,
              *{n for pair in spec.outputs.shares.values() for n in pair}]
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        monte_carlo(model, fixed, ranges, lookups, runs, spec.monte_carlo.seed,
                    annual=list(dict.fromkeys(annual)), levels=spec.outputs.stocks)
        seconds.append(time.perf_counter() - started)
    control = model.model.control
    steps = round((control["final time"] - control["initial time"]) / control["time step"])
    return {"scenario": scenario, "runs": runs, "seconds": float(np.median(seconds)),
            "all_seconds": [round(s, 3) for s in seconds], "steps": steps,
            "equations": len(model.model.equations), "drawn_parameters": len(ranges)}
