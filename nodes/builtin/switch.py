"""``switch``: many ways, the first matching case wins."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma

from nodes.base import ERROR, Node, ParamsSchema, Result
from nodes.context import NodeContext
from nodes.fields import Expression

OUTPUT_NAME = ma.validate.And(
    ma.validate.Regexp(
        r"^[A-Za-z_][A-Za-z0-9_]*$",
        error="Output names are letters, digits and _ (like vip_customer).",
    ),
    ma.validate.NoneOf([ERROR], error="'error' is every node's error output; pick another name."),
)


class CaseParams(ParamsSchema):
    when = Expression(required=True, metadata={"description": "A Jinja2 expression."})
    output = ma.fields.String(
        required=True,
        validate=OUTPUT_NAME,
        metadata={"description": "The output taken when this case is the first to hold."},
    )


class SwitchParams(ParamsSchema):
    cases = ma.fields.List(
        ma.fields.Nested(CaseParams), required=True, validate=ma.validate.Length(1, 100)
    )
    default = ma.fields.String(
        load_default="default",
        validate=OUTPUT_NAME,
        metadata={"description": "The output taken when no case holds."},
    )


class Switch(Node):
    """Go along the output of the first case whose condition holds, else ``default``.

    A switch's outputs are declared by the workflow node itself: each case names its
    output, and ``next`` wires those names (and the default) to nodes::

        "params": {"cases": [{"when": "trigger.text == '1'", "output": "sales"},
                             {"when": "trigger.text == '2'", "output": "support"}],
                   "default": "menu"},
        "next": {"sales": "to_sales", "support": "to_support", "menu": "show_menu"}

    Conditions are bare Jinja2 expressions, as in ``branch``. Data: ``output`` and
    ``case`` (the index of the case that held, or null).
    """

    type = "switch"
    version = 1
    Params = SwitchParams
    outputs = ()
    raw_params = ("cases", "default")

    @classmethod
    def outputs_for(cls, params: Mapping[str, Any]) -> tuple[str, ...] | None:
        cases = params.get("cases")
        default = params.get("default", "default")
        if not isinstance(cases, list) or not isinstance(default, str):
            return None
        names = [
            case["output"]
            for case in cases
            if isinstance(case, dict) and isinstance(case.get("output"), str)
        ]
        return tuple(dict.fromkeys([*names, default]))

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        for index, case in enumerate(params["cases"]):
            if ctx.truthy(case["when"]):
                return Result(case["output"], {"output": case["output"], "case": index})
        return Result(params["default"], {"output": params["default"], "case": None})
