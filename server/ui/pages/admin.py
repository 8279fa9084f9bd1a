"""Administration (users:manage): users (create, change, block, unblock, delete) and
groups with their permissions. The same ``server.auth.accounts`` calls and schemas as
/api/v1/users and /api/v1/groups."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request
from flask_babel import gettext as _

from server.auth import accounts, current_principal
from server.auth.permissions import ADMIN_GROUP, PERMISSIONS, group_permissions
from server.auth.schemas import BlockSchema, GroupSchema, UserCreateSchema, UserUpdateSchema
from server.models import Group, User, db
from server.pagination import paginate
from server.ui.base import UiBlueprint, back, done, form_values, load

bp = UiBlueprint("admin", __name__, url_prefix="/admin")

PAGE = 100


def _groups() -> list[Group]:
    return db.session.scalars(sa.select(Group).order_by(Group.id)).all()


@bp.route("/users")
@bp.requires("users:manage")
def users():
    page = paginate(
        accounts.user_query(q=request.args.get("q") or None),
        User.id,
        cursor=request.args.get("cursor") or None,
        limit=PAGE,
    )
    return render_template(
        "ui/admin/users.html", page=page, groups=_groups(), q=request.args.get("q", "")
    )


@bp.route("/users", methods=["POST"])
@bp.requires("users:manage")
def create_user():
    user = accounts.create_user(**load(UserCreateSchema(), form_values()))
    return done(_("User %(name)s created.", name=user.username), "ui.admin.user", user_id=user.id)


@bp.route("/users/<int:user_id>")
@bp.requires("users:manage")
def user(user_id):
    return render_template("ui/admin/user.html", user=accounts.get_user(user_id), groups=_groups())


@bp.route("/users/<int:user_id>", methods=["POST"])
@bp.requires("users:manage")
def update_user(user_id):
    user = accounts.get_user(user_id)
    # Empty email or phone removes it; an empty password leaves it as it is.
    values = {name: request.form.get(name, "") for name in ("display_name", "group")}
    values.update({name: request.form.get(name, "").strip() or None for name in ("email", "phone")})
    if request.form.get("password"):
        values["password"] = request.form["password"]
    body = load(UserUpdateSchema(), values)
    body.update({field: "" for field in ("email", "phone") if body.get(field) is None})
    accounts.update_user(user, **body)
    return back(_("User %(name)s saved.", name=user.username))


@bp.route("/users/<int:user_id>/block", methods=["POST"])
@bp.requires("users:manage")
def block(user_id):
    body = load(BlockSchema(), form_values())
    user = accounts.block_user(
        accounts.get_user(user_id), reason=body["reason"], actor=current_principal().user
    )
    return back(_("%(name)s is blocked: their logins and API keys stop now.", name=user.username))


@bp.route("/users/<int:user_id>/unblock", methods=["POST"])
@bp.requires("users:manage")
def unblock(user_id):
    user = accounts.unblock_user(accounts.get_user(user_id))
    return back(_("%(name)s is unblocked.", name=user.username))


@bp.route("/users/<int:user_id>/delete", methods=["POST"])
@bp.requires("users:manage")
def delete_user(user_id):
    user = accounts.get_user(user_id)
    name = user.username
    accounts.delete_user(user, actor=current_principal().user)
    return done(_("User %(name)s deleted.", name=name), "ui.admin.users")


@bp.route("/groups")
@bp.requires("users:manage")
def groups():
    rows = [(group, group_permissions(group.name, group.permissions)) for group in _groups()]
    return render_template(
        "ui/admin/groups.html", groups=rows, permissions=PERMISSIONS, admin_group=ADMIN_GROUP
    )


@bp.route("/groups", methods=["POST"])
@bp.requires("users:manage")
def create_group():
    group = accounts.create_group(**load(GroupSchema(), form_values("permissions")))
    return done(_("Group %(name)s created.", name=group.name), "ui.admin.groups")


@bp.route("/groups/<string:name>", methods=["POST"])
@bp.requires("users:manage")
def update_group(name):
    group = accounts.get_group(name)
    values = form_values("permissions")
    accounts.update_group(
        group,
        description=values.get("description", ""),
        permissions=None if group.name == ADMIN_GROUP else values["permissions"],
    )
    return back(_("Group %(name)s saved.", name=group.name))


@bp.route("/groups/<string:name>/delete", methods=["POST"])
@bp.requires("users:manage")
def delete_group(name):
    accounts.delete_group(accounts.get_group(name))
    return done(_("Group %(name)s deleted.", name=name), "ui.admin.groups")
