"""The runtime loop: faults, the watchdog, a session's status changes as events."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import SessionStatusChange, StoredEvent, db
from tests.server.conftest import wait_for


def _status(client, headers, sid):
    return client.get(f"/api/v1/sessions/{sid}", headers=headers).json["status"]


def _statuses(sid):
    return [
        c.status
        for c in db.session.scalars(
            sa.select(SessionStatusChange)
            .where(SessionStatusChange.session_id == sid)
            .order_by(SessionStatusChange.id)
        )
    ]


def test_disconnect_fault_reconnects(client, operator_headers, sandbox_session):
    response = client.post(
        f"/api/v1/sandbox/sessions/{sandbox_session}/faults",
        headers=operator_headers,
        json={"kind": "disconnect"},
    )
    assert response.status_code == 202
    wait_for(
        lambda: _statuses(sandbox_session)[-3:] == ["disconnected", "reconnecting", "connected"],
        what="a reconnect",
    )


def test_logout_from_the_phone_stops_the_session(client, operator_headers, sandbox_session):
    client.post(
        f"/api/v1/sandbox/sessions/{sandbox_session}/faults",
        headers=operator_headers,
        json={"kind": "logout"},
    )
    wait_for(lambda: _status(client, operator_headers, sandbox_session) == "logged_out")
    session = client.get(f"/api/v1/sessions/{sandbox_session}", headers=operator_headers).json
    assert session["desired_state"] == "stopped"  # no restart loop on a dead pairing


def test_watchdog_reconnects_a_silent_dead_session(
    client, operator_headers, sandbox_session, runtime
):
    live = runtime.live[sandbox_session]
    live.transport._connected = False  # the link died without telling anyone
    runtime.watchdog_after = 0.05
    wait_for(
        lambda: (
            "reconnecting" in _statuses(sandbox_session)
            and _statuses(sandbox_session)[-1] == "connected"
        ),
        what="the watchdog",
    )
    reasons = [c.reason for c in db.session.scalars(sa.select(SessionStatusChange))]
    assert any(r.startswith("watchdog") for r in reasons)


def test_status_changes_are_events_in_the_log(app, sandbox_session):
    types = [
        (e.type, e.data["status"])
        for e in db.session.scalars(
            sa.select(StoredEvent)
            .where(StoredEvent.type == "session.status")
            .order_by(StoredEvent.seq)
        )
    ]
    assert types[0] == ("session.status", "created")
    assert ("session.status", "connected") in types
    assert all(
        e.session["id"] == sandbox_session
        for e in db.session.scalars(
            sa.select(StoredEvent).where(StoredEvent.session_id == sandbox_session)
        )
    )


def test_a_restarted_runtime_keeps_stopped_what_nobody_restarted_but_not_a_fresh_start(
    app, make_user
):
    """After a restart, a session without auto-start stays stopped; one a person started
    while the runtime was still taking its leases runs (it was marked stopped: the
    dashboard's Start seemed to do nothing)."""
    from datetime import timedelta

    from server.models import WaSession, utcnow
    from server.runtime.process import Runtime

    owner = make_user("operator")
    old, fresh = (
        WaSession(
            label=label,
            transport="sandbox",
            owner_id=owner.id,
            auto_start=False,
            desired_state="running",
        )
        for label in ("old", "fresh")
    )
    db.session.add_all([old, fresh])
    db.session.commit()
    old.updated_at = utcnow() - timedelta(minutes=5)  # running before the restart
    db.session.commit()
    Runtime(app)._prepare_sessions(began=utcnow() - timedelta(minutes=1))
    db.session.expire_all()
    assert (old.desired_state, old.status) == ("stopped", "stopped")
    assert fresh.desired_state == "running"


def test_a_runtime_hosts_transactions_end_if_it_freezes_inside_one(tmp_path):
    """A host stopped (SIGSTOP, a cut network) inside a transaction must not keep its row
    locks for good: the host taking its sessions over would wait on them (the scale-out
    test's "cut off" step hung there). PostgreSQL ends the transaction after a bound."""
    import sqlalchemy as sa

    from server.app import create_app
    from server.runtime.process import (
        IDLE_IN_TRANSACTION_SECONDS,
        LOCK_WAIT_SECONDS,
        _bound_idle_transactions,
    )
    from tests.conftest import POSTGRES_URL

    runtime_app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": POSTGRES_URL,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256",
        }
    )
    _bound_idle_transactions(runtime_app)
    with runtime_app.app_context():
        shown = [
            db.session.scalar(sa.text(f"SHOW {name}"))
            for name in ("idle_in_transaction_session_timeout", "lock_timeout")
        ]
        db.session.remove()
        db.engine.dispose()
    assert shown == [f"{IDLE_IN_TRANSACTION_SECONDS}s", f"{LOCK_WAIT_SECONDS}s"]
