"""fonnte's ``send``: its fields, read as fonnte reads them, queued through the outbox.

One request may name many targets (``number|name|var1|var2,...``); each becomes one
outbox row (one more, a text before it, when the message cannot ride along: a location,
a poll with its own name, an audio). Every row goes through ``server.outbox.queue.send``
in one transaction: all targets are queued or none. Media given by ``url`` or ``file`` is
fetched and stored once, then referenced by every target's row.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from werkzeug.datastructures import FileStorage

from server import media
from server.fonnte import Refused
from server.models import Broadcast, Message, OutboxMessage, WaSession, db, utcnow
from server.outbox import queue as outbox
from server.outbox.broadcast import render
from server.runtime import wakeup
from server.whatsapp.jids import InvalidPhone, to_jid

SOURCE = "fonnte"
DEFAULT_COUNTRY_CODE = "62"
MAX_TARGETS = 1000
# fonnte's deprecated interactive messages: WhatsApp no longer shows them.
IGNORED = ("buttonJSON", "templateJSON", "listJSON")
_TRUE = {"1", "true", "yes", "on"}
_DELAY = re.compile(r"^\s*(\d{1,5})\s*(?:-\s*(\d{1,5})\s*)?$")


@dataclass
class Target:
    """One entry of ``target``: who, as given and as a JID, and its variables."""

    given: str
    jid: str
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def shown(self) -> str:
        """How fonnte lists the target in its answer: the number, or the group's id."""
        user, _, server = self.jid.partition("@")
        return user if server == "s.whatsapp.net" else self.jid


@dataclass
class Queued:
    ids: list[int]
    targets: list[str]
    requestid: int
    scheduled: bool


def text(value: Any) -> str:
    """A field as fonnte reads it: JSON numbers and booleans as their text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip() if not isinstance(value, str) else value


def flag(value: Any) -> bool | None:
    """A boolean field: None when absent, so Kabar's own default applies."""
    value = text(value).strip().lower()
    return None if value == "" else value in _TRUE


def number(given: str, country_code: str) -> str:
    """fonnte's number rule: a leading 0 becomes ``countryCode`` (default 62; "0" turns
    that off). A JID (a group's ``…@g.us``) is kept as it is."""
    given = given.strip()
    if "@" in given:
        return given
    digits = re.sub(r"\D", "", given)
    if digits.startswith("0") and country_code not in ("", "0"):
        digits = country_code + digits[1:]
    return "+" + digits


def targets(raw: str, country_code: str, region: str) -> tuple[list[Target], list[str]]:
    """The valid targets (duplicates once) and the ones that are not phone numbers."""
    valid: list[Target] = []
    invalid: list[str] = []
    seen: set[str] = set()
    for entry in raw.split(","):
        parts = [p.strip() for p in entry.split("|")]
        if not parts[0]:
            continue
        fields = {"name": parts[1] if len(parts) > 1 else ""}
        fields.update({f"var{i}": v for i, v in enumerate(parts[2:], start=1)})
        try:
            jid = to_jid(number(parts[0], country_code), region)
        except InvalidPhone:
            invalid.append(parts[0])
            continue
        if jid not in seen:
            seen.add(jid)
            valid.append(Target(parts[0], jid, fields))
    return valid, invalid


def delays(spec: str, count: int) -> list[float]:
    """Seconds after the first send for each target: ``delay`` ("5", or "1-10" for a
    random pause in that range) between one target and the next."""
    if not spec.strip() or spec.strip() == "0":
        return [0.0] * count
    matched = _DELAY.match(spec)
    if not matched:
        raise Refused("delay invalid: give seconds, such as 2, or a range such as 1-10.")
    low = int(matched.group(1))
    high = int(matched.group(2) or low)
    if high < low:
        raise Refused("delay invalid: the range must go from low to high, such as 1-10.")
    offsets, total = [], 0.0
    for index in range(count):
        if index:
            total += random.uniform(low, high) if high > low else low
        offsets.append(total)
    return offsets


def schedule(value: str) -> datetime | None:
    """``schedule``: a unix timestamp; 0, empty or a past time means now."""
    value = value.strip()
    if value in ("", "0"):
        return None
    try:
        at = datetime.fromtimestamp(int(float(value)), UTC)
    except (ValueError, OverflowError, OSError):
        raise Refused("schedule invalid: give a unix timestamp in seconds.") from None
    return at if at > utcnow() else None


def location(value: str) -> dict[str, float]:
    try:
        latitude, longitude = (float(part) for part in value.split(","))
    except ValueError:
        raise Refused(
            "location invalid: give latitude,longitude, such as -7.983908, 112.621391."
        ) from None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise Refused("location invalid: latitude or longitude out of range.")
    return {"latitude": latitude, "longitude": longitude}


def _kind_of(mimetype: str) -> str:
    for kind in ("image", "video", "audio"):
        if mimetype.startswith(kind + "/"):
            return kind
    return "document"


def _attachment(fields: dict[str, Any], upload: FileStorage | None) -> dict[str, Any] | None:
    """The media, stored once for every target: an uploaded ``file`` or the ``url``."""
    url = text(fields.get("url")).strip()
    if upload is not None and upload.filename:
        stored = media.from_upload(upload)
    elif url:
        stored = media.from_url(url)
    else:
        return None
    filename = text(fields.get("filename")).strip() or stored.filename
    return {
        "kind": _kind_of(stored.mimetype),
        "media": {"sha256": stored.sha256, "mimetype": stored.mimetype, "filename": filename},
    }


def _quoted(session: WaSession, inboxid: str) -> str | None:
    """``inboxid`` (from an inbound webhook) -> the message to quote."""
    if not inboxid.strip() or inboxid.strip() == "0":
        return None
    row = None
    if inboxid.strip().isdigit():
        row = db.session.scalar(
            sa.select(Message).where(Message.session_id == session.id, Message.seq == int(inboxid))
        )
    if row is None:
        raise Refused(f"inboxid invalid: no message {inboxid} in this device's inbox.")
    return row.id


def _specs(
    fields: dict[str, Any], attachment: dict[str, Any] | None, message: str
) -> list[dict[str, Any]]:
    """What to send to one target, in order; the last one is the one fonnte counts."""
    choices = [c.strip() for c in text(fields.get("choices")).split(",") if c.strip()]
    pollname = text(fields.get("pollname")).strip()
    where = text(fields.get("location")).strip()
    lead = [{"type": "text", "text": message}] if message.strip() else []
    if where:
        return [*lead, {"type": "location", "location": location(where)}]
    if choices:
        if not 2 <= len(choices) <= 12:
            raise Refused("choices invalid: a poll has 2 to 12 choices, separated by commas.")
        select = text(fields.get("select")).strip().lower() or "single"
        if select not in ("single", "multiple"):
            raise Refused("select invalid: single or multiple.")
        name = pollname or message.strip()
        if not name:
            raise Refused("pollname invalid: give pollname (or a message) to name the poll.")
        poll = {"question": name[:255], "options": choices, "multiple": select == "multiple"}
        return [*(lead if pollname else []), {"type": "poll", "poll": poll}]
    if attachment is not None:
        spec = {"type": attachment["kind"], "media": attachment["media"]}
        if attachment["kind"] == "audio":  # WhatsApp audio carries no caption
            return [*lead, spec]
        return [{**spec, "text": message}]
    if not message.strip():
        raise Refused("message invalid: give a message, a url or file, a location or a poll.")
    return lead


def send(
    session: WaSession, fields: dict[str, Any], *, region: str, upload: FileStorage | None = None
) -> Queued:
    """Queue fonnte's ``send`` request; all targets or none."""
    followup = text(fields.get("followup")).strip()
    if followup not in ("", "0"):
        raise Refused("followup is not supported by Kabar; send without it (docs/fonnte.md).")
    if flag(fields.get("connectOnly")) and session.status != "connected":
        raise Refused("device disconnected: connectOnly asks to send only while it is connected.")
    country = text(fields.get("countryCode")).strip() or DEFAULT_COUNTRY_CODE
    valid, invalid = targets(text(fields.get("target")), country, region)
    if not valid:
        raise Refused(
            "target invalid"
            + (f": {', '.join(invalid[:5])}" if invalid else ": give at least one number.")
        )
    if len(valid) > MAX_TARGETS:
        raise Refused(f"target invalid: at most {MAX_TARGETS} targets per request.")
    offsets = delays(text(fields.get("delay")), len(valid))
    start = schedule(text(fields.get("schedule")))
    typing = flag(fields.get("typing"))
    reply_to = _quoted(session, text(fields.get("inboxid")))
    attachment = _attachment(fields, upload)
    message = text(fields.get("message"))
    _specs(fields, attachment, message)  # refuse a bad request before anything is queued
    broadcast = None
    if len(valid) > 1:
        broadcast = Broadcast(session_id=session.id, name="fonnte send", total=len(valid))
        db.session.add(broadcast)
        db.session.flush()
    base = start or utcnow()
    ids: list[int] = []
    for target, offset in zip(valid, offsets, strict=True):
        send_at = base + timedelta(seconds=offset) if (start or offset) else None
        row = None
        for spec in _specs(fields, attachment, render(message, target.fields)):
            spec = {**spec, "to": target.jid, "send_at": send_at.isoformat() if send_at else None}
            if typing is not None:
                spec["typing"] = typing
            if reply_to and row is None:
                spec["reply_to"] = reply_to
            row, _created = outbox.send(
                session,
                spec,
                source=SOURCE,
                commit=False,
                broadcast_id=broadcast.id if broadcast else None,
            )
        db.session.flush()
        assert row is not None
        ids.append(row.seq)
    db.session.commit()
    wakeup.notify()
    return Queued(
        ids=ids, targets=[t.shown for t in valid], requestid=ids[0], scheduled=start is not None
    )


def answer(queued: Queued) -> dict[str, Any]:
    """fonnte's success answer."""
    return {
        "detail": "success! message in queue",
        "id": queued.ids,
        "process": "waiting" if queued.scheduled else "pending",
        "requestid": queued.requestid,
        "status": True,
        "target": queued.targets,
    }


def outbox_row(session: WaSession, ident: Any) -> OutboxMessage | None:
    """The message fonnte's ``id`` names, in this session only."""
    value = text(ident).strip()
    if not value.isdigit() or int(value) > 2**63 - 1:
        return None
    return db.session.scalar(
        sa.select(OutboxMessage).where(
            OutboxMessage.session_id == session.id, OutboxMessage.seq == int(value)
        )
    )
