"""The overview: cards by permission, today's numbers, the runtime, webhook failures."""

from __future__ import annotations

from server import outbox, sessions
from server.auth.principal import Principal
from server.models import db, utcnow
from server.ui.pages import overview


def test_the_numbers_of_today(operator_browser, operator):
    session = sessions.create(
        Principal.for_user(operator), label="Counted", transport="sandbox", auto_start=False
    )
    sent, _ = outbox.send(session, {"to": "0812-1111-2222", "text": "a"})
    sent.status, sent.sent_at = "read", utcnow()
    failed, _ = outbox.send(session, {"to": "0812-1111-3333", "text": "b"})
    failed.status = "failed"
    outbox.send(session, {"to": "0812-1111-4444", "text": "c"})
    db.session.commit()
    page = operator_browser.get("/").get_data(as_text=True)
    assert "Counted" in page
    assert 'data-stat="sent">1<' in page and 'data-stat="received">0<' in page
    assert 'status=failed">1<' in page and 'status=queued">1<' in page
    assert "down" in page  # no runtime in this test
    fragment = operator_browser.get("/?partial=cards").get_data(as_text=True)
    assert "<html" not in fragment and "Counted" in fragment


def test_cards_follow_permissions_and_features_can_add_theirs(browser_for, make_user, monkeypatch):
    field = browser_for(make_user("field"))
    page = field.get("/").get_data(as_text=True)
    assert "Runtime" in page and "Today" not in page and "Webhooks" not in page
    monkeypatch.setattr(overview, "CARDS", list(overview.CARDS))
    overview.add_card(
        overview.Card(
            "tickets",
            "ui/cards/runtime.html",
            "tickets:read",
            lambda principal: {
                "state": type("S", (), {"alive": True, "pid": 42, "started_at": None})()
            },
            order=60,
        )
    )
    assert "Process 42" in field.get("/").get_data(as_text=True)
