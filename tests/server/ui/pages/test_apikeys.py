"""API keys page: the key shown once, never more permissions than mine, revoke."""

from __future__ import annotations

import re

import sqlalchemy as sa

from server.auth import apikeys
from server.models import ApiKey, db
from tests.server.ui.conftest import flashes


def test_create_a_key_that_works_then_revoke_it(operator_browser, client):
    answer = operator_browser.submit(
        "/api-keys",
        {"name": "script", "permissions": ["sessions:read"], "expires_at": "2999-01-31"},
    )
    assert answer.status_code == 201
    key = re.search(r'value="(kabar_[^"]+)"', answer.get_data(as_text=True)).group(1)
    assert client.get("/api/v1/sessions", headers={"X-API-Key": key}).status_code == 200
    row = db.session.scalar(sa.select(ApiKey))
    assert row.permissions == ["sessions:read"] and row.expires_at.year == 2999
    assert key not in operator_browser.get("/api-keys").get_data(as_text=True)
    operator_browser.submit(f"/api-keys/{row.id}/revoke", {"next": "/api-keys"})
    db.session.expire_all()  # the test's own session still holds the row as it was
    assert client.get("/api/v1/sessions", headers={"X-API-Key": key}).status_code == 401


def test_refusals_are_explained(operator_browser, make_user):
    answer = operator_browser.submit(
        "/api-keys", {"name": "too much", "permissions": ["users:manage"], "next": "/api-keys"}
    )
    assert "do not hold" in flashes(operator_browser.get(answer.headers["Location"]))
    answer = operator_browser.submit("/api-keys", {"name": "none", "next": "/api-keys"})
    assert "at least one permission" in flashes(operator_browser.get(answer.headers["Location"]))
    from server.auth.principal import Principal

    theirs, _ = apikeys.create(
        Principal.for_user(make_user("operator")), name="theirs", permissions=None
    )
    assert operator_browser.submit(f"/api-keys/{theirs.id}/revoke").status_code == 404
    assert "theirs" not in operator_browser.get("/api-keys").get_data(as_text=True)
