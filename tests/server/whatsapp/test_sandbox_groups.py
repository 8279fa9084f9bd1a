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
    return GroupStore(tmp_path / "sandbox-groups.json", unregistered={"628110000009"},
                      lock=threading.RLock())


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
