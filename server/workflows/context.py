"""The server's ``nodes.Context``: what a workflow step may do, done durably.

Everything a step changes goes into the current database transaction, which the runner
commits together with the run's new state: a message a step sends is an outbox row
(the one send path, source ``workflow``, idempotency key per step), so a run and what it
sent are stored together or not at all. ``http`` goes through the SSRF guard.
"""

from __future__ import annotations

import json as jsonlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from nodes import HttpResponse, NodeError
from server import netguard
from server.errors import KabarError
from server.models import Simulator, WaSession, Workflow, db, memo, utcnow
from server.outbox import broadcast as broadcasts
from server.outbox import queue as outbox

log = logging.getLogger(__name__)

HTTP_MAX_BYTES = 1_048_576
MAX_CALL_DEPTH = 8


class ServerContext:
    """One per run step sequence. ``owner_id`` limits which sessions the run may use
    (None: a global workflow, any session). ``response`` is what a ``respond`` node set,
    for the HTTP hook that started the run.

    ``simulator``: the studio simulator's session a run started in (``is_simulator``);
    such a run uses that session whatever a step names, so testing a workflow never
    sends from a real session. Other runs never use a simulator's session."""

    def __init__(
        self,
        *,
        owner_id: int | None,
        run_id: str,
        call_workflow: Callable[..., dict[str, Any]] | None = None,
        depth: int = 0,
        simulator: str | None = None,
    ) -> None:
        self.owner_id = owner_id
        self.run_id = run_id
        self.depth = depth
        self.simulator = simulator
        self.response: dict[str, Any] | None = None
        self._call_workflow = call_workflow

    # -- messages ------------------------------------------------------------------------

    def send(
        self,
        spec: dict[str, Any],
        *,
        session: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        target = self.session(session)
        try:
            row, _created = outbox.send(
                target, spec, idempotency_key=_key(idempotency_key), source="workflow", commit=False
            )
            db.session.flush()  # the row's defaults (id, status) for the step's data
        except KabarError as exc:
            raise _node_error(exc) from None
        return {
            "id": row.id,
            "wa_id": row.wa_id,
            "status": row.status,
            "to": row.to_jid,
            "session": target.id,
        }

    def broadcast(
        self,
        message: dict[str, Any],
        *,
        recipients: list[dict[str, Any]] | None,
        lines: str | None,
        name: str = "",
        session: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        target = self.session(session)
        if lines is not None:
            recipients = broadcasts.parse_lines(lines)
        try:
            row, _created = broadcasts.create(
                target,
                message=message,
                recipients=recipients or [],
                name=name,
                idempotency_key=_key(idempotency_key),
                source="workflow",
                commit=False,
            )
        except KabarError as exc:
            raise _node_error(exc) from None
        return {"id": row.id, "total": row.total, "status": "queued", "session": target.id}

    def session(self, ident: str | None) -> WaSession:
        """The session a step names (id or label), else the only one the run may use;
        found once per group commit (``memo``: runs change no session)."""
        return memo(
            ("run session", self.simulator, self.owner_id, ident), lambda: self._session(ident)
        )

    def _session(self, ident: str | None) -> WaSession:
        if self.simulator is not None:
            confined = db.session.get(WaSession, self.simulator)
            if confined is None:
                raise NodeError("the simulator's session is gone", retryable=False)
            return confined
        query = sa.select(WaSession).where(WaSession.id.not_in(SIMULATOR_SESSIONS))
        if self.owner_id is not None:
            query = query.where(WaSession.owner_id == self.owner_id)
        if ident:
            found = db.session.scalars(
                query.where(sa.or_(WaSession.id == ident, WaSession.label == ident)).limit(2)
            ).all()
            if len(found) == 1:
                return found[0]
            why = (
                "is not one this workflow may use"
                if not found
                else "matches several sessions by label; use the session id"
            )
            raise NodeError(f"session {ident!r} {why}", retryable=False)
        found = db.session.scalars(query.order_by(WaSession.created_at).limit(2)).all()
        if len(found) == 1:
            return found[0]
        raise NodeError(
            "this run has no session of its own (it did not start from a "
            "message) and there is not exactly one session to use; set the "
            "node's session param to a session id or label",
            retryable=False,
        )

    # -- the outside world ---------------------------------------------------------------

    def http(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        json: Any,
        body: str | None,
        timeout: float,
    ) -> HttpResponse:
        settings = current_app.config["KABAR"]
        headers = dict(headers)
        content = None
        if json is not None:
            content = jsonlib.dumps(json).encode()
            headers.setdefault("Content-Type", "application/json")
        elif body is not None:
            content = body.encode()
        try:
            answer = netguard.request(
                method,
                url,
                timeout=timeout,
                allow=settings["FETCH_ALLOW"],
                max_bytes=HTTP_MAX_BYTES,
                headers=headers,
                content=content,
            )
        except KabarError as exc:  # unsafe or unreachable: retrying may help the latter
            raise NodeError(
                exc.message,
                data={"status": None, "code": exc.code},
                retryable=exc.code != "unsafe_url",
            ) from None
        return HttpResponse(answer.status, answer.body.decode("utf-8", "replace"), answer.headers)

    def respond(
        self, *, status: int, headers: Mapping[str, str], body: str | None, json: Any
    ) -> None:
        self.response = {"status": status, "headers": dict(headers), "body": body, "json": json}

    def call_workflow(
        self, name: str, input: dict[str, Any], *, caller: Mapping[str, Any]
    ) -> dict[str, Any]:
        if self.depth >= MAX_CALL_DEPTH:
            raise NodeError(
                f"call_workflow nested more than {MAX_CALL_DEPTH} deep; does a "
                "workflow call itself?",
                retryable=False,
            )
        # Its owner's workflow of that name, else a global one (a global workflow calls
        # global ones only).
        query = sa.select(Workflow).where(
            Workflow.name == name,
            sa.or_(Workflow.owner_id.is_(None), Workflow.owner_id == self.owner_id)
            if self.owner_id is not None
            else Workflow.owner_id.is_(None),
        )
        workflow = db.session.scalar(query.order_by(Workflow.owner_id.is_(None)).limit(1))
        if workflow is None:
            raise NodeError(
                f"no workflow named {name!r} that this workflow may call", retryable=False
            )
        assert self._call_workflow is not None
        return self._call_workflow(workflow, input, caller=caller, depth=self.depth + 1)

    def tickets(
        self,
        action: str,
        params: dict[str, Any],
        *,
        actor: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """The helpdesk (``server/tickets/host.py``), in the run's transaction. A refusal
        is a ``KabarError`` whose ``code`` the ticket nodes turn into an output."""
        from server.tickets import host, lifecycle  # the helpdesk records events: lazily

        with lifecycle.in_callers_transaction(), db.session.begin_nested():
            return host.handle(action, params, actor=actor, idempotency_key=_key(idempotency_key))

    def now(self) -> datetime:
        return utcnow()

    def log(self, message: str, **fields: Any) -> None:
        log.info("workflow: %s %s", message, fields)


SIMULATOR_SESSIONS = sa.select(Simulator.session_id).scalar_subquery()


def is_simulator(session_id: str | None) -> bool:
    """Whether the session is a studio simulator's (server/workflows/simulator.py); asked
    once per group commit (``memo``)."""
    if session_id is None:
        return False
    return memo(
        ("is simulator", session_id),
        lambda: (
            db.session.scalar(sa.select(Simulator.id).where(Simulator.session_id == session_id))
            is not None
        ),
    )


def _key(idempotency_key: str | None) -> str | None:
    return f"wf:{idempotency_key}"[:128] if idempotency_key else None


def _node_error(exc: KabarError) -> NodeError:
    """A refused send is the workflow's to handle (its ``error`` output), not a crash;
    the same request would be refused again, so it is not retried."""
    detail = f" ({jsonlib.dumps(exc.errors, default=str)})" if exc.errors else ""
    return NodeError(
        f"{exc.message}{detail}",
        data={"code": exc.code, "errors": exc.errors},
        retryable=exc.status >= 500,
    )
