"""Wake the runtime (or a waiting web request) when there is new work.

PostgreSQL: LISTEN/NOTIFY on one channel. SQLite: nothing to listen to, so the listener
is a short sleep and the caller polls; the database rows are the truth either way, and
a missed wake-up only costs one poll interval.
"""

from __future__ import annotations

import logging
import select
import time

import sqlalchemy as sa

from server.models import db

CHANNEL = "kabar_runtime"
POLL_SECONDS = 0.25
log = logging.getLogger(__name__)


def notify() -> None:
    """Tell the runtime to look now. Call after committing the work."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as connection:
            connection.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
            connection.commit()


class Listener:
    """``wait(timeout)`` returns early when notified (PostgreSQL) or after the poll."""

    def __init__(self, engine: sa.Engine):
        self._connection = None
        if engine.dialect.name == "postgresql":
            import psycopg

            url = engine.url.set(drivername="postgresql")
            self._connection = psycopg.connect(
                url.render_as_string(hide_password=False), autocommit=True)
            self._connection.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> None:
        if self._connection is None:
            time.sleep(min(timeout, POLL_SECONDS))
            return
        try:
            ready, _, _ = select.select([self._connection.fileno()], [], [], timeout)
            if ready:
                for _ in self._connection.notifies(timeout=0, stop_after=100):
                    pass
        except Exception:  # a dropped LISTEN connection degrades to polling
            log.warning("LISTEN connection lost; polling instead", exc_info=True)
            self.close()
            time.sleep(min(timeout, POLL_SECONDS))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
