"""The one interface the rest of Kabar sees of WhatsApp.

Two implementations: ``sandbox`` (a simulated network, ``sandbox.py``) and ``neonize``
(the real one, the package ``neonize/``, the only code that imports neonize). Transports live in
the runtime process only. They report what happens by calling ``emit`` with events from
``server.events``; ``emit`` only enqueues, so a transport's callback thread never waits on
the database.

Calls may raise ``TransportError``: ``permanent`` errors (not on WhatsApp, blocked, bad
input) must not be retried, the others may be.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, Protocol

from server.events import Event, Location

Emit = Callable[[Event], None]


def new_message_id() -> str:
    """A WhatsApp message id in the shape WhatsApp Web uses: 3EB0 and 18 hex digits."""
    return "3EB0" + secrets.token_hex(9).upper()


class TransportError(Exception):
    def __init__(self, message: str, *, code: str = "transport_error", permanent: bool = False):
        super().__init__(message)
        self.code = code
        self.permanent = permanent


class NotConnected(TransportError):
    def __init__(self, message: str = "The session is not connected to WhatsApp."):
        super().__init__(message, code="session_not_connected")


@dataclass(frozen=True)
class Identity:
    jid: str
    phone: str
    push_name: str = ""
    lid: str | None = None


@dataclass(frozen=True)
class Media:
    data: bytes
    mimetype: str
    filename: str | None = None


@dataclass(frozen=True)
class Poll:
    question: str
    options: tuple[str, ...]
    multiple: bool = False


@dataclass(frozen=True)
class Outbound:
    """One message to send. ``message_id`` is chosen by Kabar before the first attempt and
    reused on every retry, so a retry after a crash is not a second message.

    Message actions are messages too, and travel the same way: ``kind`` reaction (``text``
    is the emoji, empty to remove it), edit (``text`` is the new text) or revoke (delete
    for everyone), each aimed at ``quoted_id`` sent by ``quoted_sender`` in chat ``to``.
    """

    message_id: str
    to: str  # a JID: user@s.whatsapp.net, group@g.us or user@lid
    kind: str  # text, image, video, audio, voice, document, sticker, location, contacts, poll,
    #            reaction, edit, revoke
    text: str = ""  # the text, or the caption of media
    media: Media | None = None
    location: Location | None = None
    vcards: tuple[str, ...] = ()
    poll: Poll | None = None
    link_preview: bool = False
    mentions: tuple[str, ...] = ()  # JIDs
    quoted_id: str | None = None
    quoted_sender: str | None = None  # JID of the quoted message's author
    quoted_text: str | None = None


@dataclass(frozen=True)
class SendResult:
    message_id: str
    timestamp: datetime


@dataclass(frozen=True)
class Registration:
    query: str
    jid: str | None
    registered: bool


@dataclass(frozen=True)
class GroupInfo:
    jid: str
    name: str
    topic: str = ""
    owner: str | None = None
    announce: bool = False
    locked: bool = False
    participants: tuple[dict, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class AddressBookEntry:
    """Someone saved in the phone's contacts, as the device's address book sync has it."""

    jid: str  # the person's phone JID
    full_name: str = ""
    first_name: str = ""
    push_name: str = ""  # the name they show, where the device has seen it


class PairingCode(NamedTuple):
    """A code to type on the phone (Linked devices > Link with phone number) and the
    moment it stops working (the transport then stops the session, saying so)."""

    code: str
    expires_at: datetime


class Transport(Protocol):
    """A live WhatsApp device. One instance per session, created by the runtime."""

    name: str

    # lifecycle: start() returns at once; progress arrives as SessionStatus events.
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def logout(self) -> None: ...
    def pair_code(self, phone: str) -> PairingCode: ...
    def me(self) -> Identity | None: ...
    def is_connected(self) -> bool: ...

    # look-ups
    def is_on_whatsapp(self, phones: list[str]) -> list[Registration]: ...
    def profile_picture(self, jid: str) -> str | None: ...
    def user_info(self, jids: list[str]) -> list[dict]: ...
    def groups(self) -> list[GroupInfo]: ...
    # phone <-> LID: for each JID (phone@s.whatsapp.net or …@lid) the other id WhatsApp
    # gave this device, or None: [{"query", "phone", "jid", "lid"}]
    def lid_lookup(self, jids: list[str]) -> list[dict]: ...

    # calls: decline a ringing call (call_id and caller as in CallReceived)
    def reject_call(self, call_id: str, caller: str) -> None: ...

    # The phone's address book as the device synced it (optional: a transport without
    # one has no such method, and a sync answers not_supported).
    # def contacts(self) -> list[AddressBookEntry]: ...

    # groups (participant JIDs; action is add, remove, promote or demote)
    def group_info(self, jid: str) -> GroupInfo: ...
    def create_group(self, name: str, participants: list[str]) -> GroupInfo: ...
    def set_group_name(self, jid: str, name: str) -> None: ...
    def set_group_topic(self, jid: str, topic: str) -> None: ...
    def set_group_announce(self, jid: str, announce: bool) -> None: ...
    def set_group_locked(self, jid: str, locked: bool) -> None: ...
    def group_invite_link(self, jid: str, reset: bool = False) -> str: ...
    def join_group(self, link: str) -> str: ...  # returns the group's JID
    def update_participants(
        self, jid: str, participants: list[str], action: str
    ) -> list[dict]: ...  # [{"jid", "ok", "error"}]
    def leave_group(self, jid: str) -> None: ...

    # messages
    def send(self, message: Outbound) -> SendResult: ...
    def mark_read(self, chat: str, sender: str, message_ids: list[str]) -> None: ...
    def presence(self, chat: str, state: str) -> None: ...  # composing, recording, paused
    def star(self, chat: str, sender: str, message_id: str, starred: bool) -> None: ...
    def download(self, handle: dict) -> bytes: ...


class TransportFactory(Protocol):
    def __call__(
        self, *, session_id: str, store_dir: Path, emit: Emit, options: dict
    ) -> Transport: ...
