"""API keys: ``kabar_<prefix>_<secret>``, shown once, stored as SHA-256, revocable.

The secret has 256 bits of entropy, so a fast hash is right here (a slow KDF guards
guessable passwords, not random keys); the prefix finds the row, and the digest is
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from server.auth import login_cache
from server.auth.permissions import unknown
from server.auth.principal import Principal
from server.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from server.models import ApiKey, WaSession, db, utcnow

KEY_PREFIX = "kabar_"
# last_used_at is written at most this often per key, not on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create(
    principal: Principal,
    *,
    name: str,
    permissions: list[str] | None,
    expires_at: datetime | None = None,
    session_id: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for the calling user; returns the row and the key (shown once).

    ``session_id`` binds the key to that session (one the caller may see): it then sees
    and acts on that session only, like a fonnte device token (docs/fonnte.md)."""
    if permissions is None:
        permissions = sorted(principal.permissions)
    bad = unknown(permissions)
    if bad:
        raise ValidationFailed(errors={"permissions": [f"Unknown permission: {p}" for p in bad]})
    beyond = sorted(set(permissions) - principal.permissions)
    if beyond:
        raise Forbidden(
            f"You cannot give a key permissions you do not hold: {', '.join(beyond)}.",
            code="permission_not_held",
        )
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationFailed(errors={"expires_at": ["Must be in the future."]})
    bound = principal.api_key.session_id if principal.api_key is not None else None
    if session_id is not None:
        session = db.session.get(WaSession, session_id)
        if (
            session is None
            or session.deleted_at is not None
            or bound not in (None, session_id)
            or not (principal.is_admin or session.owner_id == principal.user.id)
        ):
            raise NotFound(f"No session with id {session_id!r}.", code="session_not_found")
    session_id = session_id or bound  # a bound key makes keys bound to its session only
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        owner_id=principal.user.id,
        name=name,
        prefix=prefix,
        key_hash=_digest(key),
        permissions=sorted(set(permissions)),
        expires_at=expires_at,
        session_id=session_id,
    )
    db.session.add(row)
    db.session.commit()
    return row, key


def authenticate(key: str) -> Principal:
    invalid = Unauthorized("The API key is not valid.", code="api_key_invalid")
    parts = key[len(KEY_PREFIX) :].split("_", 1) if looks_like_api_key(key) else []
    if len(parts) != 2:
        raise invalid
    # This process's cache of keys valid a moment ago (login_cache: a revocation holds at
    # once here, within login_cache.SECONDS in the other processes), else the row.
    row = login_cache.recall_key(parts[0])
    cached = row is not None
    if not cached:
        # populate_existing: the row as stored, even if this session holds it already
        row = db.session.scalar(
            sa.select(ApiKey)
            .where(ApiKey.prefix == parts[0])
            .execution_options(populate_existing=True)
        )
    if row is None or not hmac.compare_digest(row.key_hash, _digest(key)):
        raise invalid
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthorized("This API key has been revoked.", code="api_key_revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("This API key has expired.", code="api_key_expired")
    if row.owner.is_blocked:
        raise Unauthorized("The account that owns this API key is blocked.", code="account_blocked")
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
        db.session.commit()  # (which empties the cache: remember the key after it)
        cached = False
    if not cached:
        login_cache.remember_key(row)
    return Principal.for_api_key(row)


MANAGE_KEYS = "users:manage"


def may_manage_keys(principal: Principal) -> bool:
    """A person (a login) manages their own keys; an API key manages keys only if it holds
    ``users:manage``, so a narrow key (``sessions:read``) cannot mint keys or revoke its
    owner's other keys. Any key may see and revoke itself."""
    return principal.api_key is None or principal.can(MANAGE_KEYS)


def check_may_manage(principal: Principal, row: ApiKey | None = None) -> None:
    """403 unless the caller may manage ``row`` (None: keys in general)."""
    if may_manage_keys(principal):
        return
    if row is not None and principal.api_key is not None and row.id == principal.api_key.id:
        return
    raise Forbidden(
        f"This API key may only see and revoke itself. Manage API keys from a login, or "
        f"with a key that holds {MANAGE_KEYS}.",
        code="api_key_management_denied",
    )


def revoke(row: ApiKey) -> None:
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        db.session.commit()
