"""WhatsApp groups of a sandbox session: create, settings, links, participants, leave."""

from __future__ import annotations

import re

import sqlalchemy as sa

from server import sessions
from server.models import SandboxDelivery, WaSession, db
from tests.server.conftest import wait_for

ME = "6281100000001@s.whatsapp.net"  # what the sandbox_session fixture pairs as


def _url(sid: str, tail: str = "") -> str:
    return f"/api/v1/sessions/{sid}/groups{tail}"


def _create(client, headers, sid, **body):
    response = client.post(
        _url(sid),
        headers=headers,
        json={"name": "Tim Lapangan", "participants": ["0812-1111-2222", "628133334444"], **body},
    )
    assert response.status_code == 201, response.json
    return response.json


def _roles(group: dict) -> dict[str, tuple[bool, bool]]:
    return {p["jid"]: (p["is_admin"], p["is_super_admin"]) for p in group["participants"]}


def test_create_list_rename_and_settings(client, operator_headers, sandbox_session):
    group = _create(client, operator_headers, sandbox_session)
    assert re.fullmatch(r"1203630\d{11}@g\.us", group["jid"])
    assert group["name"] == "Tim Lapangan" and group["owner"] == ME and group["size"] == 3
    assert _roles(group) == {
        ME: (True, True),
        "6281211112222@s.whatsapp.net": (False, False),
        "628133334444@s.whatsapp.net": (False, False),
    }
    listed = client.get(_url(sandbox_session), headers=operator_headers)
    assert listed.status_code == 200
    assert [(g["jid"], g["name"]) for g in listed.json] == [(group["jid"], "Tim Lapangan")]

    url = _url(sandbox_session, f"/{group['jid']}")
    changed = client.patch(
        url,
        headers=operator_headers,
        json={
            "name": "Tim Lapangan Utara",
            "topic": "Laporan harian",
            "announce": True,
            "locked": True,
        },
    )
    assert changed.status_code == 200, changed.json
    assert (
        changed.json["name"],
        changed.json["topic"],
        changed.json["announce"],
        changed.json["locked"],
    ) == ("Tim Lapangan Utara", "Laporan harian", True, True)
    # The bare id (without @g.us) names the same group.
    bare = client.get(
        _url(sandbox_session, f"/{group['jid'].removesuffix('@g.us')}"), headers=operator_headers
    )
    assert bare.status_code == 200 and bare.json["name"] == "Tim Lapangan Utara"
    # Nothing to change is a clear 422, as is a name WhatsApp would refuse.
    assert client.patch(url, headers=operator_headers, json={}).status_code == 422
    assert client.patch(url, headers=operator_headers, json={"name": "x" * 101}).status_code == 422


def test_invite_links_participants_leave_and_join(client, operator_headers, sandbox_session):
    group = _create(client, operator_headers, sandbox_session, participants=[])
    url = _url(sandbox_session, f"/{group['jid']}")
    link = client.get(f"{url}/invite-link", headers=operator_headers)
    assert link.status_code == 200 and link.json["link"].startswith("https://chat.whatsapp.com/")
    again = client.get(f"{url}/invite-link", headers=operator_headers).json["link"]
    assert again == link.json["link"]  # stable until reset
    reset = client.post(f"{url}/invite-link/reset", headers=operator_headers)
    assert reset.status_code == 200 and reset.json["link"] != link.json["link"]

    def change(action, *people):
        response = client.post(
            f"{url}/participants",
            headers=operator_headers,
            json={"action": action, "participants": list(people)},
        )
        assert response.status_code == 200, response.json
        return [(r["jid"], r["ok"], r["error"]) for r in response.json["results"]]

    budi, sari = "6281211112222@s.whatsapp.net", "6281355556666@s.whatsapp.net"
    assert change("add", "0812-1111-2222", "+62 813 5555 6666") == [
        (budi, True, None),
        (sari, True, None),
    ]
    assert change("add", budi) == [(budi, False, "already_participant")]
    assert change("promote", budi) == [(budi, True, None)]
    assert change("remove", sari, "081399998888") == [
        (sari, True, None),
        ("6281399998888@s.whatsapp.net", False, "not_participant"),
    ]
    assert change("demote", ME) == [(ME, False, "not_allowed")]
    info = client.get(url, headers=operator_headers).json
    assert _roles(info) == {ME: (True, True), budi: (True, False)}
    bad = client.post(
        f"{url}/participants",
        headers=operator_headers,
        json={"action": "kick", "participants": ["abc"]},
    )
    assert bad.status_code == 422 and set(bad.json["errors"]["json"]) == {"action"}
    bad = client.post(
        f"{url}/participants",
        headers=operator_headers,
        json={"action": "add", "participants": ["0812-1111-2222", "abc"]},
    )
    assert bad.status_code == 422 and "1" in bad.json["errors"]["json"]["participants"]

    assert client.post(f"{url}/leave", headers=operator_headers).status_code == 204
    assert client.get(_url(sandbox_session), headers=operator_headers).json == []
    gone = client.get(url, headers=operator_headers)
    assert gone.status_code == 409 and gone.json["code"] == "not_in_group"
    # Budi stayed (as admin), so the group is still there to join by its current link.
    old = client.post(
        _url(sandbox_session, "/join"), headers=operator_headers, json={"link": link.json["link"]}
    )
    assert old.status_code == 404 and old.json["code"] == "invite_link_invalid"
    joined = client.post(
        _url(sandbox_session, "/join"), headers=operator_headers, json={"link": reset.json["link"]}
    )
    assert joined.status_code == 200 and joined.json["jid"] == group["jid"]
    assert _roles(joined.json)[ME] == (False, False)  # back as a plain member
    not_admin = client.get(f"{url}/invite-link", headers=operator_headers)
    assert not_admin.status_code == 409 and not_admin.json["code"] == "not_admin"


def test_send_to_a_group_like_to_a_person(client, operator_headers, fast):
    group = _create(client, operator_headers, fast)
    sent = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        json={"to": group["jid"], "text": "Rapat jam 3"},
    )
    assert sent.status_code == 202 and sent.json["to"] == group["jid"]
    delivery = wait_for(
        lambda: db.session.scalar(
            sa.select(SandboxDelivery).where(SandboxDelivery.session_id == fast)
        ),
        what="the delivery",
    )
    assert delivery.to_jid == group["jid"] and delivery.content["text"] == "Rapat jam 3"
    chats = wait_for(
        lambda: client.get(f"/api/v1/sessions/{fast}/chats", headers=operator_headers).json[
            "items"
        ],
        what="chat",
    )
    assert [(c["jid"], c["is_group"], c["name"], c["last_message"]["text"]) for c in chats] == [
        (group["jid"], True, "Tim Lapangan", "Rapat jam 3")
    ]


def test_a_contact_speaking_in_a_new_group_puts_the_session_in_it(
    client, operator_headers, sandbox_session
):
    said = client.post(
        f"/api/v1/sandbox/sessions/{sandbox_session}/messages",
        headers=operator_headers,
        json={
            "from": "0812 3456 789",
            "name": "Budi",
            "text": "Halo semua",
            "group": "120363012345678901",
        },
    )
    assert said.status_code == 201, said.json
    [group] = client.get(_url(sandbox_session), headers=operator_headers).json
    assert group["jid"] == "120363012345678901@g.us"
    assert _roles(group) == {"628123456789@s.whatsapp.net": (True, True), ME: (False, False)}
    url = _url(sandbox_session, f"/{group['jid']}")
    # Not an admin: the open info (name) may change, the admin settings may not.
    assert (
        client.patch(url, headers=operator_headers, json={"name": "Warga RT 5"}).status_code == 200
    )
    refused = client.patch(url, headers=operator_headers, json={"announce": True})
    assert refused.status_code == 409 and refused.json["code"] == "not_admin"
    assert "admin" in refused.json["message"]
    [chat] = client.get(f"/api/v1/sessions/{sandbox_session}/chats", headers=operator_headers).json[
        "items"
    ]
    assert (chat["jid"], chat["is_group"], chat["name"], chat["unread"]) == (
        group["jid"],
        True,
        "Warga RT 5",
        1,
    )
    assert chat["last_message"]["sender_name"] == "Budi"


def test_groups_survive_a_restart_of_the_transport(client, operator_headers, sandbox_session):
    group = _create(client, operator_headers, sandbox_session)
    assert (sessions.store_dir(sandbox_session) / "sandbox-groups.json").is_file()
    client.post(f"/api/v1/sessions/{sandbox_session}/stop", headers=operator_headers)
    wait_for(lambda: db.session.get(WaSession, sandbox_session).status == "stopped")
    stopped = client.get(_url(sandbox_session), headers=operator_headers)
    assert stopped.status_code == 503 and stopped.json["code"] == "session_not_running"
    client.post(f"/api/v1/sessions/{sandbox_session}/start", headers=operator_headers)
    wait_for(lambda: db.session.get(WaSession, sandbox_session).status == "connected")
    listed = client.get(_url(sandbox_session), headers=operator_headers).json
    assert [g["jid"] for g in listed] == [group["jid"]]


def test_group_errors_are_clear(client, operator_headers, sandbox_session):
    unknown = client.get(
        _url(sandbox_session, "/120363000000000000@g.us"), headers=operator_headers
    )
    assert unknown.status_code == 404 and unknown.json["code"] == "group_not_found"
    for bad in ("abc", "628123456789@s.whatsapp.net", "1203@g.us"):
        response = client.get(_url(sandbox_session, f"/{bad}"), headers=operator_headers)
        assert response.status_code == 422, bad
        assert response.json["code"] == "invalid_group_jid" and "group" in response.json["message"]
    no_name = client.post(_url(sandbox_session), headers=operator_headers, json={"name": ""})
    assert no_name.status_code == 422
    a_group = client.post(
        _url(sandbox_session),
        headers=operator_headers,
        json={"name": "x", "participants": ["120363012345678901@g.us"]},
    )
    assert a_group.status_code == 422 and "0" in a_group.json["errors"]["json"]["participants"]


def test_runtime_down_and_tenancy(client, operator_headers, make_user, login):
    created = client.post(
        "/api/v1/sessions", headers=operator_headers, json={"label": "x", "transport": "sandbox"}
    ).json
    down = client.get(_url(created["id"]), headers=operator_headers)
    assert down.status_code == 503 and down.json["code"] == "runtime_down"
    other = login(make_user("operator"))
    hidden = client.get(_url(created["id"]), headers=other)
    assert hidden.status_code == 404 and hidden.json["code"] == "session_not_found"
    hidden = client.post(_url(created["id"], "/120363012345678901@g.us/leave"), headers=other)
    assert hidden.status_code == 404
    reader = login(make_user("api"))  # sessions:read and messages:send only
    assert client.post(_url(created["id"]), headers=reader, json={"name": "x"}).status_code == 403
