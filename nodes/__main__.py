"""``python -m nodes``: check workflow files and read the node catalogue without a server
(``kabar nodes …`` and ``kabar workflow validate`` print the same, from nodes/cli.py).

    python -m nodes validate workflows/*.json
    python -m nodes list
    python -m nodes show send
"""

from __future__ import annotations

import argparse
import sys

from nodes import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nodes")
    subcommands = parser.add_subparsers(dest="command", required=True)
    check = subcommands.add_parser("validate", help="check workflow files")
    check.add_argument("files", nargs="+")
    subcommands.add_parser("list", help="list the node types")
    show = subcommands.add_parser("show", help="describe a node type")
    show.add_argument("type")
    show.add_argument("--version", type=int)
    args = parser.parse_args(argv)

    if args.command == "validate":
        return cli.validate_files(args.files, print)
    if args.command == "list":
        return cli.list_nodes(print)
    return cli.show_node(args.type, args.version, print, lambda text: print(text, file=sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
