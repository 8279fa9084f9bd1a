"""The runtime loop: faults, the watchdog, a session's status changes as events."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import SessionStatusChange, StoredEvent, db
from tests.server.conftest import wait_for


def _status(client, headers, sid):
    return client.get(f"/api/v1/sessions/{sid}", headers=headers).json["status"]


def _statuses(sid):
    return [c.status for c in db.session.scalars(
        sa.select(SessionStatusChange).where(SessionStatusChange.session_id == sid)
        .order_by(SessionStatusChange.id))]


def test_disconnect_fault_reconnects(client, operator_headers, sandbox_session):
    response = client.post(f"/api/v1/sandbox/sessions/{sandbox_session}/faults",
                           headers=operator_headers, json={"kind": "disconnect"})
    assert response.status_code == 202
    wait_for(lambda: _statuses(sandbox_session)[-3:] == ["disconnected", "reconnecting",
                                                         "connected"], what="a reconnect")


def test_logout_from_the_phone_stops_the_session(client, operator_headers, sandbox_session):
    client.post(f"/api/v1/sandbox/sessions/{sandbox_session}/faults", headers=operator_headers,
                json={"kind": "logout"})
    wait_for(lambda: _status(client, operator_headers, sandbox_session) == "logged_out")
    session = client.get(f"/api/v1/sessions/{sandbox_session}", headers=operator_headers).json
    assert session["desired_state"] == "stopped"  # no restart loop on a dead pairing


def test_watchdog_reconnects_a_silent_dead_session(client, operator_headers, sandbox_session,
                                                   runtime):
    live = runtime.live[sandbox_session]
    live.transport._connected = False  # the link died without telling anyone
    runtime.watchdog_after = 0.05
    wait_for(lambda: "reconnecting" in _statuses(sandbox_session)
             and _statuses(sandbox_session)[-1] == "connected", what="the watchdog")
    reasons = [c.reason for c in db.session.scalars(sa.select(SessionStatusChange))]
    assert any(r.startswith("watchdog") for r in reasons)


def test_status_changes_are_events_in_the_log(app, sandbox_session):
    types = [(e.type, e.data["status"]) for e in db.session.scalars(
        sa.select(StoredEvent).where(StoredEvent.type == "session.status")
        .order_by(StoredEvent.seq))]
    assert types[0] == ("session.status", "created")
    assert ("session.status", "connected") in types
    assert all(e.session["id"] == sandbox_session for e in db.session.scalars(
        sa.select(StoredEvent).where(StoredEvent.session_id == sandbox_session)))
