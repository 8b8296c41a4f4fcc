"""Read a Vensim ``.mdl`` text model in the subset the project uses, without running it.

The model file (``specs/sd/*.mdl``) is the model: PySD runs it (:mod:`analysis.simulation.runner`),
and this module reads the same file for everything PySD does not give directly:

- the equations as expression trees (:func:`parse_model`), from which
  :mod:`analysis.simulation.engine` compiles a vectorised copy of the model (tested equal to
  PySD's run) and :mod:`analysis.simulation.cld` draws the causal-loop diagram;
- the dependency graph (:meth:`Model.dependencies`);
- the units of every equation and their consistency (:func:`check_units`): the units an
  equation declares must equal the units its right-hand side computes;
- the ranges written in the units field (``~ Year [0.5, 3]``), which are the literature or
  calibration ranges the Monte Carlo and the calibration use.

The subset: constants, auxiliaries, ``INTEG``, ``SMOOTH``, ``SMOOTHI``, ``SMOOTH3``, ``DELAY1``, ``DELAY3``, ``DELAY3I``,
``DELAY FIXED`` (each of these as the whole right-hand side of its equation), lookups
(``name([(x0,y0)-(x1,y1)],(x,y),...)``) called as ``name(x)``, ``MIN``, ``MAX``, ``ABS``,
``EXP``, ``LN``, ``SQRT``, ``ZIDZ``, ``XIDZ``, ``IF THEN ELSE``, ``Time``, ``TIME STEP``,
``INITIAL TIME``, arithmetic, comparisons and ``:AND:``/``:OR:``/``:NOT:``. No subscripts, no
macros. Anything else stops with a :class:`ModelError` naming the equation.

Names are compared as Vensim compares them: case-insensitive, with runs of spaces and
underscores equal to one space.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

SKETCH_MARKER = "\\\\\\---///"
CONTROL_NAMES = ("initial time", "final time", "time step", "saveper")
STATEFUL_FUNCTIONS = {"integ": 2, "smooth": 2, "smoothi": 3, "smooth3": 2, "delay1": 2,
                      "delay3": 2, "delay3i": 3, "delay fixed": 3}
PLAIN_FUNCTIONS = {"min": 2, "max": 2, "abs": 1, "exp": 1, "ln": 1, "sqrt": 1, "zidz": 2,
                   "xidz": 3, "if then else": 3}
BUILTIN_NAMES = {"time": "Year", "time step": "Year", "initial time": "Year",
                 "final time": "Year"}


class ModelError(ValueError):
    """A model file outside the supported subset, or inconsistent: names the equation."""


def normalise(name: str) -> str:
    """Vensim's name identity: lower case, quotes dropped, spaces and underscores as one space."""
    return re.sub(r"[\s_]+", " ", name.strip().strip('"')).strip().lower()


def python_name(name: str) -> str:
    """An identifier for a Vensim name (``Ore export ban`` -> ``ore_export_ban``)."""
    text = re.sub(r"[^a-z0-9]+", "_", normalise(name)).strip("_")
    return f"v_{text}" if not text or text[0].isdigit() else text


# --------------------------------------------------------------------------- expression trees
@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Var:
    name: str  # normalised


@dataclass(frozen=True)
class Call:
    function: str  # normalised function or lookup name
    args: tuple
    lookup: bool = False


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / ^ < > <= >= = <> and or
    left: object
    right: object


@dataclass(frozen=True)
class Unary:
    op: str  # - + not
    operand: object


_TOKEN = re.compile(r"""
    (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<logic>:AND:|:OR:|:NOT:)
  | (?P<op><=|>=|<>|[-+*/^(),<>=])
  | (?P<quoted>"[^"]+")
  | (?P<name>[A-Za-z_][A-Za-z0-9_ ]*)
  | (?P<space>\s+)
""", re.VERBOSE | re.IGNORECASE)


def _tokens(text: str, where: str) -> list[tuple[str, str]]:
    out, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ModelError(f"{where}: cannot read {text[position:position + 20]!r}")
        kind = match.lastgroup
        value = match.group(kind)
        position = match.end()
        if kind == "space":
            continue
        if kind in ("name", "quoted"):
            out.append(("name", normalise(value)))
        elif kind == "logic":
            out.append(("op", value.upper().strip(":").lower()))
        else:
            out.append((kind, value))
    return out


_BINARY = {"or": 1, "and": 2, "=": 4, "<>": 4, "<": 4, ">": 4, "<=": 4, ">=": 4,
           "+": 5, "-": 5, "*": 6, "/": 6, "^": 8}


class _Parser:
    """Precedence climbing over Vensim's operators (``^`` binds tightest, right-associative;
    unary minus binds tighter than ``*`` and looser than ``^``; ``:NOT:`` looser than the
    comparisons)."""

    def __init__(self, text: str, where: str, lookups: set[str]) -> None:
        self.tokens = _tokens(text, where)
        self.position = 0
        self.where = where
        self.lookups = lookups

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise ModelError(f"{self.where}: expected {value or 'more'}, found "
                             f"{token[1] if token else 'the end'}")
        self.position += 1
        return token

    def parse(self) -> object:
        tree = self.expression(0)
        if self.peek() is not None:
            raise ModelError(f"{self.where}: unexpected {self.peek()[1]!r}")
        return tree

    def expression(self, minimum: int) -> object:
        left = self.unary()
        while True:
            token = self.peek()
            if token is None or token[0] != "op" or token[1] not in _BINARY:
                return left
            precedence = _BINARY[token[1]]
            if precedence < minimum:
                return left
            self.take()
            right = self.expression(precedence if token[1] == "^" else precedence + 1)
            left = BinOp(token[1], left, right)

    def unary(self) -> object:
        token = self.peek()
        if token == ("op", "-") or token == ("op", "+"):
            self.take()
            return Unary(token[1], self.expression(7))
        if token == ("op", "not"):
            self.take()
            return Unary("not", self.expression(3))
        return self.atom()

    def atom(self) -> object:
        kind, value = self.take()
        if kind == "num":
            return Num(float(value))
        if value == "(":
            inner = self.expression(0)
            self.take(")")
            return inner
        if kind != "name":
            raise ModelError(f"{self.where}: unexpected {value!r}")
        if self.peek() == ("op", "("):
            self.take("(")
            args = []
            if self.peek() != ("op", ")"):
                args.append(self.expression(0))
                while self.peek() == ("op", ","):
                    self.take(",")
                    args.append(self.expression(0))
            self.take(")")
            if value in self.lookups:
                if len(args) != 1:
                    raise ModelError(f"{self.where}: lookup {value!r} takes one argument")
                return Call(value, tuple(args), lookup=True)
            arity = {**STATEFUL_FUNCTIONS, **PLAIN_FUNCTIONS}.get(value)
            if arity is None:
                raise ModelError(f"{self.where}: function {value.upper()!r} is outside the "
                                 "supported subset")
            if len(args) != arity:
                raise ModelError(f"{self.where}: {value.upper()} takes {arity} arguments, "
                                 f"found {len(args)}")
            return Call(value, tuple(args))
        return Var(value)


def parse_expression(text: str, where: str = "expression",
                     lookups: set[str] | frozenset[str] = frozenset()) -> object:
    """The expression tree of a Vensim right-hand side."""
    return _Parser(text, where, set(lookups)).parse()


def walk(tree: object):
    """Every node of an expression tree, depth first."""
    yield tree
    if isinstance(tree, Call):
        for arg in tree.args:
            yield from walk(arg)
    elif isinstance(tree, BinOp):
        yield from walk(tree.left)
        yield from walk(tree.right)
    elif isinstance(tree, Unary):
        yield from walk(tree.operand)


def variables_in(tree: object) -> set[str]:
    """Names a tree reads: variables and called lookups (``Time`` included)."""
    out = set()
    for node in walk(tree):
        if isinstance(node, Var):
            out.add(node.name)
        elif isinstance(node, Call) and node.lookup:
            out.add(node.function)
    return out


# --------------------------------------------------------------------------- equations
@dataclass
class Equation:
    """One equation of the model file."""

    name: str  # as written
    key: str  # normalised
    kind: str  # constant, auxiliary, stateful, lookup, control
    text: str  # right-hand side as written (lookups: the points)
    units: str
    limits: tuple[float | None, float | None] | None
    comment: str
    group: str
    tree: object = None
    value: float | None = None  # constants
    points: tuple[tuple[float, float], ...] = ()  # lookups
    function: str | None = None  # stateful: integ, smooth, delay3, ...


@dataclass
class Model:
    """A parsed model file: its equations in file order and the sketch text."""

    path: Path
    text: str
    equations: dict[str, Equation]
    sketch: str
    control: dict[str, float] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def __getitem__(self, name: str) -> Equation:
        key = normalise(name)
        if key not in self.equations:
            raise KeyError(f"{self.path.name}: no variable named {name!r}")
        return self.equations[key]

    def __contains__(self, name: str) -> bool:
        return normalise(name) in self.equations

    def of_kind(self, *kinds: str) -> list[Equation]:
        return [e for e in self.equations.values() if e.kind in kinds]

    def dependencies(self, initial: bool = False) -> dict[str, set[str]]:
        """{variable: names its equation reads}, normalised names, ``time`` included.

        A stateful variable reads the arguments of its function (the rate and the initial value
        of ``INTEG``, the input, the time and the initial value of a delay or smooth). With
        ``initial=True`` only what the initial value needs: the initial-value argument of
        ``INTEG``, ``SMOOTHI`` and ``DELAY FIXED`` (and its delay time), the input and time of
        the others."""
        out = {}
        for key, eq in self.equations.items():
            if eq.kind in ("constant", "lookup"):
                out[key] = set()
            elif eq.kind == "control":
                out[key] = variables_in(eq.tree) if eq.tree is not None else set()
            elif eq.kind == "stateful" and initial:
                args = eq.tree.args
                if eq.function == "integ":
                    out[key] = variables_in(args[1])
                elif eq.function == "delay fixed":
                    out[key] = variables_in(args[2]) | variables_in(args[1])
                elif eq.function == "smoothi":
                    out[key] = variables_in(args[2])
                elif eq.function == "delay3i":
                    out[key] = variables_in(args[2]) | variables_in(args[1])
                else:
                    out[key] = variables_in(args[0]) | variables_in(args[1])
            else:
                out[key] = variables_in(eq.tree)
        return out


_LIMITS = re.compile(r"\[([^\]]*)\]\s*$")


def _split_units(field_text: str, where: str) -> tuple[str, tuple | None]:
    text = field_text.strip()
    match = _LIMITS.search(text)
    if match is None:
        return text, None
    parts = [p.strip() for p in match.group(1).split(",")]
    if len(parts) not in (2, 3):
        raise ModelError(f"{where}: a range is written [low, high] or [low, high, step]")
    bounds = []
    for part in parts[:2]:
        if part in ("?", ""):
            bounds.append(None)
            continue
        try:
            bounds.append(float(part))
        except ValueError as error:
            raise ModelError(f"{where}: range bound {part!r} is not a number") from error
    return text[:match.start()].strip(), (bounds[0], bounds[1])


_LOOKUP_DEFINITION = re.compile(r"^(?P<name>[^=(]+?)\s*\(\s*(?P<body>\[.*\].*)\)\s*$", re.DOTALL)
_POINT = re.compile(r"\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)")


def _parse_lookup(body: str, where: str) -> tuple[tuple[float, float], ...]:
    ranges_end = body.index("]")
    points = tuple((float(x), float(y)) for x, y in _POINT.findall(body[ranges_end + 1:]))
    if len(points) < 2:
        raise ModelError(f"{where}: a lookup needs at least two points")
    xs = [p[0] for p in points]
    if any(b < a for a, b in pairwise(xs)):
        raise ModelError(f"{where}: lookup x values must not decrease")
    return points


def parse_model(path: Path | str) -> Model:
    """Parse a model file; a construct outside the subset stops with the equation's name."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if SKETCH_MARKER not in text:
        raise ModelError(f"{path.name}: no sketch section ({SKETCH_MARKER})")
    body, sketch = text.split(SKETCH_MARKER, 1)
    body = body.replace("{UTF-8}", "")
    body = re.sub(r"\\\s*\n", " ", body)  # Vensim continues long lines with a backslash
    records = body.split("|")
    raw: list[tuple[str, str, str, str]] = []
    group = ""
    for record in records:
        record = record.strip()
        if not record:
            continue
        group_match = re.match(r"^\*{3,}\s*\n?\s*\.(?P<group>[^\n*]+)\n?\s*\*{3,}~", record)
        if group_match:
            group = group_match.group("group").strip()
            continue
        fields = record.split("~")
        if len(fields) < 3:
            raise ModelError(f"{path.name}: an equation without units and comment fields: "
                             f"{record[:60]!r}")
        definition, units_field, comment = fields[0], fields[1], "~".join(fields[2:])
        raw.append((definition.strip(), units_field, " ".join(comment.split()), group))

    lookup_names = set()
    for definition, *_ in raw:
        match = _LOOKUP_DEFINITION.match(definition)
        if match and "=" not in definition.split("(", 1)[0]:
            lookup_names.add(normalise(match.group("name")))

    equations: dict[str, Equation] = {}
    for definition, units_field, comment, grp in raw:
        lookup = _LOOKUP_DEFINITION.match(definition)
        if lookup and normalise(lookup.group("name")) in lookup_names \
                and "=" not in definition.split("(", 1)[0]:
            name = lookup.group("name").strip()
            where = f"{path.name}: {name}"
            units, limits = _split_units(units_field, where)
            eq = Equation(name, normalise(name), "lookup", lookup.group("body"), units, limits,
                          comment, grp, points=_parse_lookup(lookup.group("body"), where))
        else:
            if "=" not in definition:
                raise ModelError(f"{path.name}: cannot read the equation {definition[:60]!r}")
            name, rhs = definition.split("=", 1)
            name, rhs = name.strip(), " ".join(rhs.split())
            where = f"{path.name}: {name}"
            if ":" in name or "[" in name:
                raise ModelError(f"{where}: subscripts and special equation types are outside "
                                 "the supported subset")
            units, limits = _split_units(units_field, where)
            tree = parse_expression(rhs, where, lookup_names)
            key = normalise(name)
            kind = "auxiliary"
            function = None
            value = None
            if key in CONTROL_NAMES:
                kind = "control"
                value = tree.value if isinstance(tree, Num) else None
            elif isinstance(tree, Num):
                kind, value = "constant", tree.value
            elif isinstance(tree, Unary) and tree.op == "-" and isinstance(tree.operand, Num):
                kind, value = "constant", -tree.operand.value
            elif isinstance(tree, Call) and tree.function in STATEFUL_FUNCTIONS:
                kind, function = "stateful", tree.function
            if function == "smoothi" and re.search(r",\s*-?\d+\s*\)\s*$", rhs):
                raise ModelError(f"{where}: write the initial value of SMOOTHI as a decimal "
                                 "(1.0, not 1): PySD 3.14 keeps an integer state and drops the "
                                 "first step of the smooth")
            for node in walk(tree):
                if node is not tree and isinstance(node, Call) \
                        and node.function in STATEFUL_FUNCTIONS:
                    raise ModelError(f"{where}: {node.function.upper()} must be the whole "
                                     "right-hand side of its equation")
            eq = Equation(name, key, kind, rhs, units, limits, comment, grp, tree=tree,
                          value=value, function=function)
        if eq.key in equations:
            raise ModelError(f"{path.name}: {eq.name!r} is defined twice")
        if not eq.units:
            raise ModelError(f"{path.name}: {eq.name!r} has no units")
        equations[eq.key] = eq

    control = {}
    for name in CONTROL_NAMES:
        if name not in equations:
            raise ModelError(f"{path.name}: the control variable {name.upper()!r} is missing")
    for name in ("initial time", "final time", "time step"):
        if equations[name].value is None:
            raise ModelError(f"{path.name}: {name.upper()} must be a number")
        control[name] = equations[name].value
    model = Model(path, text, equations, sketch, control)
    known = set(equations) | set(BUILTIN_NAMES)
    for key, deps in model.dependencies().items():
        unknown = sorted(deps - known)
        if unknown:
            raise ModelError(f"{path.name}: {equations[key].name!r} reads undefined "
                             f"{unknown}")
    return model


# --------------------------------------------------------------------------- units
Units = Counter  # {base unit: exponent}; empty = dimensionless


def parse_units(text: str, where: str = "units") -> Units:
    """``kt/Year`` -> {kt: 1, Year: -1}; ``Dmnl`` and ``1`` are dimensionless."""
    tokens = re.findall(r"[A-Za-z_$][A-Za-z0-9_$]*|\d+(?:\.\d+)?|[*/^()]", text)
    if "".join(tokens) != re.sub(r"\s+", "", text):
        raise ModelError(f"{where}: cannot read the units {text!r}")
    position = 0

    def expression() -> Units:
        nonlocal position
        result = term()
        while position < len(tokens) and tokens[position] in "*/":
            op = tokens[position]
            position += 1
            right = term()
            result = _combine(result, right, 1 if op == "*" else -1)
        return result

    def term() -> Units:
        nonlocal position
        token = tokens[position]
        position += 1
        if token == "(":
            result = expression()
            position += 1
        elif re.fullmatch(r"\d+(?:\.\d+)?", token) or token.lower() == "dmnl":
            result = Counter()
        else:
            result = Counter({token: 1})
        if position < len(tokens) and tokens[position] == "^":
            power = float(tokens[position + 1])
            position += 2
            result = Counter({k: v * power for k, v in result.items()})
        return result

    return _clean(expression())


def _combine(left: Units, right: Units, sign: int) -> Units:
    out = Counter(left)
    for k, v in right.items():
        out[k] += sign * v
    return _clean(out)


def _clean(units: Units) -> Units:
    return Counter({k: v for k, v in units.items() if abs(v) > 1e-12})


def format_units(units: Units | None) -> str:
    if units is None:
        return "(any)"
    if not units:
        return "Dmnl"
    up = [k if v == 1 else f"{k}^{v:g}" for k, v in sorted(units.items()) if v > 0]
    down = [k if v == -1 else f"{k}^{-v:g}" for k, v in sorted(units.items()) if v < 0]
    return ("*".join(up) or "1") + ("/" + "/".join(down) if down else "")


class _UnitChecker:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.declared = {k: parse_units(e.units, f"{model.path.name}: {e.name}")
                         for k, e in model.equations.items()}
        self.declared.update({k: parse_units(v) for k, v in BUILTIN_NAMES.items()})

    def units(self, tree: object, where: str) -> Units | None:
        """Units of a tree; None for a bare number (it takes the units it meets)."""
        if isinstance(tree, Num):
            return None
        if isinstance(tree, Var):
            return self.declared[tree.name]
        if isinstance(tree, Unary):
            inner = self.units(tree.operand, where)
            return Counter() if tree.op == "not" else inner
        if isinstance(tree, BinOp):
            left, right = self.units(tree.left, where), self.units(tree.right, where)
            if tree.op in ("+", "-"):
                return self.same(left, right, where, tree.op)
            if tree.op in ("<", ">", "<=", ">=", "=", "<>"):
                self.same(left, right, where, tree.op)
                return Counter()
            if tree.op in ("and", "or"):
                return Counter()
            if tree.op == "*":
                return _combine(left or Counter(), right or Counter(), 1)
            if tree.op == "/":
                return _combine(left or Counter(), right or Counter(), -1)
            if tree.op == "^":
                if right:
                    raise ModelError(f"{where}: an exponent must be dimensionless")
                if not left:
                    return Counter()
                if not isinstance(tree.right, Num):
                    raise ModelError(f"{where}: a quantity with units "
                                     f"({format_units(left)}) raised to a variable power")
                return _clean(Counter({k: v * tree.right.value for k, v in left.items()}))
        if isinstance(tree, Call):
            if tree.lookup:
                return self.declared[tree.function]
            args = [self.units(a, where) for a in tree.args]
            f = tree.function
            if f in ("min", "max"):
                return self.same(args[0], args[1], where, f.upper())
            if f == "abs":
                return args[0]
            if f in ("exp", "ln"):
                if args[0]:
                    raise ModelError(f"{where}: {f.upper()} of a quantity with units "
                                     f"{format_units(args[0])}")
                return Counter()
            if f == "sqrt":
                return None if args[0] is None else Counter(
                    {k: v / 2 for k, v in args[0].items()})
            if f == "zidz":
                return _combine(args[0] or Counter(), args[1] or Counter(), -1)
            if f == "xidz":
                ratio = _combine(args[0] or Counter(), args[1] or Counter(), -1)
                return self.same(ratio, args[2], where, "XIDZ")
            if f == "if then else":
                return self.same(args[1], args[2], where, "IF THEN ELSE")
        raise ModelError(f"{where}: cannot compute units of {tree!r}")

    def same(self, left: Units | None, right: Units | None, where: str, op: str
             ) -> Units | None:
        if left is None:
            return right
        if right is None:
            return left
        if left != right:
            raise ModelError(f"{where}: {op} of {format_units(left)} and {format_units(right)}")
        return left


def check_units(model: Model) -> list[str]:
    """Every equation's declared units against the units of its right-hand side.

    Rules (Vensim's): ``+``, ``-``, comparisons, ``MIN``/``MAX`` and the branches of
    ``IF THEN ELSE`` need equal units; ``*`` and ``/`` combine them; an exponent, and the
    argument of ``EXP`` and ``LN``, must be dimensionless; a bare number takes the units it
    meets. ``INTEG(rate, init)``: rate × Year and init in the stock's units; ``SMOOTH``,
    ``DELAY``: the input in the output's units, the time in Year. A lookup's call has the
    lookup's declared units. Returns the list of problems, one line each (empty: consistent).
    """
    checker = _UnitChecker(model)
    year = Counter({"Year": 1})
    problems = []
    for key, eq in model.equations.items():
        where = f"{model.path.name}: {eq.name}"
        declared = checker.declared[key]
        try:
            if eq.kind in ("constant", "lookup") or eq.tree is None:
                continue
            if eq.kind == "stateful":
                args = eq.tree.args
                if eq.function == "integ":
                    rate = checker.units(args[0], where)
                    if rate is not None and _combine(rate, year, 1) != declared:
                        problems.append(f"{where}: INTEG rate has {format_units(rate)}, "
                                        f"needs {format_units(_combine(declared, year, -1))}")
                    init = checker.units(args[1], where)
                    if init is not None and init != declared:
                        problems.append(f"{where}: initial value has {format_units(init)}, "
                                        f"declared {format_units(declared)}")
                    continue
                value = checker.units(args[0], where)
                if value is not None and value != declared:
                    problems.append(f"{where}: {eq.function.upper()} input has "
                                    f"{format_units(value)}, declared {format_units(declared)}")
                if eq.function in ("smoothi", "delay3i", "delay fixed"):
                    init = checker.units(args[2], where)
                    if init is not None and init != declared:
                        problems.append(f"{where}: initial value has {format_units(init)}, "
                                        f"declared {format_units(declared)}")
                delay = checker.units(args[1], where)
                if delay is not None and delay != year:
                    problems.append(f"{where}: {eq.function.upper()} time has "
                                    f"{format_units(delay)}, needs Year")
                continue
            computed = checker.units(eq.tree, where)
            if computed is not None and computed != declared:
                problems.append(f"{where}: right-hand side has {format_units(computed)}, "
                                f"declared {format_units(declared)}")
        except ModelError as error:
            problems.append(str(error))
    return problems
