"""``lookup_person``: who a sender is to the helpdesk."""

from __future__ import annotations

from typing import Any

from nodes.base import Node, ParamsSchema, Result
from nodes.builtin import _helpdesk
from nodes.context import NodeContext
from nodes.fields import Text


class LookupPersonParams(ParamsSchema):
    phone = Text(
        load_default=None, metadata={"description": "A phone number (default: the sender)."}
    )


class LookupPerson(Node):
    """Tell who a sender is to the helpdesk: staff (with a level), a person, or unknown.

    Staff are matched by the phone in their staff profile, people by the people directory.

    Data: ``kind``, ``phone``, ``name``, ``manages`` (staff at Administrator or Staf level),
    ``staff`` (``level``: administrator, staff or tbo…) and ``person`` (``id``,
    ``department``, ``unit``…), e.g. ``{{ who.staff.level }}``. Inactive staff count as
    what else they are.

    Outputs: ``staff``, ``person``, ``unknown``. Needs a Kabar gateway.
    """

    type = "lookup_person"
    version = 1
    Params = LookupPersonParams
    outputs = ("staff", "person", "unknown")

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        answer = _helpdesk.call(ctx, self.outputs, "person", params, success="unknown").data
        return Result(answer["kind"], answer)
