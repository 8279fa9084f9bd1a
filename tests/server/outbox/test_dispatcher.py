"""The outbox dispatcher: a chat's messages leave in the order accepted, pacing decides
when (not which), priority reorders across chats only, and many sessions share one
bounded set of send workers."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from server.models import OutboxMessage, SandboxDelivery, WaSession, db
from tests.server.conftest import wait_for


def _send(client, headers, sid, body):
    response = client.post(f"/api/v1/sessions/{sid}/messages", headers=headers, json=body)
    assert response.status_code == 202, response.json
    return response.json["id"]


def _pace(sid, **pacing):
    session = db.session.get(WaSession, sid)
    session.settings = {"pacing": pacing}
    db.session.commit()


def _delivered(sid):
    return [
        (d.to_jid.split("@")[0], d.content["text"])
        for d in db.session.scalars(
            sa.select(SandboxDelivery)
            .where(SandboxDelivery.session_id == sid)
            .order_by(SandboxDelivery.id)
        )
    ]


def test_a_chats_messages_arrive_in_the_order_they_were_accepted(
    client, operator_headers, sandbox_session
):
    # Jitter large against the interval: a slot per message would let later ones overtake.
    _pace(sandbox_session, min_interval=0.05, jitter=0.4)
    for i in range(1, 7):
        _send(client, operator_headers, sandbox_session, {"to": "081234567890", "text": str(i)})
    wait_for(lambda: len(_delivered(sandbox_session)) == 6, timeout=20, what="all six")
    assert [text for _, text in _delivered(sandbox_session)] == ["1", "2", "3", "4", "5", "6"]


def test_priority_goes_first_across_chats_but_never_overtakes_within_a_chat(
    client, operator_headers, sandbox_session, runtime
):
    # Hold sending while the messages are queued, so the order is the dispatcher's choice.
    runtime.live[sandbox_session].connected = False
    _pace(sandbox_session, enabled=False)
    _send(client, operator_headers, sandbox_session, {"to": "081111111111", "text": "a1"})
    _send(
        client,
        operator_headers,
        sandbox_session,
        {"to": "081111111111", "text": "a2-urgent", "priority": "high"},
    )
    _send(client, operator_headers, sandbox_session, {"to": "082222222222", "text": "b1"})
    _send(
        client,
        operator_headers,
        sandbox_session,
        {"to": "083333333333", "text": "c1-urgent", "priority": "high"},
    )
    runtime.live[sandbox_session].connected = True
    wait_for(lambda: len(_delivered(sandbox_session)) == 4, what="all four")
    order = [text for _, text in _delivered(sandbox_session)]
    assert order[0] == "c1-urgent"  # high priority first, across chats
    assert order.index("a1") < order.index("a2-urgent")  # never within a chat


def test_a_message_scheduled_for_later_does_not_hold_up_its_chat(
    client, operator_headers, sandbox_session
):
    _pace(sandbox_session, enabled=False)
    _send(
        client,
        operator_headers,
        sandbox_session,
        {"to": "081234567890", "text": "tomorrow", "send_at": "2099-01-01T00:00:00Z"},
    )
    _send(client, operator_headers, sandbox_session, {"to": "081234567890", "text": "now"})
    wait_for(lambda: _delivered(sandbox_session), what="the unscheduled one")
    assert [text for _, text in _delivered(sandbox_session)] == ["now"]


def test_sessions_share_the_dispatchers_workers(client, operator_headers, sandbox_session, runtime):
    """One dispatcher thread and its pool, however many sessions are live."""
    import threading

    _pace(sandbox_session, enabled=False)
    _send(client, operator_headers, sandbox_session, {"to": "081234567890", "text": "x"})
    wait_for(lambda: _delivered(sandbox_session), what="sent")
    names = [t.name for t in threading.enumerate()]
    assert not any(
        name.startswith("kabar-send-") and name[len("kabar-send-") :] == sandbox_session
        for name in names
    )
    assert names.count("kabar-outbox") == 1
    assert sandbox_session in runtime.dispatcher.sessions


def test_pacing_says_why_and_until_when_without_rescheduling_the_message(
    client, operator_headers, sandbox_session
):
    _pace(sandbox_session, min_interval=30, jitter=0)
    first = _send(client, operator_headers, sandbox_session, {"to": "081234567890", "text": "1"})
    second = _send(client, operator_headers, sandbox_session, {"to": "082222222222", "text": "2"})
    wait_for(lambda: _delivered(sandbox_session), what="the first")
    row = wait_for(
        lambda: (
            (
                r := db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.id == second))
            ).waiting
            and r
        ),
        what="a pacing reason",
    )
    assert row.waiting.startswith("pacing: minimum interval between messages (not before ")
    assert row.not_before is None and row.status == "queued"
    assert (
        db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.id == first)).status
        != "queued"
    )


def test_a_send_interrupted_after_the_transport_call_is_not_a_duplicate(
    client, operator_headers, sandbox_session, runtime
):
    """The crash window: the recipient got the message, but the row still says sending.
    After a restart the row goes again with the same WhatsApp id; the recipient still
    has it once, and the row ends sent."""
    session = db.session.get(WaSession, sandbox_session)
    session.desired_state = "stopped"
    db.session.commit()
    wait_for(lambda: sandbox_session not in runtime.live, what="the session to stop")
    row = OutboxMessage(
        session_id=sandbox_session,
        wa_id="3EB0CRASHCRASHCRASH000",
        to_jid="628123456789@s.whatsapp.net",
        kind="text",
        payload={"text": "once"},
        status="sending",
        attempts=1,
    )
    db.session.add(row)
    db.session.add(
        SandboxDelivery(
            session_id=sandbox_session,
            wa_id=row.wa_id,
            to_jid=row.to_jid,
            kind="text",
            content={"text": "once"},
        )
    )
    session.settings = {"pacing": {"enabled": False}}
    session.desired_state = "running"
    db.session.commit()
    wait_for(
        lambda: db.session.get(OutboxMessage, row.seq).status in ("sent", "delivered", "read"),
        what="the resend",
    )
    assert db.session.get(OutboxMessage, row.seq).attempts == 2
    deliveries = db.session.scalars(
        sa.select(SandboxDelivery).where(SandboxDelivery.wa_id == row.wa_id)
    ).all()
    assert len(deliveries) == 1


def test_with_pacing_off_a_burst_goes_in_batches_each_chat_in_order_and_once(
    client, operator_headers, sandbox_session, runtime, monkeypatch
):
    """Pacing off: the queued messages go several at a time (one per chat in each batch),
    each delivered once, each chat's in the order accepted, and every delivery stored
    before its batch is recorded sent."""
    from server.outbox import dispatcher
    from server.runtime import acks

    batches, checks = [], []
    real_batch, real_wait = dispatcher.SessionSender._send_batch, acks.Deferred.wait

    def spy_batch(self, candidates, session, pacing):
        batches.append(len(candidates))
        return real_batch(self, candidates, session, pacing)

    def spy_wait(self):
        real_wait(self)
        with db.engine.connect() as connection:  # what is committed at this moment
            checks.append(
                connection.execute(
                    sa.select(sa.func.count(SandboxDelivery.id), sa.func.count(OutboxMessage.seq))
                    .select_from(OutboxMessage)
                    .outerjoin(
                        SandboxDelivery,
                        sa.and_(
                            SandboxDelivery.session_id == OutboxMessage.session_id,
                            SandboxDelivery.wa_id == OutboxMessage.wa_id,
                        ),
                    )
                    .where(OutboxMessage.status == "sending")
                ).one()
            )

    monkeypatch.setattr(dispatcher.SessionSender, "_send_batch", spy_batch)
    monkeypatch.setattr(acks.Deferred, "wait", spy_wait)
    runtime.live[sandbox_session].connected = False
    _pace(sandbox_session, enabled=False)
    for i in range(4):
        for chat in ("081111111111", "082222222222", "083333333333"):
            _send(client, operator_headers, sandbox_session, {"to": chat, "text": f"{i}"})
    runtime.live[sandbox_session].connected = True
    wait_for(
        lambda: (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status.in_(("sent", "delivered", "read")))
            )
            == 12
        ),
        what="all twelve sent",
    )
    delivered = _delivered(sandbox_session)
    assert len(delivered) == 12
    for chat in ("6281111111111", "6282222222222", "6283333333333"):
        assert [text for to, text in delivered if to == chat] == ["0", "1", "2", "3"]
    assert batches and max(batches) == 3  # three chats: three at a time
    # At each batch's wait: every claimed row's delivery was already stored.
    assert checks and all(stored == claimed for stored, claimed in checks)


def test_a_batch_recorded_while_the_sink_holds_the_session_never_deadlocks_with_it(
    client, operator_headers, sandbox_session, runtime, monkeypatch
):
    """The sink locks a session's row (its lease fence) and then applies receipts to
    that session's outbox rows; the sender, recording a batch sent, must take the same
    row first, or each waits for the other (PostgreSQL aborts one: a group commit
    redone, or a batch left "sending"). Here a sink-like transaction holds the row
    while the sender records; its receipt update must go through, and every message
    ends sent."""
    import pytest

    from server.outbox import dispatcher
    from server.runtime import acks

    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    real_wait, real_fence = acks.Deferred.wait, dispatcher.fence
    outcome: list[str] = []
    holding, fencing = threading.Event(), threading.Event()

    engine = db.engine  # the thread below has no application context

    def sink_like() -> None:
        with engine.connect() as connection, connection.begin():
            connection.execute(sa.text("SET LOCAL deadlock_timeout = '100ms'"))  # its victim
            connection.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
            connection.execute(
                sa.text("SELECT id FROM wa_sessions WHERE id = :id FOR UPDATE"),
                {"id": sandbox_session},
            )
            holding.set()
            fencing.wait(10)  # the sender now records its batch: it takes the row next
            try:
                connection.execute(
                    sa.text("UPDATE outbox SET status = status WHERE session_id = :id"),
                    {"id": sandbox_session},
                )
                outcome.append("applied")
            except sa.exc.DBAPIError as exc:
                outcome.append(type(exc.orig).__name__)

    def spy_wait(self):
        real_wait(self)
        if not outcome and not holding.is_set():  # the first batch only
            threading.Thread(target=sink_like, daemon=True).start()
            holding.wait(10)

    def spy_fence(*args):
        if holding.is_set():
            fencing.set()
        return real_fence(*args)

    monkeypatch.setattr(acks.Deferred, "wait", spy_wait)
    monkeypatch.setattr(dispatcher, "fence", spy_fence)
    runtime.live[sandbox_session].connected = False
    _pace(sandbox_session, enabled=False)
    for chat in ("081111111111", "082222222222", "083333333333"):
        _send(client, operator_headers, sandbox_session, {"to": chat, "text": "hi"})
    runtime.live[sandbox_session].connected = True
    wait_for(lambda: outcome, timeout=20, what="the sink-like update")
    assert outcome == ["applied"]
    wait_for(
        lambda: (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status.in_(("sent", "delivered", "read")))
            )
            == 3
        ),
        what="all three sent",
    )
