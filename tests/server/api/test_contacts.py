"""Contact look-ups through a sandbox session: on WhatsApp or not, picture, user info."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import SessionStatusChange, WaSession, db
from tests.server.conftest import wait_for


def _url(sid: str, tail: str = "") -> str:
    return f"/api/v1/sessions/{sid}/contacts{tail}"


def _restart_with(client, headers, sid, settings: dict) -> None:
    """New sandbox options take effect when the session restarts."""
    assert (
        client.patch(
            f"/api/v1/sessions/{sid}", headers=headers, json={"settings": settings}
        ).status_code
        == 200
    )

    def restarts():
        return db.session.scalar(
            sa.select(sa.func.count(SessionStatusChange.id)).where(
                SessionStatusChange.session_id == sid,
                SessionStatusChange.reason == "restarted by request",
            )
        )

    before = restarts()
    client.post(f"/api/v1/sessions/{sid}/restart", headers=headers)
    wait_for(lambda: restarts() > before, what="the restart")
    wait_for(lambda: db.session.get(WaSession, sid).status == "connected", what="connected")


def test_check_says_who_is_on_whatsapp(client, operator_headers, sandbox_session):
    _restart_with(
        client, operator_headers, sandbox_session, {"sandbox": {"unregistered": ["6281299990000"]}}
    )
    response = client.post(
        _url(sandbox_session, "/check"),
        headers=operator_headers,
        json={
            "phones": ["0812-9999-0000", "+62 812 1111 2222", "abc", "6281211112222@s.whatsapp.net"]
        },
    )
    assert response.status_code == 200, response.json
    results = response.json["results"]
    assert [(r["query"], r["phone"], r["jid"], r["registered"]) for r in results] == [
        ("0812-9999-0000", "6281299990000", None, False),
        ("+62 812 1111 2222", "6281211112222", "6281211112222@s.whatsapp.net", True),
        ("abc", None, None, False),
        ("6281211112222@s.whatsapp.net", "6281211112222", "6281211112222@s.whatsapp.net", True),
    ]
    assert results[2]["error"] and all(r["error"] is None for r in results[:2])


def test_check_limits(client, operator_headers, sandbox_session):
    url = _url(sandbox_session, "/check")
    assert client.post(url, headers=operator_headers, json={"phones": []}).status_code == 422
    too_many = client.post(
        url, headers=operator_headers, json={"phones": [f"0812000{i:05d}" for i in range(101)]}
    )
    assert too_many.status_code == 422 and "phones" in too_many.json["errors"]["json"]
    hundred = client.post(
        url, headers=operator_headers, json={"phones": [f"0812000{i:05d}" for i in range(100)]}
    )
    assert hundred.status_code == 200 and len(hundred.json["results"]) == 100


def test_picture_and_user_info(client, operator_headers, sandbox_session):
    picture = client.get(_url(sandbox_session, "/0812-1111-2222/picture"), headers=operator_headers)
    assert picture.status_code == 200
    assert picture.json == {"jid": "6281211112222@s.whatsapp.net", "url": None}
    info = client.get(_url(sandbox_session, "/+62 812 1111 2222"), headers=operator_headers)
    assert info.status_code == 200, info.json
    assert info.json["jid"] == "6281211112222@s.whatsapp.net"
    assert info.json["phone"] == "6281211112222"
    assert info.json["status"] == "Sandbox contact"
    assert info.json["devices"] == ["6281211112222@s.whatsapp.net"]
    for bad in ("abc", "120363012345678901@g.us"):
        response = client.get(_url(sandbox_session, f"/{bad}"), headers=operator_headers)
        assert response.status_code == 422 and response.json["code"] == "invalid_phone", bad


def test_runtime_down_session_down_and_tenancy(client, operator_headers, make_user, login):
    created = client.post(
        "/api/v1/sessions", headers=operator_headers, json={"label": "x", "transport": "sandbox"}
    ).json
    down = client.post(
        _url(created["id"], "/check"), headers=operator_headers, json={"phones": ["0812-1111-2222"]}
    )
    assert down.status_code == 503 and down.json["code"] == "runtime_down"
    down = client.get(_url(created["id"], "/0812-1111-2222"), headers=operator_headers)
    assert down.status_code == 503 and down.json["code"] == "runtime_down"
    other = login(make_user("operator"))
    hidden = client.get(_url(created["id"], "/0812-1111-2222/picture"), headers=other)
    assert hidden.status_code == 404 and hidden.json["code"] == "session_not_found"


def test_a_session_that_is_not_connected_answers_503(client, operator_headers, runtime):
    created = client.post(
        "/api/v1/sessions", headers=operator_headers, json={"label": "x", "transport": "sandbox"}
    ).json
    wait_for(lambda: db.session.get(WaSession, created["id"]).status == "qr", what="a QR")
    response = client.get(_url(created["id"], "/0812-1111-2222"), headers=operator_headers)
    assert response.status_code == 503 and response.json["code"] == "session_not_connected"


def test_in_contacts_is_answered_apart_from_registered(client, operator_headers, fast, say):
    say(operator_headers, fast, "halo", sender="6281211112222")
    wait_for(
        lambda: client.get(_url(fast), headers=operator_headers).json["items"], what="the contact"
    )
    response = client.post(
        _url(fast, "/check"),
        headers=operator_headers,
        json={"phones": ["0812-1111-2222", "0812-3333-4444", "abc"]},
    )
    assert response.status_code == 200, response.json
    assert [
        (r["phone"], r["registered"], r["in_contacts"], r["name"]) for r in response.json["results"]
    ] == [
        ("6281211112222", True, True, "Budi"),  # has written to the session
        ("6281233334444", True, False, None),  # on WhatsApp, never seen
        (None, False, False, None),
    ]
    info = client.get(_url(fast, "/0812-1111-2222"), headers=operator_headers).json
    assert (info["in_contacts"], info["saved"], info["name"]) == (True, False, "Budi")
    stranger = client.get(_url(fast, "/0812-3333-4444"), headers=operator_headers).json
    assert (stranger["in_contacts"], stranger["name"]) == (False, None)


def test_the_contact_list_needs_no_runtime_and_searches(client, operator_headers, operator):
    from datetime import UTC, datetime

    from server import eventlog, sessions
    from server.auth import Principal
    from server.events import ContactUpdated, Party

    session = sessions.create(
        Principal.for_user(operator), label="c", transport="sandbox", auto_start=False
    )
    for phone, name in (("6281211112222", "Budi"), ("6281233334444", "Siti")):
        eventlog.record(
            ContactUpdated(
                contact=Party(jid=f"{phone}@s.whatsapp.net", phone=phone),
                timestamp=datetime.now(UTC),
                saved=True,
                full_name=name,
            ),
            session,
        )
    db.session.commit()
    listed = client.get(_url(session.id), headers=operator_headers)
    assert listed.status_code == 200
    assert [(c["phone"], c["name"], c["saved"]) for c in listed.json["items"]] == [
        ("6281211112222", "Budi", True),
        ("6281233334444", "Siti", True),
    ]
    for q, expected in (("siti", ["Siti"]), ("0812-1111", ["Budi"]), ("nobody", [])):
        found = client.get(_url(session.id), headers=operator_headers, query_string={"q": q})
        assert [c["name"] for c in found.json["items"]] == expected, q
    paged = client.get(_url(session.id), headers=operator_headers, query_string={"limit": 1}).json
    assert len(paged["items"]) == 1 and paged["next_cursor"]


def test_the_address_book_sync_marks_saved_contacts(client, operator_headers, fast, say):
    say(operator_headers, fast, "halo", sender="6281233334444")  # a chat, not saved
    _restart_with(
        client,
        operator_headers,
        fast,
        {
            "pacing": {"enabled": False},
            "sandbox": {
                "address_book": {"6281211112222": "Budi Santoso", "6281233334444": "Siti RT 5"}
            },
        },
    )
    synced = client.post(_url(fast, "/sync"), headers=operator_headers)
    assert synced.status_code == 200, synced.json
    assert synced.json == {"added": 2, "changed": 0, "removed": 0, "total": 2}
    listed = client.get(_url(fast), headers=operator_headers, query_string={"saved": "true"}).json[
        "items"
    ]
    assert [(c["phone"], c["name"], c["push_name"], c["source"]) for c in listed] == [
        ("6281233334444", "Siti RT 5", "Budi", "address_book"),
        ("6281211112222", "Budi Santoso", None, "address_book"),
    ]
    check = client.post(
        _url(fast, "/check"), headers=operator_headers, json={"phones": ["0812-1111-2222"]}
    ).json["results"][0]
    assert (check["in_contacts"], check["saved"], check["name"]) == (True, True, "Budi Santoso")
    again = client.post(_url(fast, "/sync"), headers=operator_headers).json
    assert again == {"added": 0, "changed": 0, "removed": 0, "total": 2}
    _restart_with(
        client,
        operator_headers,
        fast,
        {"pacing": {"enabled": False}, "sandbox": {"address_book": {"6281211112222": "Pak Budi"}}},
    )
    later = client.post(_url(fast, "/sync"), headers=operator_headers).json
    assert later == {"added": 0, "changed": 1, "removed": 1, "total": 1}
    siti = client.get(_url(fast, "/0812-3333-4444"), headers=operator_headers).json
    assert (siti["in_contacts"], siti["saved"]) == (True, False)  # still a chat
    log = client.get(
        "/api/v1/events/log", headers=operator_headers, query_string={"type": "contact.updated"}
    ).json["items"]
    assert len(log) == 4


def test_ids_look_a_lid_up_from_a_phone_and_back(client, operator_headers, sandbox_session):
    by_phone = client.get(_url(sandbox_session, "/0812-1111-2222/ids"), headers=operator_headers)
    assert by_phone.status_code == 200, by_phone.json
    lid = by_phone.json["lid"]
    assert lid.endswith("@lid") and by_phone.json == {
        "query": "0812-1111-2222",
        "phone": "6281211112222",
        "lid": lid,
        "jid": "6281211112222@s.whatsapp.net",
    }
    by_lid = client.get(_url(sandbox_session, f"/{lid}/ids"), headers=operator_headers)
    assert by_lid.status_code == 200, by_lid.json
    assert by_lid.json == {
        "query": lid,
        "phone": "6281211112222",
        "lid": lid,
        "jid": "6281211112222@s.whatsapp.net",
    }
    unknown = client.get(_url(sandbox_session, "/123@lid/ids"), headers=operator_headers)
    assert unknown.status_code == 200
    assert (unknown.json["phone"], unknown.json["lid"]) == (None, "123@lid")
    group = client.get(
        _url(sandbox_session, "/120363012345678901@g.us/ids"), headers=operator_headers
    )
    assert group.status_code == 422 and group.json["code"] == "invalid_phone"
