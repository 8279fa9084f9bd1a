"""The request/response channel from the web to the runtime, through the database.

The web writes a ``RuntimeCommand`` row, wakes the runtime, and (for a look-up) waits for
the answer with a timeout. The runtime claims pending rows with a conditional update, so
each runs once, and writes the result back. Nothing here holds state in memory.
"""

from __future__ import annotations

import math
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_app_context

from server.errors import KabarError, ServiceUnavailable
from server.models import RuntimeCommand, WaSession, db, utcnow
from server.runtime import heartbeat, wakeup

DEFAULT_TIMEOUT = 5.0  # without an app (KABAR_RUNTIME_WAIT otherwise)
SLOW_TIMEOUT = 15.0  # pairing and logging out: WhatsApp itself takes seconds
RETRY_DOWN_SECONDS = 5  # Retry-After while the runtime is down (kabar run restarts it)


class CommandFailed(KabarError):
    """The runtime ran the command and it failed; ``code`` says why."""

    status = 409


# Errors the runtime reports that mean "not now", answered as 503.
UNAVAILABLE_CODES = {
    "session_not_connected",
    "session_not_running",
    "runtime_down",
    "runtime_timeout",
}


def submit(
    kind: str,
    *,
    session_id: str | None = None,
    payload: dict | None = None,
    expires_in: float | None = None,
) -> RuntimeCommand:
    """Queue a command for the runtime; it runs even if the runtime is down right now."""
    command = RuntimeCommand(
        kind=kind,
        session_id=session_id,
        payload=payload or {},
        expires_at=utcnow() + timedelta(seconds=expires_in) if expires_in else None,
    )
    db.session.add(command)
    db.session.commit()
    wakeup.notify()
    return command


def wait_seconds() -> float:
    """How long a web request waits for the runtime (KABAR_RUNTIME_WAIT)."""
    if has_app_context():
        return float(current_app.config["KABAR"].get("RUNTIME_WAIT") or DEFAULT_TIMEOUT)
    return DEFAULT_TIMEOUT


def call(
    kind: str,
    *,
    session_id: str | None = None,
    payload: dict | None = None,
    timeout: float | None = None,
) -> Any:
    """Run a command in the runtime and return its result, or raise a clear error.

    Waits ``timeout`` seconds at most (default KABAR_RUNTIME_WAIT): a busy runtime costs
    the caller a quick 503 ``runtime_timeout`` with Retry-After, not a web thread held
    for long. The command expires with the wait, so the runtime never does a look-up
    nobody waits for any more."""
    timeout = wait_seconds() if timeout is None else timeout
    if not heartbeat.state().alive:
        raise ServiceUnavailable(
            "The runtime process is not running, so live WhatsApp calls cannot be made. "
            "It restarts by itself under `kabar run`; check its log if this persists.",
            code="runtime_down",
            headers={"Retry-After": str(RETRY_DOWN_SECONDS)},
        )
    command = submit(kind, session_id=session_id, payload=payload, expires_in=timeout)
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        db.session.expire(command)
        if command.status == "done":
            return command.result
        if command.status == "failed":
            error_class = (
                ServiceUnavailable if command.error_code in UNAVAILABLE_CODES else CommandFailed
            )
            raise error_class(
                command.error_message or "The runtime could not do this.",
                code=command.error_code or "runtime_error",
            )
    raise ServiceUnavailable(
        f"The runtime did not answer within {timeout:g} seconds (it is busy); try again "
        "after Retry-After seconds.",
        code="runtime_timeout",
        headers={"Retry-After": str(max(1, math.ceil(timeout)))},
    )


def recent_results(
    kind: str, *, session_id: str, within: float, limit: int = 50
) -> list[tuple[dict, Any]]:
    """(payload, result) of the session's ``kind`` commands answered in the last
    ``within`` seconds, newest first: a cache of recent answers that every web worker
    shares, because it is the commands table itself."""
    if within <= 0:
        return []
    rows = db.session.execute(
        sa.select(RuntimeCommand.payload, RuntimeCommand.result)
        .where(
            RuntimeCommand.session_id == session_id,
            RuntimeCommand.kind == kind,
            RuntimeCommand.status == "done",
            RuntimeCommand.finished_at >= utcnow() - timedelta(seconds=within),
        )
        .order_by(RuntimeCommand.id.desc())
        .limit(limit)
    ).all()
    return [(row.payload, row.result) for row in rows]


# --- the runtime's side ---------------------------------------------------------------


def claim_pending(
    holder: str = "", *, sessions: set[str] | None = None, leader: bool = True, limit: int = 50
) -> list[RuntimeCommand]:
    """Pending commands, oldest first, each claimed exactly once, by the host that can
    run it: the one holding its session (``sessions``), or the leader for commands of
    no session or of a session no host holds. ``sessions`` None: every command."""
    now = utcnow()
    db.session.execute(
        sa.update(RuntimeCommand)
        .where(RuntimeCommand.status == "pending", RuntimeCommand.expires_at < now)
        .values(
            status="failed",
            error_code="expired",
            finished_at=now,
            error_message="The caller stopped waiting before the runtime got to it.",
        )
    )
    db.session.commit()
    query = sa.select(RuntimeCommand.id).where(RuntimeCommand.status == "pending")
    if sessions is not None:
        held = WaSession.lease_holder.is_not(None) & (WaSession.lease_until > now)
        unheld = RuntimeCommand.session_id.is_(None) | ~sa.exists().where(
            WaSession.id == RuntimeCommand.session_id, held
        )
        mine = RuntimeCommand.session_id.in_(sessions) if sessions else sa.false()
        query = query.where(mine | unheld) if leader else query.where(mine)
    ids = db.session.scalars(query.order_by(RuntimeCommand.id).limit(limit)).all()
    claimed = []
    for command_id in ids:
        won = db.session.execute(
            sa.update(RuntimeCommand)
            .where(RuntimeCommand.id == command_id, RuntimeCommand.status == "pending")
            .values(status="running", claimed_by=holder or None)
        ).rowcount
        db.session.commit()
        if won:
            claimed.append(db.session.get(RuntimeCommand, command_id))
    return claimed


def finish(
    command: RuntimeCommand,
    *,
    result: Any = None,
    error_code: str | None = None,
    error_message: str | None = None,
) -> None:
    command.status = "failed" if error_code else "done"
    command.result = result
    command.error_code = error_code
    command.error_message = (error_message or "")[:512] or None
    command.finished_at = utcnow()
    db.session.commit()


def requeue_interrupted(live_hosts: set[str]) -> None:
    """Commands a host that died had claimed but not finished run again."""
    db.session.execute(
        sa.update(RuntimeCommand)
        .where(
            RuntimeCommand.status == "running",
            sa.or_(
                RuntimeCommand.claimed_by.is_(None),
                RuntimeCommand.claimed_by.not_in(live_hosts) if live_hosts else sa.true(),
            ),
        )
        .values(status="pending")
    )
    db.session.commit()
