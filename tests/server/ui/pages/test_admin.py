"""Administration pages: users and groups, through the accounts service."""

from __future__ import annotations

from server.auth import accounts
from server.models import User, db
from tests.server.ui.conftest import flashes


def test_create_edit_block_unblock_delete_a_user(admin_browser):
    created = admin_browser.submit(
        "/admin/users",
        {
            "username": "siti",
            "password": "password123",
            "group": "field",
            "display_name": "Siti",
            "email": "siti@example.com",
        },
    )
    assert created.status_code == 303
    siti = accounts.find_user("siti")
    url = f"/admin/users/{siti.id}"
    assert created.headers["Location"] == url
    assert "Siti" in admin_browser.get("/admin/users?q=sit").get_data(as_text=True)
    admin_browser.submit(
        url, {"display_name": "Siti N.", "group": "operator", "email": "", "phone": "", "next": url}
    )
    db.session.refresh(siti)
    assert (siti.display_name, siti.group.name, siti.email) == ("Siti N.", "operator", None)
    admin_browser.submit(f"{url}/block", {"reason": "on leave", "next": url})
    db.session.refresh(siti)
    assert siti.is_blocked and siti.block_reason == "on leave"
    admin_browser.submit(f"{url}/unblock", {"next": url})
    db.session.refresh(siti)
    assert not siti.is_blocked
    admin_browser.submit(f"{url}/delete")
    assert accounts.find_user("siti") is None


def test_user_errors_are_shown(admin_browser, make_user):
    answer = admin_browser.submit(
        "/admin/users", {"username": "x", "password": "short", "next": "/admin/users"}
    )
    assert "username: Use 3-64" in flashes(admin_browser.get(answer.headers["Location"]))
    me = db.session.scalar(db.select(User).where(User.username.startswith("admin")))
    answer = admin_browser.submit(f"/admin/users/{me.id}/delete", {"next": "/admin/users"})
    assert "cannot delete yourself" in flashes(admin_browser.get(answer.headers["Location"]))
    assert admin_browser.get("/admin/users/999999").status_code == 404


def test_groups_and_their_permissions(admin_browser):
    admin_browser.submit(
        "/admin/groups",
        {"name": "viewers", "description": "Read only", "permissions": ["sessions:read"]},
    )
    group = accounts.get_group("viewers")
    assert group.permissions == ["sessions:read"]
    admin_browser.submit(
        "/admin/groups/viewers",
        {
            "description": "Read and send",
            "permissions": ["sessions:read", "messages:send"],
            "next": "/admin/groups",
        },
    )
    db.session.refresh(group)
    assert group.permissions == ["messages:send", "sessions:read"]
    page = admin_browser.get("/admin/groups").get_data(as_text=True)
    assert "Read and send" in page
    refused = admin_browser.submit("/admin/groups/operator/delete", {"next": "/admin/groups"})
    assert "built-in group" in flashes(admin_browser.get(refused.headers["Location"]))
    admin_browser.submit("/admin/groups/viewers/delete")
    assert 'id="g-viewers"' not in admin_browser.get("/admin/groups").get_data(as_text=True)
