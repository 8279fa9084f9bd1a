"""What ``python -m nodes`` and ``kabar nodes …`` / ``kabar workflow validate`` print: one
implementation, written through an ``echo`` function so each front end (argparse, click)
prints its own way. Each returns the exit code."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from nodes import registry
from nodes.errors import InvalidWorkflow, UnknownNode
from nodes.workflow import Workflow

Echo = Callable[[str], object]


def validate_files(paths: Iterable[str], echo: Echo) -> int:
    """``FILE: ok``, or one line per problem: ``FILE: $.nodes.ask.next.timeout: …``."""
    failed = 0
    for path in paths:
        try:
            Workflow.load(path)
        except InvalidWorkflow as exc:
            failed += 1
            for problem in exc.problems:
                echo(f"{path}: {problem}")
        except (OSError, UnicodeDecodeError) as exc:
            failed += 1
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            echo(f"{path}: $: cannot read the file ({reason}); check the path")
        else:
            echo(f"{path}: ok")
    return 1 if failed else 0


def list_nodes(echo: Echo) -> int:
    """One line per node type: type, version, summary."""
    for node in registry.all():
        echo(f"{node.type:<16} v{node.version}  {node.summary()}")
    return 0


def show_node(type: str, version: int | None, echo: Echo, error: Echo) -> int:
    """The node's catalogue entry (its docstring, outputs and params schema) as JSON."""
    try:
        node = registry.get(type, version)
    except UnknownNode as exc:
        error(str(exc))
        return 1
    echo(json.dumps(node.describe(), indent=2, ensure_ascii=False))
    return 0
