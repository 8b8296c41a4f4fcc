"""The two layers of ``analysis/`` (issue 21): stages on top talk only through files; the
libraries below never import a stage. Read with ``ast``: nothing is imported or run."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "analysis"
STAGES = sorted(p.stem for p in (PACKAGE / "stages").glob("*.py") if p.stem != "__init__")
LIBRARIES = ("data", "measures", "econometrics", "simulation", "publish")


def imported_modules(source: str) -> set[str]:
    """Every ``analysis...`` module a source imports, anywhere in it: ``from analysis.stages
    import models`` yields ``analysis.stages`` and ``analysis.stages.models``."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.add("<relative import>")
    return {m for m in found if m.startswith("analysis") or m == "<relative import>"}


def stage_imports(source: str, own: str | None) -> list[str]:
    """The stages (other than ``own``) a source imports."""
    modules = imported_modules(source)
    hits = {m.split(".")[2] for m in modules if m.startswith("analysis.stages.")}
    if "analysis.stages" in modules and not hits:
        hits.add("analysis.stages")
    return sorted(h for h in hits if h != own)


def test_the_walker_sees_every_form_of_import():
    source = ("from analysis.stages import models\n"
              "def f():\n    import analysis.stages.clean\n"
              "    from analysis.stages.indices import load_spec\n"
              "from analysis.econometrics import moderated\n")
    assert stage_imports(source, own="robustness") == ["clean", "indices", "models"]
    assert stage_imports("from analysis.data import io\n", own="clean") == []
    assert stage_imports("from . import models\n", own="x") == []
    assert "<relative import>" in imported_modules("from . import models\n")


def test_there_are_stages_and_libraries():
    assert {"fetch", "clean", "indices", "diagnostics", "models", "robustness", "nickel",
            "supply_risk", "scenarios", "scorecard", "report", "bench"} <= set(STAGES)
    assert not [p.name for p in PACKAGE.glob("*.py")
                if p.name not in ("__init__.py", "api.py", "config.py")]


@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_imports_another_stage(stage):
    source = (PACKAGE / "stages" / f"{stage}.py").read_text(encoding="utf-8")
    assert stage_imports(source, own=stage) == [], (
        f"analysis/stages/{stage}.py imports another stage; move the shared function into a "
        "library (analysis/data, measures, econometrics, simulation or publish)")
    assert "<relative import>" not in imported_modules(source)
    tree = ast.parse(source)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body), (
        f"analysis/stages/{stage}.py has no main(): every stage is a `python -m` entry")


@pytest.mark.parametrize("path", sorted(p for lib in LIBRARIES
                                        for p in (PACKAGE / lib).rglob("*.py")),
                         ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_library_imports_a_stage(path):
    assert stage_imports(path.read_text(encoding="utf-8"), own=None) == []
