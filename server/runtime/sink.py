"""What the runtime does with each event a transport emits: store it, then log it.

Runs on the runtime's sink thread, never on a transport's callback thread.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from server import eventlog, sessions
from server.events import (
    Event,
    InboundMessage,
    MessageBackfilled,
    MessageReceived,
    MessageStatus,
    SessionStatus,
    to_wire,
)
from server.models import (
    MediaDownload,
    Message,
    OutboxMessage,
    SandboxDelivery,
    WaSession,
    db,
    unit_of_work,
    utcnow,
)
from server.outbox import receipts
from server.runtime import leases
from server.whatsapp.sandbox import SandboxDelivered

log = logging.getLogger(__name__)



def handle(session_id: str, event: Event, *, from_transport: bool = True,
           fence: tuple[str, int | None] | None = None) -> None:
    """Store one event, in one transaction that ends however this returns.
    ``from_transport``: the transport reported it (not the runtime), so a terminal status
    means the session ended by itself and must stay stopped. ``fence``: (host, lease
    token): raise LeaseLost, writing nothing, unless that host still holds the session
    (token None: unless no other host holds it)."""
    with unit_of_work():
        session = db.session.get(WaSession, session_id)
        if session is None:
            return  # deleted meanwhile
        if fence is not None:
            leases.fence(session_id, *fence)
        if isinstance(event, SessionStatus):
            sessions.record_status(session, event,
                                   halt=from_transport and event.status in sessions.TERMINAL)
            return
        if isinstance(event, SandboxDelivered):
            _store_sandbox_delivery(session, event)
            return
        session.last_seen_at = utcnow()
        if isinstance(event, MessageReceived | MessageBackfilled):
            if not store_inbound(session, event.message):
                # A duplicate delivery, or a backfilled message Kabar already has (by
                # its WhatsApp id): stored and announced once already.
                return
        elif isinstance(event, MessageStatus):
            _apply_receipt(session, event)
        eventlog.record(event, session)


def store_inbound(session: WaSession, message: InboundMessage) -> bool:
    """Store an inbound message once. False if it was already stored."""
    row = Message(
        session_id=session.id, wa_id=message.id, direction="out" if message.from_me else "in",
        chat_jid=message.chat.jid, chat_phone=message.chat.phone,
        sender_jid=message.sender.jid, sender_phone=message.sender.phone,
        sender_lid=message.sender.lid, sender_name=message.sender.name,
        is_group=message.is_group, from_me=message.from_me, kind=message.kind,
        text=message.text, media=to_wire(message.media) if message.media else None,
        location=to_wire(message.location) if message.location else None,
        quoted_id=message.quoted_id, timestamp=message.timestamp,
        status="received")
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
            if message.media is not None:  # fetched later by the media worker
                db.session.add(MediaDownload(message_seq=row.seq, session_id=session.id))
    except IntegrityError:
        log.info("duplicate message %s in session %s ignored", message.id, session.id)
        return False
    return True


def _store_sandbox_delivery(session: WaSession, event: SandboxDelivered) -> None:
    """The sandbox recipient's inbox holds each WhatsApp id once (a resend after a crash
    is the same message)."""
    try:
        with db.session.begin_nested():
            db.session.add(SandboxDelivery(session_id=session.id, wa_id=event.wa_id,
                                           to_jid=event.to_jid, kind=event.kind,
                                           content=event.content))
    except IntegrityError:
        pass


def _apply_receipt(session: WaSession, event: MessageStatus) -> None:
    """Move sent messages forward (history and outbox alike), never backwards."""
    for model in (Message, OutboxMessage):
        query = sa.select(model).where(model.session_id == session.id,
                                       model.wa_id.in_(event.message_ids))
        if model is Message:
            query = query.where(Message.direction == "out")
        for row in db.session.scalars(query):
            receipts.apply(row, event.status, event.timestamp)
