"""/api/v1/users: creating, listing, changing, blocking and deleting users."""

from __future__ import annotations

import base64

import pytest

from server.auth import apikeys
from server.auth.principal import Principal

USERS = "/api/v1/users"
ME = "/api/v1/auth/me"


def _login(client, username, password="password123"):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def _key_headers(user) -> dict[str, str]:
    _, key = apikeys.create(Principal.for_user(user), name="script", permissions=None)
    return {"X-API-Key": key}


def _manager(client, admin_headers, make_user, login):
    """Login headers of a non-admin who may manage users (a custom group)."""
    created = client.post(
        "/api/v1/groups",
        headers=admin_headers,
        json={"name": "managers", "permissions": ["users:manage"]},
    )
    assert created.status_code == 201, created.json
    return login(make_user("managers"))


def test_create_a_user(client, admin_headers):
    response = client.post(
        USERS,
        headers=admin_headers,
        json={
            "username": "  Sari.Dewi ",
            "password": "password123",
            "display_name": "Sari",
            "email": "sari@example.org",
        },
    )
    assert response.status_code == 201, response.json
    body = response.json
    assert body["username"] == "sari.dewi"  # trimmed and lower-cased
    assert body["group"] == "operator"  # the default group
    assert body["blocked"] is False and body["email"] == "sari@example.org"
    assert "password" not in body and "password_hash" not in body
    assert client.get(f"{USERS}/{body['id']}", headers=admin_headers).json == body
    assert _login(client, "SARI.DEWI").status_code == 200


def test_a_taken_username_is_refused_whatever_its_case(client, admin_headers, make_user):
    make_user(username="budi")
    response = client.post(
        USERS, headers=admin_headers, json={"username": "BUDI", "password": "password123"}
    )
    assert response.status_code == 409
    assert response.json["code"] == "username_taken"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "a", "password": "password123"}, "username"),
        ({"username": "has space", "password": "password123"}, "username"),
        ({"username": "-dash", "password": "password123"}, "username"),
        ({"username": "valid", "password": "short"}, "password"),
        ({"username": "valid", "password": "password123", "group": "nope"}, "group"),
    ],
)
def test_create_names_the_bad_field(client, admin_headers, body, field):
    response = client.post(USERS, headers=admin_headers, json=body)
    assert response.status_code == 422, response.json
    assert response.json["code"] == "validation_error"
    assert field in response.json["errors"]


def test_create_validates_its_body(client, admin_headers):
    bad_email = client.post(
        USERS,
        headers=admin_headers,
        json={"username": "valid", "password": "password123", "email": "not-an-email"},
    )
    assert bad_email.status_code == 422
    assert "email" in bad_email.json["errors"]["json"]
    missing = client.post(USERS, headers=admin_headers, json={"username": "valid"})
    assert missing.status_code == 422
    assert "password" in missing.json["errors"]["json"]
    too_long = client.post(
        USERS,
        headers=admin_headers,
        json={"username": "valid", "password": "password123", "email": f"{'a' * 250}@example.org"},
    )
    assert too_long.status_code == 422  # a valid address, but longer than the column
    assert "email" in too_long.json["errors"]["json"]


def test_unknown_user_is_404(client, admin_headers):
    for method in ("GET", "PATCH", "DELETE"):
        response = client.open(
            f"{USERS}/999999",
            method=method,
            headers=admin_headers,
            json={} if method == "PATCH" else None,
        )
        assert response.status_code == 404, method
        assert response.json["code"] == "user_not_found"
    blocked = client.post(f"{USERS}/999999/block", headers=admin_headers, json={})
    assert blocked.status_code == 404
    for huge in (2**31, 10**20):  # beyond any id the database can hold: still a 404
        response = client.get(f"{USERS}/{huge}", headers=admin_headers)
        assert response.status_code == 404, huge
        assert response.json["code"] == "not_found"


def test_list_pages_with_a_cursor(client, admin, admin_headers, make_user):
    ids = [admin.id] + [make_user().id for _ in range(4)]
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(USERS, headers=admin_headers, query_string=query)
        assert page.status_code == 200, page.json
        pages += 1
        seen += [user["id"] for user in page.json["items"]]
        cursor = page.json["next_cursor"]
        if cursor is None:
            break
        assert len(page.json["items"]) == 2
    assert pages == 3 and seen == ids  # 2 + 2 + 1, in id order, no repeats


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "garbage",
        base64.urlsafe_b64encode(b'"abc"').decode().rstrip("="),  # valid JSON, wrong type
        base64.urlsafe_b64encode(b'{"id": 1}').decode().rstrip("="),
    ],
)
def test_a_cursor_this_api_did_not_give_is_refused(client, admin_headers, cursor):
    response = client.get(USERS, headers=admin_headers, query_string={"cursor": cursor})
    assert response.status_code == 422, response.json
    assert response.json["code"] == "invalid_cursor"


def test_list_limit_is_bounded(client, admin_headers):
    for limit in (0, 201):
        response = client.get(USERS, headers=admin_headers, query_string={"limit": limit})
        assert response.status_code == 422
        assert "limit" in response.json["errors"]["query"]


def test_list_filters(client, admin_headers, make_user):
    from server.auth import accounts

    make_user("field", username="tbo-utara", display_name="Agus Field")
    make_user("field", username="tbo-selatan")
    accounts.block_user(make_user("operator", username="gone", display_name="Left"))

    def names(**query) -> set[str]:
        response = client.get(USERS, headers=admin_headers, query_string=query)
        assert response.status_code == 200, response.json
        return {user["username"] for user in response.json["items"]}

    assert names(group="field") == {"tbo-utara", "tbo-selatan"}
    assert names(blocked="true") == {"gone"}
    assert "gone" not in names(blocked="false")
    assert names(q="UTARA") == {"tbo-utara"}
    assert names(q="agus") == {"tbo-utara"}  # display names match too, any case
    assert names(q="%") == set()  # wildcards are literal
    assert names(group="field", q="selatan") == {"tbo-selatan"}
    unknown = client.get(USERS, headers=admin_headers, query_string={"group": "nope"})
    assert unknown.status_code == 404 and unknown.json["code"] == "group_not_found"


def test_patch_changes_group_and_details(client, admin_headers, make_user, login):
    user = make_user("operator")
    headers = login(user)
    response = client.patch(
        f"{USERS}/{user.id}",
        headers=admin_headers,
        json={"group": "field", "display_name": "Pak Agus"},
    )
    assert response.status_code == 200, response.json
    assert response.json["group"] == "field" and response.json["display_name"] == "Pak Agus"
    me = client.get(ME, headers=headers)  # the same login, the new group
    assert me.json["user"]["group"] == "field"
    assert me.json["permissions"] == ["tickets:read"]
    bad = client.patch(f"{USERS}/{user.id}", headers=admin_headers, json={"group": "nope"})
    assert bad.status_code == 422 and "group" in bad.json["errors"]


def test_patch_sets_and_removes_email_and_phone(client, admin_headers, make_user):
    user = make_user()
    url = f"{USERS}/{user.id}"
    added = client.patch(
        url, headers=admin_headers, json={"email": "agus@example.org", "phone": "0812-3456"}
    )
    assert (added.json["email"], added.json["phone"]) == ("agus@example.org", "0812-3456")
    untouched = client.patch(url, headers=admin_headers, json={"display_name": "Agus"})
    assert untouched.json["email"] == "agus@example.org"  # what is not sent stays
    removed = client.patch(url, headers=admin_headers, json={"email": None, "phone": None})
    assert removed.status_code == 200
    assert (removed.json["email"], removed.json["phone"]) == (None, None)
    assert client.get(url, headers=admin_headers).json["email"] is None


def test_patch_password_ends_that_users_logins(client, admin_headers, make_user, login):
    user = make_user()
    bystander = make_user()
    headers, bystander_headers = login(user), login(bystander)
    short = client.patch(f"{USERS}/{user.id}", headers=admin_headers, json={"password": "x"})
    assert short.status_code == 422 and "password" in short.json["errors"]
    assert client.get(ME, headers=headers).status_code == 200  # a refused change ends nothing
    ok = client.patch(
        f"{USERS}/{user.id}", headers=admin_headers, json={"password": "a-new-password"}
    )
    assert ok.status_code == 200
    after = client.get(ME, headers=headers)
    assert after.status_code == 401 and after.json["code"] == "token_revoked"
    assert client.get(ME, headers=bystander_headers).status_code == 200
    assert _login(client, user.username).status_code == 401
    assert _login(client, user.username, "a-new-password").status_code == 200


def test_block_stops_tokens_and_keys_at_once_and_unblock_restores_keys_only(
    client, admin_headers, make_user, login
):
    user = make_user()
    headers = login(user)
    key = _key_headers(user)
    assert client.get(ME, headers=key).status_code == 200

    blocked = client.post(
        f"{USERS}/{user.id}/block", headers=admin_headers, json={"reason": "left the company"}
    )
    assert blocked.status_code == 200
    assert blocked.json["blocked"] is True
    assert blocked.json["block_reason"] == "left the company"
    for credentials in (headers, key, {"Authorization": f"Bearer {key['X-API-Key']}"}):
        response = client.get(ME, headers=credentials)
        assert response.status_code == 401 and response.json["code"] == "account_blocked"
    assert _login(client, user.username).json["code"] == "account_blocked"

    unblocked = client.post(f"{USERS}/{user.id}/unblock", headers=admin_headers)
    assert unblocked.status_code == 200 and unblocked.json["blocked"] is False
    assert unblocked.json["block_reason"] is None
    assert client.get(ME, headers=key).status_code == 200  # the API key works again
    old = client.get(ME, headers=headers)  # the old login stays dead
    assert old.status_code == 401 and old.json["code"] == "token_revoked"
    assert client.get(ME, headers=login(user)).status_code == 200


def test_you_cannot_block_or_delete_yourself(client, admin, admin_headers, make_user):
    make_user("admin")  # not the last admin: the self rule is what answers
    blocked = client.post(f"{USERS}/{admin.id}/block", headers=admin_headers, json={})
    assert blocked.status_code == 409 and blocked.json["code"] == "cannot_block_self"
    deleted = client.delete(f"{USERS}/{admin.id}", headers=admin_headers)
    assert deleted.status_code == 409 and deleted.json["code"] == "cannot_delete_self"
    assert client.get(ME, headers=admin_headers).status_code == 200


def test_the_last_active_admin_is_protected(client, admin, admin_headers, make_user, login):
    manager = _manager(client, admin_headers, make_user, login)
    demote = client.patch(f"{USERS}/{admin.id}", headers=admin_headers, json={"group": "operator"})
    assert demote.status_code == 409 and demote.json["code"] == "last_admin"
    for method, url in (("POST", f"{USERS}/{admin.id}/block"), ("DELETE", f"{USERS}/{admin.id}")):
        response = client.open(
            url, method=method, headers=manager, json={} if method == "POST" else None
        )
        assert response.status_code == 409, (method, response.json)
        assert response.json["code"] == "last_admin"
    assert client.get(ME, headers=admin_headers).json["user"]["group"] == "admin"

    second = client.post(
        USERS,
        headers=admin_headers,
        json={"username": "second", "password": "password123", "group": "admin"},
    ).json
    assert client.post(f"{USERS}/{admin.id}/block", headers=manager, json={}).status_code == 200
    # Now ``second`` is the last active admin (the blocked one does not count).
    again = client.delete(f"{USERS}/{second['id']}", headers=manager)
    assert again.status_code == 409 and again.json["code"] == "last_admin"
    assert client.post(f"{USERS}/{admin.id}/unblock", headers=manager).status_code == 200
    moved = client.patch(f"{USERS}/{second['id']}", headers=manager, json={"group": "operator"})
    assert moved.status_code == 200 and moved.json["group"] == "operator"


def test_delete_removes_the_user_and_their_keys(client, admin_headers, make_user, login):
    user = make_user()
    headers = login(user)
    key = _key_headers(user)
    response = client.delete(f"{USERS}/{user.id}", headers=admin_headers)
    assert response.status_code == 204
    assert client.get(f"{USERS}/{user.id}", headers=admin_headers).status_code == 404
    gone = client.get(ME, headers=key)
    assert gone.status_code == 401 and gone.json["code"] == "api_key_invalid"
    assert client.get(ME, headers=headers).status_code == 401
    assert _login(client, user.username).status_code == 401


def test_only_user_managers_reach_users(client, make_user, login):
    operator = login(make_user("operator"))
    response = client.get(USERS, headers=operator)
    assert response.status_code == 403 and response.json["code"] == "permission_denied"
    assert client.get(USERS).status_code == 401
