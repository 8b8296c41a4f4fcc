"""Calibration of a stock-flow model by least squares on log flows, with bounds.

The free parameters θ (each with its range from the model file) minimise

    S(θ) = Σ_series Σ_years [ ln(1 + m_sy(θ)) − ln(1 + c_s(θ) · d_sy) ]²

over the calibration window, where m_sy is the model's annual flow of series s in year y in kt
of contained nickel (the Euler integral of the flow over the year), d_sy the observed flow in
the data's unit (BACI gross tonnes / 1000, or kt of nickel for mine output) and c_s the
series' nickel-content factor (itself a free parameter within its bounds; 1 for data already in
kt of nickel). The 1 kt offset keeps years without trade (a ban year) in the objective without
letting them dominate it. Only observed years count: the caller writes a year without trade
as 0 (BACI has no row for a zero flow) and leaves a year the source does not cover out (World
Mining Data starts in 2018); such a year's residual is 0 and it is not counted.

The minimisation is scipy's trust-region reflective least squares (``least_squares(method=
"trf")``) from several starts (the file's values and the best points of a Latin-hypercube
screen of the bounds, evaluated in one vectorised pass), with a finite-difference Jacobian
computed in one vectorised run of the p + 1 parameter sets. The
approximate standard errors are ``sqrt(diag(s² (JᵀJ)⁻¹))`` with ``s² = S / (m − p)`` (m observed
series-years, p interior parameters), on the free parameters that are not at a bound, computed
from the singular value decomposition of J; a parameter the data do not identify locally gets
an infinite one. They describe the curvature of the objective, not a sampling distribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from analysis.simulation import mdl
from analysis.simulation.runner import SimulationModel, latin_hypercube

AT_BOUND_TOLERANCE = 1e-3  # share of the range within which a value counts as at its bound


@dataclass(frozen=True)
class FitSeries:
    """One observed series and the model flow it is compared with."""

    name: str  # e.g. idn_chn_ore
    variable: str  # model flow in kt of nickel, e.g. "Indonesian ore exports to China"
    content: str | None  # content-factor constant (kt/ktgross), None if the data are kt Ni
    label: str = ""


@dataclass
class FitResult:
    """Fitted values, bounds and diagnostics."""

    names: list[str]
    values: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    standard_errors: np.ndarray
    cost: float
    residuals: np.ndarray
    starts: list[dict] = field(default_factory=list)
    message: str = ""

    @property
    def at_bound(self) -> list[str]:
        """'lower', 'upper' or '' per parameter."""
        out = []
        for value, lo, hi in zip(self.values, self.lower, self.upper, strict=True):
            width = hi - lo
            if value <= lo + AT_BOUND_TOLERANCE * width:
                out.append("lower")
            elif value >= hi - AT_BOUND_TOLERANCE * width:
                out.append("upper")
            else:
                out.append("")
        return out

    def as_dict(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.values, strict=True)}

    def table(self) -> pd.DataFrame:
        """``parameter, value, lower, upper, at_bound, std_error``."""
        return pd.DataFrame({"parameter": self.names, "value": self.values,
                             "lower": self.lower, "upper": self.upper,
                             "at_bound": self.at_bound, "std_error": self.standard_errors})


class Calibration:
    """The objective of one model, its data, fixed inputs and free parameters."""

    def __init__(self, model: SimulationModel, series: Sequence[FitSeries],
                 observed: pd.DataFrame, free: Sequence[str], window: tuple[int, int],
                 fixed: Mapping[str, float] | None = None,
                 lookups: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
                 bounds: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.model = model
        self.series = list(series)
        self.window = window
        self.fixed = dict(fixed or {})
        self.lookups = dict(lookups or {})
        ranges = model.ranges()
        bounds = dict(bounds or {})
        self.names = [model.name(n) for n in free]
        missing = [n for n in self.names if n not in ranges and n not in bounds]
        if missing:
            raise mdl.ModelError(f"{model.path.name}: free parameters without a range in the "
                                 f"model file: {missing}")
        self.lower = np.array([bounds.get(n, ranges.get(n))[0] for n in self.names])
        self.upper = np.array([bounds.get(n, ranges.get(n))[1] for n in self.names])
        self.years = np.arange(window[0], window[1] + 1)
        self.data = self._data_matrix(observed)

    def _data_matrix(self, observed: pd.DataFrame) -> np.ndarray:
        """Observed values (series × years) in the data's unit; NaN where not observed."""
        if observed.duplicated(["series", "year"]).any():
            raise ValueError("observed data: one value per series and year")
        wide = observed.pivot(index="series", columns="year", values="value")
        out = np.full((len(self.series), len(self.years)), np.nan)
        for i, s in enumerate(self.series):
            if s.name not in wide.index:
                raise ValueError(f"no observed data for series {s.name!r}")
            out[i] = wide.loc[s.name].reindex(self.years).to_numpy(dtype=float)
        return out

    @property
    def observed_count(self) -> int:
        """Number of observed series-years in the window."""
        return int(np.isfinite(self.data).sum())

    def params(self, theta: np.ndarray) -> dict[str, np.ndarray | float]:
        """Fixed values plus θ (p × n) as {name: array of n}."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float).T).T
        return {**self.fixed, **{n: theta[i] for i, n in enumerate(self.names)}}

    def simulate(self, theta: np.ndarray, final_year: int | None = None
                 ) -> dict[str, np.ndarray]:
        """Annual model flows (kt Ni) and content factors for θ (p × n):
        {series name: (years × n)} with years up to ``final_year``."""
        theta = np.asarray(theta, dtype=float).reshape(len(self.names), -1)
        params = self.params(theta)
        final = (final_year or self.window[1]) + 1
        result = self.model.run(params, self.lookups, n=theta.shape[1], final_time=final,
                                annual=[s.variable for s in self.series])
        years = result["years"]
        out = {"years": years}
        for s in self.series:
            out[s.name] = result[f"annual:{mdl.normalise(s.variable)}"]
        return out

    def contents(self, theta: np.ndarray) -> np.ndarray:
        """Content factor of each series for θ (series × n); 1 where the data are kt Ni."""
        theta = np.asarray(theta, dtype=float).reshape(len(self.names), -1)
        params = self.params(theta)
        defaults = self.model.defaults()
        rows = []
        for s in self.series:
            if s.content is None:
                rows.append(np.ones(theta.shape[1]))
            else:
                name = self.model.name(s.content)
                rows.append(np.broadcast_to(params.get(name, defaults[name]),
                                            (theta.shape[1],)).astype(float))
        return np.array(rows)

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """ln(1 + model) − ln(1 + content × data) over the window, stacked series by series
        (m × n)."""
        theta = np.asarray(theta, dtype=float).reshape(len(self.names), -1)
        simulated = self.simulate(theta)
        keep = np.isin(simulated["years"], self.years)
        content = self.contents(theta)
        rows = []
        for i, s in enumerate(self.series):
            model = np.maximum(simulated[s.name][keep], 0.0)
            data = self.data[i][:, None] * content[i][None, :]
            residual = np.log1p(model) - np.log1p(data)
            rows.append(np.where(np.isfinite(data), residual, 0.0))
        return np.concatenate(rows, axis=0)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """Forward differences (backward at the upper bound), all columns in one run."""
        step = 1e-5 * (self.upper - self.lower)
        direction = np.where(x + step > self.upper, -1.0, 1.0)
        theta = np.repeat(x[:, None], len(x) + 1, axis=1)
        for j in range(len(x)):
            theta[j, j + 1] += direction[j] * step[j]
        r = self.residuals(theta)
        return (r[:, 1:] - r[:, [0]]) / (direction * step)[None, :]

    def costs(self, theta: np.ndarray, batch: int = 1000) -> np.ndarray:
        """S(θ) of many parameter sets (p × n), in vectorised batches."""
        out = []
        for start in range(0, theta.shape[1], batch):
            r = self.residuals(theta[:, start:start + batch])
            out.append(np.sum(r ** 2, axis=0))
        return np.concatenate(out)

    def fit(self, starts: int = 4, seed: int = 20260401, max_nfev: int = 200,
            screen: int = 0) -> FitResult:
        """Least squares from several starts; the lowest cost wins. The starts are the file's
        values and the ``starts - 1`` best of ``screen`` Latin-hypercube points over the bounds
        (all evaluated in one vectorised pass; without screening, the first ``starts - 1``
        Latin-hypercube points). Each start's cost is kept (a spread of costs says the objective
        has several minima)."""
        defaults = self.model.defaults()
        first = np.clip([defaults[n] for n in self.names], self.lower, self.upper)
        points = [np.asarray(first, dtype=float)]
        if starts > 1:
            count = max(screen, starts - 1)
            draws = latin_hypercube({n: (lo, hi) for n, lo, hi in
                                     zip(self.names, self.lower, self.upper, strict=True)},
                                    count, seed)
            candidates = np.array([draws[n] for n in self.names])
            if screen:
                order = np.argsort(self.costs(candidates), kind="stable")
                candidates = candidates[:, order]
            points += [candidates[:, k] for k in range(starts - 1)]
        best, records = None, []
        for k, x0 in enumerate(points):
            solution = least_squares(lambda x: self.residuals(x)[:, 0], x0,
                                     jac=self.jacobian, bounds=(self.lower, self.upper),
                                     method="trf", x_scale=self.upper - self.lower,
                                     max_nfev=max_nfev)
            cost = float(np.sum(solution.fun ** 2))
            records.append({"start": k, "initial_cost": float(np.sum(
                self.residuals(x0)[:, 0] ** 2)), "cost": cost, "nfev": int(solution.nfev),
                "status": int(solution.status)})
            if best is None or cost < best[0]:
                best = (cost, solution)
        cost, solution = best
        result = FitResult(self.names, solution.x, self.lower, self.upper,
                           np.full(len(self.names), np.nan), cost, solution.fun,
                           starts=records, message=str(solution.message))
        result.standard_errors = self.standard_errors(solution.x, solution.fun,
                                                      result.at_bound)
        return result

    def standard_errors(self, x: np.ndarray, residuals: np.ndarray, at_bound: Sequence[str]
                        ) -> np.ndarray:
        """Curvature-based standard errors of the interior parameters: NaN at a bound, inf for
        a parameter the data do not identify locally (it loads on a direction in which the
        residuals do not move: a singular value of J below 1e-8 of the largest)."""
        interior = np.array([b == "" for b in at_bound])
        out = np.full(len(x), np.nan)
        m, p = self.observed_count, int(interior.sum())
        if p == 0 or m <= p:
            return out
        jac = self.jacobian(x)[:, interior]
        sigma2 = float(np.sum(residuals ** 2)) / (m - p)
        _, singular, vt = np.linalg.svd(jac, full_matrices=False)
        if singular[0] == 0:
            out[interior] = np.inf
            return out
        identified = singular > 1e-8 * singular[0]
        v = vt.T
        variance = (v[:, identified] ** 2 / singular[identified] ** 2).sum(axis=1) * sigma2
        unidentified = (np.abs(v[:, ~identified]) > 1e-6).any(axis=1)
        out[interior] = np.where(unidentified, np.inf, np.sqrt(variance))
        return out
