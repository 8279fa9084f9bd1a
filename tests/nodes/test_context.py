"""LocalContext: the in-memory host that scripts and tests use."""

from __future__ import annotations

import pytest

from nodes import Context, HttpResponse, LocalContext, NodeContext, NodeError


def test_it_is_a_context():
    assert isinstance(LocalContext(), Context)


def test_sends_are_idempotent_by_key(ctx):
    first = ctx.send({"to": "1", "text": "a"}, idempotency_key="run:1:1")
    again = ctx.send({"to": "1", "text": "a"}, idempotency_key="run:1:1")
    other = ctx.send({"to": "1", "text": "a"})
    assert first == again != other
    assert len(ctx.sent) == 2


def test_node_context_keys_each_call_by_run_and_step(ctx):
    calls = []

    class Spy(LocalContext):
        def send(self, spec, *, session=None, idempotency_key=None):
            calls.append((session, idempotency_key))
            return {}

    node_ctx = NodeContext(
        Spy(),
        run_id="r1",
        node_id="n",
        step=4,
        attempt=1,
        trigger={"chat": "62811", "session": "s1"},
        vars={},
        scope={},
    )
    node_ctx.send({"to": "1"})
    node_ctx.send({"to": "1"}, session="s2")
    assert calls == [("s1", "r1:4:1"), ("s2", "r1:4:2")]
    assert node_ctx.chat == "62811"


def test_a_standing_clock_moves_only_when_told(ctx):
    start = ctx.now()
    assert ctx.advance(minutes=5) == ctx.now()
    assert (ctx.now() - start).total_seconds() == 300
    with pytest.raises(ValueError, match="needs a standing clock"):
        LocalContext().advance(seconds=1)


def test_http_goes_through_the_given_function(ctx):
    local = LocalContext(http=lambda method, url, **kw: HttpResponse.of_json({"u": url}))
    answer = local.http("GET", "https://x.org", headers={}, json=None, body=None, timeout=1)
    assert answer.json() == {"u": "https://x.org"}
    assert local.requests == [
        {
            "method": "GET",
            "url": "https://x.org",
            "headers": {},
            "json": None,
            "body": None,
            "timeout": 1,
        }
    ]


def test_call_workflow_explains_what_it_cannot_do(ctx):
    with pytest.raises(
        NodeError, match="no workflow named 'nope' \\(this LocalContext knows: none\\)"
    ):
        ctx.call_workflow("nope", {}, caller={})


def test_the_helpdesk_is_reached_as_the_runs_sender_with_a_key_per_call():
    calls = []

    def helpdesk(action, params, *, actor, idempotency_key=None):
        calls.append((action, params, actor, idempotency_key))
        return {"ticket": {"number": "BRT2409001"}}

    local = LocalContext(tickets=helpdesk)
    trigger = {
        "type": "message",
        "chat": "62811@s.whatsapp.net",
        "sender": "62811",
        "sender_name": "Budi",
        "session": "s1",
        "message_id": "3EB0AA",
    }
    node_ctx = NodeContext(
        local,
        run_id="r1",
        node_id="n",
        step=2,
        attempt=1,
        trigger=trigger,
        vars={},
        scope={"run": {"workflow": "helpdesk"}},
    )
    assert node_ctx.tickets("lookup", {"number": "x"}) == {"ticket": {"number": "BRT2409001"}}
    assert calls == [
        (
            "lookup",
            {"number": "x"},
            {
                "sender": "62811",
                "name": "Budi",
                "chat": "62811@s.whatsapp.net",
                "session": "s1",
                "message_id": "3EB0AA",
                "workflow": "helpdesk",
                "run_id": "r1",
            },
            "r1:2:1",
        )
    ]
    assert local.ticket_calls[0]["action"] == "lookup"


def test_without_a_gateway_the_helpdesk_says_what_is_missing(ctx):
    with pytest.raises(NodeError, match="ticket nodes need a Kabar gateway") as caught:
        ctx.tickets("lookup", {}, actor={})
    assert caught.value.retryable is False
