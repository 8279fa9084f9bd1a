"""Workflows, their versions, their runs, and the inbox of things that may start or
resume a run. The engine itself is in ``nodes/``; ``server/workflows/`` stores and drives
it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import TimestampMixin, UTCDateTime, db, utcnow

RUN_STATUSES = ("running", "waiting", "completed", "failed", "cancelled")
OPEN_RUN_STATUSES = ("running", "waiting")

_BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


class Workflow(TimestampMixin, db.Model):
    """A named workflow. ``version`` is its current version (the newest row of
    ``workflow_versions``); runs keep the version they started with.

    ``owner_id`` None: a global workflow (from the workflows folder, or uploaded by an
    admin for everyone): it sees every session's messages. Otherwise it belongs to that
    user and only sees their sessions. Names are unique per owner (and among the global
    ones), so one tenant neither learns nor takes another's names; a hook is found by its
    name and its token together.
    """

    __tablename__ = "workflows"
    __table_args__ = (
        sa.UniqueConstraint("owner_id", "name", name="uq_workflows_owner_name"),
        # owner_id NULL never collides in a unique constraint: the global ones need this.
        sa.Index(
            "uq_workflows_global_name",
            "name",
            unique=True,
            sqlite_where=sa.text("owner_id IS NULL"),
            postgresql_where=sa.text("owner_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    owner_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    description: Mapped[str] = mapped_column(sa.Text, default="", nullable=False)
    version: Mapped[int] = mapped_column(default=1, nullable=False)
    enabled: Mapped[bool] = mapped_column(default=False, nullable=False)
    source: Mapped[str] = mapped_column(sa.String(8), default="api", nullable=False)  # file|api
    path: Mapped[str | None] = mapped_column(sa.String(512))
    # What the current version listens to, so matching never parses documents.
    triggers: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list, nullable=False)
    event_types: Mapped[list[str]] = mapped_column(sa.JSON, default=list, nullable=False)
    hook_token_hash: Mapped[str | None] = mapped_column(sa.String(64))
    hook_token_prefix: Mapped[str | None] = mapped_column(sa.String(16))


class WorkflowVersion(db.Model):
    """Every version of a workflow's document, kept while runs may need it."""

    __tablename__ = "workflow_versions"

    workflow_id: Mapped[int] = mapped_column(
        sa.ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(primary_key=True)
    doc: Mapped[dict[str, Any]] = mapped_column(sa.JSON, nullable=False)
    digest: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    created_by: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # Why this version was made when not by an upload: "restored from version 3".
    note: Mapped[str | None] = mapped_column(sa.String(255))


class WorkflowRun(db.Model):
    """One run: ``state`` is the engine's ``Run`` as JSON; the columns beside it copy
    what is searched for.

    A run waiting for a reply is found by (``wait_session_id``, ``wait_chat``); one
    waiting for a time by ``wait_until``. Both are indexed, so resuming one run costs
    the same with ten waiting runs or a million.
    """

    __tablename__ = "workflow_runs"
    __table_args__ = (
        sa.Index("ix_workflow_runs_reply", "wait_session_id", "wait_chat", "status"),
        sa.Index("ix_workflow_runs_due", "status", "wait_until"),
        sa.Index("ix_workflow_runs_list", "workflow_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)  # the listing order
    id: Mapped[str] = mapped_column(
        sa.String(32), unique=True, nullable=False, default=lambda: uuid.uuid4().hex
    )
    workflow_id: Mapped[int] = mapped_column(
        sa.ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(nullable=False)
    owner_id: Mapped[int | None] = mapped_column(index=True)
    parent_id: Mapped[str | None] = mapped_column(sa.String(32))
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    trigger_type: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    session_id: Mapped[str | None] = mapped_column(sa.String(32))
    chat: Mapped[str | None] = mapped_column(sa.String(128))
    current: Mapped[str | None] = mapped_column(sa.String(64))
    wait_kind: Mapped[str | None] = mapped_column(sa.String(16))
    wait_session_id: Mapped[str | None] = mapped_column(sa.String(32))
    wait_chat: Mapped[str | None] = mapped_column(sa.String(128))
    wait_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(sa.Text)
    state: Mapped[dict[str, Any]] = mapped_column(sa.JSON, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WorkflowInbox(db.Model):
    """Something that may resume or start runs, stored in the transaction that produced
    it (an inbound message with its event, a gateway event, a schedule firing) and
    deleted in the transaction that handled it: none is lost, none handled twice.

    ``shard`` is derived from ``ordering_key`` (a chat): items of one shard are handled
    one at a time, oldest first, so one chat's messages resume and start runs in order.
    """

    __tablename__ = "workflow_inbox"
    __table_args__ = (sa.Index("ix_workflow_inbox_shard", "shard", "id"),)

    id: Mapped[int] = mapped_column(_BIG_ID, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)  # message|event|schedule
    shard: Mapped[int] = mapped_column(sa.SmallInteger, nullable=False)
    ordering_key: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    session_id: Mapped[str | None] = mapped_column(sa.String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON, nullable=False)
    attempts: Mapped[int] = mapped_column(default=0, nullable=False)
    error: Mapped[str | None] = mapped_column(sa.Text)
    failed: Mapped[bool] = mapped_column(default=False, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
