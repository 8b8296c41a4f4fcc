"""Theil's decomposition, R² and MAPE against a hand computation (Sterman 1984)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.simulation.theil import fit_statistics

ACTUAL = [1.0, 2.0, 4.0, 7.0]
SIMULATED = [2.0, 2.0, 5.0, 10.0]


def test_decomposition_equals_the_hand_computation():
    # errors 1, 0, 1, 3: MSE = 11 / 4; means 3.5 and 4.75, bias² = 1.5625
    # population variances: actual 21 / 4 = 5.25, simulated 42.75 / 4 = 10.6875
    # covariance 29.5 / 4 = 7.375, so 2 (1 - r) s_S s_A = 2 (sqrt(5.25 * 10.6875) - 7.375)
    stats = fit_statistics(ACTUAL, SIMULATED)
    mse = 11 / 4
    assert stats["n"] == 4
    assert stats["mse"] == pytest.approx(mse, rel=1e-15)
    assert stats["theil_um"] == pytest.approx(1.5625 / mse, rel=1e-13)
    assert stats["theil_us"] == pytest.approx(
        (math.sqrt(10.6875) - math.sqrt(5.25)) ** 2 / mse, rel=1e-12)
    assert stats["theil_uc"] == pytest.approx(
        2 * (math.sqrt(5.25 * 10.6875) - 7.375) / mse, rel=1e-12)
    assert stats["theil_um"] + stats["theil_us"] + stats["theil_uc"] == pytest.approx(1.0,
                                                                                        rel=1e-14)
    assert stats["r2"] == pytest.approx(1 - 11 / 21, rel=1e-14)  # 1 - SSE / SST
    # MAPE over every point (1/1 + 0/2 + 1/4 + 3/7) / 4, and over the points >= 2
    assert stats["mape"] == pytest.approx((1 + 0 + 0.25 + 3 / 7) / 4, rel=1e-14)
    floor = fit_statistics(ACTUAL, SIMULATED, mape_floor=2.0)
    assert floor["mape"] == pytest.approx((0 + 0.25 + 3 / 7) / 3, rel=1e-14)


def test_pure_bias_and_pure_scaling():
    actual = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    shifted = fit_statistics(actual, actual + 2.0)
    assert shifted["theil_um"] == pytest.approx(1.0)
    assert shifted["theil_us"] == pytest.approx(0.0, abs=1e-15)
    assert shifted["theil_uc"] == pytest.approx(0.0, abs=1e-12)
    centre = actual.mean()
    stretched = fit_statistics(actual, centre + 2 * (actual - centre))
    assert stretched["theil_us"] == pytest.approx(1.0)  # same mean, correlation 1
    assert stretched["theil_um"] == pytest.approx(0.0, abs=1e-15)


def test_degenerate_cases():
    perfect = fit_statistics(ACTUAL, ACTUAL)
    assert perfect["mse"] == 0 and perfect["r2"] == 1.0
    assert all(math.isnan(perfect[k]) for k in ("theil_um", "theil_us", "theil_uc"))
    flat = fit_statistics([0.0, 0.0, 0.0], [1.0, 2.0, 0.0])
    assert math.isnan(flat["r2"]) and math.isnan(flat["mape"])  # no variance, no flow
    assert flat["theil_um"] + flat["theil_us"] + flat["theil_uc"] == pytest.approx(1.0)
    missing = fit_statistics([1.0, np.nan, 4.0], [2.0, 5.0, np.nan])
    assert missing["n"] == 1
    with pytest.raises(ValueError, match="shape"):
        fit_statistics([1.0, 2.0], [1.0])


def test_r2_and_mape_need_enough_years_of_material_flow():
    """A flow that did not exist yet (zeros and one small value) gives an R² of thousands below
    zero that measures nothing: with fewer than ``min_material`` years of at least the floor,
    R² and MAPE are empty; RMSE is reported whatever the flow."""
    actual = [0.03, 0.0, 0.0, 0.0, 2.0]
    simulated = [0.0, 0.0, 0.3, 0.9, 1.0]
    loose = fit_statistics(actual, simulated, mape_floor=1.0)
    assert loose["n_material"] == 1
    sse = 0.03 ** 2 + 0.3 ** 2 + 0.9 ** 2 + 1.0
    mean = 2.03 / 5
    sst = sum((a - mean) ** 2 for a in actual)
    assert loose["r2"] == pytest.approx(1 - sse / sst, rel=1e-12)
    assert loose["mape"] == pytest.approx(0.5)  # only the 2.0 year: |1 - 2| / 2
    assert loose["rmse"] == pytest.approx(math.sqrt(sse / 5), rel=1e-12)
    strict = fit_statistics(actual, simulated, mape_floor=1.0, min_material=2)
    assert strict["n_material"] == 1
    assert math.isnan(strict["r2"]) and math.isnan(strict["mape"])
    assert strict["rmse"] == loose["rmse"]
    assert strict["theil_um"] == pytest.approx(loose["theil_um"])  # the decomposition stays
    enough = fit_statistics(actual, simulated, mape_floor=0.5, min_material=1)
    assert enough["n_material"] == 1 and enough["r2"] == pytest.approx(loose["r2"])
