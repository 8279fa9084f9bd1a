"""The registry: built-ins, versions kept side by side, and third-party entry points."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import marshmallow as ma
import pytest

from nodes import (
    Engine,
    Node,
    NodeContext,
    NodesError,
    ParamsSchema,
    Registry,
    Result,
    UnknownNode,
    Workflow,
    all_nodes,
    get_node,
    registry,
)
from nodes.builtin import BUILTINS, Send
from tests.nodes.plugin_nodes import Greet, Score


class SendV2Params(ParamsSchema):
    phone = ma.fields.String(required=True)
    message = ma.fields.String(required=True)


class SendV2(Node):
    """A breaking change to send: new parameter names, so a new version."""

    type = "send"
    version = 2
    Params = SendV2Params
    outputs = ("next",)

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        return Result("next", ctx.send({"to": params["phone"], "text": params["message"]}))


def test_builtins():
    assert {node.type for node in all_nodes()} == {
        "send",
        "wait_for_reply",
        "delay",
        "branch",
        "switch",
        "set",
        "http_request",
        "respond",
        "call_workflow",
        "end",
        "create_ticket",
        "assign_ticket",
        "update_ticket",
        "lookup_ticket",
        "list_tickets",
        "lookup_person",
    }
    assert get_node("send") is Send
    assert get_node("send", 1) is Send


def test_unknown_type_lists_the_known_ones():
    with pytest.raises(
        UnknownNode,
        match=r"unknown node type 'wait_for_replay'\. Did you "
        r"mean 'wait_for_reply'\? Known types: assign_ticket, "
        r"branch, ",
    ):
        get_node("wait_for_replay")
    with pytest.raises(UnknownNode, match="node .send. has no version 7; installed versions: 1"):
        get_node("send", 7)


def test_versions_live_side_by_side(ctx):
    reg = Registry([*BUILTINS, SendV2], entry_points=False)
    assert reg.get("send") is SendV2
    assert reg.get("send", 1) is Send
    assert reg.versions("send") == [1, 2]
    doc = {
        "name": "both",
        "start": "old",
        "nodes": {
            "old": {
                "type": "send",
                "version": 1,
                "params": {"to": "1", "text": "v1"},
                "next": {"next": "new"},
            },
            "new": {"type": "send", "params": {"phone": "2", "message": "v2"}},
        },
    }
    run = Engine(registry=reg).start(Workflow.from_dict(doc, registry=reg), {}, ctx)
    assert run.status == "completed"
    assert [(s["to"], s["text"]) for s in ctx.sent] == [("1", "v1"), ("2", "v2")]
    assert [entry["version"] for entry in run.trace] == [1, 2]


def test_registration_mistakes_are_explained():
    reg = Registry(BUILTINS, entry_points=False)

    class Clash(Send):
        pass

    with pytest.raises(NodesError, match="defined twice"):
        reg.register(Clash)
    with pytest.raises(NodesError, match="is not a Node subclass"):
        reg.register(dict)  # type: ignore[arg-type]

    class Greedy(Node):
        type = "greedy"
        outputs = ("next", "error")

    with pytest.raises(NodesError, match="do not list 'error' in outputs"):
        reg.register(Greedy)


def _entry_points(*values: str):
    points = [
        importlib.metadata.EntryPoint(name=f"ep{i}", value=value, group="kabar.nodes")
        for i, value in enumerate(values)
    ]

    def entry_points(**selection: Any):
        assert selection == {"group": "kabar.nodes"}
        return points

    return entry_points


def test_third_party_nodes_from_entry_points(monkeypatch, ctx):
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        _entry_points("tests.nodes.plugin_nodes:Greet", "tests.nodes.plugin_nodes"),
    )
    assert get_node("acme.greet") is Greet
    assert get_node("acme.score") is Score
    doc = {
        "name": "plugin",
        "trigger": {"type": "message", "any": True},
        "start": "rate",
        "nodes": {
            "rate": {
                "type": "acme.score",
                "params": {"value": "{{ args | length }}"},
                "next": {"good": "hello", "bad": "hello"},
            },
            "hello": {"type": "acme.greet", "params": {"name": "{{ trigger.text }}"}},
        },
    }
    run = Engine().start(
        Workflow.from_dict(doc), {"chat": "62811", "text": "Sari", "args": ["a", "b", "c"]}, ctx
    )
    assert run.status == "completed"
    assert [entry["output"] for entry in run.trace] == ["good", "next"]
    assert ctx.sent[0]["text"] == "Hi Sari!"


def test_plugin_outputs_are_validated(monkeypatch):
    monkeypatch.setattr(
        importlib.metadata, "entry_points", _entry_points("tests.nodes.plugin_nodes")
    )
    from nodes import validate

    doc = {
        "name": "plugin",
        "start": "rate",
        "nodes": {
            "rate": {"type": "acme.score", "params": {"value": "x"}, "next": {"next": "rate"}}
        },
    }
    problems = {p.path: p.message for p in validate(doc)}
    assert problems == {
        "$.nodes.rate.params.value": "must be an integer, not a string (or a template such "
        "as {{ vars.x }})",
        "$.nodes.rate.next.next": "acme.score has no output 'next'; its outputs are good, "
        "bad, error",
    }


def test_a_broken_plugin_is_skipped_and_reported(monkeypatch):
    monkeypatch.setattr(
        importlib.metadata,
        "entry_points",
        _entry_points(
            "tests.nodes.plugin_nodes:Missing",
            "tests.nodes.plugin_nodes:GreetParams",
            "tests.nodes.test_public_api",
            "tests.nodes.plugin_nodes:Greet",
        ),
    )
    assert get_node("acme.greet") is Greet
    failures = registry.default().failures
    assert len(failures) == 3
    assert "tests.nodes.plugin_nodes:Missing" in failures[0]
    assert "is not a Node subclass" in failures[1]
    assert "has no NODES list" in failures[2]
    with pytest.raises(UnknownNode, match="these failed to load: entry point ep0"):
        get_node("acme.missing")
