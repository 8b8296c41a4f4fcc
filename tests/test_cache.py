"""The content-addressed caches (analysis/data/cache.py): a hit returns exactly what the work
returns, a changed input is a miss, and a damaged entry is rebuilt, never trusted."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from analysis.data import cache, parsers
from analysis.data.io import sha256_of
from tests import synthetic

CALLS: list[str] = []


def counted_wdi(path, indicator, variable):
    """parse_wdi_csv that records each call (a cache hit does not call it)."""
    CALLS.append(str(path))
    return parsers.parse_wdi_csv(path, indicator, variable)


def counted_pair(path):
    """A parser returning a tuple of frames (as read_world_mining_data does)."""
    CALLS.append(str(path))
    frame = parsers.parse_wdi_csv(path, "NY.GDP.TOTL.RT.ZS", "rents")
    return frame, frame[frame["year"] >= 1995].reset_index(drop=True)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(folder))
    monkeypatch.delenv("PIPELINE_CACHE", raising=False)
    CALLS.clear()
    return folder


def _wdi(tmp_path, idn_1996: float = 5.25):
    return synthetic.write_wdi_csv(tmp_path / "raw" / "API_X.csv", "NY.GDP.TOTL.RT.ZS",
                                   {"IDN": {1995: 4.5, 1996: idn_1996}, "WLD": {1995: 99.0}})


def _parse(path):
    return cache.parsed("wdi_x", sha256_of(path), counted_wdi, path, "NY.GDP.TOTL.RT.ZS",
                        "rents")


def _value(frame, iso3, year):
    return frame.set_index(["iso3", "year"]).loc[(iso3, year), "rents"]


def test_a_hit_returns_the_parsed_frame_exactly_without_parsing(cache_dir, tmp_path):
    path = _wdi(tmp_path)
    first = _parse(path)
    second = _parse(path)
    assert len(CALLS) == 1
    pd.testing.assert_frame_equal(first, second, check_exact=True)
    assert list(first.dtypes) == list(second.dtypes)
    assert _value(second, "IDN", 1996) == 5.25 and np.isnan(_value(second, "IDN", 1997))
    assert len(list((cache_dir / "parsed").glob("wdi_x-*.0.parquet"))) == 1


def test_a_changed_raw_file_has_another_key_and_is_parsed_again(cache_dir, tmp_path):
    _parse(_wdi(tmp_path, idn_1996=5.25))
    path = _wdi(tmp_path, idn_1996=7.75)  # same name, new content: a new sha256
    frame = _parse(path)
    assert len(CALLS) == 2
    assert _value(frame, "IDN", 1996) == 7.75
    # one entry per source is kept: the stale one is gone
    assert len(list((cache_dir / "parsed").glob("wdi_x-*.json"))) == 1


def test_the_parser_code_is_part_of_the_key(cache_dir, tmp_path, monkeypatch):
    path = _wdi(tmp_path)
    _parse(path)
    real = cache.code_version

    def edited(*modules):
        return {**real(*modules), "analysis.data.parsers": "0" * 64}  # as if parsers.py changed

    monkeypatch.setattr(cache, "code_version", edited)
    _parse(path)
    assert len(CALLS) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "replace", "delete", "record", "key"])
def test_a_damaged_entry_is_rebuilt_not_trusted(cache_dir, tmp_path, damage, capsys):
    path = _wdi(tmp_path)
    good = _parse(path)
    part = next((cache_dir / "parsed").glob("wdi_x-*.0.parquet"))
    record = part.with_name(part.name.replace(".0.parquet", ".json"))
    if damage == "truncate":
        part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    elif damage == "flip":  # still a readable parquet file? the hash says it is not ours
        data = bytearray(part.read_bytes())
        data[len(data) // 3] ^= 0xFF
        part.write_bytes(bytes(data))
    elif damage == "replace":  # a valid parquet file with another number: only the hash sees it
        edited = good.copy()
        edited.loc[edited["rents"] == 5.25, "rents"] = 6.0
        edited.to_parquet(part, index=False)
    elif damage == "delete":
        part.unlink()
    elif damage == "record":
        record.write_text("{not json")
    else:
        entry = json.loads(record.read_text())
        entry["key"] = "0" * 64
        record.write_text(json.dumps(entry))
    again = _parse(path)
    assert len(CALLS) == 2  # parsed again
    pd.testing.assert_frame_equal(good, again, check_exact=True)
    assert "rebuilt" in capsys.readouterr().out
    _parse(path)  # the entry was rewritten and is good again
    assert len(CALLS) == 2


def test_a_tuple_of_frames_comes_back_as_a_tuple(cache_dir, tmp_path):
    path = _wdi(tmp_path)
    first = cache.parsed("pair", sha256_of(path), counted_pair, path)
    second = cache.parsed("pair", sha256_of(path), counted_pair, path)
    assert len(CALLS) == 1 and isinstance(second, tuple) and len(second) == 2
    for a, b in zip(first, second, strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert len(second[1]) == 11 * 6  # years 1995-2000


def test_cache_off_parses_every_time_and_writes_nothing(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PIPELINE_CACHE", "off")
    path = _wdi(tmp_path)
    _parse(path)
    _parse(path)
    assert len(CALLS) == 2 and not cache_dir.exists()


def test_results_round_trip_exactly_and_damage_is_a_miss(cache_dir):
    payload = {"rows": [{"check": "a", "b[gpr]": 0.1 + 0.2, "n_obs": np.int64(126),
                         "se": np.float64(1 / 3), "p": float("nan"), "ok": np.bool_(True)}],
               "extra": {"iv": {"params": pd.Series([1.5, -2.25], index=["gpr", "gpr:rn"]),
                                "ar_set": [(0.1, 0.2)]}}}
    key = cache.key_of({"x": 1})
    cache.store_result("robustness", "a", key, payload)
    back = cache.load_result("robustness", "a", key)
    row = back["rows"][0]
    assert row["b[gpr]"] == 0.1 + 0.2 and row["se"] == 1 / 3 and np.isnan(row["p"])
    assert row["n_obs"] == 126 and row["ok"] is True
    assert list(row) == ["check", "b[gpr]", "n_obs", "se", "p", "ok"]  # column order kept
    pd.testing.assert_series_equal(back["extra"]["iv"]["params"],
                                   payload["extra"]["iv"]["params"], check_exact=True)
    assert cache.load_result("robustness", "a", cache.key_of({"x": 2})) is None  # other key
    path = next((cache_dir / "robustness").glob("a-*.json"))
    path.write_text(path.read_text().replace("0.30000000000000004", "0.3"))  # edited number
    assert cache.load_result("robustness", "a", key) is None


def test_canonical_json_is_order_free_and_exact():
    assert cache.canonical_json({"b": 1, "a": [1.0, 0.1]}) == \
        cache.canonical_json({"a": [1.0, 0.1], "b": 1})
    assert cache.key_of({"a": 0.1 + 0.2}) != cache.key_of({"a": 0.3})


# --------------------------------------------------------------------------- real data
REAL = pytest.mark.skipif(
    not os.environ.get("DATA_MIRROR") and not (cache.CACHE_DIR.parent / "raw" / ".fetched")
    .exists(), reason="no DATA_MIRROR and no fetched data/raw: real-data tests skipped")


@pytest.mark.integration
@REAL
def test_clean_with_a_warm_parse_cache_writes_the_same_bytes(tmp_path, monkeypatch):
    """The clean stage twice: a cold cache (every raw file parsed, stored, and the parser's
    own result used, as with the cache off), then a warm one (every parsed table read back
    from parquet). Every file equal."""
    from analysis import config
    from analysis.data import registry
    from analysis.stages import clean, fetch

    fetch.fetch_all(registry.load_registry(), config.DATA_RAW, config.data_mirror())
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    outputs = {}
    monkeypatch.setenv("PIPELINE_CACHE", "on")
    for run in ("cold", "warm"):
        out, tables = tmp_path / run / "processed", tmp_path / run / "tables"
        clean.build_all(config.DATA_RAW, out, tables)
        outputs[run] = {p.name: p.read_bytes() for folder in (out, tables)
                        for p in sorted(folder.iterdir())}
    assert len(list((tmp_path / "cache" / "parsed").glob("*.json"))) >= 20
    assert outputs["cold"] == outputs["warm"]
    assert len(outputs["warm"]) >= 10
