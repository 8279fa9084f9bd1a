"""Sending: Outbound -> waE2E.Message, once per Kabar id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from neonize.exc import SendMessageError
from neonize.proto.waCommon.WACommon_pb2 import MessageKey
from neonize.utils.enum import (
    VoteType,
)

from server.events import (
    MessageReaction,
    MessageReceived,
    MessageStatus,
)
from server.whatsapp.neonize import NeonizeTransport
from server.whatsapp.transport import Location, Poll, TransportError
from tests.server.whatsapp.neonize.conftest import (
    ALICE,
    E,
    FakeClient,
    N,
    Recorder,
    device,
    feed,
    fill_required,
    jid,
    message_ev,
    out,
    receipt,
    sent_message,
    source,
    wait_for,
)


def test_send_text_with_quote_and_mentions(live):
    transport, spy, recorder = live
    result = transport.send(
        out(
            text="hi @15550002222",
            quoted_id="3EB0Q1",
            quoted_sender="15550001111@s.whatsapp.net",
            quoted_text="q?",
            mentions=("15550002222@s.whatsapp.net",),
        )
    )
    assert result.message_id == "3EB0KABAR000000000000001"
    assert result.timestamp == datetime.fromtimestamp(1_700_000_050, UTC)
    to, message = sent_message(spy)
    assert (to.User, to.Server) == ("15550001111", "s.whatsapp.net")
    text = message.extendedTextMessage
    assert text.text == "hi @15550002222"
    assert (text.contextInfo.stanzaID, text.contextInfo.participant) == (
        "3EB0Q1",
        "15550001111@s.whatsapp.net",
    )
    assert text.contextInfo.quotedMessage.conversation == "q?"
    assert list(text.contextInfo.mentionedJID) == ["15550002222@s.whatsapp.net"]
    assert spy.called("is_on_whatsapp") == [(("+15550001111",), {})]


def test_plain_text_is_a_conversation(live):
    transport, spy, _ = live
    transport.send(out(text="plain"))
    assert sent_message(spy)[1].conversation == "plain"


def test_send_location(live):
    transport, spy, _ = live
    transport.send(out("location", location=Location(latitude=-6.2, longitude=106.8, name="Monas")))
    location = sent_message(spy)[1].locationMessage
    assert (location.degreesLatitude, location.degreesLongitude, location.name) == (
        -6.2,
        106.8,
        "Monas",
    )


def test_send_contacts(live):
    transport, spy, _ = live
    bob = "BEGIN:VCARD\nVERSION:3.0\nFN:Bob\nTEL:+15550002222\nEND:VCARD"
    eve = "BEGIN:VCARD\nVERSION:3.0\nFN:Eve\nEND:VCARD"
    transport.send(out("contacts", vcards=(bob,)))
    one = sent_message(spy)[1].contactMessage
    assert (one.displayName, one.vcard) == ("Bob", bob)
    transport.send(out("contacts", message_id="3EB0TWO", vcards=(bob, eve)))
    several = sent_message(spy)[1].contactsArrayMessage
    assert [c.displayName for c in several.contacts] == ["Bob", "Eve"]


def test_send_poll(live):
    transport, spy, _ = live
    transport.send(out("poll", poll=Poll(question="Lunch?", options=("A", "B"), multiple=True)))
    transport.send(out("poll", message_id="3EB0P2", poll=Poll(question="One?", options=("x", "y"))))
    calls = spy.called("build_poll_vote_creation")
    assert calls[0][0] == ("Lunch?", ["A", "B"], VoteType.MULTIPLE)
    assert calls[1][0] == ("One?", ["x", "y"], VoteType.SINGLE)
    assert sent_message(spy)[1].pollCreationMessage.name == "One?"


def test_receipts_and_actions_use_kabar_ids(live):
    """neonize 0.5.2 cannot send under Kabar's id: the map translates both ways."""
    transport, spy, recorder = live
    kabar_id = "3EB0KABAR000000000000001"
    transport.send(out(text="original"))
    wa_id = "3EB0WA0001"
    feed(spy, receipt([wa_id], N.Receipt.READ))
    assert recorder.last(MessageStatus).message_ids == (kabar_id,)

    transport.send(
        out(
            "reaction",
            message_id="3EB0R",
            text="👍",
            quoted_id=kabar_id,
            quoted_sender="15559990000@s.whatsapp.net",
        )
    )
    (chat, author, target, emoji), _ = spy.called("build_reaction")[0]
    assert (chat.User, author.User, target, emoji) == ("15550001111", "15559990000", wa_id, "👍")
    assert sent_message(spy)[1].reactionMessage.key.ID == wa_id

    transport.send(out("edit", message_id="3EB0E", text="changed", quoted_id=kabar_id))
    protocol = sent_message(spy)[1].editedMessage.message.protocolMessage
    assert protocol.type == E.ProtocolMessage.MESSAGE_EDIT and protocol.key.ID == wa_id
    assert protocol.editedMessage.conversation == "changed"

    transport.send(out("revoke", message_id="3EB0V", quoted_id=kabar_id))
    protocol = sent_message(spy)[1].protocolMessage
    assert protocol.type == E.ProtocolMessage.REVOKE
    assert (protocol.key.ID, protocol.key.fromMe) == (wa_id, True)
    assert not spy.called("get_me")  # revoke never asks Go who we are

    feed(
        spy,
        message_ev(
            source(ALICE, ALICE),
            E.Message(reactionMessage=E.ReactionMessage(key=MessageKey(ID=wa_id), text="❤")),
        ),
    )
    assert recorder.last(MessageReaction).message_id == kabar_id
    assert len(spy.called("is_on_whatsapp")) == 1  # actions are not re-checked


def test_action_authors(live):
    """A reaction names the target's author: given, else the other person in a DM; in a
    group it cannot be guessed."""
    transport, spy, _ = live
    transport.send(out("reaction", text="👍", quoted_id="3EB0THEIRS"))
    (_, author, target, _), _ = spy.called("build_reaction")[0]
    assert (author.User, target) == ("15550001111", "3EB0THEIRS")
    with pytest.raises(TransportError) as caught:
        transport.send(
            out(
                "reaction",
                message_id="3EB0G",
                to="120363012345678901@g.us",
                text="👍",
                quoted_id="3EB0THEIRS",
            )
        )
    assert (caught.value.code, caught.value.permanent) == ("invalid_message", True)


def test_retry_of_a_sent_id_is_not_sent_again(live):
    transport, spy, _ = live
    first = transport.send(out(text="once"))
    again = transport.send(out(text="once"))
    assert first == again and len(spy.called("send_message")) == 1


def test_not_on_whatsapp_is_permanent(live):
    transport, spy, _ = live
    spy.unregistered.add("15550003333")
    with pytest.raises(TransportError) as caught:
        transport.send(out(to="15550003333@s.whatsapp.net", text="hi"))
    assert (caught.value.code, caught.value.permanent) == ("not_on_whatsapp", True)
    assert not spy.called("send_message")
    with pytest.raises(TransportError) as caught:
        transport.send(out(to="not a jid", text="hi"))
    assert (caught.value.code, caught.value.permanent) == ("invalid_jid", True)


@pytest.mark.parametrize(
    "error, code, permanent",
    [
        ("info query timed out", "timeout", False),
        ("can't send message to unknown server", "invalid_jid", True),
        ("something new", "send_failed", False),
    ],
)
def test_send_errors_are_mapped(live, error, code, permanent):
    transport, spy, _ = live
    spy.fail_send = SendMessageError(error)
    with pytest.raises(TransportError) as caught:
        transport.send(out(text="x"))
    assert (caught.value.code, caught.value.permanent) == (code, permanent)
    spy.fail_send = None
    transport.send(out(text="x"))  # a failed attempt did not record the id as sent
    assert len(spy.called("send_message")) == 2


def test_id_map_survives_a_restart(make):
    """A crash after WhatsApp accepted a message but before Kabar recorded it: the retry
    in the next runtime finds the id and does not send twice; receipts still map."""
    transport, spy, _ = make()
    feed(spy, device(), code=0)
    feed(spy, N.Connected(status=True))
    transport.send(out(text="hi"))
    transport.stop()
    recorder, spies = Recorder(), []
    again = NeonizeTransport(
        session_id="again",
        store_dir=transport.store_dir,
        emit=recorder,
        options={},
        client_factory=lambda name, **kw: spies.append(FakeClient(name, **kw)) or spies[-1],
    )
    again.start()
    wait_for(lambda: spies, what="the client")
    try:
        wait_for(lambda: again.is_connected(), what="connected")
        assert again.send(out(text="hi")).message_id == "3EB0KABAR000000000000001"
        assert not spies[0].called("send_message")
        feed(spies[0], receipt(["3EB0WA0001"], N.Receipt.DELIVERED))
        assert recorder.last(MessageStatus).message_ids == ("3EB0KABAR000000000000001",)
    finally:
        again.stop()


def test_link_preview_goes_through_the_ssrf_guard(live, monkeypatch):
    from server import netguard

    fetched = []

    def fake_fetch(url, *, max_bytes, timeout, allow):
        fetched.append(url)
        page = (
            b'<html><head><title>T</title><meta property="og:title" content="Kabar">'
            b'<meta property="og:description" content="A gateway"></head></html>'
        )
        return netguard.Fetched(data=page, content_type="text/html", filename=None, final_url=url)

    monkeypatch.setattr(netguard, "fetch", fake_fetch)
    transport, spy, _ = live
    transport.send(out(text="see https://example.com/x.", link_preview=True))
    text = sent_message(spy)[1].extendedTextMessage
    assert fetched == ["https://example.com/x"]
    assert (text.matchedText, text.title, text.description) == (
        "https://example.com/x",
        "Kabar",
        "A gateway",
    )


def test_star_is_refused_clearly(live):
    transport, _, _ = live
    with pytest.raises(TransportError) as caught:
        transport.star("15550001111@s.whatsapp.net", "15550001111@s.whatsapp.net", "X", True)
    assert (caught.value.code, caught.value.permanent) == ("not_supported", True)


def test_sends_to_the_jid_whatsapp_answered(live, monkeypatch):
    """A number typed without Brazil's extra 9 goes to the JID WhatsApp returned."""
    transport, spy, _ = live

    def answer(*numbers):
        return [
            fill_required(N.IsOnWhatsAppResponse(Query=n, JID=jid("5511987654321"), IsIn=True))
            for n in numbers
        ]

    monkeypatch.setattr(spy, "is_on_whatsapp", answer)
    transport.send(out(to="551187654321@s.whatsapp.net", text="oi"))
    assert sent_message(spy)[0].User == "5511987654321"


def test_newsletter_posts_are_not_chat_messages(live):
    transport, spy, recorder = live
    feed(
        spy,
        message_ev(
            source(jid("120363000000000001", "newsletter"), ALICE),
            E.Message(conversation="channel post"),
        ),
    )
    assert not recorder.of(MessageReceived)
