"""Synergy measures (METHODS.md section 3), as pure vectorised functions.

Inputs may be scalars, numpy arrays or pandas Series (DataFrames for the product-level
indices); outputs have the same shape (a Series keeps its index; scalars give a float).

- Coupling degree of two subsystems U1, U2 in [0, 1]:
  - textbook: C = 2 sqrt(U1 U2) / (U1 + U2);
  - corrected (Wang, Kong, Ren, Zhi & Dai 2021, "Research on misuses and modification of
    coupling coordination degree model in China", Journal of Natural Resources 36(3):793-810),
    for n subsystems
    C = sqrt{ [1 - sum_{i>j} sqrt((U_i - U_j)^2) / sum_{m=1}^{n-1} m]
              * prod_i (U_i / max_i U_i)^(1/(n-1)) },
    which for n = 2 is C = sqrt((1 - |U1 - U2|) * min(U1, U2) / max(U1, U2)).
  The textbook C piles up near 1 for almost any pair (U1 = 0.3, U2 = 0.5 gives 0.968); the
  corrected C spreads over [0, 1] (0.693 for the same pair). Both are defined as 0 when
  U1 = U2 = 0.
- Coupling coordination degree: T = alpha U1 + (1 - alpha) U2; D = sqrt(C T).
- Grubel & Lloyd (1975) aggregate intra-industry trade over products k:
  GL = 1 - sum_k |X_k - M_k| / sum_k (X_k + M_k).
- Trade complementarity (Michaely 1996): TC_ij = 100 (1 - sum_k |m_jk - x_ik| / 2), with x_ik
  the share of product k in i's exports and m_jk its share in partner j's imports.
- Trade intensity (Brown 1949; Kojima 1964): TII_ij = (x_ij / X_i) / (M_j / M_w).

Missing values (NaN) propagate: the result is NaN wherever an input it depends on is NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "coupling_coordination",
    "coupling_degree_corrected",
    "coupling_degree_textbook",
    "grubel_lloyd",
    "trade_complementarity",
    "trade_intensity",
]

ArrayLike = float | np.ndarray | pd.Series
Table = np.ndarray | pd.Series | pd.DataFrame


# --------------------------------------------------------------------------- helpers
def _common_index(*inputs: object) -> pd.Index | None:
    """The index shared by the pandas inputs (None if there are none); they must agree."""
    index = None
    for item in inputs:
        if isinstance(item, pd.Series | pd.DataFrame):
            if index is None:
                index = item.index
            elif not item.index.equals(index):
                raise ValueError("pandas inputs have different indexes; align them first")
    return index


def _wrap(values: np.ndarray, index: pd.Index | None) -> float | np.ndarray | pd.Series:
    if index is not None:
        if values.ndim != 1 or len(values) != len(index):
            raise ValueError("cannot attach the pandas index to a result of shape "
                             f"{values.shape}")
        return pd.Series(values, index=index)
    if values.ndim == 0:
        return float(values)
    return values


def _as_float(value: object, name: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric ({error})") from error


def _unit_interval(u1: object, u2: object) -> tuple[np.ndarray, np.ndarray]:
    """u1, u2 as float arrays, each in [0, 1] wherever it is not NaN (+/-inf is an error)."""
    out = []
    for name, value in (("u1", u1), ("u2", u2)):
        a = _as_float(value, name)
        present = a[~np.isnan(a)]
        if present.size and (present.min() < 0 or present.max() > 1):
            raise ValueError(f"{name}: subsystem scores must lie in [0, 1] "
                             f"(got min {present.min()!r}, max {present.max()!r})")
        out.append(a)
    try:
        np.broadcast_shapes(out[0].shape, out[1].shape)
    except ValueError as error:
        raise ValueError(f"u1 and u2 have incompatible shapes ({error})") from error
    return out[0], out[1]


def _non_negative(a: np.ndarray, name: str) -> None:
    if (a < 0).any():
        raise ValueError(f"{name} has negative values; trade flows must be >= 0")
    if np.isinf(a).any():
        raise ValueError(f"{name} has infinite values")


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, NaN where the denominator is 0 (or NaN)."""
    ok = denominator != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, numerator / np.where(ok, denominator, 1.0), np.nan)


def _frame_index(*tables: object) -> pd.Index | None:
    """Row index of the DataFrame inputs (None if there are none); their columns must agree."""
    frames = [t for t in tables if isinstance(t, pd.DataFrame)]
    for frame in frames[1:]:
        if not frame.columns.equals(frames[0].columns):
            raise ValueError("DataFrame inputs have different product columns; align them first")
    return _common_index(*frames) if frames else None


def _product_table(value: object, name: str) -> np.ndarray:
    a = _as_float(value, name)
    if a.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D (products) or 2-D (units x products), "
                         f"not {a.ndim}-D")
    _non_negative(a, name)
    return a


# --------------------------------------------------------------------------- coupling
def coupling_degree_textbook(u1: ArrayLike, u2: ArrayLike) -> float | np.ndarray | pd.Series:
    """Textbook two-subsystem coupling degree C = 2 sqrt(u1 u2) / (u1 + u2).

    Vectorised; u1 and u2 must lie in [0, 1] (ValueError otherwise); C = 0 where
    u1 = u2 = 0 (by definition; 0/0 otherwise); NaN where either input is NaN.
    """
    index = _common_index(u1, u2)
    a, b = _unit_interval(u1, u2)
    total = a + b
    c = _safe_divide(2.0 * np.sqrt(a * b), total)
    c = np.where(total == 0, 0.0, c)
    return _wrap(np.where(np.isnan(a) | np.isnan(b), np.nan, c), index)


def coupling_degree_corrected(u1: ArrayLike, u2: ArrayLike) -> float | np.ndarray | pd.Series:
    """Corrected coupling degree of Wang, Kong, Ren, Zhi & Dai (2021), two-subsystem case.

    Source: "Research on misuses and modification of coupling coordination degree model in
    China", Journal of Natural Resources 36(3):793-810. The general n-subsystem form is
    C = sqrt{ [1 - sum_{i>j} sqrt((U_i - U_j)^2) / sum_{m=1}^{n-1} m]
              * prod_i (U_i / max_i U_i)^(1/(n-1)) },
    which for n = 2 is C = sqrt((1 - |u1 - u2|) * min(u1, u2) / max(u1, u2)).

    u1 and u2 must lie in [0, 1] (ValueError otherwise), which keeps 1 - |u1 - u2| >= 0.
    C = 0 where u1 = u2 = 0 (by definition: min/max is 0/0 there); NaN where either is NaN.
    """
    index = _common_index(u1, u2)
    a, b = _unit_interval(u1, u2)
    high = np.maximum(a, b)
    low = np.minimum(a, b)
    ratio = np.where(high == 0, 0.0, _safe_divide(low, high))
    c = np.sqrt((1.0 - np.abs(a - b)) * ratio)
    return _wrap(np.where(np.isnan(a) | np.isnan(b), np.nan, c), index)


def coupling_coordination(u1: ArrayLike, u2: ArrayLike, corrected: bool = True,
                          alpha: float = 0.5) -> float | np.ndarray | pd.Series:
    """Coupling coordination degree D = sqrt(C T), with T = alpha u1 + (1 - alpha) u2.

    C is :func:`coupling_degree_corrected` (default) or :func:`coupling_degree_textbook`
    (``corrected=False``). ``alpha`` in [0, 1] is the contribution of subsystem 1 to the
    comprehensive development index T. D lies in [0, 1].
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], not {alpha!r}")
    index = _common_index(u1, u2)
    a, b = _unit_interval(u1, u2)
    degree = coupling_degree_corrected if corrected else coupling_degree_textbook
    c = np.asarray(degree(a, b), dtype=float)
    t = alpha * a + (1.0 - alpha) * b
    return _wrap(np.sqrt(c * t), index)


# --------------------------------------------------------------------------- trade indices
def grubel_lloyd(exports: Table, imports: Table) -> float | np.ndarray | pd.Series:
    """Aggregate Grubel-Lloyd intra-industry trade index over products k.

    GL = 1 - sum_k |X_k - M_k| / sum_k (X_k + M_k)  (Grubel & Lloyd 1975, Intra-Industry Trade,
    Macmillan), in [0, 1]. ``exports`` and ``imports`` are 1-D (products; returns a float) or
    2-D (rows = units, columns = products; returns one value per row, a Series if a DataFrame
    was passed). NaN where total trade is 0 or a cell of the row is NaN. Negative flows raise
    ValueError.
    """
    index = _frame_index(exports, imports)
    x = _product_table(exports, "exports")
    m = _product_table(imports, "imports")
    if x.shape != m.shape:
        raise ValueError(f"exports {x.shape} and imports {m.shape} must have the same shape")
    total = (x + m).sum(axis=-1)
    gap = np.abs(x - m).sum(axis=-1)
    return _wrap(1.0 - _safe_divide(gap, total), index)


def trade_complementarity(exports_i: Table, imports_j: Table) -> float | np.ndarray | pd.Series:
    """Michaely trade complementarity index of exporter i with importer j, in [0, 100].

    TC_ij = 100 (1 - sum_k |m_jk - x_ik| / 2), x_ik = X_ik / sum_k X_ik the share of product k in
    i's exports, m_jk = M_jk / sum_k M_jk its share in j's imports (Michaely 1996, "Trade
    preferential agreements in Latin America: an ex ante assessment", World Bank Policy
    Research Working Paper 1583). Inputs are 1-D (products; returns a float) or 2-D (rows =
    units, columns = products; one value per row); a 1-D input broadcasts against a 2-D one.
    NaN where either total is 0. Negative flows raise ValueError.
    """
    index = _frame_index(exports_i, imports_j)
    x = _product_table(exports_i, "exports_i")
    m = _product_table(imports_j, "imports_j")
    if x.shape[-1] != m.shape[-1]:
        raise ValueError(f"exports_i has {x.shape[-1]} products, imports_j {m.shape[-1]}")
    if x.ndim == m.ndim == 2 and x.shape[0] != m.shape[0]:
        raise ValueError(f"exports_i has {x.shape[0]} rows, imports_j {m.shape[0]}")
    x_share = _safe_divide(x, x.sum(axis=-1, keepdims=True))
    m_share = _safe_divide(m, m.sum(axis=-1, keepdims=True))
    tc = 100.0 * (1.0 - np.abs(m_share - x_share).sum(axis=-1) / 2.0)
    return _wrap(tc, index)


def trade_intensity(x_ij: ArrayLike, x_i: ArrayLike, m_j: ArrayLike,
                    m_w: ArrayLike) -> float | np.ndarray | pd.Series:
    """Bilateral trade intensity index TII_ij = (x_ij / x_i) / (m_j / m_w).

    x_ij: i's exports to j; x_i: i's total exports; m_j: j's total imports; m_w: world imports
    (Brown 1949, Applied Economics; Kojima 1964, "The pattern of international trade among
    advanced countries", Hitotsubashi Journal of Economics 5(1):16-36). TII > 1 means i exports
    more to j than j's weight in world imports would predict. Vectorised with broadcasting;
    NaN where a denominator (x_i, m_w, or the share m_j / m_w) is 0. Negative flows raise
    ValueError.
    """
    index = _common_index(x_ij, x_i, m_j, m_w)
    arrays = []
    for name, value in (("x_ij", x_ij), ("x_i", x_i), ("m_j", m_j), ("m_w", m_w)):
        a = _as_float(value, name)
        _non_negative(a, name)
        arrays.append(a)
    xij, xi, mj, mw = arrays
    return _wrap(_safe_divide(_safe_divide(xij, xi), _safe_divide(mj, mw)), index)
