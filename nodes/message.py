"""The message a send may say (docs/messaging.md), defined once.

The workflow ``send`` node (``nodes/builtin/send.py``) and the gateway's outbox
(``server/outbox/schema.py``, behind POST /api/v1/sessions/{id}/messages, webhook actions
and the dashboard) both extend these schemas, so a message means the same from REST and
from a workflow, and says what is wrong with it in the same words. They differ only where
they must: the node takes templated values (``nodes.fields.Text`` takes a number as its
text) and leaves defaults to the host; the outbox fills its defaults and also takes an
uploaded file as the media.

This module is public: a third-party node that sends may build on it too.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

__all__ = [
    "FIELDS",
    "KINDS",
    "MEDIA_KINDS",
    "PRIORITIES",
    "ContactSpec",
    "LocationSpec",
    "MediaSpec",
    "MessageSpec",
    "PollSpec",
    "part_errors",
]

KINDS = (
    "text",
    "image",
    "video",
    "audio",
    "voice",
    "document",
    "sticker",
    "location",
    "contacts",
    "poll",
)
MEDIA_KINDS = frozenset({"image", "video", "audio", "voice", "document", "sticker"})
PRIORITIES = ("high", "normal", "bulk")
# What a message says besides where it goes (``to``): the fields both schemas take.
FIELDS = (
    "type",
    "text",
    "media",
    "location",
    "contacts",
    "poll",
    "mentions",
    "reply_to",
    "link_preview",
    "priority",
    "send_at",
    "expires_at",
    "typing",
)


class MediaSpec(ma.Schema):
    """Exactly one source: a URL the gateway fetches, base64, or media already stored."""

    SOURCES = ("url", "base64", "sha256")
    one_source_message = "Give exactly one of url, base64 or sha256."

    url = ma.fields.Url(
        load_default=None,
        schemes={"http", "https"},
        metadata={
            "description": "Fetched by the gateway (size and time limits, no private addresses)."
        },
    )
    base64 = ma.fields.String(load_default=None)
    sha256 = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(64, 64),
        metadata={"description": "Media already in this gateway's media store."},
    )
    mimetype = ma.fields.String(load_default=None)
    filename = ma.fields.String(load_default=None, validate=ma.validate.Length(1, 255))

    @ma.validates_schema
    def _one_source(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if len([k for k in self.SOURCES if data.get(k)]) != 1:
            raise ma.ValidationError(self.one_source_message)


class LocationSpec(ma.Schema):
    latitude = ma.fields.Float(required=True, validate=ma.validate.Range(-90, 90))
    longitude = ma.fields.Float(required=True, validate=ma.validate.Range(-180, 180))
    name = ma.fields.String(load_default=None, validate=ma.validate.Length(0, 256))
    address = ma.fields.String(load_default=None, validate=ma.validate.Length(0, 512))


class ContactSpec(ma.Schema):
    name = ma.fields.String(load_default=None, validate=ma.validate.Length(1, 128))
    phone = ma.fields.String(load_default=None)
    vcard = ma.fields.String(load_default=None, metadata={"description": "A full vCard 3.0."})

    @ma.validates_schema
    def _name_and_phone_or_vcard(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data.get("vcard") and not (data.get("name") and data.get("phone")):
            raise ma.ValidationError("Give name and phone, or a vcard.")


class PollSpec(ma.Schema):
    question = ma.fields.String(required=True, validate=ma.validate.Length(1, 255))
    options = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(1, 100)),
        required=True,
        validate=ma.validate.Length(2, 12),
    )
    multiple = ma.fields.Boolean(
        load_default=False, metadata={"description": "Voters may pick several options."}
    )


def part_errors(
    data: dict[str, Any], *, media_sources: str = "url, base64 or sha256", media_given: bool = False
) -> dict[str, list[str]]:
    """What the message lacks for its type, by field: text for a text, media for an image,
    and so on; also poll options that repeat, and an expiry before the send time.
    ``media_given``: the media came another way (an uploaded file)."""
    kind = data.get("type") or "text"
    errors: dict[str, list[str]] = {}
    if kind == "text" and not (data.get("text") or "").strip():
        errors["text"] = ["A text message needs text."]
    if kind in MEDIA_KINDS and data.get("media") is None and not media_given:
        article = "An" if kind[0] in "aeiou" else "A"
        errors["media"] = [f"{article} {kind} message needs media ({media_sources})."]
    if kind == "location" and data.get("location") is None:
        errors["location"] = ["A location message needs latitude and longitude."]
    if kind == "contacts" and not data.get("contacts"):
        errors["contacts"] = ["A contacts message needs at least one contact."]
    if kind == "poll" and data.get("poll") is None:
        errors["poll"] = ["A poll needs a question and 2-12 options."]
    options = (data.get("poll") or {}).get("options") or []
    if len(set(options)) != len(options):
        errors["poll"] = ["Poll options must differ from each other."]
    if data.get("send_at") and data.get("expires_at") and data["expires_at"] <= data["send_at"]:
        errors["expires_at"] = ["Must be after send_at."]
    return errors


class MessageSpec(ma.Schema):
    """The base of both send schemas: the parts must match the type (``part_errors``).
    A subclass declares the fields (its own defaults and field types) and may add
    ``more_errors``."""

    media_sources = "url, base64 or sha256"

    def media_given(self) -> bool:
        """The media came besides the fields (the outbox: an uploaded file)."""
        return False

    def more_errors(self, data: dict[str, Any]) -> dict[str, list[str]]:
        return {}

    @ma.validates_schema
    def _parts_match_type(self, data: dict[str, Any], **_kwargs: Any) -> None:
        errors = part_errors(data, media_sources=self.media_sources, media_given=self.media_given())
        errors.update(self.more_errors(data))
        if errors:
            raise ma.ValidationError(errors)
