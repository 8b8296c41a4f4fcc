"""A vectorised copy of a model file: the same equations, many parameter sets in one run.

PySD runs one parameter set at a time and evaluates every equation through Python calls and
xarray, about a second per run of the nickel model; the Monte Carlo, the Sobol analysis and the
calibration need thousands of runs. :func:`compile_model` turns the parsed ``.mdl``
(:mod:`analysis.simulation.mdl`) into one Python function whose variables are numpy arrays with
one element per parameter set, and which integrates exactly as PySD does:

- Euler steps ``state(t + dt) = state(t) + dt · ddt(t)``, time advanced by adding ``dt``;
- ``SMOOTH``/``SMOOTHI``/``SMOOTH3``: ``ddt = (input - state) · order / T``, state initialised at
  the input (``SMOOTHI``: at its third argument);
- ``DELAY1``/``DELAY3``/``DELAY3I``: PySD's ``Delay`` (stage contents times the delay time; the output is
  the last stage over the current delay time, ``ddt = order · (inflow - outflow)``);
- ``DELAY FIXED``: a pipe of ``round(T / dt)`` steps filled with the initial value;
- lookups by linear interpolation, held flat outside their range (``numpy.interp``);
- ``ZIDZ``/``XIDZ`` with Vensim's zero, ``|denominator| < 1e-6``.

``tests/test_simulation_engine.py`` checks that a run equals PySD's on the same parameters to
1e-9 (relative), variable by variable and step by step. The model file stays the single source:
nothing here knows what the model is about.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter

import numpy as np

from analysis.simulation.mdl import (
    BinOp,
    Call,
    Model,
    ModelError,
    Num,
    Unary,
    Var,
    normalise,
    python_name,
    variables_in,
)

SMALL_VENSIM = 1e-6
_ORDERS = {"smooth": 1, "smoothi": 1, "smooth3": 3, "delay1": 1, "delay3": 3, "delay3i": 3}
_BUILTINS = {"time": "t", "time step": "dt", "initial time": "t0", "final time": "tf"}


def _zidz(a, b):
    small = np.abs(b) < SMALL_VENSIM
    return np.where(small, 0.0, a / np.where(small, 1.0, b))


def _xidz(a, b, x):
    small = np.abs(b) < SMALL_VENSIM
    return np.where(small, x, a / np.where(small, 1.0, b))


def _local(key: str) -> str:
    return _BUILTINS.get(key) or f"x_{python_name(key)}"


def emit(tree: object) -> str:
    """Python source of an expression tree over numpy arrays."""
    if isinstance(tree, Num):
        return repr(float(tree.value))
    if isinstance(tree, Var):
        return _local(tree.name)
    if isinstance(tree, Unary):
        inner = emit(tree.operand)
        return f"np.logical_not({inner})" if tree.op == "not" else f"({tree.op}{inner})"
    if isinstance(tree, BinOp):
        left, right = emit(tree.left), emit(tree.right)
        if tree.op == "^":
            return f"({left} ** {right})"
        if tree.op == "and":
            return f"np.logical_and({left}, {right})"
        if tree.op == "or":
            return f"np.logical_or({left}, {right})"
        op = {"=": "==", "<>": "!="}.get(tree.op, tree.op)
        return f"({left} {op} {right})"
    if isinstance(tree, Call):
        args = [emit(a) for a in tree.args]
        if tree.lookup:
            table = python_name(tree.function)
            return f"np.interp({args[0]}, LX_{table}, LY_{table})"
        f = tree.function
        simple = {"min": "np.minimum", "max": "np.maximum", "abs": "np.abs", "exp": "np.exp",
                  "ln": "np.log", "sqrt": "np.sqrt", "zidz": "_zidz", "xidz": "_xidz",
                  "if then else": "np.where"}
        if f in simple:
            return f"{simple[f]}({', '.join(args)})"
    raise ModelError(f"cannot compile {tree!r}")


@dataclass
class CompiledModel:
    """The compiled run function of a model and what it needs."""

    model: Model
    source: str
    function: object
    constants: tuple[str, ...]
    lookups: tuple[str, ...]
    outputs: tuple[str, ...]

    def run(self, params: Mapping[str, float | np.ndarray] | None = None,
            lookups: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
            n: int | None = None, time_step: float | None = None,
            final_time: float | None = None, record: Sequence[str] = (),
            annual: Sequence[str] = (), record_every: int = 1) -> dict[str, np.ndarray]:
        """Run ``n`` parameter sets at once.

        ``params``: {constant name: a number or an array of n numbers}; ``lookups``: {lookup
        name: (x values, y values)} replacing the model's table (shared by every set).
        ``record``: variables returned at every ``record_every``-th step, shape (steps, n);
        ``annual``: flows returned as their integral over each whole year of the run,
        ``sum(value · dt)`` over the steps of the year (the Euler increment of a stock that
        accumulated them), shape (years, n). Also returned: ``time`` (the recorded times) and
        ``years``. Names are Vensim names (any case).
        """
        params = {normalise(k): v for k, v in (params or {}).items()}
        unknown = sorted(set(params) - set(self.constants))
        if unknown:
            raise ModelError(f"{self.model.path.name}: {unknown} are not constants of the model "
                             "(only constants can be set; time series go in lookups)")
        sizes = {np.size(v) for v in params.values() if np.ndim(v) > 0}
        if n is None:
            n = max(sizes) if sizes else 1
        if sizes - {n, 1}:
            raise ModelError(f"parameter arrays of sizes {sorted(sizes)} for n = {n}")
        values = {}
        for key in self.constants:
            value = params.get(key, self.model.equations[key].value)
            values[key] = np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()
        tables = {}
        lookups = {normalise(k): v for k, v in (lookups or {}).items()}
        unknown = sorted(set(lookups) - set(self.lookups))
        if unknown:
            raise ModelError(f"{self.model.path.name}: {unknown} are not lookups of the model")
        for key in self.lookups:
            if key in lookups:
                xs, ys = (np.asarray(a, dtype=float) for a in lookups[key])
                order = np.argsort(xs, kind="stable")
                xs, ys = xs[order], ys[order]
            else:
                points = self.model.equations[key].points
                xs = np.array([p[0] for p in points])
                ys = np.array([p[1] for p in points])
            tables[key] = (xs, ys)
        control = self.model.control
        dt = float(time_step if time_step is not None else control["time step"])
        t0 = float(control["initial time"])
        tf = float(final_time if final_time is not None else control["final time"])
        steps = round((tf - t0) / dt)
        if abs(t0 + steps * dt - tf) > 1e-9:
            raise ModelError(f"the run {t0}-{tf} is not a whole number of steps of {dt}")
        record = [normalise(r) for r in record]
        annual = [normalise(a) for a in annual]
        for name in (*record, *annual):
            if name not in self.outputs:
                raise ModelError(f"{self.model.path.name}: no variable {name!r} to record")
        with np.errstate(all="ignore"):
            return self.function(values, tables, n, dt, t0, tf, steps, record, annual,
                                 record_every)


def _stateful_parts(eq) -> tuple[str, ...]:
    """Names of the state arrays of a stateful equation."""
    base = f"s_{python_name(eq.key)}"
    if eq.function == "integ":
        return (base,)
    if eq.function in _ORDERS:
        return tuple(f"{base}_{i}" for i in range(_ORDERS[eq.function]))
    return (base,)


def compile_model(model: Model) -> CompiledModel:
    """Compile a parsed model into a vectorised run function (see the module docstring)."""
    eqs = model.equations
    constants = tuple(k for k, e in eqs.items() if e.kind == "constant")
    lookups = tuple(k for k, e in eqs.items() if e.kind == "lookup")
    statefuls = [e for e in eqs.values() if e.kind == "stateful"]
    auxiliaries = {k: e for k, e in eqs.items() if e.kind == "auxiliary"}
    skip = set(constants) | set(lookups) | set(_BUILTINS)

    # step order: auxiliaries after what they read. A stateful's value is known at the top
    # of a step, except a delay's output, the last stage over the *current* delay time: it
    # takes its place among the auxiliaries after what the delay time reads.
    deps = model.dependencies()
    delays = {e.key: e for e in statefuls if e.function in ("delay1", "delay3", "delay3i")}
    ordered = set(auxiliaries) | set(delays)
    step_graph = {k: {d for d in deps[k] if d in ordered} for k in auxiliaries}
    for key, eq in delays.items():
        step_graph[key] = {d for d in variables_in(eq.tree.args[1]) if d in ordered}
    try:
        step_order = list(TopologicalSorter(step_graph).static_order())
    except CycleError as error:
        raise ModelError(f"{model.path.name}: algebraic loop through {error.args[1]}") from error

    # initial order: statefuls after what their initial value reads, auxiliaries after theirs
    init_deps = model.dependencies(initial=True)
    init_graph = {}
    for key in [*auxiliaries, *(e.key for e in statefuls)]:
        init_graph[key] = {d for d in init_deps[key] if d not in skip and eqs[d].kind in
                           ("auxiliary", "stateful")}
    try:
        init_order = list(TopologicalSorter(init_graph).static_order())
    except CycleError as error:
        raise ModelError(f"{model.path.name}: initial values form a loop through "
                         f"{error.args[1]}") from error

    lines = ["def run(P, T, n, dt, t0, tf, steps, record, annual, every):"]
    add = lines.append
    for key in constants:
        add(f"    {_local(key)} = P[{key!r}]")
    for key in lookups:
        add(f"    LX_{python_name(key)}, LY_{python_name(key)} = T[{key!r}]")
    add("    t = t0")
    # initialisation
    for key in init_order:
        eq = eqs[key]
        local = _local(key)
        if eq.kind == "auxiliary":
            add(f"    {local} = np.broadcast_to({emit(eq.tree)}, (n,)).astype(float)")
            continue
        parts = _stateful_parts(eq)
        args = eq.tree.args
        if eq.function == "integ":
            add(f"    {parts[0]} = np.broadcast_to({emit(args[1])}, (n,)).astype(float)")
            add(f"    {local} = {parts[0]}")
        elif eq.function in ("smooth", "smoothi", "smooth3"):
            start = args[2] if eq.function == "smoothi" else args[0]
            for part in parts:
                add(f"    {part} = np.broadcast_to({emit(start)}, (n,)).astype(float)")
            add(f"    {local} = {parts[-1]}")
        elif eq.function in ("delay1", "delay3", "delay3i"):
            order = _ORDERS[eq.function]
            start = args[2] if eq.function == "delay3i" else args[0]
            add(f"    _T = {emit(args[1])}")
            add(f"    if np.any({order} * dt > _T): raise ValueError("
                f"'{eq.name}: delay time shorter than {order} time steps')")
            for part in parts:
                add(f"    {part} = np.broadcast_to(({emit(start)}) * _T, (n,))"
                    ".astype(float)")
            add(f"    {local} = {parts[-1]} / _T")
        elif eq.function == "delay fixed":
            add(f"    _order = np.max({emit(args[1])}) / dt")
            add(f"    _order = int(round(max(_order, 1) + {SMALL_VENSIM}))")
            add(f"    {parts[0]}_pipe = [np.broadcast_to({emit(args[2])}, (n,)).astype(float)]"
                " * _order")
            add(f"    {parts[0]}_ptr = 0")
            add(f"    {local} = {parts[0]}_pipe[0]")
    outputs = tuple(k for k in eqs if eqs[k].kind in ("auxiliary", "stateful", "constant"))
    add("    rec = {name: [] for name in record}")
    add("    ann = {name: [] for name in annual}")
    add("    acc = {name: np.zeros(n) for name in annual}")
    add("    year = int(np.floor(t0 + 1e-9))")
    add("    years = []")
    add("    times = []")
    add("    for k in range(steps + 1):")
    ind = "        "
    add(f"{ind}if k > 0:")
    for key in step_order:
        if key in delays:
            last = _stateful_parts(delays[key])[-1]
            add(f"{ind}    {_local(key)} = {last} / ({emit(delays[key].tree.args[1])})")
        else:
            add(f"{ind}    {_local(key)} = {emit(eqs[key].tree)}")
    # values of statefuls are read before the auxiliaries; set them at the top of the step
    add(f"{ind}local = locals()")
    add(f"{ind}if k % every == 0:")
    add(f"{ind}    times.append(t)")
    add(f"{ind}    for name in record:")
    add(f"{ind}        rec[name].append(np.broadcast_to(local['x_' + NAMES[name]], (n,))"
        ".copy())")
    add(f"{ind}if k == steps:")
    add(f"{ind}    break")
    add(f"{ind}for name in annual:")
    add(f"{ind}    acc[name] = acc[name] + np.broadcast_to(local['x_' + NAMES[name]], (n,)) "
        "* dt")
    # derivatives
    for eq in statefuls:
        parts = _stateful_parts(eq)
        args = eq.tree.args
        if eq.function == "integ":
            add(f"{ind}d_{parts[0]} = {emit(args[0])}")
        elif eq.function in ("smooth", "smoothi", "smooth3"):
            order = _ORDERS[eq.function]
            targets = [emit(args[0]), *parts[:-1]]
            for part, target in zip(parts, targets, strict=True):
                add(f"{ind}d_{part} = ({target} - {part}) * {order} / ({emit(args[1])})")
        elif eq.function in ("delay1", "delay3", "delay3i"):
            order = _ORDERS[eq.function]
            add(f"{ind}_T = {emit(args[1])}")
            inflows = [emit(args[0]), *(f"{p} / _T" for p in parts[:-1])]
            for part, inflow in zip(parts, inflows, strict=True):
                add(f"{ind}d_{part} = ({inflow} - {part} / _T) * {order}")
        elif eq.function == "delay fixed":
            add(f"{ind}_in_{parts[0]} = np.broadcast_to({emit(args[0])}, (n,)).astype(float)")
    # Euler update, then the stateful values for the next step
    for eq in statefuls:
        parts = _stateful_parts(eq)
        local = _local(eq.key)
        if eq.function == "delay fixed":
            pipe = f"{parts[0]}_pipe"
            add(f"{ind}{pipe}[{parts[0]}_ptr] = _in_{parts[0]}")
            add(f"{ind}{parts[0]}_ptr = ({parts[0]}_ptr + 1) % len({pipe})")
            add(f"{ind}{local} = {pipe}[{parts[0]}_ptr]")
            continue
        for part in parts:
            add(f"{ind}{part} = {part} + d_{part} * dt")
    for eq in statefuls:
        parts = _stateful_parts(eq)
        local = _local(eq.key)
        if eq.function in ("integ", "smooth", "smoothi", "smooth3"):
            add(f"{ind}{local} = {parts[-1]}")
    add(f"{ind}t = t + dt")
    add(f"{ind}if t >= year + 1 - 1e-9:")
    add(f"{ind}    years.append(year)")
    add(f"{ind}    for name in annual:")
    add(f"{ind}        ann[name].append(acc[name])")
    add(f"{ind}        acc[name] = np.zeros(n)")
    add(f"{ind}    year += 1")
    add("    out = {name: np.array(values) for name, values in rec.items()}")
    add("    out.update({f'annual:{name}': np.array(values) for name, values in ann.items()})")
    add("    out['time'] = np.array(times)")
    add("    out['years'] = np.array(years)")
    add("    return out")
    source = "\n".join(lines) + "\n"
    namespace = {"np": np, "_zidz": _zidz, "_xidz": _xidz,
                 "NAMES": {k: python_name(k) for k in eqs}}
    exec(compile(source, f"<compiled {model.path.name}>", "exec"), namespace)  # noqa: S102
    return CompiledModel(model, source, namespace["run"], constants, lookups, outputs)
