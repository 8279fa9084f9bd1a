"""What the runtime does for the sandbox controls (server/sandbox_controls.py): scan the
QR, speak, call and vote as a contact, act on groups, load history, inject faults. Each
refuses a session that is not a sandbox one."""

from __future__ import annotations

import base64
import logging
import os
from datetime import datetime
from typing import TYPE_CHECKING

from server.events import Location
from server.models import RuntimeCommand
from server.runtime import commands
from server.runtime.handlers.registry import handles
from server.whatsapp.jids import normalise_phone, to_jid
from server.whatsapp.transport import TransportError

if TYPE_CHECKING:
    from server.runtime.process import Runtime

# The commands this module answers; the web asks through server/runtime/live.py.
SANDBOX_SCAN = "sandbox.scan"
SANDBOX_INJECT = "sandbox.inject"
SANDBOX_CALL = "sandbox.call"
SANDBOX_HISTORY = "sandbox.history"
SANDBOX_GROUP_PARTICIPANTS = "sandbox.group_participants"
SANDBOX_GROUP_UPDATE = "sandbox.group_update"
SANDBOX_VOTE = "sandbox.vote"
SANDBOX_FAULT = "sandbox.fault"
log = logging.getLogger(__name__)


def _sandbox_transport(runtime: Runtime, command: RuntimeCommand):
    transport = runtime.transport_for(command)
    if transport.name != "sandbox":
        raise TransportError("This is not a sandbox session.", code="not_sandbox", permanent=True)
    return transport


@handles(SANDBOX_SCAN, pool=True)
def _sandbox_scan(runtime: Runtime, command: RuntimeCommand) -> dict:
    phone = normalise_phone(command.payload["phone"], runtime.region)
    identity = _sandbox_transport(runtime, command).scan(
        phone=phone, push_name=command.payload.get("push_name", "")
    )
    return identity.__dict__


@handles(SANDBOX_INJECT, pool=True)
def _sandbox_inject(runtime: Runtime, command: RuntimeCommand) -> dict:
    payload = command.payload
    media = None
    if payload.get("media"):
        m = payload["media"]
        media = (base64.b64decode(m["data"]), m["mimetype"], m.get("filename"))
    location = Location(**payload["location"]) if payload.get("location") else None
    message = _sandbox_transport(runtime, command).inject(
        sender=normalise_phone(payload["from"], runtime.region),
        name=payload.get("name", ""),
        text=payload.get("text", ""),
        kind=payload.get("kind", "text"),
        media=media,
        location=location,
        quoted_id=payload.get("quoted_id"),
        group=payload.get("group"),
    )
    return {"message_id": message.id}


@handles(SANDBOX_CALL, pool=True)
def _sandbox_call(runtime: Runtime, command: RuntimeCommand) -> dict:
    p = command.payload
    call = _sandbox_transport(runtime, command).call(
        caller=normalise_phone(p["from"], runtime.region),
        name=p.get("name", ""),
        video=bool(p.get("video")),
    )
    return {"call_id": call.call_id, "caller": call.caller.jid}


@handles(SANDBOX_HISTORY, pool=True)
def _sandbox_history(runtime: Runtime, command: RuntimeCommand) -> list[str]:
    messages = []
    for m in command.payload["messages"]:
        m = dict(m, **{"from": normalise_phone(m["from"], runtime.region)})
        if m.get("timestamp"):
            m["timestamp"] = datetime.fromisoformat(m["timestamp"])
        messages.append(m)
    return _sandbox_transport(runtime, command).history(messages)


@handles(SANDBOX_GROUP_PARTICIPANTS, pool=True)
def _sandbox_group_participants(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    p = command.payload
    return _sandbox_transport(runtime, command).contact_participants(
        actor=normalise_phone(p["from"], runtime.region),
        name=p.get("name", ""),
        group=p["group"],
        participants=[to_jid(t, runtime.region) for t in p["participants"]],
        action=p["action"],
    )


@handles(SANDBOX_GROUP_UPDATE, pool=True)
def _sandbox_group_update(runtime: Runtime, command: RuntimeCommand) -> list[str]:
    p = command.payload
    return _sandbox_transport(runtime, command).contact_update_group(
        actor=normalise_phone(p["from"], runtime.region),
        name=p.get("name", ""),
        group=p["group"],
        changes=p["changes"],
    )


@handles(SANDBOX_VOTE, pool=True)
def _sandbox_vote(runtime: Runtime, command: RuntimeCommand) -> dict:
    p = command.payload
    vote = _sandbox_transport(runtime, command).vote(
        voter=normalise_phone(p["from"], runtime.region),
        name=p.get("name", ""),
        poll_id=p["poll_id"],
        chat=p["chat"],
        options=list(p["options"]),
    )
    return {"poll_id": vote.poll_id, "voter": vote.voter.jid, "options": list(vote.options)}


@handles(SANDBOX_FAULT)
def _sandbox_fault(runtime: Runtime, command: RuntimeCommand) -> None:
    kind = command.payload["kind"]
    if kind == "crash":
        # Answer first, or the restarted runtime would run this command again.
        commands.finish(command, result={"crashing": True})
        log.warning("sandbox fault: crashing the runtime process on request")
        os._exit(70)
    _sandbox_transport(runtime, command).fault(kind, int(command.payload.get("count", 1)))
