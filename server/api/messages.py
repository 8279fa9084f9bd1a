"""/api/v1/sessions/{id}/messages: the session's stored messages (history)."""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView

from server import sessions
from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.models import Message
from server.whatsapp.jids import InvalidPhone, to_jid

blp = Blueprint("messages", __name__, url_prefix="/api/v1/sessions",
                description="Messages of a session's chats, from the gateway's own store.")


class MessageSchema(ma.Schema):
    id = ma.fields.String()
    wa_id = ma.fields.String(metadata={"description": "WhatsApp's message id."})
    direction = ma.fields.String(metadata={"description": "in or out"})
    chat_jid = ma.fields.String()
    chat_phone = ma.fields.String(allow_none=True)
    sender_jid = ma.fields.String()
    sender_phone = ma.fields.String(allow_none=True)
    sender_lid = ma.fields.String(allow_none=True)
    sender_name = ma.fields.String(allow_none=True)
    is_group = ma.fields.Boolean()
    from_me = ma.fields.Boolean()
    kind = ma.fields.String()
    text = ma.fields.String()
    media = ma.fields.Dict(allow_none=True)
    location = ma.fields.Dict(allow_none=True)
    quoted_id = ma.fields.String(allow_none=True)
    status = ma.fields.String()
    timestamp = ma.fields.DateTime()


class MessageListArgs(PageArgs):
    chat = ma.fields.String(metadata={"description": "Only this chat: a phone or a JID."})
    direction = ma.fields.String(validate=ma.validate.OneOf(["in", "out"]))


@blp.route("/<string:session_id>/messages")
class Messages(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(MessageListArgs, location="query")
    @blp.response(200, page_schema(MessageSchema))
    def get(self, args, session_id):
        """Messages in and out, oldest first; follow next_cursor for newer ones."""
        session = sessions.get(session_id)
        query = sa.select(Message).where(Message.session_id == session.id)
        if args.get("chat"):
            try:
                query = query.where(Message.chat_jid == to_jid(args["chat"]))
            except InvalidPhone as exc:
                from server.errors import ValidationFailed

                raise ValidationFailed(errors={"chat": [str(exc)]}) from None
        if args.get("direction"):
            query = query.where(Message.direction == args["direction"])
        return paginate(query, Message.seq, cursor=args["cursor"], limit=args["limit"])
