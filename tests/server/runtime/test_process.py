"""The runtime loop: faults, the watchdog, duplicate deliveries."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import Message, SessionStatusChange, StoredEvent, db
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


def test_the_same_message_delivered_twice_is_stored_once(app, sandbox_session, runtime):
    transport = runtime.live[sandbox_session].transport
    message = transport.inject(sender="628123", text="hello")
    # WhatsApp redelivers the very same message (same id) after a reconnect.
    from server.events import MessageReceived

    transport.emit(MessageReceived(message=message))
    rows = db.session.scalars(sa.select(Message).where(Message.wa_id == message.id)).all()
    assert len(rows) == 1
    events = db.session.scalars(sa.select(StoredEvent).where(
        StoredEvent.type == "message.received")).all()
    assert len(events) == 1


def test_status_changes_are_events_in_the_log(app, sandbox_session):
    types = [(e.type, e.data["status"]) for e in db.session.scalars(
        sa.select(StoredEvent).where(StoredEvent.type == "session.status")
        .order_by(StoredEvent.seq))]
    assert types[0] == ("session.status", "created")
    assert ("session.status", "connected") in types
    assert all(e.session["id"] == sandbox_session for e in db.session.scalars(
        sa.select(StoredEvent).where(StoredEvent.session_id == sandbox_session)))


def test_lookups_need_a_connected_session(client, operator_headers, runtime):
    created = client.post("/api/v1/sessions", headers=operator_headers, json={
        "label": "idle", "transport": "sandbox", "auto_start": False}).json
    response = client.get(f"/api/v1/sessions/{created['id']}/devices", headers=operator_headers)
    assert response.status_code == 409 and response.json["code"] == "session_not_paired"
    fault = client.post(f"/api/v1/sandbox/sessions/{created['id']}/faults",
                        headers=operator_headers, json={"kind": "disconnect"})
    assert fault.status_code == 503 and fault.json["code"] == "session_not_running"


def test_a_send_interrupted_after_the_transport_call_is_not_a_duplicate(
        client, operator_headers, sandbox_session, runtime):
    """The crash window: the recipient got the message, but the row still says sending.
    After a restart the row goes again with the same WhatsApp id; the recipient still
    has it once, and the row ends sent."""
    from server.models import OutboxMessage, SandboxDelivery, WaSession

    session = db.session.get(WaSession, sandbox_session)
    session.desired_state = "stopped"
    db.session.commit()
    wait_for(lambda: sandbox_session not in runtime.live, what="the session to stop")
    row = OutboxMessage(session_id=sandbox_session, wa_id="3EB0CRASHCRASHCRASH000",
                        to_jid="628123456789@s.whatsapp.net", kind="text",
                        payload={"text": "once"}, status="sending", attempts=1)
    db.session.add(row)
    db.session.add(SandboxDelivery(session_id=sandbox_session, wa_id=row.wa_id,
                                   to_jid=row.to_jid, kind="text", content={"text": "once"}))
    session.settings = {"pacing": {"enabled": False}}
    session.desired_state = "running"
    db.session.commit()
    wait_for(lambda: db.session.get(OutboxMessage, row.seq).status
             in ("sent", "delivered", "read"), what="the resend")
    assert db.session.get(OutboxMessage, row.seq).attempts == 2
    deliveries = db.session.scalars(sa.select(SandboxDelivery).where(
        SandboxDelivery.wa_id == row.wa_id)).all()
    assert len(deliveries) == 1
