"""Checks on what any request may carry, made once for every endpoint.

Text that no field can hold is refused before a view runs, the same on both databases:
NUL (PostgreSQL text cannot store it) and unpaired UTF-16 surrogates, which JSON's
``\\ud800`` escapes let through the parser and which no encoder, driver or database can
write (a real astral character arrives as a pair and is decoded whole). JSON nested
deeper than ``MAX_JSON_DEPTH`` is refused too: no request needs more, and a deep enough
document exhausts the stack of whatever walks it.

Bodies are capped (``KABAR_MAX_BODY_BYTES``, Flask's ``MAX_CONTENT_LENGTH``) before they
are read: 413 ``payload_too_large``. A view that takes media (``@carries_media``) may
receive as much as the media store accepts, base64 included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request

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
    message = (
        "Text in a request must be valid Unicode: it holds an unpaired UTF-16 "
        "surrogate (such as \\ud800 alone)."
    )


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


def carries_media(view: Callable) -> Callable:
    """Mark a view (a function, or a MethodView's method) whose request may carry media:
    its body may be as large as ``KABAR_FETCH_MAX_BYTES`` of media written as base64."""
    view.kabar_carries_media = True  # type: ignore[attr-defined]
    return view


def media_body_bytes() -> int:
    """The body a media request may have: the largest media as base64 (4 characters for
    each 3 bytes), plus room for the other fields and multipart framing."""
    return current_app.config["KABAR"]["FETCH_MAX_BYTES"] * 4 // 3 + 1024 * 1024


def _view_carries_media(app: Flask) -> bool:
    view = app.view_functions.get(request.endpoint or "")
    if view is None:
        return False
    cls = getattr(view, "view_class", None)
    method = getattr(cls, request.method.lower(), None) if cls is not None else view
    return bool(getattr(method, "kabar_carries_media", False))


def init_app(app: Flask) -> None:
    """Register the request checks; the body limit first, before anything reads it."""

    @app.before_request
    def _body_limit():
        if _view_carries_media(app):
            allowance = max(media_body_bytes(), current_app.config["MAX_CONTENT_LENGTH"] or 0)
            request.max_content_length = allowance
            request.max_form_memory_size = allowance  # a multipart field of base64 media

    @app.before_request
    def _check():
        for text in [
            request.path,
            *(part for pair in request.args.items(multi=True) for part in pair),
        ]:
            check_text(text)
        if request.is_json and request.content_length != 0:
            try:
                request.get_json(silent=True)  # parsed once; views read the cached value
            except RecursionError:
                raise TooDeep() from None
            body = request.get_json(silent=True)
            if body is not None:
                check_json(body)
