"""What a send request may say. The same schema validates REST, workflows, webhook
actions and the helpdesk, because they all send through ``server.outbox.send``; it
extends nodes/message.py, the message the workflow send node takes too, with the
gateway's defaults and an uploaded file as media."""

from __future__ import annotations

import marshmallow as ma

from nodes import message
from server import fields

# The message is nodes/message.py's, which the workflow send node extends too.
KINDS, MEDIA_KINDS = message.KINDS, message.MEDIA_KINDS
LocationSpec, ContactSpec, PollSpec = message.LocationSpec, message.ContactSpec, message.PollSpec


class MediaSpec(message.MediaSpec):
    one_source_message = (
        "Give exactly one of url, base64 or sha256 (or upload a file as multipart field 'file')."
    )


class SendSpec(message.MessageSpec):
    media_sources = "url, base64, sha256 or an uploaded file"

    to = ma.fields.String(
        required=True,
        metadata={
            "description": "A phone number as people type it, a JID, a group JID, an @lid, or "
            "the name of a group the session is in (exact, any case; 404 if no "
            "group has it, 409 if several do)."
        },
    )
    type = ma.fields.String(load_default="text", validate=ma.validate.OneOf(KINDS))
    text = ma.fields.String(
        load_default="",
        validate=ma.validate.Length(0, 65536),
        metadata={"description": "The text, or the caption of an image, video or document."},
    )
    media = ma.fields.Nested(MediaSpec, load_default=None)
    location = ma.fields.Nested(LocationSpec, load_default=None)
    contacts = ma.fields.List(
        ma.fields.Nested(ContactSpec), load_default=None, validate=ma.validate.Length(1, 50)
    )
    poll = ma.fields.Nested(PollSpec, load_default=None)
    mentions = ma.fields.List(
        ma.fields.String(),
        load_default=list,
        metadata={"description": "Phones or JIDs to mention; write @<number> in the text too."},
    )
    reply_to = ma.fields.String(
        load_default=None,
        metadata={"description": "Quote this message: its Kabar id or its WhatsApp id."},
    )
    link_preview = ma.fields.Boolean(load_default=False)
    priority = ma.fields.String(
        load_default="normal",
        validate=ma.validate.OneOf(message.PRIORITIES),
        metadata={
            "description": "high: transactional (an OTP), goes "
            "first and through quiet hours; bulk: last."
        },
    )
    send_at = fields.AwareDateTime(
        load_default=None,
        metadata={"description": "Do not send before this time (ISO 8601 with a zone)."},
    )
    expires_at = fields.AwareDateTime(
        load_default=None,
        metadata={"description": "Do not send after this time: the message expires instead."},
    )
    typing = ma.fields.Boolean(
        load_default=None,
        metadata={"description": "Show typing… first (default: the session's pacing setting)."},
    )

    def media_given(self) -> bool:
        """True when the caller uploaded the media as a multipart file."""
        return bool(getattr(self, "has_upload", False))


_PLAIN_TEXT_FIELDS = frozenset(("to", "text", "type", "priority"))
_TEXT_MAX = 65536  # SendSpec.text's Length


def load_plain_text(spec: dict) -> dict | None:
    """What ``SendSpec().load(spec)`` returns for the most common send, a text to someone
    with nothing else (``to``, ``text``, maybe ``type: text`` and a ``priority``), without
    marshmallow's per-field machinery; None for anything else, or anything it would
    refuse, which the schema then loads and answers as always.
    tests/server/outbox/test_schema.py compares the two."""
    if not isinstance(spec, dict) or not _PLAIN_TEXT_FIELDS.issuperset(spec):
        return None
    to, text = spec.get("to"), spec.get("text")
    kind, priority = spec.get("type", "text"), spec.get("priority", "normal")
    if not (
        type(to) is str
        and type(text) is str
        and len(text) <= _TEXT_MAX
        and text.strip()
        and kind == "text"
        and priority in message.PRIORITIES
    ):
        return None
    return {
        "to": to,
        "type": "text",
        "text": text,
        "media": None,
        "location": None,
        "contacts": None,
        "poll": None,
        "mentions": [],
        "reply_to": None,
        "link_preview": False,
        "priority": priority,
        "send_at": None,
        "expires_at": None,
        "typing": None,
    }
