"""The four formats of a regression table carry the same stars, the stars of the p-value column
the table names; the LaTeX tables fit the page (pdflatex, where installed); the R² of the
fixed-effects model equals pyfixest's."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pyfixest as pf
import pytest
from docx import Document

from analysis.econometrics import moderated
from analysis.publish import tables
from tests.test_models import SPEC, TIGHT, simulated_panel

LABELS = {"gpr": "GPR", "rn": "RN", "ti": "TI", "gpr:rn": "GPR × RN", "gpr:ti": "GPR × TI",
          "rn:ti": "RN × TI", "gpr:rn:ti": "GPR × RN × TI", "x1": "Control one (%)",
          "x2": "Control_two"}
ORDER = [*SPEC["models"]["M5"], *SPEC["controls"]]
NUMBER = r"-?\d+\.\d{4}"


@pytest.fixture(scope="module")
def results():
    frame, _ = moderated.estimation_frame(simulated_panel(noise=1.5, seed=11), SPEC)
    boot = {"B": 199, "weights": "webb", "seed": 5, "rademacher_enumeration": False,
            "all_terms": True}
    fitted = moderated.fit_models(frame, SPEC, bootstrap=boot, progress=False)
    # a row without the named p-value must get no star in any format (stargazer would give
    # a missing p-value three)
    fitted[1].table.loc["x2", "p_wcr"] = np.nan
    return fitted


def _md_stars(text: str) -> list[tuple[str, str]]:
    body = text.split("**Statistics**")[0]
    return re.findall(rf"\| ({NUMBER})(\**)(?= \|)", body)


def _tex_stars(text: str) -> list[tuple[str, str]]:
    body = text.split("Country FE")[0].split("\\midrule", 1)[1]
    return [(value, marks) for value, marks in
            re.findall(rf"(?<![(\d])({NUMBER})(?:\$\^{{(\**)}}\$)?(?=\s*(?:&|\\\\))", body)]


def _html_stars(text: str) -> list[tuple[str, str]]:
    body = text.split("Country FE")[0]
    return re.findall(rf"<td>({NUMBER})(?:<sup>(\**)</sup>)?</td>", body)


def _docx_stars(path) -> list[tuple[str, str]]:
    rows = [[cell.text for cell in row.cells] for row in Document(str(path)).tables[0].rows]
    out = []
    for row in rows:
        if row[0] == "Statistics":
            break
        out += [(m.group(1), m.group(2)) for cell in row[1:]
                if (m := re.fullmatch(rf"({NUMBER})(\**)", cell))]
    return out


def _named_source(markdown: str) -> str:
    """The p-value column the table itself names in its 'Stars from' row."""
    label = re.search(r"\| Stars from \| ([^|]+) \|", markdown).group(1).strip()
    return {v: k for k, v in tables.STAR_LABELS.items()}[label]


def _named_se(markdown: str) -> str:
    """The standard-error column the table names in its 'SE type' row."""
    label = re.search(r"\| SE type \| ([^|]+) \|", markdown).group(1).strip()
    return {v: k for k, v in getattr(tables, "SE_LABELS", {"std_error": label}).items()}[label]


SOURCES = [("p_value", "std_error"), ("p_wcr", "std_error"), ("p_wcr", "se_crv3")]


def _write(results, tmp_path, star_source, se_source):
    stem = tmp_path / "main"
    note = "Stars: * p<0.1, ** p<0.05, *** p<0.01."
    extra = {} if se_source == "std_error" else {"se_source": se_source}
    tables.write_regression_table(results, LABELS, ORDER, stem, "Title", note,
                                  star_source=star_source, **extra)
    docx = tmp_path / "main.docx"
    try:
        tables.write_docx(results, LABELS, ORDER, docx, "Title", note, star_source=star_source,
                          **extra)
    except TypeError:  # an older write_docx without star_source: CRV1 stars only
        if star_source != "p_value":
            pytest.fail("write_docx cannot write the WCR-star table")
        tables.write_docx(results, LABELS, ORDER, docx, "Title", note)
    return stem, docx


@pytest.mark.parametrize(("star_source", "se_source"), SOURCES)
def test_star_pattern_is_the_same_in_md_tex_html_and_docx(results, tmp_path, star_source,
                                                          se_source):
    stem, docx = _write(results, tmp_path, star_source, se_source)
    md = stem.with_suffix(".md").read_text()
    found = {"md": _md_stars(md), "tex": _tex_stars(stem.with_suffix(".tex").read_text()),
             "html": _html_stars(stem.with_suffix(".html").read_text()),
             "docx": _docx_stars(docx)}
    source = _named_source(md)
    assert source == star_source
    expected = [(f"{r.table.loc[t, 'estimate']:.4f}", tables.stars(r.table.loc[t, source]))
                for t in ORDER for r in results if t in r.table.index]
    assert any(marks == "***" for _, marks in expected)  # the check covers every level
    assert any(marks == "**" for _, marks in expected) or star_source == "p_wcr"
    assert any(marks == "" for _, marks in expected)
    for fmt, cells in found.items():
        assert cells == expected, fmt


def _se_cells(text: str) -> list[str]:
    return re.findall(rf"\(({NUMBER})\)", text.split("Country FE")[0])


@pytest.mark.parametrize(("star_source", "se_source"), SOURCES)
def test_standard_errors_are_the_same_in_every_format(results, tmp_path, star_source,
                                                      se_source):
    stem, docx = _write(results, tmp_path, star_source, se_source)
    md = stem.with_suffix(".md").read_text()
    assert _named_se(md) == se_source
    expected = [f"{r.table.loc[t, se_source]:.4f}" for t in ORDER for r in results
                if t in r.table.index]
    rows = [[cell.text for cell in row.cells] for row in Document(str(docx)).tables[0].rows]
    docx_text = " ".join(" ".join(row) for row in rows)
    for fmt, text in (("md", md), ("tex", stem.with_suffix(".tex").read_text()),
                      ("html", stem.with_suffix(".html").read_text()),
                      ("docx", docx_text)):
        assert _se_cells(text) == expected, fmt


def test_fixed_effects_r2_and_dependent_mean_equal_pyfixest(results):
    frame, _ = moderated.estimation_frame(simulated_panel(noise=1.5, seed=11), SPEC)
    for result in results:
        fit = pf.feols(result.formula, data=frame, vcov={"CRV1": "iso3"}, demeaner=TIGHT)
        assert result.r2 == pytest.approx(fit._r2, abs=1e-10)
        assert result.within_r2 == pytest.approx(fit._r2_within, abs=1e-10)
        assert result.mean_dependent == pytest.approx(frame["syn"].mean(), abs=1e-14)


def test_every_format_reports_r2_and_the_dependent_mean(results, tmp_path):
    stem = tmp_path / "t"
    tables.write_regression_table(results, LABELS, ORDER, stem, "T", "n")
    r2 = f"{results[3].r2:.4f}"
    mean = f"{results[0].mean_dependent:.4f}"
    tex = stem.with_suffix(".tex").read_text()
    assert re.search(rf"R\$\^2\$ \(incl. fixed effects\).*{r2}", tex)
    assert re.search(rf"Mean of SYN.*{mean}", tex)
    for suffix in (".md", ".html"):
        text = stem.with_suffix(suffix).read_text()
        assert "R² (incl. fixed effects)" in text and r2 in text and mean in text


def test_latex_escapes_powers_and_relations():
    assert tables.latex_escape("all 2^G sign vectors, |t*| >= |t|, x_1 & 5%") == (
        r"all $2^{G}$ sign vectors, \textbar{}t*\textbar{} $\geq$ \textbar{}t\textbar{}, "
        r"x\_1 \& 5\%")
    assert "textasciicircum" not in tables.latex_escape(tables.P_VALUE_CONVENTION)
    assert tables.html_text("2^G < 3") == "2<sup>G</sup> &lt; 3"


def test_frame_table_headers_are_labels_and_cells_agree(tmp_path):
    frame = pd.DataFrame({"iso3": ["IDN", "THA"], "share_same_sign": [0.5, 0.25],
                          "n_obs": [10, 12]})
    md, html, tex = tables.frame_table(frame, tmp_path / "f", "Caption with 2^G")
    for path in (md, html, tex):
        text = path.read_text()
        assert "share with the main sign" in text and "share_same_sign" not in text
        assert "0.2500" in text and "12" in text and "12.0" not in text
    assert "<caption>Caption with 2<sup>G</sup></caption>" in html.read_text()
    assert r"\usepackage{booktabs" in tex.read_text().splitlines()[0]


# --------------------------------------------------------------------------- pdflatex
PDFLATEX = shutil.which("pdflatex")


def _compile(tex_file, workdir) -> str:
    """pdflatex the table in an A4 article with 1-inch margins (the layout's narrower page)
    and the packages its header comment names; return the log."""
    first = tex_file.read_text().splitlines()[0]
    packages = re.search(r"\\usepackage\{([^}]*)\}", first).group(1)
    document = workdir / f"{tex_file.stem}_doc.tex"
    document.write_text(
        "\\documentclass[11pt]{article}\n\\usepackage[a4paper,margin=1in]{geometry}\n"
        f"\\usepackage[T1]{{fontenc}}\n\\usepackage{{{packages}}}\n\\begin{{document}}\n"
        f"\\input{{{tex_file}}}\n\\end{{document}}\n")
    run = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error",
                          document.name], cwd=workdir, capture_output=True,
                         timeout=120, check=False)
    log = (workdir / f"{tex_file.stem}_doc.log").read_text(errors="replace")
    assert run.returncode == 0, log[-2000:]
    return log


def _overfull(log: str) -> list[float]:
    return [float(x) for x in re.findall(r"Overfull \\hbox \(([0-9.]+)pt too wide", log)]


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (apt-get install "
                    "texlive-latex-extra): the LaTeX width check is skipped")
def test_latex_tables_compile_and_fit_the_page(results, tmp_path):
    tables.write_regression_table(results, LABELS, ORDER, tmp_path / "regression", "A title",
                                  "A note with 2^G and |t*| >= |t|.")
    wide = pd.DataFrame({
        "Check": [f"A robustness check with a long label that has to wrap, number {i}"
                  for i in range(40)],
        "N": np.arange(40) + 100, "G": np.full(40, 7),
        **{f"{k} {t}": np.linspace(-1, 1, 40) for t in ("GPR", "GPR×RN", "GPR×TI")
           for k in ("b", "p", "WCR p", "RI p")}})
    tables.frame_table(wide, tmp_path / "wide", "A wide, long table")
    narrow = pd.DataFrame({"model": ["M1", "M2"], "term": ["GPR", "GPR × RN"],
                           "estimate": [0.1, -0.2]})
    tables.frame_table(narrow, tmp_path / "narrow", "A narrow table")
    assert "landscape" in (tmp_path / "wide.tex").read_text()
    assert "landscape" not in (tmp_path / "narrow.tex").read_text()
    for name in ("regression", "wide", "narrow"):
        log = _compile(tmp_path / f"{name}.tex", tmp_path)
        assert not _overfull(log), (name, _overfull(log))


@pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed: skipped")
def test_the_pipeline_tables_fit_the_page(tmp_path):
    """Every .tex table of the last `make all` (skipped when there is none)."""
    from analysis import config

    found = sorted((config.TABLES).glob("*.tex"))
    if not found:
        pytest.skip("no outputs/tables/*.tex: run `make all` first")
    too_wide = {}
    for tex in found:
        overfull = _overfull(_compile(tex, tmp_path))
        if overfull:
            too_wide[tex.name] = max(overfull)
    assert not too_wide
