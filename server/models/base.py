"""Column types and mixins shared by every model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from server.extensions import db

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


@contextmanager
def unit_of_work() -> Iterator[None]:
    """One transaction that ends by construction: committed when the block ends (however
    it leaves: a ``return`` too), rolled back when it raises. A branch that forgets to
    commit cannot leave a transaction open, holding SQLite's write lock or a PostgreSQL
    row lock for everyone else."""
    try:
        yield
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()


_MEMO = "kabar.memo"


@contextmanager
def memoised() -> Iterator[None]:
    """Inside the block, ``memo`` answers each key once: for a group commit (the sink's
    and the sender's), whose many events would otherwise each ask the same question
    (which endpoints and workflows listen) in the same transaction. Only code that
    changes none of what it memoises may open one."""
    outer = _MEMO in db.session.info
    if not outer:
        db.session.info[_MEMO] = {}
    try:
        yield
    finally:
        if not outer:
            db.session.info.pop(_MEMO, None)


def memo(key: tuple, compute: Callable[[], T]) -> T:
    """``compute()``, or its answer already given for ``key`` inside ``memoised()``."""
    cache = db.session.info.get(_MEMO)
    if cache is None:
        return compute()
    if key not in cache:
        cache[key] = compute()
    return cache[key]


class UTCDateTime(sa.types.TypeDecorator):
    """Stores UTC; always hands back timezone-aware UTC datetimes (SQLite included)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class OwnedMixin:
    """A resource that belongs to one user (its tenant). See ``server.auth.tenancy``."""

    @declared_attr
    def owner_id(cls) -> Mapped[int]:
        return mapped_column(
            sa.ForeignKey("users.id", ondelete="CASCADE"), index=True, nullable=False
        )


__all__ = ["db", "utcnow", "UTCDateTime", "TimestampMixin", "OwnedMixin"]
