"""Bringing the database to the current Alembic revision, and telling whether it is."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask import current_app
from flask_migrate import upgrade as alembic_upgrade
from sqlalchemy.exc import OperationalError, ProgrammingError

from server.models import db

MIGRATIONS = Path(__file__).parent / "migrations"
UNMANAGED_TABLES = frozenset({"apscheduler_jobs"})
"""Tables in Kabar's database that no migration manages (APScheduler's job store)."""


def upgrade() -> None:
    """Migrate to head, then make sure the built-in groups exist. Idempotent."""
    from server.auth.accounts import ensure_builtin_groups

    alembic_upgrade(directory=str(MIGRATIONS))
    ensure_builtin_groups()


def head_revision() -> str | None:
    config = current_app.extensions["migrate"].migrate.get_config(str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()


def current_revision() -> str | None:
    """The revision the database is at (None if never migrated). Raises if unreachable."""
    try:
        return db.session.scalar(sa.text("SELECT version_num FROM alembic_version"))
    except ProgrammingError:  # PostgreSQL: no such table yet
        db.session.rollback()
        return None
    except OperationalError as exc:  # SQLite says "no such table" this way
        db.session.rollback()
        if "no such table" in str(exc):
            return None
        raise
