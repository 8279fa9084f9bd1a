"""What requests about users, permission groups and API keys may say: the API and the
dashboard load the same schemas."""

from __future__ import annotations

import marshmallow as ma

from server import fields


class ApiKeySchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 128))
    prefix = ma.fields.String(
        dump_only=True,
        metadata={"description": "The visible start of the key, to tell keys apart."},
    )
    permissions = ma.fields.List(
        ma.fields.String(),
        load_default=None,
        metadata={"description": "Default: every permission you hold. Never more than you hold."},
    )
    owner = ma.fields.Function(lambda key: key.owner.username, dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True, default_timezone=None)
    session_id = ma.fields.String(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "Bind the key to this session: it sees and acts on it only. A fonnte "
            "client uses such a key as its device token (docs/fonnte.md)."
        },
    )
    last_used_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    revoked_at = ma.fields.DateTime(dump_only=True, allow_none=True)


class GroupSchema(ma.Schema):
    name = ma.fields.String(required=True)
    description = ma.fields.String(load_default="", validate=ma.validate.Length(0, 255))
    permissions = ma.fields.List(ma.fields.String(), required=True)
    builtin = ma.fields.Boolean(dump_only=True)


class UserCreateSchema(ma.Schema):
    username = ma.fields.String(required=True)
    password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(1, 1024))
    group = ma.fields.String(load_default="operator")
    display_name = ma.fields.String(load_default="", validate=ma.validate.Length(0, 128))
    email = ma.fields.Email(load_default=None, allow_none=True, validate=ma.validate.Length(0, 255))
    phone = ma.fields.String(load_default=None, allow_none=True, validate=ma.validate.Length(0, 32))


class UserUpdateSchema(ma.Schema):
    group = ma.fields.String()
    display_name = ma.fields.String(validate=ma.validate.Length(0, 128))
    email = ma.fields.Email(
        allow_none=True,
        validate=ma.validate.Length(0, 255),
        metadata={"description": "null removes it."},
    )
    phone = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Length(0, 32),
        metadata={"description": 'null or "" removes it.'},
    )
    password = ma.fields.String(load_only=True, validate=ma.validate.Length(1, 1024))


class BlockSchema(ma.Schema):
    reason = ma.fields.String(load_default="", validate=ma.validate.Length(0, 255))
