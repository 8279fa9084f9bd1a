"""Backfill from WhatsApp's history sync: chat messages as MessageBackfilled, old ones
and non-messages left out."""

from __future__ import annotations

import time

from neonize.proto.waHistorySync.WAWebProtobufsHistorySync_pb2 import (
    Conversation,
    HistorySync,
    HistorySyncMsg,
)
from neonize.proto.waWeb.WAWebProtobufsWeb_pb2 import WebMessageInfo

from server.events import MessageBackfilled, MessageReceived
from tests.server.whatsapp.neonize.conftest import E, MessageKey, N, feed


def _web(
    msg_id,
    text,
    *,
    chat="15550001111@s.whatsapp.net",
    from_me=False,
    participant="",
    age=60,
    push_name="Alice",
):
    body = (
        E.Message(conversation=text)
        if text
        else E.Message(reactionMessage=E.ReactionMessage(key=MessageKey(ID="X"), text="👍"))
    )
    return HistorySyncMsg(
        message=WebMessageInfo(
            key=MessageKey(remoteJID=chat, fromMe=from_me, ID=msg_id, participant=participant),
            message=body,
            messageTimestamp=int(time.time()) - age,
            pushName=push_name,
        )
    )


def _sync(*messages, kind=HistorySync.RECENT, chat="15550001111@s.whatsapp.net"):
    return N.HistorySync(
        Data=HistorySync(
            syncType=kind, conversations=[Conversation(ID=chat, messages=list(messages))]
        )
    )


def test_history_sync_backfills_recent_chat_messages(live):
    _, spy, recorder = live
    feed(
        spy,
        _sync(
            _web("OLD1", "halo", age=30 * 86400),
            _web("M1", "halo"),
            _web("M2", "balas", from_me=True),
            _web("R1", None),
        ),
    )
    feed(
        spy,
        _sync(
            _web(
                "G1",
                "di grup",
                chat="120363012345678901@g.us",
                participant="15550002222@s.whatsapp.net",
            ),
            chat="120363012345678901@g.us",
        ),
    )
    feed(spy, _sync(_web("P1", "names only"), kind=HistorySync.PUSH_NAME))
    backfilled = [e.message for e in recorder.of(MessageBackfilled)]
    assert [(m.id, m.text, m.from_me, m.sender.phone, m.chat.jid) for m in backfilled] == [
        ("M1", "halo", False, "15550001111", "15550001111@s.whatsapp.net"),
        ("M2", "balas", True, "15559990000", "15550001111@s.whatsapp.net"),
        ("G1", "di grup", False, "15550002222", "120363012345678901@g.us"),
    ]
    assert backfilled[0].sender.name == "Alice" and backfilled[2].is_group
    assert not recorder.of(MessageReceived)  # never as a live message


def test_backfill_can_be_turned_off(make):
    _, spy, recorder = make(backfill_days=0)
    feed(spy, _sync(_web("M1", "halo")))
    assert not recorder.of(MessageBackfilled)
