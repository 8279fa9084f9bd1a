"""One attempt of one delivery: sign, POST, record what came back, then decide.

- 2xx: delivered; the endpoint's failure count goes back to 0, and the receiver's
  ``{"actions": [...]}`` runs (``actions.py``).
- 410 Gone: the receiver wants no more; the endpoint is disabled (``paused_reason``)
  and the delivery waits, as a failed one, until someone enables the endpoint again.
- Anything else (an error status, a timeout, a refused address): retried with
  exponential backoff and jitter, until the next try would fall past the maximum age
  (``KABAR_WEBHOOK_MAX_AGE_HOURS``): then it is dead. ``KABAR_WEBHOOK_PAUSE_AFTER``
  failures in a row pause the endpoint, a circuit breaker: its events are still queued
  but held back until ``paused_until``, when one delivery goes as a probe
  (``dispatcher.probes``). A failed probe pauses it again; any 2xx closes the breaker
  and sends what waited at once.

Redirects are never followed (a receiver that moved must be updated by its owner), and
the address is checked against the SSRF guard at every attempt, since DNS can change.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from server import eventlog, inputs, netguard
from server.errors import KabarError
from server.fonnte import webhooks as fonnte_webhooks
from server.models import (
    StoredEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    db,
    utcnow,
)
from server.webhooks import signing

log = logging.getLogger(__name__)

BACKOFF_BASE = 5.0  # seconds before the second attempt; doubles each time
BACKOFF_CAP = 3600.0
MAX_BODY = 65536  # read this much of a receiver's answer (enough for actions)
SNIPPET = 1024


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    latency_ms: int
    body: bytes = b""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def snippet(self) -> str:
        return self.body[:SNIPPET].decode("utf-8", "replace")[:SNIPPET]

    def actions(self) -> Any:
        """The ``actions`` of a JSON object answer; None when there are none."""
        try:
            answer = inputs.load_json(self.body)
        except (ValueError, KabarError):  # not JSON, too deep, or text no field can hold
            return None
        return answer.get("actions") if isinstance(answer, dict) else None


def backoff(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones: 5, 10, 20 … 1 h,
    each ±20 % so that many failed deliveries do not all come back at once."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return delay * random.uniform(0.8, 1.2)


# One keep-alive client per receiver origin, shared by the pool's threads (the SSRF
# guard still checks and pins every request: ``netguard.Pool``). PER_ENDPOINT is also
# the most deliveries of one endpoint the dispatcher has out at once.
PER_ENDPOINT = 8
POOL = netguard.Pool(max_connections=PER_ENDPOINT)


def post(
    url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow: list[str]
) -> Outcome:
    """POST to ``url`` through the SSRF guard. Raises ``netguard.UnsafeURL`` when the
    address is refused; every other problem is an ``Outcome`` with ``error``."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        answer = netguard.request(
            "POST",
            url,
            timeout=timeout,
            allow=allow,
            max_bytes=MAX_BODY,
            headers=headers,
            content=body,
            pool=POOL,
        )
    except netguard.UnsafeURL:
        raise
    except netguard.FetchFailed as exc:
        return Outcome(None, took(), error=exc.message)
    error = None if 200 <= answer.status < 300 else _status_error(answer)
    return Outcome(answer.status, took(), answer.body, error)


def _status_error(answer: netguard.Answer) -> str:
    if 300 <= answer.status < 400 and "location" in answer.headers:
        return f"HTTP {answer.status} redirect to {answer.headers['location']} (not followed)"
    return f"HTTP {answer.status}"


def send_signed(
    endpoint: WebhookEndpoint, envelope: dict[str, Any], content: dict[str, Any] | None = None
) -> Outcome:
    """Sign ``envelope`` (or ``content`` in its stead, under the envelope's id) with the
    endpoint's secret and POST it (raises UnsafeURL)."""
    settings = current_app.config["KABAR"]
    body = signing.payload(envelope if content is None else content)
    headers = signing.headers(endpoint.secret, envelope["id"], body, utcnow(), endpoint.headers)
    return post(
        endpoint.url, body.encode(), headers, timeout=settings["WEBHOOK_TIMEOUT"], allow=allowed()
    )


def allowed() -> list[str]:
    """What the SSRF guard lets a webhook reach although private: ``KABAR_FETCH_ALLOW``
    and ``KABAR_WEBHOOK_ALLOW`` (an n8n on localhost, say, that media URLs may not reach)."""
    settings = current_app.config["KABAR"]
    return [*settings["FETCH_ALLOW"], *settings["WEBHOOK_ALLOW"]]


def check_url(url: str) -> None:
    """Refuse (422 unsafe_url) a URL no delivery could reach; the message names the
    setting meant for webhooks."""
    try:
        netguard.check_url(url, allow=allowed())
    except netguard.UnsafeURL as exc:
        raise netguard.UnsafeURL(
            exc.message.replace("KABAR_FETCH_ALLOW", "KABAR_WEBHOOK_ALLOW")
        ) from None


@dataclass(frozen=True)
class Job:
    """A claimed delivery with all its POST needs, read in the claim's transaction: the
    pool's threads send it without the database, and ``record`` writes the outcome."""

    delivery_id: int
    endpoint_id: int
    url: str
    secret: str
    headers: dict[str, str]
    fonnte: bool
    event_id: str
    content: dict[str, Any]  # what is signed and sent: the envelope, or fonnte's body
    attempts: int  # before this one
    created_at: datetime
    endpoint_failing: bool  # the endpoint had failures in a row when claimed
    endpoint_paused: bool  # ... or was paused (this is its probe)


def load(delivery_ids: list[int]) -> list[Job]:
    """The jobs of claimed (``delivering``) deliveries, in the order of ``delivery_ids``."""
    if not delivery_ids:
        return []
    rows = db.session.execute(
        sa.select(
            WebhookDelivery.id,
            WebhookDelivery.attempts,
            WebhookDelivery.created_at,
            WebhookEndpoint,
            StoredEvent,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .join(StoredEvent, StoredEvent.seq == WebhookDelivery.event_seq)
        .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.status == "delivering")
    ).all()
    jobs = {}
    for delivery_id, attempts, created_at, endpoint, event in rows:
        fonnte = endpoint.format == "fonnte"
        jobs[delivery_id] = Job(
            delivery_id=delivery_id,
            endpoint_id=endpoint.id,
            url=endpoint.url,
            secret=endpoint.secret,
            headers=dict(endpoint.headers or {}),
            fonnte=fonnte,
            event_id=event.id,
            content=fonnte_webhooks.body(event) if fonnte else eventlog.envelope(event),
            attempts=attempts,
            created_at=created_at,
            endpoint_failing=bool(endpoint.consecutive_failures),
            endpoint_paused=endpoint.paused_until is not None,
        )
    return [jobs[delivery_id] for delivery_id in delivery_ids if delivery_id in jobs]


def send(job: Job, *, timeout: float, allow: list[str]) -> Outcome:
    """Sign and POST ``job`` (no database: the pool's threads run this)."""
    body = signing.payload(job.content)
    headers = signing.headers(job.secret, job.event_id, body, utcnow(), job.headers)
    try:
        return post(job.url, body.encode(), headers, timeout=timeout, allow=allow)
    except netguard.UnsafeURL as exc:
        return Outcome(None, 0, error=f"unsafe_url: {exc.message}")


@dataclass
class Followups:
    """What ``record``'s caller does once the batch is committed."""

    resumed: bool = False  # an endpoint's breaker closed: wake the runtime
    actions: list[tuple[int, Any]] = field(default_factory=list)  # (delivery id, actions)


def record(results: list[tuple[Job, Outcome]]) -> Followups:
    """Record the outcomes of many attempts in the current transaction (the caller
    commits once for all): each attempt's row, its delivery's state, and what a success
    or a failure does to the endpoint, in the order the attempts ended."""
    followups = Followups()
    now = utcnow()
    failing: dict[int, bool] = {}  # endpoint id -> has failures in a row now
    delivered = []
    attempts = []
    for job, outcome in results:
        error = (outcome.error or "")[:512] or None
        attempts.append(
            {
                "delivery_id": job.delivery_id,
                "attempt": job.attempts + 1,
                "status_code": outcome.status_code,
                "latency_ms": outcome.latency_ms,
                "error": error,
                "response": outcome.snippet or None,
                "at": now,
            }
        )
        if outcome.ok:
            delivered.append(
                {
                    "b_id": job.delivery_id,
                    "b_attempts": job.attempts + 1,
                    "b_code": outcome.status_code,
                    "b_latency": outcome.latency_ms,
                    "b_at": now,
                }
            )
            # Only when there is something to undo: an UPDATE of the endpoint's row for
            # every delivery would queue all of them on that one row.
            if failing.get(job.endpoint_id, job.endpoint_failing):
                _endpoint_values(job.endpoint_id, consecutive_failures=0)
            failing[job.endpoint_id] = False
            if job.endpoint_paused and _resume(job.endpoint_id):
                followups.resumed = True
            if not job.fonnte:  # a fonnte receiver's answer is not Kabar's actions
                actions = outcome.actions()
                if actions is not None:
                    followups.actions.append((job.delivery_id, actions))
        else:
            _failed(job, outcome, error)
            failing[job.endpoint_id] = True
    db.session.execute(sa.insert(WebhookAttempt.__table__), attempts)
    if delivered:
        table = WebhookDelivery.__table__
        db.session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values(
                status="delivered",
                attempts=sa.bindparam("b_attempts"),
                last_status_code=sa.bindparam("b_code"),
                latency_ms=sa.bindparam("b_latency"),
                last_error=None,
                delivered_at=sa.bindparam("b_at"),
            ),
            delivered,
        )
    return followups


def after_commit(followups: Followups) -> None:
    """What waits for the batch's commit: the runtime woken for what a resumed endpoint
    held back, and the receivers' actions (on this thread; see ``run_actions``)."""
    if followups.resumed:
        from server.runtime import wakeup

        wakeup.notify()
    for delivery_id, actions in followups.actions:
        run_actions(delivery_id, actions)


def attempt(delivery_id: int) -> None:
    """Run one attempt of a claimed (``delivering``) delivery and record it."""
    jobs = load([delivery_id])
    if not jobs:
        db.session.commit()
        return
    settings = current_app.config["KABAR"]
    outcome = send(jobs[0], timeout=settings["WEBHOOK_TIMEOUT"], allow=allowed())
    followups = record([(jobs[0], outcome)])
    db.session.commit()
    after_commit(followups)


def _failed(job: Job, outcome: Outcome, error: str | None) -> None:
    settings = current_app.config["KABAR"]
    now = utcnow()
    _endpoint_values(job.endpoint_id, consecutive_failures=WebhookEndpoint.consecutive_failures + 1)
    if outcome.status_code == 410:
        _pause(job.endpoint_id, "The receiver answered 410 Gone: it wants no more deliveries.")
    else:
        limit = int(settings["WEBHOOK_PAUSE_AFTER"])
        failures = (
            db.session.scalar(
                sa.select(WebhookEndpoint.consecutive_failures).where(
                    WebhookEndpoint.id == job.endpoint_id
                )
            )
            or 0
        )
        if limit and failures >= limit:
            wait = probe_wait()
            paused = db.session.execute(
                sa.update(WebhookEndpoint)
                .where(WebhookEndpoint.id == job.endpoint_id, WebhookEndpoint.enabled.is_(True))
                .values(
                    paused_until=now + timedelta(seconds=wait),
                    paused_reason=(
                        f"Paused after {failures} failed deliveries in a row (last: "
                        f"{outcome.error or 'no answer'}); events are queued, and a probe "
                        f"delivery goes in {wait:.0f} s"
                    )[:255],
                )
            ).rowcount
            if paused:
                log.warning(
                    "webhook endpoint %s paused after %s failures; probing in %.0f s",
                    job.endpoint_id,
                    failures,
                    wait,
                )
    next_at = now + timedelta(seconds=backoff(job.attempts + 1))
    max_age = timedelta(hours=int(settings["WEBHOOK_MAX_AGE_HOURS"]))
    values: dict[str, Any] = {"status": "failed", "next_at": next_at}
    if next_at > job.created_at + max_age:
        values = {"status": "dead"}
    db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == job.delivery_id)
        .values(
            attempts=job.attempts + 1,
            last_status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            last_error=error,
            **values,
        ),
        execution_options={"synchronize_session": False},
    )


def _endpoint_values(endpoint_id: int, **values: Any) -> None:
    """Change the endpoint with one UPDATE: several deliveries of one endpoint finish on
    different threads, and the web may edit it meanwhile."""
    db.session.execute(
        sa.update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id).values(**values)
    )


def probe_wait() -> float:
    """Seconds a paused endpoint waits before its next probe."""
    return float(current_app.config["KABAR"]["WEBHOOK_PROBE_SECONDS"])


def _resume(endpoint_id: int) -> bool:
    """Close the breaker of a paused endpoint (a delivery got through): what waited for
    it, failed deliveries included, goes now. True if it was paused."""
    resumed = db.session.execute(
        sa.update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.paused_until.is_not(None))
        .values(paused_until=None, paused_reason=None)
    ).rowcount
    if resumed:
        db.session.execute(
            sa.update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "failed")
            .values(next_at=utcnow())
        )
        log.info("webhook endpoint %s answered again; resumed", endpoint_id)
    return bool(resumed)


def _pause(endpoint_id: int, reason: str) -> None:
    """Disable the endpoint (a receiver's 410): only its owner enables it again."""
    _endpoint_values(endpoint_id, enabled=False, paused_until=None, paused_reason=reason[:255])
    log.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)


def run_actions(delivery_id: int, actions: Any) -> None:
    """After the delivery is recorded as delivered (a crash here must not send the
    event again); each send carries an idempotency key made from the delivery, so a
    retried run never sends twice."""
    from server.webhooks import actions as runner

    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        return
    delivery.actions_result = runner.run(
        actions, delivery.event, key_prefix=f"webhook-{delivery.id}"
    )
    db.session.commit()
