"""A workflow document, loaded and checked: what the engine walks.

The format (``nodes/schema.json`` has every detail)::

    {"name": "survey", "description": "…", "version": 1,
     "trigger": {"type": "message", "command": ["#survey"]},
     "start": "ask",
     "nodes": {"ask": {"type": "wait_for_reply",
                       "params": {"prompt": "1-5?", "timeout": 600},
                       "next": {"reply": "thanks", "timeout": "bye"},
                       "retry": {"max": 2, "backoff_seconds": 5}},
               …}}
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.errors import InvalidWorkflow
from nodes.registry import Registry
from nodes.validation import Problem, validate


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts after the first (``max``) and the wait before the first retry, doubling."""

    max: int = 0
    backoff_seconds: float = 0.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return self.backoff_seconds * 2.0 ** (attempt - 1)


@dataclass(frozen=True)
class WorkflowNode:
    id: str
    type: str
    version: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    next: dict[str, str] = field(default_factory=dict)
    retry: RetryPolicy = RetryPolicy()
    description: str = ""


@dataclass(frozen=True)
class Workflow:
    """A valid workflow. Build one with ``from_dict``, ``load`` or ``WorkflowBuilder``."""

    name: str
    start: str
    nodes: dict[str, WorkflowNode]
    triggers: list[dict[str, Any]] = field(default_factory=list)
    description: str = ""
    version: int = 1
    doc: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, doc: dict[str, Any], *, registry: Registry | None = None) -> Workflow:
        """Check ``doc`` and build the workflow; ``InvalidWorkflow`` lists every problem."""
        problems = validate(doc, registry=registry)
        if problems:
            name = doc.get("name") if isinstance(doc, dict) else None
            raise InvalidWorkflow(problems, name if isinstance(name, str) else None)
        nodes = {
            node_id: WorkflowNode(
                id=node_id,
                type=spec["type"],
                version=spec.get("version"),
                params=spec.get("params", {}),
                next=spec.get("next", {}),
                retry=RetryPolicy(**spec.get("retry", {})),
                description=spec.get("description", ""),
            )
            for node_id, spec in doc["nodes"].items()
        }
        triggers = doc.get("triggers") or ([doc["trigger"]] if "trigger" in doc else [])
        return cls(
            name=doc["name"],
            start=doc["start"],
            nodes=nodes,
            triggers=triggers,
            description=doc.get("description", ""),
            version=doc.get("version", 1),
            doc=copy.deepcopy(doc),
        )

    @classmethod
    def load(cls, path: str | Path, *, registry: Registry | None = None) -> Workflow:
        """Read and check a workflow file."""
        text = Path(path).read_text(encoding="utf-8")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidWorkflow(
                [
                    Problem(
                        "$", f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
                    )
                ],
                str(path),
            ) from None
        return cls.from_dict(doc, registry=registry)

    def to_dict(self) -> dict[str, Any]:
        """The document it was built from."""
        return copy.deepcopy(self.doc)
