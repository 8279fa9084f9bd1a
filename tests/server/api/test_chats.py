"""Chats from the gateway's store: order, unread counts, read marks, history, presence."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from server.models import ChatState, Message, db, utcnow
from server.whatsapp.transport import new_message_id
from tests.server.conftest import wait_for

BUDI, SARI = "628123456789@s.whatsapp.net", "6281211112222@s.whatsapp.net"


def _say(client, headers, sid, sender, text, name=""):
    response = client.post(
        f"/api/v1/sandbox/sessions/{sid}/messages",
        headers=headers,
        json={"from": sender, "name": name, "text": text},
    )
    assert response.status_code == 201, response.json


def _chats(client, headers, sid, query: str = "") -> list[dict]:
    response = client.get(f"/api/v1/sessions/{sid}/chats{query}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json["items"]


def test_list_newest_first_with_unread_counts(client, operator_headers, fast):
    _say(client, operator_headers, fast, "0812 3456 789", "halo", name="Budi")
    _say(client, operator_headers, fast, "0812-1111-2222", "permisi", name="Sari")
    _say(client, operator_headers, fast, "0812 3456 789", "lampu mati", name="Budi")
    chats = _chats(client, operator_headers, fast)
    assert [(c["jid"], c["phone"], c["name"], c["unread"], c["is_group"]) for c in chats] == [
        (BUDI, "628123456789", "Budi", 2, False),
        (SARI, "6281211112222", "Sari", 1, False),
    ]
    assert chats[0]["last_message"]["text"] == "lampu mati"
    assert chats[0]["last_message"]["direction"] == "in" and chats[0]["read_at"] is None

    # A reply moves Sari's chat to the top; what the session sends is never unread.
    sent = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        json={"to": "0812-1111-2222", "text": "Siap"},
    )
    assert sent.status_code == 202
    chats = wait_for(
        lambda: (c := _chats(client, operator_headers, fast))[0]["jid"] == SARI and c,
        what="the reply in the history",
    )
    assert chats[0]["last_message"]["direction"] == "out" and chats[0]["unread"] == 1

    one = client.get(f"/api/v1/sessions/{fast}/chats/0812-3456-789", headers=operator_headers)
    assert one.status_code == 200 and (one.json["jid"], one.json["unread"]) == (BUDI, 2)
    none = client.get(f"/api/v1/sessions/{fast}/chats/0812-0000-0000", headers=operator_headers)
    assert none.status_code == 404 and none.json["code"] == "chat_not_found"


def test_pages_and_search(client, operator_headers, sandbox_session):
    for n in range(5):
        _say(
            client, operator_headers, sandbox_session, f"0812-0000-000{n}", "hi", name=f"Warga {n}"
        )
    seen, cursor = [], None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(
            f"/api/v1/sessions/{sandbox_session}/chats{query}", headers=operator_headers
        ).json
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"Warga {n}" for n in (4, 3, 2, 1, 0)]
    assert [c["name"] for c in _chats(client, operator_headers, sandbox_session, "?q=warga 3")] == [
        "Warga 3"
    ]
    assert [
        c["name"] for c in _chats(client, operator_headers, sandbox_session, "?q=0812-0000-0001")
    ] == ["Warga 1"]
    assert _chats(client, operator_headers, sandbox_session, "?q=100%25") == []
    bad = client.get(
        f"/api/v1/sessions/{sandbox_session}/chats?cursor=nope", headers=operator_headers
    )
    assert bad.status_code == 422 and bad.json["code"] == "invalid_cursor"


def test_mark_read_sends_receipts_and_zeroes_unread(client, operator_headers, sandbox_session):
    _say(client, operator_headers, sandbox_session, "0812 3456 789", "satu")
    _say(client, operator_headers, sandbox_session, "0812 3456 789", "dua")
    url = f"/api/v1/sessions/{sandbox_session}/chats/{BUDI}"
    read = client.post(f"{url}/read", headers=operator_headers)
    assert read.status_code == 200, read.json
    assert (read.json["unread"], read.json["marked"], read.json["receipts"]) == (0, 2, "sent")
    assert read.json["read_at"] and read.json["receipts_error"] is None
    assert _chats(client, operator_headers, sandbox_session)[0]["unread"] == 0
    again = client.post(f"{url}/read", headers=operator_headers).json
    assert (again["marked"], again["receipts"]) == (0, "none")
    _say(client, operator_headers, sandbox_session, "0812 3456 789", "tiga")
    assert _chats(client, operator_headers, sandbox_session)[0]["unread"] == 1

    history = client.get(f"{url}/messages", headers=operator_headers)
    assert [m["text"] for m in history.json["items"]] == ["satu", "dua", "tiga"]
    paged = client.get(f"{url}/messages?limit=2", headers=operator_headers).json
    assert len(paged["items"]) == 2 and paged["next_cursor"]

    typing = client.post(f"{url}/presence", headers=operator_headers, json={"state": "composing"})
    assert typing.status_code == 204
    bad = client.post(f"{url}/presence", headers=operator_headers, json={"state": "dancing"})
    assert bad.status_code == 422


def _stored(sid: str, sender: str, text: str) -> None:
    db.session.add(
        Message(
            session_id=sid,
            wa_id=new_message_id(),
            direction="in",
            chat_jid=f"{sender}@s.whatsapp.net",
            chat_phone=sender,
            sender_jid=f"{sender}@s.whatsapp.net",
            kind="text",
            text=text,
            timestamp=utcnow(),
        )
    )
    db.session.commit()


def test_mark_read_while_the_runtime_is_down_keeps_the_mark(client, operator_headers):
    created = client.post(
        "/api/v1/sessions", headers=operator_headers, json={"label": "x", "transport": "sandbox"}
    ).json
    _stored(created["id"], "628123456789", "halo")
    _stored(created["id"], "628123456789", "masih di sana?")
    url = f"/api/v1/sessions/{created['id']}/chats/08123456789"
    read = client.post(f"{url}/read", headers=operator_headers)
    assert read.status_code == 200, read.json
    assert (read.json["unread"], read.json["marked"], read.json["receipts"]) == (0, 2, "not_sent")
    assert read.json["receipts_error"]["code"] == "runtime_down"
    [chat] = _chats(client, operator_headers, created["id"])
    assert chat["unread"] == 0 and chat["read_at"]
    state = db.session.scalar(sa.select(ChatState).where(ChatState.session_id == created["id"]))
    assert state.chat_jid == BUDI and state.last_read_seq
    typing = client.post(f"{url}/presence", headers=operator_headers, json={"state": "paused"})
    assert typing.status_code == 503 and typing.json["code"] == "runtime_down"


def test_bad_chats_and_other_tenants(client, operator_headers, make_user, login):
    created = client.post(
        "/api/v1/sessions", headers=operator_headers, json={"label": "x", "transport": "sandbox"}
    ).json
    _stored(created["id"], "628123456789", "halo")
    base = f"/api/v1/sessions/{created['id']}/chats"
    bad = client.get(f"{base}/abc/messages", headers=operator_headers)
    assert bad.status_code == 422 and bad.json["code"] == "invalid_chat"
    bad = client.post(f"{base}/1203@g.us/read", headers=operator_headers)
    assert bad.status_code == 422 and bad.json["code"] == "invalid_group_jid"
    missing = client.post(f"{base}/0812-0000-0000/read", headers=operator_headers)
    assert missing.status_code == 404 and missing.json["code"] == "chat_not_found"
    other = login(make_user("operator"))
    for response in (
        client.get(base, headers=other),
        client.get(f"{base}/08123456789/messages", headers=other),
        client.post(f"{base}/08123456789/read", headers=other),
    ):
        assert response.status_code == 404 and response.json["code"] == "session_not_found"
    reader = login(make_user("api"))
    assert client.get(base, headers=reader).status_code == 404  # not theirs either


def test_after_and_wait_long_poll_for_the_next_message(app, client, operator_headers):
    created = client.post(
        "/api/v1/sessions", headers=operator_headers, json={"label": "x", "transport": "sandbox"}
    ).json
    sid = created["id"]
    _stored(sid, "628123456789", "halo")
    url = f"/api/v1/sessions/{sid}/chats/08123456789"
    newest = client.get(url, headers=operator_headers).json["last_message"]["id"]

    def poll(query: str):
        began = time.monotonic()
        response = client.get(f"{url}/messages?{query}", headers=operator_headers)
        assert response.status_code == 200, response.json
        return [m["text"] for m in response.json["items"]], time.monotonic() - began

    assert poll(f"after={newest}")[0] == []
    texts, took = poll(f"after={newest}&wait=0.3")
    assert texts == [] and took >= 0.3

    def later():
        with app.app_context():
            _stored(sid, "628123456789", "masih di sana?")

    threading.Timer(0.3, later).start()
    texts, took = poll(f"after={newest}&wait=10&direction=in")
    assert texts == ["masih di sana?"] and took < 5
    texts, took = poll("wait=10")  # something there already: at once
    assert texts == ["halo", "masih di sana?"] and took < 1

    # ``after`` is a message of this session: another session's id is unknown here.
    elsewhere = client.post(
        "/api/v1/sessions", headers=operator_headers, json={"label": "y", "transport": "sandbox"}
    ).json["id"]
    _stored(elsewhere, "628123456789", "lain")
    foreign = client.get(
        f"/api/v1/sessions/{elsewhere}/chats/08123456789", headers=operator_headers
    ).json["last_message"]["id"]
    for query, code in (
        ("after=nope&wait=1", "invalid_after"),
        (f"after={foreign}", "invalid_after"),
        ("wait=31", "validation_error"),
    ):
        bad = client.get(f"{url}/messages?{query}", headers=operator_headers)
        assert bad.status_code == 422 and bad.json["code"] == code, bad.json
