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
