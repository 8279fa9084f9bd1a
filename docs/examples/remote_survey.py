"""Run the shipped survey from this machine against a running Kabar gateway.

    KABAR_URL=http://127.0.0.1:7308 KABAR_API_KEY=kabar_... \\
        python docs/examples/remote_survey.py --session Demo 0812-3456-789

The gateway sends the question to the contact on WhatsApp and stores the answer; the run
itself lives in this script, which waits for the answer by long-polling the chat. The API
key's user needs messages:send and sessions:read. See docs/scripting.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from nodes import RemoteContext, RemoteRunner, Run, Workflow

SURVEY = Path(__file__).resolve().parents[2] / "workflows" / "survey.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Ask a contact the survey through Kabar.")
    parser.add_argument("chat", help="the contact's number (or a chat JID)")
    parser.add_argument("--session", required=True, help="the session: its id or label")
    parser.add_argument("--workflow", default=str(SURVEY), help="a workflow file")
    parser.add_argument("--url", default=os.environ.get("KABAR_URL", "http://127.0.0.1:7308"))
    args = parser.parse_args(argv)
    key = os.environ.get("KABAR_API_KEY")
    if not key:
        parser.error("set KABAR_API_KEY to an API key (kabar apikey create ...)")

    workflow = Workflow.load(args.workflow)

    def waiting(run: Run) -> None:
        wait = run.wait or {}
        print(f"{run.id}: waiting at {wait.get('node')} for "
              f"{'a reply' if wait.get('kind') == 'reply' else 'the time'} "
              f"until {wait.get('until')}", flush=True)

    with RemoteContext(args.url, key, session=args.session) as ctx:
        run = RemoteRunner(ctx, on_wait=waiting).run(
            workflow, {"type": "manual", "chat": args.chat})
    print(f"{run.id}: {run.status}")
    print(f"vars: {json.dumps(run.vars)}")
    if run.error:
        print(f"error: {run.error}")
    return 0 if run.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
