"""/api/v1/workflows: upload, validate, enable and disable workflows; start runs by hand."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView

from server import fields
from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.api.runs import RunSchema
from server.errors import ValidationFailed
from server.models import Workflow
from server.workflows import operations, store, versions
from server.workflows.schemas import StartSchema

blp = Blueprint(
    "workflows",
    __name__,
    url_prefix="/api/v1/workflows",
    description="Workflows: JSON files of chained nodes, run by the gateway (docs/workflows.md).",
)


class WorkflowSchema(ma.Schema):
    id = ma.fields.Integer(
        metadata={
            "description": "Also accepted where a name is: tells "
            "two users' workflows of one name apart."
        }
    )
    name = ma.fields.String(metadata={"description": "Unique among its owner's workflows."})
    description = ma.fields.String()
    version = ma.fields.Integer(
        metadata={"description": "The current version; runs keep the version they started with."}
    )
    enabled = ma.fields.Boolean()
    source = ma.fields.String(
        metadata={
            "description": "file (the workflows folder), api, "
            "or builtin (defined by Kabar, such as reply-watch)."
        }
    )
    path = ma.fields.String(allow_none=True)
    triggers = ma.fields.List(ma.fields.Dict())
    hook = ma.fields.Function(
        lambda w: (
            {"url": f"/api/v1/hooks/{w.name}", "token_prefix": w.hook_token_prefix}
            if store.has_hook(w)
            else None
        ),
        allow_none=True,
    )
    owner = ma.fields.Function(
        lambda w: w.owner_id,
        metadata={"description": "The owner's user id; null: global (sees every session)."},
    )
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class UploadedSchema(WorkflowSchema):
    created = ma.fields.Boolean(attribute="answer_created")
    hook_token = ma.fields.String(
        attribute="answer_hook_token",
        allow_none=True,
        metadata={
            "description": "The hook token (X-Kabar-Token), shown this once when it is made."
        },
    )


class WorkflowDetailSchema(WorkflowSchema):
    doc = ma.fields.Dict(
        attribute="answer_doc", metadata={"description": "The document of the version asked for."}
    )
    versions = ma.fields.List(ma.fields.Dict(), attribute="answer_versions")


class UploadArgs(ma.Schema):
    enable = ma.fields.Boolean(
        load_default=None,
        metadata={
            "description": "Enable (true) or disable (false) it too; default: as it was (a new "
            "workflow starts disabled)."
        },
    )


class VersionArgs(ma.Schema):
    version = fields.RowId(load_default=None)


class ValidSchema(ma.Schema):
    valid = ma.fields.Boolean()
    name = ma.fields.String()
    nodes = ma.fields.Integer()
    triggers = ma.fields.List(ma.fields.Dict())


class TokenSchema(ma.Schema):
    hook_token = ma.fields.String(metadata={"description": "Shown this once."})


class ReloadSchema(ma.Schema):
    folder = ma.fields.String(allow_none=True)
    added = ma.fields.List(ma.fields.Dict())
    updated = ma.fields.List(ma.fields.Dict())
    unchanged = ma.fields.List(ma.fields.Dict())
    errors = ma.fields.List(ma.fields.Dict())


def _document():
    """The workflow document: a JSON body, or a file uploaded as ``file``."""
    if "file" in request.files:
        return store.parse_json(request.files["file"].read(), where="the uploaded file")
    if not request.data:
        raise ValidationFailed(
            "Send the workflow as a JSON body, or as a file named file.",
            code="workflow_invalid",
            errors={"$": ["Nothing was sent."]},
        )
    return store.parse_json(request.get_data(), where="the body")


@blp.route("")
class Workflows(MethodView):
    @blp.requires("workflows:manage")
    @blp.arguments(PageArgs, location="query")
    @blp.response(200, page_schema(WorkflowSchema))
    def get(self, args):
        """My workflows (admins: all, global ones included)."""
        return paginate(
            operations.visible(), Workflow.id, cursor=args["cursor"], limit=args["limit"]
        )

    @blp.requires("workflows:manage")
    @blp.arguments(UploadArgs, location="query")
    @blp.response(200, UploadedSchema)
    @blp.alt_response(422, description="Not valid: errors are keyed by JSON path.")
    def post(self, args):
        """Upload a workflow (JSON body or multipart file). A new name creates it
        (disabled unless enable=true); a known name gets a new version if it changed."""
        row, created, token = operations.upload(_document(), enable=args["enable"])
        return _with(row, created=created, hook_token=token)


@blp.route("/validate")
class Validate(MethodView):
    @blp.requires("workflows:manage")
    @blp.response(200, ValidSchema)
    @blp.alt_response(422, description="Not valid: errors are keyed by JSON path.")
    def post(self):
        """Check a workflow without storing it."""
        checked = store.check(_document())
        return {
            "valid": True,
            "name": checked.name,
            "nodes": len(checked.nodes),
            "triggers": checked.triggers,
        }


@blp.route("/reload")
class Reload(MethodView):
    @blp.requires("workflows:manage")
    @blp.response(200, ReloadSchema)
    def post(self):
        """Read the workflows folder again (administrators): changed files become new
        versions; new ones start disabled."""
        return operations.reload()


@blp.route("/<workflow>")
class WorkflowByName(MethodView):
    @blp.requires("workflows:manage")
    @blp.arguments(VersionArgs, location="query")
    @blp.response(200, WorkflowDetailSchema)
    def get(self, args, workflow):
        """One workflow with its document (the current version, or ?version=) and its
        versions."""
        row = operations.get(workflow)
        return _with(row, doc=store.doc_of(row, args["version"]), versions=operations.versions(row))

    @blp.requires("workflows:manage")
    @blp.response(204)
    def delete(self, workflow):
        """Delete it with its versions and runs (409 while runs still wait in it)."""
        operations.delete(operations.get(workflow))


@blp.route("/<workflow>/enable")
class Enable(MethodView):
    @blp.requires("workflows:manage")
    @blp.response(200, WorkflowSchema)
    def post(self, workflow):
        """Start listening to its triggers."""
        return operations.set_enabled(operations.get(workflow), True)


@blp.route("/<workflow>/disable")
class Disable(MethodView):
    @blp.requires("workflows:manage")
    @blp.response(200, WorkflowSchema)
    def post(self, workflow):
        """Stop starting new runs; runs under way go on (cancel them to stop them)."""
        return operations.set_enabled(operations.get(workflow), False)


@blp.route("/<workflow>/hook-token")
class HookToken(MethodView):
    @blp.requires("workflows:manage")
    @blp.response(200, TokenSchema)
    def post(self, workflow):
        """Replace the hook token; the old one stops working at once."""
        return {"hook_token": operations.rotate_token(operations.get(workflow))}


@blp.route("/<workflow>/runs")
class StartRun(MethodView):
    @blp.requires("workflows:manage")
    @blp.arguments(StartSchema)
    @blp.response(201, RunSchema)
    def post(self, body, workflow):
        """Start a run by hand (trigger.type manual, trigger.input); it runs until it
        waits or ends before this answers."""
        run, _ctx = operations.run_manually(operations.get(workflow), **body)
        return run


class DiffSchema(ma.Schema):
    old = ma.fields.Integer()
    new = ma.fields.Integer()
    nodes = ma.fields.Dict(
        metadata={
            "description": "added and removed (node ids), changed "
            "(id and the parts that differ: params, next, ...)."
        }
    )
    edges = ma.fields.Dict(
        metadata={
            "description": "added and removed connections, each [from node, output, to node]."
        }
    )
    top = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "Other top-level fields that differ (trigger, start, ...)."},
    )
    moved = ma.fields.Boolean(
        metadata={
            "description": "The studio's node positions differ (layout only: no change of meaning)."
        }
    )
    same = ma.fields.Boolean()
    json = ma.fields.List(
        ma.fields.String(),
        metadata={
            "description": "A unified diff of the two documents as indented JSON, keys sorted."
        },
    )


@blp.route("/<workflow>/versions/<int:old>/diff/<int:new>")
class VersionDiff(MethodView):
    @blp.requires("workflows:manage")
    @blp.response(200, DiffSchema)
    def get(self, workflow, old, new):
        """How version ``new`` differs from version ``old``: the graph and the JSON."""
        return versions.compare(operations.get(workflow), old, new)


@blp.route("/<workflow>/versions/<int:version>/restore")
class RestoreVersion(MethodView):
    @blp.requires("workflows:manage")
    @blp.response(200, WorkflowSchema)
    def post(self, workflow, version):
        """Save that version's document again as the next version (noted "restored from
        version N"); 409 version_is_current when it is the current document."""
        return versions.restore(operations.get(workflow), version)


def _with(row: Workflow, **extra) -> Workflow:
    """The row with what this answer adds to it (not stored)."""
    for key, value in extra.items():
        setattr(row, f"answer_{key}", value)
    return row
