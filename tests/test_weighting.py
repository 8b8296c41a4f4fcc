"""Weighting methods against hand computations on a 3 units x 3 indicators matrix.

Data (epsilon = 1e-4, the default):

    unit  x1 (+)  x2 (+)  x3 (-)
    A       1      13      9
    B       3      10      4
    C       6      20      5

Normalised by hand: x1' = [0, 2/5, 1] + eps, x2' = [3/10, 0, 1] + eps,
x3' = (9 - x3)/5 = [0, 1, 4/5] + eps. No unit is worst on every indicator, and the three
indicators are positively correlated, so the first principal component has loadings of one sign.

The expected weights and scores were computed in a separate scratch script in plain Python
(fractions for x', math.log / math.sqrt for entropy and TOPSIS, Pearson correlations by hand,
and the leading eigenvector both by power iteration and in closed form -- with 3 rows R has
rank 2, so lambda_1 = (3 + sqrt(9 - 4 (3 - r12^2 - r13^2 - r23^2))) / 2 and v is the cross
product of two rows of R - lambda_1 I), independently of numpy and analysis.measures.weighting.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.measures import weighting

EPS = 1e-4
DATA = pd.DataFrame({"x1": [1.0, 3.0, 6.0], "x2": [13.0, 10.0, 20.0], "x3": [9.0, 4.0, 5.0]},
                    index=pd.Index(["A", "B", "C"], name="unit"))
DIRECTIONS = {"x1": 1, "x2": 1, "x3": -1}

NORMALISED = np.array([
    [0.0001, 0.3001, 0.0001],
    [0.4001, 0.0001, 1.0001],
    [1.0001, 1.0001, 0.8001],
])

# method: (weights of x1, x2, x3; scores of A, B, C)
EXPECTED = {
    "entropy": ([0.3402634689788, 0.3797586472613, 0.2799778837600],
                [0.1140275941784, 0.4161832713515, 0.9441044232480]),
    "entropy_topsis": ([0.3402634689788, 0.3797586472613, 0.2799778837600],
                       [0.1812555288542, 0.4192888023439, 0.9086411782917]),
    "pca": ([0.4910138189016, 0.2826360632899, 0.2263501178085],
            [0.08489081898696, 0.4228556453692, 0.9548299764383]),
    "equal": ([1 / 3, 1 / 3, 1 / 3],
              [0.1001000000000, 0.4667666666667, 0.9334333333333]),
}
RTOL = 1e-8


def test_metadata_of_methods():
    assert set(weighting.METHODS) == {"entropy", "entropy_topsis", "pca", "equal"}
    assert set(EXPECTED) == set(weighting.METHODS)


def test_minmax_normalise_by_hand():
    out = weighting.minmax_normalise(DATA, DIRECTIONS)  # default epsilon = 1e-4
    assert list(out.columns) == ["x1", "x2", "x3"]
    assert out.index.equals(DATA.index)
    np.testing.assert_allclose(out.to_numpy(), NORMALISED, rtol=RTOL, atol=0)


def test_minmax_normalise_epsilon_shift_and_range():
    out = weighting.minmax_normalise(DATA, DIRECTIONS, epsilon=0.5)
    np.testing.assert_allclose(out.to_numpy(), NORMALISED - EPS + 0.5, rtol=RTOL, atol=0)
    assert out.min().tolist() == pytest.approx([0.5, 0.5, 0.5])
    assert out.max().tolist() == pytest.approx([1.5, 1.5, 1.5])


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_weights_and_scores_match_hand_computation(method):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the example must not trigger the PCA warnings
        result = weighting.composite_index(DATA, DIRECTIONS, method, EPS)
    weights, scores = EXPECTED[method]
    assert isinstance(result, weighting.CompositeResult)
    assert result.method == method and result.epsilon == EPS
    assert result.weights.index.tolist() == ["x1", "x2", "x3"]
    assert result.scores.index.equals(DATA.index)
    np.testing.assert_allclose(result.weights.to_numpy(), weights, rtol=RTOL, atol=0)
    np.testing.assert_allclose(result.scores.to_numpy(), scores, rtol=RTOL, atol=0)
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("method", ["entropy", "pca", "equal"])
def test_linear_scores_are_weighted_sums_of_the_normalised_matrix(method):
    weights, scores = EXPECTED[method]
    np.testing.assert_allclose(NORMALISED @ np.array(weights), scores, rtol=RTOL, atol=0)


def test_direct_functions_equal_dispatcher():
    functions = {"entropy": weighting.entropy_weight, "entropy_topsis": weighting.entropy_topsis,
                 "pca": weighting.pca_first_component, "equal": weighting.equal_weights}
    for method, function in functions.items():
        direct = function(DATA, DIRECTIONS)
        dispatched = weighting.composite_index(DATA, DIRECTIONS, method=method)
        pd.testing.assert_series_equal(direct.scores, dispatched.scores)
        pd.testing.assert_series_equal(direct.weights, dispatched.weights)
    default = weighting.composite_index(DATA, DIRECTIONS)
    assert default.method == "entropy" and default.epsilon == 1e-4


def test_entropy_with_zero_epsilon_uses_0_ln_0_convention():
    result = weighting.entropy_weight(DATA, DIRECTIONS, epsilon=0.0)
    np.testing.assert_allclose(result.weights.to_numpy(),
                               [0.3402762308115, 0.3797657470347, 0.2799580221538],
                               rtol=RTOL, atol=0)
    np.testing.assert_allclose(result.scores.to_numpy(),
                               [0.1139297241104, 0.4160685144784, 0.9440083955692],
                               rtol=RTOL, atol=0)


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_invariant_to_rescaling_and_shifting_an_indicator(method):
    base = weighting.composite_index(DATA, DIRECTIONS, method, EPS)
    variants = [
        DATA.assign(x2=DATA["x2"] * 1000.0),  # positive rescaling
        DATA.assign(x1=DATA["x1"] + 7.0, x3=DATA["x3"] - 50.0),  # adding constants
        DATA.assign(x2=DATA["x2"] * 0.25 + 3.0, x3=DATA["x3"] / 3.0),  # both
    ]
    for variant in variants:
        other = weighting.composite_index(variant, DIRECTIONS, method, EPS)
        np.testing.assert_allclose(other.scores, base.scores, rtol=1e-10, atol=0)
        np.testing.assert_allclose(other.weights, base.weights, rtol=1e-10, atol=0)


@pytest.mark.parametrize("method", sorted(EXPECTED))
def test_reversing_a_negative_indicator(method):
    """x3 with direction -1 is the same as -x3 with direction +1."""
    base = weighting.composite_index(DATA, DIRECTIONS, method, EPS)
    flipped_data = DATA.assign(x3=-DATA["x3"])
    flipped_directions = {"x1": 1, "x2": 1, "x3": 1}
    flipped = weighting.composite_index(flipped_data, flipped_directions, method, EPS)
    np.testing.assert_allclose(flipped.scores, base.scores, rtol=1e-12, atol=0)
    np.testing.assert_allclose(flipped.weights, base.weights, rtol=1e-12, atol=0)
    np.testing.assert_allclose(weighting.minmax_normalise(flipped_data, flipped_directions),
                               NORMALISED, rtol=RTOL, atol=0)


def test_direction_matters():
    """Treating x3 as a positive indicator changes the normalised column and the scores."""
    out = weighting.minmax_normalise(DATA, {"x1": 1, "x2": 1, "x3": 1})
    np.testing.assert_allclose(out["x3"], [1.0001, 0.0001, 0.2001], rtol=RTOL, atol=0)
    scores = weighting.equal_weights(DATA, {"x1": 1, "x2": 1, "x3": 1}).scores
    np.testing.assert_allclose(scores, [0.4334333333333, 0.1334333333333, 0.7334333333333],
                               rtol=RTOL, atol=0)


def test_extra_directions_are_ignored():
    directions = DIRECTIONS | {"unused": -1}
    result = weighting.entropy_weight(DATA, directions)
    np.testing.assert_allclose(result.scores, EXPECTED["entropy"][1], rtol=RTOL, atol=0)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"column 'x2' has 2 missing \(NaN\) cell\(s\) out of 3"):
        weighting.entropy_weight(DATA.assign(x2=[np.nan, 1.0, np.nan]), DIRECTIONS)
    with pytest.raises(ValueError, match="column 'x3' has 1 missing"):
        weighting.composite_index(DATA.assign(x3=[1.0, None, 2.0]), DIRECTIONS, "pca")
    with pytest.raises(ValueError, match=r"column 'x1' has 1 infinite value\(s\)"):
        weighting.equal_weights(DATA.assign(x1=[1.0, np.inf, 2.0]), DIRECTIONS)
    with pytest.raises(ValueError, match="column 'x1' is constant"):
        weighting.entropy_weight(DATA.assign(x1=4.0), DIRECTIONS)
    with pytest.raises(ValueError, match="column 'x3' has no direction"):
        weighting.entropy_topsis(DATA, {"x1": 1, "x2": 1})
    with pytest.raises(ValueError, match="column 'x2': direction must be \\+1 or -1, not 0"):
        weighting.minmax_normalise(DATA, {"x1": 1, "x2": 0, "x3": -1})
    with pytest.raises(ValueError, match="column 'x2': direction must be \\+1 or -1, not 2"):
        weighting.minmax_normalise(DATA, {"x1": 1, "x2": 2, "x3": -1})
    with pytest.raises(ValueError, match="column 'x1' is not numeric"):
        weighting.minmax_normalise(DATA.assign(x1=["a", "b", "c"]), DIRECTIONS)
    with pytest.raises(ValueError, match="epsilon must be a finite number >= 0"):
        weighting.minmax_normalise(DATA, DIRECTIONS, epsilon=-1e-4)
    with pytest.raises(ValueError, match="needs >= 2"):
        weighting.minmax_normalise(DATA.iloc[:1], DIRECTIONS)


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError,
                       match="unknown method 'ahp'; valid methods: entropy, entropy_topsis, "
                             "pca, equal"):
        weighting.composite_index(DATA, DIRECTIONS, "ahp")


def test_pca_warns_on_mixed_sign_loadings():
    data = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [2.0, 4, 5, 9], "c": [4.0, 3, 2, 1.5]})
    with pytest.warns(UserWarning, match="mixed sign"):
        result = weighting.pca_first_component(data, {"a": 1, "b": 1, "c": 1})
    assert result.weights.sum() == pytest.approx(1.0, abs=1e-12)
    # Reversing the opposing indicator removes the warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weighting.pca_first_component(data, {"a": 1, "b": 1, "c": -1})


def test_pca_warns_when_first_component_is_not_unique():
    data = pd.DataFrame({"a": [0.0, 1.0, 0.0, 1.0], "b": [0.0, 0.0, 1.0, 1.0]})  # r = 0
    with pytest.warns(UserWarning, match="not unique"):
        weighting.pca_first_component(data, {"a": 1, "b": 1})


def test_single_indicator_gets_weight_one():
    data = DATA[["x3"]]
    for method in weighting.METHODS:
        result = weighting.composite_index(data, {"x3": -1}, method)
        assert result.weights.tolist() == pytest.approx([1.0], abs=1e-15)
    scores = weighting.equal_weights(data, {"x3": -1}).scores
    np.testing.assert_allclose(scores, [0.0001, 1.0001, 0.8001], rtol=RTOL, atol=0)


# --------------------------------------------------------------------------- non-square (n != m)
# 5 rows x 3 indicators, so that ln n (rows, correct) and ln m (indicators, wrong) differ:
#
#     row  y1 (+)  y2 (+)  y3 (-)
#     P      2       5      30
#     Q      4       9      10
#     R      7       6      20
#     S     10       1      40
#     T     12       3      15
#
# By hand (epsilon = 1e-4): y1' = [0, .2, .5, .8, 1] + eps, y2' = [.5, 1, .625, 0, .25] + eps,
# y3' = (40 - y3)/30 = [1/3, 1, 2/3, 0, 5/6] + eps. Weights and scores computed in a scratch
# script in plain Python (fractions for x', math.log, math.sqrt), independently of numpy and
# analysis.measures.weighting. Normalising the entropy by ln m = ln 3 instead of ln n = ln 5 would give
# weights [0.27981, 0.32522, 0.39497] -- far from the ones below.
WIDE = pd.DataFrame({"y1": [2.0, 4.0, 7.0, 10.0, 12.0], "y2": [5.0, 9.0, 6.0, 1.0, 3.0],
                     "y3": [30.0, 10.0, 20.0, 40.0, 15.0]},
                    index=pd.Index(list("PQRST"), name="unit"))
WIDE_DIRECTIONS = {"y1": 1, "y2": 1, "y3": -1}
WIDE_ENTROPY_WEIGHTS = [0.36422019194139665, 0.3380178449960075, 0.29776196306259584]
WIDE_ENTROPY_SCORES = [0.2683629101855357, 0.7087238464468826, 0.5919792244682669,
                       0.29147615355311735, 0.6969596224092284]
WIDE_TOPSIS_SCORES = [0.30438735585369164, 0.6102994239890126, 0.5847916479728701,
                      0.38970057601098745, 0.6346519936076861]


def test_entropy_weights_normalise_by_ln_of_the_number_of_rows():
    result = weighting.entropy_weight(WIDE, WIDE_DIRECTIONS)
    assert WIDE.shape == (5, 3)  # n != m: ln n and ln m differ
    np.testing.assert_allclose(result.weights.to_numpy(), WIDE_ENTROPY_WEIGHTS, rtol=RTOL, atol=0)
    np.testing.assert_allclose(result.scores.to_numpy(), WIDE_ENTROPY_SCORES, rtol=RTOL, atol=0)


def test_entropy_topsis_on_a_non_square_matrix():
    result = weighting.entropy_topsis(WIDE, WIDE_DIRECTIONS)
    np.testing.assert_allclose(result.weights.to_numpy(), WIDE_ENTROPY_WEIGHTS, rtol=RTOL, atol=0)
    np.testing.assert_allclose(result.scores.to_numpy(), WIDE_TOPSIS_SCORES, rtol=RTOL, atol=0)


def test_topsis_closeness_by_hand_with_missing_cells():
    """V = [[1, 4], [3, NaN], [2, 0], [NaN, NaN]]: V+ = (3, 4), V- = (1, 0) over observed cells.

    Row 0: D+ = sqrt(2^2 + 0) = 2, D- = sqrt(0 + 4^2) = 4, C = 4/6. Row 1 (second indicator
    missing, left out, not taken as 0): D+ = 0, D- = 2, C = 1. Row 2: D+ = sqrt(1 + 16),
    D- = 1, C = 1/(1 + sqrt 17). Row 3: nothing observed, C = NaN.
    """
    weighted = pd.DataFrame({"a": [1.0, 3.0, 2.0, np.nan], "b": [4.0, np.nan, 0.0, np.nan]},
                            index=list("wxyz"))
    closeness = weighting.topsis_closeness(weighted)
    assert closeness.index.tolist() == list("wxyz")
    np.testing.assert_allclose(closeness.to_numpy()[:3], [4 / 6, 1.0, 1 / (1 + np.sqrt(17))],
                               rtol=1e-14, atol=0)
    assert np.isnan(closeness.iloc[3])
    as_array = weighting.topsis_closeness(weighted.to_numpy())
    assert isinstance(as_array, np.ndarray)
    np.testing.assert_array_equal(as_array, closeness.to_numpy())
    with pytest.raises(ValueError, match="2-D"):
        weighting.topsis_closeness(np.ones(3))
