"""The studio's simulator: one per user, a sandbox session of their own that plays the
phone, and the workflow it runs (the one open in the studio)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import OwnedMixin, UTCDateTime, db, utcnow

_BIG = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class Simulator(OwnedMixin, db.Model):
    """A user's simulator. Its sandbox session answers with ``workflow_id`` only (enabled
    or not) and no other workflow sees it; a run started there sends only through it.
    ``message_seq`` / ``run_seq``: what the conversation shows starts after these (a reset
    moves them on; nothing is deleted)."""

    __tablename__ = "studio_simulators"
    __table_args__ = (sa.UniqueConstraint("owner_id", name="uq_studio_simulators_owner"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("wa_sessions.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    workflow_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("workflows.id", ondelete="SET NULL")
    )
    contact: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    message_seq: Mapped[int] = mapped_column(_BIG, default=0, nullable=False)
    run_seq: Mapped[int] = mapped_column(_BIG, default=0, nullable=False)
    # the session's last outbox row at the reset: replies queued before it are not shown
    outbox_seq: Mapped[int] = mapped_column(_BIG, default=0, server_default="0", nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
