"""Response actions, run directly: each validated on its own, failures recorded with
their reason, the rest still run; messages go through the outbox."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from server import eventlog, sessions
from server.auth import Principal
from server.events import InboundMessage, MessageReceived, Party, SessionStatus
from server.models import OutboxMessage, RuntimeCommand, db
from server.runtime import sink
from server.webhooks import actions

CONTACT = "6281234567890@s.whatsapp.net"


@pytest.fixture
def session(make_user):
    return sessions.create(
        Principal.for_user(make_user("operator")), label="s", transport="sandbox", auto_start=False
    )


@pytest.fixture
def event(session):
    """A contact's message: stored in the history and in the log."""
    party = Party(jid=CONTACT, phone="6281234567890", name="Budi")
    message = InboundMessage(
        id="3EB0INBOUND",
        chat=party,
        sender=party,
        timestamp=datetime.now(UTC),
        kind="text",
        text="halo",
    )
    sink.store_inbound(session, message)
    row = eventlog.record(MessageReceived(message=message), session)
    db.session.commit()
    return row


def _outbox():
    return db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.seq)).all()


def _commands():
    return db.session.scalars(sa.select(RuntimeCommand).order_by(RuntimeCommand.id)).all()


def test_reply_goes_to_the_events_chat_through_the_outbox(event):
    (result,) = actions.run(
        [{"type": "reply", "text": "pong", "quote": True}], event, key_prefix="t"
    )
    assert result["ok"], result
    (row,) = _outbox()
    assert (row.to_jid, row.payload["text"], row.source) == (CONTACT, "pong", "webhook")
    assert row.payload["quoted"]["id"] == "3EB0INBOUND"
    assert result["message_id"] == row.id


def test_reply_with_media_and_caption(event):
    data = base64.b64encode(b"laporan bulan ini").decode()
    (result,) = actions.run(
        [
            {
                "type": "reply",
                "caption": "laporan",
                "media": {"base64": data, "mimetype": "text/plain", "filename": "laporan.txt"},
            }
        ],
        event,
        key_prefix="t",
    )
    assert result["ok"], result
    (row,) = _outbox()
    assert (row.kind, row.payload["text"]) == ("document", "laporan")
    assert row.payload["media"]["filename"] == "laporan.txt"


def test_send_react_mark_read_and_typing(event, session):
    results = actions.run(
        [
            {"type": "send", "message": {"to": "0812-1111-2222", "text": "ada laporan baru"}},
            {"type": "react", "emoji": "👍"},
            {"type": "mark_read"},
            {"type": "typing", "state": "composing"},
        ],
        event,
        key_prefix="t",
    )
    assert [r["ok"] for r in results] == [True] * 4, results
    sent, reaction = _outbox()
    assert sent.to_jid == "6281211112222@s.whatsapp.net"
    assert (reaction.kind, reaction.payload["text"]) == ("reaction", "👍")
    assert reaction.payload["target"]["id"] == "3EB0INBOUND"
    read, typing = _commands()
    assert (read.kind, read.session_id) == ("chats.mark_read", session.id)
    assert read.payload == {
        "chat": CONTACT,
        "receipts": [{"sender": CONTACT, "ids": ["3EB0INBOUND"]}],
    }
    assert (typing.kind, typing.payload["state"]) == ("chats.presence", "composing")
    assert typing.expires_at is not None  # a late typing indicator is not worth showing


def test_delay_and_typing_seconds_schedule_what_follows(event):
    before = datetime.now(UTC)
    actions.run(
        [
            {"type": "reply", "text": "now"},
            {"type": "delay", "seconds": 30},
            {"type": "typing", "seconds": 5},
            {"type": "reply", "text": "later"},
        ],
        event,
        key_prefix="t",
    )
    now, later = _outbox()
    assert now.send_at is None
    assert before + timedelta(seconds=34) < later.send_at < before + timedelta(seconds=40)


def test_an_invalid_action_is_recorded_and_the_next_still_runs(event):
    results = actions.run(
        [
            {"type": "explode"},
            {"type": "reply"},  # no text, no media
            {"type": "reply", "text": "x", "colour": "red"},  # unknown field
            "not an object",
            {"type": "send", "message": {"to": "++ 1 --", "text": "x"}},
            {"type": "reply", "text": "still here"},
        ],
        event,
        key_prefix="t",
    )
    assert [r["ok"] for r in results] == [False] * 5 + [True]
    assert [r["error"] for r in results[:5]] == ["invalid_action"] * 4 + ["validation_error"]
    assert "type" in results[0]["errors"]
    assert results[4]["errors"]["to"]
    assert [row.payload["text"] for row in _outbox()] == ["still here"]


def test_running_the_same_list_again_sends_nothing_twice(event):
    batch = [{"type": "reply", "text": "sekali"}, {"type": "react", "emoji": "✅"}]
    actions.run(batch, event, key_prefix="webhook-7")
    again = actions.run(batch, event, key_prefix="webhook-7")
    assert all(r["ok"] and r["duplicate"] for r in again), again
    assert len(_outbox()) == 2


def test_limits_and_shapes(event, session):
    assert actions.run({"type": "reply"}, event, key_prefix="t")[0]["error"] == "invalid_actions"
    many = actions.run([{"type": "delay", "seconds": 0}] * 25, event, key_prefix="t")
    assert [r["error"] for r in many[20:]] == ["too_many_actions"] * 5
    status = eventlog.record(SessionStatus(status="connected"), session)
    db.session.commit()
    (result,) = actions.run([{"type": "react", "emoji": "👍"}], status, key_prefix="t")
    assert result["error"] == "no_message_id"
    orphan = eventlog.record(SessionStatus(status="connected"), None)
    db.session.commit()
    (result,) = actions.run([{"type": "reply", "text": "x"}], orphan, key_prefix="t")
    assert result["error"] == "no_session"
