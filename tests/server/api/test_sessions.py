"""Sessions through the API with a running runtime and the sandbox transport."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from tests.server.conftest import wait_for


def _get(client, headers, session_id):
    return client.get(f"/api/v1/sessions/{session_id}", headers=headers)


def test_create_show_qr_scan_connect(client, operator_headers, runtime):
    created = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "Front desk", "transport": "sandbox"},
    )
    assert created.status_code == 201
    session_id = created.json["id"]
    assert created.json["status"] == "created"
    wait_for(lambda: _get(client, operator_headers, session_id).json["status"] == "qr")

    qr = client.get(f"/api/v1/sessions/{session_id}/qr", headers=operator_headers)
    assert qr.status_code == 200
    assert qr.json["data_url"].startswith("data:image/png;base64,")
    assert qr.json["expires_at"]
    png = client.get(f"/api/v1/sessions/{session_id}/qr?format=png", headers=operator_headers)
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.data.startswith(b"\x89PNG")

    scan = client.post(
        f"/api/v1/sandbox/sessions/{session_id}/scan",
        headers=operator_headers,
        json={"phone": "0811-0000-0002", "push_name": "Front"},
    )
    assert scan.status_code == 200
    assert scan.json["jid"] == "6281100000002@s.whatsapp.net"
    session = wait_for(
        lambda: (
            (r := _get(client, operator_headers, session_id).json)["status"] == "connected" and r
        )
    )
    assert session["phone"] == "6281100000002" and session["runtime"] == "up"
    me = client.get(f"/api/v1/sessions/{session_id}/me", headers=operator_headers)
    assert me.json == {
        "jid": "6281100000002@s.whatsapp.net",
        "phone": "6281100000002",
        "push_name": "Front",
    }
    history = client.get(
        f"/api/v1/sessions/{session_id}/status-history", headers=operator_headers
    ).json
    assert [h["status"] for h in reversed(history)][:4] == [
        "created",
        "connecting",
        "qr",
        "connected",
    ]
    # Once paired there is no QR to show, and the answer says why.
    again = client.get(f"/api/v1/sessions/{session_id}/qr", headers=operator_headers)
    assert again.status_code == 409 and again.json["code"] == "no_qr"


def test_qr_right_after_creating_waits_for_the_first_code(client, operator_headers, runtime):
    created = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "Fresh", "transport": "sandbox"},
    )
    png = client.get(
        f"/api/v1/sessions/{created.json['id']}/qr?format=png", headers=operator_headers
    )
    assert png.status_code == 200 and png.data.startswith(b"\x89PNG")


def test_qr_of_a_starting_session_says_when_to_ask_again(client, operator_headers, monkeypatch):
    from server import sessions
    from server.runtime import heartbeat

    session_id = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "Fresh", "transport": "sandbox"},
    ).json["id"]
    url = f"/api/v1/sessions/{session_id}/qr?format=png"
    down = client.get(url, headers=operator_headers)  # no runtime: at once, not a wait
    assert down.status_code == 503 and down.json["code"] == "runtime_down"
    assert down.headers["Retry-After"] == "5"

    holder = heartbeat.new_holder()  # a runtime that beats but does not get to it
    assert heartbeat.acquire(holder)
    monkeypatch.setattr(sessions, "QR_WAIT_SECONDS", 0.2)
    try:
        starting = client.get(url, headers=operator_headers)
    finally:
        heartbeat.release(holder)
    assert starting.status_code == 503 and starting.json["code"] == "session_starting"
    assert starting.headers["Retry-After"] == "1" and "Ask again" in starting.json["message"]
    assert starting.mimetype == "application/json"

    client.post(f"/api/v1/sessions/{session_id}/stop", headers=operator_headers)
    stopped = client.get(url, headers=operator_headers)
    assert stopped.status_code == 409 and stopped.json["code"] == "no_qr"
    assert "start it" in stopped.json["message"]


def test_inbound_message_is_stored_and_listed(client, operator_headers, sandbox_session):
    said = client.post(
        f"/api/v1/sandbox/sessions/{sandbox_session}/messages",
        headers=operator_headers,
        json={"from": "0812 3456 789", "name": "Budi", "text": "#request AC"},
    )
    assert said.status_code == 201 and said.json["status"] == "delivered"
    listed = client.get(
        f"/api/v1/sessions/{sandbox_session}/messages", headers=operator_headers
    ).json["items"]
    assert len(listed) == 1
    message = listed[0]
    assert message["wa_id"] == said.json["message_id"]
    assert message["text"] == "#request AC" and message["direction"] == "in"
    assert message["sender_phone"] == "628123456789"
    assert message["sender_jid"] == "628123456789@s.whatsapp.net"
    assert message["sender_name"] == "Budi"
    by_chat = client.get(
        f"/api/v1/sessions/{sandbox_session}/messages?chat=08123456789", headers=operator_headers
    ).json["items"]
    assert len(by_chat) == 1


def test_inbound_media_and_location(client, operator_headers, sandbox_session):
    photo = base64.b64encode(b"\x89PNG fake image").decode()
    url = f"/api/v1/sandbox/sessions/{sandbox_session}/messages"
    assert (
        client.post(
            url,
            headers=operator_headers,
            json={
                "from": "08123",
                "text": "broken lamp",
                "media": {"data": photo, "mimetype": "image/png"},
            },
        ).status_code
        == 201
    )
    assert (
        client.post(
            url,
            headers=operator_headers,
            json={
                "from": "08123",
                "location": {"latitude": -6.2, "longitude": 106.8, "name": "Gedung A"},
            },
        ).status_code
        == 201
    )
    bad = client.post(
        url,
        headers=operator_headers,
        json={"from": "08123", "media": {"data": "%%%", "mimetype": "image/png"}},
    )
    assert bad.status_code == 422
    items = client.get(
        f"/api/v1/sessions/{sandbox_session}/messages", headers=operator_headers
    ).json["items"]
    assert [m["kind"] for m in items] == ["image", "location"]
    assert items[0]["media"]["mimetype"] == "image/png" and items[0]["text"] == "broken lamp"
    assert items[1]["location"]["name"] == "Gedung A"
    # The media worker fetches the photo into the media store, off the event path.
    stored = wait_for(
        lambda: (
            (
                m := client.get(
                    f"/api/v1/sessions/{sandbox_session}/messages", headers=operator_headers
                ).json["items"][0]["media"]
            ).get("download")
            == "stored"
            and m
        ),
        what="the download",
    )
    import hashlib

    assert stored["sha256"] == hashlib.sha256(b"\x89PNG fake image").hexdigest()
    assert "handle" not in stored


def test_stop_start_and_auto_start_after_runtime_restart(
    client, operator_headers, sandbox_session, app
):
    stop = client.post(f"/api/v1/sessions/{sandbox_session}/stop", headers=operator_headers)
    assert stop.status_code == 202
    wait_for(lambda: _get(client, operator_headers, sandbox_session).json["status"] == "stopped")
    client.post(f"/api/v1/sessions/{sandbox_session}/start", headers=operator_headers)
    # Paired before, so it reconnects from its device store without a QR.
    wait_for(lambda: _get(client, operator_headers, sandbox_session).json["status"] == "connected")


def test_logout_unpairs(client, operator_headers, sandbox_session):
    out = client.post(f"/api/v1/sessions/{sandbox_session}/logout", headers=operator_headers)
    assert out.status_code == 204
    session = wait_for(
        lambda: (
            (r := _get(client, operator_headers, sandbox_session).json)["status"] == "logged_out"
            and r
        )
    )
    assert session["phone"] is None and session["desired_state"] == "stopped"


def test_delete_removes_session_and_store(client, operator_headers, sandbox_session, app):
    from server import sessions

    store = sessions.store_dir(sandbox_session)
    assert store.exists()
    assert (
        client.delete(f"/api/v1/sessions/{sandbox_session}", headers=operator_headers).status_code
        == 204
    )
    assert _get(client, operator_headers, sandbox_session).status_code == 404
    wait_for(lambda: not store.exists(), what="the store to be removed")


def test_unscanned_qr_expires_to_a_clear_state(client, operator_headers, runtime):
    created = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={
            "label": "x",
            "transport": "sandbox",
            "settings": {"sandbox": {"qr_seconds": 0.2, "qr_rotations": 2}},
        },
    )
    session_id = created.json["id"]
    session = wait_for(
        lambda: (r := _get(client, operator_headers, session_id).json)["status"] == "stopped" and r,
        what="the QR to expire",
    )
    assert session["status_reason"].startswith("qr_expired")
    assert session["desired_state"] == "stopped"


def test_pair_code(client, operator_headers, runtime):
    created = client.post(
        "/api/v1/sessions", headers=operator_headers, json={"label": "x", "transport": "sandbox"}
    )
    session_id = created.json["id"]
    wait_for(lambda: _get(client, operator_headers, session_id).json["status"] == "qr")
    code = client.post(
        f"/api/v1/sessions/{session_id}/pair-code",
        headers=operator_headers,
        json={"phone": "0812 0000 0003"},
    )
    assert code.status_code == 200 and len(code.json["code"]) == 8
    left = datetime.fromisoformat(code.json["expires_at"]) - datetime.now(UTC)
    assert timedelta(seconds=170) < left <= timedelta(seconds=180)
    wait_for(lambda: _get(client, operator_headers, session_id).json["status"] == "pairing_code")
    bad = client.post(
        f"/api/v1/sessions/{session_id}/pair-code", headers=operator_headers, json={"phone": "abc"}
    )
    assert bad.status_code == 409 and bad.json["code"] == "invalid_input"


def test_a_pair_code_nobody_entered_stops_the_session_saying_so(client, operator_headers, runtime):
    created = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={
            "label": "x",
            "transport": "sandbox",
            "settings": {"sandbox": {"pair_code_seconds": 0.5}},
        },
    )
    session_id = created.json["id"]
    wait_for(lambda: _get(client, operator_headers, session_id).json["status"] == "qr")
    code = client.post(
        f"/api/v1/sessions/{session_id}/pair-code",
        headers=operator_headers,
        json={"phone": "0812 0000 0003"},
    ).json["code"]
    wait_for(
        lambda: _get(client, operator_headers, session_id).json["status"] == "stopped",
        what="the code to expire",
    )
    session = _get(client, operator_headers, session_id).json
    assert session["status_reason"].startswith("qr_expired") and code in session["status_reason"]


def test_live_calls_answer_503_when_the_runtime_is_down(client, operator_headers):
    created = client.post(
        "/api/v1/sessions", headers=operator_headers, json={"label": "x", "transport": "sandbox"}
    )
    session = created.json
    assert session["runtime"] == "down"
    response = client.post(f"/api/v1/sessions/{session['id']}/logout", headers=operator_headers)
    assert response.status_code == 503 and response.json["code"] == "runtime_down"
    ready = client.get("/api/v1/ready")
    assert ready.status_code == 503
    assert ready.json["checks"]["runtime"]["ok"] is False
    # A sandbox message said while the runtime is down is kept and delivered later.
    queued = client.post(
        f"/api/v1/sandbox/sessions/{session['id']}/messages",
        headers=operator_headers,
        json={"from": "0812", "text": "hi"},
    )
    assert queued.status_code == 202 and queued.json["status"] == "queued"


def test_session_validation_and_tenancy(client, operator_headers, make_user, login):
    bad = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "", "transport": "carrier-pigeon"},
    )
    assert bad.status_code == 422
    assert set(bad.json["errors"]["json"]) == {"label", "transport"}
    mine = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "mine", "transport": "sandbox", "auto_start": False},
    )
    other = login(make_user("operator"))
    assert client.get(f"/api/v1/sessions/{mine.json['id']}", headers=other).status_code == 404
    assert client.get("/api/v1/sessions", headers=other).json["items"] == []


def test_only_an_admin_points_a_session_at_a_store_database(
    client, operator_headers, admin_headers
):
    store = {"neonize": {"store_url": "postgresql://db.internal:5432/whatsmeow"}}
    refused = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "x", "transport": "neonize", "auto_start": False, "settings": store},
    )
    assert refused.status_code == 403 and refused.json["code"] == "admin_only_setting"
    mine = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "x", "transport": "neonize", "auto_start": False},
    ).json
    url = f"/api/v1/sessions/{mine['id']}"
    patched = client.patch(url, headers=operator_headers, json={"settings": store})
    assert patched.status_code == 403 and patched.json["code"] == "admin_only_setting"
    assert client.patch(url, headers=admin_headers, json={"settings": store}).status_code == 200
    # The owner keeps what the admin set while changing something else, but cannot move it.
    kept = client.patch(
        url, headers=operator_headers, json={"settings": {**store, "pacing": {"enabled": False}}}
    )
    assert kept.status_code == 200, kept.json
    moved = client.patch(
        url,
        headers=operator_headers,
        json={"settings": {"neonize": {"store_url": "postgresql://169.254.169.254/x"}}},
    )
    assert moved.status_code == 403
    assert client.get(url, headers=operator_headers).json["settings"]["neonize"] == store["neonize"]
