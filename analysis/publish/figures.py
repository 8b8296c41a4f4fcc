"""Saving figures: PNG and PDF, atomically, without timestamps (so reruns give the same bytes)."""

from __future__ import annotations

from pathlib import Path

from analysis.data.io import atomic_path


def save_figure(fig, stem: Path) -> list[Path]:
    """Write ``stem``.png (150 dpi) and ``stem``.pdf and close the figure."""
    import matplotlib.pyplot as plt

    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None})):
        target = stem.with_suffix(f".{suffix}")
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=suffix, dpi=150, metadata=meta)
        paths.append(target)
    plt.close(fig)
    return paths
