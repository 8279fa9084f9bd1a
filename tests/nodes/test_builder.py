"""Workflows built in Python mean what the same JSON means."""

from __future__ import annotations

import json

import pytest

from nodes import Engine, InvalidWorkflow, Reply, Workflow, WorkflowBuilder
from tests.nodes.harness import EXAMPLES


def survey_builder() -> WorkflowBuilder:
    return (
        WorkflowBuilder("survey", description="Rate us")
        .trigger("message", command=["#survey"])
        .node(
            "ask",
            "wait_for_reply",
            prompt="1-5?",
            timeout=600,
            pattern="^[1-5]$",
            next={"reply": "thanks", "timeout": "bye"},
        )
        .node("thanks", "send", {"text": "Thanks for {{ ask.text }}"})
        .node("bye", "end")
    )


def test_build_and_run(ctx):
    survey = survey_builder().build()
    assert survey.start == "ask"
    assert survey.triggers == [{"type": "message", "command": ["#survey"]}]
    run = Engine().start(survey, {"chat": "62811"}, ctx)
    run = Engine().resume(run, Reply("5"), ctx, workflow=survey)
    assert run.status == "completed"
    assert [s["text"] for s in ctx.sent] == ["1-5?", "Thanks for 5"]


def test_the_document_is_the_json_format():
    doc = survey_builder().to_dict()
    assert list(doc) == ["name", "description", "version", "trigger", "start", "nodes"]
    assert doc["nodes"]["ask"] == {
        "type": "wait_for_reply",
        "params": {"prompt": "1-5?", "timeout": 600, "pattern": "^[1-5]$"},
        "next": {"reply": "thanks", "timeout": "bye"},
    }
    assert Workflow.from_dict(json.loads(json.dumps(doc))).nodes.keys() == {"ask", "thanks", "bye"}


def test_params_named_like_builder_arguments_and_several_triggers():
    workflow = (
        WorkflowBuilder("multi")
        .trigger("message", keyword=["promo"], **{"from": ["62811"]})
        .trigger("schedule", interval_seconds=3600)
        .node(
            "first",
            "send",
            type="text",
            to="62811",
            text="a",
            next="last",
            version=1,
            retry={"max": 1},
        )
        .node("last", "end")
        .start("first")
        .build()
    )
    assert [t["type"] for t in workflow.triggers] == ["message", "schedule"]
    assert workflow.nodes["first"].params == {"type": "text", "to": "62811", "text": "a"}
    assert workflow.nodes["first"].retry.max == 1


def test_an_invalid_build_lists_its_problems():
    builder = WorkflowBuilder("bad").node(
        "ask", "wait_for_reply", timeout=60, next={"reply": "nowhere"}
    )
    with pytest.raises(InvalidWorkflow) as raised:
        builder.build()
    assert [p.path for p in raised.value.problems] == [
        "$.nodes.ask.next.reply",
        "$.nodes.ask.next.timeout",
    ]


def test_an_example_round_trips():
    survey = Workflow.load(EXAMPLES / "survey.json")
    assert Workflow.from_dict(survey.to_dict()) == survey
