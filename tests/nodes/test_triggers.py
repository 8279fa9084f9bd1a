"""How an inbound message fires a message trigger, and what the run gets as ``trigger``."""

from __future__ import annotations

from nodes import match_message

MESSAGE = {
    "text": "#REQ  AC kelas 3.2 rusak",
    "chat": "6281@s.whatsapp.net",
    "sender": "6281234@s.whatsapp.net",
    "session": "helpdesk",
    "message_id": "M1",
}


def test_command_with_aliases_gives_args_and_rest():
    trigger = {"type": "message", "command": ["#request", "#req", "#bantu"]}
    matched = match_message(trigger, MESSAGE)
    assert matched == {
        **MESSAGE,
        "type": "message",
        "command": "#req",
        "args": ["AC", "kelas", "3.2", "rusak"],
        "rest": "AC kelas 3.2 rusak",
        "named": {},
    }
    assert match_message(trigger, {**MESSAGE, "text": "#requests x"}) is None
    assert match_message(trigger, {**MESSAGE, "text": "#bantu"})["args"] == []
    assert match_message(trigger, {**MESSAGE, "text": ""}) is None


def test_keyword_is_a_whole_word_anywhere():
    trigger = {"type": "message", "keyword": ["harga", "promo"]}
    assert match_message(trigger, {**MESSAGE, "text": "Ada PROMO hari ini?"})["keyword"] == "promo"
    assert match_message(trigger, {**MESSAGE, "text": "promosi"}) is None


def test_regex_groups_become_args():
    trigger = {"type": "message", "regex": r"(?i)^cek\s+(?P<number>[A-Z]{3}\d{7})$"}
    matched = match_message(trigger, {**MESSAGE, "text": "cek BRT2409001"})
    assert matched["args"] == ["BRT2409001"]
    assert matched["named"] == {"number": "BRT2409001"}
    assert match_message(trigger, {**MESSAGE, "text": "cek 12"}) is None


def test_session_and_sender_filters():
    trigger = {"type": "message", "any": True, "session": "helpdesk", "from": ["+62 81234"]}
    assert match_message(trigger, MESSAGE) is not None
    assert match_message(trigger, {**MESSAGE, "session": "sales"}) is None
    assert match_message(trigger, {**MESSAGE, "sender": "6289@s.whatsapp.net"}) is None
    assert match_message({"type": "schedule", "cron": "* * * * *"}, MESSAGE) is None
