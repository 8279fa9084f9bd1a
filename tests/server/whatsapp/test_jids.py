"""What a request names, read once for the API, the dashboard and the CLI: a chat, a
group, participants, a person; a typo is a 422 naming the field."""

from __future__ import annotations

import pytest

from server.errors import ValidationFailed
from server.whatsapp.jids import parse_chat, parse_group_jid, parse_participants, parse_person


def test_a_chat_is_a_phone_as_typed_a_jid_or_a_group_id():
    assert parse_chat("0812-3456-789", "ID") == "628123456789@s.whatsapp.net"
    assert parse_chat("628123456789@s.whatsapp.net", "ID") == "628123456789@s.whatsapp.net"
    assert parse_chat("120363025246125486", "ID") == "120363025246125486@g.us"  # > 15 digits
    assert parse_chat("6281234567-1600000000", "ID") == "6281234567-1600000000@g.us"


def test_a_chat_that_is_neither_says_so():
    with pytest.raises(ValidationFailed) as caught:
        parse_chat("budi", "ID")
    assert caught.value.code == "invalid_chat" and "chat" in caught.value.errors


def test_a_group_must_look_like_one():
    assert parse_group_jid("120363025246125486") == "120363025246125486@g.us"
    with pytest.raises(ValidationFailed) as caught:
        parse_group_jid("628123456789@s.whatsapp.net", field="group")
    assert caught.value.code == "invalid_group_jid" and "group" in caught.value.errors


def test_participants_are_people_each_checked_once():
    assert parse_participants(["0812-3456-789", "628123456789"], "ID") == [
        "628123456789@s.whatsapp.net"
    ]
    with pytest.raises(ValidationFailed) as caught:
        parse_participants(["0812-3456-789", "x", "120363025246125486@g.us"], "ID")
    assert set(caught.value.errors["json"]["participants"]) == {1, 2}


def test_a_person_is_not_a_group():
    with pytest.raises(ValidationFailed) as caught:
        parse_person("120363025246125486@g.us", "ID")
    assert caught.value.code == "invalid_phone"
