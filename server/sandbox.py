"""Sandbox controls (scan the QR, speak as a contact, inject faults): the service behind
/api/v1/sandbox and `kabar sandbox`. The simulated network itself is
server/whatsapp/sandbox.py, in the runtime process."""

from __future__ import annotations

import base64
import binascii

from server.errors import Conflict, ValidationFailed
from server.models import WaSession
from server.runtime import commands, heartbeat

INJECT_TIMEOUT = 10.0


def require_sandbox(session: WaSession) -> WaSession:
    if session.transport != "sandbox":
        raise Conflict("This is a real WhatsApp session, not a sandbox one.",
                       code="not_sandbox")
    return session


def scan(session: WaSession, *, phone: str, push_name: str = "") -> dict:
    require_sandbox(session)
    return commands.call("sandbox.scan", session_id=session.id,
                         payload={"phone": phone, "push_name": push_name})


def _media_kind(mimetype: str) -> str:
    major = mimetype.split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "audio"}.get(major, "document")


def say(session: WaSession, *, sender: str, text: str = "", name: str = "",
        kind: str | None = None, media: dict | None = None, location: dict | None = None,
        quoted_id: str | None = None, group: str | None = None) -> tuple[str, str | None]:
    """A virtual contact sends the session a message.

    Returns ("delivered", WhatsApp message id), or ("queued", None) when the runtime is
    down: the command is durable and runs when the runtime is back.
    """
    require_sandbox(session)
    if media:
        try:
            base64.b64decode(media["data"], validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed(errors={"media": {"data": ["Not valid base64."]}}) from None
    if not (text or media or location):
        raise ValidationFailed(errors={"text": ["Say something: text, media or a location."]})
    payload = {"from": sender, "name": name, "text": text, "quoted_id": quoted_id,
               "group": group, "media": media, "location": location,
               "kind": kind or ("location" if location else
                                _media_kind(media["mimetype"]) if media else "text")}
    if not heartbeat.state().alive:
        commands.submit("sandbox.inject", session_id=session.id, payload=payload)
        return "queued", None
    result = commands.call("sandbox.inject", session_id=session.id, payload=payload,
                           timeout=INJECT_TIMEOUT)
    return "delivered", result["message_id"]


def fault(session: WaSession, *, kind: str, count: int = 1) -> None:
    require_sandbox(session)
    commands.call("sandbox.fault", session_id=session.id,
                  payload={"kind": kind, "count": count})
