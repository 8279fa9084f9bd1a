"""The instance's media store: one row per distinct content, keyed by its SHA-256.

The bytes live on disk at ``<instance>/media/<sha[:2]>/<sha>`` (see ``server.media``);
the row says what they are. Content addressing makes the same file sent twice, or
received by two sessions, cost one copy.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import UTCDateTime, db, utcnow


class Media(db.Model):
    __tablename__ = "media"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # lowercase hex
    # RFC 6838 caps type and subtype at 127 characters each.
    mimetype: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    size: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    # The name the content first arrived with; a hint for downloads, not an identity.
    filename: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class MediaDownload(db.Model):
    """An inbound message's media still to fetch from WhatsApp into the store.

    A durable job: the runtime's media worker takes it, never the event handler, so a
    slow download cannot hold up message delivery, and a crash does not lose it.
    """

    __tablename__ = "media_downloads"

    message_seq: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("messages.seq", ondelete="CASCADE"),
        primary_key=True,
    )
    session_id: Mapped[str] = mapped_column(sa.String(32), index=True, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", nullable=False)
    attempts: Mapped[int] = mapped_column(default=0, nullable=False)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    error: Mapped[str | None] = mapped_column(sa.String(512))
