"""The event log as a live stream (Server-Sent Events): what GET /api/v1/events and the
dashboard's /events answer, and the filters both take.

The stream polls the ``events`` table (every 0.5 s): that works the same on SQLite and
PostgreSQL and in every web worker, with no broker. The database session is released
between polls, and a stream ends after ``KABAR_EVENTS_STREAM_SECONDS`` so gunicorn
threads are not held forever; clients reconnect with ``Last-Event-ID`` (the ``seq``
sent as each message's id) and miss nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import marshmallow as ma
import sqlalchemy as sa
from flask import Response, current_app, request, stream_with_context

from server import eventlog
from server.auth import current_principal
from server.errors import ValidationFailed
from server.models import StoredEvent, db

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
BATCH = 100


class FilterArgs(ma.Schema):
    session = ma.fields.String(metadata={"description": "Only this session's events."})
    type = ma.fields.String(
        metadata={
            "description": "Comma-separated types; one ending in '.' or '*' is a prefix "
            "(message. = every message event)."
        }
    )
    after = ma.fields.Integer(
        validate=ma.validate.Range(0, 2**63 - 1),
        metadata={"description": "Only events with a larger seq (the stream's ids)."},
    )


def visible(args: dict) -> sa.Select:
    """Events the caller may see (their own sessions'; admins: all), filtered."""
    query = sa.select(StoredEvent)
    principal = current_principal()
    if not principal.is_admin:
        query = query.where(StoredEvent.owner_id == principal.user.id)
    if args.get("session"):
        query = query.where(StoredEvent.session_id == args["session"])
    types = [t.strip() for t in (args.get("type") or "").split(",") if t.strip()]
    if types:
        query = query.where(
            sa.or_(
                *(
                    StoredEvent.type.startswith(t.rstrip("*"), autoescape=True)
                    if t.endswith((".", "*"))
                    else StoredEvent.type == t
                    for t in types
                )
            )
        )
    if args.get("after") is not None:
        query = query.where(StoredEvent.seq > args["after"])
    return query


def _start(args: dict) -> int:
    """Where a stream begins: after Last-Event-ID or ?after=, else at the log's end."""
    header = request.headers.get("Last-Event-ID", "").strip()
    if header:
        if not header.isdigit() or len(header) > 18:
            raise ValidationFailed(
                "Last-Event-ID must be the id (seq) of an event this stream sent.",
                code="invalid_last_event_id",
            )
        return int(header)
    if args.get("after") is not None:
        return args["after"]
    return db.session.scalar(sa.select(sa.func.max(StoredEvent.seq))) or 0


def _message(row: StoredEvent) -> str:
    data = json.dumps(eventlog.envelope(row), separators=(",", ":"), ensure_ascii=False)
    return f"id: {row.seq}\nevent: {row.type}\ndata: {data}\n\n"


def _stream(query: sa.Select, after: int, seconds: float) -> Iterator[str]:
    deadline = time.monotonic() + seconds
    yield "retry: 3000\n: connected\n\n"
    quiet_since = time.monotonic()
    while True:
        rows = db.session.scalars(
            query.where(StoredEvent.seq > after).order_by(StoredEvent.seq).limit(BATCH)
        ).all()
        chunk = "".join(_message(row) for row in rows)
        after = rows[-1].seq if rows else after
        db.session.close()  # give the connection back while we wait
        now = time.monotonic()
        if chunk:
            yield chunk
            quiet_since = now
        elif now - quiet_since >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            quiet_since = now
        if now >= deadline:
            yield ": the stream ends here; reconnect with Last-Event-ID\n\n"
            return
        if len(rows) < BATCH:
            time.sleep(max(0.0, min(POLL_SECONDS, deadline - now)))


def stream_response(args: dict) -> Response:
    """The live stream of the events the caller may see, filtered by ``args``
    (FilterArgs). The API (Bearer) and the dashboard (cookie) both answer with it."""
    after = _start(args)
    query = visible({**args, "after": None})
    seconds = float(current_app.config["KABAR"]["EVENTS_STREAM_SECONDS"])
    return Response(
        stream_with_context(_stream(query, after, seconds)),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
