"""The sandbox's group rules and their store, without a runtime or a database."""

from __future__ import annotations

import json
import threading

import pytest

from server.whatsapp.sandbox_groups import GroupStore
from server.whatsapp.transport import TransportError

ME, BUDI, SARI = (f"62811000000{n}@s.whatsapp.net" for n in (1, 2, 3))


@pytest.fixture
def store(tmp_path) -> GroupStore:
    return GroupStore(
        tmp_path / "sandbox-groups.json", unregistered={"628110000009"}, lock=threading.RLock()
    )


def test_the_store_is_a_json_file_written_whole(store):
    group = store.create(ME, "Tim", [BUDI, "628110000009@s.whatsapp.net"])
    assert [p["jid"] for p in group.participants] == [ME, BUDI]  # not on WhatsApp: left out
    assert list(json.loads(store.path.read_text())) == [group.jid]
    assert [p.name for p in store.path.parent.iterdir()] == ["sandbox-groups.json"]
    fresh = GroupStore(store.path, unregistered=set(), lock=threading.RLock())
    assert fresh.info(group.jid, ME) == group  # what a restarted transport sees


def test_the_last_admin_out_hands_over_and_the_last_one_out_ends_the_group(store):
    jid = store.create(ME, "Tim", [BUDI, SARI]).jid
    store.leave(jid, ME)
    admins = [p["jid"] for p in store.info(jid, BUDI).participants if p["is_admin"]]
    assert admins == [BUDI]
    store.leave(jid, BUDI)
    store.leave(jid, SARI)
    with pytest.raises(TransportError) as error:
        store.info(jid, SARI)
    assert error.value.code == "group_not_found" and error.value.permanent


def test_locked_groups_keep_their_info_to_admins(store):
    jid = store.create(ME, "Tim", [BUDI]).jid
    store.edit(jid, BUDI, "topic", "open to members")
    store.edit(jid, ME, "locked", True)
    with pytest.raises(TransportError) as error:
        store.edit(jid, BUDI, "name", "mine now")
    assert error.value.code == "not_admin"


def test_bad_input_and_a_broken_store_say_what_is_wrong(store):
    with pytest.raises(TransportError) as error:
        store.create(ME, " ", [])
    assert error.value.code == "invalid_input"
    with pytest.raises(TransportError) as error:
        store.spoken_in("not-a-group", ME, BUDI)
    assert error.value.code == "invalid_group_jid"
    with pytest.raises(TransportError) as error:
        store.update_participants("1@g.us", ME, [BUDI], "kick")
    assert error.value.code == "invalid_input"
    store.path.write_text("{half a fi")
    with pytest.raises(TransportError) as error:
        store.of(ME)
    assert error.value.code == "sandbox_store_error" and not error.value.permanent


def test_changes_answer_what_changed_for_the_events(store):
    jid = store.create(ME, "Tim", [BUDI]).jid
    assert store.edit(jid, ME, "name", "Tim 2") is True
    assert store.edit(jid, ME, "name", "Tim 2") is False  # the same again: no change
    store.edit(jid, ME, "locked", False)
    link = store.invite_link(jid, ME, reset=False)
    assert store.join(SARI, link) == (jid, True)
    assert store.join(SARI, link) == (jid, False)
    assert store.spoken_in(jid, ME, BUDI) == (jid, "Tim 2", None)
    store.leave(jid, SARI)
    assert store.spoken_in(jid, ME, SARI) == (jid, "Tim 2", "added")
    assert store.spoken_in("120363000000000009", ME, BUDI)[2] == "created"
    assert store.peek(jid)["participants"] == {ME: "superadmin", BUDI: "member", SARI: "member"}
    assert store.peek("120363099999999999@g.us") is None


def test_a_contact_acts_by_the_same_rules_and_errors_name_it(store):
    jid = store.create(BUDI, "Warga", [ME]).jid  # Budi's group; the session a member
    results = store.update_participants(jid, BUDI, [ME, SARI], "remove", contact=True)
    assert [r["ok"] for r in results] == [True, False]
    with pytest.raises(TransportError) as error:
        store.update_participants(jid, SARI, [ME], "add", contact=True)
    assert error.value.code == "not_in_group" and "628110000003 is not in group" in str(error.value)
    store.update_participants(jid, BUDI, [SARI], "add", contact=True)
    with pytest.raises(TransportError) as error:
        store.update_participants(jid, SARI, [ME], "add", contact=True)
    assert error.value.code == "not_admin" and "628110000003 is not an admin" in str(error.value)
