"""The robustness variants of METHODS.md section 7 as functions: the spec, the variant panels
(winsorised, lagged, dropped countries, ...), the model each check fits, and the randomisation-
inference permutation designs. The ``robustness`` stage (``analysis.stages.robustness``) runs the
battery; the bench stage, the report and ``analysis.api`` call these functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import config
from analysis.data import specs
from analysis.data.io import (
    DataError,
    read_parquet,
)
from analysis.econometrics import inference
from analysis.econometrics.estimation import add_interactions

EXTRA = "_x_"  # prefix of the extra regressors a check adds (controls_add, share_by_year, trends)


def load_robustness_spec(path: Path = config.SPECS / "robustness.yaml",
                         models: dict | None = None, processed: Path | None = None) -> dict:
    """``specs/robustness.yaml``, validated (:class:`analysis.data.specs.RobustnessSpec`).

    With the model spec and the processed folder, every entry is also checked against the data:
    models and variables it names exist, the columns it uses are in its panel, and every
    country or year it drops or keeps matches rows of its estimation sample
    (:func:`check_sample`), so no check is a silent copy of another."""
    context: dict = {"schemes": list(RI_SCHEMES)}
    if models is not None:
        context["models"] = models
        context["variables"] = {models["dependent"], *models["controls"],
                                *(f for terms in models["models"].values()
                                  for t in terms for f in t.split(":"))}
    if models is not None and processed is not None:
        context["panel_columns"] = panel_columns(processed)
        name = specs.read_yaml(path).get("base_model")
        base = {"dependent": models["dependent"], "controls": models["controls"],
                "centre": models["centre"], "terms": models["models"].get(name, [])}

        def sample(check: dict) -> pd.DataFrame | None:
            if name not in models["models"]:
                return None  # reported as an unknown base_model
            try:
                return check_sample(check, base, models, processed)
            except (DataError, KeyError, ValueError):
                return None  # the check's other keys are reported by their own validators

        context["sample"] = sample
    return specs.load(path, "robustness", context=context)


def panel_columns(processed: Path) -> dict[str, set[str]]:
    """The columns a check can use on each panel (the panel files that exist)."""
    from analysis.data.io import parquet_columns

    out: dict[str, set[str]] = {}
    for kind in ("main", "dyad", "dyad_nickel", "chain"):
        paths = panel_files(kind, processed)
        if all(p.exists() for p in paths):
            out[kind] = set().union(*(parquet_columns(p) for p in paths))
    out.setdefault("main", set())
    return out


def check_sample(check: dict, model: dict, models: dict, processed: Path) -> pd.DataFrame:
    """The (iso3, year) rows a check estimates on when its row filters (``drop_years``,
    ``drop_countries``, ``keep_countries``) are left out: its panel, model, substitutions,
    lags and complete cases, exactly as :func:`prepare_variant` builds them."""
    check = {k: v for k, v in check.items() if k not in specs.ROW_FILTERS}
    panel, entity, _ = variant_panel(check.get("panel"), processed)
    model = model_for(check, model, models)
    iv = check.get("iv") or {}
    if iv.get("model"):
        terms = models["models"][iv["model"]]
        base = {f for t in terms for f in t.split(":")}
        model = {**model, "terms": terms, "centre": [c for c in model["centre"] if c in base]}
    frame = prepare_variant(panel, {"id": check.get("id", "?"), **check}, model, entity)
    return frame[["iso3", "year"]]


# --------------------------------------------------------------------------- panels
PANEL_FILES = {None: ["panel.parquet"], "main": ["panel.parquet"],
               "dyad": ["panel.parquet", "dyad_indices.parquet"],
               "dyad_nickel": ["panel.parquet", "dyad_nickel.parquet"],
               "chain": ["panel.parquet", "chain_panel.parquet"]}


def panel_files(kind: str | None, processed: Path) -> list[Path]:
    """The processed files :func:`variant_panel` reads for a panel kind (a check's inputs)."""
    if kind not in PANEL_FILES:
        raise ValueError(f"unknown panel {kind!r}: use dyad or chain")
    return [processed / name for name in PANEL_FILES[kind]]


_PANELS: dict[tuple[str, int, int], pd.DataFrame] = {}


def _read(path: Path) -> pd.DataFrame:
    """read_parquet once per file version in this process (a copy each time: callers may
    modify what they get)."""
    if not path.exists():
        return read_parquet(path)  # raises the DataError naming the file
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _PANELS:
        _PANELS[key] = read_parquet(path)
    return _PANELS[key].copy()


def variant_panel(kind: str | None, processed: Path) -> tuple[pd.DataFrame, str, str]:
    """(panel, entity column, cluster column) for the main, dyad or chain panel."""
    panel = _read(processed / "panel.parquet")
    if kind in (None, "main"):
        return panel, "iso3", "iso3"
    country = panel.drop(columns=["syn"])
    if kind == "dyad":
        dyad = _read(processed / "dyad_indices.parquet")[["iso3", "year", "syn"]]
        return dyad.merge(country, on=["iso3", "year"], how="left"), "iso3", "iso3"
    if kind == "dyad_nickel":
        dyad = _read(processed / "dyad_nickel.parquet")[["iso3", "year", "syn"]]
        return dyad.merge(country, on=["iso3", "year"], how="left"), "iso3", "iso3"
    if kind == "chain":
        chain = _read(processed / "chain_panel.parquet")[["iso3", "chain", "year", "syn"]]
        merged = chain.merge(country, on=["iso3", "year"], how="left")
        merged["unit"] = merged["iso3"] + ":" + merged["chain"]
        return merged, "unit", "iso3"
    raise ValueError(f"unknown panel {kind!r}: use dyad or chain")


def winsorize(series: pd.Series, lower: float = 0.01, upper: float = 0.99) -> pd.Series:
    """Clip at the sample's lower/upper quantiles (linear interpolation of quantiles)."""
    lo, hi = series.quantile([lower, upper])
    return series.clip(lo, hi)


def prepare_variant(panel: pd.DataFrame, check: dict, model: dict, entity: str = "iso3"
                    ) -> pd.DataFrame:
    """The estimation frame of one check: substitutions, lags, sample, winsorising, centring.

    Order: replace → lag (within unit, before any row is dropped) → drop/keep → complete cases
    on the model's variables (with ``sample: main``, also on every variable of every model of
    specs/models.yaml, ``model["main_sample"]``: the main estimation sample) → winsorise →
    centre focal and moderators on the sample → interactions (of within-unit demeaned terms if
    ``double_demean``).
    """
    frame = panel.copy()
    for variable, column in (check.get("replace") or {}).items():
        if column not in frame:
            raise DataError(Path(column), f"check {check['id']!r}: column not in the panel")
        frame[variable] = frame[column]
    for variable in check.get("lag") or []:
        # the same unit's value in year t - 1, missing where that year has no row (a shift by
        # one row would take year t - 2 across a gap in an unbalanced panel)
        frame = frame.sort_values([entity, "year"])
        previous = frame[[entity, "year", variable]].assign(year=frame["year"] + 1)
        frame[variable] = frame[[entity, "year"]].merge(
            previous, on=[entity, "year"], how="left", validate="many_to_one")[variable].to_numpy()
    if check.get("drop_years"):
        frame = frame[~frame["year"].isin(check["drop_years"])]
    if check.get("drop_countries"):
        frame = frame[~frame["iso3"].isin(check["drop_countries"])]
    if check.get("keep_countries"):
        frame = frame[frame["iso3"].isin(check["keep_countries"])]
    base = sorted({f for t in model["terms"] for f in t.split(":")})
    added = list(check.get("controls_add") or [])
    share = [check["share_by_year"]] if check.get("share_by_year") else []
    main = list(model.get("main_sample") or []) if check.get("sample") == "main" else []
    needed = list(dict.fromkeys([model["dependent"], *base, *model["controls"], *added, *share,
                                 *main]))
    keys = list(dict.fromkeys([entity, "iso3", "year"]))
    frame = frame[[*keys, *needed]].dropna().copy()
    counts = frame.groupby(entity)["year"].transform("size")
    frame = frame[counts >= 2].copy()  # singletons: no within variation (as in models.py)
    for column in added:
        frame[f"{EXTRA}{column}"] = frame[column]
    if share:
        # incomplete-shares control (Borusyak, Hull & Jaravel 2022): share x year dummies
        years = sorted(frame["year"].unique())
        for year in years[1:]:
            frame[f"{EXTRA}{share[0]}_{year}"] = frame[share[0]] * (frame["year"] == year)
    if check.get("country_trends"):
        # with year effects the trends of all units sum to a function of the year, so one
        # unit (the first) is the reference
        centre_year = frame["year"].mean()
        for unit in sorted(frame[entity].unique())[1:]:
            frame[f"{EXTRA}trend_{unit}"] = np.where(frame[entity] == unit,
                                                     frame["year"] - centre_year, 0.0)
    for variable in check.get("winsorize") or []:
        frame[variable] = winsorize(frame[variable])
    for variable in [v for v in model["centre"] if v in frame]:
        frame[variable] = frame[variable] - frame[variable].mean()
    interactions = [t for t in model["terms"] if ":" in t]
    if check.get("double_demean"):
        demeaned = frame.copy()
        for variable in base:
            demeaned[variable] = frame[variable] - frame.groupby(entity)[variable].transform("mean")
        products = add_interactions(demeaned, interactions)
        for term in interactions:
            frame[term] = products[term]
    else:
        frame = add_interactions(frame, interactions)
    return frame.sort_values([entity, "year"]).reset_index(drop=True)


def model_for(check: dict, model: dict, models_spec: dict) -> dict:
    """The base model, or the model a check names with ``model:`` (e.g. M1 on its own sample)."""
    if not check.get("model"):
        return model
    name = check["model"]
    if name not in models_spec["models"]:
        raise DataError(Path(check["id"]), f"unknown model {name!r}")
    return {**model, "terms": models_spec["models"][name]}


#: Randomisation-inference schemes (METHODS.md section 6). Their size at 5% under a true null is
#: measured per check by ``make bench BENCH_ARGS="--size --record"`` on the real design
#: (analysis/stages/bench.py) and recorded in ``specs/inference_sizes.yaml`` (``ri``: one entry per
#: check id with the permutation it sized). Rule (Bradley 1978, "Robustness?", Br. J. Math.
#: Stat. Psychol. 31(2), liberal criterion): a check whose recorded size at this design lies in
#: [0.025, 0.075] reports its p-value as inference (kind "ri"); otherwise, or when its size was
#: not measured at this design, its row is kind "placebo" (shown, never read as a test). The
#: circular time shift of the first battery is gone: it wrapped the last years onto the first
#: and, with T - 1 distinct shifts, could not reject at 5% unless T > 20 and then only in the
#: most extreme case (size at most 1/T).
RI_SCHEMES: dict[str, str] = {
    "countries": "whole country paths permuted across the sample's countries (within the "
                 "estimation window)",
    "years": "whole years of the cross-section permuted within the estimation window",
}


def permuted_grids(grid: np.ndarray, scheme: str, draws: int, rng: np.random.Generator
                   ) -> list[np.ndarray]:
    """Permutations of a countries x years grid of one variable (NaN where missing).

    * ``countries``: row i gets row pi(i), a whole country path moved to another country;
    * ``years``: column t gets column pi(t), the whole cross-section of year pi(t) moved to
      year t jointly for every country (keeps the cross-sectional dependence).

    The grid should cover the estimation sample's countries and the years of its window only
    (:func:`permutation_grid`). Random permutations may repeat and may include the identity
    (Lehmann & Romano 2005, sec. 15.2.1: the (1 + #)/(1 + draws) p-value is then still valid).
    """
    if scheme == "countries":
        return [grid[rng.permutation(grid.shape[0]), :] for _ in range(draws)]
    if scheme == "years":
        return [grid[:, rng.permutation(grid.shape[1])] for _ in range(draws)]
    if scheme == "shift":
        raise ValueError("the circular time shift was removed: it wraps the last years onto "
                         "the first and has at most T - 1 distinct draws; use years")
    raise ValueError(f"unknown permutation scheme {scheme!r}: use countries or years")


def permutation_grid(panel: pd.DataFrame, frame: pd.DataFrame, column: str,
                     entity: str = "iso3") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The countries x years grid of ``column`` that the permutations move: the countries of
    the estimation sample ``frame`` and every year from its first to its last (the estimation
    window), values from ``panel`` (NaN where missing). Returns (grid, row index, column index)
    of every panel row in the grid; panel rows outside it get index -1 (their permuted value is
    missing, so they never enter a draw's sample)."""
    countries = np.sort(frame["iso3"].unique())
    years = np.arange(int(frame["year"].min()), int(frame["year"].max()) + 1)
    cells = panel[["iso3", "year", column]].drop_duplicates(["iso3", "year"])
    cells = cells[cells["iso3"].isin(countries) & cells["year"].isin(years)]
    grid = np.full((len(countries), len(years)), np.nan)
    grid[np.searchsorted(countries, cells["iso3"]), np.searchsorted(years, cells["year"])] = \
        cells[column].to_numpy(dtype=float)
    inside = panel["iso3"].isin(countries).to_numpy() & panel["year"].isin(years).to_numpy()
    rows = np.where(inside, np.searchsorted(countries, panel["iso3"].to_numpy()), -1)
    cols = np.where(inside, np.searchsorted(years, panel["year"].to_numpy()), -1)
    return grid, rows, cols


def grid_values(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The grid's value at each panel row (NaN for rows outside the grid)."""
    out = np.full(len(rows), np.nan)
    inside = rows >= 0
    out[inside] = grid[rows[inside], cols[inside]]
    return out


def ri_mode(model: dict, variable: str, term: str | None) -> str | None:
    """The tested interaction when ``term`` is an interaction containing ``variable`` (only
    that term is rebuilt from the permuted values: the main effects' design stays fixed), or
    None when ``term`` is the variable itself (it is replaced in every term: the sharp null
    "the variable has no effect at all"). Raises on a term the model does not have."""
    term = term or variable
    if term not in model["terms"]:
        raise ValueError(f"tested term {term!r} is not in the model ({model['terms']})")
    factors = term.split(":")
    if variable not in factors:
        raise ValueError(f"tested term {term!r} does not contain {variable!r}")
    return term if len(factors) > 1 else None


#: Check keys the array engine of :func:`permutation_test` implements (a check with any other
#: key, e.g. ``lag`` or ``winsorize``, is permuted through :func:`prepare_variant`).
FAST_RI_KEYS = {"id", "label", "group", "permute", "model", "replace", "drop_years",
                "drop_countries", "keep_countries", "sample"}


class PermutationDesign:
    """One check's estimation steps on arrays, for many values of one panel variable.

    For a matrix of candidate values of ``variable`` (one row per draw, one column per panel
    row) :meth:`t_stats` returns the CRV1 t statistics of ``terms`` in the check's two-way FE
    model, following :func:`prepare_variant` step by step: substitutions (``replace``), row
    filters (``drop_years``, ``drop_countries``, ``keep_countries``, ``sample``), complete rows
    on the model's variables, units with at least two rows, centring of ``model["centre"]`` on
    the sample, interaction products, then the FE regression of :func:`crv1_t` (the FE
    projected out by least squares on the entity and year dummies of the sample,
    ``M_D Z = Z - D D^+ Z``, the limit the alternating projections of
    :func:`analysis.econometrics.inference.partial_out_fixed_effects` converge to; CRV1 with ``n_absorbed``
    from :func:`analysis.econometrics.inference.count_absorbed_parameters` on the sample).

    The candidate values are the variable's values *after* the check's substitutions. With
    ``interaction`` (a term of the model containing ``variable``) they enter that term only,
    as a separate column centred like the variable; the variable keeps its observed values
    everywhere else, and a row needs both.

    What every draw shares is computed once: the panel columns, the row filters and the
    missing-data pattern of the other variables. Draws are grouped by their estimation sample
    (which depends on where the permuted values are missing); per sample the FE dummies are
    projected out of all its draws at once and the regressions run as stacked matrix
    products in blocks of ``block`` draws. :meth:`t_stats_many` does the same for many
    outcomes at once (the bench's Monte Carlo of the check's size).
    """

    def __init__(self, panel: pd.DataFrame, check: dict, model: dict, variable: str,
                 terms: list[str], entity: str = "iso3", cluster: str = "iso3",
                 block: int = 256, interaction: str | None = None) -> None:
        unknown = set(check) - FAST_RI_KEYS
        if unknown:
            raise ValueError(f"the array engine does not implement {sorted(unknown)}")
        self.model, self.variable, self.block = model, variable, block
        self.entity, self.cluster = entity, cluster
        self.interaction = interaction
        self.perm_name = f"{variable}__permuted" if interaction else variable
        self.replace = dict(check.get("replace") or {})
        for column in self.replace.values():
            if column not in panel:
                raise DataError(Path(column), f"check {check['id']!r}: column not in the panel")
        self.base = sorted({f for t in model["terms"] for f in t.split(":")})
        extra = list(model.get("main_sample") or []) if check.get("sample") == "main" else []
        self.needed = list(dict.fromkeys([model["dependent"], *self.base, *model["controls"],
                                          *extra]))
        if interaction:
            self.needed.append(self.perm_name)
        self.regressors = [*model["terms"], *model["controls"]]
        self.terms = list(terms)
        self.centre = [v for v in model["centre"] if v in self.needed]
        if interaction and variable in model["centre"]:
            self.centre.append(self.perm_name)
        sources = set(self.needed) | set(self.replace.values()) | {variable}
        self.columns = {c: panel[c].to_numpy(dtype=float) for c in sources if c in panel}
        keep = _row_filter(panel, check)
        keys = list(dict.fromkeys([entity, "iso3", "year"]))
        keep &= panel[keys].notna().all(axis=1).to_numpy()
        self.keep = keep
        self.keys = panel[list(dict.fromkeys([entity, "year", cluster]))].reset_index(drop=True)
        self.entity_codes = pd.factorize(panel[entity])[0]

    def observed_values(self) -> np.ndarray:
        """The variable's observed values (after the substitutions), one per panel row."""
        columns = dict(self.columns)
        for target, source in self.replace.items():
            columns[target] = columns[source]
        return columns[self.variable]

    def _frame_columns(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """The needed columns for one draw: the substitutions, then the permuted values."""
        columns = dict(self.columns)
        for target, source in self.replace.items():  # in order, as prepare_variant does
            columns[target] = columns[source]
        columns[self.perm_name] = values
        return columns

    def _sample(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        ok = self.keep.copy()
        for name in self.needed:
            ok &= ~np.isnan(columns[name])
        counts = np.bincount(self.entity_codes[ok], minlength=self.entity_codes.max() + 1)
        return ok & (counts[self.entity_codes] >= 2)

    def _groups(self, values: np.ndarray, extra_mask: np.ndarray | None = None
                ) -> dict[bytes, tuple[np.ndarray, list[int]]]:
        """Draws grouped by their estimation sample: {key: (mask, draws)}."""
        groups: dict[bytes, tuple[np.ndarray, list[int]]] = {}
        for b in range(values.shape[0]):
            mask = self._sample(self._frame_columns(values[b]))
            if extra_mask is not None:
                mask &= extra_mask
            key = np.packbits(mask).tobytes()
            groups.setdefault(key, (mask, []))[1].append(b)
        return groups

    def t_stats(self, values: np.ndarray) -> np.ndarray:
        """CRV1 t of ``terms`` for every row of ``values`` (draws x panel rows): (draws, terms)."""
        values = np.atleast_2d(np.asarray(values, dtype=float))
        out = np.full((values.shape[0], len(self.terms)), np.nan)
        for mask, draws in self._groups(values).values():
            for start in range(0, len(draws), self.block):
                chunk = draws[start:start + self.block]
                out[chunk] = self._block(values[chunk], mask)
        return out

    def _regressors(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(n, draws, k) regressors of the draws on the sample ``mask``, before the FE."""
        n, k = int(mask.sum()), len(self.regressors)
        Z = np.empty((n, values.shape[0], k))
        for b in range(values.shape[0]):
            columns = {c: v[mask] for c, v in self._frame_columns(values[b]).items()}
            for name in self.centre:
                columns[name] = columns[name] - columns[name].mean()
            for term in self.model["terms"]:
                if ":" in term:
                    factors = [self.perm_name if (term == self.interaction
                                                  and f == self.variable) else f
                               for f in term.split(":")]
                    columns[term] = np.prod([columns[f] for f in factors], axis=0)
            for j, name in enumerate(self.regressors):
                Z[:, b, j] = columns[name]
        return Z

    def _fe_projector(self, mask: np.ndarray):
        """A function removing the entity and year dummies of the sample ``mask``."""
        keys = self.keys[mask].reset_index(drop=True)
        dummies = np.column_stack([
            (keys[f].to_numpy()[:, None] == np.unique(keys[f].to_numpy())[None, :])
            for f in (self.entity, "year")]).astype(float)
        pinv = np.linalg.pinv(dummies)

        def project(a: np.ndarray) -> np.ndarray:
            flat = a.reshape(a.shape[0], -1)
            return (flat - dummies @ (pinv @ flat)).reshape(a.shape)
        return project

    def _ssc(self, mask: np.ndarray) -> tuple[float, np.ndarray, int]:
        keys = self.keys[mask].reset_index(drop=True)
        n, k = int(mask.sum()), len(self.regressors)
        codes, n_clusters = inference._cluster_codes(keys[self.cluster].to_numpy(), n)
        n_abs = inference.count_absorbed_parameters(keys, [self.entity, "year"], self.cluster)
        c = n_clusters / (n_clusters - 1) * (n - 1) / (n - (k + n_abs))
        return c, codes, n_clusters

    def _block(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """t statistics of draws that share the estimation sample ``mask``."""
        project = self._fe_projector(mask)
        X = project(self._regressors(values, mask)).transpose(1, 0, 2)  # (draws, n, k)
        y = project(self._frame_columns(values[0])[self.model["dependent"]][mask][:, None])[:, 0]
        xx = np.einsum("bnk,bnl->bkl", X, X)
        xy = np.einsum("bnk,n->bk", X, y)
        beta = np.linalg.solve(xx, xy[:, :, None])[:, :, 0]
        resid = y[None, :] - np.einsum("bnk,bk->bn", X, beta)
        c, codes, n_clusters = self._ssc(mask)
        member = (codes[None, :] == np.arange(n_clusters)[:, None]).astype(float)  # (G, n)
        scores = np.einsum("gn,bnk->bgk", member, X * resid[:, :, None])
        meat = np.einsum("bgk,bgl->bkl", scores, scores)
        bread = np.linalg.inv(xx)
        V = c * bread @ meat @ bread
        idx = [self.regressors.index(t) for t in self.terms]
        return beta[:, idx] / np.sqrt(V[:, idx, idx])

    def t_stats_many(self, values: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
        """CRV1 t of the first of ``terms`` for every draw (rows of ``values``) and every
        outcome (rows of ``outcomes``, one value per panel row, NaN outside the rows it is
        defined on; all outcomes share that pattern): (draws, outcomes). The same statistic
        as :meth:`t_stats` with the dependent variable replaced by each outcome."""
        values = np.atleast_2d(np.asarray(values, dtype=float))
        outcomes = np.atleast_2d(np.asarray(outcomes, dtype=float))
        defined = ~np.isnan(outcomes[0])
        if (np.isnan(outcomes) != ~defined[None, :]).any():
            raise ValueError("every outcome must be missing on the same rows")
        j = self.regressors.index(self.terms[0])
        out = np.full((values.shape[0], outcomes.shape[0]), np.nan)
        for mask, draws in self._groups(values, defined).values():
            project = self._fe_projector(mask)
            Y = project(outcomes[:, mask].T)  # (n, R)
            c, codes, n_clusters = self._ssc(mask)
            member = (codes[None, :] == np.arange(n_clusters)[:, None]).astype(float)
            for start in range(0, len(draws), self.block):
                chunk = draws[start:start + self.block]
                X = project(self._regressors(values[chunk], mask)).transpose(1, 0, 2)
                for i, b in enumerate(chunk):
                    Xb = X[i]
                    bread = np.linalg.inv(Xb.T @ Xb)
                    beta = bread @ (Xb.T @ Y)  # (k, R)
                    resid = Y - Xb @ beta
                    w = Xb @ bread[:, j]
                    scores = member @ (w[:, None] * resid)  # (G, R)
                    out[b] = beta[j] / np.sqrt(c * np.sum(scores**2, axis=0))
        return out


def _row_filter(panel: pd.DataFrame, check: dict) -> np.ndarray:
    """The rows a check's drop_years, drop_countries and keep_countries keep."""
    keep = np.ones(len(panel), dtype=bool)
    if check.get("drop_years"):
        keep &= ~panel["year"].isin(check["drop_years"]).to_numpy()
    if check.get("drop_countries"):
        keep &= ~panel["iso3"].isin(check["drop_countries"]).to_numpy()
    if check.get("keep_countries"):
        keep &= panel["iso3"].isin(check["keep_countries"]).to_numpy()
    return keep


def variant_shares(variants: pd.DataFrame, term: str, sign: float) -> dict[str, float]:
    """Among the variants that estimate ``term`` (a variant on a smaller model has no value):
    their number, the share with the given sign, and the shares with p < 0.10 under CRV1 and
    under WCR (over the variants that report each p)."""
    b = variants[f"b[{term}]"].dropna()
    p = variants[f"p[{term}]"].dropna()
    wcr = variants[f"p_wcr[{term}]"].dropna()
    return {"variants": len(b),
            "share_same_sign": float((np.sign(b) == sign).mean()) if len(b) else np.nan,
            "share_p10_crv1": float((p < 0.1).mean()) if len(p) else np.nan,
            "share_p10_wcr": float((wcr < 0.1).mean()) if len(wcr) else np.nan}
