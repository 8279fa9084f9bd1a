"""What the web asks of a live WhatsApp client: one typed function per runtime command.

Views and services never spell a command's name: they call these, which put the command
on the database channel (commands.py) and wait for its answer (a 503 when the runtime is
down or busy). The names belong to the handlers that answer them (handlers/*.py), so a
command's two ends are found from either side with one grep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from server.models import RuntimeCommand
from server.runtime import commands
from server.runtime.handlers.chats import CHATS_MARK_READ, CHATS_PRESENCE, PRESENCE_STATES
from server.runtime.handlers.groups import (
    GROUP_CREATE,
    GROUP_INFO,
    GROUP_INVITE_LINK,
    GROUP_JOIN,
    GROUP_LEAVE,
    GROUP_PARTICIPANTS,
    GROUP_UPDATE,
    GROUPS,
    PARTICIPANT_ACTIONS,
)
from server.runtime.handlers.lookups import (
    CONTACTS,
    IS_ON_WHATSAPP,
    LID_LOOKUP,
    LOGOUT,
    PAIR_CODE,
    PROFILE_PICTURE,
    REJECT_CALL,
    RESTART,
    STAR,
    USER_INFO,
)
from server.whatsapp.transport import PairingCode

__all__ = [
    "GROUP_CREATE",
    "GROUP_INFO",
    "GROUP_INVITE_LINK",
    "GROUP_JOIN",
    "GROUP_LEAVE",
    "GROUP_PARTICIPANTS",
    "GROUP_UPDATE",
    "GROUPS",
    "PARTICIPANT_ACTIONS",
    "PRESENCE_STATES",
    "contacts",
    "group",
    "is_on_whatsapp",
    "lid_lookup",
    "logout",
    "mark_read",
    "pair_code",
    "presence",
    "profile_picture",
    "recent_registrations",
    "reject_call",
    "request_presence",
    "request_read",
    "restart",
    "star",
    "user_info",
]

GROUP_COMMANDS = (
    GROUPS,
    GROUP_CREATE,
    GROUP_INFO,
    GROUP_INVITE_LINK,
    GROUP_JOIN,
    GROUP_LEAVE,
    GROUP_PARTICIPANTS,
    GROUP_UPDATE,
)


def _slow() -> float:
    """Pairing and logging out: WhatsApp itself takes seconds."""
    return max(commands.SLOW_TIMEOUT, commands.wait_seconds())


# --- the session itself -------------------------------------------------------------------


def restart(session_id: str) -> None:
    """Ask for a restart and return at once: it runs even if the runtime is down now."""
    commands.submit(RESTART, session_id=session_id)


def logout(session_id: str) -> None:
    commands.call(LOGOUT, session_id=session_id, timeout=_slow())


def pair_code(session_id: str, phone: str) -> PairingCode:
    """A code to link by phone number; it works until ``expires_at``."""
    answer = commands.call(
        PAIR_CODE, session_id=session_id, payload={"phone": phone}, timeout=_slow()
    )
    return PairingCode(answer["code"], datetime.fromisoformat(answer["expires_at"]))


# --- look-ups ------------------------------------------------------------------------------


def is_on_whatsapp(session_id: str, phones: list[str]) -> list[dict]:
    """One answer per phone: ``{"query", "jid", "is_registered", ...}``."""
    return commands.call(IS_ON_WHATSAPP, session_id=session_id, payload={"phones": phones})


def recent_registrations(session_id: str, *, within: float) -> list[tuple[dict, Any]]:
    """The is-registered answers of the last ``within`` seconds (commands.recent_results)."""
    return commands.recent_results(IS_ON_WHATSAPP, session_id=session_id, within=within)


def contacts(session_id: str) -> list[dict]:
    """The phone's address book as the device synced it."""
    return commands.call(CONTACTS, session_id=session_id)


def lid_lookup(session_id: str, targets: list[str]) -> list[dict]:
    return commands.call(LID_LOOKUP, session_id=session_id, payload={"targets": targets})


def profile_picture(session_id: str, target: str) -> str | None:
    return commands.call(PROFILE_PICTURE, session_id=session_id, payload={"target": target})


def user_info(session_id: str, targets: list[str]) -> list[dict]:
    return commands.call(USER_INFO, session_id=session_id, payload={"targets": targets})


# --- acting on messages, chats and calls ---------------------------------------------------


def star(session_id: str, *, chat: str, sender: str | None, message_id: str, starred: bool) -> None:
    commands.call(
        STAR,
        session_id=session_id,
        payload={"chat": chat, "sender": sender, "message_id": message_id, "starred": starred},
    )


def reject_call(session_id: str, *, call_id: str, caller: str) -> None:
    commands.call(
        REJECT_CALL, session_id=session_id, payload={"call_id": call_id, "caller": caller}
    )


def _receipts(by_sender: dict[str, list[str]]) -> list[dict]:
    return [{"sender": sender, "ids": ids} for sender, ids in by_sender.items()]


def mark_read(session_id: str, chat: str, by_sender: dict[str, list[str]]) -> int:
    """Send read receipts (WhatsApp takes them per sender); answers how many were marked."""
    return commands.call(
        CHATS_MARK_READ,
        session_id=session_id,
        payload={"chat": chat, "receipts": _receipts(by_sender)},
    )


def request_read(session_id: str, chat: str, by_sender: dict[str, list[str]]) -> RuntimeCommand:
    """``mark_read`` without waiting for the answer (webhook actions)."""
    return commands.submit(
        CHATS_MARK_READ,
        session_id=session_id,
        payload={"chat": chat, "receipts": _receipts(by_sender)},
    )


def presence(session_id: str, chat: str, state: str) -> None:
    """Show typing (composing), recording or stop (paused): one of PRESENCE_STATES."""
    commands.call(CHATS_PRESENCE, session_id=session_id, payload={"chat": chat, "state": state})


def request_presence(
    session_id: str, chat: str, state: str, *, expires_in: float | None = None
) -> RuntimeCommand:
    """``presence`` without waiting for the answer (webhook actions)."""
    return commands.submit(
        CHATS_PRESENCE,
        session_id=session_id,
        payload={"chat": chat, "state": state},
        expires_in=expires_in,
    )


# --- groups ---------------------------------------------------------------------------------


def group(session_id: str, kind: str, **payload: Any) -> Any:
    """One of the GROUP_* commands with its payload (handlers/groups.py says what each
    takes and answers)."""
    if kind not in GROUP_COMMANDS:
        raise ValueError(f"{kind!r} is not a group command")
    return commands.call(kind, session_id=session_id, payload=payload)
