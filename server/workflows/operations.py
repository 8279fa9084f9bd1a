"""What the API, the CLI and the dashboard do with workflows and runs (one place for
each action). Tenancy: a user sees their own workflows and runs; admins see all, and
what admins upload is global (it sees every session)."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from nodes import NodeError
from server.auth import current_principal, scoped
from server.errors import Conflict, NotFound, Unauthorized
from server.models import Workflow, WorkflowRun, WorkflowVersion, db
from server.runtime import wakeup
from server.workflows import runner, store
from server.workflows.context import ServerContext

HOOK_HEADER = "X-Kabar-Token"


def visible() -> sa.Select:
    return scoped(Workflow)


def get(name: str) -> Workflow:
    """The caller's workflow by name (admins: the global one by that name, else the only
    workflow of anyone by that name); also by its id, which tells apart two tenants'
    workflows of one name for an admin."""
    principal = current_principal()
    row = store.by_name(name, owner_id=None if principal.is_admin else principal.user.id)
    if row is None and principal.is_admin:
        others = store.named(name)
        if len(others) > 1:
            raise Conflict(
                f"{len(others)} users have a workflow named {name!r}; address "
                f"one by its id ({', '.join(str(o.id) for o in others)}).",
                code="workflow_name_ambiguous",
            )
        row = others[0] if others else None
    if row is None and name.isdigit():
        row = db.session.scalar(visible().where(Workflow.id == int(name)))
    if row is None:
        raise NotFound(f"No workflow named {name!r}.", code="workflow_not_found")
    return row


def upload(doc: Any, *, enable: bool | None = None) -> tuple[Workflow, bool, str | None]:
    """Store a document as a new version of the caller's workflow (admins: a global one).
    Returns (workflow, created, hook_token shown once)."""
    principal = current_principal()
    owner_id = None if principal.is_admin else principal.user.id
    existed = (
        isinstance(doc, dict)
        and isinstance(doc.get("name"), str)
        and store.by_name(doc["name"], owner_id=owner_id) is not None
    )
    row, _changed, token = store.save(
        doc, owner_id=owner_id, source="api", by=principal.user.username
    )
    if enable is not None:
        row.enabled = enable
    db.session.commit()
    return row, not existed, token


def set_enabled(row: Workflow, enabled: bool) -> Workflow:
    row.enabled = enabled
    db.session.commit()
    return row


def delete(row: Workflow) -> None:
    store.delete(row)
    db.session.commit()


def rotate_token(row: Workflow) -> str:
    if not store.has_hook(row):
        raise NotFound(
            f"Workflow {row.name!r} has no hook trigger; add "
            '{"type": "hook"} to its triggers first.',
            code="workflow_has_no_hook",
        )
    token = store.rotate_token(row)
    db.session.commit()
    return token


def versions(row: Workflow) -> list[dict[str, Any]]:
    return [
        {
            "version": v.version,
            "created_at": v.created_at,
            "created_by": v.created_by,
            "note": v.note,
        }
        for v in db.session.scalars(
            sa.select(WorkflowVersion)
            .where(WorkflowVersion.workflow_id == row.id)
            .order_by(WorkflowVersion.version)
        )
    ]


def reload() -> dict[str, Any]:
    """Sync the workflows folder (the server's own files: new ones start disabled)."""
    return store.reload()


# -- starting runs -----------------------------------------------------------------------


def run_manually(
    row: Workflow,
    *,
    input: dict[str, Any],
    vars: dict[str, Any] | None,
    session: str | None,
    chat: str | None,
) -> tuple[WorkflowRun, ServerContext]:
    """A run started by hand over the API (by the caller)."""
    return start_manual(
        row,
        input=input,
        vars=vars,
        session=session,
        chat=chat,
        by=current_principal().user.username,
    )


def start_manual(
    row: Workflow,
    *,
    input: dict[str, Any],
    vars: dict[str, Any] | None = None,
    session: str | None = None,
    chat: str | None = None,
    by: str,
) -> tuple[WorkflowRun, ServerContext]:
    """A run started by hand (API or CLI): ``trigger.type`` manual with ``input``; it goes
    as far as it can before this returns. ``session`` (id or label) must be one the
    workflow may use (404 otherwise)."""
    trigger: dict[str, Any] = {"type": "manual", "input": input, "by": by}
    if session:
        trigger["session"] = _session_for(row, session)
    if chat:
        trigger["chat"] = chat
    return _started(row, trigger, vars)


def run_hook(
    name: str, token: str | None, request: dict[str, Any]
) -> tuple[WorkflowRun, ServerContext]:
    """``POST /api/v1/hooks/{name}``: the token must be the workflow's; a disabled or
    unknown workflow and a wrong token answer alike (401), so names do not leak."""
    # Names are per owner: the token tells whose hook this is (each compared in constant
    # time; a name is shared by a handful of workflows at most).
    row = next(
        (
            w
            for w in store.named(name)
            if w.enabled and store.has_hook(w) and store.token_matches(w, token)
        ),
        None,
    )
    if row is None:
        raise Unauthorized(
            "Unknown hook, or a wrong or missing token: send the workflow's "
            f"hook token in the {HOOK_HEADER} header.",
            code="hook_unauthorized",
        )
    return start_hook(row, request)


PASSED_HEADERS = ("content-type", "user-agent", "x-request-id")


def hook_request(
    *, body: Any, text: str, query: dict[str, str], headers: dict[str, str]
) -> dict[str, Any]:
    """What a hook run sees as ``trigger``, besides ``type``: ``body`` (the JSON body),
    ``text`` (the raw body, when it is not JSON), ``query`` and a few ``headers``."""
    request = {
        "body": body,
        "query": query,
        "headers": {k: v for k, v in headers.items() if k.lower() in PASSED_HEADERS},
    }
    if body is None and text:
        request["text"] = text
    return request


def start_hook(
    row: Workflow, request: dict[str, Any], *, session: str | None = None
) -> tuple[WorkflowRun, ServerContext]:
    """A hook run of ``row`` (whoever let it in: the token, or the studio for its
    simulator's ``session``)."""
    trigger = {"type": "hook", **request}
    if session is not None:
        trigger["session"] = session
    return _started(row, trigger, None)


def hook_answer(run: WorkflowRun, ctx: ServerContext) -> dict[str, Any]:
    """What the hook answers: what a ``respond`` node chose, else 202 with the run."""
    answer = ctx.response
    if answer is None:
        return {
            "status": 202,
            "content_type": "application/json",
            "headers": {},
            "body": json.dumps({"run_id": run.id, "status": run.status}),
        }
    if answer.get("json") is not None:
        body, kind = json.dumps(answer["json"]), "application/json"
    else:
        body, kind = answer.get("body") or "", "text/plain; charset=utf-8"
    return {
        "status": answer["status"],
        "content_type": kind,
        "body": body,
        # The context's run id: the committed row would be read again for its own.
        "headers": {**(answer.get("headers") or {}), "X-Kabar-Run": ctx.run_id},
    }


def _started(
    row: Workflow, trigger: dict[str, Any], vars: dict[str, Any] | None
) -> tuple[WorkflowRun, ServerContext]:
    run, ctx = runner.start(row, trigger, vars=vars)
    db.session.commit()
    wakeup.notify()
    return run, ctx


def _session_for(row: Workflow, session: str) -> str:
    """The id of a session (id or label) the workflow may use, else 404."""
    try:
        return ServerContext(owner_id=row.owner_id, run_id="-").session(session).id
    except NodeError:
        raise NotFound(
            f"No session {session!r} that this workflow may use.", code="session_not_found"
        ) from None


# -- runs --------------------------------------------------------------------------------


def visible_runs() -> sa.Select:
    return scoped(WorkflowRun)


def runs(
    *,
    workflow: str | None = None,
    status: str | None = None,
    session: str | None = None,
    chat: str | None = None,
) -> sa.Select:
    """The runs the caller may see, narrowed by workflow name, status, session id, chat."""
    query = visible_runs()
    if workflow:
        query = query.join(Workflow, Workflow.id == WorkflowRun.workflow_id).where(
            Workflow.name == workflow
        )
    for value, column in (
        (status, WorkflowRun.status),
        (session, WorkflowRun.session_id),
        (chat, WorkflowRun.chat),
    ):
        if value:
            query = query.where(column == value)
    return query


def get_run(run_id: str) -> WorkflowRun:
    row = db.session.scalar(visible_runs().where(WorkflowRun.id == run_id))
    if row is None:
        raise NotFound(f"No workflow run {run_id!r}.", code="run_not_found")
    return row


def cancel_run(row: WorkflowRun) -> WorkflowRun:
    runner.cancel(row, reason=f"cancelled by {current_principal().user.username}")
    db.session.commit()
    return row


def retry_run(row: WorkflowRun) -> WorkflowRun:
    runner.retry(row)
    db.session.commit()
    wakeup.notify()
    return row
