"""One delivery at a time, driven by hand (no runtime): signing, retries, order, pausing,
the maximum age, redirects and the SSRF guard at send time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from server import eventlog, sessions
from server.auth import Principal
from server.events import InboundMessage, MessageReceived, Party
from server.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, db
from server.webhooks import delivery, dispatcher, endpoints, signing
from server.webhooks.signing import USER_AGENT


@pytest.fixture
def owner(make_user):
    return make_user("operator")


@pytest.fixture
def session(owner):
    return sessions.create(
        Principal.for_user(owner), label="s", transport="sandbox", auto_start=False
    )


@pytest.fixture
def endpoint(owner, session, receiver):
    row = WebhookEndpoint(
        owner_id=owner.id,
        url=receiver.url,
        session_id=session.id,
        events=["message.received"],
        headers={"X-Tenant": "rt05"},
        secret=signing.new_secret(),
    )
    db.session.add(row)
    db.session.commit()
    receiver.secrets.append(row.secret)
    return row


def _say(session, text, chat="628123"):
    party = Party(jid=f"{chat}@s.whatsapp.net", phone=chat)
    eventlog.record(
        MessageReceived(
            message=InboundMessage(
                id=f"3EB0{text}",
                chat=party,
                sender=party,
                timestamp=datetime.now(UTC),
                kind="text",
                text=text,
            )
        ),
        session,
    )
    db.session.commit()


def _run_due() -> list[int]:
    """What the worker does in one step, on this thread."""
    ran = []
    for delivery_id in dispatcher.due(10):
        assert dispatcher.claim(delivery_id)
        delivery.attempt(delivery_id)
        ran.append(delivery_id)
    return ran


def _deliveries():
    db.session.expire_all()
    return db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()


def test_a_delivery_is_signed_and_recorded(endpoint, session, receiver):
    _say(session, "halo")
    assert len(_run_due()) == 1
    (request,) = receiver.delivered()
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["user-agent"] == USER_AGENT
    assert headers["content-type"] == "application/json"
    assert headers["x-tenant"] == "rt05"
    assert headers["webhook-id"] == request["json"]["id"]
    assert request["json"]["type"] == "message.received"
    assert request["json"]["data"]["message"]["sender"]["phone"] == "628123"
    (row,) = _deliveries()
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 200)
    assert row.delivered_at is not None and row.latency_ms is not None
    (attempt,) = db.session.scalars(sa.select(WebhookAttempt)).all()
    assert (attempt.attempt, attempt.status_code, attempt.response) == (1, 200, "ok")


def test_failures_retry_with_backoff_and_keep_order_per_chat(
    endpoint, session, receiver, monkeypatch
):
    monkeypatch.setattr(delivery, "BACKOFF_BASE", 60.0)
    monkeypatch.setattr(delivery, "BACKOFF_CAP", 3600.0)
    receiver.answer = lambda p: (503, b"x" * 5000)
    _say(session, "A1", chat="6281")
    _say(session, "A2", chat="6281")
    _say(session, "B1", chat="6282")
    first = _run_due()
    assert len(first) == 2  # A1 and B1; A2 waits behind A1
    a1, a2, b1 = _deliveries()
    assert (a1.status, a2.status, b1.status) == ("failed", "pending", "failed")
    assert a1.next_at > datetime.now(UTC) + timedelta(seconds=40)
    assert len(db.session.get(WebhookAttempt, 1).response) == 1024  # the snippet is cut
    assert dispatcher.due(10) == []  # nothing due before next_at, A2 still blocked
    a1.status = "dead"  # dead deliveries hold nothing back
    db.session.commit()
    receiver.answer = lambda p: (200, b"")
    assert dispatcher.due(10) == [a2.id]


def test_backoff_doubles_with_jitter_up_to_the_cap(monkeypatch):
    monkeypatch.setattr(delivery, "BACKOFF_BASE", 5.0)
    monkeypatch.setattr(delivery, "BACKOFF_CAP", 3600.0)
    for attempts, base in ((1, 5), (2, 10), (3, 20), (4, 40)):
        assert base * 0.8 <= delivery.backoff(attempts) <= base * 1.2
    assert delivery.backoff(30) <= 3600 * 1.2


def test_410_disables_the_endpoint(endpoint, session, receiver):
    receiver.answer = lambda p: (410, b"gone")
    _say(session, "halo")
    _run_due()
    db.session.expire_all()
    assert not endpoint.enabled and "410" in endpoint.paused_reason
    _say(session, "again")  # a disabled endpoint gets no new deliveries
    assert len(_deliveries()) == 1 and dispatcher.due(10) == []
    receiver.answer = lambda p: (200, b"")
    endpoints.update(endpoint, enabled=True)  # enabling resumes what waited
    db.session.execute(sa.update(WebhookDelivery).values(next_at=datetime.now(UTC)))
    db.session.commit()
    _run_due()
    assert [d.status for d in _deliveries()] == ["delivered"]


def _run_probes() -> list[int]:
    """What the worker does for paused endpoints in one step, on this thread."""
    ran = []
    for endpoint_id, delivery_id in dispatcher.probes(10):
        assert dispatcher.claim_probe(endpoint_id, delivery_id)
        delivery.attempt(delivery_id)
        ran.append(delivery_id)
    return ran


def _probe_time_comes(endpoint) -> None:
    db.session.execute(
        sa.update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint.id)
        .values(paused_until=datetime.now(UTC) - timedelta(seconds=1))
    )
    db.session.commit()


def test_failures_in_a_row_pause_and_success_resets(app, endpoint, session, receiver, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "WEBHOOK_PAUSE_AFTER", 2)
    monkeypatch.setattr(delivery, "BACKOFF_BASE", 600.0)  # no retry during the test
    monkeypatch.setattr(delivery, "BACKOFF_CAP", 3600.0)
    receiver.answer = lambda p: (500, b"")
    _say(session, "one", chat="6281")
    _run_due()
    db.session.expire_all()
    assert endpoint.consecutive_failures == 1 and endpoint.paused_until is None
    receiver.answer = lambda p: (200, b"")
    _say(session, "two", chat="6282")
    _run_due()
    db.session.expire_all()
    assert endpoint.consecutive_failures == 0
    receiver.answer = lambda p: (500, b"")
    _say(session, "three", chat="6283")
    _say(session, "four", chat="6284")
    _run_due()
    db.session.expire_all()
    assert endpoint.enabled and endpoint.paused_until > datetime.now(UTC)
    assert endpoint.paused_reason.startswith("Paused after 2 failed deliveries")


def test_a_paused_endpoint_still_queues_every_event_and_probes_itself_back(
    app, endpoint, session, receiver, monkeypatch
):
    """The receiver is down: the endpoint pauses, events go on being queued; a probe that
    fails pauses it again; the first probe that gets through sends everything, in order
    per chat, without anyone enabling it by hand."""
    monkeypatch.setitem(app.config["KABAR"], "WEBHOOK_PAUSE_AFTER", 3)
    monkeypatch.setattr(delivery, "BACKOFF_BASE", 600.0)  # retries only when resumed
    monkeypatch.setattr(delivery, "BACKOFF_CAP", 3600.0)
    receiver.answer = lambda p: (503, b"")
    for chat in ("6281", "6282", "6283"):
        _say(session, f"{chat}-1", chat=chat)
    _run_due()
    db.session.expire_all()
    assert endpoint.enabled and endpoint.paused_until is not None
    for chat in ("6281", "6282", "6283", "6284"):  # during the outage
        _say(session, f"{chat}-2", chat=chat)
    assert len(_deliveries()) == 7  # every event is queued
    assert dispatcher.due(10) == [] and _run_probes() == []  # held back until probe time

    _probe_time_comes(endpoint)
    assert len(_run_probes()) == 1 and receiver.attempts() == 4  # one probe, failed
    db.session.expire_all()
    assert endpoint.paused_until > datetime.now(UTC)  # paused again
    assert _run_probes() == []  # one probe at a time

    receiver.answer = lambda p: (200, b"")  # the receiver is back
    _probe_time_comes(endpoint)
    assert len(_run_probes()) == 1
    db.session.expire_all()
    assert endpoint.paused_until is None and endpoint.paused_reason is None
    assert endpoint.consecutive_failures == 0
    while _run_due():  # the failed ones go at once, not at their backoff time
        pass
    assert [d.status for d in _deliveries()] == ["delivered"] * 7
    texts = [r["json"]["data"]["message"]["text"] for r in receiver.delivered()]
    assert len(texts) == 7
    for chat in ("6281", "6282", "6283"):
        assert texts.index(f"{chat}-1") < texts.index(f"{chat}-2")


def test_replay_since_covers_events_never_queued(app, endpoint, session, receiver):
    _say(session, "before")
    _run_due()
    endpoints.update(endpoint, enabled=False)
    _say(session, "while disabled", chat="6281")
    _say(session, "while disabled too", chat="6281")
    assert len(_deliveries()) == 1  # a disabled endpoint is not sent anything…
    endpoints.update(endpoint, enabled=True)
    since = datetime.now(UTC) - timedelta(hours=1)
    assert endpoints.replay_since(endpoint, since=since) == 2  # …but a replay covers them
    assert endpoints.replay_since(endpoint, since=since) == 0  # and only once
    while _run_due():
        pass
    texts = [r["json"]["data"]["message"]["text"] for r in receiver.delivered()]
    assert texts == ["before", "while disabled", "while disabled too"]


def test_past_the_maximum_age_a_delivery_is_dead(app, endpoint, session, receiver, monkeypatch):
    receiver.answer = lambda p: (500, b"")
    _say(session, "late")
    monkeypatch.setitem(app.config["KABAR"], "WEBHOOK_MAX_AGE_HOURS", 0)
    _run_due()
    assert [d.status for d in _deliveries()] == ["dead"]
    _say(session, "never tried")
    db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.status == "pending")
        .values(created_at=datetime.now(UTC) - timedelta(hours=1))
    )
    db.session.commit()
    assert dispatcher.expire(0) == 1
    assert [d.status for d in _deliveries()] == ["dead", "dead"]


def test_redirects_are_not_followed(endpoint, session, receiver):
    receiver.answer = lambda p: (302, b"")
    _say(session, "halo")
    _run_due()
    (row,) = _deliveries()
    assert row.status == "failed" and "not followed" in row.last_error
    assert receiver.attempts() == 1


def test_the_address_is_checked_at_send_time(app, endpoint, session, receiver, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "FETCH_ALLOW", [])
    _say(session, "halo")
    _run_due()
    (row,) = _deliveries()
    assert row.status == "failed" and row.last_error.startswith("unsafe_url")
    assert receiver.attempts() == 0


def test_interrupted_deliveries_go_again(endpoint, session):
    _say(session, "halo")
    (row,) = _deliveries()
    assert dispatcher.claim(row.id)
    assert not dispatcher.claim(row.id)  # never handed out twice
    assert dispatcher.due(10) == []  # delivering: nothing else of that chat goes either
    assert dispatcher.requeue_interrupted() == 1
    assert dispatcher.due(10) == [row.id]


def test_an_unreachable_receiver_is_a_failed_attempt(app, endpoint, session):
    endpoint.url = "http://127.0.0.1:9/closed"
    db.session.commit()
    _say(session, "halo")
    _run_due()
    (row,) = _deliveries()
    assert row.status == "failed" and row.last_status_code is None
    assert "connect" in row.last_error
    assert db.session.get(WebhookEndpoint, endpoint.id).consecutive_failures == 1


def test_the_worker_sends_chats_side_by_side_each_in_order(app, endpoint, session, receiver):
    """Through the runtime's worker and its pool: every chat's messages arrive in order,
    no more than ``per_endpoint`` of one endpoint are out at once, and a stop right after
    the last answer still records it (nothing left ``delivering`` to go twice)."""
    chats = ("6281", "6282", "6283")
    for n in range(4):
        for chat in chats:
            _say(session, f"{chat}-{n}", chat=chat)
    worker = dispatcher.WebhookWorker(app, pool_size=4, per_endpoint=2)
    out = []
    start = worker._start

    def counted(jobs):
        start(jobs)
        out.append(worker.out[endpoint.id])

    worker._start = counted
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while len(receiver.delivered()) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop()
    texts = [r["json"]["data"]["message"]["text"] for r in receiver.delivered()]
    for chat in chats:
        assert [t for t in texts if t.startswith(chat)] == [f"{chat}-{n}" for n in range(4)]
    assert max(out) <= 2
    rows = _deliveries()
    assert [(row.status, row.attempts) for row in rows] == [("delivered", 1)] * 12
