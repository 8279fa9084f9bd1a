"""/api/v1/sessions/{id}/messages/{message_id}/react|edit|revoke|star.

React, edit and revoke are messages on the wire, so they go through the outbox like any
send (high priority) and answer 202 with the outgoing row to follow. Star is a setting
on this device only and is answered when the runtime has done it.
"""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView

from server import outbox, sessions
from server.api.base import Blueprint
from server.api.messages import IDEMPOTENCY_HEADER, OutgoingSchema
from server.runtime import live

blp = Blueprint(
    "message_actions",
    __name__,
    url_prefix="/api/v1/sessions",
    description="React to, edit, revoke (delete for everyone) and star messages.",
)

ROUTE = "/<string:session_id>/messages/<string:message_id>"


class ReactSchema(ma.Schema):
    emoji = ma.fields.String(
        required=True,
        validate=ma.validate.Length(0, 16),
        metadata={"description": "The emoji; an empty string removes your reaction."},
    )


class EditSchema(ma.Schema):
    text = ma.fields.String(required=True, validate=ma.validate.Length(1, 65536))


class StarSchema(ma.Schema):
    starred = ma.fields.Boolean(load_default=True)


def _act(session_id: str, message_id: str, kind: str, text: str = ""):
    session = sessions.get(session_id)
    row, created = outbox.act(
        session,
        message_id,
        kind,
        text=text,
        idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
    )
    return row, 202, ({} if created else {"Idempotent-Replayed": "true"})


@blp.route(f"{ROUTE}/react")
class React(MethodView):
    @blp.requires("messages:send")
    @blp.arguments(ReactSchema)
    @blp.response(202, OutgoingSchema)
    def post(self, body, session_id, message_id):
        """React to a message (or remove the reaction with an empty emoji)."""
        return _act(session_id, message_id, "reaction", body["emoji"])


@blp.route(f"{ROUTE}/edit")
class Edit(MethodView):
    @blp.requires("messages:send")
    @blp.arguments(EditSchema)
    @blp.response(202, OutgoingSchema)
    def post(self, body, session_id, message_id):
        """Edit a text message this session sent."""
        return _act(session_id, message_id, "edit", body["text"])


@blp.route(f"{ROUTE}/revoke")
class Revoke(MethodView):
    @blp.requires("messages:send")
    @blp.response(202, OutgoingSchema)
    def post(self, session_id, message_id):
        """Delete a message this session sent, for everyone."""
        return _act(session_id, message_id, "revoke")


@blp.route(f"{ROUTE}/star")
class Star(MethodView):
    @blp.requires("messages:send")
    @blp.arguments(StarSchema)
    @blp.response(204)
    def post(self, body, session_id, message_id):
        """Star (or unstar) a message on this device."""
        session = sessions.get(session_id)
        message = outbox.history_message(session, message_id)
        live.star(
            session.id,
            chat=message.chat_jid,
            sender=message.sender_jid,
            message_id=message.wa_id,
            starred=body["starred"],
        )
