"""Logging in and out of the dashboard, and what ends a login: the same LoginSession rows,
revocation and blocking as the API's JWT logins. Security headers, CSRF, languages."""

from __future__ import annotations

import sqlalchemy as sa

from server.auth import accounts
from server.models import LoginSession, db
from tests.server.ui.conftest import flashes


def test_log_in_opens_the_page_asked_for_and_records_a_login(browser_for, operator):
    browser = browser_for()
    first = browser.get("/sessions")
    assert first.status_code == 302
    assert first.headers["Location"] == "/login?next=/sessions"
    browser.get(first.headers["Location"])
    answer = browser.submit(
        "/login", {"username": operator.username, "password": "password123", "next": "/sessions"}
    )
    assert (answer.status_code, answer.headers["Location"]) == (303, "/sessions")
    assert browser.get("/sessions").status_code == 200
    login = db.session.scalar(sa.select(LoginSession).where(LoginSession.user_id == operator.id))
    assert login.revoked_at is None and login.user_agent is not None


def test_a_wrong_password_says_so_and_logs_nobody_in(browser_for, operator):
    browser = browser_for()
    answer = browser.submit("/login", {"username": operator.username, "password": "nope"})
    assert answer.status_code == 401
    assert "Wrong username or password." in answer.get_data(as_text=True)
    assert browser.get("/").status_code == 302


def test_login_refuses_a_next_page_on_another_site(browser_for, operator):
    browser = browser_for()
    answer = browser.submit(
        "/login",
        {
            "username": operator.username,
            "password": "password123",
            "next": "https://evil.example/steal",
        },
    )
    assert answer.headers["Location"] == "/"


def test_logout_revokes_the_login_row(operator_browser, operator):
    answer = operator_browser.submit("/logout")
    assert answer.headers["Location"] == "/login"
    login = db.session.scalar(sa.select(LoginSession).where(LoginSession.user_id == operator.id))
    db.session.refresh(login)
    assert login.revoked_reason == "logout"
    assert operator_browser.get("/").status_code == 302


def test_blocking_a_user_ends_their_dashboard_login_at_once(operator_browser, operator):
    accounts.block_user(operator, reason="left")
    answer = operator_browser.get("/sessions")
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/login")
    assert "Your login has ended" in flashes(operator_browser.get(answer.headers["Location"]))


def test_an_expired_login_asks_to_log_in_again(operator_browser, operator):
    from datetime import timedelta

    from server.models import utcnow

    login = db.session.scalar(sa.select(LoginSession).where(LoginSession.user_id == operator.id))
    login.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert operator_browser.get("/").status_code == 302


def test_change_my_password_ends_every_login(operator_browser, operator):
    differ = operator_browser.submit(
        "/account/password",
        {
            "current_password": "password123",
            "new_password": "a-new-password",
            "repeat_password": "something-else",
            "next": "/account",
        },
    )
    assert "differ" in flashes(operator_browser.get(differ.headers["Location"]))
    wrong = operator_browser.submit(
        "/account/password",
        {
            "current_password": "wrong",
            "new_password": "a-new-password",
            "repeat_password": "a-new-password",
            "next": "/account",
        },
    )
    assert "current password is wrong" in flashes(operator_browser.get(wrong.headers["Location"]))
    done = operator_browser.submit(
        "/account/password",
        {
            "current_password": "password123",
            "new_password": "a-new-password",
            "repeat_password": "a-new-password",
        },
    )
    assert done.headers["Location"] == "/login"
    assert operator_browser.get("/").status_code == 302
    assert operator_browser.log_in(operator.username, "a-new-password").status_code == 303


def test_pages_carry_the_security_headers_and_a_strict_cookie(browser_for, operator):
    browser = browser_for()
    page = browser.get("/login")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"
    cookie = page.headers["Set-Cookie"]
    assert "kabar_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # KABAR_COOKIE_SECURE is off by default (plain http)
    assert "<script>" not in page.get_data(as_text=True)  # no inline script


def test_the_cookie_is_secure_when_configured(app, browser_for, monkeypatch):
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    assert "Secure" in browser_for().get("/login").headers["Set-Cookie"]


def test_a_post_without_the_csrf_token_is_refused(operator_browser):
    answer = operator_browser.post("/sessions", data={"label": "x", "transport": "sandbox"})
    assert answer.status_code == 400
    assert "did not come from this site" in answer.get_data(as_text=True)


def test_the_api_needs_no_csrf_token(client, admin_headers):
    created = client.post(
        "/api/v1/sessions",
        headers=admin_headers,
        json={"label": "api", "transport": "sandbox", "auto_start": False},
    )
    assert created.status_code == 201


def test_the_language_follows_the_browser_then_the_choice(browser_for, operator):
    browser = browser_for(operator)
    assert "Overview" in browser.get("/").get_data(as_text=True)
    indonesian = browser.get("/", headers={"Accept-Language": "id-ID,id;q=0.9"})
    assert "Ringkasan" in indonesian.get_data(as_text=True)
    chosen = browser.submit("/language", {"language": "id", "next": "/sessions"})
    assert chosen.headers["Location"] == "/sessions"
    page = browser.get("/sessions").get_data(as_text=True)
    assert '<html lang="id">' in page and "Sesi baru" in page
    browser.submit("/language", {"language": "klingon"})  # ignored
    assert '<html lang="id">' in browser.get("/").get_data(as_text=True)


def test_login_is_rate_limited(app, browser_for, monkeypatch, operator):
    monkeypatch.setitem(app.config["KABAR"], "LOGIN_RATE_LIMIT", "2 per minute")
    browser = browser_for()
    for _ in range(2):
        browser.submit("/login", {"username": operator.username, "password": "nope"})
    limited = browser.submit("/login", {"username": operator.username, "password": "nope"})
    assert limited.status_code == 429
