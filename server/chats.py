"""A session's chats, from the gateway's own message store: what /api/v1/sessions/{id}/chats
and the dashboard's chat page answer.

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

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from server.errors import NotFound, ServiceUnavailable, ValidationFailed
from server.models import ChatState, Message, db, utcnow
from server.runtime import commands, live
from server.whatsapp.jids import GROUP_SERVER, InvalidPhone, phone_of

RECEIPT_LIMIT = 200  # newest unread ids per receipt; WhatsApp reads the rest as seen too
POLL_SECONDS = 0.25


# --- chat state ---------------------------------------------------------------------------


def _state(session_id: str, jid: str) -> ChatState:
    """The chat's state row, made on first need (once, even when two requests race)."""
    query = sa.select(ChatState).where(
        ChatState.session_id == session_id, ChatState.chat_jid == jid
    )
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
        other.session_id == session_id,
        other.direction == "in",
        other.is_group.is_(False),
        sa.func.lower(other.sender_name).contains(text, autoescape=True),
    )
    by_number = (
        Message.chat_jid.contains(digits, autoescape=True)
        if digits and re.fullmatch(r"[\d\s+\-().]+", text)
        else sa.func.lower(Message.chat_jid).contains(text, autoescape=True)
    )
    return sa.or_(
        by_number,
        sa.func.lower(ChatState.name).contains(text, autoescape=True),
        Message.chat_jid.in_(named),
    )


def chat_page(
    session_id: str,
    *,
    limit: int,
    before: int | None = None,
    jid: str | None = None,
    q: str | None = None,
) -> tuple[list[dict], int | None]:
    """Chats newest first by their last stored message, with unread counts.

    The order key is the last message's ``seq``: unique and only growing, so a cursor
    (the last seq of a page) never repeats or skips a chat that did not move; a chat
    with a new message moves to the top, where the next listing shows it.
    """
    read_upto = sa.func.coalesce(ChatState.last_read_seq, 0)
    last_seq = sa.func.max(Message.seq)
    unread = sa.func.sum(
        sa.case((sa.and_(Message.direction == "in", Message.seq > read_upto), 1), else_=0)
    )
    query = (
        sa.select(
            Message.chat_jid,
            last_seq.label("last_seq"),
            unread.label("unread"),
            ChatState.name,
            ChatState.read_at,
        )
        .select_from(Message)
        .outerjoin(
            ChatState,
            sa.and_(
                ChatState.session_id == Message.session_id, ChatState.chat_jid == Message.chat_jid
            ),
        )
        .where(Message.session_id == session_id)
        .group_by(Message.chat_jid, ChatState.id, ChatState.name, ChatState.read_at)
        .order_by(last_seq.desc())
        .limit(limit + 1)
    )
    if before is not None:
        query = query.having(last_seq < before)
    if jid is not None:
        query = query.where(Message.chat_jid == jid)
    if q:
        query = query.where(_search(session_id, q))
    rows = db.session.execute(query).all()
    page = rows[:limit]
    last = {
        m.seq: m
        for m in db.session.scalars(
            sa.select(Message).where(Message.seq.in_([r.last_seq for r in page]))
        )
    }
    names = _contact_names(session_id, [r.chat_jid for r in page if not r.name])
    items = [
        {
            "jid": r.chat_jid,
            "phone": last[r.last_seq].chat_phone or _phone(r.chat_jid),
            "is_group": r.chat_jid.endswith(f"@{GROUP_SERVER}"),
            "name": r.name or names.get(r.chat_jid),
            "unread": int(r.unread or 0),
            "read_at": r.read_at,
            "last_message": last[r.last_seq],
        }
        for r in page
    ]
    return items, (page[-1].last_seq if len(rows) > limit else None)


def _contact_names(session_id: str, jids: list[str]) -> dict[str, str]:
    """The name each private chat's contact last gave (WhatsApp's push name)."""
    if not jids:
        return {}
    latest = (
        sa.select(sa.func.max(Message.seq))
        .where(
            Message.session_id == session_id,
            Message.chat_jid.in_(jids),
            Message.direction == "in",
            Message.is_group.is_(False),
            Message.sender_name.is_not(None),
        )
        .group_by(Message.chat_jid)
    )
    return dict(
        db.session.execute(
            sa.select(Message.chat_jid, Message.sender_name).where(Message.seq.in_(latest))
        ).all()
    )


def _phone(jid: str) -> str | None:
    try:
        return phone_of(jid)
    except InvalidPhone:
        return None


# --- marking read -------------------------------------------------------------------------


def mark_read(session, jid: str) -> dict:
    last_seq = db.session.scalar(
        sa.select(sa.func.max(Message.seq)).where(
            Message.session_id == session.id, Message.chat_jid == jid
        )
    )
    if last_seq is None:
        raise NotFound(
            f"There is no chat with {jid} in this session's history.", code="chat_not_found"
        )
    state = _state(session.id, jid)
    since = state.last_read_seq or 0
    unread = db.session.execute(
        sa.select(Message.wa_id, Message.sender_jid)
        .where(
            Message.session_id == session.id,
            Message.chat_jid == jid,
            Message.direction == "in",
            Message.seq > since,
        )
        .order_by(Message.seq.desc())
        .limit(RECEIPT_LIMIT)
    ).all()
    state.last_read_seq, state.read_at = max(since, last_seq), utcnow()
    db.session.commit()  # the mark is the gateway's; it holds whatever the runtime says
    answer = {
        "jid": jid,
        "read_at": state.read_at,
        "unread": 0,
        "marked": len(unread),
        "receipts": "none",
        "receipts_error": None,
    }
    if unread:
        by_sender: dict[str, list[str]] = {}
        for wa_id, sender in reversed(unread):
            by_sender.setdefault(sender, []).append(wa_id)
        try:
            live.mark_read(session.id, jid, by_sender)
            answer["receipts"] = "sent"
        except (ServiceUnavailable, commands.CommandFailed) as exc:
            answer["receipts"] = "not_sent"
            answer["receipts_error"] = {"code": exc.code, "message": exc.message}
    return answer


# --- waiting for the next message -------------------------------------------------------


def messages(
    session_id: str, jid: str, *, direction: str | None = None, after: str | None = None
) -> sa.Select:
    """The chat's messages (``in``/``out`` only with ``direction``; only those stored after
    the message ``after`` names), for the caller to page by ``seq``."""
    query = sa.select(Message).where(Message.session_id == session_id, Message.chat_jid == jid)
    if direction:
        query = query.where(Message.direction == direction)
    if after:
        query = query.where(Message.seq > _seq_of(session_id, after))
    return query


def _seq_of(session_id: str, message_id: str) -> int:
    seq = db.session.scalar(
        sa.select(Message.seq).where(Message.session_id == session_id, Message.id == message_id)
    )
    if seq is None:
        raise ValidationFailed(
            f"No message {message_id!r} in this session: after takes the "
            "id of a message it stored (a chat's last_message.id).",
            code="invalid_after",
            errors={"after": ["Unknown message."]},
        )
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
