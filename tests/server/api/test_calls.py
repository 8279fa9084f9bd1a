"""Incoming calls through a sandbox session: call.received, then reject it."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import StoredEvent, db
from tests.server.conftest import wait_for


def test_a_ringing_call_is_rejected_once(client, operator_headers, sandbox_session):
    rang = client.post(
        f"/api/v1/sandbox/sessions/{sandbox_session}/calls",
        headers=operator_headers,
        json={"from": "0812-1111-2222"},
    )
    assert rang.status_code == 201, rang.json
    call_id = rang.json["call_id"]
    event = wait_for(
        lambda: db.session.scalar(
            sa.select(StoredEvent).where(StoredEvent.type == "call.received")
        ),
        what="call.received",
    )
    assert event.data["call_id"] == call_id
    caller = event.data["caller"]["jid"]
    assert caller == "6281211112222@s.whatsapp.net"

    url = f"/api/v1/sessions/{sandbox_session}/calls/{call_id}/reject"
    rejected = client.post(url, headers=operator_headers, json={"caller": caller})
    assert rejected.status_code == 200, rejected.json
    assert rejected.json == {"call_id": call_id, "rejected": True}
    again = client.post(url, headers=operator_headers, json={"caller": caller})
    assert again.status_code == 409 and again.json["code"] == "call_not_found"


def test_rejecting_needs_the_caller_and_a_connected_session(
    client, operator_headers, sandbox_session, make_user, login
):
    url = f"/api/v1/sessions/{sandbox_session}/calls/ABC/reject"
    assert client.post(url, headers=operator_headers, json={}).status_code == 422
    field_officer = login(make_user("field"))
    assert client.post(url, headers=field_officer, json={"caller": "0812"}).status_code == 403
    client.post(f"/api/v1/sessions/{sandbox_session}/stop", headers=operator_headers)
    wait_for(
        lambda: (
            client.get(f"/api/v1/sessions/{sandbox_session}", headers=operator_headers).json[
                "status"
            ]
            == "stopped"
        ),
        what="stopped",
    )
    down = client.post(url, headers=operator_headers, json={"caller": "081211112222"})
    assert down.status_code == 503, down.json
