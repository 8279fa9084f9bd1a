"""The helpdesk: the people who report, the staff who handle, tickets and their story.

One helpdesk per installation: tickets belong to no tenant. A ticket remembers the
WhatsApp session and chat it came from, so notifications go back the same way. Phone
numbers are stored normalised (``628123456789``, see ``server.whatsapp.jids``) so a
sender is matched however the number was typed.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import TimestampMixin, UTCDateTime, db, utcnow
from server.models.users import User

PERSON_STATUSES = ("active", "inactive")
STAFF_LEVELS = ("administrator", "staff", "tbo")
"""Administrator and Staf manage tickets over WhatsApp too; TBO are field officers."""
STAFF_STATUSES = ("active", "inactive")
TICKET_STATUSES = ("new", "assigned", "in_progress", "pending", "done", "confirmed")
OPEN_STATUSES = ("new", "assigned", "in_progress", "pending")
EVENT_KINDS = (
    "created",
    "assigned",
    "started",
    "progress",
    "finished",
    "confirmed",
    "reopened",
    "status",
    "note",
)
ASSIGNMENT_STATUSES = ("active", "pending", "done", "replaced")


class Person(TimestampMixin, db.Model):
    """Someone in the directory who may report (tb_pegawai): an employee, a lecturer."""

    __tablename__ = "people"

    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)  # e.g. PGW2402001
    name: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    phone: Mapped[str] = mapped_column(sa.String(32), unique=True, nullable=False)
    email: Mapped[str | None] = mapped_column(sa.String(255))
    department: Mapped[str] = mapped_column(sa.String(128), default="", nullable=False)
    unit: Mapped[str] = mapped_column(sa.String(128), default="", nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="active", nullable=False)
    notes: Mapped[str] = mapped_column(sa.Text, default="", nullable=False)


class StaffProfile(TimestampMixin, db.Model):
    """What makes a user helpdesk staff (tb_admin): the phone they use on WhatsApp, their
    level and whether they are active. Their login stays the user's."""

    __tablename__ = "staff"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    phone: Mapped[str] = mapped_column(sa.String(32), unique=True, nullable=False)
    level: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="active", nullable=False)
    notes: Mapped[str] = mapped_column(sa.Text, default="", nullable=False)

    user: Mapped[User] = relationship(lazy="joined")


class TicketCounter(db.Model):
    """The last sequence number given for a prefix in a month (YYMM): one row each, bumped
    with one atomic upsert, so two reports at once never get the same number."""

    __tablename__ = "ticket_counters"

    prefix: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(4), primary_key=True)
    last: Mapped[int] = mapped_column(nullable=False)


class Ticket(TimestampMixin, db.Model):
    """A report (tb_monitoring) and where its handling stands."""

    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(sa.String(32), unique=True, nullable=False)
    category: Mapped[str] = mapped_column(sa.String(64), default="request", nullable=False)
    text: Mapped[str] = mapped_column(sa.Text, nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), index=True, nullable=False)
    reporter_phone: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    reporter_jid: Mapped[str | None] = mapped_column(sa.String(128))
    reporter_name: Mapped[str] = mapped_column(sa.String(128), default="", nullable=False)
    person_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    # No foreign key: a ticket outlives the session it came in through.
    session_id: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    source_message_id: Mapped[str | None] = mapped_column(sa.String(36))
    photo_message_id: Mapped[str | None] = mapped_column(sa.String(36))
    assignee_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # From report to finish (durasi), kept so averages are one SQL AVG on every database.
    duration_seconds: Mapped[int | None] = mapped_column()

    person: Mapped[Person | None] = relationship(lazy="joined")
    assignee: Mapped[User | None] = relationship(lazy="joined")
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket",
        order_by="TicketEvent.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )
    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="ticket",
        order_by="Assignment.id",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (sa.Index("ix_tickets_created_at", "created_at"),)


class TicketEvent(db.Model):
    """One step of a ticket's story (tb_track, tb_kerja): who did what, with a note and
    maybe a photo (a stored WhatsApp message's media)."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True, nullable=False
    )
    kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)  # the ticket's, after
    actor_kind: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    actor_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    actor_name: Mapped[str] = mapped_column(sa.String(128), default="", nullable=False)
    actor_phone: Mapped[str | None] = mapped_column(sa.String(32))
    note: Mapped[str] = mapped_column(sa.Text, default="", nullable=False)
    photo_message_id: Mapped[str | None] = mapped_column(sa.String(36))
    # A workflow step that runs again after a crash repeats its key: the change is not.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class Assignment(db.Model):
    """A ticket given to a staff member (tb_penugasan), by whom, with what instruction."""

    __tablename__ = "ticket_assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True, nullable=False
    )
    assignee_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    assignee_name: Mapped[str] = mapped_column(sa.String(128), default="", nullable=False)
    assigned_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    assigned_by_name: Mapped[str] = mapped_column(sa.String(128), default="", nullable=False)
    note: Mapped[str] = mapped_column(sa.Text, default="", nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), default="active", nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship(back_populates="assignments")
