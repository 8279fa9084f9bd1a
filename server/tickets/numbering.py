"""Tracking numbers: prefix + YYMM + a sequence per month, ``BRT2409001``.

The month is the helpdesk's local month (``KABAR_HELPDESK_TIMEZONE``): a report at
00:30 WIB on 1 October is numbered in October, although it is still September in UTC.
The sequence comes from one ``ticket_counters`` row per (prefix, month), bumped with a
single ``INSERT … ON CONFLICT DO UPDATE … RETURNING``: the database serialises concurrent
reports on that row (PostgreSQL's row lock, SQLite's write lock) and each gets its own
number. It runs in the caller's transaction, so a report that fails hands its number
back. Three digits are padded; the thousandth report of a month gets four.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite

from server.models import TicketCounter, db

PREFIX = re.compile(r"^[A-Z]{1,12}$")


def period(at: datetime, timezone: str) -> str:
    """``YYMM`` of ``at`` in the helpdesk's time zone."""
    return at.astimezone(ZoneInfo(timezone)).strftime("%y%m")


def next_number(prefix: str, at: datetime, timezone: str) -> str:
    """The next tracking number for ``prefix`` in the month of ``at``."""
    month = period(at, timezone)
    dialect = db.session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    insert = module.insert(TicketCounter).values(prefix=prefix, period=month, last=1)
    statement = insert.on_conflict_do_update(
        index_elements=["prefix", "period"], set_={"last": TicketCounter.last + 1}
    ).returning(TicketCounter.last)
    sequence = db.session.execute(statement).scalar_one()
    return f"{prefix}{month}{sequence:03d}"
