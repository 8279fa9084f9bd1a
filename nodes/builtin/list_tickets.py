"""``list_tickets``: the open tickets of a field officer (``#job``) or of a reporter."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from nodes.base import Node, ParamsSchema, Result
from nodes.builtin import _helpdesk
from nodes.context import NodeContext
from nodes.fields import Text

STATUSES = ("new", "assigned", "in_progress", "pending", "done", "confirmed", "open")


class ListTicketsParams(ParamsSchema):
    role = ma.fields.String(
        load_default="assignee",
        validate=ma.validate.OneOf(["assignee", "reporter", "all"]),
        metadata={
            "description": "assignee: tickets assigned to them; "
            "reporter: tickets they reported; all: every ticket "
            "(staff who manage)."
        },
    )
    phone = Text(
        load_default=None,
        metadata={
            "description": "Whose tickets (default: the sender's; others' are for managers)."
        },
    )
    status = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(STATUSES)),
        load_default=None,
        metadata={
            "description": "Only these statuses (default: open ones: new, assigned, "
            "in_progress, pending)."
        },
    )
    limit = ma.fields.Integer(load_default=10, validate=ma.validate.Range(1, 50))


class ListTickets(Node):
    """List tickets: a field officer's open assignments (``#job``), or a reporter's.

    Data: ``tickets`` (oldest first, each as ``lookup_ticket`` gives it, without history),
    ``count`` (listed) and ``total`` (matching), e.g.
    ``{% for t in jobs.tickets %}{{ t.number }}: {{ t.text }}{% endfor %}``.

    Outputs: ``found``; ``empty`` (nothing matches); ``forbidden`` (the sender is not staff
    and asked for assignments, or asked for someone else's). Needs a Kabar gateway.
    """

    type = "list_tickets"
    version = 1
    Params = ListTicketsParams
    outputs = ("found", "empty", "forbidden")

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        result = _helpdesk.call(ctx, self.outputs, "list", params, success="found")
        if result.output == "found" and not result.data.get("tickets"):
            return Result("empty", result.data)
        return result
