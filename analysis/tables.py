"""Regression tables that paste straight into a paper: stargazer with its defects fixed.

stargazer (the design card's choice) is used for layout, but five of its defaults are wrong for
linearmodels results with few clusters, and :func:`regression_table` fixes each one:

1. its "Residual Std. Error" is sqrt(model_ss / df_resid), not the residual SE: hidden;
2. its F statistic is the non-robust one: hidden (the FE and SE rows say what is estimated);
3. its stars come from the model's own p-values (normal or t(N-K)): replaced by the p-values of
   the inference the table names (the main table: the WCR bootstrap), for every row; a row
   without that p-value gets no star (never a star from another method); the parentheses hold
   the standard error the table names (the main table: CRV3), never stargazer's own;
4. it leaves underscores and other LaTeX specials in names unescaped: labels are escaped;
5. it prints empty ``$^{}$`` superscripts where a cell has no star: removed;

and it has no rows for fixed effects, SE type, clusters or bootstrap p-values: they are added.
LaTeX output uses booktabs rules (\\toprule, \\midrule, \\bottomrule).
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.io import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:  # annotations only: frame_table users need neither linearmodels nor stargazer
    from stargazer.stargazer import Stargazer

    from analysis.estimation import ModelResult

LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "×": r"$\times$", "–": "--", "—": "---",
                  "²": r"$^2$", "<": r"$<$", ">": r"$>$", "≥": r"$\geq$", "≤": r"$\leq$"}


STAR_LABELS = {"p_value": "CRV1, t(G-1)", "p_wcr": "WCR bootstrap (Webb)",
               "p_crv3": "CRV3 (MNW), t(G-1)"}
SE_LABELS = {"std_error": "CRV1 by country", "se_crv3": "CRV3 (MNW) by country"}

#: The p-value conventions every regression-table note states.
P_VALUE_CONVENTION = (
    "All p-values are two-sided; bootstrap p-values are symmetric (share of |t*| >= |t|). "
    "CRV1 and CRV3 p-values use t(G-1). WCR: wild cluster restricted "
    "bootstrap-t that re-estimates the year effects in every draw (country effects, nested in "
    "the clusters, partialled out); Webb weights with B = {B:,} draws and seed {seed}; the "
    "Rademacher p enumerates all 2^G sign vectors and counts every draw, the two identity "
    "draws included.")


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


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def stars(p: float, levels: tuple[float, ...] = (0.1, 0.05, 0.01)) -> str:
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
    return {
        "dependent_variable": dependent_label,
        "cov_names": np.array(table.index),
        "cov_values": table["estimate"],
        "cov_std_err": table[se_column],
        "p_values": table[p_column],
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
    table.show_residual_std_err = False   # fix 1
    table.show_f_statistic = False        # fix 2
    table.show_adj_r2 = False
    table.show_r2 = False
    table.show_within_r2 = True
    table.show_dof = False
    table.show_ngroups = False            # printed as an explicit "Clusters (G)" row instead
    present = [t for t in order if any(t in r.table.index for r in results)]
    table.covariate_order(present)
    rename = {t: latex_escape(labels.get(t, t)) if latex else labels.get(t, t) for t in present}
    table.rename_covariates(rename)       # fix 4 (LaTeX)
    table.dependent_variable_name(latex_escape(dependent_label) if latex else dependent_label)
    table.custom_columns([r.name for r in results], [1] * len(results))
    table.show_model_numbers(False)
    table.add_line("Country FE", ["Yes"] * len(results), LineLocation.FOOTER_TOP)
    table.add_line("Year FE", ["Yes"] * len(results), LineLocation.FOOTER_TOP)
    table.add_line("Clusters (G)", [str(r.n_clusters) for r in results], LineLocation.FOOTER_TOP)
    se_label = SE_LABELS[se_source]
    table.add_line("SE type", [se_label] * len(results), LineLocation.FOOTER_TOP)
    star_label = STAR_LABELS[star_source]
    table.add_line("Stars from", [star_label] * len(results), LineLocation.FOOTER_TOP)
    for term in [t for t in ("gpr", "gpr:rn", "gpr:ti", "gpr:rn:ti") if t in present]:
        values = []
        for r in results:
            p = r.table["p_wcr"].get(term, np.nan) if term in r.table.index else np.nan
            values.append("" if not np.isfinite(p) else f"{p:.3f}")
        label = f"WCR p: {labels.get(term, term)}"
        table.add_line(latex_escape(label) if latex else label, values, LineLocation.FOOTER_TOP)
    table.significance_levels([0.1, 0.05, 0.01])
    table.significant_digits(4)
    return table


def to_booktabs(latex: str) -> str:
    """stargazer's LaTeX with booktabs rules, no empty superscripts (fix 5), and a note that
    wraps to the table width instead of one long right-aligned line."""
    latex = latex.replace("$^{}$", "")
    latex = re.sub(r"\\hline\s*\\hline", r"\\toprule", latex, count=1)
    latex = re.sub(r"\\hline\s*\\hline", r"\\bottomrule", latex)
    latex = latex.replace("\\hline", "\\midrule")
    latex = re.sub(r"\\midrule\s*(\\\\\[-1\.8ex\])?\s*\\bottomrule", r"\\bottomrule", latex)
    latex = re.sub(r"\\\s*\n\\cr\s*\\cline\{(\d+-\d+)\}", r"\\\\ \\cmidrule(lr){\1}", latex)
    note = re.search(r"\\multicolumn\{\d+\}\{r\}\\textit\{(.*)\} \\\\\n", latex)
    if note:
        latex = latex.replace(note.group(0), "")
        latex = latex.replace("\\end{tabular}", "\\end{tabular}\n\\par\\smallskip\n"
                              "\\begin{minipage}{\\linewidth}\\footnotesize "
                              + note.group(1) + "\\end{minipage}", 1)
    return latex


def markdown_table(results: list[ModelResult], labels: dict[str, str], order: list[str],
                   star_source: str = "p_value", se_source: str = "std_error") -> str:
    """The same regression table as GitHub Markdown (estimate with stars from ``star_source``,
    the ``se_source`` standard error below)."""
    present = [t for t in order if any(t in r.table.index for r in results)]
    rows = []
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
        rows += [est, se]
    footer = [
        ["Country FE", *["Yes"] * len(results)],
        ["Year FE", *["Yes"] * len(results)],
        ["Observations (N)", *[str(r.n_obs) for r in results]],
        ["Clusters (G)", *[str(r.n_clusters) for r in results]],
        ["Within R²", *[f"{r.within_r2:.4f}" for r in results]],
        ["SE type", *[SE_LABELS[se_source]] * len(results)],
        ["Stars from", *[STAR_LABELS[star_source]] * len(results)],
    ]
    for term in [t for t in ("gpr", "gpr:rn", "gpr:ti", "gpr:rn:ti") if t in present]:
        footer.append([f"WCR p: {labels.get(term, term)}",
                       *[(f"{r.table.loc[term, 'p_wcr']:.3f}" if term in r.table.index
                          and np.isfinite(r.table.loc[term, "p_wcr"]) else "")
                         for r in results]])
    header = ["", *[r.name for r in results]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines.append("| " + " | ".join(["**Statistics**"] + [""] * len(results)) + " |")
    lines += ["| " + " | ".join(row) + " |" for row in footer]
    return "\n".join(lines) + "\n"


def write_regression_table(results: list[ModelResult], labels: dict[str, str], order: list[str],
                           stem: Path, title: str, note: str,
                           star_source: str = "p_value", se_source: str = "std_error"
                           ) -> list[Path]:
    """Write ``stem``.tex (booktabs), .html and .md; returns the paths."""
    html_table = build_stargazer(results, labels, order, star_source, se_source=se_source)
    html_table.title(title)
    html_table.add_custom_notes([note])
    html = html_table.render_html().replace("$^{}$", "")
    tex_table = build_stargazer(results, labels, order, star_source, latex=True,
                                se_source=se_source)
    tex_table.title(latex_escape(title))
    tex_table.add_custom_notes([latex_escape(note)])
    tex = to_booktabs(tex_table.render_latex())
    md = f"**{title}**\n\n" + markdown_table(results, labels, order, star_source,
                                              se_source) + f"\n{note}\n"
    paths = []
    for suffix, text in ((".tex", tex), (".html", html), (".md", md)):
        paths.append(atomic_write_text(stem.with_suffix(suffix), text))
    return paths


def write_docx(results: list[ModelResult], labels: dict[str, str], order: list[str],
               path: Path, title: str, note: str, star_source: str = "p_value",
               se_source: str = "std_error") -> Path:
    """A Word version of the Markdown regression table (python-docx), with the same stars and
    standard errors."""
    from docx import Document

    md = markdown_table(results, labels, order, star_source, se_source).strip().splitlines()
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in md if "---" not in line]
    document = Document()
    document.add_heading(title, level=2)
    grid = document.add_table(rows=len(rows), cols=len(rows[0]))
    for grid_row, row in zip(grid.rows, rows, strict=True):  # a row's cells at once: Table.cell
        for grid_cell, cell in zip(grid_row.cells, row, strict=True):  # rebuilds every cell
            grid_cell.text = cell.replace("**", "")
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


def frame_table(frame: pd.DataFrame, stem: Path, caption: str, float_format: str = "%.4f",
                numparse: bool = True) -> list[Path]:
    """A plain data table as Markdown, HTML and booktabs LaTeX.

    ``numparse=False`` prints text cells as they are in Markdown too (tabulate would otherwise
    read "0.100" as a number and print it with four decimals), for tables whose numbers are
    already formatted with the precision they are rounded to.
    """
    md = f"**{caption}**\n\n" + frame.to_markdown(index=False, floatfmt=".4f",
                                                    disable_numparse=not numparse) + "\n"
    html = frame.to_html(index=False, border=0, float_format=lambda x: float_format % x)
    escaped = frame.rename(columns=lambda c: latex_escape(c))
    for column in escaped.columns:
        if escaped[column].dtype == object:
            escaped[column] = escaped[column].map(lambda v: latex_escape(v) if isinstance(v, str)
                                                  else v)
    tex = escaped.to_latex(index=False, escape=False, caption=latex_escape(caption),
                           float_format=float_format)
    return [atomic_write_text(stem.with_suffix(".md"), md),
            atomic_write_text(stem.with_suffix(".html"), html),
            atomic_write_text(stem.with_suffix(".tex"), tex)]
