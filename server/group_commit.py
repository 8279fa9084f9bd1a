"""Group commit: rows that many request threads insert, stored by one writer thread per
process in one transaction and one commit for all that arrived meanwhile.

A commit is the expensive part of accepting a message: the database's lock (SQLite: one
writer for the whole server; ``server/sqlite_writer.py``), a flush of its log, a round
trip (PostgreSQL). One request a commit caps a server at a few hundred requests a second
whatever the CPU; a commit for every batch does not, and the batch grows by itself with
the load (while the writer commits one batch, the next one gathers).

Nothing changes for the caller but the speed: ``insert`` returns once its row is
committed (or raises what storing it raised), so accepted work is in the database before
the API answers. A row whose unique key is taken already (an idempotency key) is not
inserted, and ``insert`` says so. A batch that fails is stored again row by row, so one
bad row fails alone.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

MAX_BATCH = 256
WAIT_SECONDS = 120.0  # far past any commit; a writer that never answers is a bug


@dataclass
class _Row:
    table: sa.Table
    values: dict[str, Any]
    inserted: bool = False
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class GroupCommit:
    """The writer of one engine in this process (``after_commit``: run in each batch's
    transaction, once, after its rows; the outbox wakes the runtime there)."""

    def __init__(
        self, engine: sa.Engine, after_commit: Callable[[sa.Connection], None] | None = None
    ):
        self.engine = engine
        self.after_commit = after_commit
        self._queue: queue.SimpleQueue[_Row] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, name="group-commit", daemon=True)
        self._thread.start()

    def insert(self, table: sa.Table, values: dict[str, Any]) -> bool:
        """Store one row (its unique keys free) in the next batch; False when a unique
        key was taken, so nothing was inserted. Returns once committed."""
        row = _Row(table, values)
        self._queue.put(row)
        if not row.done.wait(WAIT_SECONDS):
            raise TimeoutError("the group commit writer did not answer")
        if row.error is not None:
            raise row.error
        return row.inserted

    def _write(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._store(batch)
            except Exception:  # each row again, alone, to say which failed
                for row in batch:
                    try:
                        self._store([row])
                    except Exception as exc:  # the caller raises it
                        row.error = exc
            for row in batch:
                row.done.set()

    def _store(self, batch: list[_Row]) -> None:
        with self.engine.begin() as connection:
            for row in batch:
                row.inserted = (
                    connection.execute(_insert(connection, row.table), row.values).first()
                    is not None
                )
            if self.after_commit is not None:
                self.after_commit(connection)


def _insert(connection: sa.Connection, table: sa.Table) -> sa.Insert:
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    # RETURNING says whether the row went in (rowcount does not, with RETURNING).
    return dialect.insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)


_writers: dict[tuple[int, int], GroupCommit] = {}
_writers_lock = threading.Lock()


def writer(
    engine: sa.Engine, after_commit: Callable[[sa.Connection], None] | None = None
) -> GroupCommit:
    """This process's writer for ``engine`` (made on first use; a forked child makes its
    own, the parent's thread is not there)."""
    key = (os.getpid(), id(engine))
    found = _writers.get(key)
    if found is None:
        with _writers_lock:
            found = _writers.get(key)
            if found is None:
                found = _writers[key] = GroupCommit(engine, after_commit)
    return found
