"""What a send request may say. The same schema validates REST, workflows, webhook
actions and the helpdesk, because they all send through ``server.outbox.send``."""

from __future__ import annotations

import marshmallow as ma

from server import fields

KINDS = ("text", "image", "video", "audio", "voice", "document", "sticker", "location",
         "contacts", "poll")
MEDIA_KINDS = {"image", "video", "audio", "voice", "document", "sticker"}


class MediaSpec(ma.Schema):
    url = ma.fields.Url(load_default=None, schemes={"http", "https"}, metadata={
        "description": "Fetched by the gateway (size and time limits, no private addresses)."})
    base64 = ma.fields.String(load_default=None)
    sha256 = ma.fields.String(load_default=None, validate=ma.validate.Length(64, 64), metadata={
        "description": "Media already in this gateway's media store."})
    mimetype = ma.fields.String(load_default=None)
    filename = ma.fields.String(load_default=None, validate=ma.validate.Length(1, 255))

    @ma.validates_schema
    def _one_source(self, data, **_kwargs):
        given = [k for k in ("url", "base64", "sha256") if data.get(k)]
        if len(given) != 1:
            raise ma.ValidationError("Give exactly one of url, base64 or sha256 (or upload a "
                                     "file as multipart field 'file').")


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
    def _name_and_phone_or_vcard(self, data, **_kwargs):
        if not data.get("vcard") and not (data.get("name") and data.get("phone")):
            raise ma.ValidationError("Give name and phone, or a vcard.")


class PollSpec(ma.Schema):
    question = ma.fields.String(required=True, validate=ma.validate.Length(1, 255))
    options = ma.fields.List(ma.fields.String(validate=ma.validate.Length(1, 100)),
                             required=True, validate=ma.validate.Length(2, 12))
    multiple = ma.fields.Boolean(load_default=False, metadata={
        "description": "Voters may pick several options."})


class SendSpec(ma.Schema):
    to = ma.fields.String(required=True, metadata={
        "description": "A phone number as people type it, a JID, a group JID, an @lid, or "
                       "the name of a group the session is in (exact, any case; 404 if no "
                       "group has it, 409 if several do)."})
    type = ma.fields.String(load_default="text", validate=ma.validate.OneOf(KINDS))
    text = ma.fields.String(load_default="", validate=ma.validate.Length(0, 65536), metadata={
        "description": "The text, or the caption of an image, video or document."})
    media = ma.fields.Nested(MediaSpec, load_default=None)
    location = ma.fields.Nested(LocationSpec, load_default=None)
    contacts = ma.fields.List(ma.fields.Nested(ContactSpec), load_default=None,
                              validate=ma.validate.Length(1, 50))
    poll = ma.fields.Nested(PollSpec, load_default=None)
    mentions = ma.fields.List(ma.fields.String(), load_default=list, metadata={
        "description": "Phones or JIDs to mention; write @<number> in the text too."})
    reply_to = ma.fields.String(load_default=None, metadata={
        "description": "Quote this message: its Kabar id or its WhatsApp id."})
    link_preview = ma.fields.Boolean(load_default=False)
    priority = ma.fields.String(load_default="normal",
                                validate=ma.validate.OneOf(["high", "normal", "bulk"]),
                                metadata={"description": "high: transactional (an OTP), goes "
                                          "first and through quiet hours; bulk: last."})
    send_at = fields.AwareDateTime(load_default=None, metadata={
        "description": "Do not send before this time (ISO 8601 with a zone)."})
    expires_at = fields.AwareDateTime(load_default=None, metadata={
        "description": "Do not send after this time: the message expires instead."})
    typing = ma.fields.Boolean(load_default=None, metadata={
        "description": "Show typing… first (default: the session's pacing setting)."})

    @ma.validates_schema
    def _parts_match_type(self, data, **_kwargs):
        kind = data["type"]
        errors: dict[str, list[str]] = {}
        if kind == "text" and not data.get("text", "").strip():
            errors["text"] = ["A text message needs text."]
        if kind in MEDIA_KINDS and data.get("media") is None and not self.context_upload():
            errors["media"] = [f"A {kind} message needs media (url, base64, sha256 or an "
                               "uploaded file)."]
        if kind == "location" and data.get("location") is None:
            errors["location"] = ["A location message needs latitude and longitude."]
        if kind == "contacts" and not data.get("contacts"):
            errors["contacts"] = ["A contacts message needs at least one contact."]
        if kind == "poll" and data.get("poll") is None:
            errors["poll"] = ["A poll needs a question and 2-12 options."]
        if data.get("poll") and len(set(data["poll"]["options"])) != len(data["poll"]["options"]):
            errors["poll"] = ["Poll options must differ from each other."]
        if data.get("send_at") and data.get("expires_at") and \
                data["expires_at"] <= data["send_at"]:
            errors["expires_at"] = ["Must be after send_at."]
        if errors:
            raise ma.ValidationError(errors)

    def context_upload(self) -> bool:
        """True when the caller uploaded the media as a multipart file."""
        return bool(getattr(self, "has_upload", False))
