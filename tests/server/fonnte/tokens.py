"""Helpers for the fonnte tests: device tokens (API keys bound to one session)."""

from __future__ import annotations

from server import sessions
from server.auth.principal import Principal
from server.models import User


def device_token(client, headers: dict, session_id: str, **fields) -> str:
    """A Kabar API key bound to ``session_id``, made through the API as a user would."""
    made = client.post(
        "/api/v1/api-keys",
        headers=headers,
        json={"name": "fonnte", "session_id": session_id, **fields},
    )
    assert made.status_code == 201, made.json
    assert made.json["session_id"] == session_id
    return made.json["key"]


def offline_session(owner: User, label: str = "Toko") -> str:
    """A sandbox session that is not started: sends queue and wait."""
    return sessions.create(
        Principal.for_user(owner), label=label, transport="sandbox", auto_start=False
    ).id
