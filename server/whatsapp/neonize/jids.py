"""JIDs: neonize's JID protobuf <-> Kabar's ``user@server`` text."""

from __future__ import annotations

import logging
import re
from typing import Any

from server.whatsapp.jids import LID_SERVER, USER_SERVER
from server.whatsapp.neonize.loader import _nz
from server.whatsapp.transport import (
    TransportError,
)

log = logging.getLogger(__name__)

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
            raise TransportError(
                f"{text!r} is not a WhatsApp JID.", code="invalid_jid", permanent=True
            )
        user, server = match["user"], match["server"]
        server = USER_SERVER if server == "c.us" else server
    return _nz().N.JID(User=user, Server=server, Device=0, RawAgent=0, Integrator=0, IsEmpty=False)


def _jid_str(jid: Any) -> str:
    """``user@server`` without agent or device; "" for an empty JID."""
    if jid is None or not jid.Server:
        return ""
    return f"{jid.User}@{jid.Server}" if jid.User else jid.Server


def _is_user(jid: Any) -> bool:
    return bool(jid is not None and jid.User and jid.Server == USER_SERVER)


def _is_lid(jid: Any) -> bool:
    return bool(jid is not None and jid.User and jid.Server == LID_SERVER)


def _jid_device_str(jid: Any) -> str:
    """``user:device@server`` (devices are listed with their device number)."""
    if jid.Device:
        return f"{jid.User}:{jid.Device}@{jid.Server}"
    return _jid_str(jid)


def _device_jid(text: str) -> Any:
    """A neonize JID protobuf for a device, ``user:device@server``, keeping the device
    number: whatsmeow's store keys devices by it, and resuming ``user@server`` (device
    0) finds nothing (issue 12, defect 1)."""
    match = re.match(r"^(?P<user>\d+)(?::(?P<device>\d+))?@(?P<server>[a-z.]+)$", text or "")
    if not match:
        raise TransportError(f"{text!r} is not a device JID.", code="invalid_jid", permanent=True)
    return _nz().N.JID(
        User=match["user"],
        Server=match["server"],
        Device=int(match["device"] or 0),
        RawAgent=0,
        Integrator=0,
        IsEmpty=False,
    )
