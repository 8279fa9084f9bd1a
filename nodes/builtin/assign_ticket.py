"""``assign_ticket``: give a ticket to a staff member."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from nodes.base import Node, ParamsSchema, Result
from nodes.builtin import _helpdesk
from nodes.context import NodeContext
from nodes.fields import Text


class AssignTicketParams(ParamsSchema):
    number = _helpdesk.number_field()
    assignee = Text(
        required=True,
        metadata={"description": "The staff member: their phone, username or user id."},
    )
    note = Text(
        load_default=None,
        validate=ma.validate.Length(0, 4096),
        metadata={"description": "The instruction for them (catatan)."},
    )


class AssignTicket(Node):
    """Assign a ticket to a staff member (a field officer, TBO), with a note.

    The sender must be staff who manage (Administrator or Staf); a run without a sender
    acts for the workflow. Assigning again replaces the previous assignee. The gateway
    records ``ticket.assigned``, which a notification workflow can trigger on.

    Outputs: ``assigned`` (data ``ticket``, with ``assignee``: ``name``, ``phone``);
    ``missing`` (no such ticket); ``forbidden`` (the sender may not assign); ``invalid``
    (no such or an inactive staff member, or the ticket is done). Refusals carry ``code``
    and ``message``. Needs a Kabar gateway.
    """

    type = "assign_ticket"
    version = 1
    Params = AssignTicketParams
    outputs = ("assigned", "missing", "forbidden", "invalid")

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        return _helpdesk.call(ctx, self.outputs, "assign", params, success="assigned")
