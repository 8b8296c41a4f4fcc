"""``python -m analysis.data.specs``: every spec file of the project is checked by the same
loader its stage uses, the scenario and scorecard specs included, and a bad one gives exit 2
and one line naming the file and the entry."""

from __future__ import annotations

from analysis import config
from analysis.data import specs


def test_the_checker_covers_every_spec_file(capsys):
    assert specs.main([]) == 0
    out = capsys.readouterr().out.splitlines()
    checked = {line.split()[1].rstrip(":") for line in out}
    expected = {f"specs/{p.name}" for p in config.SPECS.glob("*.yaml")
                if p.stem != "inference_sizes"}
    expected |= {f"specs/regions/{p.name}" for p in config.REGIONS.glob("*.yaml")}
    assert checked == expected
    assert {"specs/scenarios.yaml", "specs/scorecard.yaml"} <= checked


def test_a_bad_scorecard_spec_is_one_line_naming_file_and_entry(tmp_path, capsys):
    path = tmp_path / "scorecard.yaml"
    text = (config.SPECS / "scorecard.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("direction: 1", "direction: 2", 1), encoding="utf-8")
    assert specs.main([str(path)]) == 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and str(path) in out and "direction" in out


def test_a_bad_scenario_spec_is_one_line_naming_file_and_entry(tmp_path, capsys):
    path = tmp_path / "scenarios.yaml"
    path.write_text("scenarios: []\n", encoding="utf-8")
    assert specs.main([str(path)]) == 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(f"[specs] ERROR {path}: ")
    assert "model" in out
