"""What the runtime does for a session's own commands (restart, log out, pair by code)
and for the look-ups the web asks of a live client (is-registered, profile pictures, user
info, LIDs, the address book, rejecting a call, starring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.models import RuntimeCommand
from server.runtime.handlers.registry import handles
from server.whatsapp.jids import normalise_phone, to_jid
from server.whatsapp.transport import TransportError

if TYPE_CHECKING:
    from server.runtime.process import Runtime

# The commands this module answers; the web asks through server/runtime/live.py.
RESTART = "restart"
LOGOUT = "logout"
PAIR_CODE = "pair_code"
IS_ON_WHATSAPP = "is_on_whatsapp"
PROFILE_PICTURE = "profile_picture"
USER_INFO = "user_info"
LID_LOOKUP = "lid_lookup"
REJECT_CALL = "reject_call"
CONTACTS = "contacts"
STAR = "star"


@handles(RESTART)
def _restart_command(runtime: Runtime, command: RuntimeCommand) -> None:
    runtime.restart(command.session_id, reason="restarted by request")


@handles(LOGOUT, pool=True)
def _logout(runtime: Runtime, command: RuntimeCommand) -> None:
    runtime.transport_for(command).logout()


@handles(PAIR_CODE, pool=True)
def _pair_code(runtime: Runtime, command: RuntimeCommand) -> dict:
    phone = normalise_phone(command.payload["phone"], runtime.region)
    code, expires_at = runtime.transport_for(command).pair_code(phone)
    return {"code": code, "expires_at": expires_at.isoformat()}


@handles(IS_ON_WHATSAPP, pool=True)
def _is_on_whatsapp(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    phones = [normalise_phone(p, runtime.region) for p in command.payload["phones"]]
    return [r.__dict__ for r in runtime.transport_for(command).is_on_whatsapp(phones)]


@handles(PROFILE_PICTURE, pool=True)
def _profile_picture(runtime: Runtime, command: RuntimeCommand) -> str | None:
    jid = to_jid(command.payload["target"], runtime.region)
    return runtime.transport_for(command).profile_picture(jid)


@handles(USER_INFO, pool=True)
def _user_info(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    jids = [to_jid(t, runtime.region) for t in command.payload["targets"]]
    return runtime.transport_for(command).user_info(jids)


@handles(LID_LOOKUP, pool=True)
def _lid_lookup(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    jids = [to_jid(t, runtime.region) for t in command.payload["targets"]]
    return runtime.transport_for(command).lid_lookup(jids)


@handles(REJECT_CALL, pool=True)
def _reject_call(runtime: Runtime, command: RuntimeCommand) -> None:
    p = command.payload
    runtime.transport_for(command).reject_call(p["call_id"], to_jid(p["caller"], runtime.region))


@handles(CONTACTS, pool=True)
def _contacts(runtime: Runtime, command: RuntimeCommand) -> list[dict]:
    """The address book as the device synced it; the web stores it (server.directory)."""
    transport = runtime.transport_for(command)
    if not hasattr(transport, "contacts"):
        raise TransportError(
            f"The {transport.name} transport does not read the phone's "
            "address book yet; contacts come from chats only.",
            code="not_supported",
            permanent=True,
        )
    return [entry.__dict__ for entry in transport.contacts()]


@handles(STAR, pool=True)
def _star(runtime: Runtime, command: RuntimeCommand) -> None:
    p = command.payload
    runtime.transport_for(command).star(p["chat"], p["sender"], p["message_id"], p["starred"])
