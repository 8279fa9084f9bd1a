"""Messages of a session's chats, in and out, from the gateway's own store."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import UTCDateTime, db, utcnow


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        # WhatsApp may deliver a message twice; it is stored once.
        sa.UniqueConstraint("session_id", "chat_jid", "wa_id", name="uq_messages_wa_id"),
        sa.Index("ix_messages_chat", "session_id", "chat_jid", "seq"),
        sa.Index("ix_messages_wa_id", "session_id", "wa_id"),  # quoting and reacting
    )

    seq: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    id: Mapped[str] = mapped_column(
        sa.String(36), unique=True, nullable=False, default=lambda: str(uuid.uuid4())
    )
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("wa_sessions.id", ondelete="CASCADE"), index=True, nullable=False
    )
    wa_id: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    direction: Mapped[str] = mapped_column(sa.String(3), nullable=False)  # in / out
    chat_jid: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    chat_phone: Mapped[str | None] = mapped_column(sa.String(32))
    sender_jid: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    sender_phone: Mapped[str | None] = mapped_column(sa.String(32))
    sender_lid: Mapped[str | None] = mapped_column(sa.String(128))
    sender_name: Mapped[str | None] = mapped_column(sa.String(128))
    is_group: Mapped[bool] = mapped_column(default=False, nullable=False)
    from_me: Mapped[bool] = mapped_column(default=False, nullable=False)
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    text: Mapped[str] = mapped_column(sa.Text, default="", nullable=False)
    media: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    location: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    quoted_id: Mapped[str | None] = mapped_column(sa.String(128))
    status: Mapped[str] = mapped_column(sa.String(16), default="received", nullable=False)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class StoredEvent(db.Model):
    """Every event of the catalogue, in order: what webhooks and the live stream consume."""

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    )
    id: Mapped[str] = mapped_column(
        sa.String(36), unique=True, nullable=False, default=lambda: str(uuid.uuid4())
    )
    type: Mapped[str] = mapped_column(sa.String(64), index=True, nullable=False)
    # No foreign keys: the log outlives deleted sessions; ``session`` keeps what they were.
    session_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    owner_id: Mapped[int | None] = mapped_column(index=True)
    session: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
