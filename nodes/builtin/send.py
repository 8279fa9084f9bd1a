"""``send``: one message, or one per recipient (a broadcast)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import marshmallow as ma

from nodes.base import Node, ParamsSchema, Result
from nodes.context import NodeContext
from nodes.errors import NodeError
from nodes.fields import Text

# The send spec of docs/messaging.md (server/outbox/schema.py), repeated here because
# nodes/ never imports server/; tests/nodes/test_send.py keeps the two in step.
KINDS = ("text", "image", "video", "audio", "voice", "document", "sticker", "location",
         "contacts", "poll")
MEDIA_KINDS = {"image", "video", "audio", "voice", "document", "sticker"}
SPEC_FIELDS = ("type", "text", "media", "location", "contacts", "poll", "mentions",
               "reply_to", "link_preview", "priority", "send_at", "expires_at", "typing")


class MediaParams(ParamsSchema):
    url = ma.fields.Url(load_default=None, schemes={"http", "https"}, metadata={
        "description": "Fetched by the gateway (size and time limits, no private addresses)."})
    base64 = ma.fields.String(load_default=None)
    sha256 = ma.fields.String(load_default=None, validate=ma.validate.Length(64, 64), metadata={
        "description": "Media already in this gateway's media store."})
    mimetype = ma.fields.String(load_default=None)
    filename = Text(load_default=None, validate=ma.validate.Length(1, 255))

    @ma.validates_schema
    def _one_source(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if len([k for k in ("url", "base64", "sha256") if data.get(k)]) != 1:
            raise ma.ValidationError("Give exactly one of url, base64 or sha256.")


class LocationParams(ParamsSchema):
    latitude = ma.fields.Float(required=True, validate=ma.validate.Range(-90, 90))
    longitude = ma.fields.Float(required=True, validate=ma.validate.Range(-180, 180))
    name = Text(load_default=None, validate=ma.validate.Length(0, 256))
    address = Text(load_default=None, validate=ma.validate.Length(0, 512))


class ContactParams(ParamsSchema):
    name = Text(load_default=None, validate=ma.validate.Length(1, 128))
    phone = Text(load_default=None)
    vcard = ma.fields.String(load_default=None, metadata={"description": "A full vCard 3.0."})

    @ma.validates_schema
    def _name_and_phone_or_vcard(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data.get("vcard") and not (data.get("name") and data.get("phone")):
            raise ma.ValidationError("Give name and phone, or a vcard.")


class PollParams(ParamsSchema):
    question = Text(required=True, validate=ma.validate.Length(1, 255))
    options = ma.fields.List(Text(validate=ma.validate.Length(1, 100)), required=True,
                             validate=ma.validate.Length(2, 12))
    multiple = ma.fields.Boolean(load_default=False, metadata={
        "description": "Voters may pick several options."})


class RecipientParams(ParamsSchema):
    to = Text(required=True, metadata={"description": "A phone number or JID."})
    name = Text(load_default="", metadata={"description": "Fills {name} in the text."})
    vars = ma.fields.Dict(keys=ma.fields.String(), values=Text(), load_default=dict, metadata={
        "description": "Fill {var1}, {var2}… (or any {key}) in the text."})


class SendParams(ParamsSchema):
    to = Text(load_default=None, metadata={
        "description": "A phone number as people type it, a JID, a group JID, an @lid or "
                       "the name of a group the session is in. Default: the chat that "
                       "started the run."})
    type = ma.fields.String(load_default="text", validate=ma.validate.OneOf(KINDS))
    text = Text(load_default=None, validate=ma.validate.Length(0, 65536), metadata={
        "description": "The text, or the caption of an image, video or document."})
    media = ma.fields.Nested(MediaParams, load_default=None)
    location = ma.fields.Nested(LocationParams, load_default=None)
    contacts = ma.fields.List(ma.fields.Nested(ContactParams), load_default=None,
                              validate=ma.validate.Length(1, 50))
    poll = ma.fields.Nested(PollParams, load_default=None)
    mentions = ma.fields.List(Text(), load_default=None, metadata={
        "description": "Phones or JIDs to mention; write @<number> in the text too."})
    reply_to = Text(load_default=None, metadata={
        "description": "Quote this message: its Kabar id or its WhatsApp id "
                       "(e.g. {{ trigger.message_id }})."})
    link_preview = ma.fields.Boolean(load_default=None)
    priority = ma.fields.String(load_default=None,
                                validate=ma.validate.OneOf(["high", "normal", "bulk"]),
                                metadata={"description": "high: transactional (an OTP), goes "
                                          "first and through quiet hours; bulk: last. "
                                          "Default: normal (bulk for a broadcast)."})
    send_at = ma.fields.AwareDateTime(load_default=None, metadata={
        "description": "Do not send before this time (ISO 8601 with a zone)."})
    expires_at = ma.fields.AwareDateTime(load_default=None, metadata={
        "description": "Do not send after this time: the message expires instead."})
    typing = ma.fields.Boolean(load_default=None, metadata={
        "description": "Show typing… first (default: the session's pacing setting)."})
    session = Text(load_default=None, metadata={
        "description": "Send from this session (default: the run's session)."})
    recipients = ma.fields.List(ma.fields.Nested(RecipientParams), load_default=None,
                                validate=ma.validate.Length(1, 10000), metadata={
        "description": "Broadcast: one message per recipient, queued in bulk priority."})
    lines = Text(load_default=None, metadata={
        "description": "Broadcast from lines of number|name|var1|var2…"})
    name = Text(load_default=None, metadata={"description": "The broadcast's name."})

    @ma.validates_schema
    def _parts_match_type(self, data: dict[str, Any], **_kwargs: Any) -> None:
        kind = data.get("type", "text")
        errors: dict[str, list[str]] = {}
        if kind == "text" and not (data.get("text") or "").strip():
            errors["text"] = ["A text message needs text."]
        if kind in MEDIA_KINDS and data.get("media") is None:
            article = "An" if kind[0] in "aeiou" else "A"
            errors["media"] = [f"{article} {kind} message needs media (url, base64 or "
                               "sha256)."]
        if kind == "location" and data.get("location") is None:
            errors["location"] = ["A location message needs latitude and longitude."]
        if kind == "contacts" and not data.get("contacts"):
            errors["contacts"] = ["A contacts message needs at least one contact."]
        if kind == "poll" and data.get("poll") is None:
            errors["poll"] = ["A poll needs a question and 2-12 options."]
        options = (data.get("poll") or {}).get("options") or []
        if len(set(options)) != len(options):
            errors["poll"] = ["Poll options must differ from each other."]
        if data.get("send_at") and data.get("expires_at") and \
                data["expires_at"] <= data["send_at"]:
            errors["expires_at"] = ["Must be after send_at."]
        if data.get("recipients") and data.get("lines"):
            errors["lines"] = ["Give recipients or lines, not both."]
        if (data.get("recipients") or data.get("lines")) and data.get("to"):
            errors["to"] = ["A broadcast goes to its recipients or lines; remove to."]
        if errors:
            raise ma.ValidationError(errors)


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
            answer = ctx.broadcast(spec, recipients=params.get("recipients"),
                                   lines=params.get("lines"), name=params.get("name") or "",
                                   session=params.get("session"))
            return Result("next", answer)
        to = params.get("to") or ctx.chat
        if not to:
            raise NodeError("send has no recipient: this run did not start from a chat "
                            "(a schedule, hook or manual trigger); set params.to",
                            retryable=False)
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
