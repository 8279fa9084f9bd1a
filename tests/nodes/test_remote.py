"""nodes.remote against a fake gateway (httpx.MockTransport): what each operation asks the
REST API, how its errors become NodeError, and how the runner waits. The real gateway
is in tests/server/workflows/test_remote_scripts.py."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from nodes import (
    Context,
    NodeError,
    RemoteContext,
    RemoteRunner,
    WorkflowBuilder,
)
from tests.nodes.conftest import MONDAY_9_WIB

SID = "s" * 32
CHAT = "6281234567890"


def _json(status: int, body) -> httpx.Response:
    return httpx.Response(status, json=body)


def _error(status: int, code: str, message: str = "No.", **extra) -> httpx.Response:
    return _json(status, {"code": code, "message": message, "status": status, **extra})


def _queued(n: int = 1) -> httpx.Response:
    return _json(202, {"id": f"m{n}", "wa_id": f"3EB0{n}", "status": "queued", "to": CHAT})


class Gateway:
    """Answers by (method, path); a list of answers is used in turn, the last one stays."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.routes: dict[tuple[str, str], list] = {}
        self.on("GET", f"/api/v1/sessions/{SID}", _json(200, {"id": SID, "label": "Helpdesk"}))

    def on(self, method: str, path: str, *answers) -> None:
        self.routes[(method, path)] = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answers = self.routes.get((request.method, request.url.path))
        if not answers:
            return _error(404, "not_found", f"no route {request.url.path}")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def sent(self, path_end: str = "/messages") -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST" and r.url.path.endswith(path_end)]


@pytest.fixture
def gateway():
    return Gateway()


@pytest.fixture
def remote(gateway):
    ctx = RemoteContext(
        "http://gateway.test/", "kabar_key", session=SID, transport=httpx.MockTransport(gateway)
    )
    ctx.time = MONDAY_9_WIB  # a standing clock (LocalContext's), moved by the fake gateway
    yield ctx
    ctx.close()


def test_it_is_a_context(remote):
    assert isinstance(remote, Context)


def test_send_posts_the_spec_with_the_token_and_an_idempotency_key(remote, gateway):
    gateway.on("POST", f"/api/v1/sessions/{SID}/messages", _queued())
    answer = remote.send({"to": CHAT, "text": "halo"}, idempotency_key="run1:3:1")
    assert answer == {"id": "m1", "wa_id": "3EB01", "status": "queued", "to": CHAT, "session": SID}
    (request,) = gateway.sent()
    assert str(request.url) == f"http://gateway.test/api/v1/sessions/{SID}/messages"
    assert json.loads(request.content) == {"to": CHAT, "text": "halo"}
    assert request.headers["Authorization"] == "Bearer kabar_key"
    assert request.headers["Idempotency-Key"] == "remote:run1:3:1"
    assert remote.sent == [answer]
    remote.send({"to": CHAT, "text": "no key"})
    assert "Idempotency-Key" not in gateway.sent()[-1].headers


def test_a_retried_step_sends_with_the_same_key(remote, gateway):
    gateway.on(
        "POST",
        f"/api/v1/sessions/{SID}/messages",
        _error(503, "runtime_down", "The runtime is down."),
        _queued(),
    )
    workflow = WorkflowBuilder("hello").node("hi", "send", text="halo", retry={"max": 2}).build()
    run = RemoteRunner(remote).run(workflow, {"type": "manual", "chat": CHAT})
    assert run.status == "completed"
    first, second = gateway.sent()
    assert (
        first.headers["Idempotency-Key"]
        == second.headers["Idempotency-Key"]
        == f"remote:{run.id}:1:1"
    )
    assert run.outputs["hi"]["id"] == "m1"


@pytest.mark.parametrize(
    ("answer", "code", "retryable"),
    [
        (
            _error(
                422,
                "validation_error",
                "Some fields are missing or invalid; see errors.",
                errors={"to": ["Not a phone number."]},
            ),
            "validation_error",
            False,
        ),
        (_error(409, "idempotency_key_reused"), "idempotency_key_reused", False),
        (_error(403, "permission_denied"), "permission_denied", False),
        (_error(429, "rate_limited"), "rate_limited", True),
        (_error(500, "internal_error"), "internal_error", True),
        (_error(503, "runtime_down"), "runtime_down", True),
        (httpx.Response(502, text="<html>Bad gateway</html>"), "http_502", True),
        (httpx.ConnectError("connection refused"), "unreachable", True),
        (httpx.ReadTimeout("timed out"), "timeout", True),
    ],
)
def test_errors_become_node_errors_with_the_api_code(remote, gateway, answer, code, retryable):
    gateway.on("POST", f"/api/v1/sessions/{SID}/messages", answer)
    with pytest.raises(NodeError) as caught:
        remote.send({"to": CHAT, "text": "halo"})
    assert caught.value.data["code"] == code
    assert caught.value.retryable is retryable
    if code == "validation_error":
        assert caught.value.data["errors"] == {"to": ["Not a phone number."]}
        assert "(422 validation_error): Some fields are missing" in str(caught.value)
        assert "Not a phone number." in str(caught.value)


def test_an_answer_that_is_not_json_says_to_check_the_address(remote, gateway):
    gateway.on(
        "POST",
        f"/api/v1/sessions/{SID}/messages",
        httpx.Response(200, text="<html>Welcome to nginx</html>"),
    )
    with pytest.raises(NodeError, match="is http://gateway.test a Kabar gateway") as caught:
        remote.send({"to": CHAT, "text": "halo"})
    assert caught.value.data["code"] == "not_json" and not caught.value.retryable


def test_a_refused_send_takes_the_error_output_without_retrying(remote, gateway):
    gateway.on(
        "POST",
        f"/api/v1/sessions/{SID}/messages",
        _error(422, "validation_error", errors={"to": ["Not a phone number."]}),
    )
    workflow = (
        WorkflowBuilder("hello")
        .node("hi", "send", to="nope", text="halo", retry={"max": 3}, next={"error": "sorry"})
        .node("sorry", "set", variables={"code": "{{ hi.code }}"})
        .build()
    )
    run = RemoteRunner(remote).run(workflow, {"type": "manual"})
    assert run.status == "completed" and run.vars == {"code": "validation_error"}
    assert len(gateway.sent()) == 1


def test_a_session_may_be_named_by_label_and_is_looked_up_once(remote, gateway):
    gateway.on("GET", "/api/v1/sessions/Sales", _error(404, "session_not_found"))
    gateway.on(
        "GET",
        "/api/v1/sessions",
        _json(200, {"items": [{"id": SID, "label": "Helpdesk"}], "next_cursor": "c1"}),
        _json(200, {"items": [{"id": "t" * 32, "label": "Sales"}], "next_cursor": None}),
    )
    gateway.on("POST", f"/api/v1/sessions/{'t' * 32}/messages", _queued())
    remote.send({"to": CHAT, "text": "a"}, session="Sales")
    remote.send({"to": CHAT, "text": "b"}, session="Sales")
    lookups = [r for r in gateway.requests if r.method == "GET"]
    assert [(r.url.path, r.url.params.get("cursor")) for r in lookups] == [
        ("/api/v1/sessions/Sales", None),
        ("/api/v1/sessions", None),
        ("/api/v1/sessions", "c1"),
    ]
    assert len(gateway.sent()) == 2

    gateway.on("GET", "/api/v1/sessions/Nowhere", _error(404, "session_not_found"))
    with pytest.raises(NodeError, match="no session with this id or label") as caught:
        remote.send({"to": CHAT, "text": "c"}, session="Nowhere")
    assert not caught.value.retryable


def test_without_a_session_a_send_says_how_to_give_one(gateway):
    with (
        RemoteContext("http://gateway.test", "k", transport=httpx.MockTransport(gateway)) as ctx,
        pytest.raises(NodeError, match="RemoteContext\\(session=...\\)") as caught,
    ):
        ctx.send({"to": CHAT, "text": "a"})
    assert not caught.value.retryable


def test_broadcast_posts_lines_or_recipients(remote, gateway):
    gateway.on("POST", f"/api/v1/sessions/{SID}/broadcasts", _json(202, {"id": "b1", "total": 2}))
    answer = remote.broadcast(
        {"text": "Halo {name}"}, lines="0811|A\n0812|B", name="promo", idempotency_key="r:1:1"
    )
    assert answer == {"id": "b1", "total": 2, "status": "queued", "session": SID}
    remote.broadcast({"text": "Hi"}, recipients=[{"to": "0811", "name": "A", "vars": {}}])
    first, second = gateway.sent("/broadcasts")
    assert json.loads(first.content) == {
        "message": {"text": "Halo {name}"},
        "name": "promo",
        "lines": "0811|A\n0812|B",
    }
    assert first.headers["Idempotency-Key"] == "remote:r:1:1"
    assert json.loads(second.content)["recipients"] == [{"to": "0811", "name": "A", "vars": {}}]


def test_call_workflow_runs_the_gateways_workflow(remote, gateway):
    gateway.on(
        "POST", "/api/v1/workflows/lookup/runs", _json(201, {"id": "run9", "status": "completed"})
    )
    gateway.on(
        "GET",
        "/api/v1/runs/run9",
        _json(
            200,
            {
                "id": "run9",
                "status": "completed",
                "result": {"ticket": 7},
                "vars": {"a": 1},
                "error": None,
            },
        ),
    )
    answer = remote.call_workflow(
        "lookup", {"q": "x"}, caller={"run_id": "r", "chat": CHAT, "session": None}
    )
    assert answer == {
        "run_id": "run9",
        "status": "completed",
        "result": {"ticket": 7},
        "vars": {"a": 1},
        "error": None,
    }
    started = gateway.sent("/runs")[0]
    assert json.loads(started.content) == {"input": {"q": "x"}, "chat": CHAT, "session": SID}


def test_call_workflow_cancels_a_gateway_run_that_waits(remote, gateway):
    gateway.on(
        "POST",
        "/api/v1/workflows/survey/runs",
        _json(201, {"id": "run9", "status": "waiting", "wait": {"kind": "reply"}}),
    )
    gateway.on("POST", "/api/v1/runs/run9/cancel", _json(200, {"id": "run9"}))
    with pytest.raises(NodeError, match="finishes at once") as caught:
        remote.call_workflow("survey", {}, caller={})
    assert not caught.value.retryable
    assert gateway.sent("/cancel")


def test_call_workflow_prefers_the_workflows_given(gateway):
    child = WorkflowBuilder("child").node("done", "end", result="{{ trigger.input.n * 2 }}")
    with RemoteContext(
        "http://gateway.test",
        "k",
        session=SID,
        workflows={"child": child.build()},
        transport=httpx.MockTransport(gateway),
    ) as ctx:
        answer = ctx.call_workflow("child", {"n": 21}, caller={})
    assert answer["status"] == "completed" and answer["result"] == 42
    assert not gateway.requests


def _survey(**params):
    return (
        WorkflowBuilder("survey")
        .node(
            "ask",
            "wait_for_reply",
            prompt="1-5?",
            timeout=60,
            pattern="^[1-5]$",
            reprompt="Just a digit, please.",
            **params,
            next={"reply": "thanks", "timeout": "bye", "invalid": "bye"},
        )
        .node("thanks", "send", text="Thanks for {{ ask.text }}")
        .node("bye", "send", text="Bye")
        .build()
    )


def _message(n: int, text: str) -> dict:
    return {
        "id": f"in{n}",
        "wa_id": f"WA{n}",
        "direction": "in",
        "chat_jid": f"{CHAT}@s.whatsapp.net",
        "chat_phone": CHAT,
        "sender_jid": f"{CHAT}@s.whatsapp.net",
        "sender_phone": CHAT,
        "sender_name": "Budi",
        "is_group": False,
        "kind": "text",
        "text": text,
        "timestamp": "2025-01-06T02:00:00",
    }


def _page(*items) -> httpx.Response:
    return _json(200, {"items": list(items), "next_cursor": None})


def test_the_runner_long_polls_for_the_reply_after_the_wait_began(remote, gateway):
    sends = iter(range(1, 10))
    gateway.on("POST", f"/api/v1/sessions/{SID}/messages", lambda _r: _queued(next(sends)))
    gateway.on(
        "GET",
        f"/api/v1/sessions/{SID}/chats/{CHAT}",
        _json(200, {"jid": CHAT, "last_message": {"id": "old"}}),
    )
    polls = f"/api/v1/sessions/{SID}/chats/{CHAT}/messages"
    gateway.on("GET", polls, _page(), _page(_message(1, "nine")), _page(_message(2, "5")))
    run = RemoteRunner(remote).run(_survey(), {"type": "manual", "chat": CHAT})

    assert run.status == "completed"
    assert [json.loads(r.content)["text"] for r in gateway.sent()] == [
        "1-5?",
        "Just a digit, please.",
        "Thanks for 5",
    ]
    asked = [dict(r.url.params) for r in gateway.requests if r.url.path == polls]
    # After the first wait began (the chat's newest message), then after each answer taken.
    assert [(q["after"], q["direction"], q["limit"]) for q in asked] == [
        ("old", "in", "1"),
        ("old", "in", "1"),
        ("in1", "in", "1"),
    ]
    assert float(asked[0]["wait"]) == 30
    assert run.outputs["ask"]["message"]["sender_name"] == "Budi"
    assert run.outputs["ask"]["message"]["message_id"] == "WA2"
    assert run.outputs["ask"]["message"]["session"] == SID


def test_a_chat_without_messages_waits_for_its_first(remote, gateway):
    gateway.on("POST", f"/api/v1/sessions/{SID}/messages", _queued())
    gateway.on("GET", f"/api/v1/sessions/{SID}/chats/{CHAT}", _error(404, "chat_not_found"))
    polls = f"/api/v1/sessions/{SID}/chats/{CHAT}/messages"
    gateway.on("GET", polls, _page(_message(1, "4")))
    run = RemoteRunner(remote).run(_survey(), {"type": "manual", "chat": CHAT})
    assert run.status == "completed" and run.outputs["ask"]["text"] == "4"
    (poll,) = [r for r in gateway.requests if r.url.path == polls]
    assert "after" not in poll.url.params


def test_no_reply_before_the_timeout_resumes_with_timeout(remote, gateway):
    gateway.on("POST", f"/api/v1/sessions/{SID}/messages", _queued())
    gateway.on("GET", f"/api/v1/sessions/{SID}/chats/{CHAT}", _error(404, "chat_not_found"))
    waited = []

    def nothing_yet(request):  # the gateway holds the request for ?wait= seconds
        waited.append(float(request.url.params["wait"]))
        remote.advance(seconds=float(request.url.params["wait"]))
        return _page()

    gateway.on("GET", f"/api/v1/sessions/{SID}/chats/{CHAT}/messages", nothing_yet)
    run = RemoteRunner(remote).run(_survey(), {"type": "manual", "chat": CHAT})
    assert run.status == "completed"
    assert [json.loads(r.content)["text"] for r in gateway.sent()] == ["1-5?", "Bye"]
    assert waited == [30, 30]  # the 60 s timeout, in two long-polls


def test_the_runner_rides_out_gateway_hiccups_but_not_refusals(remote, gateway):
    gateway.on("POST", f"/api/v1/sessions/{SID}/messages", _queued())
    gateway.on("GET", f"/api/v1/sessions/{SID}/chats/{CHAT}", _error(404, "chat_not_found"))
    polls = f"/api/v1/sessions/{SID}/chats/{CHAT}/messages"
    gateway.on(
        "GET",
        polls,
        httpx.ConnectError("refused"),
        _error(503, "unavailable"),
        _page(_message(1, "3")),
    )
    slept = []
    run = RemoteRunner(remote, sleep=slept.append).run(_survey(), {"type": "manual", "chat": CHAT})
    assert run.status == "completed" and slept == [2.0, 2.0]

    gateway.on("GET", polls, _error(401, "token_expired", "Log in again."))
    with pytest.raises(NodeError, match="token_expired"):
        RemoteRunner(remote).run(_survey(), {"type": "manual", "chat": CHAT})


def test_a_delay_sleeps_here_until_its_time(remote, gateway):
    gateway.on("POST", f"/api/v1/sessions/{SID}/messages", _queued())
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        remote.advance(seconds=seconds)

    workflow = (
        WorkflowBuilder("later")
        .node("pause", "delay", seconds=90, next="hi")
        .node("hi", "send", text="later")
        .build()
    )
    waits = []
    run = RemoteRunner(remote, sleep=sleep, on_wait=lambda r: waits.append(r.wait["kind"])).run(
        workflow, {"type": "manual", "chat": CHAT}
    )
    assert run.status == "completed" and slept == [90] and waits == ["until"]
    assert run.finished_at == (MONDAY_9_WIB + timedelta(seconds=90)).isoformat()
    assert len(gateway.sent()) == 1
