"""Tenancy of events beyond the endpoints (the authorization matrix walks those): an
event reaches only the workflows, webhooks and event stream of the tenant that owns it,
besides the admins' global ones. Runs with no session are the path that leaked: bob's
workflow triggered by ``workflow.completed`` received alice's run result (an OTP)."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import WorkflowRun, db
from tests.server.conftest import drain_inbox

OTP = "OTP 482913"


def listener(name: str) -> dict:
    """A workflow that keeps the result of any run that completes (and ends as failed,
    so that listeners do not start each other)."""
    return {
        "name": name,
        "trigger": {"type": "event", "types": ["workflow.completed"]},
        "start": "keep",
        "nodes": {
            "keep": {
                "type": "set",
                "params": {"variables": {"seen": "{{ trigger.data.result }}"}},
                "next": {"next": "stop"},
            },
            "stop": {"type": "end", "params": {"status": "failed", "reason": "kept"}},
        },
    }


def runs_of(name: str) -> list[WorkflowRun]:
    from server.models import Workflow

    rows = db.session.scalars(
        sa.select(WorkflowRun)
        .join(Workflow, Workflow.id == WorkflowRun.workflow_id)
        .where(Workflow.name == name)
    ).all()
    db.session.rollback()
    return list(rows)


def test_a_run_without_a_session_reaches_only_its_tenants_workflows(
    client, make_user, login, admin, upload
):
    alice, bob = make_user("operator", "alice"), make_user("operator", "bob")
    alice_h, bob_h, admin_h = login(alice), login(bob), login(admin)
    upload(
        alice_h,
        {
            "name": "otp",
            "trigger": {"type": "manual"},
            "start": "done",
            "nodes": {"done": {"type": "end", "params": {"result": OTP}}},
        },
    )
    upload(alice_h, listener("alice-listens"))
    upload(bob_h, listener("bob-listens"))
    upload(admin_h, listener("global-listens"))

    started = client.post("/api/v1/workflows/otp/runs", headers=alice_h, json={})
    assert started.status_code == 201, started.json
    drain_inbox()

    assert runs_of("bob-listens") == []
    for name in ("alice-listens", "global-listens"):
        (run,) = runs_of(name)
        assert run.state["vars"]["seen"] == OTP

    def completed(headers) -> list[dict]:
        page = client.get("/api/v1/events/log?type=workflow.completed", headers=headers).json
        return [e for e in page["items"] if e["data"]["workflow"] == "otp"]

    assert completed(bob_h) == []
    assert [e["data"]["result"] for e in completed(alice_h)] == [OTP]
