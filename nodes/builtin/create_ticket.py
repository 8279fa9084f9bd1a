"""``create_ticket``: turn a report into a ticket with a tracking number."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from nodes.base import Node, ParamsSchema, Result
from nodes.builtin import _helpdesk
from nodes.context import NodeContext
from nodes.fields import Text


class CreateTicketParams(ParamsSchema):
    text = Text(
        required=True,
        validate=ma.validate.Length(0, 4096),
        metadata={"description": "What the reporter wrote, e.g. {{ trigger.rest }}."},
    )
    category = Text(
        load_default="request",
        metadata={"description": "A word that sorts tickets (request, complaint…)."},
    )
    reporter = Text(
        load_default=None,
        metadata={
            "description": "Who reports: a phone number. Default: the sender (reporting for "
            "someone else is for staff who manage, and for runs without a "
            "sender)."
        },
    )
    name = Text(
        load_default=None,
        metadata={
            "description": "The reporter's name when they are not in the people directory "
            "(default: their WhatsApp name)."
        },
    )
    photo = Text(
        load_default=None,
        metadata={
            "description": "The id of a stored message whose media is the photo. Default: the "
            "message that started the run, when it carries one."
        },
    )


class CreateTicket(Node):
    """Create a helpdesk ticket from a report; its tracking number comes back.

    The reporter is the sender (matched to the people directory by phone) and the ticket
    remembers the session and chat, so later notifications go back there. A photo sent
    with the command (``#request`` as an image caption) becomes the ticket's photo.

    Outputs: ``created`` (data ``ticket``: ``number``, ``status``, ``reporter``…, e.g.
    ``{{ create.ticket.number }}``); ``refused`` (the sender is not in the people directory
    and guests may not report, or may not report for someone else); ``invalid`` (no text).
    Refusals carry ``code`` and ``message``. Needs a Kabar gateway.
    """

    type = "create_ticket"
    version = 1
    Params = CreateTicketParams
    outputs = ("created", "refused", "invalid")

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        return _helpdesk.call(
            ctx,
            self.outputs,
            "create",
            params,
            success="created",
            overrides={"ticket_not_allowed": "refused"},
        )
