"""The moderated two-way fixed-effects models of METHODS.md section 5, as functions: the model spec,
the estimation frame, fitting every model, and the design summary and test sizes the
inference uses. The ``models`` stage (``analysis.stages.models``) writes the outputs; the
diagnostics, robustness and bench stages and ``analysis.api`` call these functions.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import yaml

from analysis import config
from analysis.data import specs
from analysis.data.io import (
    DataError,
    display_path,
    parquet_columns,
)
from analysis.econometrics.estimation import (
    ModelResult,
    add_interactions,
    centre,
    estimate,
)

#: Sizes of the tests at the estimation design, measured by ``make bench BENCH_ARGS="--size
#: --record"`` (analysis/stages/bench.py): read for the table notes and the RI placebo rule.
SIZES_FILE = config.SPECS / "inference_sizes.yaml"


def load_model_spec(path: Path = config.SPECS / "models.yaml",
                    processed: Path | None = None) -> dict:
    """``specs/models.yaml``, validated (:class:`analysis.data.specs.ModelsSpec`); with
    ``processed``, every variable and term is also checked against the columns of the panel
    the spec names, so a typo is reported against the spec file, the model and the term."""
    context_from = None
    if processed is not None:
        def context_from(data):
            panel = processed / data["panel"]
            return {"columns": set(parquet_columns(panel)), "columns_file": display_path(panel)}
    return specs.load(path, "models", context_from=context_from)


def model_variables(spec: dict) -> list[str]:
    base = {t for terms in spec["models"].values() for term in terms for t in term.split(":")}
    return [spec["dependent"], *sorted(base), *spec["controls"]]


def estimation_frame(panel: pd.DataFrame, spec: dict) -> tuple[pd.DataFrame, dict[str, float]]:
    """The common estimation sample, with centred focal and moderator variables.

    Rows: country-years complete in every variable of every model (so M1–M5 share one sample).
    The uncentred values are kept as ``<name>_raw``; ``gpr``, ``rn`` and ``ti`` are centred on
    this sample, and every interaction term is added as a column named like the term.
    """
    fe = spec["fixed_effects"]
    variables = model_variables(spec)
    missing = [v for v in variables if v not in panel]
    if missing:
        raise DataError(config.DATA_PROCESSED / spec["panel"], "variables missing", missing[0])
    frame = panel[[*fe, *variables]].dropna().copy()
    # A country with a single complete year has no within variation: with country effects it is
    # fitted exactly and adds nothing but a spurious cluster (pyfixest and fixest drop such
    # singletons by default), so it leaves the sample.
    counts = frame.groupby(fe[0])[fe[1]].transform("size")
    frame = frame[counts >= 2].copy()
    for name in spec["centre"]:
        frame[f"{name}_raw"] = frame[name]
    frame, means = centre(frame, spec["centre"])
    terms = sorted({t for terms in spec["models"].values() for t in terms}, key=len)
    frame = add_interactions(frame, terms)
    return frame.sort_values(fe).reset_index(drop=True), means


def fit_models(frame: pd.DataFrame, spec: dict, bootstrap: dict | str | None = "spec",
               progress: bool = True, only: list[str] | None = None) -> list[ModelResult]:
    """Estimate every model of the spec (or the models named in ``only``) on ``frame``.

    ``bootstrap``: ``"spec"`` (default) uses the spec's bootstrap settings, a dict other
    settings, and None skips the wild cluster bootstrap (its p-values are then missing)."""
    results = []
    chosen = spec["bootstrap"] if isinstance(bootstrap, str) and bootstrap == "spec" \
        else bootstrap
    for name, terms in spec["models"].items():
        if only is not None and name not in only:
            continue
        started = time.perf_counter()
        result = estimate(frame, name, spec["dependent"], [*terms, *spec["controls"]],
                          tuple(spec["fixed_effects"]), spec["cluster"], spec["key_terms"],
                          chosen, spec["driscoll_kraay"]["kernel"])
        if progress:
            print(f"[models] {name}: N={result.n_obs}, G={result.n_clusters}, "
                  f"{time.perf_counter() - started:.1f}s", flush=True)
        results.append(result)
    return results


# --------------------------------------------------------------------------- measured sizes
def load_sizes(path: Path = SIZES_FILE) -> dict | None:
    """The sizes ``make bench BENCH_ARGS="--size --record"`` measured (None if never
    recorded)."""
    if not path.exists():
        return None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DataError(path, f"cannot read the recorded test sizes ({error})") from error


def design_summary(frame: pd.DataFrame, spec: dict) -> dict:
    """N, G, T and the countries of the estimation sample: what the recorded sizes must match."""
    time = spec["fixed_effects"][1]
    return {"n_obs": len(frame), "n_clusters": int(frame[spec["cluster"]].nunique()),
            "n_periods": int(frame[time].nunique()),
            "clusters": sorted(str(c) for c in frame[spec["cluster"]].unique())}
