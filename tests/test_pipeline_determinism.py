"""Two complete passes of the estimation stages on a synthetic panel give identical bytes, and a
robustness check added as one spec entry appears in the robustness table."""

from __future__ import annotations

import copy
import hashlib

import yaml

from analysis import models, robustness
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
    ],
    "heterogeneity": {"groups": [{"id": "big", "label": "Five countries",
                                  "keep_countries": ["CHN", "IDN", "MYS", "PHL", "THA"]}],
                      "by_chain": False},
}


def _write_inputs(root, checks):
    processed = root / "processed"
    processed.mkdir(parents=True)
    simulated_panel(n_years=20, seed=5).to_parquet(processed / "panel.parquet", index=False)
    spec = copy.deepcopy(SPEC)
    spec["bootstrap"] = {"B": 999, "weights": "webb", "seed": 3, "rademacher_enumeration": True,
                         "all_terms": True, "band_draws": 199}
    spec["marginal_effects"] = {"model": "M4", "percentiles": [10, 25, 50, 75, 90]}
    spec["labels"] = {"syn": "SYN", "gpr": "GPR", "rn": "RN", "ti": "TI", "gpr:rn": "GPR × RN",
                      "x1": "Control_1", "x2": "Control 2"}
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


def test_stars_come_from_the_named_inference(tmp_path):
    import pandas as pd

    from analysis.tables import stars

    outputs = _run(tmp_path)
    estimates = pd.read_csv(outputs / "estimates.csv")
    assert estimates["p_wcr"].notna().all()  # WCR for every row, controls included
    for source, table in (("p_value", "main_results.md"), ("p_wcr", "main_results_wcr_stars.md")):
        text = (outputs / "tables" / table).read_text()
        for term in ("gpr:rn", "x1", "x2"):
            row = estimates[(estimates["model"] == "M2") & (estimates["term"] == term)].iloc[0]
            cell = f"{row['estimate']:.4f}{stars(row[source])}"
            assert f"| {cell} |" in text or f" {cell} |" in text, (source, cell)
    influence = pd.read_csv(outputs / "cluster_influence.csv")
    assert list(influence.columns) == ["model", "term", "cluster", "partial_leverage",
                                       "estimate_loo", "std_error_loo", "g_star"]
    assert len(influence) == 12 * 11  # 12 key terms of M1-M5, 11 countries
    note = (outputs / "tables" / "main_results_wcr_stars.md").read_text()
    assert "two-sided" in note and "identity draws included" in note
