"""A Python interface for notebooks: the pipeline's data, models and checks without the stages.

    from analysis import api

    panel = api.panel()                     # data/processed/panel.parquet
    sample = api.panel(estimation=True)     # the common estimation sample of M1-M5
    m4 = api.fit("M4")                      # M4 with every inference of the main table
    m4.table[["estimate", "std_error", "p_value", "p_wcr"]]
    quick = api.fit("M4", bootstrap=None)   # no wild bootstrap: p_wcr is missing, ~10x faster
    api.check("drop_sgp")                   # one robustness check's row(s)
    api.spec("robustness")                  # a validated spec file, as a dict

Everything reads what the stages wrote (run ``make all`` once) and the spec files, validated as
the stages validate them (:mod:`analysis.data.specs`); nothing under ``outputs/`` is written.
:func:`fit` estimates on the same common sample as the models stage (the country-years complete
in every model of ``specs/models.yaml``), so its numbers equal ``outputs/estimates.csv``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import config
from analysis.data import specs
from analysis.data.io import DataError, read_parquet
from analysis.econometrics import moderated
from analysis.econometrics.estimation import ModelResult, tidy
from analysis.stages import robustness


def spec(name: str) -> dict:
    """The validated spec ``specs/<name>.yaml`` (models, robustness, indices, nickel,
    supply_risk) as a dict."""
    return specs.load(config.SPECS / f"{name}.yaml")


def panel(estimation: bool = False, processed: Path = config.DATA_PROCESSED) -> pd.DataFrame:
    """The country-year panel with every index and variant (``data/processed/panel.parquet``),
    or with ``estimation=True`` the common estimation sample of the main models (centred focal
    and moderator variables, interaction columns, the raw values as ``<name>_raw``)."""
    name = "estimation_panel.parquet" if estimation else "panel.parquet"
    return read_parquet(processed / name)


def fit(model: str = "M4", bootstrap: dict | str | None = "spec",
        spec_path: Path = config.SPECS / "models.yaml",
        processed: Path = config.DATA_PROCESSED) -> ModelResult:
    """Estimate one model of ``specs/models.yaml`` on the common estimation sample.

    ``bootstrap``: ``"spec"`` (default) runs the wild cluster restricted bootstrap with the
    spec's settings (B = 99,999 Webb draws and the Rademacher enumeration); a dict sets other
    settings (e.g. ``{"B": 999, "weights": "webb", "seed": 1}``); ``None`` skips it (the WCR
    p-values are then missing). The result's ``table`` has one row per regressor with every
    inference; :func:`estimates` turns it into the rows of ``outputs/estimates.csv``.
    """
    model_spec = moderated.load_model_spec(spec_path, processed)
    if model not in model_spec["models"]:
        raise DataError(spec_path, f"no model {model!r} "
                        f"({', '.join(model_spec['models'])}){specs.did_you_mean(model, model_spec['models'])}",
                        entry="models")
    frame, _ = moderated.estimation_frame(read_parquet(processed / model_spec["panel"]), model_spec)
    return moderated.fit_models(frame, model_spec, bootstrap=bootstrap, progress=False,
                             only=[model])[0]


def estimates(result: ModelResult) -> pd.DataFrame:
    """A fitted model as tidy rows (the columns of ``outputs/estimates.csv``)."""
    return tidy(result)


def check(check_id: str, spec_path: Path = config.SPECS / "robustness.yaml",
          model_spec_path: Path = config.SPECS / "models.yaml",
          processed: Path = config.DATA_PROCESSED) -> pd.DataFrame:
    """The robustness-table row(s) of one check of ``specs/robustness.yaml`` (one per country
    for a jackknife check): estimates, CRV1 and WCR p-values of GPR and the curve terms, N, G."""
    return robustness.check_rows(check_id, processed, spec_path, model_spec_path)
