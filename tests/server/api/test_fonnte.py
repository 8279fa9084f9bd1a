"""/fonnte: fonnte's API on Kabar. A fonnte client changes its base URL and token only."""

from __future__ import annotations

import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from server.models import Broadcast, OutboxMessage, SandboxDelivery, db, utcnow
from tests.server.conftest import wait_for
from tests.server.fonnte.tokens import device_token, offline_session

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00"
    b"\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00"
    b"\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


def php_curl_multipart(fields: dict[str, str], boundary: str) -> bytes:
    """The body PHP's cURL sends for ``CURLOPT_POSTFIELDS => array(...)``: multipart/form-
    data, one part per field, CRLF line ends, in the array's order."""
    body = b""
    for name, value in fields.items():
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    return body + f"--{boundary}--\r\n".encode()


def rows(session_id: str) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.session_id == session_id)
            .order_by(OutboxMessage.seq)
        )
    )


@pytest.fixture
def owner(make_user):
    return make_user("operator")


@pytest.fixture
def owner_headers(owner, login):
    return login(owner)


@pytest.fixture
def offline(owner):
    return offline_session(owner)


@pytest.fixture
def token(client, owner_headers, offline):
    return device_token(client, owner_headers, offline)


def fonnte(client, token: str | None, path: str = "send", **kwargs):
    headers = {"Authorization": token} if token is not None else {}
    response = client.post(f"/fonnte/{path}", headers=headers, **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


# --- the book's call ----------------------------------------------------------------------


def test_the_books_php_call_works_unchanged_but_for_the_url(client, operator_headers, fast):
    """book-whatsapp-gateway-helpdesk.md, "Pengujian Integrasi API": sendFonnte($target,
    $data) as written there, byte for byte what PHP's cURL sends, the URL aside."""
    key = device_token(client, operator_headers, fast)
    boundary = "------------------------d74496d66958873e"
    body = php_curl_multipart(
        {
            "target": "6281234567890",
            "message": "Laporan Anda diterima: BRT2409001",
            "url": "",
            "filename": "",
        },
        boundary[2:],
    )
    response = client.post(
        "/fonnte/send",
        data=body,
        headers={
            "Authorization": key,
            "Content-Type": f"multipart/form-data; boundary={boundary[2:]}",
            "Accept": "*/*",
        },
    )
    assert response.status_code == 200
    answer = response.json
    assert answer["status"] is True
    assert answer["detail"] == "success! message in queue"
    assert answer["process"] == "pending"
    assert answer["target"] == ["6281234567890"]
    (message_id,) = answer["id"]
    assert isinstance(message_id, int) and answer["requestid"] == message_id
    # It reaches the contact on the (sandbox) WhatsApp, through the outbox.
    delivered = wait_for(
        lambda: db.session.scalar(
            sa.select(SandboxDelivery).where(SandboxDelivery.session_id == fast)
        ),
        what="the sandbox delivery",
    )
    assert delivered.to_jid == "6281234567890@s.whatsapp.net"
    assert delivered.content["text"] == "Laporan Anda diterima: BRT2409001"
    (row,) = rows(fast)
    assert (row.seq, row.source, row.kind) == (message_id, "fonnte", "text")
    # Its status, and the device, as fonnte reports them.
    wait_for(
        lambda: (
            fonnte(client, key, "status", data={"id": str(message_id)})["message_status"] == "sent"
        ),
        what="status sent",
    )
    device = fonnte(client, key, "device")
    assert device["status"] is True
    assert (device["device"], device["device_status"], device["messages"]) == (
        "6281100000001",
        "connect",
        1,
    )


# --- send ----------------------------------------------------------------------------------


def test_several_targets_with_variables(client, token, offline):
    answer = fonnte(
        client,
        token,
        data={
            "target": "08123456789|Fonnte|Admin,0812-2222-3333|Lili|User,6281344445555",
            "message": "test message to {name} as {var1}",
            "countryCode": "62",
        },
    )
    assert answer["status"] is True
    assert answer["target"] == ["628123456789", "6281222223333", "6281344445555"]
    queued = rows(offline)
    assert answer["id"] == [r.seq for r in queued]
    assert [(r.to_jid, r.payload["text"]) for r in queued] == [
        ("628123456789@s.whatsapp.net", "test message to Fonnte as Admin"),
        ("6281222223333@s.whatsapp.net", "test message to Lili as User"),
        ("6281344445555@s.whatsapp.net", "test message to  as {var1}"),
    ]
    # One request, one broadcast: the dashboard and /api/v1 can follow or cancel it.
    broadcast = db.session.scalar(sa.select(Broadcast))
    assert broadcast.total == 3 and {r.broadcast_id for r in queued} == {broadcast.id}


def test_country_code_zero_keeps_the_number_as_given(client, token, offline):
    answer = fonnte(
        client, token, data={"target": "4915112345678", "message": "hallo", "countryCode": "0"}
    )
    assert answer["target"] == ["4915112345678"]
    refused = fonnte(
        client, token, data={"target": "08123456789", "message": "x", "countryCode": "0"}
    )
    assert (refused["status"], refused["reason"]) == (False, "target invalid: 08123456789")


def test_json_with_schedule_delay_and_typing(client, token, offline):
    at = int((utcnow() + timedelta(hours=1)).timestamp())
    answer = fonnte(
        client,
        token,
        json={
            "target": "081111111111,082222222222",
            "message": "pengingat",
            "schedule": at,
            "delay": "5-10",
            "typing": True,
        },
    )
    assert answer["status"] is True and answer["process"] == "waiting"
    first, second = rows(offline)
    assert int(first.send_at.timestamp()) == at
    assert 5 <= (second.send_at - first.send_at).total_seconds() <= 10
    assert first.payload["typing"] is True
    status = fonnte(client, token, "status", json={"id": answer["id"][1]})
    assert status == {"id": answer["id"][1], "message_status": "waiting", "status": True}


def test_a_fixed_delay_spaces_the_targets(client, token, offline):
    fonnte(
        client,
        token,
        data={"target": "081111111111,082222222222,083333333333", "message": "x", "delay": "2"},
    )
    sends = [r.send_at for r in rows(offline)]
    assert sends[0] is None or sends[0] <= utcnow()
    assert (sends[2] - sends[1]).total_seconds() == 2


def test_poll(client, token, offline):
    answer = fonnte(
        client,
        token,
        data={
            "target": "081234567890",
            "message": "Pilih warna kesukaan",
            "choices": "Merah,Biru,Hijau",
            "select": "multiple",
            "pollname": "Warna",
        },
    )
    intro, poll = rows(offline)
    assert (intro.kind, intro.payload["text"]) == ("text", "Pilih warna kesukaan")
    assert poll.kind == "poll" and answer["id"] == [poll.seq]
    assert poll.payload["poll"] == {
        "question": "Warna",
        "options": ["Merah", "Biru", "Hijau"],
        "multiple": True,
    }


def test_a_poll_named_by_its_message_alone(client, token, offline):
    fonnte(
        client, token, data={"target": "081234567890", "message": "Hadir?", "choices": "Ya,Tidak"}
    )
    (poll,) = rows(offline)
    assert poll.payload["poll"] == {
        "question": "Hadir?",
        "options": ["Ya", "Tidak"],
        "multiple": False,
    }


def test_location(client, token, offline):
    answer = fonnte(
        client,
        token,
        data={
            "target": "081234567890",
            "message": "Lokasi kami",
            "location": "-7.983908, 112.621391",
        },
    )
    text, place = rows(offline)
    assert text.payload["text"] == "Lokasi kami"
    assert place.kind == "location" and answer["id"] == [place.seq]
    assert place.payload["location"]["latitude"] == pytest.approx(-7.983908)
    assert place.payload["location"]["longitude"] == pytest.approx(112.621391)


class _Files(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *_args):
        pass


@pytest.fixture
def file_server(app, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "FETCH_ALLOW", ["127.0.0.1/32"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_file_by_url_is_fetched_once_for_every_target(client, token, offline, file_server):
    answer = fonnte(
        client,
        token,
        data={
            "target": "081111111111,082222222222",
            "message": "Foto {name}",
            "url": f"{file_server}/logo.png",
            "filename": "logo-kampus.png",
        },
    )
    assert answer["status"] is True
    first, second = rows(offline)
    assert first.kind == second.kind == "image"
    assert first.payload["media"]["sha256"] == second.payload["media"]["sha256"]
    assert first.payload["media"]["filename"] == "logo-kampus.png"
    assert first.payload["text"] == "Foto "


def test_an_uploaded_file(client, token, offline):
    from io import BytesIO

    fonnte(
        client,
        token,
        data={
            "target": "081111111111",
            "message": "Laporan",
            "file": (BytesIO(b"%PDF-1.4 laporan"), "laporan.pdf"),
        },
        content_type="multipart/form-data",
    )
    (row,) = rows(offline)
    assert row.kind == "document" and row.payload["media"]["filename"] == "laporan.pdf"
    assert row.payload["text"] == "Laporan"


# --- refusals: HTTP 200, status false, a reason; never a 500, nothing queued ------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "target invalid: give at least one number."),
        ({"target": "abc,12", "message": "x"}, "target invalid: abc, 12"),
        (
            {"target": "081234567890"},
            "message invalid: give a message, a url or file, a location or a poll.",
        ),
        (
            {"target": "081234567890", "location": "utara"},
            "location invalid: give latitude,longitude, such as -7.983908, 112.621391.",
        ),
        (
            {"target": "081234567890", "message": "x", "delay": "soon"},
            "delay invalid: give seconds, such as 2, or a range such as 1-10.",
        ),
        (
            {"target": "081234567890", "message": "x", "schedule": "tomorrow"},
            "schedule invalid: give a unix timestamp in seconds.",
        ),
        (
            {"target": "081234567890", "choices": "Ya"},
            "choices invalid: a poll has 2 to 12 choices, separated by commas.",
        ),
        ({"target": "081234567890", "message": "x", "url": "http://10.0.0.1/a.png"}, "url invalid"),
        (
            {"target": "081234567890", "message": "x", "inboxid": "77"},
            "inboxid invalid: no message 77 in this device's inbox.",
        ),
        (
            {"target": "081234567890", "message": "x", "followup": "1700000000"},
            "followup is not supported by Kabar; send without it (docs/fonnte.md).",
        ),
        (
            {"target": "081234567890", "message": "x", "connectOnly": "true"},
            "device disconnected: connectOnly asks to send only while it is connected.",
        ),
    ],
)
def test_a_refused_send_says_why_in_fonntes_shape(client, token, offline, fields, reason):
    answer = fonnte(client, token, data=fields)
    assert answer["status"] is False
    assert answer["reason"] == reason
    assert rows(offline) == []


def test_tokens_fonnte_would_refuse(client, owner, owner_headers, offline, login, make_user):
    unbound = client.post("/api/v1/api-keys", headers=owner_headers, json={"name": "all"})
    readonly = device_token(client, owner_headers, offline, permissions=["sessions:read"])
    cases = {
        None: "unauthorized",
        "": "unauthorized",
        "nonsense": "unauthorized",
        "kabar_abc_def": "api_key_invalid",
        owner_headers["Authorization"].split()[1]: "unauthorized",  # a login, no device
        unbound.json["key"]: "api_key_not_bound",
    }
    for token, code in cases.items():
        answer = fonnte(client, token, data={"target": "081234567890", "message": "x"})
        assert answer == {
            "status": False,
            "reason": "invalid token",
            "code": code,
            "detail": answer["detail"],
        }, token
    refused = fonnte(client, readonly, data={"target": "081234567890", "message": "x"})
    assert (refused["reason"], refused["code"]) == ("access denied", "permission_denied")
    assert fonnte(client, readonly, "device")["status"] is True  # reading is granted
    client.delete(f"/api/v1/api-keys/{unbound.json['id']}", headers=owner_headers)
    assert rows(offline) == []


def test_a_revoked_token_and_a_deleted_device(client, owner_headers, offline, token):
    keys = client.get("/api/v1/api-keys", headers=owner_headers).json["items"]
    client.delete(f"/api/v1/api-keys/{keys[0]['id']}", headers=owner_headers)
    assert fonnte(client, token, "device")["code"] == "api_key_revoked"
    other = offline_session_of(client, owner_headers)
    fresh = device_token(client, owner_headers, other)
    assert client.delete(f"/api/v1/sessions/{other}", headers=owner_headers).status_code in (
        202,
        204,
    )
    answer = fonnte(client, fresh, "device")
    assert (answer["status"], answer["reason"]) == (False, "invalid token")


def offline_session_of(client, headers) -> str:
    made = client.post(
        "/api/v1/sessions",
        headers=headers,
        json={"label": "lain", "transport": "sandbox", "auto_start": False},
    )
    assert made.status_code == 201, made.json
    return made.json["id"]


def test_a_malformed_json_body_is_refused_not_crashed(client, token, offline):
    response = client.post(
        "/fonnte/send",
        headers={"Authorization": token},
        data=b"{not json",
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response.json["status"] is False


# --- status and device ---------------------------------------------------------------------


def test_status_look_up(client, token, offline):
    assert fonnte(client, token, "status", data={})["reason"] == "id required"
    for unknown in ("999999", "abc", "99999999999999999999999"):
        assert fonnte(client, token, "status", data={"id": unknown}) == {
            "status": False,
            "reason": "message not found",
            "code": "message_not_found",
        }
    sent = fonnte(client, token, data={"target": "081234567890", "message": "x"})
    assert fonnte(client, token, "status", data={"id": sent["id"][0]}) == {
        "id": sent["id"][0],
        "message_status": "pending",
        "status": True,
    }
    row = rows(offline)[0]
    for kabar, theirs in [
        ("sending", "processing"),
        ("delivered", "sent"),
        ("read", "sent"),
        ("failed", "failed"),
        ("expired", "expired"),
    ]:
        row.status = kabar
        db.session.commit()
        assert fonnte(client, token, "status", data={"id": row.seq})["message_status"] == theirs
    row.status, row.reason = "failed", "not_on_whatsapp: 6281234567890 is not on WhatsApp."
    db.session.commit()
    assert fonnte(client, token, "status", data={"id": row.seq})["message_status"] == "invalid"


def test_device_of_a_session_that_is_not_running(client, token, offline):
    assert fonnte(client, token, "device") == {
        "device": "",
        "device_status": "disconnect",
        "expired": "never",
        "messages": 0,
        "name": "Toko",
        "package": "Kabar",
        "quota": "unlimited",
        "status": True,
    }


# --- tenancy -------------------------------------------------------------------------------


def test_a_token_bound_to_one_session_cannot_reach_another(
    client, owner, owner_headers, offline, token, make_user, login
):
    mine_too = offline_session(owner, label="Gudang")
    other_token = device_token(client, owner_headers, mine_too)
    theirs = fonnte(client, other_token, data={"target": "081234567890", "message": "x"})
    # The bound token sends from its own session only...
    ours = fonnte(client, token, data={"target": "081234567890", "message": "y"})
    assert [r.seq for r in rows(offline)] == ours["id"]
    assert [r.seq for r in rows(mine_too)] == theirs["id"]
    # ...cannot look up the other's messages (as if they did not exist)...
    assert (
        fonnte(client, token, "status", data={"id": theirs["id"][0]})["reason"]
        == "message not found"
    )
    # ...and in the REST API too it sees its own session, even though its owner has two.
    bearer = {"Authorization": f"Bearer {token}"}
    listed = client.get("/api/v1/sessions", headers=bearer).json["items"]
    assert [s["id"] for s in listed] == [offline]
    refused = client.post(
        f"/api/v1/sessions/{mine_too}/messages",
        headers=bearer,
        json={"to": "081234567890", "text": "lewat REST"},
    )
    assert (refused.status_code, refused.json["code"]) == (404, "session_not_found")
    # A device token cannot make keys (it does not hold users:manage).
    made = client.post("/api/v1/api-keys", headers=bearer, json={"name": "child"})
    assert (made.status_code, made.json["code"]) == (403, "api_key_management_denied")
    # Nobody binds a key to a session they cannot see.
    stranger = login(make_user("operator"))
    foreign = client.post(
        "/api/v1/api-keys", headers=stranger, json={"name": "x", "session_id": offline}
    )
    assert (foreign.status_code, foreign.json["code"]) == (404, "session_not_found")


def test_a_device_token_from_the_command_line(client, kabar, owner, offline, make_user):
    made = kabar(
        "apikey", "create", "--user", owner.username, "--name", "toko", "--session", offline
    )
    assert made.exit_code == 0, made.output
    assert f"(session {offline} only)" in made.output
    key = made.output.split("Key (shown once): ")[1].strip()
    assert fonnte(client, key, "device")["name"] == "Toko"
    stranger = make_user("operator")
    refused = kabar(
        "apikey", "create", "--user", stranger.username, "--name", "x", "--session", offline
    )
    assert refused.exit_code != 0 and "No session" in refused.output
