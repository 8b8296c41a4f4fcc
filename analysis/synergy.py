"""Synergy measures (METHODS.md section 3), as pure vectorised functions.

- Coupling degree of two subsystems U1, U2 in [0, 1]:
  - textbook: C = 2 sqrt(U1 U2) / (U1 + U2);
  - corrected (Wang, Kong, Ren, Zhi & Dai 2021, "Research on misuses and modification of
    coupling coordination degree model in China", Journal of Natural Resources 36(3):793–810):
    C = sqrt{ [1 - sum_{i>j} sqrt((U_i - U_j)^2) / sum_{m=1}^{n-1} m] * prod_i (U_i/max U)^(1/(n-1)) },
    which for n = 2 is C = sqrt((1 - |U1 - U2|) * min(U1, U2) / max(U1, U2)).
    The textbook C piles up near 1 for almost any pair (0.3 and 0.5 give 0.968); the corrected
    C spreads over [0, 1]. Both are defined as 0 when U1 = U2 = 0.
- Coupling coordination degree: T = alpha U1 + (1 - alpha) U2; D = sqrt(C T).
- Grubel–Lloyd (1975) aggregate intra-industry trade: GL = 1 - sum_k |X_k - M_k| / sum_k (X_k + M_k).
- Trade complementarity (Michaely 1996): TC = 100 (1 - sum_k |m_jk - x_ik| / 2), with x_ik the
  share of product k in i's exports and m_jk its share in partner j's imports.
- Trade intensity (Brown 1949; Kojima 1964): TII = (x_ij / X_i) / (M_j / M_w).
"""

from __future__ import annotations

import numpy as np


def _unit_interval(*arrays: np.ndarray) -> list[np.ndarray]:
    out = [np.asarray(a, dtype=float) for a in arrays]
    for a in out:
        finite = a[np.isfinite(a)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise ValueError("subsystem scores must lie in [0, 1]")
    return out


def coupling_degree_textbook(u1, u2) -> np.ndarray:
    """C = 2 sqrt(u1 u2) / (u1 + u2); 0 where both are 0."""
    u1, u2 = _unit_interval(u1, u2)
    total = u1 + u2
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(total > 0, 2 * np.sqrt(u1 * u2) / np.where(total > 0, total, 1), 0.0)
    return np.where(np.isnan(u1) | np.isnan(u2), np.nan, c)


def coupling_degree_corrected(u1, u2) -> np.ndarray:
    """Wang et al. (2021): C = sqrt((1 - |u1 - u2|) min/max); 0 where both are 0."""
    u1, u2 = _unit_interval(u1, u2)
    high = np.maximum(u1, u2)
    low = np.minimum(u1, u2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(high > 0, low / np.where(high > 0, high, 1), 0.0)
    c = np.sqrt((1 - np.abs(u1 - u2)) * ratio)
    return np.where(np.isnan(u1) | np.isnan(u2), np.nan, c)


def coupling_coordination(u1, u2, corrected: bool = True, alpha: float = 0.5) -> np.ndarray:
    """D = sqrt(C T), T = alpha u1 + (1 - alpha) u2."""
    u1, u2 = _unit_interval(u1, u2)
    c = coupling_degree_corrected(u1, u2) if corrected else coupling_degree_textbook(u1, u2)
    return np.sqrt(c * (alpha * u1 + (1 - alpha) * u2))


def grubel_lloyd(exports, imports) -> np.ndarray | float:
    """Aggregate GL index over products (last axis); NaN where total trade is 0."""
    x = np.asarray(exports, dtype=float)
    m = np.asarray(imports, dtype=float)
    total = (x + m).sum(axis=-1)
    gap = np.abs(x - m).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        gl = np.where(total > 0, 1 - gap / np.where(total > 0, total, 1), np.nan)
    return float(gl) if gl.ndim == 0 else gl


def trade_complementarity(exports_i, imports_j) -> np.ndarray | float:
    """Michaely TC over products (last axis), in [0, 100]; NaN where a total is 0."""
    x = np.asarray(exports_i, dtype=float)
    m = np.asarray(imports_j, dtype=float)
    x_total = x.sum(axis=-1, keepdims=True)
    m_total = m.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        x_share = x / np.where(x_total > 0, x_total, np.nan)
        m_share = m / np.where(m_total > 0, m_total, np.nan)
    tc = 100 * (1 - np.abs(m_share - x_share).sum(axis=-1) / 2)
    valid = (x_total > 0).squeeze(-1) & (m_total > 0).squeeze(-1)
    tc = np.where(valid, tc, np.nan)
    return float(tc) if tc.ndim == 0 else tc


def trade_intensity(x_ij, x_i, m_j, m_w) -> np.ndarray:
    """TII = (x_ij / x_i) / (m_j / m_w); NaN where a denominator is 0."""
    x_ij, x_i, m_j, m_w = (np.asarray(a, dtype=float) for a in (x_ij, x_i, m_j, m_w))
    with np.errstate(invalid="ignore", divide="ignore"):
        share_i = np.where(x_i > 0, x_ij / np.where(x_i > 0, x_i, 1), np.nan)
        share_j = np.where(m_w > 0, m_j / np.where(m_w > 0, m_w, 1), np.nan)
        return np.where(share_j > 0, share_i / np.where(share_j > 0, share_j, 1), np.nan)
