"""Who a send's ``to`` means: a phone number as people type it, a JID, or the name of a
group the session is in. One place for REST, workflows, webhook actions and broadcasts.

A recipient must be clearly one of the three: ``Arisan RT 12345`` is not a phone number
because it has five digits in it. A name is matched exactly but case-insensitively
against the group names the database knows (``server.directory``), never by asking the
live transport inside the request.
"""

from __future__ import annotations

import re

from server import directory
from server.errors import Conflict, NotFound, ValidationFailed
from server.models import WaSession
from server.whatsapp.jids import InvalidPhone, looks_like_phone, to_jid

NAME_MAX = 100  # WhatsApp's limit for a group's name
_LETTER = re.compile(r"[^\W\d_]")


def person_or_jid(text: str, region: str, *, field: str = "to") -> str:
    """A phone number or a JID (mentions, vCards): 422 for anything else."""
    try:
        return to_jid(text, region)
    except InvalidPhone as exc:
        raise ValidationFailed(errors={field: [str(exc)]}) from None


def resolve(session: WaSession, to: str, region: str) -> str:
    """The JID to send to: 422 when ``to`` is neither a number, a JID nor a group name;
    404 for a name no group of this session has; 409 when several groups have it."""
    text = (to or "").strip()
    if "@" in text or looks_like_phone(text):
        return person_or_jid(text, region)
    if not _LETTER.search(text) or len(text) > NAME_MAX:
        raise ValidationFailed(
            errors={
                "to": [
                    f"{to!r} is not a phone number (0812…, +62 812…), a JID (…@s.whatsapp.net, "
                    "…@g.us) or a group's name."
                ]
            }
        )
    groups = directory.groups_named(session.id, text)
    if len(groups) == 1:
        return groups[0]["jid"]
    if not groups:
        raise NotFound(
            f"{text!r} is not a phone number, and this session knows no group by that name. "
            "Send to the group's JID (GET …/groups lists them and keeps their names), or "
            "check the spelling.",
            code="group_not_found",
            errors={"to": [f"No group named {text!r} in this session."]},
        )
    listed = ", ".join(f"{g['name']} ({g['jid']})" for g in groups)
    raise Conflict(
        f"{len(groups)} groups of this session are named {text!r}: {listed}. "
        "Send to one of them by its JID.",
        code="ambiguous_recipient",
        errors={"to": [f"Several groups are named {text!r}."], "candidates": groups},
    )
