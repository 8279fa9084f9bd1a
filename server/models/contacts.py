"""The people a session knows: its contacts.

A row is someone in the session's address book (the transport's address book sync, where
it gives one: ``saved``) or someone the session has had a private chat with. ``in_contacts``
in the contact check means a row exists; ``saved`` says it is in the phone's own contacts.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import UTCDateTime, db, utcnow


class Contact(db.Model):
    __tablename__ = "contacts"
    __table_args__ = (
        sa.UniqueConstraint("session_id", "jid", name="uq_contacts_jid"),
        sa.Index("ix_contacts_phone", "session_id", "phone"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("wa_sessions.id", ondelete="CASCADE"), nullable=False
    )
    # The person's phone JID (628…@s.whatsapp.net), or their @lid while the number is unknown.
    jid: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    name: Mapped[str | None] = mapped_column(sa.String(256))  # as saved in the address book
    push_name: Mapped[str | None] = mapped_column(sa.String(256))  # the name they set
    saved: Mapped[bool] = mapped_column(sa.Boolean, default=False, nullable=False)
    # chat: learnt from messages; address_book: from the transport's sync
    source: Mapped[str] = mapped_column(sa.String(16), default="chat", nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )
