"""/api/v1/auth: log in, rotate tokens, log out, who am I, change my password."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, request
from flask.views import MethodView

from server.api.base import Blueprint
from server.api.users import UserSchema
from server.auth import accounts, current_principal, tokens
from server.errors import Unauthorized
from server.extensions import limiter

blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/api/v1/auth",
    description="JWT login, refresh-token rotation and logout.",
)


class LoginSchema(ma.Schema):
    username = ma.fields.String(required=True, validate=ma.validate.Length(1, 64))
    password = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(1, 1024))


class TokenPairSchema(ma.Schema):
    access_token = ma.fields.String(required=True)
    refresh_token = ma.fields.String(required=True)
    token_type = ma.fields.String(required=True)
    expires_in = ma.fields.Integer(
        required=True, metadata={"description": "Seconds until the access token expires."}
    )


class RefreshSchema(ma.Schema):
    refresh_token = ma.fields.String(
        load_default=None,
        metadata={
            "description": "The refresh token; may instead be sent as Authorization: Bearer."
        },
    )


class MeSchema(ma.Schema):
    """Dumped from a Principal."""

    user = ma.fields.Nested(UserSchema)
    permissions = ma.fields.Function(lambda principal: sorted(principal.permissions))
    via = ma.fields.Function(
        lambda principal: "api_key" if principal.api_key else "jwt",
        metadata={"description": "jwt or api_key"},
    )
    api_key_id = ma.fields.Function(
        lambda principal: principal.api_key.id if principal.api_key else None
    )


class PasswordChangeSchema(ma.Schema):
    current_password = ma.fields.String(required=True, load_only=True)
    new_password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(1, 1024)
    )


def _login_limit() -> str:
    return current_app.config["KABAR"]["LOGIN_RATE_LIMIT"]


def _login_username() -> str:
    body = request.get_json(silent=True)
    name = body.get("username") if isinstance(body, dict) else None
    return f"login-user:{accounts.normalise_username(name)}" if isinstance(name, str) else "-"


@blp.route("/login")
class Login(MethodView):
    @blp.public
    @limiter.limit(_login_limit)
    @limiter.limit(_login_limit, key_func=_login_username)
    @blp.arguments(LoginSchema)
    @blp.response(200, TokenPairSchema)
    @blp.alt_response(401, description="Wrong username or password.")
    @blp.alt_response(429, description="Too many attempts.")
    def post(self, body):
        """Log in with a username and password; returns an access and a refresh token."""
        user = accounts.login(body["username"], body["password"])
        return tokens.issue_tokens(user)


@blp.route("/refresh")
class Refresh(MethodView):
    @blp.public
    @blp.arguments(RefreshSchema)
    @blp.response(200, TokenPairSchema)
    def post(self, body):
        """Exchange a refresh token for a new pair. Each refresh token works once."""
        token = body.get("refresh_token")
        if not token:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise Unauthorized(
                    "Send the refresh token in the body or as a Bearer token.",
                    code="refresh_token_missing",
                )
        return tokens.rotate(token.strip())


@blp.route("/logout")
class Logout(MethodView):
    @blp.requires()
    @blp.response(204)
    def post(self):
        """Revoke this login: its access and refresh tokens stop working everywhere."""
        principal = current_principal()
        if principal.login_id is None:
            raise Unauthorized(
                "API keys have no login to end; revoke the key instead.", code="not_a_login"
            )
        tokens.revoke(principal.login_id, reason="logout")


@blp.route("/me")
class Me(MethodView):
    @blp.requires()
    @blp.response(200, MeSchema)
    def get(self):
        """The calling user, their group and effective permissions."""
        return current_principal()


@blp.route("/password")
class Password(MethodView):
    @blp.requires()
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    def post(self, body):
        """Change my password; every login of mine ends (log in again)."""
        principal = current_principal()
        if principal.api_key is not None:
            raise Unauthorized(
                "Change a password with a login, not an API key.", code="not_a_login"
            )
        accounts.change_own_password(
            principal.user, current=body["current_password"], new=body["new_password"]
        )
