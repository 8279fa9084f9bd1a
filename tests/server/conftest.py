"""Fixtures for sessions: a real runtime on a thread, sandbox sessions, waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from server.models import db
from server.runtime.process import Runtime


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def runtime(app):
    """The runtime process's loop, on a thread of this process, against the test database."""
    rt = Runtime(app)
    thread = threading.Thread(target=rt.run, name="test-runtime", daemon=True)
    thread.start()
    wait_for(lambda: app.extensions and _lease_taken(), what="the runtime's lease")
    yield rt
    rt.request_stop()
    thread.join(timeout=15)
    assert not thread.is_alive(), "the runtime did not stop"


def _lease_taken() -> bool:
    from server.runtime import heartbeat

    return heartbeat.state().alive


@pytest.fixture
def operator(make_user):
    return make_user("operator")


@pytest.fixture
def operator_headers(operator, login):
    return login(operator)


@pytest.fixture
def sandbox_session(client, operator_headers, runtime):
    """A connected sandbox session owned by ``operator``: created, QR shown, scanned."""
    created = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "Helpdesk", "transport": "sandbox"},
    )
    assert created.status_code == 201, created.json
    session_id = created.json["id"]
    wait_for(
        lambda: (
            client.get(f"/api/v1/sessions/{session_id}", headers=operator_headers).json["status"]
            == "qr"
        ),
        what="a QR",
    )
    scanned = client.post(
        f"/api/v1/sandbox/sessions/{session_id}/scan",
        headers=operator_headers,
        json={"phone": "6281100000001"},
    )
    assert scanned.status_code == 200, scanned.json
    wait_for(
        lambda: (
            client.get(f"/api/v1/sessions/{session_id}", headers=operator_headers).json["status"]
            == "connected"
        ),
        what="connected",
    )
    return session_id


@pytest.fixture
def upload(client):
    def upload(headers, doc, *, enable=True, status=200):
        response = client.post(
            f"/api/v1/workflows?enable={'true' if enable else 'false'}", headers=headers, json=doc
        )
        assert response.status_code == status, response.json
        return response.json

    return upload


@pytest.fixture
def say(client):
    def say(headers, session_id, text, sender="6281234567890", **extra):
        response = client.post(
            f"/api/v1/sandbox/sessions/{session_id}/messages",
            headers=headers,
            json={"from": sender, "name": "Budi", "text": text, **extra},
        )
        assert response.status_code == 201, response.json

    return say


def unpaced(session_id: str) -> str:
    """Turn the session's anti-ban pacing off, for tests about what is sent, not when."""
    from server.models import WaSession, db

    session = db.session.get(WaSession, session_id)
    session.settings = {**(session.settings or {}), "pacing": {"enabled": False}}
    db.session.commit()
    return session_id


@pytest.fixture
def kabar(app, monkeypatch):
    """kabar("users", "list") -> click's Result, run against the test app."""
    # FlaskGroup sets this for the whole process; put it back after the test.
    monkeypatch.setenv("FLASK_RUN_FROM_CLI", "true")
    from click.testing import CliRunner
    from flask.cli import ScriptInfo

    from server.cli import cli

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(cli, list(args), obj=ScriptInfo(create_app=lambda: app))

    return run


@pytest.fixture
def fast(sandbox_session):
    """The sandbox session with pacing off, so sends go at once."""
    return unpaced(sandbox_session)


def drain_inbox(rounds: int = 50) -> None:
    """Handle the workflow inbox as the runtime's workers would, until it is empty."""
    import sqlalchemy as sa

    from server.models import WorkflowInbox
    from server.workflows.worker import handle_one

    for _ in range(rounds):
        ids = db.session.scalars(
            sa.select(WorkflowInbox.id)
            .where(WorkflowInbox.failed.is_(False))
            .order_by(WorkflowInbox.id)
        ).all()
        db.session.rollback()
        if not ids:
            return
        for item_id in ids:
            handle_one(item_id)
    raise AssertionError(f"the inbox still has items after {rounds} rounds")
