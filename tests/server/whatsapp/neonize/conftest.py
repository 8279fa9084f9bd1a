"""The shared fake of neonize's client for the transport's offline tests.

``FakeClient`` stands in for neonize's ``NewClient`` (same method names and parameters,
checked by ``test_fake_matches_newclient``) and models what the Go side really does
(docs/neonize-notes.md §3, §6; goneonize ``Neonize``/``CallbackFunction``/``FetchMe``):

- ``connect()`` blocks for the session and raises ``NeonizeError`` at once when the
  first dial fails (no retry inside neonize).
- A store with no device pairs: Go runs the QR loop (``qr()`` pushes a code, as
  ``__onQr`` does) and nothing else is delivered until pairing succeeds (``scan()``):
  events whatsmeow raises meanwhile (PairSuccess, Connected) are held back and arrive
  after the code-0 ``Device`` that ``FetchMe`` sends. If the QR channel closes without a
  scan (``qr_channel_closed()``), ``FetchMe`` spins forever: ``connect()`` no longer
  returns on ``stop()`` (the hang of issue 12, defect 5) until ``release()``.
- A store with a device resumes: ``Device`` (code 0), then ``Connected``.
- Events reach the adapter serialized, through the same ctypes wrapper and
  ``Event.execute`` dispatch neonize's ``connect()`` hands to Go (``feed``).

Events are real ``Neonize_pb2`` protobufs; only events whatsmeow really dispatches are
fed (e.g. ``ClientOutdated``, never ``ConnectFailure(CLIENT_OUTDATED)``).
"""

from __future__ import annotations

import base64
import ctypes
import hashlib
import itertools
import logging
import threading
import time

import pytest

from server.events import (
    SessionStatus,
)
from server.whatsapp.neonize import (
    NeonizeTransport,
    _nz,
)
from server.whatsapp.transport import (
    Outbound,
)
from tests.server.whatsapp.neonize import offline
from tests.server.whatsapp.neonize.offline import pg_store  # noqa: F401 (a fixture)

nz = _nz()  # neonize, imported the contained way (see the module docstring)

from neonize._binder import func_callback_bytes  # noqa: E402
from neonize.events import EVENT_TO_INT, Event  # noqa: E402
from neonize.exc import DecryptPollVoteError  # noqa: E402
from neonize.proto.waCommon.WACommon_pb2 import MessageKey  # noqa: E402

N, E = nz.N, nz.E
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg=="
)


# --- event builders (docs/neonize-notes.md §3) ------------------------------------------


def fill_required(msg):
    """Set every unset proto2 ``required`` field to its zero value, recursively, so
    ``SerializeToString()`` works (neonize's events are proto2 with required fields)."""
    for f in msg.DESCRIPTOR.fields:
        if f.is_repeated:
            if f.message_type is not None:
                for item in getattr(msg, f.name):
                    fill_required(item)
            continue
        if f.message_type is not None:
            if msg.HasField(f.name) or f.is_required:
                fill_required(getattr(msg, f.name))
                getattr(msg, f.name).SetInParent()
        elif f.is_required and not msg.HasField(f.name):
            if f.enum_type is not None:
                setattr(msg, f.name, f.enum_type.values[0].number)
            else:
                setattr(msg, f.name, f.default_value)
    return msg


def jid(user: str, server: str = "s.whatsapp.net", device: int = 0):
    return N.JID(
        User=user,
        Server=server,
        Device=device,
        RawAgent=0,
        Integrator=0,
        IsEmpty=not user and not server,
    )


EMPTY = N.JID(User="", Server="", Device=0, RawAgent=0, Integrator=0, IsEmpty=True)
ALICE = jid("15550001111")
ME = jid("15559990000")
GROUP = jid("120363012345678901", "g.us")
ALICE_LID = jid("123456789012345", "lid")
T0_MS = 1_700_000_000_000


def source(chat, sender, *, is_group=False, from_me=False, sender_alt=None, addressing=N.PN):
    return N.MessageSource(
        Chat=chat,
        Sender=sender,
        IsFromMe=from_me,
        IsGroup=is_group,
        AddressingMode=addressing,
        SenderAlt=sender_alt or EMPTY,
        RecipientAlt=EMPTY,
        BroadcastListOwner=EMPTY,
    )


def message_ev(src, body, *, msg_id="3EB0TEST0001", push_name="Alice", ts_ms=T0_MS):
    info = N.MessageInfo(
        MessageSource=src,
        ID=msg_id,
        ServerID=0,
        Type="text",
        Pushname=push_name,
        Timestamp=ts_ms,
        Category="",
        Multicast=False,
        MediaType="",
        Edit="",
    )
    return fill_required(N.Message(Info=info, Message=body))


def receipt(ids, kind, ts=1_700_000_100):
    return fill_required(
        N.Receipt(MessageSource=source(ALICE, ALICE), MessageIDs=ids, Timestamp=ts, Type=kind)
    )


def device(user="15559990000", push_name="Kabar Bot"):
    return fill_required(
        N.Device(JID=jid(user, device=12), LID=jid("999888777", "lid"), PushName=push_name)
    )


def feed(client, ev, code: int | None = None) -> None:
    """Deliver ``ev`` the way Go does: serialized, through the ctypes wrapper neonize's
    connect() registers around ``Event.execute`` (Go passes NULL, 0 for empty ones).
    While a FakeClient pairs, Go holds events back in its channel: so does this."""
    if getattr(client, "pairing", False):
        client.held.append((ev, code))
        return
    raw = ev.SerializeToString()
    buf = ctypes.create_string_buffer(raw, len(raw)) if raw else None
    ptr = ctypes.cast(buf, ctypes.c_void_p) if buf is not None else None
    callback = func_callback_bytes(client.event.execute)
    callback(client.uuid, ptr, len(raw), EVENT_TO_INT[type(ev)] if code is None else code)


# --- the fake client ------------------------------------------------------------------------------


class FakeClient:
    """neonize's ``NewClient`` with the Go side modelled (see the module docstring)."""

    def __init__(
        self,
        name,
        *,
        uuid,
        jid=None,
        new_device=False,
        device_name="Kabar",
        platform="CHROME",
        paired=True,
    ):
        self.name, self.uuid = name, uuid.encode()
        self.factory_args = {
            "jid": jid,
            "new_device": new_device,
            "device_name": device_name,
            "platform": platform,
        }
        self.event = Event(self)  # the real dispatcher, as on a NewClient
        self.me = None
        self.connected = False
        self.paired = paired  # whatsmeow's store has a device (Store.ID != nil)
        self.device = device()
        self.calls: list[tuple[str, tuple, dict]] = []
        self.connect_error: Exception | None = None
        self.loop_error: Exception | None = None
        self.unregistered: set[str] = set()
        self.pn_of_lid: dict[str, str] = {}
        self.fail_send: Exception | None = None
        self.logout_delay = 0.0
        self.votes: dict[str, list[str]] = {}  # vote message id -> option names picked
        self.pairing = False  # in Go's QR loop / FetchMe: events are held back
        self.held: list = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._qrs: list[bytes] = []
        self._wake = threading.Event()
        self._scanned = False
        self._qr_closed = False
        self._released = threading.Event()
        self._ids = itertools.count(1)

    def _record(self, name, *args, **kwargs):
        self.calls.append((name, args, kwargs))

    def called(self, name):
        return [(args, kwargs) for n, args, kwargs in self.calls if n == name]

    # what happens on the Go side (tests drive these)
    def qr(self, code: bytes) -> None:
        """whatsmeow rotates the QR code: Go calls ``__onQr`` with it."""
        with self._lock:
            self._qrs.append(code)
        self._wake.set()

    def scan(self) -> None:
        """The phone scans the code: PairSuccess, then Connected, both held back until
        FetchMe sees the new device and CallbackFunction starts."""
        feed(
            self,
            fill_required(N.PairStatus(ID=ME, Status=N.PairStatus.SUCCESS, Platform="android")),
        )
        feed(self, N.Connected(status=True))
        with self._lock:
            self._scanned = True
        self._wake.set()

    def qr_channel_closed(self, why: bytes = b"timeout") -> None:
        """The QR channel ends without a pairing: Go reports the login event through
        ``__onLoginStatus`` and then spins in FetchMe, ignoring Stop."""
        with self._lock:
            self._qr_closed = True
            self._qr_why = why
        self._wake.set()

    def release(self) -> None:
        """Let a hung connect() go (only a test can; in production the process exits)."""
        self._released.set()
        self._wake.set()

    # lifecycle
    def connect(self, proxy_settings=None):
        self._record("connect")
        if self.connect_error is not None:
            raise self.connect_error
        self._stop.clear()
        if not self.paired:
            self.pairing = True
            while True:
                self._wake.wait()
                with self._lock:
                    self._wake.clear()
                    qrs, self._qrs = self._qrs, []
                    scanned, closed = self._scanned, self._qr_closed
                for code in qrs:
                    self._NewClient__onQr(self.uuid, code)
                if scanned:
                    break
                if closed:
                    self._NewClient__onLoginStatus(self.uuid, self._qr_why)
                    self._released.wait()  # FetchMe: for store.ID == nil {}
                    return
            self.paired = True
        self.pairing = False
        feed(self, self.device, code=0)  # FetchMe's Device, before any other event
        held, self.held = self.held, []
        for ev, code in held:
            feed(self, ev, code)
        if not held:
            feed(self, N.Connected(status=True))
        self._stop.wait()
        if self.loop_error is not None:  # CallbackFunction returned an error
            raise self.loop_error

    def _NewClient__onQr(self, uuid, data):  # what Go calls; the adapter may replace it
        self.event._qr(self, data)

    def _NewClient__onLoginStatus(self, uuid, status):  # neonize prints it
        pass

    def stop(self):
        self._record("stop")
        self._stop.set()

    @property
    def is_connected(self):
        self._record("is_connected")
        return True

    def logout(self):
        self._record("logout")
        time.sleep(self.logout_delay)

    def get_me(self):
        self._record("get_me")
        return device(push_name="From get_me")

    def get_pn_from_lid(self, jid):
        self._record("get_pn_from_lid", jid)
        return globals()["jid"](self.pn_of_lid.get(jid.User, ""))

    def get_lid_from_pn(self, jid):
        self._record("get_lid_from_pn", jid)
        for lid, pn in self.pn_of_lid.items():
            if pn == jid.User:
                return globals()["jid"](lid, "lid")
        return globals()["jid"]("", "")

    def reject_call(self, call_from, call_id):
        self._record("reject_call", call_from, call_id)

    def PairPhone(self, phone, show_push_notification, client_name=None, client_type=None):
        self._record("PairPhone", phone, show_push_notification)
        return "ABCD-EFGH"

    # sending
    def send_message(
        self,
        to,
        message,
        link_preview=False,
        ghost_mentions=None,
        mentions_are_lids=False,
        add_msg_secret=False,
    ):
        self._record("send_message", to, message)
        if self.fail_send is not None:
            raise self.fail_send
        return fill_required(
            N.SendResponse(ID=f"3EB0WA{next(self._ids):04d}", Timestamp=1_700_000_050, ServerID=0)
        )

    def upload(self, binary, media_type=None):
        self._record("upload", binary, media_type)
        return fill_required(
            N.UploadResponse(
                url="https://mmg.whatsapp.net/up",
                DirectPath="/v/up",
                Handle="",
                MediaKey=b"k" * 32,
                FileEncSHA256=b"e" * 32,
                FileSHA256=b"s" * 32,
                FileLength=len(binary),
            )
        )

    def build_reaction(self, chat, sender, message_id, reaction):
        self._record("build_reaction", chat, sender, message_id, reaction)
        return E.Message(
            reactionMessage=E.ReactionMessage(
                key=MessageKey(remoteJID=f"{chat.User}@{chat.Server}", ID=message_id), text=reaction
            )
        )

    def build_poll_vote_creation(self, name, options, selectable_count, quoted=None):
        self._record("build_poll_vote_creation", name, options, selectable_count)
        return E.Message(
            pollCreationMessage=E.PollCreationMessage(
                name=name,
                options=[E.PollCreationMessage.Option(optionName=o) for o in options],
                selectableOptionsCount=selectable_count.value,
            )
        )

    def decrypt_poll_vote(self, message):
        """As whatsmeow answers: the picked options as SHA-256 hashes of their names."""
        self._record("decrypt_poll_vote", message)
        if message.Info.ID not in self.votes:
            raise DecryptPollVoteError("failed to get message secret: not found")
        return E.PollVoteMessage(
            selectedOptions=[
                hashlib.sha256(o.encode()).digest() for o in self.votes[message.Info.ID]
            ]
        )

    def mark_read(self, *message_ids, chat, sender, receipt, timestamp=None):
        self._record("mark_read", *message_ids, chat=chat, sender=sender, receipt=receipt)

    def send_chat_presence(self, jid, state, media):
        self._record("send_chat_presence", jid, state, media)

    def send_presence(self, presence):
        self._record("send_presence", presence)

    def download_any(self, message, path=None):
        self._record("download_any", message)
        return b"\xff\xd8 image bytes"

    # look-ups
    def is_on_whatsapp(self, *numbers):
        self._record("is_on_whatsapp", *numbers)
        return [
            fill_required(
                N.IsOnWhatsAppResponse(
                    Query=n, JID=jid(n.lstrip("+")), IsIn=n.lstrip("+") not in self.unregistered
                )
            )
            for n in numbers
        ]

    def get_profile_picture(self, jid, extra=None):
        self._record("get_profile_picture", jid)
        return fill_required(N.ProfilePictureInfo(URL="https://pps.whatsapp.net/p.jpg"))

    def get_joined_groups(self):
        self._record("get_joined_groups")
        return [self._group()]

    def get_user_info(self, *jid):
        self._record("get_user_info", *jid)
        return [
            fill_required(
                N.GetUserInfoSingleReturnFunction(
                    JID=j,
                    UserInfo=N.UserInfo(
                        Status="Hey", PictureID="p1", Devices=[globals()["jid"](j.User, device=3)]
                    ),
                )
            )
            for j in jid
        ]

    # groups
    @staticmethod
    def _group(name="Team"):
        return fill_required(
            N.GroupInfo(
                JID=GROUP,
                OwnerJID=ME,
                GroupName=N.GroupName(Name=name),
                GroupTopic=N.GroupTopic(Topic="Plans"),
                GroupAnnounce=N.GroupAnnounce(IsAnnounce=True),
                Participants=[
                    fill_required(
                        N.GroupParticipant(
                            JID=ALICE_LID, PhoneNumber=ALICE, IsAdmin=True, DisplayName="Alice"
                        )
                    )
                ],
            )
        )

    def get_group_info(self, jid):
        self._record("get_group_info", jid)
        return self._group()

    def create_group(self, name, participants=[], linked_parent=None, group_parent=None):  # noqa: B006
        self._record("create_group", name, participants)
        return self._group(name)

    def set_group_topic(self, jid, previous_id, new_id, topic):
        self._record("set_group_topic", jid, previous_id, new_id, topic)

    def get_group_invite_link(self, jid, revoke=False):
        self._record("get_group_invite_link", jid, revoke=revoke)
        return "https://chat.whatsapp.com/AbCdEf"

    def join_group_with_link(self, code):
        self._record("join_group_with_link", code)
        return GROUP

    def update_group_participants(self, jid, participants_changes, action):
        self._record("update_group_participants", jid, participants_changes, action)
        return [
            fill_required(N.GroupParticipant(JID=p, Error=403 if p.User == "2" else 0))
            for p in participants_changes
        ]


NEWCLIENT_METHODS = [
    "connect",
    "stop",
    "logout",
    "get_me",
    "get_pn_from_lid",
    "get_lid_from_pn",
    "reject_call",
    "PairPhone",
    "send_message",
    "upload",
    "build_reaction",
    "build_poll_vote_creation",
    "decrypt_poll_vote",
    "mark_read",
    "send_chat_presence",
    "send_presence",
    "download_any",
    "is_on_whatsapp",
    "get_profile_picture",
    "get_joined_groups",
    "get_user_info",
    "get_group_info",
    "create_group",
    "set_group_topic",
    "get_group_invite_link",
    "join_group_with_link",
    "update_group_participants",
]


# --- tests against the real library, in a loopback-only network namespace -----------------


def pytest_pyfunc_call(pyfuncitem):
    """A test marked ``netns`` runs in a sub-pytest inside a loopback-only network
    namespace (``offline.py``); outside, this stands in for its body."""
    if pyfuncitem.get_closest_marker("netns") is None or offline.INSIDE:
        return None
    offline.run_inside(pyfuncitem)
    return True


def pytest_runtest_logreport(report):
    if offline.INSIDE:
        offline.record_report(report)


def pytest_sessionfinish(session):
    offline.finish()


# --- fixtures -----------------------------------------------------------------------------


class Recorder:
    """The runtime's ``emit``: collects events (from any thread)."""

    def __init__(self):
        self.events = []
        self._lock = threading.Lock()

    def __call__(self, event):
        with self._lock:
            self.events.append(event)

    def of(self, kind):
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def statuses(self):
        return [e.status for e in self.of(SessionStatus)]

    def last(self, kind):
        found = self.of(kind)
        assert found, f"no {kind.__name__} emitted; got {self.events}"
        return found[-1]


def wait_for(predicate, timeout=3.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(autouse=True)
def no_handler_errors(caplog):
    """A handler that fails logs an error instead of raising into ctypes: fail the test."""
    caplog.set_level(logging.WARNING, logger="server.whatsapp.neonize")
    yield
    errors = [
        r
        for r in caplog.records
        if r.name.startswith("server.whatsapp.neonize") and r.levelno >= logging.ERROR
    ]
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture
def make(tmp_path):
    """make(paired=True, **options) -> (transport, client, recorder), started. A paired
    store resumes (connected on return); an empty one waits in the QR loop."""
    made, every_client = [], []

    def factory(paired=True, **options):
        recorder, clients = Recorder(), []

        def client_factory(name, **kwargs):
            client = FakeClient(name, paired=paired, **kwargs)
            clients.append(client)
            every_client.append(client)
            return client

        n = len(made)
        options.setdefault("route_go_stdout", False)  # pytest owns this process's fd 1
        transport = NeonizeTransport(
            session_id=f"ses{n}",
            store_dir=tmp_path / f"s{n}",
            emit=recorder,
            options=options,
            client_factory=client_factory,
        )
        made.append(transport)
        transport.start()
        wait_for(lambda: clients and clients[0].called("connect"), what="connect()")
        if paired:
            wait_for(lambda: "connected" in recorder.statuses(), what="connected")
        return transport, clients[0], recorder

    yield factory
    for transport in made:
        transport.stop()
    for client in every_client:
        client.release()  # a connect() left hanging in FetchMe (defect 5) ends now


@pytest.fixture
def live(make):
    """A connected transport: Go delivered the Device (code 0), then Connected."""
    return make(stop_timeout=2)


def out(kind="text", **fields):
    fields.setdefault("message_id", "3EB0KABAR000000000000001")
    fields.setdefault("to", "15550001111@s.whatsapp.net")
    return Outbound(kind=kind, **fields)


def sent_message(spy, index=-1):
    (to, message), _ = spy.called("send_message")[index]
    return to, message
