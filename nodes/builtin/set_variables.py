"""``set``: remember values in the run's variables."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from nodes.base import Node, ParamsSchema, Result
from nodes.context import NodeContext


class SetParams(ParamsSchema):
    variables = ma.fields.Dict(
        keys=ma.fields.String(
            validate=ma.validate.Regexp(
                r"^[A-Za-z_][A-Za-z0-9_]*$", error="Variable names are letters, digits and _."
            )
        ),
        values=ma.fields.Raw(allow_none=True),
        required=True,
        validate=ma.validate.Length(min=1),
        metadata={"description": 'name: value or template, e.g. {"name": "{{ args[0] }}"}.'},
    )


class SetVariables(Node):
    """Set run variables, read later as ``{{ vars.name }}``.

    Values are templates; a value that is one ``{{ expression }}`` keeps its type (a list
    stays a list). All values are rendered before any is set, so a value cannot use a
    variable set by the same node. Variables live as long as the run, across waits.
    Data: the variables set.
    """

    type = "set"
    version = 1
    Params = SetParams
    outputs = ("next",)

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        ctx.vars.update(params["variables"])
        return Result("next", dict(params["variables"]))
