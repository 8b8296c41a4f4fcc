"""The trade-partner groups of the clean stage's aggregation (METHODS.md section 2): for each
reporter, the partners its "world", "region", "asean" and "china" flows sum over. Shared by
the clean stage (which sums the flows) and the indices stage (which reads them back).

The group names are those of the China–ASEAN design and are kept for every region (they are
values of the processed tables): "china" is the region's **focal** country and "asean" its
**members** (specs/regions/<name>.yaml, ``focal`` and ``members``)."""

from __future__ import annotations

from analysis.data.specs import Region, load_region


def partner_groups(iso3: str, region: Region | None = None) -> dict[str, set[str] | None]:
    """Partner sets for a reporter: None means every partner (world).

    "region" is the region's countries (focal + members) **excluding the reporter itself**
    (for China in China + ASEAN: the ten ASEAN members; the first build wrongly counted China as
    its own regional partner). "asean" is the members other than the reporter; "china" (the
    focal country) exists for the members only.
    """
    spec = region or load_region()
    others_asean = set(spec.members) - {iso3}
    region = set(spec.countries) - {iso3}
    groups: dict[str, set[str] | None] = {"world": None, "region": region,
                                          "asean": others_asean}
    if iso3 != spec.focal:
        groups["china"] = {spec.focal}
    return groups
