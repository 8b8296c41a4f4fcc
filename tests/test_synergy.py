"""Coupling coordination, Grubel-Lloyd, trade complementarity and intensity on known values.

Expected values were computed by hand / with Python's math module in a separate scratch script.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.measures import synergy

RTOL = 1e-12


def test_coupling_degrees_on_known_values():
    # u1 = 0.2, u2 = 0.8: textbook C = 2*sqrt(0.16)/1 = 0.8;
    # corrected C = sqrt((1 - 0.6) * 0.2/0.8) = sqrt(0.1)
    assert synergy.coupling_degree_textbook(0.2, 0.8) == pytest.approx(0.8, rel=RTOL)
    assert synergy.coupling_degree_corrected(0.2, 0.8) == pytest.approx(0.3162277660168379,
                                                                        rel=RTOL)
    assert synergy.coupling_degree_corrected(0.2, 0.8) == pytest.approx(math.sqrt(0.1), rel=RTOL)
    # equal subsystems couple perfectly under both
    assert synergy.coupling_degree_textbook(0.5, 0.5) == pytest.approx(1.0, rel=RTOL)
    assert synergy.coupling_degree_corrected(0.5, 0.5) == pytest.approx(1.0, rel=RTOL)
    # symmetric in u1, u2
    assert synergy.coupling_degree_corrected(0.8, 0.2) == pytest.approx(0.3162277660168379,
                                                                        rel=RTOL)


def test_coupling_coordination_on_known_values():
    # D = sqrt(C*T), T = 0.5*u1 + 0.5*u2
    assert synergy.coupling_coordination(0.2, 0.8) == pytest.approx(0.3976353643835253, rel=RTOL)
    assert synergy.coupling_coordination(0.2, 0.8, corrected=False) == pytest.approx(
        0.6324555320336759, rel=RTOL)  # sqrt(0.8 * 0.5) = sqrt(0.4)
    assert synergy.coupling_coordination(0.5, 0.5) == pytest.approx(0.7071067811865476, rel=RTOL)
    assert synergy.coupling_coordination(0.5, 0.5, corrected=False) == pytest.approx(
        0.7071067811865476, rel=RTOL)
    assert synergy.coupling_coordination(0.3, 0.5) == pytest.approx(0.526429605180997, rel=RTOL)
    assert synergy.coupling_coordination(0.3, 0.5, corrected=False) == pytest.approx(
        0.6223329772884784, rel=RTOL)
    # alpha = 0.3: T = 0.3*0.2 + 0.7*0.8 = 0.62
    assert synergy.coupling_coordination(0.2, 0.8, alpha=0.3) == pytest.approx(
        0.44278800224310444, rel=RTOL)
    assert synergy.coupling_coordination(0.2, 0.8, corrected=False, alpha=0.3) == pytest.approx(
        0.7042726744663603, rel=RTOL)


def test_textbook_c_piles_up_near_one():
    """u2 = 0.5 and u1 = 0.1 .. 0.5: the textbook C is above 0.9 from u1 = 0.2 on."""
    u1 = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    textbook = synergy.coupling_degree_textbook(u1, 0.5)
    corrected = synergy.coupling_degree_corrected(u1, 0.5)
    np.testing.assert_allclose(
        textbook, [0.7453559924999299, 0.9035079029052513, 0.9682458365518543,
                   0.9938079899999065, 1.0], rtol=RTOL)
    np.testing.assert_allclose(
        corrected, [0.34641016151377546, 0.529150262212918, 0.6928203230275509,
                    0.8485281374238571, 1.0], rtol=RTOL)
    # 0.3 and 0.5: textbook 2*sqrt(0.15)/0.8 = 0.968; corrected sqrt(0.8*0.6) = 0.693
    assert textbook[2] == pytest.approx(0.9682458366, abs=1e-10)
    assert corrected[2] == pytest.approx(0.6928203230, abs=1e-10)


def test_coupling_vectorised_zero_nan_and_shapes():
    u1 = np.array([0.0, 0.1, np.nan, 0.0])
    u2 = np.array([0.0, 0.4, 0.3, 0.7])
    corrected = synergy.coupling_degree_corrected(u1, u2)
    textbook = synergy.coupling_degree_textbook(u1, u2)
    assert corrected.shape == (4,) and textbook.shape == (4,)
    assert corrected[0] == 0.0 and textbook[0] == 0.0  # both zero: C := 0
    assert corrected[1] == pytest.approx(0.4183300132670377, rel=RTOL)  # sqrt(0.7 * 0.25)
    assert textbook[1] == pytest.approx(0.8, rel=RTOL)  # 2*sqrt(0.04)/0.5
    assert np.isnan(corrected[2]) and np.isnan(textbook[2])
    assert corrected[3] == 0.0 and textbook[3] == 0.0  # one subsystem absent
    d = synergy.coupling_coordination(u1, u2)
    assert d[0] == 0.0 and np.isnan(d[2]) and d[3] == 0.0
    assert d[1] == pytest.approx(math.sqrt(0.4183300132670377 * 0.25), rel=RTOL)
    grid = synergy.coupling_degree_corrected(np.full((2, 3), 0.5), np.full((2, 3), 0.5))
    assert grid.shape == (2, 3) and np.allclose(grid, 1.0)
    assert isinstance(synergy.coupling_degree_corrected(0.2, 0.8), float)


def test_coupling_keeps_a_series_index():
    index = pd.Index(["THA", "VNM"], name="iso3")
    d = synergy.coupling_coordination(pd.Series([0.2, 0.5], index=index),
                                      pd.Series([0.8, 0.5], index=index))
    assert isinstance(d, pd.Series) and d.index.equals(index)
    np.testing.assert_allclose(d, [0.3976353643835253, 0.7071067811865476], rtol=RTOL)
    with pytest.raises(ValueError, match="different indexes"):
        synergy.coupling_degree_corrected(pd.Series([0.2, 0.5], index=index),
                                          pd.Series([0.8, 0.5], index=["A", "B"]))


def test_coupling_rejects_values_outside_unit_interval():
    with pytest.raises(ValueError, match=r"u1: subsystem scores must lie in \[0, 1\]"):
        synergy.coupling_coordination(1.2, 0.5)
    with pytest.raises(ValueError, match=r"u2: subsystem scores must lie in \[0, 1\]"):
        synergy.coupling_degree_corrected(0.5, np.array([0.1, -0.01]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        synergy.coupling_degree_textbook(np.inf, 0.5)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        synergy.coupling_coordination(0.2, 0.8, alpha=1.5)


def test_grubel_lloyd_two_products():
    # exports [10, 0], imports [4, 6]: 1 - (6 + 6)/20 = 0.4
    assert synergy.grubel_lloyd([10, 0], [4, 6]) == pytest.approx(0.4, rel=RTOL)
    assert isinstance(synergy.grubel_lloyd([10, 0], [4, 6]), float)
    # three products: 1 - (2 + 5 + 4)/21 = 10/21
    assert synergy.grubel_lloyd([3, 7, 0], [5, 2, 4]) == pytest.approx(0.47619047619047616,
                                                                       rel=RTOL)
    assert synergy.grubel_lloyd([5, 5], [5, 5]) == pytest.approx(1.0, rel=RTOL)  # balanced
    assert synergy.grubel_lloyd([5, 0], [0, 5]) == pytest.approx(0.0, abs=1e-15)  # inter-industry
    rows = synergy.grubel_lloyd(np.array([[10, 0], [5, 5], [0, 0]]),
                                np.array([[4, 6], [5, 5], [0, 0]]))
    assert rows.shape == (3,)
    np.testing.assert_allclose(rows[:2], [0.4, 1.0], rtol=RTOL)
    assert np.isnan(rows[2])  # no trade at all
    assert np.isnan(synergy.grubel_lloyd([0, 0], [0, 0]))


def test_grubel_lloyd_frames_and_errors():
    exports = pd.DataFrame({"k1": [10.0, 3.0], "k2": [0.0, 7.0]}, index=["THA", "VNM"])
    imports = pd.DataFrame({"k1": [4.0, 5.0], "k2": [6.0, 2.0]}, index=["THA", "VNM"])
    gl = synergy.grubel_lloyd(exports, imports)
    assert isinstance(gl, pd.Series) and gl.index.tolist() == ["THA", "VNM"]
    np.testing.assert_allclose(gl, [0.4, 1 - (2 + 5) / 17], rtol=RTOL)  # 0.5882352941
    assert gl.iloc[1] == pytest.approx(0.5882352941176471, rel=RTOL)
    with pytest.raises(ValueError, match="negative"):
        synergy.grubel_lloyd([1, -1], [1, 1])
    with pytest.raises(ValueError, match="same shape"):
        synergy.grubel_lloyd([1, 1, 1], [1, 1])
    with pytest.raises(ValueError, match="different product columns"):
        synergy.grubel_lloyd(exports, imports[["k2", "k1"]])


def test_trade_complementarity_on_known_values():
    # x shares [1, 0], m shares [0.4, 0.6]: 100 * (1 - (0.6 + 0.6)/2) = 40
    assert synergy.trade_complementarity([10, 0], [4, 6]) == pytest.approx(40.0, rel=RTOL)
    # x shares [0.2, 0.3, 0.5], m shares [0.25, 0.25, 0.5]: 100 * (1 - 0.1/2) = 95
    assert synergy.trade_complementarity([2, 3, 5], [1, 1, 2]) == pytest.approx(95.0, rel=RTOL)
    assert synergy.trade_complementarity([3, 7], [30, 70]) == pytest.approx(100.0, rel=RTOL)
    assert synergy.trade_complementarity([1, 0], [0, 1]) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(synergy.trade_complementarity([0, 0], [1, 1]))
    assert np.isnan(synergy.trade_complementarity([1, 1], [0, 0]))


def test_trade_complementarity_rows_and_broadcasting():
    exports = np.array([[10, 0], [2, 8], [0, 0]])
    tc = synergy.trade_complementarity(exports, np.array([4, 6]))  # one partner, 1-D
    assert tc.shape == (3,)
    # row 2: x shares [0.2, 0.8] vs [0.4, 0.6]: 100 * (1 - 0.4/2) = 80
    np.testing.assert_allclose(tc[:2], [40.0, 80.0], rtol=RTOL)
    assert np.isnan(tc[2])
    paired = synergy.trade_complementarity(exports[:2], np.array([[4, 6], [1, 4]]))
    np.testing.assert_allclose(paired, [40.0, 100.0], rtol=RTOL)
    with pytest.raises(ValueError, match="products"):
        synergy.trade_complementarity([1, 2, 3], [1, 2])


def test_trade_intensity_on_known_values():
    # i sends 30 of its 100 to j; j takes 50/500 = 10% of world imports: TII = 0.3 / 0.1 = 3
    assert synergy.trade_intensity(30, 100, 50, 500) == pytest.approx(3.0, rel=RTOL)
    tii = synergy.trade_intensity(np.array([12.0, 5.0, 0.0]), np.array([80.0, 200.0, 10.0]),
                                  np.array([40.0, 100.0, 5.0]), 1000.0)
    # 0.15/0.04 = 3.75; 0.025/0.1 = 0.25; 0/0.005 = 0
    np.testing.assert_allclose(tii, [3.75, 0.25, 0.0], rtol=RTOL)


def test_trade_intensity_zero_denominators_and_series():
    assert np.isnan(synergy.trade_intensity(1, 0, 1, 1))  # x_i = 0
    assert np.isnan(synergy.trade_intensity(1, 10, 0, 100))  # m_j = 0
    assert np.isnan(synergy.trade_intensity(1, 10, 5, 0))  # m_w = 0
    index = pd.Index([2000, 2001], name="year")
    tii = synergy.trade_intensity(pd.Series([30.0, 12.0], index=index),
                                  pd.Series([100.0, 80.0], index=index),
                                  pd.Series([50.0, 40.0], index=index), 500.0)
    assert isinstance(tii, pd.Series) and tii.index.equals(index)
    np.testing.assert_allclose(tii, [3.0, 1.875], rtol=RTOL)  # 0.15 / 0.08 = 1.875
    with pytest.raises(ValueError, match="negative"):
        synergy.trade_intensity(-1, 10, 5, 100)
