"""POST /api/v1/sessions/{id}/messages/bulk: many sends in one request, each validated
and answered on its own, idempotent per item, in the caller's sessions only."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import OutboxMessage, db
from server.outbox import bulk


def _session(client, headers, label="Bulk"):
    created = client.post(
        "/api/v1/sessions", headers=headers, json={"label": label, "transport": "sandbox"}
    )
    assert created.status_code == 201, created.json
    return created.json["id"]


def _bulk(client, headers, sid, messages, **kwargs):
    return client.post(
        f"/api/v1/sessions/{sid}/messages/bulk",
        headers=headers,
        json={"messages": messages},
        **kwargs,
    )


def _rows(sid):
    return db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.session_id == sid).order_by(OutboxMessage.seq)
    ).all()


def test_every_item_is_queued_in_order_and_answered(client, operator_headers):
    sid = _session(client, operator_headers)
    response = _bulk(
        client,
        operator_headers,
        sid,
        [
            {"to": "0812-1111-0001", "text": "Halo 1"},
            {"to": "0812-1111-0002", "text": "Halo 2", "priority": "high"},
            {
                "to": "0812-1111-0003",
                "type": "location",
                "location": {"latitude": -6.2, "longitude": 106.8},
            },
        ],
    )
    assert response.status_code == 202, response.json
    body = response.json
    assert (body["accepted"], body["rejected"]) == (3, 0)
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert all(r["status"] == "queued" and not r["replayed"] for r in body["results"])
    rows = _rows(sid)
    kinds = ["text", "text", "location"]
    assert [(r.id, r.to_jid, r.kind, r.source) for r in rows] == [
        (res["id"], f"62812111100{i + 1:02d}@s.whatsapp.net", kind, "api")
        for i, (res, kind) in enumerate(zip(body["results"], kinds, strict=True))
    ]
    assert rows[1].priority < rows[0].priority  # high goes first
    assert rows[0].payload["text"] == "Halo 1"
    # Each one is an ordinary outgoing message.
    status = client.get(f"/api/v1/sessions/{sid}/messages/{rows[2].id}", headers=operator_headers)
    assert status.status_code == 200 and status.json["type"] == "location"


def test_invalid_items_are_answered_one_by_one_and_the_rest_queued(client, operator_headers):
    sid = _session(client, operator_headers)
    response = _bulk(
        client,
        operator_headers,
        sid,
        [
            {"to": "081211110001", "text": "ok"},
            {"to": "Arisan RT", "text": "x"},  # no group of this session is named so
            {"to": "081211110002"},  # a text message without text
            "just a string",
            {"to": "081211110003", "text": "x", "colour": "red"},
            {"to": "081211110004", "text": "ok too"},
        ],
    )
    assert response.status_code == 207, response.json
    body = response.json
    assert (body["accepted"], body["rejected"]) == (2, 4)
    errors = {r["index"]: r["error"] for r in body["results"] if "error" in r}
    assert sorted(errors) == [1, 2, 3, 4]
    assert (errors[1]["status"], errors[1]["code"]) == (404, "group_not_found")
    assert all(
        errors[i]["status"] == 422 and errors[i]["code"] == "validation_error" for i in (2, 3, 4)
    )
    assert "to" in errors[1]["errors"] and "text" in errors[2]["errors"]
    assert "colour" in errors[4]["errors"]
    assert [r.payload["text"] for r in _rows(sid)] == ["ok", "ok too"]


def test_a_request_that_is_not_a_list_of_messages_is_refused(client, operator_headers):
    sid = _session(client, operator_headers)
    url = f"/api/v1/sessions/{sid}/messages/bulk"
    for body in (
        {"messages": []},
        {"messages": {"to": "0812"}},
        [{"to": "0812"}],
        {"messages": [{"to": "081211110001", "text": "x"}], "extra": 1},
    ):
        response = client.post(url, headers=operator_headers, json=body)
        assert response.status_code == 422, body
        assert response.json["code"] == "validation_error"
    too_many = [{"to": "081211110001", "text": "x"}] * (bulk.MAX_ITEMS + 1)
    response = _bulk(client, operator_headers, sid, too_many)
    assert response.status_code == 422 and "messages" in response.json["errors"]
    assert _rows(sid) == []


def test_item_keys_make_a_repeat_send_nothing_new(client, operator_headers):
    sid = _session(client, operator_headers)
    items = [
        {"to": "081211110001", "text": "a", "idempotency_key": "crm-1"},
        {"to": "081211110002", "text": "b", "idempotency_key": "crm-2"},
    ]
    first = _bulk(client, operator_headers, sid, items).json["results"]
    again = _bulk(
        client,
        operator_headers,
        sid,
        [*items, {"to": "081211110003", "text": "c", "idempotency_key": "crm-3"}],
    )
    assert again.status_code == 202
    results = again.json["results"]
    assert [(r["id"], r["replayed"]) for r in results[:2]] == [(f["id"], True) for f in first]
    assert results[2]["replayed"] is False
    assert [r.idempotency_key for r in _rows(sid)] == ["crm-1", "crm-2", "crm-3"]
    # A key used for another message is refused for that item only.
    reused = _bulk(
        client,
        operator_headers,
        sid,
        [
            {"to": "081211110001", "text": "changed", "idempotency_key": "crm-1"},
            {"to": "081211110004", "text": "d", "idempotency_key": "crm-4"},
        ],
    )
    assert reused.status_code == 207
    assert reused.json["results"][0]["error"]["code"] == "idempotency_key_reused"
    assert reused.json["results"][0]["error"]["status"] == 409
    assert len(_rows(sid)) == 4


def test_single_and_bulk_sends_share_their_keys(client, operator_headers):
    sid = _session(client, operator_headers)
    single = client.post(
        f"/api/v1/sessions/{sid}/messages",
        json={"to": "081211110001", "text": "a"},
        headers={**operator_headers, "Idempotency-Key": "k1"},
    )
    assert single.status_code == 202
    result = _bulk(
        client,
        operator_headers,
        sid,
        [{"to": "081211110001", "text": "a", "idempotency_key": "k1"}],
    ).json["results"][0]
    assert (result["id"], result["replayed"]) == (single.json["id"], True)


def test_a_key_twice_in_one_request_sends_once(client, operator_headers):
    sid = _session(client, operator_headers)
    results = _bulk(
        client,
        operator_headers,
        sid,
        [
            {"to": "081211110001", "text": "a", "idempotency_key": "dup"},
            {"to": "081211110001", "text": "a", "idempotency_key": "dup"},
            {"to": "081211110001", "text": "b", "idempotency_key": "dup"},
        ],
    ).json["results"]
    assert results[1]["id"] == results[0]["id"] and results[1]["replayed"]
    assert results[2]["error"]["code"] == "idempotency_key_reused"
    assert len(_rows(sid)) == 1


def test_the_request_key_keys_each_item_by_its_place(client, operator_headers):
    sid = _session(client, operator_headers)
    items = [
        {"to": "081211110001", "text": "a"},
        {"to": "081211110002", "text": "b", "idempotency_key": "own"},
    ]
    headers = {**operator_headers, "Idempotency-Key": "batch-7"}
    first = _bulk(client, operator_headers | headers, sid, items).json["results"]
    again = _bulk(client, headers, sid, items).json["results"]
    assert [r["replayed"] for r in again] == [True, True]
    assert [r["id"] for r in again] == [r["id"] for r in first]
    assert [r.idempotency_key for r in _rows(sid)] == ["batch-7:0", "own"]
    long_key = {**operator_headers, "Idempotency-Key": "k" * 101}
    assert _bulk(client, long_key, sid, items).status_code == 422
    bad_item_key = _bulk(
        client,
        operator_headers,
        sid,
        [{"to": "081211110001", "text": "a", "idempotency_key": "k" * 129}],
    )
    assert bad_item_key.json["results"][0]["error"]["errors"] == {
        "idempotency_key": ["A text of 1 to 128 characters."]
    }


def test_another_tenants_session_looks_missing(client, operator_headers, make_user, login):
    sid = _session(client, operator_headers)
    stranger = login(make_user("operator", username="stranger"))
    response = _bulk(client, stranger, sid, [{"to": "081211110001", "text": "x"}])
    assert response.status_code == 404 and response.json["code"] == "session_not_found"
    field = login(make_user("field", username="looker"))  # may not send
    assert _bulk(client, field, sid, [{"to": "081211110001", "text": "x"}]).status_code == 403
    assert (
        client.post(f"/api/v1/sessions/{sid}/messages/bulk", json={"messages": []}).status_code
        == 401
    )
    assert _rows(sid) == []


def test_the_document_declares_it(client):
    spec = client.get("/api/v1/openapi.json").json
    post = spec["paths"]["/api/v1/sessions/{session_id}/messages/bulk"]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]["required"] == [
        "messages"
    ]
    assert {"202", "207", "422"} <= set(post["responses"])
