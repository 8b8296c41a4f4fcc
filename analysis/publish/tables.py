"""Tables that paste straight into a paper: Markdown, HTML, LaTeX and Word, saying the same thing.

Regression tables. stargazer lays out the HTML and LaTeX versions, but five of its defaults are
wrong for linearmodels results with few clusters, and :func:`build_stargazer` fixes each one:

1. its "Residual Std. Error" is sqrt(model_ss / df_resid), not the residual SE: hidden;
2. its F statistic is the non-robust one: hidden (the FE and SE rows say what is estimated);
3. its stars come from the model's own p-values (normal or t(N-K)): replaced by the p-values of
   the inference the table names (CRV1 with t(G-1), or the WCR bootstrap), for every row; a
   row without that p-value gets no star (stargazer would give a missing p-value three);
4. it leaves underscores and other LaTeX specials in names unescaped: labels are escaped;
5. it prints empty ``$^{}$`` superscripts where a cell has no star: removed;

and it has no rows for fixed effects, SE type, clusters, the R² of the fixed-effects model, the
mean of the dependent variable or bootstrap p-values: they are added, in the same order in every
format (:func:`regression_footer`). The Markdown and Word versions are rendered from one grid
(:func:`regression_grid`), with the same star rule (:func:`stars`) as stargazer's, so all four
formats carry the same stars (``tests/test_tables.py`` compares them).

LaTeX. Every ``.tex`` file starts with a comment naming the packages it needs. Regression tables
are ``threeparttable`` floats with booktabs rules and the notes under the table; data tables
(:func:`frame_table`) are laid out for a text block of :data:`TEXT_WIDTH_PT` (A4 or US letter
with 1-inch margins): wide columns wrap, a table too wide for the page turns to landscape
(``pdflscape``), a long one becomes a ``longtable``. Nothing is scaled, so every table keeps a
legible font size. ``tests/test_tables.py`` compiles them with pdflatex where it is installed.
"""

from __future__ import annotations

import html as html_module
import io
import re
import zipfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.data.io import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:  # annotations only: frame_table users need neither linearmodels nor stargazer
    from stargazer.stargazer import Stargazer

    from analysis.econometrics.estimation import ModelResult

LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "×": r"$\times$", "–": "--", "—": "---",
                  "²": r"$^2$", "<": r"$<$", ">": r"$>$", "≥": r"$\geq$", "≤": r"$\leq$",
                  "|": r"\textbar{}", "−": r"$-$", "ρ": r"$\rho$", "χ": r"$\chi$",
                  "∪": r"$\cup$", "±": r"$\pm$", "→": r"$\to$", "∞": r"$\infty$",
                  "β": r"$\beta$", "α": r"$\alpha$", "σ": r"$\sigma$", "≈": r"$\approx$"}
#: Multi-character patterns escaped as mathematics: ``2^G`` -> ``$2^{G}$``, ``>=`` -> ``$\geq$``.
LATEX_PATTERNS = re.compile(r"(?P<power>\b(?P<base>\w+)\^(?P<exp>\w+|\{[^}]*\}))|(?P<ge>>=)|(?P<le><=)")

#: The text block the LaTeX tables are laid out for: A4 or US letter, 1-inch margins, 11 pt.
TEXT_WIDTH_PT = 450.0
#: The same page turned (landscape): the longer side less the margins.
LANDSCAPE_WIDTH_PT = 640.0
#: Rows above which a data table becomes a longtable (it may break across pages).
LONG_TABLE_ROWS = 30

#: The p-value columns stars may come from, and the standard errors the parentheses may hold,
#: with the labels the tables print ("Stars from", "SE type").
STAR_LABELS = {"p_value": "CRV1, t(G-1)", "p_wcr": "WCR bootstrap (Webb)",
               "p_crv3": "CRV3 (MNW), t(G-1)"}
SE_LABELS = {"std_error": "CRV1 by country", "se_crv3": "CRV3 (MNW) by country"}
KEY_TERMS = ("gpr", "gpr:rn", "gpr:ti", "gpr:rn:ti")

#: The p-value conventions every regression-table note states.
P_VALUE_CONVENTION = (
    "All p-values are two-sided; bootstrap p-values are symmetric (share of |t*| >= |t|). "
    "CRV1 and CRV3 p-values use t(G-1). WCR: wild cluster restricted "
    "bootstrap-t that re-estimates the year effects in every draw (country effects, nested in "
    "the clusters, partialled out); Webb weights with B = {B:,} draws and seed {seed}; the "
    "Rademacher p enumerates all 2^G sign vectors and counts every draw, the two identity "
    "draws included.")

#: Readable headers for the column names the stages use (:func:`readable`).
COLUMN_LABELS = {
    "iso3": "country", "partner_iso3": "partner", "n_obs": "N", "n": "N", "n_clusters": "G",
    "syn": "SYN", "gpr": "GPR", "rn": "RN", "ti": "TI", "rn_events": "RN events",
    "estimate": "estimate", "std_error": "SE", "p_value": "p", "ci_low": "CI low",
    "ci_high": "CI high", "p_f": "p (F)", "p_perm_t": "p (permutation)", "q": "q",
    "df": "df", "wald": "Wald", "main_estimate": "main estimate",
    "variants": "variants", "share_same_sign": "share with the main sign",
    "share_p10_crv1": "share p < 0.10 (CRV1)", "share_p10_wcr": "share p < 0.10 (WCR)",
    "share_missing": "share missing", "first_year": "first year", "last_year": "last year",
    "method_a": "method A", "method_b": "method B", "spearman": "Spearman",
    "z_low": "bin low", "z_high": "bin high", "z_median": "bin median",
    "linear_estimate": "linear estimate", "linear_std_error": "linear SE",
    "linear_ci_low": "linear CI low", "linear_ci_high": "linear CI high",
    "moderator_raw": "moderator (raw)", "boot_t_low": "bootstrap-t low",
    "boot_t_high": "bootstrap-t high", "share_of_within_variation": "share of within variation",
    "mean_exposure_weight": "mean exposure weight", "top_export_hs6": "top export HS6",
    "top_export_share": "its share", "top_import_hs6": "top import HS6",
    "top_import_share": "its share ", "source_rows": "source rows",
    "share_value": "share by value", "share_quantity": "share by quantity",
    "matched_with_data": "matched with data", "dropped_why": "why dropped",
    "panel_rows_without_source_row": "panel rows without a source row",
}


#: Labels of the pipeline's index and term names where a table lists them as values (the
#: columns named in :data:`LABELLED_COLUMNS`); specs/models.yaml uses the same labels.
TERM_LABELS = {"syn": "SYN", "gpr": "GPR", "rn": "RN", "ti": "TI", "rn_events": "RN events",
               "gpr:rn": "GPR × RN", "gpr:ti": "GPR × TI", "rn:ti": "RN × TI",
               "gpr:rn:ti": "GPR × RN × TI"}
LABELLED_COLUMNS = ("term", "index", "moderator")


def readable(column: object) -> str:
    """A column header a reader understands: :data:`COLUMN_LABELS`, else underscores as
    spaces (``share_to_china`` -> ``share to china``)."""
    name = str(column)
    if name in COLUMN_LABELS:
        return COLUMN_LABELS[name]
    return name.replace("_", " ") if re.fullmatch(r"[a-z0-9_]+", name) else name


def high_leverage_note(influence: pd.DataFrame | None, labels: dict[str, str],
                       threshold: float = 0.5) -> str:
    """A sentence naming every model x term where one cluster's partial leverage exceeds
    ``threshold`` (MacKinnon, Nielsen & Webb 2023: such estimates rest on one cluster, and
    cluster-robust inference is unreliable), with that term's effective number of clusters G*.
    Empty string if there is none."""
    if influence is None or influence.empty:
        return ""
    high = influence[influence["partial_leverage"] > threshold]
    if high.empty:
        return ""
    parts = [f"{r.model} {labels.get(r.term, r.term)}: {r.cluster} {r.partial_leverage:.2f} "
             f"(G* = {r.g_star:.1f})" for r in high.itertuples()]
    return (f"One cluster carries more than {threshold:.0%} of the partial leverage in: "
            + "; ".join(parts) + ". These estimates rest largely on that country.")


def latex_escape(text: object) -> str:
    """Text for LaTeX: specials escaped, ``x^y`` as ``$x^{y}$``, ``>=``/``<=`` as relations."""
    out, last = [], 0
    text = str(text)
    for match in LATEX_PATTERNS.finditer(text):
        out.append("".join(LATEX_SPECIALS.get(ch, ch) for ch in text[last:match.start()]))
        if match.group("power"):
            exponent = match.group("exp").strip("{}")
            out.append(f"${match.group('base')}^{{{exponent}}}$")
        else:
            out.append(r"$\geq$" if match.group("ge") else r"$\leq$")
        last = match.end()
    out.append("".join(LATEX_SPECIALS.get(ch, ch) for ch in text[last:]))
    return "".join(out)


def html_text(text: object) -> str:
    """Text for HTML: escaped, with ``x^y`` as a superscript (``2^G`` -> 2<sup>G</sup>)."""
    escaped = html_module.escape(str(text), quote=False)
    return re.sub(r"\b(\w+)\^(\w+)", r"\1<sup>\2</sup>", escaped)


def stars(p: float | None, levels: tuple[float, ...] = (0.1, 0.05, 0.01)) -> str:
    """``*`` per level the p-value lies below (p < 0.1, 0.05, 0.01); none for a missing p.
    stargazer applies the same strict rule."""
    if p is None or not np.isfinite(p):
        return ""
    return "*" * sum(p < level for level in levels)


class _Shim:
    """Stand-in for a linearmodels result carrying exactly the numbers we want printed."""

    def __init__(self, result: ModelResult, p_column: str, se_column: str = "std_error"
                 ) -> None:
        self.result = result
        self.p_column = p_column
        self.se_column = se_column


def _model_data(result: ModelResult, p_column: str, dependent_label: str,
                se_column: str = "std_error") -> dict:
    table = result.table
    # a missing p-value must give no star (stargazer treats NaN as p < 0.01: three stars)
    p_values = table[p_column].astype(object).where(table[p_column].notna(), None)
    return {
        "dependent_variable": dependent_label,
        "cov_names": np.array(table.index),
        "cov_values": table["estimate"],
        "cov_std_err": table[se_column],
        "p_values": p_values,
        "conf_int_low_values": table["ci_low"],
        "conf_int_high_values": table["ci_high"],
        "nobs": result.n_obs,
        "ngroups": str(result.n_clusters),
        "r2": None,
        "within_r2": result.within_r2,
        "r2_adj": None,
        "pseudo_r2": None,
        "resid_std_err": None,
        "f_statistic": None,
        "f_p_value": None,
        "degree_freedom": len(table),
        "degree_freedom_resid": result.n_obs - len(table),
    }


def regression_footer(results: list[ModelResult], labels: dict[str, str],
                      star_source: str = "p_value", dependent_label: str = "SYN",
                      se_source: str = "std_error") -> list[list[str]]:
    """The statistics rows of a regression table, one list per row (label, then one cell per
    model), in the order every format prints them."""
    n = len(results)

    def number(value: float, digits: int = 4) -> str:
        return "" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"

    rows = [
        ["Country FE", *["Yes"] * n],
        ["Year FE", *["Yes"] * n],
        ["Observations (N)", *[str(r.n_obs) for r in results]],
        ["Clusters (G)", *[str(r.n_clusters) for r in results]],
        ["R² (incl. fixed effects)", *[number(getattr(r, "r2", np.nan)) for r in results]],
        ["Within R²", *[number(r.within_r2) for r in results]],
        [f"Mean of {dependent_label}",
         *[number(getattr(r, "mean_dependent", np.nan)) for r in results]],
        ["SE type", *[SE_LABELS[se_source]] * n],
        ["Stars from", *[STAR_LABELS[star_source]] * n],
    ]
    present = {t for r in results for t in r.table.index}
    for term in [t for t in KEY_TERMS if t in present]:
        values = [number(r.table.loc[term, "p_wcr"], 3) if term in r.table.index else ""
                  for r in results]
        if any(values):  # no row when the bootstrap was skipped
            rows.append([f"WCR p: {labels.get(term, term)}", *values])
    return rows


def regression_grid(results: list[ModelResult], labels: dict[str, str], order: list[str],
                    star_source: str = "p_value", dependent_label: str = "SYN",
                    se_source: str = "std_error"
                    ) -> tuple[list[str], list[list[str]], list[list[str]]]:
    """(header, body, footer) of a regression table as text cells: per term an estimate row
    (with :func:`stars` from ``star_source``) and a row with the ``se_source`` standard error
    in parentheses."""
    present = [t for t in order if any(t in r.table.index for r in results)]
    body = []
    for term in present:
        est, se = [labels.get(term, term)], [""]
        for r in results:
            if term in r.table.index:
                row = r.table.loc[term]
                est.append(f"{row['estimate']:.4f}{stars(row[star_source])}")
                se.append(f"({row[se_source]:.4f})")
            else:
                est.append("")
                se.append("")
        body += [est, se]
    header = ["", *[r.name for r in results]]
    return header, body, regression_footer(results, labels, star_source, dependent_label,
                                           se_source)


def build_stargazer(results: list[ModelResult], labels: dict[str, str], order: list[str],
                    star_source: str = "p_value", dependent_label: str = "SYN",
                    latex: bool = False, se_source: str = "std_error") -> Stargazer:
    """A Stargazer object filled from our results, with the fixes described above: stars from
    ``star_source``, standard errors in parentheses from ``se_source``."""
    from stargazer import stargazer as sg_module  # slow import (statsmodels): only here
    from stargazer.stargazer import LineLocation, Stargazer

    shims = [_Shim(r, star_source, se_source) for r in results]
    sg_module.RESULTS_CLASSES[_Shim] = lambda shim: _model_data(
        shim.result, shim.p_column, dependent_label, shim.se_column)
    table = Stargazer(shims)
    for attribute in ("residual_std_err", "f_statistic", "adj_r2", "r2", "within_r2", "dof",
                      "ngroups", "n", "pseudo_r2"):  # fixes 1 and 2; our rows replace the rest
        setattr(table, f"show_{attribute}", False)
    present = [t for t in order if any(t in r.table.index for r in results)]
    table.covariate_order(present)
    escape = latex_escape if latex else html_text
    table.rename_covariates({t: escape(labels.get(t, t)) for t in present})  # fix 4
    table.dependent_variable_name(escape(dependent_label))
    table.custom_columns([r.name for r in results], [1] * len(results))
    table.show_model_numbers(False)
    for row in regression_footer(results, labels, star_source, dependent_label, se_source):
        table.add_line(escape(row[0]), [escape(v) for v in row[1:]], LineLocation.FOOTER_TOP)
    table.significance_levels([0.1, 0.05, 0.01])
    table.significant_digits(4)
    return table


def latex_preamble_comment(packages: list[str], extra: str = "") -> str:
    return (f"% Needs in the preamble: \\usepackage{{{','.join(packages)}}}{extra}\n"
            f"% Laid out for a {TEXT_WIDTH_PT:.0f} pt text block (A4 or US letter, 1-inch "
            "margins); written by analysis/publish/tables.py.\n")


def to_booktabs(latex: str, note: str = "", title: str = "") -> str:
    """stargazer's LaTeX as a paper-ready float: booktabs rules, no empty superscripts (fix 5),
    a ``threeparttable`` with ``note`` (already LaTeX; it states the star levels) under it,
    and statistics rows whose cells are the same in every column set once across them."""
    latex = latex.replace("$^{}$", "")
    body = re.search(r"\\begin\{tabular\}\{[^\n]*\}\n(.*)\\end\{tabular\}", latex, re.DOTALL)
    caption = re.search(r"\\caption\{(.*)\}\n", latex)
    rows = body.group(1) if body else latex
    rows = rows.replace("\\\\[-1.8ex]", "")
    rows = re.sub(r"\\hline\s*\\hline", r"\\toprule", rows, count=1)
    rows = re.sub(r"\\hline\s*\\hline", r"\\bottomrule", rows)
    rows = rows.replace("\\hline", "\\midrule")
    # stargazer ends the header row with a single backslash before "\cr \cline"
    rows = re.sub(r"\\\s*\n\\cr\s*\\cline\{(\d+-\d+)\}", r"\\\\ \\cmidrule(lr){\1}", rows)
    rows = re.sub(r"\\textit\{Note:\}.*?\\\\\n", "", rows, flags=re.DOTALL)  # the note states it
    rows = re.sub(r"\\multicolumn\{\d+\}\{r\}\\textit\{.*?\} \\\\\n", "", rows, flags=re.DOTALL)
    rows = re.sub(r"\\midrule\s*\\bottomrule", r"\\bottomrule", rows)
    rows = re.sub(r"\\toprule\s*", "\\\\toprule\n", rows)
    n_models = 0
    lines = []
    for line in rows.splitlines():
        cells = [c.strip() for c in line.rstrip().removesuffix("\\\\").split("&")]
        if len(cells) > 2 and line.rstrip().endswith("\\\\"):
            n_models = max(n_models, len(cells) - 1)
            values = cells[1:]
            if len(set(values)) == 1 and len(values[0]) > 6 and "multicolumn" not in values[0]:
                line = (f" {cells[0]} & \\multicolumn{{{len(values)}}}{{c}}{{{values[0]}}} "
                        "\\\\")
        if line.strip():
            lines.append(line.rstrip())
    spec = "@{}l" + "c" * max(n_models, 1) + "@{}"
    title_tex = caption.group(1) if caption else latex_escape(title)
    return (latex_preamble_comment(["booktabs", "threeparttable"])
            + "\\begin{table}[!htbp]\n\\centering\n\\begin{threeparttable}\n"
            + f"\\caption{{{title_tex}}}\n\\small\n"
            + f"\\begin{{tabular}}{{{spec}}}\n" + "\n".join(lines) + "\n\\end{tabular}\n"
            + "\\begin{tablenotes}[flushleft]\n\\footnotesize\n"
            + f"\\item {note}\n" + "\\end{tablenotes}\n"
            + "\\end{threeparttable}\n\\end{table}\n")


def _stargazer_html(table: Stargazer, title: str, note: str) -> str:
    """stargazer's HTML with a ``<caption>``, no empty superscripts and the note under the
    table (not right-aligned inside it)."""
    page = table.render_html().replace("<sup></sup>", "")
    page = page.replace('<table style="text-align:center">',
                        f'<table class="regression"><caption>{html_text(title)}</caption>', 1)
    return page + f'\n<p class="table-note">{html_text(note)}</p>\n'


def markdown_table(results: list[ModelResult], labels: dict[str, str], order: list[str],
                   star_source: str = "p_value", se_source: str = "std_error",
                   dependent_label: str = "SYN") -> str:
    """The regression table as GitHub Markdown (estimate with stars from ``star_source``, the
    ``se_source`` standard error below)."""
    header, body, footer = regression_grid(results, labels, order, star_source, dependent_label,
                                           se_source)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    lines.append("| " + " | ".join(["**Statistics**"] + [""] * len(results)) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in footer]
    return "\n".join(lines) + "\n"


def write_regression_table(results: list[ModelResult], labels: dict[str, str], order: list[str],
                           stem: Path, title: str, note: str,
                           star_source: str = "p_value", se_source: str = "std_error"
                           ) -> list[Path]:
    """Write ``stem``.tex (threeparttable, booktabs), .html and .md; returns the paths."""
    html_table = build_stargazer(results, labels, order, star_source, se_source=se_source)
    html = _stargazer_html(html_table, title, note)
    tex_table = build_stargazer(results, labels, order, star_source, latex=True,
                                se_source=se_source)
    tex_table.title(latex_escape(title))
    tex = to_booktabs(tex_table.render_latex(), latex_escape(note), title)
    md = (f"**{title}**\n\n" + markdown_table(results, labels, order, star_source, se_source)
          + f"\n{note}\n")
    paths = []
    for suffix, text in ((".tex", tex), (".html", html), (".md", md)):
        paths.append(atomic_write_text(stem.with_suffix(suffix), text))
    return paths


def write_docx(results: list[ModelResult], labels: dict[str, str], order: list[str],
               path: Path, title: str, note: str, star_source: str = "p_value",
               se_source: str = "std_error") -> Path:
    """A Word version of the regression table (python-docx), from the same grid as the
    Markdown one, so its estimates carry exactly the same stars and standard errors."""
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    header, body, footer = regression_grid(results, labels, order, star_source,
                                           se_source=se_source)
    document = Document()
    document.add_heading(title, level=2)
    rows = [header, *body, ["Statistics"] + [""] * len(results), *footer]
    grid = document.add_table(rows=len(rows), cols=len(header))
    grid.style = "Table Grid" if "Table Grid" in [s.name for s in document.styles] else None
    bold_rows = {0, len(body) + 1}
    for i, (grid_row, row) in enumerate(zip(grid.rows, rows, strict=True)):
        for j, (grid_cell, cell) in enumerate(zip(grid_row.cells, row, strict=True)):
            paragraph = grid_cell.paragraphs[0]
            run = paragraph.add_run(cell)  # the text as it is: stars are characters, not markup
            run.bold = i in bold_rows
            if j > 0:
                paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    document.add_paragraph(note)
    fixed = datetime(2000, 1, 1)
    document.core_properties.created = fixed
    document.core_properties.modified = fixed
    document.core_properties.last_printed = fixed
    buffer = io.BytesIO()
    document.save(buffer)
    return atomic_write_bytes(path, deterministic_zip(buffer.getvalue()))


def deterministic_zip(data: bytes) -> bytes:
    """Rewrite a zip (a .docx) with fixed member timestamps, so equal content gives equal bytes."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(member, source.read(info.filename))
    return out.getvalue()


# --------------------------------------------------------------------------- data tables
def _cells(frame: pd.DataFrame, float_format: str) -> pd.DataFrame:
    """Every cell as the text all formats print (floats with ``float_format``, missing blank,
    whole numbers in integer columns without decimals)."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        if column in LABELLED_COLUMNS and values.dtype == object:
            values = values.map(lambda v: TERM_LABELS.get(v, v))
        whole = pd.api.types.is_float_dtype(values) and values.notna().any() and bool(
            (values.dropna() == values.dropna().round()).all()) and column not in (
            "estimate", "main_estimate")
        if column == "value" and pd.api.types.is_float_dtype(values):
            # a column of mixed statistics: counts print as whole numbers
            out[column] = values.map(lambda v: "" if pd.isna(v) else (
                f"{int(v)}" if float(v).is_integer() else float_format % v))
        elif whole and (values.abs() >= 1).any():
            out[column] = values.map(lambda v: "" if pd.isna(v) else f"{int(v)}")
        elif pd.api.types.is_bool_dtype(values):
            out[column] = values.map(lambda v: "yes" if v else "")
        elif pd.api.types.is_integer_dtype(values):
            out[column] = values.map(lambda v: "" if pd.isna(v) else f"{int(v)}")
        elif pd.api.types.is_float_dtype(values):
            out[column] = values.map(lambda v: "" if pd.isna(v) else float_format % v)
        else:
            out[column] = values.map(lambda v: "" if v is None or (isinstance(v, float)
                                                                   and np.isnan(v)) else str(v))
    return out


#: Font sizes the layout tries (pt, in an 11 pt document) and the column separation.
FONT_PT = {"small": 10.0, "footnotesize": 9.0, "scriptsize": 8.0}
TABCOLSEP_PT = 4.0
#: Widths of Computer Modern characters in em (the rest: 0.5 lower case, 0.75 upper case).
_EM = {**dict.fromkeys("0123456789", 0.5), **dict.fromkeys("ijl.,;:'!|", 0.28),
       **dict.fromkeys("ftr()[]-", 0.39), **dict.fromkeys("mM%", 0.92), "W": 1.03, "w": 0.72,
       " ": 0.33,
       "I": 0.36, "J": 0.51, "×": 0.78, "+": 0.78, "=": 0.78, "<": 0.78, ">": 0.78,
       "≥": 0.78, "≤": 0.78, "_": 0.8, "*": 0.5, "/": 0.5, "–": 0.5, "—": 1.0}


def text_em(text: str) -> float:
    """Approximate printed width of ``text`` in em (Computer Modern, roman), rounded up by 6%
    (kerning and the characters the table above leaves at an average width)."""
    return 1.06 * sum(_EM.get(ch, 0.75 if ch.isupper() else 0.52) for ch in str(text))


def latex_layout(frame: pd.DataFrame, cells: pd.DataFrame) -> dict:
    """Choose orientation, font size, table kind and column widths (in em) for a data table.

    Each column gets its natural width (its widest cell); a text column (a cell wider than
    14 em, about 28 characters) wraps at 14 em (then 10, 8), never narrower than its longest
    word, and a header wider than its column wraps too. The first font size in
    :data:`FONT_PT` at which the columns fit :data:`TEXT_WIDTH_PT` is used; otherwise the page
    turns (landscape, :data:`LANDSCAPE_WIDTH_PT`). Tables of more than
    :data:`LONG_TABLE_ROWS` rows, and all landscape tables, are longtables."""
    columns = []
    for column in frame.columns:
        header = readable(column)
        values = cells[column].tolist()
        numeric = pd.api.types.is_numeric_dtype(frame[column]) or all(
            re.fullmatch(r"[-+\[\]()0-9.,e%n/a ]*", v) for v in values)
        natural = max([text_em(v) for v in values] + [0.0])
        word = max([text_em(w) for v in [*values, header] for w in v.split()] + [0.5])
        columns.append({"header": header, "natural": natural, "numeric": numeric,
                        "word": word, "header_em": text_em(header), "text": natural > 14})

    def widths(wrap_em: float) -> list[float]:
        out = []
        for c in columns:
            width = max(min(c["natural"], wrap_em), c["word"]) if c["text"] else c["natural"]
            width = max(width, c["header_em"] if c["header_em"] <= width else c["word"])
            out.append(max(width, 0.5))
        return out

    for landscape, available, wraps in ((False, TEXT_WIDTH_PT, (14.0, 10.0)),
                                        (True, LANDSCAPE_WIDTH_PT, (14.0, 11.0, 8.0))):
        for wrap_em in wraps:
            ems = widths(wrap_em)
            for size, font_pt in FONT_PT.items():
                total = sum(ems) * font_pt + 2 * TABCOLSEP_PT * len(ems)
                if total <= available:
                    return {"landscape": landscape, "size": size, "ems": ems,
                            "font_pt": font_pt, "columns": columns,
                            "long": landscape or len(frame) > LONG_TABLE_ROWS,
                            "width_pt": total}
    ems = widths(8.0)
    font_pt = FONT_PT["scriptsize"]
    return {"landscape": True, "size": "scriptsize", "ems": ems, "font_pt": font_pt,
            "columns": columns, "long": True,
            "width_pt": sum(ems) * font_pt + 2 * TABCOLSEP_PT * len(ems)}


def latex_frame(frame: pd.DataFrame, caption: str, float_format: str = "%.4f") -> str:
    """A data table as LaTeX laid out by :func:`latex_layout` (see the module docstring)."""
    cells = _cells(frame, float_format)
    layout = latex_layout(frame, cells)
    specs = []
    for column, em in zip(layout["columns"], layout["ems"], strict=True):
        wraps = column["text"] or column["header_em"] > em
        if not wraps:
            specs.append("r" if column["numeric"] else "l")
        else:
            align = r"\raggedleft" if column["numeric"] else r"\raggedright"
            specs.append(f">{{{align}\\arraybackslash}}p{{{em * layout['font_pt'] + 1:.0f}pt}}")
    header = " & ".join(latex_escape(c["header"]) for c in layout["columns"]) + r" \\"
    body = "\n".join(" & ".join(latex_escape(v) for v in row) + r" \\"
                     for row in cells.itertuples(index=False))
    spec = "@{}" + "".join(specs) + "@{}"
    size = f"\\{layout['size']}\n\\setlength{{\\tabcolsep}}{{{TABCOLSEP_PT:.0f}pt}}\n"
    packages = ["booktabs", "array"] + (["longtable"] if layout["long"] else ["threeparttable"])
    packages += ["pdflscape"] if layout["landscape"] else []
    head = latex_preamble_comment(packages)
    if layout["long"]:
        table = (f"\\begin{{longtable}}{{{spec}}}\n\\caption{{{latex_escape(caption)}}}\\\\\n"
                 f"\\toprule\n{header}\n\\midrule\n\\endfirsthead\n"
                 f"\\toprule\n{header}\n\\midrule\n\\endhead\n\\bottomrule\n\\endlastfoot\n"
                 f"{body}\n\\end{{longtable}}\n")
        inner = "{" + size + "\\setlength{\\LTcapwidth}{\\linewidth}\n" + table + "}\n"
    else:
        inner = ("\\begin{table}[!htbp]\n\\centering\n\\begin{threeparttable}\n"
                 f"\\caption{{{latex_escape(caption)}}}\n{size}"
                 f"\\begin{{tabular}}{{{spec}}}\n\\toprule\n{header}\n\\midrule\n{body}\n"
                 "\\bottomrule\n\\end{tabular}\n\\end{threeparttable}\n\\end{table}\n")
    if layout["landscape"]:
        inner = "\\begin{landscape}\n" + inner + "\\end{landscape}\n"
    return head + inner


def html_frame(frame: pd.DataFrame, caption: str | None = None, float_format: str = "%.4f",
               html_cells: dict[str, list[str]] | None = None) -> str:
    """A data table as HTML: a ``<caption>``, readable headers, numbers right-aligned, the cell
    text of :func:`_cells`. ``html_cells``: columns given as ready HTML (links, abbreviations)."""
    cells = _cells(frame, float_format)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    head = "".join(f"<th>{html_text(readable(c))}</th>" for c in frame.columns)
    given = html_cells or {}
    rows = []
    for i, row in enumerate(cells.itertuples(index=False)):
        out = []
        for column, value, num in zip(frame.columns, row, numeric, strict=True):
            text = given[column][i] if column in given else html_text(value)
            out.append(f"<td class='num'>{text}</td>" if num else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(out) + "</tr>\n")
    title = f"<caption>{html_text(caption)}</caption>" if caption else ""
    return (f"<table class='data'>{title}\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
            + "".join(rows) + "</tbody></table>\n")


def frame_table(frame: pd.DataFrame, stem: Path, caption: str, float_format: str = "%.4f"
                ) -> list[Path]:
    """A plain data table as Markdown, HTML (with a caption) and LaTeX (:func:`latex_frame`),
    with readable headers (:func:`readable`) and the same cell text in every format; text
    cells are printed as they are ("0.100" stays "0.100")."""
    cells = _cells(frame, float_format)
    headers = [readable(c) for c in frame.columns]
    shown = cells.set_axis(headers, axis=1)
    md = (f"**{caption}**\n\n"
          + shown.to_markdown(index=False, disable_numparse=True,
                              colalign=["right" if pd.api.types.is_numeric_dtype(frame[c])
                                        else "left" for c in frame.columns]) + "\n")
    html = html_frame(frame, caption, float_format)
    tex = latex_frame(frame, caption, float_format)
    return [atomic_write_text(stem.with_suffix(".md"), md),
            atomic_write_text(stem.with_suffix(".html"), html),
            atomic_write_text(stem.with_suffix(".tex"), tex)]
