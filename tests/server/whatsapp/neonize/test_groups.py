"""Group notifications as events, and the group calls."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.events import (
    GroupJoined,
    GroupLeft,
    GroupParticipants,
    GroupUpdated,
)
from server.whatsapp.transport import TransportError
from tests.server.whatsapp.neonize.conftest import (
    ALICE,
    ALICE_LID,
    GROUP,
    ME,
    N,
    feed,
    fill_required,
    jid,
    nz,
)


def group_info_ev(**fields):
    fields.setdefault("JID", GROUP)
    fields.setdefault("Timestamp", 1_700_000_200)
    return fill_required(N.GroupInfoEvent(**fields))


def test_joined_group_by_link_by_someone_and_by_creating_it(live):
    transport, spy, recorder = live
    info = fill_required(
        N.GroupInfo(
            JID=GROUP,
            GroupName=N.GroupName(Name="Team"),
            Participants=[
                fill_required(N.GroupParticipant(JID=ALICE_LID, LID=ALICE_LID, PhoneNumber=ALICE))
            ],
        )
    )
    feed(spy, fill_required(N.JoinedGroup(Reason="invite", Type="invite", GroupInfo=info)))
    feed(spy, fill_required(N.JoinedGroup(GroupInfo=info, Sender=ALICE_LID, SenderPN=ALICE)))
    feed(spy, fill_required(N.JoinedGroup(CreateKey="3EB0CREATE", GroupInfo=info)))
    by_link, added, created = recorder.of(GroupJoined)
    assert (by_link.group.jid, by_link.group.name, by_link.name, by_link.by) == (
        "120363012345678901@g.us",
        "Team",
        "Team",
        None,
    )
    assert (added.by.jid, added.by.phone) == ("123456789012345@lid", "15550001111")
    assert (created.by.jid, created.by.phone, created.by.lid) == (
        "15559990000@s.whatsapp.net",
        "15559990000",
        "999888777@lid",
    )
    # The participant list taught Alice's phone: later events need no LID look-up.
    feed(spy, group_info_ev(Sender=ALICE_LID, Name=N.GroupName(Name="Team 2")))
    assert recorder.last(GroupUpdated).by.phone == "15550001111"
    assert not spy.called("get_pn_from_lid")


def test_group_info_changes_and_participants(live):
    transport, spy, recorder = live
    bob, bob_lid = jid("15550002222"), jid("222333444555666", "lid")
    spy.pn_of_lid["222333444555666"] = "15550002222"
    feed(
        spy,
        group_info_ev(
            Sender=ALICE,
            Name=N.GroupName(Name="Tim"),
            Topic=N.GroupTopic(Topic="Rapat"),
            Announce=N.GroupAnnounce(IsAnnounce=True),
            Locked=N.GroupLocked(isLocked=False),
        ),
    )
    feed(spy, group_info_ev(Sender=ME, Topic=N.GroupTopic(TopicDeleted=True)))
    everything, topic_gone = recorder.of(GroupUpdated)
    assert (everything.name, everything.topic, everything.announce, everything.locked) == (
        "Tim",
        "Rapat",
        True,
        False,
    )
    assert (everything.group.name, everything.by.phone) == ("Tim", "15550001111")
    assert everything.timestamp == datetime.fromtimestamp(1_700_000_200, UTC)
    assert (topic_gone.name, topic_gone.topic, topic_gone.announce) == (None, "", None)
    assert topic_gone.by.name == "Kabar Bot"  # this account, by its identity
    feed(spy, group_info_ev(Sender=ALICE, Join=[bob_lid], Promote=[bob, ME]))
    feed(spy, group_info_ev(JoinReason="invite", Join=[bob]))
    feed(spy, group_info_ev(Sender=ALICE, Leave=[bob], Demote=[ALICE]))
    moves = [
        (e.action, tuple(p.phone for p in e.participants), e.by and e.by.phone)
        for e in recorder.of(GroupParticipants)
    ]
    assert moves == [
        ("add", ("15550002222",), "15550001111"),
        ("promote", ("15550002222", "15559990000"), "15550001111"),
        ("join", ("15550002222",), None),
        ("remove", ("15550002222",), "15550001111"),
        ("demote", ("15550001111",), "15550001111"),
    ]
    assert not recorder.of(GroupLeft) and not recorder.of(GroupJoined)


def test_leaving_being_removed_and_a_deleted_group(live):
    transport, spy, recorder = live
    me_lid = jid("999888777", "lid")
    feed(spy, group_info_ev(Sender=ALICE, Leave=[ME, jid("15550002222")]))
    feed(spy, group_info_ev(Sender=me_lid, Leave=[me_lid]))
    feed(spy, group_info_ev(Sender=ALICE, Delete=N.GroupDelete(Deleted=True)))
    removed, left, deleted = recorder.of(GroupLeft)
    assert (removed.reason, removed.by.phone) == ("removed", "15550001111")
    assert (left.reason, left.by.jid) == ("left", "15559990000@s.whatsapp.net")
    assert (deleted.reason, deleted.group.jid) == ("deleted", "120363012345678901@g.us")
    [others] = recorder.of(GroupParticipants)  # this account is never in its own lists
    assert (others.action, [p.phone for p in others.participants]) == ("remove", ["15550002222"])


def test_group_operations(live):
    transport, spy, _ = live
    group = transport.group_info("120363012345678901@g.us")
    assert (group.jid, group.name, group.topic, group.owner, group.announce) == (
        "120363012345678901@g.us",
        "Team",
        "Plans",
        "15559990000@s.whatsapp.net",
        True,
    )
    assert group.participants == (
        {
            "jid": "123456789012345@lid",
            "phone": "15550001111",
            "lid": None,
            "admin": True,
            "super_admin": False,
            "name": "Alice",
        },
    )
    created = transport.create_group("New", ["15550001111@s.whatsapp.net"])
    assert created.name == "New" and spy.called("create_group")[0][0][1][0].User == "15550001111"
    transport.set_group_topic("120363012345678901@g.us", "Topic")
    assert spy.called("set_group_topic")[0][0][1:] == ("", "", "Topic")
    assert transport.group_invite_link("120363012345678901@g.us", reset=True).endswith("AbCdEf")
    assert spy.called("get_group_invite_link")[0][1] == {"revoke": True}
    assert transport.join_group("https://chat.whatsapp.com/XyZ123") == "120363012345678901@g.us"
    assert spy.called("join_group_with_link") == [(("XyZ123",), {})]
    result = transport.update_participants(
        "120363012345678901@g.us", ["1@s.whatsapp.net", "2@s.whatsapp.net"], "add"
    )
    assert result == [
        {"jid": "1@s.whatsapp.net", "ok": True, "error": None},
        {"jid": "2@s.whatsapp.net", "ok": False, "error": "403"},
    ]
    assert spy.called("update_group_participants")[0][0][2] is nz.enum.ParticipantChange.ADD
    with pytest.raises(TransportError):
        transport.update_participants("120363012345678901@g.us", ["1@s.whatsapp.net"], "ban")
