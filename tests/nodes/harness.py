"""The one harness that runs workflow fixtures (``fixtures/**/*.json``) through the engine
and a ``LocalContext``, as n8n runs its ``*.workflow.json`` files.

A fixture::

    {"description": "what the user would notice",
     "workflow": "survey.json" (from workflows/) or {an inline workflow},
     "workflows": {"name": {…}},            called by call_workflow
     "now": "2025-01-06T02:00:00+00:00",    the standing clock (default: a Monday 09:00 WIB)
     "message": {"text": "#survey", …}      matched against the workflow's trigger, or
     "trigger": {…},                        the trigger data as given
     "http": [{"status": 200, "json": {…}}, {"raise": "timed out"}],   answered in order
     "tickets": [{"answer": {…}}, {"refuse": "ticket_not_found", "message": "…"}],
                                            the helpdesk's answers, in order (without the
                                            key, the ticket nodes have no gateway)
     "max_steps": 1000,
     "expect": {…},                         after the start
     "steps": [{"reply": "7", "expect": {…}}, {"timeout": true, "expect": {…}},
               {"advance": 60, …}]}

``expect`` keys: ``status``, ``path`` (this step's trace as ``node>output``, ``>wait``
for a wait, ``>retry`` for a failed attempt run again, ``>stop`` for an end), ``sent`` /
``broadcasts`` / ``requests`` / ``tickets`` (what this step did, each a subset of the
recorded item, all of them), ``response``, ``vars``,
``outputs``, ``wait``, ``result``, ``error`` (a substring), ``errors`` (substrings of this
step's trace errors). Before each step the run goes through ``json.dumps``/``json.loads``,
as a host stores it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nodes import (
    Engine,
    HttpResponse,
    LocalContext,
    Reply,
    Run,
    Timeout,
    Workflow,
    match_message,
)

FIXTURES = Path(__file__).parent / "fixtures"
INVALID = Path(__file__).parent / "invalid"
EXAMPLES = Path(__file__).resolve().parents[2] / "workflows"
MONDAY_9_WIB = "2025-01-06T02:00:00+00:00"


def fixture_ids(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*.json"))


def load_workflow(spec: str | dict[str, Any]) -> Workflow:
    if isinstance(spec, str):
        return Workflow.load(EXAMPLES / spec)
    return Workflow.from_dict(spec)


def run_fixture(name: str) -> Run:
    case = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    workflow = load_workflow(case["workflow"])
    ctx = LocalContext(
        now=datetime.fromisoformat(case.get("now", MONDAY_9_WIB)),
        http=_scripted(case.get("http", [])),
        tickets=_helpdesk(case["tickets"]) if "tickets" in case else None,
        workflows={
            name: Workflow.from_dict(doc) for name, doc in case.get("workflows", {}).items()
        },
    )
    engine = Engine(max_steps=case.get("max_steps", 1000))
    seen = _Seen()
    run = engine.start(workflow, _trigger(case, workflow), ctx, vars=case.get("vars"))
    _check(case.get("expect", {}), run, ctx, seen, "after the start")
    for number, step in enumerate(case.get("steps", []), start=1):
        run = Run.from_dict(json.loads(json.dumps(run.to_dict())))
        if "advance" in step:
            ctx.advance(seconds=step["advance"])
        if "reply" in step:
            event: Reply | Timeout = Reply(step["reply"], step.get("message", {}))
        else:
            assert step.get("timeout"), f"step {number}: give reply or timeout"
            event = Timeout()
            if run.due and run.due > ctx.now():
                ctx.time = run.due.astimezone(UTC)  # the host resumes it when due
        run = engine.resume(run, event, ctx, workflow=workflow)
        _check(step.get("expect", {}), run, ctx, seen, f"after step {number}")
    return run


def _trigger(case: dict[str, Any], workflow: Workflow) -> dict[str, Any]:
    if "message" not in case:
        return case.get("trigger", {"type": "manual"})
    message = {
        "chat": "6281234567890",
        "sender": "6281234567890",
        "session": "s1",
        "message_id": "IN-1",
        **case["message"],
    }
    for trigger in workflow.triggers:
        matched = match_message(trigger, message)
        if matched:
            return matched
    raise AssertionError(f"{message['text']!r} matches no trigger of {workflow.name}")


def _scripted(answers: list[dict[str, Any]]):
    pending = list(answers)

    def answer(method: str, url: str, **_request: Any) -> HttpResponse:
        assert pending, f"unexpected request {method} {url}"
        spec = pending.pop(0)
        if "raise" in spec:
            raise TimeoutError(spec["raise"])
        if "json" in spec:
            return HttpResponse.of_json(spec["json"], status=spec.get("status", 200))
        return HttpResponse(spec.get("status", 200), spec.get("text", ""), spec.get("headers", {}))

    return answer


class Refused(Exception):
    """How a helpdesk refuses: a stable ``code`` (as the gateway's KabarError has)."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code, self.message = code, message or code


def _helpdesk(answers: list[dict[str, Any]]):
    pending = list(answers)

    def answer(action: str, params: dict[str, Any], **_context: Any) -> dict[str, Any]:
        assert pending, f"unexpected helpdesk call {action} {params}"
        spec = pending.pop(0)
        if "refuse" in spec:
            raise Refused(spec["refuse"], spec.get("message", ""))
        return spec["answer"]

    return answer


class _Seen:
    """How much of each record the earlier steps already checked."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def new(self, name: str, items: list[Any]) -> list[Any]:
        start = self.counts.get(name, 0)
        self.counts[name] = len(items)
        return items[start:]


def _check(expect: dict[str, Any], run: Run, ctx: LocalContext, seen: _Seen, when: str) -> None:
    steps = seen.new("trace", run.trace)
    records = {
        "sent": seen.new("sent", ctx.sent),
        "broadcasts": seen.new("broadcasts", ctx.broadcasts),
        "requests": seen.new("requests", ctx.requests),
        "tickets": seen.new("tickets", ctx.ticket_calls),
    }
    state = json.dumps(run.to_dict(), indent=1)[:3000]
    where = f"{when}; run: {state}"
    if "status" in expect:
        assert run.status == expect["status"], where
    if "path" in expect:
        assert [_hop(entry) for entry in steps] == expect["path"], where
    for name, items in records.items():
        if name in expect:
            assert len(items) == len(expect[name]), f"{name} {items} {where}"
            for item, wanted in zip(items, expect[name], strict=True):
                assert_subset(wanted, item, f"{name} {where}")
    if "response" in expect:
        assert_subset(expect["response"], ctx.response, f"response {where}")
    for name in ("vars", "outputs", "wait"):
        if name in expect:
            assert_subset(expect[name], getattr(run, name), f"{name} {where}")
    if "result" in expect:
        assert run.result == expect["result"], where
    if "error" in expect:
        assert expect["error"] in (run.error or ""), where
    if "errors" in expect:
        errors = [entry["error"] for entry in steps if entry["error"]]
        assert len(errors) == len(expect["errors"]), f"{errors} {where}"
        for error, wanted in zip(errors, expect["errors"], strict=True):
            assert wanted in error, f"{error!r} {where}"


def _hop(entry: dict[str, Any]) -> str:
    if entry["output"] is not None:
        return f"{entry['node']}>{entry['output']}"
    if "wait" in entry:
        return f"{entry['node']}>wait"
    return f"{entry['node']}>{'retry' if entry['error'] else 'stop'}"


def assert_subset(expected: Any, actual: Any, where: str) -> None:
    """Every key in ``expected`` is in ``actual`` with a matching value; lists match item
    by item and in length."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{actual!r} is not an object; {where}"
        for key, value in expected.items():
            assert key in actual, f"{key!r} missing from {actual!r}; {where}"
            assert_subset(value, actual[key], f"{key}: {where}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), (
            f"{actual!r} != {expected!r}; {where}"
        )
        for wanted, item in zip(expected, actual, strict=True):
            assert_subset(wanted, item, where)
    else:
        assert actual == expected, f"{actual!r} != {expected!r}; {where}"
