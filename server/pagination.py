"""Keyset pagination for lists, in the API and on the dashboard: a page of rows ordered by
a unique key, and an opaque cursor (the last key, base64 JSON) for the next page. A cursor
this code did not give out is a 422, never a 500 or a silently empty page."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import sqlalchemy as sa

from server.errors import ValidationFailed
from server.models import db


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _fits(value: Any, column: sa.types.TypeEngine) -> bool:
    """Whether the database can compare ``value`` with the key column. Anything else
    would fail there (a 500 on PostgreSQL, or SQLite quietly answering an empty page)."""
    if type(value) is not column.python_type:  # ``is``: a JSON true is no integer id
        return False
    if isinstance(value, int):
        bits = 63 if isinstance(column, sa.BigInteger) else 31
        return -(2**bits) <= value < 2**bits
    return "\x00" not in value  # PostgreSQL text cannot hold NUL


def decode_cursor(cursor: str, key: sa.ColumnElement) -> Any:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        value = None
    if not _fits(value, key.type):
        raise ValidationFailed("The cursor is not one this API gave out.", code="invalid_cursor")
    return value


def paginate(
    query: sa.Select,
    key: sa.ColumnElement,
    *,
    cursor: str | None,
    limit: int,
    descending: bool = False,
) -> dict[str, Any]:
    """Keyset pagination on a unique ``key`` column, ascending (or newest first)."""
    if cursor:
        after = decode_cursor(cursor, key)
        query = query.where(key < after if descending else key > after)
    order = key.desc() if descending else key
    rows = list(db.session.scalars(query.order_by(order).limit(limit + 1)).unique())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(getattr(rows[-1], key.key))
    return {"items": rows, "next_cursor": next_cursor}
