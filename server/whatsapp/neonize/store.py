"""The device store and the neonize client over it."""

from __future__ import annotations

import functools
import logging
import urllib.parse
from pathlib import Path
from typing import Any

from server.whatsapp.neonize.loader import _nz

log = logging.getLogger(__name__)

SQLITE_STORE = "whatsmeow.sqlite3"
DEVICE_FILE = "device.json"  # our own JID, so a shared PostgreSQL store resumes the right device


def new_neonize_client(
    name: str,
    *,
    uuid: str,
    jid: Any = None,
    new_device: bool = False,
    device_name: str = "Kabar",
    platform: str = "CHROME",
) -> Any:
    """A neonize ``NewClient`` for one session (the default ``client_factory``).

    ``NewClient`` makes no Go call; the device store is opened by ``connect()``. With a
    ``jid`` neonize forces the uuid to ``jid.User`` (notes §2): the uuid is set back to
    the session id, and the garbage-collection finaliser, which would call Go
    ``Stop(jid.User)``, is dropped (``stop()`` stops the client itself).
    """
    nz = _nz()
    try:
        kind = nz.DeviceProps.PlatformType.Value(platform.upper())
    except ValueError:
        log.warning("unknown device platform %r; using CHROME", platform)
        kind = nz.DeviceProps.CHROME
    props = nz.DeviceProps(os=device_name, platformType=kind)
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

    data = message.SerializeToString()
    answer = nz.binder.gocode.DecryptPollVote(client.uuid, data, len(data))
    if isinstance(answer, bytes | bytearray):
        raw = bytes(answer)
    else:
        try:
            raw = answer.contents.get_bytes()
        finally:
            nz.binder.free_bytes(answer)
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


class StoreUnavailable(Exception):
    """The device store cannot be reached right now (PostgreSQL down or starting):
    transient, retried with backoff (issue 12, defect 9)."""


def stored_device(store_url: str | None, sqlite_path: Path, jid: str) -> str | None:
    """The full JID (``user:device@server``) of device ``jid`` if whatsmeow's store holds
    it, else None. ``jid`` may be full, or the bare ``user@server`` older Kabar kept
    (then the one device of that user is taken, if there is exactly one).

    Read with Python, not Go: each Go store open keeps a connection for the life of the
    process (defect 4), and resuming a device the store does not hold makes neonize call
    ``whatsmeow.NewClient(nil)``, which aborts the process (defect 1).
    """
    user, _, server = jid.partition("@")
    bare = ":" not in user
    pattern = f"{user}:%@{server}" if bare else jid
    if store_url:
        import psycopg

        try:
            with psycopg.connect(store_url, connect_timeout=5, autocommit=True) as db:
                try:
                    rows = db.execute(
                        "SELECT jid FROM whatsmeow_device WHERE jid = %s OR jid LIKE %s",
                        (jid, pattern),
                    ).fetchall()
                except psycopg.errors.UndefinedTable:
                    return None
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(str(exc).strip()) from exc
    else:
        if not sqlite_path.exists():
            return None
        import sqlite3

        try:
            db = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True, timeout=5)
            try:
                rows = db.execute(
                    "SELECT jid FROM whatsmeow_device WHERE jid = ? OR jid LIKE ?", (jid, pattern)
                ).fetchall()
            finally:
                db.close()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise StoreUnavailable(str(exc)) from exc
    found = [r[0] for r in rows]
    if jid in found:
        return jid
    return found[0] if bare and len(found) == 1 else None
