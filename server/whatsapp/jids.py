"""Phone numbers as people type them, and WhatsApp JIDs.

``0812-3456-789``, ``+62 812 3456 789`` and ``628123456789`` all mean the same person;
``normalise_phone`` turns each into ``628123456789`` (E.164 digits, no plus) using
phonenumbers and the configured default region (Indonesia unless KABAR_PHONE_REGION says
otherwise). JIDs (``…@s.whatsapp.net``, ``…@g.us``, ``…@lid``) pass through.

The ``parse_*`` functions read what a request names (a chat, a group, participants) and
answer a typo with a 422 that names the field, for the API, the dashboard and the CLI.
"""

from __future__ import annotations

import functools
import re

import phonenumbers

from server.errors import ValidationFailed

USER_SERVER = "s.whatsapp.net"
GROUP_SERVER = "g.us"
LID_SERVER = "lid"
_JID = re.compile(r"^(?P<user>[0-9A-Za-z.\-_]+)(?::(?P<device>\d+))?@(?P<server>[a-z.]+)$")
# What people type for a number: digits, one leading plus, spaces and -().  Anything else
# (letters, "ext.") is not a phone number, however many digits phonenumbers could dig out.
_PHONE_TEXT = re.compile(r"^\+?[\d\s\-().]*\d[\d\s\-().]*$")
_GROUP_ID = re.compile(r"^\d{5,24}(-\d{5,24})?$")  # 120363…, or the old phone-time form


class InvalidPhone(ValueError):
    """Not a phone number or JID Kabar can send to."""


def normalise_phone(text: str, region: str = "ID") -> str:
    """``628123456789`` for anything a person might type for that number."""
    raw = (text or "").strip()
    if not raw:
        raise InvalidPhone("The phone number is empty.")
    if not looks_like_phone(raw):
        raise InvalidPhone(
            f"{raw!r} is not a phone number: write digits only, as 0812… or +62 812…."
        )
    digits_only = re.sub(r"[\s\-().]", "", raw)
    # 62812… typed without a plus: phonenumbers needs the plus to see a country code.
    candidate = (
        "+" + digits_only
        if digits_only.isdigit() and not digits_only.startswith("0")
        else digits_only
    )
    if candidate.startswith("+") and (known := _possible_e164(candidate[1:])) is not None:
        return known
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        try:  # maybe a local number without its leading 0 (812…), read in the default region
            number = phonenumbers.parse(digits_only, region)
        except phonenumbers.NumberParseException as exc:
            raise InvalidPhone(f"{raw!r} is not a phone number: {exc}.") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhone(
            f"{raw!r} is not a possible phone number; write it as 0812… or +62 812…."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def _possible_e164(digits: str) -> str | None:
    """``digits`` when phonenumbers would read ``+<digits>`` as exactly that possible number
    (what most API callers send: 628123456789); None when only the full parse can tell.

    It takes phonenumbers' own steps without its text parsing (a third of a bulk send's
    time): the country code is the shortest prefix that is one, the rest is the national
    number unless it starts with what the country strips as a national prefix (then the
    full parse decides, as it does for a leading 0), and the length check is phonenumbers'
    ``is_possible_number``.
    tests/server/whatsapp/test_jids.py compares it with the full parse."""
    if not (digits.isascii() and digits.isdigit()) or not 2 < len(digits) <= 20:
        return None
    if digits.startswith("0"):  # no country code does ("+081…" is not Japan's 81)
        return None
    for size in (1, 2, 3):
        code = int(digits[:size])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    stripped = _national_prefix(code)
    if stripped is None or not 2 <= len(national) <= 17 or national.startswith("0"):
        return None
    if stripped.match(national):  # the full parse may strip a national prefix
        return None
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return digits if phonenumbers.is_possible_number(number) else None


@functools.cache
def _national_prefix(code: int) -> re.Pattern[str] | None:
    """What phonenumbers strips from a national number of the country of ``code`` (``0``
    in Indonesia, ``0|180020`` in Britain), as it matches it; None (no fast path) for a
    code with no country of its own."""
    region = phonenumbers.region_code_for_country_code(code)
    if region in (phonenumbers.UNKNOWN_REGION, phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY):
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None
    return re.compile(metadata.national_prefix_for_parsing or "0")


def looks_like_phone(text: str) -> bool:
    """Only what people type for a number: digits, a leading plus, spaces and -()."""
    return bool(_PHONE_TEXT.match(text.strip()))


def split_jid(jid: str) -> tuple[str, str]:
    """(user, server) of a JID, without the device part."""
    match = _JID.match(jid.strip())
    if not match:
        raise InvalidPhone(f"{jid!r} is not a WhatsApp JID.")
    return match["user"], match["server"]


def to_jid(target: str, region: str = "ID") -> str:
    """A JID for a phone number as typed, or the JID itself (device part dropped)."""
    target = target.strip()
    if "@" in target:
        user, server = split_jid(target)
        if server not in (USER_SERVER, GROUP_SERVER, LID_SERVER, "c.us"):
            raise InvalidPhone(f"{target!r} is not a person, group or @lid JID.")
        return f"{user}@{USER_SERVER if server == 'c.us' else server}"
    return f"{normalise_phone(target, region)}@{USER_SERVER}"


def phone_of(jid: str) -> str | None:
    """The phone number behind a person's JID; None for groups and @lid."""
    user, server = split_jid(jid)
    return user if server == USER_SERVER else None


# --- what requests name ----------------------------------------------------------------------


def parse_group_jid(text: str, field: str = "group_jid") -> str:
    """``120363…@g.us`` or the bare id before ``@g.us``; anything else is a 422."""
    user = text.strip().removesuffix(f"@{GROUP_SERVER}")
    if "@" in user or not _GROUP_ID.match(user):
        raise ValidationFailed(
            f"{text!r} is not a WhatsApp group: use its JID (120363…@g.us) or the id before @g.us.",
            code="invalid_group_jid",
            errors={field: ["Not a group JID."]},
        )
    return f"{user}@{GROUP_SERVER}"


def parse_chat(text: str, region: str) -> str:
    """A chat's JID from a phone as people type it, a JID, or a bare group id (longer
    than any phone number: E.164 has at most 15 digits)."""
    value = text.strip()
    bare = value.removesuffix(f"@{GROUP_SERVER}")
    if (
        bare != value
        or ("-" in bare and _GROUP_ID.match(bare))
        or (bare.isdigit() and len(bare) > 15)
    ):
        return parse_group_jid(value, field="chat")
    try:
        return to_jid(value, region)
    except InvalidPhone as exc:
        raise ValidationFailed(
            f"{text!r} is not a chat: {exc}", code="invalid_chat", errors={"chat": [str(exc)]}
        ) from None


def parse_participants(targets: list[str], region: str) -> list[str]:
    """Participants as JIDs, each checked here so a typo answers 422 with its index."""
    jids, errors = [], {}
    for index, target in enumerate(targets):
        try:
            jid = to_jid(target, region)
            if split_jid(jid)[1] == GROUP_SERVER:
                raise InvalidPhone(f"{target!r} is a group; participants are people.")
            jids.append(jid)
        except InvalidPhone as exc:
            errors[index] = [str(exc)]
    if errors:
        raise ValidationFailed(errors={"json": {"participants": errors}})
    return list(dict.fromkeys(jids))


def parse_person(text: str, region: str) -> str:
    """A person's JID from a phone as people type it or a JID; groups and junk are 422."""
    try:
        jid = to_jid(text, region)
        if split_jid(jid)[1] == GROUP_SERVER:
            raise InvalidPhone(f"{text!r} is a group; see /groups for groups.")
    except InvalidPhone as exc:
        raise ValidationFailed(
            str(exc), code="invalid_phone", errors={"phone": [str(exc)]}
        ) from None
    return jid
