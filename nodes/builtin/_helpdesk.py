"""What the ticket nodes share: one call to the gateway's helpdesk (``Context.tickets``)
and its refusals turned into outputs.

The host refuses with an exception carrying a stable ``code`` (the gateway's error
codes, see docs/helpdesk.md); each code maps to an output such as ``missing`` or
``forbidden``, so a workflow answers a wrong number with a warning instead of failing.
A code the node has no output for, or a failure without a code, stays an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma

from nodes.base import Result
from nodes.context import NodeContext
from nodes.errors import NodeError
from nodes.fields import Text

REFUSALS: dict[str, str] = {
    "ticket_not_found": "missing",
    "ticket_not_allowed": "forbidden",
    "invalid_transition": "invalid",
    "validation_error": "invalid",
    "staff_not_found": "invalid",
    "staff_inactive": "invalid",
    "reporter_not_registered": "refused",
}


def number_field() -> Text:
    return Text(
        load_default=None,
        validate=ma.validate.Length(0, 64),
        metadata={
            "description": "The tracking number as typed (BRT2409001, #brt2409001); a missing "
            "or unknown one takes the missing output."
        },
    )


def call(
    ctx: NodeContext,
    outputs: tuple[str, ...],
    action: str,
    params: dict[str, Any],
    *,
    success: str,
    overrides: Mapping[str, str] | None = None,
) -> Result:
    """``ctx.tickets(action, params)``: ``success`` with the answer, or the output its
    refusal maps to, with ``code`` and ``message`` in the data."""
    try:
        answer = ctx.tickets(action, {k: v for k, v in params.items() if v is not None})
    except Exception as exc:
        code = getattr(exc, "code", None)
        if not isinstance(code, str):
            raise
        message = str(getattr(exc, "message", "") or exc)
        output = {**REFUSALS, **(overrides or {})}.get(code)
        data = {"code": code, "message": message, "number": params.get("number")}
        if output not in outputs:
            raise NodeError(
                f"the helpdesk refused {action}: {message} ({code})", data=data, retryable=False
            ) from exc
        return Result(output, data)
    return Result(success, answer)
