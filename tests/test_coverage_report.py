"""tools/coverage_report.py (``make coverage``): per-module line and branch coverage and the
functions no test calls, on a hand-written module and coverage report."""

from __future__ import annotations

import json
import textwrap

import pytest

from tools import coverage_report as report

SOURCE = textwrap.dedent('''\
    """Module docstring."""


    def called(x):
        """Docstring only lines are not statements."""
        return x + 1


    def never(path):
        path.write_text("x")
        return path


    class Box:
        def method(self):
            return 1

        def other(self):
            def inner():
                return 2
            return 3


    def empty():
        """Only a docstring: nothing to run."""
    ''')
# statement lines as coverage.py counts them (def lines run at import)
EXECUTED = {1, 4, 6, 9, 14, 15, 18, 19, 21, 24}
MISSING = {10, 11, 16, 20}


def test_functions_in_lists_every_def_with_its_body_lines():
    found = {name: (line, first, last) for name, line, first, last, _ in
             report.functions_in(SOURCE)}
    assert found == {"called": (4, 6, 6), "never": (9, 10, 11), "Box.method": (15, 16, 16),
                     "Box.other": (18, 19, 21), "Box.other.inner": (19, 20, 20),
                     "empty": (24, 26, 25)}


def test_uncalled_are_the_functions_none_of_whose_statements_ran():
    uncalled = report.uncalled("m.py", SOURCE, EXECUTED, MISSING)
    assert [(f.qualname, f.line, f.statements, f.writes) for f in uncalled] == [
        ("never", 9, 2, True), ("Box.method", 15, 1, False),
        ("Box.other.inner", 19, 1, False)]


def _coverage_json(tmp_path, files: dict) -> str:
    path = tmp_path / "coverage.json"
    path.write_text(json.dumps({"files": files}))
    return str(path)


def _entry(statements: int, missing: list[int], branches: int, missing_branches: int,
           executed: list[int]) -> dict:
    return {"summary": {"num_statements": statements, "missing_lines": len(missing),
                        "num_branches": branches, "missing_branches": missing_branches},
            "executed_lines": executed, "missing_lines": missing}


def test_table_totals_and_the_threshold(tmp_path, capsys):
    path = _coverage_json(tmp_path, {
        "analysis/a.py": _entry(40, list(range(1, 5)), 10, 5, []),
        "analysis/b.py": _entry(60, list(range(1, 7)), 0, 0, []),
    })
    assert report.main([path, "--fail-under", "90"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["analysis/a.py", "40", "4", "90.0%", "10", "5", "50.0%"]
    assert lines[3].split() == ["analysis/b.py", "60", "6", "90.0%", "0", "0", "100.0%"]
    assert lines[5].split() == ["TOTAL", "100", "10", "90.0%", "10", "5", "50.0%"]
    assert report.main([path, "--fail-under", "90.1"]) == 1
    assert "below 90.1%" in capsys.readouterr().err


def test_strict_writers_fails_on_a_writer_no_test_calls(tmp_path, capsys, monkeypatch):
    (tmp_path / "analysis").mkdir()
    (tmp_path / "analysis" / "m.py").write_text(SOURCE)
    monkeypatch.setattr(report, "ROOT", tmp_path)
    path = _coverage_json(tmp_path, {"analysis/m.py": _entry(
        14, sorted(MISSING), 0, 0, sorted(EXECUTED))})
    assert report.main([path]) == 0
    out = capsys.readouterr().out
    assert "functions no test calls: 3 (1 of them write an output)" in out
    assert "analysis/m.py:9  never (2 statements)  [writes an output]" in out
    assert report.main([path, "--strict-writers"]) == 1


def test_a_missing_report_is_exit_2(tmp_path, capsys):
    assert report.main([str(tmp_path / "none.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(("covered", "total", "expected"), [(0, 0, 100.0), (1, 4, 25.0)])
def test_percent(covered, total, expected):
    assert report.percent(covered, total) == expected
