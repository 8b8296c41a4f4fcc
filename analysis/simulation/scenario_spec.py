"""The scenario specification (``specs/scenarios.yaml``), validated on load with pydantic.

One file says everything the scenarios stage does with a model: which dated measures of
``data/raw/rn_measures.csv`` fill which policy schedule, what is calibrated on which window,
which parameters the Monte Carlo draws and to which disruption node each belongs, what the
outputs are, and the scenarios themselves (one entry each: policy steps from a date and
parameter values or ranges). Adding a scenario is adding an entry.

Checks, each stopping with one line that names the entry (:class:`SpecError`):

- an unknown key anywhere (pydantic ``extra="forbid"``), a missing key, a wrong type;
- a date outside the horizon (a policy step or a date-valued parameter);
- a policy value (a share of exports banned, a regime switched on) outside [0, 1];
- a range whose low end exceeds its high end; duplicate scenario ids; a parameter drawn but
  in no disruption node, or in two;
- against the model file (:func:`check_against_model`): a name that is not a constant or
  lookup of the model, a value outside the range the model file gives the constant (shares
  have [0, 1] there), a schedule that is not a lookup.

``load_spec`` is written so that the project's spec-validation module can call it as it is.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

NODES = ("trade_policy", "technology_chain", "geopolitical_layout", "demand_market")


class SpecError(ValueError):
    """A bad specification entry: the message names the file and the entry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _date(value: object) -> float:
    """A date (``YYYY-MM-DD``, ``YYYY-MM``, a date object) or a decimal year as a decimal year."""
    from analysis.simulation.runner import decimal_year

    if isinstance(value, bool):
        raise ValueError("a date is expected, not a boolean")  # noqa: TRY004 - pydantic
    if isinstance(value, dt.date):
        return decimal_year(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return decimal_year(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from error
    raise ValueError(f"{value!r} is not a date")


def _as_date(year: float) -> str:
    """A decimal year back as an ISO date (for messages)."""
    whole = int(year // 1)
    first = dt.date(whole, 1, 1)
    days = (dt.date(whole + 1, 1, 1) - first).days
    return (first + dt.timedelta(days=round((year - whole) * days))).isoformat()


class PolicyStep(_Strict):
    """From ``from`` on, the schedule takes ``value`` (a share: 0 = no measure, 1 = full)."""

    start: float = Field(alias="from")
    value: Annotated[float, Field(ge=0.0, le=1.0)]

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, value: object) -> float:
        return _date(value)


class MeasureMap(_Strict):
    """A policy schedule's history from one coded measure: intensity -> schedule value."""

    schedule: str
    measure: str
    levels: dict[int, Annotated[float, Field(ge=0.0, le=1.0)]]


class FitSeriesSpec(_Strict):
    """An observed series, where it comes from, and the model flow it is compared with."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    variable: str
    content: str | None = None
    label: str = ""
    source: Literal["nickel_chain", "baci_hs92", "world_mining_data", "market_clearing"]
    exporter: str | None = None
    importer: str | None = None
    hs6: Annotated[str, Field(pattern=r"^\d{6}$")] | None = None
    material: str | None = None
    country_code: int | None = None

    @field_validator("country_code")
    @classmethod
    def _code(cls, value: int | None) -> int | None:
        if value is not None and value <= 0:
            raise ValueError("a BACI country code is a positive number")
        return value


class Calibration(_Strict):
    window: tuple[int, int]
    holdout: tuple[int, int]
    free: list[str] = Field(min_length=1)
    series: list[FitSeriesSpec] = Field(min_length=1)
    starts: Annotated[int, Field(ge=1, le=20)] = 4
    screen: Annotated[int, Field(ge=0, le=100_000)] = 0
    seed: int = 20260401
    max_evaluations: Annotated[int, Field(ge=10)] = 200
    mape_floor: Annotated[float, Field(ge=0.0)] = 1.0
    # R² and MAPE need this many years of material flow (at least mape_floor) in a window;
    # with fewer (a flow that did not exist yet) they say nothing and are left empty
    min_material_years: Annotated[int, Field(ge=1)] = 3
    refit_for_scenarios: bool = True


class MonteCarlo(_Strict):
    runs: Annotated[int, Field(ge=10, le=100_000)] = 1000
    seed: int = 20260501
    calibrated_spread: Annotated[float, Field(ge=0.0)] = 2.0


class Sobol(_Strict):
    base_samples: Annotated[int, Field(ge=8)] = 256
    seed: int = 20260601
    output: str
    window: tuple[int, int]
    scenarios: list[str] | Literal["all"] = "all"


class Outputs(_Strict):
    flows: list[str] = []
    stocks: list[str] = []
    means: list[str] = []
    shares: dict[str, tuple[str, str]] = {}


class LoopDef(_Strict):
    """A feedback loop for the causal-loop diagram: its closed path of variables and the
    variables to show."""

    name: str
    path: list[str] = Field(min_length=2)
    display: list[str] = []


class RareEarthPatterns(_Strict):
    """The published behaviour after the 2010 shock (Sprecher et al. 2017)."""

    shock_year: float = 2010.0
    window: tuple[int, int] = (2010, 2014)
    substitution_max_per_year: Annotated[float, Field(gt=0.0, le=1.0)] = 0.10
    non_china_share_slope: tuple[float, float] = (0.02, 0.06)
    recovery_years: tuple[float, float] = (1.0, 3.0)
    recycling_share_max: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    price_recovered: Annotated[float, Field(ge=1.0)] = 1.2


class RareEarths(_Strict):
    """The rare-earth back-cast: model, measures, the data it is set beside, patterns."""

    model: str
    measures: list[MeasureMap] = Field(min_length=1)
    production_codes: dict[str, int]
    export_hs6: list[Annotated[str, Field(pattern=r"^\d{6}$")]] = Field(min_length=1)
    patterns: RareEarthPatterns = RareEarthPatterns()


Value = float | str | dt.date | tuple[float, float]


class Scenario(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    description: str
    policies: dict[str, list[PolicyStep]] = {}
    parameters: dict[str, Value] = {}


class ScenarioSpec(_Strict):
    model: str
    horizon: tuple[int, int]
    report_window: tuple[int, int]
    measures: list[MeasureMap] = []
    calibration: Calibration | None = None
    monte_carlo: MonteCarlo = MonteCarlo()
    sobol: Sobol | None = None
    nodes: dict[str, list[str]]
    uncertain: list[str] = []
    outputs: Outputs
    loops: list[LoopDef] = []
    scenarios: list[Scenario] = Field(min_length=1)
    rare_earths: RareEarths | None = None

    def scenario(self, scenario_id: str) -> Scenario:
        for entry in self.scenarios:
            if entry.id == scenario_id:
                return entry
        raise KeyError(scenario_id)

    def node_of(self, parameter: str) -> str:
        from analysis.simulation.mdl import normalise

        for node, names in self.nodes.items():
            if normalise(parameter) in {normalise(n) for n in names}:
                return node
        raise KeyError(parameter)


def _where(location: tuple, raw: dict) -> str:
    """'scenario 'price_spike', parameters, Price spike height' from a pydantic location."""
    parts = []
    node = raw
    for i, key in enumerate(location):
        if isinstance(key, int) and isinstance(node, list) and key < len(node):
            item = node[key]
            if isinstance(item, dict) and "id" in item:
                parts.append(f"entry {item['id']!r}")
            elif isinstance(item, dict) and "schedule" in item:
                parts.append(f"entry {item['schedule']!r}")
            else:
                parts.append(f"item {key + 1}")
            node = item
        else:
            if isinstance(key, str) and key in ("tuple[float, float]", "float", "str", "date"):
                continue
            parts.append(str(key))
            node = node.get(key) if isinstance(node, dict) else None
        if i == 0 and parts and parts[0] == "scenarios":
            parts[0] = "scenarios"
    return ", ".join(parts)


def validate(raw: object, path: Path | str = "specs/scenarios.yaml") -> ScenarioSpec:
    """Validate a parsed YAML document; any problem is one :class:`SpecError` line."""
    path = Path(path)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: the file must hold a mapping of keys")
    try:
        spec = ScenarioSpec.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = _where(first["loc"], raw)
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = f"unknown key {first['loc'][-1]!r}"
        raise SpecError(f"{path}: {where}: {message}") from None
    _check_spec(spec, path)
    return spec


def _check_spec(spec: ScenarioSpec, path: Path) -> None:
    lo, hi = spec.horizon
    if lo >= hi:
        raise SpecError(f"{path}: horizon: start {lo} is not before end {hi}")
    for name, window in (("report_window", spec.report_window),):
        if not lo <= window[0] <= window[1] < hi:
            raise SpecError(f"{path}: {name}: {list(window)} is not inside the horizon "
                            f"{lo}-{hi}")
    if spec.calibration is not None:
        for series in spec.calibration.series:
            needed = {"nickel_chain": ("exporter", "importer", "hs6"),
                      "baci_hs92": ("exporter", "importer", "hs6"),
                      "world_mining_data": ("material", "country_code"),
                      "market_clearing": ()}[series.source]
            for key in needed:
                if getattr(series, key) is None:
                    raise SpecError(f"{path}: calibration, series {series.name!r}: a "
                                    f"{series.source} series needs {key!r}")
        for name in ("window", "holdout"):
            a, b = getattr(spec.calibration, name)
            if not lo <= a <= b < hi:
                raise SpecError(f"{path}: calibration, {name}: {a}-{b} is not inside the "
                                f"horizon {lo}-{hi}")
    unknown_nodes = sorted(set(spec.nodes) - set(NODES))
    if unknown_nodes:
        raise SpecError(f"{path}: nodes: unknown node {unknown_nodes[0]!r}; use {list(NODES)}")
    seen: dict[str, str] = {}
    for node, names in spec.nodes.items():
        for name in names:
            key = name.strip().lower()
            if key in seen:
                raise SpecError(f"{path}: nodes: {name!r} is in {seen[key]!r} and {node!r}")
            seen[key] = node
    ids = [s.id for s in spec.scenarios]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise SpecError(f"{path}: scenarios: id {duplicated[0]!r} is used twice")
    if spec.sobol is not None and spec.sobol.scenarios != "all":
        for sid in spec.sobol.scenarios:
            if sid not in ids:
                raise SpecError(f"{path}: sobol, scenarios: no scenario {sid!r}")
    if spec.sobol is not None:
        a, b = spec.sobol.window
        if not lo <= a <= b < hi:
            raise SpecError(f"{path}: sobol, window: {a}-{b} is not inside the horizon")
    drawn = list(spec.uncertain)
    for scenario in spec.scenarios:
        where = f"{path}: scenario {scenario.id!r}"
        for schedule, steps in scenario.policies.items():
            for step in steps:
                if not lo <= step.start < hi:
                    raise SpecError(f"{where}, policies, {schedule}: date "
                                    f"{_as_date(step.start)} is outside the horizon {lo}-{hi}")
        for name, value in scenario.parameters.items():
            if isinstance(value, tuple):
                if value[0] > value[1]:
                    raise SpecError(f"{where}, parameters, {name}: range {list(value)} runs "
                                    "backwards")
                drawn.append(name)
            elif isinstance(value, str | dt.date):
                try:
                    year = _date(value)
                except ValueError as error:
                    raise SpecError(f"{where}, parameters, {name}: {error}") from None
                if not lo <= year < hi:
                    raise SpecError(f"{where}, parameters, {name}: date {value} is outside the "
                                    f"horizon {lo}-{hi}")
    if spec.calibration is not None:
        drawn += spec.calibration.free
    for name in drawn:
        if name.strip().lower() not in seen and not _is_content(name):
            raise SpecError(f"{path}: parameter {name!r} is drawn in the Monte Carlo but is in "
                            "no disruption node (nodes:)")


def _is_content(name: str) -> bool:
    """Content factors convert units and never move a flow in kt of nickel: no node needed."""
    return name.strip().lower().startswith("ni content")


def parameter_value(value: Value) -> float | tuple[float, float]:
    """A scenario parameter as a number (dates as decimal years) or a (low, high) range."""
    if isinstance(value, tuple):
        return (float(value[0]), float(value[1]))
    if isinstance(value, str | dt.date):
        return _date(value)
    return float(value)


def load_spec(path: Path | str) -> ScenarioSpec:
    """Read and validate ``specs/scenarios.yaml`` (see the module docstring)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise SpecError(f"{path}: cannot read the scenario specification ({error})") from None
    return validate(raw, path)


def check_against_model(spec: ScenarioSpec, model, path: Path | str = "specs/scenarios.yaml"
                        ) -> None:
    """Every name the spec uses exists in the model with the right kind, and every value lies
    within the range the model file gives it. ``model`` is a parsed
    :class:`analysis.simulation.mdl.Model`."""
    from analysis.simulation.mdl import normalise

    path = Path(path)

    def constant(name: str, where: str):
        key = normalise(name)
        if key not in model.equations:
            raise SpecError(f"{path}: {where}: {model.path.name} has no variable {name!r}")
        eq = model.equations[key]
        if eq.kind != "constant":
            kind = {"auxiliary": "an auxiliary", "stateful": "a stock or delay",
                    "lookup": "a lookup"}.get(eq.kind, eq.kind)
            raise SpecError(f"{path}: {where}: {name!r} is {kind} in {model.path.name}, not "
                            "a constant")
        return eq

    def within(eq, value: float, where: str) -> None:
        if eq.limits is None:
            return
        low, high = eq.limits
        if (low is not None and value < low - 1e-12) or (high is not None
                                                         and value > high + 1e-12):
            raise SpecError(f"{path}: {where}: {value:g} is outside [{low:g}, {high:g}], the "
                            f"range {model.path.name} gives {eq.name!r}")

    def lookup(name: str, where: str) -> None:
        key = normalise(name)
        if key not in model.equations or model.equations[key].kind != "lookup":
            raise SpecError(f"{path}: {where}: {name!r} is not a policy schedule (lookup) of "
                            f"{model.path.name}")

    horizon = (model.control["initial time"], model.control["final time"])
    if tuple(float(h) for h in spec.horizon) != horizon:
        raise SpecError(f"{path}: horizon: {list(spec.horizon)} differs from the model's "
                        f"INITIAL TIME and FINAL TIME {list(horizon)}")
    for entry in spec.measures:
        lookup(entry.schedule, f"measures, entry {entry.schedule!r}")
    if spec.calibration is not None:
        for name in spec.calibration.free:
            eq = constant(name, f"calibration, free, {name}")
            if eq.limits is None or None in eq.limits:
                raise SpecError(f"{path}: calibration, free, {name}: the model file gives no "
                                "range [low, high] for it")
        for series in spec.calibration.series:
            if normalise(series.variable) not in model.equations:
                raise SpecError(f"{path}: calibration, series {series.name!r}: "
                                f"{model.path.name} has no variable {series.variable!r}")
            if series.content is not None:
                constant(series.content, f"calibration, series {series.name!r}")
    for name in spec.uncertain:
        eq = constant(name, f"uncertain, {name}")
        if eq.limits is None or None in eq.limits:
            raise SpecError(f"{path}: uncertain, {name}: the model file gives no range for it")
    for names in spec.nodes.values():
        for name in names:
            constant(name, f"nodes, {name}")
    outputs = spec.outputs
    for name in [*outputs.flows, *outputs.stocks, *outputs.means,
                 *(n for pair in outputs.shares.values() for n in pair)]:
        if normalise(name) not in model.equations:
            raise SpecError(f"{path}: outputs: {model.path.name} has no variable {name!r}")
    for loop in spec.loops:
        for name in [*loop.path, *loop.display]:
            if normalise(name) not in model.equations:
                raise SpecError(f"{path}: loops, {loop.name!r}: {model.path.name} has no "
                                f"variable {name!r}")
        for name in loop.display:
            if normalise(name) not in {normalise(n) for n in loop.path}:
                raise SpecError(f"{path}: loops, {loop.name!r}: display variable {name!r} is "
                                "not on the loop's path")
    if spec.sobol is not None and normalise(spec.sobol.output) not in model.equations:
        raise SpecError(f"{path}: sobol, output: {model.path.name} has no variable "
                        f"{spec.sobol.output!r}")
    for scenario in spec.scenarios:
        where = f"scenario {scenario.id!r}"
        for schedule in scenario.policies:
            lookup(schedule, f"{where}, policies, {schedule}")
        for name, value in scenario.parameters.items():
            eq = constant(name, f"{where}, parameters, {name}")
            number = parameter_value(value)
            for v in (number if isinstance(number, tuple) else (number,)):
                within(eq, v, f"{where}, parameters, {name}")
