"""``WorkflowBuilder``: write a workflow in Python instead of JSON.

::

    survey = (WorkflowBuilder("survey")
              .trigger("message", command=["#survey"])
              .node("ask", "wait_for_reply", prompt="Rate us 1-5", timeout=600,
                    pattern="^[1-5]$", next={"reply": "thanks", "timeout": "bye"})
              .node("thanks", "send", text="Thank you! ({{ ask.text }})")
              .node("bye", "send", text="Maybe next time.")
              .build())

It makes the same document a JSON file would hold, and checks it the same way.
"""

from __future__ import annotations

import copy
from typing import Any, Self

from nodes.registry import Registry
from nodes.workflow import Workflow


class WorkflowBuilder:
    def __init__(self, name: str, *, description: str = "", version: int = 1) -> None:
        self._doc: dict[str, Any] = {"name": name, "version": version, "nodes": {}}
        if description:
            self._doc["description"] = description
        self._triggers: list[dict[str, Any]] = []

    def trigger(self, type: str, /, **fields: Any) -> Self:
        """Add a trigger: ``.trigger("schedule", cron="0 8 * * *")``. For a message
        trigger's sender filter, pass ``**{"from": [...]}``."""
        self._triggers.append({"type": type, **fields})
        return self

    def node(
        self,
        node_id: str,
        type: str,
        /,
        params: dict[str, Any] | None = None,
        *,
        next: str | dict[str, str] | None = None,
        version: int | None = None,
        retry: dict[str, Any] | None = None,
        **more_params: Any,
    ) -> Self:
        """Add a node; params as a dict, as keywords, or both. ``next="id"`` is short for
        ``next={"next": "id"}``. The first node added is the start unless ``start()``."""
        spec: dict[str, Any] = {"type": type, "params": {**(params or {}), **more_params}}
        if next:
            spec["next"] = {"next": next} if isinstance(next, str) else dict(next)
        if version is not None:
            spec["version"] = version
        if retry:
            spec["retry"] = retry
        self._doc["nodes"][node_id] = spec
        self._doc.setdefault("start", node_id)
        return self

    def start(self, node_id: str) -> Self:
        self._doc["start"] = node_id
        return self

    def to_dict(self) -> dict[str, Any]:
        """The workflow document, keys in the order a person would write them."""
        doc: dict[str, Any] = {
            key: self._doc[key] for key in ("name", "description", "version") if key in self._doc
        }
        if len(self._triggers) == 1:
            doc["trigger"] = self._triggers[0]
        elif self._triggers:
            doc["triggers"] = list(self._triggers)
        if "start" in self._doc:
            doc["start"] = self._doc["start"]
        doc["nodes"] = self._doc["nodes"]
        return copy.deepcopy(doc)

    def build(self, *, registry: Registry | None = None) -> Workflow:
        """The checked workflow (``InvalidWorkflow`` lists what is wrong)."""
        return Workflow.from_dict(self.to_dict(), registry=registry)
