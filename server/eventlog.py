"""Storing catalogue events, and the envelope they travel in.

Envelope (webhooks, the live stream, the API)::

    {"id": "…", "type": "message.received", "timestamp": "…Z",
     "session": {"id": "…", "label": "…", "owner": "…"}, "data": {...}}
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from server import directory
from server.events import CATALOGUE_VERSION, Event, to_wire
from server.models import StoredEvent, User, WaSession, db, memo, utcnow
from server.webhooks import fanout
from server.workflows import inbox

_PENDING = "kabar.events"
_WORK = "kabar.work added"


def record(event: Event, session: WaSession | None, *, owner_id: int | None = None) -> StoredEvent:
    """Add the event to the log, in the caller's transaction (the caller commits), with a
    webhook delivery for each endpoint that wants it, if a workflow could care, its
    workflow inbox item, and what it teaches about the session's groups and contacts.

    The event belongs to the tenant that owns ``session``; an event with no session (a
    run of a workflow with no session) to ``owner_id`` (the workflow's owner; None: an
    admin's global one). Only that tenant's workflows, webhooks and event stream see it,
    besides the admins' global ones.

    Inside ``batched()`` an event no webhook wants is written with the others at the
    block's end; the returned row is then not in the ORM session (its ``seq`` unset)."""
    ref = None
    if session is not None:
        owner_id = session.owner_id
        owner = memo(("user", session.owner_id), lambda: db.session.get(User, session.owner_id))
        ref = {"id": session.id, "label": session.label, "owner": owner.username if owner else None}
    values = {
        "id": str(uuid.uuid4()),
        "type": event.type,
        "session_id": session.id if session else None,
        "owner_id": owner_id,
        "session": ref,
        "data": to_wire(event),
        "created_at": utcnow(),
    }
    row = StoredEvent(**values)
    wanted = fanout.wanted(row, session)
    pending: list[dict[str, Any]] | None = db.session.info.get(_PENDING)
    if pending is not None and not wanted:
        pending.append(values)
    else:
        if pending:
            _write(pending)  # the events before it first: the log keeps their order
        db.session.add(row)
        if wanted:
            db.session.flush()  # the event's seq, for its deliveries
            fanout.add_deliveries(row, wanted)
    if wanted:
        db.session.info.setdefault(_WORK, set()).add("webhooks")
    if inbox.fan_out(row, session) is not None:
        db.session.info.setdefault(_WORK, set()).add("workflows")
    directory.learn(event, session)
    return row


def work_added() -> set[str]:
    """Which workers the events recorded since the last call gave work to ("webhooks":
    a delivery, "workflows": an inbox item), on this thread's session; and forget it.
    The runtime's sink wakes only those after its commit: a receipt nobody listens to
    wakes nobody (each wake-up is a query for due work)."""
    return db.session.info.pop(_WORK, set())


@contextmanager
def batched() -> Iterator[None]:
    """Inside the block, ``record`` collects the events no webhook wants and writes them
    with one statement (an executemany, no ORM unit of work) when the block ends, in
    the caller's transaction: for a group commit (the sink's, the sender's), whose
    events were most of its cost. The events keep the order they were recorded in. A
    block that raises writes nothing (its transaction is rolled back)."""
    outer = _PENDING in db.session.info
    if outer:
        yield
        return
    pending: list[dict[str, Any]] = []
    db.session.info[_PENDING] = pending
    try:
        yield
        _write(pending)
    finally:
        db.session.info.pop(_PENDING, None)


def _write(pending: list[dict[str, Any]]) -> None:
    if pending:
        db.session.connection().execute(sa.insert(StoredEvent.__table__), pending)
        pending.clear()


def envelope(row: StoredEvent) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "version": CATALOGUE_VERSION,
        "timestamp": row.created_at.isoformat(),
        "session": row.session,
        "data": _without_handles(row.data),
    }


def _without_handles(data: dict[str, Any]) -> dict[str, Any]:
    """The data as it may leave the gateway: a media download handle (the transport's
    keys to the file) stays inside, as it does in the messages API."""
    message = data.get("message")
    media = message.get("media") if isinstance(message, dict) else None
    if not isinstance(media, dict) or "handle" not in media:
        return data
    media = {k: v for k, v in media.items() if k != "handle"}
    return {**data, "message": {**message, "media": media}}
