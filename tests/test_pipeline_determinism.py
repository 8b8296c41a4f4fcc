"""Two complete passes of the estimation stages on a synthetic panel give identical bytes, and a
robustness check added as one spec entry appears in the robustness table."""

from __future__ import annotations

import copy
import hashlib

import numpy as np
import yaml

from analysis.stages import models, robustness
from tests.test_models import SPEC, simulated_panel

CHECKS = {
    "base_model": "M4",
    "curve_terms": ["gpr:rn", "gpr:ti"],
    "ri_seed": 7,
    "checks": [
        {"id": "main", "label": "Main specification (M4)", "group": "Baseline"},
        {"id": "lags", "label": "Lagged", "group": "Timing", "lag": ["gpr", "rn", "ti"]},
        {"id": "loo", "label": "Leave one out", "group": "Jackknife", "jackknife": True},
        {"id": "ri", "label": "RI: GPR across years", "group": "Placebo",
         "permute": {"variable": "gpr", "scheme": "years", "draws": 30}},
        {"id": "ri_rn", "label": "RI: GPR x RN, RN paths", "group": "Placebo",
         "permute": {"variable": "rn", "scheme": "countries", "draws": 30, "term": "gpr:rn"}},
    ],
    "heterogeneity": {"groups": [{"id": "big", "label": "Five countries",
                                  "keep_countries": ["CHN", "IDN", "MYS", "PHL", "THA"]}],
                      "by_chain": False},
}


def _write_inputs(root, checks):
    processed = root / "processed"
    processed.mkdir(parents=True)
    panel = simulated_panel(n_years=20, seed=5)
    # a control without effect, and one with a small effect: p-values in several star bands
    rng = np.random.default_rng(5)
    panel["x3"] = rng.normal(size=len(panel))
    panel["x4"] = rng.normal(size=len(panel))
    panel["syn"] = panel["syn"] + 0.18 * panel["x4"]
    panel.to_parquet(processed / "panel.parquet", index=False)
    spec = copy.deepcopy(SPEC)
    spec["controls"] = [*spec["controls"], "x3", "x4"]
    spec["bootstrap"] = {"B": 999, "weights": "webb", "seed": 3, "rademacher_enumeration": True,
                         "all_terms": True, "band_draws": 199}
    spec["marginal_effects"] = {"model": "M4", "percentiles": [10, 25, 50, 75, 90]}
    spec["power"] = {"reps": 60, "bootstrap_draws": 99, "calibration_reps": 30}
    spec["labels"] = {"syn": "SYN", "gpr": "GPR", "rn": "RN", "ti": "TI", "gpr:rn": "GPR × RN",
                      "x1": "Control_1", "x2": "Control 2", "x3": "Control 3", "x4": "Control 4"}
    model_spec = root / "models.yaml"
    model_spec.write_text(yaml.safe_dump(spec, allow_unicode=True))
    check_spec = root / "robustness.yaml"
    check_spec.write_text(yaml.safe_dump(checks, allow_unicode=True))
    return processed, model_spec, check_spec


def _run(root, checks=CHECKS):
    processed, model_spec, check_spec = _write_inputs(root, checks)
    outputs = root / "outputs"
    models.run(processed, outputs, model_spec)
    robustness.run(processed, outputs, check_spec, model_spec)
    return outputs


def _digests(outputs):
    files = [p for p in sorted(outputs.rglob("*")) if p.is_file()
             and p.suffix in (".csv", ".md", ".tex", ".html", ".png", ".pdf", ".docx")]
    return {str(p.relative_to(outputs)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def test_two_passes_are_byte_identical(tmp_path):
    first = _digests(_run(tmp_path / "a"))
    second = _digests(_run(tmp_path / "b"))
    assert "estimates.csv" in first and "tables/main_results.tex" in first
    assert "tables/robustness.md" in first and "figures/specification_curve.png" in first
    assert first == second


def test_one_spec_entry_adds_a_robustness_row(tmp_path):
    checks = copy.deepcopy(CHECKS)
    checks["checks"].append({"id": "drop_tha", "label": "Drop Thailand (added in a test)",
                             "group": "Sample", "drop_countries": ["THA"]})
    outputs = _run(tmp_path, checks)
    table = (outputs / "tables" / "robustness.md").read_text()
    assert "Drop Thailand (added in a test)" in table
    rows = (outputs / "robustness.csv").read_text().splitlines()
    added = [r for r in rows if r.startswith("drop_tha,")]
    assert len(added) == 1 and ",10," in added[0]  # ten clusters once Thailand is dropped


def test_tables_fix_stargazer_defects(tmp_path):
    outputs = _run(tmp_path)
    tex = (outputs / "tables" / "main_results.tex").read_text()
    assert "$^{}$" not in tex and "\\toprule" in tex and "\\bottomrule" in tex
    assert "Residual Std. Error" not in tex and "F Statistic" not in tex
    assert "Control\\_1" in tex and "Control_1" not in tex.replace("Control\\_1", "")
    assert "Country FE" in tex and "Clusters (G)" in tex and "WCR p" in tex
    html = (outputs / "tables" / "main_results.html").read_text()
    assert "Residual Std. Error" not in html and "F Statistic" not in html


def _markdown_cells(text: str) -> dict[tuple[str, str], tuple[str, str]]:
    """{(row label, model): (estimate cell, cell below it)} of a Markdown regression table."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    cells = {}
    for i in range(len(body) - 1):
        label = body[i][0]
        if not label or label.startswith("**") or body[i + 1][0]:
            continue
        for j, model in enumerate(header[1:], start=1):
            cells[(label, model)] = (body[i][j], body[i + 1][j])
    return cells


def test_main_table_stars_are_the_wcr_p_bands(tmp_path):
    """Every coefficient of the main table, controls included: its stars are the band of its
    WCR (Webb) p-value (* < 0.10, ** < 0.05, *** < 0.01) and its parentheses hold its CRV3
    SE, never CRV1's; the note says so."""
    import pandas as pd

    outputs = _run(tmp_path)
    estimates = pd.read_csv(outputs / "estimates.csv")
    assert estimates["p_wcr"].notna().all()  # WCR for every row, controls included
    spec = yaml.safe_load((tmp_path / "models.yaml").read_text())
    labels = spec["labels"]
    text = (outputs / "tables" / "main_results.md").read_text()
    cells = _markdown_cells(text)
    checked = 0
    for row in estimates.itertuples():
        estimate_cell, se_cell = cells[(labels.get(row.term, row.term), row.model)]
        value, star = estimate_cell.rstrip("*"), estimate_cell[len(estimate_cell.rstrip("*")):]
        band = sum(row.p_wcr < level for level in (0.10, 0.05, 0.01))
        assert float(value) == round(row.estimate, 4)
        assert star == "*" * band, (row.model, row.term, row.p_wcr, estimate_cell)
        assert se_cell == f"({row.se_crv3:.4f})"
        checked += 1
    assert checked == len(estimates) == 5 + 7 + 7 + 9 + 11  # every row, controls included
    # the example has rows in several bands, so the test can fail
    bands = {sum(p < lv for lv in (0.10, 0.05, 0.01)) for p in estimates["p_wcr"]}
    assert len(bands) >= 3
    assert "WCR bootstrap (Webb)" in text and "CRV3 (MNW) by country" in text
    assert "from the wild cluster restricted bootstrap" in text
    assert "two-sided" in text and "identity draws included" in text
    assert not (outputs / "tables" / "main_results_wcr_stars.md").exists()
    influence = pd.read_csv(outputs / "cluster_influence.csv")
    assert list(influence.columns) == ["model", "term", "cluster", "partial_leverage",
                                       "estimate_loo", "std_error_loo", "g_star"]
    assert len(influence) == 12 * 11  # 12 key terms of M1-M5, 11 countries
    power = pd.read_csv(outputs / "power.csv")
    assert list(power.columns[:8]) == ["model", "term", "mde_crv1", "mde_crv3", "mde_wcr_sim",
                                       "mde_sd_units", "sesoi", "tost_p"]
    assert len(power) == 12
