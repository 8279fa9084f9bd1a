"""What neonize/whatsmeow raise, as Kabar TransportErrors."""

from __future__ import annotations

import logging
import re

from server.whatsapp.transport import (
    NotConnected,
    TransportError,
)

log = logging.getLogger(__name__)

# (pattern in whatsmeow's/neonize's error text, code, permanent); first match wins.
_ERRORS: tuple[tuple[re.Pattern, str, bool], ...] = tuple(
    (re.compile(pattern, re.I), code, permanent)
    for pattern, code, permanent in (
        (r"client is nil|not connected|websocket not connected", "session_not_connected", False),
        (r"doesn't contain a device JID|not logged in", "session_not_logged_in", False),
        (r"not on whatsapp|item-not-found|\b404\b|no devices", "not_on_whatsapp", True),
        (r"invalid jid|parse jid|unknown server|recipient must be a user", "invalid_jid", True),
        (
            r"not-authorized|forbidden|\b40[13]\b|not a (group )?(member|participant|admin)",
            "forbidden",
            True,
        ),
        (r"\b410\b|media (is )?(gone|expired)", "media_expired", True),
        (r"rate-overlimit|\b429\b", "rate_limited", False),
        (r"time(d)? ?out|deadline exceeded", "timeout", False),
        (
            r"dial|eof|connection (reset|refused)|broken pipe|network|websocket",
            "network_error",
            False,
        ),
    )
)


def _transport_error(exc: BaseException, action: str) -> TransportError:
    """A TransportError for whatever neonize raised: invalid/unknown recipients are
    permanent (retrying cannot help), network trouble and the unknown are transient."""
    if isinstance(exc, TransportError):
        return exc
    text = _error_text(exc)
    for pattern, code, permanent in _ERRORS:
        if pattern.search(text):
            if code == "session_not_connected":
                return NotConnected(f"{action}: {text}")
            return TransportError(f"{action}: {text}", code=code, permanent=permanent)
    return TransportError(f"{action}: {text}", code=f"{action}_failed")


def _error_text(exc: BaseException) -> str:
    """neonize raises some errors with a protobuf as the argument (e.g.
    GetProfilePictureError(model)); use its ``Error`` field then."""
    arg = exc.args[0] if exc.args else ""
    text = getattr(arg, "Error", None) if not isinstance(arg, str) else arg
    return str(text or exc or type(exc).__name__)


def _brief(text: str, limit: int = 170) -> str:
    """An error for a status reason (255 characters with its context). whatsmeow wraps
    errors outside in ("failed to dial whatsapp web websocket: failed to WebSocket dial:
    … dial udp 10.0.0.53:53: connect: network is unreachable"), so cutting the end cuts
    the cause; keep the outermost step and as much of the innermost as fits."""
    if len(text) <= limit:
        return text
    head, *rest = text.split(": ")
    tail: list[str] = []
    for part in reversed(rest):
        if len(head) + 4 + len(": ".join([part, *tail])) > limit:
            break
        tail.insert(0, part)
    if not tail:
        return text[: limit - 1] + "…"
    return f"{head}: … {': '.join(tail)}"


# A device store that cannot be opened will not open on the next try either: "failed".
_STORE_ERRORS = re.compile(
    r"upgrade database|unable to open database|sqlstore|"
    r"password authentication|no such table|pq: ",
    re.I,
)


# ...unless it is only out of reach for now (PostgreSQL down or starting up, defect 9),
# or lost a race the next try will not meet: sessions sharing one new PostgreSQL store
# and started together each upgrade its schema, and all but one fail on a table or type
# the winner just created ("duplicate key value violates unique constraint
# pg_type_typname_nsp_index", "relation … already exists"), a deadlock or a
# serialization failure (found by bench/sessions.py).
_TRANSIENT_ERRORS = re.compile(
    r"connection refused|no such host|i/o timeout|"
    r"database system is (starting up|shutting down)|"
    r"too many clients|connection reset|timeout expired|"
    r"duplicate key value|already exists|deadlock detected|"
    r"could not serialize|\((23505|42P07|42710|40P01|40001)\)",
    re.I,
)
