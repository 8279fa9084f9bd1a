"""Workflows: the list; upload and check a document (each error shown under its JSON
path, the text kept to fix it); one workflow's drawn graph, document and versions;
enable, disable, delete; the hook token shown once; a run started by hand; the workflows
folder read again. The same ``server.workflows.operations`` calls as /api/v1/workflows (runs
are ``runs.py``)."""

from __future__ import annotations

import json
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from server import inputs
from server.errors import Conflict, ValidationFailed
from server.models import Workflow, WorkflowRun, db
from server.ui import graph, nav
from server.ui.base import UiBlueprint, back, checkbox, done, form_values, load
from server.workflows import operations, store
from server.workflows.schemas import StartSchema

bp = UiBlueprint("workflows", __name__, url_prefix="/workflows")

nav.add(
    nav.NavItem(
        "ui.workflows.index",
        lazy_gettext("Workflows"),
        "workflows:manage",
        50,
        ("ui.workflows", "ui.runs"),
    )
)

RECENT_RUNS = 10


def trigger_text(trigger: dict[str, Any]) -> str:
    """A trigger in a few words: ``message: #request, #req``, ``schedule: 0 17 * * *``."""
    kind = trigger.get("type", "?")
    detail = (
        trigger.get("command")
        or trigger.get("keyword")
        or trigger.get("types")
        or trigger.get("regex")
        or trigger.get("cron")
        or trigger.get("every")
        or ("*" if trigger.get("any") else "")
    )
    if isinstance(detail, list):
        detail = ", ".join(str(item) for item in detail)
    extra = " (fallback)" if trigger.get("fallback") else ""
    return f"{kind}: {detail}{extra}" if detail else f"{kind}{extra}"


def _index(**form: Any):
    """The list with the upload form in the state given (text, error, checked)."""
    rows = db.session.scalars(operations.visible().order_by(Workflow.name)).all()
    return render_template(
        "ui/workflows/index.html", workflows=rows, trigger_text=trigger_text, **form
    )


@bp.route("")
@bp.requires("workflows:manage")
def index():
    return _index()


def _submitted() -> tuple[str, bytes | str, str]:
    """The form's document (an uploaded file, else the text box): as text for the box (a
    refused document stays on the page to be fixed), as sent, and what to call it."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.read()
        return raw.decode("utf-8", errors="replace"), raw, "The uploaded file"
    text = request.form.get("doc", "")
    return text, text, "The text"


def _document(raw: bytes | str, where: str) -> Any:
    if not raw.strip():
        raise ValidationFailed(
            "Paste the workflow's JSON or choose its file.",
            code="workflow_invalid",
            errors={"$": ["Nothing was sent."]},
        )
    return store.parse_json(raw, where=where)


@bp.route("", methods=["POST"])
@bp.requires("workflows:manage")
def upload():
    text, raw, where = _submitted()
    try:
        row, created, token = operations.upload(
            _document(raw, where), enable=True if checkbox("enable") else None
        )
    except (ValidationFailed, Conflict) as error:
        db.session.rollback()
        return _index(text=text, error=error), error.status
    if token:
        return render_template(
            "ui/workflows/token.html", workflow=row, token=token, created=created
        ), 201
    if created:
        flash(_("Workflow %(name)s created.", name=row.name), "success")
    else:
        flash(
            _("Workflow %(name)s saved (version %(version)s).", name=row.name, version=row.version),
            "success",
        )
    if not row.enabled:
        flash(_("It is disabled: enable it to start runs from its triggers."), "info")
    return redirect(url_for("ui.workflows.detail", workflow=row.name), 303)


@bp.route("/validate", methods=["POST"])
@bp.requires("workflows:manage")
def validate():
    """Check a document without storing it, as POST /api/v1/workflows/validate."""
    text, raw, where = _submitted()
    try:
        checked = store.check(_document(raw, where))
    except ValidationFailed as error:
        return _index(text=text, error=error), error.status
    return _index(text=text, checked=checked)


@bp.route("/reload", methods=["POST"])
@bp.requires("workflows:manage")
def reload():
    report = operations.reload()
    for problem in report["errors"]:
        flash(f"{problem['file']}: {problem['message']}", "error")
    if report["folder"] is None:
        return back(_("There is no workflows folder (KABAR_WORKFLOWS_DIR)."), category="error")
    return back(
        _(
            "Read %(folder)s: %(added)s added (disabled), %(updated)s updated, "
            "%(unchanged)s unchanged.",
            folder=report["folder"],
            added=len(report["added"]),
            updated=len(report["updated"]),
            unchanged=len(report["unchanged"]),
        )
    )


@bp.route("/<workflow>")
@bp.requires("workflows:manage")
def detail(workflow):
    row = operations.get(workflow)
    version = request.args.get("version", type=int) or row.version
    doc = store.doc_of(row, version)
    runs = db.session.scalars(
        operations.visible_runs()
        .where(WorkflowRun.workflow_id == row.id)
        .order_by(WorkflowRun.seq.desc())
        .limit(RECENT_RUNS)
    ).all()
    return render_template(
        "ui/workflows/detail.html",
        workflow=row,
        version=version,
        doc=doc,
        text=json.dumps(doc, indent=2, ensure_ascii=False),
        graph=graph.layout(doc),
        versions=operations.versions(row),
        runs=runs,
        has_hook=store.has_hook(row),
        trigger_text=trigger_text,
    )


@bp.route("/<workflow>/enable", methods=["POST"])
@bp.requires("workflows:manage")
def enable(workflow):
    row = operations.set_enabled(operations.get(workflow), True)
    return back(_("%(name)s is enabled: its triggers start runs.", name=row.name))


@bp.route("/<workflow>/disable", methods=["POST"])
@bp.requires("workflows:manage")
def disable(workflow):
    row = operations.set_enabled(operations.get(workflow), False)
    return back(_("%(name)s is disabled: no new runs start; runs under way go on.", name=row.name))


@bp.route("/<workflow>/delete", methods=["POST"])
@bp.requires("workflows:manage")
def delete(workflow):
    row = operations.get(workflow)
    name = row.name
    operations.delete(row)
    return done(_("Workflow %(name)s deleted.", name=name), "ui.workflows.index")


@bp.route("/<workflow>/hook-token", methods=["POST"])
@bp.requires("workflows:manage")
def hook_token(workflow):
    row = operations.get(workflow)
    return render_template(
        "ui/workflows/token.html", workflow=row, token=operations.rotate_token(row), created=False
    )


def _json_field(name: str) -> Any:
    raw = request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        return inputs.load_json(raw)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            errors={name: [_("Not valid JSON: %(why)s.", why=exc.msg)]}
        ) from None


@bp.route("/<workflow>/run", methods=["POST"])
@bp.requires("workflows:manage")
def run(workflow):
    """Start a run by hand, as POST /api/v1/workflows/{name}/runs."""
    row = operations.get(workflow)
    values = form_values()
    body = load(
        StartSchema(),
        {
            "input": _json_field("input") or {},
            "vars": _json_field("vars"),
            "session": values.get("session"),
            "chat": values.get("chat"),
        },
    )
    started, _ctx = operations.run_manually(row, **body)
    flash(_("Run started; its status: %(status)s.", status=started.status), "success")
    return redirect(url_for("ui.runs.detail", run_id=started.id), 303)
