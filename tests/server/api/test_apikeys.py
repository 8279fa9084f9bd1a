"""/api/v1/api-keys: keys shown once, scoped to what their owner holds, revocable, tenanted."""

from __future__ import annotations

import time
from datetime import timedelta

import sqlalchemy as sa

from server.auth import login_cache
from server.auth.permissions import BUILTIN_GROUPS
from server.models import ApiKey, db, utcnow

KEYS = "/api/v1/api-keys"
ME = "/api/v1/auth/me"


def _create(client, headers, name="script", **fields):
    return client.post(KEYS, headers=headers, json={"name": name, **fields})


def _key(client, headers, **fields) -> tuple[int, dict[str, str]]:
    """Create a key; returns its id and X-API-Key headers that use it."""
    response = _create(client, headers, **fields)
    assert response.status_code == 201, response.json
    return response.json["id"], {"X-API-Key": response.json["key"]}


def test_the_key_is_shown_once(client, make_user, login):
    headers = login(make_user("operator"))
    created = _create(client, headers, name="billing script")
    assert created.status_code == 201
    body = created.json
    assert body["key"].startswith(f"kabar_{body['prefix']}_")
    assert body["name"] == "billing script" and body["revoked_at"] is None
    listed = client.get(KEYS, headers=headers).json["items"]
    one = client.get(f"{KEYS}/{body['id']}", headers=headers).json
    assert [item["id"] for item in listed] == [body["id"]]
    for shown in (listed[0], one):
        assert "key" not in shown and "key_hash" not in shown
        assert body["key"] not in str(shown)
        assert shown["prefix"] == body["prefix"]


def test_a_key_works_as_bearer_and_as_x_api_key(client, make_user, login):
    user = make_user("operator")
    created = _create(client, login(user)).json
    for headers in ({"Authorization": f"Bearer {created['key']}"}, {"X-API-Key": created["key"]}):
        me = client.get(ME, headers=headers)
        assert me.status_code == 200, me.json
        assert me.json["via"] == "api_key" and me.json["api_key_id"] == created["id"]
        assert me.json["user"]["username"] == user.username


def test_default_permissions_are_the_creators(client, make_user, login):
    created = _create(client, login(make_user("operator"))).json
    assert created["permissions"] == sorted(BUILTIN_GROUPS["operator"][1])
    me = client.get(ME, headers={"X-API-Key": created["key"]}).json
    assert me["permissions"] == created["permissions"]


def test_permissions_a_key_may_not_have(client, make_user, login):
    headers = login(make_user("operator"))
    beyond = _create(client, headers, permissions=["sessions:read", "users:manage"])
    assert beyond.status_code == 403 and beyond.json["code"] == "permission_not_held"
    assert "users:manage" in beyond.json["message"]
    unknown = _create(client, headers, permissions=["sessions:fly"])
    assert unknown.status_code == 422 and "permissions" in unknown.json["errors"]
    # A key cannot mint a key stronger than itself either (a narrow one mints none at all).
    _, narrow = _key(client, headers, permissions=["sessions:read"])
    wider = _create(client, narrow, permissions=["sessions:manage"])
    assert wider.status_code == 403 and wider.json["code"] == "api_key_management_denied"
    assert len(client.get(KEYS, headers=headers).json["items"]) == 1


def test_expiry(client, make_user, login):
    headers = login(make_user("operator"))
    past = _create(client, headers, expires_at="2020-01-01T00:00:00Z")
    assert past.status_code == 422 and "expires_at" in past.json["errors"]
    naive = _create(client, headers, expires_at="2099-01-01T00:00:00")
    assert naive.status_code == 422  # a time without its zone is ambiguous
    assert "expires_at" in naive.json["errors"]["json"]

    soon = (utcnow() + timedelta(hours=1)).replace(microsecond=0)
    key_id, key = _key(client, headers, expires_at=soon.isoformat())
    assert (
        client.get(f"{KEYS}/{key_id}", headers=headers)
        .json["expires_at"]
        .startswith(soon.strftime("%Y-%m-%dT%H:%M:%S"))
    )
    assert client.get(ME, headers=key).status_code == 200
    db.session.get(ApiKey, key_id).expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    expired = client.get(ME, headers=key)
    assert expired.status_code == 401 and expired.json["code"] == "api_key_expired"


def test_revoke(client, make_user, login):
    headers = login(make_user("operator"))
    key_id, key = _key(client, headers)
    assert client.delete(f"{KEYS}/{key_id}", headers=headers).status_code == 204
    response = client.get(ME, headers=key)
    assert response.status_code == 401 and response.json["code"] == "api_key_revoked"
    shown = client.get(f"{KEYS}/{key_id}", headers=headers).json
    assert shown["revoked_at"] is not None
    assert client.delete(f"{KEYS}/{key_id}", headers=headers).status_code == 204  # idempotent
    missing = client.delete(f"{KEYS}/999999", headers=headers)
    assert missing.status_code == 404 and missing.json["code"] == "api_key_not_found"
    assert client.delete(f"{KEYS}/{2**40}", headers=headers).status_code == 404


def test_a_wrong_key_is_refused(client, make_user, login):
    created = _create(client, login(make_user("operator"))).json
    forged = f"kabar_{created['prefix']}_{'A' * 43}"
    for key in (
        forged,
        created["key"][:-1],
        "kabar_",
        "kabar_nounderscore",
        f"kabar_000000000000_{'A' * 43}",
    ):
        response = client.get(ME, headers={"X-API-Key": key})
        assert response.status_code == 401, key
        assert response.json["code"] == "api_key_invalid", key
    assert client.get(ME, headers={"Authorization": f"Bearer {forged}"}).json["code"] == (
        "api_key_invalid"
    )


def test_last_used_at_is_recorded(client, make_user, login):
    headers = login(make_user("operator"))
    key_id, key = _key(client, headers)
    assert client.get(f"{KEYS}/{key_id}", headers=headers).json["last_used_at"] is None
    before = utcnow().replace(microsecond=0)
    client.get(ME, headers=key)
    used = client.get(f"{KEYS}/{key_id}", headers=headers).json["last_used_at"]
    assert used is not None
    assert db.session.get(ApiKey, key_id).last_used_at >= before


def test_a_narrow_key_of_an_admin_stays_narrow(client, admin_headers):
    _, key = _key(client, admin_headers, permissions=["sessions:read"])
    response = client.get("/api/v1/users", headers=key)
    assert response.status_code == 403 and response.json["code"] == "permission_denied"
    assert "API key" in response.json["message"]
    assert client.get("/api/v1/sessions", headers=key).status_code == 200
    assert client.get("/api/v1/users", headers=admin_headers).status_code == 200


def test_a_key_loses_what_its_owners_group_loses(client, admin_headers, make_user, login):
    client.post(
        "/api/v1/groups",
        headers=admin_headers,
        json={"name": "clerks", "permissions": ["users:manage", "sessions:read"]},
    )
    _, key = _key(client, login(make_user("clerks")))
    assert client.get("/api/v1/users", headers=key).status_code == 200
    client.patch(
        "/api/v1/groups/clerks", headers=admin_headers, json={"permissions": ["sessions:read"]}
    )
    lost = client.get("/api/v1/users", headers=key)
    assert lost.status_code == 403 and lost.json["code"] == "permission_denied"
    # Giving the permission back to the group gives it back to the key (it never lost it).
    client.patch(
        "/api/v1/groups/clerks",
        headers=admin_headers,
        json={"permissions": ["users:manage", "sessions:read"]},
    )
    assert client.get("/api/v1/users", headers=key).status_code == 200


def test_keys_belong_to_their_owner(client, admin_headers, make_user, login):
    ani, budi = login(make_user("operator")), login(make_user("operator"))
    anis_key, _ = _key(client, ani, name="ani's")
    budis_key, _ = _key(client, budi, name="budi's")
    for method in ("GET", "DELETE"):
        response = client.open(f"{KEYS}/{anis_key}", method=method, headers=budi)
        assert response.status_code == 404, method
        assert response.json["code"] == "api_key_not_found"
    assert client.get(f"{KEYS}/{anis_key}", headers=ani).json["revoked_at"] is None
    assert [k["name"] for k in client.get(KEYS, headers=budi).json["items"]] == ["budi's"]
    everyone = client.get(KEYS, headers=admin_headers).json["items"]
    assert {k["id"] for k in everyone} == {anis_key, budis_key}
    assert client.delete(f"{KEYS}/{budis_key}", headers=admin_headers).status_code == 204


def test_list_pages(client, make_user, login):
    headers = login(make_user("operator"))
    ids = [_key(client, headers, name=f"key {n}")[0] for n in range(3)]
    first = client.get(KEYS, headers=headers, query_string={"limit": 2}).json
    rest = client.get(
        KEYS, headers=headers, query_string={"limit": 2, "cursor": first["next_cursor"]}
    ).json
    assert [k["id"] for k in first["items"] + rest["items"]] == ids
    assert rest["next_cursor"] is None


def test_a_key_has_no_login_to_end(client, make_user, login):
    _, key = _key(client, login(make_user("operator")))
    logout = client.post("/api/v1/auth/logout", headers=key)
    assert logout.status_code == 401 and logout.json["code"] == "not_a_login"
    password = client.post(
        "/api/v1/auth/password",
        headers=key,
        json={"current_password": "password123", "new_password": "another-password"},
    )
    assert password.status_code == 401 and password.json["code"] == "not_a_login"
    assert client.get(ME, headers=key).status_code == 200


def test_a_narrow_key_cannot_manage_its_owners_other_keys(client, make_user, login):
    headers = login(make_user("operator"))
    other_id, _other = _key(client, headers, name="billing")
    narrow_id, narrow = _key(client, headers, name="dashboard", permissions=["sessions:read"])
    refused = client.delete(f"{KEYS}/{other_id}", headers=narrow)
    assert refused.status_code == 403 and refused.json["code"] == "api_key_management_denied"
    assert client.get(f"{KEYS}/{other_id}", headers=narrow).status_code == 403
    minted = _create(client, narrow, name="mine now", permissions=["sessions:read"])
    assert minted.status_code == 403
    assert [k["id"] for k in client.get(KEYS, headers=narrow).json["items"]] == [narrow_id]
    assert db.session.get(ApiKey, other_id).revoked_at is None
    # A key may always see and revoke itself (a leaked key can end itself).
    assert client.get(f"{KEYS}/{narrow_id}", headers=narrow).status_code == 200
    assert client.delete(f"{KEYS}/{narrow_id}", headers=narrow).status_code == 204
    assert client.get(ME, headers=narrow).status_code == 401


def test_a_key_with_users_manage_manages_keys_like_its_owner(client, admin_headers):
    other_id, _other = _key(client, admin_headers, name="billing")
    _manager_id, manager = _key(
        client, admin_headers, name="ops", permissions=["users:manage", "sessions:read"]
    )
    assert _create(client, manager, permissions=["sessions:read"]).status_code == 201
    assert client.delete(f"{KEYS}/{other_id}", headers=manager).status_code == 204


def test_a_key_revoked_by_another_process_stops_within_the_cache_time(
    client, make_user, login, monkeypatch
):
    """login_cache remembers a valid key for SECONDS: a revocation this process did not
    make (here a Core UPDATE) holds once that time has passed; a wrong secret with a
    remembered prefix is refused all along."""
    key_id, key = _key(client, login(make_user("operator")))
    assert client.get(ME, headers=key).status_code == 200  # remembered now
    wrong = {"X-API-Key": key["X-API-Key"][:-4] + "xxxx"}
    assert client.get(ME, headers=wrong).json["code"] == "api_key_invalid"
    with db.engine.begin() as connection:
        connection.execute(
            sa.update(ApiKey.__table__).where(ApiKey.id == key_id).values(revoked_at=utcnow())
        )
    assert client.get(ME, headers=key).status_code == 200  # within the cache time
    later = time.monotonic() + login_cache.SECONDS + 0.01
    monkeypatch.setattr(login_cache.time, "monotonic", lambda: later)
    after = client.get(ME, headers=key)
    assert after.status_code == 401 and after.json["code"] == "api_key_revoked"
