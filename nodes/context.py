"""How nodes reach the world: the ``Context`` a host implements, the ``NodeContext`` a node
sees, and ``LocalContext``, an in-memory host for scripts and tests.

The engine never sends, fetches or sleeps itself. The server implements ``Context``
durably (sends are outbox rows, ``http`` goes through its SSRF guard, ``respond`` answers
the waiting HTTP hook); a script uses ``LocalContext``. So a workflow means the same thing
wherever it runs.
"""

from __future__ import annotations

import itertools
import json as jsonlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from nodes import templating
from nodes.errors import NodeError

if TYPE_CHECKING:
    from nodes.workflow import Workflow


@dataclass(frozen=True)
class HttpResponse:
    """What ``Context.http`` answers: enough for ``http_request`` to put in its data."""

    status: int
    text: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` when it is not JSON)."""
        return jsonlib.loads(self.text)

    @classmethod
    def of_json(
        cls, data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        return cls(
            status, jsonlib.dumps(data), {"content-type": "application/json", **(headers or {})}
        )


@runtime_checkable
class Context(Protocol):
    """What a host gives the engine. ``idempotency_key`` is the same when a step runs again
    after a crash or a retry, so a host that honours it never sends twice."""

    def send(
        self,
        spec: dict[str, Any],
        *,
        session: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Queue one message (the fields of POST /api/v1/sessions/{id}/messages); answer
        the queued message (``id``, ``wa_id``, ``status``)."""

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
        """Queue one message per recipient, as POST …/broadcasts does."""

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
        """Make an HTTP request (the server refuses private addresses)."""

    def respond(
        self, *, status: int, headers: Mapping[str, str], body: str | None, json: Any
    ) -> None:
        """Answer the HTTP caller of a hook-triggered run."""

    def call_workflow(
        self, name: str, input: dict[str, Any], *, caller: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Run another workflow to its end; answer ``{run_id, status, result, vars}``."""

    def tickets(
        self,
        action: str,
        params: dict[str, Any],
        *,
        actor: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Act on the gateway's helpdesk: ``create``, ``assign``, ``update``, ``lookup``,
        ``list`` or ``person``; answer JSON (``{"ticket": {...}}``…). ``actor`` is who
        acts (the run's ``sender``, ``name``, ``chat``, ``session``, ``message_id``,
        ``workflow``). A refusal raises an exception whose ``code`` attribute says why
        (``ticket_not_found``, ``ticket_not_allowed``, ``invalid_transition``…)."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""

    def log(self, message: str, **fields: Any) -> None:
        """Note something about the run for its operator."""


class NodeContext:
    """What ``Node.run()`` gets: the host's operations, keyed to this step so the host can
    make them idempotent, plus the run's ``trigger`` and ``vars`` (which ``set`` changes)."""

    def __init__(
        self,
        host: Context,
        *,
        run_id: str,
        node_id: str,
        step: int,
        attempt: int,
        trigger: dict[str, Any],
        vars: dict[str, Any],
        scope: Mapping[str, Any],
    ) -> None:
        self.host = host
        self.run_id = run_id
        self.node_id = node_id
        self.step = step
        self.attempt = attempt
        self.trigger = trigger
        self.vars = vars
        self.scope = scope
        self._calls = itertools.count(1)

    @property
    def chat(self) -> str | None:
        """The chat the run started from (the default recipient), if any."""
        return self.trigger.get("chat")

    @property
    def session(self) -> str | None:
        """The session the run started from, if any."""
        return self.trigger.get("session")

    def send(self, spec: dict[str, Any], *, session: str | None = None) -> dict[str, Any]:
        return self.host.send(spec, session=session or self.session, idempotency_key=self._key())

    def broadcast(
        self,
        message: dict[str, Any],
        *,
        recipients: list[dict[str, Any]] | None = None,
        lines: str | None = None,
        name: str = "",
        session: str | None = None,
    ) -> dict[str, Any]:
        return self.host.broadcast(
            message,
            recipients=recipients,
            lines=lines,
            name=name,
            session=session or self.session,
            idempotency_key=self._key(),
        )

    def http(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        body: str | None = None,
        timeout: float = 10.0,
    ) -> HttpResponse:
        return self.host.http(
            method, url, headers=headers or {}, json=json, body=body, timeout=timeout
        )

    def respond(
        self,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        body: str | None = None,
        json: Any = None,
    ) -> None:
        self.host.respond(status=status, headers=headers or {}, body=body, json=json)

    def call_workflow(self, name: str, input: dict[str, Any]) -> dict[str, Any]:
        caller = {
            "run_id": self.run_id,
            "node": self.node_id,
            "chat": self.chat,
            "session": self.session,
        }
        return self.host.call_workflow(name, input, caller=caller)

    @property
    def actor(self) -> dict[str, Any]:
        """Who acts when this run touches the helpdesk: its sender, or (no sender: a
        schedule, a gateway event) the workflow itself."""
        return {
            "sender": self.trigger.get("sender"),
            "name": self.trigger.get("sender_name") or self.trigger.get("name"),
            "chat": self.chat,
            "session": self.session,
            "message_id": self.trigger.get("message_id"),
            "workflow": self.scope.get("run", {}).get("workflow"),
            "run_id": self.run_id,
        }

    def tickets(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        return self.host.tickets(action, params, actor=self.actor, idempotency_key=self._key())

    def now(self) -> datetime:
        return self.host.now()

    def log(self, message: str, **fields: Any) -> None:
        self.host.log(message, run_id=self.run_id, node=self.node_id, **fields)

    def evaluate(self, expression: str) -> Any:
        """A bare expression's value in this run's scope."""
        return templating.evaluate(expression, self.scope)

    def truthy(self, expression: str) -> bool:
        """A condition's truth in this run's scope."""
        return templating.truthy(expression, self.scope)

    def _key(self) -> str:
        return f"{self.run_id}:{self.step}:{next(self._calls)}"


HttpHandler = Callable[..., HttpResponse]
TicketsHandler = Callable[..., dict[str, Any]]


class LocalContext:
    """An in-memory host: records what a run sends, broadcasts and responds, answers HTTP
    through ``http`` (a function taking ``(method, url, headers=, json=, body=, timeout=)``;
    by default a real request with httpx, for scripts), and runs ``call_workflow`` from
    ``workflows``. With ``now`` given, the clock stands still until ``advance()``.
    The helpdesk lives in a gateway: ``tickets`` (a function taking ``(action, params,
    actor=, idempotency_key=)``) stands in for it; without one the ticket nodes fail.
    """

    MAX_CALL_DEPTH = 8

    def __init__(
        self,
        *,
        now: datetime | None = None,
        http: HttpHandler | None = None,
        workflows: Mapping[str, Workflow] | None = None,
        session: str = "local",
        tickets: TicketsHandler | None = None,
    ) -> None:
        if now is not None and now.tzinfo is None:
            raise ValueError("LocalContext(now=...) must be timezone-aware")
        self.time = now
        self.session = session
        self.workflows = dict(workflows or {})
        self.sent: list[dict[str, Any]] = []
        self.broadcasts: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.ticket_calls: list[dict[str, Any]] = []
        self._http = http or _httpx_request
        self._tickets = tickets
        self._by_key: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._depth = 0

    @property
    def response(self) -> dict[str, Any] | None:
        """The last ``respond`` (what an HTTP hook caller would get)."""
        return self.responses[-1] if self.responses else None

    def advance(self, **delta: float) -> datetime:
        """Move a standing clock on: ``ctx.advance(minutes=5)``."""
        if self.time is None:
            raise ValueError("advance() needs a standing clock: LocalContext(now=...)")
        self.time += timedelta(**delta)
        return self.time

    def send(
        self,
        spec: dict[str, Any],
        *,
        session: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        if idempotency_key and idempotency_key in self._by_key:
            return self._by_key[idempotency_key]
        number = next(self._ids)
        message = {
            "id": f"msg-{number}",
            "wa_id": f"LOCAL{number:06d}",
            "status": "queued",
            "to": spec.get("to"),
            "session": session or self.session,
        }
        self.sent.append({**spec, "session": message["session"], "id": message["id"]})
        if idempotency_key:
            self._by_key[idempotency_key] = message
        return message

    def broadcast(
        self,
        message: dict[str, Any],
        *,
        recipients: list[dict[str, Any]] | None = None,
        lines: str | None = None,
        name: str = "",
        session: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        if idempotency_key and idempotency_key in self._by_key:
            return self._by_key[idempotency_key]
        if lines is not None:
            recipients = [
                {"to": line.split("|")[0].strip()}
                for line in lines.splitlines()
                if line.split("|")[0].strip()
            ]
        answer = {
            "id": f"broadcast-{next(self._ids)}",
            "total": len(recipients or []),
            "status": "queued",
        }
        self.broadcasts.append(
            {
                "message": message,
                "recipients": recipients,
                "lines": lines,
                "name": name,
                "session": session or self.session,
                **answer,
            }
        )
        if idempotency_key:
            self._by_key[idempotency_key] = answer
        return answer

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
        self.requests.append(
            {
                "method": method,
                "url": url,
                "headers": dict(headers),
                "json": json,
                "body": body,
                "timeout": timeout,
            }
        )
        return self._http(method, url, headers=headers, json=json, body=body, timeout=timeout)

    def respond(
        self, *, status: int, headers: Mapping[str, str], body: str | None, json: Any
    ) -> None:
        self.responses.append(
            {"status": status, "headers": dict(headers), "body": body, "json": json}
        )

    def call_workflow(
        self, name: str, input: dict[str, Any], *, caller: Mapping[str, Any]
    ) -> dict[str, Any]:
        from nodes.engine import Engine

        if name not in self.workflows:
            known = ", ".join(sorted(self.workflows)) or "none"
            raise NodeError(
                f"no workflow named {name!r} (this LocalContext knows: {known}); "
                "pass it in LocalContext(workflows={...})",
                retryable=False,
            )
        if self._depth >= self.MAX_CALL_DEPTH:
            raise NodeError(
                f"call_workflow nested more than {self.MAX_CALL_DEPTH} deep; "
                "does a workflow call itself?",
                retryable=False,
            )
        self.calls.append({"name": name, "input": input, "caller": dict(caller)})
        trigger = {
            "type": "call",
            "input": input,
            "chat": caller.get("chat"),
            "session": caller.get("session"),
        }
        self._depth += 1
        try:
            run = Engine().start(self.workflows[name], trigger, self)
        finally:
            self._depth -= 1
        if run.status == "waiting":
            raise NodeError(
                f"workflow {name!r} waited ({run.wait and run.wait['kind']}); "
                "LocalContext can only call workflows that finish at once",
                retryable=False,
            )
        return {
            "run_id": run.id,
            "status": run.status,
            "result": run.result,
            "vars": run.vars,
            "error": run.error,
        }

    def tickets(
        self,
        action: str,
        params: dict[str, Any],
        *,
        actor: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        self.ticket_calls.append({"action": action, "params": params, "actor": dict(actor)})
        if self._tickets is None:
            raise NodeError(
                "ticket nodes need a Kabar gateway (its helpdesk); run this "
                "workflow there, or pass LocalContext(tickets=...)",
                retryable=False,
            )
        return self._tickets(action, params, actor=actor, idempotency_key=idempotency_key)

    def now(self) -> datetime:
        return self.time if self.time is not None else datetime.now(UTC)

    def log(self, message: str, **fields: Any) -> None:
        self.logs.append({"message": message, **fields})


def _httpx_request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str],
    json: Any,
    body: str | None,
    timeout: float,
) -> HttpResponse:
    """A real request, for scripts run by a person on their own machine."""
    import httpx

    kwargs: dict[str, Any] = {"headers": dict(headers), "timeout": timeout}
    if json is not None:
        kwargs["json"] = json
    elif body is not None:
        kwargs["content"] = body
    answer = httpx.request(method, url, **kwargs)
    return HttpResponse(answer.status_code, answer.text, dict(answer.headers))
