"""What a session knows without asking WhatsApp: its contacts (address book sync and
private chats) and its groups' names, learnt from the events it stores."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server import directory, eventlog, sessions
from server.auth import Principal
from server.events import (
    ContactUpdated,
    GroupJoined,
    InboundMessage,
    MessageReceived,
    Party,
)
from server.models import db

BUDI = Party(jid="6281234567890@s.whatsapp.net", phone="6281234567890", name="Budi")
GROUP = Party(jid="120363000000000001@g.us")


@pytest.fixture
def session(make_user):
    return sessions.create(
        Principal.for_user(make_user("operator")), label="s", transport="sandbox", auto_start=False
    )


def _message(session, chat: Party, sender: Party, *, from_me: bool = False, wa_id="A1"):
    message = InboundMessage(
        id=wa_id,
        chat=chat,
        sender=sender,
        timestamp=datetime.now(UTC),
        kind="text",
        text="halo",
        from_me=from_me,
        is_group=chat.jid.endswith("@g.us"),
    )
    eventlog.record(MessageReceived(message=message), session)
    db.session.commit()


def _contacts(session):
    return {
        (c.jid, c.phone, c.name, c.push_name, c.saved, c.source)
        for c in db.session.scalars(directory.contact_listing(session.id))
    }


def test_a_private_chat_makes_a_contact_a_group_message_does_not(session):
    _message(session, GROUP, BUDI)
    assert _contacts(session) == set()
    _message(session, BUDI, BUDI, wa_id="A2")
    assert _contacts(session) == {(BUDI.jid, "6281234567890", None, "Budi", False, "chat")}
    assert set(directory.contacts_by_phone(session.id, ["6281234567890", "628999"])) == {
        "6281234567890"
    }


def test_a_chat_started_from_the_phone_counts_without_taking_my_name(session):
    me = Party(jid="6281100000001@s.whatsapp.net", phone="6281100000001", name="Kantor")
    siti = Party(jid="62812222333@s.whatsapp.net", phone="62812222333")
    _message(session, siti, me, from_me=True)
    assert _contacts(session) == {(siti.jid, "62812222333", None, None, False, "chat")}


def test_the_address_book_sync_says_saved_and_the_saved_name(session):
    _message(session, BUDI, BUDI)
    eventlog.record(
        ContactUpdated(
            contact=BUDI, timestamp=datetime.now(UTC), saved=True, full_name="Budi Santoso (RT 5)"
        ),
        session,
    )
    siti = Party(jid="62812222333@s.whatsapp.net", phone="62812222333")
    eventlog.record(
        ContactUpdated(contact=siti, timestamp=datetime.now(UTC), saved=True, full_name="Bu Siti"),
        session,
    )
    eventlog.record(
        ContactUpdated(contact=siti, timestamp=datetime.now(UTC), push_name="Siti W"), session
    )
    db.session.commit()
    assert _contacts(session) == {
        (BUDI.jid, "6281234567890", "Budi Santoso (RT 5)", "Budi", True, "address_book"),
        (siti.jid, "62812222333", "Bu Siti", "Siti W", True, "address_book"),
    }
    eventlog.record(
        ContactUpdated(contact=siti, timestamp=datetime.now(UTC), saved=False, full_name=""),
        session,
    )
    db.session.commit()
    assert (siti.jid, "62812222333", None, "Siti W", False, "address_book") in _contacts(session)


def test_an_lid_without_a_number_is_kept_by_its_lid(session):
    hidden = Party(jid="1234567890123@lid")
    _message(session, hidden, hidden)
    assert _contacts(session) == {("1234567890123@lid", None, None, None, False, "chat")}


def test_group_names_are_learnt_from_group_events(session):
    eventlog.record(GroupJoined(group=GROUP, name="Arisan", timestamp=datetime.now(UTC)), session)
    db.session.commit()
    assert directory.groups_named(session.id, "ARISAN") == [{"jid": GROUP.jid, "name": "Arisan"}]
