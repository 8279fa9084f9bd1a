"""/api/v1/sessions/{id}/broadcasts: one message to many recipients, paced."""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask import request
from flask.views import MethodView

from server import sessions
from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.api.messages import IDEMPOTENCY_HEADER
from server.errors import ValidationFailed
from server.inputs import carries_media
from server.models import Broadcast
from server.outbox import broadcast as broadcasts

blp = Blueprint(
    "broadcasts",
    __name__,
    url_prefix="/api/v1/sessions",
    description="Broadcasts: one request, one outbox row per recipient.",
)


class RecipientSchema(ma.Schema):
    to = ma.fields.String(required=True)
    name = ma.fields.String(load_default="")
    vars = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        load_default=dict,
        metadata={"description": "{var1} -> value"},
    )


class BroadcastCreateSchema(ma.Schema):
    name = ma.fields.String(load_default="", validate=ma.validate.Length(0, 128))
    message = ma.fields.Dict(
        required=True,
        metadata={
            "description": "A send request without `to` (see POST .../messages); its text may "
            "use {name}, {var1}, {var2}… Priority defaults to bulk."
        },
    )
    recipients = ma.fields.List(ma.fields.Nested(RecipientSchema), load_default=None)
    lines = ma.fields.String(
        load_default=None,
        metadata={"description": "Instead of recipients: one `number|name|var1|var2` per line."},
    )

    @ma.validates_schema
    def _one_list(self, data, **_kwargs):
        if (data.get("recipients") is None) == (data.get("lines") is None):
            raise ma.ValidationError("Give recipients or lines (one of them).")


class BroadcastSchema(ma.Schema):
    id = ma.fields.String()
    session_id = ma.fields.String()
    name = ma.fields.String()
    total = ma.fields.Integer()
    created_at = ma.fields.DateTime()
    cancelled_at = ma.fields.DateTime(allow_none=True)
    progress = ma.fields.Function(
        broadcasts.progress, metadata={"description": "How many recipients are at each status."}
    )


@blp.route("/<string:session_id>/broadcasts")
class Broadcasts(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(BroadcastSchema))
    def get(self, args, session_id):
        """This session's broadcasts with their progress."""
        session = sessions.get(session_id)
        return paginate(
            sa.select(Broadcast).where(Broadcast.session_id == session.id),
            Broadcast.id,
            cursor=args["cursor"],
            limit=args["limit"],
        )

    @blp.requires("messages:send")
    @blp.arguments(BroadcastCreateSchema)
    @blp.response(202, BroadcastSchema)
    @carries_media
    def post(self, body, session_id):
        """Queue a broadcast. Every recipient is checked first; nothing is queued if any is
        invalid."""
        session = sessions.get(session_id)
        if "to" in body["message"]:
            raise ValidationFailed(
                errors={
                    "message": {"to": ["Recipients go in recipients or lines, not in the message."]}
                }
            )
        recipients = (
            body["recipients"]
            if body["recipients"] is not None
            else broadcasts.parse_lines(body["lines"])
        )
        row, created = broadcasts.create(
            session,
            message=body["message"],
            recipients=recipients,
            name=body["name"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER),
        )
        return row, 202, ({} if created else {"Idempotent-Replayed": "true"})


@blp.route("/<string:session_id>/broadcasts/<string:broadcast_id>")
class BroadcastById(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, BroadcastSchema)
    def get(self, session_id, broadcast_id):
        """A broadcast and its progress."""
        return broadcasts.get(sessions.get(session_id), broadcast_id)


@blp.route("/<string:session_id>/broadcasts/<string:broadcast_id>/cancel")
class CancelBroadcast(MethodView):
    @blp.requires("messages:send")
    @blp.response(200, BroadcastSchema)
    def post(self, session_id, broadcast_id):
        """Cancel the recipients that are still queued."""
        return broadcasts.cancel(broadcasts.get(sessions.get(session_id), broadcast_id))
