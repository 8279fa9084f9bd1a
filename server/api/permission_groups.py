"""/api/v1/groups and /api/v1/permissions: what each group may do."""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask.views import MethodView

from server.api.base import Blueprint
from server.auth import accounts
from server.auth.permissions import PERMISSIONS, group_permissions
from server.auth.schemas import GroupSchema
from server.models import Group, db

blp = Blueprint(
    "groups",
    __name__,
    url_prefix="/api/v1",
    description="Groups grant named permissions to their users.",
)


class GroupOutSchema(GroupSchema):
    permissions = ma.fields.Function(
        lambda group: sorted(group_permissions(group.name, group.permissions))
    )


class GroupUpdateSchema(ma.Schema):
    description = ma.fields.String(validate=ma.validate.Length(0, 255))
    permissions = ma.fields.List(ma.fields.String())


class PermissionSchema(ma.Schema):
    name = ma.fields.String()
    description = ma.fields.String()


@blp.route("/permissions")
class Permissions(MethodView):
    @blp.requires()
    @blp.response(200, PermissionSchema(many=True))
    def get(self):
        """The permission catalogue."""
        return [{"name": name, "description": text} for name, text in PERMISSIONS.items()]


@blp.route("/groups")
class Groups(MethodView):
    @blp.requires("users:manage")
    @blp.response(200, GroupOutSchema(many=True))
    def get(self):
        """List groups and the permissions they grant."""
        return db.session.scalars(sa.select(Group).order_by(Group.id)).all()

    @blp.requires("users:manage")
    @blp.arguments(GroupSchema)
    @blp.response(201, GroupOutSchema)
    def post(self, body):
        """Create a group."""
        return accounts.create_group(**body)


@blp.route("/groups/<string:name>")
class GroupByName(MethodView):
    @blp.requires("users:manage")
    @blp.response(200, GroupOutSchema)
    def get(self, name):
        """One group."""
        return accounts.get_group(name)

    @blp.requires("users:manage")
    @blp.arguments(GroupUpdateSchema)
    @blp.response(200, GroupOutSchema)
    def patch(self, body, name):
        """Change a group's description or permissions (not the admin group's)."""
        return accounts.update_group(accounts.get_group(name), **body)

    @blp.requires("users:manage")
    @blp.response(204)
    def delete(self, name):
        """Delete a custom group that has no users."""
        accounts.delete_group(accounts.get_group(name))
