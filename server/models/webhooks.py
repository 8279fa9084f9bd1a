"""Webhooks: endpoints that receive events, one delivery per (endpoint, event), and the
log of every attempt. The runtime's webhook worker (``server/webhooks/dispatcher.py``)
turns pending deliveries into signed POSTs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import OwnedMixin, TimestampMixin, UTCDateTime, db, utcnow
from server.models.messages import StoredEvent

DELIVERY_STATUSES = ("pending", "delivering", "delivered", "failed", "dead")
# Deliveries that still have to go out: they hold back newer ones with the same key.
OPEN_STATUSES = ("pending", "delivering", "failed")
# The same, as SQL written out (not bound parameters), so that both databases' planners
# see that a query asking for open deliveries may use the partial index of them.
OPEN_SQL = "status IN ('pending', 'delivering', 'failed')"

_BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class WebhookEndpoint(OwnedMixin, TimestampMixin, db.Model):
    """Where events go. ``session_id`` None: a global endpoint (every session; admins
    only). ``secret`` is kept as given out, because signing needs the secret itself (a
    hash could only verify); the API shows it once, at creation or rotation.

    ``enabled`` is the owner's switch (or a receiver's 410): a disabled endpoint gets no
    deliveries. ``paused_until`` is the circuit breaker: set after failures in a row, it
    holds deliveries back (they are still queued) until then, when one delivery goes as
    a probe; its success closes the breaker, its failure sets a later probe.

    ``run_id`` set: a one-shot endpoint of a reply watch (``server/workflows/watches.py``):
    it receives only the end (``workflow.completed``/``failed``) of that one run, and no
    other event ever looks at it."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("wa_sessions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(128), default="", nullable=False)
    url: Mapped[str] = mapped_column(sa.String(2048), nullable=False)
    secret: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    events: Mapped[list[str]] = mapped_column(sa.JSON, default=lambda: ["*"], nullable=False)
    headers: Mapped[dict[str, str]] = mapped_column(sa.JSON, default=dict, nullable=False)
    enabled: Mapped[bool] = mapped_column(default=True, nullable=False)
    paused_reason: Mapped[str | None] = mapped_column(sa.String(255))
    consecutive_failures: Mapped[int] = mapped_column(default=0, nullable=False)
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The body's shape: "kabar" (the envelope, docs/webhooks.md) or "fonnte" (fonnte's
    # own webhook bodies, docs/fonnte.md; events fonnte has no shape for are not sent).
    format: Mapped[str] = mapped_column(
        sa.String(16), default="kabar", server_default="kabar", nullable=False
    )
    run_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)


class WebhookDelivery(db.Model):
    """One event for one endpoint, and where it stands.

    pending: waiting for its turn; delivering: a POST is under way; failed: the last
    attempt failed and another is due at ``next_at``; delivered: the receiver answered
    2xx; dead: given up (too old). Deliveries with the same endpoint and ``ordering_key``
    go out one at a time, oldest first.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.Index("ix_webhook_deliveries_due", "status", "next_at"),
        sa.Index("ix_webhook_deliveries_order", "endpoint_id", "ordering_key", "id"),
        # Only the open ones: the order check must not grow with a chat's history.
        sa.Index(
            "ix_webhook_deliveries_open",
            "endpoint_id",
            "ordering_key",
            "id",
            sqlite_where=sa.text(OPEN_SQL),
            postgresql_where=sa.text(OPEN_SQL),
        ),
    )

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    event_seq: Mapped[int] = mapped_column(
        sa.BigInteger, sa.ForeignKey("events.seq", ondelete="CASCADE"), index=True, nullable=False
    )
    ordering_key: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", nullable=False)
    attempts: Mapped[int] = mapped_column(default=0, nullable=False)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(sa.String(512))
    latency_ms: Mapped[int | None] = mapped_column()
    replay_of: Mapped[int | None] = mapped_column(sa.BigInteger)
    actions_result: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    event: Mapped[StoredEvent] = relationship(lazy="joined")
    attempt_log: Mapped[list[WebhookAttempt]] = relationship(
        lazy="selectin",
        order_by="WebhookAttempt.attempt",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class WebhookAttempt(db.Model):
    """One POST of a delivery and what came back (the body cut to 1 KB)."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        sa.BigInteger,
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        index=True,
        nullable=False,
    )
    attempt: Mapped[int] = mapped_column(nullable=False)
    status_code: Mapped[int | None] = mapped_column()
    latency_ms: Mapped[int | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(sa.String(512))
    response: Mapped[str | None] = mapped_column(sa.String(1024))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
