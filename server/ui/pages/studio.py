"""The workflow studio's editor: a workflow's graph, editable in the browser
(``static/studio/editor.js``), over the same services as /api/v1/workflows.

The document stays the truth: the page hands the editor the stored document as it is, the
editor changes only what the person changes, and saving sends the whole document to
``operations.upload`` (an unchanged one is no new version). Checking a draft is
``store.check``, so the editor shows the API's own messages under their JSON paths, plus
each node's outputs as the registry computes them (a switch's come from its cases). Where a
node is drawn is the document's optional ``positions``; a node without one is placed by
``graph.layout``, as the read-only graph draws it.

The simulator pane and the versions pages (``simulator.py``) sit beside this page: the
editor's template includes ``ui/studio/_simulator.html`` when it exists.
"""

from __future__ import annotations

import json
from typing import Any

from flask import jsonify, render_template, request, url_for
from flask_babel import lazy_gettext
from jinja2.utils import htmlsafe_json_dumps

from nodes import registry
from nodes.base import ERROR
from nodes.schema import standalone_params_schema, to_jsonschema
from nodes.triggers import TRIGGERS
from server.errors import KabarError, ValidationFailed, error_body
from server.models import db
from server.ui import graph
from server.ui.base import UiBlueprint
from server.workflows import operations, store

bp = UiBlueprint("studio", __name__, url_prefix="/workflows")

_ = lazy_gettext
TEXTS = {
    # The editor's own words (editor.js says tr("key", {name: ...})), in the user's language.
    "start": _("start"),
    "drag_port": _("%(output)s: drag to a node"),
    "problems_n": _("%(n)s problem(s)"),
    "added": _("Added %(id)s (%(type)s)."),
    "duplicated": _("Duplicated %(source)s as %(id)s."),
    "deleted": _("Deleted %(id)s."),
    "arranged": _("Arranged as the workflow's page draws it."),
    "add_item": _("Add %(type)s: %(summary)s"),
    "no_match": _("No node matches."),
    "reads": _("Reads:"),
    "reads_trigger": _("what started the run (its message, sender, body…)"),
    "reads_args": _("the words after the command"),
    "reads_var": _("the variable %(name)s"),
    "reads_set_by": _("(set by %(ids)s)"),
    "reads_set_by_none": _("(set by no set node yet)"),
    "reads_vars": _("the run's variables"),
    "reads_now": _("the current time"),
    "reads_run": _("this run"),
    "reads_node": _("the output of node %(id)s (%(type)s)"),
    "reads_unknown": _("unknown: not a node, trigger, args or vars"),
    "required": _("required"),
    "default": _("— (default %(value)s)"),
    "unit": _("%(name)s unit"),
    "seconds": _("seconds"),
    "minutes": _("minutes"),
    "hours": _("hours"),
    "days": _("days"),
    "comma": _("%(name)s (comma-separated)"),
    "as_json": _("%(name)s (JSON)"),
    "json_not_yet": _("Not valid JSON yet: %(error)s"),
    "unknown_type": _("Unknown node type: edit its params in the JSON."),
    "parameters": _("Parameters"),
    "no_params": _("This node has no parameters."),
    "connections": _("Connections"),
    "nowhere": _("— nowhere (the run ends) —"),
    "missing": _("%(id)s (missing)"),
    "goes_to": _("%(output)s goes to"),
    "node_title": _("Node %(id)s"),
    "id": _("Id"),
    "id_help": _("Templates read its output as {{ %(id)s.… }}."),
    "id_rule": _("Letters, digits and _, not starting with a digit."),
    "id_taken": _("There is a node %(id)s already."),
    "retry": _("Retry when it fails"),
    "retry_max": _("Attempts after the first."),
    "retry_backoff": _("Wait before the first retry (doubles after each)."),
    "about_node": _("About this node"),
    "description": _("Description"),
    "starts_here": _("The run starts here."),
    "start_here": _("Start here"),
    "duplicate": _("Duplicate"),
    "delete": _("Delete"),
    "trigger_n": _("Trigger %(n)s"),
    "trigger_type": _("Trigger %(n)s type"),
    "remove_trigger": _("Remove trigger %(n)s"),
    "settings": _("Workflow settings"),
    "name": _("Name"),
    "name_help": _("Letters, digits, . _ -; unique among your workflows."),
    "version": _("Version"),
    "version_help": _("Bump it when you change what the workflow does."),
    "start_node": _("Start node"),
    "triggers": _("Triggers"),
    "no_triggers": _("None: it runs when started by hand or called."),
    "add_trigger": _("Add a trigger"),
    "json_invalid": _("Not valid JSON: %(error)s"),
    "json_object": _("A workflow is a JSON object."),
    "not_saved_json": _("Not saved: the JSON panel does not hold a JSON object yet."),
    "saving": _("Saving…"),
    "not_saved_offline": _("Not saved: the server did not answer."),
    "not_saved": _("Not saved: %(message)s"),
    "created": _("Created %(name)s (version %(version)s, disabled: enable it on its page)."),
    "unchanged": _("No changes: %(name)s stays at version %(version)s."),
    "saved": _("Saved %(name)s as version %(version)s."),
    "hook_token": _("Its hook token, shown this once: %(token)s"),
}
del _

GROUPS = {
    "message": lazy_gettext("Messages"),
    "wait": lazy_gettext("Waiting"),
    "logic": lazy_gettext("Logic"),
    "http": lazy_gettext("HTTP"),
    "ticket": lazy_gettext("Helpdesk"),
    "other": lazy_gettext("Other nodes"),
}
"""The catalogue's groups, by the kind ``graph.py`` colours a node type with."""


def catalogue() -> dict[str, Any]:
    """What the editor needs to know about node types and triggers: each type's latest
    version with its catalogue text, outputs, parameter schema and group."""
    reg = registry.default()
    nodes = []
    for kind in reg.types():
        node = reg.get(kind)
        nodes.append(
            {
                "type": node.type,
                "version": node.version,
                "summary": node.summary(),
                "doc": node.describe()["doc"],
                "outputs": [*node.outputs, ERROR],
                "dynamic_outputs": node.outputs_for({}) != node.outputs,
                "params": standalone_params_schema(node),
                "group": graph.kind_of(kind),
                "expressions": list(node.raw_params),
            }
        )
    return {
        "nodes": nodes,
        "groups": {key: str(label) for key, label in GROUPS.items()},
        "triggers": {name: to_jsonschema(schema) for name, schema in TRIGGERS.items()},
    }


def outputs(doc: Any) -> dict[str, list[str]]:
    """Each node's outputs as the validation sees them (``error`` last); a node of an
    unknown type, or whose outputs depend on params that are wrong, has none listed."""
    reg = registry.default()
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    found: dict[str, list[str]] = {}
    for node_id, spec in (nodes or {}).items() if isinstance(nodes, dict) else ():
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            continue
        version = spec.get("version") if isinstance(spec.get("version"), int) else None
        if not reg.versions(spec["type"]) or (
            version is not None and version not in reg.versions(spec["type"])
        ):
            continue
        params = spec.get("params") if isinstance(spec.get("params"), dict) else {}
        names = reg.get(spec["type"], version).outputs_for(params)
        found[node_id] = list(dict.fromkeys([*(names or ()), ERROR]))
    return found


STRETCH = 1.7
"""The editor's boxes list their outputs, so they are taller than the read-only graph's:
its rows are drawn this much further apart."""


def positions(doc: Any) -> dict[str, dict[str, float]]:
    """Where each node starts on the canvas (and where **Arrange** puts it): the read-only
    graph's layout, rows further apart. Nothing for a draft too broken to lay out."""
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    if not isinstance(nodes, dict) or not all(
        isinstance(spec, dict) and isinstance(spec.get("next", {}), dict) for spec in nodes.values()
    ):
        return {}
    drawn = graph.layout(doc)
    return {
        box.id: {"x": box.x, "y": round(graph.PAD + (box.y - graph.PAD) * STRETCH)}
        for box in drawn.boxes
    }


def _editor(row, doc: dict[str, Any]):
    # Not the tojson filter: it sorts keys, and the JSON panel shows the document's order.
    return render_template(
        "ui/studio/editor.html",
        workflow=row,
        doc=doc,
        studio=htmlsafe_json_dumps(
            {
                "workflow": row.name if row is not None else None,
                "doc": doc,
                "layout": positions(doc),
                "catalogue": catalogue(),
                "texts": {key: str(text) for key, text in TEXTS.items()},
                "urls": {
                    "check": url_for("ui.studio.check"),
                    "save": url_for("ui.studio.save"),
                    "studio": url_for("ui.studio.edit", workflow="__name__"),
                    "detail": url_for("ui.workflows.detail", workflow="__name__"),
                },
            },
            dumps=json.dumps,
        ),
    )


@bp.route("/studio/new")
@bp.requires("workflows:manage")
def new():
    """An empty canvas for a new workflow."""
    return _editor(None, {"name": "", "start": "", "nodes": {}})


@bp.route("/<workflow>/studio")
@bp.requires("workflows:manage")
def edit(workflow):
    """A stored workflow in the editor (its current version, or ``?version=``)."""
    row = operations.get(workflow)
    return _editor(row, store.doc_of(row, request.args.get("version", type=int)))


def _body() -> Any:
    """The draft the editor sent: a JSON body."""
    doc = request.get_json(silent=True)
    if doc is None:
        raise ValidationFailed(
            "Send the workflow as a JSON body.",
            code="workflow_invalid",
            errors={"$": ["Nothing was sent."]},
        )
    return doc


@bp.route("/studio/check", methods=["POST"])
@bp.requires("workflows:manage")
def check():
    """Check a draft as POST /api/v1/workflows/validate does, and add each node's outputs
    and the layout **Arrange** would give it (a refusal is the API's error shape plus
    those two)."""
    doc = request.get_json(silent=True)
    try:
        checked = store.check(_body())
    except KabarError as error:
        db.session.rollback()
        return jsonify(
            {
                **error_body(error.status, error.code, error.message, error.errors),
                "outputs": outputs(doc),
                "layout": positions(doc),
            }
        ), error.status
    return jsonify(
        {
            "valid": True,
            "name": checked.name,
            "nodes": len(checked.nodes),
            "outputs": outputs(doc),
            "layout": positions(doc),
        }
    )


@bp.route("/studio/save", methods=["POST"])
@bp.requires("workflows:manage")
def save():
    """Store the draft as POST /api/v1/workflows does: a new workflow (disabled), or the
    next version of the caller's workflow of that name when it changed."""
    try:
        row, created, token = operations.upload(_body())
    except KabarError as error:
        db.session.rollback()
        return jsonify(
            error_body(error.status, error.code, error.message, error.errors)
        ), error.status
    return jsonify(
        {
            "name": row.name,
            "version": row.version,
            "created": created,
            "enabled": row.enabled,
            "hook_token": token,
            "studio": url_for("ui.studio.edit", workflow=row.name),
            "detail": url_for("ui.workflows.detail", workflow=row.name),
        }
    )
