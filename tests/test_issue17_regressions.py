"""One test per wrong-result defect of issue 17, each written against interfaces the code had
before the fix, so that it fails on that code and passes now:

1. the Word table lost its stars (``**`` stripped as Markdown bold);
2. a robustness check that drops nothing ran as a copy of the main model;
3. ``rn_measures.csv`` was not validated (an unknown country code was accepted);
4. ``analysis/config.py`` (the country set) was a prerequisite of no Make rule.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from docx import Document

from analysis import config
from analysis.data.io import DataError
from analysis.econometrics import moderated
from analysis.publish import tables
from analysis.stages import indices, robustness
from tests.test_models import SPEC, simulated_panel

LABELS = {"syn": "SYN", "gpr": "GPR", "rn": "RN", "ti": "TI", "x1": "Control one",
          "x2": "Control two"}


def test_word_table_has_the_stars_of_the_markdown_table(tmp_path):
    frame, _ = moderated.estimation_frame(simulated_panel(noise=1.5, seed=11), SPEC)
    results = moderated.fit_models(frame, SPEC, bootstrap=None, progress=False)
    order = [*SPEC["models"]["M5"], *SPEC["controls"]]
    tables.write_regression_table(results, LABELS, order, tmp_path / "t", "T", "note")
    tables.write_docx(results, LABELS, order, tmp_path / "t.docx", "T", "note")
    md = (tmp_path / "t.md").read_text().split("**Statistics**")[0]
    md_cells = re.findall(r"\| (-?\d+\.\d{4}\**)(?= \|)", md)
    doc_cells = [cell.text for row in Document(str(tmp_path / "t.docx")).tables[0].rows
                 for cell in row.cells if re.fullmatch(r"-?\d+\.\d{4}\**", cell.text)]
    assert any(c.endswith("***") for c in md_cells)
    assert doc_cells[:len(md_cells)] == md_cells


def _project(root):
    processed = root / "processed"
    processed.mkdir(parents=True)
    simulated_panel(n_years=20, seed=3).to_parquet(processed / "panel.parquet", index=False)
    spec = {**SPEC, "labels": LABELS,
            "bootstrap": {"B": 99, "weights": "webb", "seed": 1, "rademacher_enumeration": False,
                          "all_terms": False, "band_draws": 99},
            "marginal_effects": {"model": "M4", "percentiles": [25, 50, 75]}}
    (root / "models.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return processed


def test_a_check_that_drops_nothing_is_an_error(tmp_path):
    processed = _project(tmp_path)
    checks = {"base_model": "M4", "curve_terms": ["gpr:rn", "gpr:ti"], "ri_seed": 1,
              "checks": [{"id": "main", "label": "Main", "group": "Baseline"},
                         {"id": "drop_xxx", "label": "Drop XXX", "group": "Sample",
                          "drop_countries": ["XXX"]}],
              "heterogeneity": {"groups": [{"id": "five", "label": "Five",
                                            "keep_countries": ["CHN", "IDN", "MYS", "PHL",
                                                               "THA"]}], "by_chain": False}}
    (tmp_path / "robustness.yaml").write_text(yaml.safe_dump(checks))
    with pytest.raises(DataError, match=r"drop_countries.*'XXX' matches no row"):
        robustness.run(processed, tmp_path / "outputs", tmp_path / "robustness.yaml",
                       tmp_path / "models.yaml")


def test_a_measure_with_an_unknown_country_is_an_error(tmp_path):
    text = (config.DATA_RAW / "rn_measures.csv").read_text(encoding="utf-8")
    bad = tmp_path / "rn_measures.csv"
    bad.write_text(re.sub(r"\n(PHL-\d+),PHL,", r"\n\1,PHI,", text, count=1), encoding="utf-8")
    with pytest.raises(DataError, match=r"rn_measures\.csv, line \d+ \(measure_id PHL-\d+\), "
                                        r"column 'country': 'PHI'"):
        indices.read_measures(bad)


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_the_country_set_is_a_prerequisite_of_every_stage():
    run = subprocess.run(["make", "-pq", "help"], cwd=config.ROOT, capture_output=True,
                         text=True, check=False, timeout=120)
    rules = {m.group(1): m.group(2).split() for m in
             re.finditer(r"^([^#\s][^:=\n]*):(?!=)[ \t]*(.*)$", run.stdout, re.MULTILINE)}
    for output in ("data/processed/panel_clean.parquet", "data/processed/indices.parquet",
                   "outputs/estimates.csv", "outputs/robustness.csv", "outputs/report.html"):
        assert "analysis/config.py" in rules[output], output
