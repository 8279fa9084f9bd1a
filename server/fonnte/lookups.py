"""fonnte's look-ups: a message's status (``/status``) and the device (``/device``)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from server.fonnte import Refused
from server.fonnte.send import outbox_row, text
from server.models import OutboxMessage, WaSession, db, utcnow

# Kabar's outbox status -> fonnte's message status.
STATUSES = {
    "sending": "processing",
    "sent": "sent",
    "delivered": "sent",
    "read": "sent",
    "played": "sent",
    "failed": "failed",
    "expired": "expired",
    "cancelled": "cancelled",
}


def message_status(row: OutboxMessage) -> str:
    if row.status == "queued":
        due = row.send_at or row.not_before
        return "waiting" if due is not None and due > utcnow() else "pending"
    if row.status == "failed" and "not on whatsapp" in (row.reason or "").lower():
        return "invalid"
    return STATUSES.get(row.status, row.status)


def status(session: WaSession, fields: dict[str, Any]) -> dict[str, Any]:
    ident = text(fields.get("id")).strip()
    if not ident:
        raise Refused("id required")
    row = outbox_row(session, ident)
    if row is None:
        raise Refused("message not found", code="message_not_found")
    return {"id": row.seq, "message_status": message_status(row), "status": True}


def device(session: WaSession) -> dict[str, Any]:
    sent = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.session_id == session.id)
    )
    return {
        "device": session.phone or "",
        "device_status": "connect" if session.status == "connected" else "disconnect",
        "expired": "never",
        "messages": sent,
        "name": session.label,
        "package": "Kabar",
        "quota": "unlimited",
        "status": True,
    }
