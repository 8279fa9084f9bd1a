"""Sandbox controls (scan the QR, speak as a contact, act on groups and vote as one,
inject faults): the service behind /api/v1/sandbox and `kabar sandbox`. The simulated
network itself is server/whatsapp/sandbox.py, in the runtime process.

Input is checked here, so both the API and the CLI answer a typo with a clear 422 and a
group or poll that does not exist with a 404, before the runtime is asked anything.
"""

from __future__ import annotations

import base64
import binascii

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app

from server.errors import Conflict, NotFound, ValidationFailed
from server.models import OutboxMessage, SandboxDelivery, WaSession, db
from server.runtime import commands, heartbeat
from server.runtime.handlers import sandbox_controls as handlers
from server.whatsapp.jids import InvalidPhone, normalise_phone, parse_group_jid, parse_participants

GROUP_FIELDS = ("name", "topic", "announce", "locked")


def require_sandbox(session: WaSession) -> WaSession:
    if session.transport != "sandbox":
        raise Conflict("This is a real WhatsApp session, not a sandbox one.", code="not_sandbox")
    return session


def scan(session: WaSession, *, phone: str, push_name: str = "") -> dict:
    require_sandbox(session)
    return commands.call(
        handlers.SANDBOX_SCAN,
        session_id=session.id,
        payload={"phone": phone, "push_name": push_name},
    )


def received(session: WaSession, *, to: str | None = None) -> sa.Select:
    """What the session's virtual contacts received, oldest first (``to``: one contact, a
    number as typed or a JID)."""
    require_sandbox(session)
    query = sa.select(SandboxDelivery).where(SandboxDelivery.session_id == session.id)
    if to:
        try:
            region = current_app.config["KABAR"]["PHONE_REGION"]
            jid = to if "@" in to else f"{normalise_phone(to, region)}@s.whatsapp.net"
        except InvalidPhone as exc:
            raise ValidationFailed(errors={"to": [str(exc)]}) from None
        query = query.where(SandboxDelivery.to_jid == jid)
    return query


def _media_kind(mimetype: str) -> str:
    major = mimetype.split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "audio"}.get(major, "document")


def say(
    session: WaSession,
    *,
    sender: str,
    text: str = "",
    name: str = "",
    kind: str | None = None,
    media: dict | None = None,
    location: dict | None = None,
    quoted_id: str | None = None,
    group: str | None = None,
) -> tuple[str, str | None]:
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
    payload = {
        "from": sender,
        "name": name,
        "text": text,
        "quoted_id": quoted_id,
        "group": group,
        "media": media,
        "location": location,
        "kind": kind
        or ("location" if location else _media_kind(media["mimetype"]) if media else "text"),
    }
    if not heartbeat.state().alive:
        commands.submit(handlers.SANDBOX_INJECT, session_id=session.id, payload=payload)
        return "queued", None
    result = commands.call(handlers.SANDBOX_INJECT, session_id=session.id, payload=payload)
    return "delivered", result["message_id"]


def contact_participants(
    session: WaSession,
    *,
    sender: str,
    group: str,
    action: str,
    participants: list[str],
    name: str = "",
) -> list[dict]:
    """Virtual contact ``sender``, an admin of ``group``, adds, removes, promotes or
    demotes people there; the session's own number adds or removes the session (it sees
    group.joined / group.left, the others group.participants). One result per person."""
    require_sandbox(session)
    return _group_call(
        session,
        handlers.SANDBOX_GROUP_PARTICIPANTS,
        {
            "from": _phone(sender),
            "name": name,
            "group": parse_group_jid(group, "group"),
            "action": action,
            "participants": parse_participants(
                participants, current_app.config["KABAR"]["PHONE_REGION"]
            ),
        },
    )


def contact_update_group(
    session: WaSession, *, sender: str, group: str, changes: dict, name: str = ""
) -> list[str]:
    """Virtual contact ``sender`` changes the group's name, topic, announce or locked
    (a locked group's info, and the settings, only as an admin). Answers what changed."""
    require_sandbox(session)
    changes = {k: v for k, v in changes.items() if k in GROUP_FIELDS and v is not None}
    if not changes:
        raise ValidationFailed(
            "Give at least one of name, topic, announce, locked.",
            errors={"changes": ["Nothing to change."]},
        )
    return _group_call(
        session,
        handlers.SANDBOX_GROUP_UPDATE,
        {
            "from": _phone(sender),
            "name": name,
            "group": parse_group_jid(group, "group"),
            "changes": changes,
        },
    )


def vote(
    session: WaSession, *, sender: str, poll_id: str, options: list[str], name: str = ""
) -> dict:
    """Virtual contact ``sender`` votes in a poll this session sent (``poll_id``: its
    WhatsApp id, or Kabar's message id). ``options`` are names from the poll; empty takes
    the vote back. The runtime checks the contact can see the poll (its recipient, or a
    member of its group)."""
    require_sandbox(session)
    delivery = _sent_poll(session, poll_id)
    poll = delivery.content["poll"]
    unknown = [o for o in options if o not in poll["options"]]
    if unknown:
        raise ValidationFailed(
            f"Not options of this poll: {', '.join(map(repr, unknown))}. It has "
            f"{', '.join(map(repr, poll['options']))}.",
            code="invalid_poll_option",
            errors={"options": [f"{o!r} is not an option of this poll." for o in unknown]},
        )
    picked = [o for o in poll["options"] if o in options]  # the poll's order, once each
    if len(picked) > 1 and not poll.get("multiple"):
        raise ValidationFailed(
            "This poll allows one choice.",
            code="invalid_poll_option",
            errors={"options": ["Pick at most one."]},
        )
    return commands.call(
        handlers.SANDBOX_VOTE,
        session_id=session.id,
        payload={
            "from": _phone(sender),
            "name": name,
            "poll_id": delivery.wa_id,
            "chat": delivery.to_jid,
            "options": picked,
        },
    )


def _phone(text: str) -> str:
    try:
        return normalise_phone(text, current_app.config["KABAR"]["PHONE_REGION"])
    except InvalidPhone as exc:
        raise ValidationFailed(errors={"from": [str(exc)]}) from None


def _group_call(session: WaSession, kind: str, payload: dict):
    """A group action in the runtime; a group the sandbox does not have is a 404."""
    try:
        return commands.call(kind, session_id=session.id, payload=payload)
    except commands.CommandFailed as exc:
        if exc.code == "group_not_found":
            raise NotFound(exc.message, code=exc.code) from None
        raise


def _sent_poll(session: WaSession, poll_id: str) -> SandboxDelivery:
    """The poll as the sandbox delivered it, by WhatsApp id or by Kabar's message id."""
    wa_id = (
        db.session.scalar(
            sa.select(OutboxMessage.wa_id).where(
                OutboxMessage.session_id == session.id, OutboxMessage.id == poll_id
            )
        )
        or poll_id
    )
    delivery = db.session.scalar(
        sa.select(SandboxDelivery).where(
            SandboxDelivery.session_id == session.id, SandboxDelivery.wa_id == wa_id
        )
    )
    if delivery is None or delivery.kind != "poll":
        raise NotFound(
            f"This session has sent no poll {poll_id!r} (a poll is known once it "
            "is sent, not while it waits in the outbox).",
            code="poll_not_found",
        )
    return delivery


def fault(session: WaSession, *, kind: str, count: int = 1) -> None:
    require_sandbox(session)
    commands.call(
        handlers.SANDBOX_FAULT, session_id=session.id, payload={"kind": kind, "count": count}
    )


def call(session: WaSession, *, sender: str, name: str = "", video: bool = False) -> dict:
    """A virtual contact calls the session: a call.received event; it rings until
    rejected (POST /sessions/{id}/calls/{call_id}/reject)."""
    require_sandbox(session)
    return commands.call(
        handlers.SANDBOX_CALL,
        session_id=session.id,
        payload={"from": sender, "name": name, "video": video},
    )


def history(session: WaSession, *, messages: list[dict]) -> list[str]:
    """WhatsApp's history sync after a reconnect: the messages arrive as
    message.backfilled (stored once per id, never seen by workflows)."""
    require_sandbox(session)
    payload = [
        {**m, "timestamp": m["timestamp"].isoformat() if m.get("timestamp") else None}
        for m in messages
    ]
    return commands.call(
        handlers.SANDBOX_HISTORY, session_id=session.id, payload={"messages": payload}
    )


class MediaSchema(ma.Schema):
    data = ma.fields.String(required=True, metadata={"description": "base64"})
    mimetype = ma.fields.String(required=True)
    filename = ma.fields.String(load_default=None, allow_none=True)


class LocationSchema(ma.Schema):
    latitude = ma.fields.Float(required=True, validate=ma.validate.Range(-90, 90))
    longitude = ma.fields.Float(required=True, validate=ma.validate.Range(-180, 180))
    name = ma.fields.String(load_default=None, allow_none=True)
    address = ma.fields.String(load_default=None, allow_none=True)


class InjectSchema(ma.Schema):
    from_ = ma.fields.String(
        required=True,
        data_key="from",
        metadata={"description": "The virtual contact's phone number, as people type it."},
    )
    name = ma.fields.String(load_default="", validate=ma.validate.Length(0, 128))
    text = ma.fields.String(load_default="", validate=ma.validate.Length(0, 65536))
    kind = ma.fields.String(
        load_default=None,
        validate=ma.validate.OneOf(
            ["text", "image", "video", "audio", "voice", "document", "sticker", "location"]
        ),
    )
    media = ma.fields.Nested(MediaSchema, load_default=None)
    location = ma.fields.Nested(LocationSchema, load_default=None)
    quoted_id = ma.fields.String(load_default=None)
    group = ma.fields.String(
        load_default=None,
        metadata={"description": "A group JID (…@g.us) to speak in, instead of a private chat."},
    )
