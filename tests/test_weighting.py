"""Weighting methods against hand computations on a 3 units × 3 indicators matrix.

Data: x1 = [1, 2, 4] (+), x2 = [10, 30, 20] (+), x3 = [5, 3, 1] (−), epsilon = 0.01.
Normalised by hand: x1' = [0, 1/3, 1] + ε, x2' = [0, 1, 1/2] + ε, x3' = [0, 1/2, 1] + ε.
The expected weights and scores below were computed with plain arithmetic (Python's math
module, power iteration for the eigenvector), independently of analysis.weighting.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import weighting

EPS = 0.01
DATA = pd.DataFrame({"x1": [1.0, 2.0, 4.0], "x2": [10.0, 30.0, 20.0], "x3": [5.0, 3.0, 1.0]},
                    index=["A", "B", "C"])
DIRECTIONS = {"x1": 1, "x2": 1, "x3": -1}

EXPECTED = {
    "entropy": ([0.366911691475, 0.316544154263, 0.316544154263],
                [0.010000000000, 0.607120128552, 0.851727922869]),
    "entropy_topsis": ([0.366911691475, 0.316544154263, 0.316544154263],
                       [0.000000000000, 0.562404955834, 0.763083802841]),
    "pca": ([0.389180906854, 0.179752506152, 0.431066586994],
            [0.010000000000, 0.535012768600, 0.920123746924]),
    "equal": ([1 / 3, 1 / 3, 1 / 3], [0.010000000000, 0.621111111111, 0.843333333333]),
}


def test_normalisation_by_hand():
    out = weighting.minmax_normalise(DATA, DIRECTIONS, EPS)
    np.testing.assert_allclose(out["x1"], np.array([0, 1 / 3, 1]) + EPS, rtol=1e-12)
    np.testing.assert_allclose(out["x2"], np.array([0, 1, 0.5]) + EPS, rtol=1e-12)
    np.testing.assert_allclose(out["x3"], np.array([0, 0.5, 1]) + EPS, rtol=1e-12)


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_weights_and_scores_match_hand_computation(method):
    result = weighting.composite_index(DATA, DIRECTIONS, method, EPS)
    weights, scores = EXPECTED[method]
    np.testing.assert_allclose(result.weights.to_numpy(), weights, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(result.scores.to_numpy(), scores, rtol=1e-9, atol=1e-12)
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert list(result.scores.index) == ["A", "B", "C"]


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_invariant_to_rescaling_and_shifting_an_indicator(method):
    base = weighting.composite_index(DATA, DIRECTIONS, method, EPS)
    rescaled = DATA.assign(x2=DATA["x2"] * 1000 + 7, x3=DATA["x3"] / 3)
    other = weighting.composite_index(rescaled, DIRECTIONS, method, EPS)
    np.testing.assert_allclose(other.scores, base.scores, rtol=1e-12)
    np.testing.assert_allclose(other.weights, base.weights, rtol=1e-12)


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_reversing_a_negative_indicator(method):
    """x3 with direction −1 is the same as −x3 with direction +1."""
    base = weighting.composite_index(DATA, DIRECTIONS, method, EPS)
    flipped = weighting.composite_index(DATA.assign(x3=-DATA["x3"]),
                                        {"x1": 1, "x2": 1, "x3": 1}, method, EPS)
    np.testing.assert_allclose(flipped.scores, base.scores, rtol=1e-12)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="column 'x2' has 1 missing cells"):
        weighting.entropy_weight(DATA.assign(x2=[1.0, np.nan, 2.0]), DIRECTIONS)
    with pytest.raises(ValueError, match="column 'x1' is constant"):
        weighting.entropy_weight(DATA.assign(x1=1.0), DIRECTIONS)
    with pytest.raises(ValueError, match="unknown method 'ahp'"):
        weighting.composite_index(DATA, DIRECTIONS, "ahp")
    with pytest.raises(ValueError, match="column 'x3' has no direction"):
        weighting.entropy_weight(DATA, {"x1": 1, "x2": 1})


def test_pca_warns_on_mixed_sign_loadings():
    data = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [2.0, 4, 5, 9], "c": [4.0, 3, 2, 1.5]})
    with pytest.warns(UserWarning, match="mixed sign"):
        weighting.pca_first_component(data, {"a": 1, "b": 1, "c": 1})
