"""Reply watches (POST /api/v1/reply-watches), as n8n's send-and-wait uses them: a real
runtime, a sandbox session, and a receiver on 127.0.0.1 that verifies every callback's
Standard Webhooks signature."""

from __future__ import annotations

import threading

import pytest

from server.runtime import heartbeat
from server.runtime.process import Runtime
from server.webhooks import delivery
from tests.server.conftest import wait_for
from tests.server.webhooks.receiver import Receiver
from tests.server.workflows.conftest import CONTACT, received


@pytest.fixture
def receiver(app, monkeypatch):
    """The callback's receiver, reachable through KABAR_WEBHOOK_ALLOW only (not through
    KABAR_FETCH_ALLOW, which stays empty)."""
    monkeypatch.setitem(app.config["KABAR"], "WEBHOOK_ALLOW", ["127.0.0.1"])
    monkeypatch.setattr(delivery, "BACKOFF_BASE", 0.05)
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    assert not receiver.errors, receiver.errors


@pytest.fixture
def watch(client, operator_headers, sandbox_session, receiver):
    def watch(status=201, headers=None, **fields):
        body = {
            "session_id": sandbox_session,
            "chat": CONTACT,
            "timeout": 3600,
            "callback_url": receiver.url,
            **fields,
        }
        response = client.post(
            "/api/v1/reply-watches", headers=headers or operator_headers, json=body
        )
        assert response.status_code == status, response.json
        if status in (200, 201):
            receiver.secrets.append(response.json["secret"])
        return response.json

    return watch


def _outcome(receiver):
    """The callback's result, once one came."""
    (callback,) = wait_for(lambda: receiver.delivered(), what="the callback")
    assert callback["json"]["type"] == "workflow.completed"
    return callback["json"]["data"]["result"]


def test_a_reply_resumes_the_watch_and_is_posted_signed(
    client, operator_headers, sandbox_session, watch, receiver, say, upload
):
    upload(
        operator_headers,
        {
            "name": "echo",
            "trigger": {"type": "message", "any": True},
            "start": "echo",
            "nodes": {"echo": {"type": "send", "params": {"text": "echo {{ trigger.text }}"}}},
        },
    )
    made = watch(prompt="Datang besok? (ya/tidak)")
    assert made["status"] == "waiting" and made["secret"].startswith("whsec_")
    wait_for(lambda: "Datang besok? (ya/tidak)" in received(sandbox_session), what="prompt")
    say(operator_headers, sandbox_session, " ya ")
    result = _outcome(receiver)
    assert result["outcome"] == "reply" and result["text"] == "ya"
    assert result["attempts"] == 1 and result["message"]["text"] == " ya "
    # The reply was the watch's alone: no trigger saw it.
    assert "echo  ya " not in received(sandbox_session)
    shown = client.get(f"/api/v1/reply-watches/{made['id']}", headers=operator_headers).json
    assert shown["status"] == "completed" and shown["outcome"] == "reply"
    wait_for(
        lambda: (
            client.get(f"/api/v1/reply-watches/{made['id']}", headers=operator_headers).json[
                "callback"
            ]["status"]
            == "delivered"
        ),
        what="the delivery recorded",
    )
    assert "secret" not in shown


def test_a_pattern_reprompts_then_gives_up_as_invalid(
    operator_headers, sandbox_session, watch, receiver, say
):
    watch(prompt="Nilai 1-5?", pattern="^[1-5]$", reprompt="Balas angka 1-5.", max_attempts=2)
    say(operator_headers, sandbox_session, "bagus")
    wait_for(lambda: "Balas angka 1-5." in received(sandbox_session), what="the reprompt")
    assert not receiver.delivered()
    say(operator_headers, sandbox_session, "sembilan")
    result = _outcome(receiver)
    assert result == {"outcome": "invalid", "text": "sembilan", "attempts": 2}
    assert received(sandbox_session) == ["Nilai 1-5?", "Balas angka 1-5."]


def test_a_matching_reply_after_a_wrong_one_carries_the_groups(
    operator_headers, sandbox_session, watch, receiver, say
):
    watch(pattern=r"(?i)(ya|tidak)", reprompt="ya atau tidak?")
    say(operator_headers, sandbox_session, "mungkin")
    wait_for(lambda: "ya atau tidak?" in received(sandbox_session), what="the reprompt")
    say(operator_headers, sandbox_session, "Tidak")
    result = _outcome(receiver)
    assert (result["outcome"], result["groups"], result["attempts"]) == ("reply", ["Tidak"], 2)


def test_nobody_answers_the_timeout_is_posted(watch, receiver):
    made = watch(prompt="Halo?", timeout=1)
    result = _outcome(receiver)
    assert result == {"outcome": "timeout", "attempts": 0}
    assert receiver.delivered()[0]["json"]["data"]["run_id"] == made["id"]


def test_the_same_idempotency_key_gives_the_same_watch(sandbox_session, watch):
    first = watch(prompt="Sekali saja", idempotency_key="exec-41/node-7/0")
    again = watch(status=200, prompt="Sekali saja", idempotency_key="exec-41/node-7/0")
    assert again["id"] == first["id"]
    other = watch(prompt="Lain", idempotency_key="exec-42/node-7/0")
    assert other["id"] != first["id"]
    wait_for(lambda: len(received(sandbox_session)) == 2, what="the prompts")
    assert received(sandbox_session) == ["Sekali saja", "Lain"]


def test_a_given_secret_signs_the_callback(operator_headers, sandbox_session, watch, receiver, say):
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    made = watch(secret=secret)
    assert made["secret"] == secret
    receiver.secrets[:] = [secret]
    say(operator_headers, sandbox_session, "ok")
    assert _outcome(receiver)["text"] == "ok"


def test_a_cancelled_watch_posts_nothing_and_lets_the_reply_pass(
    client, operator_headers, sandbox_session, watch, receiver, say, upload
):
    upload(
        operator_headers,
        {
            "name": "echo",
            "trigger": {"type": "message", "any": True},
            "start": "echo",
            "nodes": {"echo": {"type": "send", "params": {"text": "echo {{ trigger.text }}"}}},
        },
    )
    made = watch()
    cancelled = client.delete(f"/api/v1/reply-watches/{made['id']}", headers=operator_headers)
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    again = client.delete(f"/api/v1/reply-watches/{made['id']}", headers=operator_headers)
    assert again.status_code == 409 and again.json["code"] == "run_not_open"
    say(operator_headers, sandbox_session, "halo")
    wait_for(lambda: "echo halo" in received(sandbox_session), what="the trigger's echo")
    assert not receiver.delivered()


def test_a_private_callback_needs_webhook_allow(app, monkeypatch, watch, receiver):
    monkeypatch.setitem(app.config["KABAR"], "WEBHOOK_ALLOW", [])
    refused = watch(status=422)
    assert refused["code"] == "unsafe_url" and "KABAR_WEBHOOK_ALLOW" in refused["message"]


def test_bad_input_is_a_422_never_a_500(watch):
    assert watch(status=422, pattern="([")["errors"]["json"]["pattern"]
    assert watch(status=422, chat="not a phone")["errors"]["chat"]
    assert watch(status=422, timeout=0)["errors"]["json"]["timeout"]
    assert watch(status=422, secret="plain")["errors"]["json"]["secret"]
    assert watch(status=404, session_id="nope")["code"] == "session_not_found"


def test_another_tenant_sees_no_watch(client, make_user, login, operator_headers, watch):
    made = watch()
    stranger = login(make_user("operator"))
    for method in (client.get, client.delete):
        answer = method(f"/api/v1/reply-watches/{made['id']}", headers=stranger)
        assert answer.status_code == 404 and answer.json["code"] == "reply_watch_not_found"
    # …nor may they watch the operator's session.
    assert watch(status=404, headers=stranger)["code"] == "session_not_found"


def test_the_watch_endpoint_is_not_listed_and_gets_no_other_event(
    client, operator_headers, sandbox_session, watch, receiver, say
):
    watch(chat="6289999999999")
    say(operator_headers, sandbox_session, "not the watched chat")
    wait_for(
        lambda: (
            "not the watched chat"
            in [
                m.get("text")
                for m in client.get(
                    f"/api/v1/sessions/{sandbox_session}/messages", headers=operator_headers
                ).json.get("items", [])
            ]
        ),
        what="the message stored",
    )
    listed = client.get("/api/v1/webhooks", headers=operator_headers).json["items"]
    assert listed == []
    assert receiver.attempts() == 0


def test_the_built_in_workflow_cannot_be_replaced_or_deleted(client, admin_headers, watch):
    watch()
    replaced = client.post(
        "/api/v1/workflows",
        headers=admin_headers,
        json={"name": "reply-watch", "start": "x", "nodes": {"x": {"type": "end"}}},
    )
    assert replaced.status_code == 409 and replaced.json["code"] == "workflow_name_taken"
    deleted = client.delete("/api/v1/workflows/reply-watch", headers=admin_headers)
    assert deleted.status_code == 409


def test_a_watch_survives_a_runtime_restart(
    app, runtime, operator_headers, sandbox_session, watch, receiver, say, client
):
    watch(prompt="Masih di sana?")
    wait_for(lambda: received(sandbox_session), what="the prompt")
    old = next(t for t in threading.enumerate() if t.name == "test-runtime")
    runtime.request_stop()
    old.join(timeout=30)
    fresh = Runtime(app)
    thread = threading.Thread(target=fresh.run, name="test-runtime-2", daemon=True)
    thread.start()
    try:
        wait_for(lambda: heartbeat.state().alive, what="the new runtime's lease")
        wait_for(
            lambda: (
                client.get(f"/api/v1/sessions/{sandbox_session}", headers=operator_headers).json[
                    "status"
                ]
                == "connected"
            ),
            what="the session back",
        )
        say(operator_headers, sandbox_session, "ya")
        assert _outcome(receiver)["text"] == "ya"
    finally:
        fresh.request_stop()
        thread.join(timeout=30)
