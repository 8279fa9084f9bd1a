"""Messages: the outbox across my sessions, filtered by status, session and day; cancel
and retry; broadcasts with their progress. The same service calls as /api/v1/outbox,
/api/v1/sessions/{id}/messages/{id}/cancel|retry and the broadcasts API."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, render_template, request
from flask_babel import gettext as _

from server import fields, outbox, sessions
from server.errors import ValidationFailed
from server.models import OUTBOX_STATUSES, Broadcast, OutboxMessage, WaSession, db
from server.outbox import broadcast as broadcasts
from server.pagination import paginate
from server.ui.base import UiBlueprint, back

bp = UiBlueprint("outbox", __name__, url_prefix="/outbox")

PAGE = 50


def _day(name: str) -> datetime | None:
    """A date field (YYYY-MM-DD) as midnight in the dashboard's time zone."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(errors={name: [_("Use a date like 2025-01-31.")]}) from None
    if not fields.FIRST_DAY <= day <= fields.LAST_DAY:  # a day more must not overflow
        raise ValidationFailed(errors={name: [_("Use a date like 2025-01-31.")]})
    return datetime.combine(
        day, time(0), ZoneInfo(current_app.config["KABAR"]["DASHBOARD_TIMEZONE"])
    )


def _filters() -> dict:
    status = request.args.get("status") or None
    if status is not None and status not in OUTBOX_STATUSES:
        raise ValidationFailed(errors={"status": [_("Unknown status.")]})
    session_id = request.args.get("session") or None
    until = _day("until")
    return {
        "status": status,
        "since": _day("since"),
        "until": until + timedelta(days=1) if until else None,  # the whole last day
        "broadcast": request.args.get("broadcast") or None,
        "session": sessions.get(session_id) if session_id else None,
    }


@bp.route("")
@bp.requires("sessions:read")
def index():
    filters = _filters()
    page = paginate(
        outbox.listing(**filters),
        OutboxMessage.seq,
        cursor=request.args.get("cursor") or None,
        limit=PAGE,
        descending=True,
    )
    visible = sessions.visible()
    labels = {s.id: s.label for s in db.session.scalars(visible)}
    recent = db.session.scalars(
        sa.select(Broadcast)
        .where(Broadcast.session_id.in_(visible.with_only_columns(WaSession.id)))
        .order_by(Broadcast.created_at.desc())
        .limit(10)
    ).all()
    context = {
        "page": page,
        "labels": labels,
        "statuses": OUTBOX_STATUSES,
        "broadcasts": [(b, broadcasts.progress(b)) for b in recent],
        "args": request.args,
    }
    if request.args.get("partial"):
        return render_template("ui/outbox/_live.html", **context)
    return render_template("ui/outbox/index.html", **context)


@bp.route("/<string:session_id>/<string:message_id>/cancel", methods=["POST"])
@bp.requires("messages:send")
def cancel(session_id, message_id):
    outbox.cancel(outbox.get(sessions.get(session_id), message_id))
    return back(_("Message cancelled."))


@bp.route("/<string:session_id>/<string:message_id>/retry", methods=["POST"])
@bp.requires("messages:send")
def retry(session_id, message_id):
    outbox.retry(outbox.get(sessions.get(session_id), message_id))
    return back(_("Message queued again."))


@bp.route("/<string:session_id>/broadcasts/<string:broadcast_id>/cancel", methods=["POST"])
@bp.requires("messages:send")
def cancel_broadcast(session_id, broadcast_id):
    broadcasts.cancel(broadcasts.get(sessions.get(session_id), broadcast_id))
    return back(_("Broadcast cancelled: recipients still queued will not get it."))
