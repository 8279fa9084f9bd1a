"""A run that finishes in one go is written once: one INSERT with its final state, no
UPDATE after it (it used to be inserted, then updated)."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import WorkflowRun, db

HOOK = {
    "name": "note",
    "trigger": {"type": "hook"},
    "start": "keep",
    "nodes": {
        "keep": {
            "type": "set",
            "params": {"variables": {"who": "{{ trigger.body.who }}"}},
            "next": {"next": "answer"},
        },
        "answer": {"type": "respond", "params": {"status": 200, "json": {"who": "{{ vars.who }}"}}},
    },
}


def test_a_hook_run_is_inserted_once_with_its_final_state(client, operator_headers):
    token = client.post("/api/v1/workflows?enable=true", headers=operator_headers, json=HOOK).json[
        "hook_token"
    ]
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        if "workflow_runs" in statement:
            statements.append(statement.split()[0].upper())

    sa.event.listen(db.engine, "before_cursor_execute", seen)
    try:
        answer = client.post(
            "/api/v1/hooks/note", headers={"X-Kabar-Token": token}, json={"who": "Sari"}
        )
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", seen)
    assert answer.status_code == 200 and answer.json == {"who": "Sari"}
    assert statements == ["INSERT"]
    run = db.session.scalar(sa.select(WorkflowRun))
    assert answer.headers["X-Kabar-Run"] == run.id
    assert run.status == "completed" and run.state["vars"] == {"who": "Sari"}
