"""Diagrams of networks in the lecture's style: a column of boxes ("3x3 conv, 64", "pool, /2", "FC 4096")
coloured by kind, with output shapes beside them; residual shortcuts as arcs (dashed where they
project); parallel branches (Inception, FractalNet) side by side into their join; auxiliary classifiers
as side branches; repeated blocks collapsed to one box with "x3".

The structure is read from the network, not written per model: :func:`~cnnarch.analysis.profile`
records which layer wrote each tensor a layer reads (``Layer.extra["_inputs"]``), so the diagram is the
data-flow graph of the layers that run. Activations, normalization other than LRN, dropout and reshapes
are folded into the box before them (the lecture draws them so). A fork and the node where its paths
meet again (the immediate post-dominator) give parallel branches; a sum whose second path is empty or one
layer is a shortcut; layers whose output never reaches the network's output are side branches. A graph
that is not series-parallel (DenseNet-like) is drawn as one column with every skip edge as an arc.

Rendering: the layout is computed once into primitives (boxes, lines, curves, text) that a plain SVG
writer and matplotlib (for PNG) both draw, so the two outputs are the same picture and nothing beyond
the project's dependencies is needed. The column style is a fixed, lecture-like layout that a general
graph layouter (Graphviz) does not produce.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from dataclasses import dataclass, field
from functools import reduce

from torch import nn

from cnnarch.analysis.profiler import Layer, Profile, profile

COLORS = {
    "input": "#ffffff", "conv": "#fcd5a0", "pool": "#f4b3c2", "fc": "#a9cdf2", "norm": "#c4e5b5",
    "softmax": "#e2c8f2", "add": "#ffffff", "concat": "#e4e4e4", "join": "#e4e4e4", "block": "#fff0a8",
    "other": "#d9d9d9",
}  # fmt: skip
FONT = "DejaVu Sans, Verdana, sans-serif"
CHAR = 0.6  # average glyph width of DejaVu Sans, in font sizes
ROW_H, GAP, FAN, PAD_X, JOIN_R = 22, 14, 14, 16, 9
SUM_R = 6  # a residual sum sits in the gap below its branch, so a block is as tall as its layers
SMALL, LABEL = 11, 12  # font sizes: readable at 1x on a laptop screen
_NORMS = ("BatchNorm", "LayerNorm", "GroupNorm", "InstanceNorm")
_RESHAPES = ("Flatten", "Unflatten")
_JOIN_LABELS = {"add": "+", "add_": "+", "mul": "x", "mul_": "x", "cat": "concat"}


@dataclass
class Node:
    """A drawn layer (or a collapsed block)."""

    name: str
    kind: str
    label: str
    shape: str
    inputs: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # a collapsed block's layers
    repeat: int = 1  # "x3": the collapsed block holds this many copies of one kind of block
    parents: tuple[str, ...] = ()  # the calls of the containers it ran in, outermost first
    output: bool = False  # the network returns what it computes


def _hw(v) -> str:
    v = tuple(v) if isinstance(v, tuple | list) else (v,)
    return "x".join(map(str, v * 2 if len(v) == 1 else v))


def _first(v):
    return v[0] if isinstance(v, tuple) else v


def classify(r: Layer, n_inputs: int) -> tuple[str, str] | None:
    """(kind, label) of a record, or None for what the lecture does not draw (ReLU, BN, dropout, views)."""
    t, e = r.type, r.extra
    if n_inputs > 1:
        kind = "add" if t.startswith("add") else "concat" if t == "cat" else "join"
        return kind, _JOIN_LABELS.get(t, t.lower())
    if t.startswith("Conv") or t == "convolution":
        up = e.get("transposed", False)
        label = f"{_hw(e['kernel_size'])} {'up-conv' if up else 'conv'}, {e['out_channels']}"
        if _first(e.get("stride", 1)) > 1:  # a transposed convolution multiplies the size by its stride
            label += f", {'x' if up else '/'}{_first(e['stride'])}"
        return "conv", label + (f", g={e['groups']}" if e.get("groups", 1) > 1 else "")
    if "Pool" in t or t.endswith(("pool2d", "pool2d_with_indices")) or e.get("global_mean"):
        avg, stride = "Avg" in t or "avg" in t or t == "mean", _first(e.get("stride", 1) or 1)
        label = ("avg pool" if avg else "pool") + (f", /{stride}" if stride > 1 else "")
        return "pool", (f"{_hw(e['kernel_size'])} {label}" if stride == 1 and "kernel_size" in e else label)
    if t == "Linear":
        return "fc", f"FC {e['out_features']}"
    if t in ("addmm", "mm", "linear") and r.params:  # a fully connected layer of a loaded graph
        return "fc", f"FC {r.output_shape[-1]}"
    if t == "LocalResponseNorm":
        return "norm", "LRN"
    if t in ("Softmax", "LogSoftmax", "_softmax", "_log_softmax"):
        return "softmax", "softmax"
    if r.kind == "module" and r.params and not any(n in t for n in _NORMS):
        return "other", t
    if r.kind == "module" and r.input_shape and r.output_shape != r.input_shape and t not in _RESHAPES:
        return "other", t
    return None


def graph(
    p: Profile, model: nn.Module | None = None, depth: int | None = None, outputs: list[str] | None = None
) -> list[Node]:
    """The drawn nodes in execution order, each with the drawn nodes it reads (``""``: the input).

    ``outputs``: the records whose results the network returns (default: ``p.outputs``); with two or
    more, each is a head of its own, drawn side by side; a layer that reaches none of them (an auxiliary
    classifier of a training pass) is a side branch."""
    records = {r.name: r for r in p.layers}
    order = {"": 0}  # drawn node -> its position
    resolved: dict[str, set[str]] = {"": {""}}

    def sources(name: str) -> set[str]:  # the drawn nodes behind a record's output
        if name not in resolved:
            resolved[name] = {name} if name in order else set().union(*map(sources, _inputs(records[name])))
        return resolved[name]

    nodes = [Node("", "input", "input", "x".join(map(str, p.input_shape[1:])))]
    for r in p.layers:  # execution order is a topological order of the data flow
        ins = set().union(*map(sources, _inputs(r)))
        kind_label = classify(r, len(ins))
        if kind_label:
            order[r.name] = len(nodes)
            shape = "x".join(map(str, r.output_shape[1:]))
            parents = r.extra.get("_parents", ())
            nodes.append(Node(r.name, *kind_label, shape, sorted(ins, key=order.get), parents=parents))
    heads = set().union(*(sources(o) for o in (p.outputs if outputs is None else outputs) if o in records))
    for n in nodes:
        n.output = n.name in heads
    return _collapse(nodes, model, depth) if depth else nodes


def _inputs(r: Layer) -> set[str]:
    return r.extra.get("_inputs", set())


def _collapse(nodes: list[Node], model: nn.Module | None, depth: int) -> list[Node]:
    """Every node nested deeper than ``depth`` merges into its container at that depth."""

    def key(n: Node) -> str:  # the call of the container at ``depth`` that ran n ("blk#2": its 2nd)
        return n.parents[depth - 1] if len(n.parents) >= depth else n.name

    keys = {n.name: key(n) for n in nodes}
    groups: dict[str, list[Node]] = {}
    for n in nodes:
        groups.setdefault(keys[n.name], []).append(n)
    position = {k: i for i, k in enumerate(groups)}
    out = []
    for k, members in groups.items():
        ins = sorted({keys[i] for m in members for i in m.inputs} - {k}, key=position.get)
        if len(members) == 1:  # a layer at or above the depth, or a wrapper of one (conv + ReLU): as it is
            n = members[0]
            out.append(Node(k, n.kind, n.label, n.shape, ins, output=n.output))
            continue
        module = model.get_submodule(k.split("#")[0]) if model is not None else None
        base = k.split("#")[0]
        children = list(module.named_children()) if module is not None else []
        while len(children) == 1 and isinstance(
            children[0][1], nn.ModuleList | nn.ModuleDict | nn.Sequential
        ):
            base = f"{base}.{children[0][0]}"  # a dense block's one ModuleList of layers: its layers
            children = list(children[0][1].named_children())
        repeat = len(children) if len(children) > 1 and len({type(c) for _, c in children}) == 1 else 1
        one = f"{base}.{children[-1][0]}" if repeat > 1 else base  # the last copy: the typical one, no stride
        inside = [m for m in members if m.name.split("#")[0] == one or m.name.startswith(one + ".")]
        lines = [m.label for m in inside if m.kind not in ("add", "concat")]
        if len(lines) > 6:  # too many to list: count them by kind
            lines = [", ".join(f"{c} {kind}" for kind, c in Counter(m.kind for m in inside).items())]
        title = (
            f"{k.split('#')[0]}: {type(children[0][1] if repeat > 1 else module).__name__}" if module else k
        )
        head = any(m.output for m in members)
        out.append(Node(k, "block", title, members[-1].shape, ins, lines, repeat, output=head))
    return out


# ----- layout: items of a column


@dataclass
class _Par:
    branches: list[list]  # each a list of items (Node or _Par)
    join: Node | None  # None: the branches end open, into the enclosing join
    heads: bool = False  # the branches are the network's outputs: they end where they end


class _NotSeriesParallel(Exception):
    pass


_OUT = "\0outputs"  # the node after the heads of a network with several outputs (never drawn)


class _Structure:
    """Series-parallel decomposition of the node graph: forks meet at their immediate post-dominator."""

    def __init__(self, nodes: list[Node]):
        self.nodes = {n.name: n for n in nodes}
        self.idx = {n.name: i for i, n in enumerate(nodes)}
        succ: dict[str, list[str]] = {n.name: [] for n in nodes}
        for n in nodes:
            for i in n.inputs:
                succ[i].append(n.name)
        heads = [n.name for n in nodes if n.output]
        self.stop = None  # where the column ends: its last node, or after the heads of several outputs
        if len(heads) > 1:
            self.stop = sink = _OUT
            self.nodes[sink] = Node(sink, "output", "", "", heads)
            self.idx[sink] = len(nodes)
            succ[sink] = []
            for h in heads:
                succ[h].append(sink)
        else:
            sink = heads[0] if heads else nodes[-1].name
        main, todo = {sink}, [sink]
        while todo:  # everything that reaches the output
            for i in self.nodes[todo.pop()].inputs:
                if i not in main:
                    main.add(i)
                    todo.append(i)
        self.succ = {k: [s for s in v if s in main] for k, v in succ.items()}
        self.ipdom: dict[str, str | None] = {}
        self.ipdom[_OUT] = None
        for n in reversed(nodes):
            if n.name in main:
                self.ipdom[n.name] = self.meet(self.succ[n.name]) if self.succ[n.name] else None
        self.sides: dict[str, list[list[Node]]] = {}  # attach point -> side chains
        placed: set[str] = set()
        for n in nodes:
            if n.name in main or n.name in placed:
                continue
            chain, todo = [], [n.name]
            while todo:
                v = todo.pop()
                if v not in placed and v not in main:
                    placed.add(v)
                    chain.append(self.nodes[v])
                    todo += succ[v]
            at = max((i for i in n.inputs if i in main), key=self.idx.get, default=nodes[0].name)
            self.sides.setdefault(at, []).append(sorted(chain, key=lambda c: self.idx[c.name]))
        self.main = [n for n in nodes if n.name in main]
        self.emitted: set[str] = set()

    def meet(self, names: list[str]) -> str | None:
        def two(a, b):
            while a != b and a is not None and b is not None:
                if self.idx[a] < self.idx[b]:
                    a = self.ipdom[a]
                else:
                    b = self.ipdom[b]
            return a if a == b else None

        return reduce(two, names)

    def item(self, name: str) -> Node:
        if name in self.emitted:
            raise _NotSeriesParallel(name)
        self.emitted.add(name)
        return self.nodes[name]

    def seq(self, v: str, stop: str | None, emit: bool = True) -> list:
        """The items from node ``v`` up to ``stop`` (excluded); a loop, not recursion, along the column."""
        items = []
        while v != stop:
            if emit:
                items.append(self.item(v))
            succ = self.succ[v]
            if len(succ) <= 1:
                if not succ:
                    break
                v, emit = succ[0], True
                continue
            par, v = self.par(succ, stop)
            items.append(par)
            emit = False
        return items

    def branch(self, entries: list[str], stop: str | None) -> list:
        """The items of one branch: paths from ``entries`` (fed by one fork) up to ``stop``."""
        if entries == [stop]:
            return []
        if len(entries) == 1:
            return self.seq(entries[0], stop)
        par, k = self.par(entries, stop)
        return [par] + self.seq(k, stop, emit=False)

    def par(self, entries: list[str], stop: str | None) -> tuple[_Par, str | None]:
        """Branches from ``entries`` side by side up to the node ``k`` where they all meet."""
        k = self.meet(entries)
        groups: list[list[str]] = []
        for e in sorted(entries, key=self.idx.get):  # entries whose paths meet before k share a branch
            g = next((g for g in groups if any(self.meet([e, o]) != k for o in g)), None)
            g.append(e) if g is not None else groups.append([e])
        if len(groups) == 1 or k is None:
            raise _NotSeriesParallel(k)
        branches = [self.branch(g, k) for g in groups]
        return _Par(branches, self.item(k) if k != stop else None, k == _OUT), k


# ----- drawing into primitives


@dataclass
class Diagram:
    """A drawn network: ``nodes`` (the boxes), ``arcs`` ((projection or "", join, dashed) shortcuts),
    ``groups`` ((frame name, branches, join kind) of parallel branches), ``sides`` (side-branch chains).

    ``to_svg()``, ``save(path)`` (.svg or .png); shows itself inline in Jupyter."""

    title: str
    prims: list = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    arcs: list[tuple[str, str, bool]] = field(default_factory=list)
    groups: list[tuple[str, int, str]] = field(default_factory=list)
    sides: list[list[Node]] = field(default_factory=list)
    stages: list[tuple[float, int, str]] = field(default_factory=list)  # (top, stage, its name) per item
    width: float = 0
    height: float = 0

    def to_svg(self) -> str:
        return _svg(self)

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def save(self, path: str, dpi: int = 144) -> None:
        """``.svg``: the SVG text; ``.png``: the same primitives drawn by matplotlib."""
        if str(path).lower().endswith(".svg"):
            with open(path, "w", encoding="utf-8") as f:
                f.write(self.to_svg())
        elif str(path).lower().endswith(".png"):
            _png(self, path, dpi)
        else:
            raise ValueError(f"cannot tell the format of {path!r}: give a file ending in .svg or .png")


def _tw(s: str, size: float) -> float:
    return len(s) * size * CHAR


class _Painter:
    def __init__(self, d: Diagram, nodes: list[Node], sides: dict[str, list[list[Node]]]):
        self.d, self.sides = d, sides
        self.box_w = max([_tw(n.label, LABEL) + 14 for n in nodes] + [110])
        self.box_w = max([self.box_w] + [_tw(s, SMALL) + 14 for n in nodes for s in n.lines])
        self.shape_w = (
            max(_tw(n.shape, SMALL) for n in nodes) + 8 + (26 if any(n.repeat > 1 for n in nodes) else 0)
        )
        self.pending_sides: list[tuple[float, float, list[Node]]] = []

    # extents (left, right of the centre line; height) of items
    def size(self, it) -> tuple[float, float, float]:
        if isinstance(it, list):
            if not it:
                return 10, 10, 0
            sizes = [self.size(i) for i in it]
            return (
                max(s[0] for s in sizes),
                max(s[1] for s in sizes),
                sum(s[2] for s in sizes) + GAP * (len(it) - 1),
            )
        if isinstance(it, Node):
            if it.kind in ("add", "join") and it.label in ("+", "x"):
                return JOIN_R, JOIN_R + self.shape_w, 2 * JOIN_R
            h = ROW_H + (len(it.lines) * (SMALL + 3) + 2 if it.lines else 0)
            return self.box_w / 2, self.box_w / 2 + self.shape_w, h
        res = self._residual(it)
        if res:
            main, short = res
            left, right, h = self.size(main)
            _, jr, jh = self.size(it.join)
            arc = left + 20 + (_tw(", ".join(n.label for n in short), SMALL) + 6 if short else 0)
            return arc, right, h + GAP
        xs, l0, r_last, h = self._branch_x(it)
        jl, jr, jh = self.size(it.join) if it.join else (0, 0, 0)
        pad = 8 if self._frame(it) else 0
        half = (xs[-1] - xs[0]) / 2
        height = 1.5 * FAN + h + (FAN / 2 + jh if it.join else 0) + (26 if pad else 0)
        return max(half + l0, jl) + pad, max(half + r_last, jr) + pad, height

    def _branch_x(self, par: _Par):
        sizes = [self.size(b) for b in par.branches]
        xs = [0.0]
        for (_, r, _), (left, _, _) in zip(sizes, sizes[1:], strict=False):
            xs.append(xs[-1] + r + PAD_X + left)
        return xs, sizes[0][0], sizes[-1][1], max(s[2] for s in sizes)

    @staticmethod
    def _residual(par: _Par):
        """(main branch, shortcut layers) of a sum with a shortcut of at most one layer, else None."""
        if not (par.join and par.join.kind == "add" and len(par.branches) == 2):
            return None
        a, b = sorted(par.branches, key=len)
        if len(a) <= 1 and all(isinstance(n, Node) for n in a) and len(b) > len(a):
            return b, a
        return None

    @staticmethod
    def _frame(par: _Par) -> str:
        """The module a parallel group is (inception3a, block1), to frame and name it; "" for none."""
        if not par.join or par.join.kind == "add":
            return ""
        names = [n.name for n in _flat(par)]
        prefix = names[0].split(".")[:-1]
        for n in names[1:]:
            while prefix and n.split(".")[: len(prefix)] != prefix:
                prefix = prefix[:-1]
        return ".".join(prefix) if prefix and (par.join.kind == "concat" or len(prefix) == 1) else ""

    # drawing: each returns the y below the item
    def draw(self, it, cx: float, y: float, tops: list | None = None) -> float:
        """Draw ``it`` from ``y`` down; ``tops`` collects (top, item) of the items of a list."""
        if isinstance(it, list):
            for i, sub in enumerate(it):
                if i and not (isinstance(it[i - 1], _Par) and self._residual(it[i - 1])):  # ends in its gap
                    self.d.prims.append(("line", [(cx, y), (cx, y + GAP)], False))
                    y += GAP
                if tops is not None:
                    tops.append((y, sub))
                y = self.draw(sub, cx, y)
            return y
        if isinstance(it, Node):
            return self.node(it, cx, y)
        res = self._residual(it)
        if res:
            main, short = res
            y0, edge = y - GAP / 2, self.size(main)[0]
            y = self.draw(main, cx, y)
            # the "+" in the gap below the branch, as the paper draws it: a block is as tall as the
            # same layers without the shortcut (plain-34 and ResNet-34 line up row by row)
            self.d.prims.append(("line", [(cx, y), (cx, y + GAP)], False))
            self.d.nodes.append(it.join)
            yb, dashed = y + GAP / 2, bool(short)
            self.d.prims.append(("circle", cx, yb, SUM_R, it.join))
            y += GAP
            # the shortcut leaves the connector above the branch and bows out left of everything in it
            self.arc(cx, y0, yb, dashed, edge, r=SUM_R)
            if short:
                label = ", ".join(n.label for n in short)
                self.d.prims.append(("text", cx - edge - 22, (y0 + yb) / 2, label, SMALL, "end", "#555"))
            self.d.arcs.append((short[0].name if short else "", it.join.name, dashed))
            return y
        return self.parallel(it, cx, y)

    def arc(
        self, cx, y0, y1, dashed: bool, edge: float, bow: float = 24, into_box: bool = False, r=JOIN_R
    ) -> None:
        """A shortcut from the column at ``y0`` to the column at ``y1`` (a "+" or, ``into_box``, a box's
        left side), bowing out ``bow`` beyond ``edge``, the column's extent left of its centre."""
        bl = cx - edge
        self.d.prims.append(("line", [(cx, y0), (bl, y0)], dashed))
        self.d.prims.append(("curve", (bl, y0), (bl - bow, y0), (bl - bow, y1), (bl, y1), dashed))
        self.d.prims.append(("line", [(bl, y1), (cx - (self.box_w / 2 if into_box else r), y1)], dashed))

    def parallel(self, par: _Par, cx: float, y: float) -> float:
        frame = self._frame(par)
        left, right, height = self.size(par)
        if frame:
            self.d.prims.append(("frame", cx - left, y, left + right, height, frame))
            self.d.prims.append(("line", [(cx, y), (cx, y + 20)], False))
            y += 20
        self.d.groups.append((frame, len(par.branches), par.join.kind if par.join else ""))
        xs, _, _, h = self._branch_x(par)
        xs = [x + cx - (xs[0] + xs[-1]) / 2 for x in xs]
        top, bottom = y + FAN, y + FAN + h + FAN / 2
        self.d.prims.append(("line", [(cx, y), (cx, y + FAN / 2)], False))
        self.d.prims.append(("line", [(xs[0], y + FAN / 2), (xs[-1], y + FAN / 2)], False))
        for x, b in zip(xs, par.branches, strict=True):
            self.d.prims.append(("line", [(x, y + FAN / 2), (x, top)], False))
            end = self.draw(b, x, top) if b else top
            if not par.heads:
                self.d.prims.append(("line", [(x, end), (x, bottom)], False))
        if par.heads:
            return bottom
        self.d.prims.append(("line", [(xs[0], bottom), (xs[-1], bottom)], False))
        if par.join is None:
            return bottom
        self.d.prims.append(("line", [(cx, bottom), (cx, bottom + FAN / 2)], False))
        return self.node(par.join, cx, bottom + FAN / 2) + (6 if frame else 0)

    def node(self, n: Node, cx: float, y: float) -> float:
        self.d.nodes.append(n)
        h = self.size(n)[2]
        if n.kind in ("add", "join") and n.label in ("+", "x"):
            self.d.prims.append(("circle", cx, y + JOIN_R, JOIN_R, n))
            bw = JOIN_R
        else:
            self.d.prims.append(("box", cx - self.box_w / 2, y, self.box_w, h, n))
            bw = self.box_w / 2
        self.d.prims.append(("text", cx + bw + 4, y + min(h, ROW_H) / 2, n.shape, SMALL, "start", "#666"))
        if n.repeat > 1:  # below the shape, or after it on a one-line box
            x, ym = cx + bw + 4, y + h / 2 + 4
            if h <= ROW_H:
                x, ym = x + _tw(n.shape, SMALL) + 6, y + h / 2
            self.d.prims.append(("text", x, ym, f"x{n.repeat}", LABEL + 3, "start", "#000"))
        for chain in self.sides.get(n.name, []):
            self.pending_sides.append((cx + bw + 8 + _tw(n.shape, SMALL), y + min(h, ROW_H) / 2, chain))
        return y + h


def _flat(it) -> list[Node]:
    if isinstance(it, Node):
        return [it]
    if isinstance(it, list):
        return [n for i in it for n in _flat(i)]
    return [n for b in it.branches for n in _flat(b)] + ([it.join] if it.join else [])


def _bbox(prims) -> tuple[float, float, float, float]:
    xs, ys = [], []
    for p in prims:
        if p[0] in ("box", "frame"):
            xs += [p[1], p[1] + p[3]]
            ys += [p[2], p[2] + p[4]]
        elif p[0] == "circle":
            xs += [p[1] - p[3], p[1] + p[3]]
            ys += [p[2] - p[3], p[2] + p[3]]
        elif p[0] == "text":
            w = _tw(p[3], p[4])
            x0 = p[1] - (w if p[5] == "end" else w / 2 if p[5] == "middle" else 0)
            xs += [x0, x0 + w]
            ys += [p[2] - p[4], p[2] + p[4]]
        else:  # a line's or a curve's points
            points = p[1] if p[0] == "line" else p[1:5]
            xs += [q[0] for q in points]
            ys += [q[1] for q in points]
    return min(xs), min(ys), max(xs), max(ys)


def _moved(prims, x_of, y_of) -> list:
    """The primitives with every point ``(x, y)`` moved to ``(x_of(x), y_of(y))``."""
    out = []
    for p in prims:
        if p[0] == "line":
            out.append(("line", [(x_of(x), y_of(y)) for x, y in p[1]], p[2]))
        elif p[0] == "curve":
            out.append(("curve", *[(x_of(x), y_of(y)) for x, y in p[1:5]], p[5]))
        else:  # a box, frame, circle or text, placed by its first point
            out.append((p[0], x_of(p[1]), y_of(p[2]), *p[3:]))
    return out


def _shift(prims, dx: float, dy: float) -> list:
    return _moved(prims, lambda x: x + dx, lambda y: y + dy)


def layout(nodes: list[Node], title: str) -> Diagram:
    """Place the nodes: the column, its branches and arcs, then the side branches to the right."""
    d = Diagram(title)
    s = _Structure(nodes)
    painter = _Painter(d, nodes, s.sides)
    try:
        items = s.seq(s.main[0].name, s.stop)
    except _NotSeriesParallel:  # one column in execution order, every other edge an arc
        items = s.main
        d.prims.clear()
        for a, b in ((i, n.name) for n in s.main for i in n.inputs):
            if s.main.index(s.nodes[b]) - s.main.index(s.nodes[a]) > 1:
                d.arcs.append((a, b, False))
    tops: list = []
    painter.draw(items, 0, 0, tops)
    if items is s.main:
        pos = {p[-1].name: p[2] for p in d.prims if p[0] in ("box", "circle")}  # top (box) or centre
        for k, (a, b, _) in enumerate(d.arcs):
            painter.arc(
                0,
                pos[a] + ROW_H + GAP / 2,
                pos[b] + JOIN_R,
                False,
                painter.box_w / 2,
                20 + 10 * (k % 4),
                True,
            )
    right = _bbox(d.prims)[2] + 24
    lanes: list[float] = []  # per lane of side branches, where its last chain ends
    for x, ya, chain in painter.pending_sides:
        lane = next((i for i, end in enumerate(lanes) if end < ya), len(lanes))
        lanes[lane:] = lanes[lane:] or [0.0]
        sx = right + painter.box_w / 2 + lane * (painter.box_w + painter.shape_w + 24)
        d.prims.append(("line", [(x, ya), (sx, ya), (sx, ya + 12)], True))
        lanes[lane] = painter.draw(list(chain), sx, ya + 12) + GAP
        d.sides.append(chain)
    x0, y0, x1, y1 = _bbox(d.prims)
    d.prims = _shift(d.prims, -x0, -y0)
    d.width, d.height = x1 - x0, y1 - y0
    d.stages = [(top - y0, *_stage(it)) for top, it in tops]
    return d


def _stage(item) -> tuple[int, str]:
    """The stage an item of the column belongs to, and its name: the spatial size of its output
    (height x width; 0 for flat features, the classifier; -1 for the input)."""
    last = _flat(item)[-1]
    if last.kind == "input":
        return -1, ""
    dims = last.shape.split("x")[1:]
    return (math.prod(int(v) for v in dims), "x".join(dims)) if dims else (0, "classifier")


def draw(
    model: nn.Module | str, input_size=None, *, depth: int | None = None, title: str | None = None
) -> Diagram:
    """The diagram of a zoo network (by name) or of any ``nn.Module`` (``input_size`` C x H x W).

    ``depth``: containers nested at that depth are drawn as one box each, with "xN" for N repeated
    blocks (``depth=1`` draws ResNet-152 as its four stages). Modules the evaluation pass never calls
    (GoogLeNet's auxiliary classifiers) are drawn from a training-mode pass."""
    if isinstance(model, str):
        from cnnarch.analysis.zoo import build

        title = title or model
        model, size = build(model)
        input_size = input_size or size
    if input_size is None:
        raise ValueError("input_size is needed for a module, e.g. (3, 224, 224)")
    if depth is not None and depth < 1:
        raise ValueError(f"depth must be 1 or more, got {depth}")
    p = profile(model, input_size)
    outputs = p.outputs  # the inference outputs: what else a training pass returns is auxiliary
    if p.unused:
        try:
            p = profile(model, input_size, train=True)
        except ValueError:
            pass

    def graph_at(d):
        return graph(p, model, d, outputs)

    nodes = graph_at(depth)
    if depth is None and not _series_parallel(nodes):
        # Dense connectivity (DenseNet): hundreds of arcs say less than one box per dense block. Draw the
        # deepest level of containers at which the graph is series-parallel again, if there is one.
        deepest = max((len(n.parents) for n in nodes), default=0)
        for d in range(deepest, 0, -1):
            collapsed = graph_at(d)
            if _series_parallel(collapsed):
                nodes = collapsed
                break
    return layout(nodes, title or type(model).__name__)


def _series_parallel(nodes: list[Node]) -> bool:
    s = _Structure(nodes)
    try:
        s.seq(s.main[0].name, s.stop)
    except _NotSeriesParallel:
        return False
    return True


def sheet(diagrams: list[Diagram], gap: float = 48, align: bool = True) -> Diagram:
    """Several diagrams side by side on one sheet, each under its title.

    ``align``: stage by stage, as He et al. (2016, Fig. 3) set VGG-19, plain-34 and ResNet-34 side by
    side: where the columns reach a new output size (224, 112, 56, ... then the classifier), each
    column's connector is stretched so that the stage starts at the same height in all of them. A column
    whose sizes do not only shrink (a U-Net) is left as it is. Where all columns share two stages or
    more, the output size of each shared stage is written in the left margin, as in the paper."""
    shifts, marks = _stage_shifts(diagrams) if align and len(diagrams) > 1 else ([[] for _ in diagrams], {})
    out = Diagram(" | ".join(d.title for d in diagrams))
    x, height = 0.0, 0.0
    if len(marks) > 1:  # stages to compare (not one module's single size)
        labels = [f"output {name}" for name, _ in marks.values()]
        x = max(_tw(t, SMALL) for t in labels) + 16
        for label, (_, y) in zip(labels, marks.values(), strict=True):
            out.prims.append(("text", x - 16, 30 + y + ROW_H / 2, label, SMALL, "end", "#888"))
    for d, cuts in zip(diagrams, shifts, strict=True):
        out.prims.append(("text", x + d.width / 2, 14, d.title, 15, "middle", "#000"))
        out.prims += _shift(_stretch(d.prims, cuts), x, 30)
        out.nodes += d.nodes
        out.arcs += d.arcs
        out.groups += d.groups
        out.sides += d.sides
        x += d.width + gap
        height = max(height, d.height + sum(delta for _, delta in cuts))
    out.width, out.height = x - gap, 30 + height
    return out


def _stage_shifts(diagrams: list[Diagram]):
    """Per diagram, (y, extra space inserted there) so that equal stages start at equal heights; and
    the stages all share: stage -> (its name, the height it starts at)."""
    starts = []  # per diagram: stage -> the top of its first item
    names: dict[int, str] = {}
    for d in diagrams:
        first: dict[int, float] = {}
        for top, stage, name in d.stages:
            first.setdefault(stage, top)
            names.setdefault(stage, name)
        order = [stage for stage in first if stage >= 0]
        shrinking = all(a > b for a, b in zip(order, order[1:], strict=False))
        starts.append(first if shrinking else {})
    cuts: list[list[tuple[float, float]]] = [[] for _ in diagrams]
    marks = {}
    for stage in sorted({k for f in starts for k in f if k >= 0}, reverse=True):
        have = [i for i, f in enumerate(starts) if stage in f]
        now = {i: starts[i][stage] + sum(dy for _, dy in cuts[i]) for i in have}
        target = max(now.values())
        for i in have:
            if target > now[i]:
                cuts[i].append((starts[i][stage] - 0.5, target - now[i]))
        if len(have) == len(diagrams):  # beside the first column: only a size every column reaches
            marks[stage] = (names[stage], target)
    return cuts, marks


def _stretch(prims, cuts: list[tuple[float, float]]) -> list:
    """Move every point at or below a cut down by its extra space: the lines that cross it stretch."""
    return _moved(prims, lambda x: x, lambda y: y + sum(dy for c, dy in cuts if y >= c))


# ----- writers


def _el(tag: str, body: str = "", **attrs) -> str:
    """An SVG element; ``class_`` is ``class``, ``font_size`` is ``font-size``; floats to 0.1 px."""
    a = " ".join(
        f'{k.rstrip("_").replace("_", "-")}="{f"{v:.1f}" if isinstance(v, float) else html.escape(str(v))}"'
        for k, v in attrs.items()
    )
    return f"<{tag} {a}>{body}</{tag}>" if body else f"<{tag} {a}/>"


def _text(x, y, s, size, anchor="middle", color="#000") -> str:
    return _el("text", html.escape(s), x=x, y=y, font_size=size, text_anchor=anchor,
               dominant_baseline="central", fill=color)  # fmt: skip


def _svg(d: Diagram, m: float = 8) -> str:
    w, h = round(d.width + 2 * m), round(d.height + 2 * m)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="cnnarch-diagram" width="{w}" height="{h}" '
        f'viewBox="{-m} {-m} {w} {h}" font-family="{FONT}">',
        _el("title", html.escape(d.title)),
        _el("rect", x=-m, y=-m, width=w, height=h, fill="#ffffff"),
    ]
    for p in d.prims:
        k = p[0]
        if k == "line":
            dash = {"stroke_dasharray": "4 3"} if p[2] else {}
            points = " ".join(f"{x:.1f},{y:.1f}" for x, y in p[1])
            out.append(_el("polyline", points=points, fill="none", stroke="#444", stroke_width=1.2, **dash))
        elif k == "curve":
            dash = {"stroke_dasharray": "5 3"} if p[5] else {}
            (x0, y0), (x1, y1), (x2, y2), (x3, y3) = p[1:5]
            path = f"M{x0:.1f},{y0:.1f} C{x1:.1f},{y1:.1f} {x2:.1f},{y2:.1f} {x3:.1f},{y3:.1f}"
            cls = "arc projection" if p[5] else "arc"
            out.append(_el("path", class_=cls, d=path, fill="none", stroke="#222", stroke_width=1.4, **dash))
        elif k == "frame":
            x, y, fw, fh, name = p[1:]
            out.append(_el("rect", class_="group", x=x, y=y, width=fw, height=fh, rx=6, fill="none",
                           stroke="#999", stroke_dasharray="3 3"))  # fmt: skip
            out.append(_text(x + 6, y + 10, name, SMALL, "start", "#777"))
        elif k == "text":
            out.append(_text(*p[1:]))
        else:  # a layer: a box or a join's circle, with its labels, as one group
            n = p[-1]
            parts = [_el("title", html.escape(n.name or "input"))]
            if k == "circle":
                x, y, r = p[1:4]
                parts += [_el("circle", cx=x, cy=y, r=r, fill=COLORS[n.kind], stroke="#333"),
                          _text(x, y, n.label, LABEL + 2 if r >= JOIN_R else LABEL)]  # fmt: skip
            else:
                x, y, bw, bh = p[1:5]
                box = _el("rect", x=x, y=y, width=bw, height=bh, rx=3, fill=COLORS[n.kind], stroke="#333")
                parts += [box, _text(x + bw / 2, y + ROW_H / 2, n.label, LABEL)]
                parts += [_text(x + bw / 2, y + ROW_H + 4 + i * (SMALL + 3), line, SMALL, color="#333")
                          for i, line in enumerate(n.lines)]  # fmt: skip
            out.append(_el("g", "".join(parts), class_=f"layer {n.kind}", data_name=n.name))
    return "\n".join(out + ["</svg>", ""])


def _png(d: Diagram, path: str, dpi: int) -> None:
    """The same primitives through matplotlib: 1 SVG pixel = 1 point (figure at 72 dpi), saved at ``dpi``."""
    from matplotlib.figure import Figure  # no pyplot: a caller's (a notebook's) backend stays as it is
    from matplotlib.patches import Circle, FancyBboxPatch, PathPatch
    from matplotlib.path import Path

    m = 8
    fig = Figure(figsize=((d.width + 2 * m) / 72, (d.height + 2 * m) / 72), dpi=72)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(-m, d.width + m)
    ax.set_ylim(d.height + m, -m)
    ax.axis("off")
    font = {"family": "DejaVu Sans"}
    for p in d.prims:
        k = p[0]
        if k == "line":
            ax.plot(*zip(*p[1], strict=True), color="#444", lw=1.2, ls="--" if p[2] else "-")
        elif k == "curve":
            curve = Path(list(p[1:5]), [Path.MOVETO, Path.CURVE4, Path.CURVE4, Path.CURVE4])
            ax.add_patch(PathPatch(curve, fill=False, ec="#222", lw=1.4, ls="--" if p[5] else "-"))
        elif k == "frame":
            x, y, fw, fh, name = p[1:]
            ax.add_patch(FancyBboxPatch((x, y), fw, fh, boxstyle="round,pad=0,rounding_size=6", fill=False,
                                        ec="#999", ls=":", lw=1))  # fmt: skip
            ax.text(x + 6, y + 12, name, fontsize=SMALL, color="#777", va="baseline", **font)
        elif k == "text":
            x, y, s, size, anchor, color = p[1:]
            ha = {"start": "left", "end": "right", "middle": "center"}[anchor]
            ax.text(x, y, s, fontsize=size, ha=ha, va="center", color=color, **font)
        elif k == "circle":
            x, y, r, n = p[1:]
            ax.add_patch(Circle((x, y), r, fc=COLORS[n.kind], ec="#333", lw=1))
            size = LABEL + 2 if r >= JOIN_R else LABEL
            ax.text(x, y, n.label, fontsize=size, ha="center", va="center", **font)
        else:
            x, y, bw, bh, n = p[1:]
            ax.add_patch(FancyBboxPatch((x, y), bw, bh, boxstyle="round,pad=0,rounding_size=3",
                                        fc=COLORS[n.kind], ec="#333", lw=1))  # fmt: skip
            ax.text(x + bw / 2, y + ROW_H / 2, n.label, fontsize=LABEL, ha="center", va="center", **font)
            for i, line in enumerate(n.lines):
                ax.text(x + bw / 2, y + ROW_H + 4 + i * (SMALL + 3), line, fontsize=SMALL, ha="center",
                        va="center", color="#333", **font)  # fmt: skip
    fig.savefig(path, dpi=dpi)
