"""From one stored event to its webhook deliveries, inside the event's own transaction:
an event is never stored without its deliveries, nor a delivery without its event.

Cost per event: one indexed query for the candidate endpoints (the session's and the
global ones; asked once per session in a group commit, ``memoised``); the type filter is
applied here, in Python. A run's end also finds, by
index, the one-shot endpoints of reply watches bound to that run (``run_id``); no other
event ever sees those.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from server.fonnte import webhooks as fonnte_webhooks
from server.models import (
    StoredEvent,
    WaSession,
    WebhookDelivery,
    WebhookEndpoint,
    db,
    memo,
)


def matches(filters: list[str], event_type: str) -> bool:
    """``*`` is every event; ``message.*`` every event of that family; else exact."""
    for item in filters:
        if item == "*" or item == event_type:
            return True
        if item.endswith(".*") and event_type.startswith(item[:-1]):
            return True
    return False


def chat_of(event_type: str, data: dict[str, Any]) -> str | None:
    """The chat a message event belongs to (None for other events)."""
    if not event_type.startswith("message."):
        return None
    chat = (data.get("message") or {}).get("chat") or data.get("chat") or {}
    return chat.get("jid") or data.get("to")


def ordering_key(event_type: str, data: dict[str, Any], session_id: str | None) -> str:
    """Deliveries with the same key (and endpoint) go out one at a time, in order: a
    message event's chat within its session, else the session itself."""
    key = session_id or "-"
    chat = chat_of(event_type, data)
    return f"{key}/{chat}"[:200] if chat else key


def wanted(row: StoredEvent, session: WaSession | None) -> list[int]:
    """The enabled endpoints that want ``row`` (their ids; asks nothing of ``row``'s
    ``seq``, so the caller flushes the event only when one does)."""
    session_id = session.id if session is not None else None
    with db.session.no_autoflush:
        candidates = memo(("webhook endpoints", session_id), lambda: _candidates(session_id))
        return [
            endpoint_id
            for endpoint_id, filters, shape in candidates
            if matches(filters or [], row.type)
            and (shape != "fonnte" or fonnte_webhooks.applies(row.type, row.data))
        ] + _bound_to_run(row)


def add_deliveries(row: StoredEvent, endpoint_ids: list[int]) -> list[WebhookDelivery]:
    """A pending delivery of ``row`` (flushed: its ``seq`` set) to each endpoint."""
    key = ordering_key(row.type, row.data, row.session_id)
    deliveries = [
        WebhookDelivery(endpoint_id=endpoint_id, event_seq=row.seq, ordering_key=key)
        for endpoint_id in endpoint_ids
    ]
    db.session.add_all(deliveries)
    return deliveries


def _candidates(session_id: str | None) -> list[sa.Row]:
    scope = WebhookEndpoint.session_id.is_(None)
    if session_id is not None:
        scope = sa.or_(scope, WebhookEndpoint.session_id == session_id)
    return db.session.execute(
        sa.select(WebhookEndpoint.id, WebhookEndpoint.events, WebhookEndpoint.format).where(
            WebhookEndpoint.enabled.is_(True), WebhookEndpoint.run_id.is_(None), scope
        )
    ).all()


RUN_ENDS = ("workflow.completed", "workflow.failed")


def _bound_to_run(row: StoredEvent) -> list[int]:
    """The one-shot endpoints waiting for the end of the run this event ends."""
    run_id = (row.data or {}).get("run_id") if row.type in RUN_ENDS else None
    if not run_id:
        return []
    return list(
        db.session.scalars(
            sa.select(WebhookEndpoint.id).where(
                WebhookEndpoint.run_id == run_id, WebhookEndpoint.enabled.is_(True)
            )
        )
    )
