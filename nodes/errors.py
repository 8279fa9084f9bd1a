"""The exceptions of the ``nodes`` package: one root, a few children, messages that say
what to do. The server maps them onto its own error shape at its edge."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nodes.validation import Problem


class NodesError(Exception):
    """Root of every error this package raises on purpose."""


class UnknownNode(NodesError, LookupError):
    """A workflow names a node type (or version) that no installed package provides."""


class TemplateError(NodesError):
    """A template or condition does not parse, or failed while rendering."""


class InvalidWorkflow(NodesError):
    """A workflow document did not validate; ``problems`` lists each error with its path."""

    def __init__(self, problems: list[Problem], name: str | None = None) -> None:
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        title = f"workflow {name!r}" if name else "the workflow"
        count = f"{len(problems)} problem{'' if len(problems) == 1 else 's'}"
        super().__init__(f"{title} is not valid ({count}):\n{lines}")


class NodeError(NodesError):
    """Raised by a node's ``run()`` when it fails in a way it understands.

    ``data`` lands in the node's ``error`` output (``{{ fetch.status }}``), and
    ``retryable=False`` skips the workflow node's retry policy (a 404 will not get better).
    Any other exception from ``run()`` is retried and then routed the same way.
    """

    def __init__(
        self, message: str, *, data: dict[str, Any] | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message)
        self.data = data or {}
        self.retryable = retryable
