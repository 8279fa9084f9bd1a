"""Malformed input is a 4xx at the edge, never a 500 and never a silent loss (issue 13).

Each case ran into a 500 (or was acknowledged and then lost) before; every one runs on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from server.models import Message, OutboxMessage, db
from tests.server.tickets.conftest import desk  # noqa: F401 - the fixture

SURROGATE = "ad\ud800min"


def _raw_json(text: str) -> dict:
    """Keyword arguments for a request whose body is exactly ``text`` as JSON."""
    return {"data": text.encode("utf-8", "surrogatepass"), "content_type": "application/json"}


def _json(value) -> dict:
    return _raw_json(json.dumps(value))  # json.dumps writes a lone surrogate as \\ud800


def test_deeply_nested_json_is_refused_before_anything_reads_it(client):
    for depth in (400, 5000, 100_000):
        body = "[" * depth + "]" * depth
        response = client.post("/api/v1/auth/login", **_raw_json(body))
        assert response.status_code == 400, (depth, response.json)
        assert response.json["code"] == "json_too_deep"
    nested = {"username": "admin", "password": "x"}
    for _ in range(40):
        nested = {"a": nested}
    assert client.post("/api/v1/auth/login", **_json(nested)).json["code"] == "json_too_deep"


def test_a_body_that_is_not_json_is_a_400(client):
    response = client.post("/api/v1/auth/login", **_raw_json('{"username": '))
    assert response.status_code == 400


def test_lone_surrogates_are_refused_in_every_text_field(
    client, admin_headers, operator_headers, fast
):
    cases = [
        ("/api/v1/auth/login", {"username": SURROGATE, "password": "password123"}, {}),
        ("/api/v1/sessions", {"label": SURROGATE, "transport": "sandbox"}, admin_headers),
        ("/api/v1/people", {"name": SURROGATE, "phone": "081234567890"}, admin_headers),
        (
            "/api/v1/workflows",
            {
                "name": SURROGATE,
                "trigger": {"type": "manual"},
                "start": "a",
                "nodes": {"a": {"type": "end"}},
            },
            admin_headers,
        ),
        (
            f"/api/v1/sandbox/sessions/{fast}/messages",
            {"from": "081234567890", "text": "\ud800"},
            operator_headers,
        ),
        (
            f"/api/v1/sessions/{fast}/messages",
            {"to": "081234567890", "text": "\ud800"},
            operator_headers,
        ),
        (
            f"/api/v1/sessions/{fast}/messages",
            {"to": "081234567890", "\ud800": "x"},
            operator_headers,
        ),
    ]
    for url, body, headers in cases:
        response = client.post(url, headers=headers, **_json(body))
        assert response.status_code == 400, (url, response.status_code, response.json)
        assert response.json["code"] == "invalid_text", url
    # Nothing was half-stored: no message in or out.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Message)) == 0
    # A real astral character (a surrogate pair in JSON) is text like any other.
    fine = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        **_raw_json('{"to": "081234567890", "text": "\\ud83d\\ude00"}'),
    )
    assert fine.status_code == 202, fine.json


def test_a_surrogate_in_the_query_is_refused(client, admin_headers):
    response = client.get("/api/v1/people?q=%ED%A0%80", headers=admin_headers)
    assert response.status_code < 500


@pytest.mark.parametrize(
    "query",
    [
        "from=0001-01-01",
        "to=9999-12-31",
        "from=0001-01-01&to=9999-12-31",
        "assignee=99999999999",
        "assignee=-99999999999",
        "assignee=99999999999999999999999",
        "event=99999999999999999999999",
    ],
)
def test_ticket_filters_at_the_edges(client, desk, login, query):  # noqa: F811
    response = client.get(f"/api/v1/tickets?{query}", headers=login(desk.admin))
    assert response.status_code in (200, 422), (query, response.json)


@pytest.mark.parametrize(
    "query",
    [
        "since=0001-01-01T00:00:00%2B07:00",
        "until=0001-01-01T00:00:00%2B07:00",
        "since=9999-12-31T23:59:59-12:00",
        "until=9999-12-31T23:59:59-12:00",
    ],
)
def test_outbox_filters_at_the_edges(client, operator_headers, query):
    response = client.get(f"/api/v1/outbox?{query}", headers=operator_headers)
    assert response.status_code in (200, 422), (query, response.json)


def test_schedules_at_the_edges(client, operator_headers, fast):
    for when in ("0001-01-01T00:00:00+07:00", "9999-12-31T23:59:59-12:00"):
        response = client.post(
            f"/api/v1/sessions/{fast}/messages",
            headers=operator_headers,
            json={"to": "081234567890", "text": "x", "send_at": when},
        )
        assert response.status_code == 422, (when, response.json)
        key = client.post(
            "/api/v1/api-keys", headers=operator_headers, json={"name": "k", "expires_at": when}
        )
        assert key.status_code == 422, (when, key.json)


def test_a_send_from_a_workflow_or_webhook_action_refuses_lone_surrogates(app):
    from server.inputs import InvalidText
    from server.outbox import queue

    with pytest.raises(InvalidText):
        queue.validate({"to": "081234567890", "text": "rusak \ud800"})
