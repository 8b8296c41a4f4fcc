"""Content-addressed caches under ``data/cache/``: parse once, and skip work whose inputs are
unchanged.

Two kinds of entry, both keyed by the sha256 of everything they depend on and both verified on
every read (``make clean`` leaves ``data/cache`` alone, as it leaves ``data/raw``):

- **parsed tables** (:func:`parsed`): the frame(s) a parser in :mod:`analysis.data.parsers` returns
  for one raw file, stored as parquet. Key: the raw file's sha256 (the registry's, re-checked by
  the caller before the call), the parser's name and arguments, the source code of
  :mod:`analysis.data.parsers` and of what it uses (the panel's country list in
  :mod:`analysis.config`, :mod:`analysis.data.io`) and the numpy / pandas / pyarrow versions. File:
  ``data/cache/parsed/<source>-<key16>[.<i>].parquet`` plus ``<source>-<key16>.json``, the
  record holding the full key and the sha256 of every parquet file.
- **results** (:func:`load_result` / :func:`store_result`): a JSON document (e.g. the rows of
  one robustness check), in ``data/cache/<kind>/<name>-<key16>.json``; the record holds the full
  key and the sha256 of the canonical JSON of the payload. The last few results of a name are
  kept (:data:`RESULT_ENTRIES`), one parsed entry per source.

A read accepts an entry only if the record parses, its key equals the key asked for and every
stored hash equals the hash of the bytes read; anything else (a truncated or edited file, a
missing part, a stale key) is a miss, the entry is rebuilt and rewritten, and a line
``[cache] ... rebuilt`` says so. Writes are atomic (:func:`analysis.data.io.atomic_path`), the record
last, so a crash leaves at worst a miss. A parquet round trip returns the frame exactly (same
dtypes, values and column order; checked in ``tests/test_cache.py``), so a run with the cache
writes the same bytes as a run without it. ``PIPELINE_CACHE=off`` in the environment bypasses
every cache (nothing read, nothing written): the reference for that comparison.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from functools import cache as _memo
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.config import ROOT
from analysis.data.io import atomic_path, atomic_write_text, sha256_of

CACHE_DIR = ROOT / "data" / "cache"
FORMAT = 1  # bump to invalidate every entry written by an older layout of this module
RESULT_ENTRIES = 4  # results kept per name (the current one and the three before it)


def enabled() -> bool:
    """False when ``PIPELINE_CACHE`` is ``off``/``0``/``no``: every cache is bypassed."""
    return os.environ.get("PIPELINE_CACHE", "on").strip().lower() not in ("off", "0", "no",
                                                                          "false")


def cache_dir() -> Path:
    """``PIPELINE_CACHE_DIR`` if set (tests), else ``data/cache``."""
    value = os.environ.get("PIPELINE_CACHE_DIR")
    return Path(value) if value else CACHE_DIR


def _say(message: str) -> None:
    print(f"[cache] {message}", flush=True)


# --------------------------------------------------------------------------- keys
def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, floats by ``repr`` (exact round trip),
    NaN/inf spelled out, numpy scalars as Python numbers, tuples as lists."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), allow_nan=True,
                      ensure_ascii=False)


def key_of(parts: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of ``parts`` (everything an entry depends on)."""
    return hashlib.sha256(canonical_json({"format": FORMAT, **parts}).encode()).hexdigest()


@_memo
def _source_hash(path: str) -> str:
    return sha256_of(Path(path))


def code_version(*modules: str) -> dict[str, str]:
    """sha256 of the source file of each named module (``analysis.data.parsers`` ...), so that an
    edit of the code an entry was computed with invalidates it."""
    import importlib.util

    out = {}
    for name in modules:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ValueError(f"cannot locate the source of module {name!r}")
        out[name] = _source_hash(spec.origin)
    return out


@_memo
def _version(name: str) -> str:
    import importlib

    module = importlib.import_module(name)
    version = getattr(module, "__version__", None)
    if version is None:
        from importlib.metadata import version as installed

        version = installed(name)
    return str(version)


def library_versions(*names: str) -> dict[str, str]:
    """Versions of the libraries whose arithmetic or file format an entry depends on (the
    module's ``__version__``; imported, so name only libraries the caller uses anyway)."""
    return {name: _version(name) for name in names}


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars to Python, tuples to lists, Path to str, Series tagged."""
    import numpy as np

    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, pd.Series):
        return {"__series__": {"index": [_plain(i) for i in value.index],
                               "values": [_plain(v) for v in value.to_numpy()],
                               "dtype": str(value.dtype), "name": _plain(value.name)}}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return value  # json writes NaN / Infinity, read back as floats
    return value


def _restore(value: Any) -> Any:
    """Inverse of :func:`_plain` for the tagged pandas Series."""
    if isinstance(value, dict):
        if set(value) == {"__series__"}:
            s = value["__series__"]
            return pd.Series(s["values"], index=s["index"], dtype=s["dtype"], name=s["name"])
        return {k: _restore(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v) for v in value]
    return value


# --------------------------------------------------------------------------- parsed tables
def parsed(source: str, raw_sha256: str, parser: Callable[..., Any], *args: Any,
           **kwargs: Any) -> Any:
    """``parser(*args, **kwargs)``, cached by the raw file's sha256 (parse once).

    ``raw_sha256`` must be the hash of the raw file the parser reads, checked by the caller
    (:func:`analysis.stages.clean.verified_path` does). Path arguments are left out of the key (the
    hash names the content); every other argument is part of it. A parser returning a tuple of
    frames is stored frame by frame and returned as a tuple.
    """
    if not enabled():
        return parser(*args, **kwargs)
    parts = {"kind": "parsed", "source": source, "raw_sha256": raw_sha256,
             "parser": f"{parser.__module__}.{parser.__qualname__}",
             "args": [a for a in args if not isinstance(a, Path)],
             "kwargs": {k: v for k, v in kwargs.items() if not isinstance(v, Path)},
             "code": code_version("analysis.data.parsers", "analysis.config", "analysis.data.io",
                                  "analysis.data.cache"),
             "libraries": library_versions("numpy", "pandas", "pyarrow")}
    key = key_of(parts)
    folder = cache_dir() / "parsed"
    stem = f"{source}-{key[:16]}"
    hit = _read_frames(folder, stem, key)
    if hit is not None:
        frames, is_tuple = hit
        return tuple(frames) if is_tuple else frames[0]
    result = parser(*args, **kwargs)
    is_tuple = isinstance(result, tuple)
    _write_frames(folder, stem, key, list(result) if is_tuple else [result], is_tuple, source)
    return result


def _record_path(folder: Path, stem: str) -> Path:
    return folder / f"{stem}.json"


def _part_path(folder: Path, stem: str, i: int) -> Path:
    return folder / f"{stem}.{i}.parquet"


def _read_frames(folder: Path, stem: str, key: str
                 ) -> tuple[list[pd.DataFrame], bool] | None:
    record_path = _record_path(folder, stem)
    if not record_path.exists():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if record.get("key") != key:
            raise ValueError("key mismatch")
        frames = []
        for i, expected in enumerate(record["sha256"]):
            path = _part_path(folder, stem, i)
            if sha256_of(path) != expected:
                raise ValueError(f"{path.name}: sha256 mismatch")
            frames.append(pd.read_parquet(path, engine="pyarrow"))
        return frames, bool(record["tuple"])
    except Exception as error:  # noqa: BLE001 - any damage is a miss, never a result
        _say(f"{record_path.name}: unusable entry ({type(error).__name__}: {error}); rebuilt")
        return None


def _write_frames(folder: Path, stem: str, key: str, frames: list[pd.DataFrame],
                  is_tuple: bool, source: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    hashes = []
    for i, frame in enumerate(frames):
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{source}: the parser returned {type(frame).__name__}, not frames")
        target = _part_path(folder, stem, i)
        with atomic_path(target) as tmp:
            frame.to_parquet(tmp, index=False, engine="pyarrow")
            hashes.append(sha256_of(tmp))
    atomic_write_text(_record_path(folder, stem), json.dumps(
        {"key": key, "source": source, "tuple": is_tuple, "sha256": hashes}, indent=1) + "\n")
    _prune(folder, source, keep=stem)


def _prune(folder: Path, name: str, keep: str, entries: int = 1) -> None:
    """Remove the older entries of ``name`` (other keys), keeping ``keep`` and the
    ``entries - 1`` most recently written others."""
    stems: dict[str, float] = {}
    for path in folder.glob(f"{name}-*"):
        stem = path.name.split(".", 1)[0]
        if stem != keep and stem.rsplit("-", 1)[0] == name:
            stems[stem] = max(stems.get(stem, 0.0), path.stat().st_mtime)
    old = sorted(stems, key=stems.get, reverse=True)[entries - 1:]
    for path in folder.glob(f"{name}-*"):
        if path.name.split(".", 1)[0] in old:
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- results
def load_result(kind: str, name: str, key: str) -> Any | None:
    """The JSON payload stored under (``kind``, ``name``) for ``key``, or None on a miss
    (absent, stale key, or damaged: a damaged entry is reported and will be rewritten)."""
    if not enabled():
        return None
    path = cache_dir() / kind / f"{name}-{key[:16]}.json"
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("key") != key:
            raise ValueError("key mismatch")
        payload = record["payload"]
        digest = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
        if digest != record.get("sha256"):
            raise ValueError("payload sha256 mismatch")
        return _restore(payload)
    except Exception as error:  # noqa: BLE001 - any damage is a miss, never a result
        _say(f"{kind}/{path.name}: unusable entry ({type(error).__name__}: {error}); rebuilt")
        return None


def store_result(kind: str, name: str, key: str, payload: Any) -> None:
    """Store a JSON-able ``payload`` (numpy scalars, tuples and pandas Series are converted)
    under (``kind``, ``name``) for ``key``. The three most recent other entries of that name
    are kept (an edit of a spec entry that is then undone finds its old result), older ones
    are removed."""
    if not enabled():
        return
    folder = cache_dir() / kind
    folder.mkdir(parents=True, exist_ok=True)
    plain = _plain(payload)
    text = canonical_json(plain)
    record = {"key": key, "sha256": hashlib.sha256(text.encode()).hexdigest(),
              "payload": plain}
    stem = f"{name}-{key[:16]}"
    atomic_write_text(folder / f"{stem}.json",
                      json.dumps(record, allow_nan=True, ensure_ascii=False) + "\n")
    _prune(folder, name, keep=stem, entries=RESULT_ENTRIES)


def files_sha256(paths: Iterable[Path]) -> dict[str, str]:
    """{file name: sha256} of input files (an entry's data inputs)."""
    return {Path(p).name: sha256_of(Path(p)) for p in paths}
