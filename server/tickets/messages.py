"""A ticket's messages and photos as the caller may see them: what the API and the dashboard
show beside a ticket (its message log) and serve as its photo."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response, send_file

from server import media, sessions
from server.auth import current_principal
from server.errors import NotFound
from server.models import Message, Ticket, TicketEvent, WaSession, db

MESSAGE_LOG = 200  # the newest messages shown beside a ticket


def session_ids(ticket: Ticket) -> list[str] | None:
    """The sessions whose messages belong with this ticket for the caller: the one it came
    through, and the caller's own (None: every session, for admins)."""
    if current_principal().is_admin:
        return None
    own = list(db.session.scalars(sessions.visible().with_only_columns(WaSession.id)))
    return own + [ticket.session_id] if ticket.session_id else own


def message_log(ticket: Ticket) -> list[Message]:
    """Messages that name the ticket's number, or are its report and photos."""
    own = [
        ticket.source_message_id,
        ticket.photo_message_id,
        *(event.photo_message_id for event in ticket.events),
    ]
    query = sa.select(Message).where(
        sa.or_(
            sa.func.lower(Message.text).contains(ticket.number.lower()),
            Message.id.in_([ref for ref in own if ref]),
        )
    )
    allowed = session_ids(ticket)
    if allowed is not None:
        query = query.where(Message.session_id.in_(allowed))
    rows = db.session.scalars(query.order_by(Message.seq.desc()).limit(MESSAGE_LOG)).all()
    return list(reversed(rows))


def photo_response(ticket: Ticket, event_id: int | None) -> Response:
    """The ticket's photo, or its event ``event_id``'s, from the media store (the API and
    the dashboard serve it alike)."""
    ref = ticket.photo_message_id
    if event_id is not None:
        event = db.session.get(TicketEvent, event_id)
        ref = event.photo_message_id if event and event.ticket_id == ticket.id else None
    message = db.session.scalar(sa.select(Message).where(Message.id == ref)) if ref else None
    sha = (message.media or {}).get("sha256") if message else None
    if not sha:
        raise NotFound(
            "There is no stored photo here (or it is still downloading).", code="photo_not_found"
        )
    row = media.get(sha)
    return send_file(
        media.path_of(sha),
        mimetype=row.mimetype,
        max_age=0,
        download_name=row.filename or f"{ticket.number}-photo",
    )
