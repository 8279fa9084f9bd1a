"""Bounds on the runs that events start, so workflows cannot start one another forever.

- **Chain**: a run started by the end of another run (``workflow.completed`` /
  ``workflow.failed``) is one further down a chain than that run (``trigger.chain``; a
  ``call_workflow`` child is as far down as its caller). A run that would be further
  than ``KABAR_WORKFLOW_CHAIN_LIMIT`` is not started: it is stored as failed with the
  reason, and its ``workflow.failed`` event starts nothing more. Two workflows that
  start each other stop there.
- **Rate**: one workflow's event triggers start at most
  ``KABAR_WORKFLOW_EVENT_STARTS_PER_MINUTE`` runs in any minute (a loop through other
  events, such as ``message.sent``, is slowed to that). Events past it start no run; the
  first of a streak is stored as a failed run saying so, the rest only logged.

0 turns either bound off.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app

from server.models import Workflow, WorkflowRun, db, utcnow
from server.workflows import runner

log = logging.getLogger(__name__)

RATE_LIMITED = "rate limited: "
"""How the failed run that records refused event starts begins its error."""


def chain_limit() -> int:
    return current_app.config["KABAR"]["WORKFLOW_CHAIN_LIMIT"]


def past_chain_limit(chain: int) -> bool:
    limit = chain_limit()
    return bool(limit) and chain > limit


def start_for_event(workflow: Workflow, trigger: dict[str, Any]) -> int:
    """Start a run for an event trigger within the bounds (or refuse it); how many runs
    were stored (0 or 1), in the caller's transaction."""
    chain = runner.chain_of(trigger)
    if past_chain_limit(chain):
        runner.refuse(
            workflow,
            trigger,
            (
                f"not started: it would be run {chain} of a chain of workflows each started "
                f"by the end of the one before, past the limit of {chain_limit()} "
                "(KABAR_WORKFLOW_CHAIN_LIMIT). Do these workflows start each other in a loop?"
            ),
        )
        return 1
    per_minute = current_app.config["KABAR"]["WORKFLOW_EVENT_STARTS_PER_MINUTE"]
    if per_minute and _starts_in_last_minute_reach(workflow, per_minute):
        if _refusal_under_way(workflow):
            log.warning(
                "workflow %s: event start refused (over %d a minute)", workflow.name, per_minute
            )
            return 0
        runner.refuse(
            workflow,
            trigger,
            (
                f"{RATE_LIMITED}events started {per_minute} runs of this workflow in the last "
                "minute (KABAR_WORKFLOW_EVENT_STARTS_PER_MINUTE); more events in that minute "
                "start none. Do workflows start each other in a loop?"
            ),
        )
        return 1
    runner.start(workflow, trigger)
    return 1


def _event_runs(workflow: Workflow) -> sa.Select:
    # The newest first, along the (workflow_id, seq) index.
    return (
        sa.select(WorkflowRun)
        .where(WorkflowRun.workflow_id == workflow.id, WorkflowRun.trigger_type == "event")
        .order_by(WorkflowRun.seq.desc())
    )


def _starts_in_last_minute_reach(workflow: Workflow, count: int) -> bool:
    """Whether the ``count``-th newest event-started run began less than a minute ago."""
    nth = db.session.scalar(
        _event_runs(workflow).with_only_columns(WorkflowRun.started_at).offset(count - 1).limit(1)
    )
    return nth is not None and nth > utcnow() - timedelta(minutes=1)


def _refusal_under_way(workflow: Workflow) -> bool:
    """Whether the newest event-started run is already a rate-limit refusal."""
    error = db.session.scalar(_event_runs(workflow).with_only_columns(WorkflowRun.error).limit(1))
    return bool(error) and error.startswith(RATE_LIMITED)
