"""``respond``: answer the HTTP caller of a hook-triggered workflow."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from nodes.base import Node, ParamsSchema, Result
from nodes.context import NodeContext
from nodes.fields import Text


class RespondParams(ParamsSchema):
    status = ma.fields.Integer(load_default=200, validate=ma.validate.Range(100, 599))
    json = ma.fields.Raw(
        load_default=None,
        allow_none=True,
        metadata={"description": 'A JSON body, e.g. {"message_id": "{{ send_otp.id }}"}.'},
    )
    body = Text(load_default=None, metadata={"description": "A text body."})
    headers = ma.fields.Dict(keys=ma.fields.String(), values=Text(), load_default=dict)

    @ma.validates_schema
    def _one_body(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("json") is not None and data.get("body") is not None:
            raise ma.ValidationError({"body": ["Give json or body, not both."]})


class Respond(Node):
    """Answer the HTTP request that started the run (``POST /api/v1/hooks/{workflow}``).

    Like n8n's Respond to Webhook: a quick workflow answers its caller with its result
    (``status``, and ``json`` or ``body``). The run goes on after it. A hook run that never
    reaches ``respond`` answers 202 with the run id. Data: ``status``.
    """

    type = "respond"
    version = 1
    Params = RespondParams
    outputs = ("next",)

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        ctx.respond(
            status=params["status"],
            headers=params["headers"],
            body=params["body"],
            json=params["json"],
        )
        return Result("next", {"status": params["status"]})
