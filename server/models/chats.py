"""What the gateway keeps about a chat beyond its messages: how far it has been read.

Messages stay in ``messages``; a chat is every message with one ``chat_jid``. This row
holds only what messages cannot say: the read mark that unread counts are measured
from, and a name learnt elsewhere (a group's subject). It is made on first need.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import UTCDateTime, db, utcnow


class ChatState(db.Model):
    __tablename__ = "chat_states"
    __table_args__ = (sa.UniqueConstraint("session_id", "chat_jid", name="uq_chat_states_chat"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("wa_sessions.id", ondelete="CASCADE"), nullable=False
    )
    chat_jid: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    name: Mapped[str | None] = mapped_column(sa.String(256))
    # Messages with seq up to here are read; unread = inbound messages after it.
    last_read_seq: Mapped[int | None] = mapped_column(sa.BigInteger)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )
