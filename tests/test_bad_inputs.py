"""Every kind of bad input a user can type stops with exit code 2 and one line that names the
file, the entry and the problem, before any work (a table of cases, run through the stages'
own entry point :func:`analysis.data.io.run_stage`).

The inputs live in a temporary project: a synthetic panel (tests.test_models' known DGP, with
Brunei's TI missing so that Brunei is outside the estimation sample), the project's own spec
files and CSV files, each case changing one entry. ``python -m tests.test_bad_inputs`` prints
every case with its message (the list in the closing note of issue 17).
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from analysis import config
from analysis.data import io, specs
from analysis.stages import clean, indices, models, nickel, robustness, supply_risk
from tests.test_models import SPEC, simulated_panel

MODELS = {**copy.deepcopy(SPEC),
          "bootstrap": {"B": 99, "weights": "webb", "seed": 1, "rademacher_enumeration": False,
                        "all_terms": False, "band_draws": 99},
          "marginal_effects": {"model": "M4", "percentiles": [25, 50, 75]},
          "labels": {"syn": "SYN", "gpr": "GPR", "rn": "RN", "ti": "TI", "x1": "Control one",
                     "x2": "Control two"}}
CHECKS = {
    "base_model": "M4", "curve_terms": ["gpr:rn", "gpr:ti"], "ri_seed": 1,
    "checks": [{"id": "main", "label": "Main", "group": "Baseline"},
               {"id": "drop_tha", "label": "Drop Thailand", "group": "Sample",
                "drop_countries": ["THA"]},
               {"id": "alt", "label": "Another GPR", "group": "GPR", "replace": {"gpr": "gpr_alt"}}],
    "heterogeneity": {"groups": [{"id": "five", "label": "Five", "model": "M1",
                                  "keep_countries": ["CHN", "IDN", "MYS", "PHL", "THA"]}],
                      "by_chain": False},
}


@dataclass
class Case:
    id: str
    file: str  # the file the message must name
    entry: str  # text the message must contain besides the file (entry, field, value)
    make: Callable[[Path], Callable[[], object]]  # builds the bad input, returns the action


def _project(root: Path) -> dict[str, Path]:
    processed = root / "processed"
    processed.mkdir(parents=True, exist_ok=True)
    panel = simulated_panel(n_years=20, seed=3)
    panel.loc[panel["iso3"] == "BRN", "ti"] = float("nan")  # Brunei: outside the sample
    panel["gpr_alt"] = panel["gpr"] * 2 + 1
    panel.to_parquet(processed / "panel.parquet", index=False)
    panel.to_parquet(processed / "panel_clean.parquet", index=False)
    (root / "models.yaml").write_text(yaml.safe_dump(MODELS, allow_unicode=True))
    (root / "robustness.yaml").write_text(yaml.safe_dump(CHECKS, allow_unicode=True))
    return {"processed": processed, "models": root / "models.yaml",
            "robustness": root / "robustness.yaml", "outputs": root / "outputs"}


def _check(change: Callable[[dict], None]) -> Callable[[Path], Callable[[], object]]:
    """A robustness-spec case: ``change`` edits the spec; the action is the whole stage."""
    def make(root: Path) -> Callable[[], object]:
        paths = _project(root)
        spec = copy.deepcopy(CHECKS)
        change(spec)
        paths["robustness"].write_text(yaml.safe_dump(spec, allow_unicode=True))
        return lambda: robustness.run(paths["processed"], paths["outputs"], paths["robustness"],
                                      paths["models"])
    return make


def _model(change: Callable[[dict], None]) -> Callable[[Path], Callable[[], object]]:
    def make(root: Path) -> Callable[[], object]:
        paths = _project(root)
        spec = copy.deepcopy(MODELS)
        change(spec)
        paths["models"].write_text(yaml.safe_dump(spec, allow_unicode=True))
        return lambda: models.run(paths["processed"], paths["outputs"], paths["models"])
    return make


def _text_file(name: str, source: Path, edit: Callable[[str], str],
               action: Callable[[Path, Path], object]) -> Callable[[Path], Callable[[], object]]:
    """A case that edits a copy of a project file (``edit`` on its text)."""
    def make(root: Path) -> Callable[[], object]:
        paths = _project(root)
        target = root / name
        target.write_text(edit(source.read_text(encoding="utf-8")), encoding="utf-8")
        return lambda: action(target, paths["processed"])
    return make


def _sub(old: str, new: str, count: int = 1) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, f"the case's anchor {old!r} is not in the file any more"
        return text.replace(old, new, count)
    return edit


MEASURES = config.DATA_RAW / "rn_measures.csv"
EVENTS = config.DATA_RAW / "rn_policy_events.csv"
INDICES = config.SPECS / "indices.yaml"


def _measures(root_file: Path, _processed: Path) -> object:
    return indices.read_measures(root_file, specs.load_indices_spec())


def _events(root_file: Path, _processed: Path) -> object:
    return indices.read_events(root_file, specs.load_indices_spec())


def _readonly_outputs(root: Path) -> Callable[[], object]:
    blocked = root / "outputs"
    blocked.write_text("a file where the outputs folder should be")
    return lambda: io.atomic_write_text(blocked / "tables" / "estimates.csv", "x\n")


CASES = [
    # ---- specs/robustness.yaml: a check must change something, and name what exists
    Case("check_unknown_country", "robustness.yaml", "checks[drop_tha].drop_countries",
         _check(lambda s: s["checks"][1].update(drop_countries=["XXX"]))),
    Case("check_lower_case_country", "robustness.yaml", "'sgp' is not an ISO3",
         _check(lambda s: s["checks"][1].update(drop_countries=["sgp"]))),
    Case("check_country_outside_sample", "robustness.yaml",
         "'BRN' matches no row of this check's estimation sample",
         _check(lambda s: s["checks"][1].update(drop_countries=["BRN"]))),
    Case("check_year_outside_window", "robustness.yaml", "2030 matches no row",
         _check(lambda s: s["checks"][1].update(drop_years=[2030]))),
    Case("check_year_as_text", "robustness.yaml",
         "checks[drop_tha].drop_years: '2005' is text, not a number",
         _check(lambda s: s["checks"][1].update(drop_years=["2005"]))),
    Case("check_keeps_a_missing_country", "robustness.yaml", "keep_countries",
         _check(lambda s: s["checks"][1].update(keep_countries=["CHN", "IDN", "MMM"]))),
    Case("check_replace_missing_column", "robustness.yaml", "'gpr_nonexistent' is not a column",
         _check(lambda s: s["checks"][2].update(replace={"gpr": "gpr_nonexistent"}))),
    Case("check_replace_by_itself", "robustness.yaml", "replaces 'gpr' by itself",
         _check(lambda s: s["checks"][2].update(replace={"gpr": "gpr"}))),
    Case("check_unknown_key", "robustness.yaml", "unknown key 'drop_country'",
         _check(lambda s: s["checks"][1].update(drop_country=["THA"]))),
    Case("check_unknown_model", "robustness.yaml", "model 'M9' is not in specs/models.yaml",
         _check(lambda s: s["checks"][2].update(model="M9"))),
    Case("check_duplicate_id", "robustness.yaml", "check id 'main' is used twice",
         _check(lambda s: s["checks"].append({"id": "main", "label": "Again"}))),
    Case("check_lag_unknown_variable", "robustness.yaml", "'tii' is not a variable",
         _check(lambda s: s["checks"][1].update(lag=["tii"]))),
    Case("check_unknown_permutation_scheme", "robustness.yaml", "checks[ri].permute.scheme",
         _check(lambda s: s["checks"].append({"id": "ri", "label": "RI", "permute": {
             "variable": "gpr", "scheme": "within", "draws": 9}}))),
    Case("heterogeneity_group_matches_nothing", "robustness.yaml",
         "heterogeneity.groups[five].keep_countries: 'BRN' matches no row",
         _check(lambda s: s["heterogeneity"]["groups"][0].update(
             model="M4", keep_countries=["CHN", "BRN"]))),
    Case("check_leaves_one_country", "robustness.yaml", "leaves 1 country (IDN)",
         _check(lambda s: s["checks"][1].update(keep_countries=["IDN"], drop_countries=None))),
    # ---- specs/models.yaml: against the panel's columns, reported against the spec
    Case("model_term_typo", "models.yaml", "model M4, term 'gpr:tii': 'tii' is not a column",
         _model(lambda s: s["models"]["M4"].__setitem__(4, "gpr:tii"))),
    Case("model_unknown_control", "models.yaml", "variable 'gdp_growth' is not a column",
         _model(lambda s: s["controls"].append("gdp_growth"))),
    Case("model_control_without_label", "models.yaml", "labels: no label for 'x2'",
         _model(lambda s: s["labels"].pop("x2"))),
    Case("model_bootstrap_weights", "models.yaml", "bootstrap.weights",
         _model(lambda s: s["bootstrap"].update(weights="mammen"))),
    Case("model_key_term_in_no_model", "models.yaml", "key_terms: 'gpr:x1' is in no model",
         _model(lambda s: s["key_terms"].append("gpr:x1"))),
    # ---- specs/indices.yaml
    Case("indices_reversed_window", "indices.yaml", "window [2020, 1998] is reversed",
         _text_file("indices.yaml", INDICES, _sub("window: [1998, 2020]", "window: [2020, 1998]"),
                    lambda p, d: specs.load_indices_spec(p, d))),
    Case("indices_unknown_indicator", "indices.yaml",
         "rn.indicators: indicator 'resource_rent_gdp' is not a column",
         _text_file("indices.yaml", INDICES,
                    _sub("    resource_rents_gdp: {", "    resource_rent_gdp: {"),
                    lambda p, d: specs.load_indices_spec(p, d))),
    Case("indices_unknown_method", "indices.yaml", "main_method",
         _text_file("indices.yaml", INDICES, _sub("main_method: entropy", "main_method: entropy2"),
                    lambda p, d: specs.load_indices_spec(p, d))),
    Case("indices_invalid_yaml", "indices.yaml", "not valid YAML (line",
         _text_file("indices.yaml", INDICES, _sub("window: [1998, 2020]", "window: [1998, 2020"),
                    lambda p, d: specs.load_indices_spec(p, d))),
    # ---- data/raw/rn_measures.csv
    Case("measure_lifted_before_effective", "rn_measures.csv",
         "line 2 (measure_id CHN-01), column 'lifted'",
         _text_file("rn_measures.csv", MEASURES, _sub(",1999-01,2015-01-01,", ",1999-01,1998-01-01,"),
                    _measures)),
    Case("measure_unknown_country", "rn_measures.csv", "column 'country': 'PHI' is not a country",
         _text_file("rn_measures.csv", MEASURES,
                    lambda t: re.sub(r"\n(PHL-\d+),PHL,", r"\n\1,PHI,", t, count=1), _measures)),
    Case("measure_intensity_out_of_scale", "rn_measures.csv", "column 'intensity': 40 lies outside",
         _text_file("rn_measures.csv", MEASURES, _sub(",ban,4,", ",ban,40,"), _measures)),
    Case("measure_intensity_not_its_category", "rn_measures.csv",
         "column 'intensity': 2 is not the level of category 'ban'",
         _text_file("rn_measures.csv", MEASURES, _sub(",ban,4,", ",ban,2,"), _measures)),
    Case("measure_header_only", "rn_measures.csv", "the file has a header but no rows",
         _text_file("rn_measures.csv", MEASURES, lambda t: t.splitlines()[0] + "\n", _measures)),
    Case("measure_bad_date", "rn_measures.csv", "column 'effective': '2014-13-01' is not a calendar",
         _text_file("rn_measures.csv", MEASURES, _sub(",1999-01,2015-01-01,", ",2014-13-01,,"),
                    _measures)),
    Case("measure_duplicate_id", "rn_measures.csv", "'CHN-01' is used twice",
         _text_file("rn_measures.csv", MEASURES, _sub("\nCHN-02,", "\nCHN-01,"), _measures)),
    Case("measure_unknown_category", "rn_measures.csv", "column 'category': category 'embargo'",
         _text_file("rn_measures.csv", MEASURES, _sub(",ban,4,", ",embargo,4,"), _measures)),
    Case("measure_renamed_column", "rn_measures.csv",
         "header: unknown column 'lifed' (did you mean 'lifted'?)",
         _text_file("rn_measures.csv", MEASURES, _sub(",lifted,", ",lifed,"), _measures)),
    Case("measure_unknown_mineral_group", "rn_measures.csv",
         "line 27 (measure_id IDN-04), column 'groups': 'nikel' is not a mineral group",
         _text_file("rn_measures.csv", MEASURES, _sub("IDN-04,IDN,nickel ore,nickel,",
                                                       "IDN-04,IDN,nickel ore,nikel,"),
                    _measures)),
    # ---- data/raw/rn_policy_events.csv
    Case("event_intensity_off_the_scale", "rn_policy_events.csv",
         "line 2 (event_id IDN-2009-01), column 'intensity'",
         _text_file("rn_policy_events.csv", EVENTS, _sub(",tighten,3.0,0,", ",tighten,30.0,0,"),
                    _events)),
    Case("event_bad_direction", "rn_policy_events.csv", "column 'direction'",
         _text_file("rn_policy_events.csv", EVENTS, _sub(",tighten,3.0,0,", ",tightened,3.0,0,"),
                    _events)),
    # ---- data/hs6_chain_map.csv
    Case("hs6_map_short_code", "hs6_chain_map.csv", "line 2 (hs6 25031), column 'hs6'",
         _text_file("hs6_chain_map.csv", config.HS_CHAIN_MAP_FILE, _sub("\n250310,", "\n25031,"),
                    lambda p, d: clean.load_hs_chain_map(p))),
    Case("hs6_map_included_excluded_chain", "hs6_chain_map.csv", "column 'included'",
         _text_file("hs6_chain_map.csv", config.HS_CHAIN_MAP_FILE,
                    _sub("excluded,none,0,", "excluded,none,1,"),
                    lambda p, d: clean.load_hs_chain_map(p))),
    # ---- specs/nickel.yaml and specs/supply_risk.yaml
    Case("nickel_window_order", "nickel.yaml", "need first < ban <= last",
         _text_file("nickel.yaml", config.SPECS / "nickel.yaml",
                    _sub("{ban: 2014, first: 2010, last: 2016}",
                         "{ban: 2014, first: 2015, last: 2016}"),
                    lambda p, d: nickel.load_nickel_spec(p))),
    Case("supply_risk_unknown_importer", "supply_risk.yaml",
         "geopolrisk.importers: 'chn' is not an ISO3",
         _text_file("supply_risk.yaml", config.SPECS / "supply_risk.yaml",
                    _sub("importers: [CHN,", "importers: [chn,"),
                    lambda p, d: supply_risk.load_spec(p))),
    # ---- outputs that cannot be written: the target is named, never a temporary file
    Case("unwritable_outputs", "outputs/tables/estimates.csv", "cannot write here",
         _readonly_outputs),
]


def run_case(case: Case, root: Path) -> tuple[int, str]:
    """(exit code, stderr) of the case's action under the stages' entry point."""
    import contextlib
    import io as std_io

    action = case.make(root)
    err = std_io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std_io.StringIO()):
        code = io.run_stage("bad-input-test", action, verbose=False, record=False)
    return code, err.getvalue()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_stops_with_one_line_naming_file_and_entry(case, tmp_path):
    code, err = run_case(case, tmp_path)
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("[bad-input-test] ERROR ")
    assert case.file in lines[0], lines[0]
    assert case.entry in lines[0], lines[0]
    assert ".part" not in lines[0]


def test_there_are_at_least_twenty_cases():
    assert len(CASES) >= 20 and len({c.id for c in CASES}) == len(CASES)


def test_the_shipped_inputs_are_valid(tmp_path):
    """The project's own spec and data files pass every check the cases above fail."""

    for path in sorted(config.SPECS.glob("*.yaml")):
        if path.stem in specs.REGISTRY:
            specs.load(path)
    spec = specs.load_indices_spec()
    assert len(indices.read_measures(MEASURES, spec)) > 0
    assert len(indices.read_events(EVENTS, spec)) > 0
    assert len(clean.load_hs_chain_map()) > 0


if __name__ == "__main__":  # python -m tests.test_bad_inputs: every case and its message
    import tempfile

    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            code, err = run_case(case, Path(folder))
        message = err.strip().replace(folder, "<tmp>")
        print(f"- `{case.id}` (exit {code}): {message.removeprefix('[bad-input-test] ERROR ')}")
    sys.exit(0)
