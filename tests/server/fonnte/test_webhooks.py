"""fonnte-format webhooks through the sandbox and the real runtime: a receiver on
127.0.0.1 gets fonnte's bodies for inbound messages, message status and connect /
disconnect (signed like every Kabar webhook, so the receiver still verifies them)."""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa

from server.models import Message, OutboxMessage, WebhookDelivery, db
from tests.server.api.test_fonnte import PNG
from tests.server.conftest import wait_for
from tests.server.fonnte.tokens import device_token
from tests.server.webhooks.receiver import running_receiver

CONTACT = "6281234567890"
DEVICE = "6281100000001"  # the sandbox session's number (tests/server/conftest.py)


@pytest.fixture
def receiver(app, monkeypatch):
    yield from running_receiver(app, monkeypatch)


@pytest.fixture
def fonnte_hook(client, operator_headers, receiver):
    def make(session_id: str, events: list[str]) -> dict:
        made = client.post(
            "/api/v1/webhooks",
            headers=operator_headers,
            json={
                "url": receiver.url,
                "session_id": session_id,
                "events": events,
                "format": "fonnte",
            },
        )
        assert made.json["format"] == "fonnte"
        return receiver.register(made)

    return make


def bodies(receiver, key: str, value=None) -> list[dict]:
    """Delivered fonnte bodies that have ``key`` (equal to ``value`` if given)."""
    with receiver.lock:
        return [
            r["json"]
            for r in receiver.requests
            if 200 <= r["status"] < 300
            and key in r["json"]
            and (value is None or r["json"][key] == value)
        ]


def test_an_inbound_message_arrives_in_fonntes_shape(
    client, operator_headers, fast, receiver, fonnte_hook, say
):
    fonnte_hook(fast, ["message.received"])
    say(operator_headers, fast, "#request lampu kelas mati")
    (body,) = wait_for(lambda: bodies(receiver, "sender"), what="a fonnte webhook")
    stored = db.session.scalar(sa.select(Message).where(Message.session_id == fast))
    assert body == {
        "device": DEVICE,
        "sender": CONTACT,
        "pengirim": CONTACT,
        "member": "",
        "name": "Budi",
        "message": "#request lampu kelas mati",
        "pesan": "#request lampu kelas mati",
        "text": "",
        "quick": False,
        "isgroup": False,
        "isforwarded": False,
        "type": "text",
        "location": "",
        "url": "",
        "filename": "",
        "extension": "",
        "pollname": "",
        "choices": [],
        "inboxid": stored.seq,
        "timestamp": body["timestamp"],
    }
    assert abs(body["timestamp"] - stored.timestamp.timestamp()) < 2
    # The book's flow: answer the sender through /fonnte/send, quoting with inboxid.
    key = device_token(client, operator_headers, fast)
    answer = client.post(
        "/fonnte/send",
        headers={"Authorization": key},
        data={
            "target": body["sender"],
            "message": "Nomor aduan Anda BRT2409001",
            "inboxid": body["inboxid"],
        },
    ).json
    row = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.seq == answer["id"][0]))
    assert row.payload["quoted"]["id"] == stored.wa_id


def test_a_group_message_names_the_group_and_the_member(
    client, operator_headers, fast, receiver, fonnte_hook, say
):
    fonnte_hook(fast, ["message.*"])
    group = "120363012345678901@g.us"
    say(operator_headers, fast, "halo grup", group=group)
    (body,) = wait_for(lambda: bodies(receiver, "sender"), what="a fonnte webhook")
    assert (body["sender"], body["member"], body["isgroup"]) == (group, CONTACT, True)


def test_location_and_media_arrive_with_a_link_to_the_file(
    app, client, operator_headers, fast, receiver, fonnte_hook, say, monkeypatch
):
    monkeypatch.setitem(app.config["KABAR"], "PUBLIC_URL", "https://wa.example.com/")
    fonnte_hook(fast, ["message.received"])
    say(operator_headers, fast, "", location={"latitude": -7.98, "longitude": 112.62})
    say(
        operator_headers,
        fast,
        "foto lampu",
        media={
            "data": base64.b64encode(PNG).decode(),
            "mimetype": "image/png",
            "filename": "lampu.png",
        },
    )
    place, photo = wait_for(
        lambda: len(bodies(receiver, "sender")) == 2 and bodies(receiver, "sender"),
        what="two fonnte webhooks",
    )
    assert (place["type"], place["location"]) == ("location", "-7.98,112.62")
    assert (photo["type"], photo["message"], photo["filename"], photo["extension"]) == (
        "image",
        "foto lampu",
        "lampu.png",
        "png",
    )
    prefix = "https://wa.example.com/fonnte/media/"
    assert photo["url"].startswith(prefix)
    path = "/fonnte/media/" + photo["url"][len(prefix) :]

    # The link works without a token once the file is in (the media worker fetches it).
    def fetch():
        with client.get(path) as response:
            return response.status_code == 200 and (response.data, response.mimetype)

    assert wait_for(fetch, what="the file behind the link") == (PNG, "image/png")
    assert client.get(path[:-3] + "xyz").status_code == 404  # a forged link


def test_message_status_follows_the_id_send_answered(
    client, operator_headers, fast, receiver, fonnte_hook
):
    fonnte_hook(fast, ["message.sent", "message.status"])
    key = device_token(client, operator_headers, fast)
    sent = client.post(
        "/fonnte/send",
        headers={"Authorization": key},
        data={"target": "081234567890", "message": "halo"},
    ).json
    (message_id,) = sent["id"]
    wait_for(
        lambda: {b["state"] for b in bodies(receiver, "stateid")} >= {"sent", "delivered", "read"},
        what="sent, delivered and read",
    )
    row = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.seq == message_id))
    for body in bodies(receiver, "stateid"):
        assert (body["device"], body["id"], body["stateid"], body["status"]) == (
            DEVICE,
            message_id,
            row.wa_id,
            "sent",
        )


def test_disconnect_and_connect(client, operator_headers, fast, receiver, fonnte_hook):
    fonnte_hook(fast, ["*"])
    stopped = client.post(f"/api/v1/sessions/{fast}/stop", headers=operator_headers)
    assert stopped.status_code in (200, 202), stopped.json
    (off,) = wait_for(lambda: bodies(receiver, "token"), what="a disconnect webhook")
    assert (off["device"], off["status"], off["token"]) == (DEVICE, "disconnect", fast)
    started = client.post(f"/api/v1/sessions/{fast}/start", headers=operator_headers)
    assert started.status_code in (200, 202), started.json
    wait_for(
        lambda: (
            bodies(receiver, "token", None) and bodies(receiver, "token")[-1]["status"] == "connect"
        ),
        what="a connect webhook",
    )
    # Events fonnte has no shape for (qr, connecting...) are not sent to this endpoint.
    types = {
        d.event.type + ":" + str(d.event.data.get("status"))
        for d in db.session.scalars(sa.select(WebhookDelivery))
    }
    assert types <= {
        "session.status:stopped",
        "session.status:connected",
        "session.status:disconnected",
    }, types
