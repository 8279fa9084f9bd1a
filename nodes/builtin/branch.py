"""``branch``: two ways on one condition."""

from __future__ import annotations

from typing import Any

from nodes.base import Node, ParamsSchema, Result
from nodes.context import NodeContext
from nodes.fields import Expression


class BranchParams(ParamsSchema):
    condition = Expression(
        required=True,
        metadata={
            "description": "A Jinja2 expression, such as vars.count > 3 or "
            "now('Asia/Jakarta').hour < 17."
        },
    )


class Branch(Node):
    """Go to ``true`` or ``false`` by a condition.

    The condition is a bare Jinja2 expression over the run's data (``trigger``, ``vars``,
    ``args``, each node's output by id) and the helpers ``now(tz)`` and ``timedelta``:
    ``trigger.text | lower == 'ya'``. A missing value is false. Data: ``value``.
    """

    type = "branch"
    version = 1
    Params = BranchParams
    outputs = ("true", "false")
    raw_params = ("condition",)

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        value = ctx.truthy(params["condition"])
        return Result("true" if value else "false", {"value": value})
