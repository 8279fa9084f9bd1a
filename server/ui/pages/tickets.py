"""The helpdesk's tickets: the list (filters, search, pages, live), statistics drawn as
bars, CSV / XLSX export, print views; a ticket with its timeline and photos, assign with
a note, progress, status, notes. The same ``server.tickets`` calls and schemas as
/api/v1/tickets; field officers see their own assignments (the service filters). Also
the overview's helpdesk card."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from server.auth import current_principal
from server.auth.principal import Principal
from server.models import OPEN_STATUSES, TICKET_STATUSES, StaffProfile, Ticket, db
from server.pagination import paginate
from server.tickets import export, lifecycle, staff, stats
from server.tickets.actors import Actor
from server.tickets.messages import message_log, photo_response, session_ids
from server.tickets.queries import filtered
from server.tickets.schemas import (
    AssignSchema,
    ExportArgs,
    NoteSchema,
    PhotoArgs,
    ProgressSchema,
    StatusSchema,
    TicketFilterArgs,
)
from server.ui import nav
from server.ui.base import UiBlueprint, back, form_values, load
from server.ui.pages import overview

bp = UiBlueprint("tickets", __name__, url_prefix="/helpdesk")

nav.add(
    nav.NavItem(
        "ui.tickets.index",
        lazy_gettext("Helpdesk"),
        "tickets:read",
        60,
        ("ui.tickets", "ui.people", "ui.staff"),
    )
)

PAGE = 50
PRINT_ROWS = 1000
STATUS_WORDS = {
    "new": lazy_gettext("new"),
    "assigned": lazy_gettext("assigned"),
    "in_progress": lazy_gettext("in progress"),
    "pending": lazy_gettext("pending"),
    "done": lazy_gettext("done"),
    "confirmed": lazy_gettext("confirmed"),
}
EVENT_WORDS = {
    "created": lazy_gettext("Reported"),
    "assigned": lazy_gettext("Assigned"),
    "started": lazy_gettext("Started"),
    "progress": lazy_gettext("Progress"),
    "finished": lazy_gettext("Finished"),
    "confirmed": lazy_gettext("Confirmed"),
    "reopened": lazy_gettext("Reopened"),
    "status": lazy_gettext("Status changed"),
    "note": lazy_gettext("Note"),
}
STEP_WORDS = {  # what setting a status by hand does (StatusSchema)
    "in_progress": lazy_gettext("Start (in progress)"),
    "pending": lazy_gettext("Hold (pending)"),
    "done": lazy_gettext("Finish (done)"),
    "confirmed": lazy_gettext("Confirm"),
    "assigned": lazy_gettext("Reopen (assigned)"),
    "new": lazy_gettext("Reopen (new)"),
}


# A global, not context: macros imported without context show statuses too.
bp.add_app_template_global(STATUS_WORDS, "ticket_status")


def _filters(schema=TicketFilterArgs) -> dict[str, Any]:
    """The query string's filters, checked with the API's schema (empty fields left out)."""
    return load(schema(), {k: v for k, v in request.args.items() if v.strip()})


def _staff_choices(status: str | None = None) -> list[StaffProfile]:
    """Staff to filter by or assign to (only managers choose among them)."""
    if not current_principal().can("tickets:assign"):
        return []
    return db.session.scalars(staff.search(status=status).order_by(StaffProfile.user_id)).all()


@bp.route("")
@bp.requires("tickets:read")
def index():
    args = _filters()
    page = paginate(
        filtered(current_principal(), args),
        Ticket.id,
        cursor=request.args.get("cursor") or None,
        limit=PAGE,
        descending=True,
    )
    context = {
        "page": page,
        "args": request.args,
        "statuses": TICKET_STATUSES,
        "assignees": _staff_choices(),
    }
    if request.args.get("partial"):
        return render_template("ui/tickets/_list.html", **context)
    return render_template("ui/tickets/index.html", **context)


@bp.route("/stats")
@bp.requires("tickets:read")
def statistics():
    numbers = stats.compute(current_principal(), _filters())
    return render_template(
        "ui/tickets/stats.html",
        stats=numbers,
        args=request.args,
        statuses=TICKET_STATUSES,
        assignees=_staff_choices(),
    )


@bp.route("/export")
@bp.requires("tickets:read")
def download():
    args = _filters(ExportArgs)
    fmt = args.pop("format")
    data, mimetype, name = export.export(current_principal(), args, fmt)
    return Response(
        data, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@bp.route("/print")
@bp.requires("tickets:read")
def print_list():
    query = filtered(current_principal(), _filters()).order_by(Ticket.id.desc())
    rows = db.session.scalars(query.limit(PRINT_ROWS + 1)).all()
    return render_template(
        "ui/tickets/print_list.html",
        tickets=rows[:PRINT_ROWS],
        more=len(rows) > PRINT_ROWS,
        args=request.args,
    )


def _ticket(number: str) -> Ticket:
    return lifecycle.get(number, current_principal())


@bp.route("/tickets/<string:number>")
@bp.requires("tickets:read")
def detail(number):
    ticket = _ticket(number)
    messages = message_log(ticket)
    context = {
        "ticket": ticket,
        "messages": messages,
        "events": ticket.events,
        "last": lifecycle.last_update(ticket),
        "event_words": EVENT_WORDS,
    }
    if request.args.get("partial"):
        return render_template("ui/tickets/_detail.html", **context)
    return render_template(
        "ui/tickets/detail.html",
        staff=_staff_choices("active"),
        open=ticket.status in OPEN_STATUSES,
        photos=[m for m in messages if m.media],
        steps=[(status, STEP_WORDS[status]) for status in lifecycle.next_statuses(ticket)],
        **context,
    )


@bp.route("/tickets/<string:number>/print")
@bp.requires("tickets:read")
def print_ticket(number):
    ticket = _ticket(number)
    return render_template(
        "ui/tickets/print_ticket.html", ticket=ticket, events=ticket.events, event_words=EVENT_WORDS
    )


@bp.route("/tickets/<string:number>/photo")
@bp.requires("tickets:read")
def photo(number):
    """The ticket's photo (``?event=``: a step's), as GET /api/v1/tickets/{number}/photo
    with the dashboard's login (an <img> sends no Bearer token)."""
    return photo_response(_ticket(number), load(PhotoArgs(), request.args).get("event"))


def _actor() -> Actor:
    return Actor.of_principal(current_principal())


@bp.route("/tickets/<string:number>/assign", methods=["POST"])
@bp.requires("tickets:assign")
def assign(number):
    body = load(AssignSchema(), form_values())
    ticket = _ticket(number)
    assignee = staff.get(body["assignee"])
    lifecycle.assign(ticket, assignee, _actor(), note=body["note"])
    return back(
        _(
            "Ticket %(number)s assigned to %(name)s.",
            number=ticket.number,
            name=staff.display_name(assignee.user),
        )
    )


@bp.route("/tickets/<string:number>/progress", methods=["POST"])
@bp.requires("tickets:assign")
def progress(number):
    body = load(ProgressSchema(), form_values())
    ticket = _ticket(number)
    photo_id = (
        lifecycle.photo_of(body["photo_message_id"], session_ids=session_ids(ticket), required=True)
        if body["photo_message_id"]
        else None
    )
    lifecycle.progress(ticket, _actor(), note=body["note"], photo=photo_id)
    return back(_("Progress recorded on %(number)s.", number=ticket.number))


@bp.route("/tickets/<string:number>/status", methods=["POST"])
@bp.requires("tickets:assign")
def status(number):
    body = load(StatusSchema(), form_values())
    ticket = lifecycle.change_status(_ticket(number), body["status"], _actor(), note=body["note"])
    return back(
        _(
            "Ticket %(number)s is now %(status)s.",
            number=ticket.number,
            status=STATUS_WORDS[ticket.status],
        )
    )


@bp.route("/tickets/<string:number>/notes", methods=["POST"])
@bp.requires("tickets:assign")
def note(number):
    body = load(NoteSchema(), form_values())
    ticket = lifecycle.add_note(_ticket(number), _actor(), note=body["note"])
    return back(_("Note added to %(number)s.", number=ticket.number))


def _card(principal: Principal) -> dict[str, Any]:
    numbers = stats.compute(principal, {})
    return {
        "by_status": numbers["by_status"],
        "open": OPEN_STATUSES,
        "mean": numbers["mean_seconds_to_finish"],
    }


overview.add_card(overview.Card("tickets", "ui/cards/tickets.html", "tickets:read", _card, 60))
