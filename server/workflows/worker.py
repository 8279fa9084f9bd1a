"""The runtime's workflow workers.

- ``InboxWorker`` (several, each owning a fixed set of inbox shards): handles inbox items
  oldest first, one transaction each. A chat's items share a shard, so one chat's
  messages resume and start runs in the order they came, while other chats go on in
  parallel.
- ``TimerWorker``: resumes waiting runs whose time has come (a reply timeout, the end of
  a delay, a retry's backoff), found by the index on ``wait_until``, so after a restart
  every overdue run fires.

An item that fails to be handled (a database error, a bug; never a node failure, which
the engine routes) is rolled back, counted and retried; after ``MAX_ATTEMPTS`` it is
kept as failed with its error, and the items after it go on.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask

from server.models import WorkflowInbox, WorkflowRun, db, utcnow
from server.runtime import wakeup
from server.runtime.worker import Worker
from server.workflows import inbox, runner

log = logging.getLogger(__name__)

BATCH = 50
IDLE_SECONDS = 1.0
# Every new wait is announced (a notify follows each run the runtime or the web moves on,
# and wakes this worker), so the timer worker sleeps until the next wait is due and looks
# without one only this often, as a safety net.
TIMER_IDLE_SECONDS = 10.0


class InboxWorker(Worker):
    """Items stored by the runtime wake these workers at once; an item another process
    stored without a notify (an event the web recorded) is found by a poll. Only the
    first worker polls every second, for every shard, and wakes the others when any has
    work; they look by themselves only every ``TIMER_IDLE_SECONDS``."""

    def __init__(self, app: Flask, index: int, count: int):
        super().__init__(app)
        self.name = self.thread.name = f"kabar-workflows-{index}"
        self.shards = [shard for shard in range(inbox.SHARDS) if shard % count == index]
        self.lookout = index == 0
        self.siblings: list[InboxWorker] = []  # the first worker's: whom its poll wakes

    def step(self) -> float:
        ids = list(
            db.session.scalars(
                sa.select(WorkflowInbox.id)
                .where(WorkflowInbox.shard.in_(self.shards), WorkflowInbox.failed.is_(False))
                .order_by(WorkflowInbox.id)
                .limit(BATCH)
            )
        )
        db.session.rollback()  # end the read; each item gets its own transaction
        for item_id in ids:
            if self.stopping.is_set():
                return 0
            handle_one(item_id)
        if len(ids) == BATCH:
            return 0
        if not self.lookout:
            return TIMER_IDLE_SECONDS
        if self.siblings:
            theirs = db.session.scalar(
                sa.select(WorkflowInbox.id)
                .where(WorkflowInbox.shard.not_in(self.shards), WorkflowInbox.failed.is_(False))
                .limit(1)
            )
            db.session.rollback()
            if theirs is not None:
                for sibling in self.siblings:
                    sibling.wake.set()
        return IDLE_SECONDS


def handle_one(item_id: int) -> None:
    """Handle one inbox item in its own transaction, and remove it."""
    item = db.session.get(WorkflowInbox, item_id)
    if item is None:
        return
    try:
        touched = inbox.handle(item)
        db.session.delete(item)
        db.session.commit()
    except Exception as exc:  # kept on the item; never stops the worker
        db.session.rollback()
        _failed(item_id, exc)
        return
    if touched:
        wakeup.notify()  # the runs may have queued messages


def _failed(item_id: int, exc: Exception) -> None:
    item = db.session.get(WorkflowInbox, item_id)
    if item is None:
        return
    item.attempts += 1
    item.error = f"{type(exc).__name__}: {exc}"[:2000]
    item.failed = item.attempts >= inbox.MAX_ATTEMPTS
    db.session.commit()
    log.error(
        "workflow inbox item %s failed (attempt %d): %s",
        item_id,
        item.attempts,
        item.error,
        exc_info=exc,
    )


def _fail_run(run_id: str, exc: Exception) -> None:
    """A run whose time came but that cannot be resumed at all (its version is gone, its
    state unreadable) fails with the reason, rather than being retried every second."""
    db.session.execute(
        sa.update(WorkflowRun)
        .where(WorkflowRun.id == run_id, WorkflowRun.status == "waiting")
        .values(
            status="failed",
            error=f"could not be resumed: {type(exc).__name__}: {exc}"[:2000],
            wait_kind=None,
            wait_session_id=None,
            wait_chat=None,
            wait_until=None,
            finished_at=utcnow(),
        )
    )
    db.session.commit()


class TimerWorker(Worker):
    name = "kabar-workflow-timers"

    def step(self) -> float:
        ids = runner.due(BATCH)
        db.session.rollback()
        for run_id in ids:
            if self.stopping.is_set():
                return 0
            try:
                resumed = runner.resume_due(run_id)
                db.session.commit()
            except Exception as exc:  # that run fails, the others go on
                db.session.rollback()
                log.exception("resuming workflow run %s failed", run_id)
                _fail_run(run_id, exc)
                continue
            if resumed is not None:
                wakeup.notify()
        if len(ids) == BATCH:
            return 0
        return self._until_next()

    def _until_next(self) -> float:
        """Sleep until the next run is due (a new wait wakes this worker sooner)."""
        soonest = db.session.scalar(
            sa.select(sa.func.min(WorkflowRun.wait_until)).where(WorkflowRun.status == "waiting")
        )
        db.session.rollback()
        if soonest is None:
            return TIMER_IDLE_SECONDS
        return max(0.0, min(TIMER_IDLE_SECONDS, (soonest - utcnow()).total_seconds()))
