"""The real WhatsApp transport: neonize 0.5.2 (whatsmeow, in Go, loaded with ctypes).

This is the only module in Kabar that imports neonize, and it does so lazily (``_nz()``):
importing neonize loads an 18 MB Go library, starts a log-forwarding thread and configures
the root logger, none of which the web process may ever do. Facts about neonize below come
from ``docs/neonize-notes.md`` (checked against the installed package); the section numbers
in comments (§n) point there.

One ``NeonizeTransport`` per session, one neonize ``NewClient`` per transport, with the
session id as the client's ``uuid`` (the key of neonize's Go-side client map). The device
store is a SQLite file in the session's store folder (WAL, busy timeout) or, with
``options["store_url"]``, a PostgreSQL database.

Hazards this module is built around (each is commented where it matters):

- ``get_me``, ``revoke_message`` and the LID<->phone look-ups abort the whole process when
  neonize has no Go client for the uuid (before connect, after stop, not logged in; §6).
  They are only called while a ``Connected`` event has been seen and under ``_go_lock``,
  which ``stop()`` takes before it tears the client down. ``revoke_message`` is never
  called: revokes are built in Python with our own JID.
- ``StreamReplaced``, ``KeepAliveRestored`` and ``ClientOutdated`` are never subscribed.
- Handlers run one at a time on neonize's connect thread (§4): they convert (at most a
  local LID look-up) and ``emit``, nothing else. ``emit`` only enqueues, except for
  ``MessageReceived``, which waits until the runtime has stored the message (intended:
  WhatsApp must not be told "received" about a message Kabar has not saved).
- ``is_connected``/``stop``/``disconnect`` can block while whatsmeow dials (§6): they are
  only reached from the runtime's control thread (``is_connected()``, ``stop()``), each
  bounded, and every other method decides "connected?" from this transport's own state.
  ``pair_code()`` and ``logout()`` also run on that thread, which must renew the runtime
  lease every 2 s: their waits are bounded too (``pair_code_wait``, ``call_timeout``).
- ``connect()`` blocks for the life of the session, so ``start()`` runs it on a thread of
  its own and returns at once; neonize does not retry a first connect that fails (§6), so
  this module does, with exponential backoff, reporting ``reconnecting`` each time.
- ``stop()`` returns within ``stop_timeout`` even when ``connect()`` is stuck.

neonize 0.5.2 cannot send a message under an id chosen by the caller: neither
``NewClient.send_message`` nor the Go export behind it (uuid, recipient, message; no
options) takes one, and the Go side passes whatsmeow an empty ``SendRequestExtra``, so
whatsmeow picks the id. Kabar picks ``Outbound.message_id`` before the first attempt
and keys receipts, edits, reactions and retries on it, so this module keeps a small map
(``_IdMap``, a SQLite file next to the device store) between Kabar's id and WhatsApp's:
a retry of an id already sent is answered from the map instead of being sent twice, and
ids in receipts, reactions, edits, revokes and quotes are translated both ways. The
window between whatsmeow sending and the map being written remains: a crash exactly
there sends the message twice.

Poll votes arrive encrypted, naming the chosen options only by their SHA-256: whatsmeow
decrypts them (``decrypt_poll_vote``, with the poll's secret it kept when the poll was
sent or received) and the same SQLite file keeps each poll's option names, for polls this
session sent or saw, so a vote can be reported by name, after a restart too. A vote in a
poll that came before Kabar ran (or was pruned) cannot be named and is logged, not
reported. Group events come from WhatsApp's group notifications, which reach this device
for the changes it made itself as well: nothing is emitted by the group calls here.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html.parser
import io
import json
import logging
import re
import sqlite3
import subprocess
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

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
    MessageEdited,
    MessageReaction,
    MessageReceived,
    MessageRevoked,
    MessageStatus,
    Party,
    PollVote,
    PresenceUpdate,
    SessionStatus,
)
from server.whatsapp.jids import GROUP_SERVER, LID_SERVER, USER_SERVER
from server.whatsapp.transport import (
    Emit,
    GroupInfo,
    Identity,
    NotConnected,
    Outbound,
    Registration,
    SendResult,
    TransportError,
)

log = logging.getLogger(__name__)

ACTIONS = {"reaction", "edit", "revoke"}  # aimed at another message
MEDIA_KINDS = {"image", "video", "audio", "voice", "document", "sticker"}
SENDABLE = {"text", "location", "contacts", "poll"} | MEDIA_KINDS | ACTIONS
PRESENCE_STATES = {"composing", "recording", "paused", "available", "unavailable"}
ENDED = {"logged_out", "banned", "failed", "stopped"}  # statuses after which we stop retrying
SQLITE_STORE = "whatsmeow.sqlite3"
IDS_FILE = "kabar-ids.sqlite3"
DEVICE_FILE = "device.json"  # our own JID, so a shared PostgreSQL store resumes the right device


def _now() -> datetime:
    return datetime.now(UTC)


def _when(value: int | float | None) -> datetime:
    """A datetime for a neonize timestamp. Message timestamps are Unix milliseconds,
    receipts and send responses Unix seconds (notes §3); anything past 1e11 is read as
    milliseconds (1e11 seconds is the year 5138)."""
    if not value:
        return _now()
    seconds = value / 1000 if value > 1e11 else value
    return datetime.fromtimestamp(seconds, UTC)


# --- settings -------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What a session's ``settings["neonize"]`` may change (all optional)."""

    store_url: str | None = None  # postgres://… ; default: a SQLite file per session
    backoff_initial: float = 1.0  # first retry of a failed connect, doubled each time…
    backoff_max: float = 60.0  # …up to this
    max_connect_attempts: int = 0  # give up ("failed") after this many; 0: never
    first_qr_seconds: float = 60.0  # how long WhatsApp shows the first QR code
    qr_seconds: float = 20.0  # and each later one
    qr_grace_seconds: float = 15.0  # no new code this long after the last expired: give up
    # pair_code(), logout() and stop() run on the runtime's control thread, which must beat
    # the runtime lease every 2 s and is reported down after 10 s: keep these well below.
    pair_code_wait: float = 6.0  # pair_code() waits this long for WhatsApp's first QR
    call_timeout: float = 6.0  # PairPhone / logout answer within this, or "timeout"
    stop_timeout: float = 5.0  # stop() returns after this, even if neonize does not
    check_recipients: bool = True  # ask WhatsApp whether a number exists before sending
    device_name: str = "Kabar"  # shown on the phone under Linked devices

    @classmethod
    def from_options(cls, options: dict) -> Settings:
        """Settings from the session's options; a value of the wrong type is logged and
        ignored (the session still starts, with the default)."""
        values: dict[str, Any] = {}
        for name, spec in cls.__dataclass_fields__.items():
            value = options.get(name)
            if value is None:
                continue
            kind = type(spec.default) if spec.default is not None else str
            try:
                if kind is bool:
                    values[name] = value if isinstance(value, bool) else \
                        str(value).strip().lower() in ("1", "true", "yes", "on")
                else:
                    values[name] = kind(value)
            except (TypeError, ValueError):
                log.warning("ignoring neonize option %s=%r", name, value)
        return cls(**values)

    def backoff(self, attempt: int) -> float:
        """1, 2, 4, … seconds (with the defaults), capped at ``backoff_max``."""
        return min(self.backoff_initial * 2 ** max(attempt - 1, 0), self.backoff_max)


# --- loading neonize ------------------------------------------------------------------


def _closed_popen(command: str, mode: str = "r", buffering: int = -1) -> io.StringIO:
    """os.popen for neonize's import: the same output, but the child is waited for and
    its pipe closed (neonize leaves both to the garbage collector, which warns later)."""
    result = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    return io.StringIO(result.stdout)


@functools.cache
def _nz() -> SimpleNamespace:
    """Import neonize once, on first use, and hand out the parts this module needs.

    neonize's import runs ``uname`` through ``os.popen`` without closing the pipe
    (a ResourceWarning, an error under pytest's ``-W error``) and calls
    ``logging.basicConfig`` on the root logger (notes §1); both are contained here so
    neither leaks into Kabar's warnings or logging setup.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    with warnings.catch_warnings(), mock.patch("os.popen", _closed_popen):
        warnings.simplefilter("ignore", ResourceWarning)
        import neonize.builder as builder
        import neonize.events as events
        import neonize.exc as exc
        from neonize.client import NewClient
        from neonize.proto import Neonize_pb2
        from neonize.proto.waCompanionReg.WAWebProtobufsCompanionReg_pb2 import DeviceProps
        from neonize.proto.waE2E import WAWebProtobufsE2E_pb2
        from neonize.utils import enum
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    return SimpleNamespace(N=Neonize_pb2, E=WAWebProtobufsE2E_pb2, NewClient=NewClient,
                           DeviceProps=DeviceProps, events=events, exc=exc, enum=enum,
                           builder=builder)


def new_neonize_client(name: str, *, uuid: str, jid: Any = None, new_device: bool = False,
                       device_name: str = "Kabar") -> Any:
    """A neonize ``NewClient`` for one session (the default ``client_factory``).

    ``NewClient`` makes no Go call; the device store is opened by ``connect()``. With a
    ``jid`` neonize forces the uuid to ``jid.User`` (notes §2): the uuid is set back to
    the session id, and the garbage-collection finaliser, which would call Go
    ``Stop(jid.User)``, is dropped (``stop()`` stops the client itself).
    """
    nz = _nz()
    props = nz.DeviceProps(os=device_name, platformType=nz.DeviceProps.SAFARI)
    client = nz.NewClient(name, jid=jid, props=props, uuid=uuid, new_device=new_device)
    if client.uuid != uuid.encode():
        _detach_finalizer(client)
        client.uuid = uuid.encode()
    client.decrypt_poll_vote = functools.partial(decrypt_poll_vote, client)
    return client


def decrypt_poll_vote(client: Any, message: Any) -> Any:
    """``NewClient.decrypt_poll_vote`` as it should be: neonize 0.5.2 leaves the Go
    export ``DecryptPollVote`` out of the ctypes hook that turns a returned ``Bytes``
    pointer into bytes (and frees it), then hands that pointer to protobuf, so every call
    raises TypeError (and leaks the answer). Same Go call here, its answer read and freed;
    also right once neonize hooks the export (then ctypes already answers bytes)."""
    nz = _nz()
    from neonize._binder import free_bytes, gocode

    data = message.SerializeToString()
    answer = gocode.DecryptPollVote(client.uuid, data, len(data))
    if isinstance(answer, bytes | bytearray):
        raw = bytes(answer)
    else:
        try:
            raw = answer.contents.get_bytes()
        finally:
            free_bytes(answer)
    model = nz.N.ReturnFunctionWithError.FromString(raw)
    if model.Error:
        raise nz.exc.DecryptPollVoteError(model.Error)
    return model.PollVoteMessage


def _detach_finalizer(client: Any) -> None:
    """neonize calls Go ``Stop(uuid)`` when a client is garbage-collected (notes §2). Once
    this transport has stopped its client that call is at best useless and at worst
    stops the *next* client of the same session, which has the same uuid."""
    finalizer = getattr(client, "_stop_finalizer", None)
    if finalizer is not None:
        finalizer.detach()


def sqlite_store_name(path: Path) -> str:
    """The device store name neonize hands to Go for a SQLite file.

    Go formats it as ``file:%s?_foreign_keys=on`` (mattn/go-sqlite3), so our own options
    need the exact suffix below: the trailing ``&_x=`` swallows Go's second ``?`` and
    ``_foreign_keys=on`` must be repeated (notes §2, the only order that works). The path
    is percent-encoded so a ``?`` or ``#`` in it cannot end the file name early.
    """
    quoted = urllib.parse.quote(str(path), safe="/")
    return f"{quoted}?_journal_mode=WAL&_busy_timeout=5000&_foreign_keys=on&_x="


# --- JIDs -----------------------------------------------------------------------------

_JID = re.compile(r"^(?P<user>[0-9A-Za-z.\-_]*)(?:[.:](?P<device>\d+))?@(?P<server>[a-z.]+)$")


def _jid(text: str) -> Any:
    """A neonize JID protobuf for ``user@server`` or a bare phone number (every required
    field set, or neonize's ``SerializeToString`` raises; notes §3)."""
    text = (text or "").strip()
    if text.lstrip("+").isdigit():
        user, server = text.lstrip("+"), USER_SERVER
    else:
        match = _JID.match(text)
        if not match or not match["user"]:
            raise TransportError(f"{text!r} is not a WhatsApp JID.", code="invalid_jid",
                                 permanent=True)
        user, server = match["user"], match["server"]
        server = USER_SERVER if server == "c.us" else server
    return _nz().N.JID(User=user, Server=server, Device=0, RawAgent=0, Integrator=0,
                       IsEmpty=False)


def _jid_str(jid: Any) -> str:
    """``user@server`` without agent or device; "" for an empty JID."""
    if jid is None or not jid.Server:
        return ""
    return f"{jid.User}@{jid.Server}" if jid.User else jid.Server


def _is_user(jid: Any) -> bool:
    return bool(jid is not None and jid.User and jid.Server == USER_SERVER)


def _is_lid(jid: Any) -> bool:
    return bool(jid is not None and jid.User and jid.Server == LID_SERVER)


# --- Kabar ids <-> WhatsApp ids -------------------------------------------------------


class _IdMap:
    """Kabar's message id for each message this session sent, and WhatsApp's; and the
    option names of each poll this session sent or saw (votes name options by hash).

    Needed because neonize 0.5.2 cannot send under a chosen id (module docstring). A
    SQLite file in the session folder, so it survives restarts; rows older than
    ``KEEP_DAYS`` are dropped when it opens. Any failure here degrades to "the same id on
    both sides" (logged) rather than failing a send, or to a vote not reported.
    """

    KEEP_DAYS = 180

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=5, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            # sent_at is WhatsApp's time; recorded_at this machine's, used for pruning.
            db.execute("CREATE TABLE IF NOT EXISTS sent (kabar_id TEXT PRIMARY KEY, "
                       "wa_id TEXT NOT NULL, chat TEXT NOT NULL, sent_at REAL NOT NULL, "
                       "recorded_at REAL NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS sent_wa_id ON sent (wa_id)")
            db.execute("CREATE TABLE IF NOT EXISTS polls (wa_id TEXT PRIMARY KEY, "
                       "options TEXT NOT NULL, recorded_at REAL NOT NULL)")
            for table in ("sent", "polls"):
                db.execute(f"DELETE FROM {table} WHERE recorded_at < ?",
                           (time.time() - self.KEEP_DAYS * 86400,))
            self._db = db
        return self._db

    def _query(self, sql: str, args: tuple) -> list[tuple]:
        with self._lock:
            try:
                return self._open().execute(sql, args).fetchall()
            except sqlite3.Error:
                log.exception("message id map %s failed", self.path)
                return []

    def record(self, kabar_id: str, wa_id: str, chat: str, sent_at: datetime) -> None:
        self._query("INSERT OR REPLACE INTO sent VALUES (?, ?, ?, ?, ?)",
                    (kabar_id, wa_id, chat, sent_at.timestamp(), time.time()))

    def sent(self, kabar_id: str) -> tuple[str, datetime] | None:
        rows = self._query("SELECT wa_id, sent_at FROM sent WHERE kabar_id = ?", (kabar_id,))
        return (rows[0][0], datetime.fromtimestamp(rows[0][1], UTC)) if rows else None

    def to_wa(self, message_id: str) -> str:
        """WhatsApp's id for an id Kabar knows (its own for messages it sent)."""
        rows = self._query("SELECT wa_id FROM sent WHERE kabar_id = ?", (message_id,))
        return rows[0][0] if rows else message_id

    def to_kabar(self, message_id: str) -> str:
        """The id Kabar knows a message by, for an id WhatsApp reports."""
        rows = self._query("SELECT kabar_id FROM sent WHERE wa_id = ?", (message_id,))
        return rows[0][0] if rows else message_id

    def remember_poll(self, wa_id: str, options: list[str]) -> None:
        self._query("INSERT OR REPLACE INTO polls VALUES (?, ?, ?)",
                    (wa_id, json.dumps(list(options)), time.time()))

    def poll_options(self, wa_id: str) -> list[str] | None:
        """The option names of poll ``wa_id`` (WhatsApp's id), if this session knows it."""
        rows = self._query("SELECT options FROM polls WHERE wa_id = ?", (wa_id,))
        return json.loads(rows[0][0]) if rows else None

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


# --- errors ---------------------------------------------------------------------------

# (pattern in whatsmeow's/neonize's error text, code, permanent); first match wins.
_ERRORS: tuple[tuple[re.Pattern, str, bool], ...] = tuple(
    (re.compile(pattern, re.I), code, permanent) for pattern, code, permanent in (
        (r"client is nil|not connected|websocket not connected", "session_not_connected",
         False),
        (r"doesn't contain a device JID|not logged in", "session_not_logged_in", False),
        (r"not on whatsapp|item-not-found|\b404\b|no devices", "not_on_whatsapp", True),
        (r"invalid jid|parse jid|unknown server|recipient must be a user", "invalid_jid",
         True),
        (r"not-authorized|forbidden|\b40[13]\b|not a (group )?(member|participant|admin)",
         "forbidden", True),
        (r"\b410\b|media (is )?(gone|expired)", "media_expired", True),
        (r"rate-overlimit|\b429\b", "rate_limited", False),
        (r"time(d)? ?out|deadline exceeded", "timeout", False),
        (r"dial|eof|connection (reset|refused)|broken pipe|network|websocket", "network_error",
         False),
    ))


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


# A device store that cannot be opened will not open on the next try either: "failed".
_STORE_ERRORS = re.compile(r"upgrade database|unable to open database|sqlstore|"
                           r"password authentication|no such table|pq: ", re.I)


# --- inbound: neonize events -> server.events -----------------------------------------

_WRAPPERS = ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2",
             "viewOnceMessageV2Extension", "documentWithCaptionMessage", "editedMessage")
_MEDIA_FIELDS = {"imageMessage": "image", "videoMessage": "video", "audioMessage": "audio",
                 "documentMessage": "document", "stickerMessage": "sticker"}
_POLL_FIELDS = ("pollCreationMessage", "pollCreationMessageV2", "pollCreationMessageV3")
# Content that is plumbing, not a message a person sent: never stored.
_SILENT_FIELDS = {"senderKeyDistributionMessage", "messageContextInfo", "protocolMessage",
                  "pollUpdateMessage", "encReactionMessage", "keepInChatMessage",
                  "fastRatchetKeySenderKeyDistributionMessage", "pinInChatMessage"}


def _unwrap(message: Any) -> Any:
    """whatsmeow already unwraps ephemeral/view-once/document-with-caption/edited
    messages before neonize encodes them; done again here in case one slips through."""
    for _ in range(4):
        for name in _WRAPPERS:
            if message.HasField(name) and getattr(message, name).HasField("message"):
                message = getattr(message, name).message
                break
        else:
            return message
    return message


def _text_of(message: Any) -> str:
    if message.conversation:
        return message.conversation
    if message.HasField("extendedTextMessage"):
        return message.extendedTextMessage.text
    for name in ("imageMessage", "videoMessage", "documentMessage"):
        if message.HasField(name):
            return getattr(message, name).caption
    return ""


def _context_of(message: Any) -> Any:
    """The ContextInfo (quote, mentions) of whichever content the message carries."""
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None and "contextInfo" in \
                descriptor.message_type.fields_by_name and value.HasField("contextInfo"):
            return value.contextInfo
    return None


def _vcard_name(vcard: str) -> str:
    match = re.search(r"^FN[^:]*:(.*)$", vcard, re.M)
    return match[1].strip() if match else ""


def _me_party(me: Identity) -> Party:
    return Party(jid=me.jid, phone=me.phone, lid=me.lid, name=me.push_name or None)


def _poll_of(content: Any) -> Any:
    """The poll creation message ``content`` carries, or None."""
    for name in _POLL_FIELDS:
        if content.HasField(name):
            return getattr(content, name)
    return None


class _Inbound:
    """Turns neonize events into Kabar events. Pure conversion: the only calls out are
    ``lookup_pn`` (the guarded LID->phone look-up), ``decrypt_vote`` (the guarded
    whatsmeow poll-vote decryption) and the id map."""

    def __init__(self, ids: _IdMap, lookup_pn: Callable[[Any], str | None],
                 decrypt_vote: Callable[[Any], Any | None]):
        self.ids = ids
        self.lookup_pn = lookup_pn
        self.decrypt_vote = decrypt_vote
        # learned from SenderAlt/RecipientAlt and from group participant lists
        self._pn_of_lid: dict[str, str] = {}

    # parties

    def party(self, jid: Any, alt: Any = None, name: str | None = None) -> Party:
        """A Party for a JID as WhatsApp gave it, with the phone and LID behind it: the
        phone of an @lid comes from the event's alternate JID first, then from neonize's
        LID store (only while connected; see ``NeonizeTransport._lookup_pn``)."""
        text = _jid_str(jid)
        if _is_lid(jid):
            phone = alt.User if _is_user(alt) else self._pn_of_lid.get(jid.User)
            if phone is None:
                phone = self.lookup_pn(jid)
            if phone:
                self._pn_of_lid[jid.User] = phone
            return Party(jid=text, phone=phone or None, lid=text, name=name or None)
        if _is_user(jid):
            lid = _jid_str(alt) if _is_lid(alt) else None
            if lid:
                self._pn_of_lid[alt.User] = jid.User
            return Party(jid=text, phone=jid.User, lid=lid, name=name or None)
        return Party(jid=text, name=name or None)

    def _source_parties(self, source: Any, push_name: str = "") -> tuple[Party, Party]:
        """(chat, sender) for a MessageSource: in a group the chat is the group and the
        sender the participant; in a one-to-one chat the chat is the other person."""
        sender = self.party(source.Sender, source.SenderAlt,
                            None if source.IsFromMe else push_name)
        if source.IsGroup or source.Chat.Server == GROUP_SERVER:
            return self.party(source.Chat), sender
        if source.IsFromMe:
            return self.party(source.Chat, source.RecipientAlt), sender
        if source.Chat.User == source.Sender.User and source.Chat.Server == source.Sender.Server:
            return sender, sender
        return self.party(source.Chat), sender

    # messages

    def message(self, ev: Any) -> Event | None:
        """MessageReceived, MessageReaction, MessageEdited or MessageRevoked; None for
        status updates, protocol plumbing and empty messages."""
        source = ev.Info.MessageSource
        if source.Chat.Server == "broadcast" or not ev.HasField("Message"):
            return None  # status@broadcast: stories, not chat messages
        content = _unwrap(ev.Message)
        timestamp = _when(ev.Info.Timestamp)
        if content.HasField("reactionMessage"):
            chat, sender = self._source_parties(source, ev.Info.Pushname)
            reaction = content.reactionMessage
            return MessageReaction(message_id=self.ids.to_kabar(reaction.key.ID), chat=chat,
                                   sender=sender, emoji=reaction.text,
                                   timestamp=_when(reaction.senderTimestampMS) if
                                   reaction.senderTimestampMS else timestamp)
        if content.HasField("protocolMessage"):
            return self._protocol(content.protocolMessage, source, ev.Info.Pushname, timestamp)
        if content.HasField("pollUpdateMessage"):
            return self.poll_vote(ev, content.pollUpdateMessage)
        fields = {d.name for d, _ in content.ListFields()}
        if not fields or fields <= _SILENT_FIELDS:
            return None
        chat, sender = self._source_parties(source, ev.Info.Pushname)
        context = _context_of(content)
        kind, extra = self._body(content)
        if kind == "poll":  # its option names, for the votes to come
            self.ids.remember_poll(ev.Info.ID, [o.optionName for o in _poll_of(content).options])
        return MessageReceived(message=InboundMessage(
            id=ev.Info.ID, chat=chat, sender=sender, timestamp=timestamp,
            from_me=source.IsFromMe, is_group=source.IsGroup, kind=kind,
            quoted_id=self.ids.to_kabar(context.stanzaID) if context and context.stanzaID
            else None,
            mentions=tuple(context.mentionedJID) if context else (), **extra))

    def _protocol(self, protocol: Any, source: Any, push_name: str,
                  timestamp: datetime) -> Event | None:
        E = _nz().E
        if protocol.type not in (E.ProtocolMessage.REVOKE, E.ProtocolMessage.MESSAGE_EDIT):
            return None  # key shares, history sync notices, ephemeral settings…
        chat, sender = self._source_parties(source, push_name)
        target = self.ids.to_kabar(protocol.key.ID)
        if protocol.type == E.ProtocolMessage.REVOKE:
            return MessageRevoked(message_id=target, chat=chat, sender=sender,
                                  timestamp=timestamp)
        return MessageEdited(message_id=target, chat=chat, sender=sender,
                             text=_text_of(_unwrap(protocol.editedMessage)),
                             timestamp=_when(protocol.timestampMS) if protocol.timestampMS
                             else timestamp)

    def _body(self, content: Any) -> tuple[str, dict]:
        """(kind, InboundMessage fields) for the content of a message."""
        for name, kind in _MEDIA_FIELDS.items():
            if content.HasField(name):
                return self._media(name, kind, getattr(content, name))
        if content.HasField("locationMessage") or content.HasField("liveLocationMessage"):
            loc = content.locationMessage if content.HasField("locationMessage") \
                else content.liveLocationMessage
            return "location", {
                "location": Location(latitude=loc.degreesLatitude,
                                     longitude=loc.degreesLongitude,
                                     name=getattr(loc, "name", "") or None,
                                     address=getattr(loc, "address", "") or None),
                "text": getattr(loc, "comment", "") or getattr(loc, "caption", "")}
        if content.HasField("contactMessage"):
            return "contacts", {"text": content.contactMessage.vcard}
        if content.HasField("contactsArrayMessage"):
            # InboundMessage has no vcards field: the vCards travel in the text, each
            # one BEGIN:VCARD … END:VCARD, so they split again unambiguously.
            return "contacts", {"text": "\n".join(
                c.vcard for c in content.contactsArrayMessage.contacts)}
        poll = _poll_of(content)
        if poll is not None:
            lines = [poll.name] + [f"- {o.optionName}" for o in poll.options]
            return "poll", {"text": "\n".join(lines)}
        text = _text_of(content)
        return ("text" if text else "unknown"), {"text": text}

    def _media(self, field: str, kind: str, media: Any) -> tuple[str, dict]:
        """MediaInfo whose handle is the media message itself (serialized, base64): all
        ``download_any`` needs later. The thumbnail and quote are dropped to keep the
        handle small; it is stored in the database with the message."""
        E = _nz().E
        if kind == "audio" and media.PTT:
            kind = "voice"
        stripped = type(media)()
        stripped.CopyFrom(media)
        for name in ("contextInfo", "JPEGThumbnail"):
            if name in stripped.DESCRIPTOR.fields_by_name:
                stripped.ClearField(name)
        wrapper = E.Message(**{field: stripped})
        handle = {"neonize": base64.b64encode(wrapper.SerializeToString()).decode(),
                  "kind": kind}
        info = MediaInfo(mimetype=media.mimetype or "application/octet-stream",
                         filename=getattr(media, "fileName", "") or None,
                         size=media.fileLength or None,
                         sha256=media.fileSHA256.hex() if media.fileSHA256 else None,
                         handle=handle)
        return kind, {"media": info, "text": getattr(media, "caption", "")}

    def poll_vote(self, ev: Any, update: Any) -> PollVote | None:
        """A vote (its options by name) in a poll whose options this session knows; None
        for one it never saw or whatsmeow cannot decrypt (logged)."""
        poll_id = update.pollCreationMessageKey.ID
        options = self.ids.poll_options(poll_id)
        if options is None:
            log.info("vote %s in poll %s not reported: this session never saw that poll",
                     ev.Info.ID, poll_id)
            return None
        vote = self.decrypt_vote(ev)
        if vote is None:
            return None
        by_hash = {hashlib.sha256(o.encode()).digest(): o for o in options}
        picked = {by_hash.get(bytes(h)) for h in vote.selectedOptions}
        if None in picked:
            log.warning("vote %s in poll %s names an option the poll does not have",
                        ev.Info.ID, poll_id)
        chat, voter = self._source_parties(ev.Info.MessageSource, ev.Info.Pushname)
        return PollVote(poll_id=self.ids.to_kabar(poll_id), chat=chat, voter=voter,
                        options=tuple(o for o in options if o in picked),
                        timestamp=_when(update.senderTimestampMS or ev.Info.Timestamp))

    # groups

    def joined_group(self, ev: Any, me: Identity | None) -> GroupJoined:
        """This account is in a new group: it created it (CreateKey set), joined by link
        or was added (``Sender``, when neonize passes it on)."""
        info = ev.GroupInfo
        self._learn(info.Participants)
        if ev.HasField("Sender") and ev.Sender.User:
            by: Party | None = self.party(ev.Sender, ev.SenderPN if ev.HasField("SenderPN")
                                          else None)
        elif ev.CreateKey and me is not None:
            by = _me_party(me)
        else:
            by = None
        name = info.GroupName.Name
        return GroupJoined(group=Party(jid=_jid_str(info.JID), name=name or None), name=name,
                           timestamp=_now(), by=by)

    def group_info(self, ev: Any, me: Identity | None) -> list[Event]:
        """What one group notification says, as events: group.updated for name, topic,
        announce and locked; group.participants per list (this account's own joining is
        JoinedGroupEv's); group.left when this account is in Leave or the group is gone."""
        mine = ({me.jid, me.lid} - {None}) if me is not None else set()

        def who(jid: Any) -> Party:  # this account by its identity, anyone else resolved
            return _me_party(me) if me is not None and _jid_str(jid) in mine \
                else self.party(jid)

        group = Party(jid=_jid_str(ev.JID), name=ev.Name.Name if ev.HasField("Name") else None)
        by = who(ev.Sender) if ev.HasField("Sender") and ev.Sender.User else None
        at = _when(ev.Timestamp)
        changes: dict[str, Any] = {}
        if ev.HasField("Name"):
            changes["name"] = ev.Name.Name
        if ev.HasField("Topic"):
            changes["topic"] = "" if ev.Topic.TopicDeleted else ev.Topic.Topic
        if ev.HasField("Announce"):
            changes["announce"] = ev.Announce.IsAnnounce
        if ev.HasField("Locked"):
            changes["locked"] = ev.Locked.isLocked
        events: list[Event] = []
        if changes:
            events.append(GroupUpdated(group=group, timestamp=at, by=by, **changes))
        lists = (("Join", "join" if ev.JoinReason == "invite" else "add"), ("Leave", "remove"),
                 ("Promote", "promote"), ("Demote", "demote"))
        for field, action in lists:
            people = [who(j) for j in getattr(ev, field)
                      if not (field in ("Join", "Leave") and _jid_str(j) in mine)]
            if people:
                events.append(GroupParticipants(group=group, action=action, timestamp=at,
                                                by=by, participants=tuple(people)))
        if any(_jid_str(j) in mine for j in ev.Leave):
            gone_by_itself = by is None or by.jid in mine
            events.append(GroupLeft(group=group, timestamp=at, by=by,
                                    reason="left" if gone_by_itself else "removed"))
        elif ev.HasField("Delete") and ev.Delete.Deleted:
            events.append(GroupLeft(group=group, timestamp=at, by=by, reason="deleted"))
        return events

    def _learn(self, participants: Any) -> None:
        """LID -> phone pairs from a group's participant list, for later events that
        name those people by LID only."""
        for p in participants:
            lid = p.LID if _is_lid(p.LID) else p.JID if _is_lid(p.JID) else None
            pn = p.PhoneNumber if _is_user(p.PhoneNumber) else p.JID if _is_user(p.JID) \
                else None
            if lid is not None and pn is not None:
                self._pn_of_lid[lid.User] = pn.User

    # receipts, presence, calls

    def receipt(self, ev: Any) -> MessageStatus | None:
        """delivered / read / played for messages this session sent; receipts about our
        own other devices (READ_SELF, SENDER…) and retries are not statuses."""
        R = _nz().N.Receipt
        status = {R.DELIVERED: "delivered", R.READ: "read", R.PLAYED: "played",
                  R.SERVER_ERROR: "failed"}.get(ev.Type)
        if status is None or not ev.MessageIDs:
            return None
        source = ev.MessageSource
        if source.IsGroup or source.Chat.Server == GROUP_SERVER:
            chat = self.party(source.Chat)
        else:
            chat = self.party(source.Chat, source.SenderAlt if
                              source.Chat.User == source.Sender.User else None)
        return MessageStatus(message_ids=tuple(self.ids.to_kabar(i) for i in ev.MessageIDs),
                             status=status, chat=chat, timestamp=_when(ev.Timestamp),
                             reason="WhatsApp reported a server error" if status == "failed"
                             else "")

    def chat_presence(self, ev: Any) -> PresenceUpdate:
        N = _nz().N
        chat, sender = self._source_parties(ev.MessageSource)
        if ev.State == N.ChatPresence.PAUSED:
            state = "paused"
        else:
            state = "recording" if ev.Media == N.ChatPresence.AUDIO else "composing"
        return PresenceUpdate(chat=chat, sender=sender, state=state)

    def presence(self, ev: Any) -> PresenceUpdate:
        who = self.party(ev.From)
        return PresenceUpdate(chat=who, sender=who,
                              state="unavailable" if ev.Unavailable else "available")

    def call(self, ev: Any) -> CallReceived:
        meta = ev.basicCallMeta
        caller = meta.callCreator if meta.callCreator.User else getattr(meta, "from")
        video = any(node.Tag == "video" for node in ev.data.Nodes)
        return CallReceived(call_id=meta.callID, caller=self.party(caller, meta.callCreatorAlt),
                            timestamp=_when(meta.timestamp), video=video)


# --- outbound: Outbound -> waE2E.Message ----------------------------------------------

_MEDIA_TYPES = {"image": "MediaImage", "sticker": "MediaImage", "video": "MediaVideo",
                "audio": "MediaAudio", "voice": "MediaAudio", "document": "MediaDocument"}


def _context(message: Outbound, ids: _IdMap, me: str | None) -> Any:
    """ContextInfo for mentions and a quoted reply (None if neither). WhatsApp renders a
    quote from ``stanzaID`` + ``participant`` + ``quotedMessage``; the participant is the
    quoted message's author: as given, else us for a message we sent, else the other
    person in a one-to-one chat."""
    E = _nz().E
    if not message.mentions and not message.quoted_id:
        return None
    context = E.ContextInfo(mentionedJID=list(message.mentions))
    if message.quoted_id:
        wa_id = ids.to_wa(message.quoted_id)
        participant = message.quoted_sender
        if not participant and wa_id != message.quoted_id:
            participant = me
        if not participant and not message.to.endswith("@" + GROUP_SERVER):
            participant = message.to
        context.stanzaID = wa_id
        if participant:
            context.participant = _jid_str(_jid(participant))
        context.quotedMessage.CopyFrom(E.Message(conversation=message.quoted_text or ""))
    return context


def _image_size(data: bytes) -> tuple[int, int, bytes] | None:
    """(width, height, small JPEG thumbnail) for image bytes, or None if PIL can't read
    them. The thumbnail is what WhatsApp shows before the download."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.thumbnail((100, 100))
            out = io.BytesIO()
            image.convert("RGB").save(out, format="JPEG", quality=60)
        return width, height, out.getvalue()
    except Exception:
        return None


def _media_message(kind: str, upload: Any, message: Outbound) -> Any:
    """The waE2E message for uploaded media. Built here rather than with neonize's
    ``build_*_message`` helpers: those need ffmpeg/ffprobe for audio and video, sniff
    the type with libmagic and read ``str`` arguments as paths or URLs (notes §5)."""
    E = _nz().E
    media = message.media
    common = {"URL": upload.url, "directPath": upload.DirectPath,
              "mediaKey": upload.MediaKey, "fileEncSHA256": upload.FileEncSHA256,
              "fileSHA256": upload.FileSHA256, "fileLength": upload.FileLength or len(media.data),
              "mimetype": media.mimetype, "mediaKeyTimestamp": int(time.time())}
    if kind in ("image", "sticker"):
        size = _image_size(media.data)
        if size:
            common.update(width=size[0], height=size[1])
        if kind == "sticker":
            common["mimetype"] = "image/webp"
            return E.Message(stickerMessage=E.StickerMessage(**common))
        if size:
            common["JPEGThumbnail"] = size[2]
        return E.Message(imageMessage=E.ImageMessage(caption=message.text or None, **common))
    if kind == "video":
        return E.Message(videoMessage=E.VideoMessage(caption=message.text or None, **common))
    if kind in ("audio", "voice"):
        if kind == "voice" and "opus" not in common["mimetype"]:
            common["mimetype"] = "audio/ogg; codecs=opus"
        return E.Message(audioMessage=E.AudioMessage(PTT=kind == "voice", **common))
    filename = media.filename or "file"
    return E.Message(documentMessage=E.DocumentMessage(
        fileName=filename, title=filename, caption=message.text or None, **common))


def _contacts_message(vcards: tuple[str, ...]) -> Any:
    """One vCard: a contactMessage; several: a contactsArrayMessage."""
    E = _nz().E
    if not vcards:
        raise TransportError("A contacts message needs at least one vCard.",
                             code="invalid_message", permanent=True)
    cards = [E.ContactMessage(displayName=_vcard_name(v) or "Contact", vcard=v) for v in vcards]
    if len(cards) == 1:
        return E.Message(contactMessage=cards[0])
    return E.Message(contactsArrayMessage=E.ContactsArrayMessage(
        displayName=f"{len(cards)} contacts", contacts=cards))


def _attach_context(body: Any, context: Any) -> None:
    """Put the ContextInfo on whichever content ``body`` carries."""
    if context is None:
        return
    for descriptor, value in body.ListFields():
        if descriptor.message_type is not None and \
                "contextInfo" in descriptor.message_type.fields_by_name:
            value.contextInfo.MergeFrom(context)
            return


# --- link previews --------------------------------------------------------------------

_URL = re.compile(r"https?://[^\s<>\"']+")


class _MetaParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "meta":
            key = (values.get("property") or values.get("name") or "").lower()
            if key and key not in self.meta:
                self.meta[key] = values.get("content", "").strip()
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and not self.title:
            self.title = data.strip()


def _fetch_allow() -> list[str]:
    try:
        from flask import current_app

        return list(current_app.config["KABAR"]["FETCH_ALLOW"])
    except Exception:  # no app context: no exceptions to the SSRF guard
        return []


def link_preview(text: str) -> dict:
    """ExtendedTextMessage fields previewing the first URL in ``text`` (title,
    description, thumbnail), fetched through Kabar's SSRF guard (``server.netguard``),
    never through neonize's own preview code, which fetches any URL it is given. Best
    effort: without a page it is just the matched URL, and the text is sent anyway."""
    match = _URL.search(text or "")
    if not match:
        return {}
    url = match[0].rstrip(".,;:!?)]}'\"")
    fields: dict[str, Any] = {"matchedText": url}
    try:
        from server import netguard

        page = netguard.fetch(url, max_bytes=512 * 1024, timeout=5, allow=_fetch_allow())
        if page.content_type not in (None, "text/html", "application/xhtml+xml"):
            return fields
        parser = _MetaParser()
        parser.feed(page.data.decode("utf-8", "replace"))
        meta = parser.meta
        fields["title"] = (meta.get("og:title") or parser.title)[:300]
        fields["description"] = (meta.get("og:description") or meta.get("description", ""))[:300]
        image = meta.get("og:image")
        if image:
            picture = netguard.fetch(urllib.parse.urljoin(page.final_url, image),
                                     max_bytes=2 * 1024 * 1024, timeout=5, allow=_fetch_allow())
            size = _image_size(picture.data)
            if size:
                fields["JPEGThumbnail"] = size[2]
    except Exception as exc:
        log.info("no link preview for %s: %s", url, exc)
    return {k: v for k, v in fields.items() if v}


# --- the transport --------------------------------------------------------------------


class NeonizeTransport:
    """A live WhatsApp device over neonize (see the module docstring for the hazards).

    ``client_factory`` is a seam for tests only (the runtime never passes it): a callable
    taking the same arguments as ``new_neonize_client`` and returning an object with the
    neonize ``NewClient`` methods this class calls.
    """

    name = "neonize"

    def __init__(self, *, session_id: str, store_dir: Path, emit: Emit, options: dict,
                 client_factory: Callable[..., Any] | None = None):
        self.session_id = session_id
        self.store_dir = Path(store_dir)
        self.emit = emit
        self.settings = Settings.from_options(options or {})
        self._client_factory = client_factory or new_neonize_client
        self._ids = _IdMap(self.store_dir / IDS_FILE)
        self._inbound = _Inbound(self._ids, self._lookup_pn, self._decrypt_vote)
        self._lock = threading.RLock()  # this object's state
        # Held around every Go call that aborts the process without a live client
        # (get_me, LID look-ups) and by stop() before it tears the client down.
        self._go_lock = threading.Lock()
        self._client: Any = None
        self._runner: threading.Thread | None = None
        self._stopping = threading.Event()
        self._first_qr = threading.Event()
        self._connected = False  # a Connected event seen, no Disconnected/LoggedOut since
        self._had_connection = False  # during the current connect() call
        self._identity: Identity | None = None
        self._qr_count = 0
        self._qr_timer: threading.Timer | None = None
        self._pairing_phone: str | None = None
        self._sent_available = False
        self._registered: dict[str, tuple[bool, float]] = {}
        self._last_status = ""

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Create the client and run ``connect()`` on a thread of its own; return at once.
        Progress arrives as SessionStatus events."""
        with self._lock:
            if self._runner is not None and self._runner.is_alive():
                return
            self._stopping.clear()
            self._client = self._new_client()
            self._register_handlers(self._client)
            self._runner = threading.Thread(target=self._run, daemon=True,
                                            name=f"kabar-neonize-{self.session_id}")
        self._status("connecting", "starting")
        self._runner.start()

    def stop(self) -> None:
        """Stop quietly (the runtime reports the stop it asked for), within
        ``stop_timeout`` even if neonize does not let go.

        Go ``Stop`` can block while whatsmeow dials (notes §6), so it runs on a helper
        thread. It is repeated until ``connect()`` returns: a ``Stop`` that lands before
        neonize has registered the Go client is a no-op.
        """
        with self._go_lock:  # no get_me/LID look-up is running, none will start
            self._stopping.set()
            with self._lock:
                self._connected = False
                client, runner = self._client, self._runner
        self._cancel_qr_timer()
        self._first_qr.set()  # a pair_code() waiting for a QR gives up now
        if client is not None:
            deadline = time.monotonic() + self.settings.stop_timeout
            stopper: threading.Thread | None = None
            while True:
                if stopper is None or not stopper.is_alive():  # never two Stops at once
                    stopper = _bounded(client.stop, deadline - time.monotonic(),
                                       f"kabar-neonize-stop-{self.session_id}")
                    _detach_finalizer(client)
                if runner is None:
                    break
                runner.join(min(0.25, max(deadline - time.monotonic(), 0)))
                if not runner.is_alive() or time.monotonic() >= deadline:
                    break
            if runner is not None and runner.is_alive():
                log.warning("session %s: neonize did not stop within %ss; leaving its "
                            "thread behind", self.session_id, self.settings.stop_timeout)
        self._ids.close()

    def logout(self) -> None:
        """Unlink this device. whatsmeow's Logout is a round trip to WhatsApp; it may
        finish after ``call_timeout`` (then logged_out is reported when it does)."""
        client = self._require_connected()

        def unlink() -> None:
            client.logout()
            with self._lock:
                self._connected = False
                self._identity = None
            (self.store_dir / DEVICE_FILE).unlink(missing_ok=True)
            self._status("logged_out", "logged out by request")

        self._within(unlink, "logout")

    def _within(self, call: Callable[[], Any], action: str) -> Any:
        """``call()`` on a helper thread, answered within ``call_timeout`` (control-thread
        calls must not hold the runtime up); errors mapped to TransportError."""
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["value"] = call()
            except Exception as exc:
                box["error"] = exc
                if "late" in box:
                    log.warning("session %s: %s failed after its timeout: %s",
                                self.session_id, action, exc)

        thread = threading.Thread(target=run, daemon=True,
                                  name=f"kabar-neonize-{action}-{self.session_id}")
        thread.start()
        thread.join(self.settings.call_timeout)
        if thread.is_alive():
            box["late"] = True
            raise TransportError(f"{action}: WhatsApp did not answer within "
                                 f"{self.settings.call_timeout:g} s; try again.",
                                 code="timeout")
        if "error" in box:
            raise _transport_error(box["error"], action) from box["error"]
        return box.get("value")

    def pair_code(self, phone: str) -> str:
        """Link by phone number: whatsmeow's PairPhone needs its login socket up, which
        the first QR code proves (notes §5), so wait for that first (bounded)."""
        with self._lock:
            client, running = self._client, self._runner is not None and \
                self._runner.is_alive()
            if self._connected:
                raise TransportError("The session is already paired.", code="already_paired",
                                     permanent=True)
        if client is None or not running or self._stopping.is_set():
            raise TransportError("The session is not running; start it first.",
                                 code="session_not_running")
        wait = self.settings.pair_code_wait
        got_qr = self._first_qr.wait(wait)
        if self._stopping.is_set():
            raise TransportError("The session stopped before WhatsApp offered a login.",
                                 code="session_not_running")
        if not got_qr:
            raise TransportError(
                f"WhatsApp offered no login within {wait:g} s (no QR code yet), so there is "
                "no pairing code to ask for; check that the server reaches WhatsApp and try "
                "again.", code="pairing_not_ready")
        digits = re.sub(r"\D", "", phone)
        code = self._within(lambda: client.PairPhone(digits, show_push_notification=True),
                            "pair_code")
        with self._lock:
            self._pairing_phone = digits
        self._status("pairing_code", f"enter the code on {digits}: WhatsApp > Linked "
                     "devices > Link with phone number", pair_code=code)
        return code

    def me(self) -> Identity | None:
        return self._identity if self._connected else None

    def is_connected(self) -> bool:
        """Our own state, confirmed by whatsmeow. Only the runtime's control thread calls
        this (its watchdog). whatsmeow's IsConnected blocks while a dial holds its socket
        lock (notes §6): an answer that does not come within a second means "no"."""
        client = self._client
        if not self._connected or client is None:
            return False
        answer: list[bool] = []
        _bounded(lambda: answer.append(bool(client.is_connected)), 1.0,
                 f"kabar-neonize-is-connected-{self.session_id}")
        return bool(answer and answer[0])

    # --- the connect loop -------------------------------------------------------------

    def _new_client(self) -> Any:
        store = self.settings.store_url
        if store and not store.startswith("postgres"):
            raise TransportError("store_url must be a postgres:// or postgresql:// URL.",
                                 code="invalid_store_url", permanent=True)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if not store:
            # One SQLite file per session: its first (only) device is this session's.
            return self._client_factory(sqlite_store_name(self.store_dir / SQLITE_STORE),
                                        uuid=self.session_id,
                                        device_name=self.settings.device_name)
        # A shared PostgreSQL store holds every session's device: resume ours by JID, or
        # pair a new one, never "the first device" (which may be another session's).
        own = self._saved_jid()
        return self._client_factory(store, uuid=self.session_id,
                                    jid=_jid(own) if own else None, new_device=not own,
                                    device_name=self.settings.device_name)

    def _run(self) -> None:
        """connect(), again and again with backoff, until stop(). neonize does not retry
        a first connect that fails (no network, DNS…): it raises at once (notes §6)."""
        attempt = 0
        while not self._stopping.is_set():
            with self._lock:
                self._had_connection = False
                self._qr_count = 0
                self._first_qr.clear()
                self._pairing_phone = None
            error: BaseException | None = None
            try:
                self._client.connect()
            except Exception as exc:
                error = exc
            if self._stopping.is_set():
                return
            with self._lock:
                self._connected = False
                had_connection = self._had_connection
                attempt = 1 if had_connection else attempt + 1
            self._cancel_qr_timer()
            if self._last_status in ENDED:
                return  # banned, logged out, failed, QR expired: the runtime stops us
            reason = _error_text(error) if error else "the connection to WhatsApp ended"
            limit = self.settings.max_connect_attempts
            if _STORE_ERRORS.search(reason):
                self._status("failed", f"store_error: the device store cannot be used: "
                             f"{reason}")
                return
            if limit and attempt >= limit:
                self._status("failed", f"could not connect to WhatsApp after {attempt} "
                             f"attempts: {reason}")
                return
            delay = self.settings.backoff(attempt)
            what = "lost the connection to WhatsApp" if had_connection else \
                f"could not connect to WhatsApp (attempt {attempt})"
            self._status("reconnecting", f"{what}: {reason}; next try in {delay:g} s")
            if self._stopping.wait(delay):
                return

    # --- event handlers (neonize's connect thread; convert and emit only) -------------

    def _register_handlers(self, client: Any) -> None:
        """Every handler before connect(): neonize copies the subscription list when
        connect() starts (notes §3). StreamReplaced, KeepAliveRestored and ClientOutdated
        are deliberately absent (hazard). Bound methods are kept as weak references by
        neonize, which is fine: the runtime holds this transport while it runs."""
        ev = _nz().events
        for event_class, handler in (
                (ev.ConnectedEv, self._on_connected), (ev.DisconnectedEv, self._on_disconnected),
                (ev.LoggedOutEv, self._on_logged_out), (ev.TemporaryBanEv, self._on_temp_ban),
                (ev.ConnectFailureEv, self._on_connect_failure),
                (ev.PairStatusEv, self._on_pair_status), (ev.MessageEv, self._on_message),
                (ev.ReceiptEv, self._on_receipt), (ev.ChatPresenceEv, self._on_chat_presence),
                (ev.PresenceEv, self._on_presence), (ev.CallOfferEv, self._on_call),
                (ev.JoinedGroupEv, self._on_joined_group),
                (ev.GroupInfoEv, self._on_group_info)):
            client.event(event_class)(handler)
        client.event.qr(self._on_qr)

    def _on_qr(self, client: Any, data: bytes) -> None:
        """One call per QR rotation, with the code as bytes (notes §3)."""
        with _logged("qr"):
            with self._lock:
                if self._stopping.is_set() or self._connected:
                    return
                self._qr_count += 1
                seconds = self.settings.first_qr_seconds if self._qr_count == 1 \
                    else self.settings.qr_seconds
                count, pairing = self._qr_count, self._pairing_phone
                self._arm_qr_timer(seconds + self.settings.qr_grace_seconds)
            self._first_qr.set()
            if pairing:  # a pair code is on screen; a new QR must not replace it
                return
            code = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            self._status("qr", f"scan with WhatsApp > Linked devices (code {count})", qr=code,
                         qr_expires_at=_now() + timedelta(seconds=seconds))

    def _on_connected(self, client: Any, ev: Any) -> None:
        with _logged("connected"):
            with self._lock:
                self._connected = self._had_connection = True
                self._sent_available = False
                self._pairing_phone = None
            self._cancel_qr_timer()
            identity = self._read_identity(client)
            with self._lock:
                self._identity = identity or self._identity
            if identity:
                self._save_jid(identity.jid)
            who = self._identity
            self._status("connected", "connected to WhatsApp", jid=who and who.jid,
                         phone=who and who.phone, push_name=who and who.push_name)

    def _on_disconnected(self, client: Any, ev: Any) -> None:
        with _logged("disconnected"):
            if self._stopping.is_set():
                return
            with self._lock:
                self._connected = False
            self._status("disconnected", "lost the connection to WhatsApp; reconnecting "
                         "automatically")

    def _on_logged_out(self, client: Any, ev: Any) -> None:
        with _logged("logged_out"):
            with self._lock:
                self._connected = False
                self._identity = None
            (self.store_dir / DEVICE_FILE).unlink(missing_ok=True)
            if self._last_status == "logged_out":
                return  # logout() already said so
            why = _enum_name(_nz().N.ConnectFailureReason, ev.Reason, "LOGGED_OUT")
            where = "while Kabar was offline" if ev.OnConnect else "from the phone"
            self._status("logged_out", f"this device was logged out {where} ({why}); pair it "
                         "again")

    def _on_temp_ban(self, client: Any, ev: Any) -> None:
        with _logged("temporary_ban"):
            with self._lock:
                self._connected = False
            code = _enum_name(_nz().N.TemporaryBan.TempBanReason, ev.Code)
            until = (_now() + timedelta(seconds=ev.Expire)).isoformat(timespec="seconds")
            self._status("banned", f"temporarily banned by WhatsApp: {code} (code {ev.Code}); "
                         f"expires in {ev.Expire} s, at {until}")

    def _on_connect_failure(self, client: Any, ev: Any) -> None:
        """500 and 503 are retried by whatsmeow itself; the rest end the session."""
        with _logged("connect_failure"):
            N = _nz().N
            name = _enum_name(N.ConnectFailureReason, ev.Reason)
            reason = f"WhatsApp refused the connection: {name}" + \
                (f" ({ev.Message})" if ev.Message else "")
            with self._lock:
                self._connected = False
            if ev.Reason in (N.INTERNAL_SERVER_ERROR, N.SERVICE_UNAVAILABLE):
                self._status("reconnecting", reason + "; retrying")
            else:
                self._status("failed", reason)

    def _on_pair_status(self, client: Any, ev: Any) -> None:
        with _logged("pair_status"):
            if ev.Status == _nz().N.PairStatus.SUCCESS:
                self._status("connecting", f"paired as {_jid_str(ev.ID)} ({ev.Platform}); "
                             "logging in")
            else:
                self._status("failed", f"pairing failed: {ev.Error or 'unknown error'}")

    def _on_message(self, client: Any, ev: Any) -> None:
        with _logged("message"):
            event = self._inbound.message(ev)
            if event is not None:
                self.emit(event)  # MessageReceived waits until it is stored (intended)

    def _on_receipt(self, client: Any, ev: Any) -> None:
        with _logged("receipt"):
            event = self._inbound.receipt(ev)
            if event is not None:
                self.emit(event)

    def _on_chat_presence(self, client: Any, ev: Any) -> None:
        with _logged("chat_presence"):
            self.emit(self._inbound.chat_presence(ev))

    def _on_presence(self, client: Any, ev: Any) -> None:
        with _logged("presence"):
            self.emit(self._inbound.presence(ev))

    def _on_call(self, client: Any, ev: Any) -> None:
        with _logged("call"):
            self.emit(self._inbound.call(ev))

    def _on_joined_group(self, client: Any, ev: Any) -> None:
        with _logged("joined_group"):
            self.emit(self._inbound.joined_group(ev, self._identity))

    def _on_group_info(self, client: Any, ev: Any) -> None:
        with _logged("group_info"):
            for event in self._inbound.group_info(ev, self._identity):
                self.emit(event)

    # --- state helpers ----------------------------------------------------------------

    def _status(self, status: str, reason: str = "", **fields: Any) -> None:
        self._last_status = status
        self.emit(SessionStatus(status=status, reason=reason, **fields))

    def _require_connected(self) -> Any:
        """The client, if connected; NotConnected otherwise, without touching it."""
        with self._lock:
            client = self._client
            if not self._connected or client is None or self._stopping.is_set():
                raise NotConnected()
            return client

    def _read_identity(self, client: Any) -> Identity | None:
        """Who we are: from the Device neonize received before its event loop started
        (``client.me``, no Go call), else ``get_me()`` — safe here, on a connected client,
        under ``_go_lock`` (notes §6)."""
        device = getattr(client, "me", None)
        if device is None or not device.JID.User:
            with self._go_lock:
                if not self._connected or self._stopping.is_set():
                    return None
                try:
                    device = client.get_me()
                except Exception:
                    log.exception("session %s: get_me failed", self.session_id)
                    return None
        if device is None or not device.JID.User:
            return None
        lid = _jid_str(device.LID) if device.HasField("LID") and device.LID.User else None
        return Identity(jid=f"{device.JID.User}@{USER_SERVER}", phone=device.JID.User,
                        push_name=device.PushName, lid=lid)

    def _lookup_pn(self, lid: Any) -> str | None:
        """The phone number behind an @lid from whatsmeow's LID store. Aborts the process
        without a logged-in Go client (notes §6), hence the state check under
        ``_go_lock``, which stop() takes before it stops the client."""
        with self._go_lock:
            if not self._connected or self._stopping.is_set() or self._client is None:
                return None
            try:
                pn = self._client.get_pn_from_lid(lid)
            except Exception as exc:
                log.debug("no phone for %s: %s", _jid_str(lid), exc)
                return None
        return pn.User if pn is not None and pn.User else None

    def _decrypt_vote(self, ev: Any) -> Any | None:
        """whatsmeow's decryption of a poll vote (a PollVoteMessage of option hashes).
        Only while connected, under ``_go_lock``, as the LID look-ups: without a Go
        client Go answers "client is nil" (tested; no abort), and stop() must not tear
        the client down mid-call."""
        with self._go_lock:
            if not self._connected or self._stopping.is_set() or self._client is None:
                return None
            try:
                return self._client.decrypt_poll_vote(ev)
            except Exception as exc:
                log.warning("session %s: could not decrypt vote %s: %s", self.session_id,
                            ev.Info.ID, _error_text(exc))
                return None

    def _saved_jid(self) -> str | None:
        try:
            return json.loads((self.store_dir / DEVICE_FILE).read_text())["jid"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save_jid(self, jid: str) -> None:
        try:
            (self.store_dir / DEVICE_FILE).write_text(json.dumps({"jid": jid}))
        except OSError:
            log.exception("session %s: could not save the device JID", self.session_id)

    def _arm_qr_timer(self, seconds: float) -> None:
        """Nobody scanned: whatsmeow's QR channel ends after its last code and neonize
        then waits for a login forever (notes §6), so Kabar gives up itself."""
        self._cancel_qr_timer()
        timer = threading.Timer(seconds, self._qr_expired, args=(self._qr_count,))
        timer.daemon = True
        timer.name = f"kabar-neonize-qr-{self.session_id}"
        self._qr_timer = timer
        timer.start()

    def _cancel_qr_timer(self) -> None:
        with self._lock:
            timer, self._qr_timer = self._qr_timer, None
        if timer is not None:
            timer.cancel()

    def _qr_expired(self, count: int) -> None:
        with self._lock:
            if self._connected or self._stopping.is_set() or count != self._qr_count:
                return
            what = "pairing code" if self._pairing_phone else "QR code"
        self._status("stopped", f"qr_expired: nobody used the {what}; start the session to "
                     "get a new one")

    # --- look-ups (the runtime's pool threads) ----------------------------------------

    def is_on_whatsapp(self, phones: list[str]) -> list[Registration]:
        client = self._require_connected()
        digits = [re.sub(r"\D", "", p) for p in phones]
        try:
            answers = client.is_on_whatsapp(*[f"+{d}" for d in digits]) if digits else []
        except Exception as exc:
            raise _transport_error(exc, "is_on_whatsapp") from exc
        found = {re.sub(r"\D", "", a.Query): a for a in answers}
        result = []
        for phone, d in zip(phones, digits, strict=True):
            answer = found.get(d)
            registered = bool(answer and answer.IsIn)
            self._registered[d] = (registered, time.monotonic())
            result.append(Registration(query=phone, registered=registered,
                                       jid=_jid_str(answer.JID) if registered else None))
        return result

    def profile_picture(self, jid: str) -> str | None:
        client = self._require_connected()
        try:
            picture = client.get_profile_picture(_jid(jid))
        except Exception as exc:
            text = _error_text(exc)
            if re.search(r"no(t have a)? profile picture|hidden|not-authorized|item-not-found"
                         r"|\b40[134]\b", text, re.I):
                return None
            raise _transport_error(exc, "profile_picture") from exc
        return picture.URL or None

    def user_info(self, jids: list[str]) -> list[dict]:
        client = self._require_connected()
        try:
            answers = client.get_user_info(*[_jid(j) for j in jids]) if jids else []
        except Exception as exc:
            raise _transport_error(exc, "user_info") from exc
        result = []
        for answer in answers:
            info = answer.UserInfo
            text = _jid_str(answer.JID)
            result.append({
                "jid": text, "phone": answer.JID.User if _is_user(answer.JID) else None,
                "status": info.Status or None, "picture_id": info.PictureID or None,
                "verified_name": info.VerifiedName.Details.verifiedName or None,
                "devices": [_jid_device_str(d) for d in info.Devices]})
        return result

    def groups(self) -> list[GroupInfo]:
        client = self._require_connected()
        try:
            return [self._group(g) for g in client.get_joined_groups()]
        except Exception as exc:
            raise _transport_error(exc, "groups") from exc

    # --- groups -----------------------------------------------------------------------

    def group_info(self, jid: str) -> GroupInfo:
        return self._group(self._call("group_info", "get_group_info", _jid(jid)))

    def create_group(self, name: str, participants: list[str]) -> GroupInfo:
        return self._group(self._call("create_group", "create_group", name,
                                      [_jid(p) for p in participants]))

    def set_group_name(self, jid: str, name: str) -> None:
        self._call("set_group_name", "set_group_name", _jid(jid), name)

    def set_group_topic(self, jid: str, topic: str) -> None:
        # Empty previous/new ids: whatsmeow looks the current topic id up itself.
        self._call("set_group_topic", "set_group_topic", _jid(jid), "", "", topic)

    def set_group_announce(self, jid: str, announce: bool) -> None:
        self._call("set_group_announce", "set_group_announce", _jid(jid), announce)

    def set_group_locked(self, jid: str, locked: bool) -> None:
        self._call("set_group_locked", "set_group_locked", _jid(jid), locked)

    def group_invite_link(self, jid: str, reset: bool = False) -> str:
        return self._call("group_invite_link", "get_group_invite_link", _jid(jid), revoke=reset)

    def join_group(self, link: str) -> str:
        code = link.strip().rstrip("/").rsplit("/", 1)[-1]
        return _jid_str(self._call("join_group", "join_group_with_link", code))

    def update_participants(self, jid: str, participants: list[str], action: str) -> list[dict]:
        try:
            change = _nz().enum.ParticipantChange[action.upper()]
        except KeyError:
            raise TransportError(f"Unknown participant action {action!r}; use add, remove, "
                                 "promote or demote.", code="invalid_action",
                                 permanent=True) from None
        answers = self._call("update_participants", "update_group_participants", _jid(jid),
                             [_jid(p) for p in participants], change)
        return [{"jid": _jid_str(p.JID) or _jid_str(p.PhoneNumber), "ok": not p.Error,
                 "error": str(p.Error) if p.Error else None} for p in answers]

    def leave_group(self, jid: str) -> None:
        self._call("leave_group", "leave_group", _jid(jid))

    def _call(self, action: str, method: str, *args: Any, **kwargs: Any) -> Any:
        client = self._require_connected()
        try:
            return getattr(client, method)(*args, **kwargs)
        except Exception as exc:
            raise _transport_error(exc, action) from exc

    def _group(self, g: Any) -> GroupInfo:
        participants = tuple({
            "jid": _jid_str(p.JID), "phone": p.PhoneNumber.User or
            (p.JID.User if _is_user(p.JID) else None), "lid": _jid_str(p.LID) or None,
            "admin": bool(p.IsAdmin or p.IsSuperAdmin), "super_admin": bool(p.IsSuperAdmin),
            "name": p.DisplayName or None} for p in g.Participants)
        return GroupInfo(jid=_jid_str(g.JID), name=g.GroupName.Name,
                         topic=g.GroupTopic.Topic, owner=_jid_str(g.OwnerJID) or None,
                         announce=g.GroupAnnounce.IsAnnounce, locked=g.GroupLocked.isLocked,
                         participants=participants)

    # --- messages (the session's sender thread) ---------------------------------------

    def send(self, message: Outbound) -> SendResult:
        """Send once per ``message.message_id``: an id already sent (a retry after a crash
        or a lost answer) is answered from the id map and not sent again."""
        client = self._require_connected()
        if message.kind not in SENDABLE:
            raise TransportError(f"Cannot send a {message.kind!r} message.",
                                 code="unsupported_kind", permanent=True)
        earlier = self._ids.sent(message.message_id)
        if earlier is not None:
            log.info("message %s was already sent as %s; not sending it again",
                     message.message_id, earlier[0])
            return SendResult(message_id=message.message_id, timestamp=earlier[1])
        chat = _jid(message.to)
        if message.kind not in ACTIONS:
            self._check_recipient(client, chat)
        body = self._build(client, chat, message)
        try:
            response = client.send_message(chat, body)
        except Exception as exc:
            raise _transport_error(exc, "send") from exc
        sent_at = _when(response.Timestamp)
        wa_id = response.ID or message.message_id
        self._ids.record(message.message_id, wa_id, message.to, sent_at)
        if message.kind == "poll" and message.poll is not None:  # for naming votes
            self._ids.remember_poll(wa_id, list(message.poll.options))
        return SendResult(message_id=message.message_id, timestamp=sent_at)

    def _build(self, client: Any, chat: Any, message: Outbound) -> Any:
        """The waE2E message for an Outbound (uploading media first)."""
        E = _nz().E
        me = self._identity.jid if self._identity else None
        kind = message.kind
        if kind in ACTIONS:
            return self._action(client, chat, message, me)
        context = _context(message, self._ids, me)
        if kind == "text":
            preview = link_preview(message.text) if message.link_preview else {}
            if not preview and context is None:
                return E.Message(conversation=message.text)
            body = E.Message(extendedTextMessage=E.ExtendedTextMessage(text=message.text,
                                                                       **preview))
        elif kind in MEDIA_KINDS:
            if message.media is None or not message.media.data:
                raise TransportError(f"A {kind} message needs media bytes.",
                                     code="invalid_message", permanent=True)
            media_type = getattr(_nz().enum.MediaType, _MEDIA_TYPES[kind])
            try:
                upload = client.upload(bytes(message.media.data), media_type)
            except Exception as exc:
                raise _transport_error(exc, "upload") from exc
            body = _media_message(kind, upload, message)
        elif kind == "location":
            if message.location is None:
                raise TransportError("A location message needs a location.",
                                     code="invalid_message", permanent=True)
            loc = message.location
            body = E.Message(locationMessage=E.LocationMessage(
                degreesLatitude=loc.latitude, degreesLongitude=loc.longitude,
                name=loc.name or None, address=loc.address or None))
        elif kind == "contacts":
            body = _contacts_message(message.vcards)
        else:
            body = self._poll(client, message)
        _attach_context(body, context)
        return body

    def _poll(self, client: Any, message: Outbound) -> Any:
        """Built by whatsmeow (through neonize): it also sets the message secret that
        voters' clients need to encrypt their votes."""
        poll = message.poll
        if poll is None or len(poll.options) < 2:
            raise TransportError("A poll needs a question and at least two options.",
                                 code="invalid_message", permanent=True)
        vote = _nz().enum.VoteType
        try:
            return client.build_poll_vote_creation(
                poll.question, list(poll.options), vote.MULTIPLE if poll.multiple else vote.SINGLE)
        except Exception as exc:
            raise _transport_error(exc, "poll") from exc

    def _action(self, client: Any, chat: Any, message: Outbound, me: str | None) -> Any:
        """Reaction, edit or revoke of ``message.quoted_id`` (WhatsApp's id for it)."""
        nz = _nz()
        if not message.quoted_id:
            raise TransportError(f"A {message.kind} needs the id of its target message.",
                                 code="invalid_message", permanent=True)
        target = self._ids.to_wa(message.quoted_id)
        author = _jid(self._author(message, target, me))
        if message.kind == "reaction":
            try:
                return client.build_reaction(chat, author, target, message.text)
            except Exception as exc:
                raise _transport_error(exc, "reaction") from exc
        if message.kind == "edit":
            return nz.builder.build_edit(chat, target, nz.E.Message(conversation=message.text))
        # Not client.revoke_message/build_revoke: they call get_me(), which aborts the
        # process on a client without a Go session (notes §6). Our JID is known.
        if me is None:
            raise NotConnected("revoke: this session's own JID is not known yet.")
        return nz.builder.build_revoke(chat, author, target, _jid(me))

    def _author(self, message: Outbound, target: str, me: str | None) -> str:
        """Who wrote the target message, which the key of a reaction/revoke must name:
        as given, else us for a message this session sent, else the other person of a
        one-to-one chat. In a group nobody else can be guessed."""
        if message.quoted_sender:
            return message.quoted_sender
        if target != message.quoted_id or message.kind == "edit":
            if me is None:
                raise NotConnected(f"{message.kind}: this session's own JID is not known yet.")
            return me
        if not message.to.endswith("@" + GROUP_SERVER):
            return message.to
        raise TransportError(f"A {message.kind} in a group needs the sender of its target "
                             "message.", code="invalid_message", permanent=True)

    def _check_recipient(self, client: Any, chat: Any) -> None:
        """Refuse, permanently, to send to a number WhatsApp says does not exist (the
        sandbox does the same; sending to unknown numbers also looks like spam). Answers
        are cached for an hour; a failed check does not stop the send."""
        if not self.settings.check_recipients or not _is_user(chat):
            return
        cached = self._registered.get(chat.User)
        if cached is None or time.monotonic() - cached[1] > 3600:
            try:
                answers = client.is_on_whatsapp(f"+{chat.User}")
            except Exception as exc:
                log.info("could not check whether %s is on WhatsApp: %s", chat.User, exc)
                return
            cached = (any(a.IsIn for a in answers), time.monotonic())
            self._registered[chat.User] = cached
        if not cached[0]:
            raise TransportError(f"{chat.User} is not on WhatsApp.", code="not_on_whatsapp",
                                 permanent=True)

    def mark_read(self, chat: str, sender: str, message_ids: list[str]) -> None:
        client = self._require_connected()
        if not message_ids:
            return
        try:
            client.mark_read(*[self._ids.to_wa(i) for i in message_ids], chat=_jid(chat),
                             sender=_jid(sender or chat), receipt=_nz().enum.ReceiptType.READ)
        except Exception as exc:
            raise _transport_error(exc, "mark_read") from exc

    def presence(self, chat: str, state: str) -> None:
        """composing / recording / paused in a chat (available / unavailable: the account).
        WhatsApp only relays chat states from an account that has announced itself
        available, so that is sent once per connection first."""
        client = self._require_connected()
        enum = _nz().enum
        if state not in PRESENCE_STATES:
            raise TransportError(f"Unknown presence {state!r}.", code="invalid_presence",
                                 permanent=True)
        try:
            if state in ("available", "unavailable"):
                client.send_presence(getattr(enum.Presence, state.upper()))
                self._sent_available = state == "available"
                return
            if not self._sent_available:
                client.send_presence(enum.Presence.AVAILABLE)
                self._sent_available = True
            client.send_chat_presence(
                _jid(chat),
                enum.ChatPresence.CHAT_PRESENCE_PAUSED if state == "paused"
                else enum.ChatPresence.CHAT_PRESENCE_COMPOSING,
                enum.ChatPresenceMedia.CHAT_PRESENCE_MEDIA_AUDIO if state == "recording"
                else enum.ChatPresenceMedia.CHAT_PRESENCE_MEDIA_TEXT)
        except Exception as exc:
            raise _transport_error(exc, "presence") from exc

    def star(self, chat: str, sender: str, message_id: str, starred: bool) -> None:
        """Starring is an app-state patch (whatsmeow ``BuildStar``, type regular_high).
        neonize 0.5.2's Go ``DecodePatchInfo`` compares the patch type by pointer, so
        every type decodes as "", and it has no case for regular_high at all: a star
        cannot be sent through it. Refused clearly instead of failing obscurely."""
        self._require_connected()
        raise TransportError("Starring messages is not supported by the neonize transport "
                             "(neonize 0.5.2 cannot send app-state patches).",
                             code="not_supported", permanent=True)

    def download(self, handle: dict) -> bytes:
        """The media of an inbound message, from the handle ``_Inbound._media`` made."""
        client = self._require_connected()
        try:
            message = _nz().E.Message.FromString(base64.b64decode(handle["neonize"]))
        except Exception:
            raise TransportError("This media handle was not made by the neonize transport.",
                                 code="invalid_media_handle", permanent=True) from None
        try:
            data = client.download_any(message)
        except Exception as exc:
            raise _transport_error(exc, "download") from exc
        if not data:
            raise TransportError("WhatsApp returned no media.", code="download_failed")
        return bytes(data)


# --- small helpers --------------------------------------------------------------------


def _jid_device_str(jid: Any) -> str:
    """``user:device@server`` (devices are listed with their device number)."""
    if jid.Device:
        return f"{jid.User}:{jid.Device}@{jid.Server}"
    return _jid_str(jid)


def _bounded(call: Callable[[], Any], timeout: float, name: str) -> threading.Thread:
    """Run ``call`` on a helper thread and wait at most ``timeout`` for it; a call that
    is still blocked after that is left to finish (or not) on its own."""
    def run() -> None:
        try:
            call()
        except Exception:
            log.exception("%s failed", name)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(max(timeout, 0.05))
    return thread


def _enum_name(enum_type: Any, value: int, default: str = "UNKNOWN") -> str:
    """The name of a protobuf enum value; a value this neonize does not know is shown
    as its number rather than failing the handler."""
    try:
        return enum_type.Name(value) if value else default
    except ValueError:
        return str(value)


class _logged:
    """Context manager for event handlers: an exception is logged, never raised into
    neonize's ctypes callback (where it would be printed to stderr and lost)."""

    def __init__(self, what: str):
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is not None and isinstance(exc, Exception):
            log.error("neonize %s handler failed", self.what, exc_info=(kind, exc, tb))
            return True
        return False
