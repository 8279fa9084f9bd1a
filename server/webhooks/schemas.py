"""What a request about webhook endpoints may say: the API and the dashboard load the same
schemas."""

from __future__ import annotations

import marshmallow as ma


class WebhookSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    session_id = ma.fields.String(
        load_default=None,
        allow_none=True,
        metadata={"description": "The session whose events go here; null: every session (admins)."},
    )
    name = ma.fields.String(load_default="", validate=ma.validate.Length(0, 128))
    url = ma.fields.Url(
        required=True, schemes={"http", "https"}, validate=ma.validate.Length(1, 2048)
    )
    events = ma.fields.List(
        ma.fields.String(),
        load_default=lambda: ["*"],
        validate=ma.validate.Length(1, 50),
        metadata={
            "description": "Event types (docs/events.md), families such as message.*, or * for all."
        },
    )
    headers = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        load_default=dict,
        metadata={
            "description": "Extra headers sent with every delivery (not webhook-*, "
            "Content-Type, Host, User-Agent…)."
        },
    )
    enabled = ma.fields.Boolean(load_default=True)
    format = ma.fields.String(
        load_default="kabar",
        validate=ma.validate.OneOf(["kabar", "fonnte"]),
        metadata={
            "description": "The body: kabar (the signed envelope, "
            "docs/webhooks.md) or fonnte (fonnte's webhook bodies, docs/fonnte.md)."
        },
    )
    paused_reason = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "Why deliveries stopped or wait (410 Gone, by request, or paused "
            "after failures in a row)."
        },
    )
    paused_until = ma.fields.DateTime(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "Paused after failures in a row: events are still queued, and at "
            "this time one delivery goes as a probe; its success resumes the "
            "endpoint. null: not paused."
        },
    )
    consecutive_failures = ma.fields.Integer(dump_only=True)
    owner = ma.fields.Function(lambda e: e.owner_id, dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class WebhookUpdateSchema(ma.Schema):
    name = ma.fields.String(validate=ma.validate.Length(0, 128))
    url = ma.fields.Url(schemes={"http", "https"}, validate=ma.validate.Length(1, 2048))
    events = ma.fields.List(ma.fields.String(), validate=ma.validate.Length(1, 50))
    headers = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String())
    format = ma.fields.String(validate=ma.validate.OneOf(["kabar", "fonnte"]))
    enabled = ma.fields.Boolean(
        metadata={"description": "true also resumes a paused endpoint (and what waited for it)."}
    )
