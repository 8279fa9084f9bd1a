"""Response actions: what a webhook receiver (and, later, a workflow node) may ask Kabar
to do about an event. Entry point: ``run(actions, event, key_prefix=...)``.

Each action is validated on its own; one that is invalid or fails is recorded with its
reason and the next one still runs. Messages go through the one send path
(``outbox.send``, source ``webhook``) with an idempotency key per action, so running the
same list twice never sends twice. Actions act for the event's session.

- ``reply`` {text} or {media: {url | base64, mimetype?, filename?, type?}, caption}, and
  ``quote``: true to quote the event's message: a message to the event's chat.
- ``send`` {message: a full send request with ``to``}: a message anywhere.
- ``react`` {emoji} ("" removes it): a reaction to the event's message.
- ``mark_read``: a read receipt for the event's message.
- ``typing`` {state: composing | recording | paused, seconds?}: shows typing…; seconds
  delay what follows.
- ``delay`` {seconds}: later ``reply`` and ``send`` actions are scheduled that much later.

Why these are not run as workflow nodes (DESIGN.md says they would be): they share what
matters with the nodes, the one send path (``outbox.send``) and the message it takes
(``server/outbox/schema.py``, which extends ``nodes/message.py`` as the send node does),
but an action list is not a workflow. Its actions are independent (an invalid or failed
one is recorded and the next still runs, where a failing node fails its run); a
receiver's answer would otherwise become a durable run row per delivery; and ``react``,
``mark_read`` and ``typing`` have no node yet. Running them through the engine needs
those nodes and a "go on after an error" edge first: its own piece of work.
"""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import marshmallow as ma

from server.errors import KabarError
from server.models import StoredEvent, WaSession, db, utcnow
from server.outbox import queue as outbox
from server.outbox.schema import MEDIA_KINDS
from server.runtime import live
from server.webhooks.fanout import chat_of

log = logging.getLogger(__name__)

MAX_ACTIONS = 20
MAX_DELAY = 3600.0
PRESENCE_EXPIRES = 60.0  # a typing indicator later than this is worthless


class _Action(ma.Schema):
    type = ma.fields.String(required=True)


class ActionType(ma.Schema):
    class Meta:
        unknown = ma.INCLUDE

    type = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(["reply", "send", "react", "mark_read", "typing", "delay"]),
    )


class ReplyMedia(ma.Schema):
    url = ma.fields.Url(load_default=None, schemes={"http", "https"})
    base64 = ma.fields.String(load_default=None)
    mimetype = ma.fields.String(load_default=None)
    filename = ma.fields.String(load_default=None, validate=ma.validate.Length(1, 255))
    type = ma.fields.String(load_default=None, validate=ma.validate.OneOf(sorted(MEDIA_KINDS)))

    @ma.validates_schema
    def _one_source(self, data, **_kwargs):
        if bool(data.get("url")) == bool(data.get("base64")):
            raise ma.ValidationError("Give media as url or base64 (one of them).")


class Reply(_Action):
    text = ma.fields.String(load_default="", validate=ma.validate.Length(0, 65536))
    media = ma.fields.Nested(ReplyMedia, load_default=None)
    caption = ma.fields.String(load_default="", validate=ma.validate.Length(0, 4096))
    quote = ma.fields.Boolean(load_default=False)

    @ma.validates_schema
    def _something(self, data, **_kwargs):
        if not data.get("media") and not data.get("text", "").strip():
            raise ma.ValidationError("A reply needs text or media.")


class Send(_Action):
    message = ma.fields.Dict(
        required=True,
        metadata={"description": "A send request as POST …/messages takes it, with `to`."},
    )


class React(_Action):
    emoji = ma.fields.String(required=True, validate=ma.validate.Length(0, 16))


class MarkRead(_Action):
    pass


class Typing(_Action):
    state = ma.fields.String(
        load_default="composing", validate=ma.validate.OneOf(live.PRESENCE_STATES)
    )
    seconds = ma.fields.Float(load_default=0.0, validate=ma.validate.Range(0, 60))


class Delay(_Action):
    seconds = ma.fields.Float(required=True, validate=ma.validate.Range(0, MAX_DELAY))


SCHEMAS: dict[str, type[ma.Schema]] = {
    "reply": Reply,
    "send": Send,
    "react": React,
    "mark_read": MarkRead,
    "typing": Typing,
    "delay": Delay,
}


class ActionFailed(KabarError):
    status = 409
    code = "action_failed"


@dataclass
class Context:
    """What the actions act on: the event's session, chat and message."""

    event: StoredEvent
    session: WaSession | None
    chat: str | None
    message_id: str | None  # WhatsApp's id of the event's message
    sender: str | None
    delay: float = 0.0

    @classmethod
    def of(cls, event: StoredEvent) -> Context:
        data = event.data or {}
        message = data.get("message") if event.type == "message.received" else None
        party = next(
            (data[k] for k in ("chat", "group", "caller") if isinstance(data.get(k), dict)), {}
        )
        chat = chat_of(event.type, data) or party.get("jid")
        message_id = (
            (message or {}).get("id")
            or data.get("poll_id")
            or data.get("wa_id")
            or (data.get("message_id") if event.type.startswith("message.") else None)
        )
        sender = ((message or {}).get("sender") or data.get("sender") or {}).get("jid")
        session = db.session.get(WaSession, event.session_id) if event.session_id else None
        if session is not None and session.deleted_at is not None:
            session = None
        return cls(event, session, chat, message_id, sender)

    def need(self, *what: str) -> None:
        if self.session is None:
            raise ActionFailed(
                "The event's session is gone (or the event has none).", code="no_session"
            )
        for name in what:
            if not getattr(self, name):
                raise ActionFailed(
                    f"A {self.event.type} event has no {name} to act on.", code=f"no_{name}"
                )

    def send_at(self) -> str | None:
        return (utcnow() + timedelta(seconds=self.delay)).isoformat() if self.delay else None


def run(actions: Any, event: StoredEvent, *, key_prefix: str) -> list[dict[str, Any]]:
    """Run ``actions`` (a receiver's list) for ``event``; one result per action, never
    raising. ``key_prefix`` makes the idempotency keys (unique per run, e.g. a delivery)."""
    if not isinstance(actions, list):
        return [
            {
                "index": None,
                "ok": False,
                "error": "invalid_actions",
                "message": "actions must be a list of objects.",
            }
        ]
    context = Context.of(event)
    results = []
    for index, raw in enumerate(actions):
        kind = raw.get("type") if isinstance(raw, dict) else None
        result: dict[str, Any] = {"index": index, "type": kind}
        if index >= MAX_ACTIONS:
            result.update(
                ok=False,
                error="too_many_actions",
                message=f"Only the first {MAX_ACTIONS} actions run.",
            )
        else:
            result.update(_one(raw, context, f"{key_prefix}-{index}"))
        results.append(result)
    return results


def _one(raw: Any, context: Context, key: str) -> dict[str, Any]:
    try:
        if not isinstance(raw, dict):
            raise ma.ValidationError("An action is an object with a type.")
        kind = ActionType().load(raw)["type"]
        action = SCHEMAS[kind]().load(raw)
        return {"ok": True, **(HANDLERS[kind](action, context, key) or {})}
    except ma.ValidationError as exc:
        return {"ok": False, "error": "invalid_action", "errors": exc.messages}
    except KabarError as exc:
        db.session.rollback()
        answer = {"ok": False, "error": exc.code, "message": exc.message}
        return answer | ({"errors": exc.errors} if exc.errors else {})
    except Exception as exc:  # never let one action stop the others (or the worker)
        db.session.rollback()
        log.exception("webhook action failed")
        return {"ok": False, "error": "action_failed", "message": f"{type(exc).__name__}: {exc}"}


def _queued(row, created: bool) -> dict[str, Any]:
    return {"message_id": row.id, "status": row.status, "duplicate": not created}


def _reply(action: dict, context: Context, key: str) -> dict[str, Any]:
    context.need("chat")
    spec: dict[str, Any] = {"to": context.chat, "text": action["text"]}
    media = action["media"]
    if media:
        spec["type"] = media["type"] or _media_kind(media)
        spec["media"] = {k: media[k] for k in ("url", "base64", "mimetype", "filename") if media[k]}
        spec["text"] = action["caption"] or action["text"]
    if action["quote"]:
        context.need("message_id")
        spec["reply_to"] = context.message_id
    if context.send_at():
        spec["send_at"] = context.send_at()
    return _queued(*outbox.send(context.session, spec, source="webhook", idempotency_key=key))


def _media_kind(media: dict) -> str:
    mimetype = media["mimetype"] or mimetypes.guess_type(media["url"] or "")[0] or ""
    major = mimetype.split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "audio"}.get(major, "document")


def _send(action: dict, context: Context, key: str) -> dict[str, Any]:
    context.need()
    spec = dict(action["message"])
    if context.send_at() and not spec.get("send_at"):
        spec["send_at"] = context.send_at()
    return _queued(*outbox.send(context.session, spec, source="webhook", idempotency_key=key))


def _react(action: dict, context: Context, key: str) -> dict[str, Any]:
    context.need("message_id")
    return _queued(
        *outbox.act(
            context.session,
            context.message_id,
            "reaction",
            text=action["emoji"],
            idempotency_key=key,
            source="webhook",
        )
    )


def _mark_read(_action: dict, context: Context, _key: str) -> dict[str, Any]:
    context.need("chat", "message_id", "sender")
    command = live.request_read(
        context.session.id, context.chat, {context.sender: [context.message_id]}
    )
    return {"command_id": command.id}


def _typing(action: dict, context: Context, _key: str) -> dict[str, Any]:
    context.need("chat")
    command = live.request_presence(
        context.session.id, context.chat, action["state"], expires_in=PRESENCE_EXPIRES
    )
    context.delay = min(MAX_DELAY, context.delay + action["seconds"])
    return {"command_id": command.id}


def _delay(action: dict, context: Context, _key: str) -> dict[str, Any]:
    context.delay = min(MAX_DELAY, context.delay + action["seconds"])
    return {"delay": context.delay}


HANDLERS = {
    "reply": _reply,
    "send": _send,
    "react": _react,
    "mark_read": _mark_read,
    "typing": _typing,
    "delay": _delay,
}
