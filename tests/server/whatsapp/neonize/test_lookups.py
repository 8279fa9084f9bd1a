"""Look-ups through a connected session."""

from __future__ import annotations

import pytest

from server.whatsapp.transport import NotConnected, TransportError
from tests.server.whatsapp.neonize.conftest import (
    N,
    fill_required,
    nz,
)


def test_lookups(live):
    transport, spy, _ = live
    spy.unregistered.add("15550003333")
    answers = transport.is_on_whatsapp(["15550001111", "15550003333"])
    assert [(a.registered, a.jid) for a in answers] == [
        (True, "15550001111@s.whatsapp.net"),
        (False, None),
    ]
    assert (
        transport.profile_picture("15550001111@s.whatsapp.net") == "https://pps.whatsapp.net/p.jpg"
    )
    assert [(g.jid, g.name) for g in transport.groups()] == [("120363012345678901@g.us", "Team")]


def test_profile_picture_none_and_user_info(live, monkeypatch):
    transport, spy, _ = live

    def hidden(jid, extra=None):
        raise nz.exc.GetProfilePictureError(
            fill_required(
                N.GetProfilePictureReturnFunction(
                    Error="the user has hidden their profile picture from you"
                )
            )
        )

    monkeypatch.setattr(spy, "get_profile_picture", hidden)
    assert transport.profile_picture("15550001111@s.whatsapp.net") is None
    (info,) = transport.user_info(["15550001111@s.whatsapp.net"])
    assert info == {
        "jid": "15550001111@s.whatsapp.net",
        "phone": "15550001111",
        "status": "Hey",
        "picture_id": "p1",
        "verified_name": None,
        "devices": ["15550001111:3@s.whatsapp.net"],
    }


def test_lid_lookup_both_ways_and_only_when_connected(live):
    transport, spy, _ = live
    spy.pn_of_lid["123456789012345"] = "15550001111"
    assert transport.lid_lookup(
        ["15550001111@s.whatsapp.net", "123456789012345@lid", "999@lid"]
    ) == [
        {
            "query": "15550001111@s.whatsapp.net",
            "jid": "15550001111@s.whatsapp.net",
            "phone": "15550001111",
            "lid": "123456789012345@lid",
        },
        {
            "query": "123456789012345@lid",
            "jid": "15550001111@s.whatsapp.net",
            "phone": "15550001111",
            "lid": "123456789012345@lid",
        },
        {"query": "999@lid", "jid": None, "phone": None, "lid": "999@lid"},
    ]
    with pytest.raises(TransportError) as error:
        transport.lid_lookup(["120363012345678901@g.us"])
    assert error.value.code == "invalid_jid"
    transport.stop()
    calls = len(spy.calls)
    with pytest.raises(NotConnected):  # no Go call without a client: it would abort
        transport.lid_lookup(["15550001111@s.whatsapp.net"])
    assert len(spy.calls) == calls
