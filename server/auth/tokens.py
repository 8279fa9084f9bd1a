"""JWT logins: issue, authenticate, rotate refresh tokens, revoke.

Every token carries its login's ``sid``. Revocation lives in the database
(``LoginSession.revoked_at``), so a logout or a block holds in every web process at
once and survives restarts.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import jwt as pyjwt
import sqlalchemy as sa
from flask import current_app, request
from flask_jwt_extended import create_access_token, create_refresh_token, decode_token

from server.auth import login_cache
from server.auth.principal import Principal
from server.errors import Unauthorized
from server.models import LoginSession, User, db, utcnow


def start_login(user: User, *, lifetime: timedelta) -> LoginSession:
    """Record a login of ``user``: an API token family or a dashboard cookie. Both are
    rows here, so logout, a block and a password change end either the same way."""
    now = utcnow()
    login = LoginSession(
        id=str(uuid.uuid4()),
        user_id=user.id,
        refresh_jti=str(uuid.uuid4()),
        created_at=now,
        expires_at=now + lifetime,
        user_agent=(request.user_agent.string or "")[:255],
        ip_address=(request.remote_addr or "")[:64],
    )
    db.session.add(login)
    user.last_login_at = now
    db.session.commit()
    return login


def issue_tokens(user: User) -> dict:
    """Start a login for ``user`` and return its first token pair."""
    login = start_login(user, lifetime=current_app.config["JWT_REFRESH_TOKEN_EXPIRES"])
    return _token_pair(user, login)


def _token_pair(user: User, login: LoginSession) -> dict:
    identity = str(user.id)
    return {
        "access_token": create_access_token(identity, additional_claims={"sid": login.id}),
        # The refresh token's jti is the login's current refresh_jti; rotation compares them.
        "refresh_token": create_refresh_token(
            identity, additional_claims={"sid": login.id, "jti": login.refresh_jti}
        ),
        "token_type": "Bearer",
        "expires_in": int(current_app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds()),
    }


def _decode(token: str, expected_type: str) -> dict:
    try:
        claims = decode_token(token)
    except pyjwt.ExpiredSignatureError as exc:
        raise Unauthorized(
            "The token has expired; log in again or refresh it.", code="token_expired"
        ) from exc
    except pyjwt.PyJWTError as exc:
        raise Unauthorized("The token is not valid.", code="token_invalid") from exc
    if claims.get("type") != expected_type or "sid" not in claims:
        raise Unauthorized(f"This is not an {expected_type} token.", code="token_invalid")
    return claims


def active_login(user_id: int, login_id: str) -> tuple[User, LoginSession]:
    """The user and their login if it still holds (not revoked, user not blocked)."""
    # One query for both: every authenticated request asks this.
    found = db.session.execute(
        sa.select(User, LoginSession).where(
            User.id == user_id, LoginSession.id == login_id, LoginSession.user_id == User.id
        )
    ).first()
    user, login = found if found is not None else (None, None)
    if user is None or login is None:
        raise Unauthorized("The token is not valid.", code="token_invalid")
    if user.is_blocked:
        raise Unauthorized("This account is blocked.", code="account_blocked")
    if login.revoked_at is not None:
        raise Unauthorized("The token has been revoked; log in again.", code="token_revoked")
    return user, login


def _check_user_and_login(claims: dict) -> tuple[User, LoginSession]:
    user, login = active_login(int(claims["sub"]), claims["sid"])
    _check_issued_after(claims, user)
    return user, login


def _check_issued_after(claims: dict, user: User) -> None:
    if claims["iat"] < int(user.tokens_valid_after.timestamp()):
        raise Unauthorized("The token has been revoked; log in again.", code="token_revoked")


def authenticate_access_token(token: str) -> Principal:
    """The caller of an access token: its login is read from the database, or from this
    process's cache of logins that held less than ``login_cache.SECONDS`` ago."""
    claims = _decode(token, "access")
    user = login_cache.recall(claims["sid"])
    if user is None or user.id != int(claims["sub"]):
        user, _login = _check_user_and_login(claims)
        login_cache.remember(claims["sid"], user)
    else:
        _check_issued_after(claims, user)
    return Principal.for_user(user, login_id=claims["sid"])


def rotate(refresh_token: str) -> dict:
    """Exchange a refresh token for a new pair; a reused one revokes its whole login."""
    claims = _decode(refresh_token, "refresh")
    user, login = _check_user_and_login(claims)
    new_jti = str(uuid.uuid4())
    # Conditional update: of two concurrent refreshes with the same token, one wins.
    won = db.session.execute(
        sa.update(LoginSession)
        .where(
            LoginSession.id == login.id,
            LoginSession.refresh_jti == claims["jti"],
            LoginSession.revoked_at.is_(None),
        )
        .values(refresh_jti=new_jti, refreshed_at=utcnow())
    ).rowcount
    if not won:
        revoke(login.id, reason="refresh_token_reused")
        raise Unauthorized(
            "This refresh token was already used; the login has been revoked for safety. "
            "Log in again.",
            code="refresh_token_reused",
        )
    db.session.commit()
    db.session.refresh(login)
    return _token_pair(user, login)


def revoke(login_id: str, *, reason: str) -> None:
    db.session.execute(
        sa.update(LoginSession)
        .where(LoginSession.id == login_id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    db.session.commit()


def revoke_all(user: User, *, reason: str) -> None:
    """End every login of ``user`` (blocked, password changed, deleted)."""
    db.session.execute(
        sa.update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    user.tokens_valid_after = utcnow()
