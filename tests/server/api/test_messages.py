"""Sending through the outbox to a sandbox session: statuses, idempotency, schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from server.models import OutboxMessage, SandboxDelivery, WaSession, db
from tests.server.conftest import wait_for


def _send(client, headers, sid, body, **kwargs):
    return client.post(f"/api/v1/sessions/{sid}/messages", headers=headers, json=body, **kwargs)


def _status(client, headers, sid, mid):
    return client.get(f"/api/v1/sessions/{sid}/messages/{mid}", headers=headers).json


def _history_has(sid, reason):
    from server.models import SessionStatusChange

    return db.session.scalar(
        sa.select(SessionStatusChange.id).where(
            SessionStatusChange.session_id == sid, SessionStatusChange.reason == reason
        )
    )


def _deliveries(sid):
    return db.session.scalars(
        sa.select(SandboxDelivery)
        .where(SandboxDelivery.session_id == sid)
        .order_by(SandboxDelivery.id)
    ).all()


def test_text_goes_out_and_receipts_move_it_to_read(client, operator_headers, fast):
    response = _send(client, operator_headers, fast, {"to": "0812-3456-789", "text": "Halo"})
    assert response.status_code == 202
    body = response.json
    assert body["status"] == "queued" and body["to"] == "628123456789@s.whatsapp.net"
    assert response.headers["Location"] == body["status_url"]
    read = wait_for(
        lambda: (
            (s := _status(client, operator_headers, fast, body["id"]))["status"] == "read" and s
        ),
        what="read receipt",
    )
    assert read["sent_at"] and read["delivered_at"] and read["read_at"]
    [delivery] = _deliveries(fast)
    assert delivery.wa_id == body["wa_id"] and delivery.content["text"] == "Halo"
    history = client.get(
        f"/api/v1/sessions/{fast}/messages?direction=out", headers=operator_headers
    ).json["items"]
    assert [(m["id"], m["text"], m["status"]) for m in history] == [(body["id"], "Halo", "read")]


def test_location_contacts_and_poll(client, operator_headers, fast):
    sent = [
        _send(
            client,
            operator_headers,
            fast,
            {
                "to": "081234567890",
                "type": "location",
                "location": {"latitude": -6.2, "longitude": 106.8, "name": "Kampus"},
            },
        ),
        _send(
            client,
            operator_headers,
            fast,
            {
                "to": "081234567890",
                "type": "contacts",
                "contacts": [{"name": "Budi", "phone": "0812-1111-2222"}],
            },
        ),
        _send(
            client,
            operator_headers,
            fast,
            {
                "to": "081234567890",
                "type": "poll",
                "poll": {"question": "Puas?", "options": ["Ya", "Tidak"]},
            },
        ),
    ]
    assert [r.status_code for r in sent] == [202, 202, 202]
    wait_for(lambda: len(_deliveries(fast)) == 3, what="three deliveries")
    location, contact, poll = _deliveries(fast)
    assert location.content["location"]["name"] == "Kampus"
    assert "waid=6281211112222" in contact.content["vcards"][0]
    assert poll.content["poll"]["options"] == ["Ya", "Tidak"]


def test_same_idempotency_key_sends_once(client, operator_headers, fast):
    headers = {**operator_headers, "Idempotency-Key": "otp-42"}
    first = _send(client, headers, fast, {"to": "081234567890", "text": "code 1234"})
    again = _send(client, headers, fast, {"to": "081234567890", "text": "code 1234"})
    assert first.status_code == again.status_code == 202
    assert again.json["id"] == first.json["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    different = _send(client, headers, fast, {"to": "081234567890", "text": "code 9999"})
    assert different.status_code == 409 and different.json["code"] == "idempotency_key_reused"
    wait_for(lambda: _deliveries(fast), what="the delivery")
    assert len(_deliveries(fast)) == 1


def test_a_repeated_key_answers_the_same_whatever_the_new_body_says(client, operator_headers, fast):
    """The key is looked up only when the new request cannot be stored as it is, and the
    answer is the one a look-up first gave: the stored row, or 409 for another body even
    when that body is invalid or names a group that does not exist."""
    headers = {**operator_headers, "Idempotency-Key": "order-7"}
    first = _send(client, headers, fast, {"to": "081234567890", "text": "paid"})
    assert first.status_code == 202
    for body in (
        {"to": "081234567890", "text": " "},  # invalid: blank text
        {"text": "no recipient"},
        {"to": "abc", "text": "paid"},  # no such group
        {"to": "081234567890", "text": "paid", "priority": "high"},
    ):
        again = _send(client, headers, fast, body)
        assert again.status_code == 409, (body, again.json)
        assert again.json["code"] == "idempotency_key_reused"
    same = _send(client, headers, fast, {"to": "081234567890", "text": "paid"})
    assert same.status_code == 202 and same.headers["Idempotent-Replayed"] == "true"
    assert (same.json["id"], same.json["to"]) == (first.json["id"], first.json["to"])
    other = _send(client, {**operator_headers, "Idempotency-Key": "order-8"}, fast, {"text": "x"})
    assert other.status_code == 422 and "to" in other.json["errors"]


def test_invalid_requests_get_field_errors(client, operator_headers, fast):
    cases = [
        ({"text": "no recipient"}, "to"),
        ({"to": "++62 -", "text": "x"}, "to"),
        ({"to": "081234567890", "text": " "}, "text"),
        ({"to": "081234567890", "type": "image"}, "media"),
        (
            {"to": "081234567890", "type": "poll", "poll": {"question": "q", "options": ["a"]}},
            "poll",
        ),
        ({"to": "081234567890", "type": "fax", "text": "x"}, "type"),
        ({"to": "081234567890", "text": "x", "reply_to": "nope"}, "reply_to"),
    ]
    for body, field in cases:
        response = _send(client, operator_headers, fast, body)
        assert response.status_code == 422, body
        assert field in response.json["errors"], (body, response.json)
    no_group = _send(client, operator_headers, fast, {"to": "abc", "text": "x"})
    assert no_group.status_code == 404 and no_group.json["code"] == "group_not_found"
    assert "to" in no_group.json["errors"]
    not_json = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        data="x",
        content_type="text/plain",
    )
    assert not_json.status_code == 422


def test_scheduled_message_waits_and_can_be_cancelled_or_rescheduled(
    client, operator_headers, fast
):
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    queued = _send(
        client, operator_headers, fast, {"to": "081234567890", "text": "later", "send_at": later}
    ).json
    kept = _send(
        client,
        operator_headers,
        fast,
        {"to": "081234567890", "text": "later too", "send_at": later},
    ).json
    cancelled = client.post(
        f"/api/v1/sessions/{fast}/messages/{queued['id']}/cancel", headers=operator_headers
    )
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    again = client.post(
        f"/api/v1/sessions/{fast}/messages/{queued['id']}/cancel", headers=operator_headers
    )
    assert again.status_code == 409 and again.json["code"] == "message_not_queued"
    now = datetime.now(UTC).isoformat()
    moved = client.patch(
        f"/api/v1/sessions/{fast}/messages/{kept['id']}",
        headers=operator_headers,
        json={"send_at": now},
    )
    assert moved.status_code == 200
    wait_for(
        lambda: (
            _status(client, operator_headers, fast, kept["id"])["status"]
            in ("sent", "delivered", "read")
        ),
        what="the rescheduled send",
    )
    assert [d.content["text"] for d in _deliveries(fast)] == ["later too"]


def test_expired_message_is_not_sent(client, operator_headers, fast, app):
    """An OTP whose expiry passed while the session was stopped expires; it is never sent."""
    client.post(f"/api/v1/sessions/{fast}/stop", headers=operator_headers)
    wait_for(
        lambda: (
            client.get(f"/api/v1/sessions/{fast}", headers=operator_headers).json["status"]
            == "stopped"
        ),
        what="the stop",
    )
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    row = _send(
        client,
        operator_headers,
        fast,
        {"to": "081234567890", "text": "OTP 1234", "priority": "high", "expires_at": past},
    ).json
    client.post(f"/api/v1/sessions/{fast}/start", headers=operator_headers)
    expired = wait_for(
        lambda: (
            (s := _status(client, operator_headers, fast, row["id"]))["status"] == "expired" and s
        ),
        what="expiry",
    )
    assert expired["reason"] == "expired before it could be sent"
    assert _deliveries(fast) == []


def test_permanent_error_fails_at_once_and_transient_retries(client, operator_headers, fast, app):
    session = db.session.get(WaSession, fast)
    session.settings = {
        "pacing": {"enabled": False},
        "sandbox": {"unregistered": ["6281299990000"]},
    }
    db.session.commit()
    client.post(f"/api/v1/sessions/{fast}/restart", headers=operator_headers)
    wait_for(lambda: _history_has(fast, "restarted by request"), what="the restart")
    wait_for(
        lambda: (
            client.get(f"/api/v1/sessions/{fast}", headers=operator_headers).json["status"]
            == "connected"
        )
    )
    failed = _send(client, operator_headers, fast, {"to": "+62 812 9999 0000", "text": "x"}).json
    done = wait_for(
        lambda: (
            (s := _status(client, operator_headers, fast, failed["id"]))["status"] == "failed" and s
        )
    )
    assert done["reason"].startswith("not_on_whatsapp") and done["attempts"] == 1

    client.post(
        f"/api/v1/sandbox/sessions/{fast}/faults",
        headers=operator_headers,
        json={"kind": "send_error", "count": 1},
    )
    flaky = _send(client, operator_headers, fast, {"to": "081234567890", "text": "y"}).json
    sent = wait_for(
        lambda: (
            (s := _status(client, operator_headers, fast, flaky["id"]))["status"]
            in ("sent", "delivered", "read")
            and s
        ),
        timeout=15,
    )
    assert sent["attempts"] == 2
    retried = client.post(
        f"/api/v1/sessions/{fast}/messages/{failed['id']}/retry", headers=operator_headers
    )
    # The answer shows the message as it is now: the runtime may have taken it already.
    assert retried.status_code == 200 and retried.json["status"] in ("queued", "sending", "failed")
    again = wait_for(
        lambda: (
            (s := _status(client, operator_headers, fast, failed["id"]))["status"] == "failed"
            and s["attempts"] == 1
            and s
        )
    )
    assert again["reason"].startswith("not_on_whatsapp")  # tried once more, same answer


def test_pacing_spaces_messages_and_says_why_they_wait(
    client, operator_headers, sandbox_session, app
):
    session = db.session.get(WaSession, sandbox_session)
    session.settings = {"pacing": {"min_interval": 0.6, "jitter": 0}}
    db.session.commit()
    ids = [
        _send(
            client, operator_headers, sandbox_session, {"to": "081234567890", "text": str(i)}
        ).json["id"]
        for i in range(3)
    ]
    wait_for(
        lambda: (
            _status(client, operator_headers, sandbox_session, ids[1])["waiting"] or ""
        ).startswith("pacing: minimum interval between messages (not before "),
        what="a pacing reason",
    )
    rows = wait_for(
        lambda: (
            (r := db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.seq)).all())
            and all(row.sent_at for row in r)
            and r
        ),
        what="all three sent",
    )
    gaps = [(b.sent_at - a.sent_at).total_seconds() for a, b in zip(rows, rows[1:], strict=False)]
    assert all(gap >= 0.6 for gap in gaps), gaps


def test_bad_pacing_settings_are_refused(client, operator_headers, sandbox_session):
    response = client.patch(
        f"/api/v1/sessions/{sandbox_session}",
        headers=operator_headers,
        json={"settings": {"pacing": {"quiet_start": "25:00", "quiet_end": "06:00"}}},
    )
    assert response.status_code == 422


PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
    b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00"
    b"\x05\x00\x01\xff\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


def test_media_by_base64_upload_and_sticker(client, operator_headers, fast):
    import base64
    import io

    photo = base64.b64encode(PNG).decode()
    by_json = _send(
        client,
        operator_headers,
        fast,
        {
            "to": "081234567890",
            "type": "image",
            "text": "lampu mati",
            "media": {"base64": photo, "mimetype": "image/png"},
        },
    )
    assert by_json.status_code == 202, by_json.json
    upload = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        data={
            "to": "081234567890",
            "type": "document",
            "text": "laporan",
            "file": (io.BytesIO(b"%PDF-1.4 report"), "laporan.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert upload.status_code == 202, upload.json
    sticker = _send(
        client,
        operator_headers,
        fast,
        {"to": "081234567890", "type": "sticker", "media": {"base64": photo}},
    )
    assert sticker.status_code == 202, sticker.json
    deliveries = wait_for(lambda: (d := _deliveries(fast)) and len(d) == 3 and d)
    by_kind = {d.kind: d.content for d in deliveries}
    assert by_kind["image"]["text"] == "lampu mati"
    assert by_kind["image"]["media"]["mimetype"] == "image/png"
    assert by_kind["document"]["media"]["filename"] == "laporan.pdf"
    assert by_kind["document"]["media"]["mimetype"] == "application/pdf"
    assert by_kind["sticker"]["media"]["mimetype"] == "image/webp"
    bad = _send(
        client,
        operator_headers,
        fast,
        {"to": "081234567890", "type": "image", "media": {"base64": "%%%"}},
    )
    assert bad.status_code == 422
    unsafe = _send(
        client,
        operator_headers,
        fast,
        {"to": "081234567890", "type": "image", "media": {"url": "http://127.0.0.1:1/x.png"}},
    )
    assert unsafe.status_code == 422 and unsafe.json["code"] == "unsafe_url"


def test_outbox_across_sessions_filters_by_status(client, operator_headers, fast, make_user, login):
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    waiting = _send(
        client, operator_headers, fast, {"to": "081234567890", "text": "later", "send_at": later}
    ).json
    now = _send(client, operator_headers, fast, {"to": "081234567890", "text": "now"}).json
    wait_for(lambda: _status(client, operator_headers, fast, now["id"])["status"] != "queued")
    queued = client.get("/api/v1/outbox?status=queued", headers=operator_headers).json
    assert [m["id"] for m in queued["items"]] == [waiting["id"]]
    everything = client.get(f"/api/v1/outbox?session={fast}", headers=operator_headers).json
    assert len(everything["items"]) == 2
    stranger = login(make_user("operator"))
    assert client.get("/api/v1/outbox", headers=stranger).json["items"] == []
    bad = client.get("/api/v1/outbox?status=lost", headers=operator_headers)
    assert bad.status_code == 422
