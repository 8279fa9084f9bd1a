"""Broadcasts: one request, many recipients, one outbox row each (bulk priority, paced
like everything else). Texts may carry per-recipient fields: ``{name}``, ``{var1}``…,
filled from each recipient, as in fonnte's ``number|name|var1|var2`` lines."""

from __future__ import annotations

import string
from typing import Any

import sqlalchemy as sa

from server.errors import Conflict, NotFound, ValidationFailed
from server.models import WAITING_STATUSES, Broadcast, OutboxMessage, WaSession, db, utcnow
from server.outbox import queue
from server.runtime import wakeup

MAX_RECIPIENTS = 10_000


class _Fields(dict):
    """format_map mapping that leaves unknown placeholders as they were."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(text: str, fields: dict[str, str]) -> str:
    try:
        return string.Formatter().vformat(text, (), _Fields(fields))
    except (ValueError, IndexError):
        return text  # stray braces: send the text as written


def parse_lines(lines: str) -> list[dict[str, Any]]:
    """``number|name|var1|var2`` per line -> recipients."""
    recipients = []
    for line in lines.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if not parts[0]:
            continue
        variables = {f"var{i}": value for i, value in enumerate(parts[2:], start=1)}
        recipients.append(
            {"to": parts[0], "name": parts[1] if len(parts) > 1 else "", "vars": variables}
        )
    return recipients


def create(
    session: WaSession,
    *,
    message: dict[str, Any],
    recipients: list[dict[str, Any]],
    name: str = "",
    idempotency_key: str | None = None,
    source: str = "broadcast",
    commit: bool = True,
) -> tuple[Broadcast, bool]:
    """Queue one message per recipient, all or none (``commit=False``: in the caller's
    transaction, which commits)."""
    if idempotency_key:
        first = db.session.scalar(
            sa.select(OutboxMessage).where(
                OutboxMessage.session_id == session.id,
                OutboxMessage.idempotency_key == f"{idempotency_key}:0",
            )
        )
        if first is not None and first.broadcast_id:
            return db.session.get(Broadcast, first.broadcast_id), False
    if not recipients:
        raise ValidationFailed(errors={"recipients": ["Give at least one recipient."]})
    if len(recipients) > MAX_RECIPIENTS:
        raise ValidationFailed(
            errors={
                "recipients": [
                    f"At most {MAX_RECIPIENTS} recipients per broadcast; split the list."
                ]
            }
        )
    template = {"priority": "bulk", **message}
    # Validate and store the media once, not once per recipient.
    checked = queue.validate({**template, "to": recipients[0]["to"]})
    if checked.get("media"):
        resolved = queue.resolve_media(checked["type"], checked["media"])
        # A URL stays a URL: the runtime fetches it once for the whole broadcast.
        template["media"] = (
            {"url": resolved["url"]} if "url" in resolved else {"sha256": resolved["sha256"]}
        )
    savepoint = db.session.begin_nested()
    broadcast = Broadcast(session_id=session.id, name=name, total=len(recipients))
    db.session.add(broadcast)
    db.session.flush()
    errors: dict[str, Any] = {}
    for index, recipient in enumerate(recipients):
        fields = {"name": recipient.get("name") or "", **(recipient.get("vars") or {})}
        spec = {**template, "to": recipient["to"], "text": render(template.get("text", ""), fields)}
        try:
            queue.send(
                session,
                spec,
                source=source,
                broadcast_id=broadcast.id,
                idempotency_key=f"{idempotency_key}:{index}" if idempotency_key else None,
                commit=False,
            )
        except (ValidationFailed, NotFound, Conflict) as exc:  # a bad number or group name
            errors[str(index)] = exc.errors or {"to": [exc.message]}
    if errors:
        savepoint.rollback()
        if commit:
            db.session.rollback()
        raise ValidationFailed(
            "Some recipients are invalid; nothing was queued.", errors={"recipients": errors}
        )
    savepoint.commit()
    if commit:
        db.session.commit()
        wakeup.notify()
    return broadcast, True


def get(session: WaSession, broadcast_id: str) -> Broadcast:
    broadcast = db.session.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.session_id != session.id:
        raise NotFound(
            f"No broadcast {broadcast_id!r} in this session.", code="broadcast_not_found"
        )
    return broadcast


def progress(broadcast: Broadcast) -> dict[str, int]:
    counts = dict(
        db.session.execute(
            sa.select(OutboxMessage.status, sa.func.count())
            .where(OutboxMessage.broadcast_id == broadcast.id)
            .group_by(OutboxMessage.status)
        ).all()
    )
    counts["queued"] = counts.get("queued", 0) + counts.pop("fetching", 0)  # not sent yet
    return {
        status: counts.get(status, 0)
        for status in (
            "queued",
            "sending",
            "sent",
            "delivered",
            "read",
            "played",
            "failed",
            "cancelled",
            "expired",
        )
    }


def cancel(broadcast: Broadcast) -> Broadcast:
    """Cancel every recipient still queued; what has gone, has gone."""
    if broadcast.cancelled_at is not None:
        raise Conflict("This broadcast was cancelled already.", code="broadcast_cancelled")
    now = utcnow()
    db.session.execute(
        sa.update(OutboxMessage)
        .where(
            OutboxMessage.broadcast_id == broadcast.id, OutboxMessage.status.in_(WAITING_STATUSES)
        )
        .values(status="cancelled", reason="broadcast cancelled", waiting=None, updated_at=now)
    )
    broadcast.cancelled_at = now
    db.session.commit()
    return broadcast
