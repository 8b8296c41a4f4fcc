"""Project-wide constants and paths. Every stage imports from here, nothing else is global."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_RAW = ROOT / "data" / "raw"
# PIPELINE_PROCESSED_DIR / PIPELINE_OUTPUTS_DIR send a whole run elsewhere (the end-to-end test
# builds every stage into a temporary folder); unset, the project's own folders.
DATA_PROCESSED = Path(os.environ.get("PIPELINE_PROCESSED_DIR") or ROOT / "data" / "processed")
OUTPUTS = Path(os.environ.get("PIPELINE_OUTPUTS_DIR") or ROOT / "outputs")
TABLES = OUTPUTS / "tables"
FIGURES = OUTPUTS / "figures"
REGISTRY_FILE = ROOT / "data" / "registry.yaml"
HS_CHAIN_MAP_FILE = ROOT / "data" / "hs6_chain_map.csv"
SPECS = ROOT / "specs"

CHINA = "CHN"
ASEAN = ("BRN", "KHM", "IDN", "LAO", "MYS", "MMR", "PHL", "SGP", "THA", "VNM")
COUNTRIES = (CHINA, *ASEAN)
CLMV = ("KHM", "LAO", "MMR", "VNM")
# Caldara–Iacoviello publish a country GPR (GPRC_xxx) for these six only.
GPRC_COUNTRIES = ("CHN", "IDN", "MYS", "PHL", "THA", "VNM")

FIRST_YEAR = 1996  # METHODS.md section 2
LAST_YEAR = 2024  # last year any core source covers; the effective sample ends earlier
YEARS = tuple(range(FIRST_YEAR, LAST_YEAR + 1))


def data_mirror() -> Path | None:
    """The local mirror folder named by DATA_MIRROR, or None when unset."""
    value = os.environ.get("DATA_MIRROR")
    return Path(value).expanduser().resolve() if value else None
