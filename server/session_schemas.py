"""How a WhatsApp session looks as JSON and what creating one may say: the API and the
dashboard load the same schema (server/sessions.py is the service)."""

from __future__ import annotations

import marshmallow as ma
from flask import g

from server import sessions
from server.runtime import heartbeat


def _runtime(_session) -> str:
    """up or down; read once per request, however many sessions are listed."""
    if "runtime_alive" not in g:
        g.runtime_alive = heartbeat.state().alive
    return "up" if g.runtime_alive else "down"


class SessionSchema(ma.Schema):
    id = ma.fields.String(dump_only=True)
    label = ma.fields.String(required=True, validate=ma.validate.Length(1, 128))
    transport = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(sessions.TRANSPORTS),
        metadata={"description": "sandbox (simulated) or neonize"},
    )
    auto_start = ma.fields.Boolean(
        load_default=True,
        metadata={"description": "Start now, and again whenever the runtime restarts."},
    )
    settings = ma.fields.Dict(
        load_default=dict,
        metadata={"description": "Per-transport options and, later, pacing and webhook settings."},
    )
    owner = ma.fields.Function(lambda s: s.owner_id, dump_only=True)
    desired_state = ma.fields.String(dump_only=True)
    status = ma.fields.String(dump_only=True)
    status_reason = ma.fields.String(dump_only=True)
    status_changed_at = ma.fields.DateTime(dump_only=True)
    last_error = ma.fields.String(dump_only=True, allow_none=True)
    runtime = ma.fields.Function(
        _runtime,
        dump_only=True,
        metadata={
            "description": "up or down: whether the runtime process that owns sessions beats."
        },
    )
    jid = ma.fields.String(dump_only=True, allow_none=True)
    phone = ma.fields.String(dump_only=True, allow_none=True)
    push_name = ma.fields.String(dump_only=True, allow_none=True)
    last_seen_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    host = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "Where the session last ran: the machine, and its own process (a "
            "neonize session) or the runtime's (a sandbox session)."
        },
    )
    restarts = ma.fields.Integer(
        dump_only=True,
        metadata={
            "description": "How often the session's process ended unexpectedly and was "
            "started again (the status reason says why)."
        },
    )
    created_at = ma.fields.DateTime(dump_only=True)
