"""One writer at a time on SQLite, taking turns in the order they asked.

SQLite lets one connection write at a time. A writer that finds the database locked
sleeps in SQLite's busy handler (1, 2, 5, 10 … 100 ms between tries, whoever tries at
the right moment wins), so under load from many threads some writers lose again and
again: seconds of p99, and "database is locked" once the busy timeout runs out.

Kabar's connections instead queue before they write: a write transaction (the implicit
``BEGIN IMMEDIATE`` before the first INSERT/UPDATE/DELETE, see ``server/extensions.py``)
first takes this process's lock, then an exclusive ``flock`` on ``<database>-writer``
that every Kabar process on the database shares (web workers and the runtime), and
gives both back when it commits or rolls back. Waiters sleep in the kernel and wake the
moment the writer is done; reads never wait (WAL).

The busy timeout stays as the fallback for writers outside this protocol (the sqlite3
shell, another tool). A thread that already writes through one connection and writes
through a second does not wait for itself: the second is left to SQLite, as before.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from typing import Any

WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN")
WAIT_SECONDS = 30.0  # then the write goes ahead and SQLite's busy timeout decides


class _Gate:
    """The writer lock of one database in this process."""

    def __init__(self, path: str):
        self.path = path
        self.lock = threading.Lock()
        self.owner: int | None = None
        self.fd: int | None = None

    def enter(self) -> bool:
        me = threading.get_ident()
        if self.owner == me or not self.lock.acquire(timeout=WAIT_SECONDS):
            return False
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self.fd, fcntl.LOCK_EX)  # the GIL is released while it waits
        except OSError:
            self.lock.release()
            return False
        self.owner = me
        return True

    def leave(self) -> None:
        self.owner = None
        try:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.lock.release()


_gates: dict[tuple[int, str], _Gate] = {}
_gates_lock = threading.Lock()


def _gate(database: Any) -> _Gate | None:
    name = os.fspath(database) if isinstance(database, str | os.PathLike) else ""
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    path = os.path.realpath(name) + "-writer"
    key = (os.getpid(), path)  # a forked child makes its own (a held lock may be copied)
    with _gates_lock:
        gate = _gates.get(key)
        if gate is None:
            gate = _gates[key] = _Gate(path)
    return gate


class Cursor(sqlite3.Cursor):
    connection: Connection

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        self.connection._before(sql)
        try:
            return super().execute(sql, parameters)
        finally:
            self.connection._after()

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Cursor:
        self.connection._before(sql)
        try:
            return super().executemany(sql, seq_of_parameters)
        finally:
            self.connection._after()


class Connection(sqlite3.Connection):
    """``sqlite3.connect(..., factory=Connection)``: a connection that queues to write.
    ``synchronous`` is the PRAGMA ``server/extensions.py`` sets on it."""

    synchronous = "FULL"

    def __init__(self, database: Any, *args: Any, **kwargs: Any):
        super().__init__(database, *args, **kwargs)
        self._gate = _gate(database)
        self._holding = False

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or Cursor)

    # The C methods would make a plain cursor and bypass the queue.
    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Any:
        return self.cursor().executemany(sql, parameters)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()

    def _before(self, sql: str) -> None:
        if self._gate is None or self._holding or self.in_transaction:
            return
        if sql.lstrip()[:7].upper().startswith(WRITES):
            self._holding = self._gate.enter()

    def _after(self) -> None:
        if self._holding and not self.in_transaction:  # it failed, or wrote on its own
            self._release()

    def _release(self) -> None:
        if self._holding:
            self._holding = False
            assert self._gate is not None
            self._gate.leave()


def factory(synchronous: str) -> type[Connection]:
    """The connection class for ``KABAR_SQLITE_SYNCHRONOUS``."""
    return type("Connection", (Connection,), {"synchronous": synchronous})
