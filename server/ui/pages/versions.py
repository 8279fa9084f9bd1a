"""A workflow's versions: the list, two compared (the graph's nodes and edges, and the
JSON), one restored as the next version. ``server.workflows.versions`` does the work."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _

from server.errors import ValidationFailed
from server.ui.base import UiBlueprint, done
from server.workflows import operations, versions

bp = UiBlueprint("versions", __name__, url_prefix="/workflows")


@bp.route("/<workflow>/versions")
@bp.requires("workflows:manage")
def index(workflow):
    row = operations.get(workflow)
    return render_template("ui/studio/versions.html", workflow=row, versions=versions.listing(row))


@bp.route("/<workflow>/versions/<int:old>..<int:new>")
@bp.requires("workflows:manage")
def diff(workflow, old, new):
    row = operations.get(workflow)
    return render_template(
        "ui/studio/diff.html", workflow=row, diff=versions.compare(row, old, new)
    )


@bp.route("/<workflow>/versions/compare")
@bp.requires("workflows:manage")
def compare(workflow):
    """The list's form: two versions picked, shown as /versions/<old>..<new>."""
    row = operations.get(workflow)
    old, new = request.args.get("old", type=int), request.args.get("new", type=int)
    if not old or not new:
        raise ValidationFailed(
            _("Pick two versions to compare."), errors={"old": [_("Pick a version.")]}
        )
    return redirect(
        url_for("ui.versions.diff", workflow=row.name, old=min(old, new), new=max(old, new)), 303
    )


@bp.route("/<workflow>/versions/<int:version>/restore", methods=["POST"])
@bp.requires("workflows:manage")
def restore(workflow, version):
    row = versions.restore(operations.get(workflow), version)
    return done(
        _("Version %(old)s restored as version %(new)s.", old=version, new=row.version),
        "ui.versions.index",
        workflow=row.name,
    )
