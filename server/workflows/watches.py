"""Reply watches: "watch this chat for its next reply and POST it to this URL".

What n8n's send-and-wait-for-reply (``integrations/n8n-nodes-kabar``) calls, and anyone
else may: no new mechanism, two old ones joined.

- The wait is a workflow run of the built-in workflow ``reply-watch`` (one
  ``wait_for_reply`` node, then ``end`` with the outcome): so the prompt is an outbox row
  in the run's transaction, the chat's next message resumes it before any trigger sees
  it, its timeout is a row the timer worker finds after a restart, and pattern,
  re-prompt and max attempts mean exactly what they mean in a workflow.
- The POST is a webhook delivery to a one-shot endpoint bound to that run
  (``WebhookEndpoint.run_id``): its end (``workflow.completed``, or ``workflow.failed``
  if the prompt could not be sent) is signed (Standard Webhooks), retried with backoff,
  logged per attempt and replayable, and the URL passes the SSRF guard at every attempt
  (``KABAR_WEBHOOK_ALLOW`` lets it reach an n8n on localhost or a private network).

The callback's ``data.result`` is ``{"outcome": "reply" | "timeout" | "invalid", ...}``.
An idempotency key makes the run's id, so creating the same watch twice gives one.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import sqlalchemy as sa
from flask import current_app

from server.auth import Principal
from server.errors import NotFound, ValidationFailed
from server.models import WaSession, WebhookDelivery, WebhookEndpoint, Workflow, WorkflowRun, db
from server.runtime import wakeup
from server.webhooks import delivery, signing
from server.whatsapp.jids import InvalidPhone, to_jid
from server.workflows import runner, store

NAME = "reply-watch"
EVENTS = ["workflow.completed", "workflow.failed"]
_WAIT_PARAMS = ("timeout", "prompt", "pattern", "reprompt", "max_attempts", "chat", "session")


def _end(outcome: str, **fields: str) -> dict[str, Any]:
    return {"type": "end", "params": {"result": {"outcome": outcome, **fields}}}


DOC: dict[str, Any] = {
    "name": NAME,
    "description": "Built into Kabar: what POST /api/v1/reply-watches runs. Sends the "
    "prompt, waits for the chat's reply (pattern, reprompt, max_attempts, "
    "timeout as in wait_for_reply) and ends with the outcome, which Kabar "
    "POSTs to the watch's callback URL.",
    "start": "ask",
    "nodes": {
        "ask": {
            "type": "wait_for_reply",
            "params": {name: f"{{{{ vars.{name} }}}}" for name in _WAIT_PARAMS},
            "next": {"reply": "replied", "timeout": "timed_out", "invalid": "invalid"},
        },
        "replied": _end(
            "reply",
            text="{{ ask.text }}",
            attempts="{{ ask.attempts }}",
            groups="{{ ask.groups }}",
            named="{{ ask.named }}",
            message="{{ ask.message }}",
        ),
        "timed_out": _end("timeout", attempts="{{ ask.attempts }}"),
        "invalid": _end("invalid", text="{{ ask.text }}", attempts="{{ ask.attempts }}"),
    },
}


def workflow() -> Workflow:
    """The built-in workflow, stored (or brought up to date) on first use. Global and
    disabled: it has no trigger, only watches start it."""
    row, _changed, _token = store.save(DOC, owner_id=None, source=store.BUILTIN, by="kabar")
    return row


def run_id_for(owner_id: int, key: str) -> str:
    """The run id of an idempotent watch: the same caller and key, the same run."""
    return hashlib.sha256(f"reply-watch/{owner_id}/{key}".encode()).hexdigest()[:32]


def create(
    principal: Principal,
    *,
    session_id: str,
    chat: str,
    callback_url: str,
    timeout: int,
    prompt: str | None = None,
    pattern: str | None = None,
    reprompt: str | None = None,
    max_attempts: int = 3,
    secret: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[WorkflowRun, WebhookEndpoint, bool]:
    """Start a watch; (run, its endpoint, created). With an ``idempotency_key`` already
    used by this caller, the existing watch and created=False."""
    session = db.session.get(WaSession, session_id)
    if (
        session is None
        or session.deleted_at is not None
        or not (principal.is_admin or session.owner_id == principal.user.id)
    ):
        raise NotFound(f"No session with id {session_id!r}.", code="session_not_found")
    settings = current_app.config["KABAR"]
    try:
        jid = to_jid(chat, settings["PHONE_REGION"])
    except InvalidPhone as exc:
        raise ValidationFailed(errors={"chat": [str(exc)]}) from None
    delivery.check_url(callback_url)
    if idempotency_key:
        run_id = run_id_for(principal.user.id, idempotency_key)
        existing = _existing(run_id)
        if existing is not None:
            return (*existing, False)
    else:
        run_id = uuid.uuid4().hex
    # The endpoint first: a run that ends at once (its prompt could not be sent) is
    # announced in runner.start, and its end must find the endpoint.
    endpoint = WebhookEndpoint(
        owner_id=principal.user.id,
        session_id=session.id,
        url=callback_url,
        name=f"reply watch on {jid}"[:128],
        events=EVENTS,
        headers={},
        run_id=run_id,
        secret=secret or signing.new_secret(),
    )
    trigger = {"type": "watch", "session": session.id, "chat": jid}
    params = {
        "timeout": timeout,
        "prompt": prompt,
        "pattern": pattern,
        "reprompt": reprompt,
        "max_attempts": max_attempts,
        "chat": jid,
        "session": session.id,
    }
    try:
        db.session.add(endpoint)
        db.session.flush()
        row, _ctx = runner.start(
            workflow(), trigger, vars=params, run_id=run_id, owner_id=principal.user.id
        )
        db.session.commit()
    except sa.exc.IntegrityError:  # the same key, at the same moment: that one won
        db.session.rollback()
        existing = _existing(run_id)
        if existing is None:
            raise
        return (*existing, False)
    wakeup.notify()  # the prompt is an outbox row; a finished run has a delivery
    return row, endpoint, True


def _existing(run_id: str) -> tuple[WorkflowRun, WebhookEndpoint] | None:
    row = db.session.scalar(sa.select(WorkflowRun).where(WorkflowRun.id == run_id))
    endpoint = (
        db.session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.run_id == run_id))
        if row
        else None
    )
    return (row, endpoint) if endpoint is not None else None


def get(run_id: str) -> tuple[WorkflowRun, WebhookEndpoint]:
    """A watch the caller may see; any other answers 404."""
    from server.workflows import operations  # the runs the caller may see

    row = db.session.scalar(operations.visible_runs().where(WorkflowRun.id == run_id))
    endpoint = (
        db.session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.run_id == run_id))
        if row
        else None
    )
    if endpoint is None:
        raise NotFound(f"No reply watch {run_id!r}.", code="reply_watch_not_found")
    return row, endpoint


def cancel(row: WorkflowRun, endpoint: WebhookEndpoint, *, by: str) -> WorkflowRun:
    """Stop watching: the run is cancelled and nothing is POSTed."""
    runner.cancel(row, reason=f"watch cancelled by {by}")
    endpoint.enabled, endpoint.paused_reason = False, "reply watch cancelled"
    db.session.commit()
    return row


def describe(row: WorkflowRun, endpoint: WebhookEndpoint) -> dict[str, Any]:
    """What the API shows of a watch: where it stands and where its callback stands."""
    state = row.state or {}
    result = state.get("result") if row.status == "completed" else None
    last = db.session.scalar(
        sa.select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.id.desc())
        .limit(1)
    )
    session = db.session.get(WaSession, row.session_id) if row.session_id else None
    return {
        "id": row.id,
        "session_id": row.session_id,
        "session_label": session.label if session else None,
        "chat": row.chat,
        "status": row.status,
        "outcome": (result or {}).get("outcome"),
        "result": result,
        "error": row.error,
        "wait_until": row.wait_until,
        "created_at": row.started_at,
        "finished_at": row.finished_at,
        "callback_url": endpoint.url,
        "webhook_id": endpoint.id,
        "callback": None
        if last is None
        else {
            "delivery_id": last.id,
            "status": last.status,
            "attempts": last.attempts,
            "last_status_code": last.last_status_code,
            "last_error": last.last_error,
            "delivered_at": last.delivered_at,
        },
    }
