"""The runtime's webhook worker: picks due deliveries and hands them to a small pool.

Order: a delivery goes out only when no older one with the same endpoint and ordering
key (a chat, or the session) is still open (pending, delivering or failed); dead ones
no longer hold anything back. So one chat's events reach a receiver in order, one at a
time, while other chats and other endpoints go in parallel.

A paused endpoint (``paused_until`` set, after failures in a row) sends nothing until
that time; then ``probes`` hands out one delivery of it, the first in line, as a probe
(its own retry time does not matter), and moves ``paused_until`` on so that only one
probe is out at a time. The probe's success resumes the endpoint (``delivery.py``).

Durable: everything is in the rows. A delivery found ``delivering`` at start-up was cut
off by a stop or a crash and goes again (receivers dedupe on ``webhook-id``).
"""

from __future__ import annotations

import functools
import logging
import queue
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import aliased

from server.models import WebhookDelivery, WebhookEndpoint, db, utcnow
from server.models.webhooks import OPEN_STATUSES
from server.runtime.worker import Worker
from server.webhooks import delivery

log = logging.getLogger(__name__)

POOL_SIZE = 16  # deliveries out at once (threads that POST), all endpoints together
IDLE_SECONDS = 1.0
EXPIRE_EVERY = 10.0  # seconds between two sweeps for deliveries past the maximum age
PROBE_EVERY = 1.0  # seconds between two looks for paused endpoints due a probe
RETRYABLE = ("pending", "failed")


def requeue_interrupted() -> int:
    count = db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.status == "delivering")
        .values(status="pending")
    ).rowcount
    db.session.commit()
    return count


def expire(max_age_hours: int) -> int:
    """Deliveries still open past the maximum age are given up (dead)."""
    cutoff = utcnow() - timedelta(hours=max_age_hours)
    count = db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.status.in_(RETRYABLE), WebhookDelivery.created_at < cutoff)
        .values(status="dead")
    ).rowcount
    db.session.commit()
    return count


def _first_in_line() -> sa.ColumnElement[bool]:
    """No older open delivery with the same endpoint and key: a look at the partial index
    of open deliveries, not at every delivery of the chat's history (``_written``)."""
    older = aliased(WebhookDelivery)
    return ~sa.exists().where(
        older.endpoint_id == WebhookDelivery.endpoint_id,
        older.ordering_key == WebhookDelivery.ordering_key,
        older.id < WebhookDelivery.id,
        older.status.in_(_written(OPEN_STATUSES)),
    )


def due(limit: int) -> list[int]:
    """Ids of deliveries that may go now, oldest first: due, of an enabled endpoint that
    is not paused, and first in line for their (endpoint, ordering key)."""
    return [delivery_id for delivery_id, _endpoint_id in due_rows(limit)]


def due_rows(limit: int) -> list[tuple[int, int]]:
    """``due`` with each delivery's endpoint id: (delivery id, endpoint id)."""
    rows = db.session.execute(_due_statement(), {"now": utcnow(), "limit": limit})
    return [(row[0], row[1]) for row in rows]


@functools.cache
def _due_statement() -> sa.Select:
    """Built once: every wake-up of the worker asks it, and building the statement (the
    order check's EXISTS, the join) cost more than running it on an empty queue."""
    return (
        sa.select(WebhookDelivery.id, WebhookDelivery.endpoint_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(
            WebhookDelivery.status.in_(_written(RETRYABLE)),
            WebhookDelivery.next_at <= sa.bindparam("now"),
            WebhookEndpoint.enabled.is_(True),
            WebhookEndpoint.paused_until.is_(None),
            _first_in_line(),
        )
        .order_by(WebhookDelivery.id)
        .limit(sa.bindparam("limit"))
    )


def _written(statuses: tuple[str, ...]) -> list[sa.ColumnElement[str]]:
    """Statuses written into the SQL, not bound: a planner can then tell that the query
    only wants open deliveries and use their partial index (``ix_webhook_deliveries_open``),
    a handful of rows whatever the history (a bound list hides that from a prepared plan)."""
    return [sa.literal(status, literal_execute=True) for status in statuses]


def probes(limit: int) -> list[tuple[int, int]]:
    """(endpoint id, delivery id) of one probe for each paused endpoint whose time to
    probe has come: its oldest delivery that is first in line."""
    now = utcnow()
    endpoint_ids = db.session.scalars(
        sa.select(WebhookEndpoint.id)
        .where(WebhookEndpoint.enabled.is_(True), WebhookEndpoint.paused_until <= now)
        .order_by(WebhookEndpoint.paused_until)
        .limit(limit)
    ).all()
    found = []
    for endpoint_id in endpoint_ids:
        delivery_id = db.session.scalar(
            sa.select(WebhookDelivery.id)
            .where(
                WebhookDelivery.endpoint_id == endpoint_id,
                WebhookDelivery.status.in_(RETRYABLE),
                _first_in_line(),
            )
            .order_by(WebhookDelivery.id)
            .limit(1)
        )
        if delivery_id is not None:
            found.append((endpoint_id, delivery_id))
    return found


def claim_probe(endpoint_id: int, delivery_id: int) -> bool:
    """Take the probe of a paused endpoint: the next probe is due a while later (the
    probe's outcome changes that), so one probe is out at a time."""
    now = utcnow()
    won = db.session.execute(
        sa.update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.paused_until <= now)
        .values(paused_until=now + timedelta(seconds=delivery.probe_wait()))
    ).rowcount
    db.session.commit()
    return bool(won) and claim(delivery_id)


def claim(delivery_id: int) -> bool:
    won = db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status.in_(RETRYABLE))
        .values(status="delivering")
    ).rowcount
    db.session.commit()
    return bool(won)


def claim_many(delivery_ids: list[int], *, commit: bool = True) -> list[int]:
    """Claim several deliveries with one UPDATE (and commit, unless the caller commits
    with more); returns those won (a replay or an expiry may have changed one meanwhile)."""
    if not delivery_ids:
        return []
    won = set(
        db.session.scalars(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.status.in_(RETRYABLE))
            .values(status="delivering")
            .returning(WebhookDelivery.id),
            execution_options={"synchronize_session": False},
        )
    )
    if commit:
        db.session.commit()
    return [delivery_id for delivery_id in delivery_ids if delivery_id in won]


class WebhookWorker(Worker):
    """This thread reads and writes the rows; the pool's threads only sign and POST.

    Each step, in one transaction and one commit: the outcomes of the attempts that
    ended since the last step (a group commit: their ``webhook_attempts`` rows and
    deliveries), then the next due deliveries claimed and read. So a delivery costs a
    share of one commit, not three, and the next delivery of a chat is claimed in the
    commit that records the one before it. A crash between a POST and that commit
    leaves the delivery ``delivering``: it goes again at the next start (at least once,
    as documented; receivers dedupe on ``webhook-id``).

    At most ``pool_size`` deliveries are out at once, ``per_endpoint`` of one endpoint
    (the keep-alive connections its receiver sees: ``delivery.POOL``).
    """

    name = "kabar-webhooks"

    def __init__(
        self, app: Flask, pool_size: int = POOL_SIZE, per_endpoint: int = delivery.PER_ENDPOINT
    ):
        super().__init__(app)
        self.pool_size = pool_size
        self.per_endpoint = per_endpoint
        self.pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="kabar-webhook")
        self.finished: queue.SimpleQueue[tuple[delivery.Job, delivery.Outcome]] = (
            queue.SimpleQueue()
        )
        self.out: Counter[int] = Counter()  # endpoint id -> deliveries sent, not recorded
        self.last_expiry = 0.0
        self.last_probe = 0.0

    def prepare(self) -> None:
        requeued = requeue_interrupted()
        if requeued:
            log.info("%s interrupted webhook deliveries go again", requeued)

    def stop(self) -> None:
        super().stop()
        # The few claimed deliveries (at most pool_size) are sent and recorded, so that
        # they do not go twice after the next start.
        self.pool.shutdown(wait=True)
        with self.app.app_context():
            self._record_alone(self._ended())

    def step(self) -> float:
        if time.monotonic() - self.last_expiry >= EXPIRE_EVERY:
            expire(int(self.app.config["KABAR"]["WEBHOOK_MAX_AGE_HOURS"]))
            self.last_expiry = time.monotonic()
        ended = self._ended()
        try:
            followups = delivery.record(ended) if ended else delivery.Followups()
            jobs = delivery.load(claim_many(self._pick(), commit=False))
            db.session.commit()
        except Exception:
            db.session.rollback()
            self._record_alone(ended)  # else they would stay "delivering" until a restart
            raise
        self._start(jobs)
        self._start(self._probes())
        self._after(followups)
        return IDLE_SECONDS  # an ended delivery, or a stored event, wakes us

    def _ended(self) -> list[tuple[delivery.Job, delivery.Outcome]]:
        ended = []
        while True:
            try:
                ended.append(self.finished.get_nowait())
            except queue.Empty:
                break
        for job, _outcome in ended:
            self.out[job.endpoint_id] -= 1
        self.out += Counter()  # drop the zeros
        return ended

    def _pick(self) -> list[int]:
        """Due deliveries that fit: the pool's free room, and each endpoint's."""
        free = self.pool_size - sum(self.out.values())
        if free <= 0:
            return []
        picked: list[int] = []
        room = Counter({e: self.per_endpoint - n for e, n in self.out.items()})
        for delivery_id, endpoint_id in due_rows(free * 2):
            if len(picked) == free:
                break
            if room.setdefault(endpoint_id, self.per_endpoint) > 0:
                room[endpoint_id] -= 1
                picked.append(delivery_id)
        return picked

    def _probes(self) -> list[delivery.Job]:
        """One probe for each paused endpoint whose time has come (rare: own commits;
        looked for once a PROBE_EVERY, not at every step)."""
        free = self.pool_size - sum(self.out.values())
        if free <= 0 or time.monotonic() - self.last_probe < PROBE_EVERY:
            return []
        self.last_probe = time.monotonic()
        claimed = []
        for endpoint_id, delivery_id in probes(free):
            db.session.commit()  # end the read
            if claim_probe(endpoint_id, delivery_id):
                claimed.append(delivery_id)
        jobs = delivery.load(claimed)
        db.session.commit()
        return jobs

    def _start(self, jobs: list[delivery.Job]) -> None:
        timeout = self.app.config["KABAR"]["WEBHOOK_TIMEOUT"]
        allow = delivery.allowed()
        for job in jobs:
            self.out[job.endpoint_id] += 1
            self.pool.submit(self._send, job, timeout, allow)

    def _send(self, job: delivery.Job, timeout: float, allow: list[str]) -> None:
        try:
            outcome = delivery.send(job, timeout=timeout, allow=allow)
        except Exception as exc:  # a bug: record it as a failed attempt, retried later
            log.exception("webhook delivery %s failed unexpectedly", job.delivery_id)
            outcome = delivery.Outcome(None, 0, error=f"internal error while delivering: {exc}")
        self.finished.put((job, outcome))
        self.wake.set()  # record it; the next delivery of that chat may go now

    def _after(self, followups: delivery.Followups) -> None:
        if followups.resumed or followups.actions:
            self.pool.submit(self._in_app, delivery.after_commit, followups)

    def _in_app(self, function: Callable[..., None], *args: object) -> None:
        with self.app.app_context():
            try:
                function(*args)
            except Exception:
                db.session.rollback()
                log.exception("webhook follow-up failed")

    def _record_alone(self, ended: list[tuple[delivery.Job, delivery.Outcome]]) -> None:
        """Each outcome in its own commit; one that cannot be recorded is retried later."""
        for job, outcome in ended:
            try:
                followups = delivery.record([(job, outcome)])
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("could not record webhook delivery %s", job.delivery_id)
                _retry_later(job.delivery_id)
                continue
            self._in_app(delivery.after_commit, followups)


def _retry_later(delivery_id: int) -> None:
    """A bug while delivering must not leave the row ``delivering`` (and its chat stuck)
    until the next restart."""
    try:
        db.session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "delivering")
            .values(
                status="failed",
                next_at=utcnow() + timedelta(seconds=60),
                last_error="internal error while delivering; retrying",
            )
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        log.exception("could not reschedule webhook delivery %s", delivery_id)
