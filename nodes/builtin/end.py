"""``end``: stop the run here."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from nodes.base import Node, ParamsSchema, Stop
from nodes.context import NodeContext
from nodes.fields import Text


class EndParams(ParamsSchema):
    status = ma.fields.String(
        load_default="completed", validate=ma.validate.OneOf(["completed", "failed"])
    )
    result = ma.fields.Raw(
        load_default=None,
        allow_none=True,
        metadata={"description": "What a caller (call_workflow, a manual run) gets back."},
    )
    reason = Text(load_default="", metadata={"description": "Why, for a failed run."})


class End(Node):
    """Stop the run, ``completed`` (the default) or ``failed`` with a ``reason``.

    A run also ends when a node's output leads nowhere; ``end`` says so explicitly and can
    hand a ``result`` back to a caller. It has no outputs.
    """

    type = "end"
    version = 1
    Params = EndParams
    outputs = ()

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Stop:
        return Stop(params["status"], params["result"], params["reason"])
