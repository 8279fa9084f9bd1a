"""What reaches workflows: inbound messages, gateway events and schedule firings.

``fan_out`` runs inside ``eventlog.record``, so an event and its inbox item are stored
in one transaction. ``handle`` takes one item, in one transaction with everything the
runs it touches do, and deletes it: an item is handled once, even across a crash.

For an inbound message, in this order:

1. the run waiting for a reply in that chat (the oldest, if several) is resumed, and
   the message is its answer: nothing else sees it;
2. otherwise every enabled workflow whose message trigger matches starts a run
   (a workflow starts once per message however many of its triggers match);
3. ``fallback`` triggers start only when nothing above took the message (the help text
   for a message that matched no command);
4. workflows with an event trigger for ``message.received`` start as for any event.

A workflow owned by a user only sees that user's events: its sessions' and those of its
runs with no session. A global one (an admin's) sees all. A studio simulator's session
is seen by the one workflow its simulator runs, enabled or not, and by no other
(``simulator.workflows_for``).
"""

from __future__ import annotations

import logging
import zlib
from typing import Any

import sqlalchemy as sa

from nodes import match_message
from server.models import (
    StoredEvent,
    WaSession,
    Workflow,
    WorkflowInbox,
    db,
    memo,
    utcnow,
)
from server.webhooks.fanout import chat_of, matches
from server.workflows import limits, runner, simulator

log = logging.getLogger(__name__)

SHARDS = 64
RUN_ENDS = ("workflow.completed", "workflow.failed")
# Old news: a message recovered from the history sync is stored and sent to webhooks,
# but never starts, resumes or is answered by a workflow (not even a "*" event trigger).
NEVER_TO_WORKFLOWS = {"message.backfilled"}
MAX_ATTEMPTS = 5


def fan_out(row: StoredEvent, session: WaSession | None) -> WorkflowInbox | None:
    """Add the inbox item for ``row`` if a workflow could care (in the caller's
    transaction). Every inbound message is added: a waiting run may want it."""
    if row.type == "message.received":
        message = row.data.get("message") or {}
        if message.get("from_me") or session is None:
            return None
        key = f"{session.id}/{message['chat']['jid']}"
        return _add(
            "message",
            key,
            session.id,
            {"event_id": row.id, "message": trigger_message(session, message)},
        )
    if row.type in NEVER_TO_WORKFLOWS:
        return None
    with db.session.no_autoflush:
        listening = memo(
            ("workflow event types",),
            lambda: db.session.scalars(
                sa.select(Workflow.event_types).where(Workflow.enabled.is_(True))
            ).all(),
        )
    if not any(matches(types, row.type) for types in listening if types):
        return None
    chat = chat_of(row.type, row.data)
    key = f"{row.session_id or '-'}/{chat}" if chat else (row.session_id or "-")
    return _add(
        "event",
        key,
        row.session_id,
        {
            "event_id": row.id,
            "type": row.type,
            "data": row.data,
            "chat": chat,
            "owner_id": row.owner_id,
        },
    )


def add_schedule(workflow_id: int, index: int) -> WorkflowInbox:
    return _add(
        "schedule",
        f"schedule/{workflow_id}",
        None,
        {"workflow_id": workflow_id, "trigger": index, "fired_at": utcnow().isoformat()},
    )


def trigger_message(session: WaSession, message: dict[str, Any]) -> dict[str, Any]:
    """What a message-triggered run sees as ``trigger`` (before the match adds
    ``command``, ``args``, ``rest``): the chat to answer, who wrote, what they wrote."""
    sender, chat = message.get("sender") or {}, message.get("chat") or {}
    media = message.get("media")
    if isinstance(media, dict):
        media = {k: v for k, v in media.items() if k != "handle"}
    return {
        "session": session.id,
        "session_label": session.label,
        "chat": chat.get("jid"),
        "chat_phone": chat.get("phone"),
        "sender": sender.get("phone") or sender.get("jid"),
        "sender_jid": sender.get("jid"),
        "sender_name": sender.get("name"),
        "is_group": bool(message.get("is_group")),
        "message_id": message.get("id"),
        "kind": message.get("kind"),
        "text": message.get("text") or "",
        "media": media,
        "location": message.get("location"),
        "quoted_id": message.get("quoted_id"),
        "timestamp": message.get("timestamp"),
    }


def handle(item: WorkflowInbox) -> int:
    """Handle one item (the caller commits). Returns how many runs it started or resumed."""
    payload = item.payload
    if item.kind == "schedule":
        workflow = db.session.get(Workflow, payload["workflow_id"])
        if workflow is None or not workflow.enabled:
            return 0
        runner.start(
            workflow,
            {
                "type": "schedule",
                "fired_at": payload["fired_at"],
                "trigger_index": payload["trigger"],
            },
        )
        return 1
    session = session_of(item.session_id) if item.session_id else None
    if item.kind == "message":
        if session is None:
            return 0  # the session was deleted meanwhile
        return _message(session, payload["message"], payload["event_id"])
    return _event(
        session,
        payload["type"],
        payload["data"],
        payload.get("chat"),
        payload["event_id"],
        owner_id=payload.get("owner_id"),
    )


def _message(session: WaSession, message: dict[str, Any], event_id: str) -> int:
    if runner.resume_reply(session.id, message["chat"], message) is not None:
        return 1
    started = 0
    enabled = _enabled(session)
    fallbacks: list[tuple[Workflow, dict[str, Any]]] = []
    for workflow in enabled:
        for trigger in workflow.triggers:
            data = match_message(trigger, message)
            if data is None:
                continue
            if trigger.get("fallback"):
                fallbacks.append((workflow, data))
            else:
                runner.start(workflow, data)
                started += 1
            break
    if not started:
        for workflow, data in fallbacks:
            runner.start(workflow, data)
            started += 1
    return started + _event(
        session, "message.received", {"message": message}, message["chat"], event_id, enabled
    )


def _event(
    session: WaSession | None,
    event_type: str,
    data: dict[str, Any],
    chat: str | None,
    event_id: str,
    enabled: list[Workflow] | None = None,
    *,
    owner_id: int | None = None,
) -> int:
    started = 0
    chain = 0
    if event_type in RUN_ENDS:
        chain = runner.chain_of(data) + 1  # a run started by a run's end is one further
        if limits.past_chain_limit(chain - 1):
            return 0  # the end of a run refused for its chain starts nothing
    for workflow in _enabled(session, owner_id) if enabled is None else enabled:
        if event_type.startswith("workflow.") and data.get("workflow") == workflow.name:
            continue  # a workflow never handles its own run's end: no loops
        for trigger in workflow.triggers:
            if trigger.get("type") != "event" or not matches(trigger["types"], event_type):
                continue
            if trigger.get("session") and (
                session is None or trigger["session"] not in (session.id, session.label)
            ):
                continue
            trigger = {
                "type": "event",
                "event": event_type,
                "event_id": event_id,
                "data": data,
                "chat": chat,
                "session": session.id if session else None,
            }
            if chain:
                trigger["chain"] = chain
            started += limits.start_for_event(workflow, trigger)
            break
    return started


def session_of(session_id: str) -> WaSession | None:
    """The session, read once per group commit (``worker.handle_many``; runs change no
    session): the identity map holds it only weakly between items."""
    return memo(("session", session_id), lambda: db.session.get(WaSession, session_id))


def _enabled(session: WaSession | None, owner_id: int | None = None) -> list[Workflow]:
    """Enabled workflows that may see an event of ``session`` (or, with no session, of
    the tenant ``owner_id``), oldest first: that tenant's own and the global ones. Asked
    once per group commit (runs enable and disable no workflow)."""
    key = ("enabled workflows", session.id if session is not None else None, owner_id)
    return memo(key, lambda: _enabled_now(session, owner_id))


def _enabled_now(session: WaSession | None, owner_id: int | None) -> list[Workflow]:
    if session is not None and session.transport == "sandbox":
        pinned = simulator.workflows_for(session.id)
        if pinned is not None:
            return pinned
    owner_id = session.owner_id if session is not None else owner_id
    mine = Workflow.owner_id == owner_id if owner_id is not None else sa.false()
    query = (
        sa.select(Workflow)
        .where(Workflow.enabled.is_(True), sa.or_(Workflow.owner_id.is_(None), mine))
        .order_by(Workflow.id)
    )
    return list(db.session.scalars(query))


def _add(kind: str, key: str, session_id: str | None, payload: dict[str, Any]) -> WorkflowInbox:
    key = key[:200]
    item = WorkflowInbox(
        kind=kind,
        ordering_key=key,
        shard=zlib.crc32(key.encode()) % SHARDS,
        session_id=session_id,
        payload=payload,
    )
    db.session.add(item)
    return item
