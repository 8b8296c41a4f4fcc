"""The sketch section of a Vensim model file, drawn from the model's own equations.

Vensim PLE opens a ``.mdl`` file only with a well-formed sketch section after the equations:
the header ``V300``, a view line ``*View 1``, a font line, then one line per object (type 10:
a variable, drawn as a box for a stock; type 11: a valve; type 12: a cloud; type 1: an arrow or
a pipe) and the settings block after ``///---\\\\\\``. :func:`sketch_section` lays every
variable of the model out in one view, one block per group of the equation section, with a
valve and pipes for each flow of a stock, a cloud where a flow comes from or goes outside the
model, and an influence arrow for every dependency. ``python -m analysis.simulation.sketch
specs/sd/nickel.mdl`` rewrites the sketch section of a file in place (the equations are left
byte for byte); :func:`check_sketch` is the test that a sketch is well formed and complete.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

from analysis.simulation.mdl import BinOp, Model, Unary, Var, normalise, parse_model

HEADER = ("V300  Do not put anything below this section - it will be ignored\n"
          "*View 1\n"
          "$192-192-192,0,Times New Roman|12||0-0-0|0-0-0|0-0-255|-1--1--1|-1--1--1|"
          "96,96,100,0\n")
MARKER = "\\\\\\---/// Sketch information - do not modify anything except names\n"
COLUMN_WIDTH, ROW_HEIGHT, BLOCK_COLUMNS = 190, 60, 4


def stock_flows(model: Model) -> dict[str, list[tuple[str, int]]]:
    """{stock: [(flow, +1 inflow / -1 outflow)]} for rates written as sums of variables."""
    out = {}
    for eq in model.of_kind("stateful"):
        if eq.function != "integ":
            continue
        terms: list[tuple[str, int]] = []

        def collect(tree, sign, terms=terms):
            if isinstance(tree, Var):
                terms.append((tree.name, sign))
            elif isinstance(tree, BinOp) and tree.op in "+-":
                collect(tree.left, sign)
                collect(tree.right, sign if tree.op == "+" else -sign)
            elif isinstance(tree, Unary) and tree.op == "-":
                collect(tree.operand, -sign)
            else:
                terms.clear()
                terms.append(("", 0))

        collect(eq.tree.args[0], 1)
        out[eq.key] = [] if ("", 0) in terms else terms
    return out


def sketch_section(model: Model) -> str:
    """The sketch text (from the marker line to the end of the file)."""
    flows_of = stock_flows(model)
    flow_owner = {}
    for stock, flows in flows_of.items():
        for flow, sign in flows:
            flow_owner.setdefault(flow, (stock, sign))
    groups: dict[str, list[str]] = defaultdict(list)
    for key, eq in model.equations.items():
        if eq.kind == "control":
            continue
        groups[eq.group or "Model"].append(key)
    lines = []
    ids: dict[str, int] = {}
    valve_of: dict[str, int] = {}
    position: dict[str, tuple[int, int]] = {}
    next_id = 1
    top = 40
    for group, keys in groups.items():
        # each block: a comment with the group name, then its variables row by row
        lines.append(f"12,{next_id},0,{60 + COLUMN_WIDTH * BLOCK_COLUMNS // 2},{top},"
                     f"{COLUMN_WIDTH * BLOCK_COLUMNS // 2},10,8,7,0,0,-1,0,0,0,0,0,0,0,0,0")
        lines.append(group)
        next_id += 1
        top += ROW_HEIGHT
        for i, key in enumerate(keys):
            x = 100 + (i % BLOCK_COLUMNS) * COLUMN_WIDTH
            y = top + (i // BLOCK_COLUMNS) * ROW_HEIGHT
            position[key] = (x, y)
        top += ((len(keys) - 1) // BLOCK_COLUMNS + 1) * ROW_HEIGHT + ROW_HEIGHT // 2
    for key, (x, y) in position.items():
        eq = model.equations[key]
        name = eq.name
        if key in flow_owner:
            valve_of[key] = next_id
            lines.append(f"11,{next_id},0,{x},{y - 14},6,8,34,3,0,0,1,0,0,0,0,0,0,0,0,0")
            next_id += 1
            ids[key] = next_id
            lines.append(f"10,{next_id},{name},{x},{y + 6},55,12,40,3,0,0,-1,0,0,0,0,0,0,"
                         "0,0,0")
        elif eq.kind == "stateful" and eq.function == "integ":
            ids[key] = next_id
            lines.append(f"10,{next_id},{name},{x},{y},45,22,3,3,0,0,0,0,0,0,0,0,0,0,0,0")
        else:
            ids[key] = next_id
            lines.append(f"10,{next_id},{name},{x},{y},55,16,8,3,0,0,0,0,0,0,0,0,0,0,0,0")
        next_id += 1
    # pipes: valve -> stock (inflow) or stock -> valve -> cloud (outflow)
    for flow, (stock, sign) in flow_owner.items():
        valve = valve_of[flow]
        vx, vy = position[flow][0], position[flow][1] - 14
        sx, sy = position[stock]
        cloud = next_id
        lines.append(f"12,{cloud},48,{vx - 40 if sign > 0 else vx + 40},{vy},10,8,0,3,0,0,-1,"
                     "0,0,0,0,0,0,0,0,0")
        next_id += 1
        other_stock = next((s for s, flows in flows_of.items() if s != stock
                            and any(f == flow for f, _ in flows)), None)
        source = ids[other_stock] if other_stock else cloud
        if sign > 0:
            lines.append(f"1,{next_id},{valve},{ids[stock]},4,0,0,22,0,0,0,-1--1--1,,1|"
                         f"({(vx + sx) // 2},{(vy + sy) // 2})|")
            lines.append(f"1,{next_id + 1},{valve},{source},100,0,0,22,0,0,0,-1--1--1,,1|"
                         f"({vx - 20},{vy})|")
        else:
            lines.append(f"1,{next_id},{valve},{source},4,0,0,22,0,0,0,-1--1--1,,1|"
                         f"({vx + 20},{vy})|")
            lines.append(f"1,{next_id + 1},{valve},{ids[stock]},100,0,0,22,0,0,0,-1--1--1,,1|"
                         f"({(vx + sx) // 2},{(vy + sy) // 2})|")
        next_id += 2
    # influence arrows: every variable an equation reads (a flow's arrows point at its valve)
    dependencies = model.dependencies()
    for key, deps in dependencies.items():
        if key not in ids:
            continue
        target = valve_of.get(key, ids[key])
        for dep in sorted(deps):
            if dep not in ids or (key in flows_of and any(f == dep for f, _ in flows_of[key])):
                continue
            (x1, y1), (x2, y2) = position[dep], position[key]
            lines.append(f"1,{next_id},{ids[dep]},{target},0,0,0,0,0,64,0,-1--1--1,,1|"
                         f"({(x1 + x2) // 2},{(y1 + y2) // 2 - 8})|")
            next_id += 1
    control = model.control
    settings = ("///---\\\\\\\n:L<%^E!@\n1:Current.vdfx\n9:Current\n15:0,0,0,0,0,0\n19:100,0\n"
                "27:0,\n34:0,\n42:1\n72:0\n73:0\n35:Date\n36:YYYY-MM-DD\n"
                f"37:{int(control['initial time'])}\n38:1\n39:1\n40:0\n41:0\n"
                f"24:{control['initial time']:g}\n25:{control['final time']:g}\n"
                f"26:{control['final time']:g}\n")
    return MARKER + HEADER + "\n".join(lines) + "\n" + settings


def check_sketch(model: Model) -> list[str]:
    """Problems of a model's sketch section (empty: well formed and complete): the header,
    every variable drawn once, every object id unique, every arrow between existing objects,
    every name in the sketch a model variable."""
    problems = []
    lines = model.sketch.splitlines()
    if not lines or not lines[1].startswith("V300"):
        problems.append("the sketch does not start with the V300 header")
    if not any(line.startswith("*View") for line in lines):
        problems.append("no view line (*View ...)")
    if "///---\\\\\\" not in model.sketch:
        problems.append("no end marker ///---\\\\\\")
    body = model.sketch.split("///---\\\\\\")[0]
    ids, drawn, arrows = set(), [], []
    for line in body.splitlines():
        fields = line.split(",")
        if len(fields) < 4 or not re.fullmatch(r"\d+", fields[0]):
            continue
        kind, object_id = fields[0], fields[1]
        if object_id in ids:
            problems.append(f"object id {object_id} is used twice")
        ids.add(object_id)
        if kind == "10":
            drawn.append(normalise(fields[2]))
        elif kind == "1":
            arrows.append((fields[2], fields[3], object_id))
    for source, target, arrow in arrows:
        for end in (source, target):
            if end not in ids:
                problems.append(f"arrow {arrow} points at a missing object {end}")
    variables = {k for k, e in model.equations.items() if e.kind != "control"}
    for name in sorted(set(drawn) - variables):
        problems.append(f"the sketch draws {name!r}, which the equations do not define")
    counts = defaultdict(int)
    for name in drawn:
        counts[name] += 1
    for name in sorted(variables):
        if counts[name] != 1:
            problems.append(f"{model.equations[name].name!r} is drawn {counts[name]} times")
    return problems


def rewrite(path: Path) -> None:
    """Replace the sketch section of a model file by :func:`sketch_section`."""
    model = parse_model(path)
    text = path.read_text(encoding="utf-8")
    head = text.split(MARKER.rstrip("\n"), 1)[0]
    path.write_text(head + sketch_section(model), encoding="utf-8")


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        rewrite(Path(argument))
        print(f"rewrote the sketch of {argument}")
