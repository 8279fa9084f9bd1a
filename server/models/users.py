"""Users, the groups that grant them permissions, their logins and API keys."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.models.base import OwnedMixin, TimestampMixin, UTCDateTime, db, utcnow


class Group(TimestampMixin, db.Model):
    """A named set of permissions. Built-in groups: admin, operator, field, api."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(sa.String(255), default="", nullable=False)
    permissions: Mapped[list[str]] = mapped_column(sa.JSON, default=list, nullable=False)
    builtin: Mapped[bool] = mapped_column(default=False, nullable=False)

    users: Mapped[list[User]] = relationship(back_populates="group")


class User(TimestampMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    display_name: Mapped[str] = mapped_column(sa.String(128), default="", nullable=False)
    email: Mapped[str | None] = mapped_column(sa.String(255))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    group_id: Mapped[int] = mapped_column(sa.ForeignKey("groups.id"), index=True, nullable=False)
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    block_reason: Mapped[str | None] = mapped_column(sa.String(255))
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Tokens issued before this instant are refused (set on block and password change).
    tokens_valid_after: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, nullable=False
    )

    group: Mapped[Group] = relationship(back_populates="users", lazy="joined")

    @property
    def is_blocked(self) -> bool:
        return self.blocked_at is not None

    @property
    def is_admin(self) -> bool:
        return self.group.name == "admin"


class LoginSession(db.Model):
    """One login: the family of refresh tokens it rotated through, and its revocation.

    Access and refresh tokens carry the login's ``sid``. Logout revokes the row, so
    every token of that login stops working in every process at once. Refresh rotates
    ``refresh_jti``; presenting an older refresh token (a replay) revokes the login.
    """

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
    )
    refresh_jti: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(64))
    user_agent: Mapped[str] = mapped_column(sa.String(255), default="", nullable=False)
    ip_address: Mapped[str] = mapped_column(sa.String(64), default="", nullable=False)


class ApiKey(OwnedMixin, db.Model):
    """A machine credential. The key is shown once; only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    prefix: Mapped[str] = mapped_column(sa.String(16), unique=True, nullable=False)
    key_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    permissions: Mapped[list[str]] = mapped_column(sa.JSON, default=list, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A key bound to one session acts on that session only (a fonnte "device token");
    # None: every session its owner may see. Deleting the session deletes the key.
    session_id: Mapped[str | None] = mapped_column(
        sa.ForeignKey("wa_sessions.id", ondelete="CASCADE"), index=True
    )

    owner: Mapped[User] = relationship(lazy="joined")
