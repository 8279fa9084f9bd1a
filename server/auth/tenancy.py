"""Tenancy: every owned resource is visible to its owner and to admins only.

Another tenant's resource answers 404 (never 403), so ids do not leak existence.
"""

from __future__ import annotations

from typing import TypeVar

import sqlalchemy as sa

from server.auth.principal import current_principal
from server.errors import NotFound
from server.models import db

M = TypeVar("M")


def scoped(model: type[M]) -> sa.Select:
    """``SELECT model`` limited to what the caller may see."""
    query = sa.select(model)
    principal = current_principal()
    if not principal.is_admin:
        query = query.where(model.owner_id == principal.user.id)  # type: ignore[attr-defined]
    return query


def get_owned(model: type[M], ident, *, what: str) -> M:
    """The row with primary key ``ident`` if the caller may see it, else ``NotFound``."""
    row = db.session.get(model, ident)
    principal = current_principal()
    if row is None or (not principal.is_admin and row.owner_id != principal.user.id):  # type: ignore[attr-defined]
        raise NotFound(f"No {what} with id {ident}.", code=f"{what.replace(' ', '_')}_not_found")
    return row
