"""Receipts and presence, both ways."""

from __future__ import annotations

from datetime import UTC, datetime

from neonize.utils.enum import (
    ChatPresence,
    ChatPresenceMedia,
    Presence,
    ReceiptType,
)

from server.events import (
    CallReceived,
    MessageStatus,
    PresenceUpdate,
)
from tests.server.whatsapp.neonize.conftest import (
    ALICE,
    ALICE_LID,
    N,
    feed,
    fill_required,
    receipt,
    source,
)


def test_server_error_receipts_are_not_failures(live):
    """neonize's Go side encodes played-self as SERVER_ERROR: not a failed message."""
    transport, spy, recorder = live
    feed(spy, receipt(["3EB0OUT1"], N.Receipt.SERVER_ERROR))
    assert not recorder.of(MessageStatus)


def test_receipts_delivered_read_played(live):
    transport, spy, recorder = live
    feed(spy, receipt(["3EB0OUT1"], N.Receipt.DELIVERED))
    feed(spy, receipt(["3EB0OUT1", "3EB0OUT2"], N.Receipt.READ))
    feed(spy, receipt(["3EB0OUT1"], N.Receipt.PLAYED))
    feed(spy, receipt(["3EB0OUT1"], N.Receipt.READ_SELF))  # our own phone: not a status
    statuses = recorder.of(MessageStatus)
    assert [(s.status, s.message_ids) for s in statuses] == [
        ("delivered", ("3EB0OUT1",)),
        ("read", ("3EB0OUT1", "3EB0OUT2")),
        ("played", ("3EB0OUT1",)),
    ]
    assert statuses[0].chat.phone == "15550001111"
    assert statuses[0].timestamp == datetime.fromtimestamp(1_700_000_100, UTC)


def test_presence_and_calls(live):
    transport, spy, recorder = live
    feed(
        spy,
        N.ChatPresence(
            MessageSource=source(ALICE, ALICE),
            State=N.ChatPresence.COMPOSING,
            Media=N.ChatPresence.AUDIO,
        ),
    )
    feed(
        spy,
        N.ChatPresence(
            MessageSource=source(ALICE, ALICE),
            State=N.ChatPresence.PAUSED,
            Media=N.ChatPresence.TEXT,
        ),
    )
    feed(spy, N.Presence(From=ALICE, Unavailable=True, LastSeen=0))
    assert [p.state for p in recorder.of(PresenceUpdate)] == ["recording", "paused", "unavailable"]
    offer = fill_required(
        N.CallOffer(
            basicCallMeta=fill_required(
                N.BasicCallMeta(
                    **{"from": ALICE_LID},
                    callCreator=ALICE_LID,
                    callCreatorAlt=ALICE,
                    callID="CALL1",
                    timestamp=1_700_000_000,
                )
            ),
            data=N.Node(Tag="offer", Nodes=[N.Node(Tag="video")]),
        )
    )
    feed(spy, offer)
    call = recorder.last(CallReceived)
    assert (call.call_id, call.caller.phone, call.video) == ("CALL1", "15550001111", True)
    # Rejected with the caller exactly as the offer named it (its @lid), not the phone
    # JID the event shows: whatsmeow's RejectCall needs the offer's JID.
    transport.reject_call("CALL1", call.caller.jid)
    [((caller, call_id), _)] = spy.called("reject_call")
    assert (caller.User, caller.Server, call_id) == (ALICE_LID.User, "lid", "CALL1")
    transport.reject_call("CALL2", "15550002222@s.whatsapp.net")  # one this process missed
    assert spy.called("reject_call")[-1][0][0].User == "15550002222"


def test_mark_read_and_presence(live):
    transport, spy, _ = live
    transport.mark_read("120363012345678901@g.us", "15550001111@s.whatsapp.net", ["A", "B"])
    args, kwargs = spy.called("mark_read")[0]
    assert args == ("A", "B") and kwargs["receipt"] is ReceiptType.READ
    assert (kwargs["chat"].Server, kwargs["sender"].User) == ("g.us", "15550001111")
    for state in ("composing", "recording", "paused"):
        transport.presence("15550001111@s.whatsapp.net", state)
    # available once connected; unavailable again at "paused", so the phone keeps
    # its notifications (defect 10)
    assert spy.called("send_presence") == [
        ((Presence.AVAILABLE,), {}),
        ((Presence.UNAVAILABLE,), {}),
    ]
    assert [c[0][1:] for c in spy.called("send_chat_presence")] == [
        (ChatPresence.CHAT_PRESENCE_COMPOSING, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT),
        (ChatPresence.CHAT_PRESENCE_COMPOSING, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO),
        (ChatPresence.CHAT_PRESENCE_PAUSED, ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT),
    ]
