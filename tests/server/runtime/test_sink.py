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
    return MessageReceived(
        message=InboundMessage(
            id=wa_id,
            chat=contact,
            sender=contact,
            timestamp=datetime.now(UTC),
            kind="text",
            text="halo",
        )
    )


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
    app, make_user, monkeypatch
):
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


def _sent(sid: str, wa_id: str):
    from server.models import OutboxMessage

    row = OutboxMessage(
        session_id=sid,
        wa_id=wa_id,
        to_jid="628123@s.whatsapp.net",
        kind="text",
        payload={"text": "hi"},
        status="sent",
    )
    db.session.add(row)
    db.session.commit()
    return row.seq


def _receipt(wa_id: str, status: str):
    from server.events import MessageStatus

    return MessageStatus(
        message_ids=(wa_id,),
        status=status,
        chat=Party(jid="628123@s.whatsapp.net", phone="628123"),
        timestamp=datetime.now(UTC),
    )


def test_events_stored_together_are_all_there_and_in_one_commit(app, make_user):
    """A burst is stored in one transaction: every message, event and receipt lands, a
    duplicate among them changes nothing, and receipts only move a message forward
    (a late "delivered" after "read" leaves it read)."""
    from server.models import OutboxMessage

    sid = _session(make_user)
    seq = _sent(sid, "3EB0SENT")
    other = _sent(sid, "3EB0SENT2")
    commits = []

    def on_commit(_conn):
        commits.append(1)

    sa.event.listen(db.engine, "commit", on_commit)
    try:
        sink.handle_many(
            [
                (sid, event, True, None)
                for event in (
                    _received("3EB0A1"),
                    _received("3EB0A2"),
                    _received("3EB0A1"),
                    _receipt("3EB0SENT", "read"),
                    _receipt("3EB0SENT", "delivered"),
                    _receipt("3EB0SENT2", "delivered"),
                )
            ]
        )
    finally:
        sa.event.remove(db.engine, "commit", on_commit)
    assert len(commits) == 1
    assert not db.session().in_transaction()
    assert sorted(db.session.scalars(sa.select(Message.wa_id))) == ["3EB0A1", "3EB0A2"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StoredEvent)) == 5
    row = db.session.get(OutboxMessage, seq)
    assert row.status == "read" and row.read_at is not None and row.delivered_at is not None
    assert db.session.get(OutboxMessage, other).status == "delivered"


def test_a_group_that_fails_is_stored_one_by_one_and_each_acknowledged(app, make_user, monkeypatch):
    """One bad event in a burst costs the group commit, not the others: they are stored
    alone, each acknowledged once stored; the bad one is given up after its retries."""
    sid = _session(make_user)
    runtime = Runtime(app)
    real_store = sink.store_inbound

    def broken_for_one(session, message):
        if message.id == "3EB0BAD":
            raise RuntimeError("a bug")
        return real_store(session, message)

    monkeypatch.setattr(sink, "store_inbound", broken_for_one)
    monkeypatch.setattr("server.runtime.process.time.sleep", lambda _s: None)
    batch = [
        Pending(sid, _received(wa_id), threading.Event(), True, None)
        for wa_id in ("3EB0G1", "3EB0BAD", "3EB0G2")
    ]
    runtime._store_batch(batch)
    assert sorted(db.session.scalars(sa.select(Message.wa_id))) == ["3EB0G1", "3EB0G2"]
    assert all(item.done.is_set() for item in batch)


def test_an_event_is_acknowledged_only_after_its_group_is_committed(app, make_user, monkeypatch):
    """Ack-after-store holds for a group: while the commit has not happened, no event of
    the group is acknowledged."""
    sid = _session(make_user)
    runtime = Runtime(app)
    seen_at_commit = []
    batch = [
        Pending(sid, _received(wa_id), threading.Event(), True, None)
        for wa_id in ("3EB0C1", "3EB0C2")
    ]

    def on_commit(_conn):
        seen_at_commit.append([item.done.is_set() for item in batch])

    sa.event.listen(db.engine, "commit", on_commit)
    try:
        runtime._store_batch(batch)
    finally:
        sa.event.remove(db.engine, "commit", on_commit)
    assert seen_at_commit == [[False, False]]
    assert all(item.done.is_set() for item in batch)


def test_the_same_message_delivered_twice_is_stored_once(app, sandbox_session, runtime):
    transport = runtime.live[sandbox_session].transport
    message = transport.inject(sender="628123", text="hello")
    # WhatsApp redelivers the very same message (same id) after a reconnect.
    transport.emit(MessageReceived(message=message))
    rows = db.session.scalars(sa.select(Message).where(Message.wa_id == message.id)).all()
    assert len(rows) == 1
    events = db.session.scalars(
        sa.select(StoredEvent).where(StoredEvent.type == "message.received")
    ).all()
    assert len(events) == 1
