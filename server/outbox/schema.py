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
