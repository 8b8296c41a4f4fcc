"""The scorecard's specification (``specs/scorecard.yaml``, METHODS.md section 11) as pydantic
models, and :func:`load_spec`, which reads and validates it: one line naming the file, the
entry and the problem. The scorecard stage (``analysis.stages.scorecard``) and the spec
checker (``python -m analysis.data.specs``) use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from analysis import config
from analysis.data.io import DataError
from analysis.measures import scorecard as sc

SPEC_FILE = config.SPECS / "scorecard.yaml"


# =========================================================================== spec (pydantic)
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MineralSpec(_Strict):
    """A mineral: its World Mining Data table, its GeoPolRisk material, its HS6 codes."""

    label: str
    production: str
    geopolrisk: str | None = None
    ore: list[str] = Field(default_factory=list)
    processed: list[str] = Field(default_factory=list)

    @field_validator("ore", "processed")
    @classmethod
    def _six_digits(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if not (isinstance(code, str) and len(code) == 6 and code.isdigit()):
                raise ValueError(f"HS6 code {code!r} is not six digits in quotes")
        if len(set(codes)) != len(codes):
            raise ValueError("a code is listed twice")
        return codes

    @model_validator(mode="after")
    def _has_codes(self) -> MineralSpec:
        if not self.ore and not self.processed:
            raise ValueError("lists no ore and no processed code")
        if set(self.ore) & set(self.processed):
            raise ValueError("a code is both ore and processed")
        return self


class IndicatorSpec(_Strict):
    direction: Literal[1, -1]
    proxy: bool = False
    note: str = ""


class DimensionSpec(_Strict):
    label: str
    short: str = ""   # label on the radar chart and heat-map panels (defaults to label)
    indicators: dict[str, IndicatorSpec] = Field(min_length=1)

    @field_validator("indicators")
    @classmethod
    def _known(cls, indicators: dict[str, IndicatorSpec]) -> dict[str, IndicatorSpec]:
        for name in indicators:
            if name not in sc.INDICATORS:
                raise ValueError(f"unknown indicator {name!r}; known: "
                                 f"{', '.join(sc.INDICATORS)}")
        return indicators


class WeightingSpec(_Strict):
    main: Literal["equal", "entropy", "entropy_topsis"] = "equal"
    variants: list[Literal["equal", "entropy", "entropy_topsis"]] = Field(default_factory=list)
    epsilon: float = Field(default=1e-4, ge=0)

    @property
    def methods(self) -> list[str]:
        return [self.main, *[m for m in self.variants if m != self.main]]


class EarlyWarningSpec(_Strict):
    share: float = Field(default=0.2, gt=0, lt=1)
    reference: Literal["pooled", "year"] = "pooled"
    min_rise: float = Field(default=0.05, ge=0, le=1)


class MilitarySpec(_Strict):
    table: str
    lists: list[str] = Field(min_length=1)


class RoutesSpec(_Strict):
    regions: str
    routes: str
    chokepoints: list[str] = Field(min_length=1)


class YearsSpec(_Strict):
    first: int
    last: int

    @model_validator(mode="after")
    def _ordered(self) -> YearsSpec:
        if self.first > self.last:
            raise ValueError(f"first ({self.first}) is after last ({self.last})")
        return self


class ScorecardSpec(_Strict):
    """The whole of ``specs/scorecard.yaml``; unknown keys are errors."""

    countries: list[str] = Field(min_length=2)
    years: YearsSpec
    history_first_year: int
    growth_horizon: int = Field(ge=1)
    trend_window: int = Field(ge=2)
    basis_ratio_max: float = Field(gt=0)
    minerals: dict[str, MineralSpec] = Field(min_length=2)
    dimensions: dict[str, DimensionSpec] = Field(min_length=1)
    weighting: WeightingSpec
    early_warning: EarlyWarningSpec = EarlyWarningSpec()
    military: MilitarySpec
    routes: RoutesSpec
    focus_minerals: list[str] = Field(default_factory=list)
    focus_countries: list[str] = Field(default_factory=list)
    heatmap_year: Literal["last"] | int = "last"

    @field_validator("countries")
    @classmethod
    def _iso3(cls, countries: list[str]) -> list[str]:
        for code in countries:
            if not (isinstance(code, str) and len(code) == 3 and code.isupper()):
                raise ValueError(f"{code!r} is not an ISO3 code")
        if len(set(countries)) != len(countries):
            raise ValueError("a country is listed twice")
        return countries

    @model_validator(mode="after")
    def _consistent(self) -> ScorecardSpec:
        seen: dict[str, str] = {}
        for dimension, entry in self.dimensions.items():
            for name in entry.indicators:
                if name in seen:
                    raise ValueError(f"indicator {name!r} is in dimensions {seen[name]!r} and "
                                     f"{dimension!r}")
                seen[name] = dimension
        for mineral in self.focus_minerals:
            if mineral not in self.minerals:
                raise ValueError(f"focus_minerals: {mineral!r} is not a mineral of the spec")
        for country in self.focus_countries:
            if country not in self.countries:
                raise ValueError(f"focus_countries: {country!r} is not in countries")
        if self.history_first_year > self.years.first:
            raise ValueError("history_first_year is after years.first")
        return self

    # ------------------------------------------------------------------ derived views
    @property
    def directions(self) -> dict[str, int]:
        return {name: entry.direction for dim in self.dimensions.values()
                for name, entry in dim.indicators.items()}

    @property
    def dimension_indicators(self) -> dict[str, list[str]]:
        return {dim: list(entry.indicators) for dim, entry in self.dimensions.items()}

    @property
    def indicator_dimension(self) -> dict[str, str]:
        return {name: dim for dim, names in self.dimension_indicators.items() for name in names}

    def chains(self) -> dict[str, sc.MineralChain]:
        return {name: sc.MineralChain(name, tuple(m.ore), tuple(m.processed))
                for name, m in self.minerals.items()}


def _location(loc: Sequence[object]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_spec(path: Path = SPEC_FILE) -> ScorecardSpec:
    """Read and validate ``specs/scorecard.yaml``.

    Raises:
        DataError: one line naming the file, the entry (its dotted path, e.g.
            ``dimensions.foreign_dependence.indicators.net_import_reliance.direction``) and the
            problem; the stage turns it into exit code 2.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DataError(path, f"cannot read the spec ({' '.join(str(error).split())})") \
            from error
    if not isinstance(raw, dict):
        raise DataError(path, "the spec is not a mapping of keys to entries")
    try:
        return ScorecardSpec.model_validate(raw)
    except ValidationError as error:
        problems = [f"entry '{_location(e['loc'])}': {' '.join(str(e['msg']).split())}"
                    for e in error.errors()]
        more = len(problems) - 3
        text = "; ".join(problems[:3]) + (f" (and {more} more)" if more > 0 else "")
        raise DataError(path, text) from None
