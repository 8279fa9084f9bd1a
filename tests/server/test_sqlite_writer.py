"""SQLite writers queue for their turn instead of failing with "database is locked"."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from server import sqlite_writer


def _connect(path, **kwargs):
    # No busy timeout: without the queue a second writer fails at once.
    connection = sqlite3.connect(
        path,
        timeout=0,
        factory=sqlite_writer.Connection,
        isolation_level="IMMEDIATE",
        check_same_thread=False,
        **kwargs,
    )
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


@pytest.fixture
def database(tmp_path):
    path = str(tmp_path / "kabar.db")
    with _connect(path) as connection:
        connection.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)")
    return path


def test_a_second_writer_waits_for_the_first_to_commit(database):
    first, second = _connect(database), _connect(database)
    first.execute("INSERT INTO t (who) VALUES ('first')")  # holds the write lock
    started, done = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def write():
        started.set()
        try:
            second.execute("INSERT INTO t (who) VALUES ('second')")
            second.commit()
        except BaseException as exc:  # reported below
            failure.append(exc)
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    started.wait()
    assert not done.wait(0.2)  # queued, not failed
    first.commit()
    thread.join(10)
    assert failure == []
    assert [row[0] for row in first.execute("SELECT who FROM t ORDER BY id")] == ["first", "second"]


def test_a_rollback_and_a_failed_statement_give_the_turn_back(database):
    first, second = _connect(database), _connect(database)
    first.execute("INSERT INTO t (who) VALUES ('gone')")
    first.rollback()
    with pytest.raises(sqlite3.OperationalError):
        first.execute("INSERT INTO missing (who) VALUES ('x')")
    second.execute("INSERT INTO t (who) VALUES ('kept')")  # would wait forever otherwise
    second.commit()
    assert [row[0] for row in first.execute("SELECT who FROM t")] == ["kept"]


def test_one_thread_on_two_connections_is_left_to_sqlite(database):
    """It cannot wait for itself: SQLite answers as it always did (locked, here at once)."""
    first, second = _connect(database), _connect(database)
    first.execute("INSERT INTO t (who) VALUES ('first')")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        second.execute("INSERT INTO t (who) VALUES ('second')")
    first.commit()
    second.execute("INSERT INTO t (who) VALUES ('second')")
    second.commit()


def test_the_app_uses_it_on_sqlite_with_its_synchronous_setting(app):
    from server.models import db

    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with db.engine.connect() as connection:
        assert isinstance(connection.connection.dbapi_connection, sqlite_writer.Connection)
        # KABAR_SQLITE_SYNCHRONOUS's default: NORMAL (1).
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1
