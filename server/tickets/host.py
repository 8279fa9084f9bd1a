"""The helpdesk as the ticket nodes see it: ``handle(action, params, actor=…)``.

The server's workflow context calls this for ``Context.tickets`` (``nodes/context.py``).
``actor`` is what the run knows about who is acting: ``sender`` (a phone number or JID),
``name``, ``chat``, ``session``, ``message_id`` (the message that started the run) and
``workflow``. With a sender, that person's rights apply (a staff member by their phone,
else a reporter); without one (a schedule, a gateway event) the workflow acts as the
system. Answers are JSON-ready dicts; refusals raise ``KabarError`` whose ``code`` the
nodes turn into outputs: ``ticket_not_found``, ``ticket_not_allowed``,
``invalid_transition``, ``validation_error``, ``staff_not_found``, ``staff_inactive``,
``reporter_not_registered``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from server.errors import ValidationFailed
from server.models import OPEN_STATUSES, Message, Ticket, TicketEvent, db
from server.tickets import lifecycle, people, staff
from server.tickets.actors import Actor
from server.tickets.errors import NotAllowed, TicketNotFound
from server.tickets.queries import statuses, zone
from server.tickets.schemas import PersonSchema, StaffSchema, TicketEventSchema, TicketSchema
from server.whatsapp.jids import InvalidPhone, phone_of

UPDATES: dict[str, Callable[..., Ticket]] = {
    "start": lifecycle.start,
    "progress": lifecycle.progress,
    "finish": lifecycle.finish,
    "confirm": lifecycle.confirm,
    "reopen": lifecycle.reopen,
    "hold": lifecycle.hold,
    "note": lifecycle.add_note,
}
WITH_PHOTO = ("progress", "finish")
MAX_LIST = 50


def handle(
    action: str,
    params: Mapping[str, Any],
    *,
    actor: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Do ``action`` (create, assign, update, lookup, list, person) for a workflow."""
    handler = ACTIONS.get(action)
    if handler is None:
        raise ValidationFailed(
            f"Unknown helpdesk action {action!r}; use one of {', '.join(ACTIONS)}.",
            code="unknown_action",
        )
    context = dict(actor or {})
    return handler(dict(params), _actor(context), context, idempotency_key)


# --- who is acting ------------------------------------------------------------------


def _sender_phone(sender: str | None) -> str | None:
    """The phone behind a sender as the run knows it: a number or a person's JID."""
    if not sender:
        return None
    try:
        if "@" in sender:
            return phone_of(sender)  # None for an @lid WhatsApp did not resolve
        return people.normalise(sender)
    except (InvalidPhone, ValidationFailed):
        return None


def _actor(context: Mapping[str, Any]) -> Actor:
    sender = context.get("sender")
    if not sender:
        return Actor.system(str(context.get("workflow") or "workflow"))
    jid = sender if "@" in str(sender) else None
    return Actor.of_phone(_sender_phone(str(sender)), name=str(context.get("name") or ""), jid=jid)


def _phone(value: Any, field: str) -> str:
    return people.normalise(str(value), field)


# --- JSON -----------------------------------------------------------------------------


def _local(moment) -> str | None:
    return moment.astimezone(zone()).strftime("%Y-%m-%d %H:%M:%S %Z") if moment else None


def _event(event: TicketEvent) -> dict[str, Any]:
    return {**TicketEventSchema().dump(event), "at_local": _local(event.created_at)}


def ticket_json(ticket: Ticket, *, history: bool = False) -> dict[str, Any]:
    """A ticket for templates: its fields, ``created_local`` (helpdesk time, e.g.
    ``2024-09-16 19:28:52 WIB``), ``last_update`` (what ``cek`` answers) and, with
    ``history``, every event (what ``track`` answers)."""
    data = TicketSchema().dump(ticket)
    data["created_local"] = _local(ticket.created_at)
    last = lifecycle.last_update(ticket)
    data["last_update"] = _event(last) if last else None
    if history:
        data["history"] = [_event(event) for event in ticket.events if event.kind != "note"]
    return data


def _ticket(params: Mapping[str, Any]) -> Ticket:
    number = params.get("number")
    if not number:
        raise TicketNotFound("No ticket number was given.")
    ticket = lifecycle.find(number)
    if ticket is None:
        raise TicketNotFound(f"No ticket with number {number!r}.")
    return ticket


def _session_ids(context: Mapping[str, Any]) -> list[str]:
    return [context["session"]] if context.get("session") else []


# --- the actions ----------------------------------------------------------------------


def _create(
    params: dict[str, Any], actor: Actor, context: Mapping[str, Any], key: str | None
) -> dict[str, Any]:
    reporter_phone, reporter_jid = actor.phone, _chat_jid(context) or actor.jid
    if params.get("reporter"):
        reporter_phone = _phone(params["reporter"], "reporter")
        if reporter_phone != actor.phone:
            if not actor.manages:
                raise NotAllowed(
                    "Only managers and workflows acting on their own may report for someone else."
                )
            reporter_jid = None
    elif actor.kind == "system":
        raise ValidationFailed(
            errors={"reporter": ["This run has no sender; say who reports (a phone number)."]}
        )
    message = _message_id(context)
    explicit = params.get("photo")
    photo = lifecycle.photo_of(
        explicit or message, session_ids=_session_ids(context), required=bool(explicit)
    )
    ticket = lifecycle.create(
        params.get("text") or "",
        actor,
        category=params.get("category") or "request",
        reporter_phone=reporter_phone,
        reporter_jid=reporter_jid,
        reporter_name=params.get("name") or (actor.name if reporter_jid else ""),
        session_id=context.get("session"),
        source_message_id=message,
        photo=photo,
        key=key,
    )
    return {"ticket": ticket_json(ticket)}


def _chat_jid(context: Mapping[str, Any]) -> str | None:
    """The chat the run came from, as a JID (a run may know it as a phone number)."""
    chat = str(context.get("chat") or "")
    if not chat or "@" in chat:
        return chat or None
    phone = _sender_phone(chat)
    return f"{phone}@s.whatsapp.net" if phone else None


def _message_id(context: Mapping[str, Any]) -> str | None:
    """Kabar's id of the message that started the run, when it is stored."""
    ref = context.get("message_id")
    if not ref or not context.get("session"):
        return None
    return db.session.scalar(
        sa.select(Message.id)
        .where(
            Message.session_id == context["session"],
            sa.or_(Message.id == str(ref), Message.wa_id == str(ref)),
        )
        .limit(1)
    )


def _assign(
    params: dict[str, Any], actor: Actor, context: Mapping[str, Any], key: str | None
) -> dict[str, Any]:
    ticket = _ticket(params)
    if not params.get("assignee"):
        raise ValidationFailed(
            errors={"assignee": ["Say whom to assign (phone, username or user id)."]}
        )
    assignee = staff.resolve(params["assignee"])
    ticket = lifecycle.assign(ticket, assignee, actor, note=params.get("note") or "", key=key)
    return {"ticket": ticket_json(ticket)}


def _update(
    params: dict[str, Any], actor: Actor, context: Mapping[str, Any], key: str | None
) -> dict[str, Any]:
    step = UPDATES.get(str(params.get("action")))
    if step is None:
        raise ValidationFailed(errors={"action": [f"Use one of: {', '.join(UPDATES)}."]})
    ticket = _ticket(params)
    kwargs: dict[str, Any] = {"note": params.get("note") or "", "key": key}
    if params["action"] in WITH_PHOTO:
        explicit = params.get("photo")
        kwargs["photo"] = lifecycle.photo_of(
            explicit or context.get("message_id"),
            session_ids=_session_ids(context),
            required=bool(explicit),
        )
    ticket = step(ticket, actor, **kwargs)
    return {"ticket": ticket_json(ticket)}


def _lookup(
    params: dict[str, Any], actor: Actor, context: Mapping[str, Any], key: str | None
) -> dict[str, Any]:
    ticket = _ticket(params)
    if not lifecycle.may_see(ticket, actor):
        raise NotAllowed(
            f"Ticket {ticket.number} is not yours to see: only its reporter, "
            "the helpdesk staff and its assignee may."
        )
    return {"ticket": ticket_json(ticket, history=True)}


def _list(
    params: dict[str, Any], actor: Actor, context: Mapping[str, Any], key: str | None
) -> dict[str, Any]:
    role = params.get("role") or "assignee"
    phone = _phone(params["phone"], "phone") if params.get("phone") else actor.phone
    if (role == "all" or phone != actor.phone) and not actor.manages:
        raise NotAllowed("Only managers may list other people's tickets.")
    if role != "all" and phone is None:
        raise ValidationFailed(
            errors={"phone": ["Whose tickets? This run has no sender's phone; give one."]}
        )
    query = sa.select(Ticket)
    if role == "assignee":
        profile = staff.find_by_phone(phone)
        if profile is None:
            raise NotAllowed(
                f"{phone or 'This sender'} is not helpdesk staff; only staff have assignments."
            )
        query = query.where(Ticket.assignee_id == profile.user_id)
    elif role == "reporter":
        query = query.where(Ticket.reporter_phone == phone)
    elif role != "all":
        raise ValidationFailed(errors={"role": ["Use assignee, reporter or all."]})
    wanted = params.get("status") or list(OPEN_STATUSES)
    wanted = statuses(wanted if isinstance(wanted, str) else ",".join(map(str, wanted)))
    query = query.where(Ticket.status.in_(wanted))
    limit = max(1, min(int(params.get("limit") or 10), MAX_LIST))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Ticket.id).limit(limit)).unique().all()
    return {"tickets": [ticket_json(ticket) for ticket in rows], "count": len(rows), "total": total}


def _person(
    params: dict[str, Any], actor: Actor, context: Mapping[str, Any], key: str | None
) -> dict[str, Any]:
    """Who a phone (default: the sender) is: staff (with level), a person, or unknown."""
    phone = _phone(params["phone"], "phone") if params.get("phone") else actor.phone
    profile = staff.find_by_phone(phone)
    person = people.find_by_phone(phone)
    active_staff = profile is not None and profile.status == "active"
    kind = "staff" if active_staff else "person" if person is not None else "unknown"
    name = (
        staff.display_name(profile.user)
        if active_staff
        else person.name
        if person
        else str(context.get("name") or "")
    )
    return {
        "kind": kind,
        "phone": phone,
        "name": name,
        "person": PersonSchema().dump(person) if person else None,
        "staff": StaffSchema().dump(profile) if profile else None,
        "manages": active_staff and profile.level in staff.MANAGING_LEVELS,
    }


ACTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "create": _create,
    "assign": _assign,
    "update": _update,
    "lookup": _lookup,
    "list": _list,
    "person": _person,
}
