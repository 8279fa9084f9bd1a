"""Messages page: the outbox filtered, cancel and retry, broadcasts with progress."""

from __future__ import annotations

import sqlalchemy as sa

from server import outbox
from server.auth.principal import Principal
from server.models import Broadcast, OutboxMessage, db
from server.outbox import broadcast
from tests.server.ui.conftest import flashes


def _session(operator):
    from server import sessions

    return sessions.create(
        Principal.for_user(operator), label="Out", transport="sandbox", auto_start=False
    )


def test_filter_cancel_and_retry(operator_browser, operator):
    session = _session(operator)
    queued, _ = outbox.send(session, {"to": "0812-1111-2222", "text": "alpha"})
    failed, _ = outbox.send(session, {"to": "0812-1111-3333", "text": "beta"})
    failed.status, failed.reason = "failed", "boom: the phone is gone"
    db.session.commit()
    page = operator_browser.get("/outbox").get_data(as_text=True)
    assert page.index("beta") < page.index("alpha")  # newest first
    only_failed = operator_browser.get("/outbox?status=failed").get_data(as_text=True)
    assert "beta" in only_failed and "alpha" not in only_failed
    assert "boom: the phone is gone" in only_failed
    by_session = operator_browser.get(
        f"/outbox?session={session.id}&since=2000-01-01&until=2999-12-31"
    ).get_data(as_text=True)
    assert "alpha" in by_session
    cancelled = operator_browser.submit(
        f"/outbox/{session.id}/{queued.id}/cancel", {"next": "/outbox"}
    )
    assert "cancelled" in flashes(operator_browser.get(cancelled.headers["Location"]))
    db.session.expire_all()  # the test's own session still holds the rows as they were
    assert db.session.get(OutboxMessage, queued.seq).status == "cancelled"
    again = operator_browser.submit(f"/outbox/{session.id}/{queued.id}/cancel", {"next": "/outbox"})
    assert "Only a queued message" in flashes(operator_browser.get(again.headers["Location"]))
    operator_browser.submit(f"/outbox/{session.id}/{failed.id}/retry", {"next": "/outbox"})
    db.session.expire_all()
    assert db.session.get(OutboxMessage, failed.seq).status == "queued"


def test_bad_filters_are_explained(operator_browser):
    answer = operator_browser.get("/outbox?status=lost")
    assert answer.status_code == 422 and "Unknown status" in answer.get_data(as_text=True)
    answer = operator_browser.get("/outbox?since=yesterday")
    assert answer.status_code == 422 and "2025-01-31" in answer.get_data(as_text=True)
    for edge in ("until=9999-12-31", "since=0001-01-01"):  # a day more would overflow
        assert operator_browser.get(f"/outbox?{edge}").status_code == 422, edge
    assert operator_browser.get("/outbox?session=nope").status_code == 404
    assert operator_browser.get("/outbox?cursor=garbage").status_code == 422


def test_broadcast_progress_and_cancel(operator_browser, operator):
    session = _session(operator)
    row, _ = broadcast.create(
        session,
        message={"text": "Hai {name}"},
        name="Promo",
        recipients=[{"to": "0812-1111-2222", "name": "A"}, {"to": "0812-1111-3333", "name": "B"}],
    )
    page = operator_browser.get("/outbox").get_data(as_text=True)
    assert "Promo" in page and "0 of 2 sent, 2 waiting" in page
    operator_browser.submit(f"/outbox/{session.id}/broadcasts/{row.id}/cancel", {"next": "/outbox"})
    db.session.expire_all()
    assert db.session.get(Broadcast, row.id).cancelled_at is not None
    assert set(db.session.scalars(sa.select(OutboxMessage.status))) == {"cancelled"}
