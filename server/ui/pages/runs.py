"""Workflow runs: the list filtered by workflow and status (newest first); one run with
its per-node trace, drawn on its workflow's graph with the node it waits at; cancel and
retry. The same ``server.workflows.operations`` calls as /api/v1/runs. Also the overview's
card of waiting runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import render_template, request
from flask_babel import gettext as _

from server import sessions
from server.auth.principal import Principal
from server.errors import ValidationFailed
from server.models import RUN_STATUSES, WaSession, Workflow, WorkflowRun, db, utcnow
from server.pagination import paginate
from server.ui import graph
from server.ui.base import UiBlueprint, back
from server.ui.pages import overview
from server.workflows import operations, store

bp = UiBlueprint("runs", __name__, url_prefix="/runs")

PAGE = 50


def _names() -> dict[int, str]:
    return dict(
        db.session.execute(
            operations.visible()
            .with_only_columns(Workflow.id, Workflow.name)
            .order_by(Workflow.name)
        ).all()
    )


@bp.route("")
@bp.requires("workflows:manage")
def index():
    status = request.args.get("status") or None
    if status is not None and status not in RUN_STATUSES:
        raise ValidationFailed(errors={"status": [_("Unknown status.")]})
    query = operations.runs(workflow=request.args.get("workflow") or None, status=status)
    page = paginate(
        query,
        WorkflowRun.seq,
        cursor=request.args.get("cursor") or None,
        limit=PAGE,
        descending=True,
    )
    context = {"page": page, "names": _names(), "statuses": RUN_STATUSES, "args": request.args}
    if request.args.get("partial"):
        return render_template("ui/runs/_list.html", **context)
    return render_template("ui/runs/index.html", **context)


@bp.route("/<run_id>")
@bp.requires("workflows:manage")
def detail(run_id):
    run = operations.get_run(run_id)
    workflow = db.session.get(Workflow, run.workflow_id)
    doc = store.doc_of(workflow, run.version)
    layout = graph.layout(doc)
    trace = run.state.get("trace") or []
    context = {
        "run": run,
        "workflow": workflow,
        "graph": layout,
        "trace": trace,
        "marks": graph.highlights(layout, trace, status=run.status, current=run.current),
        "wait": run.state.get("wait") if run.status == "waiting" else None,
        "run_session": _session_of(run),
    }
    if request.args.get("partial"):
        return render_template("ui/runs/_live.html", **context)
    return render_template("ui/runs/detail.html", **context)


def _session_of(run):
    """The run's session, named, when the user may see it (else its id is shown)."""
    if not run.session_id:
        return None
    return db.session.scalar(sessions.visible().where(WaSession.id == run.session_id))


@bp.route("/<run_id>/cancel", methods=["POST"])
@bp.requires("workflows:manage")
def cancel(run_id):
    operations.cancel_run(operations.get_run(run_id))
    return back(_("Run cancelled."))


@bp.route("/<run_id>/retry", methods=["POST"])
@bp.requires("workflows:manage")
def retry(run_id):
    row = operations.retry_run(operations.get_run(run_id))
    return back(
        _("Run retried from the node that failed; its status: %(status)s.", status=row.status)
    )


def _card(_principal: Principal) -> dict[str, Any]:
    """Runs waiting (for a reply or a time) and runs that failed in the last 24 hours."""
    waiting = operations.runs(status="waiting")
    failed = operations.runs(status="failed").where(
        WorkflowRun.finished_at >= utcnow() - timedelta(hours=24)
    )
    return {
        "waiting": _count(waiting),
        "failed": _count(failed),
        "oldest": db.session.scalars(waiting.order_by(WorkflowRun.seq).limit(5)).all(),
        "names": _names(),
    }


def _count(query: sa.Select) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0


overview.add_card(
    overview.Card("workflow_runs", "ui/cards/workflow_runs.html", "workflows:manage", _card, 50)
)
