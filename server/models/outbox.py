"""The outbox: every message Kabar sends is one row here before anything else happens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import UTCDateTime, db, utcnow

# fetching: accepted, its media URL not fetched yet (the runtime's media fetcher takes it
# to queued, or to failed with the reason); the dispatcher sends queued rows only.
OUTBOX_STATUSES = (
    "fetching",
    "queued",
    "sending",
    "sent",
    "delivered",
    "read",
    "played",
    "failed",
    "cancelled",
    "expired",
)
WAITING_STATUSES = ("fetching", "queued")  # not sent yet; may still be cancelled
FINAL_STATUSES = {"failed", "cancelled", "expired"}

PRIORITIES = {"high": 0, "normal": 5, "bulk": 9}


class OutboxMessage(db.Model):
    """One message to send, and everything that happened to it.

    ``wa_id`` is WhatsApp's message id, chosen here before the first attempt and reused
    on every retry, so a retry after a crash is the same message, not a second one.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "idempotency_key", name="uq_outbox_idempotency"),
        sa.Index("ix_outbox_due", "session_id", "status", "priority", "seq"),
        sa.Index("ix_outbox_recipient", "session_id", "to_jid", "sent_at"),
    )

    seq: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    id: Mapped[str] = mapped_column(
        sa.String(36), unique=True, nullable=False, default=lambda: str(uuid.uuid4())
    )
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("wa_sessions.id", ondelete="CASCADE"), nullable=False
    )
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(128))
    wa_id: Mapped[str] = mapped_column(sa.String(64), nullable=False, index=True)
    to_jid: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON, nullable=False)
    priority: Mapped[int] = mapped_column(sa.SmallInteger, default=5, nullable=False)
    source: Mapped[str] = mapped_column(sa.String(16), default="api", nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="queued", nullable=False)
    reason: Mapped[str | None] = mapped_column(sa.String(512))
    waiting: Mapped[str | None] = mapped_column(sa.String(255))
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0, nullable=False)
    broadcast_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("broadcasts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Broadcast(db.Model):
    """One request to many recipients: a row here and one outbox row per recipient."""

    __tablename__ = "broadcasts"

    id: Mapped[str] = mapped_column(
        sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4())
    )
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("wa_sessions.id", ondelete="CASCADE"), index=True, nullable=False
    )
    name: Mapped[str] = mapped_column(sa.String(128), default="", nullable=False)
    total: Mapped[int] = mapped_column(nullable=False)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class SandboxDelivery(db.Model):
    """What a sandbox session's virtual recipients received: once per WhatsApp id."""

    __tablename__ = "sandbox_deliveries"
    __table_args__ = (sa.UniqueConstraint("session_id", "wa_id", name="uq_sandbox_delivery"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("wa_sessions.id", ondelete="CASCADE"), index=True, nullable=False
    )
    wa_id: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    to_jid: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    content: Mapped[dict[str, Any]] = mapped_column(sa.JSON, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
