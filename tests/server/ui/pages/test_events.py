"""The dashboard's live stream: the API's stream code behind the cookie login."""

from __future__ import annotations

from server import eventlog, sessions
from server.auth.principal import Principal
from server.events import SessionStatus
from server.models import db


def test_the_stream_carries_my_events_only(app, operator_browser, operator, make_user, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "EVENTS_STREAM_SECONDS", 0)
    mine = sessions.create(
        Principal.for_user(operator), label="mine", transport="sandbox", auto_start=False
    )
    theirs = sessions.create(
        Principal.for_user(make_user("operator")),
        label="theirs",
        transport="sandbox",
        auto_start=False,
    )
    for session in (mine, theirs):
        eventlog.record(SessionStatus(status="qr", reason="test"), session)
    db.session.commit()
    stream = operator_browser.get("/events?after=0&type=session.status")
    assert stream.mimetype == "text/event-stream"
    body = stream.get_data(as_text=True)
    assert mine.id in body and theirs.id not in body
    assert operator_browser.get("/events?after=-1").status_code == 422
