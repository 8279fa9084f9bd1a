"""Wake the runtime (or a waiting web request) when there is new work.

PostgreSQL: LISTEN/NOTIFY on one channel. SQLite has nothing to listen to across
processes, so a notify writes a fresh random token into a file beside the database
(``kabar.db-wakeup``), and the listener reads that file every ``POLL_SECONDS``: a few
bytes from the page cache, no query. The runtime reads its sessions and commands only
when woken, so an idle runtime costs the same whatever the number of sessions. The
database rows are the truth either way: a missed wake-up (a read-only folder, a LISTEN
connection lost) only waits for the runtime's slow safety poll.

Within one process a notify also wakes at once whatever ``subscribe``d (the runtime's
workers, its control loop): a workflow run that queued a reply wakes the sender in the
same moment, on SQLite too, rather than at the control loop's next pass.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

from server.models import db

CHANNEL = "kabar_runtime"
POLL_SECONDS = 0.25
log = logging.getLogger(__name__)


_subscribers: list[Callable[[], None]] = []
_lock = threading.Lock()


def subscribe(callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` (quick, thread-safe: it sets an event) on every ``notify`` in this
    process. Returns what unsubscribes it."""
    with _lock:
        _subscribers.append(callback)

    def unsubscribe() -> None:
        with _lock:
            if callback in _subscribers:
                _subscribers.remove(callback)

    return unsubscribe


def wake_local() -> None:
    """Wake this process's subscribers (what ``notify`` does before telling others)."""
    with _lock:
        callbacks = list(_subscribers)
    for callback in callbacks:
        callback()


def notify() -> None:
    """Tell the runtime to look now. Call after committing the work."""
    wake_local()
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
            connection.commit()
        return
    path = signal_path(engine)
    if path is None:
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, os.urandom(TOKEN_BYTES), 0)
        finally:
            os.close(fd)
    except OSError:  # the safety poll finds the work anyway
        log.debug("could not write the wake-up file %s", path, exc_info=True)


TOKEN_BYTES = 16


def signal_path(engine: sa.Engine) -> str | None:
    """SQLite: the file a notify writes and the listener reads (None: an in-memory
    database, which only one process sees)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return os.path.abspath(database) + "-wakeup"


def _read_token(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as file:
            return file.read(TOKEN_BYTES)
    except OSError:
        return None


class Listener:
    """``wait(timeout)`` returns True as soon as something is notified (in this process,
    by PostgreSQL's NOTIFY, or through SQLite's wake-up file), False after ``timeout``."""

    def __init__(self, engine: sa.Engine):
        self._connection = None
        self._woken = threading.Event()  # a notify in this process
        self._unsubscribe = subscribe(self._woken.set)
        self._path = signal_path(engine)
        self._token = _read_token(self._path)
        self._lost = False  # PostgreSQL's LISTEN connection dropped: poll as SQLite once did
        if engine.dialect.name == "postgresql":
            import psycopg

            url = engine.url.set(drivername="postgresql")
            self._connection = psycopg.connect(
                url.render_as_string(hide_password=False), autocommit=True
            )
            self._connection.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> bool:
        if self._connection is None:
            return self._wait_polling(timeout)
        try:
            ready, _, _ = select.select([self._connection.fileno()], [], [], timeout)
            if ready:
                for _ in self._connection.notifies(timeout=0, stop_after=100):
                    pass
            self._woken.clear()  # this process's notifies come back through NOTIFY too
            return bool(ready)
        except Exception:  # a dropped LISTEN connection degrades to polling
            log.warning("LISTEN connection lost; polling instead", exc_info=True)
            self._drop()
            self._lost = True
            time.sleep(min(timeout, POLL_SECONDS))
            return True  # a notify may have been lost with the connection

    def _wait_polling(self, timeout: float) -> bool:
        """SQLite (or PostgreSQL without its LISTEN connection): a notify in this process
        ends the wait at once; another process's, at the next read of the wake-up file."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self._woken.wait(max(0.0, min(left, POLL_SECONDS))):
                self._woken.clear()
                return True
            token = _read_token(self._path)
            if token != self._token or self._lost:
                self._token = token
                return True
            if left <= POLL_SECONDS:
                return False

    def close(self) -> None:
        self._unsubscribe()
        self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
