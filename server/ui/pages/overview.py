"""The overview: one page of cards, each shown to users holding its permission.

Cards are a list so other features can add theirs without touching this page: the
workflow engine adds "waiting workflow runs", the helpdesk its ticket numbers::

    overview.add_card(Card("workflow_runs", "ui/cards/workflow_runs.html",
                           "workflows:manage", data=lambda principal: {...}, order=50))

The card's template receives ``data`` (what ``data(principal)`` returned).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, render_template, request

from server import sessions
from server.auth import current_principal
from server.auth.principal import Principal
from server.models import (
    WAITING_STATUSES,
    Message,
    OutboxMessage,
    WaSession,
    WebhookDelivery,
    db,
    utcnow,
)
from server.runtime import heartbeat
from server.ui.base import UiBlueprint
from server.webhooks import endpoints as webhooks

bp = UiBlueprint("overview", __name__)


@dataclass(frozen=True)
class Card:
    name: str
    template: str
    permission: str | None  # None: every logged-in user
    data: Callable[[Principal], dict[str, Any]]
    order: int = 100


CARDS: list[Card] = []


def add_card(card: Card) -> None:
    CARDS[:] = sorted([c for c in CARDS if c.name != card.name] + [card], key=lambda c: c.order)


def start_of_today() -> datetime:
    """Midnight in the dashboard's time zone, where "today" starts."""
    zone = ZoneInfo(current_app.config["KABAR"]["DASHBOARD_TIMEZONE"])
    return datetime.combine(utcnow().astimezone(zone).date(), time(0), zone)


def _visible_session_ids() -> sa.Select:
    return sessions.visible().with_only_columns(WaSession.id)


def _count(query: sa.Select) -> int:
    return db.session.scalar(query) or 0


def _sessions(_principal: Principal) -> dict[str, Any]:
    rows = db.session.scalars(sessions.visible().order_by(WaSession.created_at).limit(50)).all()
    by_status: dict[str, int] = {}
    for row in rows:
        by_status[row.status] = by_status.get(row.status, 0) + 1
    return {"sessions": rows, "by_status": by_status}


def _runtime(_principal: Principal) -> dict[str, Any]:
    return {"state": heartbeat.state()}


def _traffic(_principal: Principal) -> dict[str, Any]:
    """Today's sent / received / failed and what waits in the outbox."""
    ids = _visible_session_ids()
    since = start_of_today()
    count = sa.select(sa.func.count())
    outbox = count.select_from(OutboxMessage).where(OutboxMessage.session_id.in_(ids))
    return {
        "sent": _count(outbox.where(OutboxMessage.sent_at >= since)),
        "failed": _count(
            outbox.where(OutboxMessage.status == "failed", OutboxMessage.updated_at >= since)
        ),
        "received": _count(
            count.select_from(Message).where(
                Message.session_id.in_(ids), Message.direction == "in", Message.timestamp >= since
            )
        ),
        "queued": _count(outbox.where(OutboxMessage.status.in_(WAITING_STATUSES))),
        "sending": _count(outbox.where(OutboxMessage.status == "sending")),
    }


def _webhooks(_principal: Principal) -> dict[str, Any]:
    """Endpoints that stopped, and deliveries that failed in the last 24 hours."""
    endpoints = db.session.scalars(webhooks.visible()).all()
    ids = [e.id for e in endpoints]
    failing = (
        _count(
            sa.select(sa.func.count())
            .select_from(WebhookDelivery)
            .where(
                WebhookDelivery.endpoint_id.in_(ids),
                WebhookDelivery.status.in_(("failed", "dead")),
                WebhookDelivery.created_at >= utcnow() - timedelta(hours=24),
            )
        )
        if ids
        else 0
    )
    return {
        "endpoints": len(endpoints),
        "failing": failing,
        "paused": [e for e in endpoints if e.paused_reason or not e.enabled],
    }


for _card in (
    Card("sessions", "ui/cards/sessions.html", "sessions:read", _sessions, 10),
    Card("traffic", "ui/cards/traffic.html", "sessions:read", _traffic, 20),
    Card("runtime", "ui/cards/runtime.html", None, _runtime, 30),
    Card("webhooks", "ui/cards/webhooks.html", "webhooks:manage", _webhooks, 40),
    # Waiting workflow runs (50) and the helpdesk's tickets (60) are added by
    # ui/pages/runs.py and ui/pages/tickets.py.
):
    add_card(_card)


@bp.route("/")
@bp.requires()
def index():
    principal = current_principal()
    cards = [
        (card, card.data(principal))
        for card in CARDS
        if card.permission is None or principal.can(card.permission)
    ]
    template = "ui/_overview_cards.html" if request.args.get("partial") else "ui/overview.html"
    return render_template(template, cards=cards)
