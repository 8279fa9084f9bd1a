"""Many messages in one request: each one a send of its own (the same schema, the same
recipients, the same outbox row as ``queue.send``), answered one by one, stored in one
transaction.

Unlike a broadcast (one message to many, all or none), the items of a bulk send differ
and stand alone: an invalid item is answered with its error and does not stop the others.
Each item may carry its own ``idempotency_key``; a request key (the ``Idempotency-Key``
header) keys the items that have none as ``<key>:<index>``. A key seen before answers
with the row it made (``replayed``), or 409 ``idempotency_key_reused`` when it came with
a different message.

Why it is fast: every item is checked first (no write lock held meanwhile), the keys are
looked up in one query, and the new rows go in one multi-row INSERT and one COMMIT, so
the cost per message is its validation, not a transaction and its fsync.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server.errors import Conflict, KabarError, ValidationFailed
from server.models import PRIORITIES, OutboxMessage, WaSession, db, utcnow
from server.outbox import queue, recipients
from server.runtime import wakeup
from server.whatsapp.transport import new_message_id

MAX_ITEMS = 1000
KEY_FIELD = "idempotency_key"
KEY_MAX = 128


@dataclass
class Item:
    """One item's answer: the row it made or replayed, or its error."""

    index: int
    row: dict[str, Any] | None = None
    replayed: bool = False
    error: KabarError | None = None
    key: str | None = None
    request_hash: str = ""
    checked: dict[str, Any] = field(default_factory=dict)  # the row it would insert

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            error: dict[str, Any] = {
                "status": self.error.status,
                "code": self.error.code,
                "message": self.error.message,
            }
            if self.error.errors:
                error["errors"] = self.error.errors
            return {"index": self.index, "error": error}
        assert self.row is not None
        return {
            "index": self.index,
            "id": self.row["id"],
            "wa_id": self.row["wa_id"],
            "to": self.row["to_jid"],
            "status": self.row["status"],
            "replayed": self.replayed,
        }


def send_many(
    session: WaSession, items: Any, *, idempotency_key: str | None = None, source: str = "api"
) -> list[Item]:
    """Queue each valid item (one transaction for all); an answer for every item, in
    order. 422 for the request as a whole only when it is not a list of 1 to
    ``MAX_ITEMS`` items."""
    if not isinstance(items, list) or not items:
        raise ValidationFailed(errors={"messages": ["Give a list of at least one message."]})
    if len(items) > MAX_ITEMS:
        raise ValidationFailed(
            errors={"messages": [f"At most {MAX_ITEMS} messages per request; split the list."]}
        )
    answers = [
        _checked(session, index, spec, idempotency_key, source) for index, spec in enumerate(items)
    ]
    for _attempt in range(3):  # a concurrent request may take a key between look-up and insert
        try:
            _store(session, [a for a in answers if a.error is None])
            break
        except IntegrityError:
            db.session.rollback()
    else:
        raise Conflict(
            "The same idempotency keys are being sent by another request right now; send again.",
            code="idempotency_key_in_use",
        )
    if any(a.row is not None and not a.replayed for a in answers):
        wakeup.notify()
    return answers


def _checked(
    session: WaSession, index: int, spec: Any, request_key: str | None, source: str
) -> Item:
    """The item validated and made into the values of its outbox row (not stored)."""
    item = Item(index)
    try:
        if not isinstance(spec, dict):
            raise ValidationFailed(errors={"$": ["Expected a JSON object (a send request)."]})
        spec = dict(spec)
        key = spec.pop(KEY_FIELD, None)
        if key is None and request_key:
            key = f"{request_key}:{index}"
        if key is not None and (not isinstance(key, str) or not 0 < len(key) <= KEY_MAX):
            raise ValidationFailed(errors={KEY_FIELD: [f"A text of 1 to {KEY_MAX} characters."]})
        item.key = key
        item.request_hash = queue.request_hash(spec)
        data = queue.validate(spec)
        payload = queue.payload_of(session, data, None)
        fetching = queue.needs_fetch(payload)
        payload["request_hash"] = item.request_hash
        now = utcnow()
        item.checked = {
            "id": str(uuid.uuid4()),
            "session_id": session.id,
            "idempotency_key": key,
            "wa_id": new_message_id(),
            "to_jid": recipients.resolve(session, data["to"], queue.region()),
            "kind": data["type"],
            "payload": payload,
            "priority": PRIORITIES[data["priority"]],
            "source": source,
            "send_at": data["send_at"],
            "not_before": None if fetching else data["send_at"],
            "expires_at": data["expires_at"],
            "broadcast_id": None,
            "status": "fetching" if fetching else "queued",
            "waiting": "fetching the media from its URL" if fetching else None,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
    except KabarError as exc:
        item.error = exc
    return item


def _store(session: WaSession, items: list[Item]) -> None:
    """Replay the keys seen before, insert the rest in one statement, commit."""
    keys = {item.key for item in items if item.key is not None}
    seen: dict[str, dict[str, Any]] = {}
    if keys:
        for row in db.session.execute(
            sa.select(
                OutboxMessage.id,
                OutboxMessage.wa_id,
                OutboxMessage.to_jid,
                OutboxMessage.status,
                OutboxMessage.idempotency_key,
                OutboxMessage.payload,
            ).where(OutboxMessage.session_id == session.id, OutboxMessage.idempotency_key.in_(keys))
        ).mappings():
            seen[row["idempotency_key"]] = dict(row)
    new: list[dict[str, Any]] = []
    for item in items:
        item.row, item.replayed = item.checked, False  # again, after a race
        earlier = seen.get(item.key) if item.key is not None else None
        if earlier is None:
            new.append(item.row)
            if item.key is not None:
                seen[item.key] = item.row  # a key twice in one request: the first wins
            continue
        if earlier["payload"].get("request_hash") not in (None, item.request_hash):
            item.row, item.error = (
                None,
                Conflict(
                    "This idempotency key was used for a different message. Use a new key for "
                    "a new message.",
                    code="idempotency_key_reused",
                ),
            )
        else:
            item.row, item.replayed = earlier, True
    if new:
        db.session.execute(sa.insert(OutboxMessage.__table__), new)
    db.session.commit()
