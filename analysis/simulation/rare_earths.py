"""The rare-earth model (``specs/sd/rare_earths.mdl``): the 2010 quota shock back-cast against
the behaviour Sprecher et al. (2017) describe, and against the data the project holds.

Sprecher, Daigo, Spekkink, Vos, Kleijn, Murakami & Kramer (2017), "Perspectives on the 2010
rare earth crisis" / "Framework for resilience in material supply chains, with a case study
from the 2010 rare earth crisis" (Environ. Sci. Technol. 51), report that after China cut its
export quota in 2010: substitution and thrifting took up to about 10% of demand a year,
non-Chinese supply rose by about 4% of the market a year, the market recovered in about two
years, and recycling did not respond. :func:`patterns` measures each of these on a model run;
:func:`data_comparison` sets the run beside World Mining Data production shares (2018-2024)
and BACI's record of China's rare-earth exports.

Each pattern is computed from the run and compared with the published range; the verdict
('reproduced' or 'missed') is what the model does, never forced.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.simulation import mdl
from analysis.simulation.runner import SimulationModel

RECORD = ("Ex China supply gap", "Relative price", "Substituted share", "Substitution",
          "Non China share of world supply", "China exports", "Rest of world supply",
          "Recycled share of ex China demand", "Ex China demand", "China share of world mining",
          "Myanmar share of world mining", "Malaysian separation capacity",
          "Myanmar ore to China", "China mining capacity", "World supply")


@dataclass(frozen=True)
class PatternSpec:
    """The published behaviour after the shock (defaults: Sprecher et al. 2017)."""

    shock_year: float = 2010.0
    window: tuple[int, int] = (2010, 2014)
    substitution_max_per_year: float = 0.10
    non_china_share_slope: tuple[float, float] = (0.02, 0.06)
    recovery_years: tuple[float, float] = (1.0, 3.0)
    recycling_share_max: float = 0.01
    price_recovered: float = 1.2


def backcast(model: SimulationModel, lookups: Mapping[str, tuple[np.ndarray, np.ndarray]],
             params: Mapping[str, float] | None = None) -> pd.DataFrame:
    """The run at every time step: ``time`` and the variables of :data:`RECORD`."""
    result = model.run(dict(params or {}), lookups, record=list(RECORD))
    frame = pd.DataFrame({"time": result["time"]})
    for name in RECORD:
        frame[name] = result[mdl.normalise(name)][:, 0]
    return frame


def annual(frame: pd.DataFrame) -> pd.DataFrame:
    """Annual means of every column (years whole in the run)."""
    year = np.floor(frame["time"] + 1e-9).astype(int)
    out = frame.assign(year=year).groupby("year").mean().drop(columns="time")
    return out[out.index < int(np.floor(frame["time"].max() + 1e-9))]


def patterns(frame: pd.DataFrame, spec: PatternSpec = PatternSpec()) -> pd.DataFrame:
    """The four published patterns, measured on the run: ``pattern, published, model,
    verdict``."""
    yearly = annual(frame)
    lo, hi = spec.window
    rows = []
    # 1. substitution: at most about 10% of demand a year, and it does respond
    sub = yearly["Substituted share"]
    increases = sub.diff().loc[lo + 1:hi]
    largest = float(increases.max())
    responded = largest > 0.005
    rows.append({"pattern": "substitution", "published": "up to about 10% of demand a year",
                 "model": f"largest yearly rise {largest:.1%} of demand ({lo + 1}-{hi})",
                 "value": largest,
                 "verdict": "reproduced" if responded and largest <= spec.substitution_max_per_year
                 + 1e-9 else "missed"})
    # 2. non-Chinese supply rises by about 4% of the market a year
    share = yearly["Non China share of world supply"]
    slope = float((share.loc[hi] - share.loc[lo - 1]) / (hi - lo + 1))
    a, b = spec.non_china_share_slope
    rows.append({"pattern": "non-Chinese supply",
                 "published": "rises by about 4% of the market a year",
                 "model": f"{slope:.1%} of world supply a year ({lo - 1}-{hi})", "value": slope,
                 "verdict": "reproduced" if a <= slope <= b else "missed"})
    # 3. the market recovers in about two years: price back near normal and no gap
    after = frame[frame["time"] >= spec.shock_year]
    shortage = after[(after["Relative price"] > spec.price_recovered)
                     | (after["Ex China supply gap"] > 1e-6)]
    recovery = float(shortage["time"].max() - spec.shock_year) if len(shortage) else 0.0
    a, b = spec.recovery_years
    rows.append({"pattern": "recovery", "published": "in about two years",
                 "model": f"{recovery:.1f} years until the gap is closed and the price is below "
                 f"{spec.price_recovered:g} times normal", "value": recovery,
                 "verdict": "reproduced" if a <= recovery <= b else "missed"})
    # 4. no recycling response within the crisis
    recycled = float(yearly["Recycled share of ex China demand"].loc[lo:lo + 2].max())
    rows.append({"pattern": "recycling", "published": "no recycling response",
                 "model": f"recycling reaches {recycled:.1%} of use outside China by {lo + 2}",
                 "value": recycled,
                 "verdict": "reproduced" if recycled <= spec.recycling_share_max else "missed"})
    return pd.DataFrame(rows)


def production_shares(production: pd.DataFrame, codes: Mapping[str, int],
                      material: str = "Rare earth") -> pd.DataFrame:
    """World Mining Data shares of world production: ``year`` and one column per country
    name in ``codes`` ({label: BACI numeric code})."""
    rows = production[production["material"] == material]
    total = rows.groupby("year")["production"].sum()
    out = pd.DataFrame({"year": total.index})
    for label, code in codes.items():
        part = rows[rows["country_code"] == code].set_index("year")["production"]
        out[label] = (part.reindex(total.index) / total).to_numpy()
    return out


def china_exports(baci: pd.DataFrame, codes: Sequence[str], years: Sequence[int]
                  ) -> pd.Series:
    """China's exports of the rare-earth HS codes (thousand tonnes gross) by year."""
    rows = baci[(baci["exporter"] == "CHN") & baci["hs6"].isin(codes)
                & baci["year"].isin(years)]
    return rows.groupby("year")["quantity"].sum().reindex(years) / 1000


def data_comparison(yearly: pd.DataFrame, shares: pd.DataFrame, exports: pd.Series
                    ) -> pd.DataFrame:
    """The run beside the data: ``year, model_china_share, wmd_china_share,
    model_myanmar_share, wmd_myanmar_share, model_china_exports_kt_reo,
    baci_china_exports_kt``."""
    years = sorted(set(shares["year"]) | set(exports.index))
    out = pd.DataFrame({"year": years})
    by = shares.set_index("year")
    out["model_china_share"] = yearly["China share of world mining"].reindex(years).to_numpy()
    out["wmd_china_share"] = by["China"].reindex(years).to_numpy() if "China" in by else np.nan
    out["model_myanmar_share"] = yearly["Myanmar share of world mining"].reindex(
        years).to_numpy()
    out["wmd_myanmar_share"] = by["Myanmar"].reindex(years).to_numpy() if "Myanmar" in by \
        else np.nan
    out["model_china_exports_kt_reo"] = yearly["China exports"].reindex(years).to_numpy()
    out["baci_china_exports_kt"] = exports.reindex(years).to_numpy()
    return out


def figure(frame: pd.DataFrame, comparison: pd.DataFrame, shock_year: float):
    """Back-cast panels: price and gap, substitution, supply shares, China's exports."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5))
    t = frame["time"]
    ax = axes[0, 0]
    ax.plot(t, frame["Relative price"], color="#c33", label="relative price (1 = normal)")
    ax2 = ax.twinx()
    ax2.plot(t, frame["Ex China supply gap"], color="#36c", label="gap outside China (kt)")
    ax.set_title("Price and unmet demand outside China", fontsize=9)
    ax.legend(loc="upper left", fontsize=7)
    ax2.legend(loc="upper right", fontsize=7)
    ax = axes[0, 1]
    ax.plot(t, frame["Substituted share"], color="#393", label="substituted share")
    ax.plot(t, frame["Recycled share of ex China demand"], color="#999",
            label="recycled share")
    ax.set_title("Substitution and recycling (share of use outside China)", fontsize=9)
    ax.legend(fontsize=7)
    ax = axes[1, 0]
    ax.plot(t, frame["Non China share of world supply"], color="#c33",
            label="non-Chinese supply, model")
    ax.plot(t, frame["China share of world mining"], color="#333", label="China, model")
    ax.plot(t, frame["Myanmar share of world mining"], color="#963", label="Myanmar, model")
    ax.plot(comparison["year"] + 0.5, comparison["wmd_china_share"], "o", color="#333",
            ms=4, label="China, World Mining Data")
    ax.plot(comparison["year"] + 0.5, comparison["wmd_myanmar_share"], "s", color="#963",
            ms=4, label="Myanmar, World Mining Data")
    ax.set_title("Shares of world supply", fontsize=9)
    ax.legend(fontsize=6)
    ax = axes[1, 1]
    ax.plot(t, frame["China exports"], color="#333", label="China's exports, model (kt REO)")
    ax.plot(comparison["year"] + 0.5, comparison["baci_china_exports_kt"], "o", color="#c33",
            ms=4, label="China's exports, BACI (kt gross)")
    ax.plot(t, frame["Malaysian separation capacity"], color="#36c",
            label="Malaysian separation capacity (kt REO)")
    ax.set_title("China's exports and Lynas' Malaysian plant", fontsize=9)
    ax.legend(fontsize=7)
    for ax in axes.ravel():
        ax.axvline(shock_year, color="#aaa", ls=":")
        ax.set_xlim(2005, 2030)
        ax.tick_params(labelsize=8)
    fig.suptitle("Rare earths: back-cast of China's 2010 export-quota cut", fontsize=11)
    fig.tight_layout()
    return fig
