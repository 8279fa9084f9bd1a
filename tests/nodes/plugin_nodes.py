"""A third-party node package, as a plugin author would write one (for test_registry)."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from nodes import Node, NodeContext, ParamsSchema, Result, Text


class GreetParams(ParamsSchema):
    name = Text(required=True, metadata={"description": "Who to greet."})


class Greet(Node):
    """Greet someone in the chat."""

    type = "acme.greet"
    Params = GreetParams
    outputs = ("next",)

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        return Result("next", ctx.send({"to": ctx.chat, "text": f"Hi {params['name']}!"}))


class ScoreParams(ParamsSchema):
    value = ma.fields.Integer(required=True)


class Score(Node):
    """Sort a score into good or bad."""

    type = "acme.score"
    Params = ScoreParams
    outputs = ("good", "bad")

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        return Result("good" if params["value"] >= 3 else "bad", {"value": params["value"]})


NODES = [Score]
