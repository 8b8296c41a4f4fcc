"""Stage 6, report: ``outputs/report.html`` (one self-contained page) and ``outputs/manifest.json``.

The page holds the findings table for H1–H4, every table and figure (figures embedded as PNG
data URIs, so the file can be mailed on its own), index weights, data coverage, provenance
(source, vintage, licence, sha256) and the run manifest. The manifest records the sha256 of every
input and output, package versions, seeds and the runtime of each step.

Run ``python -m analysis.stages.report --help``.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import config
from analysis.data import specs
from analysis.data.io import (
    DataError,
    add_verbose_argument,
    atomic_write_text,
    display_path,
    run_stage,
    sha256_of,
)
from analysis.data.registry import load_registry
from analysis.publish.tables import html_frame

HYPOTHESES = [
    ("H1", "GPR raises regional mineral-chain synergy", "gpr", "M1", "> 0"),
    ("H2", "resource nationalism suppresses the effect", "gpr:rn", "M4", "< 0"),
    ("H3", "innovation amplifies the effect", "gpr:ti", "M4", "> 0"),
    ("H4", "innovation offsets the RN suppression", "gpr:rn:ti", "M5", "> 0"),
]
PACKAGES = ["numpy", "pandas", "scipy", "statsmodels", "linearmodels", "pyfixest", "wildboottest",
            "stargazer", "pandera", "pooch", "country_converter", "matplotlib", "pyarrow",
            "pysd", "SALib"]


def findings_table(estimates: pd.DataFrame, robustness: pd.DataFrame | None,
                   power: pd.DataFrame | None = None, iv: pd.DataFrame | None = None
                   ) -> pd.DataFrame:
    """H1–H4: estimate, CRV1 p (t(G-1)), WCR p, a verdict, whether the data can tell, and how
    the battery treats the term.

    Verdict: "supported" only if the sign is the expected one and the WCR p (the inference the
    design trusts with few clusters) is below 0.05; "weak" below 0.10; otherwise "not
    supported". "Can the data tell?" comes from ``outputs/power.csv`` (the term's WCR p and
    its two one-sided WCR tests against the smallest effect of interest,
    :func:`analysis.econometrics.power.equivalence_verdict`): "effect detected", "no effect as large as the
    SESOI", or "cannot tell" (the data are compatible both with no effect and with one at least
    as large as the SESOI), with the simulated WCR MDE in SD units beside it. The battery
    varies the base model M4, so for H1 its shares refer to the GPR coefficient in M4 (the
    effect at mean RN and TI); H4's term is not in M4, so it has no battery shares. A second H1
    row reports M1 on its own largest sample (the robustness entry ``m1_own_sample``), and a
    third the headline IV (``iv_m1_shift_share`` in ``outputs/iv_diagnostics.csv``): "not
    informative" when its instrument is weak.
    """
    from analysis.econometrics.variants import variant_shares

    rows = []
    variants = None
    if robustness is not None:
        variants = robustness[(robustness["check"] != "main") & (robustness["kind"] == "variant")]
    detect = None if power is None else power.set_index(["model", "term"])
    for hid, claim, term, model, sign in HYPOTHESES:
        row = estimates[(estimates["model"] == model) & (estimates["term"] == term)]
        if row.empty:
            continue
        r = row.iloc[0]
        out = _finding(hid, claim, f"{term} ({model}, N = {int(r['n_obs'])}, "
                       f"G = {int(r['n_clusters'])})", sign, r["estimate"], r["p_value"],
                       r["p_wcr"])
        if detect is not None and (model, term) in detect.index:
            d = detect.loc[(model, term)]
            out |= {"estimate (SD units)": d["estimate_sd"], "MDE (SD units, WCR)":
                    d["mde_sd_units"], "SESOI (SD units)": d["sesoi"], "TOST p (WCR)":
                    d["tost_p"], "can the data tell?": d["verdict"]}
        if variants is not None and f"b[{term}]" in robustness:
            main_sign = np.sign(robustness.loc[robustness["check"] == "main",
                                               f"b[{term}]"].iloc[0])
            shares = variant_shares(variants, term, main_sign)
            out |= {"share same sign": shares["share_same_sign"],
                    "share p<0.10 (CRV1)": shares["share_p10_crv1"],
                    "share p<0.10 (WCR)": shares["share_p10_wcr"]}
        rows.append(out)
        if hid == "H1" and robustness is not None and (robustness["check"] == "m1_own_sample").any():
            own = robustness[robustness["check"] == "m1_own_sample"].iloc[0]
            rows.append(_finding(
                "H1", f"{claim} (M1 on its own largest sample)",
                f"gpr (M1, N = {int(own['n_obs'])}, G = {int(own['n_clusters'])})", sign,
                own["b[gpr]"], own["p[gpr]"], own["p_wcr[gpr]"]))
        if hid == "H1" and iv is not None and (iv["check"] == HEADLINE_IV).any():
            rows.append(_iv_finding(claim, sign, iv[iv["check"] == HEADLINE_IV].iloc[0]))
    return pd.DataFrame(rows)


#: The robustness entry of the headline IV (M1 on the main sample, shift-share instrument).
HEADLINE_IV = "iv_m1_shift_share"


def _iv_finding(claim: str, sign: str, row: pd.Series) -> dict:
    """The headline IV as a findings row: "not informative" when the instrument is weak (its
    status says so), else the verdict from the AR test of beta = 0 and the sign."""
    out = _finding("H1", f"{claim} (IV: GPRX instrumented by the shift-share GPR, M1)",
                   f"gpr (IV, M1, N = {int(row['N'])}, G = {int(row['G'])})", sign,
                   row["estimate"], row["p (t(G-1))"], np.nan)
    status = str(row["status"])
    if status.startswith("not informative"):
        out["verdict"] = "not informative (weak instrument)"
        out["can the data tell?"] = (f"no: first-stage F = {row['first-stage F (CRV1)']:.2f}, "
                                     f"first stage {row['first stage: sign']}, AR set "
                                     f"{row['AR 95% set (exact)']}")
    else:
        expected = (row["estimate"] > 0) == (sign == "> 0")
        out["verdict"] = ("supported (AR p < 0.05)" if expected and row["AR p (F(q, G-1))"] < 0.05
                          else "not supported")
        out["can the data tell?"] = f"AR set {row['AR 95% set (exact)']}"
    return out


def _finding(hid: str, claim: str, term: str, sign: str, estimate: float, p_crv1: float,
             p_wcr: float) -> dict:
    expected = (estimate > 0) == (sign == "> 0")
    if expected and p_wcr < 0.05:
        verdict = "supported (WCR p < 0.05)"
    elif expected and p_wcr < 0.10:
        verdict = "weak (WCR p < 0.10)"
    else:
        verdict = "not supported"
    return {"hypothesis": hid, "claim": claim, "term": term, "expected sign": sign,
            "estimate": estimate, "CRV1 p": p_crv1, "WCR p": p_wcr,
            "sign as expected": "yes" if expected else "no", "verdict": verdict,
            "estimate (SD units)": np.nan, "MDE (SD units, WCR)": np.nan,
            "SESOI (SD units)": np.nan, "TOST p (WCR)": np.nan,
            "can the data tell?": "not computed",
            "share same sign": np.nan, "share p<0.10 (CRV1)": np.nan,
            "share p<0.10 (WCR)": np.nan}


def power_section(outputs: Path) -> str:
    """What the design can detect (``outputs/power.csv``, written by the models stage): for
    each hypothesis whether the data tell "no effect" from "cannot tell", and the table."""
    path = outputs / "power.csv"
    if not path.exists():
        return "<p class='missing'>outputs/power.csv was not produced (make models).</p>"
    table = pd.read_csv(path).set_index(["model", "term"])
    sentences = []
    for hid, claim, term, model, _ in HYPOTHESES:
        if (model, term) not in table.index:
            continue
        r = table.loc[(model, term)]
        mde = ("never reached 80% power in the simulation" if not np.isfinite(r["mde_sd_units"])
               else f"{r['mde_sd_units']:.2f}")
        plain = {"effect detected": "the data detect an effect",
                 "no effect as large as the SESOI": "the data rule out an effect as large as "
                 "the SESOI (equivalence shown)",
                 "detected, smaller than the SESOI": "the data detect an effect smaller than "
                 "the SESOI",
                 "cannot tell": "the data cannot tell: they are compatible with no effect and "
                 "with an effect at least as large as the SESOI"}
        verdict, _, check = str(r["verdict"]).partition(" by WCR only (CRV3: ")
        what = plain.get(verdict, verdict)
        if check:
            what = (f"by the WCR tests alone, {what}; the conservative CRV3 tests (p = "
                    f"{r['p_crv3']:.2f}, TOST p = {r['tost_p_crv3']:.2f}) say "
                    f"'{check.rstrip(')')}', so this conclusion is borderline")
        sentences.append(
            f"<li><b>{hid}</b> ({html.escape(claim)}; {html.escape(term)} in {model}): "
            f"estimate {r['estimate_sd']:.2f} SD per SD, 90% CRV3 interval "
            f"[{r['ci90_low_sd']:.2f}, {r['ci90_high_sd']:.2f}]; the WCR test would detect "
            f"{mde} SD per SD with 80% power (CRV1 analytic {r['mde_crv1_sd']:.2f}, CRV3 "
            f"{r['mde_crv3_sd']:.2f}); against the SESOI of {r['sesoi']:.2f}, TOST p = "
            f"{r['tost_p']:.2f}: {what}.</li>")
    first = table.iloc[0]
    intro = (
        "<p>A null result says something only if the design could have detected an effect of "
        "interest. The smallest effect of interest (SESOI) is fixed in specs/models.yaml "
        f"before the results: {first['sesoi']:.2f} within-SD of SYN per within-SD of the term "
        "(two-way demeaned SDs on the estimation sample; Cohen's \"small\" standardised "
        "effect). The minimum detectable effect (MDE) is the effect a two-sided 5% test finds "
        "with 80% power: analytically (t(G−1) quantiles times the CRV1 or CRV3 SE) and by "
        "simulating the WCR test itself on the real regressors, clusters and years "
        f"({int(first['sim_reps'])} samples, AR(1) errors within country). The equivalence "
        "test (two one-sided WCR tests of |β| ≥ SESOI) says whether the data rule out an "
        "effect as large as the SESOI. At this design the WCR tests reject slightly more "
        "often than their nominal level and the CRV3 tests less often (section 'Inference "
        "checks'), so a conclusion is firm only where both reach it; where only the WCR tests "
        "do, it is marked 'by WCR only'.</p>")
    return (intro + "<ul>" + "".join(sentences) + "</ul>"
            + _html_table(outputs / "tables" / "power.html"))


def _figure(path: Path, caption: str) -> str:
    """A figure embedded as a PNG data URI, with a numbered caption (the stylesheet numbers
    figures); a note instead if the stage did not make it."""
    if not path.exists():
        return f"<p class='missing'>{html.escape(path.name)} was not produced.</p>"
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _html_table(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else \
        f"<p class='missing'>{html.escape(path.name)} was not produced.</p>"


def _fmt(frame: pd.DataFrame, caption: str | None = None, float_format: str = "%.4f",
         html_cells: dict[str, list[str]] | None = None) -> str:
    """A data frame as a report table: readable headers, whole numbers as integers."""
    return html_frame(frame, caption, float_format, html_cells)


def _labels() -> dict[str, str]:
    """Variable and term labels from specs/models.yaml (interactions from their factors)."""
    try:
        labels = specs.load(config.SPECS / "models.yaml")["labels"]
    except DataError:
        return {}
    terms = {"gpr", "rn", "ti", "gpr:rn", "gpr:ti", "rn:ti", "gpr:rn:ti"}
    return {t: specs.term_label(t, labels) for t in terms} | labels


def findings_display(findings: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """The findings table as the report prints it: terms by their labels
    (``gpr:rn (M4, N = 126, G = 7)`` -> ``GPR × RN (M4, N = 126, G = 7)``)."""
    if findings.empty or "term" not in findings:
        return findings
    out = findings.copy()
    out["term"] = out["term"].map(lambda text: re.sub(
        r"^([a-z_:]+)", lambda m: labels.get(m.group(1), m.group(1)), str(text)))
    return out


#: Labels of the panel variables that the registry does not describe (variable_labels).
VARIABLE_LABELS = {
    "gprc": "country GPR (Caldara–Iacoviello)", "wui": "World Uncertainty Index",
    "pwt_hc": "human capital index (PWT 10.0)", "wgi_va": "WGI voice and accountability",
    "wgi_pv": "WGI political stability", "wgi_ge": "WGI government effectiveness",
    "wgi_rq": "WGI regulatory quality", "wgi_rl": "WGI rule of law",
    "wgi_cc": "WGI control of corruption", "trade_openness": "trade openness (% of GDP)",
    "log_gdppc_ppp": "log GDP per capita (PPP)",
    "patents_per_million": "resident patent applications per million people",
    "articles_per_million": "journal articles per million people",
}


def variable_labels() -> dict[str, str]:
    """Panel variable -> what it is: the registry's dataset text for the WDI series, then
    :data:`VARIABLE_LABELS`."""
    out = {}
    for source in load_registry():
        if source.variable:
            out[source.variable] = source.dataset.split(": ", 1)[-1]
    return out | VARIABLE_LABELS


def labelled_variables(names: list[str]) -> list[str]:
    """HTML cells: each variable's label with its column name in small code type."""
    labels = variable_labels()
    return [f"{html.escape(labels.get(n, n))} <code>{html.escape(n)}</code>" for n in names]


def coverage_frame(markdown: str) -> pd.DataFrame:
    """The data-coverage grid of ``outputs/tables/data_coverage.md`` as a frame."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in markdown.splitlines() if line.startswith("|")]
    rows = [r for r in rows if not all(set(c) <= set(":-") for c in r)]
    if len(rows) < 2:
        return pd.DataFrame()
    return pd.DataFrame(rows[1:], columns=rows[0])


def file_hashes(paths: list[Path], root: Path) -> dict[str, str]:
    """{path relative to ``root`` (absolute for a file outside it): sha256}."""
    def name(path: Path) -> str:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            return str(path)
    return {name(p): sha256_of(p) for p in sorted(paths) if p.is_file()}


def build_manifest(outputs: Path, processed: Path, raw: Path) -> dict:
    models = yaml.safe_load((config.SPECS / "models.yaml").read_text())
    robustness = yaml.safe_load((config.SPECS / "robustness.yaml").read_text())
    inputs = [p for p in raw.rglob("*") if p.is_file() and not p.name.startswith(".")]
    inputs += [config.REGISTRY_FILE, config.HS_CHAIN_MAP_FILE, *config.SPECS.glob("*.yaml"),
               specs.load_region().path]
    # the default region's outputs/ holds the other regions' folders (outputs/<region>/)
    regions = {p.stem for p in config.REGIONS.glob("*.yaml")}
    outs = [p for p in outputs.rglob("*") if p.is_file()
            and p.name not in ("manifest.json", "report.html", "timings.json")
            and "logs" not in p.relative_to(outputs).parts
            and p.relative_to(outputs).parts[0] not in regions]
    timings_path = outputs / "timings.json"
    return {
        "project": "asean-mineral-chain",
        "region": specs.load_region().name,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: metadata.version(name) for name in PACKAGES},
        "seeds": {"wild_bootstrap": models["bootstrap"]["seed"],
                  "randomisation_inference": robustness["ri_seed"]},
        "bootstrap": models["bootstrap"],
        "runtime_seconds": json.loads(timings_path.read_text()) if timings_path.exists() else {},
        "inputs": file_hashes(inputs, config.ROOT),
        "processed": file_hashes(list(processed.glob("*.parquet")), config.ROOT),
        "outputs": file_hashes(outs, config.ROOT),
    }


def inference_section(outputs: Path) -> str:
    """Report section on the inference checks of METHODS.md sections 5-6 (issue 8): cluster
    influence of every key term (partial leverage, G*, leave-one-country-out), every
    coefficient's p-value under each inference, the IV diagnostics and the rule that labels
    randomisation-inference rows as placebos. Reads outputs/cluster_influence.csv and the
    tables the models and robustness stages wrote."""
    tables = outputs / "tables"
    parts = [("<p class='note'>All p-values are two-sided. CRV1 and CRV3 (MacKinnon–Nielsen–"
             "Webb jackknife, (G−1)/G) use t(G−1), Driscoll–Kraay t(T−1). The wild cluster "
             "restricted bootstrap re-estimates the year effects in every draw (only the "
             "country effects, nested in the country clusters, are partialled out); its "
             "p-values are symmetric, share of |t*| ≥ |t|; the Rademacher p enumerates all 2<sup>G</sup> "
             "sign vectors and counts every draw, the two identity draws included.</p>")]
    path = outputs / "cluster_influence.csv"
    if path.exists():
        influence = pd.read_csv(path)
        high = influence[influence["partial_leverage"] > 0.5]
        labels = _labels()
        if len(high):
            parts.append("<p class='note'><b>One cluster carries more than half of the "
                         "identifying variation</b> (partial leverage &gt; 0.5) for: "
                         + html.escape("; ".join(
                             f"{r.model} {labels.get(r.term, r.term)}: {r.cluster} "
                             f"{r.partial_leverage:.2f}, G* = {r.g_star:.1f}"
                             for r in high.itertuples()))
                         + ". Cluster-robust and bootstrap inference on these terms rests "
                         "on that one country; read them with the leave-one-out estimates "
                         "below.</p>")
        else:
            parts.append("<p class='note'>No cluster has partial leverage above 0.5 for any "
                         "key term.</p>")
    parts.append(_html_table(tables / "cluster_influence.html"))
    parts.append("<p class='note'>Partial leverage: the cluster's share of the sum of squares "
                 "of the regressor net of the other regressors and both fixed effects. G*: "
                 "Carter, Schnepel &amp; Steigerwald (2017) effective number of clusters with "
                 "ρ = 0 (summclust's G*(0)). Every cluster's row is in "
                 "outputs/cluster_influence.csv.</p>")
    parts.append(_html_table(tables / "main_results_pvalues.html"))
    parts.append(size_table_html(outputs))
    iv = tables / "iv_diagnostics.html"
    if iv.exists():
        parts.append(_html_table(iv))
    parts.append("<p class='note'>Randomisation inference, within the estimation window: for "
                 "H1 whole years of the GPR cross-section are permuted (M1); for the "
                 "interactions the moderator's country paths are permuted and only the "
                 "interaction is rebuilt, the main effects held fixed (M4); statistic: the CRV1 "
                 "t. A check is read as a test only if its size at 5% on this design (make "
                 "bench) lies in [0.025, 0.075] (Bradley's liberal criterion); otherwise, or "
                 "if it was not measured at this design, its row is a placebo.</p>")
    return "".join(parts)


def size_table_html(outputs: Path) -> str:
    """The sizes ``make bench BENCH_ARGS="--size --record"`` measured on the estimation design
    (specs/inference_sizes.yaml), if they were measured at this sample's N, G and T."""
    path = config.SPECS / "inference_sizes.yaml"
    estimates = outputs / "estimates.csv"
    if not path.exists() or not estimates.exists():
        return ("<p class='note'>Test sizes at this design have not been measured "
                "(make bench BENCH_ARGS=\"--size --record\").</p>")
    sizes = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    design = sizes.get("design", {})
    est = pd.read_csv(estimates)
    main = est[est["model"] == "M5"] if (est["model"] == "M5").any() else est
    current = (int(main["n_obs"].iloc[0]), int(main["n_clusters"].iloc[0]),
               int(main["n_periods"].iloc[0]))
    recorded = (design.get("n_obs"), design.get("n_clusters"), design.get("n_periods"))
    if current != recorded:
        return (f"<p class='note'><b>The recorded test sizes were measured at N, G, T = "
                f"{recorded}, not at this sample's {current}</b>: re-run make bench "
                "BENCH_ARGS=\"--size --record\".</p>")
    labels = _labels()

    def label(model_term: str) -> str:
        model, _, term = model_term.partition(" ")
        return f"{model}: {labels.get(term, term)}"

    rows = []
    for method, entry in (sizes.get("methods") or {}).items():
        for term, rate in entry["terms"].items():
            rows.append({"method": method, "term": label(term), "size at 5%": rate})
    for check, entry in (sizes.get("ri") or {}).items():
        rows.append({"method": f"RI {check} ({entry['scheme']})",
                     "term": label(f"{entry['model']} {entry['term']}"),
                     "size at 5%": entry["size"]})
    table = pd.DataFrame(rows).pivot_table(index="method", columns="term",
                                           values="size at 5%", sort=False).reset_index()
    table.columns.name = None
    sim = sizes.get("simulation", {})
    return (f"<p class='note'>Size of each test at 5% under a true null, simulated on this "
            f"design (N = {current[0]}, G = {current[1]}, T = {current[2]}; the real "
            f"regressors, clusters and years; AR(1) errors within country; {sim.get('reps')} "
            f"replications, B = {sim.get('bootstrap_draws')}; make bench). A method outside "
            "[0.025, 0.075] over-rejects (above) or under-rejects (below) at this design.</p>"
            + _fmt(table, "Rejection rate at 5% under a true null, by test and term (simulated "
                   "on the estimation design)", float_format="%.3f"))


def nickel_section(outputs: Path) -> str:
    """The nickel case (METHODS.md section 8, ``analysis/stages/nickel.py``) in plain words, beside the
    main panel's H2 finding, with its tables and figures; a note if the stage has not run."""
    tables, figures = outputs / "tables", outputs / "figures"
    needed = [outputs / n for n in ("nickel_stage_mix.csv", "nickel_event_tests.csv",
                                    "nickel_treated_units.csv", "estimates.csv")]
    if not all(p.exists() for p in needed):
        return "<p class='missing'>The nickel stage has not run (`make nickel`).</p>"
    mix = pd.read_csv(outputs / "nickel_stage_mix.csv").set_index(["exporter", "year"])
    tests = pd.read_csv(outputs / "nickel_event_tests.csv").set_index(["model", "test"])
    units = pd.read_csv(outputs / "nickel_treated_units.csv").set_index("group")
    estimates = pd.read_csv(outputs / "estimates.csv")

    def usd(exporter: str, year: int, column: str) -> str:
        return f"USD {mix.loc[(exporter, year), column] / 1e3:,.0f} m"

    def share(year: int) -> str:
        return f"{mix.loc[('IDN', year), 'downstream_share']:.0%}"

    def post(group: str, ban: int) -> str:
        b = tests.loc[("main", f"postavg_{group}_b{ban}"), "estimate"]
        return f"{b:.2f} log points ({np.expm1(b):+.0%})"

    def wald(model: str, test: str) -> str:
        row = tests.loc[(model, test)]
        return f"χ²({row['df']:.0f}) = {row['wald']:.1f}, p = {row['p_value']:.3g}"

    perm = {g: tests.loc[("permutation", f"perm_{g}_b2014")] for g in ("ore", "down")}
    variants_path = outputs / "nickel_variants.csv"
    variants = (pd.read_csv(variants_path).set_index(["model", "group", "ban"])
                if variants_path.exists() else None)

    def variant(model: str, group: str, ban: int) -> str:
        if variants is None or (model, group, ban) not in variants.index:
            return "not estimated"
        r = variants.loc[(model, group, ban)]
        return f"{r['mean post']:.2f} ({r['SE post']:.2f})"
    h2 = estimates[(estimates["model"] == "M4") & (estimates["term"] == "gpr:rn")]
    h2_text = (f"In the main panel, the GPR × RN coefficient of M4 is {h2['estimate'].iloc[0]:.3f} "
               f"(CRV1 p = {h2['p_value'].iloc[0]:.2f}, WCR p = {h2['p_wcr'].iloc[0]:.2f}). "
               if len(h2) else "")
    text = (
        "<p><b>What the nickel case shows.</b> Indonesia's exports of nickel to China were "
        f"{usd('IDN', 2013, 'ore')} of ore and {usd('IDN', 2013, 'intermediate')} of "
        "intermediates (ferro-nickel and nickel pig iron, mattes, oxide sinters and MHP) in "
        f"2013, the year before the ore-export ban. In 2015, with the ban in force, ore was "
        f"{usd('IDN', 2015, 'ore')} and intermediates {usd('IDN', 2015, 'intermediate')}; in "
        f"2019, the last year of the relaxation, {usd('IDN', 2019, 'ore')} and "
        f"{usd('IDN', 2019, 'intermediate')}; in 2023, after the re-imposed ban, "
        f"{usd('IDN', 2023, 'ore')} and {usd('IDN', 2023, 'intermediate')}. The downstream "
        f"share of Indonesia's nickel exports to China went from {share(2013)} (2013) to "
        f"{share(2015)} (2015), {share(2019)} (2019) and {share(2023)} (2023). The bans moved "
        "the Indonesia–China chain downstream rather than cutting it; the Philippines, the "
        "region's other large ore exporter, kept shipping ore (figure below).</p>"
        "<p><b>Event study.</b> In the PPML event study (exporter × product and partner × year "
        "fixed effects, every ASEAN exporter's nickel flows to 15 partners, zeros kept), the "
        "reference year is two years before each ban (2012, 2018), not the year before it: "
        "exports rushed out in 2013 and 2019 ahead of the announced bans, and those rush "
        "years get their own anticipation coefficient, outside the pre-trend test. The mean "
        f"of Indonesia's ore coefficients after the 2014 ban is {post('ore', 2014)} relative "
        f"to 2012, and after the 2020 ban {post('ore', 2020)} relative to 2018. Its downstream "
        "exports (all partners pooled, so Japan's matte imports weigh in) moved by "
        f"{post('down', 2014)} after 2014 and {post('down', 2020)} after 2020. With the "
        "first build's reference, the rush year k = −1 (variant <code>ref_k1</code>), the "
        f"ore means were {variant('ref_k1', 'ore', 2014)} and "
        f"{variant('ref_k1', 'ore', 2020)} log points (SE): measured against a spike. "
        "Two comparisons leave out flows the ban itself may have moved: with the "
        "Philippines as a spillover unit (its own event-time coefficients; its ore exports "
        "to China doubled in 2014) the ore means are "
        f"{variant('spillover_phl', 'ore', 2014)} and {variant('spillover_phl', 'ore', 2020)}; "
        "with the partner × year effects estimated without the other members' nickel flows "
        f"to China, {variant('no_asean_to_china', 'ore', 2014)} and "
        f"{variant('no_asean_to_china', 'ore', 2020)} (table nickel_variants). Pre-trend "
        f"tests: ore before 2014 {wald('main', 'pretrend_ore_b2014')}; ore before 2020 "
        f"{wald('main', 'pretrend_ore_b2020')} (2017 against 2018, both in the relaxation "
        "regime). The coefficients are descriptive event-time contrasts, not clean causal "
        "effects. The placebo that gives the same bans to the Philippines also finds large, "
        "'significant' movements (its ore pre-trend "
        f"{wald('placebo_phl', 'pretrend_ore_b2014')}), and so does the placebo in time, a "
        "fake Indonesian ban in 2012 on 2010–2013 (ore: "
        f"{wald('placebo_dates', 'post_ore_b2012')}), which is not policy-free: ore exports "
        "needed licences and paid duty from May 2012 and rushed out in 2013.</p>"
        "<p><b>How few treated units.</b> One treated exporter (Indonesia), one ore code and "
        f"four downstream codes; {units.loc['ore', 'treated_clusters_in_sample']} of the "
        f"{units.loc['ore', 'clusters_in_sample']} exporter × partner clusters are treated, "
        f"and China takes {units.loc['ore', 'share_to_china']:.0%} of Indonesia's ore and "
        f"{units.loc['down', 'share_to_china']:.0%} of its downstream value, so essentially one "
        "dyad carries the estimate. Clustered standard errors with so few treated clusters "
        "over-reject: on synthetic flows with the same structure and no effect at all (one "
        "treated exporter of six sending 90% of its flows to one of five partners), 5% CRV1 "
        "tests reject far more often than 5%, and more with overdispersion and serial "
        "persistence calibrated on the real flows than with Poisson counts (docs/nickel.md, "
        "section 3; <code>python -m analysis.stages.nickel --size-mc 200</code>). The clustered "
        "covariance "
        "of the treated coefficients can also be rank-deficient. The permutation check, which gives the treatment to each "
        f"other ASEAN exporter with positive exports every year ({perm['ore']['n_placebo']:.0f} "
        f"for ore), gives p = {perm['ore']['p_perm_t']:.2f} for ore and "
        f"{perm['down']['p_perm_t']:.2f} for downstream (2014 ban, studentised), where "
        f"{perm['ore']['smallest_attainable_p']:.2f} is the smallest p it can produce: it can "
        "say that Indonesia's ore collapse is the most extreme among the region's exporters, "
        "not that it is significant at conventional levels.</p>"
        "<p><b>What it can and cannot say about H2.</b> " + h2_text + "H2 says that resource "
        "nationalism suppresses the effect of geopolitical risk on chain synergy. The nickel "
        "case is one country and one policy: it shows that a strong resource-nationalist "
        "measure restructured an ASEAN–China chain downstream instead of cutting it, and that "
        "a synergy measure built only on ore (as the main HS92 panel is for nickel) would read "
        "the restructuring as a collapse. It is not a test of the GPR × RN interaction: it "
        "has no variation in geopolitical risk, one treated country and no counterfactual for "
        "how the chain would have coupled without the ban. The dyad SYN with the HS07 "
        "intermediates (robustness entry <code>dyad_nickel</code>) carries the restructuring "
        "into the synergy measure; its world denominators cover only 15 partners for the "
        "added codes (docs/nickel.md).</p>")
    return (text + _figure(figures / "nickel_stage_mix.png",
                           "Nickel exports to China by stage, ban dates marked")
            + _html_table(tables / "nickel_stage_mix.html")
            + _figure(figures / "nickel_event_study.png",
                      "Event-study coefficients, 95% CI clustered by exporter × partner")
            + _html_table(tables / "nickel_event_study.html")
            + _html_table(tables / "nickel_variants.html")
            + _html_table(tables / "nickel_event_tests.html")
            + _html_table(tables / "nickel_treated_units.html")
            + _html_table(tables / "nickel_dyad_syn.html")
            + _html_table(tables / "nickel_concordance.html"))


def supply_risk_section(outputs: Path) -> str:
    """Supply risk (GeoPolRisk) and import dependence: tables, figures and plain-words notes
    from outputs/supply_risk.csv, outputs/dependence.csv and their coverage record (written by
    ``make supply-risk``; METHODS.md section 9, docs/supply_risk.md)."""
    scores_path, dependence_path = outputs / "supply_risk.csv", outputs / "dependence.csv"
    if not scores_path.exists() or not dependence_path.exists():
        return "<p class='missing'>Run <code>make supply-risk</code> for this section.</p>"
    spec = yaml.safe_load((config.SPECS / "supply_risk.yaml").read_text())
    coverage_path = outputs / "tables" / "supply_risk_coverage.json"
    coverage = json.loads(coverage_path.read_text()) if coverage_path.exists() else {}
    scores = pd.read_csv(scores_path)
    dependence = pd.read_csv(dependence_path)
    year = int(scores["year"].max())
    importers = spec["geopolrisk"]["importers"]
    focus = spec["geopolrisk"].get("focus_materials", [])
    last = scores[scores["year"] == year]
    no_trade = {m for m, y in coverage.get("no_trade_in_baci", []) if y == year}
    table = last[last["material"].isin(focus)].pivot(index="importer", columns="material",
                                                     values="score")
    table = table.reindex(index=importers, columns=focus).reset_index()
    table.columns.name = None
    scored = last[~last["material"].isin(no_trade)]

    def top(importer: str, n: int = 5) -> str:
        rows = scored[scored["importer"] == importer].nlargest(n, "score")
        return ", ".join(f"{r.material} ({r.score:.2f})" for r in rows.itertuples())

    chn = scored[scored["importer"] == "CHN"].set_index("material")["score"]
    asean = scored[scored["importer"] == "ASEAN"].set_index("material")["score"]
    both = pd.concat([chn, asean], axis=1, keys=["CHN", "ASEAN"]).dropna()
    higher = int((both["CHN"] > both["ASEAN"]).sum())

    def gap(china_higher: bool, n: int = 4) -> str:
        diff = (both["CHN"] - both["ASEAN"]) * (1 if china_higher else -1)
        return ", ".join(f"{m} ({both.loc[m, 'CHN']:.2f} vs {both.loc[m, 'ASEAN']:.2f})"
                         for m in diff.nlargest(n).index if diff[m] > 0)

    us = dependence[(dependence["importer"] == "USA") & (dependence["supplier"] == "CHN")
                    & (dependence["material"] == "rare_earths")].set_index("year")
    steps = [y for y in range(1995, int(us.index.max()) + 1, 5)] + [int(us.index.max())]
    us_table = us.reindex(sorted(set(steps)))[["share_value", "share_quantity"]]
    us_table = us_table.rename_axis("year").reset_index()
    peak = us["share_value"].idxmax()
    first, final = int(us.index.min()), int(us.index.max())
    wmd = coverage.get("wmd_years", [year])
    no_map = ", ".join(coverage.get("wmd_tables_without_hs_map", [])) or "none"
    missing_q = coverage.get("baci_missing_quantity_share", float("nan"))
    untraded = sorted({m for m, _ in coverage.get("no_trade_in_baci", [])})
    figures = outputs / "figures"

    def figure(name: str, caption: str) -> str:
        return _figure(figures / name, caption) if (figures / name).exists() else ""

    parts = [
        ("<p>The GeoPolRisk score (Gemechu et al. 2016; Koyamparambath et al. 2024) is the "
         "concentration of world mine production (HHI, World Mining Data) times the importer's "
         "<em>import risk</em>: the share of its supply (imports plus own production) that comes "
         "from politically unstable suppliers, weighted by their WGI political-stability score "
         "(0 = most stable, 1 = least). A high score needs both: a material mined in few "
         "countries, and an importer that buys it from unstable ones rather than producing it "
         "or buying it from stable ones. The numbers equal the authors' own implementation "
         "(geopolrisk-py 2.0.1) on every case it computes; the few departures are listed in "
         "docs/supply_risk.md. Scores are not comparable to the regression indices: they are "
         f"only available for {wmd[0]}–{wmd[-1]}.</p>"),
        (f"<p><strong>{year}.</strong> China's highest scores: {html.escape(top('CHN'))}. "
         f"ASEAN as a bloc (intra-ASEAN supply counted as riskless): "
         f"{html.escape(top('ASEAN'))}. China's score exceeds the bloc's for {higher} of "
         f"{len(both)} materials, most for {html.escape(gap(True))}; the bloc's exceeds "
         f"China's most for {html.escape(gap(False))}. Own production lowers import risk "
         "(it enters the denominator at zero risk), which is why China, the largest producer of "
         "many of these minerals, scores low on them; where it imports most of what it "
         "processes from unstable suppliers (cobalt from the DR Congo), it scores high.</p>"),
        _fmt(table,
             f"GeoPolRisk scores of the focus materials by importer, {year}"),
        figure("supply_risk_heatmap.png",
               f"GeoPolRisk scores by importer and material, {year}"),
        (f"<p><strong>US dependence on China for rare earths</strong> (HS 280530, 284610, "
         f"284690; BACI): China's share of US imports by value was "
         f"{us['share_value'].iloc[0]:.2f} in {first} (by quantity "
         f"{us['share_quantity'].iloc[0]:.2f}) and {us['share_value'].iloc[-1]:.2f} in "
         f"{final} (by quantity {us['share_quantity'].iloc[-1]:.2f}); its highest value share "
         f"was {us.loc[peak, 'share_value']:.2f}, in {peak}.</p>"),
        _fmt(us_table, "China's share of US imports of rare-earth metals and compounds "
             "(HS 280530, 284610, 284690), by value and by quantity"),
        figure("dependence_us_china_rare_earths.png",
               "China's share of US rare-earth imports"),
        figure("dependence_china_asean.png",
               "China's and ASEAN's imports by source, by chain (value shares)"),
        figure("dependence_central_asia.png",
               "Destinations of Central Asian critical-mineral exports (value shares)"),
        ("<p class='note'>In the Central Asia chart the shares are of the exporter's exports "
         "(dependence.csv: importer = destination, supplier = exporter).</p>"),
        ("<p class='note'><strong>What the data cannot cover.</strong> Scores exist only for the "
         f"World Mining Data years {wmd[0]}–{wmd[-1]} (trade goes back to 1995, production does "
         f"not). Materials without an HS mapping are not scored: {html.escape(no_map)}. Some "
         "materials have no BACI trade in some scored years (HS92 codes that later HS revisions "
         f"split): {html.escape(', '.join(untraded) or 'none')}; their import risk is 0 by "
         "construction and they are greyed out in the heat map. BACI reports no quantity for "
         f"{missing_q:.1%} of flows: the method counts them as 0 t in import risk but keeps "
         "their value in the price (and so in the CF). HS codes lump refining stages together "
         "(ores with metals for rare earths; gold ore with unwrought gold) and some chains are "
         "mapped to one stage only (nickel is HS 260400, ore: Indonesia's matte, pig iron and "
         "MHP are not in it), the WGI score is "
         "political stability only (no export restrictions, no transport exposure), and "
         "recycled supply is not separated. Dependence shares are gross trade: re-exports "
         "through Singapore or Hong Kong show up as supply from the hub.</p>"),
    ]
    return "".join(parts)


def scenarios_section(outputs: Path) -> str:
    """Scenarios and extreme shocks (METHODS.md section 10, ``analysis/stages/scenarios.py``,
    docs/scenarios.md): the calibrated stock-flow model of the nickel chain, its fit and
    hold-out test, the scenarios with Monte Carlo bands, the Sobol ranking of the disruption
    nodes, the causal-loop diagram and the rare-earth back-cast. Self-contained: it reads the
    stage's CSV and JSON files and nothing else."""
    fit_path = outputs / "scenario_fit.csv"
    if not fit_path.exists():
        return "<p class='missing'>Run <code>make scenarios</code> for this section.</p>"
    figures = outputs / "figures"

    def figure(name: str, caption: str) -> str:
        return _figure(figures / name, caption) if (figures / name).exists() else ""

    def read(name: str) -> pd.DataFrame | None:
        path = outputs / name
        return pd.read_csv(path, keep_default_na=False, na_values=[""]) if path.exists() \
            else None

    fit = read("scenario_fit.csv")
    full = read("scenario_fit_full.csv")
    parameters = read("scenario_parameters.csv")
    patterns = read("scenario_patterns.csv")
    summary = read("scenario_summary.csv")
    sobol = read("scenario_sobol.csv")
    loops = read("scenario_cld_links.csv")
    ree_patterns = read("rare_earth_patterns.csv")
    ree_data = read("rare_earth_data.csv")
    check = json.loads((outputs / "scenario_pysd_check.json").read_text()) \
        if (outputs / "scenario_pysd_check.json").exists() else {}
    calibration = json.loads((outputs / "scenario_calibration.json").read_text()) \
        if (outputs / "scenario_calibration.json").exists() else {}

    def fmt(frame: pd.DataFrame, caption: str, digits: int = 3) -> str:
        return _fmt(frame, caption, f"%.{digits}g")

    holdout = fit[fit["window"] == "holdout"]
    negative = holdout[holdout["r2"] < 0]["series"].tolist()
    scored = int(holdout["r2"].notna().sum())
    window = calibration.get("calibration", {}).get("window", [2010, 2019])
    parts = [
        ("<p>A stock-flow model of the Indonesia &rarr; China nickel chain "
         "(<code>specs/sd/nickel.mdl</code>, a Vensim text model run in PySD "
         f"{html.escape(str(check.get('pysd_version', '')))}): Indonesian mining capacity and "
         "ore stockpile, RKEF and HPAL capacity under construction and in operation, China's "
         "port ore inventory, nickel in use and scrap in China, the Philippines as a "
         "capacity-limited alternative supplier; policies (the ore ban, the 2017-2019 quotas, "
         "the 2012-2014 duty) from the coded measures, the price from the World Bank Pink "
         "Sheet. Quantities are kt of contained nickel. The Monte Carlo runs a vectorised copy "
         "of the same equations, which equals PySD's run of the calibrated baseline to "
         f"{check.get('max_relative_difference', float('nan')):.1e} (relative; PySD "
         f"{check.get('pysd_seconds', float('nan'))} s per run, the copy "
         f"{check.get('engine_seconds', float('nan'))} s).</p>"),
        (f"<p><strong>Fit.</strong> Free parameters fitted on {window[0]}-{window[1]} by least "
         "squares on log flows, then 2020-2024 predicted without refitting (levels, kt of "
         "nickel; R&sup2; = 1 &minus; SSE/SST, negative when the model predicts worse than "
         "the mean of the data; U<sup>M</sup>, U<sup>S</sup>, U<sup>C</sup>: Theil's shares of "
         "the mean squared error from bias, unequal variation and unequal covariation, "
         "Sterman 1984; RMSE in kt). R&sup2; and MAPE are left empty where a window has "
         "fewer than three years of at least 1 kt of actual flow, and China's supply gap is a "
         "constraint with target 0, not data (the note column says which). In the hold-out "
         f"R&sup2; is negative for {len(negative)} of the {scored} series that have one "
         f"({html.escape(', '.join(negative))}): "
         "<strong>the model fitted on 2010-2019 misses the 2020-2024 expansion of "
         "Indonesia's processing</strong> where U<sup>M</sup> dominates.</p>"),
        fmt(fit, f"Fit of the calibrated model: calibration {window[0]}-{window[1]} and "
            "hold-out 2020-2024 (kt of nickel)"),
        figure("scenario_fit.png", "Model against data; hold-out 2020-2024 shaded"),
    ]
    if full is not None:
        parts += [("<p>The scenarios start from the same least squares refitted on every year "
                   "2010-2024 (its fit below: in-sample, not a test).</p>"), fmt(full, "Fit of the model refitted on every year, 2010-2024 (in-sample)")]
    if parameters is not None:
        at = parameters[parameters["at_bound"].fillna("") != ""]
        parts += [("<p><strong>Calibrated parameters</strong> with their bounds (the ranges of "
                   "the model file); at a bound: "
                   + html.escape("; ".join(f"{r.parameter} ({r.window}, {r.at_bound})"
                                           for r in at.itertuples()) or "none")
                   + ". Standard errors from the curvature of the objective (inf: not "
                   "identified locally).</p>"), fmt(parameters, "Calibrated parameters, their bounds and standard errors", 4)]
    if patterns is not None:
        parts += [("<p><strong>Behaviour patterns</strong> (METHODS section 10) on the "
                  "calibrated runs:</p>"), fmt(patterns, "Behaviour patterns of the calibrated runs")]
    if summary is not None:
        shown = scenario_summary_display(summary)
        parts += [("<p><strong>Scenarios.</strong> Each is a data entry of "
                   "<code>specs/scenarios.yaml</code>; 1,000 Latin-hypercube runs over the "
                   "literature ranges of the model file (the calibrated parameters held at "
                   "their fit). China's supply gap: its requirement for Indonesian and "
                   "Philippine nickel that neither they nor other suppliers meet, kt a year, "
                   "mean over the report window of the median and of the 5% and 95% bands; "
                   "the largest yearly median; Indonesia's share of China's nickel supply; "
                   "Indonesia's export value to China by stage (million USD a year, median)."
                   "</p>"), fmt(shown, "Scenarios: China's supply gap, Indonesia's share of its supply "
                                 "and Indonesia's export value to China (1,000 runs each)")]
        parts.append(figure("scenario_supply_gap.png", "China's supply gap by scenario"))
        parts.append(figure("scenario_baseline.png", "Baseline: stocks and flows"))
        parts.append(figure("scenario_combined_extreme.png", "Combined extreme case"))
        parts.append("<p class='note'>Every scenario's figure is in outputs/figures/"
                     "scenario_&lt;id&gt;.png; the quantiles of every variable and year in "
                     "outputs/scenarios.csv.</p>")
    if sobol is not None:
        ranking = sobol.pivot(index="scenario", columns="group", values="ST")
        ranking["ranking (total Sobol index)"] = [
            " > ".join(f"{g} {row[g]:.2f}" for g in row.sort_values(ascending=False).index)
            for _, row in ranking.iterrows()]
        ranking = ranking.reindex(list(dict.fromkeys(sobol["scenario"]))).reset_index()
        parts += [("<p><strong>Disruption nodes.</strong> Total Sobol indices of China's "
                   "cumulative supply gap over the report window by group of parameters "
                   "(trade policy, technology and industrial chain, geopolitical layout, and "
                   "demand and market, which is no disruption node): the share of its "
                   "variance each group explains with its interactions. Where the gap is "
                   "zero in nearly every run, the indices are noise.</p>"),
                  fmt(ranking[["scenario", "ranking (total Sobol index)"]],
                      "Disruption nodes: parameter groups ranked by their total Sobol index")]
    if loops is not None:
        kinds = loops.groupby("loop", sort=False)["loop_polarity"].first().reset_index()
        parts += [("<p><strong>Causal-loop diagram</strong>, drawn from the model's dependency "
                  "graph; each link's sign from its equation:</p>"),
                  fmt(kinds, "Feedback loops of the nickel model and their polarity"),
                  figure("nickel_cld.png", "Feedback loops of the nickel model")]
    if ree_patterns is not None:
        parts += [("<p><strong>Rare earths</strong> (<code>specs/sd/rare_earths.mdl</code>, "
                   "same skeleton: Myanmar's ore to China, Lynas' Malaysian separation, "
                   "China's 1999-2014 quotas and its 2023-2025 controls from the measures): "
                   "the 2010 quota cut back-cast against the behaviour Sprecher et al. (2017) "
                   "report.</p>"),
                  fmt(ree_patterns.drop(columns="value"),
                      "Rare earths: the 2010 quota back-cast against the published behaviour"),
                  ("<p>The run beside World Mining Data shares of world production and BACI's "
                   "record of China's rare-earth exports (gross tonnes, not REO):</p>"),
                  fmt(ree_data, "Rare earths: the model run beside World Mining Data and BACI")
                  if ree_data is not None else "",
                  figure("rare_earth_backcast.png", "Rare earths: the 2010 back-cast")]
    parts.append(
        "<p class='note'>What the model is not: it has no exchange stocks, no Chinese NPI "
        "capacity of its own, no stainless steel trade, one content factor per product, and "
        "demand paths that are assumptions with ranges; the 2016 Philippine ore quantity in "
        "BACI (12 Mt in HS92, 1.3 Mt in HS07, against about 30 Mt in the other years and a "
        "value in line with 30 Mt) looks like a reporting error and is kept as published. "
        "docs/scenarios.md has the equations, sources and choices.</p>")
    return "".join(p for p in parts if p)


CSS = """
body{font-family:Georgia,serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:1em 0} td,th{padding:.25em .6em;
border-bottom:1px solid #eee;text-align:right} th{border-bottom:2px solid #444}
td:first-child,th:first-child{text-align:left} #findings + table td:nth-child(2){text-align:left} figure{margin:1.5em 0} img{max-width:100%}
figcaption{font-size:.85em;color:#555} .note{font-size:.9em;color:#444}
nav a{margin-right:1em} code{background:#f4f4f4;padding:0 .2em}
"""


def scorecard_section(outputs: Path) -> str:
    """The six-dimension supply-chain scorecard (METHODS.md section 11, ``make scorecard``,
    docs/scorecard.md): China's and Indonesia's dimension scores for the focus minerals, the
    heat maps, radar charts, early-warning flags, rank stability across methods, coverage and
    what the data cannot measure. Reads only files written by ``analysis.stages.scorecard``."""
    tables, figures = outputs / "tables", outputs / "figures"
    focus_path = tables / "scorecard_focus.csv"
    if not (outputs / "scorecard.csv").exists() or not focus_path.exists():
        return "<p class='missing'>Run <code>make scorecard</code> for this section.</p>"
    spec = yaml.safe_load((config.SPECS / "scorecard.yaml").read_text(encoding="utf-8"))
    focus = pd.read_csv(focus_path)
    flags = pd.read_csv(tables / "scorecard_early_warning.csv")
    coverage = pd.read_csv(tables / "scorecard_coverage.csv")
    basis = pd.read_csv(tables / "scorecard_basis.csv")
    stability = pd.read_csv(tables / "scorecard_rank_stability.csv")
    history = pd.read_csv(outputs / "scorecard.csv", usecols=["year", "dimension", "score",
                                                              "method"])
    main = spec["weighting"]["main"]
    scored = history[(history["method"] == main) & (history["dimension"] == "overall")
                     & history["score"].notna()]
    year = int(scored["year"].max()) if len(scored) else int(spec["years"]["last"])
    labels = {k: v.get("short") or v["label"] for k, v in spec["dimensions"].items()}
    countries = spec.get("focus_countries") or ["CHN", "IDN"]
    table = focus[focus["country"].isin(countries)].rename(columns=labels | {
        "overall": "Overall"})
    table["mineral"] = table["mineral"].map(lambda m: spec["minerals"][m]["label"])
    last_flags = flags[flags["year"] == year]
    n_material = int(last_flags["material"].sum())
    overall_cov = coverage[coverage["dimension"] == "overall"].iloc[0]
    gross = ", ".join(basis.loc[~basis["comparable"], "mineral"])
    tau = stability[(stability["year"] == year) & (stability["dimension"] == "overall")]
    tau_text = "; ".join(f"{r.method_a} vs {r.method_b}: {r.tau:.2f} (n = {r.n})"
                         for r in tau.itertuples())

    def figure(name: str, caption: str) -> str:
        return _figure(figures / name, caption) if (figures / name).exists() else ""

    parts = [
        ("<p>Each mineral's supply chain is scored, country by country and year by year, on the "
         "six dimensions of seed 001: foreign dependence (net import reliance, top supplier's "
         "share), chain control (share of world exports of the processed stages, processing "
         "ratio), geopolitical and transport security (GeoPolRisk import risk, share of seaborne "
         "imports through a chokepoint), demand growth (five-year growth of apparent "
         "consumption and of world trade), military demand (defence-critical lists) and "
         "domestic resource sustainability (production trend, a proxy: reserves are not in the "
         "data). Every score is oriented so that <strong>1 is the least secure cell</strong> of "
         f"the scored set ({spec['years']['first']}–{spec['years']['last']}, China and the ASEAN "
         "members, all minerals), min–max normalised over it. Dimensions average their "
         "indicators and the overall score averages the six dimensions (equal weights, the "
         "main method); entropy weights and entropy-TOPSIS are variants. A cell the data "
         "cannot fill stays empty: it is never filled by assumption (docs/scorecard.md).</p>"),
        (f"<p><strong>{year}, {' and '.join(countries)}</strong> (empty = not measurable; the "
         "coverage table below says why):</p>"),
        _fmt(table, f"Six-dimension scores, {year}: {' and '.join(countries)}, focus minerals "
             "(1 = least secure cell of the scored set)", "%.3f"),
        figure("scorecard_heatmap.png", f"Scorecard heat maps, {year}: overall and by "
               "dimension, countries × minerals"),
        "".join(figure(f"scorecard_radar_{c}.png", f"{c}, {year}: dimension scores of the "
                       "focus minerals") for c in countries),
        ("<p class='note'>Radar charts for every country are in "
         "<code>outputs/figures/scorecard_radar_&lt;ISO3&gt;.png</code>.</p>"),
        (f"<p><strong>Early warning, {year}.</strong> {len(last_flags)} cells entered the top "
         f"quintile of their dimension since {year - 1}; {n_material} of them with a rise of at "
         f"least {spec['early_warning'].get('min_rise', 0):g} (the others reached a block of "
         "tied top scores, e.g. exports of a processed stage falling to zero):</p>"),
        _html_table(tables / "scorecard_early_warning_last.html"),
        (f"<p><strong>Rank stability.</strong> Kendall's tau-b between methods, overall score, "
         f"{year}: {html.escape(tau_text) or 'not computable'}. By dimension:</p>"),
        _html_table(tables / "scorecard_rank_stability.html"),
        (f"<p><strong>Coverage</strong> ({spec['years']['first']}–{spec['years']['last']}): the "
         f"overall score needs all six dimensions and is measurable for {int(overall_cov.filled)}"
         f" of {int(overall_cov.cells)} cells.</p>"),
        _html_table(tables / "scorecard_coverage.html"),
        ("<p class='note'><strong>What the data cannot measure.</strong> Reserves: World Mining "
         "Data has production only, so resource sustainability is the trend of own output (a "
         "proxy that cannot tell depletion from a policy or price-driven cut; a reserves source "
         "such as USGS Mineral Commodity Summaries would give the reserves-to-production ratio). "
         "Net import reliance and apparent consumption need traded and produced tonnes on one "
         f"basis; for {html.escape(gross)} the traded codes are gross weights of ores or "
         "intermediates (world exports are a multiple of world production), so those two "
         "indicators are left out for them. Processing: the HS92 extract has no refined-nickel, "
         "copper-cathode or tin-metal code and no ore code for rare earths, cobalt or lithium, "
         "so chain control rests on one indicator or none. Magnets, batteries and other "
         "downstream goods are outside the data. Routes are stylised (shortest sea route by "
         "region, no voyage data). Military relevance uses two published lists in full (EU "
         "CRMA strategic, China 2016); the US stockpile's list could not be verified in full. "
         "Production data start in 2018, so growth and trend indicators exist only from 2022–"
         "2023 and the overall score only for the last years.</p>"),
    ]
    return "".join(parts)


def scenario_summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """``outputs/scenario_summary.csv`` as the report shows it: one column per quantity, the
    median with its 5%-95% band beside it, so the table fits the page (the CSV keeps every
    column)."""
    def band(row, stem: str, digits: int) -> str:
        median, low, high = (row[f"{stem}_{q}"] for q in ("p50", "p05", "p95"))
        return f"{median:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

    def peak(row) -> str:
        if pd.isna(row["gap_peak_year"]):
            return "none"
        return (f"{row['gap_peak_p50']:.1f} in {int(row['gap_peak_year'])} "
                f"(95%: {row['gap_peak_p95']:.1f})")

    return pd.DataFrame({
        "scenario": summary["scenario"],
        "China's supply gap, kt/yr: median [5%, 95%]": [band(r, "gap", 1)
                                                         for _, r in summary.iterrows()],
        "largest yearly median gap, kt": [peak(r) for _, r in summary.iterrows()],
        "Indonesia's share of China's supply: median [5%, 95%]": [
            band(r, "idn_share", 2) for _, r in summary.iterrows()],
        "export value to China, USD m/yr (median): ore / intermediate / refined": [
            f"{r.value_ore_p50:,.0f} / {r.value_intermediate_p50:,.0f} / "
            f"{r.value_refined_p50:,.0f}" for r in summary.itertuples()],
    })


#: The report's stylesheet: one readable column (tables may use the full width of a 1,400 px
#: window without scrolling), numbered sections, tables and figures, captions above tables.
CSS = """
:root{--text:#1d2125;--muted:#59636e;--rule:#d6dbe0;--soft:#f5f7f9;--accent:#0b4f8a}
*{box-sizing:border-box}
body{font:15px/1.55 Georgia,"Times New Roman",serif;color:var(--text);max-width:1280px;
  margin:0 auto;padding:1.5rem 1.75rem 4rem;counter-reset:section table figure}
header{border-bottom:2px solid var(--text);margin-bottom:1rem}
header h1{font-size:1.65rem;line-height:1.25;margin:.3rem 0 .4rem}
header p{color:var(--muted);margin:.2rem 0 .8rem;max-width:60rem}
nav.toc{background:var(--soft);border:1px solid var(--rule);padding:.6rem 1.2rem;
  margin:1rem 0 2rem;font-size:.92rem}
nav.toc h2{border:0;margin:.2rem 0;font-size:1rem;counter-increment:none}
nav.toc h2::before{content:none}
nav.toc ol{columns:2;column-gap:2.5rem;margin:.3rem 0;padding-left:1.4rem}
nav.toc a{color:var(--accent);text-decoration:none}
h2{font-size:1.3rem;border-bottom:1px solid var(--rule);padding-bottom:.2rem;margin-top:2.6rem;
  counter-increment:section}
h2::before{content:counter(section) ". ";color:var(--muted)}
p{max-width:62rem}
a{color:var(--accent)}
table{border-collapse:collapse;margin:1.4rem 0 .5rem;font-size:.8rem;max-width:100%}
caption{caption-side:top;text-align:left;font-weight:bold;padding:0 0 .4rem;
  counter-increment:table;max-width:62rem}
caption::before{content:"Table " counter(table) ". "}
th,td{padding:.18rem .45rem;vertical-align:top;border-bottom:1px solid #eceff2}
thead th{border-top:1.5px solid var(--text);border-bottom:1px solid var(--text);
  text-align:left;font-weight:bold}
table.data td.num,table.data th{white-space:normal}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.data td:first-child{min-width:8rem;max-width:24rem}
table.data tbody tr:last-child td{border-bottom:1.5px solid var(--text)}
table.regression{font-size:.82rem}
table.regression td{padding:.1rem .7rem;border:0}
.table-note,.note{font-size:.84rem;color:var(--muted);max-width:62rem}
figure{margin:1.6rem 0;counter-increment:figure}
figure img{max-width:100%;height:auto;display:block}
figcaption{font-size:.85rem;color:var(--muted);margin-top:.3rem}
figcaption::before{content:"Figure " counter(figure) ". ";font-weight:bold;color:var(--text)}
pre{white-space:pre-wrap;word-break:break-word;background:var(--soft);padding:.6rem;
  font-size:.78rem}
code{background:var(--soft);padding:0 .2em;font-size:.9em}
.missing{color:#9a3412}
.hash{font-family:monospace;font-size:.85em}
td a{word-break:break-all}
"""


def constructs_section(tables: Path, figures: Path) -> str:
    """Construct diagnostics (METHODS.md 3a), right after the findings."""
    intro = (
        "<p class='note'>Read the results with these checks. Each index is checked on the two-way "
        "demeaned estimation sample: which country carries its within variation (FLAG above "
        "40%), whether it tracks the size of mineral trade or trade composition rather than its "
        "concept, whether it changes definition inside the window (must be 0), and how it "
        "relates to the first build's definition. Nothing here was tuned towards a "
        "coefficient. SYN is the textbook coupling coordination of the regional shares of "
        "chain exports and imports (gold excluded, USD 1 m materiality); GPR is the exposure "
        "to extra-regional partners' geopolitical risk with weights fixed on 1995-1997 trade; "
        "RN combines the trade-weighted coverage of chain exports by strategic-mineral "
        "restrictions in force with resource rents and the ores-and-metals export share; TI is "
        "science and digital capacity, log articles per million and Internet use with equal "
        "weights (docs/indices.md).</p>")
    return (intro + _html_table(tables / "construct_diagnostics.html")
            + _html_table(tables / "construct_country_shares.html")
            + _html_table(tables / "estimation_sample.html")
            + _html_table(tables / "rn_events_by_country.html")
            + _html_table(tables / "rn_export_weights.html")
            + _html_table(tables / "gpr_weights.html")
            + _html_table(tables / "gpr_partner_decomposition.html")
            + _html_table(tables / "syn_top_codes.html")
            + "".join(_figure(figures / f"index_{n}.png", f"{title} by country and year")
                      for n, title in (("syn", "SYN"), ("gpr", "GPR"), ("rn", "RN"),
                                       ("rn_events", "RN measures in force"), ("ti", "TI"))
                      if (figures / f"index_{n}.png").exists()))


def _section(key: str, title: str, content: str) -> tuple[str, str, str]:
    return key, title, content


def build_report(outputs: Path, processed: Path, manifest: dict) -> str:
    """The page: findings first, then what each index measures, the results, their checks,
    the nickel case and supply risk, then the data, provenance and the run manifest. Every
    section reads only files the stages wrote; a missing one is named, never fatal."""
    tables, figures = outputs / "tables", outputs / "figures"
    labels = _labels()
    estimates = pd.read_csv(outputs / "estimates.csv")
    robustness = pd.read_csv(outputs / "robustness.csv") if (outputs / "robustness.csv").exists() \
        else None
    power = pd.read_csv(outputs / "power.csv") if (outputs / "power.csv").exists() else None
    iv = pd.read_csv(outputs / "iv_diagnostics.csv") \
        if (outputs / "iv_diagnostics.csv").exists() else None
    findings = findings_display(findings_table(estimates, robustness, power, iv), labels)
    main_g = int(estimates.loc[estimates["model"] == "M5", "n_clusters"].iloc[0]) \
        if (estimates["model"] == "M5").any() else int(estimates["n_clusters"].max())
    sources = load_registry()
    provenance = pd.DataFrame([{"source": s.name, "dataset": s.dataset, "publisher": s.publisher,
                                "vintage": s.vintage, "licence": s.licence, "sha256": s.sha256}
                               for s in sources])
    links = {"source": [f"<a href='{html.escape(s.url)}'>{html.escape(s.name)}</a>"
                        for s in sources],
             "sha256": [f"<span class='hash' title='{s.sha256}'>{s.sha256[:12]}…</span>"
                        for s in sources]}
    weights_path = processed / "index_weights.json"
    weights = json.loads(weights_path.read_text()) if weights_path.exists() else {}
    coverage_path = tables / "data_coverage.md"
    coverage = coverage_frame(coverage_path.read_text(encoding="utf-8")) \
        if coverage_path.exists() else pd.DataFrame()
    audit_path = tables / "merge_audit.md"
    audit = coverage_frame(audit_path.read_text(encoding="utf-8")) if audit_path.exists() \
        else pd.DataFrame()
    for column in [c for c in audit.columns if c != "source" and c != "dropped_why"]:
        audit[column] = pd.to_numeric(audit[column], errors="coerce").astype("Int64")
    coverage_intro = ("Share of the panel years observed in each source by country; in "
                      "brackets the share filled by interior linear interpolation (flagged "
                      "<code>&lt;variable&gt;_filled</code>); leading and trailing gaps are "
                      "never filled.")
    n_obs = int(estimates["n_obs"].max()) if len(estimates) else 0
    n_clusters = int(estimates["n_clusters"].max()) if len(estimates) else 0
    sections = [
        _section("findings", "Findings: hypotheses H1–H4", _fmt(
            findings, "Hypotheses H1–H4: estimate, p-values, verdict, whether the data can "
            "tell, and the share of robustness variants that agree", float_format="%.3f") + (
            "<p class='note'>CRV1 p: cluster-robust (by country) with t(G−1), shown for "
            "comparison only (it over-rejects with this few clusters). WCR p: wild "
            "cluster restricted bootstrap-t that re-estimates the year effects in every draw, "
            "Webb weights, B = 99,999, two-sided symmetric. Verdict: supported only with the "
            "expected sign and WCR p &lt; 0.05. Can the data tell: effect detected (WCR p ≤ "
            "0.05), no effect as large as the smallest effect of interest (two one-sided WCR "
            "tests, p &lt; 0.05), or cannot tell (neither); MDE: the effect the WCR test "
            "detects with 80% power on this design, in within-SDs of SYN per within-SD of the "
            "term (section 'What the data can detect'). The IV row is not informative when "
            "its instrument is weak (its exact Anderson–Rubin set is then unbounded). The main "
            f"models share one sample, the country-years complete for M5 ({main_g} clusters; "
            "the sample by country and what limits it are in the constructs section), "
            "so H1 is also shown for M1 on its own largest sample. Read every estimate "
            "with the construct diagnostics and the cluster-influence table: where "
            "one country carries more than half of a term's identifying variation, the test "
            "rests on that country. Shares: among the robustness variants of the base model M4 "
            "that estimate the term (alternative specifications only; jackknife, randomisation "
            "inference and IV rows are reported separately); for H1 they refer to the GPR "
            "coefficient in M4. The pipeline tests the hypotheses; it does not tune towards a "
            "sign.</p>")),
        _section("constructs", "Constructs: what each index measures",
                 constructs_section(tables, figures)),
        _section("main", "Main results", _html_table(tables / "main_results.html")),
        _section("power", "What the data can detect: power and equivalence",
                 power_section(outputs)),
        _section("me", "Marginal effects", _html_table(tables / "marginal_effects.html")
                 + _html_table(tables / "johnson_neyman.html")
                 + "<p class='note'>The main test of where the effect of GPR is significant is "
                   "the simultaneous (sup-t) wild bootstrap-t band over the observed range of "
                   "the moderator; the pointwise CRV1 region is a variant. Each region is "
                   "printed with the observations and countries inside it; one holding less "
                   "than 10% of the observations or a single country is without support.</p>"
                 + _figure(figures / "marginal_effects.png",
                           "Marginal effect of GPR on SYN across RN and TI (M4)")
                 + _html_table(tables / "binned_linearity.html")
                 + _figure(figures / "binned_linearity.png",
                           "Binned linearity check: tercile estimates against the linear "
                           "interaction model")),
        _section("robust", "Robustness", _html_table(tables / "specification_curve_summary.html")
                 + _figure(figures / "specification_curve.png",
                           "Specification curve: standardised coefficients across the variants")
                 + _html_table(tables / "robustness.html")
                 + _figure(figures / "leave_one_out.png", "Leave-one-country-out estimates")
                 + _html_table(tables / "heterogeneity.html")),
        _section("inference", "Inference checks: cluster influence, p-values, IV",
                 inference_section(outputs)),
        _section("nickel", "The nickel case: resource nationalism and chain restructuring",
                 nickel_section(outputs)),
        _section("supply", "Supply risk and import dependence", supply_risk_section(outputs)),
        _section("scorecard", "Supply-chain scorecard and early warning",
                 scorecard_section(outputs)),
        _section("scenarios", "Scenarios and extreme shocks (stock-flow model)",
                 scenarios_section(outputs)),
        _section("desc", "Descriptive statistics",
                 _html_table(tables / "descriptive_statistics.html")
                 + _html_table(tables / "correlations.html")),
        _section("indices", "Index weights", _html_table(tables / "index_weights.html")
                 + _html_table(tables / "index_rank_correlations.html")
                 + _html_table(tables / "index_missing.html")
                 + (f"<p class='note'>Epsilon {weights.get('epsilon')}, main method "
                    f"{weights.get('main_method')}; the full record is in "
                    "data/processed/index_weights.json.</p>" if weights else "")),
        _section("data", "Data coverage and provenance",
                 (_fmt(coverage, "Data coverage of the country-year panel",
                       html_cells={"variable": labelled_variables(list(coverage["variable"]))})
                  if len(coverage) else
                  "<p class='missing'>data_coverage.md was not produced.</p>")
                 + f"<p class='note'>{coverage_intro}</p>"
                 + (_fmt(audit, "Merge audit: rows matched and dropped per source")
                    if len(audit) else _html_table(tables / "merge_audit.html"))
                 + _fmt(provenance, "Sources: publisher, vintage, licence and sha256 (the "
                        "full hashes are in data/registry.yaml and outputs/manifest.json)",
                        html_cells=links)),
        _section("manifest", "Run manifest", "<pre>" + html.escape(json.dumps(
            {k: v for k, v in manifest.items() if k not in ("inputs", "processed", "outputs")},
            indent=2)) + "</pre><p class='note'>The sha256 of every input and output is in "
            "outputs/manifest.json.</p>"),
    ]
    toc = "".join(f"<li><a href='#{key}'>{html.escape(title)}</a></li>"
                  for key, title, _ in sections)
    body = "".join(f"<section id='{key}'><h2>{html.escape(title)}</h2>{content}</section>"
                   for key, title, content in sections)
    region = specs.load_region()
    members = ", ".join(region.members)
    summary = (f"Reproducible results of the {region.label} panel (region {region.name}: "
               f"{region.focal} and {members}, {region.first_year}–{region.last_year}; "
               f"{display_path(region.path)}): moderated two-way fixed-effects "
               f"models of strategic-mineral chain synergy (SYN) on geopolitical risk (GPR), "
               f"resource nationalism (RN) and technological innovation (TI), with few-cluster "
               f"inference (main sample: {n_obs} country-years, {n_clusters} countries), the "
               "nickel-ban case and GeoPolRisk supply risk. Every table here is also in "
               "outputs/tables as Markdown, HTML, LaTeX (and Word for the main table).")
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(region.label)} mineral-chain synergy: results</title>"
            f"<style>{CSS}</style></head><body><header><h1>Geopolitical risk, resource "
            f"nationalism, innovation and {html.escape(region.label)} strategic-mineral chain "
            "synergy</h1>"
            f"<p>{html.escape(summary)}</p></header>"
            f"<nav class='toc'><h2>Contents</h2><ol>{toc}</ol></nav>{body}"
            "</body></html>\n")


def run(outputs: Path = config.OUTPUTS, processed: Path = config.DATA_PROCESSED,
        raw: Path = config.DATA_RAW) -> Path:
    if not (outputs / "estimates.csv").exists():
        raise DataError(outputs / "estimates.csv", "missing; run `make models` first")
    manifest = build_manifest(outputs, processed, raw)
    page = build_report(outputs, processed, manifest)
    atomic_write_text(outputs / "report.html", page)
    manifest["outputs"].update(file_hashes([outputs / "report.html"], config.ROOT))
    atomic_write_text(outputs / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    print(f"[report] wrote {outputs / 'report.html'} and manifest.json", flush=True)
    return outputs / "report.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.stages.report",
        description="Write outputs/report.html (self-contained) and outputs/manifest.json from "
        "the outputs of the earlier stages.")
    add_verbose_argument(parser)
    args = parser.parse_args(argv)
    return run_stage("report", run, verbose=args.verbose or None,
                     summary=lambda path: f"open {display_path(path)}")


if __name__ == "__main__":
    sys.exit(main())
