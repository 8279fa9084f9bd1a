"""Ticket statistics: counts by status and by day, time to finish, per assignee."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from server.auth.principal import Principal
from server.errors import ValidationFailed
from server.models import TICKET_STATUSES, Ticket, User, db
from server.tickets import staff
from server.tickets.queries import filtered, zone

MAX_DAYS = 366
DEFAULT_DAYS = 30
DONE = ("done", "confirmed")


def _mean(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


def compute(principal: Principal, args: dict[str, Any]) -> dict[str, Any]:
    tickets = filtered(principal, args).subquery()
    total = sa.func.count()
    by_status = dict.fromkeys(TICKET_STATUSES, 0)
    by_status.update(
        db.session.execute(sa.select(tickets.c.status, total).group_by(tickets.c.status)).all()
    )
    mean = db.session.scalar(sa.select(sa.func.avg(tickets.c.duration_seconds)))
    finished = sa.func.sum(sa.case((tickets.c.status.in_(DONE), 1), else_=0))
    rows = db.session.execute(
        sa.select(tickets.c.assignee_id, total, finished, sa.func.avg(tickets.c.duration_seconds))
        .where(tickets.c.assignee_id.isnot(None))
        .group_by(tickets.c.assignee_id)
    ).all()
    names = {
        user.id: staff.display_name(user)
        for user in db.session.scalars(sa.select(User).where(User.id.in_([row[0] for row in rows])))
    }
    by_assignee = sorted(
        (
            {
                "user_id": user_id,
                "name": names.get(user_id, ""),
                "total": count,
                "finished": int(done or 0),
                "open": count - int(done or 0),
                "mean_seconds_to_finish": _mean(avg),
            }
            for user_id, count, done, avg in rows
        ),
        key=lambda item: (-item["total"], item["name"]),
    )
    return {
        "total": sum(by_status.values()),
        "by_status": by_status,
        "mean_seconds_to_finish": _mean(mean),
        "by_assignee": by_assignee,
        "by_day": _by_day(principal, args),
    }


def _by_day(principal: Principal, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Tickets reported and finished on each day from ``from`` to ``to`` (default: the
    last 30 days), in the helpdesk's time zone; days without any are there with zeros."""
    tz = zone()
    last: date = args.get("to") or datetime.now(tz).date()
    first: date = args.get("from_") or last - timedelta(days=DEFAULT_DAYS - 1)
    if (last - first).days + 1 > MAX_DAYS:
        raise ValidationFailed(
            errors={
                "from": [f"The statistics cover at most {MAX_DAYS} days by day; narrow from/to."]
            }
        )
    days = {
        first + timedelta(days=n): {"created": 0, "finished": 0}
        for n in range((last - first).days + 1)
    }
    scoped = {key: value for key, value in args.items() if key not in ("from_", "to")}
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    query = (
        filtered(principal, scoped)
        .with_only_columns(Ticket.created_at, Ticket.finished_at)
        .where(
            sa.or_(
                sa.and_(Ticket.created_at >= start, Ticket.created_at < end),
                sa.and_(Ticket.finished_at >= start, Ticket.finished_at < end),
            )
        )
    )
    for created_at, finished_at in db.session.execute(query):
        for moment, key in ((created_at, "created"), (finished_at, "finished")):
            if moment is not None and (day := moment.astimezone(tz).date()) in days:
                days[day][key] += 1
    return [{"date": day.isoformat(), **counts} for day, counts in days.items()]
