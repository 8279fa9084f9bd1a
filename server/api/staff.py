"""/api/v1/staff: which users are helpdesk staff, with their WhatsApp phone and level."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.auth import accounts
from server.models import StaffProfile
from server.tickets import staff
from server.tickets.schemas import StaffProfileSchema, StaffSchema

blp = Blueprint(
    "staff",
    __name__,
    url_prefix="/api/v1/staff",
    description="Helpdesk staff: a user's WhatsApp phone, level (Administrator, "
    "Staf, TBO) and status.",
)


class StaffArgs(PageArgs):
    level = ma.fields.String(metadata={"description": "administrator, staff or tbo"})
    status = ma.fields.String(metadata={"description": "active or inactive"})
    q = ma.fields.String(metadata={"description": "Part of the username or name."})


@blp.route("")
class Staff(MethodView):
    @blp.requires("tickets:assign")
    @blp.arguments(StaffArgs, location="query")
    @blp.response(200, page_schema(StaffSchema))
    def get(self, args):
        """Staff members, by user id: whom tickets can be assigned to."""
        query = staff.search(level=args.get("level"), status=args.get("status"), q=args.get("q"))
        return paginate(query, StaffProfile.user_id, cursor=args["cursor"], limit=args["limit"])


@blp.route("/<int:user_id>")
class StaffById(MethodView):
    @blp.requires("tickets:assign")
    @blp.response(200, StaffSchema)
    def get(self, user_id):
        """One staff member."""
        return staff.get(user_id)

    @blp.requires("people:manage")
    @blp.arguments(StaffProfileSchema)
    @blp.response(200, StaffSchema)
    def put(self, body, user_id):
        """Make a user staff, or change their phone, level or status."""
        return staff.save(accounts.get_user(user_id), **body)

    @blp.requires("people:manage")
    @blp.response(204)
    def delete(self, user_id):
        """The user is no longer staff (their tickets stay assigned to them)."""
        staff.remove(staff.get(user_id))
