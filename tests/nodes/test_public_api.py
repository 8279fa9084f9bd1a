"""What scripts import from ``nodes``: a deliberate list, and nothing from ``server``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nodes

PUBLIC = [
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


def test_all_is_the_public_api():
    assert sorted(nodes.__all__) == sorted(PUBLIC)
    assert len(set(nodes.__all__)) == len(nodes.__all__)
    for name in nodes.__all__:
        assert getattr(nodes, name) is not None


def test_nodes_never_imports_server():
    code = (
        "import sys, nodes, nodes.schema, nodes.__main__, nodes.remote; "
        "nodes.all_nodes(); "
        "print(sorted(m for m in sys.modules if m == 'server' or m.startswith('server.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "[]"
