"""A short-lived cache, in each web process, of the logins and API keys that held a
moment ago.

Every API request with a JWT asked the database for its user and login (one query, and
on PostgreSQL a round trip): a tenth of a REST send's time; an API key the same. Here a
login or key found valid is
remembered for ``SECONDS``, as plain values (never an ORM object shared between
requests); each request gets its own ``User`` rebuilt from them, attached to its
session as if loaded, so views use it as before.

Revocation still lives in the database, and a revoked login, a blocked user or a changed
group holds:

- at once in the process that made the change: any flush or UPDATE/DELETE that touches
  users, groups, logins or API keys empties this process's cache (``_forget_on_change``);
- within ``SECONDS`` in every other web process (and after the CLI blocks a user).

Refresh tokens and the dashboard's cookie login never use it: they read the row.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from server.models import ApiKey, Group, LoginSession, User, db

SECONDS = 2.0  # the most another process goes on accepting a revoked login (README.md)
MAX_ENTRIES = 10_000  # past this the cache starts again empty: a bound, not an LRU
WATCHED = (User, Group, LoginSession, ApiKey)
_WATCHED_TABLES = frozenset(model.__table__.name for model in WATCHED)


@dataclass(frozen=True)
class _Entry:
    until: float
    user: dict[str, Any]
    group: dict[str, Any]
    key: dict[str, Any] | None = None  # an API key's row; None for a login


_entries: dict[tuple[int, str], _Entry] = {}
_lock = threading.Lock()


def _values(instance: Any) -> dict[str, Any]:
    return {column.key: getattr(instance, column.key) for column in type(instance).__table__.c}


def remember(login_id: str, user: User) -> None:
    """``user`` holds ``login_id`` now (the caller checked it against the database)."""
    _store(
        f"login:{login_id}", _Entry(time.monotonic() + SECONDS, _values(user), _values(user.group))
    )


def remember_key(key: ApiKey) -> None:
    """``key`` (with its owner) was valid now (the caller checked it against the database)."""
    owner = key.owner
    entry = _Entry(time.monotonic() + SECONDS, _values(owner), _values(owner.group), _values(key))
    _store(f"key:{key.prefix}", entry)


def _store(name: str, entry: _Entry) -> None:
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            _entries.clear()
        _entries[(id(db.engine), name)] = entry


def recall(login_id: str) -> User | None:
    """The login's user, attached to this request's session, if it held less than
    ``SECONDS`` ago and nothing in this process has changed users or logins since."""
    entry = _recent(f"login:{login_id}")
    return None if entry is None else db.session.merge(_user(entry), load=False)


def recall_key(prefix: str) -> ApiKey | None:
    """The API key with ``prefix`` and its owner, attached to this request's session, if
    it was valid less than ``SECONDS`` ago (the caller still compares the digest and the
    expiry)."""
    entry = _recent(f"key:{prefix}")
    if entry is None or entry.key is None:
        return None
    key = ApiKey(**entry.key)
    make_transient_to_detached(key)
    set_committed_value(key, "owner", _user(entry))
    return db.session.merge(key, load=False)


def _recent(name: str) -> _Entry | None:
    entry = _entries.get((id(db.engine), name))
    return None if entry is None or entry.until < time.monotonic() else entry


def _user(entry: _Entry) -> User:
    """A detached user and group from the entry's values, as if just loaded: clean, so the
    request may change and commit them (set_committed_value: no history, and no backref
    filling group.users with one user)."""
    group, user = Group(**entry.group), User(**entry.user)
    make_transient_to_detached(group)
    make_transient_to_detached(user)
    set_committed_value(user, "group", group)
    return user


def forget() -> None:
    with _lock:
        _entries.clear()


@event.listens_for(Session, "after_flush")
def _forget_on_flush(session: Session, _context: Any) -> None:
    if any(
        isinstance(instance, WATCHED)
        for instance in (*session.new, *session.dirty, *session.deleted)
    ):
        forget()


@event.listens_for(Session, "do_orm_execute")
def _forget_on_change(state: Any) -> None:
    """An UPDATE or DELETE statement (a revoke) on the watched tables."""
    if state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in _WATCHED_TABLES:
            forget()
