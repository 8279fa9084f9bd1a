"""Flask extensions, created unbound here and bound in ``create_app``."""

import sqlite3

from flask import request
from flask_babel import Babel
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Engine

# Stable constraint names, so Alembic migrations can alter them on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING_CONVENTION))
migrate = Migrate()
jwt = JWTManager()
# The dashboard (server/ui): CSRF tokens for its forms, and its languages.
csrf = CSRFProtect()
babel = Babel()


def _client_address() -> str:
    # request.remote_addr is already corrected by ProxyFix when KABAR_TRUSTED_PROXIES > 0.
    return request.remote_addr or "unknown"


# No default limits: each limited endpoint says its own (login today).
limiter = Limiter(key_func=_client_address)


@sa_event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite is shared by the web workers and the runtime process: WAL lets readers and
    one writer work at once, and busy_timeout makes a writer wait instead of failing.

    A writer only waits if its transaction starts as a write: in WAL mode a transaction
    that has read and then writes fails at once with "database is locked" when another
    writer committed in between (SQLite cannot wait there, its snapshot is stale). So
    every write transaction begins ``BEGIN IMMEDIATE``: pysqlite says it before the first
    INSERT/UPDATE/DELETE (reads before it run on their own, as they always did), and
    ``_sqlite_savepoint`` below says it before a savepoint that would otherwise begin a
    deferred transaction."""
    if isinstance(dbapi_connection, sqlite3.Connection):  # server/sqlite_writer.py's too
        dbapi_connection.isolation_level = "IMMEDIATE"
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        # KABAR_SQLITE_SYNCHRONOUS (server/config.py), carried by the connection's class.
        cursor.execute(f"PRAGMA synchronous={getattr(dbapi_connection, 'synchronous', 'FULL')}")
        cursor.close()


@sa_event.listens_for(Engine, "savepoint")
def _sqlite_savepoint(connection, _name) -> None:
    """``SAVEPOINT`` outside a transaction begins a deferred one, whose reads would make
    its first write fail at once under concurrency: begin it as a write instead."""
    if connection.dialect.name != "sqlite":
        return
    dbapi_connection = connection.connection.dbapi_connection
    if not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN IMMEDIATE")
