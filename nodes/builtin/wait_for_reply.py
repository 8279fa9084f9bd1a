"""``wait_for_reply``: ask, then wait (durably) for the chat's answer."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import marshmallow as ma

from nodes.base import Event, Node, ParamsSchema, Result, Timeout, Wait
from nodes.context import NodeContext
from nodes.errors import NodeError
from nodes.fields import Text


def _compiles(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ma.ValidationError(f"Not a valid regular expression: {exc}.") from None


class WaitForReplyParams(ParamsSchema):
    timeout = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(1, 30 * 86400),
        metadata={
            "description": "Seconds to wait for an answer "
            "(again after each reprompt); then the run takes "
            "the timeout output."
        },
    )
    prompt = Text(load_default=None, metadata={"description": "Sent first: the question."})
    pattern = Text(
        load_default=None,
        validate=_compiles,
        metadata={
            "description": "A regular expression the whole (trimmed) reply must match, such as "
            "^[1-5]$ or (?i)yes|no; any other reply is invalid."
        },
    )
    reprompt = Text(
        load_default=None,
        metadata={"description": "Sent after an invalid reply, before waiting again."},
    )
    max_attempts = ma.fields.Integer(
        load_default=3,
        validate=ma.validate.Range(1, 20),
        metadata={"description": "Invalid replies before the invalid output."},
    )
    chat = Text(
        load_default=None,
        metadata={
            "description": "Whom to ask and whose reply to wait for (default: the chat that "
            "started the run)."
        },
    )
    session = Text(
        load_default=None,
        metadata={"description": "The session to ask from (default: the run's session)."},
    )


class WaitForReply(Node):
    """Wait for the chat's next message; optionally ask first and check the answer.

    The run is stored while it waits, so it survives a restart; the chat's next message
    resumes it (before any trigger sees that message), or ``timeout`` seconds pass.
    With ``pattern``, a reply that does not match gets ``reprompt`` and another wait,
    up to ``max_attempts`` invalid replies.

    Outputs: ``reply`` (data: ``text``, ``groups`` and ``named`` from the pattern,
    ``message``, ``attempts``), ``timeout`` (always wire it: what happens when nobody
    answers), ``invalid`` (too many replies that did not match).
    """

    type = "wait_for_reply"
    version = 1
    Params = WaitForReplyParams
    outputs = ("reply", "timeout", "invalid")

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Wait:
        chat = params.get("chat") or ctx.chat
        if not chat:
            raise NodeError(
                "wait_for_reply has no chat to wait on: this run did not start "
                "from a chat; set params.chat",
                retryable=False,
            )
        if params.get("prompt"):
            ctx.send({"to": chat, "text": params["prompt"]}, session=params.get("session"))
        return self._wait(ctx, params, chat, attempts=0)

    def resume(
        self, ctx: NodeContext, params: dict[str, Any], state: dict[str, Any], event: Event
    ) -> Result | Wait:
        attempts = state["attempts"]
        if isinstance(event, Timeout):
            return Result("timeout", {"attempts": attempts})
        text = event.text.strip()
        match = re.fullmatch(params["pattern"], text) if params.get("pattern") else None
        if match or not params.get("pattern"):
            return Result(
                "reply",
                {
                    "text": text,
                    "message": event.message,
                    "attempts": attempts + 1,
                    "groups": list(match.groups()) if match else [],
                    "named": match.groupdict() if match else {},
                },
            )
        attempts += 1
        if attempts >= params["max_attempts"]:
            return Result("invalid", {"text": text, "attempts": attempts})
        if params.get("reprompt"):
            ctx.send(
                {"to": state["chat"], "text": params["reprompt"]}, session=params.get("session")
            )
        return self._wait(ctx, params, state["chat"], attempts=attempts)

    @staticmethod
    def _wait(ctx: NodeContext, params: dict[str, Any], chat: str, *, attempts: int) -> Wait:
        return Wait(
            "reply",
            until=ctx.now() + timedelta(seconds=params["timeout"]),
            chat=chat,
            session=params.get("session") or ctx.session,
            state={"attempts": attempts, "chat": chat},
        )
