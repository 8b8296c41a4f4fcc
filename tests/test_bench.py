"""``make bench`` (analysis/stages/bench.py) without running the pipeline: its tables and
records on small hand-computed inputs, its ``make`` driver against a stand-in ``make``, its
command line, and its CRV1 engine against ours and pyfixest's on a small unbalanced panel. The
parts that need the real estimation panel are in tests/test_end_to_end.py."""

from __future__ import annotations

import json
import os
import platform
import shutil
import stat

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import config
from analysis.econometrics import moderated
from analysis.econometrics.estimation import estimate
from analysis.stages import bench, models

# --------------------------------------------------------------------------- tables
TIMINGS = {"report": 1.5, "clean": 3.0, "zeta": 0.5, "fetch": 5.0}


def test_stage_timings_in_stage_order_with_shares(tmp_path):
    path = tmp_path / "timings.json"
    path.write_text(json.dumps(TIMINGS))
    table = bench.stage_timings(path)
    # the pipeline's order first, then stages it does not know, by name
    assert list(table["stage"]) == ["fetch", "clean", "report", "zeta"]
    assert list(table["seconds"]) == [5.0, 3.0, 1.5, 0.5]
    assert table["share"].tolist() == pytest.approx([0.5, 0.3, 0.15, 0.05])


def test_stage_timings_of_a_run_never_timed_is_empty(tmp_path):
    table = bench.stage_timings(tmp_path / "missing.json")
    assert table.empty and list(table.columns) == ["stage", "seconds", "share"]


def _run(label: str, jobs: int, wall: float, timings: dict) -> dict:
    stages = pd.DataFrame([{"stage": s, "seconds": v} for s, v in timings.items()])
    stages["share"] = stages["seconds"] / stages["seconds"].sum()
    return {"label": label, "jobs": jobs, "wall": wall, "stages": stages,
            "load_before": (0.25, 0.5, 0.75), "load_after": (1.0, 1.0, 1.0)}


def test_readme_table_from_one_bench_run():
    info = {"cpu": "Test CPU", "logical_cores": 2, "platform": "Linux-x", "python": "3.11.7"}
    runs = [_run("warm", 2, 41.26, {"fetch": 1.0, "clean": 3.0}),
            _run("serial", 1, 60.0, {"fetch": 2.0})]
    ratio = pd.DataFrame({"model": ["M1", "M2", "M1"],
                          "tier": ["point + CRV1", "point + CRV1", "+ CRV3, DK"],
                          "ours_s": [0.002, 0.004, 0.05], "pyfixest_s": [0.02, 0.01, 0.1],
                          "ratio": [0.1, 0.4, 0.5]})
    wcr = {"B": 99_999, "model": "M4", "term": "gpr:rn", "ours_s": 0.1234, "pyfixest_s": 2.5,
           "ratio": 0.0494, "p_ours": 0.81234, "p_pyfixest": 0.81235, "constant_draws": 3,
           "clusters": 10}
    lines = bench.readme_table(info, runs, ratio, wcr).splitlines()
    assert lines[0] == "Machine: Test CPU, 2 logical cores, Linux-x, Python 3.11.7."
    assert lines[2:4] == ["| what | result |", "|---|---|"]
    assert lines[4] == ("| `make clean && make all`, warm (JOBS=2; load 0.25 before) | 41.3 s "
                        "wall; stages: fetch 1.0 s (25%), clean 3.0 s (75%); sum 4.0 s |")
    assert lines[5].startswith("| `make clean && make all`, serial (JOBS=1;")
    assert lines[6] == ("| per model, ours / pyfixest, point + CRV1 | 0.10–0.40× (M1–M5; ours "
                        "2–4 ms, pyfixest 10–20 ms) |")
    assert lines[7] == ("| per model, ours / pyfixest, + CRV3, DK | 0.50–0.50× (M1–M5; ours "
                        "50–50 ms, pyfixest 100–100 ms) |")
    assert lines[8].startswith("| WCR, B = 99,999 Webb draws, M4 gpr:rn, year effects refitted")
    assert "0.123 s / 2.500 s = 0.05× (p 0.81234 / 0.81235; the 3 draws" in lines[8]
    assert len(lines) == 9
    # without the estimation comparison: the machine and the runs only
    assert len(bench.readme_table(info, runs[:1], None, None).splitlines()) == 5


SIZE = pd.DataFrame([
    # method, model, term, rate, check, variable, scheme
    ("CRV1", "M1", "gpr", 0.088, None, None, None),
    ("CRV1", "M2", "gpr", 0.0925, None, None, None),
    ("CRV1", "M2", "gpr:rn", 0.06701, None, None, None),
    ("WCR", "M1", "gpr", 0.051, None, None, None),
    ("WCR", "M2", "gpr", 0.0475, None, None, None),
    ("WCR", "M2", "gpr:rn", 0.04949, None, None, None),
    ("RI ri_a (years, gpr)", "M1", "gpr", 0.0425, "ri_a", "gpr", "years"),
    ("RI ri_b (countries, gpr:rn)", "M4", "gpr:rn", 0.12, "ri_b", "rn", "countries"),
], columns=["method", "model", "term", "rejection_rate", "check", "variable", "scheme"])
SIZE["mc_se"] = np.sqrt(SIZE["rejection_rate"] * (1 - SIZE["rejection_rate"]) / 2000)
DESIGN = {"n_obs": 182, "n_clusters": 10, "n_periods": 23, "clusters": ["CHN", "IDN"]}
SETTINGS = {"reps": 2000, "bootstrap_draws": 399, "ri_draws": 199, "rho": 0.5,
            "seconds": 36.4}


def test_size_record_takes_each_methods_largest_rate_and_each_ri_check():
    record = bench.size_record(SIZE, DESIGN, SETTINGS)
    assert record["design"] == DESIGN and record["simulation"] == SETTINGS
    assert record["methods"] == {
        "CRV1": {"size": 0.0925, "terms": {"M1 gpr": 0.088, "M2 gpr": 0.0925,
                                           "M2 gpr:rn": 0.067}},
        "WCR": {"size": 0.051, "terms": {"M1 gpr": 0.051, "M2 gpr": 0.0475,
                                         "M2 gpr:rn": 0.0495}}}
    assert record["ri"] == {
        "ri_a": {"variable": "gpr", "scheme": "years", "term": "gpr", "model": "M1",
                 "size": 0.0425},
        "ri_b": {"variable": "rn", "scheme": "countries", "term": "gpr:rn", "model": "M4",
                 "size": 0.12}}


def test_the_recorded_sizes_are_what_the_stages_read_back(tmp_path):
    """write_size_record -> load_sizes -> the models stage's readers: the same numbers."""
    path = bench.write_size_record(bench.size_record(SIZE, DESIGN, SETTINGS),
                                   tmp_path / "inference_sizes.yaml")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Size at 5% of every test the pipeline reports")
    sizes = moderated.load_sizes(path)
    assert sizes == yaml.safe_load(text)
    assert models.method_size(sizes, "CRV1") == 0.0925
    assert models.method_size_range(sizes, "WCR") == (0.0475, 0.051)
    assert models.method_size(sizes, "DK") is None
    assert models.sizes_status(sizes, DESIGN) == (True, "")
    assert models.sizes_status(sizes, {**DESIGN, "n_obs": 181})[0] is False


def test_size_readme_table():
    lines = bench.size_readme_table(SIZE.iloc[[0, 6]], DESIGN, SETTINGS).splitlines()
    assert lines == [
        ("Real design: N = 182, G = 10, T = 23; 2000 replications, B = 399, 199 "
         "permutations, rho 0.5."), "",
        "| method | model | term | size at 5% (MC s.e.) |", "|---|---|---|---|",
        "| CRV1 | M1 | gpr | 8.8% (0.6%) |",
        "| RI ri_a (years, gpr) | M1 | gpr | 4.2% (0.5%) |"]
    assert bench._seconds(3.14159) == "3.1"


def test_median_time_is_the_median_of_the_repeats(monkeypatch):
    clock = iter([0.0, 1.0, 10.0, 13.0, 20.0, 22.0])  # durations 1, 3, 2
    calls = []
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    assert bench._median_time(lambda *a: calls.append(a), 3, "x", 1) == 2.0
    assert calls == [("x", 1)] * 3


def test_machine_names_cores_platform_and_load():
    info = bench.machine()
    assert info["logical_cores"] == os.cpu_count()
    assert info["python"] == platform.python_version()
    assert len(info["load_average"]) == 3 and info["cpu"]


# --------------------------------------------------------------------------- the make driver
FAKE_MAKE = """#!/bin/sh
echo "$* | cache=${PIPELINE_CACHE_DIR:-} | makeflags=${MAKEFLAGS:-unset}" >> "$FAKE_MAKE_LOG"
case " $* " in
  *" all "*)
    if [ -n "${PIPELINE_CACHE_DIR:-}" ]; then ls "$PIPELINE_CACHE_DIR" >> "$FAKE_MAKE_LOG"; fi
    printf '{"clean": 2.0, "fetch": 1.0}' > "$FAKE_TIMINGS"
    echo "make all output"; exit "${FAKE_STATUS:-0}";;
esac
"""


@pytest.fixture
def fake_make(tmp_path, monkeypatch):
    """A stand-in ``make`` first on PATH (the real one would clean the project's outputs)."""
    folder = tmp_path / "bin"
    folder.mkdir()
    make = folder / "make"
    make.write_text(FAKE_MAKE)
    make.chmod(make.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    assert shutil.which("make") == str(make)
    log = tmp_path / "make.log"
    monkeypatch.setenv("FAKE_MAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_TIMINGS", str(tmp_path / "outputs" / "timings.json"))
    monkeypatch.setenv("MAKEFLAGS", "-j8")
    (tmp_path / "outputs").mkdir()
    monkeypatch.setattr(config, "OUTPUTS", tmp_path / "outputs")
    return log


def test_run_pipeline_cleans_then_builds_and_reads_the_timings(fake_make, monkeypatch):
    cache_dir = fake_make.parent / "cache"
    (cache_dir / "parsed").mkdir(parents=True)
    (cache_dir / "robustness").mkdir()
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(cache_dir))
    run = bench.run_pipeline("warm", jobs=1)
    assert (run["label"], run["jobs"]) == ("warm", 1) and run["wall"] >= 0
    assert list(run["stages"]["stage"]) == ["fetch", "clean"]
    assert run["stages"]["share"].tolist() == pytest.approx([1 / 3, 2 / 3])
    assert len(run["load_before"]) == 3 and len(run["load_after"]) == 3
    calls = fake_make.read_text().splitlines()
    # make's own variables are not passed on (the bench may itself run under make)
    assert calls[0] == f"--no-print-directory clean | cache={cache_dir} | makeflags=unset"
    assert calls[1] == f"--no-print-directory all JOBS=1 | cache={cache_dir} | makeflags=unset"
    assert calls[2:] == ["parsed", "robustness"]


def test_results_cold_runs_on_a_scratch_copy_of_the_parsed_tables(fake_make, monkeypatch):
    cache_dir = fake_make.parent / "cache"
    (cache_dir / "parsed").mkdir(parents=True)
    (cache_dir / "parsed" / "wdi-0123.parquet").write_bytes(b"x")
    (cache_dir / "robustness").mkdir()
    monkeypatch.setenv("PIPELINE_CACHE_DIR", str(cache_dir))
    bench.run_pipeline("results-cold", jobs=2, results_cold=True)
    calls = fake_make.read_text().splitlines()
    scratch = calls[1].split("cache=")[1].split(" |")[0]
    assert scratch != str(cache_dir) and "bench-cache-" in scratch
    assert calls[1].startswith("--no-print-directory all JOBS=2")
    assert calls[2:] == ["parsed"]  # the parsed tables only, no robustness results
    assert not os.path.exists(scratch)  # removed afterwards
    assert (cache_dir / "robustness").exists()  # the real cache untouched


def test_a_failed_make_all_stops_the_bench_with_its_output(fake_make, monkeypatch):
    monkeypatch.setenv("FAKE_STATUS", "2")
    with pytest.raises(SystemExit) as stop:
        bench.run_pipeline("warm")
    assert str(stop.value).startswith("make all failed (warm):\nmake all output")


def test_command_line_without_an_estimation_panel(fake_make, monkeypatch, tmp_path, capsys):
    """``--runs warm`` with the stand-in make and no estimation panel: the machine, the run,
    the scenario engine's Monte Carlo time and the README table."""
    monkeypatch.setattr(config, "DATA_PROCESSED", tmp_path / "empty")
    assert bench.main(["--runs", "warm", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "== make clean && make all: warm ==" in out
    assert "wall clock" in out and "(JOBS=2)" in out
    assert "(no estimation panel: run `make models` for the timing comparison)" in out
    assert "1000 runs of combined_extreme (" in out
    table = out.split("== README benchmark table ==\n", 1)[1].splitlines()
    assert table[2:4] == ["| what | result |", "|---|---|"]
    assert table[4].startswith("| `make clean && make all`, warm (JOBS=2;")
    assert "fetch 1.0 s (33%), clean 2.0 s (67%); sum 3.0 s |" in table[4]


def test_command_line_reads_the_last_timings_with_runs_none(fake_make, monkeypatch, tmp_path,
                                                            capsys):
    monkeypatch.setattr(config, "DATA_PROCESSED", tmp_path / "empty")
    (config.OUTPUTS / "timings.json").write_text(json.dumps({"fetch": 4.0, "clean": 1.0}))
    from analysis.simulation import runner

    monkeypatch.setattr(runner, "time_monte_carlo", lambda spec: {
        "runs": 7, "scenario": "s", "equations": 3, "steps": 8, "drawn_parameters": 2,
        "seconds": 0.5, "all_seconds": [0.5]})
    assert bench.main(["--runs", "none"]) == 0
    out = capsys.readouterr().out
    assert "== Stage runtimes (last make all, outputs/timings.json) ==" in out
    assert not fake_make.exists()  # make never ran
    assert "7 runs of s (3 equations, 8 steps, 2 parameters drawn): 0.50 s" in out


def test_command_line_refuses_an_unknown_run(capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--runs", "warm,tepid"])
    assert stop.value.code == 2
    assert "unknown runs ['tepid']" in capsys.readouterr().err


# --------------------------------------------------------------------------- CRV1 engine
def _panel() -> pd.DataFrame:
    """7 countries, 4 to 9 years each (unbalanced), two regressors."""
    rng = np.random.default_rng(7)
    rows = []
    for i, country in enumerate(["AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG"]):
        for year in range(2000, 2004 + i % 6):
            x1, x2 = rng.normal(), rng.normal()
            rows.append({"iso3": country, "year": year, "x1": x1, "x2": x2,
                         "y": 0.5 * x1 - 0.25 * x2 + 0.3 * i + 0.1 * (year - 2000)
                         + rng.normal()})
    frame = pd.DataFrame(rows)
    frame["cid"] = pd.factorize(frame["iso3"], sort=True)[0]
    return frame


def test_the_bench_crv1_engine_equals_the_models_stage_and_pyfixest():
    """The bench times three implementations of the same CRV1 fit: they must agree."""
    frame = _panel()
    assert frame.groupby("iso3").size().nunique() > 1
    ours = bench._crv1_only(frame, "y", ["x1", "x2"])
    stage = estimate(frame, "t", "y", ["x1", "x2"]).table["std_error"]
    theirs = bench._pyfixest_fit(frame, "y ~ x1 + x2 | iso3 + year").se()
    assert ours == pytest.approx(stage[["x1", "x2"]].to_numpy(), rel=1e-8)
    assert ours == pytest.approx(theirs[["x1", "x2"]].to_numpy(), rel=1e-8)
