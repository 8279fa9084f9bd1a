"""``delay``: pause the run for a while, or until a time."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import marshmallow as ma

from nodes.base import Event, Node, ParamsSchema, Result, Wait
from nodes.context import NodeContext


class DelayParams(ParamsSchema):
    seconds = ma.fields.Float(
        load_default=None,
        validate=ma.validate.Range(0, 366 * 86400),
        metadata={"description": "How long to pause."},
    )
    until = ma.fields.AwareDateTime(
        load_default=None, metadata={"description": "Pause until this time (ISO 8601 with a zone)."}
    )

    @ma.validates_schema
    def _one_of(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if (data.get("seconds") is None) == (data.get("until") is None):
            raise ma.ValidationError("Give seconds or until (one of them).")


class Delay(Node):
    """Pause the run for ``seconds``, or until the time ``until``.

    The run is stored while it waits (nothing sleeps), so a pause of days survives
    restarts. A time already past goes on at once. Data: ``until``, when it went on.
    """

    type = "delay"
    version = 1
    Params = DelayParams
    outputs = ("next",)

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result | Wait:
        now = ctx.now()
        due = params["until"] or now + timedelta(seconds=params["seconds"])
        if due <= now:
            return Result("next", {"until": due.isoformat()})
        return Wait("until", until=due, state={"until": due.isoformat()})

    def resume(
        self, ctx: NodeContext, params: dict[str, Any], state: dict[str, Any], event: Event
    ) -> Result:
        return Result("next", {"until": state["until"]})
