"""Workflows that start each other: the chain limit and the event-start rate."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from server.models import StoredEvent, Workflow, WorkflowRun, db
from tests.server.conftest import drain_inbox


def _ping_pong(name: str, other: str) -> dict:
    """Starts when ``other`` ends, well or not (and by hand); ends at once."""
    return {
        "name": name,
        "triggers": [{"type": "event", "types": ["workflow.*"]}, {"type": "manual"}],
        "start": "note",
        "nodes": {"note": {"type": "set", "params": {"variables": {"after": other}}}},
    }


def _runs() -> list[WorkflowRun]:
    rows = db.session.scalars(sa.select(WorkflowRun).order_by(WorkflowRun.seq)).all()
    db.session.rollback()
    return list(rows)


@pytest.fixture
def operator_headers(make_user, login):
    return login(make_user("operator"))


def test_two_workflows_that_start_each_other_stop_at_the_chain_limit(
    app, client, operator_headers, upload, monkeypatch
):
    monkeypatch.setitem(app.config["KABAR"], "WORKFLOW_CHAIN_LIMIT", 4)
    upload(operator_headers, _ping_pong("ping", "pong"))
    upload(operator_headers, _ping_pong("pong", "ping"))

    assert (
        client.post("/api/v1/workflows/ping/runs", headers=operator_headers, json={}).status_code
        == 201
    )
    drain_inbox()  # fails if the workflows go on starting each other

    runs = _runs()
    # the run by hand, four more each started by the one before, then the refused one
    assert [r.status for r in runs] == ["completed"] * 5 + ["failed"]
    assert [r.state["trigger"].get("chain", 0) for r in runs] == [0, 1, 2, 3, 4, 5]
    refused = runs[-1]
    assert "KABAR_WORKFLOW_CHAIN_LIMIT" in refused.error and refused.current is None
    failed = db.session.scalars(
        sa.select(StoredEvent).where(StoredEvent.type == "workflow.failed")
    ).all()
    assert [(e.data["run_id"], e.data["chain"]) for e in failed] == [(refused.id, 5)]
    assert "KABAR_WORKFLOW_CHAIN_LIMIT" in failed[0].data["error"]


def test_a_call_workflow_child_is_as_far_down_the_chain_as_its_caller(
    app, client, operator_headers, upload, monkeypatch
):
    """A loop through a child run (A ends -> B starts and calls A -> A ends -> ...) is
    bounded too: the child does not start a new chain."""
    monkeypatch.setitem(app.config["KABAR"], "WORKFLOW_CHAIN_LIMIT", 3)
    upload(
        operator_headers,
        {
            "name": "a",
            "trigger": {"type": "manual"},
            "start": "note",
            "nodes": {"note": {"type": "set", "params": {"variables": {"x": 1}}}},
        },
    )
    upload(
        operator_headers,
        {
            "name": "b",
            "trigger": {"type": "event", "types": ["workflow.completed"]},
            "start": "call",
            "nodes": {"call": {"type": "call_workflow", "params": {"name": "a"}}},
        },
    )

    client.post("/api/v1/workflows/a/runs", headers=operator_headers, json={})
    drain_inbox()

    refused = [r for r in _runs() if r.status == "failed"]
    assert len(refused) == 1 and "KABAR_WORKFLOW_CHAIN_LIMIT" in refused[0].error


def test_event_starts_of_one_workflow_are_rate_limited(
    app, client, operator_headers, upload, monkeypatch
):
    monkeypatch.setitem(app.config["KABAR"], "WORKFLOW_EVENT_STARTS_PER_MINUTE", 3)
    upload(
        operator_headers,
        {
            "name": "source",
            "trigger": {"type": "manual"},
            "start": "note",
            "nodes": {"note": {"type": "set", "params": {"variables": {"x": 1}}}},
        },
    )
    upload(
        operator_headers,
        {
            "name": "listener",
            "trigger": {"type": "event", "types": ["workflow.completed"]},
            "start": "note",
            "nodes": {"note": {"type": "set", "params": {"variables": {"x": 1}}}},
        },
    )

    for _ in range(6):
        client.post("/api/v1/workflows/source/runs", headers=operator_headers, json={})
    drain_inbox()

    listener = db.session.scalar(sa.select(Workflow.id).where(Workflow.name == "listener"))
    runs = [r for r in _runs() if r.workflow_id == listener]
    # three started; the fourth refused and recorded; the fifth and sixth only logged
    assert [r.status for r in runs] == ["completed"] * 3 + ["failed"]
    assert "KABAR_WORKFLOW_EVENT_STARTS_PER_MINUTE" in runs[-1].error
