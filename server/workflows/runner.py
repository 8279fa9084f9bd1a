"""Runs as rows: start, resume, retry and cancel a run, each in the caller's transaction.

The engine (``nodes.Engine``) keeps no state; this module stores what it returns in a
``workflow_runs`` row, copying what is searched for (status, the chat a run waits on,
when it is due) into indexed columns. The caller commits once, so a run's new state
and every message it queued are stored together, or not at all.

Exactly once: a waiting run is taken with a conditional update (``status = 'waiting'``
→ ``running``) in the same transaction that stores its next state. Two messages that
race for one run cannot both win: on PostgreSQL the loser's update waits for the
winner's row lock and then matches nothing; on SQLite writers take turns.
"""

from __future__ import annotations

import functools
import logging
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from nodes import Engine, Reply, Run, Timeout
from nodes import Workflow as WorkflowDoc
from nodes.base import Event
from nodes.errors import NodesError
from nodes.templating import jsonable
from server.errors import Conflict
from server.events import WorkflowCompleted, WorkflowFailed
from server.models import WaSession, Workflow, WorkflowRun, db, memo, utcnow
from server.whatsapp.jids import InvalidPhone, to_jid
from server.workflows import store
from server.workflows.context import ServerContext, is_simulator

log = logging.getLogger(__name__)

_engine = Engine()

GROUPED = "kabar.workflows.grouped"  # session.info: this transaction holds others' runs
# Nodes that never wait on the network: a run of a workflow made only of these may share
# a transaction (``worker.handle_many``) with other runs.
QUICK_NODES = frozenset(
    {
        *("branch", "switch", "set", "send", "end", "respond", "wait_for_reply", "delay"),
        *("lookup_person", "create_ticket", "update_ticket", "assign_ticket"),
        *("lookup_ticket", "list_tickets"),
    }
)


class MustRunAlone(Exception):
    """Raised before a run of a workflow with a node that may block (an HTTP call, a
    called workflow, a remote node) starts or resumes in a group commit after other
    items: see ``server/workflows/worker.py``."""


def _alone_if_slow(doc: WorkflowDoc) -> None:
    if db.session.info.get(GROUPED) and any(
        node.type not in QUICK_NODES for node in doc.nodes.values()
    ):
        raise MustRunAlone(doc.name)


def start(
    workflow: Workflow,
    trigger: dict[str, Any],
    *,
    vars: dict[str, Any] | None = None,
    parent_id: str | None = None,
    depth: int = 0,
    run_id: str | None = None,
    owner_id: int | None = None,
) -> tuple[WorkflowRun, ServerContext]:
    """Start a run of the workflow's current version and take it as far as it goes.

    ``run_id`` and ``owner_id`` (default: a new id, the workflow's owner) are for a run
    made on someone's behalf, such as a reply watch. A run in a studio simulator's
    session is marked ``trigger.simulator`` and confined to that session."""
    if is_simulator(trigger.get("session")):
        trigger = {**trigger, "simulator": True}
    doc = store.load(workflow.id, workflow.version)
    _alone_if_slow(doc)
    # The row is added once the run has gone as far as it goes, so it is inserted once,
    # with its final state, and (on SQLite) the write lock is not held while nodes run.
    # Its id is made here: idempotency keys of what the run sends name it.
    row = WorkflowRun(
        id=run_id or new_run_id(),
        workflow_id=workflow.id,
        version=workflow.version,
        owner_id=workflow.owner_id if owner_id is None else owner_id,
        parent_id=parent_id,
        status="running",
        trigger_type=str(trigger.get("type") or "manual"),
        session_id=trigger.get("session"),
        chat=trigger.get("chat"),
        state={},
    )
    ctx = _context(row, depth, chain=chain_of(trigger), trigger=trigger)
    run = _engine.start(doc, trigger, ctx, vars=vars, run_id=row.id)
    db.session.add(row)
    _store(row, run)
    return row, ctx


def new_run_id() -> str:
    return uuid.uuid4().hex


def refuse(workflow: Workflow, trigger: dict[str, Any], reason: str) -> WorkflowRun:
    """A run that is not started, for ``reason``: stored as failed at once, with its
    ``workflow.failed`` event, so the refusal shows where runs are looked at."""
    row = WorkflowRun(
        workflow_id=workflow.id,
        version=workflow.version,
        owner_id=workflow.owner_id,
        status="running",
        trigger_type=str(trigger.get("type") or "manual"),
        session_id=trigger.get("session"),
        chat=trigger.get("chat"),
        state={},
    )
    db.session.add(row)
    db.session.flush()
    now = utcnow()
    run = Run.new(
        name=workflow.name,
        version=workflow.version,
        trigger=jsonable(trigger),
        vars={},
        now=now,
        run_id=row.id,
    )
    run.status, run.error, run.finished_at = "failed", reason, now.isoformat()
    _store(row, run)
    return row


def chain_of(trigger: dict[str, Any] | None) -> int:
    """How many runs, each started by the end of the one before, led to this one (0: a
    run started by a message, a schedule, a hook or by hand)."""
    chain = (trigger or {}).get("chain")
    return chain if isinstance(chain, int) else 0


def resume(row: WorkflowRun, event: Event) -> ServerContext:
    """Continue a run taken with ``take``."""
    ctx = _context(row, 0)
    run = Run.from_dict(row.state)
    run.status = "waiting"  # ``take`` marked the row running; the state still waits
    doc = store.load(row.workflow_id, row.version)
    _alone_if_slow(doc)
    run = _engine.resume(run, event, ctx, workflow=doc)
    _store(row, run)
    return ctx


def take(run_id: str, *, reply: bool = False) -> WorkflowRun | None:
    """Claim a waiting run (``reply``: only if it waits for a reply); None if another
    handler claimed it first or it no longer waits."""
    condition = [WorkflowRun.id == run_id, WorkflowRun.status == "waiting"]
    if reply:
        condition.append(WorkflowRun.wait_kind == "reply")
    else:
        condition.append(WorkflowRun.wait_until <= utcnow())
    # One statement: the claim hands back the row it won (UPDATE … RETURNING).
    return db.session.scalars(
        sa.update(WorkflowRun)
        .where(*condition)
        .values(status="running")
        .returning(WorkflowRun)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).first()


def waiting_for_reply(session_id: str, chat: str) -> str | None:
    """The run this chat's next message resumes: the oldest waiting for a reply there."""
    return db.session.scalar(_WAITING_FOR_REPLY, {"session_id": session_id, "chat": chat})


# Built once: every inbound message asks it, and building a statement costs more than
# running it.
_WAITING_FOR_REPLY = (
    sa.select(WorkflowRun.id)
    .where(
        WorkflowRun.wait_session_id == sa.bindparam("session_id"),
        WorkflowRun.wait_chat == sa.bindparam("chat"),
        WorkflowRun.status == "waiting",
    )
    .order_by(WorkflowRun.started_at)
    .limit(1)
)


def due(limit: int, now: datetime | None = None) -> list[str]:
    """Waiting runs whose time has come (a timeout, the end of a delay, a retry)."""
    return list(
        db.session.scalars(
            sa.select(WorkflowRun.id)
            .where(WorkflowRun.status == "waiting", WorkflowRun.wait_until <= (now or utcnow()))
            .order_by(WorkflowRun.wait_until)
            .limit(limit)
        )
    )


def resume_reply(session_id: str, chat: str, message: dict[str, Any]) -> WorkflowRun | None:
    """Resume the run waiting on this chat with ``message``; the run, or None."""
    run_id = waiting_for_reply(session_id, chat)
    row = take(run_id, reply=True) if run_id else None
    if row is None:
        return None
    resume(row, Reply(message.get("text") or "", message))
    return row


def resume_due(run_id: str) -> WorkflowRun | None:
    row = take(run_id)
    if row is not None:
        resume(row, Timeout())
    return row


def resume_now(run_id: str) -> WorkflowRun | None:
    """Fire a waiting run's timeout now (the studio's "skip the wait"): its time is moved
    to now and it is resumed as the timer worker resumes a due run, claimed once, in the
    caller's transaction. None if it no longer waits."""
    db.session.execute(
        sa.update(WorkflowRun)
        .where(
            WorkflowRun.id == run_id,
            WorkflowRun.status == "waiting",
            WorkflowRun.wait_until.is_not(None),
        )
        .values(wait_until=utcnow())
        .execution_options(synchronize_session=False)
    )
    return resume_due(run_id)


def retry(row: WorkflowRun) -> ServerContext:
    """Run a failed run again from the node that failed."""
    if row.status != "failed":
        raise Conflict(
            f"Run {row.id} is {row.status}; only a failed run can be retried.",
            code="run_not_failed",
        )
    ctx = _context(row, 0)
    run = _engine.retry(
        Run.from_dict(row.state), ctx, workflow=store.load(row.workflow_id, row.version)
    )
    row.finished_at = None  # it ends anew, and says so again (workflow.completed/failed)
    _store(row, run)
    return ctx


def cancel(row: WorkflowRun, *, reason: str = "cancelled by request") -> WorkflowRun:
    if row.status not in ("waiting", "running"):
        raise Conflict(
            f"Run {row.id} is {row.status}; only a waiting run can be cancelled.",
            code="run_not_open",
        )
    won = db.session.execute(
        sa.update(WorkflowRun)
        .where(WorkflowRun.id == row.id, WorkflowRun.status.in_(("waiting", "running")))
        .values(
            status="cancelled",
            error=reason,
            wait_kind=None,
            wait_session_id=None,
            wait_chat=None,
            wait_until=None,
            finished_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not won:
        raise Conflict(f"Run {row.id} ended meanwhile.", code="run_not_open")
    db.session.refresh(row)
    state = dict(row.state)
    state.update(
        status="cancelled", wait=None, error=reason, finished_at=row.finished_at.isoformat()
    )
    row.state = state
    return row


def _context(
    row: WorkflowRun, depth: int, *, chain: int | None = None, trigger: dict[str, Any] | None = None
) -> ServerContext:
    trigger = trigger if trigger is not None else (row.state or {}).get("trigger") or {}
    if chain is None:
        chain = chain_of(trigger)
    return ServerContext(
        owner_id=row.owner_id,
        run_id=row.id,
        call_workflow=functools.partial(_call, chain=chain),
        depth=depth,
        simulator=row.session_id if trigger.get("simulator") else None,
    )


def _call(
    workflow: Workflow, input: dict[str, Any], *, caller: dict[str, Any], depth: int, chain: int
) -> dict[str, Any]:
    """``call_workflow``: a child run, stored as a run of its own, that must finish now.
    It is as far down an event chain as its caller."""
    trigger = {
        "type": "call",
        "input": input,
        "chat": caller.get("chat"),
        "session": caller.get("session"),
    }
    if chain:
        trigger["chain"] = chain
    child, _ctx = start(workflow, trigger, parent_id=caller.get("run_id"), depth=depth)
    if child.status == "waiting":
        raise NodesError(
            f"workflow {workflow.name!r} waited; call_workflow needs a "
            "workflow that finishes at once (start it by its own trigger "
            "instead)"
        )
    state = child.state
    return {
        "run_id": child.id,
        "status": child.status,
        "result": state.get("result"),
        "vars": state.get("vars"),
        "error": child.error,
    }


def _reply_target(row: WorkflowRun, wait: dict[str, Any]) -> tuple[str | None, str | None]:
    """The (session id, chat JID) a reply comes in on, as inbound messages name them:
    a wait may name its chat as typed (``0812…``) and its session by label."""
    session = wait.get("session") or row.session_id
    if session and session != row.session_id:
        try:
            session = _context(row, 0).session(session).id
        except NodesError:
            pass  # never resumed by a reply; its timeout still ends the wait
    chat = wait.get("chat")
    try:
        chat = to_jid(chat, current_app.config["KABAR"]["PHONE_REGION"]) if chat else None
    except InvalidPhone:
        pass
    return session, chat


def _store(row: WorkflowRun, run: Run) -> None:
    ended = run.finished and row.finished_at is None
    wait = run.wait or {}
    row.status = run.status
    row.current = run.current
    row.error = run.error
    row.wait_kind = wait.get("kind") if run.status == "waiting" else None
    reply = run.status == "waiting" and wait.get("kind") == "reply"
    row.wait_session_id, row.wait_chat = _reply_target(row, wait) if reply else (None, None)
    row.wait_until = run.due if run.status == "waiting" else None
    row.finished_at = utcnow() if run.finished else None
    row.state = run.to_dict()
    if ended:
        _announce(row, run)


def _announce(row: WorkflowRun, run: Run) -> None:
    """``workflow.completed`` / ``workflow.failed``, in the run's transaction."""
    from server import eventlog  # the event log feeds workflows: import when used

    common = {
        "run_id": row.id,
        "workflow": run.workflow["name"],
        "version": row.version,
        "trigger": row.trigger_type,
        "chain": chain_of(run.trigger),
    }
    if run.status == "failed":
        log.warning("workflow run %s failed at %s: %s", row.id, run.current, run.error)
        event: WorkflowCompleted | WorkflowFailed = WorkflowFailed(
            **common, node=run.current, error=run.error or ""
        )
    else:
        event = WorkflowCompleted(**common, result=run.result)
    session = (
        memo(("session", row.session_id), lambda: db.session.get(WaSession, row.session_id))
        if row.session_id
        else None
    )
    eventlog.record(event, session, owner_id=row.owner_id)
