"""Line and branch coverage of ``analysis/`` per module, and every function no test calls.

    python tools/coverage_report.py [.make/coverage.json] [--fail-under 90] [--strict-writers]

Reads the JSON report of coverage.py (``make coverage`` writes ``.make/coverage.json``) and
prints, per module: statements, statements missed, line coverage (covered statements /
statements), branches, branches missed, branch coverage (covered branches / branches), and the
totals. Then the functions with zero executed lines: each ``def`` of every module (methods and
nested functions included, found with :mod:`ast`) whose body holds at least one statement
coverage measures and none of them ran. A function whose source writes a file (``to_csv``,
``to_parquet``, ``write_text``, ``atomic_write_*``, ``save_figure``, ``savefig``, ``frame_table``
...) is marked ``writes``: every such function needs at least one call.

Exit code 0; 1 when the total line coverage is below ``--fail-under`` or, with
``--strict-writers``, when a function that writes an output is never called; 2 when the JSON
file is missing or unreadable.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / ".make" / "coverage.json"
# Calls that write a file: a function whose source holds one of these writes an output.
WRITE_CALLS = re.compile(r"\.(to_csv|to_parquet|to_excel|to_json|to_html|to_latex|write_text|"
                         r"write_bytes|savefig|save)\(|\b(atomic_write_text|atomic_write_bytes|"
                         r"atomic_path|save_figure|frame_table|write_parquet|write_csv)\(")


@dataclass(frozen=True)
class Function:
    """One ``def``: its qualified name, first line, and whether its source writes a file."""

    module: str
    qualname: str
    line: int
    statements: int
    writes: bool


def percent(covered: int, total: int) -> float:
    """covered / total in percent; 100 when there is nothing to cover."""
    return 100.0 * covered / total if total else 100.0


def functions_in(source: str) -> list[tuple[str, int, int, int, str]]:
    """Every function of a module as ``(qualname, def line, first body line, last line,
    source segment)``; the body starts after the docstring, so a function with only a docstring
    has no body lines."""
    tree = ast.parse(source)
    found: list[tuple[str, int, int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                body = child.body
                if (body and isinstance(body[0], ast.Expr)
                        and isinstance(body[0].value, ast.Constant)
                        and isinstance(body[0].value.value, str)):
                    body = body[1:]
                first = body[0].lineno if body else child.end_lineno + 1
                segment = ast.get_source_segment(source, child) or ""
                found.append((name, child.lineno, first, child.end_lineno, segment))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def uncalled(module: str, source: str, executed: set[int], missing: set[int]) -> list[Function]:
    """The functions of ``source`` none of whose measured body statements ran."""
    statements = executed | missing
    result = []
    for qualname, line, first, last, segment in functions_in(source):
        body = {n for n in statements if first <= n <= last}
        if body and not body & executed:
            result.append(Function(module, qualname, line, len(body),
                                   bool(WRITE_CALLS.search(segment))))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/coverage_report.py",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="?", type=Path, default=DEFAULT_JSON,
                        help="coverage.py's JSON report (default .make/coverage.json)")
    parser.add_argument("--fail-under", type=float, default=0.0, metavar="PERCENT",
                        help="exit 1 when the total line coverage is below PERCENT")
    parser.add_argument("--strict-writers", action="store_true",
                        help="exit 1 when a function that writes an output is never called")
    args = parser.parse_args(argv)
    try:
        data = json.loads(args.json.read_text())
        files = data["files"]
    except (OSError, ValueError, KeyError) as error:
        print(f"coverage_report: cannot read {args.json}: {error}", file=sys.stderr)
        return 2

    rows = []
    never: list[Function] = []
    totals = dict.fromkeys(("stmts", "miss", "branches", "brmiss"), 0)
    for name in sorted(files):
        summary = files[name]["summary"]
        row = {"module": name, "stmts": summary["num_statements"],
               "miss": summary["missing_lines"], "branches": summary.get("num_branches", 0),
               "brmiss": summary.get("missing_branches", 0)}
        rows.append(row)
        for key in totals:
            totals[key] += row[key]
        path = ROOT / name
        if path.exists():
            never += uncalled(name, path.read_text(encoding="utf-8"),
                              set(files[name]["executed_lines"]),
                              set(files[name]["missing_lines"]))

    width = max(len(row["module"]) for row in [*rows, {"module": "TOTAL"}])
    header = (f"{'module':<{width}}  {'stmts':>6} {'miss':>5} {'lines':>6}  "
              f"{'branch':>6} {'miss':>5} {'branches':>8}")
    print(header)
    print("-" * len(header))
    for row in [*rows, {"module": "TOTAL", **totals}]:
        if row["module"] == "TOTAL":
            print("-" * len(header))
        lines = percent(row["stmts"] - row["miss"], row["stmts"])
        branches = percent(row["branches"] - row["brmiss"], row["branches"])
        print(f"{row['module']:<{width}}  {row['stmts']:>6} {row['miss']:>5} {lines:>5.1f}%  "
              f"{row['branches']:>6} {row['brmiss']:>5} {branches:>7.1f}%")

    total_lines = percent(totals["stmts"] - totals["miss"], totals["stmts"])
    writers = [f for f in never if f.writes]
    print(f"\nfunctions no test calls: {len(never)} ({len(writers)} of them write an output)")
    for function in never:
        mark = "  [writes an output]" if function.writes else ""
        print(f"  {function.module}:{function.line}  {function.qualname} "
              f"({function.statements} statements){mark}")

    status = 0
    if total_lines < args.fail_under:
        print(f"\nFAIL: line coverage {total_lines:.1f}% is below {args.fail_under:g}%",
              file=sys.stderr)
        status = 1
    if args.strict_writers and writers:
        print(f"\nFAIL: {len(writers)} function(s) that write an output are never called",
              file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
