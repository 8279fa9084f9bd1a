"""Media given by URL is fetched by the runtime, never inside the API request.

A local HTTP server stands in for the media host; its handler can be held on an event,
which is how a server that drips one byte a second looks from Kabar's side.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from PIL import Image

from server.models import Media, OutboxMessage, SandboxDelivery, StoredEvent, db
from tests.server.conftest import wait_for


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


PNG = _png()


class MediaHost(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}
    gate = threading.Event()

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        MediaHost.hits[self.path] = MediaHost.hits.get(self.path, 0) + 1
        if self.path.startswith("/slow"):
            MediaHost.gate.wait(30)  # held until the test lets it answer
        if self.path.startswith("/missing"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"x" * 5000 if self.path.startswith("/big") else PNG
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def host(app, monkeypatch) -> Iterator[str]:
    MediaHost.hits = {}
    MediaHost.gate = threading.Event()
    monkeypatch.setitem(app.config["KABAR"], "FETCH_ALLOW", ["127.0.0.1/32"])
    monkeypatch.setitem(app.config["KABAR"], "FETCH_TIMEOUT", 20)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), MediaHost)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    MediaHost.gate.set()
    httpd.shutdown()
    httpd.server_close()


def _send(client, headers, sid, body):
    return client.post(f"/api/v1/sessions/{sid}/messages", headers=headers, json=body)


def _row(message_id: str) -> OutboxMessage:
    db.session.expire_all()
    return db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.id == message_id))


def _deliveries(sid):
    return db.session.scalars(
        sa.select(SandboxDelivery).where(SandboxDelivery.session_id == sid)
    ).all()


def test_a_slow_media_url_never_holds_the_api(client, operator_headers, fast, host):
    sent = _send(
        client,
        operator_headers,
        fast,
        {
            "to": "081234567890",
            "type": "image",
            "text": "foto",
            "media": {"url": f"{host}/slow/photo.png"},
        },
    )
    # Answered at once, with the row stored before the answer, while the host holds on.
    assert sent.status_code == 202, sent.json
    assert sent.json["status"] == "fetching"
    assert _row(sent.json["id"]).status == "fetching"
    wait_for(lambda: MediaHost.hits.get("/slow/photo.png"), what="the fetch to start")
    assert client.get("/api/v1/health").status_code == 200
    assert (
        _send(client, operator_headers, fast, {"to": "081234567890", "text": "next"}).status_code
        == 202
    )
    assert _row(sent.json["id"]).status == "fetching"  # not sent without its bytes
    MediaHost.gate.set()
    delivered = wait_for(
        lambda: [d for d in _deliveries(fast) if d.kind == "image"], what="the image to be sent"
    )
    assert delivered[0].content["media"]["mimetype"] == "image/png"
    assert delivered[0].content["media"]["size"] == len(PNG)
    assert _row(sent.json["id"]).payload["media"]["sha256"]


def test_a_failed_fetch_fails_the_message_with_its_reason_and_an_event(
    client, operator_headers, fast, host, app, monkeypatch
):
    monkeypatch.setitem(app.config["KABAR"], "FETCH_MAX_BYTES", 1000)
    too_big = _send(
        client,
        operator_headers,
        fast,
        {"to": "081234567890", "type": "image", "media": {"url": f"{host}/big.png"}},
    )
    missing = _send(
        client,
        operator_headers,
        fast,
        {"to": "081234567890", "type": "document", "media": {"url": f"{host}/missing.pdf"}},
    )
    assert too_big.status_code == missing.status_code == 202
    for response, code in ((too_big, "fetch_too_large"), (missing, "fetch_failed")):
        row = wait_for(
            lambda r=response: (row := _row(r.json["id"])).status == "failed" and row,
            what="the message to fail",
        )
        assert row.reason.startswith(code), row.reason
        status = client.get(
            f"/api/v1/sessions/{fast}/messages/{row.id}", headers=operator_headers
        ).json
        assert status["status"] == "failed" and code in status["reason"]
        [event] = [
            e.data
            for e in db.session.scalars(
                sa.select(StoredEvent).where(
                    StoredEvent.type == "message.status", StoredEvent.session_id == fast
                )
            )
            if e.data["message_ids"] == [row.wa_id]
        ]
        assert event["status"] == "failed" and code in event["reason"]
    assert MediaHost.hits["/missing.pdf"] == 1  # a 404 is not asked again
    assert not _deliveries(fast)


def test_an_unsafe_address_is_refused_at_once(client, operator_headers, fast):
    unsafe = _send(
        client,
        operator_headers,
        fast,
        {"to": "081234567890", "type": "image", "media": {"url": "http://169.254.169.254/x"}},
    )
    assert unsafe.status_code == 422 and unsafe.json["code"] == "unsafe_url"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_a_message_cancelled_while_fetching_is_never_sent(client, operator_headers, fast, host):
    sent = _send(
        client,
        operator_headers,
        fast,
        {"to": "081234567890", "type": "image", "media": {"url": f"{host}/slow/a.png"}},
    )
    wait_for(lambda: MediaHost.hits.get("/slow/a.png"), what="the fetch to start")
    cancelled = client.post(
        f"/api/v1/sessions/{fast}/messages/{sent.json['id']}/cancel", headers=operator_headers
    )
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    MediaHost.gate.set()
    # A later text is sent; once it is, the fetch that finished meanwhile changed nothing.
    _send(client, operator_headers, fast, {"to": "081234567890", "text": "after"})
    wait_for(lambda: _deliveries(fast), what="the text")
    wait_for(
        lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Media)),
        what="the fetched bytes to be stored",
    )
    assert _row(sent.json["id"]).status == "cancelled"
    assert [d.kind for d in _deliveries(fast)] == ["text"]


def test_a_broadcast_fetches_its_url_once(client, operator_headers, fast, host):
    response = client.post(
        f"/api/v1/sessions/{fast}/broadcasts",
        headers=operator_headers,
        json={
            "message": {"type": "image", "media": {"url": f"{host}/poster.png"}},
            "recipients": [{"to": f"08123456789{i}"} for i in range(3)],
        },
    )
    assert response.status_code == 202, response.json
    wait_for(lambda: len(_deliveries(fast)) == 3, what="three deliveries")
    assert MediaHost.hits["/poster.png"] == 1
    assert {d.content["media"]["mimetype"] for d in _deliveries(fast)} == {"image/png"}


def test_a_sticker_by_url_is_sent_as_webp(client, operator_headers, fast, host):
    sent = _send(
        client,
        operator_headers,
        fast,
        {"to": "081234567890", "type": "sticker", "media": {"url": f"{host}/s.png"}},
    )
    assert sent.status_code == 202
    [delivery] = wait_for(lambda: _deliveries(fast), what="the sticker")
    assert delivery.content["media"]["mimetype"] == "image/webp"


def test_a_voice_url_that_is_not_audio_fails_the_message(client, operator_headers, fast, host):
    sent = _send(
        client,
        operator_headers,
        fast,
        {"to": "081234567890", "type": "voice", "media": {"url": f"{host}/note.ogg"}},
    )
    assert sent.status_code == 202
    row = wait_for(
        lambda: (row := _row(sent.json["id"])).status == "failed" and row,
        what="the message to fail",
    )
    assert row.reason.startswith("invalid_audio"), row.reason
    assert not _deliveries(fast)
