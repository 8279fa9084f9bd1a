"""``send``: one message, or one per recipient (a broadcast)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma

from nodes import message
from nodes.base import Node, ParamsSchema, Result
from nodes.context import NodeContext
from nodes.errors import NodeError
from nodes.fields import Text

# The message itself is nodes/message.py's, which server/outbox/schema.py extends too: the
# node's parts take templated values (Text) and leave the defaults to the host.
KINDS, MEDIA_KINDS, SPEC_FIELDS = message.KINDS, message.MEDIA_KINDS, message.FIELDS


class MediaParams(message.MediaSpec, ParamsSchema):
    filename = Text(load_default=None, validate=ma.validate.Length(1, 255))


class LocationParams(message.LocationSpec, ParamsSchema):
    name = Text(load_default=None, validate=ma.validate.Length(0, 256))
    address = Text(load_default=None, validate=ma.validate.Length(0, 512))


class ContactParams(message.ContactSpec, ParamsSchema):
    name = Text(load_default=None, validate=ma.validate.Length(1, 128))
    phone = Text(load_default=None)


class PollParams(message.PollSpec, ParamsSchema):
    question = Text(required=True, validate=ma.validate.Length(1, 255))
    options = ma.fields.List(
        Text(validate=ma.validate.Length(1, 100)), required=True, validate=ma.validate.Length(2, 12)
    )


class RecipientParams(ParamsSchema):
    to = Text(required=True, metadata={"description": "A phone number or JID."})
    name = Text(load_default="", metadata={"description": "Fills {name} in the text."})
    vars = ma.fields.Dict(
        keys=ma.fields.String(),
        values=Text(),
        load_default=dict,
        metadata={"description": "Fill {var1}, {var2}… (or any {key}) in the text."},
    )


class SendParams(message.MessageSpec, ParamsSchema):
    to = Text(
        load_default=None,
        metadata={
            "description": "A phone number as people type it, a JID, a group JID, an @lid or "
            "the name of a group the session is in. Default: the chat that "
            "started the run."
        },
    )
    type = ma.fields.String(load_default="text", validate=ma.validate.OneOf(KINDS))
    text = Text(
        load_default=None,
        validate=ma.validate.Length(0, 65536),
        metadata={"description": "The text, or the caption of an image, video or document."},
    )
    media = ma.fields.Nested(MediaParams, load_default=None)
    location = ma.fields.Nested(LocationParams, load_default=None)
    contacts = ma.fields.List(
        ma.fields.Nested(ContactParams), load_default=None, validate=ma.validate.Length(1, 50)
    )
    poll = ma.fields.Nested(PollParams, load_default=None)
    mentions = ma.fields.List(
        Text(),
        load_default=None,
        metadata={"description": "Phones or JIDs to mention; write @<number> in the text too."},
    )
    reply_to = Text(
        load_default=None,
        metadata={
            "description": "Quote this message: its Kabar id or its WhatsApp id "
            "(e.g. {{ trigger.message_id }})."
        },
    )
    link_preview = ma.fields.Boolean(load_default=None)
    priority = ma.fields.String(
        load_default=None,
        validate=ma.validate.OneOf(message.PRIORITIES),
        metadata={
            "description": "high: transactional (an OTP), goes "
            "first and through quiet hours; bulk: last. "
            "Default: normal (bulk for a broadcast)."
        },
    )
    send_at = ma.fields.AwareDateTime(
        load_default=None,
        metadata={"description": "Do not send before this time (ISO 8601 with a zone)."},
    )
    expires_at = ma.fields.AwareDateTime(
        load_default=None,
        metadata={"description": "Do not send after this time: the message expires instead."},
    )
    typing = ma.fields.Boolean(
        load_default=None,
        metadata={"description": "Show typing… first (default: the session's pacing setting)."},
    )
    session = Text(
        load_default=None,
        metadata={"description": "Send from this session (default: the run's session)."},
    )
    recipients = ma.fields.List(
        ma.fields.Nested(RecipientParams),
        load_default=None,
        validate=ma.validate.Length(1, 10000),
        metadata={"description": "Broadcast: one message per recipient, queued in bulk priority."},
    )
    lines = Text(
        load_default=None,
        metadata={"description": "Broadcast from lines of number|name|var1|var2…"},
    )
    name = Text(load_default=None, metadata={"description": "The broadcast's name."})

    def more_errors(self, data: dict[str, Any]) -> dict[str, list[str]]:
        """A broadcast's own rules, beside the message's (``part_errors``)."""
        errors = {}
        if data.get("recipients") and data.get("lines"):
            errors["lines"] = ["Give recipients or lines, not both."]
        if (data.get("recipients") or data.get("lines")) and data.get("to"):
            errors["to"] = ["A broadcast goes to its recipients or lines; remove to."]
        return errors


class Send(Node):
    """Send a message: text, media, location, contacts or a poll; or broadcast it.

    Takes the fields of POST /api/v1/sessions/{id}/messages (docs/messaging.md), so one
    message means the same from REST and from a workflow. ``to`` defaults to the chat that
    started the run. With ``recipients`` (or fonnte-style ``lines``) the message goes to
    each of them instead, as a broadcast; ``{name}`` and ``{var1}``… in the text are filled
    per recipient.

    Data: the queued message (``id``, ``wa_id``, ``status``), or the broadcast (``id``,
    ``total``): ``{{ send_otp.id }}``.
    """

    type = "send"
    version = 1
    Params = SendParams
    outputs = ("next",)

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        spec = message_spec(params)
        if params.get("recipients") or params.get("lines"):
            answer = ctx.broadcast(
                spec,
                recipients=params.get("recipients"),
                lines=params.get("lines"),
                name=params.get("name") or "",
                session=params.get("session"),
            )
            return Result("next", answer)
        to = params.get("to") or ctx.chat
        if not to:
            raise NodeError(
                "send has no recipient: this run did not start from a chat "
                "(a schedule, hook or manual trigger); set params.to",
                retryable=False,
            )
        return Result("next", ctx.send({"to": to, **spec}, session=params.get("session")))


def message_spec(params: dict[str, Any]) -> dict[str, Any]:
    """The send spec from loaded params: only what was given, times as ISO 8601, so the
    host applies its own defaults (normal priority, bulk for broadcasts)."""
    spec = {}
    for key in SPEC_FIELDS:
        value = params.get(key)
        if value is None:
            continue
        spec[key] = value.isoformat() if isinstance(value, datetime) else value
    return spec
