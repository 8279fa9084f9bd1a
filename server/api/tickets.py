"""/api/v1/tickets: the helpdesk's tickets: list, detail, assign, progress, status, stats,
exports. Managers (tickets:assign) see every ticket; field officers their own."""

from __future__ import annotations

import marshmallow as ma
from flask import Response
from flask.views import MethodView

from server import sessions
from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.api.messages import MessageSchema
from server.auth import current_principal
from server.models import Ticket
from server.tickets import export, lifecycle, people, staff, stats
from server.tickets.actors import Actor
from server.tickets.messages import message_log, photo_response, session_ids
from server.tickets.queries import filtered
from server.tickets.schemas import (
    AssignmentSchema,
    AssignSchema,
    ExportArgs,
    NoteSchema,
    PhotoArgs,
    ProgressSchema,
    StatusSchema,
    TicketEventSchema,
    TicketFilterArgs,
    TicketSchema,
)

blp = Blueprint(
    "tickets",
    __name__,
    url_prefix="/api/v1/tickets",
    description="Helpdesk tickets: tracking numbers, assignment, progress, statistics and exports.",
)


class TicketListArgs(TicketFilterArgs, PageArgs):
    pass


class TicketDetailSchema(TicketSchema):
    events = ma.fields.List(ma.fields.Nested(TicketEventSchema))
    assignments = ma.fields.List(ma.fields.Nested(AssignmentSchema))
    messages = ma.fields.Method(
        "message_log",
        metadata={
            "description": "Messages that name the ticket (in its session and yours): the "
            "report, cek/track questions, replies and notifications."
        },
    )

    def message_log(self, ticket: Ticket) -> list:
        return MessageSchema(many=True).dump(message_log(ticket))


class AssigneeStatsSchema(ma.Schema):
    user_id = ma.fields.Integer()
    name = ma.fields.String()
    total = ma.fields.Integer()
    open = ma.fields.Integer()
    finished = ma.fields.Integer(metadata={"description": "done or confirmed"})
    mean_seconds_to_finish = ma.fields.Float(allow_none=True)


class DayStatsSchema(ma.Schema):
    date = ma.fields.String(metadata={"description": "YYYY-MM-DD, helpdesk time zone"})
    created = ma.fields.Integer()
    finished = ma.fields.Integer()


class StatsSchema(ma.Schema):
    total = ma.fields.Integer()
    by_status = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    mean_seconds_to_finish = ma.fields.Float(
        allow_none=True,
        metadata={"description": "Mean time from report to finish of the finished tickets."},
    )
    by_assignee = ma.fields.List(ma.fields.Nested(AssigneeStatsSchema))
    by_day = ma.fields.List(ma.fields.Nested(DayStatsSchema))


class TicketCreateSchema(ma.Schema):
    text = ma.fields.String(required=True, validate=ma.validate.Length(1, lifecycle.MAX_TEXT))
    category = ma.fields.String(load_default="request")
    reporter_phone = ma.fields.String(
        load_default=None, metadata={"description": "The reporter's phone (or give person_id)."}
    )
    person_id = ma.fields.String(load_default=None)
    reporter_name = ma.fields.String(load_default="", validate=ma.validate.Length(0, 128))
    session_id = ma.fields.String(
        load_default=None,
        metadata={"description": "The session notifications to the reporter go through."},
    )

    @ma.validates_schema
    def _someone(self, data, **_kwargs):
        if not data.get("reporter_phone") and not data.get("person_id"):
            raise ma.ValidationError({"reporter_phone": ["Give reporter_phone or person_id."]})


def _actor() -> Actor:
    return Actor.of_principal(current_principal())


@blp.route("")
class Tickets(MethodView):
    @blp.requires("tickets:read")
    @blp.arguments(TicketListArgs, location="query")
    @blp.response(200, page_schema(TicketSchema))
    def get(self, args):
        """Tickets, newest first, filtered (field officers: those assigned to them)."""
        return paginate(
            filtered(current_principal(), args),
            Ticket.id,
            cursor=args["cursor"],
            limit=args["limit"],
            descending=True,
        )

    @blp.requires("tickets:assign")
    @blp.arguments(TicketCreateSchema)
    @blp.response(201, TicketSchema)
    def post(self, body):
        """Record a report that came another way (a call, a visit) as a ticket."""
        if body["session_id"]:
            sessions.get(body["session_id"])
        phone = (
            people.normalise(body["reporter_phone"], "reporter_phone")
            if body["reporter_phone"]
            else None
        )
        return lifecycle.create(
            body["text"],
            _actor(),
            category=body["category"],
            reporter_phone=phone,
            reporter_name=body["reporter_name"],
            person_id=body["person_id"],
            session_id=body["session_id"],
        )


@blp.route("/stats")
class Stats(MethodView):
    @blp.requires("tickets:read")
    @blp.arguments(TicketFilterArgs, location="query")
    @blp.response(200, StatsSchema)
    def get(self, args):
        """Counts by status and by day, mean time to finish, per assignee (same filters as
        the list; by_day covers from..to, default the last 30 days)."""
        return stats.compute(current_principal(), args)


@blp.route("/export")
class Export(MethodView):
    @blp.requires("tickets:read")
    @blp.arguments(ExportArgs, location="query")
    @blp.doc(
        responses={
            "200": {
                "description": "The spreadsheet.",
                "content": {
                    export.FORMATS["xlsx"]: {"schema": {"type": "string", "format": "binary"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        }
    )
    def get(self, args):
        """The filtered tickets as XLSX (default) or CSV, one row each."""
        fmt = args.pop("format")
        data, mimetype, name = export.export(current_principal(), args, fmt)
        return Response(
            data,
            mimetype=mimetype,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )


@blp.route("/<string:number>")
class TicketByNumber(MethodView):
    @blp.requires("tickets:read")
    @blp.response(200, TicketDetailSchema)
    def get(self, number):
        """A ticket with its history, assignments and the messages that name it."""
        return lifecycle.get(number, current_principal())


@blp.route("/<string:number>/assign")
class Assign(MethodView):
    @blp.requires("tickets:assign")
    @blp.arguments(AssignSchema)
    @blp.response(200, TicketSchema)
    def post(self, body, number):
        """Assign the ticket to a staff member, with an instruction (replaces the last)."""
        ticket = lifecycle.get(number, current_principal())
        return lifecycle.assign(ticket, staff.get(body["assignee"]), _actor(), note=body["note"])


@blp.route("/<string:number>/progress")
class Progress(MethodView):
    @blp.requires("tickets:assign")
    @blp.arguments(ProgressSchema)
    @blp.response(200, TicketSchema)
    def post(self, body, number):
        """Report progress (a note, and maybe a photo from a stored message)."""
        ticket = lifecycle.get(number, current_principal())
        photo = (
            lifecycle.photo_of(
                body["photo_message_id"], session_ids=session_ids(ticket), required=True
            )
            if body["photo_message_id"]
            else None
        )
        return lifecycle.progress(ticket, _actor(), note=body["note"], photo=photo)


@blp.route("/<string:number>/status")
class Status(MethodView):
    @blp.requires("tickets:assign")
    @blp.arguments(StatusSchema)
    @blp.response(200, TicketSchema)
    def post(self, body, number):
        """Move the ticket: start, hold, finish, confirm or reopen it."""
        ticket = lifecycle.get(number, current_principal())
        return lifecycle.change_status(ticket, body["status"], _actor(), note=body["note"])


@blp.route("/<string:number>/notes")
class Notes(MethodView):
    @blp.requires("tickets:assign")
    @blp.arguments(NoteSchema)
    @blp.response(200, TicketSchema)
    def post(self, body, number):
        """Add a note that changes nothing."""
        return lifecycle.add_note(
            lifecycle.get(number, current_principal()), _actor(), note=body["note"]
        )


@blp.route("/<string:number>/photo")
class Photo(MethodView):
    @blp.requires("tickets:read")
    @blp.arguments(PhotoArgs, location="query")
    @blp.doc(
        responses={
            "200": {
                "description": "The image as it was sent.",
                "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    )
    def get(self, args, number):
        """The ticket's photo (or, with ?event=, a progress photo), from the media store."""
        return photo_response(lifecycle.get(number, current_principal()), args.get("event"))
