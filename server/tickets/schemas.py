"""How tickets, their events, people and staff look as JSON: in the API and to the
ticket nodes (``host.py``), the same shapes; and what a request about them may say, which
the API and the dashboard load with the same schemas."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from server import fields
from server.models import StaffProfile, Ticket, TicketEvent, db
from server.tickets import lifecycle, staff

API = "/api/v1"
SETTABLE = ("in_progress", "pending", "done", "confirmed", "assigned", "new")


def photo(
    ticket: Ticket, message_id: str | None, event: TicketEvent | None = None
) -> dict[str, Any] | None:
    """Where a photo can be fetched (with tickets:read), and the message it came with."""
    if not message_id:
        return None
    url = f"{API}/tickets/{ticket.number}/photo"
    return {"message_id": message_id, "url": f"{url}?event={event.id}" if event else url}


def reporter(ticket: Ticket) -> dict[str, Any]:
    person = ticket.person
    return {
        "phone": ticket.reporter_phone,
        "jid": ticket.reporter_jid,
        "name": ticket.reporter_name,
        "person_id": ticket.person_id,
        "department": person.department if person else None,
        "unit": person.unit if person else None,
    }


def assignee(ticket: Ticket) -> dict[str, Any] | None:
    user = ticket.assignee
    if user is None:
        return None
    profile = db.session.get(StaffProfile, user.id)
    return {
        "user_id": user.id,
        "username": user.username,
        "name": staff.display_name(user),
        "phone": profile.phone if profile else None,
        "level": profile.level if profile else None,
    }


class TicketSchema(ma.Schema):
    number = ma.fields.String(metadata={"description": "The tracking number, BRT2409001."})
    category = ma.fields.String()
    text = ma.fields.String(metadata={"description": "What the reporter wrote."})
    status = ma.fields.String(
        metadata={"description": "new, assigned, in_progress, pending, done or confirmed"}
    )
    reporter = ma.fields.Function(reporter)
    assignee = ma.fields.Function(assignee, allow_none=True)
    session_id = ma.fields.String(
        allow_none=True,
        metadata={"description": "The WhatsApp session it came through (replies go there)."},
    )
    photo = ma.fields.Function(lambda t: photo(t, t.photo_message_id), allow_none=True)
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    assigned_at = ma.fields.DateTime(allow_none=True)
    started_at = ma.fields.DateTime(allow_none=True)
    finished_at = ma.fields.DateTime(allow_none=True)
    confirmed_at = ma.fields.DateTime(allow_none=True)
    duration_seconds = ma.fields.Integer(
        allow_none=True, metadata={"description": "From report to finish (durasi)."}
    )


class TicketEventSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String(
        metadata={
            "description": "created, assigned, started, progress, "
            "finished, confirmed, reopened, status or note"
        }
    )
    status = ma.fields.String(metadata={"description": "The ticket's status after it."})
    note = ma.fields.String()
    actor = ma.fields.Function(
        lambda e: {
            "kind": e.actor_kind,
            "name": e.actor_name,
            "phone": e.actor_phone,
            "user_id": e.actor_user_id,
        }
    )
    photo = ma.fields.Function(lambda e: photo(e.ticket, e.photo_message_id, e), allow_none=True)
    at = ma.fields.DateTime(attribute="created_at")


class AssignmentSchema(ma.Schema):
    id = ma.fields.Integer()
    assignee = ma.fields.Function(lambda a: {"user_id": a.assignee_id, "name": a.assignee_name})
    assigned_by = ma.fields.Function(
        lambda a: {"user_id": a.assigned_by_id, "name": a.assigned_by_name}
    )
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


class PersonCreateSchema(ma.Schema):
    id = ma.fields.String(
        load_default=None,
        metadata={"description": "e.g. PGW2402001; left out, Kabar gives PGW + YYMM + a sequence."},
    )
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 128))
    phone = ma.fields.String(
        required=True,
        validate=ma.validate.Length(1, 32),
        metadata={"description": "As typed: 0812…, +62 812…; stored normalised."},
    )
    email = ma.fields.Email(load_default=None, allow_none=True, validate=ma.validate.Length(0, 255))
    department = ma.fields.String(load_default="", validate=ma.validate.Length(0, 128))
    unit = ma.fields.String(load_default="", validate=ma.validate.Length(0, 128))
    status = ma.fields.String(load_default="active")
    notes = ma.fields.String(load_default="", validate=ma.validate.Length(0, 4096))


class PersonUpdateSchema(ma.Schema):
    name = ma.fields.String(validate=ma.validate.Length(1, 128))
    phone = ma.fields.String(validate=ma.validate.Length(1, 32))
    email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(0, 255))
    department = ma.fields.String(validate=ma.validate.Length(0, 128))
    unit = ma.fields.String(validate=ma.validate.Length(0, 128))
    status = ma.fields.String()
    notes = ma.fields.String(validate=ma.validate.Length(0, 4096))


class StaffProfileSchema(ma.Schema):
    phone = ma.fields.String(
        required=True,
        validate=ma.validate.Length(1, 32),
        metadata={"description": "The number they use on WhatsApp, as typed."},
    )
    level = ma.fields.String(
        required=True,
        metadata={"description": "administrator, staff (Staf) or tbo (field officer)"},
    )
    status = ma.fields.String(load_default="active")
    notes = ma.fields.String(
        load_default="",
        validate=ma.validate.Length(0, 4096),
        metadata={"description": "What they handle (deskripsi)."},
    )


class TicketFilterArgs(ma.Schema):
    status = ma.fields.String(
        metadata={
            "description": "Comma-separated statuses; open = new,assigned,in_progress,pending."
        }
    )
    from_ = fields.Date(
        data_key="from",
        metadata={"description": "Reported on or after this day (helpdesk time zone)."},
    )
    to = fields.Date(metadata={"description": "Reported on or before this day."})
    reporter = ma.fields.String(metadata={"description": "A phone number or a person id."})
    assignee = fields.RowId(metadata={"description": "The assignee's user id."})
    category = ma.fields.String()
    q = ma.fields.String(
        metadata={"description": "Part of the number, the report or the reporter's name."}
    )


class ExportArgs(TicketFilterArgs):
    format = ma.fields.String(load_default="xlsx", validate=ma.validate.OneOf(["xlsx", "csv"]))


class PhotoArgs(ma.Schema):
    event = fields.RowId(
        metadata={"description": "A ticket event's photo instead of the ticket's own."}
    )


class AssignSchema(ma.Schema):
    assignee = fields.RowId(
        required=True,
        metadata={"description": "The user id of a staff member (GET /api/v1/staff)."},
    )
    note = ma.fields.String(load_default="", validate=ma.validate.Length(0, lifecycle.MAX_TEXT))


class ProgressSchema(ma.Schema):
    note = ma.fields.String(load_default="", validate=ma.validate.Length(0, lifecycle.MAX_TEXT))
    photo_message_id = ma.fields.String(
        load_default=None,
        metadata={
            "description": "A stored message (of the ticket's session or yours) whose media "
            "is the photo."
        },
    )


class StatusSchema(ma.Schema):
    status = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(SETTABLE),
        metadata={
            "description": "in_progress (start), pending (hold), done (finish), confirmed, or "
            "assigned/new (reopen)."
        },
    )
    note = ma.fields.String(load_default="", validate=ma.validate.Length(0, lifecycle.MAX_TEXT))


class NoteSchema(ma.Schema):
    note = ma.fields.String(required=True, validate=ma.validate.Length(1, lifecycle.MAX_TEXT))
