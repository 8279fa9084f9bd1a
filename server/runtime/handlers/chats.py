"""Runtime commands for chats: read receipts and presence, what /api/v1/sessions/{id}/chats
asks of a live transport. Both run on the look-up pool; a bad payload raises ValueError,
answered as ``invalid_input``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.models import RuntimeCommand
from server.runtime.handlers.registry import handles
from server.whatsapp.jids import to_jid

if TYPE_CHECKING:
    from server.runtime.process import Runtime

# The commands this module answers; the web asks through server/runtime/live.py.
CHATS_MARK_READ = "chats.mark_read"
CHATS_PRESENCE = "chats.presence"

PRESENCE_STATES = ("composing", "recording", "paused")


@handles(CHATS_MARK_READ, pool=True)
def _mark_read(runtime: Runtime, command: RuntimeCommand) -> int:
    """Send read receipts: WhatsApp takes them per sender (in a group, each author's
    messages are one receipt). Answers how many messages were marked."""
    chat = to_jid(str(command.payload.get("chat", "")), runtime.region)
    transport = runtime.transport_for(command)
    marked = 0
    for receipt in command.payload.get("receipts", []):
        ids = [str(i) for i in receipt.get("ids", [])]
        if ids:
            transport.mark_read(chat, to_jid(str(receipt["sender"]), runtime.region), ids)
            marked += len(ids)
    return marked


@handles(CHATS_PRESENCE, pool=True)
def _presence(runtime: Runtime, command: RuntimeCommand) -> None:
    state = command.payload.get("state")
    if state not in PRESENCE_STATES:
        raise ValueError(f"state must be one of {', '.join(PRESENCE_STATES)}.")
    chat = to_jid(str(command.payload.get("chat", "")), runtime.region)
    runtime.transport_for(command).presence(chat, state)
