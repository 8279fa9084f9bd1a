"""What the runtime does with each event: one transaction that always ends, and an
outage of the database that delays events instead of losing them."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from server.events import InboundMessage, MessageReceived, Party
from server.models import Message, StoredEvent, WaSession, db
from server.runtime import sink
from server.runtime.process import Pending, Runtime


def _session(make_user) -> str:
    owner = make_user("operator")
    session = WaSession(label="s", transport="sandbox", owner_id=owner.id)
    db.session.add(session)
    db.session.commit()
    return session.id


def _received(wa_id: str = "3EB0AAAA") -> MessageReceived:
    contact = Party(jid="628123@s.whatsapp.net", phone="628123")
    return MessageReceived(message=InboundMessage(
        id=wa_id, chat=contact, sender=contact, timestamp=datetime.now(UTC), kind="text",
        text="halo"))


def test_a_duplicate_delivery_leaves_no_transaction_open(app, make_user):
    """WhatsApp redelivers a message after a reconnect: the second copy is ignored, and
    the transaction ends (an open one would hold SQLite's write lock for everyone)."""
    sid = _session(make_user)
    sink.handle(sid, _received())
    sink.handle(sid, _received())
    assert not db.session().in_transaction()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 1


def test_a_failing_event_rolls_back_and_ends_its_transaction(app, make_user, monkeypatch):
    sid = _session(make_user)

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(sink, "store_inbound", broken)
    try:
        sink.handle(sid, _received())
    except RuntimeError:
        pass
    assert not db.session().in_transaction()
    assert db.session.get(WaSession, sid).last_seen_at is None


def test_a_database_outage_delays_an_event_and_does_not_drop_it(app, make_user, monkeypatch):
    sid = _session(make_user)
    runtime = Runtime(app)
    real_handle, calls = sink.handle, []

    def flaky(session_id, event, **kwargs):
        calls.append(session_id)
        if len(calls) <= 3:  # down for a while, then back
            raise OperationalError("INSERT", {}, Exception("server closed the connection"))
        return real_handle(session_id, event, **kwargs)

    monkeypatch.setattr(sink, "handle", flaky)
    runtime.leases[sid] = 0
    db.session.get(WaSession, sid).lease_holder = runtime.holder
    db.session.commit()
    assert runtime._store(Pending(sid, _received(), None, True, 0)) is True
    assert len(calls) == 4
    assert db.session.scalar(sa.select(Message.wa_id)) == "3EB0AAAA"


def test_the_transports_callback_is_not_released_until_the_message_is_stored(
        app, make_user, monkeypatch):
    """The sink loop acknowledges an inbound message only once it is stored."""
    sid = _session(make_user)
    runtime = Runtime(app)
    outage = threading.Event()
    real_handle = sink.handle

    def down_until_released(session_id, event, **kwargs):
        if not outage.is_set():
            raise OperationalError("INSERT", {}, Exception("database is down"))
        return real_handle(session_id, event, **kwargs)

    monkeypatch.setattr(sink, "handle", down_until_released)
    thread = threading.Thread(target=runtime._sink_loop, daemon=True)
    thread.start()
    stored = threading.Event()
    runtime.events.put(Pending(sid, _received(), stored, True, None))
    assert not stored.wait(0.5)  # still retrying: the callback waits
    outage.set()
    assert stored.wait(10)
    runtime.events.put(None)
    thread.join(10)


def test_the_same_message_delivered_twice_is_stored_once(app, sandbox_session, runtime):
    transport = runtime.live[sandbox_session].transport
    message = transport.inject(sender="628123", text="hello")
    # WhatsApp redelivers the very same message (same id) after a reconnect.
    transport.emit(MessageReceived(message=message))
    rows = db.session.scalars(sa.select(Message).where(Message.wa_id == message.id)).all()
    assert len(rows) == 1
    events = db.session.scalars(sa.select(StoredEvent).where(
        StoredEvent.type == "message.received")).all()
    assert len(events) == 1
