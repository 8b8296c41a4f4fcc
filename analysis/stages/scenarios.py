"""Stage scenarios: a calibrated stock-flow model of the Indonesia -> China nickel chain, its
scenarios and extreme shocks, and the rare-earth back-cast (METHODS.md section 10).

Reads (files only): the model files ``specs/sd/nickel.mdl`` and ``specs/sd/rare_earths.mdl``,
the specification ``specs/scenarios.yaml``, ``data/processed/nickel_chain.parquet`` (nickel
stage: BACI HS07 flows), the raw hash-checked inputs ``data/raw/rn_measures.csv`` (dated
measures), ``data/raw/pink_sheet/CMO-Historical-Data-Monthly.xlsx`` (World Bank monthly prices)
and the geopolrisk wheel's ``baci.db`` (HS92 flows: the Philippines' ore) and
``world_mining_data.db`` (production).

Writes:

- ``outputs/scenario_fit.csv``: ``series, window, n, n_material, r2, mape, theil_um, theil_us,
  theil_uc, rmse, note``
  (window ``calibration`` 2010-2019 or ``holdout`` 2020-2024; levels in kt of nickel);
- ``outputs/scenario_parameters.csv``: the calibrated parameters, ``parameter, value, lower,
  upper, at_bound, std_error``; ``outputs/scenario_calibration.json``: costs of every start;
- ``outputs/scenarios.csv``: ``scenario, variable, year, p05, p50, p95`` (Monte Carlo over
  the literature ranges, SALib Latin hypercube);
- ``outputs/scenario_sobol.csv``: Sobol indices of China's cumulative supply gap by disruption
  node and scenario; ``outputs/scenario_summary.csv``: per scenario the gap, Indonesia's share
  and export value over the report window;
- ``outputs/scenario_pysd_check.json``: the calibrated baseline run in PySD against the
  vectorised engine; ``outputs/scenario_cld_links.csv``: every link of every loop with its
  polarity;
- ``outputs/rare_earth_backcast.csv`` and ``outputs/rare_earth_patterns.csv``;
- figures ``outputs/figures/scenario_*.{png,pdf}``, ``scenario_fit``, ``nickel_cld`` (and
  ``nickel_cld.dot``), ``rare_earth_backcast``; tables ``outputs/tables/scenario_*.{md,html,tex}``.

Calibration, every scenario's Monte Carlo, the Sobol analysis and the PySD check are cached in
``data/cache/scenarios`` by the spec entry, the model file's sha256, the data and the code
(:mod:`analysis.data.cache`), so an edit of one scenario reruns that scenario only.

Run ``python -m analysis.stages.scenarios --help``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.data import cache, parsers
from analysis.data.io import DataError, atomic_write_text, read_parquet, run_stage, verify_sha256
from analysis.data.registry import load_registry, raw_path, source_by_name
from analysis.publish.figures import save_figure
from analysis.publish.tables import frame_table
from analysis.simulation import (
    behaviour,
    cld,
    inputs,
    mdl,
    runner,
    scenario_spec,
    sensitivity,
    theil,
)
from analysis.simulation import calibration as calib
from analysis.simulation import rare_earths as ree

SPEC_FILE = config.SPECS / "scenarios.yaml"
# Code a cached result depends on: the simulation library for every result (the calibration
# and the PySD check depend on nothing else: their data, inputs and constants are in the key);
# the Monte Carlo and Sobol summaries also on this module (it derives the outputs).
LIBRARY_CODE = ("analysis.simulation.mdl", "analysis.simulation.engine",
                "analysis.simulation.runner", "analysis.simulation.calibration",
                "analysis.simulation.sensitivity")
STAGE_CODE = (*LIBRARY_CODE, "analysis.stages.scenarios")
LIBRARIES = ("numpy", "scipy", "pandas", "SALib")
FIT_COLUMNS = ["series", "window", "n", "n_material", "r2", "mape", "theil_um", "theil_us",
               "theil_uc", "rmse", "note"]
SCENARIO_COLUMNS = ["scenario", "variable", "year", "p05", "p50", "p95"]


def _say(message: str) -> None:
    print(f"[scenarios] {message}", flush=True)


def _csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.10g"))


def _key(code: tuple[str, ...] = STAGE_CODE, **parts) -> str:
    return cache.key_of({**parts, "code": cache.code_version(*code),
                         "libraries": cache.library_versions(*LIBRARIES)})


def _array_digest(tables: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tables):
        digest.update(name.encode())
        for array in tables[name]:
            digest.update(np.ascontiguousarray(array, dtype=float).tobytes())
    return digest.hexdigest()


# =========================================================================== inputs
def load_spec(path: Path = SPEC_FILE) -> scenario_spec.ScenarioSpec:
    """The validated spec; a bad entry is a DataError naming the file and the entry."""
    try:
        return scenario_spec.load_spec(path)
    except scenario_spec.SpecError as error:
        raise DataError(path, str(error).split(": ", 1)[1] if ": " in str(error)
                        else str(error)) from None


def _verified(name: str, raw_dir: Path, registry: Path, member: str | None = None
              ) -> tuple[Path, str]:
    source = source_by_name(load_registry(registry), name)
    path = raw_path(source, raw_dir, member)
    sha = source.sha256 if member is None else next(
        m.sha256 for m in source.members if m.filename == member)
    verify_sha256(path, sha)
    return path, sha


def read_inputs(raw_dir: Path = config.DATA_RAW, processed: Path = config.DATA_PROCESSED,
                registry: Path = config.REGISTRY_FILE) -> dict[str, object]:
    """Every input the stage reads, hash-checked where the registry pins it."""
    out: dict[str, object] = {}
    measures_path = raw_dir / "rn_measures.csv"
    try:
        out["measures"] = pd.read_csv(measures_path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as error:
        raise DataError(measures_path, f"unreadable measures file ({error})") from error
    out["measures_sha256"] = cache.files_sha256([measures_path])[measures_path.name]
    path, sha = _verified("pink_sheet", raw_dir, registry)
    out["prices"] = cache.parsed("pink_sheet", sha, parsers.parse_pink_sheet, path)
    out["prices_sha256"] = sha
    path, sha = _verified("geopolrisk", raw_dir, registry, "baci.db")
    out["baci"] = cache.parsed("geopolrisk_baci", sha, parsers.read_baci, path)
    out["baci_sha256"] = sha
    path, sha = _verified("geopolrisk", raw_dir, registry, "world_mining_data.db")
    production, _ = cache.parsed("geopolrisk_world_mining_data", sha,
                                 parsers.read_world_mining_data, path)
    out["production"] = production
    out["production_sha256"] = sha
    chain_path = processed / "nickel_chain.parquet"
    out["chain"] = read_parquet(chain_path)
    out["chain_sha256"] = cache.files_sha256([chain_path])[chain_path.name]
    return out


def measure_lookups(entries, measures: pd.DataFrame, measures_path: Path, where: str
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Policy schedules from the coded measures; several entries for one schedule combine
    (the stronger level at each date)."""
    parts: dict[str, list] = {}
    for entry in entries:
        try:
            parts.setdefault(entry.schedule, []).append(
                inputs.measure_schedule(measures, entry.measure, entry.levels))
        except inputs.InputError as error:
            raise DataError(measures_path, f"{error} (specs/scenarios.yaml, {where}, entry "
                            f"{entry.schedule!r})") from None
    return {k: inputs.combine_schedules(v) for k, v in parts.items()}


def history_lookups(spec: scenario_spec.ScenarioSpec, data: Mapping[str, object],
                    measures_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The policy schedules from the measures and the observed nickel price."""
    tables = measure_lookups(spec.measures, data["measures"], measures_path, "measures")
    tables["Observed nickel price schedule"] = inputs.monthly_price_schedule(data["prices"])
    return tables


def observed_series(spec: scenario_spec.ScenarioSpec, data: Mapping[str, object]
                    ) -> pd.DataFrame:
    """``series, year, value, trade_kusd`` for every calibration series, 2010 to the end of
    the hold-out (thousand tonnes gross, or kt of nickel for production)."""
    cal = spec.calibration
    years = list(range(cal.window[0], cal.holdout[1] + 1))
    chain = data["chain"].rename(columns={"partner": "importer"})
    baci = data["baci"].rename(columns={"quantity": "quantity_t", "value": "value_kusd"})
    frames = []
    for s in cal.series:
        try:
            if s.source == "nickel_chain":
                frames.append(inputs.baci_series(chain, s.exporter, s.importer, s.hs6, years,
                                                 s.name))
            elif s.source == "baci_hs92":
                frames.append(inputs.baci_series(baci, s.exporter, s.importer, s.hs6, years,
                                                 s.name))
            elif s.source == "market_clearing":
                frames.append(pd.DataFrame({"series": s.name, "year": years, "value": 0.0}))
            else:
                frames.append(inputs.production_series(data["production"], s.country_code,
                                                       s.material, years, s.name))
        except inputs.InputError as error:
            raise DataError(SPEC_FILE, f"calibration, series {s.name!r}: {error}") from None
    return pd.concat(frames, ignore_index=True)


# =========================================================================== calibration
def calibration_setup(spec, model: runner.SimulationModel, observed: pd.DataFrame,
                      lookups, constants: Mapping[str, float],
                      window: tuple[int, int] | None = None) -> calib.Calibration:
    series = [calib.FitSeries(s.name, s.variable, s.content, s.label)
              for s in spec.calibration.series]
    return calib.Calibration(model, series, observed, spec.calibration.free,
                             tuple(window or spec.calibration.window), fixed=constants,
                             lookups=lookups)


def calibrate(spec, model: runner.SimulationModel, observed: pd.DataFrame, lookups,
              constants: Mapping[str, float], window: tuple[int, int] | None = None,
              name: str = "calibration") -> dict[str, object]:
    """Fitted parameters on ``window`` (default: the calibration window), cached by
    everything the fit depends on."""
    cal = spec.calibration
    window = tuple(window or cal.window)
    key = _key(LIBRARY_CODE, kind="calibration", model=model.sha256, spec=cal.model_dump(),
               window=window,
               observed=observed[["series", "year", "value"]].to_dict("list"),
               lookups=_array_digest(lookups), constants=dict(constants))
    stored = cache.load_result("scenarios", name, key)
    if stored is not None:
        _say(f"{name} ({window[0]}-{window[1]}): read from the cache")
        return stored
    setup = calibration_setup(spec, model, observed, lookups, constants, window)
    started = time.perf_counter()
    _say(f"{name} ({window[0]}-{window[1]}): {len(setup.names)} free parameters, "
         f"{setup.observed_count} observed series-years, {cal.starts} starts (screen of "
         f"{cal.screen} points)")
    fit = setup.fit(starts=cal.starts, seed=cal.seed, max_nfev=cal.max_evaluations,
                    screen=cal.screen)
    result = {"table": fit.table().to_dict("list"), "cost": fit.cost, "starts": fit.starts,
              "message": fit.message, "seconds": round(time.perf_counter() - started, 1),
              "observed": setup.observed_count, "window": list(window)}
    cache.store_result("scenarios", name, key, result)
    return result


def fit_statistics(spec, model, observed: pd.DataFrame, lookups, constants, fitted,
                   window: tuple[int, int] | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit statistics per series and window (levels, kt of nickel) and the frame behind the
    fit figure (``series, year, actual, simulated``). With ``window`` (a refit on every
    year) one row per series for that window, named ``full``."""
    cal = spec.calibration
    setup = calibration_setup(spec, model, observed, lookups, constants, window)
    theta = np.array([fitted[n] for n in setup.names])[:, None]
    simulated = setup.simulate(theta, final_year=cal.holdout[1])
    content = setup.contents(theta)[:, 0]
    years = simulated["years"]
    source_of = {series.name: series.source for series in cal.series}
    rows, frames = [], []
    for i, s in enumerate(setup.series):
        data = observed[observed["series"] == s.name].set_index("year")["value"]
        actual = data.reindex(years).to_numpy(dtype=float) * content[i]
        model_values = simulated[s.name][:, 0]
        frames.append(pd.DataFrame({"series": s.name, "label": s.label, "year": years,
                                    "actual": actual, "simulated": model_values}))
        windows = (("calibration", cal.window), ("holdout", cal.holdout)) if window is None \
            else (("full", window),)
        for label, (a, b) in windows:
            keep = (years >= a) & (years <= b)
            stats = theil.fit_statistics(actual[keep], model_values[keep],
                                         mape_floor=cal.mape_floor,
                                         min_material=cal.min_material_years)
            stats["note"] = fit_note(stats, source_of[s.name], cal.mape_floor,
                                     cal.min_material_years)
            if source_of[s.name] == "market_clearing":  # a constraint, not data: no fit shares
                stats.update(r2=np.nan, mape=np.nan, theil_um=np.nan, theil_us=np.nan,
                             theil_uc=np.nan)
            rows.append({"series": s.name, "window": label, **{k: stats[k] for k in
                                                               FIT_COLUMNS[2:]}})
    return pd.DataFrame(rows)[FIT_COLUMNS], pd.concat(frames, ignore_index=True)


def fit_note(stats: Mapping[str, float], source: str, mape_floor: float,
             min_material_years: int) -> str:
    """What a reader needs to read one row of the fit table: a constraint series (the market
    cleared, target 0) has only its RMSE, the typical unmet requirement in kt; a window with
    fewer than ``min_material_years`` years of at least ``mape_floor`` kt of actual flow has no
    R² or MAPE (``analysis.simulation.theil.fit_statistics``)."""
    if stats["n"] == 0:
        return "no observed data in this window"
    if source == "market_clearing":
        return "constraint (target 0): RMSE is the typical unmet requirement"
    if stats["n"] < min_material_years:
        return f"only {stats['n']} observed years: R² and MAPE not informative"
    if stats["n_material"] < min_material_years:
        return (f"{stats['n_material']} of {stats['n']} years with at least {mape_floor:g} kt: "
                "R² and MAPE not informative")
    return ""


def behaviour_patterns(spec, history, fit_frame: pd.DataFrame) -> pd.DataFrame:
    """METHODS' behaviour patterns on a calibrated run (simulated flows of the fit frame)."""
    flows = fit_frame.pivot(index="year", columns="series", values="simulated")
    schedule = history["Ore export ban schedule"]
    years = list(flows.index)
    return behaviour.nickel_patterns(
        flows, behaviour.full_ban_years(schedule, years), behaviour.ban_starts(schedule, years),
        spec.calibration.window[1],
        names={"ore": "idn_chn_ore", "npi": "idn_chn_npi", "phl": "phl_chn_ore"})


def stage_constants(spec, data, observed: pd.DataFrame, fitted: Mapping[str, float] | None,
                    model: runner.SimulationModel) -> dict[str, float]:
    """Constants the stage sets from data: the reference price (mean 2010-2019) and, once the
    content factors are fitted, the payabilities (BACI unit values over the nickel price)."""
    prices = data["prices"]
    window = spec.calibration.window
    out = {"Reference nickel price": inputs.mean_price(prices, window)}
    if fitted is None:
        return out
    annual_price = inputs.annual_mean_price(prices)
    defaults = model.defaults()
    payable = {"idn_chn_ore": "Payability of ore", "idn_chn_npi": "Payability of NPI",
               "idn_chn_matte": "Payability of matte", "idn_chn_mhp": "Payability of MHP",
               "idn_chn_refined": "Payability of refined nickel"}
    for series in spec.calibration.series:
        if series.name not in payable or series.content is None:
            continue
        content_name = model.name(series.content)
        content = fitted.get(content_name, defaults[content_name])
        rows = observed[observed["series"] == series.name].set_index("year")
        value = inputs.payability(rows["trade_kusd"], rows["value"], content, annual_price)
        if np.isfinite(value):
            out[payable[series.name]] = round(value, 6)
    return out


# =========================================================================== scenarios
def scenario_inputs(spec, scenario, model: runner.SimulationModel, history, fitted,
                    errors: Mapping[str, float], constants: Mapping[str, float]
                    ) -> tuple[dict, dict, dict]:
    """(fixed constants, ranges drawn, lookups) of one scenario's Monte Carlo."""
    lookups = dict(history)
    for schedule, steps in scenario.policies.items():
        name = model.name(schedule)
        base = lookups.get(name) or _file_lookup(model, name)
        lookups[name] = inputs.override_schedule(base, [(s.start, s.value) for s in steps])
    fixed = {**constants, **fitted}
    ranges: dict[str, tuple[float, float]] = {}
    model_ranges = model.ranges()
    for name in spec.uncertain:
        ranges[model.name(name)] = model_ranges[model.name(name)]
    spread = spec.monte_carlo.calibrated_spread
    for name, value in fitted.items():
        error = errors.get(name, np.nan)
        if name.lower().startswith("ni content") or not np.isfinite(error) or spread == 0:
            continue
        lo, hi = model_ranges[name]
        ranges[name] = (max(lo, value - spread * error), min(hi, value + spread * error))
    for name, value in scenario.parameters.items():
        number = scenario_spec.parameter_value(value)
        if isinstance(number, tuple):
            ranges[model.name(name)] = number
        else:
            fixed[model.name(name)] = number
            ranges.pop(model.name(name), None)
    fixed = {k: v for k, v in fixed.items() if k not in ranges}
    return fixed, ranges, lookups


def _file_lookup(model: runner.SimulationModel, name: str) -> tuple[np.ndarray, np.ndarray]:
    points = model.model[name].points
    return np.array([p[0] for p in points]), np.array([p[1] for p in points])


def derived_values(spec, result: Mapping[str, object]) -> dict[str, np.ndarray]:
    """Annual outputs (years × draws) named as the report reads them."""
    values = dict(result["values"])
    out = {}
    for name in spec.outputs.flows + spec.outputs.stocks:
        out[name] = values[name]
    for name in spec.outputs.means:
        out[name] = values[name]  # the integral over a year of a level is its annual mean
    for name, (numerator, denominator) in spec.outputs.shares.items():
        with np.errstate(all="ignore"):
            out[name] = np.where(values[denominator] > 0,
                                 values[numerator] / values[denominator], 0.0)
    return out


def run_scenario(spec, scenario, model, history, fitted, errors, constants
                 ) -> pd.DataFrame:
    """One scenario's Monte Carlo summary (cached by the entry and everything it uses)."""
    mc = spec.monte_carlo
    fixed, ranges, lookups = scenario_inputs(spec, scenario, model, history, fitted, errors,
                                             constants)
    key = _key(kind="monte_carlo", model=model.sha256, scenario=scenario.model_dump(
        mode="json"), mc=mc.model_dump(), outputs=spec.outputs.model_dump(),
        uncertain=spec.uncertain, fixed=fixed, ranges={k: list(v) for k, v in ranges.items()},
        lookups=_array_digest(lookups))
    stored = cache.load_result("scenarios", f"mc_{scenario.id}", key)
    if stored is not None:
        return pd.DataFrame(stored["rows"])
    annual = [*spec.outputs.flows, *spec.outputs.means,
              *{n for pair in spec.outputs.shares.values() for n in pair}]
    started = time.perf_counter()
    result = runner.monte_carlo(model, fixed, ranges, lookups, mc.runs, mc.seed,
                                annual=list(dict.fromkeys(annual)),
                                levels=spec.outputs.stocks)
    seconds = time.perf_counter() - started
    frames = [runner.quantile_table(values, result["years"], name)
              for name, values in derived_values(spec, result).items()]
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "scenario", scenario.id)
    _say(f"{scenario.id}: {mc.runs} runs in {seconds:.2f} s")
    cache.store_result("scenarios", f"mc_{scenario.id}", key,
                       {"rows": table.to_dict("list"), "seconds": seconds})
    return table


def run_sobol(spec, scenario, model, history, fitted, errors, constants) -> pd.DataFrame:
    """Sobol indices of the cumulative output over the window, grouped by node (cached)."""
    sobol = spec.sobol
    fixed, ranges, lookups = scenario_inputs(spec, scenario, model, history, fitted, errors,
                                             constants)
    groups = {name: spec.node_of(name) for name in ranges}
    key = _key(kind="sobol", model=model.sha256, scenario=scenario.model_dump(mode="json"),
               sobol=sobol.model_dump(), fixed=fixed,
               ranges={k: list(v) for k, v in ranges.items()}, groups=groups,
               lookups=_array_digest(lookups))
    stored = cache.load_result("scenarios", f"sobol_{scenario.id}", key)
    if stored is not None:
        frame = pd.DataFrame(stored["rows"])
        frame.attrs.update(stored["attrs"])
        return frame

    def evaluate(draws: dict[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(draws.values())))
        out = []
        for start in range(0, n, 2000):
            part = {k: v[start:start + 2000] for k, v in draws.items()}
            result = model.run({**fixed, **part}, lookups, n=len(next(iter(part.values()))),
                               annual=[sobol.output])
            out.append(sensitivity.window_total(result[f"annual:{mdl.normalise(sobol.output)}"],
                                                result["years"], tuple(sobol.window)))
        return np.concatenate(out)

    frame = sensitivity.grouped_sobol(evaluate, ranges, groups, sobol.base_samples, sobol.seed)
    frame.insert(0, "scenario", scenario.id)
    cache.store_result("scenarios", f"sobol_{scenario.id}", key,
                       {"rows": frame.to_dict("list"), "attrs": dict(frame.attrs)})
    return frame


def pysd_check(model_path: Path, model: runner.SimulationModel, params, lookups,
               names: list[str]) -> dict[str, object]:
    """The calibrated baseline in PySD and in the engine; largest relative difference."""
    key = _key(LIBRARY_CODE, kind="pysd", model=model.sha256, params=dict(params),
               lookups=_array_digest(lookups), names=names,
               pysd=cache.library_versions("pysd"))
    stored = cache.load_result("scenarios", "pysd_check", key)
    if stored is not None:
        return stored
    started = time.perf_counter()
    frame = runner.run_pysd(model_path, params, lookups, return_columns=names)
    seconds = time.perf_counter() - started
    fast = model.run(params, lookups, record=names)
    worst, where = 0.0, ""
    for name in names:
        a = fast[mdl.normalise(name)][:, 0]
        b = frame[model.name(name)].to_numpy(dtype=float)
        diff = float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1.0)))
        if diff > worst:
            worst, where = diff, name
    started_fast = time.perf_counter()
    model.run(params, lookups, record=names)
    result = {"variables": len(names), "steps": len(frame),
              "max_relative_difference": worst, "variable": where,
              "pysd_seconds": round(seconds, 2),
              "engine_seconds": round(time.perf_counter() - started_fast, 4),
              "pysd_version": cache.library_versions("pysd")["pysd"]}
    cache.store_result("scenarios", "pysd_check", key, result)
    return result


# =========================================================================== figures
def fit_figure(frame: pd.DataFrame, spec, figures: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    series = list(dict.fromkeys(frame["series"]))
    columns = 3
    rows = (len(series) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(13, 3.4 * rows))
    axes = np.atleast_1d(axes).ravel()
    hold = spec.calibration.holdout
    for ax, name in zip(axes, series, strict=False):
        part = frame[frame["series"] == name]
        ax.axvspan(hold[0] - 0.5, hold[1] + 0.5, color="#eee", label="hold-out")
        ax.plot(part["year"], part["actual"], "o", color="#222", ms=4, label="data")
        ax.plot(part["year"], part["simulated"], "-", color="#c33", label="model")
        ax.set_title(part["label"].iloc[0], fontsize=9)
        ax.set_ylabel("kt of nickel a year", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[len(series):]:
        ax.set_axis_off()
    axes[0].legend(fontsize=8)
    fig.suptitle("Calibrated model (fit 2010-2019) against the data; 2020-2024 predicted "
                 "without refitting (shaded)", fontsize=11)
    fig.tight_layout()
    save_figure(fig, figures / "scenario_fit")


PANELS = ["China supply gap", "Indonesia share of China nickel supply",
          "Indonesian ore exports to China", "Indonesian NPI exports to China",
          "Indonesian MHP exports to China", "Philippine ore exports to China",
          "China port ore inventory", "RKEF operating capacity", "HPAL operating capacity",
          "Nickel price", "Indonesian intermediate export value", "Nickel scrap"]


def scenario_figure(table: pd.DataFrame, baseline: pd.DataFrame, scenario, figures: Path,
                    first_year: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(3, 4, figsize=(15, 9.5))
    for ax, variable in zip(axes.ravel(), PANELS, strict=True):
        part = table[(table["variable"] == variable) & (table["year"] >= first_year)]
        base = baseline[(baseline["variable"] == variable) & (baseline["year"] >= first_year)]
        if part.empty:
            ax.set_axis_off()
            continue
        ax.fill_between(part["year"], part["p05"], part["p95"], color="#c33", alpha=0.25,
                        lw=0, label="5-95%")
        ax.plot(part["year"], part["p50"], color="#c33", lw=1.5, label=scenario.id)
        if scenario.id != "baseline":
            ax.plot(base["year"], base["p50"], color="#333", lw=1, ls="--", label="baseline")
        ax.set_title(variable, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"Scenario {scenario.id}: median and 5-95% band of the Monte Carlo",
                 fontsize=11)
    fig.tight_layout()
    save_figure(fig, figures / f"scenario_{scenario.id}")


def gap_figure(table: pd.DataFrame, figures: Path, first_year: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    scenarios = list(dict.fromkeys(table["scenario"]))
    fig, axes = plt.subplots(2, (len(scenarios) + 1) // 2, figsize=(16, 6.5), sharey=True)
    for ax, sid in zip(axes.ravel(), scenarios, strict=False):
        part = table[(table["scenario"] == sid) & (table["variable"] == "China supply gap")
                     & (table["year"] >= first_year)]
        ax.fill_between(part["year"], part["p05"], part["p95"], color="#36c", alpha=0.25, lw=0)
        ax.plot(part["year"], part["p50"], color="#36c")
        ax.set_title(sid, fontsize=9)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.ravel()[0].set_ylabel("kt of nickel a year")
    fig.suptitle("China's supply gap by scenario (median, 5-95%)", fontsize=11)
    fig.tight_layout()
    save_figure(fig, figures / "scenario_supply_gap")


# =========================================================================== summaries
def summary_table(table: pd.DataFrame, spec) -> pd.DataFrame:
    """Per scenario, over the report window: China's supply gap (the annual median and 5% and
    95% quantiles averaged over the window, kt a year; the year with the largest median, none
    when the median is 0 throughout, and that year's median and 95% quantile), Indonesia's
    share of China's nickel (same averages) and its export value to China by stage (median)."""
    lo, hi = spec.report_window
    rows = []
    for sid in dict.fromkeys(table["scenario"]):
        part = table[(table["scenario"] == sid) & table["year"].between(lo, hi)]

        def mean(variable: str, part=part) -> tuple[float, float, float]:
            rows_ = part[part["variable"] == variable]
            return tuple(float(rows_[c].mean()) for c in ("p50", "p05", "p95"))

        gap = mean("China supply gap")
        peak = part[part["variable"] == "China supply gap"].sort_values("p50").iloc[-1]
        share = mean("Indonesia share of China nickel supply")
        rows.append({"scenario": sid, "gap_p50": gap[0], "gap_p05": gap[1], "gap_p95": gap[2],
                     "gap_peak_year": int(peak["year"]) if peak["p50"] > 0 else None,
                     "gap_peak_p50": float(peak["p50"]),
                     "gap_peak_p95": float(peak["p95"]),
                     "idn_share_p50": share[0], "idn_share_p05": share[1],
                     "idn_share_p95": share[2],
                     "value_ore_p50": mean("Indonesian ore export value")[0],
                     "value_intermediate_p50": mean("Indonesian intermediate export value")[0],
                     "value_refined_p50": mean("Indonesian refined export value")[0]})
    return pd.DataFrame(rows)


# =========================================================================== stage
def run(spec_path: Path = SPEC_FILE, raw_dir: Path = config.DATA_RAW,
        processed: Path = config.DATA_PROCESSED, outputs: Path = config.OUTPUTS,
        registry: Path = config.REGISTRY_FILE, only: list[str] | None = None) -> None:
    spec = load_spec(spec_path)
    model_path = config.ROOT / spec.model
    try:
        model = runner.load(model_path)
        scenario_spec.check_against_model(spec, model.model, spec_path)
    except (mdl.ModelError, FileNotFoundError) as error:
        raise DataError(model_path, str(error)) from None
    except scenario_spec.SpecError as error:
        raise DataError(spec_path, str(error).split(": ", 1)[-1]) from None
    problems = mdl.check_units(model.model)
    if problems:
        raise DataError(model_path, f"units are inconsistent: {problems[0]}")
    data = read_inputs(raw_dir, processed, registry)
    history = history_lookups(spec, data, raw_dir / "rn_measures.csv")
    observed = observed_series(spec, data)
    tables, figures = outputs / "tables", outputs / "figures"
    outputs.mkdir(parents=True, exist_ok=True)

    # --- calibration on the calibration window, test on the hold-out
    constants = stage_constants(spec, data, observed, None, model)
    fit = calibrate(spec, model, observed, history, constants)
    parameters = pd.DataFrame(fit["table"])
    fitted = dict(zip(parameters["parameter"], parameters["value"], strict=True))
    fit_constants = stage_constants(spec, data, observed, fitted, model)
    at_bound = parameters.loc[parameters["at_bound"] != "", "parameter"].tolist()
    _say(f"calibration: cost {fit['cost']:.3f}; at a bound: {', '.join(at_bound) or 'none'}")
    fit_stats, fit_frame = fit_statistics(spec, model, observed, history, fit_constants,
                                          fitted)
    _csv(fit_stats, outputs / "scenario_fit.csv")
    _csv(fit_frame, outputs / "scenario_fit_series.csv")
    frame_table(fit_stats, tables / "scenario_fit", "Fit of the model calibrated on "
                f"{spec.calibration.window[0]}-{spec.calibration.window[1]}: calibration "
                f"window and hold-out {spec.calibration.holdout[0]}-"
                f"{spec.calibration.holdout[1]} (kt of nickel)", float_format="%.3f")
    fit_figure(fit_frame, spec, figures)
    patterns = [behaviour_patterns(spec, history, fit_frame).assign(fit="calibration")]
    tables_out = [parameters.assign(window="calibration")]
    records = {"calibration": {k: fit[k] for k in ("cost", "starts", "message", "seconds",
                                                   "observed", "window")}}

    # --- the scenarios start from the model refitted on every year (calibration + hold-out)
    if spec.calibration.refit_for_scenarios:
        full = (spec.calibration.window[0], spec.calibration.holdout[1])
        refit = calibrate(spec, model, observed, history, constants, full, "calibration_full")
        refitted = pd.DataFrame(refit["table"])
        fitted = dict(zip(refitted["parameter"], refitted["value"], strict=True))
        parameters_used = refitted
        tables_out.append(refitted.assign(window="full"))
        records["full"] = {k: refit[k] for k in ("cost", "starts", "message", "seconds",
                                                 "observed", "window")}
        _say(f"refit on {full[0]}-{full[1]}: cost {refit['cost']:.3f}")
        full_stats, full_frame = fit_statistics(spec, model, observed, history,
                                                stage_constants(spec, data, observed, fitted,
                                                                model), fitted, window=full)
        _csv(full_stats, outputs / "scenario_fit_full.csv")
        _csv(full_frame, outputs / "scenario_fit_full_series.csv")
        patterns.append(behaviour_patterns(spec, history, full_frame).assign(fit="full"))
    else:
        parameters_used = parameters
    patterns = pd.concat(patterns, ignore_index=True)
    _csv(patterns, outputs / "scenario_patterns.csv")
    _say("behaviour patterns (calibrated run): " + ", ".join(
        f"{r.pattern}: {r.verdict}" for r in patterns[patterns["fit"] == "calibration"]
        .itertuples()))
    errors = dict(zip(parameters_used["parameter"], parameters_used["std_error"],
                      strict=True))
    constants = stage_constants(spec, data, observed, fitted, model)
    records["constants_from_data"] = constants
    all_parameters = pd.concat(tables_out, ignore_index=True)
    all_parameters = all_parameters[["window", "parameter", "value", "lower", "upper",
                                     "at_bound", "std_error"]]
    _csv(all_parameters, outputs / "scenario_parameters.csv")
    atomic_write_text(outputs / "scenario_calibration.json",
                      json.dumps(records, indent=2) + "\n")
    frame_table(all_parameters, tables / "scenario_parameters", "Calibrated parameters with "
                "their bounds (the model file's ranges): window 'calibration' "
                f"{spec.calibration.window[0]}-{spec.calibration.window[1]} (tested on the "
                "hold-out); window 'full' refitted on every year, used by the scenarios",
                float_format="%.4g")

    # --- PySD reference run of the calibrated baseline
    baseline = spec.scenario("baseline") if "baseline" in [s.id for s in spec.scenarios] \
        else spec.scenarios[0]
    fixed, _, lookups = scenario_inputs(spec, baseline, model, history, fitted, {}, constants)
    check_names = [e.name for e in model.model.of_kind("stateful")] + [
        "China supply gap", "Nickel price", "Indonesian ore exports to China",
        "Indonesian NPI exports to China", "Philippine ore exports to China"]
    check = pysd_check(model_path, model, fixed, lookups, check_names)
    _say(f"PySD {check['pysd_version']} against the engine: largest relative difference "
         f"{check['max_relative_difference']:.2e} ({check['variable']}); PySD "
         f"{check['pysd_seconds']} s, engine {check['engine_seconds']} s per run")
    atomic_write_text(outputs / "scenario_pysd_check.json", json.dumps(check, indent=2) + "\n")

    # --- scenarios
    chosen = [s for s in spec.scenarios if not only or s.id in only]
    tables_ = [run_scenario(spec, s, model, history, fitted, errors, constants)
               for s in chosen]
    table = pd.concat(tables_, ignore_index=True)[SCENARIO_COLUMNS]
    _csv(table, outputs / "scenarios.csv")
    summary = summary_table(table, spec)
    _csv(summary, outputs / "scenario_summary.csv")
    frame_table(summary, tables / "scenario_summary", "China's supply gap (kt of nickel a "
                f"year), Indonesia's share and export value (million USD a year) by scenario, "
                f"{spec.report_window[0]}-{spec.report_window[1]}", float_format="%.3g")
    base_table = table[table["scenario"] == baseline.id]
    for scenario in chosen:
        scenario_figure(table[table["scenario"] == scenario.id], base_table, scenario, figures,
                        first_year=2015)
    gap_figure(table, figures, first_year=2020)

    # --- Sobol indices by disruption node
    if spec.sobol is not None:
        ids = [s.id for s in chosen] if spec.sobol.scenarios == "all" else \
            [s for s in spec.sobol.scenarios if s in [c.id for c in chosen]]
        sobol = pd.concat([run_sobol(spec, spec.scenario(sid), model, history, fitted, errors,
                                     constants) for sid in ids], ignore_index=True)
        _csv(sobol, outputs / "scenario_sobol.csv")
        frame_table(sobol.drop(columns="parameters"), tables / "scenario_sobol",
                    "Sobol indices of China's cumulative supply gap "
                    f"{spec.sobol.window[0]}-{spec.sobol.window[1]} by parameter group",
                    float_format="%.3f")

    # --- causal-loop diagram from the model's dependency graph
    if spec.loops:
        write_cld(spec, model, fixed, lookups, outputs)

    # --- rare earths: the 2010 quota shock back-cast
    if spec.rare_earths is not None:
        rare_earth_outputs(spec, data, raw_dir / "rn_measures.csv", outputs)


def write_cld(spec, model: runner.SimulationModel, fixed, lookups, outputs: Path) -> None:
    names = [e.name for e in model.model.equations.values()
             if e.kind in ("auxiliary", "stateful", "constant")]
    result = model.run(fixed, lookups, record=names)
    states = []
    for year in (2012, 2015, 2020, 2028):
        k = int(np.argmin(np.abs(result["time"] - year)))
        state = {mdl.normalise(n): float(result[mdl.normalise(n)][k, 0]) for n in names}
        state.update({"time": float(result["time"][k]),
                      "time step": model.model.control["time step"],
                      "initial time": model.model.control["initial time"],
                      "final time": model.model.control["final time"]})
        states.append(state)
    tables = {mdl.normalise(k): v for k, v in lookups.items()}
    for eq in model.model.of_kind("lookup"):
        tables.setdefault(eq.key, (np.array([p[0] for p in eq.points]),
                                   np.array([p[1] for p in eq.points])))
    loops = []
    for entry in spec.loops:
        loop = cld.LoopSpec(entry.name, tuple(entry.path), tuple(entry.display))
        try:
            links = cld.loop_links(model.model, loop, states, tables)
        except cld.LoopError as error:
            raise DataError(SPEC_FILE, str(error)) from None
        loops.append((loop, links))
    frame = pd.concat([links.assign(loop_polarity=cld.loop_polarity(links))
                       for _, links in loops], ignore_index=True)
    _csv(frame, outputs / "scenario_cld_links.csv")
    figure = cld.draw(loops, "Causal-loop diagram of the nickel model (from its equations)")
    save_figure(figure, outputs / "figures" / "nickel_cld")
    atomic_write_text(outputs / "figures" / "nickel_cld.dot",
                      cld.to_dot(loops, "nickel model"))


def rare_earth_outputs(spec, data, measures_path: Path, outputs: Path) -> None:
    """The 2010 quota shock back-cast: the run, the published patterns, the data beside it."""
    entry = spec.rare_earths
    model_path = config.ROOT / entry.model
    try:
        model = runner.load(model_path)
    except (mdl.ModelError, FileNotFoundError) as error:
        raise DataError(model_path, str(error)) from None
    problems = mdl.check_units(model.model)
    if problems:
        raise DataError(model_path, f"units are inconsistent: {problems[0]}")
    for measure in entry.measures:
        if mdl.normalise(measure.schedule) not in model.model.equations:
            raise DataError(SPEC_FILE, f"rare_earths, measures: {model_path.name} has no "
                            f"schedule {measure.schedule!r}")
    lookups = measure_lookups(entry.measures, data["measures"], measures_path,
                              "rare_earths, measures")
    frame = ree.backcast(model, lookups)
    pattern_spec = ree.PatternSpec(**entry.patterns.model_dump())
    table = ree.patterns(frame, pattern_spec)
    yearly = ree.annual(frame)
    shares = ree.production_shares(data["production"], entry.production_codes)
    years = list(range(int(model.model.control["initial time"]), 2025))
    exports = ree.china_exports(data["baci"], entry.export_hs6, years)
    comparison = ree.data_comparison(yearly, shares, exports)
    _csv(yearly.reset_index(), outputs / "rare_earth_backcast.csv")
    _csv(table, outputs / "rare_earth_patterns.csv")
    _csv(comparison, outputs / "rare_earth_data.csv")
    frame_table(table.drop(columns="value"), outputs / "tables" / "rare_earth_patterns",
                "Rare earths: the 2010 quota shock back-cast against the published behaviour "
                "(Sprecher et al. 2017)")
    save_figure(ree.figure(frame, comparison, pattern_spec.shock_year),
                outputs / "figures" / "rare_earth_backcast")
    verdicts = ", ".join(f"{r.pattern} {r.verdict}" for r in table.itertuples())
    _say(f"rare earths: {verdicts}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.stages.scenarios",
        description="Calibrate the stock-flow model of the nickel chain (specs/sd/nickel.mdl) on "
        "2010-2019, test it on 2020-2024, run the scenarios of specs/scenarios.yaml with Monte "
        "Carlo bands and Sobol indices by disruption node, draw the causal-loop diagram, and "
        "back-cast the 2010 rare-earth quota shock (specs/sd/rare_earths.mdl).")
    parser.add_argument("--spec", type=Path, default=SPEC_FILE, help="scenario specification")
    parser.add_argument("--only", nargs="+", metavar="ID",
                        help="run only these scenarios (the outputs then hold only them)")
    args = parser.parse_args(argv)
    return run_stage("scenarios", lambda: run(spec_path=args.spec, only=args.only))


if __name__ == "__main__":
    sys.exit(main())
