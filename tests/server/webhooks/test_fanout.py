"""Fan-out: an event gets one delivery per enabled endpoint that wants it, in the event's
own transaction, found with one query."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import event as sa_event

from server import eventlog, sessions
from server.auth import Principal
from server.events import InboundMessage, MessageReceived, Party, SessionStatus
from server.models import WebhookDelivery, WebhookEndpoint, db
from server.webhooks.fanout import matches, ordering_key


def _session(user, label="s"):
    return sessions.create(
        Principal.for_user(user), label=label, transport="sandbox", auto_start=False
    )


def _endpoint(owner, session=None, events=("*",), enabled=True):
    row = WebhookEndpoint(
        owner_id=owner.id,
        session_id=session.id if session else None,
        url="https://example.com/hook",
        secret="whsec_c2VjcmV0",
        events=list(events),
        enabled=enabled,
    )
    db.session.add(row)
    db.session.commit()
    return row


def _message(chat="628123@s.whatsapp.net"):
    party = Party(jid=chat, phone=chat.split("@")[0])
    return MessageReceived(
        message=InboundMessage(
            id="3EB0ABC",
            chat=party,
            sender=party,
            timestamp=datetime.now(UTC),
            kind="text",
            text="halo",
        )
    )


def _deliveries(endpoint):
    return db.session.scalars(
        sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    ).all()


def test_filters():
    assert matches(["*"], "message.received")
    assert matches(["message.*"], "message.status")
    assert not matches(["message.*"], "session.status")
    assert matches(["session.status", "message.received"], "message.received")
    assert not matches(["message.sent"], "message.received")
    assert not matches([], "message.received")


def test_ordering_keys():
    data = {"message": {"chat": {"jid": "628123@s.whatsapp.net"}}}
    assert ordering_key("message.received", data, "s1") == "s1/628123@s.whatsapp.net"
    assert ordering_key("message.status", {"chat": {"jid": "c@g.us"}}, "s1") == "s1/c@g.us"
    assert (
        ordering_key("message.sent", {"to": "628@s.whatsapp.net"}, "s1") == "s1/628@s.whatsapp.net"
    )
    assert ordering_key("session.status", {"status": "connected"}, "s1") == "s1"
    assert ordering_key("session.status", {}, None) == "-"


def test_global_and_session_endpoints_get_what_they_asked_for(app, make_user):
    alice, bob, root = make_user("operator"), make_user("operator"), make_user("admin")
    mine, theirs = _session(alice), _session(bob)
    every = _endpoint(root)
    only_mine = _endpoint(alice, mine)
    only_status = _endpoint(alice, mine, events=["session.status"])
    disabled = _endpoint(alice, mine, enabled=False)
    for session in (mine, theirs):
        eventlog.record(_message(), session)
    eventlog.record(SessionStatus(status="connected"), None)
    db.session.commit()
    assert len(_deliveries(every)) == 3  # both sessions, and the session-less event
    assert [d.event.session_id for d in _deliveries(only_mine)] == [mine.id]
    assert _deliveries(only_status) == []
    assert _deliveries(disabled) == []
    delivery = _deliveries(only_mine)[0]
    assert delivery.status == "pending"
    assert delivery.ordering_key == f"{mine.id}/628123@s.whatsapp.net"


def test_one_query_finds_the_endpoints(app, make_user):
    alice = make_user("operator")
    session = _session(alice)
    for _ in range(3):
        _endpoint(alice, session)
    statements = []

    def count(_conn, _cursor, statement, *_args):
        if "FROM webhook_endpoints" in statement:
            statements.append(statement)

    sa_event.listen(db.engine, "before_cursor_execute", count)
    try:
        eventlog.record(_message(), session)
        db.session.commit()
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery)) == 3


def test_a_rolled_back_event_leaves_no_delivery(app, make_user):
    alice = make_user("operator")
    session = _session(alice)
    endpoint = _endpoint(alice, session)
    eventlog.record(_message(), session)
    db.session.rollback()
    assert _deliveries(endpoint) == []
