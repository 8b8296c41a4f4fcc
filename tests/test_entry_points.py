"""Entry points and small paths that no other test reached (``make coverage`` listed them):
Ctrl-C while a stage starts, the spec checker's command line, the sketch rewriter, a model's
``in`` test and the calibration's error for a free parameter without a range."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys

import pandas as pd
import pytest
import yaml

import analysis
from analysis import config
from analysis.data import specs
from analysis.simulation import calibration, mdl, runner, sketch
from tests.test_scenarios_spec import TOY

MODEL = config.SPECS / "sd" / "nickel.mdl"


# --------------------------------------------------------------------------- analysis/__init__
@pytest.mark.parametrize(("argv", "name"), [
    (["python", "-m", "analysis.stages.indices"], "indices"),
    (["python", "-m", "analysis.stages.robustness", "--check", "x"], "robustness"),
    (["python", "-m", "pytest", "tests"], None),
    (["python", "script.py"], None),
])
def test_stage_name_is_the_module_run_with_dash_m(monkeypatch, argv, name):
    monkeypatch.setattr(sys, "orig_argv", argv)
    assert analysis._stage_name() == name


def test_ctrl_c_while_a_stage_imports_is_one_line_and_exit_130(monkeypatch, capsys):
    monkeypatch.setattr(sys, "orig_argv", ["python", "-m", "analysis.stages.indices"])
    with pytest.raises(SystemExit) as stop:
        analysis._interrupted_while_starting(signal.SIGINT, None)
    assert stop.value.code == 130
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "[indices] interrupted (Ctrl-C) while starting; nothing was written\n"


# --------------------------------------------------------------------------- specs command line
def test_spec_checker_stops_at_the_first_bad_file_with_one_line(tmp_path, capsys):
    good = tmp_path / "indices.yaml"
    shutil.copy(config.SPECS / "indices.yaml", good)
    bad = tmp_path / "models.yaml"
    data = yaml.safe_load((config.SPECS / "models.yaml").read_text(encoding="utf-8"))
    data["no_such_key"] = 1
    bad.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    after = tmp_path / "robustness.yaml"
    shutil.copy(config.SPECS / "robustness.yaml", after)
    assert specs.main([str(good), str(bad), str(after)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2  # the good file, then the error; the third file is not read
    assert lines[0].endswith("indices.yaml: ok")
    assert lines[1].startswith("[specs] ERROR ") and "models.yaml" in lines[1]
    assert "no_such_key" in lines[1]


# --------------------------------------------------------------------------- sketch rewriter
def test_sketch_rewrite_restores_the_generated_sketch_and_keeps_the_equations(tmp_path):
    """``python -m analysis.simulation.sketch FILE`` on a copy of the model whose sketch is
    stale gives back the project's file byte for byte (the equations are kept, the sketch is
    drawn again from them)."""
    original = MODEL.read_text(encoding="utf-8")
    marker = sketch.MARKER.rstrip("\n")
    head = original.split(marker, 1)[0]
    stale = head + marker + "\n" + sketch.HEADER + "10,1,Ghost,10,10,40,20,3,3,0,0,0,0,0,0\n"
    path = tmp_path / "nickel.mdl"
    path.write_text(stale, encoding="utf-8")
    assert path.read_text(encoding="utf-8") != original
    done = subprocess.run([sys.executable, "-m", "analysis.simulation.sketch", str(path)],
                          capture_output=True, text=True, cwd=config.ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"rewrote the sketch of {path}\n"
    assert path.read_text(encoding="utf-8") == original
    assert sketch.check_sketch(mdl.parse_model(path)) == []


# --------------------------------------------------------------------------- model files
def test_a_model_contains_its_variables_under_vensim_name_identity():
    model = mdl.parse_model(MODEL)
    assert "Nickel price" in model
    assert "  nickel_PRICE " in model  # case, underscores and spaces as Vensim compares them
    assert '"Nickel price"' in model
    assert "Nickel prices" not in model


def test_a_free_parameter_without_a_range_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "open_range.mdl"
    path.write_text(TOY.replace("1/Year [0,0.3]", "1/Year [0,?]"), encoding="utf-8")
    model = runner.load(path)
    assert model.path == path.resolve()
    assert "Growth" not in model.ranges() and "Content" in model.ranges()
    with pytest.raises(mdl.ModelError) as error:
        calibration.Calibration(model, [calibration.FitSeries("out", "Outflow", None)],
                                None, ["Content", "Growth"], (2010, 2024))
    assert str(error.value) == ("open_range.mdl: free parameters without a range in the model "
                                "file: ['Growth']")
    # a bound given by the caller is a range
    cal = calibration.Calibration(
        model, [calibration.FitSeries("out", "Outflow", None)],
        pd.DataFrame({"series": ["out"], "year": [2010], "value": [1.0]}),
        ["Content", "Growth"], (2010, 2024), bounds={"Growth": (0.0, 0.2)})
    assert list(cal.lower) == [0.2, 0.0] and list(cal.upper) == [0.8, 0.2]


# --------------------------------------------------------------------------- stage streams
def test_inside_a_stage_stdout_and_stderr_are_no_terminal(tmp_path, monkeypatch, capsys):
    """What a stage prints goes through the log streams, which tell libraries (tqdm, pandas)
    that they are no terminal, so nothing draws cursor-moving bars into the log; each complete
    line reaches the log, a carriage-return update does not."""
    from analysis.data import io

    monkeypatch.setenv("PIPELINE_LOG_DIR", str(tmp_path))
    seen = {}

    def action():
        seen["out"], seen["err"] = sys.stdout.isatty(), sys.stderr.isatty()
        print("first line", flush=True)
        sys.stdout.write("progress 50%\rprogress 100%\n")
        print("to stderr", file=sys.stderr)

    assert io.run_stage("demo", action, verbose=False, record=False) == 0
    assert seen == {"out": False, "err": False}
    assert (tmp_path / "demo.log").read_text(encoding="utf-8").splitlines()[:3] == [
        "first line", "progress 100%", "to stderr"]
    assert capsys.readouterr().out.startswith("[demo] done in ")
