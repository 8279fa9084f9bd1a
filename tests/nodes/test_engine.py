"""The engine: durable waits, retries, the error output, the loop guard, plain-JSON state.

Most behaviour runs as fixtures (test_workflows.py); these are the cases that need a
custom node, a host that crashes, or a look at the stored state itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma
import pytest

from nodes import (
    Engine,
    LocalContext,
    Node,
    NodeContext,
    NodesError,
    Registry,
    Reply,
    Result,
    Run,
    Timeout,
    Workflow,
    WorkflowBuilder,
)
from nodes.builtin import BUILTINS
from tests.nodes.harness import EXAMPLES

CHAT = {"type": "message", "chat": "6281234567890", "session": "s1", "text": "#survey"}


class Flaky(Node):
    """Fails its first two calls."""

    type = "test.flaky"
    calls = 0

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        type(self).calls += 1
        if self.calls < 3:
            raise ConnectionError(f"call {self.calls} failed")
        return Result("next", {"attempt": ctx.attempt})


class Liar(Node):
    """Returns an output it does not declare."""

    type = "test.liar"

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        return Result("maybe")


class Confused(Node):
    """Returns something that is not an outcome."""

    type = "test.confused"

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Any:
        return {"output": "next"}


class SendsThenFails(Node):
    """Sends, then fails once after the send went out."""

    type = "test.sends_then_fails"
    failed = False

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        answer = ctx.send({"to": "62811", "text": "once"})
        if not type(self).failed:
            type(self).failed = True
            raise TimeoutError("lost the answer")
        return Result("next", answer)


REGISTRY = Registry([*BUILTINS, Flaky, Liar, Confused, SendsThenFails], entry_points=False)


def stored(run: Run) -> Run:
    """What a host does between steps: keep the run as JSON text, read it back later."""
    return Run.from_dict(json.loads(json.dumps(run.to_dict())))


@pytest.fixture
def survey():
    return Workflow.load(EXAMPLES / "survey.json")


def test_run_state_is_plain_json_mid_wait(survey, ctx):
    trigger = {**CHAT, "received_at": datetime(2025, 1, 6, tzinfo=UTC)}
    run = Engine().start(survey, trigger, ctx)
    text = json.dumps(run.to_dict())  # no default=: everything is JSON already
    assert run.trigger["received_at"] == "2025-01-06T00:00:00+00:00"
    again = Run.from_dict(json.loads(text))
    assert again == run
    assert again.due == datetime(2025, 1, 6, 3, 0, tzinfo=UTC)
    assert set(run.trace[0]) >= {
        "node",
        "type",
        "input",
        "output",
        "data",
        "started",
        "duration_ms",
        "error",
    }


def test_resume_after_a_restart_with_a_new_engine_and_context(survey, ctx):
    run = Engine().start(survey, CHAT, ctx)
    text = json.dumps(run.to_dict())
    later = LocalContext(now=datetime(2025, 1, 6, 2, 30, tzinfo=UTC))
    engine = Engine(load_workflow=lambda name, version: survey)
    run = engine.resume(Run.from_dict(json.loads(text)), Reply("4"), later)
    assert run.status == "completed"
    assert later.sent[-1]["text"] == "Terima kasih atas nilai 4! Senang bisa membantu Anda."
    assert run.finished_at == "2025-01-06T02:30:00+00:00"


def test_a_step_run_twice_after_a_crash_sends_once(survey, ctx):
    """The host crashed after the reprompt went out but before it stored the run: resuming
    the stored state again repeats the step with the same idempotency key."""
    run = stored(Engine().start(survey, CHAT, ctx))
    before = json.dumps(run.to_dict())
    Engine().resume(run, Reply("sepuluh"), ctx, workflow=survey)
    Engine().resume(Run.from_dict(json.loads(before)), Reply("sepuluh"), ctx, workflow=survey)
    assert [s["text"] for s in ctx.sent].count(
        "Mohon balas dengan satu angka dari 1 sampai 5."
    ) == 1


def test_resume_refuses_what_it_cannot_do(survey, ctx):
    engine = Engine()
    run = engine.start(survey, CHAT, ctx)
    with pytest.raises(NodesError, match="needs its workflow: pass workflow="):
        engine.resume(stored(run), Reply("1"), ctx)
    other = Workflow.from_dict({**survey.to_dict(), "version": 2})
    with pytest.raises(NodesError, match="started with 'survey' version 1, not 'survey' version 2"):
        engine.resume(stored(run), Reply("1"), ctx, workflow=other)
    done = engine.resume(run, Timeout(), ctx, workflow=survey)
    with pytest.raises(NodesError, match="is completed, not waiting"):
        engine.resume(done, Reply("1"), ctx, workflow=survey)
    pause = (
        WorkflowBuilder("pause")
        .node("wait", "delay", seconds=60, next="done")
        .node("done", "end")
        .build()
    )
    waiting = engine.start(pause, {}, ctx)
    with pytest.raises(
        NodesError, match="waits until 2025-01-06T02:01:00\\+00:00, not for a reply"
    ):
        engine.resume(waiting, Reply("hi"), ctx, workflow=pause)


def test_retry_at_once_then_success(ctx):
    Flaky.calls = 0
    workflow = (
        WorkflowBuilder("flaky")
        .node("try", "test.flaky", retry={"max": 2})
        .build(registry=REGISTRY)
    )
    run = Engine(registry=REGISTRY).start(workflow, {}, ctx)
    assert run.status == "completed"
    assert [(e["attempt"], e["error"]) for e in run.trace] == [
        (1, "ConnectionError: call 1 failed"),
        (2, "ConnectionError: call 2 failed"),
        (3, None),
    ]
    assert run.outputs["try"] == {"attempt": 3}


@pytest.mark.parametrize("backoff", [0, 10])
def test_a_retry_repeats_the_step_and_so_its_idempotency_keys(ctx, backoff):
    SendsThenFails.failed = False
    workflow = (
        WorkflowBuilder("once")
        .node("x", "test.sends_then_fails", retry={"max": 1, "backoff_seconds": backoff})
        .build(registry=REGISTRY)
    )
    engine = Engine(registry=REGISTRY)
    run = engine.start(workflow, {}, ctx)
    if backoff:
        assert run.wait["kind"] == "until" and run.due == ctx.now() + timedelta(seconds=10)
        run = engine.resume(stored(run), Timeout(), ctx, workflow=workflow)
    assert run.status == "completed"
    assert [s["text"] for s in ctx.sent] == ["once"]
    assert [(e["step"], e["attempt"]) for e in run.trace] == [(1, 1), (1, 2)]


def test_a_failed_run_retries_from_the_failed_node(ctx):
    Flaky.calls = 0
    workflow = (
        WorkflowBuilder("flaky")
        .node("hello", "send", to="1", text="hi", next="try")
        .node("try", "test.flaky")
        .build(registry=REGISTRY)
    )
    engine = Engine(registry=REGISTRY)
    run = engine.start(workflow, {}, ctx)
    assert (run.status, run.current, run.error) == ("failed", "try", "call 1 failed")
    run = engine.retry(stored(run), ctx, workflow=workflow)
    assert (run.status, run.current) == ("failed", "try")
    run = engine.retry(stored(run), ctx, workflow=workflow)
    assert run.status == "completed" and run.error is None
    assert len(ctx.sent) == 1  # the nodes before the failure do not run again
    with pytest.raises(NodesError, match="only a failed run can be retried"):
        engine.retry(run, ctx, workflow=workflow)


def test_a_node_that_breaks_its_contract_fails_the_run_clearly(ctx):
    engine = Engine(registry=REGISTRY)
    liar = WorkflowBuilder("liar").node("x", "test.liar").build(registry=REGISTRY)
    run = engine.start(liar, {}, ctx)
    assert run.status == "failed"
    assert (
        run.error == "node type 'test.liar' returned output 'maybe', which it does not "
        "declare (next)"
    )
    confused = WorkflowBuilder("confused").node("x", "test.confused").build(registry=REGISTRY)
    run = engine.start(confused, {}, ctx)
    assert run.status == "failed"
    assert "must return Result, Wait or Stop" in run.error


def test_the_trace_keeps_the_latest_entries(ctx):
    builder = WorkflowBuilder("long")
    for i in range(12):
        builder.node(f"s{i}", "set", variables={"i": i}, next=f"s{i + 1}" if i < 11 else None)
    run = Engine(max_trace=5).start(builder.build(), {}, ctx)
    assert run.status == "completed" and run.vars == {"i": 11}
    assert [entry["node"] for entry in run.trace] == ["s7", "s8", "s9", "s10", "s11"]
    assert run.trace_dropped == 7


def test_a_stored_run_of_another_format_is_refused():
    with pytest.raises(ValueError, match="format 99 is not 1"):
        Run.from_dict({"format": 99, "id": "x", "workflow": {}, "trigger": {}})


class Counted(Node):
    """Counts how often its Params schema is built."""

    type = "test.counted"
    built = 0

    class Params(ma.Schema):
        value = ma.fields.Integer(load_default=0)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            Counted.built += 1
            super().__init__(*args, **kwargs)

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        return Result("next", {"value": params["value"]})


def test_a_nodes_params_schema_is_built_once_not_per_step(ctx):
    registry = Registry([*BUILTINS, Counted], entry_points=False)
    workflow = (
        WorkflowBuilder("counted")
        .node("a", "test.counted", value=1, next="b")
        .node("b", "test.counted", value=2)
        .build(registry=registry)
    )
    engine = Engine(registry=registry)
    Counted.built = 0
    runs = [engine.start(workflow, {}, ctx) for _ in range(3)]
    assert [r.outputs["b"] for r in runs] == [{"value": 2}] * 3
    assert Counted.built == 1  # six steps, one schema
