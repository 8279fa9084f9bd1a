"""Fetches the media of outgoing messages given by URL, outside any web request.

``outbox.send`` stores a message whose media is a URL with status ``fetching``; the
dispatcher sends ``queued`` rows only, so it waits. This worker claims such rows (a
lease in ``not_before``, so a runtime that dies mid-fetch leaves the row to be claimed
again, and two runtimes never fetch one row at once), fetches the URL under the SSRF
guard with its total deadline and size cap (``KABAR_FETCH_TIMEOUT``,
``KABAR_FETCH_MAX_BYTES``), stores and prepares the bytes as the accept path does
(``outbox.queue.prepared_media``) and makes the row ``queued``. A fetch that fails
for good fails the message with its reason and a ``message.status`` ``failed`` event.

A broadcast's recipients share one URL: one fetch serves all of them.

Fetches run on a small pool (``KABAR_MEDIA_FETCHERS`` threads), so one slow server
delays only the messages that point at it.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app

from server import eventlog
from server.errors import KabarError
from server.events import MessageStatus, Party
from server.models import OutboxMessage, WaSession, db, utcnow
from server.runtime import wakeup
from server.runtime.worker import Worker

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
# Failures worth another try: the server was slow or briefly broken. An unsafe URL, a
# body over the cap or bytes that cannot be made into the message's kind fail at once.
TRANSIENT_CODES = {"fetch_failed", "fetch_timeout"}
# New rows come with a notify (and the media worker passes its wake-ups on), so with
# nothing to fetch this worker looks again only this often.
IDLE_SECONDS = 5.0
# What a claim lasts beyond the fetch's own deadline: storing and converting the bytes.
LEASE_MARGIN = timedelta(minutes=2)


def claim(limit: int) -> list[int]:
    """Take up to ``limit`` rows due for a fetch; returns their seqs (committed)."""
    now = utcnow()
    due = sa.and_(
        OutboxMessage.status == "fetching",
        sa.or_(OutboxMessage.not_before.is_(None), OutboxMessage.not_before <= now),
    )
    rows = db.session.execute(
        sa.select(OutboxMessage.seq, OutboxMessage.broadcast_id)
        .where(due)
        .order_by(OutboxMessage.priority, OutboxMessage.seq)
        .limit(limit * 10)
    ).all()
    lease = now + timedelta(seconds=current_app.config["KABAR"]["FETCH_TIMEOUT"]) + LEASE_MARGIN
    claimed: list[int] = []
    broadcasts: set[str] = set()
    for seq, broadcast_id in rows:
        if len(claimed) == limit:
            break
        if broadcast_id is not None and broadcast_id in broadcasts:
            continue  # its broadcast's URL is fetched once, by the first claimed
        if db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.seq == seq, due)
            .values(not_before=lease, attempts=OutboxMessage.attempts + 1, updated_at=now)
        ).rowcount:
            claimed.append(seq)
            if broadcast_id is not None:
                broadcasts.add(broadcast_id)
                _hold_broadcast(broadcast_id, until=lease)
    db.session.commit()
    return claimed


def _hold_broadcast(broadcast_id: str, *, until) -> None:
    """The other recipients of a broadcast wait for the one fetch of its shared URL."""
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.broadcast_id == broadcast_id, OutboxMessage.status == "fetching")
        .values(not_before=until)
    )


def fetch(seq: int) -> None:
    """Fetch the media of one claimed row and move it (and its broadcast siblings that
    wait for the same URL) to ``queued``, to a later retry, or to ``failed``."""
    from server import media
    from server.outbox import queue

    row = db.session.get(OutboxMessage, seq)
    if row is None or row.status != "fetching":
        return  # cancelled or deleted meanwhile
    spec = dict(row.payload["media"])
    try:
        stored = media.from_url(spec["url"])
        prepared = queue.prepared_media(row.kind, stored, spec)
    except KabarError as exc:
        db.session.rollback()
        _failed(seq, exc)
        return
    db.session.rollback()  # media.store committed; start from fresh rows
    done = 0
    for sibling in _waiting_for(seq, spec["url"]):
        payload = {**sibling.payload, "media": {**prepared, "url": spec["url"]}}
        done += db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.seq == sibling.seq, OutboxMessage.status == "fetching")
            .values(
                status="queued",
                payload=payload,
                not_before=sibling.send_at,
                attempts=0,
                waiting=None,
                updated_at=utcnow(),
            )
        ).rowcount
    db.session.commit()
    if done:
        wakeup.notify()


def _failed(seq: int, exc: KabarError) -> None:
    row = db.session.get(OutboxMessage, seq)
    if row is None or row.status != "fetching":
        return
    reason = f"{exc.code}: {exc.message}"[:512]
    if _transient(exc) and row.attempts < MAX_ATTEMPTS:
        row.not_before = utcnow() + timedelta(seconds=10 * 2**row.attempts)
        row.waiting = f"fetching the media again after: {exc.message}"[:255]
        if row.broadcast_id is not None:
            _hold_broadcast(row.broadcast_id, until=row.not_before)
        db.session.commit()
        return
    now = utcnow()
    for sibling in _waiting_for(seq, row.payload["media"]["url"]):
        if not db.session.execute(
            sa.update(OutboxMessage)
            .where(OutboxMessage.seq == sibling.seq, OutboxMessage.status == "fetching")
            .values(status="failed", reason=reason, waiting=None, updated_at=now)
        ).rowcount:
            continue
        session = db.session.get(WaSession, sibling.session_id)
        eventlog.record(
            MessageStatus(
                message_ids=(sibling.wa_id,),
                status="failed",
                chat=Party(jid=sibling.to_jid),
                timestamp=now,
                reason=reason,
            ),
            session,
        )
    db.session.commit()
    log.info("media of outbox row %s not fetched: %s", seq, reason)


def _transient(exc: KabarError) -> bool:
    status = getattr(exc, "http_status", None)
    if status is not None and 400 <= status < 500 and status not in (408, 429):
        return False  # the server said no: asking again gets the same answer
    return exc.code in TRANSIENT_CODES


def _waiting_for(seq: int, url: str) -> list[OutboxMessage]:
    """The row itself and, in a broadcast, every recipient still waiting for ``url``."""
    row = db.session.get(OutboxMessage, seq)
    if row is None or row.broadcast_id is None:
        return [row] if row is not None else []
    siblings = db.session.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.broadcast_id == row.broadcast_id, OutboxMessage.status == "fetching"
        )
    ).all()
    return [s for s in siblings if (s.payload.get("media") or {}).get("url") == url]


def fetch_due(limit: int = 100) -> int:
    """Claim and fetch what is due, one after another, in this thread (for tests and the
    CLI); returns how many rows were fetched or failed."""
    seqs = claim(limit)
    for seq in seqs:
        fetch(seq)
    return len(seqs)


class MediaFetcher(Worker):
    """Claims due rows and fetches each on a thread of its pool."""

    name = "kabar-fetch"

    def __init__(self, app: Flask, threads: int | None = None):
        super().__init__(app)
        self.threads = max(1, threads or app.config["KABAR"]["MEDIA_FETCHERS"])
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="kabar-fetch")
        self.running: set[Future] = set()

    def step(self) -> float:
        self.running = {future for future in self.running if not future.done()}
        free = self.threads - len(self.running)
        if free <= 0:
            return IDLE_SECONDS  # a finishing fetch wakes us sooner
        seqs = claim(free)
        for seq in seqs:
            future = self.pool.submit(self._fetch, seq)
            future.add_done_callback(lambda _future: self.wake.set())
            self.running.add(future)
        return 0.0 if len(seqs) == free else IDLE_SECONDS

    def _fetch(self, seq: int) -> Any:
        with self.app.app_context():
            try:
                fetch(seq)
            except Exception as exc:  # a bug, not the URL's fault: fail it, say why
                db.session.rollback()
                log.exception("fetching the media of outbox row %s failed", seq)
                try:
                    _failed(
                        seq, KabarError(f"{type(exc).__name__}: {exc}", code="media_fetch_error")
                    )
                except Exception:
                    db.session.rollback()
                    log.exception("could not mark outbox row %s failed", seq)
            finally:
                db.session.remove()

    def stop(self) -> None:
        super().stop()
        # A fetch in flight keeps its lease and is claimed again by the next runtime.
        self.pool.shutdown(wait=False, cancel_futures=True)
