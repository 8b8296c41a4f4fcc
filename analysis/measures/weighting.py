"""Composite-index weighting methods (METHODS.md section 4), as pure functions.

Every method works on the same normalised matrix x' (``minmax_normalise``):

    x'_ij = (x_ij - min_i x_ij) / (max_i x_ij - min_i x_ij) + epsilon   positive indicator j (+1)
    x'_ij = (max_i x_ij - x_ij) / (max_i x_ij - min_i x_ij) + epsilon   negative indicator j (-1)

The minimum and maximum are taken over ALL rows passed in: the caller passes the whole panel
(every unit and year), so that scores compare over time as well as across units. The explicit
"epsilon shift" keeps every x'_ij > 0, so that ln p_ij in the entropy method is defined.

Methods (n rows i = 1..n, m indicators j = 1..m):

- ``entropy`` -- entropy weight method (Shannon 1948 entropy applied to indicator weighting;
  e.g. Zou, Yun & Sun 2006, J. Environ. Sci. 18(5):1020-1023):
  p_ij = x'_ij / sum_i x'_ij;  e_j = -(1/ln n) sum_i p_ij ln p_ij;  d_j = 1 - e_j;
  w_j = d_j / sum_j d_j;  score_i = sum_j w_j x'_ij.
- ``entropy_topsis`` -- TOPSIS (Hwang & Yoon 1981, Multiple Attribute Decision Making) with the
  entropy weights: V_ij = w_j x'_ij; V+_j = max_i V_ij, V-_j = min_i V_ij;
  D+_i = sqrt(sum_j (V_ij - V+_j)^2), D-_i = sqrt(sum_j (V_ij - V-_j)^2);
  score_i = C_i = D-_i / (D+_i + D-_i).
- ``pca`` -- first principal component (Pearson 1901; Hotelling 1933; as used for composite
  indicators in OECD/JRC 2008, Handbook on Constructing Composite Indicators, section 6.1):
  R = correlation matrix of x'; v = unit eigenvector of R for its largest eigenvalue, with the
  sign fixed so that sum_j v_j > 0; w_j = v_j^2 (these sum to one because ||v|| = 1);
  score_i = sum_j w_j x'_ij. Squared loadings are a design choice: they give non-negative
  weights summing to one. A first component whose loadings have mixed signs (one indicator moves
  against the others) is flagged with ``warnings.warn``, as is a leading eigenvalue that is not
  unique (then v, and so the weights, are not identified).
- ``equal`` -- equal weights: w_j = 1/m; score_i = sum_j w_j x'_ij.

Rows with missing values are an error here: the caller handles missingness. Every method
returns a :class:`CompositeResult` with scores indexed like the data and weights indexed by
indicator, summing to one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import xlogy

__all__ = [
    "METHODS",
    "CompositeResult",
    "composite_index",
    "entropy_topsis",
    "entropy_weight",
    "equal_weights",
    "minmax_normalise",
    "pca_first_component",
    "topsis_closeness",
]

# Relative tolerance for "two leading eigenvalues are equal" and "a loading is zero" in PCA.
_PCA_TOL = 1e-10


@dataclass(frozen=True)
class CompositeResult:
    """Output of a weighting method.

    Attributes:
        scores: composite score of each row, indexed like the input data.
        weights: weight of each indicator, indexed by column name; they sum to one.
        method: the method's key in :data:`METHODS`.
        epsilon: the epsilon shift used in the normalisation.
    """

    scores: pd.Series
    weights: pd.Series
    method: str
    epsilon: float


def _check_epsilon(epsilon: float) -> float:
    epsilon = float(epsilon)
    if not np.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be a finite number >= 0, not {epsilon!r}")
    return epsilon


def _check_direction(column: object, directions: Mapping[str, int]) -> int:
    if column not in directions:
        raise ValueError(f"column {column!r} has no direction (+1 or -1) in `directions`")
    direction = directions[column]
    if isinstance(direction, bool) or direction not in (1, -1):
        raise ValueError(f"column {column!r}: direction must be +1 or -1, not {direction!r}")
    return int(direction)


def _validated_values(data: pd.DataFrame, directions: Mapping[str, int]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The data as a float matrix and the direction of each column, after every check."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if data.shape[1] == 0:
        raise ValueError("data has no indicator columns")
    if data.shape[0] < 2:
        raise ValueError(f"data has {data.shape[0]} row(s); min-max normalisation needs >= 2")
    if data.columns.has_duplicates:
        duplicated = sorted({str(c) for c in data.columns[data.columns.duplicated()]})
        raise ValueError(f"duplicated indicator columns: {duplicated}")
    signs = np.array([_check_direction(c, directions) for c in data.columns], dtype=float)
    values = np.empty(data.shape, dtype=float)
    for j, column in enumerate(data.columns):
        series = data[column]
        if not (pd.api.types.is_numeric_dtype(series) or series.dtype == object):
            raise ValueError(f"column {column!r} is not numeric (dtype {series.dtype})")
        try:
            col = series.to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError) as error:
            raise ValueError(f"column {column!r} is not numeric ({error})") from error
        missing = int(np.isnan(col).sum())
        if missing:
            raise ValueError(f"column {column!r} has {missing} missing (NaN) cell(s) out of "
                             f"{len(col)}; handle missing data before weighting")
        infinite = int(np.isinf(col).sum())
        if infinite:
            raise ValueError(f"column {column!r} has {infinite} infinite value(s)")
        if col.max() == col.min():
            raise ValueError(f"column {column!r} is constant (all values {col[0]!r}); "
                             "min-max normalisation is undefined")
        values[:, j] = col
    return values, signs


def _normalised_array(data: pd.DataFrame, directions: Mapping[str, int],
                      epsilon: float) -> np.ndarray:
    epsilon = _check_epsilon(epsilon)
    values, signs = _validated_values(data, directions)
    low, high = values.min(axis=0), values.max(axis=0)
    span = high - low
    positive = (values - low) / span
    negative = (high - values) / span
    return np.where(signs > 0, positive, negative) + epsilon


def minmax_normalise(data: pd.DataFrame, directions: Mapping[str, int],
                     epsilon: float = 1e-4) -> pd.DataFrame:
    """Min-max normalise every column over all rows, reversing negative indicators, plus epsilon.

    For a column j with direction +1: x'_ij = (x_ij - min_j) / (max_j - min_j) + epsilon;
    with direction -1 (negative indicator, reversed): x'_ij = (max_j - x_ij) / (max_j - min_j)
    + epsilon. min_j and max_j are over ALL rows of ``data`` (pass the whole panel). The result
    lies in [epsilon, 1 + epsilon]; the epsilon shift keeps the logarithms of the entropy method
    defined.

    Args:
        data: rows = observations (e.g. unit-years), columns = indicators; no missing values.
        directions: +1 or -1 for every column of ``data`` (keys for other columns are ignored).
        epsilon: the shift added after normalisation; finite and >= 0.

    Returns:
        A DataFrame with the index and columns of ``data``.

    Raises:
        ValueError: naming the column, if a column has no direction or one not in {+1, -1},
            is not numeric, contains NaN (with the count of missing cells) or +/-inf, or is
            constant; also if ``data`` has fewer than two rows or no columns, or epsilon < 0.
    """
    out = _normalised_array(data, directions, epsilon)
    return pd.DataFrame(out, index=data.index, columns=data.columns)


def _entropy_weights(normalised: np.ndarray) -> np.ndarray:
    """w_j = d_j / sum d_j, d_j = 1 - e_j, e_j = -(1/ln n) sum_i p_ij ln p_ij (0 ln 0 := 0)."""
    n = normalised.shape[0]
    p = normalised / normalised.sum(axis=0)
    entropy = -xlogy(p, p).sum(axis=0) / np.log(n)
    divergence = 1.0 - entropy
    return divergence / divergence.sum()


def _linear_scores(normalised: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return normalised @ weights


def _result(data: pd.DataFrame, scores: np.ndarray, weights: np.ndarray, method: str,
            epsilon: float) -> CompositeResult:
    return CompositeResult(
        scores=pd.Series(scores, index=data.index, name="score", dtype=float),
        weights=pd.Series(weights, index=data.columns, name="weight", dtype=float),
        method=method,
        epsilon=float(epsilon),
    )


def entropy_weight(data: pd.DataFrame, directions: Mapping[str, int],
                   epsilon: float = 1e-4) -> CompositeResult:
    """Entropy weight method on the min-max normalised matrix x' (see :func:`minmax_normalise`).

    p_ij = x'_ij / sum_i x'_ij;  e_j = -(1/ln n) sum_i p_ij ln p_ij;  d_j = 1 - e_j;
    w_j = d_j / sum_j d_j;  score_i = sum_j w_j x'_ij.

    Source: Shannon's entropy as an objective weighting rule, e.g. Zou, Yun & Sun (2006),
    "Entropy method for determination of weight of evaluating indicators in fuzzy synthetic
    evaluation for water quality assessment", J. Environ. Sci. 18(5):1020-1023. With
    epsilon = 0 the convention 0 ln 0 = 0 is used.
    """
    normalised = _normalised_array(data, directions, epsilon)
    weights = _entropy_weights(normalised)
    return _result(data, _linear_scores(normalised, weights), weights, "entropy", epsilon)


def entropy_topsis(data: pd.DataFrame, directions: Mapping[str, int],
                   epsilon: float = 1e-4) -> CompositeResult:
    """TOPSIS closeness with entropy weights.

    w_j = entropy weights (:func:`entropy_weight`); V_ij = w_j x'_ij; V+_j = max_i V_ij and
    V-_j = min_i V_ij (ideal and anti-ideal; all indicators are already oriented so larger is
    better); D+_i = sqrt(sum_j (V_ij - V+_j)^2), D-_i = sqrt(sum_j (V_ij - V-_j)^2);
    score_i = C_i = D-_i / (D+_i + D-_i), in [0, 1]. The returned weights are the entropy weights.

    Source: Hwang & Yoon (1981), Multiple Attribute Decision Making: Methods and Applications,
    Springer; entropy-weighted variant as in the Chinese regional-evaluation literature.
    """
    normalised = _normalised_array(data, directions, epsilon)
    weights = _entropy_weights(normalised)
    # D+ + D- > 0 for every row: no column is constant, so the ideal and anti-ideal differ.
    scores = topsis_closeness(normalised * weights)
    return _result(data, scores, weights, "entropy_topsis", epsilon)


def topsis_closeness(weighted: np.ndarray | pd.DataFrame, ideal: np.ndarray | None = None,
                     anti_ideal: np.ndarray | None = None) -> np.ndarray | pd.Series:
    """TOPSIS relative closeness C_i = D-_i / (D+_i + D-_i) of each row of a weighted matrix.

    ``weighted`` holds V_ij = w_j x'_ij (rows = alternatives, columns = indicators oriented so
    that larger is better); missing cells (NaN) are allowed. With O_i the indicators observed
    in row i:

        V+_j = max_i V_ij,  V-_j = min_i V_ij  (over the rows where j is observed);
        D+_i = sqrt(sum_{j in O_i} (V_ij - V+_j)^2),  D-_i = sqrt(sum_{j in O_i} (V_ij - V-_j)^2);
        C_i = D-_i / (D+_i + D-_i), in [0, 1] (1 at the ideal, 0 at the anti-ideal).

    A missing indicator is left out of both distances (not counted as 0). C_i is NaN where row
    i has no observed indicator, or where D+_i + D-_i = 0 (every observed indicator of the row
    is constant across rows).

    ``ideal`` and ``anti_ideal`` replace V+ and V- (e.g. the points of a reference sample, so
    that rows outside it are scored against the same ideals).

    Source: Hwang & Yoon (1981), Multiple Attribute Decision Making: Methods and Applications,
    Springer, section on TOPSIS; distances over the observed indicators as in
    ``analysis.stages.indices.composite_with_missing``.

    Returns:
        A float array of length n, or a Series indexed like ``weighted`` if it is a DataFrame.
    """
    index = weighted.index if isinstance(weighted, pd.DataFrame) else None
    values = np.asarray(weighted, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"weighted must be a 2-D matrix (rows x indicators), not "
                         f"{values.ndim}-D")
    if np.isinf(values).any():
        raise ValueError("weighted has infinite values")
    observed = ~np.isnan(values)
    best = (np.where(observed, values, -np.inf).max(axis=0) if ideal is None
            else np.asarray(ideal, dtype=float))
    worst = (np.where(observed, values, np.inf).min(axis=0) if anti_ideal is None
             else np.asarray(anti_ideal, dtype=float))
    d_best = np.sqrt(np.where(observed, (values - best) ** 2, 0.0).sum(axis=1))
    d_worst = np.sqrt(np.where(observed, (values - worst) ** 2, 0.0).sum(axis=1))
    total = d_best + d_worst
    usable = observed.any(axis=1) & (total > 0)
    closeness = np.full(values.shape[0], np.nan)
    closeness[usable] = d_worst[usable] / total[usable]
    return closeness if index is None else pd.Series(closeness, index=index, dtype=float)


def pca_first_component(data: pd.DataFrame, directions: Mapping[str, int],
                        epsilon: float = 1e-4) -> CompositeResult:
    """Weights from the first principal component of the correlation matrix of x'.

    R = corr(x') (Pearson, columns); v = unit eigenvector of R for the largest eigenvalue, sign
    fixed so that sum_j v_j > 0; w_j = v_j^2 (sum to one since ||v|| = 1, renormalised against
    rounding); score_i = sum_j w_j x'_ij. As correlations are invariant to positive affine maps,
    R is the correlation matrix of the direction-oriented raw indicators.

    Design choice: squared loadings give non-negative weights that sum to one (a common
    convention for PCA composites; cf. OECD/JRC 2008, Handbook on Constructing Composite
    Indicators, section 6.1, which uses squared, scaled factor loadings). Because squaring hides
    the sign, a first component with loadings of mixed sign emits a ``UserWarning`` naming the
    loadings; a leading eigenvalue that is not unique (first component not identified) also
    emits a ``UserWarning``.
    """
    normalised = _normalised_array(data, directions, epsilon)
    m = normalised.shape[1]
    if m == 1:
        leading = np.ones(1)
    else:
        correlation = np.corrcoef(normalised, rowvar=False)
        eigenvalues, eigenvectors = np.linalg.eigh(correlation)  # ascending eigenvalues
        leading = eigenvectors[:, -1]
        if eigenvalues[-1] - eigenvalues[-2] <= _PCA_TOL * max(eigenvalues[-1], 1.0):
            warnings.warn("first principal component is not unique (leading eigenvalue "
                          f"{eigenvalues[-1]:.6g} repeated); PCA weights are not identified",
                          UserWarning, stacklevel=2)
        if leading.sum() < 0:
            leading = -leading
        if (leading > _PCA_TOL).any() and (leading < -_PCA_TOL).any():
            loadings = ", ".join(f"{c}={v:+.3f}"
                                 for c, v in zip(data.columns, leading, strict=True))
            warnings.warn(f"first principal component has loadings of mixed sign ({loadings}); "
                          "squared-loading weights hide the opposing indicator(s)",
                          UserWarning, stacklevel=2)
    weights = leading**2
    weights = weights / weights.sum()
    return _result(data, _linear_scores(normalised, weights), weights, "pca", epsilon)


def equal_weights(data: pd.DataFrame, directions: Mapping[str, int],
                  epsilon: float = 1e-4) -> CompositeResult:
    """Equal weights: w_j = 1/m; score_i = sum_j w_j x'_ij (the mean of the normalised row)."""
    normalised = _normalised_array(data, directions, epsilon)
    weights = np.full(normalised.shape[1], 1.0 / normalised.shape[1])
    return _result(data, _linear_scores(normalised, weights), weights, "equal", epsilon)


Method = Callable[[pd.DataFrame, Mapping[str, int], float], CompositeResult]

METHODS: dict[str, Method] = {
    "entropy": entropy_weight,
    "entropy_topsis": entropy_topsis,
    "pca": pca_first_component,
    "equal": equal_weights,
}


def composite_index(data: pd.DataFrame, directions: Mapping[str, int], method: str = "entropy",
                    epsilon: float = 1e-4) -> CompositeResult:
    """Composite index of ``data`` with one of :data:`METHODS` ("entropy", "entropy_topsis",
    "pca", "equal").

    Raises:
        ValueError: if ``method`` is unknown (the message lists the valid methods), or from
            :func:`minmax_normalise` if the data are unusable.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[method](data, directions, epsilon)
