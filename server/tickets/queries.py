"""The ticket filters shared by the list, the statistics and the exports."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from server.auth.principal import Principal
from server.errors import ValidationFailed
from server.models import OPEN_STATUSES, TICKET_STATUSES, Ticket
from server.tickets import lifecycle
from server.whatsapp.jids import InvalidPhone, normalise_phone


def zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["KABAR"]["HELPDESK_TIMEZONE"])


def day_start(day: date) -> datetime:
    """Midnight at the start of ``day`` in the helpdesk's time zone, as an aware time."""
    return datetime.combine(day, time(), tzinfo=zone())


def statuses(text: str) -> list[str]:
    """``done,confirmed`` as a list; ``open`` means every status still being handled."""
    wanted: list[str] = []
    for word in (w.strip().lower() for w in text.split(",") if w.strip()):
        if word == "open":
            wanted += OPEN_STATUSES
        elif word in TICKET_STATUSES:
            wanted.append(word)
        else:
            raise ValidationFailed(
                errors={
                    "status": [
                        f"Unknown status {word!r}; use {', '.join(TICKET_STATUSES)} or open."
                    ]
                }
            )
    return wanted


def filtered(principal: Principal, args: dict[str, Any]) -> sa.Select:
    """The tickets the caller may see, narrowed by ``args`` (status, from, to, reporter,
    assignee, category, q)."""
    query = lifecycle.visible(principal)
    if args.get("status"):
        query = query.where(Ticket.status.in_(statuses(args["status"])))
    if args.get("from_"):
        query = query.where(Ticket.created_at >= day_start(args["from_"]))
    if args.get("to"):
        query = query.where(Ticket.created_at < day_start(args["to"] + timedelta(days=1)))
    if args.get("reporter"):
        query = query.where(_reporter(args["reporter"]))
    if args.get("assignee") is not None:
        query = query.where(Ticket.assignee_id == args["assignee"])
    if args.get("category"):
        query = query.where(Ticket.category == args["category"].strip().lower())
    if args.get("q"):
        needle = args["q"].strip().lower()
        query = query.where(
            sa.or_(
                sa.func.lower(Ticket.text).contains(needle, autoescape=True),
                sa.func.lower(Ticket.number).contains(needle, autoescape=True),
                sa.func.lower(Ticket.reporter_name).contains(needle, autoescape=True),
            )
        )
    return query


def _reporter(value: str) -> sa.ColumnElement[bool]:
    """A person id (PGW2402001) or a phone as typed."""
    condition = Ticket.person_id == value.strip().upper()
    if re.search(r"\d{6}", re.sub(r"\D", "", value)):
        try:
            phone = normalise_phone(value, current_app.config["KABAR"]["PHONE_REGION"])
        except InvalidPhone:
            return condition
        condition = sa.or_(condition, Ticket.reporter_phone == phone)
    return condition
