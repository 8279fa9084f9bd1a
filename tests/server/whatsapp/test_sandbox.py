"""The sandbox transport's receipts survive a runtime restart: they are derived from the
rows (what the virtual recipient received, what the outbox still waits for), not kept
only in the timers of the process that sent the message."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import OutboxMessage, SessionStatusChange, WaSession, db
from tests.server.conftest import wait_for


def _restart_with(client, headers, sid, settings: dict) -> None:
    assert (
        client.patch(
            f"/api/v1/sessions/{sid}", headers=headers, json={"settings": settings}
        ).status_code
        == 200
    )
    before = db.session.scalar(
        sa.select(sa.func.count(SessionStatusChange.id)).where(
            SessionStatusChange.session_id == sid,
            SessionStatusChange.reason == "restarted by request",
        )
    )
    client.post(f"/api/v1/sessions/{sid}/restart", headers=headers)
    wait_for(
        lambda: (
            db.session.scalar(
                sa.select(sa.func.count(SessionStatusChange.id)).where(
                    SessionStatusChange.session_id == sid,
                    SessionStatusChange.reason == "restarted by request",
                )
            )
            > before
        ),
        what="the restart",
    )
    wait_for(lambda: db.session.get(WaSession, sid).status == "connected", what="connected")


def _statuses(sid):
    return [
        r.status
        for r in db.session.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.session_id == sid)
            .order_by(OutboxMessage.seq)
        )
    ]


def test_receipts_owed_when_the_runtime_stopped_come_after_it_is_back(
    client, operator_headers, fast
):
    # Receipts off stands for "the process holding the receipt timers was killed".
    _restart_with(
        client,
        operator_headers,
        fast,
        {"pacing": {"enabled": False}, "sandbox": {"receipts": False}},
    )
    for text in ("satu", "dua", "tiga"):
        sent = client.post(
            f"/api/v1/sessions/{fast}/messages",
            headers=operator_headers,
            json={"to": "0812-3456-789", "text": text},
        )
        assert sent.status_code == 202
    wait_for(lambda: _statuses(fast) == ["sent"] * 3, what="sent, without receipts")
    # One of them got as far as delivered before the stop.
    first = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.session_id == fast).order_by(OutboxMessage.seq)
    )
    first.status = "delivered"
    db.session.commit()
    _restart_with(
        client,
        operator_headers,
        fast,
        {"pacing": {"enabled": False}, "sandbox": {"receipts": True}},
    )
    wait_for(lambda: _statuses(fast) == ["read"] * 3, what="the owed receipts")
    rows = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.session_id == fast)
    ).all()
    assert all(r.read_at for r in rows)
    assert all(r.delivered_at for r in rows[1:])
