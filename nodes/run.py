"""A run's state: plain JSON, so the host can keep it in a row and resume it after a
restart. The engine changes it; nothing else should need to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from nodes.base import Event, Reply, Timeout

FORMAT = 1
"""Bumped when the stored shape changes, so an old row can be read or refused knowingly."""

STATUSES = ("running", "waiting", "completed", "failed")


@dataclass
class Run:
    """One execution of one workflow version.

    ``outputs`` holds each node's latest data by node id (what templates see as
    ``{{ lookup.ticket }}``); ``trace`` one entry per step: ``{step, node, type, version,
    attempt, input, output, data, started, duration_ms, error}`` (plus ``wait`` or
    ``event`` around waits). ``wait`` says what a waiting run waits for: ``{node, kind,
    until, chat, session, ...}``; the host indexes ``kind``, ``chat`` and ``until``.
    """

    id: str
    workflow: dict[str, Any]
    trigger: dict[str, Any]
    status: str = "running"
    current: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    trace: list[dict[str, Any]] = field(default_factory=list)
    trace_dropped: int = 0
    wait: dict[str, Any] | None = None
    steps: int = 0
    result: Any = None
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @classmethod
    def new(
        cls,
        *,
        name: str,
        version: int,
        trigger: dict[str, Any],
        vars: dict[str, Any],
        now: datetime,
        run_id: str | None = None,
    ) -> Run:
        return cls(
            id=run_id or uuid.uuid4().hex,
            workflow={"name": name, "version": version},
            trigger=trigger,
            vars=vars,
            started_at=now.isoformat(),
        )

    @property
    def due(self) -> datetime | None:
        """When a waiting run must be resumed with ``Timeout()`` (``None``: never)."""
        until = (self.wait or {}).get("until")
        return datetime.fromisoformat(until) if until else None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON. Its containers are the run's own, not copies (``asdict``
        copied every one, a large part of a short run's cost): store it, do not keep
        changing the run after."""
        return {"format": FORMAT, **{name: getattr(self, name) for name in _FIELDS}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Run:
        data = dict(data)
        stored = data.pop("format", FORMAT)
        if stored != FORMAT:
            raise ValueError(
                f"run state format {stored} is not {FORMAT}; this version of kabar cannot resume it"
            )
        return cls(**data)


_FIELDS = tuple(f.name for f in fields(Run))


def event_to_json(event: Event) -> dict[str, Any]:
    if isinstance(event, Reply):
        return {"type": "reply", "text": event.text, "message": event.message}
    return {"type": "timeout"}


def event_from_json(data: dict[str, Any]) -> Event:
    if data["type"] == "reply":
        return Reply(data["text"], data.get("message") or {})
    return Timeout()
