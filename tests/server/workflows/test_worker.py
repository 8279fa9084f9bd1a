"""The inbox worker's group commit (``server/workflows/worker.py`` ``handle_many``):
several items in one transaction, a failing item costing the others nothing, and a run
that may block on the network never holding a group's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from server.events import InboundMessage, MessageReceived, Party
from server.models import OutboxMessage, WaSession, WorkflowInbox, db
from server.runtime import sink
from server.whatsapp.transport import new_message_id
from server.workflows import inbox, worker
from server.workflows.context import ServerContext

ECHO = {
    "name": "echo",
    "trigger": {"type": "message", "keyword": ["halo"]},
    "start": "answer",
    "nodes": {"answer": {"type": "send", "params": {"text": "echo {{ trigger.text }}"}}},
}
CALLER = {
    "name": "caller",
    "trigger": {"type": "message", "keyword": ["cek"]},
    "start": "call",
    "nodes": {
        "call": {
            "type": "http_request",
            "params": {"url": "https://api.example.com/check"},
            "next": {"next": "answer", "error": "answer"},
        },
        "answer": {"type": "send", "params": {"text": "checked {{ trigger.text }}"}},
    },
}


@pytest.fixture
def session_id(app, operator):
    """A sandbox session's row; no runtime: the test plays the inbox worker."""
    session = WaSession(
        id="s-worker", label="worker", transport="sandbox", owner_id=operator.id, status="connected"
    )
    db.session.add(session)
    db.session.commit()
    return session.id


def inbound(session_id: str, texts: list[str]) -> list[int]:
    """Store a message from a different contact per text, as the runtime's sink does;
    their inbox item ids, oldest first."""
    for index, text in enumerate(texts):
        phone = f"62812000000{index:02d}"
        party = Party(jid=f"{phone}@s.whatsapp.net", phone=phone, name="Budi")
        message = InboundMessage(
            id=new_message_id(),
            chat=party,
            sender=party,
            timestamp=datetime.now(UTC),
            kind="text",
            text=text,
        )
        sink.handle(session_id, MessageReceived(message=message))
    ids = list(db.session.scalars(sa.select(WorkflowInbox.id).order_by(WorkflowInbox.id)))
    db.session.rollback()
    return ids


def queued() -> list[str]:
    rows = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.seq)).all()
    db.session.rollback()
    return [row.payload["text"] for row in rows]


def left() -> list[tuple[int, bool, str | None]]:
    rows = db.session.execute(
        sa.select(WorkflowInbox.attempts, WorkflowInbox.failed, WorkflowInbox.error)
    ).all()
    db.session.rollback()
    return [tuple(row) for row in rows]


@pytest.fixture
def commits(app):
    counted: list[int] = []
    listener = lambda _connection: counted.append(1)  # noqa: E731
    sa.event.listen(db.engine, "commit", listener)
    yield counted
    sa.event.remove(db.engine, "commit", listener)


def test_a_group_answers_every_message_in_one_commit(
    session_id, upload, operator_headers, commits, monkeypatch
):
    monkeypatch.setattr(worker, "GROUP_SECONDS", 3600)  # a busy machine ends none early
    upload(operator_headers, ECHO)
    ids = inbound(session_id, [f"halo {n}" for n in range(6)])
    commits.clear()
    worker.handle_many(ids)
    assert queued() == [f"echo halo {n}" for n in range(6)]
    assert left() == []
    assert len(commits) == 1


def test_a_failing_item_is_kept_and_the_others_are_handled(
    session_id, upload, operator_headers, monkeypatch
):
    upload(operator_headers, ECHO)
    ids = inbound(session_id, ["halo 1", "halo boom", "halo 3"])
    handle = inbox.handle

    def fragile(item):
        if item.payload["message"]["text"] == "halo boom":
            raise RuntimeError("a bug in this item")
        return handle(item)

    monkeypatch.setattr(inbox, "handle", fragile)
    worker.handle_many(ids)
    assert queued() == ["echo halo 1", "echo halo 3"]
    # counted once (its own transaction's attempt), kept to be tried again
    assert left() == [(1, False, "RuntimeError: a bug in this item")]


def test_a_run_that_may_block_is_never_handled_after_others_in_a_group(
    session_id, upload, operator_headers, monkeypatch
):
    upload(operator_headers, ECHO)
    upload(operator_headers, CALLER)
    ids = inbound(session_id, ["halo 1", "halo 2", "cek 3", "halo 4"])
    seen: list[tuple[int, int]] = []
    count = sa.select(sa.func.count()).select_from(OutboxMessage)

    def http(self, *args, **kwargs):
        # the replies this transaction holds, and those committed, when the call goes out
        with db.engine.connect() as other:
            seen.append((db.session.scalar(count), other.scalar(count)))
        raise RuntimeError("no network in tests")

    monkeypatch.setattr(ServerContext, "http", http)
    worker.handle_many(ids)
    assert seen == [(2, 2)]  # the two replies before it committed, nothing held
    assert queued() == ["echo halo 1", "echo halo 2", "checked cek 3", "echo halo 4"]
    assert left() == []
