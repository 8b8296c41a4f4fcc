"""The causal-loop diagram of a model, drawn from the model's own dependency graph.

A loop is written (in the scenario specification) as the closed path of variables it runs
through. :func:`loop_links` checks every link of the path against the dependency graph of the
model file (a link the equations do not have is an error: the diagram cannot claim a loop the
model lacks) and gives each link its polarity, the sign of ∂target/∂source computed on the
model's own equations at reference states of a run (central differences; the first states at
which the link is active decide, since a MIN or MAX can switch a link off). A stock's inflow has
polarity +1 and its outflow −1; a smooth or delay follows its input (+1). The loop's polarity is
the product of its links: + reinforcing (R), − balancing (B); a loop with a link inactive in
every reference state is marked "inactive".

:func:`condense` keeps the variables a loop names for display and multiplies the polarities of
the links between them; :func:`draw` draws one small circular diagram per loop, and
:func:`to_dot` writes the same diagram as Graphviz text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.simulation import engine, mdl


@dataclass(frozen=True)
class LoopSpec:
    name: str
    path: tuple[str, ...]  # closed: the last variable links back to the first
    display: tuple[str, ...] = ()


class LoopError(ValueError):
    """A loop whose path the model does not have."""


def graph(model: mdl.Model) -> dict[str, set[str]]:
    """{variable: variables it reads} over auxiliaries and statefuls (normalised names)."""
    deps = model.dependencies()
    return {k: v for k, v in deps.items() if model.equations[k].kind in ("auxiliary",
                                                                           "stateful")}


def _compile_expression(tree) -> tuple[object, list[str]]:
    names = sorted(mdl.variables_in(tree))
    arguments = ", ".join(engine._local(n) for n in names)
    source = f"lambda {arguments}: {engine.emit(tree)}" if names else \
        f"lambda: {engine.emit(tree)}"
    function = eval(source, {"np": np, "_zidz": engine._zidz,
                             "_xidz": engine._xidz, "LX": None})
    return function, names


def link_polarity(model: mdl.Model, source: str, target: str,
                  states: Sequence[Mapping[str, float]],
                  tables: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> int:
    """Sign of the effect of ``source`` on ``target`` (+1, −1, 0 if inactive in every state)."""
    source, target = mdl.normalise(source), mdl.normalise(target)
    eq = model.equations[target]
    if eq.kind == "stateful":
        if eq.function == "integ":
            tree = eq.tree.args[0]
        elif source in mdl.variables_in(eq.tree.args[0]):
            return 1
        else:
            tree = None
        if tree is None:
            return 0
    else:
        tree = eq.tree
    function, names = _compile_expression(tree)
    if source not in names:
        return 0
    lookups = {f"LX_{mdl.python_name(k)}": v[0] for k, v in tables.items()}
    lookups.update({f"LY_{mdl.python_name(k)}": v[1] for k, v in tables.items()})
    function.__globals__.update(lookups)
    for state in states:
        values = {n: float(state[n]) for n in names}
        base = values[source]
        step = 1e-6 * max(abs(base), 1.0)
        up = function(*[base + step if n == source else values[n] for n in names])
        down = function(*[base - step if n == source else values[n] for n in names])
        difference = float(np.asarray(up - down))
        if abs(difference) > 1e-12 * max(1.0, abs(float(np.asarray(up)))):
            return 1 if difference > 0 else -1
    return 0


def loop_links(model: mdl.Model, loop: LoopSpec, states: Sequence[Mapping[str, float]],
               tables: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """``loop, source, target, polarity`` for each link of a closed path (error if the model
    has no such link)."""
    edges = graph(model)
    path = [mdl.normalise(v) for v in loop.path]
    rows = []
    for source, target in zip(path, [*path[1:], path[0]], strict=True):
        if target not in edges or source not in edges[target]:
            raise LoopError(f"loop {loop.name!r}: {target!r} does not read {source!r} in "
                            f"{model.path.name}")
        rows.append({"loop": loop.name, "source": model.equations[source].name,
                     "target": model.equations[target].name,
                     "polarity": link_polarity(model, source, target, states, tables)})
    return pd.DataFrame(rows)


def loop_polarity(links: pd.DataFrame) -> str:
    """'R' (reinforcing), 'B' (balancing) or 'inactive'."""
    product = int(np.prod(links["polarity"].to_numpy()))
    return {1: "R", -1: "B"}.get(product, "inactive")


def condense(links: pd.DataFrame, display: Sequence[str]) -> list[tuple[str, str, int]]:
    """Links between the display variables of a loop, polarities multiplied along the way."""
    names = list(links["source"])
    keep = {mdl.normalise(d) for d in display} or {mdl.normalise(n) for n in names}
    order = [n for n in names if mdl.normalise(n) in keep]
    if len(order) < 2:
        order = names
    out = []
    polarities = dict(zip(links["source"], links["polarity"], strict=True))
    start = names.index(order[0])
    rotated = names[start:] + names[:start]
    sign, previous = 1, rotated[0]
    for name in [*rotated[1:], rotated[0]]:
        sign *= polarities[rotated[(rotated.index(name) - 1) % len(rotated)]]
        if name in order:
            out.append((previous, name, sign))
            previous, sign = name, 1
    return out


def _wrap(text: str, width: int = 16) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)


def draw(loops: Sequence[tuple[LoopSpec, pd.DataFrame]], title: str):
    """One circular panel per loop: its display variables, arrows with + / − and the loop's
    label (R or B) in the middle. Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    columns = 3
    rows = (len(loops) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 5.0 * rows))
    axes = np.atleast_1d(axes).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, (spec, links) in zip(axes, loops, strict=False):
        edges = condense(links, spec.display)
        nodes = [e[0] for e in edges]
        angle = np.pi / 2 - 2 * np.pi * np.arange(len(nodes)) / len(nodes)
        xy = {n: (np.cos(a), np.sin(a)) for n, a in zip(nodes, angle, strict=True)}
        for name, (x, y) in xy.items():
            ax.text(x, y, _wrap(name), ha="center", va="center", fontsize=7.5,
                    bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "#888"})
        for source, target, sign in edges:
            (x1, y1), (x2, y2) = xy[source], xy[target]
            arrow = FancyArrowPatch((x1, y1), (x2, y2), connectionstyle="arc3,rad=-0.25",
                                    arrowstyle="-|>", mutation_scale=12, shrinkA=24,
                                    shrinkB=24, color="#333", lw=1.0)
            ax.add_patch(arrow)
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            ax.text(mx * 1.12, my * 1.12, {1: "+", -1: "\u2212", 0: "0"}[sign],
                    ha="center", va="center", fontsize=11, fontweight="bold",
                    color={1: "#1a6", -1: "#c22", 0: "#888"}[sign])
        kind = loop_polarity(links)
        # two variables sit top and bottom with the arcs between them: label beside them
        label_x = 1.05 if len(nodes) == 2 else 0.0
        ax.text(label_x, 0, f"{kind}\n{_wrap(spec.name, 20)}", ha="center", va="center",
                fontsize=9, fontweight="bold")
        ax.set_xlim(-1.5, 1.5)
        ax.set_ylim(-1.4, 1.4)
        ax.set_aspect("equal")
    figure.suptitle(title, fontsize=12)
    figure.tight_layout()
    return figure


def to_dot(loops: Sequence[tuple[LoopSpec, pd.DataFrame]], title: str) -> str:
    """The condensed loops as one Graphviz digraph (links labelled + / −, loops as clusters)."""
    lines = [f'digraph "{title}" {{', "  rankdir=LR; node [shape=box, fontsize=10];"]
    for i, (spec, links) in enumerate(loops):
        kind = loop_polarity(links)
        lines.append(f'  subgraph cluster_{i} {{ label="{kind}: {spec.name}";')
        for source, target, sign in condense(links, spec.display):
            label = {1: "+", -1: "-", 0: "0"}[sign]
            lines.append(f'    "{source}" -> "{target}" [label="{label}"];')
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"
