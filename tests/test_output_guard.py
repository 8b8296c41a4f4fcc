"""The refactor guard (tools/output_guard.py) notices a changed, missing or new built file."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("output_guard", ROOT / "tools" / "output_guard.py")
output_guard = importlib.util.module_from_spec(spec)
spec.loader.exec_module(output_guard)


def _build(root: Path) -> None:
    (root / "outputs" / "tables").mkdir(parents=True)
    (root / "outputs" / "logs").mkdir()
    (root / "data" / "processed").mkdir(parents=True)
    (root / "outputs" / "estimates.csv").write_text("term,estimate\ngpr,0.1\n")
    (root / "outputs" / "tables" / "main.md").write_text("| a |\n")
    (root / "data" / "processed" / "panel.parquet").write_bytes(b"\x00\x01")
    (root / "outputs" / "timings.json").write_text('{"models": 1.0}')
    (root / "outputs" / "logs" / "models.log").write_text("run 1")


def test_identical_builds_pass_and_volatile_files_are_ignored(tmp_path: Path) -> None:
    _build(tmp_path)
    before = output_guard.snapshot(tmp_path)
    assert sorted(before) == ["data/processed/panel.parquet", "outputs/estimates.csv",
                              "outputs/tables/main.md"]
    (tmp_path / "outputs" / "timings.json").write_text('{"models": 2.0}')
    (tmp_path / "outputs" / "logs" / "models.log").write_text("run 2")
    assert output_guard.compare(before, output_guard.snapshot(tmp_path)) == []


def test_changed_missing_and_new_files_are_reported(tmp_path: Path) -> None:
    _build(tmp_path)
    before = output_guard.snapshot(tmp_path)
    (tmp_path / "outputs" / "estimates.csv").write_text("term,estimate\ngpr,0.2\n")
    (tmp_path / "outputs" / "tables" / "main.md").unlink()
    (tmp_path / "outputs" / "extra.csv").write_text("x\n")
    assert output_guard.compare(before, output_guard.snapshot(tmp_path)) == [
        "missing now: outputs/tables/main.md",
        "new: outputs/extra.csv",
        "differs: outputs/estimates.csv",
    ]


def test_check_exits_one_on_a_difference(tmp_path: Path) -> None:
    _build(tmp_path)
    record = tmp_path / "hashes.json"
    assert output_guard.main(["record", str(record), "--root", str(tmp_path)]) == 0
    assert output_guard.main(["check", str(record), "--root", str(tmp_path)]) == 0
    (tmp_path / "data" / "processed" / "panel.parquet").write_bytes(b"\x00\x02")
    assert output_guard.main(["check", str(record), "--root", str(tmp_path)]) == 1
