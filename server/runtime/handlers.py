"""What the runtime does for each command the web sends (see commands.py).

Each handler is registered with ``@handles(kind)``; ``pool=True`` runs it on the
look-up pool (it may wait on the network and never starts or stops a transport: logout
and pair codes too, which can take seconds on a real client, longer than the control
thread may go without renewing its lease), the others run on the control thread, one at
a time. Handlers raise TransportError (or
ValueError/InvalidPhone for bad input); the runtime turns that into the answer.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from server.events import Location
from server.models import RuntimeCommand
from server.runtime import commands
from server.whatsapp.jids import normalise_phone, to_jid
from server.whatsapp.transport import TransportError

if TYPE_CHECKING:
    from server.runtime.process import Runtime

log = logging.getLogger(__name__)

Handler = Callable[["Runtime", RuntimeCommand], Any]
HANDLERS: dict[str, Handler] = {}
ON_POOL: set[str] = set()


def handles(kind: str, *, pool: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[kind] = handler
        if pool:
            ON_POOL.add(kind)
        return handler

    return register


@handles("restart")
def _restart_command(runtime: Runtime, command: RuntimeCommand) -> None:
    runtime.restart(command.session_id, reason="restarted by request")


@handles("logout", pool=True)
def _logout(runtime: Runtime, command: RuntimeCommand) -> None:
    runtime.transport_for(command).logout()


@handles("pair_code", pool=True)
def _pair_code(runtime: Runtime, command: RuntimeCommand) -> dict:
    phone = normalise_phone(command.payload["phone"], runtime.region)
    code, expires_at = runtime.transport_for(command).pair_code(phone)
    return {"code": code, "expires_at": expires_at.isoformat()}


@handles("is_on_whatsapp", pool=True)
def _is_on_whatsapp(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    phones = [normalise_phone(p, runtime.region) for p in command.payload["phones"]]
    return [r.__dict__ for r in runtime.transport_for(command).is_on_whatsapp(phones)]


@handles("profile_picture", pool=True)
def _profile_picture(runtime: Runtime, command: RuntimeCommand) -> str | None:
    jid = to_jid(command.payload["target"], runtime.region)
    return runtime.transport_for(command).profile_picture(jid)


@handles("user_info", pool=True)
def _user_info(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    jids = [to_jid(t, runtime.region) for t in command.payload["targets"]]
    return runtime.transport_for(command).user_info(jids)


@handles("lid_lookup", pool=True)
def _lid_lookup(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    jids = [to_jid(t, runtime.region) for t in command.payload["targets"]]
    return runtime.transport_for(command).lid_lookup(jids)


@handles("reject_call", pool=True)
def _reject_call(runtime: Runtime, command: RuntimeCommand) -> None:
    p = command.payload
    runtime.transport_for(command).reject_call(p["call_id"], to_jid(p["caller"],
                                                                   runtime.region))


@handles("groups", pool=True)
def _groups(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    return [g.__dict__ | {"participants": list(g.participants)}
            for g in runtime.transport_for(command).groups()]


@handles("contacts", pool=True)
def _contacts(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    """The address book as the device synced it; the web stores it (server.directory)."""
    transport = runtime.transport_for(command)
    if not hasattr(transport, "contacts"):
        raise TransportError(f"The {transport.name} transport does not read the phone's "
                             "address book yet; contacts come from chats only.",
                             code="not_supported", permanent=True)
    return [entry.__dict__ for entry in transport.contacts()]


def _sandbox_transport(runtime: Runtime, command: RuntimeCommand):
    transport = runtime.transport_for(command)
    if transport.name != "sandbox":
        raise TransportError("This is not a sandbox session.", code="not_sandbox",
                             permanent=True)
    return transport


@handles("sandbox.scan", pool=True)
def _sandbox_scan(runtime: Runtime, command: RuntimeCommand) -> dict:
    phone = normalise_phone(command.payload["phone"], runtime.region)
    identity = _sandbox_transport(runtime, command).scan(
        phone=phone, push_name=command.payload.get("push_name", ""))
    return identity.__dict__


@handles("sandbox.inject", pool=True)
def _sandbox_inject(runtime: Runtime, command: RuntimeCommand) -> dict:
    payload = command.payload
    media = None
    if payload.get("media"):
        m = payload["media"]
        media = (base64.b64decode(m["data"]), m["mimetype"], m.get("filename"))
    location = Location(**payload["location"]) if payload.get("location") else None
    message = _sandbox_transport(runtime, command).inject(
        sender=normalise_phone(payload["from"], runtime.region), name=payload.get("name", ""),
        text=payload.get("text", ""), kind=payload.get("kind", "text"), media=media,
        location=location, quoted_id=payload.get("quoted_id"), group=payload.get("group"))
    return {"message_id": message.id}


@handles("sandbox.call", pool=True)
def _sandbox_call(runtime: Runtime, command: RuntimeCommand) -> dict:
    p = command.payload
    call = _sandbox_transport(runtime, command).call(
        caller=normalise_phone(p["from"], runtime.region), name=p.get("name", ""),
        video=bool(p.get("video")))
    return {"call_id": call.call_id, "caller": call.caller.jid}


@handles("sandbox.history", pool=True)
def _sandbox_history(runtime: Runtime, command: RuntimeCommand) -> list[str]:
    messages = []
    for m in command.payload["messages"]:
        m = dict(m, **{"from": normalise_phone(m["from"], runtime.region)})
        if m.get("timestamp"):
            m["timestamp"] = datetime.fromisoformat(m["timestamp"])
        messages.append(m)
    return _sandbox_transport(runtime, command).history(messages)


@handles("sandbox.group_participants", pool=True)
def _sandbox_group_participants(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    p = command.payload
    return _sandbox_transport(runtime, command).contact_participants(
        actor=normalise_phone(p["from"], runtime.region), name=p.get("name", ""),
        group=p["group"], participants=[to_jid(t, runtime.region) for t in p["participants"]],
        action=p["action"])


@handles("sandbox.group_update", pool=True)
def _sandbox_group_update(runtime: Runtime, command: RuntimeCommand) -> list[str]:
    p = command.payload
    return _sandbox_transport(runtime, command).contact_update_group(
        actor=normalise_phone(p["from"], runtime.region), name=p.get("name", ""),
        group=p["group"], changes=p["changes"])


@handles("sandbox.vote", pool=True)
def _sandbox_vote(runtime: Runtime, command: RuntimeCommand) -> dict:
    p = command.payload
    vote = _sandbox_transport(runtime, command).vote(
        voter=normalise_phone(p["from"], runtime.region), name=p.get("name", ""),
        poll_id=p["poll_id"], chat=p["chat"], options=list(p["options"]))
    return {"poll_id": vote.poll_id, "voter": vote.voter.jid, "options": list(vote.options)}


@handles("sandbox.fault")
def _sandbox_fault(runtime: Runtime, command: RuntimeCommand) -> None:
    kind = command.payload["kind"]
    if kind == "crash":
        # Answer first, or the restarted runtime would run this command again.
        commands.finish(command, result={"crashing": True})
        log.warning("sandbox fault: crashing the runtime process on request")
        os._exit(70)
    _sandbox_transport(runtime, command).fault(kind, int(command.payload.get("count", 1)))


@handles("star", pool=True)
def _star(runtime: Runtime, command: RuntimeCommand) -> None:
    p = command.payload
    runtime.transport_for(command).star(p["chat"], p["sender"], p["message_id"], p["starred"])
from server.runtime import group_handlers  # noqa: E402, F401  (registers handlers)
