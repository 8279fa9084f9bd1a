"""/api/v1/groups and /api/v1/permissions: what each group may do, and editing that."""

from __future__ import annotations

import pytest

from server.auth.permissions import PERMISSIONS

GROUPS = "/api/v1/groups"


def _create(client, headers, name="dispatch", permissions=("sessions:read",), **extra):
    return client.post(
        GROUPS, headers=headers, json={"name": name, "permissions": list(permissions), **extra}
    )


def test_the_permission_catalogue(client, make_user, login):
    response = client.get("/api/v1/permissions", headers=login(make_user("field")))
    assert response.status_code == 200  # any logged-in user may read it
    assert {p["name"] for p in response.json} == set(PERMISSIONS)
    assert all(p["description"] for p in response.json)
    assert client.get("/api/v1/permissions").status_code == 401


def test_list_the_builtin_groups(client, admin_headers):
    response = client.get(GROUPS, headers=admin_headers)
    assert response.status_code == 200
    groups = {group["name"]: group for group in response.json}
    assert set(groups) == {"admin", "operator", "field", "api"}
    assert all(group["builtin"] for group in groups.values())
    assert groups["admin"]["permissions"] == sorted(PERMISSIONS)
    assert groups["field"]["permissions"] == ["tickets:read"]
    assert "users:manage" not in groups["operator"]["permissions"]
    one = client.get(f"{GROUPS}/api", headers=admin_headers)
    assert one.status_code == 200 and one.json == groups["api"]


def test_create_a_custom_group(client, admin_headers):
    response = _create(
        client,
        admin_headers,
        permissions=["sessions:read", "messages:send", "sessions:read"],
        description="Dispatch desk",
    )
    assert response.status_code == 201, response.json
    assert response.json == {
        "name": "dispatch",
        "description": "Dispatch desk",
        "permissions": ["messages:send", "sessions:read"],
        "builtin": False,
    }
    listed = client.get(GROUPS, headers=admin_headers).json
    assert "dispatch" in [group["name"] for group in listed]


@pytest.mark.parametrize("name", ["A", "Upper", "1starts-with-digit", "has space", "x" * 65])
def test_a_bad_group_name_is_refused(client, admin_headers, name):
    response = _create(client, admin_headers, name=name)
    assert response.status_code == 422, response.json
    assert "name" in response.json["errors"]


def test_group_create_errors(client, admin_headers):
    assert _create(client, admin_headers).status_code == 201
    duplicate = _create(client, admin_headers)
    assert duplicate.status_code == 409 and duplicate.json["code"] == "group_exists"
    builtin = _create(client, admin_headers, name="admin")
    assert builtin.status_code == 409 and builtin.json["code"] == "group_exists"
    unknown = _create(client, admin_headers, name="other", permissions=["sessions:fly"])
    assert unknown.status_code == 422
    assert "sessions:fly" in unknown.json["errors"]["permissions"][0]
    missing = client.post(GROUPS, headers=admin_headers, json={"name": "other"})
    assert missing.status_code == 422 and "permissions" in missing.json["errors"]["json"]
    assert client.get(f"{GROUPS}/other", headers=admin_headers).status_code == 404


def test_permission_changes_reach_a_logged_in_member_at_their_next_request(
    client, admin_headers, make_user, login
):
    _create(client, admin_headers, name="clerks", permissions=["tickets:read"])
    member = login(make_user("clerks"))
    before = client.get("/api/v1/users", headers=member)
    assert before.status_code == 403 and before.json["code"] == "permission_denied"

    granted = client.patch(
        f"{GROUPS}/clerks",
        headers=admin_headers,
        json={"permissions": ["tickets:read", "users:manage"]},
    )
    assert granted.status_code == 200
    assert granted.json["permissions"] == ["tickets:read", "users:manage"]
    assert client.get("/api/v1/users", headers=member).status_code == 200  # same token

    revoked = client.patch(
        f"{GROUPS}/clerks", headers=admin_headers, json={"permissions": ["tickets:read"]}
    )
    assert revoked.status_code == 200
    after = client.get("/api/v1/users", headers=member)
    assert after.status_code == 403 and after.json["code"] == "permission_denied"
    assert client.get("/api/v1/auth/me", headers=member).json["permissions"] == ["tickets:read"]


def test_patch_validates_and_only_changes_what_it_is_given(client, admin_headers):
    _create(client, admin_headers, name="clerks", permissions=["tickets:read"])
    described = client.patch(
        f"{GROUPS}/clerks", headers=admin_headers, json={"description": "Front desk"}
    )
    assert described.status_code == 200
    assert described.json["description"] == "Front desk"
    assert described.json["permissions"] == ["tickets:read"]
    unknown = client.patch(
        f"{GROUPS}/clerks", headers=admin_headers, json={"permissions": ["nope"]}
    )
    assert unknown.status_code == 422 and "permissions" in unknown.json["errors"]
    assert client.get(f"{GROUPS}/clerks", headers=admin_headers).json["permissions"] == [
        "tickets:read"
    ]
    missing = client.patch(f"{GROUPS}/nobody", headers=admin_headers, json={})
    assert missing.status_code == 404 and missing.json["code"] == "group_not_found"


def test_builtin_groups_other_than_admin_can_be_edited(client, admin_headers, make_user, login):
    field = login(make_user("field"))
    response = client.patch(
        f"{GROUPS}/field",
        headers=admin_headers,
        json={"permissions": ["tickets:read", "tickets:assign"]},
    )
    assert response.status_code == 200
    assert client.get("/api/v1/auth/me", headers=field).json["permissions"] == [
        "tickets:assign",
        "tickets:read",
    ]


def test_the_admin_groups_permissions_are_fixed(client, admin_headers):
    response = client.patch(
        f"{GROUPS}/admin", headers=admin_headers, json={"permissions": ["sessions:read"]}
    )
    assert response.status_code == 409 and response.json["code"] == "admin_group_fixed"
    assert client.get(f"{GROUPS}/admin", headers=admin_headers).json["permissions"] == sorted(
        PERMISSIONS
    )
    assert client.get("/api/v1/users", headers=admin_headers).status_code == 200
    described = client.patch(
        f"{GROUPS}/admin", headers=admin_headers, json={"description": "The IT office"}
    )
    assert described.status_code == 200  # its description may change


def test_deleting_groups(client, admin_headers, make_user):
    builtin = client.delete(f"{GROUPS}/field", headers=admin_headers)
    assert builtin.status_code == 409 and builtin.json["code"] == "builtin_group"

    _create(client, admin_headers, name="clerks")
    member = make_user("clerks")
    in_use = client.delete(f"{GROUPS}/clerks", headers=admin_headers)
    assert in_use.status_code == 409 and in_use.json["code"] == "group_in_use"

    moved = client.patch(
        f"/api/v1/users/{member.id}", headers=admin_headers, json={"group": "field"}
    )
    assert moved.status_code == 200
    assert client.delete(f"{GROUPS}/clerks", headers=admin_headers).status_code == 204
    gone = client.get(f"{GROUPS}/clerks", headers=admin_headers)
    assert gone.status_code == 404 and gone.json["code"] == "group_not_found"
    again = client.delete(f"{GROUPS}/clerks", headers=admin_headers)
    assert again.status_code == 404 and again.json["code"] == "group_not_found"


def test_only_user_managers_edit_groups(client, make_user, login):
    operator = login(make_user("operator"))
    for method, url in (
        ("GET", GROUPS),
        ("POST", GROUPS),
        ("PATCH", f"{GROUPS}/field"),
        ("DELETE", f"{GROUPS}/field"),
    ):
        response = client.open(
            url, method=method, headers=operator, json={} if method in ("POST", "PATCH") else None
        )
        assert response.status_code == 403, (method, url)
        assert response.json["code"] == "permission_denied"
