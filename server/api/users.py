"""/api/v1/users: user management for admins (users:manage)."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from server.api.base import Blueprint, PageArgs, page_schema, paginate
from server.auth import accounts, current_principal
from server.auth.schemas import BlockSchema, UserCreateSchema, UserUpdateSchema
from server.models import User

blp = Blueprint(
    "users",
    __name__,
    url_prefix="/api/v1/users",
    description="Users, their group, blocking and deletion.",
)


class UserSchema(ma.Schema):
    id = ma.fields.Integer(dump_only=True)
    username = ma.fields.String(required=True)
    display_name = ma.fields.String()
    email = ma.fields.Email(allow_none=True)
    phone = ma.fields.String(allow_none=True)
    group = ma.fields.Function(lambda user: user.group.name, dump_only=True)
    blocked = ma.fields.Function(lambda user: user.is_blocked, dump_only=True)
    blocked_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    block_reason = ma.fields.String(dump_only=True, allow_none=True)
    last_login_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True)


class UserListArgs(PageArgs):
    group = ma.fields.String()
    blocked = ma.fields.Boolean()
    q = ma.fields.String(metadata={"description": "Part of the username or display name."})


@blp.route("")
class Users(MethodView):
    @blp.requires("users:manage")
    @blp.arguments(UserListArgs, location="query")
    @blp.response(200, page_schema(UserSchema))
    def get(self, args):
        """List users."""
        query = accounts.user_query(
            group=args.get("group"), blocked=args.get("blocked"), q=args.get("q")
        )
        return paginate(query, User.id, cursor=args["cursor"], limit=args["limit"])

    @blp.requires("users:manage")
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    def post(self, body):
        """Create a user in a group (default: operator)."""
        return accounts.create_user(**body)


@blp.route("/<int:user_id>")
class UserById(MethodView):
    @blp.requires("users:manage")
    @blp.response(200, UserSchema)
    def get(self, user_id):
        """One user."""
        return accounts.get_user(user_id)

    @blp.requires("users:manage")
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    def patch(self, body, user_id):
        """Change a user's group, details or password (a new password ends their logins)."""
        # null removes an email or phone; to the service None means "leave as is" and ""
        # means "remove" (and "" is no valid email to send).
        body.update(
            {field: "" for field in ("email", "phone") if field in body and body[field] is None}
        )
        return accounts.update_user(accounts.get_user(user_id), **body)

    @blp.requires("users:manage")
    @blp.response(204)
    def delete(self, user_id):
        """Delete a user, with their API keys and everything they own."""
        accounts.delete_user(accounts.get_user(user_id), actor=current_principal().user)


@blp.route("/<int:user_id>/block")
class Block(MethodView):
    @blp.requires("users:manage")
    @blp.arguments(BlockSchema)
    @blp.response(200, UserSchema)
    def post(self, body, user_id):
        """Block a user: they cannot log in, their tokens and API keys stop at once."""
        return accounts.block_user(
            accounts.get_user(user_id), reason=body["reason"], actor=current_principal().user
        )


@blp.route("/<int:user_id>/unblock")
class Unblock(MethodView):
    @blp.requires("users:manage")
    @blp.response(200, UserSchema)
    def post(self, user_id):
        """Unblock a user. They log in again; their API keys work again."""
        return accounts.unblock_user(accounts.get_user(user_id))
