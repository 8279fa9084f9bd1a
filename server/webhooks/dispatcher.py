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

import logging
import threading
import time
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

POOL_SIZE = 4
IDLE_SECONDS = 1.0
EXPIRE_EVERY = 10.0  # seconds between two sweeps for deliveries past the maximum age
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
    older = aliased(WebhookDelivery)
    return ~sa.exists().where(
        older.endpoint_id == WebhookDelivery.endpoint_id,
        older.ordering_key == WebhookDelivery.ordering_key,
        older.id < WebhookDelivery.id,
        older.status.in_(OPEN_STATUSES),
    )


def due(limit: int) -> list[int]:
    """Ids of deliveries that may go now, oldest first: due, of an enabled endpoint that
    is not paused, and first in line for their (endpoint, ordering key)."""
    return list(
        db.session.scalars(
            sa.select(WebhookDelivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status.in_(RETRYABLE),
                WebhookDelivery.next_at <= utcnow(),
                WebhookEndpoint.enabled.is_(True),
                WebhookEndpoint.paused_until.is_(None),
                _first_in_line(),
            )
            .order_by(WebhookDelivery.id)
            .limit(limit)
        )
    )


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


def claim_many(delivery_ids: list[int]) -> list[int]:
    """Claim several deliveries with one UPDATE and one commit; returns those won (a
    replay or an expiry may have changed one meanwhile)."""
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
    db.session.commit()
    return [delivery_id for delivery_id in delivery_ids if delivery_id in won]


class WebhookWorker(Worker):
    name = "kabar-webhooks"

    def __init__(self, app: Flask, pool_size: int = POOL_SIZE):
        super().__init__(app)
        self.pool_size = pool_size
        self.pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="kabar-webhook")
        self.lock = threading.Lock()
        self.in_flight = 0
        self.last_expiry = 0.0

    def prepare(self) -> None:
        requeued = requeue_interrupted()
        if requeued:
            log.info("%s interrupted webhook deliveries go again", requeued)

    def stop(self) -> None:
        super().stop()
        # Deliveries not yet started stay "delivering" and go again at the next start.
        self.pool.shutdown(wait=True, cancel_futures=True)

    def step(self) -> float:
        if time.monotonic() - self.last_expiry >= EXPIRE_EVERY:
            expire(int(self.app.config["KABAR"]["WEBHOOK_MAX_AGE_HOURS"]))
            self.last_expiry = time.monotonic()
        with self.lock:
            free = self.pool_size - self.in_flight
        if free <= 0:
            return IDLE_SECONDS  # a finishing delivery wakes us
        started = 0
        for endpoint_id, delivery_id in probes(free):
            db.session.commit()  # end the read
            if claim_probe(endpoint_id, delivery_id):
                with self.lock:
                    self.in_flight += 1
                self.pool.submit(self._deliver, delivery_id)
                started += 1
        ids = due(free - started) if free > started else []
        db.session.commit()  # end the read: the pool threads write these rows
        for delivery_id in claim_many(ids):
            with self.lock:
                self.in_flight += 1
            self.pool.submit(self._deliver, delivery_id)
            started += 1
        return 0.0 if started else IDLE_SECONDS

    def _deliver(self, delivery_id: int) -> None:
        try:
            with self.app.app_context():
                try:
                    delivery.attempt(delivery_id)
                except Exception:
                    db.session.rollback()
                    log.exception("webhook delivery %s failed unexpectedly", delivery_id)
                    _retry_later(delivery_id)
        finally:
            with self.lock:
                self.in_flight -= 1
            self.wake.set()  # the next delivery of that chat may go now


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
