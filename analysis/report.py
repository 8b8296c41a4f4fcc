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
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import config
from analysis.fetch import load_registry
from analysis.io import DataError, atomic_write_text, run_stage, sha256_of

HYPOTHESES = [
    ("H1", "GPR raises regional mineral-chain synergy", "gpr", "M1", "> 0"),
    ("H2", "resource nationalism suppresses the effect", "gpr:rn", "M4", "< 0"),
    ("H3", "innovation amplifies the effect", "gpr:ti", "M4", "> 0"),
    ("H4", "innovation offsets the RN suppression", "gpr:rn:ti", "M5", "> 0"),
]
PACKAGES = ["numpy", "pandas", "scipy", "statsmodels", "linearmodels", "pyfixest", "wildboottest",
            "stargazer", "pandera", "pooch", "country_converter", "matplotlib", "pyarrow",
            "pysd", "SALib"]


def findings_table(estimates: pd.DataFrame, robustness: pd.DataFrame | None) -> pd.DataFrame:
    """H1–H4: estimate, CRV1 p (t(G-1)), WCR p, a verdict, and how the battery treats the term.

    Verdict: "supported" only if the sign is the expected one and the WCR p (the inference the
    design trusts with few clusters) is below 0.05; "weak" below 0.10; otherwise "not
    supported". The battery varies the base model M4, so for H1 its shares refer to the GPR
    coefficient in M4 (the effect at mean RN and TI); H4's term is not in M4, so it has no
    battery shares. A second H1 row reports M1 on its own largest sample (the robustness entry
    ``m1_own_sample``), which does not need the RN and TI inputs.
    """
    from analysis.robustness import variant_shares

    rows = []
    variants = None
    if robustness is not None:
        variants = robustness[(robustness["check"] != "main") & (robustness["kind"] == "variant")]
    for hid, claim, term, model, sign in HYPOTHESES:
        row = estimates[(estimates["model"] == model) & (estimates["term"] == term)]
        if row.empty:
            continue
        r = row.iloc[0]
        out = _finding(hid, claim, f"{term} ({model}, N = {int(r['n_obs'])}, "
                       f"G = {int(r['n_clusters'])})", sign, r["estimate"], r["p_value"],
                       r["p_wcr"])
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
    return pd.DataFrame(rows)


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
            "share same sign": np.nan, "share p<0.10 (CRV1)": np.nan,
            "share p<0.10 (WCR)": np.nan}


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
             "p-values are symmetric, share of |t*| ≥ |t|; the Rademacher p enumerates all 2^G "
             "sign vectors and counts every draw, the two identity draws included.</p>")]
    path = outputs / "cluster_influence.csv"
    if path.exists():
        influence = pd.read_csv(path)
        high = influence[influence["partial_leverage"] > 0.5]
        if len(high):
            parts.append("<p class='note'><b>One cluster carries more than half of the "
                         "identifying variation</b> (partial leverage &gt; 0.5) for: "
                         + html.escape("; ".join(
                             f"{r.model} {r.term}: {r.cluster} {r.partial_leverage:.2f}, "
                             f"G* = {r.g_star:.1f}" for r in high.itertuples()))
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
    iv = tables / "iv_diagnostics.html"
    if iv.exists():
        parts.append(_html_table(iv))
    parts.append("<p class='note'>Randomisation inference permutes whole country paths (RN), "
                 "whole years of the cross-section or joint time shifts (GPR) and uses the "
                 "CRV1 t. A scheme is read as a test only if its size at 5% in "
                 "<code>make bench</code> lies in [0.025, 0.075] (Bradley's liberal "
                 "criterion); otherwise its row is a placebo.</p>")
    return "".join(parts)


def nickel_section(outputs: Path) -> str:
    """The nickel case (METHODS.md section 8, ``analysis/nickel.py``) in plain words, beside the
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
        "mean of Indonesia's ore coefficients after the 2014 ban is "
        f"{post('ore', 2014)} relative to 2013, and after the 2020 ban {post('ore', 2020)} "
        "relative to 2019. Its downstream exports (all partners pooled, so Japan's matte "
        f"imports weigh in) moved by {post('down', 2014)} after 2014 and "
        f"{post('down', 2020)} after 2020. The pre-trend tests reject (ore before 2014: "
        f"{wald('main', 'pretrend_ore_b2014')}; ore before 2020: "
        f"{wald('main', 'pretrend_ore_b2020')}): exports rushed ahead of each announced ban "
        "and the 2017–2019 'pre-period' of the second ban is itself a policy regime, so the "
        "coefficients are descriptive event-time contrasts, not clean causal effects. The "
        "placebo that gives the same bans to the Philippines also finds large, 'significant' "
        f"movements (its ore pre-trend {wald('placebo_phl', 'pretrend_ore_b2014')}), and so "
        "does the placebo in time, a fake Indonesian ban in 2012 on 2010–2013 (ore: "
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
        "t-tests rejected in 39% and the pre-trend Wald test in 74% of 200 replications "
        "(`python -m analysis.nickel --size-mc 200`; docs/nickel.md). The clustered covariance "
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


def scenarios_section(outputs: Path) -> str:
    """Scenarios and extreme shocks (METHODS.md section 10, ``analysis/scenarios.py``,
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

    def fmt(frame: pd.DataFrame, digits: int = 3) -> str:
        return frame.to_html(index=False, border=0, na_rep="",
                             float_format=lambda v: f"{v:.{digits}g}")

    holdout = fit[fit["window"] == "holdout"]
    negative = holdout[holdout["r2"] < 0]["series"].tolist()
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
         "Sterman 1984). In the hold-out R&sup2; is negative for "
         f"{len(negative)} of {len(holdout)} series ({html.escape(', '.join(negative))}): "
         "<strong>the model fitted on 2010-2019 misses the 2020-2024 expansion of "
         "Indonesia's processing</strong> where U<sup>M</sup> dominates.</p>"),
        fmt(fit),
        figure("scenario_fit.png", "Model against data; hold-out 2020-2024 shaded"),
    ]
    if full is not None:
        parts += [("<p>The scenarios start from the same least squares refitted on every year "
                   "2010-2024 (its fit below: in-sample, not a test).</p>"), fmt(full)]
    if parameters is not None:
        at = parameters[parameters["at_bound"].fillna("") != ""]
        parts += [("<p><strong>Calibrated parameters</strong> with their bounds (the ranges of "
                   "the model file); at a bound: "
                   + html.escape("; ".join(f"{r.parameter} ({r.window}, {r.at_bound})"
                                           for r in at.itertuples()) or "none")
                   + ". Standard errors from the curvature of the objective (inf: not "
                   "identified locally).</p>"), fmt(parameters, 4)]
    if patterns is not None:
        parts += [("<p><strong>Behaviour patterns</strong> (METHODS section 10) on the "
                  "calibrated runs:</p>"), fmt(patterns)]
    if summary is not None:
        shown = summary.copy()
        parts += [("<p><strong>Scenarios.</strong> Each is a data entry of "
                   "<code>specs/scenarios.yaml</code>; 1,000 Latin-hypercube runs over the "
                   "literature ranges of the model file (the calibrated parameters held at "
                   "their fit). China's supply gap: its requirement for Indonesian and "
                   "Philippine nickel that neither they nor other suppliers meet, kt a year, "
                   "mean over the report window of the median and of the 5% and 95% bands; "
                   "the largest yearly median; Indonesia's share of China's nickel supply; "
                   "Indonesia's export value to China by stage (million USD a year, median)."
                   "</p>"), fmt(shown)]
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
                  fmt(ranking[["scenario", "ranking (total Sobol index)"]])]
    if loops is not None:
        kinds = loops.groupby("loop", sort=False)["loop_polarity"].first().reset_index()
        parts += [("<p><strong>Causal-loop diagram</strong>, drawn from the model's dependency "
                  "graph; each link's sign from its equation:</p>"), fmt(kinds),
                  figure("nickel_cld.png", "Feedback loops of the nickel model")]
    if ree_patterns is not None:
        parts += [("<p><strong>Rare earths</strong> (<code>specs/sd/rare_earths.mdl</code>, "
                   "same skeleton: Myanmar's ore to China, Lynas' Malaysian separation, "
                   "China's 1999-2014 quotas and its 2023-2025 controls from the measures): "
                   "the 2010 quota cut back-cast against the behaviour Sprecher et al. (2017) "
                   "report.</p>"), fmt(ree_patterns.drop(columns="value")),
                  ("<p>The run beside World Mining Data shares of world production and BACI's "
                   "record of China's rare-earth exports (gross tonnes, not REO):</p>"),
                  fmt(ree_data) if ree_data is not None else "",
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


def constructs_section(tables: Path, figures: Path) -> str:
    """Construct diagnostics (METHODS.md 3a), shown before any result."""
    intro = (
        "<p class='note'>Read this before the results. Each index is checked on the two-way "
        "demeaned estimation sample: which country carries its within variation (FLAG above "
        "40%), whether it tracks the size of mineral trade or trade composition rather than its "
        "concept, whether it changes definition inside the window (must be 0), and how it "
        "relates to the first build's definition. Nothing here was tuned towards a "
        "coefficient. SYN is the textbook coupling coordination of the regional shares of "
        "chain exports and imports (gold excluded, USD 1 m materiality); GPR is the exposure "
        "to extra-regional partners' geopolitical risk with weights fixed on 1995-1997 trade; "
        "RN combines the strategic-mineral measures in force with resource rents and the "
        "ores-and-metals export share; TI has a fixed set of five inputs (docs/indices.md).</p>")
    return (intro + _html_table(tables / "construct_diagnostics.html")
            + _html_table(tables / "construct_country_shares.html")
            + _html_table(tables / "gpr_weights.html")
            + _html_table(tables / "gpr_partner_decomposition.html")
            + _html_table(tables / "syn_top_codes.html")
            + "".join(_figure(figures / f"index_{n}.png", f"{n.upper()} by country")
                      for n in ("syn", "gpr", "rn", "rn_events", "ti")
                      if (figures / f"index_{n}.png").exists()))


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
        ("constructs", "Constructs: what each index measures (read first)",
         constructs_section(tables, figures)),
        ("findings", "Findings: H1–H4", _fmt(findings) + (
            "<p class='note'>CRV1 p: cluster-robust (by country) with t(G−1). WCR p: wild "
            "cluster restricted bootstrap-t that re-estimates the year effects in every draw, "
            "Webb weights, B = 99,999, two-sided symmetric. Verdict: supported only with the "
            "expected sign and WCR p &lt; 0.05. The main models share one sample, the "
            "country-years complete for M5; because the TI inputs (R&amp;D, researchers, "
            "patents) are missing for Brunei, Cambodia, Laos and Myanmar, it has only seven "
            "clusters, so H1 is also shown for M1 on its own largest sample. Read every estimate "
            "with the construct diagnostics above and the cluster-influence table below: where "
            "one country carries more than half of a term's identifying variation, the test "
            "rests on that country. Shares: among the robustness variants of the base model M4 "
            "that estimate the term (alternative specifications only; jackknife, randomisation "
            "inference and IV rows are reported separately); for H1 they refer to the GPR "
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
        ("inference", "Inference checks: cluster influence, p-values, IV",
         inference_section(outputs)),


        ("nickel", "The nickel case: resource nationalism and chain restructuring",
         nickel_section(outputs)),
        ("desc", "Descriptive statistics", _html_table(tables / "descriptive_statistics.html")
         + _html_table(tables / "correlations.html")),
        ("indices", "Indices", _html_table(tables / "index_weights.html")
         + _html_table(tables / "index_rank_correlations.html")
         + _html_table(tables / "index_missing.html")
         + f"<p class='note'>Epsilon {weights['epsilon']}, main method "
           f"{weights['main_method']}; full record in data/processed/index_weights.json.</p>"),
        ("supply", "Supply risk and dependence", supply_risk_section(outputs)),
        ("scenarios", "Scenarios and extreme shocks (stock-flow model)",
         scenarios_section(outputs)),
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
    return run_stage("report", run)


if __name__ == "__main__":
    sys.exit(main())
