"""The workflow graph's layout: columns by distance from start, rows beside the parents,
labelled edges, backward edges, and a run's highlights."""

from __future__ import annotations

import json
from pathlib import Path

from server.ui import graph

DOC = {
    "name": "survey",
    "start": "ask",
    "nodes": {
        "ask": {"type": "wait_for_reply", "next": {"reply": "check", "timeout": "bye"}},
        "check": {"type": "branch", "next": {"true": "thanks", "false": "ask"}},
        "thanks": {"type": "send", "next": {"next": "done", "error": "done"}},
        "bye": {"type": "send"},
        "done": {"type": "end"},
    },
}


def _boxes(layout):
    return {box.id: box for box in layout.boxes}


def test_columns_are_the_distance_from_start_and_rows_follow_the_parents():
    layout = graph.layout(DOC)
    boxes = _boxes(layout)
    assert {k: (b.column, b.row) for k, b in boxes.items()} == {
        "ask": (0, 0),
        "check": (1, 0),
        "bye": (1, 1),
        "thanks": (2, 0),
        "done": (3, 0),
    }
    assert boxes["check"].x > boxes["ask"].x and boxes["bye"].y > boxes["check"].y
    assert layout.start == "ask"
    # Every box fits in the drawing.
    for box in layout.boxes:
        assert box.x + layout.node_width <= layout.width
        assert box.y + layout.node_height <= layout.height


def test_a_node_with_many_parents_sits_between_them():
    doc = {
        "start": "a",
        "nodes": {
            "a": {"type": "switch", "next": {"1": "b", "2": "c", "3": "d"}},
            "b": {"type": "send", "next": {"next": "x", "error": "y"}},
            "c": {"type": "send", "next": {"next": "x"}},
            "d": {"type": "send", "next": {"next": "x"}},
            "x": {"type": "end"},
            "y": {"type": "end"},
        },
    }
    boxes = _boxes(graph.layout(doc))
    # The walk reaches x first (from b), but y has only b above it: y goes first.
    assert (boxes["y"].row, boxes["x"].row) == (0, 1)


def test_edges_carry_their_outputs_and_go_back_below_the_boxes():
    edges = {(e.source, e.target): e for e in graph.layout(DOC).edges}
    assert set(edges) == {
        ("ask", "check"),
        ("ask", "bye"),
        ("check", "thanks"),
        ("check", "ask"),
        ("thanks", "done"),
    }
    assert edges[("thanks", "done")].label == "next, error"  # two outputs, one line
    assert edges[("ask", "check")].label == "reply" and not edges[("ask", "check")].back
    back = edges[("check", "ask")]
    assert back.back and back.path.startswith("M")
    assert back.label_y > graph.PAD + graph.NODE_H  # its label is below the boxes


def test_node_kinds_colour_by_type_and_long_ids_are_cut():
    doc = {
        "start": "a" * 40,
        "nodes": {
            "a" * 40: {"type": "create_ticket", "next": {"created": "x"}},
            "x": {"type": "my_plugin.node"},
        },
    }
    boxes = _boxes(graph.layout(doc))
    assert boxes["a" * 40].kind == "ticket" and boxes["x"].kind == "other"
    assert len(boxes["a" * 40].label) == graph.LABEL_CHARS
    assert graph.layout(doc).kinds == ["other", "ticket"]


def test_a_self_loop_and_nodes_the_walk_never_reaches_still_draw():
    doc = {
        "start": "a",
        "nodes": {"a": {"type": "delay", "next": {"next": "a"}}, "lost": {"type": "send"}},
    }
    layout = graph.layout(doc)
    assert _boxes(layout)["lost"].column == 1
    (loop,) = layout.edges
    assert (loop.source, loop.target, loop.back) == ("a", "a", True)
    assert graph.layout({"nodes": {}}).boxes == []


def test_every_shipped_workflow_lays_out():
    for path in (Path(__file__).parents[3] / "workflows").rglob("*.json"):
        doc = json.loads(path.read_text())
        layout = graph.layout(doc)
        assert len(layout.boxes) == len(doc["nodes"]), path
        positions = {(box.x, box.y) for box in layout.boxes}
        assert len(positions) == len(layout.boxes), f"{path}: boxes overlap"


def test_highlights_of_a_run():
    layout = graph.layout(DOC)
    trace = [{"node": "ask"}, {"node": "ask"}, {"node": "check"}, {"node": "ask"}]
    marks = graph.highlights(layout, trace, status="waiting", current="ask")
    assert marks.visited == {"ask", "check"}
    assert marks.taken == {("ask", "check"), ("check", "ask")}
    assert (marks.at, marks.state) == ("ask", "waiting")
    done = graph.highlights(layout, trace, status="completed", current="ask")
    assert (done.at, done.state) == (None, "")


def _points_on(path: str, steps: int = 40):
    """Points along an edge's path (a cubic curve, or straight lines), without its ends
    (they touch their own boxes)."""
    import re

    numbers = list(map(float, re.findall(r"-?[\d.]+", path)))
    pairs = list(zip(numbers[::2], numbers[1::2], strict=True))
    if "C" in path:
        (x0, y0), (c1x, c1y), (c2x, c2y), (x3, y3) = pairs
        for i in range(2, steps - 1):
            t, u = i / steps, 1 - i / steps
            yield (
                u**3 * x0 + 3 * u * u * t * c1x + 3 * u * t * t * c2x + t**3 * x3,
                u**3 * y0 + 3 * u * u * t * c1y + 3 * u * t * t * c2y + t**3 * y3,
            )
        return
    for (ax, ay), (bx, by) in zip(pairs, pairs[1:], strict=False):
        for i in range(1, steps):
            yield ax + (bx - ax) * i / steps, ay + (by - ay) * i / steps


def test_no_edge_or_label_is_drawn_under_a_box_in_the_shipped_workflows():
    root = Path(__file__).resolve().parents[3] / "workflows"
    for path in sorted(root.rglob("*.json")):
        layout = graph.layout(json.loads(path.read_text()))

        def inside(x, y, box, margin=0.0):
            return (
                box.x - margin < x < box.x + graph.NODE_W + margin
                and box.y - margin < y < box.y + graph.NODE_H + margin
            )

        for edge in layout.edges:
            others = [b for b in layout.boxes if b.id not in (edge.source, edge.target)]
            for x, y in _points_on(edge.path):
                hit = [b.id for b in others if inside(x, y, b)]
                assert not hit, f"{path.name}: {edge.source}->{edge.target} crosses {hit}"
            half = len(edge.label) * graph.EDGE_CHAR_W / 2
            for box in layout.boxes:  # the label's box against every node's box
                overlaps = (
                    edge.label_x - half < box.x + graph.NODE_W
                    and edge.label_x + half > box.x
                    and edge.label_y - 10 < box.y + graph.NODE_H
                    and edge.label_y + 2 > box.y
                )
                assert not overlaps, f"{path.name}: label {edge.label!r} under {box.id}"
            assert 0 <= edge.label_x - half and edge.label_x + half <= layout.width, (
                f"{path.name}: label {edge.label!r} cut at the edge of the drawing"
            )
