"""Checks on what any request may carry, made once for every endpoint.

Text that no field can hold is refused before a view runs, the same on both databases:
NUL (PostgreSQL text cannot store it) and unpaired UTF-16 surrogates, which JSON's
``\\ud800`` escapes let through the parser and which no encoder, driver or database can
write (a real astral character arrives as a pair and is decoded whole). JSON nested
deeper than ``MAX_JSON_DEPTH`` is refused too: no request needs more, and a deep enough
document exhausts the stack of whatever walks it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from server.errors import BadRequest

MAX_JSON_DEPTH = 32
_BAD_TEXT = re.compile("[\\x00\\ud800-\\udfff]")


class TooDeep(BadRequest):
    code = "json_too_deep"
    message = f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep."


class NulCharacter(BadRequest):
    code = "nul_character"
    message = "Text in a request may not contain the NUL character (U+0000)."


class InvalidText(BadRequest):
    code = "invalid_text"
    message = ("Text in a request must be valid Unicode: it holds an unpaired UTF-16 "
               "surrogate (such as \\ud800 alone).")


def check_text(text: str) -> None:
    match = _BAD_TEXT.search(text)
    if match is not None:
        raise NulCharacter() if match.group() == "\x00" else InvalidText()


def check_json(value: Any) -> None:
    """Refuse JSON deeper than MAX_JSON_DEPTH or with text no database can store; walks
    with a stack of its own, so no input can make it recurse."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise TooDeep()
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def load_json(data: str | bytes) -> Any:
    """``json.loads`` with the checks of ``check_json``: a document too deep for the
    parser itself is json_too_deep too, not a RecursionError. Invalid JSON raises
    ValueError as ``json.loads`` does."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise TooDeep() from None
    check_json(value)
    return value
