"""``update_ticket``: move a ticket along: start, progress, finish, confirm, reopen…"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from nodes.base import Node, ParamsSchema, Result
from nodes.builtin import _helpdesk
from nodes.context import NodeContext
from nodes.fields import Text

ACTIONS = ("start", "progress", "finish", "confirm", "reopen", "hold", "note")


class UpdateTicketParams(ParamsSchema):
    number = _helpdesk.number_field()
    action = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(ACTIONS),
        metadata={
            "description": "start, progress (a report on the work), finish, confirm (the "
            "reporter agrees it is done), reopen, hold (pending) or note."
        },
    )
    note = Text(
        load_default=None,
        validate=ma.validate.Length(0, 4096),
        metadata={"description": "What was done or why; progress needs a note or a photo."},
    )
    photo = Text(
        load_default=None,
        metadata={
            "description": "progress and finish: the id of a stored message whose media is the "
            "photo. Default: the message that started the run, when it carries "
            "one."
        },
    )


class UpdateTicket(Node):
    """Record a step on a ticket: ``#start``, ``#report``, ``#finish``, ``#selesai``.

    The assignee starts, reports progress, holds and finishes their ticket; the reporter
    confirms or reopens theirs; staff who manage (and runs without a sender) may do all.
    Each step is a ``ticket.*`` gateway event that notification workflows can follow.

    Outputs: ``updated`` (data ``ticket``); ``missing`` (no such ticket); ``forbidden``
    (not the sender's ticket to change); ``invalid`` (the status does not allow it, e.g.
    finishing a confirmed ticket, or progress without a note). Refusals carry ``code`` and
    ``message``. Needs a Kabar gateway.
    """

    type = "update_ticket"
    version = 1
    Params = UpdateTicketParams
    outputs = ("updated", "missing", "forbidden", "invalid")

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        return _helpdesk.call(ctx, self.outputs, "update", params, success="updated")
