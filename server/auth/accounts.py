"""Users and groups: the service functions behind the API and the CLI."""

from __future__ import annotations

import re

import sqlalchemy as sa

from server.auth import passwords, tokens
from server.auth.permissions import ADMIN_GROUP, BUILTIN_GROUPS, unknown
from server.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from server.models import Group, User, db, utcnow

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,62}[a-z0-9]$")
GROUP_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,63}$")


# --- groups -------------------------------------------------------------------------


def ensure_builtin_groups() -> None:
    """Create missing built-in groups; never undo an admin's edits to existing ones."""
    existing = set(db.session.scalars(sa.select(Group.name)))
    for name, (description, permissions) in BUILTIN_GROUPS.items():
        if name not in existing:
            db.session.add(
                Group(
                    name=name, description=description, permissions=list(permissions), builtin=True
                )
            )
    db.session.commit()


def get_group(name: str) -> Group:
    group = db.session.scalar(sa.select(Group).where(Group.name == name))
    if group is None:
        raise NotFound(f"No group named {name!r}.", code="group_not_found")
    return group


def _check_permissions(permissions: list[str]) -> list[str]:
    bad = unknown(permissions)
    if bad:
        raise ValidationFailed(
            errors={
                "permissions": [
                    f"Unknown permission: {p}. See GET /api/v1/permissions." for p in bad
                ]
            }
        )
    return sorted(set(permissions))


def create_group(*, name: str, description: str = "", permissions: list[str]) -> Group:
    if not GROUP_NAME.match(name):
        raise ValidationFailed(
            errors={
                "name": ["Use 2-64 lowercase letters, digits, '-' or '_', starting with a letter."]
            }
        )
    if db.session.scalar(sa.select(Group.id).where(Group.name == name)) is not None:
        raise Conflict(f"A group named {name!r} already exists.", code="group_exists")
    group = Group(name=name, description=description, permissions=_check_permissions(permissions))
    db.session.add(group)
    db.session.commit()
    return group


def update_group(
    group: Group, *, description: str | None = None, permissions: list[str] | None = None
) -> Group:
    if permissions is not None:
        if group.name == ADMIN_GROUP:
            raise Conflict(
                "The admin group always holds every permission; it cannot be edited.",
                code="admin_group_fixed",
            )
        group.permissions = _check_permissions(permissions)
    if description is not None:
        group.description = description
    db.session.commit()
    return group


def delete_group(group: Group) -> None:
    if group.builtin:
        raise Conflict(
            f"{group.name!r} is a built-in group and cannot be deleted.", code="builtin_group"
        )
    if db.session.scalar(sa.select(sa.func.count()).where(User.group_id == group.id)):
        raise Conflict(
            f"Group {group.name!r} still has users; move them to another group first.",
            code="group_in_use",
        )
    db.session.delete(group)
    db.session.commit()


# --- users --------------------------------------------------------------------------


def normalise_username(username: str) -> str:
    return username.strip().lower()


def _check_password(password: str) -> None:
    if len(password) < passwords.MIN_LENGTH:
        raise ValidationFailed(
            errors={"password": [f"Use at least {passwords.MIN_LENGTH} characters."]}
        )


def find_user(username: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.username == normalise_username(username)))


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.", code="user_not_found")
    return user


def user_query(
    *, group: str | None = None, blocked: bool | None = None, q: str | None = None
) -> sa.Select:
    """Users, filtered by group name, blocked or not, and part of the name."""
    query = sa.select(User)
    if group is not None:
        query = query.where(User.group_id == get_group(group).id)
    if blocked is not None:
        query = query.where(User.blocked_at.isnot(None) if blocked else User.blocked_at.is_(None))
    if q:
        needle = q.lower()
        query = query.where(
            sa.or_(
                User.username.contains(needle, autoescape=True),
                sa.func.lower(User.display_name).contains(needle, autoescape=True),
            )
        )
    return query


def create_user(
    *,
    username: str,
    password: str,
    group: str = "operator",
    display_name: str = "",
    email: str | None = None,
    phone: str | None = None,
) -> User:
    username = normalise_username(username)
    if not USERNAME.match(username):
        raise ValidationFailed(
            errors={
                "username": [
                    "Use 3-64 letters, digits, '.', '-' or '_', starting and ending with a letter "
                    "or digit."
                ]
            }
        )
    _check_password(password)
    group_row = get_group_or_invalid(group)
    if find_user(username) is not None:
        raise Conflict(f"The username {username!r} is taken.", code="username_taken")
    user = User(
        username=username,
        password_hash=passwords.hash_password(password),
        display_name=display_name,
        email=email,
        phone=phone,
        group=group_row,
    )
    db.session.add(user)
    db.session.commit()
    return user


def get_group_or_invalid(name: str) -> Group:
    try:
        return get_group(name)
    except NotFound:
        raise ValidationFailed(
            errors={"group": [f"No group named {name!r}. See GET /api/v1/groups."]}
        ) from None


def count_active_admins() -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(User)
            .join(Group)
            .where(Group.name == ADMIN_GROUP, User.blocked_at.is_(None))
        )
        or 0
    )


def _guard_last_admin(user: User, action: str) -> None:
    if user.is_admin and not user.is_blocked and count_active_admins() <= 1:
        raise Conflict(
            f"Cannot {action} the last active admin; make another admin first.", code="last_admin"
        )


def update_user(
    user: User,
    *,
    display_name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    group: str | None = None,
    password: str | None = None,
) -> User:
    if group is not None and group != user.group.name:
        if user.is_admin:
            _guard_last_admin(user, "move out of the admin group")
        user.group = get_group_or_invalid(group)
    if display_name is not None:
        user.display_name = display_name
    if email is not None:
        user.email = email or None
    if phone is not None:
        user.phone = phone or None
    if password is not None:
        _check_password(password)
        user.password_hash = passwords.hash_password(password)
        tokens.revoke_all(user, reason="password_changed")
    db.session.commit()
    return user


def block_user(user: User, *, reason: str = "", actor: User | None = None) -> User:
    """Block ``user``. ``actor`` is the admin doing it (None: the server's CLI)."""
    if actor is not None and user.id == actor.id:
        raise Conflict("You cannot block yourself.", code="cannot_block_self")
    _guard_last_admin(user, "block")
    if not user.is_blocked:
        user.blocked_at = utcnow()
        user.block_reason = reason or None
        # Tokens die now and stay dead after an unblock; API keys only while blocked.
        tokens.revoke_all(user, reason="blocked")
        db.session.commit()
    return user


def unblock_user(user: User) -> User:
    user.blocked_at = None
    user.block_reason = None
    db.session.commit()
    return user


def delete_user(user: User, *, actor: User | None = None) -> None:
    if actor is not None and user.id == actor.id:
        raise Conflict("You cannot delete yourself.", code="cannot_delete_self")
    _guard_last_admin(user, "delete")
    db.session.delete(user)
    db.session.commit()


def login(username: str, password: str) -> User:
    user = find_user(username)
    if user is None:
        passwords.burn_time(password)
        raise Unauthorized("Wrong username or password.", code="invalid_credentials")
    if not passwords.verify_password(user.password_hash, password):
        raise Unauthorized("Wrong username or password.", code="invalid_credentials")
    if user.is_blocked:
        raise Forbidden("This account is blocked; ask an administrator.", code="account_blocked")
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
        db.session.commit()
    return user


def change_own_password(user: User, *, current: str, new: str) -> None:
    if not passwords.verify_password(user.password_hash, current):
        raise Forbidden("The current password is wrong.", code="invalid_credentials")
    update_user(user, password=new)
