"""WhatsApp sessions (one per account/device), their status history, and the runtime
bookkeeping: its heartbeat and the command queue between the web and the runtime."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import OwnedMixin, TimestampMixin, UTCDateTime, db, utcnow


def new_session_id() -> str:
    return secrets.token_hex(8)


class WaSession(OwnedMixin, TimestampMixin, db.Model):
    """A WhatsApp account the gateway controls.

    The web sets ``desired_state`` (running / stopped); the runtime makes it so and writes
    ``status``. ``deleted_at`` hides the session at once; the runtime then removes its
    store and the row.
    """

    __tablename__ = "wa_sessions"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True, default=new_session_id)
    label: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    transport: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    auto_start: Mapped[bool] = mapped_column(default=True, nullable=False)
    desired_state: Mapped[str] = mapped_column(sa.String(16), default="stopped", nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="created", nullable=False)
    status_reason: Mapped[str] = mapped_column(sa.String(255), default="", nullable=False)
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    last_error: Mapped[str | None] = mapped_column(sa.String(512))
    qr: Mapped[str | None] = mapped_column(sa.Text)
    qr_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pair_code: Mapped[str | None] = mapped_column(sa.String(16))
    jid: Mapped[str | None] = mapped_column(sa.String(128))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    push_name: Mapped[str | None] = mapped_column(sa.String(128))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settings: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict, nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # Where the session last ran (host, process) and how often its process died.
    host: Mapped[str | None] = mapped_column(sa.String(128))
    restarts: Mapped[int] = mapped_column(default=0, server_default="0", nullable=False)
    # The runtime host holding the session (server/runtime/leases.py): every claim bumps
    # the token, and every write made for the session checks it.
    lease_holder: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        default=0,
        server_default="0",
        nullable=False,
    )


class SessionStatusChange(db.Model):
    """Every status a session went through, with its reason."""

    __tablename__ = "session_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("wa_sessions.id", ondelete="CASCADE"), index=True, nullable=False
    )
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    reason: Mapped[str] = mapped_column(sa.String(255), default="", nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class RuntimeHeartbeat(db.Model):
    """The runtime process's lease and pulse: one row, renewed every few seconds."""

    __tablename__ = "runtime_heartbeats"

    name: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(64), nullable=False)  # host:pid:nonce
    pid: Mapped[int] = mapped_column(nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class RuntimeHost(db.Model):
    """One runtime process holding sessions: its pulse, capacity and drain flag."""

    __tablename__ = "runtime_hosts"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)  # host:pid:nonce
    hostname: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    pid: Mapped[int] = mapped_column(nullable=False)
    capacity: Mapped[int] = mapped_column(nullable=False)
    draining: Mapped[bool] = mapped_column(default=False, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class RuntimeCommand(db.Model):
    """A request from the web to the runtime, and its answer.

    Durable: a command made while the runtime is down runs when it is back, unless it
    expired first (a look-up whose caller gave up is not worth running later).
    """

    __tablename__ = "runtime_commands"
    __table_args__ = (sa.Index("ix_runtime_commands_pending", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("wa_sessions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", nullable=False)
    result: Mapped[Any | None] = mapped_column(sa.JSON)
    error_code: Mapped[str | None] = mapped_column(sa.String(64))
    error_message: Mapped[str | None] = mapped_column(sa.String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(64))  # the runtime host
