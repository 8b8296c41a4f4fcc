"""The robustness stage skips a check whose spec entry and inputs are unchanged, re-estimates
exactly the checks that changed, never trusts a damaged entry, and writes the same bytes as a
run without the cache."""

from __future__ import annotations

import copy
import hashlib

import pandas as pd
import pytest
import yaml

from analysis.stages import robustness
from tests.test_pipeline_determinism import CHECKS, _write_inputs


@pytest.fixture
def counted(monkeypatch, tmp_path):
    """run_check and heterogeneity_rows that record what they estimate; a private cache."""
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PIPELINE_CACHE", raising=False)
    monkeypatch.setenv("PIPELINE_WORKERS", "1")  # estimated here, where the calls are seen
    calls: list[str] = []
    real_check, real_hetero = robustness.run_check, robustness.heterogeneity_rows

    def run_check(check, *args, **kwargs):
        calls.append(check["id"])
        return real_check(check, *args, **kwargs)

    def heterogeneity_rows(*args, **kwargs):
        calls.append("heterogeneity")
        return real_hetero(*args, **kwargs)

    monkeypatch.setattr(robustness, "run_check", run_check)
    monkeypatch.setattr(robustness, "heterogeneity_rows", heterogeneity_rows)
    return calls


def _run(root, checks=CHECKS):
    processed, model_spec, check_spec = _write_inputs(root, checks) if not (
        root / "processed").exists() else (root / "processed", root / "models.yaml",
                                           root / "robustness.yaml")
    if checks is not None:
        check_spec.write_text(yaml.safe_dump(checks, allow_unicode=True))
    outputs = root / "outputs"
    robustness.run(processed, outputs, check_spec, model_spec)
    return {str(p.relative_to(outputs)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(outputs.rglob("*")) if p.is_file()}


def test_unchanged_checks_are_read_back_with_the_same_bytes(counted, tmp_path, monkeypatch):
    first = _run(tmp_path / "a")
    assert sorted(counted) == ["heterogeneity", "lags", "loo", "main", "ri", "ri_rn"]
    counted.clear()
    second = _run(tmp_path / "a")
    assert counted == []  # nothing estimated
    monkeypatch.setenv("PIPELINE_CACHE", "off")
    uncached = _run(tmp_path / "b")
    assert first == second == uncached
    assert "robustness.csv" in first and "figures/specification_curve.png" in first
    assert "heterogeneity.csv" in first


def test_editing_one_entry_reestimates_only_that_check(counted, tmp_path, monkeypatch):
    _run(tmp_path / "a")
    edited = copy.deepcopy(CHECKS)
    edited["checks"][1]["lag"] = ["gpr"]  # the "lags" entry
    counted.clear()
    cached = _run(tmp_path / "a", edited)
    assert counted == ["lags"]
    table = pd.read_csv(tmp_path / "a" / "outputs" / "robustness.csv")
    monkeypatch.setenv("PIPELINE_CACHE", "off")
    assert cached == _run(tmp_path / "b", edited)  # the same bytes as a run without cache
    before = pd.read_csv(tmp_path / "b" / "outputs" / "robustness.csv")
    pd.testing.assert_frame_equal(table, before)
    # and the edit did change that row's estimate (a real re-estimation, not a stale read)
    monkeypatch.setenv("PIPELINE_CACHE", "on")
    _run(tmp_path / "c", CHECKS)
    original = pd.read_csv(tmp_path / "c" / "outputs" / "robustness.csv").set_index("check")
    assert original.loc["lags", "b[gpr:rn]"] != table.set_index("check").loc["lags", "b[gpr:rn]"]


def test_a_changed_input_file_reestimates_every_check(counted, tmp_path):
    _run(tmp_path / "a")
    path = tmp_path / "a" / "processed" / "panel.parquet"
    panel = pd.read_parquet(path)
    panel.loc[panel.index[0], "syn"] += 0.01
    panel.to_parquet(path, index=False)
    counted.clear()
    _run(tmp_path / "a")
    assert sorted(counted) == ["heterogeneity", "lags", "loo", "main", "ri", "ri_rn"]


def test_a_damaged_entry_is_reestimated(counted, tmp_path, capsys):
    first = _run(tmp_path / "a")
    entry = next((tmp_path / "cache" / "robustness").glob("loo-*.json"))
    text = entry.read_text()
    entry.write_text(text[: len(text) // 2])  # truncated
    counted.clear()
    again = _run(tmp_path / "a")
    assert counted == ["loo"]
    assert "rebuilt" in capsys.readouterr().out
    assert first == again


def test_the_key_covers_the_entry_model_and_code(tmp_path):
    processed, _, _ = _write_inputs(tmp_path, CHECKS)
    model = {"dependent": "syn", "terms": ["gpr", "rn", "gpr:rn"], "controls": ["x1"],
             "centre": ["gpr", "rn"]}
    boot = {"B": 99, "weights": "webb", "seed": 1}
    check = {"id": "x", "label": "X", "drop_countries": ["THA"]}
    key = robustness.check_key(check, model, {}, ["gpr:rn"], boot, 1, processed)
    assert key == robustness.check_key(dict(reversed(list(check.items()))), model, {},
                                       ["gpr:rn"], boot, 1, processed)  # order-free
    assert key != robustness.check_key({**check, "drop_countries": ["VNM"]}, model, {},
                                       ["gpr:rn"], boot, 1, processed)
    assert key != robustness.check_key(check, {**model, "controls": []}, {}, ["gpr:rn"], boot,
                                       1, processed)
    assert key != robustness.check_key(check, model, {}, ["gpr:rn"], {**boot, "B": 999}, 1,
                                       processed)
    assert key != robustness.check_key(check, model, {}, ["gpr:rn"], boot, 2, processed)


def test_undoing_an_edit_finds_the_earlier_result(counted, tmp_path):
    first = _run(tmp_path / "a")
    edited = copy.deepcopy(CHECKS)
    edited["checks"][1]["lag"] = ["gpr"]
    _run(tmp_path / "a", edited)
    counted.clear()
    assert _run(tmp_path / "a", CHECKS) == first  # back to the original entry
    assert counted == []


def test_worker_processes_write_the_same_bytes(tmp_path, monkeypatch):
    """Checks shared out to two worker processes (started fresh, one BLAS thread each; the
    longest first, finishing in any order) give the same files as one process."""
    monkeypatch.setenv("PIPELINE_CACHE", "off")
    monkeypatch.setenv("PIPELINE_WORKERS", "1")
    serial = _run(tmp_path / "a")
    monkeypatch.setenv("PIPELINE_WORKERS", "2")
    jobs = len(CHECKS["checks"]) + 1  # and the heterogeneity
    assert robustness.workers() == 2 and jobs >= robustness.MIN_POOL_JOBS
    assert _run(tmp_path / "b") == serial
