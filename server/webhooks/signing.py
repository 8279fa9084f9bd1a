"""Secrets, signatures and headers, as the Standard Webhooks spec has them
(https://www.standardwebhooks.com), so receivers verify with any of its libraries.

The secret is ``whsec_`` + base64 of 32 random bytes: the format the ``standardwebhooks``
libraries read. Kabar keeps it as given out, because signing needs it (see
``WebhookEndpoint``).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from datetime import datetime
from typing import Any

from standardwebhooks import Webhook

USER_AGENT = "Kabar-Webhooks/1"
MAX_CUSTOM_HEADERS = 20

# Headers a receiver must be able to trust, or that HTTP itself owns: an endpoint's
# custom headers may not set them.
RESERVED_HEADERS = {
    "content-type",
    "content-length",
    "content-encoding",
    "host",
    "user-agent",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
    "expect",
    "keep-alive",
    "proxy-authorization",
    "trailer",
}
RESERVED_PREFIXES = ("webhook-", "proxy-", "sec-")
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,64}$")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def payload(envelope: dict[str, Any]) -> str:
    """The exact text that is signed and sent (compact JSON, UTF-8 kept)."""
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def headers(
    secret: str, msg_id: str, body: str, at: datetime, custom: dict[str, str] | None = None
) -> dict[str, str]:
    """Every header of one POST: the endpoint's own, then ours (which win)."""
    return {
        **(custom or {}),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }


def header_problems(custom: dict[str, Any]) -> list[str]:
    """Why these custom headers cannot be used (empty: they can)."""
    problems = []
    if len(custom) > MAX_CUSTOM_HEADERS:
        problems.append(f"At most {MAX_CUSTOM_HEADERS} custom headers.")
    for name, value in custom.items():
        lowered = name.lower()
        if not _TOKEN.match(name):
            problems.append(f"{name!r} is not a valid header name.")
        elif lowered in RESERVED_HEADERS or lowered.startswith(RESERVED_PREFIXES):
            problems.append(f"{name} is set by Kabar (or by HTTP itself) and cannot be overridden.")
        if not isinstance(value, str) or len(value) > 1024 or any(c in value for c in "\r\n\x00"):
            problems.append(
                f"The value of {name} must be text of at most 1024 characters on one line."
            )
    return problems
