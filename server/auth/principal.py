"""Who is calling: a user, logged in by JWT or acting through one of their API keys."""

from __future__ import annotations

from dataclasses import dataclass

from flask import g

from server.auth.permissions import group_permissions
from server.errors import Unauthorized
from server.models import ApiKey, User


@dataclass(frozen=True)
class Principal:
    user: User
    permissions: frozenset[str]
    api_key: ApiKey | None = None
    login_id: str | None = None

    @property
    def is_admin(self) -> bool:
        """Admins see every tenant's resources (an admin's API key too)."""
        return self.user.is_admin

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    @classmethod
    def for_user(cls, user: User, login_id: str | None = None) -> Principal:
        return cls(
            user, group_permissions(user.group.name, user.group.permissions), login_id=login_id
        )

    @classmethod
    def for_api_key(cls, key: ApiKey) -> Principal:
        # A key never holds more than its owner's group grants today.
        owner = group_permissions(key.owner.group.name, key.owner.group.permissions)
        return cls(key.owner, owner & frozenset(key.permissions), api_key=key)


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        raise Unauthorized()
    return principal
