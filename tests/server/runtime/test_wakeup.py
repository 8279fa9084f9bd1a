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
