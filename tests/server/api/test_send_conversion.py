"""Voice notes and stickers leave as what WhatsApp plays (Ogg Opus, 512x512 WebP), and
what cannot be made so is refused with a clear error, never sent under a false label."""

from __future__ import annotations

import base64
import io
import subprocess

import sqlalchemy as sa
from PIL import Image

from server import media
from server.media_convert import is_ogg_opus
from server.models import OutboxMessage, SandboxDelivery, db
from tests.server.conftest import wait_for


def _mp3(tmp_path) -> bytes:
    target = tmp_path / "note.mp3"
    subprocess.run(
        [
            "ffmpeg",
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:duration=1",
            "-c:a",
            "libmp3lame",
            str(target),
        ],
        check=True,
    )
    return target.read_bytes()


def _deliveries(sid):
    return db.session.scalars(
        sa.select(SandboxDelivery)
        .where(SandboxDelivery.session_id == sid)
        .order_by(SandboxDelivery.id)
    ).all()


def test_a_voice_note_is_sent_as_ogg_opus(client, operator_headers, fast, tmp_path):
    mp3 = _mp3(tmp_path)
    by_upload = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        data={
            "to": "081234567890",
            "type": "voice",
            "file": (io.BytesIO(mp3), "note.mp3", "audio/mpeg"),
        },
        content_type="multipart/form-data",
    )
    assert by_upload.status_code == 202, by_upload.json
    by_json = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        json={
            "to": "081234567890",
            "type": "voice",
            "media": {"base64": base64.b64encode(mp3).decode(), "mimetype": "audio/mpeg"},
        },
    )
    assert by_json.status_code == 202, by_json.json
    deliveries = wait_for(lambda: (d := _deliveries(fast)) and len(d) == 2 and d)
    for delivery in deliveries:
        assert delivery.kind == "voice"
        assert delivery.content["media"]["mimetype"] == "audio/ogg; codecs=opus"
    row = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.id == by_json.json["id"]))
    assert is_ogg_opus(media.open_bytes(row.payload["media"]["sha256"]))
    [delivered] = [d for d in deliveries if d.wa_id == row.wa_id]
    assert delivered.content["media"]["sha256"] == row.payload["media"]["sha256"]


def test_what_cannot_be_a_voice_note_or_sticker_is_refused(client, operator_headers, fast):
    junk = base64.b64encode(b"this is not audio").decode()
    voice = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        json={
            "to": "081234567890",
            "type": "voice",
            "media": {"base64": junk, "mimetype": "audio/ogg"},
        },
    )
    assert voice.status_code == 422 and voice.json["code"] == "invalid_audio"
    sticker = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        json={
            "to": "081234567890",
            "type": "sticker",
            "media": {"base64": junk, "mimetype": "image/webp"},
        },
    )
    assert sticker.status_code == 422 and sticker.json["code"] == "invalid_image"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_a_sticker_declared_webp_is_still_made_a_512_webp(client, operator_headers, fast):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 32), (0, 128, 0)).save(buffer, format="PNG")
    sent = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        json={
            "to": "081234567890",
            "type": "sticker",
            "media": {
                "base64": base64.b64encode(buffer.getvalue()).decode(),
                "mimetype": "image/webp",
            },
        },
    )
    assert sent.status_code == 202, sent.json
    [delivery] = wait_for(lambda: _deliveries(fast), what="the sticker")
    assert delivery.content["media"]["mimetype"] == "image/webp"
    data = media.open_bytes(delivery.content["media"]["sha256"])
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("WEBP", (512, 512))
