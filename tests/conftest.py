"""Fixtures. Every test that takes ``app`` runs twice: on SQLite and on PostgreSQL.

PostgreSQL is KABAR_TEST_POSTGRES_URL (default: the local server's database ``test``).
If it cannot be reached the PostgreSQL half errors; it is never skipped.
"""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa

from server import create_app, database
from server.auth import accounts
from server.extensions import limiter
from server.models import User, db

POSTGRES_URL = os.environ.get(
    "KABAR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

FAST_HASHING = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 64}


def _database_url(kind: str, tmp_path_factory) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'kabar.db'}"
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as connection:  # a clean slate for the migrations to build on
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def migrated_app(request, tmp_path_factory):
    """One app per database, migrated once per test session."""
    instance = tmp_path_factory.mktemp(f"instance-{request.param}")
    app = create_app(
        {
            "INSTANCE_PATH": str(instance),
            "WORKFLOWS_DIR": str(instance / "workflows"),  # none: tests load their own
            "DATABASE_URL": _database_url(request.param, tmp_path_factory),
            "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
            # A loaded test machine: wait longer for the runtime thread than production does.
            "RUNTIME_WAIT": 15.0,
            **FAST_HASHING,
        }
    )
    app.config["TESTING"] = True
    with app.app_context():
        database.upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


def _empty_tables() -> None:
    tables = [t for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        db.session.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def app(migrated_app):
    """The app with empty tables (but the built-in groups) and fresh rate limits."""
    with migrated_app.app_context():
        _empty_tables()
        accounts.ensure_builtin_groups()
        limiter.reset()
        yield migrated_app
        db.session.rollback()
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_user(app):
    """make_user("operator") -> a User in that group, password 'password123'."""
    counter = iter(range(1, 10_000))

    def make(group: str = "operator", username: str | None = None, **fields) -> User:
        name = username or f"{group}{next(counter)}"
        return accounts.create_user(username=name, password="password123", group=group, **fields)

    return make


@pytest.fixture
def login(client):
    """login(user) -> headers with a fresh access token for ``user``."""

    def do(user: User) -> dict[str, str]:
        response = client.post(
            "/api/v1/auth/login", json={"username": user.username, "password": "password123"}
        )
        assert response.status_code == 200, response.json
        return {"Authorization": f"Bearer {response.json['access_token']}"}

    return do


@pytest.fixture
def admin(make_user):
    return make_user("admin", username="root")


@pytest.fixture
def admin_headers(admin, login):
    return login(admin)
