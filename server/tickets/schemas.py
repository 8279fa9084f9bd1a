"""How tickets, their events, people and staff look as JSON: in the API and to the
ticket nodes (``host.py``), the same shapes."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from server.models import StaffProfile, Ticket, TicketEvent, db
from server.tickets import staff

API = "/api/v1"


def photo(ticket: Ticket, message_id: str | None,
          event: TicketEvent | None = None) -> dict[str, Any] | None:
    """Where a photo can be fetched (with tickets:read), and the message it came with."""
    if not message_id:
        return None
    url = f"{API}/tickets/{ticket.number}/photo"
    return {"message_id": message_id, "url": f"{url}?event={event.id}" if event else url}


def reporter(ticket: Ticket) -> dict[str, Any]:
    person = ticket.person
    return {"phone": ticket.reporter_phone, "jid": ticket.reporter_jid,
            "name": ticket.reporter_name, "person_id": ticket.person_id,
            "department": person.department if person else None,
            "unit": person.unit if person else None}


def assignee(ticket: Ticket) -> dict[str, Any] | None:
    user = ticket.assignee
    if user is None:
        return None
    profile = db.session.get(StaffProfile, user.id)
    return {"user_id": user.id, "username": user.username, "name": staff.display_name(user),
            "phone": profile.phone if profile else None,
            "level": profile.level if profile else None}


class TicketSchema(ma.Schema):
    number = ma.fields.String(metadata={"description": "The tracking number, BRT2409001."})
    category = ma.fields.String()
    text = ma.fields.String(metadata={"description": "What the reporter wrote."})
    status = ma.fields.String(metadata={
        "description": "new, assigned, in_progress, pending, done or confirmed"})
    reporter = ma.fields.Function(reporter)
    assignee = ma.fields.Function(assignee, allow_none=True)
    session_id = ma.fields.String(allow_none=True, metadata={
        "description": "The WhatsApp session it came through (replies go there)."})
    photo = ma.fields.Function(lambda t: photo(t, t.photo_message_id), allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    assigned_at = ma.fields.DateTime(allow_none=True)
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)
    confirmed_at = ma.fields.DateTime(allow_none=True)
    duration_seconds = ma.fields.Integer(allow_none=True, metadata={
        "description": "From report to finish (durasi)."})


class TicketEventSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"description": "created, assigned, started, progress, "
                                      "finished, confirmed, reopened, status or note"})
    status = ma.fields.String(metadata={"description": "The ticket's status after it."})
    note = ma.fields.String()
    actor = ma.fields.Function(lambda e: {"kind": e.actor_kind, "name": e.actor_name,
                                          "phone": e.actor_phone, "user_id": e.actor_user_id})
    photo = ma.fields.Function(lambda e: photo(e.ticket, e.photo_message_id, e),
                               allow_none=True)
    at = ma.fields.DateTime(attribute="created_at")


class AssignmentSchema(ma.Schema):
    id = ma.fields.Integer()
    assignee = ma.fields.Function(lambda a: {"user_id": a.assignee_id,
                                             "name": a.assignee_name})
    assigned_by = ma.fields.Function(lambda a: {"user_id": a.assigned_by_id,
                                                "name": a.assigned_by_name})
    note = ma.fields.String()
    status = ma.fields.String(metadata={"description": "active, pending, done or replaced"})
    created_at = ma.fields.DateTime()
    ended_at = ma.fields.DateTime(allow_none=True)


class PersonSchema(ma.Schema):
    id = ma.fields.String(metadata={"description": "The directory id, e.g. PGW2402001."})
    name = ma.fields.String()
    phone = ma.fields.String(metadata={"description": "Normalised: 628123456789."})
    email = ma.fields.String(allow_none=True)
    department = ma.fields.String(metadata={"description": "Jurusan."})
    unit = ma.fields.String(metadata={"description": "Bagian."})
    status = ma.fields.String(metadata={"description": "active or inactive"})
    notes = ma.fields.String()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class StaffSchema(ma.Schema):
    user_id = ma.fields.Integer()
    username = ma.fields.Function(lambda p: p.user.username)
    name = ma.fields.Function(lambda p: staff.display_name(p.user))
    group = ma.fields.Function(lambda p: p.user.group.name)
    phone = ma.fields.String()
    level = ma.fields.String(metadata={"description": "administrator, staff or tbo"})
    level_label = ma.fields.Function(lambda p: staff.LABELS[p.level])
    status = ma.fields.String(metadata={"description": "active or inactive"})
    notes = ma.fields.String()
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
