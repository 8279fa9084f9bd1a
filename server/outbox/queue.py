"""The one send path: every message Kabar sends, from REST, workflows, webhook actions
or the helpdesk, is validated here and becomes one outbox row before anything else.
The runtime's dispatcher (``dispatcher.py``) takes it from there."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import FileStorage

from server import group_commit, inputs
from server.errors import Conflict, KabarError, NotFound, ValidationFailed
from server.models import (
    FINAL_STATUSES,
    PRIORITIES,
    WAITING_STATUSES,
    Message,
    OutboxMessage,
    WaSession,
    db,
    utcnow,
)
from server.outbox import recipients
from server.outbox.schema import MEDIA_KINDS, SendSpec, load_plain_text
from server.runtime import wakeup
from server.whatsapp.jids import InvalidPhone, normalise_phone
from server.whatsapp.transport import new_message_id


def region() -> str:
    return current_app.config["KABAR"]["PHONE_REGION"]


def _spec_schema(has_upload: bool) -> SendSpec:
    schema = SendSpec()
    schema.has_upload = has_upload
    return schema


# Built once: making a marshmallow schema costs several times loading a request with it,
# and loading keeps no state on the schema, so threads share these two.
_SCHEMAS = {False: _spec_schema(False), True: _spec_schema(True)}


def validate(spec: dict[str, Any], *, has_upload: bool = False) -> dict[str, Any]:
    """Load a send request with the shared schema; 422 with field errors if it is wrong."""
    inputs.check_json(spec)  # workflows and webhook actions send without an HTTP request
    plain = load_plain_text(spec)
    if plain is not None:
        return plain
    try:
        return _SCHEMAS[has_upload].load(spec)
    except ma.ValidationError as exc:
        raise ValidationFailed(errors=exc.messages) from None


def send(
    session: WaSession,
    spec: dict[str, Any],
    *,
    idempotency_key: str | None = None,
    source: str = "api",
    upload: FileStorage | None = None,
    broadcast_id: str | None = None,
    commit: bool = True,
    validated: bool = False,
    grouped: bool = False,
) -> tuple[OutboxMessage, bool]:
    """Queue one message. Returns (row, created); created is False when the idempotency
    key was seen before, in which case the original row comes back and nothing is sent.

    ``grouped``: the row alone is stored, in the group commit of this process
    (``server/group_commit.py``), for a caller whose transaction holds nothing else (the
    REST send); it returns once the row is committed, as a commit would."""
    if idempotency_key and not grouped:
        existing = _by_key(session, idempotency_key)
        if existing is not None:
            return _same_request(existing, spec), False
    try:
        data = spec if validated else validate(spec, has_upload=upload is not None)
        payload = payload_of(session, data, upload)
        to_jid = recipients.resolve(session, data["to"], region())
    except KabarError:
        # Grouped, the key is looked up only when needed: the group commit's INSERT … ON
        # CONFLICT tells a repeat, and a request refused here may still repeat a stored
        # one, which answers as it always did (the stored row, or 409 for another body).
        existing = _by_key(session, idempotency_key) if grouped and idempotency_key else None
        if existing is None:
            raise
        return _same_request(existing, spec), False
    # Media given by URL is fetched by the runtime (server/runtime/media_fetcher.py), never
    # in this request: a slow server must not hold a web thread. Until its bytes are
    # stored the row is "fetching", which the dispatcher does not send.
    fetching = needs_fetch(payload)
    row = OutboxMessage(
        session_id=session.id,
        idempotency_key=idempotency_key,
        wa_id=new_message_id(),
        to_jid=to_jid,
        kind=data["type"],
        payload=payload,
        priority=PRIORITIES[data["priority"]],
        source=source,
        send_at=data["send_at"],
        not_before=None if fetching else data["send_at"],
        expires_at=data["expires_at"],
        broadcast_id=broadcast_id,
        status="fetching" if fetching else "queued",
        waiting="fetching the media from its URL" if fetching else None,
    )
    row.payload["request_hash"] = request_hash(spec)
    if grouped:
        return _grouped(session, row, spec)
    db.session.add(row)
    if not commit:
        return row, True
    try:
        db.session.commit()
    except IntegrityError:  # the same key, raced by a concurrent request
        db.session.rollback()
        existing = _by_key(session, idempotency_key) if idempotency_key else None
        if existing is None:
            raise
        return _same_request(existing, spec), False
    wakeup.notify()
    return row, True


def _grouped(
    session: WaSession, row: OutboxMessage, spec: dict[str, Any]
) -> tuple[OutboxMessage, bool]:
    now = utcnow()
    row.id, row.attempts, row.created_at, row.updated_at = str(uuid.uuid4()), 0, now, now
    values = {
        column.key: getattr(row, column.key)
        for column in OutboxMessage.__table__.c
        if column.key != "seq"
    }
    if group_commit.writer(db.engine, _wake_runtime).insert(OutboxMessage.__table__, values):
        return row, True  # not in this request's session: it was stored by the writer
    existing = _by_key(session, row.idempotency_key) if row.idempotency_key else None
    if existing is None:  # nothing else is unique that a new row could take
        raise Conflict("The message could not be stored; send it again.", code="outbox_conflict")
    return _same_request(existing, spec), False


def _wake_runtime(connection: sa.Connection) -> None:
    """In each group commit's transaction: PostgreSQL delivers the NOTIFY with it."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": wakeup.CHANNEL})


def request_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def _by_key(session: WaSession, key: str) -> OutboxMessage | None:
    return db.session.scalar(
        sa.select(OutboxMessage).where(
            OutboxMessage.session_id == session.id, OutboxMessage.idempotency_key == key
        )
    )


def _same_request(row: OutboxMessage, spec: dict[str, Any]) -> OutboxMessage:
    if row.payload.get("request_hash") not in (None, request_hash(spec)):
        raise Conflict(
            "This Idempotency-Key was used for a different request. Use a new "
            "key for a new message.",
            code="idempotency_key_reused",
        )
    return row


def payload_of(
    session: WaSession, data: dict[str, Any], upload: FileStorage | None
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "text": data["text"],
        "link_preview": data["link_preview"],
        "typing": data["typing"],
    }
    if data["mentions"]:
        payload["mentions"] = [
            recipients.person_or_jid(m, region(), field="mentions") for m in data["mentions"]
        ]
    if data["reply_to"]:
        payload["quoted"] = _quoted(session, data["reply_to"])
    if data["type"] in MEDIA_KINDS:
        payload["media"] = resolve_media(data["type"], data.get("media") or {}, upload)
    if data["location"]:
        payload["location"] = data["location"]
    if data["contacts"]:
        payload["vcards"] = [c["vcard"] or _vcard(c["name"], c["phone"]) for c in data["contacts"]]
    if data["poll"]:
        payload["poll"] = data["poll"]
    return payload


def resolve_media(
    kind: str, spec: dict[str, Any], upload: FileStorage | None = None
) -> dict[str, Any]:
    """Bring the media into the store (upload, base64 or a known sha256) and describe it
    for the payload. A URL is not fetched here: it comes back as ``{"url": …}`` for the
    runtime's media fetcher (see ``needs_fetch``), after a check that needs no network."""
    from server import media, netguard

    if upload is not None:
        stored = media.from_upload(upload)
    elif spec.get("url"):
        netguard.check_url_offline(spec["url"], allow=current_app.config["KABAR"]["FETCH_ALLOW"])
        return {
            "url": spec["url"],
            "mimetype": spec.get("mimetype"),
            "filename": spec.get("filename"),
        }
    elif spec.get("base64"):
        stored = media.from_base64(
            spec["base64"], mimetype=spec.get("mimetype"), filename=spec.get("filename")
        )
    else:
        stored = media.get(spec["sha256"])
    return prepared_media(kind, stored, spec)


def prepared_media(kind: str, stored, spec: dict[str, Any]) -> dict[str, Any]:
    """The payload's description of stored media, made into what ``kind`` needs (a voice
    note is Ogg Opus, a sticker WebP: ``server.media_convert``); the one place accepted
    and fetched media both go through. Converted media carries its real type, whatever
    the request said."""
    from server import media, media_convert

    original = media.open_bytes(stored.sha256) if kind in media_convert.KINDS else b""
    converted = media_convert.for_kind(kind, original)
    if converted is not None:
        data, mimetype = converted
        if data is not original:
            stored = media.store(data, mimetype=mimetype, filename=None)
        return {
            "sha256": stored.sha256,
            "mimetype": mimetype,
            "filename": None,
            "size": stored.size,
        }
    return {
        "sha256": stored.sha256,
        "mimetype": spec.get("mimetype") or stored.mimetype,
        "filename": spec.get("filename") or stored.filename,
        "size": stored.size,
    }


def needs_fetch(payload: dict[str, Any]) -> bool:
    """True when the payload's media is still a URL the runtime has to fetch."""
    media = payload.get("media") or {}
    return bool(media.get("url")) and not media.get("sha256")


def _quoted(session: WaSession, reference: str) -> dict[str, Any]:
    try:
        message = history_message(session, reference)
    except NotFound:
        raise ValidationFailed(
            errors={
                "reply_to": [f"No message {reference!r} in this session's history to reply to."]
            }
        ) from None
    return {
        "id": message.wa_id,
        "sender": message.sender_jid,
        "text": message.text,
        "chat": message.chat_jid,
    }


def _vcard(name: str, phone: str) -> str:
    try:
        number = normalise_phone(phone, region())
    except InvalidPhone as exc:
        raise ValidationFailed(errors={"contacts": [str(exc)]}) from None
    return f"BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nTEL;type=CELL;waid={number}:+{number}\nEND:VCARD"


# --- message actions ----------------------------------------------------------------------


_KABAR_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def history_message(session: WaSession, reference: str) -> Message:
    """A message of the session's history, by Kabar id or WhatsApp id (each look-up has
    its index, so the cost does not grow with the history)."""
    message = None
    if _KABAR_ID.fullmatch(reference):  # a Kabar id is a UUID; else by WhatsApp id only
        message = db.session.scalar(
            sa.select(Message).where(Message.id == reference, Message.session_id == session.id)
        )
    if message is None:
        message = db.session.scalar(
            sa.select(Message)
            .where(Message.session_id == session.id, Message.wa_id == reference)
            .limit(1)
        )
    if message is None:
        raise NotFound(
            f"No message {reference!r} in this session's history.", code="message_not_found"
        )
    return message


def act(
    session: WaSession,
    reference: str,
    kind: str,
    *,
    text: str = "",
    idempotency_key: str | None = None,
    source: str = "api",
) -> tuple[OutboxMessage, bool]:
    """React to, edit or revoke a message: an outbox row like any send (high priority)."""
    if idempotency_key:
        existing = _by_key(session, idempotency_key)
        if existing is not None:
            return existing, False
    target = history_message(session, reference)
    if kind in ("edit", "revoke") and not target.from_me:
        raise Conflict(
            f"Only messages this session sent can be {kind}ed"
            f"{'' if kind == 'edit' else ' for everyone'}.",
            code="not_own_message",
        )
    if kind == "edit" and target.kind != "text":
        raise Conflict("Only text messages can be edited.", code="not_editable")
    row = OutboxMessage(
        session_id=session.id,
        idempotency_key=idempotency_key,
        wa_id=new_message_id(),
        to_jid=target.chat_jid,
        kind=kind,
        priority=PRIORITIES["high"],
        source=source,
        payload={
            "text": text,
            "target": {"id": target.wa_id, "sender": target.sender_jid, "message": target.id},
        },
    )
    db.session.add(row)
    db.session.commit()
    wakeup.notify()
    return row, True


# --- reading and changing queued messages ---------------------------------------------


def listing(
    *,
    status: str | None = None,
    session: WaSession | None = None,
    since=None,
    until=None,
    broadcast: str | None = None,
) -> sa.Select:
    """Outgoing messages of the sessions the caller may see, filtered (the outbox API
    and the dashboard's outbox page)."""
    from server import sessions

    visible = sessions.visible().with_only_columns(WaSession.id)
    query = sa.select(OutboxMessage).where(OutboxMessage.session_id.in_(visible))
    if session is not None:
        query = query.where(OutboxMessage.session_id == session.id)
    if status:
        query = query.where(OutboxMessage.status == status)
    if since:
        query = query.where(OutboxMessage.created_at >= since)
    if until:
        query = query.where(OutboxMessage.created_at < until)
    if broadcast:
        query = query.where(OutboxMessage.broadcast_id == broadcast)
    return query


def get(session: WaSession, message_id: str) -> OutboxMessage:
    row = db.session.scalar(
        sa.select(OutboxMessage).where(
            OutboxMessage.session_id == session.id,
            sa.or_(OutboxMessage.id == message_id, OutboxMessage.wa_id == message_id),
        )
    )
    if row is None:
        raise NotFound(
            f"No outgoing message {message_id!r} in this session.", code="message_not_found"
        )
    return row


def _still_queued(row: OutboxMessage, action: str) -> None:
    if row.status not in WAITING_STATUSES:
        raise Conflict(
            f"Only a queued message can be {action}; this one is {row.status}.",
            code="message_not_queued",
        )


def cancel(row: OutboxMessage, *, reason: str = "cancelled by request") -> OutboxMessage:
    # Conditional: the dispatcher may be taking it right now; then it is too late.
    done = db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.seq == row.seq, OutboxMessage.status.in_(WAITING_STATUSES))
        .values(status="cancelled", reason=reason, waiting=None, updated_at=utcnow())
    ).rowcount
    db.session.commit()
    db.session.refresh(row)
    if not done:
        _still_queued(row, "cancelled")
    return row


def reschedule(
    row: OutboxMessage, *, send_at=None, expires_at=None, clear_expiry: bool = False
) -> OutboxMessage:
    _still_queued(row, "rescheduled")
    if send_at is not None:
        row.send_at = send_at
        if row.status == "queued":  # a fetching row gets not_before when it is fetched
            row.not_before, row.waiting = send_at, None
    if expires_at is not None or clear_expiry:
        row.expires_at = expires_at
    if row.send_at and row.expires_at and row.expires_at <= row.send_at:
        raise ValidationFailed(errors={"expires_at": ["Must be after send_at."]})
    db.session.commit()
    wakeup.notify()
    return row


def retry(row: OutboxMessage) -> OutboxMessage:
    """Queue a failed or expired message again (same WhatsApp id: never a duplicate)."""
    if row.status not in FINAL_STATUSES - {"cancelled"}:
        raise Conflict(
            f"Only a failed or expired message can be retried; this one is {row.status}.",
            code="message_not_retryable",
        )
    fetching = needs_fetch(row.payload)  # its media URL failed: fetch it again first
    row.status = "fetching" if fetching else "queued"
    row.reason, row.waiting = None, "fetching the media from its URL" if fetching else None
    row.not_before, row.expires_at, row.attempts = None, None, 0
    db.session.commit()
    wakeup.notify()
    return row
