"""The studio's simulator: a phone to talk to the workflow being edited, without a phone.

Each user has at most one simulator (``Simulator``): a sandbox session of their own,
made on first use and paired with the sandbox's phone at once, and one virtual contact
who types. What it runs is decided here, and only here:

- The simulator runs the **saved** current version of the workflow open in the studio,
  enabled or not. Its session is seen by that one workflow (``workflows_for``, asked by
  ``inbox._enabled``) and by no other, so other workflows do not answer the simulator.
- Real sessions are untouched: the workflow's ``enabled`` flag is not changed, a
  simulator's session is never the "only session" a real run falls back to, and a run
  started in the simulator (``trigger.simulator``) sends only through the simulator's
  session, whatever session a step names (``context.ServerContext``).

Everything else is the product's own path: the contact speaks through ``sandbox_controls.say``,
runs are started and resumed by the runtime's workers, "skip the wait" is
``runner.resume_now`` (the timer worker's resume, now), a hook is tested through
``operations.start_hook`` with the same request shape as ``POST /api/v1/hooks/{name}``.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from server import inputs, sandbox_controls, sessions
from server.auth import current_principal
from server.errors import Conflict, ValidationFailed
from server.models import (
    WAITING_STATUSES,
    Message,
    OutboxMessage,
    Simulator,
    WaSession,
    Workflow,
    WorkflowRun,
    db,
    utcnow,
)
from server.runtime import commands, wakeup
from server.workflows import operations, runner, store

LABEL = "Studio simulator (sandbox)"
PHONE = "6280000000100"  # the simulator session's own number, on the sandbox only
CONTACT = "6280000000200"  # the virtual contact who types in the simulator
CONTACT_NAME = "Simulator"
HISTORY = 100
STEP_STATUS = {
    "running": "running",
    "waiting": "waiting",
    "completed": "done",
    "failed": "failed",
    "cancelled": "failed",
}


def workflows_for(session_id: str) -> list[Workflow] | None:
    """The workflows a simulator's session answers with (its one workflow, enabled or
    not, or none); None when the session is no simulator's."""
    found = db.session.execute(
        sa.select(Simulator.id, Workflow)
        .outerjoin(Workflow, Workflow.id == Simulator.workflow_id)
        .where(Simulator.session_id == session_id)
    ).first()
    if found is None:
        return None
    return [found[1]] if found[1] is not None else []


def mine() -> Simulator | None:
    """The caller's simulator, if they have one whose session still exists."""
    row = db.session.scalar(
        sa.select(Simulator).where(Simulator.owner_id == current_principal().user.id)
    )
    if row is None:
        return None
    session = db.session.get(WaSession, row.session_id)
    if session is None or session.deleted_at is not None:
        return None
    return row


def session_of(row: Simulator) -> WaSession:
    return db.session.get(WaSession, row.session_id)


def open_for(workflow: Workflow) -> Simulator:
    """The caller's simulator running ``workflow`` (made, started and paired when
    needed; the runtime must be up for that). Commits."""
    principal = current_principal()
    row = db.session.scalar(sa.select(Simulator).where(Simulator.owner_id == principal.user.id))
    session = db.session.get(WaSession, row.session_id) if row is not None else None
    if session is None or session.deleted_at is not None:
        if row is not None:
            db.session.delete(row)
            db.session.flush()
        session = sessions.create(
            principal, label=LABEL, transport="sandbox", settings={"pacing": {"enabled": False}}
        )
        row = Simulator(owner_id=principal.user.id, session_id=session.id, contact=CONTACT)
        db.session.add(row)
    if row.workflow_id != workflow.id:
        row.workflow_id = workflow.id
        _forget(row)  # another workflow's conversation is not this one's
    db.session.commit()
    _paired(session)
    return row


def _paired(session: WaSession) -> None:
    """Start the session if it was stopped, and scan its QR with the sandbox phone."""
    if session.status == "connected":
        return
    if session.desired_state != "running":
        sessions.start(session)
    session = sessions.qr(session, wait=10)
    try:
        sandbox_controls.scan(session, phone=PHONE, push_name="Kabar studio")
    except commands.CommandFailed as exc:
        if exc.code != "already_paired":  # paired a moment ago; the status follows
            raise


def say(workflow: Workflow, text: str) -> Simulator:
    """The virtual contact sends ``text`` to the simulator's session."""
    if not text.strip():
        raise ValidationFailed("Type a message first.", errors={"text": ["Say something."]})
    row = open_for(workflow)
    sandbox_controls.say(session_of(row), sender=row.contact, name=CONTACT_NAME, text=text)
    return row


def vote(workflow: Workflow, poll_id: str, options: list[str]) -> Simulator:
    """The virtual contact votes in a poll the workflow sent."""
    row = open_for(workflow)
    sandbox_controls.vote(
        session_of(row), sender=row.contact, poll_id=poll_id, options=options, name=CONTACT_NAME
    )
    return row


def reset(workflow: Workflow) -> Simulator:
    """A new conversation: the simulator's open runs are cancelled, so are the replies
    they queued that have not gone yet, and what it shows starts after now (the messages
    and runs stay where they are, as any session's). A reply already on its way when the
    reset came is delivered but not shown."""
    row = open_for(workflow)
    for run in db.session.scalars(
        sa.select(WorkflowRun).where(
            WorkflowRun.session_id == row.session_id, WorkflowRun.status.in_(("running", "waiting"))
        )
    ):
        runner.cancel(run, reason="the studio's simulator was reset")
    db.session.execute(
        sa.update(OutboxMessage)
        .where(
            OutboxMessage.session_id == row.session_id,
            OutboxMessage.status.in_(WAITING_STATUSES),
        )
        .values(
            status="cancelled",
            reason="the studio's simulator was reset",
            waiting=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    _forget(row)
    db.session.commit()
    return row


def _forget(row: Simulator) -> None:
    row.message_seq = (
        db.session.scalar(
            sa.select(sa.func.max(Message.seq)).where(Message.session_id == row.session_id)
        )
        or 0
    )
    row.run_seq = (
        db.session.scalar(
            sa.select(sa.func.max(WorkflowRun.seq)).where(WorkflowRun.session_id == row.session_id)
        )
        or 0
    )
    row.outbox_seq = (
        db.session.scalar(
            sa.select(sa.func.max(OutboxMessage.seq)).where(
                OutboxMessage.session_id == row.session_id
            )
        )
        or 0
    )


def skip_wait(workflow: Workflow, run_id: str) -> WorkflowRun:
    """Fire the wait's timeout now: the run takes its timeout branch, durably, as when
    the timer worker finds it due. Only a run of this simulator."""
    run = operations.get_run(run_id)  # 404 for a run the caller may not see
    row = mine()
    if row is None or run.session_id != row.session_id:
        raise Conflict(
            f"Run {run_id} is not a run of your simulator; the simulator skips only its own waits.",
            code="run_not_simulated",
        )
    if run.status != "waiting" or run.wait_until is None:
        raise Conflict(
            f"Run {run_id} is {run.status}, not waiting: there is no wait to skip.",
            code="run_not_waiting",
        )
    resumed = runner.resume_now(run.id)
    if resumed is None:
        db.session.rollback()
        raise Conflict(f"Run {run_id} was resumed meanwhile.", code="run_not_waiting")
    db.session.commit()
    wakeup.notify()
    return resumed


def hook(workflow: Workflow, body: str) -> dict[str, Any]:
    """Send ``body`` to the workflow's HTTP hook, as ``POST /api/v1/hooks/{name}`` does
    (the studio's login stands for the hook token, and the workflow need not be
    enabled); the run is the simulator's. Answers the hook's answer and the run id."""
    if not store.has_hook(workflow):
        raise Conflict(
            f"Workflow {workflow.name!r} has no hook trigger; add "
            '{"type": "hook"} to its triggers first.',
            code="workflow_has_no_hook",
        )
    try:
        parsed = inputs.load_json(body) if body.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        parsed = None  # sent as text, as a hook gets a body that is not JSON
    row = open_for(workflow)
    request = operations.hook_request(
        body=parsed,
        text=body,
        query={},
        headers={
            "Content-Type": "application/json" if parsed is not None else "text/plain",
            "User-Agent": "Kabar studio",
        },
    )
    run, ctx = operations.start_hook(workflow, request, session=row.session_id)
    return {"run_id": run.id, **operations.hook_answer(run, ctx)}


# -- what the pane shows -----------------------------------------------------------------


def state(workflow: Workflow) -> dict[str, Any]:
    """The pane: the simulator's session, the conversation since the last reset, and
    the newest run there with its steps (what ``kabar:studio-step`` carries)."""
    row = mine()
    answer: dict[str, Any] = {
        "workflow": workflow.name,
        "version": workflow.version,
        "ready": False,
        "session": None,
        "contact": CONTACT,
        "messages": [],
        "run": None,
    }
    if row is None:
        return answer
    session = session_of(row)
    answer.update(
        ready=row.workflow_id == workflow.id and session.status == "connected",
        session={"id": session.id, "label": session.label, "status": session.status},
        contact=row.contact,
    )
    if row.workflow_id != workflow.id:
        return answer
    answer["messages"] = _conversation(row)
    run = db.session.scalar(
        sa.select(WorkflowRun)
        .where(
            WorkflowRun.session_id == row.session_id,
            WorkflowRun.workflow_id == workflow.id,
            WorkflowRun.seq > row.run_seq,
        )
        .order_by(WorkflowRun.seq.desc())
        .limit(1)
    )
    if run is not None:
        answer["run"] = describe(run)
    return answer


def _conversation(row: Simulator) -> list[dict[str, Any]]:
    """The messages since the last reset, oldest first, each with what WhatsApp shows
    beside it: a poll's options, the text of the message it quotes."""
    messages = list(
        reversed(
            db.session.scalars(
                sa.select(Message)
                .where(
                    Message.session_id == row.session_id,
                    Message.seq > row.message_seq,
                    ~sa.exists().where(  # a reply of the conversation before the reset
                        OutboxMessage.id == Message.id, OutboxMessage.seq <= row.outbox_seq
                    ),
                )
                .order_by(Message.seq.desc())
                .limit(HISTORY)
            ).all()
        )
    )
    polls = {m.id for m in messages if m.kind == "poll" and m.direction == "out"}
    options: dict[str, dict[str, Any]] = (
        dict(
            db.session.execute(
                sa.select(OutboxMessage.id, OutboxMessage.payload).where(
                    OutboxMessage.id.in_(polls)
                )
            ).all()
        )
        if polls
        else {}
    )
    quoted_ids = {m.quoted_id for m in messages if m.quoted_id}
    quoted: dict[str, str] = (
        dict(
            db.session.execute(
                sa.select(Message.wa_id, Message.text).where(
                    Message.session_id == row.session_id, Message.wa_id.in_(quoted_ids)
                )
            ).all()
        )
        if quoted_ids
        else {}
    )
    return [
        {
            "message": m,
            "poll": (options.get(m.id) or {}).get("poll"),
            "quoted": quoted.get(m.quoted_id, "…") if m.quoted_id else None,
        }
        for m in messages
    ]


def describe(run: WorkflowRun) -> dict[str, Any]:
    """A run as the graph is told about it: its status in the studio's words, the node
    it is at, its wait and its steps (each with what went in and came out)."""
    state = run.state or {}
    wait = state.get("wait") if run.status == "waiting" else None
    steps = [
        {
            "step": entry.get("step"),
            "node": entry.get("node"),
            "type": entry.get("type"),
            "input": entry.get("input"),
            "output": entry.get("output"),
            "data": entry.get("data"),
            "error": entry.get("error"),
            "event": entry.get("event"),
            "wait": entry.get("wait"),
        }
        for entry in state.get("trace") or []
    ]
    return {
        "id": run.id,
        "status": STEP_STATUS.get(run.status, run.status),
        "run_status": run.status,
        "node": run.current if run.status in ("running", "waiting", "failed") else None,
        "error": run.error,
        "version": run.version,
        "wait": {"node": wait.get("node"), "kind": wait.get("kind"), "until": wait.get("until")}
        if wait
        else None,
        "steps": steps,
    }
