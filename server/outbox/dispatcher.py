"""The runtime's side of the outbox: one dispatcher sends for every live session.

The dispatcher finds the sessions with due messages in one query, and hands each to a
bounded pool of send workers (``KABAR_SEND_WORKERS``), at most one worker per session at
a time; so threads and database connections do not grow with the number of sessions.

Each send takes the session's next message in priority order, never overtaking an
earlier message to the same chat; pacing decides *when* the session sends next, not
*which* message goes. A message is marked ``sending`` (committed) before the transport
is called and ``sent`` after, and recorded in the chat history. A message found
``sending`` when a session attaches was interrupted by a crash: it goes again with the
same WhatsApp id, so the recipient still sees it once.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from server import eventlog
from server.events import MessageSent
from server.models import Message, OutboxMessage, WaSession, db, memoised, utcnow
from server.outbox.pacing import History, Pacing, next_slot
from server.runtime import acks
from server.runtime.leases import LeaseLost, fence
from server.runtime.worker import Worker
from server.whatsapp.transport import (
    Media,
    Outbound,
    Poll,
    SendResult,
    Transport,
    TransportError,
)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(minutes=5)
IDLE_SECONDS = 5.0
# How many chats' first messages one send looks at to find one that pacing lets go now.
CANDIDATES = 20
# With pacing off, at most this many messages (one per chat) go with one group commit.
BATCH = 100


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2**attempts), MAX_BACKOFF)


def requeue_interrupted(session_id: str) -> int:
    """Messages a crash left in ``sending`` go again (same wa_id). Returns how many."""
    count = db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.session_id == session_id, OutboxMessage.status == "sending")
        .values(status="queued", waiting="resending after an interrupted attempt")
    ).rowcount
    db.session.commit()
    return count


@dataclass
class _Attached:
    sender: SessionSender
    busy: bool = False
    next_try: float = 0.0  # monotonic; pacing holds the session until then
    seen_seq: int = 0  # the newest due message when it was last looked at
    fresh: bool = True  # interrupted sends not yet requeued
    previous: _Attached | None = None  # the session's entry before a restart


class OutboxDispatcher(Worker):
    name = "kabar-outbox"

    def __init__(self, app: Flask, workers: int = 4):
        super().__init__(app)
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="kabar-send")
        self.sessions: dict[str, _Attached] = {}
        self._detached: dict[str, _Attached] = {}
        self._lock = threading.Lock()

    def attach(
        self,
        session_id: str,
        transport: Transport,
        connected: Callable[[], bool],
        lease: tuple[str, int | None] | None = None,
    ) -> None:
        """Send for this session. ``lease``: (host, token) every write is fenced with."""
        with self._lock:
            previous = self.sessions.get(session_id) or self._detached.pop(session_id, None)
            self.sessions[session_id] = _Attached(
                SessionSender(session_id, transport, connected, lease),
                previous=previous if previous is not None and previous.busy else None,
            )
        self.wake.set()

    def detach(self, session_id: str) -> None:
        with self._lock:
            entry = self.sessions.pop(session_id, None)
            if entry is not None and entry.busy:  # its send is still under way
                self._detached[session_id] = entry

    def stop(self) -> None:
        super().stop()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def step(self) -> float:
        """Hand every session with due work to a send worker; return how long to wait."""
        now, clock = utcnow(), time.monotonic()
        due = db.session.execute(
            sa.select(OutboxMessage.session_id, sa.func.max(OutboxMessage.seq))
            .where(
                OutboxMessage.status == "queued",
                sa.or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now),
            )
            .group_by(OutboxMessage.session_id)
        ).all()
        later = db.session.scalar(
            sa.select(sa.func.min(OutboxMessage.not_before)).where(
                OutboxMessage.status == "queued", OutboxMessage.not_before > now
            )
        )
        db.session.commit()
        wait = IDLE_SECONDS
        if later is not None:
            wait = min(wait, max(0.01, (later - now).total_seconds()))
        with self._lock:
            # A session just attached first requeues what a crash left in "sending".
            work = [(e, 0) for e in self.sessions.values() if e.fresh]
            work += [
                (e, newest)
                for session_id, newest in due
                if (e := self.sessions.get(session_id)) is not None and not e.fresh
            ]
        for entry, newest in work:
            if entry.busy or not entry.sender.connected():
                continue
            if entry.previous is not None:
                if entry.previous.busy:  # the old connection's last send is not done
                    continue
                entry.previous = None
            if entry.next_try > clock and newest <= entry.seen_seq:
                wait = min(wait, entry.next_try - clock)
                continue  # paced, and nothing new arrived that might go sooner
            entry.busy, entry.seen_seq = True, max(newest, entry.seen_seq)
            self.pool.submit(self._send, entry)
        return wait

    def _send(self, entry: _Attached) -> None:
        delay = 1.0
        with self.app.app_context():
            try:
                if entry.fresh:
                    requeue_interrupted(entry.sender.session_id)
                    entry.fresh = False
                delay = entry.sender.send_next()
            except LeaseLost:
                db.session.rollback()
                log.warning(
                    "session %s: another host holds it; not sending here", entry.sender.session_id
                )
                delay = IDLE_SECONDS
            except Exception:
                db.session.rollback()
                log.exception("sending for session %s failed; retrying", entry.sender.session_id)
            finally:
                db.session.remove()
        entry.next_try = time.monotonic() + delay
        entry.busy = False
        with self._lock:
            if self._detached.get(entry.sender.session_id) is entry:
                del self._detached[entry.sender.session_id]
        self.wake.set()


class SessionSender:
    """What sends one session's messages (called by the dispatcher's workers)."""

    def __init__(
        self,
        session_id: str,
        transport: Transport,
        connected: Callable[[], bool],
        lease: tuple[str, int | None] | None = None,
    ):
        self.session_id = session_id
        self.transport = transport
        self.connected = connected
        self.lease = lease

    def _fence(self) -> None:
        """Raise LeaseLost unless this host still holds the session (in the caller's
        transaction, which then commits only if it does)."""
        if self.lease is not None:
            fence(self.session_id, *self.lease)

    # --- one message ------------------------------------------------------------------

    def send_next(self) -> float:
        """Send the next message that may go; return how long the session waits after."""
        now = utcnow()
        self._expire(now)
        candidates = self._candidates(now)
        if not candidates:
            return IDLE_SECONDS
        session = db.session.get(WaSession, self.session_id)
        try:
            pacing = Pacing.from_settings(session.settings)
        except Exception:
            pacing = Pacing()  # bad settings never stop sending; the API refuses them
        if not pacing.enabled and len(candidates) > 1:
            return self._send_batch(candidates, session, pacing)
        earliest: datetime | None = None
        for row in candidates[:CANDIDATES]:
            slot = next_slot(
                pacing,
                self._history(pacing, row, session, now),
                now=now,
                priority=row.priority,
                jitter_key=row.seq,
            )
            if slot is None:
                return self._claim_and_send(row, session, pacing, now)
            when, why = slot
            waiting = f"{why} (not before {when.isoformat(timespec='seconds')})"[:255]
            if row.waiting != waiting:
                row.waiting = waiting
            if earliest is None or when < earliest:
                earliest = when
        db.session.commit()
        return max(0.01, (earliest - now).total_seconds())

    def _candidates(self, now: datetime) -> list[OutboxMessage]:
        """The due messages that may go next: in priority order, and only the first
        waiting message of each chat (the query: ``_candidates``)."""
        return list(db.session.scalars(_candidates(), {"b_session": self.session_id, "b_now": now}))

    def _claim_and_send(
        self, row: OutboxMessage, session: WaSession, pacing: Pacing, now: datetime
    ) -> float:
        self._fence()
        claimed = db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.seq == row.seq, OutboxMessage.status == "queued")
            .values(
                status="sending", attempts=OutboxMessage.attempts + 1, waiting=None, updated_at=now
            )
        ).rowcount
        db.session.commit()
        if not claimed:
            return 0.0  # cancelled meanwhile
        db.session.refresh(row)
        self._attempt(row, session, pacing)
        return 0.0

    def _send_batch(
        self, candidates: list[OutboxMessage], session: WaSession, pacing: Pacing
    ) -> float:
        """Pacing off: send every candidate (one message per chat, so a chat's order
        holds) with one commit to claim them and one to record them all (a group commit).
        Their deliveries are stored (``acks.deferred``) before they are recorded sent; a
        crash in between leaves them ``sending``, and they go again under the same ids."""
        seqs = [row.seq for row in candidates]
        self._fence()
        db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.seq.in_(seqs), OutboxMessage.status == "queued")
            .values(
                status="sending",
                attempts=OutboxMessage.attempts + 1,
                waiting=None,
                updated_at=utcnow(),
            ),
            execution_options={"synchronize_session": False},
        )
        db.session.commit()
        rows = list(
            db.session.scalars(
                sa.select(OutboxMessage)
                .where(OutboxMessage.seq.in_(seqs), OutboxMessage.status == "sending")
                .order_by(OutboxMessage.priority, OutboxMessage.seq)
            )
        )  # not cancelled meanwhile
        outcomes: list[tuple[OutboxMessage, SendResult | TransportError]] = []
        with acks.deferred() as stored:
            for row in rows:
                outcomes.append((row, self._transmit(row, pacing)))
            stored.wait()
        recorded = _Recorded(session)
        # The session's row first, as the sink locks it: the sink (fenced) applies
        # receipts to these very rows, and locking them before the session's row here
        # deadlocked the two on PostgreSQL (one aborted after deadlock_timeout).
        self._fence()
        with memoised(), eventlog.batched(), db.session.no_autoflush:
            for row, outcome in outcomes:
                recorded.add(row, outcome)
            recorded.write()
        db.session.commit()
        return 0.0

    def _attempt(self, row: OutboxMessage, session: WaSession, pacing: Pacing) -> None:
        outcome = self._transmit(row, pacing)
        self._fence()  # sent, but another host took over: it resends under the same id
        recorded = _Recorded(session)
        recorded.add(row, outcome)
        recorded.write()
        db.session.commit()

    def _transmit(self, row: OutboxMessage, pacing: Pacing) -> SendResult | TransportError:
        """Hand one claimed message to the transport: its result, or why it failed."""
        try:
            outbound = build_outbound(row)
            typing = row.payload.get("typing")
            if (pacing.typing if typing is None else typing) and row.kind == "text":
                self.transport.presence(row.to_jid, "composing")
                time.sleep(min(3.0, 0.5 + len(outbound.text) * 0.03))
                self.transport.presence(row.to_jid, "paused")
            return self.transport.send(outbound)
        except TransportError as exc:
            return exc
        except Exception as exc:  # an unexpected transport bug: retry, do not lose it
            log.exception("send of %s failed unexpectedly", row.id)
            return TransportError(f"{type(exc).__name__}: {exc}")

    def _expire(self, now: datetime) -> None:
        expired = db.session.execute(
            sa.update(OutboxMessage)
            .where(
                OutboxMessage.session_id == self.session_id,
                OutboxMessage.status == "queued",
                OutboxMessage.expires_at.isnot(None),
                OutboxMessage.expires_at <= now,
            )
            .values(status="expired", waiting=None, reason="expired before it could be sent")
        ).rowcount
        if expired:
            db.session.commit()

    def _idle(self, now: datetime) -> float:
        """Sleep until the next scheduled message, at most IDLE_SECONDS."""
        db.session.commit()
        next_at = db.session.scalar(
            sa.select(sa.func.min(OutboxMessage.not_before)).where(
                OutboxMessage.session_id == self.session_id, OutboxMessage.status == "queued"
            )
        )
        if next_at is None:
            return IDLE_SECONDS
        return max(0.01, min(IDLE_SECONDS, (next_at - now).total_seconds()))

    def _history(
        self, pacing: Pacing, row: OutboxMessage, session: WaSession, now: datetime
    ) -> History:
        if not pacing.enabled:
            return History(None, None, 0, 0.0)
        sent = sa.select(sa.func.max(OutboxMessage.sent_at)).where(
            OutboxMessage.session_id == self.session_id
        )
        today = (
            sa.select(sa.func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.session_id == self.session_id,
                OutboxMessage.sent_at >= pacing.start_of_day(now),
            )
        )
        return History(
            last_sent_at=db.session.scalar(sent),
            last_to_recipient_at=db.session.scalar(sent.where(OutboxMessage.to_jid == row.to_jid))
            if pacing.recipient_cooldown
            else None,
            sent_today=db.session.scalar(today) if pacing.daily_cap else 0,
            connected_days=(now - session.created_at).total_seconds() / 86400,
        )


ACTIONS = {"reaction", "edit", "revoke"}


class _Recorded:
    """What sends did, written in the caller's transaction with one statement each (an
    executemany: the outbox rows moved to ``sent``, their history rows) rather than the
    ORM's unit of work; their ``message.sent`` events through ``eventlog.record``
    (batched by the caller in a group commit). A sent row moves to ``sent`` only from
    ``sending``: a receipt stored meanwhile (the recipient was quicker than this commit)
    is not undone."""

    def __init__(self, session: WaSession):
        self.session = session
        self.sent: list[dict[str, Any]] = []
        self.history: list[dict[str, Any]] = []

    def add(self, row: OutboxMessage, outcome: SendResult | TransportError) -> None:
        if isinstance(outcome, TransportError):
            _failed_attempt(row, outcome)
            return
        at = outcome.timestamp
        self.sent.append({"b_seq": row.seq, "b_at": at})
        if row.kind in ACTIONS:
            _apply_action(row)
        else:
            self.history.append(history_values(row, self.session, sent_at=at))
        eventlog.record(
            MessageSent(
                message_id=row.id,
                wa_id=row.wa_id,
                to=row.to_jid,
                kind=row.kind,
                source=row.source,
                timestamp=at,
            ),
            self.session,
        )

    def write(self) -> None:
        connection = db.session.connection()
        if self.sent:
            connection.execute(_MARK_SENT, self.sent)
        if self.history:
            connection.execute(sa.insert(Message.__table__), self.history)


def _failed_attempt(row: OutboxMessage, exc: TransportError) -> None:
    if exc.permanent or row.attempts >= MAX_ATTEMPTS:
        row.status = "failed"
        row.reason = f"{exc.code}: {exc}"[:512]
    else:
        row.status = "queued"
        row.not_before = utcnow() + backoff(row.attempts)
        row.waiting = f"retrying after: {exc}"[:255]


_outbox = OutboxMessage.__table__
_MARK_SENT = (
    sa.update(_outbox)
    .where(_outbox.c.seq == sa.bindparam("b_seq"), _outbox.c.status == "sending")
    .values(status="sent", sent_at=sa.bindparam("b_at", type_=_outbox.c.sent_at.type), reason=None)
)


@functools.cache
def _candidates() -> sa.Select[tuple[OutboxMessage]]:
    """The query of ``SessionSender._candidates``, built once (building it cost more
    than running it): ``b_session``'s due messages, in priority order, and only the
    first waiting message of each chat (a chat's messages leave in the order accepted,
    so one whose media is still being fetched holds its chat; one scheduled for later,
    ``send_at`` after ``b_now``, does not)."""
    now = sa.bindparam("b_now", type_=OutboxMessage.__table__.c.not_before.type)
    earlier = sa.orm.aliased(OutboxMessage)
    blocked = sa.exists().where(
        earlier.session_id == OutboxMessage.session_id,
        earlier.to_jid == OutboxMessage.to_jid,
        earlier.seq < OutboxMessage.seq,
        earlier.status.in_(("fetching", "queued", "sending")),
        sa.or_(earlier.send_at.is_(None), earlier.send_at <= now),
    )
    return (
        sa.select(OutboxMessage)
        .where(
            OutboxMessage.session_id == sa.bindparam("b_session"),
            OutboxMessage.status == "queued",
            sa.or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now),
            ~blocked,
        )
        .order_by(OutboxMessage.priority, OutboxMessage.seq)
        .limit(BATCH)
    )


def _apply_action(row: OutboxMessage) -> None:
    """Reflect a sent edit or revoke in the target's history entry."""
    target = db.session.scalar(
        sa.select(Message).where(Message.id == row.payload["target"]["message"])
    )
    if target is None:
        return
    if row.kind == "edit":
        target.text = row.payload["text"]
    elif row.kind == "revoke":
        target.text, target.status = "", "revoked"


def build_outbound(row: OutboxMessage) -> Outbound:
    from server.events import Location

    payload = row.payload
    media = None
    if payload.get("media"):
        from server import media as media_store

        m = payload["media"]
        media = Media(
            data=media_store.open_bytes(m["sha256"]),
            mimetype=m["mimetype"],
            filename=m.get("filename"),
        )
    quoted = payload.get("quoted") or payload.get("target") or {}
    poll = payload.get("poll")
    return Outbound(
        message_id=row.wa_id,
        to=row.to_jid,
        kind=row.kind,
        text=payload.get("text", ""),
        media=media,
        location=Location(**payload["location"]) if payload.get("location") else None,
        vcards=tuple(payload.get("vcards", ())),
        poll=Poll(
            question=poll["question"], options=tuple(poll["options"]), multiple=poll["multiple"]
        )
        if poll
        else None,
        link_preview=payload.get("link_preview", False),
        mentions=tuple(payload.get("mentions", ())),
        quoted_id=quoted.get("id"),
        quoted_sender=quoted.get("sender"),
        quoted_text=quoted.get("text"),
    )


def history_values(
    row: OutboxMessage, session: WaSession, sent_at: datetime | None = None
) -> dict[str, Any]:
    """The chat-history entry of a sent message (same id as its outbox row), as the
    values of its ``messages`` row."""
    from server.whatsapp.jids import GROUP_SERVER, phone_of, split_jid

    _, server = split_jid(row.to_jid)
    payload = row.payload
    return {
        "id": row.id,
        "session_id": session.id,
        "wa_id": row.wa_id,
        "direction": "out",
        "chat_jid": row.to_jid,
        "chat_phone": phone_of(row.to_jid),
        "sender_jid": session.jid or "",
        "sender_phone": session.phone,
        "sender_lid": None,
        "sender_name": session.push_name,
        "is_group": server == GROUP_SERVER,
        "from_me": True,
        "kind": row.kind,
        "text": payload.get("text", "") or (payload.get("poll") or {}).get("question", ""),
        "media": dict(payload["media"]) if payload.get("media") else None,
        "location": payload.get("location"),
        "quoted_id": (payload.get("quoted") or {}).get("id"),
        "status": "sent",
        "timestamp": sent_at or row.sent_at or utcnow(),
        "created_at": utcnow(),
    }
