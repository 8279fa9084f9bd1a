"""What a node is: a typed parameter schema, named outputs and ``run()``.

A node is one class in one module (``class Send(Node)``), its ``Params`` beside its code and
its docstring the catalogue text (``kabar nodes show send``). A breaking change adds a new
class with ``version = 2`` and keeps the old one registered, so workflows that pin
``"version": 1`` keep meaning what they meant.

``run()`` returns one of three outcomes: a ``Result`` (go on along a named output), a
``Wait`` (persist the run; resume on a reply from the chat or at a time) or a ``Stop`` (the
run is over). Nodes never block: waiting is the engine's and the server's job, so a wait
survives a restart.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

import marshmallow as ma

from nodes.errors import NodeError

if TYPE_CHECKING:
    from nodes.context import NodeContext

ERROR = "error"
"""The output every node has: where an exception goes when the workflow wires it."""


class ParamsSchema(ma.Schema):
    """Base for node parameter schemas: unknown parameters are mistakes, not extras."""

    class Meta:
        unknown = ma.RAISE


ParamsClass: TypeAlias = type[ma.Schema]
"""A node's ``Params``: spelled here because inside ``Node`` the name ``type`` is the
node's type name (a class attribute), not the builtin."""


@dataclass(frozen=True)
class Result:
    """Go on along ``output``; ``data`` becomes this node's output in templates
    (``{{ lookup.ticket }}``) and in the trace."""

    output: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    """Suspend the run: the engine stores it and the host resumes it later.

    ``kind="reply"`` waits for the next message from ``chat`` (``until`` is the timeout);
    ``kind="until"`` waits for the time ``until``. ``state`` is the node's own memory across
    the wait (plain JSON), handed back to ``resume()``.
    """

    kind: Literal["reply", "until"]
    until: datetime | None = None
    state: dict[str, Any] = field(default_factory=dict)
    chat: str | None = None
    session: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ("reply", "until"):
            raise ValueError(f"Wait kind must be 'reply' or 'until', not {self.kind!r}")
        if self.kind == "until" and self.until is None:
            raise ValueError("Wait(kind='until') needs the time to resume at: until=...")
        if self.until is not None and self.until.tzinfo is None:
            raise ValueError("Wait.until must be timezone-aware (use ctx.now() + timedelta)")


@dataclass(frozen=True)
class Stop:
    """End the run now with ``status`` (``completed`` or ``failed``) and a ``result`` that
    a caller (``call_workflow``, a manual run) gets back."""

    status: Literal["completed", "failed"] = "completed"
    result: Any = None
    reason: str = ""


Outcome = Result | Wait | Stop


@dataclass(frozen=True)
class Reply:
    """Resume event: a message arrived from the chat a run waits on."""

    text: str
    message: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Timeout:
    """Resume event: the time a run waited for has come (a reply timeout or a delay)."""


Event = Reply | Timeout


class Node:
    """Base class of every node. Subclasses set ``type``, ``version``, ``Params``,
    ``outputs`` and a docstring, and implement ``run()`` (and ``resume()`` if they wait)."""

    type: ClassVar[str] = ""
    version: ClassVar[int] = 1
    Params: ClassVar[ParamsClass] = ParamsSchema
    outputs: ClassVar[tuple[str, ...]] = ("next",)
    raw_params: ClassVar[tuple[str, ...]] = ()
    """Parameters the engine passes through unrendered: conditions that the node evaluates
    itself with ``ctx.truthy()``."""

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Outcome:
        raise NotImplementedError(f"{type(self).__name__} must implement run(ctx, params)")

    def resume(
        self, ctx: NodeContext, params: dict[str, Any], state: dict[str, Any], event: Event
    ) -> Outcome:
        """Called when a ``Wait`` this node returned is over. ``params`` are the ones the
        node ran with; ``state`` is the ``Wait.state`` it stored."""
        raise NodeError(
            f"node type {self.type!r} returned Wait but does not implement "
            "resume(); add resume(ctx, params, state, event) to it",
            retryable=False,
        )

    @classmethod
    def outputs_for(cls, params: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The outputs a workflow node of this type has, given its raw params (``switch``
        derives them from its cases). ``None`` when they cannot be known before running."""
        return cls.outputs

    @classmethod
    def summary(cls) -> str:
        """The first line of the docstring: the one-line catalogue entry."""
        return (inspect.getdoc(cls) or "").split("\n", 1)[0].replace("``", "`")

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The catalogue entry: what ``kabar nodes show <type>`` prints."""
        from nodes.schema import standalone_params_schema

        return {
            "type": cls.type,
            "version": cls.version,
            "summary": cls.summary(),
            "doc": inspect.getdoc(cls) or "",
            "outputs": [*cls.outputs, ERROR],
            "params": standalone_params_schema(cls),
        }
