"""Project-wide paths. Every stage imports from here; nothing else is global.

What the pipeline studies (the focal country, the members, the years, the GPR weight base, the
coded measures) is data: the region spec ``specs/regions/<name>.yaml``, read and validated by
:func:`analysis.data.specs.load_region`. This module only says which region file a run reads
(``REGION`` in the environment, default :data:`DEFAULT_REGION`) and where the run's files go.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_RAW = ROOT / "data" / "raw"
SPECS = ROOT / "specs"
REGIONS = SPECS / "regions"
#: The region a run studies when ``REGION`` is unset; its files keep the project's own folders.
DEFAULT_REGION = "china_asean"
#: ``REGION=<name>`` (``make all REGION=<name>``) reads ``specs/regions/<name>.yaml``.
REGION = os.environ.get("REGION") or DEFAULT_REGION
REGION_FILE = REGIONS / f"{REGION}.yaml"
# The default region writes to data/processed/ and outputs/; any other region to
# data/processed/<name>/ and outputs/<name>/. PIPELINE_PROCESSED_DIR / PIPELINE_OUTPUTS_DIR send a
# whole run elsewhere (the end-to-end test builds every stage into a temporary folder): an
# explicit override wins over the region's folder.
_REGION_FOLDER = () if REGION == DEFAULT_REGION else (REGION,)
DATA_PROCESSED = Path(os.environ.get("PIPELINE_PROCESSED_DIR")
                      or ROOT.joinpath("data", "processed", *_REGION_FOLDER))
OUTPUTS = Path(os.environ.get("PIPELINE_OUTPUTS_DIR") or ROOT.joinpath("outputs", *_REGION_FOLDER))
TABLES = OUTPUTS / "tables"
FIGURES = OUTPUTS / "figures"
REGISTRY_FILE = ROOT / "data" / "registry.yaml"
HS_CHAIN_MAP_FILE = ROOT / "data" / "hs6_chain_map.csv"


def data_mirror() -> Path | None:
    """The local mirror folder named by DATA_MIRROR, or None when unset."""
    value = os.environ.get("DATA_MIRROR")
    return Path(value).expanduser().resolve() if value else None
