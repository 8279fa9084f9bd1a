"""Messages missed while disconnected, from the history sync (the sandbox plays it):
stored once per WhatsApp id, announced as message.backfilled, never seen by workflows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa

from server.models import Message, OutboxMessage, StoredEvent, WorkflowRun, db
from tests.server.conftest import wait_for

AUTO_REPLY = {
    "name": "auto-reply",
    "trigger": {"type": "message", "any": True},
    "start": "hello",
    "nodes": {"hello": {"type": "send", "params": {"text": "Terima kasih"}}},
}


def _history(client, headers, sid, messages):
    response = client.post(
        f"/api/v1/sandbox/sessions/{sid}/history", headers=headers, json={"messages": messages}
    )
    assert response.status_code == 200, response.json
    return response.json["ids"]


def test_backfilled_messages_are_stored_once_and_never_answered(
    client, operator_headers, sandbox_session
):
    uploaded = client.post(
        "/api/v1/workflows?enable=true", headers=operator_headers, json=AUTO_REPLY
    )
    assert uploaded.status_code == 200, uploaded.json
    # Said by a contact while the session was away, one sent from the phone meanwhile.
    ids = _history(
        client,
        operator_headers,
        sandbox_session,
        [
            {
                "from": "0812-1111-2222",
                "text": "halo, ada orang?",
                "id": "3EB0MISSED01",
                "timestamp": "2026-01-02T03:04:05+00:00",
            },
            {
                "from": "0812-1111-2222",
                "text": "ya, sebentar",
                "id": "3EB0MISSED02",
                "from_me": True,
            },
        ],
    )
    assert ids == ["3EB0MISSED01", "3EB0MISSED02"]
    stored = wait_for(
        lambda: (
            db.session.scalars(
                sa.select(Message)
                .where(Message.session_id == sandbox_session)
                .order_by(Message.wa_id)
            ).all()
            if len(db.session.scalars(sa.select(Message)).all()) == 2
            else None
        ),
        what="both stored",
    )
    assert [(m.wa_id, m.direction, m.text) for m in stored] == [
        ("3EB0MISSED01", "in", "halo, ada orang?"),
        ("3EB0MISSED02", "out", "ya, sebentar"),
    ]
    assert stored[0].timestamp.replace(tzinfo=UTC) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    # The same sync again (WhatsApp repeats chunks): nothing new stored or announced.
    _history(
        client,
        operator_headers,
        sandbox_session,
        [{"from": "0812-1111-2222", "text": "halo, ada orang?", "id": "3EB0MISSED01"}],
    )
    # A live message in the same chat, after the backfill: the auto-reply answers it.
    said = client.post(
        f"/api/v1/sandbox/sessions/{sandbox_session}/messages",
        headers=operator_headers,
        json={"from": "0812-1111-2222", "text": "halo lagi"},
    )
    assert said.status_code in (200, 201), said.json
    wait_for(
        lambda: db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 1,
        what="the auto-reply to the live message",
    )
    runs = db.session.scalars(sa.select(WorkflowRun)).all()
    assert len(runs) == 1 and "halo lagi" in json.dumps(runs[0].state)
    events = db.session.scalars(
        sa.select(StoredEvent.type)
        .where(StoredEvent.type.like("message.%"))
        .order_by(StoredEvent.id)
    ).all()
    assert events.count("message.backfilled") == 2
    assert events.count("message.received") == 1
    # Once sent, the auto-reply is stored too (when is the sender's business): the rest
    # is the two backfilled messages and the live one, each once.
    texts = db.session.scalars(sa.select(Message.text).where(Message.text != "Terima kasih"))
    assert sorted(texts) == ["halo lagi", "halo, ada orang?", "ya, sebentar"]


def test_a_backfilled_message_kabar_already_has_is_dropped(
    client, operator_headers, sandbox_session
):
    said = client.post(
        f"/api/v1/sandbox/sessions/{sandbox_session}/messages",
        headers=operator_headers,
        json={"from": "0812-1111-2222", "text": "sudah tersimpan"},
    )
    wa_id = said.json["message_id"]
    wait_for(
        lambda: db.session.scalar(sa.select(Message).where(Message.wa_id == wa_id)),
        what="the live message stored",
    )
    _history(
        client,
        operator_headers,
        sandbox_session,
        [
            {"from": "0812-1111-2222", "text": "sudah tersimpan", "id": wa_id},
            {"from": "0812-1111-2222", "text": "baru", "id": "3EB0NEW"},
        ],
    )
    wait_for(
        lambda: db.session.scalar(sa.select(Message).where(Message.wa_id == "3EB0NEW")),
        what="the new one stored",
    )
    assert db.session.scalars(
        sa.select(StoredEvent.type).where(StoredEvent.type == "message.backfilled")
    ).all() == ["message.backfilled"]
    assert (
        db.session.scalar(sa.select(sa.func.count(Message.seq)).where(Message.wa_id == wa_id)) == 1
    )


def test_no_workflow_sees_a_backfilled_message_even_on_any_event():
    from server.models import StoredEvent as Row
    from server.workflows import inbox

    row = Row(type="message.backfilled", session_id="s", data={"message": {}})
    assert inbox.fan_out(row, None) is None
