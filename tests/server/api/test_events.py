"""/api/v1/events: the live stream (SSE) and the JSON log — filters, resuming, tenancy."""

from __future__ import annotations

import json

import pytest

from server import event_stream, eventlog, sessions
from server.auth import Principal
from server.events import SessionStatus
from server.models import db

STREAM = "/api/v1/events"


def _read(response, until=None) -> tuple[list[dict], list[str]]:
    """SSE messages (id, event, data) and comments, until ``until(messages)`` or the end."""
    messages, comments, buffer = [], [], ""
    for chunk in response.response:
        buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            message = {}
            for line in block.split("\n"):
                field, _, value = line.partition(": ")
                if field == "":
                    comments.append(value)
                elif field in ("id", "event", "data"):
                    message[field] = json.loads(value) if field == "data" else value
            if message:
                messages.append(message)
        if until is not None and until(messages):
            break
    response.close()
    return messages, comments


def _texts(messages):
    return [
        m["data"]["data"]["message"]["text"] for m in messages if m["event"] == "message.received"
    ]


def _say(client, headers, session_id, text):
    response = client.post(
        f"/api/v1/sandbox/sessions/{session_id}/messages",
        headers=headers,
        json={"from": "0812-3456-789", "text": text},
    )
    assert response.status_code == 201, response.json


@pytest.fixture
def short_streams(app, monkeypatch):
    """Streams end after a few seconds: the tests' deadline."""
    monkeypatch.setitem(app.config["KABAR"], "EVENTS_STREAM_SECONDS", 8)
    monkeypatch.setattr(event_stream, "POLL_SECONDS", 0.05)


def test_a_message_arrives_live_and_resuming_skips_what_was_seen(
    client, operator_headers, sandbox_session, short_streams
):
    stream = client.get(f"{STREAM}?type=message.", headers=operator_headers, buffered=False)
    assert stream.status_code == 200
    assert stream.mimetype == "text/event-stream"
    assert stream.headers["Cache-Control"] == "no-cache"
    _say(client, operator_headers, sandbox_session, "satu")
    messages, comments = _read(stream, until=_texts)
    (seen,) = messages
    assert comments[0] == "connected"
    assert seen["event"] == "message.received"
    envelope = seen["data"]
    assert envelope["type"] == "message.received" and envelope["version"] == 1
    assert envelope["session"]["id"] == sandbox_session
    assert envelope["data"]["message"]["sender"]["phone"] == "628123456789"

    _say(client, operator_headers, sandbox_session, "dua")  # while nobody listens
    resumed = client.get(
        f"{STREAM}?type=message.received",
        buffered=False,
        headers={**operator_headers, "Last-Event-ID": seen["id"]},
    )
    messages, _ = _read(resumed, until=_texts)
    assert _texts(messages) == ["dua"]
    assert int(messages[0]["id"]) > int(seen["id"])
    everything, _ = _read(
        client.get(
            f"{STREAM}?after=0&type=message.,session.", headers=operator_headers, buffered=False
        ),
        until=lambda m: len(_texts(m)) == 2,
    )
    assert _texts(everything) == ["satu", "dua"]
    assert any(m["event"] == "session.status" for m in everything)


def test_only_my_sessions_events(
    app, client, operator, operator_headers, admin_headers, make_user, monkeypatch
):
    monkeypatch.setitem(app.config["KABAR"], "EVENTS_STREAM_SECONDS", 0.3)
    # (ids kept: the stream releases the database session between polls, and in a test
    # that is the test's own session)
    mine = sessions.create(
        Principal.for_user(operator), label="mine", transport="sandbox", auto_start=False
    ).id
    theirs = sessions.create(
        Principal.for_user(make_user("operator")),
        label="theirs",
        transport="sandbox",
        auto_start=False,
    ).id
    messages, _ = _read(client.get(f"{STREAM}?after=0", headers=operator_headers, buffered=False))
    assert {m["data"]["session"]["id"] for m in messages} == {mine}
    messages, _ = _read(client.get(f"{STREAM}?after=0", headers=admin_headers, buffered=False))
    assert {m["data"]["session"]["id"] for m in messages} == {mine, theirs}
    messages, _ = _read(
        client.get(f"{STREAM}?after=0&session={theirs}", headers=operator_headers, buffered=False)
    )
    assert messages == []


def test_keep_alives_and_the_end_of_a_stream(app, client, operator_headers, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "EVENTS_STREAM_SECONDS", 0.5)
    monkeypatch.setattr(event_stream, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(event_stream, "KEEPALIVE_SECONDS", 0.1)
    messages, comments = _read(client.get(STREAM, headers=operator_headers, buffered=False))
    assert messages == []
    assert "keep-alive" in comments
    assert comments[-1].startswith("the stream ends here")


def test_a_bad_last_event_id_is_refused(client, operator_headers):
    response = client.get(STREAM, headers={**operator_headers, "Last-Event-ID": "abc"})
    assert response.status_code == 422
    assert response.json["code"] == "invalid_last_event_id"


def test_the_json_log(client, operator, operator_headers, make_user):
    mine = sessions.create(
        Principal.for_user(operator), label="mine", transport="sandbox", auto_start=False
    )
    sessions.create(
        Principal.for_user(make_user("operator")),
        label="theirs",
        transport="sandbox",
        auto_start=False,
    )
    for status in ("connecting", "connected"):
        eventlog.record(SessionStatus(status=status), mine)
    db.session.commit()
    page = client.get("/api/v1/events/log?limit=2", headers=operator_headers)
    assert page.status_code == 200
    assert [e["data"]["status"] for e in page.json["items"]] == ["created", "connecting"]
    assert all(e["session"]["id"] == mine.id for e in page.json["items"])
    rest = client.get(
        f"/api/v1/events/log?cursor={page.json['next_cursor']}", headers=operator_headers
    ).json
    assert [e["data"]["status"] for e in rest["items"]] == ["connected"]
    after = page.json["items"][0]["seq"]
    filtered = client.get(
        f"/api/v1/events/log?type=session.status,message.&after={after}", headers=operator_headers
    ).json["items"]
    assert [e["data"]["status"] for e in filtered] == ["connecting", "connected"]
    assert (
        client.get("/api/v1/events/log?type=message.received", headers=operator_headers).json[
            "items"
        ]
        == []
    )
    first = page.json["items"][0]
    assert set(first) == {"seq", "id", "type", "version", "timestamp", "session", "data"}
