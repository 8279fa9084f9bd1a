"""What a request names, read once for the API, the dashboard and the CLI: a chat, a
group, participants, a person; a typo is a 422 naming the field."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from server.errors import ValidationFailed
from server.whatsapp.jids import (
    InvalidPhone,
    _possible_e164,
    normalise_phone,
    parse_chat,
    parse_group_jid,
    parse_participants,
    parse_person,
)


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


def _by_parsing(text: str, region: str) -> str | None:
    """What phonenumbers' full parse makes of ``+<digits>`` (the reference)."""
    try:
        number = phonenumbers.parse("+" + text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def _numbers(seed: int, count: int) -> list[str]:
    """Digits as API callers send them: every country code, Indonesian mobiles, and
    national parts that start with a country's national prefix or a 0, 1 to 18 digits."""
    rng = random.Random(seed)
    codes = [str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]
    numbers = []
    for _ in range(count):
        head = rng.choice(
            [rng.choice(codes), "62", "628", "620", "6208", "1", "7", "44", "081", "0"]
        )
        tail = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 16)))
        numbers.append((head + tail)[:20] or "6")
    return numbers


@pytest.mark.parametrize("region", ["ID", "US", "IT", "RU"])
def test_the_fast_path_for_e164_digits_agrees_with_phonenumbers(region):
    """_possible_e164 answers only what the full parse would answer the same way."""
    fast = 0
    for digits in _numbers(seed=15, count=20_000):
        known = _possible_e164(digits)
        if known is not None:
            fast += 1
            assert known == _by_parsing(digits, region) == digits, digits
    assert fast > 3_000  # taken for the well-formed ones among these random digits
    for digits in ("628123456789", "6281234567890", "12025550123", "447911123456"):
        assert _possible_e164(digits) == digits


@pytest.mark.parametrize(
    "typed",
    [
        "628123456789",
        "+62 812-3456-789",
        "0812 3456 789",
        "812345678",
        "6208123456789",
        "1",
        "62",
        "+08123456789",  # a leading 0 after the plus is no country code (not Japan's 81)
        "٦٢٨١٢٣٤٥٦٧٨٩",  # Arabic-Indic digits: phonenumbers reads them as 0-9
    ],
)
def test_normalise_phone_answers_as_the_full_parse_did(typed):
    """The same number, or the same refusal, with or without the fast path."""
    from server.whatsapp import jids

    def outcome():
        try:
            return normalise_phone(typed, "ID")
        except InvalidPhone as exc:
            return f"refused: {exc}"

    fast = outcome()
    saved = jids._possible_e164
    jids._possible_e164 = lambda _digits: None
    try:
        assert outcome() == fast
    finally:
        jids._possible_e164 = saved
