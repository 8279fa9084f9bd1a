"""The `.venv/bin/kabar` of the README test: the real command, and then, after a
`sandbox say`, a wait until the runtime has handed the message to the workflows (a person
typing the next command is slower than a script; this keeps the test deterministic)."""

from __future__ import annotations

import sys
import time


def main() -> int:
    from server.cli import cli

    code = cli.main(args=sys.argv[1:], prog_name="kabar", standalone_mode=False)
    if sys.argv[1:3] == ["sandbox", "say"]:
        import sqlalchemy as sa

        from server.app import create_app
        from server.models import WorkflowInbox, db

        with create_app().app_context():
            deadline = time.monotonic() + 30
            while db.session.scalar(sa.select(sa.func.count()).select_from(WorkflowInbox)):
                db.session.rollback()
                if time.monotonic() > deadline:
                    sys.exit("the runtime did not take the message within 30 s")
                time.sleep(0.1)
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
