"""Group and poll events of a sandbox session, end to end through the runtime: what the
session does to its groups, what virtual contacts do to them, and votes in its polls, as
they appear in the event log; and the sandbox API's answers to bad requests."""

from __future__ import annotations

import sqlalchemy as sa

from server.models import SandboxDelivery, db
from tests.server.conftest import wait_for

ME = "6281100000001@s.whatsapp.net"  # what the sandbox_session fixture pairs as
BUDI, SARI = "628123456789", "6281355556666"
GROUP = "120363012345678901@g.us"


def _me(by):
    return by is not None and (by["jid"], by["phone"]) == (ME, "6281100000001")


def _events(client, headers, prefix: str, count: int) -> list[dict]:
    """The data of the first ``count`` events whose type starts with ``prefix``, oldest
    first, once that many are in the log."""

    def found():
        items = client.get(f"/api/v1/events/log?type={prefix}&limit=100", headers=headers).json[
            "items"
        ]
        return items if len(items) >= count else None

    items = wait_for(found, what=f"{count} {prefix} events")
    assert len(items) == count, [i["type"] for i in items]
    return [{"type": i["type"], **i["data"]} for i in items]


def _say_in_group(client, headers, sid, sender=BUDI, group=GROUP, text="Halo"):
    said = client.post(
        f"/api/v1/sandbox/sessions/{sid}/messages",
        headers=headers,
        json={"from": sender, "name": "Budi", "text": text, "group": group},
    )
    assert said.status_code == 201, said.json


def _as_contact(client, headers, sid, tail: str, method: str = "post", **body):
    return getattr(client, method)(
        f"/api/v1/sandbox/sessions/{sid}{tail}", headers=headers, json=body
    )


# --- the session's own group changes ---------------------------------------------------


def test_what_the_session_does_to_its_groups_is_reported(client, operator_headers, sandbox_session):
    base = f"/api/v1/sessions/{sandbox_session}/groups"
    group = client.post(
        base, headers=operator_headers, json={"name": "Tim", "participants": ["0812-1111-2222"]}
    ).json
    url = f"{base}/{group['jid']}"
    assert (
        client.patch(
            url,
            headers=operator_headers,
            json={"name": "Tim Utara", "topic": "Laporan", "announce": True},
        ).status_code
        == 200
    )
    assert (
        client.patch(url, headers=operator_headers, json={"name": "Tim Utara"}).status_code == 200
    )  # the same name again: nothing changed, no event
    changed = client.post(
        f"{url}/participants",
        headers=operator_headers,
        json={"action": "add", "participants": ["+62 813 5555 6666", "0812-1111-2222"]},
    )
    assert [r["ok"] for r in changed.json["results"]] == [True, False]
    link = client.get(f"{url}/invite-link", headers=operator_headers).json["link"]
    assert (
        client.post(
            f"{url}/participants",
            headers=operator_headers,
            json={"action": "promote", "participants": ["0812-1111-2222"]},
        ).status_code
        == 200
    )
    assert client.post(f"{url}/leave", headers=operator_headers).status_code == 204
    assert (
        client.post(f"{base}/join", headers=operator_headers, json={"link": link}).status_code
        == 200
    )

    joined, *updates, added, promoted, left, rejoined = _events(
        client, operator_headers, "group.", 8
    )
    where = {"jid": group["jid"], "phone": None, "lid": None}
    assert joined["type"] == "group.joined" and joined["name"] == "Tim" and _me(joined["by"])
    assert {k: joined["group"][k] for k in where} == where
    assert [(u["type"], u["name"], u["topic"], u["announce"], u["locked"]) for u in updates] == [
        ("group.updated", "Tim Utara", None, None, None),
        ("group.updated", None, "Laporan", None, None),
        ("group.updated", None, None, True, None),
    ]
    assert all(_me(u["by"]) and u["group"]["name"] == "Tim Utara" for u in updates)
    assert (added["type"], added["action"], _me(added["by"])) == ("group.participants", "add", True)
    assert [(p["jid"], p["phone"]) for p in added["participants"]] == [
        (f"{SARI}@s.whatsapp.net", SARI)
    ]  # only who was added
    assert (promoted["action"], [p["phone"] for p in promoted["participants"]]) == (
        "promote",
        ["6281211112222"],
    )
    assert (left["type"], left["reason"], _me(left["by"])) == ("group.left", "left", True)
    assert (rejoined["type"], rejoined["by"], rejoined["name"]) == (
        "group.joined",
        None,
        "Tim Utara",
    )


# --- virtual contacts act on the session's groups --------------------------------------


def test_a_contact_adds_removes_and_renames(client, operator_headers, sandbox_session):
    _say_in_group(client, operator_headers, sandbox_session)  # Budi makes it, adds the session
    people = _as_contact(
        client,
        operator_headers,
        sandbox_session,
        f"/groups/{GROUP}/participants",
        **{"from": "0812-3456-789", "name": "Budi", "action": "add", "participants": [SARI]},
    )
    assert people.status_code == 200, people.json
    assert people.json["results"] == [{"jid": f"{SARI}@s.whatsapp.net", "ok": True, "error": None}]
    renamed = _as_contact(
        client,
        operator_headers,
        sandbox_session,
        f"/groups/{GROUP}",
        "patch",
        **{"from": BUDI, "from_name": "Budi", "name": "Warga RT 5", "topic": "Info warga"},
    )
    assert renamed.status_code == 200 and renamed.json == {"changed": ["name", "topic"]}
    for action in ("remove", "add"):  # the session out, then back in
        moved = _as_contact(
            client,
            operator_headers,
            sandbox_session,
            f"/groups/{GROUP.removesuffix('@g.us')}/participants",
            **{"from": BUDI, "name": "Budi", "action": action, "participants": ["6281100000001"]},
        )
        assert moved.status_code == 200 and moved.json["results"][0]["ok"], moved.json

    joined, added, name, topic, removed, back = _events(client, operator_headers, "group.", 6)
    budi = {"jid": f"{BUDI}@s.whatsapp.net", "phone": BUDI, "lid": None, "name": "Budi"}
    assert (joined["type"], joined["by"], joined["group"]["jid"]) == ("group.joined", budi, GROUP)
    assert (added["action"], added["by"], added["participants"]) == (
        "add",
        budi,
        [{"jid": f"{SARI}@s.whatsapp.net", "phone": SARI, "lid": None, "name": None}],
    )
    assert (name["type"], name["name"], name["topic"], name["by"]) == (
        "group.updated",
        "Warga RT 5",
        None,
        budi,
    )
    assert (topic["name"], topic["topic"]) == (None, "Info warga")
    assert (removed["type"], removed["reason"], removed["by"]) == ("group.left", "removed", budi)
    assert (back["type"], back["by"], back["name"]) == ("group.joined", budi, "Warga RT 5")
    # The session sees its groups as the contacts left them.
    [group] = client.get(
        f"/api/v1/sessions/{sandbox_session}/groups", headers=operator_headers
    ).json
    assert (group["name"], group["topic"], group["size"]) == ("Warga RT 5", "Info warga", 3)


def test_a_contact_in_a_group_it_is_new_to_is_added(client, operator_headers, sandbox_session):
    _say_in_group(client, operator_headers, sandbox_session)
    _say_in_group(client, operator_headers, sandbox_session, sender=SARI)
    joined, added = _events(client, operator_headers, "group.", 2)
    assert joined["type"] == "group.joined"
    assert (added["action"], added["by"], [p["phone"] for p in added["participants"]]) == (
        "add",
        None,
        [SARI],
    )


def test_contact_group_actions_say_what_is_wrong(client, operator_headers, sandbox_session):
    _say_in_group(client, operator_headers, sandbox_session)
    _say_in_group(client, operator_headers, sandbox_session, sender=SARI)  # a plain member

    def act(tail, method="post", **body):
        return _as_contact(client, operator_headers, sandbox_session, tail, method, **body)

    add = {"action": "add", "participants": ["0812-7777-8888"]}
    unknown = act("/groups/120363099999999999@g.us/participants", **{"from": BUDI, **add})
    assert unknown.status_code == 404 and unknown.json["code"] == "group_not_found"
    not_admin = act(f"/groups/{GROUP}/participants", **{"from": SARI, **add})
    assert not_admin.status_code == 409 and not_admin.json["code"] == "not_admin"
    assert SARI in not_admin.json["message"]
    stranger = act(f"/groups/{GROUP}", "patch", **{"from": "0812-9999-0000", "name": "x"})
    assert stranger.status_code == 409 and stranger.json["code"] == "not_in_group"
    settings = act(f"/groups/{GROUP}", "patch", **{"from": SARI, "announce": True})
    assert settings.status_code == 409 and settings.json["code"] == "not_admin"
    bad_group = act("/groups/not-a-group/participants", **{"from": BUDI, **add})
    assert bad_group.status_code == 422 and bad_group.json["code"] == "invalid_group_jid"
    bad_from = act(f"/groups/{GROUP}/participants", **{"from": "abc", **add})
    assert bad_from.status_code == 422 and "from" in bad_from.json["errors"]
    bad_person = act(
        f"/groups/{GROUP}/participants", **{"from": BUDI, "action": "add", "participants": ["abc"]}
    )
    assert bad_person.status_code == 422
    nothing = act(f"/groups/{GROUP}", "patch", **{"from": BUDI})
    assert nothing.status_code == 422
    kick = act(
        f"/groups/{GROUP}/participants", **{"from": BUDI, "action": "kick", "participants": [SARI]}
    )
    assert kick.status_code == 422 and "action" in kick.json["errors"]["json"]
    # Nothing happened: only the two events from speaking in the group.
    assert len(_events(client, operator_headers, "group.", 2)) == 2


def test_a_real_session_has_no_virtual_contacts(client, operator_headers):
    created = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "Real", "transport": "neonize", "auto_start": False},
    )
    assert created.status_code == 201, created.json
    refused = _as_contact(
        client,
        operator_headers,
        created.json["id"],
        f"/groups/{GROUP}/participants",
        **{"from": BUDI, "action": "add", "participants": [SARI]},
    )
    assert refused.status_code == 409 and refused.json["code"] == "not_sandbox"


# --- votes -----------------------------------------------------------------------------


def _send_poll(client, headers, sid, to, *, multiple=False) -> dict:
    sent = client.post(
        f"/api/v1/sessions/{sid}/messages",
        headers=headers,
        json={
            "to": to,
            "type": "poll",
            "poll": {
                "question": "Rapat kapan?",
                "options": ["Senin", "Selasa", "Rabu"],
                "multiple": multiple,
            },
        },
    )
    assert sent.status_code == 202, sent.json
    wait_for(
        lambda: db.session.scalar(
            sa.select(SandboxDelivery).where(
                SandboxDelivery.session_id == sid, SandboxDelivery.wa_id == sent.json["wa_id"]
            )
        ),
        what="the poll delivered",
    )
    return sent.json


def _vote(client, headers, sid, poll_id, options, sender=BUDI):
    return client.post(
        f"/api/v1/sandbox/sessions/{sid}/polls/{poll_id}/votes",
        headers=headers,
        json={"from": sender, "name": "Budi", "options": options},
    )


def test_a_contact_votes_and_takes_the_vote_back(client, operator_headers, fast):
    poll = _send_poll(client, operator_headers, fast, "0812-3456-789", multiple=True)
    voted = _vote(client, operator_headers, fast, poll["wa_id"], ["Rabu", "Senin"])
    assert voted.status_code == 201, voted.json
    assert voted.json == {
        "poll_id": poll["wa_id"],
        "voter": f"{BUDI}@s.whatsapp.net",
        "options": ["Senin", "Rabu"],
    }  # in the poll's order
    # By Kabar's own message id too; an empty list takes the vote back.
    assert _vote(client, operator_headers, fast, poll["id"], []).status_code == 201

    first, second = _events(client, operator_headers, "poll.vote", 2)
    budi = {"jid": f"{BUDI}@s.whatsapp.net", "phone": BUDI, "lid": None, "name": "Budi"}
    assert (first["poll_id"], first["voter"], first["chat"], first["options"]) == (
        poll["wa_id"],
        budi,
        budi,
        ["Senin", "Rabu"],
    )
    assert (second["poll_id"], second["options"]) == (poll["wa_id"], [])


def test_a_member_votes_in_a_group_poll(client, operator_headers, fast):
    _say_in_group(client, operator_headers, fast)
    poll = _send_poll(client, operator_headers, fast, GROUP)
    assert _vote(client, operator_headers, fast, poll["wa_id"], ["Selasa"]).status_code == 201
    [vote] = _events(client, operator_headers, "poll.vote", 1)
    assert (vote["chat"]["jid"], vote["voter"]["phone"], vote["options"]) == (
        GROUP,
        BUDI,
        ["Selasa"],
    )
    outsider = _vote(client, operator_headers, fast, poll["wa_id"], ["Senin"], sender=SARI)
    assert outsider.status_code == 409 and outsider.json["code"] == "not_in_group"


def test_votes_that_cannot_be_say_why(client, operator_headers, fast):
    poll = _send_poll(client, operator_headers, fast, "0812-3456-789")
    text = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        json={"to": "0812-3456-789", "text": "bukan poll"},
    ).json
    wait_for(
        lambda: db.session.scalar(
            sa.select(SandboxDelivery).where(SandboxDelivery.wa_id == text["wa_id"])
        ),
        what="the text delivered",
    )
    for missing in ("3EB0000000000000000000", text["wa_id"]):
        answer = _vote(client, operator_headers, fast, missing, ["Senin"])
        assert answer.status_code == 404 and answer.json["code"] == "poll_not_found"
    unknown = _vote(client, operator_headers, fast, poll["wa_id"], ["Kamis"])
    assert unknown.status_code == 422 and unknown.json["code"] == "invalid_poll_option"
    assert "Kamis" in unknown.json["message"] and "Senin" in unknown.json["message"]
    two = _vote(client, operator_headers, fast, poll["wa_id"], ["Senin", "Rabu"])
    assert two.status_code == 422 and "one choice" in two.json["message"]
    someone_else = _vote(client, operator_headers, fast, poll["wa_id"], ["Senin"], sender=SARI)
    assert someone_else.status_code == 409
    assert someone_else.json["code"] == "not_poll_recipient"
    missing_options = client.post(
        f"/api/v1/sandbox/sessions/{fast}/polls/{poll['wa_id']}/votes",
        headers=operator_headers,
        json={"from": BUDI},
    )
    assert missing_options.status_code == 422
    assert (
        client.get("/api/v1/events/log?type=poll.vote", headers=operator_headers).json["items"]
        == []
    )
