"""``call_workflow``: run another workflow as one step."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from nodes.base import Node, ParamsSchema, Result
from nodes.context import NodeContext
from nodes.errors import NodeError
from nodes.fields import Text


class CallWorkflowParams(ParamsSchema):
    name = Text(required=True, metadata={"description": "The workflow to run."})
    input = ma.fields.Dict(
        keys=ma.fields.String(),
        load_default=dict,
        metadata={"description": "Its trigger data: {{ trigger.input.x }} in the called workflow."},
    )


class CallWorkflow(Node):
    """Run the workflow ``name`` with ``input`` and wait for its end.

    The called workflow sees ``trigger.input`` (and the caller's chat and session), and
    its ``end`` node's ``result`` comes back: data ``status``, ``result``, ``vars``,
    ``run_id``. A called workflow that fails sends this node to ``error``.
    """

    type = "call_workflow"
    version = 1
    Params = CallWorkflowParams
    outputs = ("next",)

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        answer = ctx.call_workflow(params["name"], params["input"])
        if answer.get("status") == "failed":
            raise NodeError(
                f"workflow {params['name']!r} failed: {answer.get('error')}",
                data=answer,
                retryable=False,
            )
        return Result("next", answer)
