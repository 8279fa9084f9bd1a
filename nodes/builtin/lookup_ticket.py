"""``lookup_ticket``: where a ticket stands, and its history."""

from __future__ import annotations

from typing import Any

from nodes.base import Node, ParamsSchema, Result
from nodes.builtin import _helpdesk
from nodes.context import NodeContext


class LookupTicketParams(ParamsSchema):
    number = _helpdesk.number_field()


class LookupTicket(Node):
    """Look a ticket up by its tracking number: for ``cek`` and ``track``.

    Data ``ticket``: its fields, ``created_local`` (helpdesk time), ``last_update`` (the
    latest step with a note: ``note``, ``at_local``; what ``cek`` answers) and ``history``
    (every step, oldest first: what ``track`` answers), e.g.
    ``{{ lookup.ticket.last_update.note }}``.

    Outputs: ``found``; ``missing`` (no such ticket, or no number given); ``forbidden``
    (the sender is neither its reporter, its assignee nor helpdesk staff). Needs a Kabar
    gateway.
    """

    type = "lookup_ticket"
    version = 1
    Params = LookupTicketParams
    outputs = ("found", "missing", "forbidden")

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        return _helpdesk.call(ctx, self.outputs, "lookup", params, success="found")
