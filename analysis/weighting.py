"""Composite-index weighting methods (METHODS.md section 4), as pure functions.

Every method works on the same normalised matrix:

    x'_ij = (x_ij - min_j) / (max_j - min_j) + epsilon        for a positive indicator j,
    x'_ij = (max_j - x_ij) / (max_j - min_j) + epsilon        for a negative indicator j,

with min and max taken over ALL rows passed in (the caller passes the whole panel, so scores
compare over time) and an explicit epsilon shift so that ln(p) is defined. Each method returns
the scores and the weights (summing to one).

- Entropy weight (Shannon entropy; e.g. Zou, Yun & Sun 2006, J. Environ. Sci. 18(5)):
  p_ij = x'_ij / sum_i x'_ij; e_j = -(1/ln n) sum_i p_ij ln p_ij; d_j = 1 - e_j;
  w_j = d_j / sum_j d_j; score_i = sum_j w_j x'_ij.
- Entropy-TOPSIS (Hwang & Yoon 1981): V = w_j x'_ij with entropy weights; D+_i and D-_i the
  Euclidean distances to the column maxima and minima; closeness C_i = D-_i / (D+_i + D-_i).
- PCA, first component: the leading unit eigenvector v of the correlation matrix of x'
  (sign fixed so that sum(v) > 0); w_j = v_j^2, which sum to one; score_i = sum_j w_j x'_ij.
  A first component with loadings of mixed sign is flagged with a warning, because squared
  loadings then hide an indicator that moves against the others.
- Equal weights: w_j = 1/m; score_i = sum_j w_j x'_ij.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class CompositeResult:
    """Scores (indexed like the data) and weights (indexed by indicator)."""

    scores: pd.Series
    weights: pd.Series
    method: str
    epsilon: float


def _check(data: pd.DataFrame, directions: Mapping[str, int]) -> None:
    for column in data.columns:
        if column not in directions:
            raise ValueError(f"column {column!r} has no direction (+1 or -1)")
        if directions[column] not in (1, -1):
            raise ValueError(f"column {column!r}: direction must be +1 or -1, "
                             f"not {directions[column]!r}")
        values = pd.to_numeric(data[column], errors="coerce")
        missing = int(values.isna().sum())
        if missing:
            raise ValueError(f"column {column!r} has {missing} missing cells; handle missing "
                             "data before weighting")
        if not np.isfinite(values.to_numpy(dtype=float)).all():
            raise ValueError(f"column {column!r} has infinite values")
        if values.max() == values.min():
            raise ValueError(f"column {column!r} is constant; min-max normalisation is undefined")


def minmax_normalise(data: pd.DataFrame, directions: Mapping[str, int],
                     epsilon: float = 1e-4) -> pd.DataFrame:
    """Min–max normalisation over all rows, negative indicators reversed, plus epsilon."""
    _check(data, directions)
    values = data.astype(float)
    low, high = values.min(), values.max()
    span = high - low
    out = pd.DataFrame(index=data.index)
    for column in data.columns:
        if directions[column] == 1:
            out[column] = (values[column] - low[column]) / span[column]
        else:
            out[column] = (high[column] - values[column]) / span[column]
    return out + epsilon


def _entropy_weights(normalised: pd.DataFrame) -> pd.Series:
    n = len(normalised)
    if n < 2:
        raise ValueError("entropy weights need at least two rows")
    p = normalised / normalised.sum()
    entropy = -(p * np.log(p)).sum() / np.log(n)
    divergence = 1 - entropy
    return divergence / divergence.sum()


def entropy_weight(data: pd.DataFrame, directions: Mapping[str, int],
                   epsilon: float = 1e-4) -> CompositeResult:
    normalised = minmax_normalise(data, directions, epsilon)
    weights = _entropy_weights(normalised)
    scores = normalised.mul(weights, axis=1).sum(axis=1)
    return CompositeResult(scores, weights, "entropy", epsilon)


def entropy_topsis(data: pd.DataFrame, directions: Mapping[str, int],
                   epsilon: float = 1e-4) -> CompositeResult:
    normalised = minmax_normalise(data, directions, epsilon)
    weights = _entropy_weights(normalised)
    weighted = normalised.mul(weights, axis=1)
    d_best = np.sqrt(((weighted - weighted.max()) ** 2).sum(axis=1))
    d_worst = np.sqrt(((weighted - weighted.min()) ** 2).sum(axis=1))
    scores = d_worst / (d_best + d_worst)
    return CompositeResult(scores, weights, "entropy_topsis", epsilon)


def pca_first_component(data: pd.DataFrame, directions: Mapping[str, int],
                        epsilon: float = 1e-4) -> CompositeResult:
    normalised = minmax_normalise(data, directions, epsilon)
    correlation = np.corrcoef(normalised.to_numpy(), rowvar=False)
    correlation = np.atleast_2d(correlation)
    eigenvalues, eigenvectors = np.linalg.eigh(correlation)
    leading = eigenvectors[:, np.argmax(eigenvalues)]
    if leading.sum() < 0:
        leading = -leading
    if (leading > 1e-12).any() and (leading < -1e-12).any():
        warnings.warn("first principal component has loadings of mixed sign: "
                      + ", ".join(f"{c}={v:+.3f}" for c, v in zip(data.columns, leading,
                                                                     strict=True)),
                      stacklevel=2)
    weights = pd.Series(leading ** 2, index=data.columns)
    weights = weights / weights.sum()
    scores = normalised.mul(weights, axis=1).sum(axis=1)
    return CompositeResult(scores, weights, "pca", epsilon)


def equal_weights(data: pd.DataFrame, directions: Mapping[str, int],
                  epsilon: float = 1e-4) -> CompositeResult:
    normalised = minmax_normalise(data, directions, epsilon)
    weights = pd.Series(1.0 / data.shape[1], index=data.columns)
    scores = normalised.mul(weights, axis=1).sum(axis=1)
    return CompositeResult(scores, weights, "equal", epsilon)


METHODS: dict[str, Callable[..., CompositeResult]] = {
    "entropy": entropy_weight,
    "entropy_topsis": entropy_topsis,
    "pca": pca_first_component,
    "equal": equal_weights,
}


def composite_index(data: pd.DataFrame, directions: Mapping[str, int], method: str = "entropy",
                    epsilon: float = 1e-4) -> CompositeResult:
    """Dispatch to one of :data:`METHODS`."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    return METHODS[method](data, directions, epsilon)
