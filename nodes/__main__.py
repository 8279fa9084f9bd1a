"""``python -m nodes``: check workflow files and read the node catalogue without a server.

    python -m nodes validate workflows/*.json
    python -m nodes list
    python -m nodes show send
"""

from __future__ import annotations

import argparse
import json
import sys

from nodes import registry
from nodes.errors import InvalidWorkflow, UnknownNode
from nodes.workflow import Workflow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("validate", help="check workflow files")
    check.add_argument("files", nargs="+")
    commands.add_parser("list", help="list the node types")
    show = commands.add_parser("show", help="describe a node type")
    show.add_argument("type")
    show.add_argument("--version", type=int)
    args = parser.parse_args(argv)

    if args.command == "validate":
        failed = 0
        for path in args.files:
            try:
                Workflow.load(path)
                print(f"{path}: ok")
            except InvalidWorkflow as exc:
                failed += 1
                for problem in exc.problems:
                    print(f"{path}: {problem}")
        return 1 if failed else 0
    if args.command == "list":
        for node in registry.all():
            print(f"{node.type:<16} v{node.version}  {node.summary()}")
        return 0
    try:
        node = registry.get(args.type, args.version)
    except UnknownNode as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps(node.describe(), indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
