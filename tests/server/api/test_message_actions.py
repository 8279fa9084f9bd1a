"""React, edit and revoke go through the outbox; errors for the wrong targets."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import Message, SandboxDelivery, WaSession, db
from tests.server.conftest import wait_for


def _fast(sid):
    session = db.session.get(WaSession, sid)
    session.settings = {"pacing": {"enabled": False}}
    db.session.commit()


def _history(message_id):
    return db.session.scalar(sa.select(Message).where(Message.id == message_id))


def _delivered(sid, kind):
    return db.session.scalars(
        sa.select(SandboxDelivery).where(
            SandboxDelivery.session_id == sid, SandboxDelivery.kind == kind
        )
    ).all()


def test_react_to_an_inbound_message(client, operator_headers, sandbox_session):
    _fast(sandbox_session)
    said = client.post(
        f"/api/v1/sandbox/sessions/{sandbox_session}/messages",
        headers=operator_headers,
        json={"from": "081234567890", "text": "hi"},
    )
    wa_id = said.json["message_id"]
    reacted = client.post(
        f"/api/v1/sessions/{sandbox_session}/messages/{wa_id}/react",
        headers=operator_headers,
        json={"emoji": "👍"},
    )
    assert reacted.status_code == 202 and reacted.json["type"] == "reaction"
    [delivery] = wait_for(lambda: _delivered(sandbox_session, "reaction"))
    assert delivery.content["text"] == "👍" and delivery.content["quoted_id"] == wa_id
    assert delivery.to_jid == "6281234567890@s.whatsapp.net"


def test_edit_and_revoke_own_messages_only(client, operator_headers, sandbox_session):
    _fast(sandbox_session)
    sent = client.post(
        f"/api/v1/sessions/{sandbox_session}/messages",
        headers=operator_headers,
        json={"to": "081234567890", "text": "Halo"},
    )
    mid = sent.json["id"]
    wait_for(lambda: _history(mid), what="the history entry")
    edit = client.post(
        f"/api/v1/sessions/{sandbox_session}/messages/{mid}/edit",
        headers=operator_headers,
        json={"text": "Halo, Budi"},
    )
    assert edit.status_code == 202
    wait_for(lambda: _history(mid).text == "Halo, Budi", what="the edit")
    revoke = client.post(
        f"/api/v1/sessions/{sandbox_session}/messages/{mid}/revoke", headers=operator_headers
    )
    assert revoke.status_code == 202
    wait_for(lambda: _history(mid).status == "revoked", what="the revoke")
    assert len(_delivered(sandbox_session, "revoke")) == 1

    inbound = client.post(
        f"/api/v1/sandbox/sessions/{sandbox_session}/messages",
        headers=operator_headers,
        json={"from": "081234567890", "text": "theirs"},
    ).json["message_id"]
    not_mine = client.post(
        f"/api/v1/sessions/{sandbox_session}/messages/{inbound}/edit",
        headers=operator_headers,
        json={"text": "x"},
    )
    assert not_mine.status_code == 409 and not_mine.json["code"] == "not_own_message"
    missing = client.post(
        f"/api/v1/sessions/{sandbox_session}/messages/nope/react",
        headers=operator_headers,
        json={"emoji": "x"},
    )
    assert missing.status_code == 404 and missing.json["code"] == "message_not_found"
