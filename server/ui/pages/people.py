"""The helpdesk's people directory (who may report): search, add, change, delete, and
import a CSV or XLSX file with a report of every row that failed. The same
``server.tickets.people`` and ``importer`` calls and schemas as /api/v1/people."""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _

from server.auth import current_principal
from server.errors import ValidationFailed
from server.inputs import carries_media
from server.models import PERSON_STATUSES, Person, Ticket, db
from server.pagination import paginate
from server.tickets import importer, people
from server.tickets.queries import filtered
from server.tickets.schemas import PersonCreateSchema, PersonUpdateSchema
from server.ui.base import UiBlueprint, back, checkbox, done, form_values, load

bp = UiBlueprint("people", __name__, url_prefix="/helpdesk/people")

PAGE = 100
TICKETS = 20  # a person's latest tickets on their page


@bp.route("")
@bp.requires("people:manage")
def index():
    query = people.search(
        q=request.args.get("q") or None,
        status=request.args.get("status") or None,
        department=request.args.get("department") or None,
    )
    page = paginate(query, Person.id, cursor=request.args.get("cursor") or None, limit=PAGE)
    return render_template(
        "ui/people/index.html", page=page, args=request.args, statuses=PERSON_STATUSES
    )


@bp.route("", methods=["POST"])
@bp.requires("people:manage")
def create():
    person = people.create(**load(PersonCreateSchema(), form_values()))
    return done(
        _("%(name)s added as %(id)s.", name=person.name, id=person.id),
        "ui.people.detail",
        person_id=person.id,
    )


@bp.route("/import", methods=["POST"])
@carries_media
@bp.requires("people:manage")
def import_file():
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationFailed(errors={"file": [_("Choose a CSV or XLSX file.")]})
    report = importer.run(
        upload.stream.read(importer.MAX_BYTES + 1), upload.filename, dry_run=checkbox("dry_run")
    )
    return render_template("ui/people/imported.html", report=report, filename=upload.filename)


@bp.route("/<string:person_id>")
@bp.requires("people:manage")
def detail(person_id):
    person = people.get(person_id)
    tickets = db.session.scalars(
        filtered(current_principal(), {"reporter": person.id})
        .order_by(Ticket.id.desc())
        .limit(TICKETS)
    ).all()
    return render_template(
        "ui/people/detail.html", person=person, tickets=tickets, statuses=PERSON_STATUSES
    )


@bp.route("/<string:person_id>", methods=["POST"])
@bp.requires("people:manage")
def update(person_id):
    person = people.get(person_id)
    # Every field is on the form: an empty one clears it (an empty email removes it).
    values = {
        name: request.form.get(name, "")
        for name in ("name", "phone", "department", "unit", "status", "notes")
    }
    values["email"] = request.form.get("email", "").strip() or None
    people.update(person, **load(PersonUpdateSchema(), values))
    return back(_("%(name)s saved.", name=person.name))


@bp.route("/<string:person_id>/delete", methods=["POST"])
@bp.requires("people:manage")
def delete(person_id):
    person = people.get(person_id)
    name = person.name
    people.delete(person)
    return done(
        _(
            "%(name)s removed from the directory; their tickets keep their name and phone.",
            name=name,
        ),
        "ui.people.index",
    )
