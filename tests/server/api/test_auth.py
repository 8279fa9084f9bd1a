"""Login, refresh rotation, logout, /me, password change, rate limiting."""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa
from flask_jwt_extended import create_access_token

from server.auth import login_cache
from server.models import LoginSession, db, utcnow

ME = "/api/v1/auth/me"


def _login(client, username, password="password123"):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_login_returns_tokens_that_open_me(client, make_user):
    user = make_user("operator", display_name="Sari")
    response = _login(client, user.username.upper())  # usernames are case-insensitive
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    me = client.get(ME, headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json["user"]["username"] == user.username
    assert me.json["user"]["group"] == "operator"
    assert "sessions:manage" in me.json["permissions"]
    assert "users:manage" not in me.json["permissions"]
    assert me.json["via"] == "jwt"


def test_wrong_password_and_unknown_user_look_the_same(client, make_user):
    user = make_user()
    wrong = _login(client, user.username, "nope-nope")
    unknown = _login(client, "ghost", "nope-nope")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json["code"] == unknown.json["code"] == "invalid_credentials"
    assert wrong.json["message"] == unknown.json["message"]


def test_login_validates_its_body(client):
    response = client.post("/api/v1/auth/login", json={"username": "x"})
    assert response.status_code == 422
    assert response.json["code"] == "validation_error"
    assert "password" in response.json["errors"]["json"]
    broken = client.post(
        "/api/v1/auth/login", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json["message"] == "The request body is not valid JSON."


def test_blocked_user_cannot_log_in(client, make_user):
    from server.auth import accounts

    user = make_user()
    accounts.block_user(user, reason="left the company")
    response = _login(client, user.username)
    assert response.status_code == 403
    assert response.json["code"] == "account_blocked"


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_login(client, make_user):
    tokens = _login(client, make_user().username).json
    first = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200
    assert first.json["refresh_token"] != tokens["refresh_token"]
    # The old refresh token again: refused, and the whole login is revoked.
    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json["code"] == "refresh_token_reused"
    newest = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first.json["refresh_token"]}
    )
    assert newest.status_code == 401
    me = client.get(ME, headers={"Authorization": f"Bearer {first.json['access_token']}"})
    assert me.status_code == 401 and me.json["code"] == "token_revoked"


def test_refresh_accepts_the_bearer_header_and_refuses_access_tokens(client, make_user):
    tokens = _login(client, make_user().username).json
    by_header = client.post(
        "/api/v1/auth/refresh",
        json={},
        headers={"Authorization": f"Bearer {tokens['refresh_token']}"},
    )
    assert by_header.status_code == 200
    wrong_kind = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]})
    assert wrong_kind.status_code == 401 and wrong_kind.json["code"] == "token_invalid"
    missing = client.post("/api/v1/auth/refresh", json={})
    assert missing.status_code == 401 and missing.json["code"] == "refresh_token_missing"


def test_logout_makes_access_and_refresh_tokens_useless(client, make_user):
    tokens = _login(client, make_user().username).json
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    after = client.get(ME, headers=headers)
    assert after.status_code == 401 and after.json["code"] == "token_revoked"
    refresh = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401


def test_logout_holds_in_another_process(migrated_app, client, make_user):
    """Revocation is a database row: a second app (another worker) refuses the token too."""
    from server import create_app

    tokens = _login(client, make_user().username).json
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    client.post("/api/v1/auth/logout", headers=headers)
    other = create_app(
        {
            "DATABASE_URL": migrated_app.config["SQLALCHEMY_DATABASE_URI"],
            "INSTANCE_PATH": migrated_app.instance_path,
            "SECRET_KEY": migrated_app.config["SECRET_KEY"],
        }
    )
    try:
        assert other.test_client().get(ME, headers=headers).status_code == 401
    finally:
        with other.app_context():
            db.engine.dispose()


def test_expired_and_forged_tokens_are_refused(app, client, make_user):
    user = make_user()
    expired = create_access_token(
        str(user.id), expires_delta=timedelta(seconds=-5), additional_claims={"sid": "x"}
    )
    response = client.get(ME, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and response.json["code"] == "token_expired"
    forged = client.get(ME, headers={"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.xx"})
    assert forged.status_code == 401 and forged.json["code"] == "token_invalid"
    assert client.get(ME).json["code"] == "unauthorized"
    assert client.get(ME, headers={"Authorization": "Basic abc"}).status_code == 401


def test_login_is_rate_limited_per_username(client, make_user):
    user = make_user()
    for _ in range(10):
        assert _login(client, user.username, "wrong-password").status_code == 401
    limited = _login(client, user.username)  # even the right password waits now
    assert limited.status_code == 429
    assert limited.json["code"] == "rate_limited"
    assert "Retry-After" in limited.headers


def test_password_change_ends_every_login(client, make_user, login):
    user = make_user()
    headers = login(user)
    other_login = login(user)
    wrong = client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": "nope", "new_password": "brand-new-pass"},
    )
    assert wrong.status_code == 403
    short = client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": "password123", "new_password": "short"},
    )
    assert short.status_code == 422 and "password" in short.json["errors"]
    ok = client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": "password123", "new_password": "brand-new-pass"},
    )
    assert ok.status_code == 204
    assert client.get(ME, headers=other_login).status_code == 401
    assert _login(client, user.username, "brand-new-pass").status_code == 200


def test_every_response_has_a_request_id(client):
    response = client.get("/api/v1/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    generated = client.get("/api/v1/health", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["X-Request-ID"]) == 32
    error = client.get(ME)
    assert error.json["request_id"] == error.headers["X-Request-ID"]


def test_a_login_revoked_by_another_process_stops_within_the_cache_time(
    app, client, make_user, monkeypatch
):
    """Each process remembers a login that held for login_cache.SECONDS: a revocation made
    elsewhere (another worker, the CLI: here a Core UPDATE no session of this process saw)
    holds once that time has passed, and the token is refused from then on."""
    tokens = _login(client, make_user().username).json
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get(ME, headers=headers).status_code == 200  # remembered now
    with db.engine.begin() as connection:
        connection.execute(
            sa.update(LoginSession.__table__).values(revoked_at=utcnow(), revoked_reason="x")
        )
    assert client.get(ME, headers=headers).status_code == 200  # within the cache time
    later = time.monotonic() + login_cache.SECONDS + 0.01
    monkeypatch.setattr(login_cache.time, "monotonic", lambda: later)
    after = client.get(ME, headers=headers)
    assert after.status_code == 401 and after.json["code"] == "token_revoked"


def test_a_change_made_in_this_process_holds_at_once_despite_the_cache(
    client, make_user, admin_headers
):
    user = make_user()
    headers = {"Authorization": f"Bearer {_login(client, user.username).json['access_token']}"}
    assert client.get(ME, headers=headers).json["user"]["group"] == "operator"
    moved = client.patch(f"/api/v1/users/{user.id}", json={"group": "field"}, headers=admin_headers)
    assert moved.status_code == 200, moved.json
    assert client.get(ME, headers=headers).json["user"]["group"] == "field"
    assert client.post(f"/api/v1/users/{user.id}/block", headers=admin_headers).status_code == 200
    blocked = client.get(ME, headers=headers)
    assert blocked.status_code == 401 and blocked.json["code"] in (
        "token_revoked",
        "account_blocked",
    )
