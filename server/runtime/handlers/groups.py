"""Runtime commands for groups: what /api/v1/sessions/{id}/groups asks of a live transport.

All run on the look-up pool: each is one request to WhatsApp and none starts or stops a
transport. The web has validated the request already; these checks stay light and
repeat only what keeps a bad payload from reaching WhatsApp (a person where a group is
meant, an unknown action), raising ValueError, which the runtime answers as
``invalid_input``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.models import RuntimeCommand
from server.runtime.handlers.registry import handles
from server.whatsapp.jids import GROUP_SERVER, split_jid, to_jid
from server.whatsapp.transport import GroupInfo

if TYPE_CHECKING:
    from server.runtime.process import Runtime

# The commands this module answers; the web asks through server/runtime/live.py.
GROUPS = "groups"
GROUP_INFO = "group.info"
GROUP_CREATE = "group.create"
GROUP_UPDATE = "group.update"
GROUP_INVITE_LINK = "group.invite_link"
GROUP_JOIN = "group.join"
GROUP_PARTICIPANTS = "group.participants"
GROUP_LEAVE = "group.leave"

PARTICIPANT_ACTIONS = ("add", "remove", "promote", "demote")


def group_value(group: GroupInfo) -> dict:
    """A GroupInfo as JSON for the command's result."""
    return group.__dict__ | {"participants": list(group.participants)}


def _group_jid(runtime: Runtime, command: RuntimeCommand) -> str:
    jid = to_jid(str(command.payload.get("jid", "")), runtime.region)
    if split_jid(jid)[1] != GROUP_SERVER:
        raise ValueError(f"{jid} is not a group JID (…@g.us).")
    return jid


def _people(runtime: Runtime, targets: list) -> list[str]:
    jids = [to_jid(str(t), runtime.region) for t in targets]
    groups = [jid for jid in jids if split_jid(jid)[1] == GROUP_SERVER]
    if groups:
        raise ValueError(f"Groups cannot be participants: {', '.join(groups)}.")
    return jids


@handles(GROUPS, pool=True)
def _groups(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    return [group_value(g) for g in runtime.transport_for(command).groups()]


@handles(GROUP_INFO, pool=True)
def _info(runtime: Runtime, command: RuntimeCommand) -> dict:
    transport = runtime.transport_for(command)
    return group_value(transport.group_info(_group_jid(runtime, command)))


@handles(GROUP_CREATE, pool=True)
def _create(runtime: Runtime, command: RuntimeCommand) -> dict:
    name = str(command.payload.get("name", "")).strip()
    if not name:
        raise ValueError("A group needs a name.")
    participants = _people(runtime, command.payload.get("participants", []))
    return group_value(runtime.transport_for(command).create_group(name, participants))


@handles(GROUP_UPDATE, pool=True)
def _update(runtime: Runtime, command: RuntimeCommand) -> dict:
    """Apply each setting given, in a fixed order, then answer the group as it is now.
    WhatsApp has one call per setting, so a failure part-way leaves the earlier ones
    applied; the error says which one failed."""
    jid = _group_jid(runtime, command)
    transport = runtime.transport_for(command)
    payload = command.payload
    setters = {
        "name": transport.set_group_name,
        "topic": transport.set_group_topic,
        "announce": transport.set_group_announce,
        "locked": transport.set_group_locked,
    }
    for field, setter in setters.items():
        if field in payload:
            setter(jid, payload[field])
    return group_value(transport.group_info(jid))


@handles(GROUP_INVITE_LINK, pool=True)
def _invite_link(runtime: Runtime, command: RuntimeCommand) -> str:
    transport = runtime.transport_for(command)
    return transport.group_invite_link(
        _group_jid(runtime, command), reset=bool(command.payload.get("reset"))
    )


@handles(GROUP_JOIN, pool=True)
def _join(runtime: Runtime, command: RuntimeCommand) -> dict:
    link = str(command.payload.get("link", "")).strip()
    if not link:
        raise ValueError("Give the group's invite link.")
    transport = runtime.transport_for(command)
    return group_value(transport.group_info(transport.join_group(link)))


@handles(GROUP_PARTICIPANTS, pool=True)
def _participants(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    action = command.payload.get("action")
    if action not in PARTICIPANT_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(PARTICIPANT_ACTIONS)}.")
    people = _people(runtime, command.payload.get("participants", []))
    if not people:
        raise ValueError("Name at least one participant.")
    return runtime.transport_for(command).update_participants(
        _group_jid(runtime, command), people, action
    )


@handles(GROUP_LEAVE, pool=True)
def _leave(runtime: Runtime, command: RuntimeCommand) -> None:
    runtime.transport_for(command).leave_group(_group_jid(runtime, command))
