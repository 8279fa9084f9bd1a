"""What starts a workflow: the trigger shapes and how an inbound message matches one.

A workflow has ``trigger`` (one) or ``triggers`` (several), or none (it runs only when
called or started by hand). The host schedules and listens; the matching rules live here
so a message means the same thing to every host:

- ``command``: the first word, any of the aliases, case-insensitive (``#req``,
  ``#request``); the words after it are ``args`` (``{{ args[0] }}``), the text after it
  ``rest``.
- ``keyword``: any of the words appears in the text as a whole word, case-insensitive.
- ``regex``: the pattern is found in the text; its groups are ``args``, its named groups
  ``named``.
- ``any``: every message.

``session`` and ``from`` narrow a trigger to one session (its id or label) and some
senders (``from`` compares digits, so the host should pass normalised numbers).
``fallback``: the host fires it only when nothing else took the message.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import marshmallow as ma

from nodes.base import ParamsSchema
from nodes.fields import Text

_CRON_FIELD = re.compile(r"^[\d*/,\-?A-Za-z#LW]+$")
_WORDS = ma.validate.Length(min=1)


def _type(name: str) -> ma.fields.String:
    return ma.fields.String(required=True, validate=ma.validate.OneOf([name]))


def _regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ma.ValidationError(f"Not a valid regular expression: {exc}.") from None


def _cron(expression: str) -> None:
    fields = expression.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(field) for field in fields):
        raise ma.ValidationError(
            "A cron expression has five fields: minute hour day month "
            "weekday, such as '0 8 * * mon-fri'."
        )


def _zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ma.ValidationError("Unknown time zone; use a name such as 'Asia/Jakarta'.") from None


class MessageTrigger(ParamsSchema):
    type = _type("message")
    command = ma.fields.List(
        Text(validate=_WORDS),
        validate=_WORDS,
        metadata={"description": 'Command words with their aliases, e.g. ["#request", "#req"].'},
    )
    keyword = ma.fields.List(
        Text(validate=_WORDS),
        validate=_WORDS,
        metadata={"description": "Words that trigger when they appear in the text."},
    )
    regex = Text(
        validate=_regex,
        metadata={
            "description": "A regular expression searched in the text; its groups become args."
        },
    )
    any = ma.fields.Boolean(metadata={"description": "Every message."})
    session = Text(metadata={"description": "Only messages to this session (id or label)."})
    from_ = ma.fields.List(
        Text(), data_key="from", metadata={"description": "Only messages from these numbers."}
    )
    fallback = ma.fields.Boolean(
        metadata={
            "description": "Fire only when nothing else took the message: no waiting run and "
            "no other workflow's trigger (e.g. a help text for unknown commands)."
        }
    )

    @ma.validates_schema
    def _one_rule(self, data: dict[str, Any], **_kwargs: Any) -> None:
        rules = [k for k in ("command", "keyword", "regex") if data.get(k)]
        rules += ["any"] if data.get("any") else []
        if len(rules) != 1:
            raise ma.ValidationError(
                'A message trigger takes one of command, keyword, regex or "any": true.'
            )


class ScheduleTrigger(ParamsSchema):
    type = _type("schedule")
    cron = Text(validate=_cron, metadata={"description": "minute hour day month weekday."})
    interval_seconds = ma.fields.Integer(validate=ma.validate.Range(min=1))
    timezone = Text(
        validate=_zone, metadata={"description": "The cron's time zone (default: the gateway's)."}
    )

    @ma.validates_schema
    def _one_rule(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if ("cron" in data) == ("interval_seconds" in data):
            raise ma.ValidationError("A schedule takes cron or interval_seconds (one).")


class HookTrigger(ParamsSchema):
    """POST /api/v1/hooks/{workflow} with the workflow's token; the body is
    ``trigger.body``."""

    type = _type("hook")


class EventTrigger(ParamsSchema):
    type = _type("event")
    types = ma.fields.List(
        Text(validate=_WORDS),
        required=True,
        validate=_WORDS,
        metadata={"description": 'Gateway event names, e.g. ["session.status"].'},
    )
    session = Text(metadata={"description": "Only events of this session."})


class ManualTrigger(ParamsSchema):
    type = _type("manual")


TRIGGERS: dict[str, type[ParamsSchema]] = {
    "message": MessageTrigger,
    "schedule": ScheduleTrigger,
    "hook": HookTrigger,
    "event": EventTrigger,
    "manual": ManualTrigger,
}


def match_message(trigger: dict[str, Any], message: dict[str, Any]) -> dict[str, Any] | None:
    """The run's ``trigger`` data when ``message`` (``text``, ``chat``, ``sender``,
    ``session`` …) fires the message ``trigger``; ``None`` when it does not."""
    if trigger.get("type") != "message":
        return None
    if trigger.get("session") and trigger["session"] not in (
        message.get("session"),
        message.get("session_label"),
    ):
        return None
    if trigger.get("from") and _digits(message.get("sender")) not in {
        _digits(sender) for sender in trigger["from"]
    }:
        return None
    text = (message.get("text") or "").strip()
    found = _rule(trigger, text)
    if found is None:
        return None
    return {"type": "message", **message, "args": [], "rest": "", "named": {}, **found}


def _rule(trigger: dict[str, Any], text: str) -> dict[str, Any] | None:
    if trigger.get("command"):
        word, *tail = text.split(None, 1) or [""]
        aliases = {alias.lower() for alias in trigger["command"]}
        if word.lower() not in aliases:
            return None
        rest = tail[0].strip() if tail else ""
        return {"command": word.lower(), "args": rest.split(), "rest": rest}
    if trigger.get("keyword"):
        for keyword in trigger["keyword"]:
            if re.search(rf"(?<!\w){re.escape(keyword)}(?!\w)", text, re.IGNORECASE):
                return {"keyword": keyword}
        return None
    if trigger.get("regex"):
        match = re.search(trigger["regex"], text)
        if not match:
            return None
        return {"args": list(match.groups()), "named": match.groupdict()}
    return {} if trigger.get("any") else None


def _digits(value: Any) -> str:
    return re.sub(r"\D", "", str(value or "").split("@")[0])
