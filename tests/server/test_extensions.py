"""The database engine's set-up: concurrent writers on the embedded SQLite default."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import sqlalchemy as sa

from server.models import TicketCounter, db
from server.tickets import numbering

THREADS = 6
ROUNDS = 15


def test_concurrent_read_then_write_transactions_never_fail(app):
    """Each unit of work reads, then writes (a savepoint, as workflow reload and the sink
    use). On SQLite in WAL mode such a transaction used to fail at once with "database is
    locked" when another writer had committed since its read; now each waits its turn."""
    at = datetime(2024, 9, 1, 12, tzinfo=UTC)
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def writer() -> None:
        with app.app_context():
            try:
                start.wait()
                for _ in range(ROUNDS):
                    with db.session.begin_nested():
                        db.session.scalar(sa.select(TicketCounter.last))  # a read first
                        numbering.next_number("BRT", at, "UTC")  # then a write
                    db.session.commit()
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=writer) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert db.session.scalar(sa.select(TicketCounter.last)) == THREADS * ROUNDS
