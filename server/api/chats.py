"""/api/v1/sessions/{id}/chats: a session's chats, from the gateway's own message store.

The views read the request and call the chats service (server/chats.py): listing and
reading need no runtime; marking read stores the mark first and then asks the runtime for
WhatsApp read receipts; presence goes to the runtime (server/runtime/live.py).
"""

from __future__ import annotations

import marshmallow as ma
from flask import current_app
from flask.views import MethodView

from server import chats, sessions
from server.api.base import (
    Blueprint,
    PageArgs,
    decode_cursor,
    encode_cursor,
    page_schema,
    paginate,
)
from server.api.messages import MessageSchema
from server.errors import NotFound
from server.models import Message
from server.runtime import live
from server.whatsapp.jids import parse_chat

blp = Blueprint(
    "chats",
    __name__,
    url_prefix="/api/v1/sessions",
    description="A session's chats from the gateway's store: last message, "
    "unread counts, history; mark read, typing indicators.",
)

ROUTE = "/<string:session_id>/chats"
CHAT_ROUTE = f"{ROUTE}/<string:chat>"
MAX_WAIT_SECONDS = 30  # a long-poll holds a web thread; proxies cut longer requests


def _chat(text: str) -> str:
    return parse_chat(text, current_app.config["KABAR"]["PHONE_REGION"])


# --- schemas --------------------------------------------------------------------


class ChatLastMessageSchema(ma.Schema):
    id = ma.fields.String()
    wa_id = ma.fields.String()
    direction = ma.fields.String(metadata={"description": "in or out"})
    kind = ma.fields.String()
    text = ma.fields.String()
    sender_name = ma.fields.String(allow_none=True)
    status = ma.fields.String()
    timestamp = ma.fields.DateTime()


class ChatSchema(ma.Schema):
    jid = ma.fields.String(metadata={"description": "The chat: a person or a group."})
    phone = ma.fields.String(allow_none=True)
    is_group = ma.fields.Boolean()
    name = ma.fields.String(
        allow_none=True,
        metadata={"description": "A group's subject, or the name the contact last gave."},
    )
    unread = ma.fields.Integer(
        metadata={"description": "Inbound messages after the chat was last marked read here."}
    )
    read_at = ma.fields.DateTime(allow_none=True)
    last_message = ma.fields.Nested(ChatLastMessageSchema)


class ChatListArgs(PageArgs):
    q = ma.fields.String(
        validate=ma.validate.Length(1, 64),
        metadata={"description": "Only chats whose phone or name contains this."},
    )


class ChatMessagesArgs(PageArgs):
    direction = ma.fields.String(validate=ma.validate.OneOf(["in", "out"]))
    after = ma.fields.String(
        validate=ma.validate.Length(1, 36),
        metadata={
            "description": "Only messages stored after this one (a message id of this session, "
            "such as the chat's last_message.id)."
        },
    )
    wait = ma.fields.Float(
        load_default=0,
        validate=ma.validate.Range(0, MAX_WAIT_SECONDS),
        metadata={
            "description": "Long-poll: when no message matches yet, "
            f"wait up to this many seconds (at most "
            f"{MAX_WAIT_SECONDS}) for one before answering."
        },
    )


class ChatMessageSchema(MessageSchema):
    pass


class ChatReadSchema(ma.Schema):
    jid = ma.fields.String()
    read_at = ma.fields.DateTime()
    unread = ma.fields.Integer()
    marked = ma.fields.Integer(metadata={"description": "Messages that were unread."})
    receipts = ma.fields.String(
        metadata={
            "description": "none (nothing unread), sent, or not_sent (see receipts_error): the "
            "mark is stored either way."
        }
    )
    receipts_error = ma.fields.Dict(allow_none=True)


class ChatPresenceSchema(ma.Schema):
    state = ma.fields.String(required=True, validate=ma.validate.OneOf(live.PRESENCE_STATES))


# --- views ----------------------------------------------------------------------------------


@blp.route(ROUTE)
class Chats(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(ChatListArgs, location="query")
    @blp.response(200, page_schema(ChatSchema))
    def get(self, args, session_id):
        """Chats with their last message and unread count, newest first."""
        session = sessions.get(session_id)
        # The cursor is the last seq of the previous page (see chat_page).
        before = decode_cursor(args["cursor"], Message.seq) if args["cursor"] else None
        items, last = chats.chat_page(
            session.id, limit=args["limit"], before=before, q=args.get("q")
        )
        return {"items": items, "next_cursor": None if last is None else encode_cursor(last)}


@blp.route(CHAT_ROUTE)
class ChatByJid(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, ChatSchema)
    def get(self, session_id, chat):
        """One chat, by phone (as people type it) or JID."""
        session = sessions.get(session_id)
        items, _ = chats.chat_page(session.id, limit=1, jid=_chat(chat))
        if not items:
            raise NotFound(
                f"There is no chat with {chat!r} in this session's history.", code="chat_not_found"
            )
        return items[0]


@blp.route(f"{CHAT_ROUTE}/messages")
class ChatMessages(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(ChatMessagesArgs, location="query")
    @blp.response(200, page_schema(ChatMessageSchema))
    def get(self, args, session_id, chat):
        """The chat's messages, in and out, oldest first; follow next_cursor for newer.
        With after and wait it long-polls: the answer comes as soon as a newer message is
        stored (or empty when the wait ends), which is how a script waits for a reply."""
        session = sessions.get(session_id)
        query = chats.messages(
            session.id, _chat(chat), direction=args.get("direction"), after=args.get("after")
        )
        return chats.long_poll(
            lambda: paginate(query, Message.seq, cursor=args["cursor"], limit=args["limit"]),
            args["wait"],
        )


@blp.route(f"{CHAT_ROUTE}/read")
class ChatRead(MethodView):
    @blp.requires("messages:send")
    @blp.response(200, ChatReadSchema)
    def post(self, session_id, chat):
        """Mark the chat read: unread goes to 0 here, and WhatsApp gets read receipts
        when the runtime is up (if not, the mark is stored and the answer says so)."""
        session = sessions.get(session_id)
        return chats.mark_read(session, _chat(chat))


@blp.route(f"{CHAT_ROUTE}/presence")
class ChatPresence(MethodView):
    @blp.requires("messages:send")
    @blp.arguments(ChatPresenceSchema)
    @blp.response(204)
    def post(self, body, session_id, chat):
        """Show typing (composing), recording a voice note, or stop (paused) in the chat."""
        session = sessions.get(session_id)
        live.presence(session.id, _chat(chat), body["state"])
