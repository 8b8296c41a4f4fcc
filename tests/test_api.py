"""The notebook interface (analysis.api) gives the numbers the stages write, and
``bootstrap=None`` really skips the wild bootstrap; the stages' ``--only`` and ``--check``."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis import api
from analysis.econometrics import moderated
from analysis.stages import models, robustness
from tests.test_bad_inputs import CHECKS, _project


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    paths = _project(root)
    models.run(paths["processed"], paths["outputs"], paths["models"])
    robustness.run(paths["processed"], paths["outputs"], paths["robustness"], paths["models"])
    return paths


def test_fit_equals_the_models_stage(project):
    result = api.fit("M4", spec_path=project["models"], processed=project["processed"])
    stage = pd.read_csv(project["outputs"] / "estimates.csv")
    stage = stage[stage["model"] == "M4"].set_index("term")
    mine = api.estimates(result).set_index("term").loc[stage.index]
    for column in ("estimate", "std_error", "p_value", "se_crv3", "p_wcr", "within_r2"):
        np.testing.assert_allclose(mine[column], stage[column], rtol=1e-8, atol=1e-12)


def test_bootstrap_none_skips_the_bootstrap(project):
    spec = moderated.load_model_spec(project["models"], project["processed"])
    frame, _ = moderated.estimation_frame(pd.read_parquet(project["processed"] / "panel.parquet"),
                                       spec)
    skipped = moderated.fit_models(frame, spec, bootstrap=None, progress=False)
    assert all(r.table["p_wcr"].isna().all() for r in skipped)
    with_spec = moderated.fit_models(frame, spec, progress=False)
    assert all(r.table.loc[r.table.index.isin(spec["key_terms"]), "p_wcr"].notna().all()
               for r in with_spec)
    quick = api.fit("M2", bootstrap=None, spec_path=project["models"],
                    processed=project["processed"])
    assert quick.table["p_wcr"].isna().all() and quick.table["p_value"].notna().all()


def test_check_equals_its_row_of_the_robustness_stage(project):
    row = api.check("drop_tha", spec_path=project["robustness"],
                    model_spec_path=project["models"], processed=project["processed"])
    table = pd.read_csv(project["outputs"] / "robustness.csv").set_index("check")
    assert row["n_clusters"].iloc[0] == table.loc["drop_tha", "n_clusters"] == 9
    for column in ("b[gpr:rn]", "p[gpr:rn]", "p_wcr[gpr:rn]"):
        assert row[column].iloc[0] == pytest.approx(table.loc["drop_tha", column], rel=1e-9)


def test_unknown_names_stop_with_the_spec_named(project):
    from analysis.data.io import DataError

    with pytest.raises(DataError, match=r"models\.yaml, models: no model 'M7'"):
        api.fit("M7", spec_path=project["models"], processed=project["processed"])
    with pytest.raises(DataError, match=r"robustness\.yaml, checks: no check with the id "
                                        r"'drop_thai' \(did you mean 'drop_tha'\?\)"):
        api.check("drop_thai", spec_path=project["robustness"],
                  model_spec_path=project["models"], processed=project["processed"])


def test_only_and_check_print_results_and_write_nothing(project, capsys):
    before = sorted(p.name for p in project["outputs"].rglob("*"))
    models.run_only(["M2"], project["processed"], project["models"])
    out = capsys.readouterr().out
    assert "M2" in out and "gpr:rn" in out and "M4" not in out
    robustness.run_one("drop_tha", project["processed"], project["robustness"],
                       project["models"])
    assert "Drop Thailand" in capsys.readouterr().out
    assert sorted(p.name for p in project["outputs"].rglob("*")) == before


def test_spec_reads_a_validated_spec():
    spec = api.spec("models")
    assert spec["focal"] == "gpr" and "M4" in spec["models"]
    checks = copy.deepcopy(CHECKS)
    assert yaml.safe_dump(checks)  # the fixture spec is plain YAML
