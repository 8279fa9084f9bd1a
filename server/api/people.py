"""/api/v1/people: the helpdesk's people directory (who may report), and its import."""

from __future__ import annotations

import marshmallow as ma
from flask import request
from flask.views import MethodView

from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.errors import ValidationFailed
from server.inputs import carries_media
from server.models import Person
from server.tickets import importer, people
from server.tickets.schemas import PersonCreateSchema, PersonSchema, PersonUpdateSchema

blp = Blueprint(
    "people",
    __name__,
    url_prefix="/api/v1/people",
    description="The helpdesk's people directory: CRUD and CSV/XLSX import.",
)


class PeopleListArgs(PageArgs):
    q = ma.fields.String(metadata={"description": "Part of the name, id or phone."})
    status = ma.fields.String(metadata={"description": "active or inactive"})
    department = ma.fields.String()


class ImportArgs(ma.Schema):
    dry_run = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Check every row and report, but save nothing."},
    )


class ImportErrorSchema(ma.Schema):
    row = ma.fields.Integer(metadata={"description": "The spreadsheet row (header = 1)."})
    id = ma.fields.String(allow_none=True)
    errors = ma.fields.Dict()


class ImportReportSchema(ma.Schema):
    rows = ma.fields.Integer()
    created = ma.fields.Integer()
    updated = ma.fields.Integer()
    failed = ma.fields.Integer()
    errors = ma.fields.List(ma.fields.Nested(ImportErrorSchema))
    dry_run = ma.fields.Boolean()


@blp.route("")
class People(MethodView):
    @blp.requires("people:manage")
    @blp.arguments(PeopleListArgs, location="query")
    @blp.response(200, page_schema(PersonSchema))
    def get(self, args):
        """The directory, by id."""
        query = people.search(
            q=args.get("q"), status=args.get("status"), department=args.get("department")
        )
        return paginate(query, Person.id, cursor=args["cursor"], limit=args["limit"])

    @blp.requires("people:manage")
    @blp.arguments(PersonCreateSchema)
    @blp.response(201, PersonSchema)
    def post(self, body):
        """Add a person (their phone must be nobody else's)."""
        return people.create(**body)


@blp.route("/import")
class Import(MethodView):
    @blp.requires("people:manage")
    @blp.arguments(ImportArgs, location="query")
    @blp.doc(
        requestBody={
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    )
    @blp.response(200, ImportReportSchema)
    @carries_media
    def post(self, args):
        """Import a CSV or XLSX file (upload as 'file'); upsert by id, else by phone. Good
        rows are saved, bad rows reported with their row number."""
        upload = request.files.get("file")
        if upload is None:
            raise ValidationFailed(
                errors={"file": ["Upload the CSV or XLSX file as multipart form field 'file'."]}
            )
        data = upload.stream.read(importer.MAX_BYTES + 1)
        return importer.run(data, upload.filename or "", dry_run=args["dry_run"])


@blp.route("/<string:person_id>")
class PersonById(MethodView):
    @blp.requires("people:manage")
    @blp.response(200, PersonSchema)
    def get(self, person_id):
        """One person."""
        return people.get(person_id)

    @blp.requires("people:manage")
    @blp.arguments(PersonUpdateSchema)
    @blp.response(200, PersonSchema)
    def patch(self, body, person_id):
        """Change a person's details."""
        return people.update(people.get(person_id), **body)

    @blp.requires("people:manage")
    @blp.response(204)
    def delete(self, person_id):
        """Remove a person; their tickets keep the reporter's name and phone."""
        people.delete(people.get(person_id))
