"""What the runtime does with each event a transport emits: store it, then log it.

Runs on the runtime's sink thread, never on a transport's callback thread. The sink
stores what has piled up in one transaction (``handle_many``, a group commit), so under
load one commit carries many events; an event is acknowledged only once it is committed.
"""

from __future__ import annotations

import functools
import logging

import sqlalchemy as sa

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
    memoised,
    unit_of_work,
    utcnow,
)
from server.outbox import receipts
from server.runtime import leases
from server.whatsapp.sandbox import SandboxDelivered

log = logging.getLogger(__name__)


def handle(
    session_id: str,
    event: Event,
    *,
    from_transport: bool = True,
    fence: tuple[str, int | None] | None = None,
) -> None:
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
        _apply(session, event, from_transport=from_transport)


def groupable(event: Event) -> bool:
    """Whether ``handle_many`` may store this event with others: not a session status,
    which commits on its own (``sessions.record_status``)."""
    return not isinstance(event, SessionStatus)


def handle_many(items: list[tuple[str, Event, bool, tuple[str, int | None] | None]]) -> None:
    """Store several events, in order, in one transaction (a group commit): all or none.
    Each item is (session id, event, from transport, fence), as ``handle`` takes them.
    A session is read, its lease checked (the check locks its row until the commit) and
    its ``last_seen_at`` moved once per transaction; the events' rows are written with
    one statement (``eventlog.batched``). The caller stores them one by one if this
    raises."""
    held: dict[str, WaSession | None] = {}  # strong references: the identity map is weak
    fenced: set[tuple[str, tuple[str, int | None]]] = set()
    touched: set[str] = set()
    receipts_due: dict[str, list[dict]] = {}
    deliveries: list[dict] = []
    with unit_of_work(), memoised(), eventlog.batched():
        for session_id, event, from_transport, fence in items:
            if session_id not in held:
                held[session_id] = db.session.get(WaSession, session_id)
            session = held[session_id]
            if session is None:
                continue  # deleted meanwhile
            if fence is not None and (session_id, fence) not in fenced:
                leases.fence(session_id, *fence)
                fenced.add((session_id, fence))
            _apply(
                session,
                event,
                from_transport=from_transport,
                touched=touched,
                receipts_due=receipts_due,
                deliveries=deliveries,
            )
        if deliveries:
            _insert_deliveries(deliveries)
        if receipts_due:
            _run_receipts(receipts_due)


def _apply(
    session: WaSession,
    event: Event,
    *,
    from_transport: bool,
    touched: set[str] | None = None,
    receipts_due: dict[str, list[dict]] | None = None,
    deliveries: list[dict] | None = None,
) -> None:
    """Store one event. In a group commit, ``receipts_due`` and ``deliveries`` collect
    the receipts' updates and the sandbox's delivery records, each written at the end
    with one statement for all."""
    if isinstance(event, SessionStatus):
        sessions.record_status(
            session, event, halt=from_transport and event.status in sessions.TERMINAL
        )
        return
    if isinstance(event, SandboxDelivered):
        row = _sandbox_delivery(session, event)
        if deliveries is None:
            _insert_deliveries([row])
        else:
            deliveries.append(row)
        return
    if touched is None or session.id not in touched:
        session.last_seen_at = utcnow()
        if touched is not None:
            touched.add(session.id)
    if isinstance(event, MessageReceived | MessageBackfilled):
        if not store_inbound(session, event.message):
            # A duplicate delivery, or a backfilled message Kabar already has (by
            # its WhatsApp id): stored and announced once already.
            return
    elif isinstance(event, MessageStatus):
        _apply_receipt(session, event, receipts_due)
    eventlog.record(event, session)


def store_inbound(session: WaSession, message: InboundMessage) -> bool:
    """Store an inbound message once. False if it was already stored.

    One ``INSERT … ON CONFLICT DO NOTHING RETURNING seq`` (Core): a duplicate is found by
    the conflict, not by a savepoint and an ORM flush for every message, which cost more
    than the rest of storing one."""
    seq = db.session.execute(
        _insert_message(db.engine.dialect.name),
        {
            "session_id": session.id,
            "wa_id": message.id,
            "direction": "out" if message.from_me else "in",
            "chat_jid": message.chat.jid,
            "chat_phone": message.chat.phone,
            "sender_jid": message.sender.jid,
            "sender_phone": message.sender.phone,
            "sender_lid": message.sender.lid,
            "sender_name": message.sender.name,
            "is_group": message.is_group,
            "from_me": message.from_me,
            "kind": message.kind,
            "text": message.text,
            "media": to_wire(message.media) if message.media else None,
            "location": to_wire(message.location) if message.location else None,
            "quoted_id": message.quoted_id,
            "timestamp": message.timestamp,
            "status": "received",
        },
    ).scalar()
    if seq is None:
        log.info("duplicate message %s in session %s ignored", message.id, session.id)
        return False
    if message.media is not None:  # fetched later by the media worker
        db.session.add(MediaDownload(message_seq=seq, session_id=session.id))
    return True


def _sandbox_delivery(session: WaSession, event: SandboxDelivered) -> dict:
    """The ``sandbox_deliveries`` row of a delivery (see ``_insert_deliveries``)."""
    return {
        "session_id": session.id,
        "wa_id": event.wa_id,
        "to_jid": event.to_jid,
        "kind": event.kind,
        "content": event.content,
        "received_at": utcnow(),
    }


def _insert_deliveries(rows: list[dict]) -> None:
    """The sandbox recipient's inbox holds each WhatsApp id once (a resend after a crash
    is the same message): an insert that does nothing on a second copy, in order."""
    db.session.connection().execute(
        _insert_once(SandboxDelivery.__table__, db.engine.dialect.name), rows
    )


@functools.cache
def _insert_message(dialect: str) -> sa.Insert:
    table = Message.__table__
    return _insert_once(table, dialect).returning(table.c.seq)


@functools.cache
def _insert_once(table: sa.Table, dialect: str) -> sa.Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for this database (both have it)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


def _apply_receipt(
    session: WaSession, event: MessageStatus, receipts_due: dict[str, list[dict]] | None = None
) -> None:
    """Move sent messages forward (history and outbox alike), never backwards: one
    UPDATE each, whose condition is ``receipts.advances`` (rows already at or past the
    receipt's status are left alone). With ``receipts_due`` (a group commit) the updates
    are collected there and run at the end, each statement once for all of them."""
    if event.status not in receipts.ORDER and event.status != "failed":
        return  # a status Kabar does not know moves nothing
    params = [
        {"b_session": session.id, "b_id": wa_id, "b_at": event.timestamp}
        for wa_id in event.message_ids
    ]
    if receipts_due is None:
        _run_receipts({event.status: params})
    else:
        receipts_due.setdefault(event.status, []).extend(params)


def _run_receipts(receipts_due: dict[str, list[dict]]) -> None:
    """Apply collected receipts: each status's UPDATEs as one executemany, "failed"
    first, then in the order statuses advance. Every receipt only moves a row forward
    (and "failed" only a row not yet delivered), so this ends where applying them one
    by one in their order would."""
    connection = db.session.connection()  # Core: nothing of the ORM's is touched
    for status in sorted(receipts_due, key=lambda name: receipts.ORDER.get(name, -1)):
        for statement in _receipt_updates(status):
            connection.execute(statement, receipts_due[status])


@functools.cache
def _receipt_updates(status: str) -> tuple[sa.Update, ...]:
    """The two UPDATEs a receipt of ``status`` makes for one message, built once (Core,
    with bound parameters: a receipt is the commonest event, and building the statement
    cost more than running it)."""
    ahead = receipts.not_advanced_by(status)

    def where(table: sa.Table) -> list[sa.ColumnElement[bool]]:
        return [
            table.c.session_id == sa.bindparam("b_session"),
            table.c.wa_id == sa.bindparam("b_id"),
            # not NOT IN: a list renders as an expanding parameter, which
            # executemany cannot take
            *(table.c.status != status_ahead for status_ahead in ahead),
        ]

    history, outbox = Message.__table__, OutboxMessage.__table__
    at = sa.bindparam("b_at", type_=outbox.c.delivered_at.type)
    values: dict[str, object] = {"status": status}
    if status in receipts.DELIVERED:
        values["delivered_at"] = sa.func.coalesce(outbox.c.delivered_at, at)
    if status in receipts.READ:
        values["read_at"] = sa.func.coalesce(outbox.c.read_at, at)
    return (
        sa.update(history)
        .where(*where(history), history.c.direction == "out")
        .values(status=status),
        sa.update(outbox).where(*where(outbox)).values(**values),
    )
