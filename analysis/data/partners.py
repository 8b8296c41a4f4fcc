"""The trade-partner groups of the clean stage's aggregation (METHODS.md section 2): for each
reporter, the partners its "world", "region", "asean" and "china" flows sum over. Shared by
the clean stage (which sums the flows) and the indices stage (which reads them back)."""

from __future__ import annotations

from analysis import config


def partner_groups(iso3: str) -> dict[str, set[str] | None]:
    """Partner sets for a reporter: None means every partner (world).

    "region" is China + ASEAN **excluding the reporter itself** (for China: the ten ASEAN
    members; the first build wrongly counted China as its own regional partner). "asean" is the
    ASEAN members other than the reporter; "china" exists for the ASEAN members only.
    """
    others_asean = set(config.ASEAN) - {iso3}
    region = set(config.COUNTRIES) - {iso3}
    groups: dict[str, set[str] | None] = {"world": None, "region": region,
                                          "asean": others_asean}
    if iso3 != config.CHINA:
        groups["china"] = {config.CHINA}
    return groups
