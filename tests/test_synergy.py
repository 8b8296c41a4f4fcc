"""Coupling coordination, Grubel–Lloyd, trade complementarity and intensity on known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import synergy


def test_coupling_degrees_on_known_values():
    # u1 = 0.2, u2 = 0.8: textbook C = 2*sqrt(0.16)/1 = 0.8;
    # corrected C = sqrt((1 - 0.6) * 0.2/0.8) = sqrt(0.1)
    assert synergy.coupling_degree_textbook(0.2, 0.8) == pytest.approx(0.8, abs=1e-15)
    assert synergy.coupling_degree_corrected(0.2, 0.8) == pytest.approx(math.sqrt(0.1), abs=1e-15)
    # equal subsystems couple perfectly under both
    assert synergy.coupling_degree_textbook(0.5, 0.5) == pytest.approx(1.0)
    assert synergy.coupling_degree_corrected(0.5, 0.5) == pytest.approx(1.0)
    # D = sqrt(C*T), T = 0.5: corrected sqrt(sqrt(0.1)*0.5), textbook sqrt(0.4)
    assert synergy.coupling_coordination(0.2, 0.8) == pytest.approx(
        math.sqrt(math.sqrt(0.1) * 0.5), abs=1e-15)
    assert synergy.coupling_coordination(0.2, 0.8, corrected=False) == pytest.approx(
        math.sqrt(0.4), abs=1e-15)


def test_textbook_c_piles_up_near_one():
    """0.3 and 0.5: textbook 2*sqrt(0.15)/0.8 = 0.968246; corrected sqrt(0.8*0.6) = 0.692820."""
    assert synergy.coupling_degree_textbook(0.3, 0.5) == pytest.approx(0.9682458366, abs=1e-9)
    assert synergy.coupling_degree_corrected(0.3, 0.5) == pytest.approx(0.6928203230, abs=1e-9)


def test_coupling_vectorised_zero_and_range():
    c = synergy.coupling_degree_corrected(np.array([0.0, 0.1, np.nan]),
                                          np.array([0.0, 0.4, 0.3]))
    assert c[0] == 0.0 and c[1] == pytest.approx(math.sqrt(0.7 * 0.25)) and np.isnan(c[2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        synergy.coupling_coordination(1.2, 0.5)


def test_grubel_lloyd_two_products():
    # exports [10, 0], imports [4, 6]: 1 - (6 + 6)/20 = 0.4
    assert synergy.grubel_lloyd([10, 0], [4, 6]) == pytest.approx(0.4)
    rows = synergy.grubel_lloyd(np.array([[10, 0], [5, 5], [0, 0]]),
                                np.array([[4, 6], [5, 5], [0, 0]]))
    assert rows[:2].tolist() == pytest.approx([0.4, 1.0]) and np.isnan(rows[2])


def test_trade_complementarity_two_products():
    # x shares [1, 0], m shares [0.4, 0.6]: 100 * (1 - (0.6 + 0.6)/2) = 40
    assert synergy.trade_complementarity([10, 0], [4, 6]) == pytest.approx(40.0)
    assert synergy.trade_complementarity([3, 7], [30, 70]) == pytest.approx(100.0)
    assert np.isnan(synergy.trade_complementarity([0, 0], [1, 1]))


def test_trade_intensity():
    # i sends 30 of its 100 to j; j takes 10% of world imports: TII = 0.3 / 0.1 = 3
    assert synergy.trade_intensity(30, 100, 50, 500) == pytest.approx(3.0)
    assert np.isnan(synergy.trade_intensity(1, 0, 1, 1))
