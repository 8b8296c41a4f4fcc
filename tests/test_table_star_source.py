"""The star source of a regression table in every writer (issue 18): on a hand example where the
CRV1 and WCR p-values give different stars in every cell, a table whose stars come from WCR
carries the WCR stars in Markdown, LaTeX, HTML and Word, and one whose stars come from CRV1
carries the CRV1 stars; a missing p-value gives no star; the boundary p = 0.05 gives one star
(strict p < level, stargazer's rule too)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from docx import Document

from analysis.econometrics.estimation import ModelResult
from analysis.publish import tables

LABELS = {"gpr": "GPR", "rn": "RN", "gpr:rn": "GPR × RN", "x1": "Control one"}
ORDER = ["gpr", "rn", "gpr:rn", "x1"]
NUMBER = r"-?\d+\.\d{4}"

# term: (estimate, CRV1 SE, CRV3 SE, CRV1 p, WCR p), per model; every pair of p-values gives
# different stars (levels 0.1, 0.05, 0.01, strict)
M1 = {"gpr": (0.5, 0.1111, 0.1222, 0.004, 0.08),      # ***  vs *
      "x1": (-1.25, 0.9, 1.1, 0.2, 0.03)}              # ""   vs **
M2 = {"gpr": (0.4, 0.15, 0.16, 0.03, 0.2),            # **   vs ""
      "rn": (0.1234, 0.06, 0.07, 0.07, 0.009),        # *    vs ***
      "gpr:rn": (-0.05, 0.02, 0.03, 0.05, np.nan),    # *    vs none (no WCR p: no star)
      "x1": (2.0, 3.0, 3.5, 0.5, 0.0001)}             # ""   vs ***
# the cells in table order (term by term, model by model), written out by hand
CRV1_CELLS = [("0.5000", "***"), ("0.4000", "**"), ("0.1234", "*"), ("-0.0500", "*"),
              ("-1.2500", ""), ("2.0000", "")]
WCR_CELLS = [("0.5000", "*"), ("0.4000", ""), ("0.1234", "***"), ("-0.0500", ""),
             ("-1.2500", "**"), ("2.0000", "***")]


def result(name: str, rows: dict) -> ModelResult:
    table = pd.DataFrame(rows, index=["estimate", "std_error", "se_crv3", "p_value",
                                      "p_wcr"]).T
    table["ci_low"] = table["estimate"] - 2 * table["std_error"]
    table["ci_high"] = table["estimate"] + 2 * table["std_error"]
    return ModelResult(name=name, formula="syn ~ ...", table=table, n_obs=120, n_clusters=10,
                       within_r2=0.25, dk_bandwidth=2.0, vcov_crv1=pd.DataFrame(),
                       partialled=pd.DataFrame(), r2=0.9, mean_dependent=0.3)


RESULTS = [result("M1", M1), result("M2", M2)]


def md_cells(text: str) -> list[tuple[str, str]]:
    body = text.split("**Statistics**")[0]
    return re.findall(rf"\| ({NUMBER})(\**)(?= \|)", body)


def tex_cells(text: str) -> list[tuple[str, str]]:
    body = text.split("Country FE")[0].split("\\midrule", 1)[1]
    return re.findall(rf"(?<![(\d])({NUMBER})(?:\$\^{{(\**)}}\$)?(?=\s*(?:&|\\\\))", body)


def html_cells(text: str) -> list[tuple[str, str]]:
    body = text.split("Country FE")[0]
    return re.findall(rf"<td>({NUMBER})(?:<sup>(\**)</sup>)?</td>", body)


def docx_cells(path) -> list[tuple[str, str]]:
    out = []
    for row in Document(str(path)).tables[0].rows:
        cells = [cell.text for cell in row.cells]
        if cells[0] == "Statistics":
            break
        out += [(m.group(1), m.group(2)) for cell in cells[1:]
                if (m := re.fullmatch(rf"({NUMBER})(\**)", cell))]
    return out


@pytest.mark.parametrize(("star_source", "expected", "label"), [
    ("p_value", CRV1_CELLS, "CRV1, t(G-1)"),
    ("p_wcr", WCR_CELLS, "WCR bootstrap (Webb)"),
])
def test_every_writer_takes_the_stars_the_table_names(tmp_path, star_source, expected, label):
    stem = tmp_path / "table"
    tables.write_regression_table(RESULTS, LABELS, ORDER, stem, "Title", "Note.",
                                  star_source=star_source, se_source="se_crv3")
    tables.write_docx(RESULTS, LABELS, ORDER, tmp_path / "table.docx", "Title", "Note.",
                      star_source=star_source, se_source="se_crv3")
    md = stem.with_suffix(".md").read_text()
    found = {"md": md_cells(md), "tex": tex_cells(stem.with_suffix(".tex").read_text()),
             "html": html_cells(stem.with_suffix(".html").read_text()),
             "docx": docx_cells(tmp_path / "table.docx")}
    for fmt, cells in found.items():
        assert cells == expected, fmt
    # the table names the source it used, in every format
    assert re.search(rf"\| Stars from \| {re.escape(label)} \| {re.escape(label)} \|", md)
    docx_rows = [[c.text for c in row.cells] for row in
                 Document(str(tmp_path / "table.docx")).tables[0].rows]
    assert ["Stars from", label, label] in docx_rows
    assert label in stem.with_suffix(".html").read_text()
    assert tables.latex_escape(label) in stem.with_suffix(".tex").read_text()
    # the parentheses hold the CRV3 standard errors the table names, not CRV1's
    assert re.findall(rf"\(({NUMBER})\)", md.split("**Statistics**")[0]) == [
        "0.1222", "0.1600", "0.0700", "0.0300", "1.1000", "3.5000"]


def test_star_rule_is_strict_and_a_missing_p_has_none():
    assert [tables.stars(p) for p in (0.0999, 0.1, 0.0499, 0.05, 0.0099, 0.01)] == \
        ["*", "", "**", "*", "***", "**"]
    assert tables.stars(np.nan) == "" and tables.stars(None) == ""
