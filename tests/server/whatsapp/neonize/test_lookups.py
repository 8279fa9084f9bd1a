"""Look-ups through a connected session."""

from __future__ import annotations

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
        (True, "15550001111@s.whatsapp.net"), (False, None)]
    assert transport.profile_picture("15550001111@s.whatsapp.net") == \
        "https://pps.whatsapp.net/p.jpg"
    assert [(g.jid, g.name) for g in transport.groups()] == [("120363012345678901@g.us", "Team")]


def test_profile_picture_none_and_user_info(live, monkeypatch):
    transport, spy, _ = live

    def hidden(jid, extra=None):
        raise nz.exc.GetProfilePictureError(fill_required(N.GetProfilePictureReturnFunction(
            Error="the user has hidden their profile picture from you")))

    monkeypatch.setattr(spy, "get_profile_picture", hidden)
    assert transport.profile_picture("15550001111@s.whatsapp.net") is None
    (info,) = transport.user_info(["15550001111@s.whatsapp.net"])
    assert info == {"jid": "15550001111@s.whatsapp.net", "phone": "15550001111",
                    "status": "Hey", "picture_id": "p1", "verified_name": None,
                    "devices": ["15550001111:3@s.whatsapp.net"]}
