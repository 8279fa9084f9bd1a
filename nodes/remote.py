"""``nodes.remote``: run a workflow from a script against a running Kabar gateway.

::

    from nodes import RemoteContext, RemoteRunner, Workflow

    survey = Workflow.load("workflows/survey.json")
    with RemoteContext("http://127.0.0.1:7308", "kabar_…", session="Helpdesk") as ctx:
        run = RemoteRunner(ctx).run(survey, {"type": "manual", "chat": "0812-3456-789"})
    print(run.status, run.vars)

The run lives in the script: the engine runs here, and only what a step does to the world
goes to the gateway (``send`` and ``broadcast`` through its REST API, so they are queued,
paced and tracked like any other message). ``RemoteRunner`` drives the run to its end: a
``wait_for_reply`` long-polls the chat's messages on the gateway for the next inbound
message, and a delay or a retry backoff sleeps here. Unlike a run inside the gateway,
nothing is durable: if the script stops, so does the run (upload the workflow to the
gateway for runs that must survive restarts).

HTTP errors become ``NodeError`` with the API's ``code`` and ``message`` in ``data``;
5xx, 429 and connection errors are retryable (the node's ``retry`` policy applies), other
4xx are not: the same request would be refused again. Every send carries an
``Idempotency-Key`` made from the run, step and call, so a retried step never sends twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from nodes.base import Event, Reply, Timeout
from nodes.context import HttpHandler, LocalContext
from nodes.engine import Engine
from nodes.errors import NodeError
from nodes.run import Run
from nodes.workflow import Workflow

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
LONG_POLL_SECONDS = 30.0
"""The longest wait the gateway grants one long-poll request (``?wait=``)."""


class RemoteContext(LocalContext):
    """A ``Context`` whose messages go through a gateway's REST API.

    ``base_url`` is the gateway (``http://host:7308``); ``token`` an API key (or a login's
    access token) whose user holds ``messages:send`` and ``sessions:read`` (and
    ``workflows:manage`` for ``call_workflow``). ``session`` is the default session (id or
    label) for steps that do not name one. ``timeout`` bounds each request.

    Like ``LocalContext``, ``http`` makes real requests from this machine (or through the
    ``http`` handler given), and ``respond`` and ``log`` are kept here (``responses``,
    ``logs``; logs also go to the ``nodes.remote`` logger). ``call_workflow`` runs a
    workflow from ``workflows`` here when it is there, else the gateway's stored workflow
    of that name (a manual run, which must finish without waiting). ``sent`` and
    ``broadcasts`` hold what the gateway answered for each.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        session: str | None = None,
        timeout: float = 30.0,
        http: HttpHandler | None = None,
        workflows: Mapping[str, Workflow] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(http=http, workflows=workflows)
        self.session = session  # type: ignore[assignment]
        self.timeout = timeout
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        self._session_ids: dict[str, str] = {}

    def __enter__(self) -> RemoteContext:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    # -- the REST API --------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Call the gateway's API; answer the JSON body (None when empty). Errors are
        ``NodeError`` with ``data`` = ``{code, status, errors}``."""
        where = f"{method} {path}"
        try:
            answer = self.client.request(
                method,
                path,
                json=json,
                params=params,
                headers=headers,
                timeout=timeout or self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise NodeError(
                f"the gateway at {self.base_url} did not answer {where} in "
                f"time ({type(exc).__name__}); is it overloaded?",
                data={"code": "timeout", "status": None},
            ) from None
        except httpx.TransportError as exc:
            raise NodeError(
                f"cannot reach the gateway at {self.base_url} ({exc}); is it "
                "running, and is the address right?",
                data={"code": "unreachable", "status": None},
            ) from None
        if not answer.is_success:
            raise api_error(answer, where)
        if not answer.content:
            return None
        try:
            return answer.json()
        except ValueError:
            raise NodeError(
                f"{where} answered {answer.status_code} with something that is not "
                f"JSON; is {self.base_url} a Kabar gateway (its address, without "
                "/api/v1)?",
                retryable=False,
                data={"code": "not_json", "status": answer.status_code},
            ) from None

    def session_id(self, ident: str | None = None) -> str:
        """The id of the session ``ident`` names (an id or a label; default: this
        context's session), looked up once."""
        ident = ident or self.session
        if not ident:
            raise NodeError(
                "no session to send from: give RemoteContext(session=...) or "
                "set the node's session param",
                retryable=False,
            )
        if ident not in self._session_ids:
            self._session_ids[ident] = self._find_session(ident)
        return self._session_ids[ident]

    def _find_session(self, ident: str) -> str:
        try:
            return str(self.request("GET", f"/api/v1/sessions/{_part(ident)}")["id"])
        except NodeError as exc:
            if exc.data.get("code") != "session_not_found":
                raise
        labelled = [s["id"] for s in self._pages("/api/v1/sessions") if s.get("label") == ident]
        if len(labelled) == 1:
            return str(labelled[0])
        why = (
            "several sessions have this label; use the session id"
            if labelled
            else "no session with this id or label that this token may use"
        )
        raise NodeError(
            f"session {ident!r}: {why}",
            retryable=False,
            data={"code": "session_not_found", "status": 404},
        )

    def _pages(self, path: str) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.request(
                "GET", path, params={"limit": 200, **({"cursor": cursor} if cursor else {})}
            )
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # -- Context -------------------------------------------------------------------------

    def send(
        self,
        spec: dict[str, Any],
        *,
        session: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        sid = self.session_id(session)
        answer = self.request(
            "POST",
            f"/api/v1/sessions/{sid}/messages",
            json=spec,
            headers=_idempotency(idempotency_key),
        )
        message = {
            "id": answer["id"],
            "wa_id": answer["wa_id"],
            "status": answer["status"],
            "to": answer["to"],
            "session": sid,
        }
        self.sent.append(message)
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
        sid = self.session_id(session)
        body: dict[str, Any] = {"message": message, "name": name}
        if lines is not None:
            body["lines"] = lines
        else:
            body["recipients"] = recipients or []
        answer = self.request(
            "POST",
            f"/api/v1/sessions/{sid}/broadcasts",
            json=body,
            headers=_idempotency(idempotency_key),
        )
        result = {"id": answer["id"], "total": answer["total"], "status": "queued", "session": sid}
        self.broadcasts.append(result)
        return result

    def call_workflow(
        self, name: str, input: dict[str, Any], *, caller: Mapping[str, Any]
    ) -> dict[str, Any]:
        if name in self.workflows:
            return super().call_workflow(name, input, caller=caller)
        self.calls.append({"name": name, "input": input, "caller": dict(caller)})
        body = {
            "input": input,
            "chat": caller.get("chat"),
            "session": caller.get("session") or self.session,
        }
        started = self.request("POST", f"/api/v1/workflows/{_part(name)}/runs", json=body)
        if started["status"] in ("waiting", "running"):
            self.request("POST", f"/api/v1/runs/{started['id']}/cancel")
            raise NodeError(
                f"the gateway's workflow {name!r} waited ({started.get('wait')}); "
                "call_workflow needs one that finishes at once, so its run "
                f"{started['id']} was cancelled",
                retryable=False,
            )
        run = self.request("GET", f"/api/v1/runs/{started['id']}")
        return {
            "run_id": run["id"],
            "status": run["status"],
            "result": run.get("result"),
            "vars": run.get("vars"),
            "error": run.get("error"),
        }

    def log(self, message: str, **fields: Any) -> None:
        super().log(message, **fields)
        log.info("%s %s", message, fields)

    # -- what the runner needs -----------------------------------------------------------

    def newest_message(self, session: str | None, chat: str) -> str | None:
        """The id of the chat's newest stored message (None: the chat has none yet)."""
        try:
            found = self.request(
                "GET", f"/api/v1/sessions/{self.session_id(session)}/chats/{_part(chat)}"
            )
        except NodeError as exc:
            if exc.data.get("code") == "chat_not_found":
                return None
            raise
        return str(found["last_message"]["id"])

    def next_inbound(
        self, session: str | None, chat: str, *, after: str | None, wait: float
    ) -> dict[str, Any] | None:
        """The chat's first inbound message after ``after`` (any, when None), waiting up
        to ``wait`` seconds (at most ``LONG_POLL_SECONDS``) for it on the gateway."""
        wait = max(0.0, min(wait, LONG_POLL_SECONDS))
        params: dict[str, Any] = {"direction": "in", "limit": 1, "wait": round(wait, 3)}
        if after:
            params["after"] = after
        page = self.request(
            "GET",
            f"/api/v1/sessions/{self.session_id(session)}/chats/{_part(chat)}/messages",
            params=params,
            timeout=wait + self.timeout,
        )
        return page["items"][0] if page["items"] else None


class RemoteRunner:
    """Drive runs to their end with a ``RemoteContext``: start, then resume each wait.

    A reply wait takes the chat's first inbound message stored after the wait began
    (after the message that resumed the previous wait, when the run waits again on the
    same chat: an answer typed quickly after a wrong one is not lost); none before the
    wait's ``until`` resumes it with ``Timeout()``. A time wait (``delay``, a retry
    backoff) sleeps until its time. ``on_wait(run)`` is called before each wait.
    """

    def __init__(
        self,
        ctx: RemoteContext,
        *,
        engine: Engine | None = None,
        on_wait: Callable[[Run], object] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        retry_seconds: float = 2.0,
    ) -> None:
        self.ctx = ctx
        self.engine = engine or Engine()
        self.on_wait = on_wait
        self.sleep = sleep
        self.retry_seconds = retry_seconds

    def run(
        self, workflow: Workflow, trigger: dict[str, Any], *, vars: dict[str, Any] | None = None
    ) -> Run:
        """Start a run of ``workflow`` and return it finished (completed or failed)."""
        return self.drive(self.engine.start(workflow, trigger, self.ctx, vars=vars), workflow)

    def drive(self, run: Run, workflow: Workflow) -> Run:
        """Resume a waiting run until it finishes."""
        last: tuple[str, str, str] | None = None  # (session, chat, message id) last taken
        while run.status == "waiting" and run.wait:
            if self.on_wait:
                self.on_wait(run)
            wait = run.wait
            event: Event = Timeout()
            if wait["kind"] == "reply":
                session = self.ctx.session_id(wait.get("session"))
                chat = wait["chat"]
                after = (
                    last[2]
                    if last and last[:2] == (session, chat)
                    else self.ctx.newest_message(session, chat)
                )
                message = self._reply(session, chat, after, run.due)
                if message is not None:
                    event = Reply(message["text"] or "", reply_message(message, session))
                    last = (session, chat, message["id"])
            else:
                self._sleep_until(run.due)
            if isinstance(event, Timeout):
                last = None
            run = self.engine.resume(run, event, self.ctx, workflow=workflow)
        return run

    def _reply(
        self, session: str, chat: str, after: str | None, until: datetime | None
    ) -> dict[str, Any] | None:
        while True:
            left = LONG_POLL_SECONDS if until is None else (until - self.ctx.now()).total_seconds()
            if left <= 0:
                return None
            try:
                message = self.ctx.next_inbound(session, chat, after=after, wait=left)
            except NodeError as exc:
                if not exc.retryable:
                    raise
                log.warning("waiting for a reply in %s: %s; trying again", chat, exc)
                self.sleep(min(self.retry_seconds, left))
                continue
            if message is not None:
                return message

    def _sleep_until(self, until: datetime | None) -> None:
        if until is not None:
            self.sleep(max(0.0, (until - self.ctx.now()).total_seconds()))


def run(
    workflow: Workflow,
    trigger: dict[str, Any],
    ctx: RemoteContext,
    *,
    vars: dict[str, Any] | None = None,
) -> Run:
    """``RemoteRunner(ctx).run(workflow, trigger)``: the finished run."""
    return RemoteRunner(ctx).run(workflow, trigger, vars=vars)


def reply_message(item: dict[str, Any], session: str) -> dict[str, Any]:
    """A stored message (the API's shape) as a ``Reply``'s message: the fields a run
    inside the gateway sees in ``{{ ask.message }}``."""
    return {
        "session": session,
        "chat": item.get("chat_jid"),
        "chat_phone": item.get("chat_phone"),
        "sender": item.get("sender_phone") or item.get("sender_jid"),
        "sender_jid": item.get("sender_jid"),
        "sender_name": item.get("sender_name"),
        "is_group": bool(item.get("is_group")),
        "message_id": item.get("wa_id"),
        "id": item.get("id"),
        "kind": item.get("kind"),
        "text": item.get("text") or "",
        "media": item.get("media"),
        "location": item.get("location"),
        "quoted_id": item.get("quoted_id"),
        "timestamp": item.get("timestamp"),
    }


def api_error(answer: httpx.Response, where: str) -> NodeError:
    """The gateway's error answer as a ``NodeError``: 5xx and 429 are retryable."""
    status = answer.status_code
    try:
        body = answer.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or f"http_{status}")
    message = str(body.get("message") or answer.reason_phrase or "no answer")
    errors = body.get("errors")
    detail = f" {errors}" if errors else ""
    return NodeError(
        f"the gateway refused {where} ({status} {code}): {message}{detail}",
        data={"code": code, "status": status, "errors": errors},
        retryable=status >= 500 or status == 429,
    )


def _idempotency(key: str | None) -> dict[str, str]:
    return {IDEMPOTENCY_HEADER: f"remote:{key}"[:128]} if key else {}


def _part(text: str) -> str:
    """One URL path segment (a chat may be typed ``+62 812…``; a JID has ``@``)."""
    return quote(text, safe="@")


__all__ = [
    "LONG_POLL_SECONDS",
    "RemoteContext",
    "RemoteRunner",
    "api_error",
    "reply_message",
    "run",
]
