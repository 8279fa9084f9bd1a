"""Wake the runtime (or a waiting web request) when there is new work.

PostgreSQL: LISTEN/NOTIFY on one channel. SQLite: nothing to listen to across processes,
so the listener is a short sleep and the caller polls; the database rows are the truth
either way, and a missed wake-up only costs one poll interval.

Within one process a notify also wakes at once whatever ``subscribe``d (the runtime's
workers, its control loop): a workflow run that queued a reply wakes the sender in the
same moment, on SQLite too, rather than at the control loop's next pass.
"""

from __future__ import annotations

import logging
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
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
            connection.commit()


class Listener:
    """``wait(timeout)`` returns early when notified (PostgreSQL) or after the poll."""

    def __init__(self, engine: sa.Engine):
        self._connection = None
        self._woken = threading.Event()  # a notify in this process
        self._unsubscribe = subscribe(self._woken.set)
        if engine.dialect.name == "postgresql":
            import psycopg

            url = engine.url.set(drivername="postgresql")
            self._connection = psycopg.connect(
                url.render_as_string(hide_password=False), autocommit=True
            )
            self._connection.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> None:
        if self._connection is None:
            self._woken.wait(min(timeout, POLL_SECONDS))
            self._woken.clear()
            return
        try:
            ready, _, _ = select.select([self._connection.fileno()], [], [], timeout)
            if ready:
                for _ in self._connection.notifies(timeout=0, stop_after=100):
                    pass
        except Exception:  # a dropped LISTEN connection degrades to polling
            log.warning("LISTEN connection lost; polling instead", exc_info=True)
            self._drop()
            time.sleep(min(timeout, POLL_SECONDS))

    def close(self) -> None:
        self._unsubscribe()
        self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
