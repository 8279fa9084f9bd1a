"""The ticket lifecycle: reporting, assigning, working, finishing, confirming.

::

    new ──assign──▶ assigned ──start──▶ in_progress ──finish──▶ done ──confirm──▶ confirmed
     │                 │  ▲                  │                   │                    │
     └──── hold ───────┴──┼──── hold ────────┘                   └────── reopen ──────┘
                          │                                       (back to assigned, or
          pending ── start / reopen ──▶ in_progress / assigned      new with no assignee)

Who may do what: managers (``tickets:assign`` in the API; Administrator and Staf staff
on WhatsApp; workflows acting on their own) everything; the assignee starts, reports
progress, holds and finishes their ticket; the reporter confirms and reopens theirs. A
refused or impossible step raises a ``KabarError`` whose message says why.

Every change adds a ``TicketEvent`` and a gateway event (``ticket.*``, recorded with
``server.eventlog``) in one transaction, and commits (inside
``in_callers_transaction``, a workflow step's, the caller commits).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from server import eventlog
from server import events as catalogue
from server.auth.permissions import group_permissions
from server.auth.principal import Principal
from server.errors import ValidationFailed
from server.models import (
    OPEN_STATUSES,
    Assignment,
    Message,
    StaffProfile,
    Ticket,
    TicketEvent,
    User,
    WaSession,
    db,
    utcnow,
)
from server.tickets import numbering, people, staff
from server.tickets.actors import Actor
from server.tickets.errors import (
    InvalidTransition,
    NotAllowed,
    PersonNotFound,
    ReporterNotRegistered,
    TicketNotFound,
)

CATEGORY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_TEXT = 4096
STATUS_WORDS = {
    "new": "new",
    "assigned": "assigned",
    "in_progress": "in progress",
    "pending": "pending",
    "done": "done",
    "confirmed": "confirmed",
}


# The statuses each step starts from (a status set by hand is the step leading there).
STEP_FROM: dict[str, tuple[str, ...]] = {
    "in_progress": ("assigned", "pending"),  # start
    "done": ("assigned", "in_progress", "pending"),  # finish
    "confirmed": ("done",),  # confirm
    "pending": ("new", "assigned", "in_progress"),  # hold
    "reopen": ("done", "confirmed", "pending"),  # back to assigned, or new
}


def settings() -> dict[str, Any]:
    return current_app.config["KABAR"]


# --- finding tickets ----------------------------------------------------------------


def clean_number(number: str) -> str:
    """A tracking number as typed (``#brt2409001``, ``*BRT2409001*``) in stored form."""
    return re.sub(r"[^0-9A-Za-z]", "", str(number or "")).upper()


def find(number: str) -> Ticket | None:
    cleaned = clean_number(number)
    if not cleaned:
        return None
    return db.session.scalar(sa.select(Ticket).where(Ticket.number == cleaned))


def sees_all(principal: Principal) -> bool:
    """Whether the caller's group manages the helpdesk: such callers see every ticket; the
    others (field officers) only the tickets assigned to them. The group decides, not an
    API key's narrower grant, so an operator's read-only key still sees the helpdesk."""
    group = principal.user.group
    return principal.is_admin or "tickets:assign" in group_permissions(
        group.name, group.permissions
    )


def visible(principal: Principal) -> sa.Select:
    query = sa.select(Ticket)
    if not sees_all(principal):
        query = query.where(Ticket.assignee_id == principal.user.id)
    return query


def get(number: str, principal: Principal | None = None) -> Ticket:
    """The ticket; with ``principal``, only if they may see it (else it is missing)."""
    ticket = find(number)
    if (
        ticket is not None
        and principal is not None
        and not sees_all(principal)
        and ticket.assignee_id != principal.user.id
    ):
        ticket = None
    if ticket is None:
        raise TicketNotFound(f"No ticket with number {clean_number(number) or number!r}.")
    return ticket


# --- the gateway events -------------------------------------------------------------


def reporter_party(ticket: Ticket) -> catalogue.TicketParty:
    return catalogue.TicketParty(
        kind="reporter",
        name=ticket.reporter_name,
        phone=ticket.reporter_phone,
        jid=ticket.reporter_jid,
        person_id=ticket.person_id,
    )


def staff_party(user_id: int | None) -> catalogue.TicketParty | None:
    if user_id is None:
        return None
    profile = db.session.get(StaffProfile, user_id)
    user = profile.user if profile else None
    if user is None:
        user = db.session.get(User, user_id)
    return catalogue.TicketParty(
        kind="staff",
        name=staff.display_name(user),
        phone=profile.phone if profile else None,
        jid=f"{profile.phone}@s.whatsapp.net" if profile else None,
        user_id=user_id,
        level=profile.level if profile else None,
    )


def info(ticket: Ticket) -> catalogue.TicketInfo:
    return catalogue.TicketInfo(
        number=ticket.number,
        status=ticket.status,
        category=ticket.category,
        text=ticket.text,
        reporter=reporter_party(ticket),
        assignee=staff_party(ticket.assignee_id),
        session_id=ticket.session_id,
        chat=ticket.reporter_jid,
        photo=ticket.photo_message_id,
        created_at=ticket.created_at,
    )


def _record(
    ticket: Ticket,
    kind: str,
    actor: Actor,
    *,
    at: datetime,
    note: str = "",
    photo: str | None = None,
    key: str | None = None,
    event: catalogue.Event,
) -> Ticket:
    """Write the ticket's event and the gateway event, then commit."""
    ticket.updated_at = at
    db.session.add(
        TicketEvent(
            ticket=ticket,
            kind=kind,
            status=ticket.status,
            actor_kind=actor.kind,
            actor_user_id=actor.user.id if actor.user else None,
            actor_name=actor.name,
            actor_phone=actor.phone,
            note=note,
            photo_message_id=photo,
            idempotency_key=key,
            created_at=at,
        )
    )
    session = db.session.get(WaSession, ticket.session_id) if ticket.session_id else None
    eventlog.record(event, session)
    if _CALLER_COMMITS.get():
        db.session.flush()
    else:
        db.session.commit()
    return ticket


_CALLER_COMMITS: ContextVar[bool] = ContextVar("kabar_tickets_caller_commits", default=False)


@contextmanager
def in_callers_transaction() -> Iterator[None]:
    """Changes made inside are left for the caller to commit: a workflow step's ticket
    change is stored with the run's next state, or not at all."""
    token = _CALLER_COMMITS.set(True)
    try:
        yield
    finally:
        _CALLER_COMMITS.reset(token)


def _replayed(key: str | None) -> Ticket | None:
    """The ticket a step with this idempotency key already changed (a workflow step run
    again after a crash): it is answered as it is, not changed twice."""
    if not key:
        return None
    event = db.session.scalar(sa.select(TicketEvent).where(TicketEvent.idempotency_key == key))
    return event.ticket if event else None


# --- who may ------------------------------------------------------------------------


def is_assignee(ticket: Ticket, actor: Actor) -> bool:
    return actor.user is not None and ticket.assignee_id == actor.user.id


def is_reporter(ticket: Ticket, actor: Actor) -> bool:
    return actor.phone is not None and actor.phone == ticket.reporter_phone


def may_see(ticket: Ticket, actor: Actor) -> bool:
    """On WhatsApp: managers and any active staff, the assignee and the reporter."""
    return (
        actor.manages
        or actor.kind == "staff"
        or is_assignee(ticket, actor)
        or is_reporter(ticket, actor)
    )


def _allow(
    ticket: Ticket, actor: Actor, what: str, *, assignee: bool = False, reporter: bool = False
) -> None:
    if (
        actor.manages
        or (assignee and is_assignee(ticket, actor))
        or (reporter and is_reporter(ticket, actor))
    ):
        return
    who = ["a manager"]
    if assignee:
        holder = staff_party(ticket.assignee_id)
        who.insert(0, f"the assignee ({holder.name})" if holder else "its assignee")
    if reporter:
        who.insert(0, "the reporter")
    raise NotAllowed(f"Only {' or '.join(who)} may {what} ticket {ticket.number}.")


def _expect(ticket: Ticket, allowed: tuple[str, ...], what: str) -> None:
    if ticket.status not in allowed:
        words = ", ".join(STATUS_WORDS[s] for s in allowed)
        raise InvalidTransition(
            f"Ticket {ticket.number} is {STATUS_WORDS[ticket.status]}; "
            f"it can be {what} only when it is {words}."
        )


def _note(note: str | None, *, required: bool = False) -> str:
    text = (note or "").strip()
    if required and not text:
        raise ValidationFailed(errors={"note": ["Write what was done."]})
    if len(text) > MAX_TEXT:
        raise ValidationFailed(errors={"note": [f"At most {MAX_TEXT} characters."]})
    return text


def photo_of(
    ref: str | None, *, session_ids: list[str] | None, required: bool = False
) -> str | None:
    """The id of the stored message ``ref`` (its Kabar id, or its WhatsApp id) when it
    carries media: a ticket's photo. ``session_ids`` limits where it may come from (None:
    anywhere). Without media it is no photo; with ``required`` that is an error."""
    if not ref:
        return None
    query = sa.select(Message).where(sa.or_(Message.id == str(ref), Message.wa_id == str(ref)))
    if session_ids is not None:
        query = query.where(Message.session_id.in_(session_ids))
    message = db.session.scalars(query.order_by(Message.seq.desc()).limit(1)).first()
    if message is not None and message.media:
        return message.id
    if required:
        raise ValidationFailed(
            errors={
                "photo": [
                    f"No stored message {ref!r} with media in this session; give the id of a "
                    "message that carries the photo."
                ]
            }
        )
    return None


# --- the steps ----------------------------------------------------------------------


def create(
    text: str,
    actor: Actor,
    *,
    category: str = "request",
    reporter_phone: str | None = None,
    reporter_jid: str | None = None,
    reporter_name: str = "",
    person_id: str | None = None,
    session_id: str | None = None,
    source_message_id: str | None = None,
    photo: str | None = None,
    key: str | None = None,
) -> Ticket:
    """A new ticket with the next tracking number. The reporter is matched to the people
    directory by ``person_id`` or by phone; unknown reporters need KABAR_HELPDESK_GUESTS."""
    if (replayed := _replayed(key)) is not None:
        return replayed
    text = (text or "").strip()
    if not text:
        raise ValidationFailed(errors={"text": ["Say what the problem is."]})
    if len(text) > MAX_TEXT:
        raise ValidationFailed(errors={"text": [f"At most {MAX_TEXT} characters."]})
    category = (category or "request").strip().lower()
    if not CATEGORY.match(category):
        raise ValidationFailed(
            errors={"category": ["Use 1-64 lowercase letters, digits, '-' or '_' (e.g. request)."]}
        )
    person = _person(person_id) if person_id else people.find_by_phone(reporter_phone)
    if person is not None:
        reporter_phone = reporter_phone or person.phone
    registered = person is not None and person.status == "active"
    # Guests matter on WhatsApp; staff, API users and workflows record reports for others.
    if actor.kind == "reporter" and not registered and not settings()["HELPDESK_GUESTS"]:
        raise ReporterNotRegistered(
            f"{reporter_phone or 'This reporter'} is not an active person in the people "
            "directory, and only those may report (KABAR_HELPDESK_GUESTS is off)."
        )
    now = utcnow()
    ticket = Ticket(
        number=numbering.next_number(
            settings()["HELPDESK_PREFIX"], now, settings()["HELPDESK_TIMEZONE"]
        ),
        category=category,
        text=text,
        status="new",
        reporter_phone=reporter_phone,
        reporter_jid=reporter_jid
        or (f"{reporter_phone}@s.whatsapp.net" if reporter_phone else None),
        reporter_name=(person.name if person else reporter_name or "").strip()[:128],
        person=person,
        session_id=session_id,
        source_message_id=source_message_id,
        photo_message_id=photo,
        created_at=now,
        updated_at=now,
    )
    db.session.add(ticket)
    db.session.flush()
    return _record(
        ticket,
        "created",
        actor,
        at=now,
        note=text,
        photo=photo,
        key=key,
        event=catalogue.TicketCreated(ticket=info(ticket), actor=actor.party()),
    )


def _person(ident: str):
    try:
        return people.get(ident)
    except PersonNotFound as exc:
        raise ValidationFailed(errors={"person_id": [exc.message]}) from None


def assign(
    ticket: Ticket, assignee: StaffProfile, actor: Actor, *, note: str = "", key: str | None = None
) -> Ticket:
    """Give the ticket to a staff member (again, to someone else: the old assignment is
    replaced). A ticket at work goes back to assigned for its new assignee."""
    if (replayed := _replayed(key)) is not None:
        return replayed
    _allow(ticket, actor, "assign")
    _expect(ticket, OPEN_STATUSES, "assigned")
    if assignee.status != "active":
        raise InvalidTransition(
            f"{staff.display_name(assignee.user)} is an inactive staff "
            "member; make them active first.",
            code="staff_inactive",
        )
    note, now = _note(note), utcnow()
    previous = staff_party(ticket.assignee_id)
    for old in ticket.assignments:
        if old.status in ("active", "pending"):
            old.status, old.ended_at = "replaced", now
    ticket.assignments.append(
        Assignment(
            assignee_id=assignee.user_id,
            assignee_name=staff.display_name(assignee.user),
            assigned_by_id=actor.user.id if actor.user else None,
            assigned_by_name=actor.name,
            note=note,
            status="active",
            created_at=now,
        )
    )
    ticket.assignee_id, ticket.assigned_at, ticket.status = assignee.user_id, now, "assigned"
    ticket.started_at = None
    db.session.flush()
    return _record(
        ticket,
        "assigned",
        actor,
        at=now,
        note=note,
        key=key,
        event=catalogue.TicketAssigned(
            ticket=info(ticket),
            actor=actor.party(),
            assignee=staff_party(assignee.user_id),
            note=note,
            previous=previous,
        ),
    )


def _set_assignment(ticket: Ticket, status: str, at: datetime) -> None:
    current = next(
        (
            a
            for a in reversed(ticket.assignments)
            if a.assignee_id == ticket.assignee_id and a.status != "replaced"
        ),
        None,
    )
    if current is not None:
        current.status = status
        current.ended_at = at if status == "done" else None


def start(ticket: Ticket, actor: Actor, *, note: str = "", key: str | None = None) -> Ticket:
    if (replayed := _replayed(key)) is not None:
        return replayed
    _allow(ticket, actor, "start", assignee=True)
    _expect(ticket, STEP_FROM["in_progress"], "started")
    note, now = _note(note), utcnow()
    ticket.status, ticket.started_at = "in_progress", ticket.started_at or now
    _set_assignment(ticket, "active", now)
    return _record(
        ticket,
        "started",
        actor,
        at=now,
        note=note,
        key=key,
        event=catalogue.TicketStarted(ticket=info(ticket), actor=actor.party(), note=note),
    )


def progress(
    ticket: Ticket, actor: Actor, *, note: str, photo: str | None = None, key: str | None = None
) -> Ticket:
    """A progress report on an open ticket (what the reporter sees with ``track``)."""
    if (replayed := _replayed(key)) is not None:
        return replayed
    _allow(ticket, actor, "report progress on", assignee=True)
    _expect(ticket, OPEN_STATUSES, "reported on")
    note, now = _note(note, required=photo is None), utcnow()
    return _record(
        ticket,
        "progress",
        actor,
        at=now,
        note=note,
        photo=photo,
        key=key,
        event=catalogue.TicketProgress(
            ticket=info(ticket), actor=actor.party(), note=note, photo=photo
        ),
    )


def finish(
    ticket: Ticket,
    actor: Actor,
    *,
    note: str = "",
    photo: str | None = None,
    key: str | None = None,
) -> Ticket:
    if (replayed := _replayed(key)) is not None:
        return replayed
    _allow(ticket, actor, "finish", assignee=True)
    _expect(ticket, STEP_FROM["done"], "finished")
    note, now = _note(note), utcnow()
    ticket.status, ticket.finished_at = "done", now
    ticket.started_at = ticket.started_at or now
    ticket.duration_seconds = max(0, int((now - ticket.created_at).total_seconds()))
    _set_assignment(ticket, "done", now)
    return _record(
        ticket,
        "finished",
        actor,
        at=now,
        note=note,
        photo=photo,
        key=key,
        event=catalogue.TicketFinished(
            ticket=info(ticket),
            actor=actor.party(),
            note=note,
            photo=photo,
            duration_seconds=ticket.duration_seconds,
        ),
    )


def confirm(ticket: Ticket, actor: Actor, *, note: str = "", key: str | None = None) -> Ticket:
    if (replayed := _replayed(key)) is not None:
        return replayed
    _allow(ticket, actor, "confirm", reporter=True)
    _expect(ticket, STEP_FROM["confirmed"], "confirmed")
    note, now = _note(note), utcnow()
    ticket.status, ticket.confirmed_at = "confirmed", now
    return _record(
        ticket,
        "confirmed",
        actor,
        at=now,
        note=note,
        key=key,
        event=catalogue.TicketConfirmed(ticket=info(ticket), actor=actor.party(), note=note),
    )


def reopen(ticket: Ticket, actor: Actor, *, note: str = "", key: str | None = None) -> Ticket:
    """Open a done or confirmed ticket again (the reporter is not satisfied), or take a
    pending one off hold: back to assigned, or to new when nobody is assigned."""
    if (replayed := _replayed(key)) is not None:
        return replayed
    _allow(ticket, actor, "reopen", reporter=ticket.status != "pending")
    _expect(ticket, STEP_FROM["reopen"], "reopened")
    note, now, previous = _note(note), utcnow(), ticket.status
    ticket.status = "assigned" if ticket.assignee_id else "new"
    ticket.finished_at = ticket.confirmed_at = ticket.duration_seconds = None
    ticket.started_at = None
    _set_assignment(ticket, "active", now)
    return _record(
        ticket,
        "reopened",
        actor,
        at=now,
        note=note,
        key=key,
        event=catalogue.TicketReopened(
            ticket=info(ticket), actor=actor.party(), previous_status=previous, note=note
        ),
    )


def hold(ticket: Ticket, actor: Actor, *, note: str = "", key: str | None = None) -> Ticket:
    """Put an open ticket on hold (pending): waiting for parts, for a decision."""
    if (replayed := _replayed(key)) is not None:
        return replayed
    _allow(ticket, actor, "put on hold", assignee=True)
    _expect(ticket, STEP_FROM["pending"], "put on hold")
    note, now, previous = _note(note), utcnow(), ticket.status
    ticket.status = "pending"
    _set_assignment(ticket, "pending", now)
    return _record(
        ticket,
        "status",
        actor,
        at=now,
        note=note,
        key=key,
        event=catalogue.TicketStatusChanged(
            ticket=info(ticket),
            actor=actor.party(),
            status="pending",
            previous_status=previous,
            note=note,
        ),
    )


def add_note(ticket: Ticket, actor: Actor, *, note: str, key: str | None = None) -> Ticket:
    """A remark that changes nothing (managers and the assignee)."""
    if (replayed := _replayed(key)) is not None:
        return replayed
    _allow(ticket, actor, "add a note to", assignee=True)
    note = _note(note, required=True)
    return _record(
        ticket,
        "note",
        actor,
        at=utcnow(),
        note=note,
        key=key,
        event=catalogue.TicketNote(ticket=info(ticket), actor=actor.party(), note=note),
    )


def next_statuses(ticket: Ticket) -> list[str]:
    """The statuses a person may set by hand from where ``ticket`` is (the likeliest
    first): what the step functions above accept."""
    reopened = "assigned" if ticket.assignee_id else "new"
    order = ("in_progress", "done", "confirmed", "pending", reopened)
    return [
        status
        for status in order
        if ticket.status in STEP_FROM["reopen" if status == reopened else status]
    ]


STATUS_STEPS = {
    "in_progress": start,
    "done": finish,
    "confirmed": confirm,
    "pending": hold,
    "assigned": reopen,
    "new": reopen,
}
"""Setting a status by hand is the step that leads there."""


def change_status(ticket: Ticket, status: str, actor: Actor, *, note: str = "") -> Ticket:
    if status in ("assigned", "new"):
        target = "assigned" if ticket.assignee_id else "new"
        if status != target:
            raise InvalidTransition(
                f"Ticket {ticket.number} would be {STATUS_WORDS[target]} when reopened"
                + (
                    ": assign it to someone instead."
                    if status == "assigned"
                    else ": it has an assignee."
                )
            )
    return STATUS_STEPS[status](ticket, actor, note=note)


# --- reading --------------------------------------------------------------------------


def history(ticket: Ticket) -> list[TicketEvent]:
    return list(ticket.events)


def last_update(ticket: Ticket) -> TicketEvent | None:
    """The latest event with something to say (what ``cek`` answers)."""
    for event in reversed(ticket.events):
        if event.note and event.kind != "note":
            return event
    return ticket.events[-1] if ticket.events else None
