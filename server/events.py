"""The event catalogue: one frozen dataclass per event, the same for every transport and
every consumer (storage, workflows, webhooks, the live stream).

Transports emit these without the session envelope; the runtime adds it (see
``Envelope``). Each class's docstring says when it fires; ``type`` is its stable wire
name. JSON happens only at the edges (``to_wire``). Version: ``CATALOGUE_VERSION``.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

CATALOGUE_VERSION = 1


@dataclass(frozen=True)
class Event:
    type: ClassVar[str]
    # The transport's callback returns only once the runtime has stored the event (an
    # inbound message: WhatsApp must not be told "received" about a message not saved).
    stored_before_return: ClassVar[bool] = False


# --- sessions -----------------------------------------------------------------------

SESSION_STATUSES = (
    "created",
    "qr",
    "pairing_code",
    "connecting",
    "connected",
    "disconnected",
    "reconnecting",
    "logged_out",
    "banned",
    "failed",
    "stopped",
    "deleted",
)


@dataclass(frozen=True)
class SessionStatus(Event):
    """The session's state changed. ``qr`` carries the code to show while status is qr;
    ``pair_code`` while pairing_code; jid/phone/push_name once connected."""

    type: ClassVar[str] = "session.status"
    status: str
    reason: str = ""
    qr: str | None = None
    qr_expires_at: datetime | None = None
    pair_code: str | None = None
    jid: str | None = None
    phone: str | None = None
    push_name: str | None = None

    def __post_init__(self) -> None:
        if self.status not in SESSION_STATUSES:
            raise ValueError(f"unknown session status {self.status!r}")


# --- messages -----------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """Someone in a chat: their JID as WhatsApp gave it, and the phone number behind it
    (resolved from an @lid when WhatsApp hides the number)."""

    jid: str
    phone: str | None = None
    lid: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class MediaInfo:
    mimetype: str
    filename: str | None = None
    size: int | None = None
    sha256: str | None = None
    # Opaque to everyone but the transport that produced it: how to download it later.
    handle: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    id: str
    chat: Party
    sender: Party
    timestamp: datetime
    kind: str  # text, image, video, audio, voice, document, sticker, location, contacts, poll,
    #            reaction, unknown
    text: str = ""
    from_me: bool = False
    is_group: bool = False
    media: MediaInfo | None = None
    location: Location | None = None
    quoted_id: str | None = None
    mentions: tuple[str, ...] = ()


@dataclass(frozen=True)
class MessageReceived(Event):
    """A message arrived in a chat of this session (from_me: sent from the phone itself)."""

    type: ClassVar[str] = "message.received"
    stored_before_return: ClassVar[bool] = True
    message: InboundMessage


@dataclass(frozen=True)
class MessageBackfilled(Event):
    """A message Kabar had not stored, recovered from WhatsApp's history sync (sent or
    received while this session was disconnected, or within ``backfill_days`` of a new
    pairing). Stored in the message history like any other, at most once per WhatsApp
    id; it never starts or resumes a workflow and is never auto-replied to: it is old
    news. Fires once per message that was new."""

    type: ClassVar[str] = "message.backfilled"
    message: InboundMessage


@dataclass(frozen=True)
class MessageSent(Event):
    """WhatsApp accepted a message this session sent through the outbox."""

    type: ClassVar[str] = "message.sent"
    message_id: str  # Kabar's id (the outbox row)
    wa_id: str
    to: str
    kind: str
    source: str
    timestamp: datetime


@dataclass(frozen=True)
class MessageStatus(Event):
    """Receipts for messages this session sent: delivered, read, played (or failed)."""

    type: ClassVar[str] = "message.status"
    message_ids: tuple[str, ...]
    status: str  # sent, delivered, read, played, failed
    chat: Party
    timestamp: datetime
    reason: str = ""


@dataclass(frozen=True)
class MessageReaction(Event):
    """Someone reacted to a message (emoji empty: the reaction was removed)."""

    type: ClassVar[str] = "message.reaction"
    message_id: str
    chat: Party
    sender: Party
    emoji: str
    timestamp: datetime


@dataclass(frozen=True)
class MessageEdited(Event):
    """A message was edited by its sender."""

    type: ClassVar[str] = "message.edited"
    message_id: str
    chat: Party
    sender: Party
    text: str
    timestamp: datetime


@dataclass(frozen=True)
class MessageRevoked(Event):
    """A message was deleted for everyone by its sender."""

    type: ClassVar[str] = "message.revoked"
    message_id: str
    chat: Party
    sender: Party
    timestamp: datetime


@dataclass(frozen=True)
class PresenceUpdate(Event):
    """A contact is typing / recording / online / offline."""

    type: ClassVar[str] = "presence.update"
    chat: Party
    sender: Party
    state: str  # composing, recording, paused, available, unavailable


@dataclass(frozen=True)
class CallReceived(Event):
    """Someone is calling this number (Kabar cannot answer calls; it can reject one:
    ``POST /api/v1/sessions/{id}/calls/{call_id}/reject``)."""

    type: ClassVar[str] = "call.received"
    call_id: str
    caller: Party
    timestamp: datetime
    video: bool = False


@dataclass(frozen=True)
class PollVote(Event):
    """Someone voted in a poll (options: the names they picked now; empty: they took their
    vote back). Fires once per vote change, for polls this session sent or saw."""

    type: ClassVar[str] = "poll.vote"
    poll_id: str  # WhatsApp's id of the poll message
    chat: Party
    voter: Party
    options: tuple[str, ...]
    timestamp: datetime


# --- groups -------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupJoined(Event):
    """This session's account became a member of a group: it created or joined one, or
    someone added it (``by``: who, when known)."""

    type: ClassVar[str] = "group.joined"
    group: Party
    name: str
    timestamp: datetime
    by: Party | None = None


@dataclass(frozen=True)
class GroupLeft(Event):
    """This session's account is no longer in a group: it left, or someone removed it
    (``by``), or the group was deleted."""

    type: ClassVar[str] = "group.left"
    group: Party
    timestamp: datetime
    by: Party | None = None
    reason: str = ""  # left, removed, deleted


@dataclass(frozen=True)
class GroupParticipants(Event):
    """People were added to, removed from, promoted or demoted in a group this session
    is in (action: add, remove, promote, demote; join: they used a link). This session's
    own arrival and departure are group.joined and group.left, never in these lists."""

    type: ClassVar[str] = "group.participants"
    group: Party
    action: str  # add, remove, promote, demote, join
    participants: tuple[Party, ...]
    timestamp: datetime
    by: Party | None = None


@dataclass(frozen=True)
class GroupUpdated(Event):
    """A group's name, topic or settings changed; only the fields that changed are set
    (None: unchanged). announce: only admins may send; locked: only admins edit info."""

    type: ClassVar[str] = "group.updated"
    group: Party
    timestamp: datetime
    by: Party | None = None
    name: str | None = None
    topic: str | None = None
    announce: bool | None = None
    locked: bool | None = None


# --- contacts -----------------------------------------------------------------------


@dataclass(frozen=True)
class ContactUpdated(Event):
    """The session's address book synced a contact, or a contact changed the name they
    show (push name). ``saved``: in the phone's own contacts (None: not said);
    ``full_name``: the name saved there; only what the transport reported is set."""

    type: ClassVar[str] = "contact.updated"
    contact: Party
    timestamp: datetime
    saved: bool | None = None
    full_name: str | None = None
    push_name: str | None = None


# --- workflows ----------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowCompleted(Event):
    """A workflow run ended well: its last node finished, or an ``end`` node ended it
    (``result``: what that node gave). ``chain``: how many runs before it each started
    the next by their end (0: started otherwise)."""

    type: ClassVar[str] = "workflow.completed"
    run_id: str
    workflow: str
    version: int
    trigger: str  # message, schedule, hook, event, manual, call
    result: Any = None
    chain: int = 0  # runs before this one that each started the next by their end


@dataclass(frozen=True)
class WorkflowFailed(Event):
    """A workflow run failed: a node failed with no ``error`` path wired (after its
    retries), the run looped, an ``end`` node ended it as failed, or it was refused at
    its start (past ``KABAR_WORKFLOW_CHAIN_LIMIT`` or the event-start rate). ``node``:
    where; ``chain`` as in ``workflow.completed``."""

    type: ClassVar[str] = "workflow.failed"
    run_id: str
    workflow: str
    version: int
    trigger: str
    node: str | None
    error: str
    chain: int = 0  # runs before this one that each started the next by their end


CATALOGUE: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        SessionStatus,
        MessageReceived,
        MessageBackfilled,
        MessageSent,
        MessageStatus,
        MessageReaction,
        MessageEdited,
        MessageRevoked,
        PresenceUpdate,
        CallReceived,
        PollVote,
        GroupJoined,
        GroupLeft,
        GroupParticipants,
        GroupUpdated,
        ContactUpdated,
        WorkflowCompleted,
        WorkflowFailed,
    )
}


def to_wire(value: Any) -> Any:
    """JSON-ready data for an event or any part of one (datetimes as ISO 8601 UTC)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value  # the commonest leaves first: one event has many
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: to_wire(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    return value


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names, looked up once per class (``to_wire`` runs for every
    stored event)."""
    return tuple(f.name for f in dataclasses.fields(cls))


def render_markdown() -> str:
    """The catalogue table of docs/events.md, from the dataclasses themselves (a test
    keeps the file in step, so the documentation cannot drift from the code)."""
    lines = [
        f"Catalogue version {CATALOGUE_VERSION}.",
        "",
        "| type | fields of `data` | when it fires |",
        "| --- | --- | --- |",
    ]
    for name, cls in CATALOGUE.items():
        fields = ", ".join(f"`{f.name}`" for f in dataclasses.fields(cls))
        when = " ".join((cls.__doc__ or "").split())
        lines.append(f"| `{name}` | {fields} | {when} |")
    return "\n".join(lines) + "\n"


# --- tickets (the helpdesk) -----------------------------------------------------------
# Ticket events are the helpdesk's, not a session's: they are recorded with the session
# the ticket came in through (when it still exists), so that session's owner, admins, and
# webhooks of that session or of every session see them. Workflows trigger on them to
# notify the reporter and the assignee (see docs/helpdesk.md).


@dataclass(frozen=True)
class TicketParty:
    """Someone a ticket event names. kind: reporter (a WhatsApp sender), staff (a staff
    member on WhatsApp), user (someone in the dashboard or API), system (a workflow)."""

    kind: str
    name: str = ""
    phone: str | None = None
    jid: str | None = None
    user_id: int | None = None
    person_id: str | None = None
    level: str | None = None


@dataclass(frozen=True)
class TicketInfo:
    """A ticket as it stands after the event. ``session_id`` and ``chat`` are where it
    came from: reply to the reporter there."""

    number: str
    status: str
    category: str
    text: str
    reporter: TicketParty
    assignee: TicketParty | None
    session_id: str | None
    chat: str | None
    photo: str | None  # a message id: the stored WhatsApp message whose media it is
    created_at: datetime


@dataclass(frozen=True)
class TicketCreated(Event):
    """A report became a ticket with its tracking number (status new)."""

    type: ClassVar[str] = "ticket.created"
    ticket: TicketInfo
    actor: TicketParty


@dataclass(frozen=True)
class TicketAssigned(Event):
    """A ticket was given to a staff member (``previous``: whom it was taken from)."""

    type: ClassVar[str] = "ticket.assigned"
    ticket: TicketInfo
    actor: TicketParty
    assignee: TicketParty
    note: str = ""
    previous: TicketParty | None = None


@dataclass(frozen=True)
class TicketStarted(Event):
    """The assignee started work on a ticket (status in_progress)."""

    type: ClassVar[str] = "ticket.started"
    ticket: TicketInfo
    actor: TicketParty
    note: str = ""


@dataclass(frozen=True)
class TicketProgress(Event):
    """Progress was reported on an open ticket, maybe with a photo (a message id)."""

    type: ClassVar[str] = "ticket.progress"
    ticket: TicketInfo
    actor: TicketParty
    note: str
    photo: str | None = None


@dataclass(frozen=True)
class TicketFinished(Event):
    """The work on a ticket is done (status done); the reporter may now confirm it."""

    type: ClassVar[str] = "ticket.finished"
    ticket: TicketInfo
    actor: TicketParty
    note: str = ""
    photo: str | None = None
    duration_seconds: int | None = None


@dataclass(frozen=True)
class TicketConfirmed(Event):
    """The reporter (or a manager) confirmed a done ticket (status confirmed)."""

    type: ClassVar[str] = "ticket.confirmed"
    ticket: TicketInfo
    actor: TicketParty
    note: str = ""


@dataclass(frozen=True)
class TicketReopened(Event):
    """A done, confirmed or pending ticket is open again (assigned, or new without an
    assignee)."""

    type: ClassVar[str] = "ticket.reopened"
    ticket: TicketInfo
    actor: TicketParty
    previous_status: str
    note: str = ""


@dataclass(frozen=True)
class TicketStatusChanged(Event):
    """A ticket's status changed in a way no other ticket event names: put on hold
    (pending)."""

    type: ClassVar[str] = "ticket.status"
    ticket: TicketInfo
    actor: TicketParty
    status: str
    previous_status: str
    note: str = ""


@dataclass(frozen=True)
class TicketNote(Event):
    """Someone added a note to a ticket without changing it."""

    type: ClassVar[str] = "ticket.note"
    ticket: TicketInfo
    actor: TicketParty
    note: str


TICKET_EVENTS: tuple[type[Event], ...] = (
    TicketCreated,
    TicketAssigned,
    TicketStarted,
    TicketProgress,
    TicketFinished,
    TicketConfirmed,
    TicketReopened,
    TicketStatusChanged,
    TicketNote,
)
CATALOGUE.update({cls.type: cls for cls in TICKET_EVENTS})
