"""fonnte's webhook bodies, made from Kabar's stored events.

A webhook endpoint with ``format: "fonnte"`` receives, instead of Kabar's envelope:

- an inbound message (``message.received``, not the session's own): fonnte's incoming
  message body (``sender``, ``message``, ``member``, ``name``, ``location``, ``url``…);
- a message the session sent (``message.sent``) and its receipts (``message.status``):
  fonnte's message-status body (``id``, ``stateid``, ``status``, ``state``);
- the session connecting or disconnecting (``session.status``): fonnte's device-status
  body (``device``, ``status`` connect/disconnect, ``reason``…).

Other events have no fonnte shape and are not sent to such an endpoint (``applies``).
Deliveries are signed, retried and ordered like every Kabar webhook.
"""

from __future__ import annotations

import mimetypes
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import sqlalchemy as sa
from flask import current_app
from itsdangerous import URLSafeTimedSerializer

from server.models import Message, OutboxMessage, StoredEvent, WaSession, db

CONNECT = {"connected"}
DISCONNECT = {"disconnected", "logged_out", "banned", "failed", "stopped"}
# How long a media link in a webhook works (fonnte keeps webhook files 30 minutes).
MEDIA_LINK_SECONDS = 30 * 60
_MEDIA_SALT = "kabar-fonnte-media"


def applies(event_type: str, data: dict[str, Any]) -> bool:
    """Whether fonnte has a body for this event (else a fonnte endpoint skips it)."""
    if event_type == "message.received":
        return not (data.get("message") or {}).get("from_me")
    if event_type in ("message.sent", "message.status"):
        return True
    if event_type == "session.status":
        return data.get("status") in CONNECT | DISCONNECT
    return False


def body(row: StoredEvent) -> dict[str, Any]:
    session = db.session.get(WaSession, row.session_id) if row.session_id else None
    device = (session.phone if session else None) or ""
    if row.type == "message.received":
        return _incoming(row, session, device)
    if row.type in ("message.sent", "message.status"):
        return _message_status(row, device)
    return _device_status(row, device)


def _phone(party: dict[str, Any]) -> str:
    return party.get("phone") or (party.get("jid") or "").split("@", 1)[0]


def _timestamp(value: str | None, fallback: datetime) -> int:
    try:
        return (
            int(datetime.fromisoformat(value).timestamp()) if value else int(fallback.timestamp())
        )
    except ValueError:
        return int(fallback.timestamp())


def _extension(media: dict[str, Any]) -> str:
    suffix = PurePosixPath(media.get("filename") or "").suffix
    if not suffix:
        suffix = mimetypes.guess_extension(media.get("mimetype") or "") or ""
    return suffix.lstrip(".")


def _incoming(row: StoredEvent, session: WaSession | None, device: str) -> dict[str, Any]:
    message = row.data["message"]
    sender, chat = message["sender"], message["chat"]
    group = bool(message.get("is_group"))
    stored = (
        db.session.scalar(
            sa.select(Message).where(
                Message.session_id == row.session_id,
                Message.chat_jid == chat["jid"],
                Message.wa_id == message["id"],
            )
        )
        if row.session_id
        else None
    )
    media = message.get("media") or {}
    place = message.get("location") or {}
    text = message.get("text") or ""
    who = chat["jid"] if group else _phone(sender)
    return {
        "device": device,
        "sender": who,
        "pengirim": who,
        "member": _phone(sender) if group else "",
        "name": sender.get("name") or "",
        "message": text,
        "pesan": text,
        "text": "",
        "quick": False,
        "isgroup": group,
        "isforwarded": False,
        "type": {"voice": "audio"}.get(message["kind"], message["kind"]),
        "location": f"{place['latitude']},{place['longitude']}" if place else "",
        "url": media_link(stored) if media and stored is not None else "",
        "filename": media.get("filename") or "" if media else "",
        "extension": _extension(media) if media else "",
        "pollname": "",
        "choices": [],
        "inboxid": stored.seq if stored is not None else None,
        "timestamp": _timestamp(message.get("timestamp"), row.created_at),
    }


def _message_status(row: StoredEvent, device: str) -> dict[str, Any]:
    data = row.data
    if row.type == "message.sent":
        outbox = db.session.scalar(
            sa.select(OutboxMessage).where(OutboxMessage.id == data["message_id"])
        )
        wa_id, state = data["wa_id"], "sent"
    else:
        wa_id, state = (data.get("message_ids") or [""])[0], data["status"]
        outbox = db.session.scalar(
            sa.select(OutboxMessage).where(
                OutboxMessage.session_id == row.session_id, OutboxMessage.wa_id == wa_id
            )
        )
    return {
        "device": device,
        "id": outbox.seq if outbox is not None else None,
        "stateid": wa_id,
        "status": "failed" if state == "failed" else "sent",
        "state": state,
        "reason": data.get("reason") or "",
        "timestamp": _timestamp(data.get("timestamp"), row.created_at),
    }


def _device_status(row: StoredEvent, device: str) -> dict[str, Any]:
    data = row.data
    return {
        "device": data.get("phone") or device,
        "status": "connect" if data["status"] in CONNECT else "disconnect",
        "reason": data.get("reason") or "",
        "token": row.session_id or "",
        "timestamp": int(row.created_at.timestamp()),
    }


# --- media links ----------------------------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_MEDIA_SALT)


def media_link(message: Message) -> str:
    """A link to the message's file that works without a token for 30 minutes, as
    fonnte's webhook ``url`` does (``GET /fonnte/media/<signed>``). Absolute when
    KABAR_PUBLIC_URL is set, else a path."""
    signed = _serializer().dumps(message.id)
    base = (current_app.config["KABAR"].get("PUBLIC_URL") or "").rstrip("/")
    return f"{base}/fonnte/media/{signed}"


def message_of_link(signed: str) -> Message | None:
    """The message a media link names, while the link is valid."""
    from itsdangerous import BadSignature

    try:
        message_id = _serializer().loads(signed, max_age=MEDIA_LINK_SECONDS)
    except BadSignature:
        return None
    return db.session.scalar(sa.select(Message).where(Message.id == message_id))
