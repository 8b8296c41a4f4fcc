"""Stage 6, report: ``outputs/report.html`` (one self-contained page) and ``outputs/manifest.json``.

The page holds the findings table for H1–H4, every table and figure (figures embedded as PNG
data URIs, so the file can be mailed on its own), index weights, data coverage, provenance
(source, vintage, licence, sha256) and the run manifest. The manifest records the sha256 of every
input and output, package versions, seeds and the runtime of each step.

Run ``python -m analysis.report --help``.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import config
from analysis.fetch import load_registry
from analysis.io import DataError, atomic_write_text, record_timing, sha256_of

HYPOTHESES = [
    ("H1", "GPR raises regional mineral-chain synergy", "gpr", "M1", "> 0"),
    ("H2", "resource nationalism suppresses the effect", "gpr:rn", "M4", "< 0"),
    ("H3", "innovation amplifies the effect", "gpr:ti", "M4", "> 0"),
    ("H4", "innovation offsets the RN suppression", "gpr:rn:ti", "M5", "> 0"),
]
PACKAGES = ["numpy", "pandas", "scipy", "statsmodels", "linearmodels", "pyfixest", "wildboottest",
            "stargazer", "pandera", "pooch", "country_converter", "matplotlib", "pyarrow"]


def findings_table(estimates: pd.DataFrame, robustness: pd.DataFrame | None) -> pd.DataFrame:
    """H1–H4: estimate, CRV1 p (t(G-1)), WCR p, and how the battery treats the same term.

    The battery varies the base model M4, so for H1 its shares refer to the GPR coefficient in
    M4 (the effect at mean RN and TI); H4's term is not in M4, so it has no battery shares.
    """
    rows = []
    for hid, claim, term, model, sign in HYPOTHESES:
        row = estimates[(estimates["model"] == model) & (estimates["term"] == term)]
        if row.empty:
            continue
        r = row.iloc[0]
        supported = (r["estimate"] > 0) == (sign == "> 0")
        out = {"hypothesis": hid, "claim": claim, "term": f"{term} ({model})",
               "expected sign": sign, "estimate": r["estimate"], "CRV1 p": r["p_value"],
               "WCR p": r["p_wcr"], "sign as expected": "yes" if supported else "no"}
        if robustness is not None and f"b[{term}]" in robustness:
            variants = robustness[(robustness["check"] != "main")
                                  & (robustness["kind"] == "variant")]
            main_sign = np.sign(robustness.loc[robustness["check"] == "main",
                                               f"b[{term}]"].iloc[0])
            out["share same sign"] = float((np.sign(variants[f"b[{term}]"]) == main_sign).mean())
            out["share p<0.10 (CRV1)"] = float((variants[f"p[{term}]"] < 0.10).mean())
            wcr = variants[f"p_wcr[{term}]"].dropna()
            out["share p<0.10 (WCR)"] = float((wcr < 0.10).mean()) if len(wcr) else np.nan
        else:
            out["share same sign"] = np.nan
            out["share p<0.10 (CRV1)"] = np.nan
            out["share p<0.10 (WCR)"] = np.nan
        rows.append(out)
    return pd.DataFrame(rows)


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _html_table(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else \
        f"<p class='missing'>{html.escape(path.name)} was not produced.</p>"


def _fmt(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, na_rep="", float_format=lambda v: f"{v:.4f}")


def file_hashes(paths: list[Path], root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_of(p) for p in sorted(paths) if p.is_file()}


def build_manifest(outputs: Path, processed: Path, raw: Path) -> dict:
    models = yaml.safe_load((config.SPECS / "models.yaml").read_text())
    robustness = yaml.safe_load((config.SPECS / "robustness.yaml").read_text())
    inputs = [p for p in raw.rglob("*") if p.is_file() and not p.name.startswith(".")]
    inputs += [config.REGISTRY_FILE, config.HS_CHAIN_MAP_FILE, *config.SPECS.glob("*.yaml")]
    outs = [p for p in outputs.rglob("*") if p.is_file()
            and p.name not in ("manifest.json", "report.html", "timings.json")]
    timings_path = outputs / "timings.json"
    return {
        "project": "asean-mineral-chain",
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
        _fmt(table.rename(columns={"importer": f"score, {year}"})),
        figure("supply_risk_heatmap.png",
               f"GeoPolRisk scores by importer and material, {year}"),
        (f"<p><strong>US dependence on China for rare earths</strong> (HS 280530, 284610, "
         f"284690; BACI): China's share of US imports by value was "
         f"{us['share_value'].iloc[0]:.2f} in {first} (by quantity "
         f"{us['share_quantity'].iloc[0]:.2f}) and {us['share_value'].iloc[-1]:.2f} in "
         f"{final} (by quantity {us['share_quantity'].iloc[-1]:.2f}); its highest value share "
         f"was {us.loc[peak, 'share_value']:.2f}, in {peak}.</p>"),
        _fmt(us_table),
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


CSS = """
body{font-family:Georgia,serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:1em 0} td,th{padding:.25em .6em;
border-bottom:1px solid #eee;text-align:right} th{border-bottom:2px solid #444}
td:first-child,th:first-child{text-align:left} #findings + table td:nth-child(2){text-align:left} figure{margin:1.5em 0} img{max-width:100%}
figcaption{font-size:.85em;color:#555} .note{font-size:.9em;color:#444}
nav a{margin-right:1em} code{background:#f4f4f4;padding:0 .2em}
"""


def build_report(outputs: Path, processed: Path, manifest: dict) -> str:
    tables, figures = outputs / "tables", outputs / "figures"
    estimates = pd.read_csv(outputs / "estimates.csv")
    robustness = pd.read_csv(outputs / "robustness.csv") if (outputs / "robustness.csv").exists() \
        else None
    findings = findings_table(estimates, robustness)
    sources = load_registry()
    provenance = pd.DataFrame([{"source": s.name, "dataset": s.dataset, "publisher": s.publisher,
                                "vintage": s.vintage, "licence": s.licence, "url": s.url,
                                "sha256": s.sha256} for s in sources])
    weights = json.loads((processed / "index_weights.json").read_text())
    coverage = (tables / "data_coverage.md").read_text(encoding="utf-8")
    sections = [
        ("findings", "Findings: H1–H4", _fmt(findings) + (
            "<p class='note'>CRV1 p: cluster-robust (by country) with t(G−1). WCR p: wild "
            "cluster restricted bootstrap-t, Webb weights. Shares: among the robustness variants "
            "of the base model M4 (alternative specifications only; the jackknife, placebo and IV "
            "rows are reported separately); for H1 they refer to the GPR "
            "coefficient in M4. The pipeline tests the hypotheses; it does not tune towards a "
            "sign.</p>")),
        ("main", "Main results", _html_table(tables / "main_results.html")
         + _html_table(tables / "main_results_wcr_stars.html")),
        ("me", "Marginal effects", _html_table(tables / "marginal_effects.html")
         + _html_table(tables / "johnson_neyman.html")
         + _figure(figures / "marginal_effects.png", "dSYN/dGPR across RN and TI (M4)")
         + _html_table(tables / "binned_linearity.html")
         + _figure(figures / "binned_linearity.png", "Binned linearity check")),
        ("robust", "Robustness", _html_table(tables / "specification_curve_summary.html")
         + _figure(figures / "specification_curve.png", "Specification curve")
         + _html_table(tables / "robustness.html")
         + _figure(figures / "leave_one_out.png", "Leave one country out")
         + _html_table(tables / "heterogeneity.html")),
        ("desc", "Descriptive statistics", _html_table(tables / "descriptive_statistics.html")
         + _html_table(tables / "correlations.html")),
        ("indices", "Indices", _html_table(tables / "index_weights.html")
         + _html_table(tables / "index_rank_correlations.html")
         + _html_table(tables / "index_missing.html")
         + "".join(_figure(figures / f"index_{n}.png", f"{n.upper()} by country")
                   for n in ("syn", "gpr", "rn", "ti"))
         + f"<p class='note'>Epsilon {weights['epsilon']}, main method "
           f"{weights['main_method']}; full record in data/processed/index_weights.json.</p>"),
        ("supply", "Supply risk and dependence", supply_risk_section(outputs)),
        ("data", "Data coverage and provenance",
         f"<pre>{html.escape(coverage)}</pre>" + _html_table(tables / "merge_audit.html")
         + _fmt(provenance)),
        ("manifest", "Run manifest", "<pre>" + html.escape(json.dumps(
            {k: v for k, v in manifest.items() if k not in ("inputs", "processed", "outputs")},
            indent=2)) + "</pre><p class='note'>The sha256 of every input and output is in "
            "outputs/manifest.json.</p>"),
    ]
    nav = "".join(f"<a href='#{key}'>{html.escape(title)}</a>" for key, title, _ in sections)
    body = "".join(f"<h2 id='{key}'>{html.escape(title)}</h2>{content}"
                   for key, title, content in sections)
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>China–ASEAN mineral-chain synergy: results</title><style>{CSS}</style>"
            f"</head><body><h1>Geopolitical risk, resource nationalism, innovation and "
            f"China–ASEAN strategic-mineral chain synergy</h1><nav>{nav}</nav>{body}"
            f"</body></html>\n")


def run(outputs: Path = config.OUTPUTS, processed: Path = config.DATA_PROCESSED,
        raw: Path = config.DATA_RAW) -> Path:
    if not (outputs / "estimates.csv").exists():
        raise DataError(outputs / "estimates.csv", "missing; run `make models` first")
    manifest = build_manifest(outputs, processed, raw)
    page = build_report(outputs, processed, manifest)
    atomic_write_text(outputs / "report.html", page)
    manifest["outputs"]["outputs/report.html"] = sha256_of(outputs / "report.html")
    atomic_write_text(outputs / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    print(f"[report] wrote {outputs / 'report.html'} and manifest.json", flush=True)
    return outputs / "report.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analysis.report",
        description="Write outputs/report.html (self-contained) and outputs/manifest.json from "
        "the outputs of the earlier stages.")
    parser.parse_args(argv)
    try:
        started = time.perf_counter()
        run()
        record_timing("report", time.perf_counter() - started)
    except DataError as error:
        print(f"[report] ERROR {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
