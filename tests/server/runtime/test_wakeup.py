"""Wake-ups within one process: a notify wakes the runtime's workers and loop at once."""

from __future__ import annotations

import threading

from server.runtime import wakeup


def test_a_notify_wakes_every_subscriber_until_it_unsubscribes(app):
    woken: list[str] = []
    unsubscribe = wakeup.subscribe(lambda: woken.append("worker"))
    with app.app_context():
        wakeup.notify()
        unsubscribe()
        wakeup.notify()
    assert woken == ["worker"]


def test_the_listener_returns_at_a_notify_in_this_process(app, monkeypatch):
    """On SQLite there is nothing to LISTEN to: the loop polled, and a message queued in
    this process waited for the next poll. Now the notify ends the wait."""
    from server.models import db

    monkeypatch.setattr(wakeup, "POLL_SECONDS", 3600.0)
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            return  # PostgreSQL's listener wakes on NOTIFY itself
        listener = wakeup.Listener(db.engine)
        waiting = threading.Thread(target=listener.wait, args=(3600.0,), daemon=True)
        waiting.start()
        wakeup.notify()
        waiting.join(10)
        listener.close()
    assert not waiting.is_alive()


def test_the_listener_says_whether_it_was_woken(app):
    from server.models import db

    with app.app_context():
        listener = wakeup.Listener(db.engine)
        try:
            assert listener.wait(0.01) is False
            wakeup.notify()
            assert listener.wait(3600.0) is True
        finally:
            listener.close()


def test_the_web_in_another_process_wakes_the_runtime_without_its_safety_poll(
    client, operator_headers, runtime, monkeypatch
):
    """The runtime reads its sessions and commands only when woken, or at its safety
    poll. The web is another process: its notify reaches the runtime only through the
    database's channel (PostgreSQL's NOTIFY, SQLite's wake-up file), never through this
    process's subscribers. With those cut off and the poll an hour away, a session
    created over the API still starts (shows its QR)."""
    from tests.server.conftest import wait_for

    runtime.poll_seconds = 3600.0
    monkeypatch.setattr(wakeup, "wake_local", lambda: None)
    wait_for(lambda: runtime.passes, what="the loop's first pass")
    created = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "Woken", "transport": "sandbox"},
    )
    assert created.status_code == 201, created.json
    session_id = created.json["id"]
    wait_for(
        lambda: (
            client.get(f"/api/v1/sessions/{session_id}", headers=operator_headers).json["status"]
            == "qr"
        ),
        what="the runtime to start the session",
    )
