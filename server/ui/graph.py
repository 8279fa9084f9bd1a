"""A workflow drawn as a graph, for the dashboard's server-rendered SVG.

A layered layout, small on purpose: a node's column is its distance (breadth first) from
``start``; within a column nodes sit in the order of their parents' heights (one pass of
the barycentre rule, so fewer edges cross), else in the order the walk reached them.
Edges are the ``next`` wiring, labelled with their outputs; the gap after a column is
wide enough for the labels of the edges crossing it. An edge to an earlier column curves
below the boxes; one within a column curves through the gap on its right (never through
a box). ``highlights`` says what a run
went through, for the run's page. The template ``ui/workflows/_graph.html`` draws it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

NODE_W, NODE_H = 168, 44
COL_GAP, ROW_GAP = 110, 26
PAD = 12
LOOP_DROP = 34  # how far below the boxes a backward edge curves
LABEL_CHARS = 22  # a node id longer than this is cut in its box (its title has it all)
EDGE_CHAR_W = 6.6  # the width of one character of an edge label (11px sans), generously
SIDE_BULGE = 46  # how far right of its column an edge within the column curves

KINDS = {
    "send": "message",
    "respond": "message",
    "wait_for_reply": "wait",
    "delay": "wait",
    "branch": "logic",
    "switch": "logic",
    "set": "logic",
    "end": "logic",
    "call_workflow": "logic",
    "http_request": "http",
    "create_ticket": "ticket",
    "assign_ticket": "ticket",
    "update_ticket": "ticket",
    "lookup_ticket": "ticket",
    "list_tickets": "ticket",
    "lookup_person": "ticket",
}
"""Node types by the colour they are drawn in; other types (plugins) are "other"."""


@dataclass(frozen=True)
class Box:
    id: str
    type: str
    kind: str
    description: str
    column: int
    row: int
    x: float
    y: float

    @property
    def label(self) -> str:
        return self.id if len(self.id) <= LABEL_CHARS else self.id[: LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str  # the outputs that lead there, comma-separated
    path: str  # SVG path data
    label_x: float
    label_y: float
    back: bool


@dataclass(frozen=True)
class Layout:
    boxes: list[Box]
    edges: list[Edge]
    width: float
    height: float
    start: str
    node_width: float = NODE_W
    node_height: float = NODE_H

    @property
    def kinds(self) -> list[str]:
        """The kinds drawn, for the legend."""
        return sorted({box.kind for box in self.boxes})


def kind_of(node_type: str) -> str:
    return KINDS.get(node_type, "other")


def _wiring(nodes: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """source -> target -> outputs, in document order, for targets that exist."""
    wiring: dict[str, dict[str, list[str]]] = {}
    for source, spec in nodes.items():
        targets: dict[str, list[str]] = {}
        for output, target in (spec.get("next") or {}).items():
            if isinstance(target, str) and target in nodes:
                targets.setdefault(target, []).append(output)
        wiring[source] = targets
    return wiring


def _columns(
    start: str, nodes: dict[str, Any], wiring: dict[str, dict[str, list[str]]]
) -> dict[str, int]:
    """Each node's column: its BFS depth from ``start``. Nodes the walk never reaches (a
    valid workflow has none) follow in columns of their own."""
    column: dict[str, int] = {}
    roots = [start] if start in nodes else []
    roots += [node_id for node_id in nodes if node_id != start]
    offset = 0
    for root in roots:
        if root in column:
            continue
        column[root] = offset
        queue = deque([root])
        while queue:
            current = queue.popleft()
            for target in wiring[current]:
                if target not in column:
                    column[target] = column[current] + 1
                    queue.append(target)
        offset = max(column.values()) + 1
    return column


def layout(doc: dict[str, Any]) -> Layout:
    """Where each node and edge of a (valid) workflow document is drawn."""
    nodes: dict[str, Any] = doc.get("nodes") or {}
    wiring = _wiring(nodes)
    column = _columns(doc.get("start", ""), nodes, wiring)
    by_column: dict[int, list[str]] = {}
    for node_id in column:  # insertion order: the order the walk reached them
        by_column.setdefault(column[node_id], []).append(node_id)
    tallest = max((len(ids) for ids in by_column.values()), default=0)
    parents: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for source, targets in wiring.items():
        for target in targets:
            if column[source] < column[target]:
                parents[target].append(source)
    gaps = _gaps(wiring, column, len(by_column))
    lefts = [PAD]
    for gap in gaps:
        lefts.append(lefts[-1] + NODE_W + gap)
    boxes: dict[str, Box] = {}
    for col in sorted(by_column):
        ids = _beside_parents(by_column[col], parents, boxes)
        shift = (tallest - len(ids)) * (NODE_H + ROW_GAP) / 2  # centre short columns
        for row, node_id in enumerate(ids):
            spec = nodes[node_id]
            boxes[node_id] = Box(
                id=node_id,
                type=str(spec.get("type", "")),
                kind=kind_of(spec.get("type", "")),
                description=str(spec.get("description", "")),
                column=col,
                row=row,
                x=lefts[col],
                y=PAD + shift + row * (NODE_H + ROW_GAP),
            )
    lane = max((box.y + NODE_H for box in boxes.values()), default=0) + LOOP_DROP
    edges = [
        _edge(boxes[source], boxes[target], ", ".join(outputs), lane)
        for source, targets in wiring.items()
        for target, outputs in targets.items()
    ]
    columns = len(by_column)
    width = 2 * PAD + columns * NODE_W + sum(gaps[: max(columns - 1, 0)])
    if (
        any(
            e.source != e.target and boxes[e.source].column == boxes[e.target].column for e in edges
        )
        and gaps
    ):  # an edge within the last column bulges right
        width += SIDE_BULGE
    height = 2 * PAD + tallest * NODE_H + max(tallest - 1, 0) * ROW_GAP
    if any(edge.back for edge in edges):
        height += LOOP_DROP + 6
    return Layout(list(boxes.values()), edges, width, height, doc.get("start", ""))


def _gaps(
    wiring: dict[str, dict[str, list[str]]], column: dict[str, int], columns: int
) -> list[float]:
    """The gap after each column: COL_GAP, or wider for the longest label drawn in it (a
    forward edge's label sits in the gap it leaves from; one within a column, in the gap
    on that column's right)."""
    widest = [0.0] * columns
    for source, targets in wiring.items():
        for target, outputs in targets.items():
            if column[target] >= column[source] and source != target:
                text = len(", ".join(outputs)) * EDGE_CHAR_W + 16
                if column[target] == column[source]:
                    text = SIDE_BULGE + text / 2
                widest[column[source]] = max(widest[column[source]], text)
    return [max(COL_GAP, width) for width in widest]


def _beside_parents(
    ids: list[str], parents: dict[str, list[str]], boxes: dict[str, Box]
) -> list[str]:
    """A column's nodes ordered by the mean height of their parents (placed already), so
    fewer edges cross; nodes without parents keep the order the walk reached them in."""
    reached = {node_id: index for index, node_id in enumerate(ids)}

    def height(node_id: str) -> float:
        above = [boxes[parent].y for parent in parents[node_id]]
        return sum(above) / len(above) if above else reached[node_id] * (NODE_H + ROW_GAP)

    return sorted(ids, key=lambda node_id: (height(node_id), reached[node_id]))


def _edge(source: Box, target: Box, label: str, lane: float) -> Edge:
    if target.column > source.column:  # forward: right side to left side
        x0, y0 = source.x + NODE_W, source.y + NODE_H / 2
        x3, y3 = target.x, target.y + NODE_H / 2
        bend = (x3 - x0) / 2
        c1, c2 = (x0 + bend, y0), (x3 - bend, y3)
        back = False
    elif source is target:  # a node that leads to itself: a small loop on its right
        x0, y0 = source.x + NODE_W, source.y + NODE_H * 0.75
        x3, y3 = source.x + NODE_W * 0.75, source.y + NODE_H
        c1, c2 = (x0 + 40, y0 + 10), (x3 + 10, y3 + 40)
        back = True
    elif target.column == source.column:  # within a column: right side to right side
        x0, y0 = source.x + NODE_W, source.y + NODE_H / 2
        x3, y3 = target.x + NODE_W, target.y + NODE_H / 2
        c1, c2 = (x0 + SIDE_BULGE * 4 / 3, y0), (x3 + SIDE_BULGE * 4 / 3, y3)
        back = True
    else:  # backward: out to the gap on the right, along a lane below every box, in
        # from the left (straight lines in the gaps, so it crosses no box)
        out_x, in_x = source.x + NODE_W + 14, target.x - min(14, PAD - 2)
        y0, y3 = source.y + NODE_H / 2, target.y + NODE_H / 2
        points = [
            (source.x + NODE_W, y0),
            (out_x, y0),
            (out_x, lane),
            (in_x, lane),
            (in_x, y3),
            (target.x, y3),
        ]
        path = "M" + " L".join(f"{x:g},{y:g}" for x, y in points)
        return Edge(
            source.id,
            target.id,
            label,
            path,
            round((out_x + in_x) / 2, 1),
            round(lane - 4, 1),
            True,
        )
    # The curve's midpoint (t = 1/2 of the cubic Bézier) carries the label.
    mid_x = (x0 + 3 * c1[0] + 3 * c2[0] + x3) / 8
    mid_y = (y0 + 3 * c1[1] + 3 * c2[1] + y3) / 8
    path = f"M{x0:g},{y0:g} C{c1[0]:g},{c1[1]:g} {c2[0]:g},{c2[1]:g} {x3:g},{y3:g}"
    return Edge(source.id, target.id, label, path, round(mid_x, 1), round(mid_y - 4, 1), back)


@dataclass(frozen=True)
class Highlights:
    """What a run went through: the nodes its trace visited, the edges between
    consecutive steps, and the node it is at (waiting) or ended at (failed)."""

    visited: frozenset[str] = frozenset()
    taken: frozenset[tuple[str, str]] = frozenset()
    at: str | None = None
    state: str = ""  # waiting, failed, or "" when the run is at no node of note


def highlights(
    graph: Layout, trace: list[dict[str, Any]], *, status: str, current: str | None
) -> Highlights:
    nodes = [entry.get("node") for entry in trace]
    pairs = {(a, b) for a, b in zip(nodes, nodes[1:], strict=False) if a and b}
    edges = {(edge.source, edge.target) for edge in graph.edges}
    state = status if status in ("waiting", "failed") else ""
    return Highlights(
        visited=frozenset(n for n in nodes if n),
        taken=frozenset(pairs & edges),
        at=current if state else None,
        state=state,
    )
