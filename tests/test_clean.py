"""Clean stage: gap filling, merge audit, coverage, and the trade tables on hand-made flows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.data.io import DataError
from analysis.stages import clean


def test_fill_interior_gaps_only_inside_and_flags():
    frame = pd.DataFrame({
        "iso3": ["A"] * 6 + ["B"] * 3,
        "year": [1996, 1997, 1998, 1999, 2000, 2001, 1996, 1997, 1998],
        "x": [np.nan, 1.0, np.nan, np.nan, 4.0, np.nan, 2.0, np.nan, np.nan],
    })
    out = clean.fill_interior_gaps(frame, ["x"]).set_index(["iso3", "year"])
    assert np.isnan(out.loc[("A", 1996), "x"])  # leading gap stays missing
    assert out.loc[("A", 1998), "x"] == pytest.approx(2.0)
    assert out.loc[("A", 1999), "x"] == pytest.approx(3.0)
    assert np.isnan(out.loc[("A", 2001), "x"])  # trailing gap stays missing
    assert np.isnan(out.loc[("B", 1997), "x"])  # no later observation in B: not filled
    assert out["x_filled"].tolist() == [False, False, True, True, False, False, False, False,
                                        False]


def test_fill_uses_year_spacing_like_wgi_gaps():
    """WGI has 1996, 1998, 2000, 2002: the 1997 value is the midpoint of 1996 and 1998."""
    frame = pd.DataFrame({"iso3": "A", "year": [1996, 1997, 1998, 1999, 2000, 2001, 2002],
                          "wgi_ge": [0.0, np.nan, 1.0, np.nan, 3.0, np.nan, 4.0]})
    out = clean.fill_interior_gaps(frame, ["wgi_ge"])
    assert out["wgi_ge"].tolist() == pytest.approx([0.0, 0.5, 1.0, 2.0, 3.0, 3.5, 4.0])
    assert out["wgi_ge_filled"].sum() == 3


def test_fill_is_linear_in_the_year_when_rows_are_unequally_spaced():
    """Rows 2000, 2001, 2004 (no rows for 2002-2003): the 2001 value lies 1/4 of the way from
    0 (2000) to 8 (2004), i.e. 2.0 -- not 4.0, the midpoint by row position."""
    frame = pd.DataFrame({"iso3": "A", "year": [2000, 2001, 2004, 2005, 2007],
                          "x": [0.0, np.nan, 8.0, np.nan, 14.0]})
    out = clean.fill_interior_gaps(frame, ["x"])
    # 2005 lies 1/3 of the way from 8 (2004) to 14 (2007): 10.0 (by position: 11.0)
    assert out["x"].tolist() == pytest.approx([0.0, 2.0, 8.0, 10.0, 14.0], abs=1e-12)
    assert out["x_filled"].tolist() == [False, True, False, True, False]


def test_fill_never_crosses_countries():
    frame = pd.DataFrame({"iso3": ["A", "A", "B", "B"], "year": [2000, 2001, 2000, 2001],
                          "x": [1.0, np.nan, np.nan, 5.0]})
    out = clean.fill_interior_gaps(frame, ["x"])
    assert out["x"].isna().sum() == 2


def test_merge_audit_counts_and_duplicates():
    skeleton = clean.panel_skeleton(("A", "B"), (2000, 2001))
    source = pd.DataFrame({"iso3": ["A", "A", "B"], "year": [2000, 1999, 2001],
                           "v": [1.0, 2.0, np.nan]})
    audit = clean.MergeAudit()
    merged = audit.merge(skeleton, source, "toy")
    row = audit.table().iloc[0]
    assert (row.source_rows, row.matched, row.matched_with_data, row.dropped) == (3, 2, 1, 1)
    assert row.panel_rows_without_source_row == 2 and "years 1999 outside" in row.dropped_why
    assert merged["v"].tolist()[0] == 1.0 and len(merged) == 4
    with pytest.raises(DataError, match="duplicate keys"):
        audit.merge(skeleton, pd.concat([source, source]), "dup")


def test_coverage_shares():
    frame = pd.DataFrame({"iso3": ["A"] * 4, "year": [1, 2, 3, 4], "x": [1.0, 2.0, 3.0, np.nan],
                          "x_filled": [False, True, False, False]})
    cov = clean.coverage_table(frame, ["x"]).iloc[0]
    assert cov.share_observed == 0.5 and cov.share_filled == 0.25
    assert (cov.first_year, cov.last_year) == (1, 3)


HS_MAP = pd.DataFrame({
    "hs6": ["260400", "760110", "711290", "270900"],
    "description": ["nickel ore", "aluminium unwrought", "precious scrap", "crude oil"],
    "chain": ["nickel", "aluminium", "precious", "excluded"],
    "stage": ["supply", "transformation", "recycling", "none"],
    "included": [1, 1, 1, 0],
})


def toy_baci() -> pd.DataFrame:
    rows = [  # year, exporter, importer, hs6, value
        (2000, "IDN", "CHN", "260400", 100.0),
        (2000, "IDN", "JPN", "260400", 50.0),
        (2000, "CHN", "IDN", "760110", 30.0),
        (2000, "MYS", "IDN", "711290", 5.0),
        (2000, "IDN", "CHN", "270900", 999.0),  # excluded energy product
        (2000, "USA", "JPN", "260400", 7.0),    # not a panel country: world totals only
    ]
    return pd.DataFrame(rows, columns=["year", "exporter", "importer", "hs6", "value"]).assign(
        quantity=1.0)


def test_trade_chain_flows_by_partner_group():
    flows = clean.mineral_trade_flows(toy_baci(), HS_MAP, countries=("CHN", "IDN", "MYS"))
    assert "270900" not in set(flows["hs6"])
    chain = clean.build_trade_chain(flows, clean.world_trade_totals(toy_baci(), HS_MAP))
    key = ["iso3", "chain", "stage", "partner_group", "year"]
    c = chain.set_index(key)
    assert c.loc[("IDN", "nickel", "supply", "world", 2000), "export_value"] == 150.0
    assert c.loc[("IDN", "nickel", "supply", "china", 2000), "export_value"] == 100.0
    assert c.loc[("IDN", "nickel", "supply", "region", 2000), "export_value"] == 100.0
    assert c.loc[("IDN", "aluminium", "transformation", "china", 2000), "import_value"] == 30.0
    assert c.loc[("IDN", "precious", "recycling", "asean", 2000), "import_value"] == 5.0
    # demand = imports for use, over all stages of the chain; never exports
    assert c.loc[("IDN", "aluminium", "demand", "world", 2000), "import_value"] == 30.0
    assert np.isnan(c.loc[("IDN", "aluminium", "demand", "world", 2000), "export_value"])
    assert c.loc[("CHN", "nickel", "supply", "region", 2000), "import_value"] == 100.0
    assert ("CHN", "nickel", "supply", "china", 2000) not in c.index  # no self group
    # world trade value counts every pair, panel or not
    assert c.loc[("IDN", "nickel", "supply", "world", 2000), "world_trade_value"] == 157.0
    # cells without trade are explicit zeros
    assert c.loc[("MYS", "nickel", "supply", "world", 2000), "export_value"] == 0.0


def test_bilateral_sums_match_chain_world_totals():
    flows = clean.mineral_trade_flows(toy_baci(), HS_MAP, countries=("CHN", "IDN", "MYS"))
    bilateral = flows.groupby(["iso3", "partner_iso3", "year"])[
        ["export_value", "import_value"]].sum()
    assert bilateral.loc[("IDN", "CHN", 2000), "export_value"] == 100.0
    assert bilateral.loc[("IDN", "MYS", 2000), "import_value"] == 5.0
    assert bilateral.loc[("IDN", "JPN", 2000), "export_value"] == 50.0


def test_hs_chain_map_is_valid_and_covers_baci_codes():
    table = clean.load_hs_chain_map()
    assert len(table) == 74 and table["hs6"].is_unique
    assert set(table.loc[table["included"] == 1, "chain"]) == {
        "nickel", "aluminium", "copper", "tin", "rare_earths", "cobalt", "battery_alloy",
        "precious"}
    assert table.set_index("hs6").loc["260400", "chain"] == "nickel"
    assert table.set_index("hs6").loc["270900", "included"] == 0


def test_clean_stops_on_a_truncated_raw_file(tmp_path, capsys):
    """A raw file cut short after fetching stops `make panel` with exit 2, naming the file."""
    import shutil

    from analysis import config
    from analysis.data.registry import load_registry

    gpr = next(s for s in load_registry() if s.name == "gpr")
    raw = tmp_path / "raw"
    (raw / "gpr").mkdir(parents=True)
    target = raw / "gpr" / gpr.filename
    source = config.DATA_RAW / "gpr" / gpr.filename
    if source.exists():
        shutil.copyfile(source, target)
        target.write_bytes(target.read_bytes()[:5000])  # truncated
    else:
        target.write_bytes(b"\xd0\xcf\x11\xe0 truncated")
    before = target.read_bytes()
    code = clean.main(["--raw-dir", str(raw), "--out-dir", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "data_gpr_export.xls: sha256 mismatch" in err and "truncated" in err
    assert target.read_bytes() == before
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_baci_customs_union_and_nes_labels_are_mapped_on_both_sides():
    """ZA1 (South Africa's customs union, to 1999) -> ZAF and S19 ('Other Asia, nes') -> TWN, as
    exporter and as importer; a label decided as unattributable (R20) stays as it is."""
    baci = pd.DataFrame([  # year, exporter, importer, hs6, value
        (1996, "IDN", "ZA1", "260400", 40.0),   # IDN exports to South Africa's customs union
        (1996, "ZA1", "IDN", "711290", 7.0),    # and imports from it
        (1996, "S19", "MYS", "760110", 3.0),
        (1996, "MYS", "S19", "260400", 2.0),
        (1996, "IDN", "R20", "260400", 11.0),
        (2001, "IDN", "ZAF", "260400", 5.0),    # from 2000 BACI reports South Africa as ZAF
    ], columns=["year", "exporter", "importer", "hs6", "value"]).assign(quantity=1.0)
    flows = clean.mineral_trade_flows(baci, HS_MAP, countries=("IDN", "MYS"))
    bilateral = flows.groupby(["iso3", "partner_iso3", "year"])[
        ["export_value", "import_value"]].sum()
    assert bilateral.loc[("IDN", "ZAF", 1996)].tolist() == [40.0, 7.0]
    assert bilateral.loc[("IDN", "ZAF", 2001)].tolist() == [5.0, 0.0]
    assert bilateral.loc[("MYS", "TWN", 1996)].tolist() == [2.0, 3.0]
    assert bilateral.loc[("IDN", "R20", 1996)].tolist() == [11.0, 0.0]
    assert not set(flows["partner_iso3"]) & {"ZA1", "S19"}
    # every decision names a reason; the mapped ones are exactly ZA1 and S19
    assert clean.BACI_CODE_OVERRIDES == {"S19": "TWN", "ZA1": "ZAF"}
    assert all(len(reason) > 20 for _, reason in clean.BACI_LABEL_DECISIONS.values())
