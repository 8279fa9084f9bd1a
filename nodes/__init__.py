"""Kabar workflow nodes: reusable steps chained in JSON workflow files.

The same package runs inside the gateway (which supplies a durable ``Context``: sends are
outbox rows, runs and waits are rows) and from a plain script::

    from nodes import Engine, LocalContext, Reply, Workflow

    survey = Workflow.load("workflows/survey.json")
    ctx = LocalContext()
    run = Engine().start(survey, {"type": "message", "chat": "62812…", "text": "#survey"},
                         ctx)
    while run.status == "waiting":
        run = Engine().resume(run, Reply(input("> ")), ctx, workflow=survey)
    print(ctx.sent)

Against a running gateway, ``RemoteContext`` sends through its REST API and
``RemoteRunner`` drives the run to its end, waiting for replies by long-polling the chat
(``nodes.remote``; docs/scripting.md)::

    from nodes import RemoteContext, RemoteRunner, Workflow

    with RemoteContext("http://127.0.0.1:7308", api_key, session="Helpdesk") as ctx:
        run = RemoteRunner(ctx).run(survey, {"type": "manual", "chat": "0812…"})

What a script may import is listed in ``__all__`` (a test guards it), and the module
``nodes.message`` (the message a send takes, which the gateway's outbox extends too);
anything else is internal. ``nodes`` never imports ``server``.
"""

from nodes.base import (
    ERROR,
    Event,
    Node,
    Outcome,
    ParamsSchema,
    Reply,
    Result,
    Stop,
    Timeout,
    Wait,
)
from nodes.builder import WorkflowBuilder
from nodes.context import Context, HttpResponse, LocalContext, NodeContext
from nodes.engine import Engine
from nodes.errors import (
    InvalidWorkflow,
    NodeError,
    NodesError,
    TemplateError,
    UnknownNode,
)
from nodes.fields import Expression, Text
from nodes.registry import Registry
from nodes.registry import all as all_nodes
from nodes.registry import get as get_node
from nodes.registry import register as register_node
from nodes.remote import RemoteContext, RemoteRunner
from nodes.run import Run
from nodes.triggers import match_message
from nodes.validation import Problem, validate
from nodes.workflow import RetryPolicy, Workflow, WorkflowNode

__all__ = [
    "ERROR",
    "Context",
    "Engine",
    "Event",
    "Expression",
    "HttpResponse",
    "InvalidWorkflow",
    "LocalContext",
    "Node",
    "NodeContext",
    "NodeError",
    "NodesError",
    "Outcome",
    "ParamsSchema",
    "Problem",
    "Registry",
    "RemoteContext",
    "RemoteRunner",
    "Reply",
    "Result",
    "RetryPolicy",
    "Run",
    "Stop",
    "TemplateError",
    "Text",
    "Timeout",
    "UnknownNode",
    "Wait",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowNode",
    "all_nodes",
    "get_node",
    "match_message",
    "register_node",
    "validate",
]
