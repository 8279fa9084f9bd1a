"""The interpreter: walk a workflow from node to node until it waits or ends.

``Engine.start`` begins a run and ``Engine.resume`` continues a waiting one with a
``Reply`` or a ``Timeout``; both return the ``Run`` for the host to store (it is plain
JSON). The engine keeps no state of its own, so any process can resume any run.

Each step renders the node's params in the run's scope, validates them with the node's
``Params``, and runs the node through a ``NodeContext``. When a node fails (it raises), the
workflow node's ``retry`` policy runs it again (at once, or after a durable wait when
there is a backoff), then its ``error`` output is taken if the workflow wires it; if not,
the run fails with the error in the trace. A bad template or bad params are not retried.
A run that takes ``max_steps`` steps without waiting is stopped: it loops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import marshmallow as ma

from nodes import registry as registries
from nodes import templating
from nodes.base import ERROR, Event, Node, Outcome, Reply, Result, Stop, Wait
from nodes.context import Context, NodeContext
from nodes.errors import NodeError, NodesError, TemplateError
from nodes.registry import Registry
from nodes.run import Run, event_from_json, event_to_json
from nodes.workflow import Workflow, WorkflowNode

WorkflowLoader = Callable[[str, int], Workflow]


@dataclass
class _Resume:
    """What a step resumes: the params the node ran with, its wait state and the event."""

    version: int
    params: dict[str, Any]
    state: dict[str, Any]
    event: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "params": self.params,
            "state": self.state,
            "event": self.event,
        }


class Engine:
    def __init__(
        self,
        *,
        registry: Registry | None = None,
        max_steps: int = 1000,
        max_trace: int = 500,
        load_workflow: WorkflowLoader | None = None,
    ) -> None:
        self.registry = registry or registries.default()
        self.max_steps = max_steps
        self.max_trace = max_trace
        self.load_workflow = load_workflow
        # One Params schema per node class: building a marshmallow schema costs several
        # times loading params with it, and loading keeps no state on the schema.
        self._schemas: dict[type[Node], ma.Schema] = {}

    def start(
        self,
        workflow: Workflow,
        trigger: dict[str, Any],
        ctx: Context,
        *,
        vars: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> Run:
        """Start a run at the workflow's start node; return it running no more: waiting,
        completed or failed."""
        run = Run.new(
            name=workflow.name,
            version=workflow.version,
            trigger=templating.jsonable(trigger),
            vars=templating.jsonable(vars or {}),
            now=ctx.now(),
            run_id=run_id,
        )
        return self._advance(run, workflow, ctx, workflow.start)

    def resume(
        self, run: Run, event: Event, ctx: Context, *, workflow: Workflow | None = None
    ) -> Run:
        """Continue a waiting run with a ``Reply`` from its chat or a ``Timeout``."""
        if run.status != "waiting" or not run.wait:
            raise NodesError(
                f"run {run.id} is {run.status}, not waiting; only a waiting run can be resumed"
            )
        wait = run.wait
        if isinstance(event, Reply) and wait["kind"] != "reply":
            raise NodesError(
                f"run {run.id} waits until {wait['until']}, not for a reply; "
                "resume it with Timeout() when that time comes"
            )
        workflow = self._workflow(run, workflow)
        run.status, run.wait = "running", None
        if "retry" in wait:
            resume = wait.get("resume")
            return self._advance(
                run,
                workflow,
                ctx,
                wait["node"],
                attempt=wait["retry"] + 1,
                resume=_Resume(**resume) if resume else None,
            )
        resume = _Resume(wait["version"], wait["params"], wait["state"], event_to_json(event))
        return self._advance(run, workflow, ctx, wait["node"], resume=resume)

    def retry(self, run: Run, ctx: Context, *, workflow: Workflow | None = None) -> Run:
        """Run a failed run again from the node that failed (that node starts afresh)."""
        if run.status != "failed" or run.current is None:
            raise NodesError(f"run {run.id} is {run.status}; only a failed run can be retried")
        workflow = self._workflow(run, workflow)
        run.status, run.error, run.finished_at = "running", None, None
        return self._advance(run, workflow, ctx, run.current)

    # -- the loop ------------------------------------------------------------------------

    def _advance(
        self,
        run: Run,
        workflow: Workflow,
        ctx: Context,
        node_id: str,
        *,
        attempt: int = 1,
        resume: _Resume | None = None,
    ) -> Run:
        for _ in range(self.max_steps):
            spec = workflow.nodes[node_id]
            run.current = node_id
            if attempt == 1:
                run.steps += 1  # a retry repeats its step, and so its idempotency keys
            entry = self._entry(run, spec, ctx, attempt, resume)
            rendered: dict[str, Any] = {}
            began = time.perf_counter()
            try:
                scope = self._scope(run, ctx)
                node, params, rendered = self._prepare(spec, scope, resume)
                entry["version"], entry["input"] = node.version, rendered
                outcome = self._call(node, run, spec, ctx, scope, attempt, params, resume)
            except Exception as exc:  # a node may fail in any way; the workflow decides
                entry["duration_ms"] = _ms(began)
                entry["error"] = f"{type(exc).__name__}: {exc}"
                policy = spec.retry
                if _retryable(exc) and attempt <= policy.max:
                    delay = policy.delay(attempt)
                    if delay > 0:
                        return self._wait_to_retry(run, spec, ctx, attempt, delay, resume)
                    attempt += 1
                    continue
                data = {
                    **getattr(exc, "data", {}),
                    "error": str(exc),
                    "error_type": type(exc).__name__,
                }
                outcome = Result(ERROR, data)
            else:
                entry["duration_ms"] = _ms(began)
            if isinstance(outcome, Wait):
                self._suspend(run, spec, entry, outcome, rendered)
                return run
            if isinstance(outcome, Stop):
                entry["data"] = {
                    "status": outcome.status,
                    "result": templating.jsonable(outcome.result),
                }
                reason = outcome.reason or f"ended at {node_id!r} with status failed"
                return self._finish(run, ctx, outcome.status, result=outcome.result, error=reason)
            outcome, target = self._route(run, spec, entry, outcome)
            if target is None:
                if outcome.output == ERROR:
                    return self._finish(run, ctx, "failed", error=outcome.data.get("error"))
                return self._finish(run, ctx, "completed")
            node_id, attempt, resume = target, 1, None
        return self._finish(
            run,
            ctx,
            "failed",
            error=(
                f"stopped after {self.max_steps} steps without waiting, at node {node_id!r}: the "
                "workflow loops. Put a wait_for_reply or delay in the loop, or a branch out of it"
            ),
        )

    def _prepare(
        self, spec: WorkflowNode, scope: dict[str, Any], resume: _Resume | None
    ) -> tuple[type[Node], dict[str, Any], dict[str, Any]]:
        """The node class and its params: rendered (or as they were before a wait), then
        validated."""
        node = self.registry.get(spec.type, resume.version if resume else spec.version)
        if resume:
            rendered = resume.params
        else:
            rendered = {
                key: value if key in node.raw_params else templating.render(value, scope)
                for key, value in spec.params.items()
            }
        try:
            schema = self._schemas.get(node)
            if schema is None:
                schema = self._schemas[node] = node.Params()
            params = schema.load(rendered)
        except ma.ValidationError as exc:
            raise NodeError(
                f"params of {spec.id!r} are not valid once rendered: "
                f"{_flatten(exc.normalized_messages())}",
                retryable=False,
            ) from None
        return node, params, rendered

    def _call(
        self,
        node: type[Node],
        run: Run,
        spec: WorkflowNode,
        ctx: Context,
        scope: dict[str, Any],
        attempt: int,
        params: dict[str, Any],
        resume: _Resume | None,
    ) -> Outcome:
        context = NodeContext(
            ctx,
            run_id=run.id,
            node_id=spec.id,
            step=run.steps,
            attempt=attempt,
            trigger=run.trigger,
            vars=run.vars,
            scope=scope,
        )
        if resume:
            outcome = node().resume(context, params, resume.state, event_from_json(resume.event))
        else:
            outcome = node().run(context, params)
        if not isinstance(outcome, Result | Wait | Stop):
            raise NodesError(
                f"node type {spec.type!r} returned {outcome!r}; run() must "
                "return Result, Wait or Stop"
            )
        return outcome

    def _route(
        self, run: Run, spec: WorkflowNode, entry: dict[str, Any], outcome: Result
    ) -> tuple[Result, str | None]:
        """Record the node's output and say where it leads (``None``: nowhere)."""
        node = self.registry.get(spec.type, entry.get("version") or spec.version)
        known = node.outputs_for(spec.params)
        if outcome.output != ERROR and known is not None and outcome.output not in known:
            outcome = Result(
                ERROR,
                {
                    "error": f"node type {spec.type!r} returned output "
                    f"{outcome.output!r}, which it does not declare "
                    f"({', '.join(known)})",
                    "error_type": "NodesError",
                },
            )
        data = templating.jsonable(outcome.data)
        run.outputs[spec.id] = data
        entry["output"], entry["data"] = outcome.output, data
        if outcome.output == ERROR:
            entry["error"] = entry.get("error") or data.get("error")
        return outcome, spec.next.get(outcome.output)

    # -- waits and endings ---------------------------------------------------------------

    def _suspend(
        self,
        run: Run,
        spec: WorkflowNode,
        entry: dict[str, Any],
        wait: Wait,
        rendered: dict[str, Any],
    ) -> None:
        until = wait.until.isoformat() if wait.until else None
        run.status = "waiting"
        run.wait = {
            "node": spec.id,
            "kind": wait.kind,
            "until": until,
            "chat": wait.chat,
            "session": wait.session,
            "version": entry["version"],
            "params": rendered,
            "state": templating.jsonable(wait.state),
        }
        entry["output"] = None
        entry["data"] = templating.jsonable(wait.data)
        entry["wait"] = {"kind": wait.kind, "until": until, "chat": wait.chat}

    def _wait_to_retry(
        self,
        run: Run,
        spec: WorkflowNode,
        ctx: Context,
        attempt: int,
        delay: float,
        resume: _Resume | None,
    ) -> Run:
        until = (ctx.now() + timedelta(seconds=delay)).isoformat()
        run.status = "waiting"
        run.wait = {
            "node": spec.id,
            "kind": "until",
            "until": until,
            "chat": None,
            "session": None,
            "retry": attempt,
            "resume": resume.to_json() if resume else None,
        }
        run.trace[-1]["wait"] = {"kind": "until", "until": until, "retry": attempt + 1}
        return run

    def _finish(
        self, run: Run, ctx: Context, status: str, *, result: Any = None, error: str | None = None
    ) -> Run:
        run.status = status
        run.result = templating.jsonable(result)
        run.error = error if status == "failed" else None
        run.finished_at = ctx.now().isoformat()
        return run

    # -- helpers -------------------------------------------------------------------------

    def _entry(
        self, run: Run, spec: WorkflowNode, ctx: Context, attempt: int, resume: _Resume | None
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "step": run.steps,
            "node": spec.id,
            "type": spec.type,
            "version": spec.version,
            "attempt": attempt,
            "input": None,
            "output": None,
            "data": None,
            "started": ctx.now().isoformat(),
            "duration_ms": None,
            "error": None,
        }
        if resume:
            entry["event"] = resume.event
        run.trace.append(entry)
        if len(run.trace) > self.max_trace:
            del run.trace[0]
            run.trace_dropped += 1
        return entry

    def _scope(self, run: Run, ctx: Context) -> dict[str, Any]:
        return {
            **run.outputs,
            **templating.helpers(ctx.now),
            "nodes": run.outputs,
            "trigger": run.trigger,
            "vars": run.vars,
            "args": run.trigger.get("args") or [],
            "run": {
                "id": run.id,
                "workflow": run.workflow["name"],
                "version": run.workflow["version"],
            },
        }

    def _workflow(self, run: Run, workflow: Workflow | None) -> Workflow:
        name, version = run.workflow["name"], run.workflow["version"]
        if workflow is None:
            if self.load_workflow is None:
                raise NodesError(
                    f"resuming run {run.id} needs its workflow: pass "
                    "workflow=... or Engine(load_workflow=...)"
                )
            workflow = self.load_workflow(name, version)
        if (workflow.name, workflow.version) != (name, version):
            raise NodesError(
                f"run {run.id} started with {name!r} version {version}, not "
                f"{workflow.name!r} version {workflow.version}; resume it with "
                "the version it started with"
            )
        return workflow


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, TemplateError | NodesError) and not isinstance(exc, NodeError):
        return False
    return getattr(exc, "retryable", True)


def _flatten(messages: Any, path: str = "") -> str:
    """marshmallow's nested messages as ``send_at: Not a valid datetime.; …``."""
    if isinstance(messages, dict):
        return "; ".join(
            _flatten(value, f"{path}.{key}" if path else str(key))
            for key, value in messages.items()
        )
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return f"{path}: {' '.join(messages)}" if path else " ".join(messages)
    return f"{path}: {messages}"


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 3)
