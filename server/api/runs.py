"""/api/v1/runs: workflow run history, traces, cancel and retry."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.models import RUN_STATUSES, WorkflowRun
from server.workflows import operations

blp = Blueprint(
    "runs",
    __name__,
    url_prefix="/api/v1/runs",
    description="Workflow runs: what each step did, where a run waits.",
)


def _state(key: str):
    return ma.fields.Function(lambda run: run.state.get(key))


class RunSchema(ma.Schema):
    id = ma.fields.String()
    workflow = ma.fields.Function(lambda run: run.state.get("workflow", {}).get("name"))
    version = ma.fields.Integer()
    status = ma.fields.String(metadata={"description": ", ".join(RUN_STATUSES)})
    trigger_type = ma.fields.String()
    session_id = ma.fields.String(allow_none=True)
    chat = ma.fields.String(allow_none=True)
    current = ma.fields.String(
        allow_none=True,
        metadata={"description": "The node the run is at (waiting), ended at, or failed at."},
    )
    wait = ma.fields.Function(
        lambda run: _wait(run),
        metadata={
            "description": "What a waiting run waits for: {node, kind (reply|until), until, chat}."
        },
    )
    error = ma.fields.String(allow_none=True)
    parent_id = ma.fields.String(allow_none=True)
    started_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()
    finished_at = ma.fields.DateTime(allow_none=True)


class RunDetailSchema(RunSchema):
    trigger = _state("trigger")
    vars = _state("vars")
    result = _state("result")
    trace = _state("trace")
    trace_dropped = _state("trace_dropped")
    steps = _state("steps")


class RunListArgs(PageArgs):
    workflow = ma.fields.String(metadata={"description": "Only runs of this workflow."})
    status = ma.fields.String(validate=ma.validate.OneOf(RUN_STATUSES))
    session = ma.fields.String(metadata={"description": "Only runs of this session id."})
    chat = ma.fields.String(metadata={"description": "Only runs of this chat JID."})


@blp.route("")
class Runs(MethodView):
    @blp.requires("workflows:manage")
    @blp.arguments(RunListArgs, location="query")
    @blp.response(200, page_schema(RunSchema))
    def get(self, args):
        """Runs, oldest first (follow next_cursor), filtered."""
        query = operations.runs(
            **{key: args.get(key) for key in ("workflow", "status", "session", "chat")}
        )
        return paginate(query, WorkflowRun.seq, cursor=args["cursor"], limit=args["limit"])


@blp.route("/<run_id>")
class RunById(MethodView):
    @blp.requires("workflows:manage")
    @blp.response(200, RunDetailSchema)
    def get(self, run_id):
        """One run with its trigger, vars and per-node trace (input, output, timing,
        error per step)."""
        return operations.get_run(run_id)


@blp.route("/<run_id>/cancel")
class Cancel(MethodView):
    @blp.requires("workflows:manage")
    @blp.response(200, RunSchema)
    def post(self, run_id):
        """Cancel a waiting run (409 if it already ended)."""
        return operations.cancel_run(operations.get_run(run_id))


@blp.route("/<run_id>/retry")
class Retry(MethodView):
    @blp.requires("workflows:manage")
    @blp.response(200, RunDetailSchema)
    def post(self, run_id):
        """Run a failed run again from the node that failed (409 unless failed)."""
        return operations.retry_run(operations.get_run(run_id))


def _wait(run: WorkflowRun) -> dict | None:
    wait = run.state.get("wait") if run.status == "waiting" else None
    if not wait:
        return None
    return {
        "node": wait.get("node"),
        "kind": wait.get("kind"),
        "until": wait.get("until"),
        "chat": wait.get("chat"),
    }
