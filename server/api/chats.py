"""/api/v1/sessions/{id}/chats: a session's chats, from the gateway's own message store.

A chat is every stored message with one chat JID; ``chat_states`` adds the read mark
that unread counts start from. Listing and reading need no runtime. Marking read stores
the mark first and then asks the runtime to send WhatsApp read receipts, so a runtime
that is down costs the receipts (the answer says so), never the mark.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from server import sessions
from server.api.base import (
    Blueprint,
    PageArgs,
    _decode_cursor,
    _encode_cursor,
    page_schema,
    paginate,
)
from server.api.messages import MessageSchema
from server.errors import NotFound, ServiceUnavailable, ValidationFailed
from server.models import ChatState, Message, db, utcnow
from server.runtime import commands
from server.whatsapp.jids import GROUP_SERVER, InvalidPhone, phone_of, to_jid

blp = Blueprint("chats", __name__, url_prefix="/api/v1/sessions",
                description="A session's chats from the gateway's store: last message, "
                            "unread counts, history; mark read, typing indicators.")

ROUTE = "/<string:session_id>/chats"
CHAT_ROUTE = f"{ROUTE}/<string:chat>"
PRESENCE_STATES = ("composing", "recording", "paused")
RECEIPT_LIMIT = 200  # newest unread ids per receipt; WhatsApp reads the rest as seen too
MAX_WAIT_SECONDS = 30  # a long-poll holds a web thread; proxies cut longer requests
POLL_SECONDS = 0.25
_GROUP_ID = re.compile(r"^\d{5,24}(-\d{5,24})?$")  # 120363…, or the old phone-time form


# --- chats and JIDs -----------------------------------------------------------------------

def parse_group_jid(text: str, field: str = "group_jid") -> str:
    """``120363…@g.us`` or the bare id before ``@g.us``; anything else is a 422."""
    user = text.strip().removesuffix(f"@{GROUP_SERVER}")
    if "@" in user or not _GROUP_ID.match(user):
        raise ValidationFailed(
            f"{text!r} is not a WhatsApp group: use its JID (120363…@g.us) or the id "
            "before @g.us.", code="invalid_group_jid", errors={field: ["Not a group JID."]})
    return f"{user}@{GROUP_SERVER}"


def parse_chat(text: str) -> str:
    """A chat's JID from a phone as people type it, a JID, or a bare group id (longer
    than any phone number: E.164 has at most 15 digits)."""
    value = text.strip()
    bare = value.removesuffix(f"@{GROUP_SERVER}")
    if bare != value or ("-" in bare and _GROUP_ID.match(bare)) or (bare.isdigit()
                                                                    and len(bare) > 15):
        return parse_group_jid(value, field="chat")
    try:
        return to_jid(value, current_app.config["KABAR"]["PHONE_REGION"])
    except InvalidPhone as exc:
        raise ValidationFailed(f"{text!r} is not a chat: {exc}", code="invalid_chat",
                               errors={"chat": [str(exc)]}) from None


def _state(session_id: str, jid: str) -> ChatState:
    """The chat's state row, made on first need (once, even when two requests race)."""
    query = sa.select(ChatState).where(ChatState.session_id == session_id,
                                       ChatState.chat_jid == jid)
    state = db.session.scalar(query)
    if state is None:
        try:
            with db.session.begin_nested():
                state = ChatState(session_id=session_id, chat_jid=jid)
                db.session.add(state)
        except IntegrityError:
            state = db.session.scalar(query)
    return state


def remember_names(session_id: str, names: dict[str, str]) -> None:
    """Keep chat names learnt elsewhere (group subjects), which messages do not carry."""
    for jid, name in names.items():
        state = _state(session_id, jid)
        if state.name != name[:256]:
            state.name = name[:256]
    db.session.commit()


# --- the chat list ------------------------------------------------------------------------

def _search(session_id: str, q: str) -> sa.ColumnElement[bool]:
    """Chats whose phone, name or (private chats) contact name contains ``q``."""
    text = q.strip().lower()
    digits = re.sub(r"\D", "", text).lstrip("0")  # 0812… typed, 62812… stored
    other = aliased(Message)
    named = sa.select(other.chat_jid).where(
        other.session_id == session_id, other.direction == "in", other.is_group.is_(False),
        sa.func.lower(other.sender_name).contains(text, autoescape=True))
    by_number = Message.chat_jid.contains(digits, autoescape=True) \
        if digits and re.fullmatch(r"[\d\s+\-().]+", text) \
        else sa.func.lower(Message.chat_jid).contains(text, autoescape=True)
    return sa.or_(by_number, sa.func.lower(ChatState.name).contains(text, autoescape=True),
                  Message.chat_jid.in_(named))


def chat_page(session_id: str, *, limit: int, before: int | None = None,
              jid: str | None = None, q: str | None = None) -> tuple[list[dict], int | None]:
    """Chats newest first by their last stored message, with unread counts.

    The order key is the last message's ``seq``: unique and only growing, so a cursor
    (the last seq of a page) never repeats or skips a chat that did not move; a chat
    with a new message moves to the top, where the next listing shows it.
    """
    read_upto = sa.func.coalesce(ChatState.last_read_seq, 0)
    last_seq = sa.func.max(Message.seq)
    unread = sa.func.sum(sa.case(
        (sa.and_(Message.direction == "in", Message.seq > read_upto), 1), else_=0))
    query = (sa.select(Message.chat_jid, last_seq.label("last_seq"), unread.label("unread"),
                       ChatState.name, ChatState.read_at)
             .select_from(Message)
             .outerjoin(ChatState, sa.and_(ChatState.session_id == Message.session_id,
                                           ChatState.chat_jid == Message.chat_jid))
             .where(Message.session_id == session_id)
             .group_by(Message.chat_jid, ChatState.id, ChatState.name, ChatState.read_at)
             .order_by(last_seq.desc()).limit(limit + 1))
    if before is not None:
        query = query.having(last_seq < before)
    if jid is not None:
        query = query.where(Message.chat_jid == jid)
    if q:
        query = query.where(_search(session_id, q))
    rows = db.session.execute(query).all()
    page = rows[:limit]
    last = {m.seq: m for m in db.session.scalars(
        sa.select(Message).where(Message.seq.in_([r.last_seq for r in page])))}
    names = _contact_names(session_id, [r.chat_jid for r in page if not r.name])
    items = [{"jid": r.chat_jid, "phone": last[r.last_seq].chat_phone or _phone(r.chat_jid),
              "is_group": r.chat_jid.endswith(f"@{GROUP_SERVER}"),
              "name": r.name or names.get(r.chat_jid), "unread": int(r.unread or 0),
              "read_at": r.read_at, "last_message": last[r.last_seq]} for r in page]
    return items, (page[-1].last_seq if len(rows) > limit else None)


def _contact_names(session_id: str, jids: list[str]) -> dict[str, str]:
    """The name each private chat's contact last gave (WhatsApp's push name)."""
    if not jids:
        return {}
    latest = sa.select(sa.func.max(Message.seq)).where(
        Message.session_id == session_id, Message.chat_jid.in_(jids),
        Message.direction == "in", Message.is_group.is_(False),
        Message.sender_name.is_not(None)).group_by(Message.chat_jid)
    return dict(db.session.execute(sa.select(Message.chat_jid, Message.sender_name)
                                   .where(Message.seq.in_(latest))).all())


def _phone(jid: str) -> str | None:
    try:
        return phone_of(jid)
    except InvalidPhone:
        return None


# --- marking read -------------------------------------------------------------------------

def mark_read(session, jid: str) -> dict:
    last_seq = db.session.scalar(sa.select(sa.func.max(Message.seq)).where(
        Message.session_id == session.id, Message.chat_jid == jid))
    if last_seq is None:
        raise NotFound(f"There is no chat with {jid} in this session's history.",
                       code="chat_not_found")
    state = _state(session.id, jid)
    since = state.last_read_seq or 0
    unread = db.session.execute(
        sa.select(Message.wa_id, Message.sender_jid).where(
            Message.session_id == session.id, Message.chat_jid == jid,
            Message.direction == "in", Message.seq > since)
        .order_by(Message.seq.desc()).limit(RECEIPT_LIMIT)).all()
    state.last_read_seq, state.read_at = max(since, last_seq), utcnow()
    db.session.commit()  # the mark is the gateway's; it holds whatever the runtime says
    answer = {"jid": jid, "read_at": state.read_at, "unread": 0, "marked": len(unread),
              "receipts": "none", "receipts_error": None}
    if unread:
        by_sender: dict[str, list[str]] = {}
        for wa_id, sender in reversed(unread):
            by_sender.setdefault(sender, []).append(wa_id)
        try:
            commands.call("chats.mark_read", session_id=session.id, payload={
                "chat": jid, "receipts": [{"sender": s, "ids": i} for s, i in by_sender.items()]})
            answer["receipts"] = "sent"
        except (ServiceUnavailable, commands.CommandFailed) as exc:
            answer["receipts"] = "not_sent"
            answer["receipts_error"] = {"code": exc.code, "message": exc.message}
    return answer


# --- waiting for the next message -------------------------------------------------------

def _seq_of(session_id: str, message_id: str) -> int:
    seq = db.session.scalar(sa.select(Message.seq).where(Message.session_id == session_id,
                                                         Message.id == message_id))
    if seq is None:
        raise ValidationFailed(f"No message {message_id!r} in this session: after takes the "
                               "id of a message it stored (a chat's last_message.id).",
                               code="invalid_after", errors={"after": ["Unknown message."]})
    return seq


def long_poll(page: Callable[[], dict[str, Any]], seconds: float) -> dict[str, Any]:
    """``page()`` now, or as soon as it has items, or empty after ``seconds``.

    It polls the database (an indexed look-up every ``POLL_SECONDS``) and ends its read
    transaction before each sleep, so a waiting request holds no connection and no lock,
    only its web thread (KABAR_WEB_WORKERS x KABAR_WEB_THREADS of them in all).
    """
    deadline = time.monotonic() + seconds
    while True:
        answer = page()
        left = deadline - time.monotonic()
        if answer["items"] or left <= 0:
            return answer
        db.session.rollback()
        time.sleep(min(POLL_SECONDS, left))


# --- schemas and views --------------------------------------------------------------------

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
    name = ma.fields.String(allow_none=True, metadata={
        "description": "A group's subject, or the name the contact last gave."})
    unread = ma.fields.Integer(metadata={
        "description": "Inbound messages after the chat was last marked read here."})
    read_at = ma.fields.DateTime(allow_none=True)
    last_message = ma.fields.Nested(ChatLastMessageSchema)


class ChatListArgs(PageArgs):
    q = ma.fields.String(validate=ma.validate.Length(1, 64), metadata={
        "description": "Only chats whose phone or name contains this."})


class ChatMessagesArgs(PageArgs):
    direction = ma.fields.String(validate=ma.validate.OneOf(["in", "out"]))
    after = ma.fields.String(validate=ma.validate.Length(1, 36), metadata={
        "description": "Only messages stored after this one (a message id of this session, "
                       "such as the chat's last_message.id)."})
    wait = ma.fields.Float(load_default=0, validate=ma.validate.Range(0, MAX_WAIT_SECONDS),
                           metadata={"description": "Long-poll: when no message matches yet, "
                                     f"wait up to this many seconds (at most "
                                     f"{MAX_WAIT_SECONDS}) for one before answering."})


class ChatMessageSchema(MessageSchema):
    pass


class ChatReadSchema(ma.Schema):
    jid = ma.fields.String()
    read_at = ma.fields.DateTime()
    unread = ma.fields.Integer()
    marked = ma.fields.Integer(metadata={"description": "Messages that were unread."})
    receipts = ma.fields.String(metadata={
        "description": "none (nothing unread), sent, or not_sent (see receipts_error): the "
                       "mark is stored either way."})
    receipts_error = ma.fields.Dict(allow_none=True)


class ChatPresenceSchema(ma.Schema):
    state = ma.fields.String(required=True, validate=ma.validate.OneOf(PRESENCE_STATES))


@blp.route(ROUTE)
class Chats(MethodView):
    @blp.requires("sessions:read")
    @blp.arguments(ChatListArgs, location="query")
    @blp.response(200, page_schema(ChatSchema))
    def get(self, args, session_id):
        """Chats with their last message and unread count, newest first."""
        session = sessions.get(session_id)
        # The cursor is the last seq of the previous page (see chat_page).
        before = _decode_cursor(args["cursor"], Message.seq) if args["cursor"] else None
        items, last = chat_page(session.id, limit=args["limit"], before=before,
                                q=args.get("q"))
        return {"items": items, "next_cursor": None if last is None else _encode_cursor(last)}


@blp.route(CHAT_ROUTE)
class ChatByJid(MethodView):
    @blp.requires("sessions:read")
    @blp.response(200, ChatSchema)
    def get(self, session_id, chat):
        """One chat, by phone (as people type it) or JID."""
        session = sessions.get(session_id)
        items, _ = chat_page(session.id, limit=1, jid=parse_chat(chat))
        if not items:
            raise NotFound(f"There is no chat with {chat!r} in this session's history.",
                           code="chat_not_found")
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
        query = sa.select(Message).where(Message.session_id == session.id,
                                         Message.chat_jid == parse_chat(chat))
        if args.get("direction"):
            query = query.where(Message.direction == args["direction"])
        if args.get("after"):
            query = query.where(Message.seq > _seq_of(session.id, args["after"]))
        return long_poll(lambda: paginate(query, Message.seq, cursor=args["cursor"],
                                          limit=args["limit"]), args["wait"])


@blp.route(f"{CHAT_ROUTE}/read")
class ChatRead(MethodView):
    @blp.requires("messages:send")
    @blp.response(200, ChatReadSchema)
    def post(self, session_id, chat):
        """Mark the chat read: unread goes to 0 here, and WhatsApp gets read receipts
        when the runtime is up (if not, the mark is stored and the answer says so)."""
        session = sessions.get(session_id)
        return mark_read(session, parse_chat(chat))


@blp.route(f"{CHAT_ROUTE}/presence")
class ChatPresence(MethodView):
    @blp.requires("messages:send")
    @blp.arguments(ChatPresenceSchema)
    @blp.response(204)
    def post(self, body, session_id, chat):
        """Show typing (composing), recording a voice note, or stop (paused) in the chat."""
        session = sessions.get(session_id)
        commands.call("chats.presence", session_id=session.id,
                      payload={"chat": parse_chat(chat), "state": body["state"]})
