"""The sandbox: a simulated WhatsApp network, part of the product.

It never talks to WhatsApp. A sandbox session shows a QR like a real one and pairs when
the QR is "scanned" (API or CLI); virtual contacts send messages in; whatever the session
sends is recorded and answered with simulated delivered/read receipts; faults can be
injected. Use it for demos, for building automations without risking a ban, and for tests.
Virtual contacts also act on the session's groups (add or remove people, the session
included; rename) and vote in the polls it sent, so a developer sees the group and poll
events that other people cause on WhatsApp; what the session does to its own groups is
reported the same way.

The device store (who the session is paired as) is a JSON file in the session's store
folder, so a paired sandbox session reconnects after a restart without a new QR, as a
real one does.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

from server.events import (
    CallReceived,
    Event,
    GroupJoined,
    GroupLeft,
    GroupParticipants,
    GroupUpdated,
    InboundMessage,
    Location,
    MediaInfo,
    MessageBackfilled,
    MessageReceived,
    MessageStatus,
    Party,
    PollVote,
    SessionStatus,
)
from server.whatsapp.jids import GROUP_SERVER, LID_SERVER, USER_SERVER, phone_of, split_jid
from server.whatsapp.sandbox_groups import FILE_NAME as GROUPS_FILE
from server.whatsapp.sandbox_groups import GroupStore
from server.whatsapp.transport import (
    AddressBookEntry,
    Emit,
    GroupInfo,
    Identity,
    NotConnected,
    Outbound,
    PairingCode,
    Registration,
    SendResult,
    TransportError,
    new_message_id,
)

# WhatsApp shows the first QR for about 60 s and later ones for 20 s; the sandbox is quicker.
QR_SECONDS = 20
QR_ROTATIONS = 5
PAIR_CODE_SECONDS = 180  # as the neonize transport shows a pairing code
RECEIPT_DELAYS = (("delivered", 0.2), ("read", 1.0))
# After a restart, receipts still owed for messages delivered this recently are sent.
RECEIPTS_RESUMED_FOR = timedelta(days=1)
ACTIONS = {"reaction", "edit", "revoke"}  # aimed at another message; no receipts


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SandboxDelivered(Event):
    """The sandbox's own bookkeeping, not in the event catalogue (it never reaches
    webhooks or workflows): a message reached a virtual contact's inbox. The runtime
    stores it as a ``SandboxDelivery`` row."""

    type: ClassVar[str] = "sandbox.delivered"
    stored_before_return: ClassVar[bool] = True
    wa_id: str
    to_jid: str
    kind: str
    content: dict


def _contact(phone: str, name: str = "") -> Party:
    """A virtual contact, by the phone number it has in the sandbox."""
    return Party(jid=f"{phone}@{USER_SERVER}", phone=phone, name=name or None)


# A virtual contact's LID: its number, scrambled reversibly (real LIDs are unrelated
# 15-digit numbers that WhatsApp hands out; the sandbox needs no store to know them).
LID_FACTOR, LID_OFFSET = 7, 100_000_000_000_000


def sandbox_lid(phone: str) -> str:
    return f"{int(phone) * LID_FACTOR + LID_OFFSET}@{LID_SERVER}"


def _phone_of_lid(user: str) -> str | None:
    number = int(user) - LID_OFFSET if user.isdigit() else -1
    return str(number // LID_FACTOR) if number > 0 and number % LID_FACTOR == 0 else None


def _person(jid: str) -> Party:
    return Party(jid=jid, phone=phone_of(jid))


class SandboxTransport:
    name = "sandbox"

    def __init__(self, *, session_id: str, store_dir: Path, emit: Emit, options: dict):
        self.session_id = session_id
        self.store = store_dir / "sandbox.json"
        self.media_dir = store_dir / "sandbox-media"
        self.emit = emit
        self.qr_seconds = float(options.get("qr_seconds", QR_SECONDS))
        self.qr_rotations = int(options.get("qr_rotations", QR_ROTATIONS))
        self.pair_code_seconds = float(options.get("pair_code_seconds", PAIR_CODE_SECONDS))
        self.unregistered = set(options.get("unregistered", ()))
        # The simulated phone's address book: {"6281…": "Name as saved"}.
        book = options.get("address_book")
        self.address_book = (
            {str(k): str(v) for k, v in book.items()} if isinstance(book, dict) else {}
        )
        self.receipts = bool(options.get("receipts", True))
        self._lock = threading.RLock()
        self._identity: Identity | None = None
        self._connected = False
        self._qr: str | None = None
        self._clock = _Clock(f"kabar-sandbox-{session_id}")
        self._fail_sends = 0
        self._pending_phone: str | None = None
        self._calls: dict[str, str] = {}  # ringing call id -> caller JID

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            identity = self._load_identity()
            self.emit(SessionStatus(status="connecting", reason="starting"))
            if identity is not None:
                self._connect(identity, reason="restored from the device store")
            else:
                self._show_qr(rotation=0)

    def stop(self) -> None:
        """Disconnect quietly: the runtime reports the stop it asked for."""
        with self._lock:
            self._clock.close()
            self._connected = False
            self._qr = self._pending_phone = None

    def logout(self) -> None:
        with self._lock:
            if not self._connected:
                raise NotConnected()
            self._connected = False
            self._identity = None
            self.store.unlink(missing_ok=True)
            self._cancel_timers()
        self.emit(SessionStatus(status="logged_out", reason="logged out by request"))

    def pair_code(self, phone: str) -> PairingCode:
        """The code replaces the QR codes until it expires (then the session stops, as a
        QR code nobody scanned does)."""
        with self._lock:
            if self._connected:
                raise TransportError(
                    "The session is already paired.", code="already_paired", permanent=True
                )
            code = secrets.token_hex(4).upper()
            self._pending_phone = phone
            self._qr = None
            self._cancel_timers()
            expires = _now() + timedelta(seconds=self.pair_code_seconds)
            self._later(self.pair_code_seconds, lambda: self._pair_code_expired(code))
            self.emit(
                SessionStatus(
                    status="pairing_code",
                    reason="waiting for the code",
                    pair_code=code,
                    qr_expires_at=expires,
                )
            )
        return PairingCode(code, expires)

    def _pair_code_expired(self, code: str) -> None:
        with self._lock:
            if self._connected or self._pending_phone is None:
                return
            self._pending_phone = None
            self.emit(
                SessionStatus(
                    status="stopped",
                    reason="qr_expired: nobody entered the "
                    f"pairing code {code}; start the session to get a new one",
                )
            )

    def me(self) -> Identity | None:
        return self._identity if self._connected else None

    def is_connected(self) -> bool:
        return self._connected

    # --- sandbox controls (the "phone" side) --------------------------------------------

    def scan(self, *, phone: str, push_name: str = "") -> Identity:
        """Pair, as if the phone scanned the QR (or entered the pair code)."""
        with self._lock:
            if self._connected:
                raise TransportError(
                    "The session is already paired.", code="already_paired", permanent=True
                )
            if self._qr is None and not self._pending_phone:
                raise TransportError(
                    "There is no QR or pair code to scan right now; start the session first.",
                    code="no_qr",
                    permanent=True,
                )
            identity = Identity(
                jid=f"{phone}@{USER_SERVER}",
                phone=phone,
                push_name=push_name or f"Sandbox {phone[-4:]}",
            )
            self.store.parent.mkdir(parents=True, exist_ok=True)
            self.store.write_text(json.dumps(identity.__dict__))
            self._cancel_timers()
            self._pending_phone = None
            self._connect(identity, reason="paired")
            return identity

    def inject(
        self,
        *,
        sender: str,
        name: str = "",
        text: str = "",
        kind: str = "text",
        media: tuple[bytes, str, str | None] | None = None,
        location: Location | None = None,
        quoted_id: str | None = None,
        group: str | None = None,
    ) -> InboundMessage:
        """A virtual contact sends this session a message."""
        if not self._connected:
            raise NotConnected()
        sender_party = _contact(sender, name)
        chat = sender_party
        if group:  # the contact is (made) a member; a new group is made by them
            group, group_name, change = self._groups.spoken_in(
                group, self._me_jid(), sender_party.jid
            )
            chat = Party(jid=group, name=group_name)
            if change == "created":  # with this session in it: the contact added it
                self.emit(
                    GroupJoined(group=chat, name=group_name, timestamp=_now(), by=sender_party)
                )
            elif change == "added":
                self.emit(
                    GroupParticipants(
                        group=chat, action="add", participants=(sender_party,), timestamp=_now()
                    )
                )
        media_info = None
        if media is not None:
            data, mimetype, filename = media
            digest = hashlib.sha256(data).hexdigest()
            self.media_dir.mkdir(parents=True, exist_ok=True)
            (self.media_dir / digest).write_bytes(data)
            media_info = MediaInfo(
                mimetype=mimetype,
                filename=filename,
                size=len(data),
                sha256=digest,
                handle={"sandbox_sha256": digest},
            )
        message = InboundMessage(
            id=new_message_id(),
            chat=chat,
            sender=sender_party,
            timestamp=_now(),
            kind=kind,
            text=text,
            is_group=bool(group),
            media=media_info,
            location=location,
            quoted_id=quoted_id,
        )
        self.emit(MessageReceived(message=message))
        return message

    def contact_participants(
        self, *, actor: str, name: str = "", group: str, participants: list[str], action: str
    ) -> list[dict]:
        """Virtual contact ``actor`` (a phone), an admin of ``group``, adds, removes,
        promotes or demotes people in it, this session's account included."""
        by = _contact(actor, name)
        return self._change_participants(group, by.jid, participants, action, by=by, contact=True)

    def contact_update_group(
        self, *, actor: str, name: str = "", group: str, changes: dict
    ) -> list[str]:
        """Virtual contact ``actor`` changes the group's name, topic, announce or locked
        (the same rules as for the session); answers the fields that changed."""
        by = _contact(actor, name)
        return [
            field
            for field in ("name", "topic", "announce", "locked")
            if field in changes
            and self._edit_group(group, by.jid, field, changes[field], by=by, contact=True)
        ]

    def vote(
        self, *, voter: str, name: str = "", poll_id: str, chat: str, options: list[str]
    ) -> PollVote:
        """Virtual contact ``voter`` votes in poll ``poll_id`` that this session sent to
        ``chat`` (the web checked the poll and its options; empty: the vote taken back).
        Only the person a poll went to, or a member of its group, can vote in it."""
        me = self._me_jid()
        who = _contact(voter, name)
        where = who
        if split_jid(chat)[1] == GROUP_SERVER:
            group = self._groups.peek(chat) or {"participants": {}, "name": None}
            if me not in group["participants"]:
                raise TransportError(
                    f"This session is no longer in group {chat}, so it sees no votes there.",
                    code="not_in_group",
                    permanent=True,
                )
            if who.jid not in group["participants"]:
                raise TransportError(
                    f"{voter} is not in group {chat}, so cannot vote in its polls.",
                    code="not_in_group",
                    permanent=True,
                )
            where = Party(jid=chat, name=group["name"])
        elif chat != who.jid:
            raise TransportError(
                f"This poll was sent to {phone_of(chat) or chat}; only they can vote in it.",
                code="not_poll_recipient",
                permanent=True,
            )
        event = PollVote(
            poll_id=poll_id, chat=where, voter=who, options=tuple(options), timestamp=_now()
        )
        self.emit(event)
        return event

    def call(self, *, caller: str, name: str = "", video: bool = False) -> CallReceived:
        """A virtual contact calls this session (it rings until rejected)."""
        if not self._connected:
            raise NotConnected()
        event = CallReceived(
            call_id=secrets.token_hex(16).upper(),
            caller=_contact(caller, name),
            timestamp=_now(),
            video=video,
        )
        with self._lock:
            self._calls[event.call_id] = event.caller.jid
        self.emit(event)
        return event

    def history(self, messages: list[dict]) -> list[str]:
        """WhatsApp's history sync after a reconnect: each message (``from``, ``text``,
        optional ``id``, ``timestamp``, ``from_me``, ``name``) as the sync delivers it,
        emitted as MessageBackfilled. Returns their ids."""
        if not self._connected:
            raise NotConnected()
        ids = []
        for item in messages:
            contact = _contact(item["from"], item.get("name", ""))
            from_me = bool(item.get("from_me"))
            message = InboundMessage(
                id=item.get("id") or new_message_id(),
                chat=contact,
                sender=self._me_party() if from_me else contact,
                timestamp=item.get("timestamp") or _now(),
                kind="text",
                text=item.get("text", ""),
                from_me=from_me,
            )
            self.emit(MessageBackfilled(message=message))
            ids.append(message.id)
        return ids

    def fault(self, kind: str, count: int = 1) -> None:
        """disconnect (then reconnect), logout (from the phone), send_error (next sends)."""
        if kind == "disconnect":
            with self._lock:
                self._connected = False
            self.emit(SessionStatus(status="disconnected", reason="sandbox fault: disconnect"))
            self.emit(SessionStatus(status="reconnecting", reason="sandbox fault: disconnect"))
            self._later(
                1.0, lambda: self._identity and self._connect(self._identity, reason="reconnected")
            )
        elif kind == "logout":
            with self._lock:
                self._connected = False
                self._identity = None
                self.store.unlink(missing_ok=True)
            self.emit(SessionStatus(status="logged_out", reason="logged out from the phone"))
        elif kind == "send_error":
            self._fail_sends += count
        else:
            raise TransportError(f"Unknown fault {kind!r}.", code="unknown_fault", permanent=True)

    # --- look-ups -----------------------------------------------------------------------

    def _require_connected(self) -> None:
        if not self._connected:
            raise NotConnected()

    def is_on_whatsapp(self, phones: list[str]) -> list[Registration]:
        self._require_connected()
        return [
            Registration(
                query=p,
                jid=None if p in self.unregistered else f"{p}@{USER_SERVER}",
                registered=p not in self.unregistered,
            )
            for p in phones
        ]

    def profile_picture(self, jid: str) -> str | None:
        self._require_connected()
        return None  # virtual contacts have no pictures

    def user_info(self, jids: list[str]) -> list[dict]:
        self._require_connected()
        return [
            {"jid": jid, "phone": phone_of(jid), "status": "Sandbox contact", "devices": [jid]}
            for jid in jids
        ]

    def lid_lookup(self, jids: list[str]) -> list[dict]:
        self._require_connected()
        result = []
        for query in jids:
            user, server = split_jid(query)
            # The id asked about is always answered; the other one only if known.
            if server == LID_SERVER:
                phone, lid = _phone_of_lid(user), query
                if phone in self.unregistered:
                    phone = None
            elif server == USER_SERVER:
                phone = user
                lid = None if user in self.unregistered else sandbox_lid(user)
            else:
                raise TransportError(
                    f"{query!r} is neither a phone JID nor a LID.",
                    code="invalid_jid",
                    permanent=True,
                )
            result.append(
                {
                    "query": query,
                    "phone": phone,
                    "lid": lid,
                    "jid": f"{phone}@{USER_SERVER}" if phone else None,
                }
            )
        return result

    # --- calls ----------------------------------------------------------------------------

    def reject_call(self, call_id: str, caller: str) -> None:
        self._require_connected()
        with self._lock:
            ringing = self._calls.get(call_id)
            if ringing is None or ringing != caller:
                raise TransportError(
                    f"No call {call_id} from {caller} is ringing.",
                    code="call_not_found",
                    permanent=True,
                )
            del self._calls[call_id]

    # --- groups (the rules and the durable store: sandbox_groups.py) ---------------------
    # Each change is reported as the group event the session would see on WhatsApp, with
    # ``by`` the session itself here, the contact for contact_participants/_update_group.

    def contacts(self) -> list[AddressBookEntry]:
        """The simulated phone's address book (settings.sandbox.address_book)."""
        self._require_connected()
        return [
            AddressBookEntry(
                jid=f"{phone}@{USER_SERVER}",
                full_name=name,
                first_name=name.split()[0] if name.split() else "",
            )
            for phone, name in sorted(self.address_book.items())
        ]

    def groups(self) -> list[GroupInfo]:
        return self._groups.of(self._me_jid())

    def group_info(self, jid: str) -> GroupInfo:
        return self._groups.info(jid, self._me_jid())

    def create_group(self, name: str, participants: list[str]) -> GroupInfo:
        info = self._groups.create(self._me_jid(), name, participants)
        self.emit(
            GroupJoined(
                group=Party(jid=info.jid, name=info.name),
                name=info.name,
                timestamp=_now(),
                by=self._me_party(),
            )
        )
        return info

    def set_group_name(self, jid: str, name: str) -> None:
        self._edit_group(jid, self._me_jid(), "name", name, by=self._me_party())

    def set_group_topic(self, jid: str, topic: str) -> None:
        self._edit_group(jid, self._me_jid(), "topic", topic, by=self._me_party())

    def set_group_announce(self, jid: str, announce: bool) -> None:
        self._edit_group(jid, self._me_jid(), "announce", bool(announce), by=self._me_party())

    def set_group_locked(self, jid: str, locked: bool) -> None:
        self._edit_group(jid, self._me_jid(), "locked", bool(locked), by=self._me_party())

    def group_invite_link(self, jid: str, reset: bool = False) -> str:
        return self._groups.invite_link(jid, self._me_jid(), reset=reset)

    def join_group(self, link: str) -> str:
        """By link, as on WhatsApp: nobody in particular let the session in (no ``by``)."""
        with self._lock:
            jid, joined = self._groups.join(self._me_jid(), link)
            name = (self._groups.peek(jid) or {}).get("name", "")
        if joined:
            self.emit(GroupJoined(group=Party(jid=jid, name=name), name=name, timestamp=_now()))
        return jid

    def update_participants(self, jid: str, participants: list[str], action: str) -> list[dict]:
        return self._change_participants(
            jid, self._me_jid(), participants, action, by=self._me_party()
        )

    def leave_group(self, jid: str) -> None:
        with self._lock:
            name = (self._groups.peek(jid) or {}).get("name")
            self._groups.leave(jid, self._me_jid())
        self.emit(
            GroupLeft(
                group=Party(jid=jid, name=name),
                timestamp=_now(),
                by=self._me_party(),
                reason="left",
            )
        )

    def _edit_group(
        self, jid: str, actor: str, field: str, value: object, *, by: Party, contact: bool = False
    ) -> bool:
        """One setting changed by ``actor``; group.updated if it is new and the session
        is in the group to see it."""
        me = self._me_jid()
        with self._lock:
            changed = self._groups.edit(jid, actor, field, value, contact=contact)
            group = self._groups.peek(jid)
        if changed and me in group["participants"]:
            self.emit(
                GroupUpdated(
                    group=Party(jid=jid, name=group["name"]),
                    timestamp=_now(),
                    by=by,
                    **{field: value},
                )
            )
        return changed

    def _change_participants(
        self,
        jid: str,
        actor: str,
        people: list[str],
        action: str,
        *,
        by: Party,
        contact: bool = False,
    ) -> list[dict]:
        """Participants changed by ``actor``. The session's own arrival and departure are
        group.joined / group.left; everyone else changed (and the session promoted or
        demoted) is one group.participants, if the session was or is in the group."""
        me = self._me_jid()
        with self._lock:
            before = set((self._groups.peek(jid) or {}).get("participants", ()))
            results = self._groups.update_participants(jid, actor, people, action, contact=contact)
            group = self._groups.peek(jid)
        changed = [r["jid"] for r in results if r["ok"]]
        where, now = Party(jid=jid, name=group["name"]), _now()
        others = [p for p in changed if p != me or action in ("promote", "demote")]
        if me in changed and action == "add":
            self.emit(GroupJoined(group=where, name=group["name"], timestamp=now, by=by))
        if others and me in before | set(group["participants"]):
            self.emit(
                GroupParticipants(
                    group=where,
                    action=action,
                    timestamp=now,
                    by=by,
                    participants=tuple(_person(p) for p in others),
                )
            )
        if me in changed and action == "remove":
            self.emit(GroupLeft(group=where, timestamp=now, by=by, reason="removed"))
        return results

    @property
    def _groups(self) -> GroupStore:
        return GroupStore(
            self.store.with_name(GROUPS_FILE), unregistered=self.unregistered, lock=self._lock
        )

    def _me_jid(self) -> str:
        """Who "me" is in a group: the paired account; not connected, no groups."""
        identity = self._identity
        if not self._connected or identity is None:
            raise NotConnected()
        return identity.jid

    def _me_party(self) -> Party:
        identity = self._identity
        if identity is None:
            raise NotConnected()
        return Party(jid=identity.jid, phone=identity.phone, name=identity.push_name or None)

    # --- sending --------------------------------------------------------------------------

    def send(self, message: Outbound) -> SendResult:
        self._require_connected()
        if self._fail_sends > 0:
            self._fail_sends -= 1
            raise TransportError("sandbox fault: send error", code="send_failed")
        user, server = split_jid(message.to)
        if server == USER_SERVER and user in self.unregistered:
            raise TransportError(
                f"{user} is not on WhatsApp.", code="not_on_whatsapp", permanent=True
            )
        self._deliver(message)
        if message.kind not in ACTIONS:
            self._simulate_receipts(message.to, [message.message_id])
        return SendResult(message_id=message.message_id, timestamp=_now())

    def _deliver(self, message: Outbound) -> None:
        """Put the message in the virtual recipient's inbox, once per WhatsApp id: the
        same id sent again (a retry after a crash) is the same message, as on WhatsApp.
        The runtime stores it (the transport may run in a process without the database)
        before this returns."""
        from server.events import to_wire

        content = {
            "text": message.text,
            "mentions": list(message.mentions),
            "quoted_id": message.quoted_id,
            "link_preview": message.link_preview,
        }
        if message.media is not None:
            content["media"] = {
                "mimetype": message.media.mimetype,
                "filename": message.media.filename,
                "size": len(message.media.data),
                "sha256": hashlib.sha256(message.media.data).hexdigest(),
            }
        for name in ("location", "poll"):
            if getattr(message, name) is not None:
                content[name] = to_wire(getattr(message, name))
        if message.vcards:
            content["vcards"] = list(message.vcards)
        self.emit(
            SandboxDelivered(
                wa_id=message.message_id, to_jid=message.to, kind=message.kind, content=content
            )
        )

    def mark_read(self, chat: str, sender: str, message_ids: list[str]) -> None:
        self._require_connected()

    def presence(self, chat: str, state: str) -> None:
        self._require_connected()

    def star(self, chat: str, sender: str, message_id: str, starred: bool) -> None:
        self._require_connected()  # a star is kept on the device only: nothing to simulate

    def download(self, handle: dict) -> bytes:
        digest = handle.get("sandbox_sha256", "")
        path = self.media_dir / digest
        if not digest or not path.is_file():
            raise TransportError(
                "The sandbox has no such media.", code="media_not_found", permanent=True
            )
        return path.read_bytes()

    # --- internals ------------------------------------------------------------------------

    def _load_identity(self) -> Identity | None:
        try:
            return Identity(**json.loads(self.store.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def _connect(self, identity: Identity, *, reason: str) -> None:
        with self._lock:
            self._identity = identity
            self._connected = True
            self._qr = None
        self.emit(
            SessionStatus(
                status="connected",
                reason=reason,
                jid=identity.jid,
                phone=identity.phone,
                push_name=identity.push_name,
            )
        )
        self._resume_receipts()

    def _resume_receipts(self) -> None:
        """Receipts still owed when the runtime stopped (their timers lived in the old
        process) are derived from the rows: a message the virtual recipient received
        (a delivery) whose outbox row is still sent or delivered gets the rest."""
        if not self.receipts:
            return
        import sqlalchemy as sa

        from server.models import OutboxMessage, SandboxDelivery, db

        since = _now() - RECEIPTS_RESUMED_FOR
        # Its own connection: the caller's session (the runtime's control thread) may be
        # in the middle of its own work. In a session process there is no database (the
        # sandbox there does not resume receipts owed from before a restart).
        try:
            engine = db.engine
        except RuntimeError:
            logging.getLogger(__name__).info(
                "session %s: no database here; owed receipts not resumed", self.session_id
            )
            return
        with engine.connect() as connection:
            owed = connection.execute(
                sa.select(SandboxDelivery.to_jid, SandboxDelivery.wa_id, OutboxMessage.status)
                .join(
                    OutboxMessage,
                    sa.and_(
                        OutboxMessage.session_id == SandboxDelivery.session_id,
                        OutboxMessage.wa_id == SandboxDelivery.wa_id,
                    ),
                )
                .where(
                    SandboxDelivery.session_id == self.session_id,
                    SandboxDelivery.received_at >= since,
                    SandboxDelivery.kind.not_in(ACTIONS),
                    OutboxMessage.status.in_(("sent", "delivered")),
                )
                .order_by(SandboxDelivery.id)
            ).all()
        for row in owed:
            self._simulate_receipts(row.to_jid, [row.wa_id], after=row.status)

    def _show_qr(self, rotation: int) -> None:
        with self._lock:
            if self._connected:
                return
            if rotation >= self.qr_rotations:
                self._qr = None
                self.emit(
                    SessionStatus(
                        status="stopped",
                        reason="qr_expired: nobody scanned "
                        "the QR code; start the session to get a new one",
                    )
                )
                return
            self._qr = f"2@sandbox,{self.session_id},{secrets.token_urlsafe(16)}"
            expires = _now() + timedelta(seconds=self.qr_seconds)
            self.emit(
                SessionStatus(
                    status="qr",
                    reason=f"QR code {rotation + 1} of {self.qr_rotations}",
                    qr=self._qr,
                    qr_expires_at=expires,
                )
            )
            self._later(self.qr_seconds, lambda: self._show_qr(rotation + 1))

    def _simulate_receipts(self, chat: str, ids: list[str], *, after: str = "sent") -> None:
        """Delivered and read receipts for ``ids`` a little later (only those past
        ``after``, the status the messages already have)."""
        if not self.receipts:
            return
        user, server = split_jid(chat)
        party = Party(jid=chat, phone=user if server == USER_SERVER else None)
        statuses = [name for name, _delay in RECEIPT_DELAYS]
        for status, delay in RECEIPT_DELAYS:
            if after in statuses and statuses.index(status) <= statuses.index(after):
                continue
            self._later(
                delay,
                lambda status=status: (
                    self._connected
                    and self.emit(
                        MessageStatus(
                            message_ids=tuple(ids), status=status, chat=party, timestamp=_now()
                        )
                    )
                ),
            )

    def _later(self, seconds: float, action) -> None:
        """Run ``action`` after ``seconds`` on this session's one timer thread (a burst
        of sends must not start a thread per receipt)."""
        self._clock.call_later(seconds, action)

    def _cancel_timers(self) -> None:
        self._clock.cancel_all()


class _Clock:
    """A single daemon thread running delayed actions in time order."""

    def __init__(self, name: str):
        self._name = name
        self._queue: list[tuple[float, int, object]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._generation = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def call_later(self, seconds: float, action) -> None:
        with self._condition:
            heapq.heappush(
                self._queue,
                (time.monotonic() + seconds, next(self._counter), (self._generation, action)),
            )
            if self._thread is None or not self._thread.is_alive():
                self._closed = False
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._condition.notify()

    def cancel_all(self) -> None:
        with self._condition:
            self._queue.clear()
            self._generation += 1

    def close(self) -> None:
        """Cancel everything and let the thread end."""
        with self._condition:
            self.cancel_all()
            self._closed = True
            self._condition.notify()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._queue or self._queue[0][0] > time.monotonic():
                    if self._closed:
                        return
                    timeout = self._queue[0][0] - time.monotonic() if self._queue else None
                    self._condition.wait(timeout)
                _, _, (generation, action) = heapq.heappop(self._queue)
                if generation != self._generation:
                    continue
            try:
                action()
            except Exception:  # a failed simulated event must not stop the clock
                logging.getLogger(__name__).exception("sandbox timer failed")
