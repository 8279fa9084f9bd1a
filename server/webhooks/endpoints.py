"""Webhook endpoints for the API: create, change, test, replay.

Tenancy: an endpoint belongs to its creator. A per-session endpoint needs a session the
caller may see; a global one (every session's events) is for admins only.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import aliased

from server import sessions
from server.auth import Principal, current_principal, get_owned, scoped
from server.errors import Forbidden, NotFound, ValidationFailed
from server.events import CATALOGUE, CATALOGUE_VERSION
from server.models import (
    StoredEvent,
    User,
    WaSession,
    WebhookDelivery,
    WebhookEndpoint,
    db,
    utcnow,
)
from server.runtime import wakeup
from server.webhooks import delivery as deliveries
from server.webhooks import fanout, signing

FAMILIES = {name.split(".", 1)[0] for name in CATALOGUE}


class AdminOnly(Forbidden):
    code = "admin_only"
    message = (
        "A global endpoint (no session_id) receives every session's events; only "
        "admins may create one. Give the session_id of one of your sessions."
    )


def check_url(url: str) -> None:
    """Refuse a URL the gateway may not POST to (422 unsafe_url), the same check every
    delivery makes again."""
    deliveries.check_url(url)


def check_events(events: list[str]) -> None:
    unknown = [
        e
        for e in events
        if not (e == "*" or e in CATALOGUE or (e.endswith(".*") and e[:-2] in FAMILIES))
    ]
    if unknown:
        raise ValidationFailed(
            errors={
                "events": [
                    f"Unknown event type(s): {', '.join(unknown)}. "
                    "Use '*', a type of the catalogue (docs/events.md) "
                    "or a family such as 'message.*'."
                ]
            }
        )


def check_headers(headers: dict[str, Any]) -> None:
    problems = signing.header_problems(headers)
    if problems:
        raise ValidationFailed(errors={"headers": problems})


def create(
    principal: Principal,
    *,
    url: str,
    session_id: str | None = None,
    events: list[str] | None = None,
    headers: dict[str, str] | None = None,
    enabled: bool = True,
    name: str = "",
    format: str = "kabar",
) -> WebhookEndpoint:
    if session_id is None and not principal.is_admin:
        raise AdminOnly()
    if session_id is not None:
        session_id = sessions.get(session_id).id  # another tenant's: 404
    events = events or ["*"]
    check_events(events)
    check_headers(headers or {})
    check_url(url)
    endpoint = WebhookEndpoint(
        owner_id=principal.user.id,
        session_id=session_id,
        url=url,
        name=name,
        events=events,
        headers=headers or {},
        enabled=enabled,
        secret=signing.new_secret(),
        format=format,
    )
    db.session.add(endpoint)
    db.session.commit()
    return endpoint


def visible(session_id: str | None = None) -> sa.Select:
    """The caller's endpoints; a reply watch's one-shot endpoint is listed by its watch."""
    query = scoped(WebhookEndpoint).where(WebhookEndpoint.run_id.is_(None))
    if session_id is not None:
        query = query.where(WebhookEndpoint.session_id == session_id)
    return query


def get(endpoint_id: int) -> WebhookEndpoint:
    return get_owned(WebhookEndpoint, endpoint_id, what="webhook")


def update(endpoint: WebhookEndpoint, **fields: Any) -> WebhookEndpoint:
    if "url" in fields:
        check_url(fields["url"])
    if "events" in fields:
        check_events(fields["events"])
    if "headers" in fields:
        check_headers(fields["headers"])
    for name in ("url", "name", "events", "headers", "enabled", "format"):
        if name in fields:
            setattr(endpoint, name, fields[name])
    if fields.get("enabled"):  # enabling again resumes what waited, a pause included
        endpoint.paused_reason, endpoint.consecutive_failures = None, 0
        endpoint.paused_until = None
    elif fields.get("enabled") is False:
        endpoint.paused_reason, endpoint.paused_until = "disabled by request", None
    db.session.commit()
    return endpoint


def delete(endpoint: WebhookEndpoint) -> None:
    db.session.delete(endpoint)
    db.session.commit()


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """A new secret at once; deliveries from now on are signed with it."""
    endpoint.secret = signing.new_secret()
    db.session.commit()
    return endpoint.secret


def ping(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """POST a signed ``webhook.ping`` now and report what the receiver said. Nothing is
    stored and the receiver's actions are not run."""
    check_url(endpoint.url)
    session = db.session.get(WaSession, endpoint.session_id) if endpoint.session_id else None
    envelope = {
        "id": str(uuid.uuid4()),
        "type": "webhook.ping",
        "version": CATALOGUE_VERSION,
        "timestamp": utcnow().isoformat(),
        "session": {
            "id": session.id,
            "label": session.label,
            "owner": db.session.get(User, session.owner_id).username,
        }
        if session
        else None,
        "data": {
            "endpoint_id": endpoint.id,
            "message": "A test from Kabar: if you can read this, it works.",
        },
    }
    outcome = deliveries.send_signed(endpoint, envelope)
    return {
        "ok": outcome.ok,
        "status_code": outcome.status_code,
        "latency_ms": outcome.latency_ms,
        "response": outcome.snippet,
        "error": outcome.error,
        "event_id": envelope["id"],
    }


# --- deliveries -------------------------------------------------------------------------


def deliveries_of(endpoint: WebhookEndpoint, status: str | None = None) -> sa.Select:
    query = sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    return query.where(WebhookDelivery.status == status) if status else query


def get_delivery(delivery_id: int) -> WebhookDelivery:
    """A delivery of an endpoint the caller may see; any other answers 404."""
    row = db.session.get(WebhookDelivery, delivery_id)
    principal = current_principal()
    endpoint = db.session.get(WebhookEndpoint, row.endpoint_id) if row else None
    if endpoint is None or (not principal.is_admin and endpoint.owner_id != principal.user.id):
        raise NotFound(
            f"No webhook delivery with id {delivery_id}.", code="webhook_delivery_not_found"
        )
    return row


def replay(delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the event again as a new pending delivery (fresh attempts and age, same
    event id, so receivers that dedupe on webhook-id see a repeat). The old row stays as
    history; if it was still retrying it is given up, so the event is not sent twice."""
    again = _replayed(delivery)
    db.session.commit()
    wakeup.notify()
    return again


def _replayed(delivery: WebhookDelivery) -> WebhookDelivery:
    if delivery.status in ("pending", "failed"):
        delivery.status = "dead"
        delivery.last_error = "replaced by a replay"
    again = WebhookDelivery(
        endpoint_id=delivery.endpoint_id,
        event_seq=delivery.event_seq,
        ordering_key=delivery.ordering_key,
        replay_of=delivery.id,
    )
    db.session.add(again)
    return again


def replay_since(endpoint: WebhookEndpoint, *, since: datetime | None, status: str = "all") -> int:
    """Replay every failed and/or dead delivery of the endpoint made since ``since``
    (default: the maximum age); with ``all``, also queue the events since then that the
    endpoint wants but never got a delivery for (while it was disabled; not before it
    was created). In event order, so order per chat is kept. How many were queued."""
    if since is None:
        since = utcnow() - timedelta(
            hours=int(current_app.config["KABAR"]["WEBHOOK_MAX_AGE_HOURS"])
        )
    statuses = ("failed", "dead") if status == "all" else (status,)
    replayed = aliased(WebhookDelivery)
    already = sa.exists().where(replayed.replay_of == WebhookDelivery.id)
    rows = db.session.scalars(
        deliveries_of(endpoint)
        .where(WebhookDelivery.status.in_(statuses), WebhookDelivery.created_at >= since, ~already)
        .order_by(WebhookDelivery.id)
    ).all()
    queue: list[tuple[int, WebhookDelivery | StoredEvent]] = [(row.event_seq, row) for row in rows]
    if status == "all":
        queue += [(event.seq, event) for event in _never_queued(endpoint, since)]
    for _seq, item in sorted(queue, key=lambda pair: pair[0]):
        if isinstance(item, WebhookDelivery):
            _replayed(item)
        else:
            db.session.add(
                WebhookDelivery(
                    endpoint_id=endpoint.id,
                    event_seq=item.seq,
                    ordering_key=fanout.ordering_key(item.type, item.data, item.session_id),
                )
            )
    db.session.commit()
    if queue:
        wakeup.notify()
    return len(queue)


def _never_queued(endpoint: WebhookEndpoint, since: datetime) -> list[StoredEvent]:
    """The events since ``since`` the endpoint wants (its session, or every one for a
    global endpoint; its types) that it has no delivery of at all."""
    queued = sa.exists().where(
        WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.event_seq == StoredEvent.seq
    )
    since = max(since, endpoint.created_at)  # not what happened before it existed
    query = sa.select(StoredEvent).where(StoredEvent.created_at >= since, ~queued)
    if endpoint.session_id is not None:
        query = query.where(StoredEvent.session_id == endpoint.session_id)
    events = db.session.scalars(query.order_by(StoredEvent.seq)).all()
    return [event for event in events if fanout.matches(endpoint.events or [], event.type)]
