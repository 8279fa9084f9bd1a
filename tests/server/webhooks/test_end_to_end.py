"""Webhooks with the real runtime and a sandbox session: a virtual contact speaks, a
receiver that verifies every signature hears it — through failures and a restart, in
order per chat — and its answers act on WhatsApp."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import sqlalchemy as sa

from server.models import SandboxDelivery, StoredEvent, WebhookDelivery, db
from server.runtime import heartbeat
from server.runtime.process import Runtime
from tests.server.conftest import wait_for

CONTACT = "6281234567890"


def _say(client, headers, session_id, text, sender=CONTACT):
    response = client.post(
        f"/api/v1/sandbox/sessions/{session_id}/messages",
        headers=headers,
        json={"from": sender, "name": "Budi", "text": text},
    )
    assert response.status_code == 201, response.json


def _sandbox_texts(session_id):
    return [
        d.content["text"]
        for d in db.session.scalars(
            sa.select(SandboxDelivery)
            .where(SandboxDelivery.session_id == session_id)
            .order_by(SandboxDelivery.id)
        )
    ]


def test_a_contact_message_arrives_signed(
    client, operator_headers, sandbox_session, receiver, make_hook
):
    make_hook(operator_headers, sandbox_session, events=["message.received"])
    _say(client, operator_headers, sandbox_session, "halo")
    (request,) = wait_for(lambda: receiver.delivered("message.received"), what="a delivery")
    body = request["json"]
    assert body["session"]["id"] == sandbox_session
    message = body["data"]["message"]
    assert message["text"] == "halo"
    assert message["sender"] == {
        "jid": f"{CONTACT}@s.whatsapp.net",
        "phone": CONTACT,
        "lid": None,
        "name": "Budi",
    }
    stored = db.session.scalar(sa.select(StoredEvent).where(StoredEvent.id == body["id"]))
    assert stored.type == "message.received"
    assert {k.lower(): v for k, v in request["headers"].items()}["webhook-id"] == stored.id


def test_a_contact_adding_the_session_to_a_group_arrives_signed(
    client, operator_headers, sandbox_session, receiver, make_hook
):
    make_hook(operator_headers, sandbox_session, events=["group.joined"])
    group = "120363012345678901@g.us"
    said = client.post(
        f"/api/v1/sandbox/sessions/{sandbox_session}/messages",
        headers=operator_headers,
        json={"from": CONTACT, "name": "Budi", "text": "halo", "group": group},
    )
    assert said.status_code == 201, said.json
    (request,) = wait_for(lambda: receiver.delivered("group.joined"), what="a delivery")
    data = request["json"]["data"]
    assert (data["group"]["jid"], data["name"]) == (group, "Sandbox group 8901")
    assert data["by"] == {
        "jid": f"{CONTACT}@s.whatsapp.net",
        "phone": CONTACT,
        "lid": None,
        "name": "Budi",
    }
    assert not receiver.errors  # every delivery verified


def _restart(app, runtime: Runtime) -> tuple[Runtime, threading.Thread]:
    """Stop the fixture's runtime and start a new one, as `kabar run` would."""
    old = next(t for t in threading.enumerate() if t.name == "test-runtime")
    runtime.request_stop()
    old.join(timeout=30)
    assert not old.is_alive()
    fresh = Runtime(app)
    thread = threading.Thread(target=fresh.run, name="test-runtime-2", daemon=True)
    thread.start()
    wait_for(lambda: heartbeat.state().alive, what="the new runtime's lease")
    return fresh, thread


def test_failures_and_a_restart_lose_nothing_and_keep_order(
    app, client, operator_headers, sandbox_session, runtime, receiver, make_hook
):
    receiver.answer = lambda _payload: (503, b"busy")
    make_hook(operator_headers, sandbox_session, events=["message.received"])
    said = [
        ("A1", "6281111111101"),
        ("B1", "6281111111102"),
        ("A2", "6281111111101"),
        ("B2", "6281111111102"),
        ("A3", "6281111111101"),
    ]
    for text, sender in said:
        _say(client, operator_headers, sandbox_session, text, sender=sender)
    wait_for(lambda: receiver.attempts() >= 4, what="failed attempts")
    fresh, thread = _restart(app, runtime)
    try:
        receiver.answer = lambda _payload: (200, b"")
        wait_for(lambda: len(receiver.delivered()) >= 5, timeout=30, what="every event")
        texts = [r["json"]["data"]["message"]["text"] for r in receiver.delivered()]
        assert sorted(texts) == sorted(t for t, _ in said)  # none lost, none twice
        assert [t for t in texts if t.startswith("A")] == ["A1", "A2", "A3"]
        assert [t for t in texts if t.startswith("B")] == ["B1", "B2"]
        wait_for(
            lambda: (
                db.session.scalars(sa.select(WebhookDelivery.status)).all() == ["delivered"] * 5
            ),
            what="every delivery recorded as delivered",
        )
    finally:
        fresh.request_stop()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_410_disables_the_endpoint(client, operator_headers, sandbox_session, receiver, make_hook):
    receiver.answer = lambda _payload: (410, b"")
    hook = make_hook(operator_headers, sandbox_session, events=["message.received"])
    _say(client, operator_headers, sandbox_session, "halo")
    url = f"/api/v1/webhooks/{hook['id']}"

    def disabled():
        endpoint = client.get(url, headers=operator_headers).json
        return None if endpoint["enabled"] else endpoint

    assert "410" in wait_for(disabled, what="the endpoint disabled")["paused_reason"]


def test_replay_one_delivery_and_all_failed_since(
    app, client, operator_headers, sandbox_session, receiver, make_hook, monkeypatch
):
    hook = make_hook(operator_headers, sandbox_session, events=["message.received"])
    base = f"/api/v1/webhooks/{hook['id']}"
    _say(client, operator_headers, sandbox_session, "satu")
    (first,) = wait_for(
        lambda: client.get(f"{base}/deliveries?status=delivered", headers=operator_headers).json[
            "items"
        ],
        what="the first delivery",
    )
    assert first["attempt_log"][0]["status_code"] == 200
    replayed = client.post(
        f"/api/v1/webhooks/deliveries/{first['id']}/replay", headers=operator_headers
    )
    assert replayed.status_code == 202 and replayed.json["replay_of"] == first["id"]
    wait_for(lambda: len(receiver.delivered()) == 2, what="the replay")
    one, two = receiver.delivered()
    assert one["json"]["id"] == two["json"]["id"]  # the same event: receivers can dedupe

    since = datetime.now(UTC).isoformat()
    receiver.answer = lambda _payload: (500, b"")
    monkeypatch.setitem(app.config["KABAR"], "WEBHOOK_MAX_AGE_HOURS", 0)  # give up at once
    for text in ("dua", "tiga"):
        _say(client, operator_headers, sandbox_session, text)
    wait_for(
        lambda: (
            len(
                client.get(f"{base}/deliveries?status=dead", headers=operator_headers).json["items"]
            )
            == 2
        ),
        what="two dead deliveries",
    )
    monkeypatch.setitem(app.config["KABAR"], "WEBHOOK_MAX_AGE_HOURS", 24)
    receiver.answer = lambda _payload: (200, b"")
    answer = client.post(
        f"{base}/replay", headers=operator_headers, json={"since": since, "status": "dead"}
    )
    assert answer.status_code == 202 and answer.json == {"replayed": 2}
    wait_for(lambda: len(receiver.delivered()) == 4, what="the replayed deliveries")
    assert [r["json"]["data"]["message"]["text"] for r in receiver.delivered()[2:]] == [
        "dua",
        "tiga",
    ]
    again = client.post(
        f"{base}/replay", headers=operator_headers, json={"since": since, "status": "all"}
    )
    assert again.json == {"replayed": 0}  # replayed ones are not replayed twice


def test_a_reply_action_answers_the_contact(
    client, operator_headers, sandbox_session, receiver, make_hook
):
    receiver.answer = lambda p: (200, {"actions": [{"type": "reply", "text": "pong"}]})
    make_hook(operator_headers, sandbox_session, events=["message.received"])
    _say(client, operator_headers, sandbox_session, "ping")
    wait_for(lambda: _sandbox_texts(sandbox_session) == ["pong"], what="the reply sent")
    delivery = db.session.scalars(sa.select(SandboxDelivery)).one()
    assert delivery.to_jid == f"{CONTACT}@s.whatsapp.net"


def test_an_invalid_action_is_recorded_and_the_next_runs(
    client, operator_headers, sandbox_session, receiver, make_hook
):
    receiver.answer = lambda p: (
        200,
        {"actions": [{"type": "explode"}, {"type": "reply", "text": "second", "quote": True}]},
    )
    hook = make_hook(operator_headers, sandbox_session, events=["message.received"])
    _say(client, operator_headers, sandbox_session, "ping")
    wait_for(lambda: _sandbox_texts(sandbox_session) == ["second"], what="the valid action")
    bad, good = wait_for(
        lambda: client.get(
            f"/api/v1/webhooks/{hook['id']}/deliveries", headers=operator_headers
        ).json["items"][0]["actions_result"],
        what="the actions' results",
    )
    assert (bad["ok"], bad["error"], bad["type"]) == (False, "invalid_action", "explode")
    assert good["ok"] and good["type"] == "reply"
    sent = db.session.scalars(sa.select(SandboxDelivery)).one()
    inbound = receiver.delivered()[0]["json"]["data"]["message"]["id"]
    assert sent.content["quoted_id"] == inbound
