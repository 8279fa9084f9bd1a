"""An HTTP-hook workflow in Kabar and the same workflow in n8n, on one machine, under the
same load, both storing every run (issue 15, goal 1).

    .venv/bin/python bench/hook_vs_n8n.py [--database URL] [--seconds 15]
                                          [--connections 16] [--rounds 3] [--kabar-only]

The workflow: a hook that takes ``{"order": n}``, a node that sets ``order`` and
``accepted``, and the answer ``{"order": n, "accepted": true}``. In Kabar:
bench/workflows.py's HOOK (hook -> set -> respond) on ``kabar run`` (SQLite in a temporary
folder unless ``--database`` names a PostgreSQL database, whose public schema is dropped
and made anew). In n8n: Webhook (respond when the last node finishes) -> Set, with n8n's
defaults (executions saved, regular mode, SQLite in its own temporary folder).

n8n comes from ``.cache/n8n`` when ``make test-n8n`` installed it there (or
``KABAR_N8N_DIR``); otherwise it is installed from npm into a temporary folder with the
package.json of integrations/n8n-nodes-kabar/test/n8n-host (n8n 1.123.x; xlsx from the
registry, as its overrides say), which takes minutes. Needs node and wrk.

Each round loads Kabar, then n8n, with ``wrk -t1 -c<connections> -d<seconds>s``; the
other one idles meanwhile. Afterwards the runs stored on each side are counted against
the answers. Prints figures, asserts nothing timed. Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wrk
from sessions import ROOT, Gateway, free_port

from workflows import HOOK

N8N_HOST = ROOT / "integrations" / "n8n-nodes-kabar" / "test" / "n8n-host" / "package.json"
PATH = "bench-hook"


def n8n_folder() -> tuple[Path, Path | None]:
    """Where n8n is installed, and a temporary folder to remove afterwards (or None)."""
    for folder in (os.environ.get("KABAR_N8N_DIR"), ROOT / ".cache" / "n8n"):
        if folder and (Path(folder) / "node_modules" / "n8n" / "bin" / "n8n").exists():
            return Path(folder), None
    temporary = Path(tempfile.mkdtemp(prefix="kabar-bench-n8n-install-"))
    shutil.copy(N8N_HOST, temporary / "package.json")
    print(f"installing n8n into {temporary} (several minutes on a cold npm cache)", flush=True)
    subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=temporary, check=True
    )
    return temporary, temporary


def n8n_workflow() -> dict:
    def node(name, kind, version, parameters, position, **extra):
        return {
            "id": str(uuid.uuid4()),
            "name": name,
            "type": kind,
            "typeVersion": version,
            "position": position,
            "parameters": parameters,
            **extra,
        }

    return {
        "id": "benchHookFlow001",
        "name": "bench hook",
        "active": True,
        "settings": {"executionOrder": "v1"},
        "nodes": [
            node(
                "Webhook",
                "n8n-nodes-base.webhook",
                2,
                {
                    "httpMethod": "POST",
                    "path": PATH,
                    "responseMode": "lastNode",
                    "responseData": "firstEntryJson",
                    "options": {},
                },
                [0, 0],
                webhookId=str(uuid.uuid4()),
            ),
            node(
                "Set",
                "n8n-nodes-base.set",
                3.4,
                {
                    "mode": "manual",
                    "includeOtherFields": False,
                    "options": {},
                    "assignments": {
                        "assignments": [
                            {
                                "id": str(uuid.uuid4()),
                                "name": "order",
                                "value": "={{ $json.body.order }}",
                                "type": "number",
                            },
                            {
                                "id": str(uuid.uuid4()),
                                "name": "accepted",
                                "value": True,
                                "type": "boolean",
                            },
                        ]
                    },
                },
                [200, 0],
            ),
        ],
        "connections": {"Webhook": {"main": [[{"node": "Set", "type": "main", "index": 0}]]}},
    }


class N8n:
    """``n8n start`` in a temporary user folder with the bench workflow active."""

    def __init__(self, installed: Path, sqlite_pool: int = 0):
        self.folder = Path(tempfile.mkdtemp(prefix="kabar-bench-n8n-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.bin = installed / "node_modules" / "n8n" / "bin" / "n8n"
        self.env = {
            **os.environ,
            "N8N_USER_FOLDER": str(self.folder),
            "N8N_PORT": str(self.port),
            "N8N_LISTEN_ADDRESS": "127.0.0.1",
            "N8N_HOST": "127.0.0.1",
            "WEBHOOK_URL": f"{self.base}/",
            "N8N_ENCRYPTION_KEY": "kabar-bench",
            "N8N_DIAGNOSTICS_ENABLED": "false",
            "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_TEMPLATES_ENABLED": "false",
            "N8N_PERSONALIZATION_ENABLED": "false",
            "N8N_RUNNERS_ENABLED": "false",
            "N8N_SECURE_COOKIE": "false",
            "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
            "EXECUTIONS_MODE": "regular",
            "DB_TYPE": "sqlite",
            # 0 is n8n's default (rollback journal); > 0 opens a pool in WAL mode.
            "DB_SQLITE_POOL_SIZE": str(sqlite_pool),
            "N8N_LOG_LEVEL": "warn",
            "GENERIC_TIMEZONE": "UTC",
            "NODE_OPTIONS": "--max-old-space-size=2048",
        }
        flow = self.folder / "flow.json"
        flow.write_text(json.dumps(n8n_workflow()))
        self.cli("import:workflow", f"--input={flow}")
        self.cli("update:workflow", "--all", "--active=true")
        self.log = open(self.folder / "n8n.log", "w")
        self.process = subprocess.Popen(
            ["node", str(self.bin), "start"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        try:
            Gateway.wait(self.ready, timeout=300, what="n8n to start")
        except BaseException:
            self.close()
            raise

    def cli(self, *args: str) -> None:
        done = subprocess.run(
            ["node", str(self.bin), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            raise SystemExit(f"n8n {' '.join(args)}:\n{done.stdout}\n{done.stderr}")

    def ready(self) -> bool:
        request = urllib.request.Request(
            f"{self.base}/webhook/{PATH}",
            method="POST",
            data=b'{"order": 0}',
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read()) == {"order": 0, "accepted": True}
        except (OSError, ValueError):  # not listening yet, or not the workflow's answer yet
            return False

    def executions(self) -> dict[str, int]:
        with sqlite3.connect(self.folder / ".n8n" / "database.sqlite") as connection:
            return dict(
                connection.execute(
                    "SELECT status, count(*) FROM execution_entity GROUP BY status"
                ).fetchall()
            )

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def hook_script(path: str, headers: dict[str, str]) -> str:
    lua_headers = ", ".join(
        f"[{wrk.lua_string(k)}] = {wrk.lua_string(v)}"
        for k, v in {"Content-Type": "application/json", **headers}.items()
    )
    return f"""
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", {wrk.lua_string(path)}, {{{lua_headers}}},
                    '{{"order": ' .. n .. '}}')
end
"""


def kabar_runs(gateway: Gateway) -> dict[str, int]:
    with gateway.engine.connect() as connection:
        return dict(
            connection.execute(
                sa.text("SELECT status, count(*) FROM workflow_runs GROUP BY status")
            ).all()
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=None, help="Kabar's PostgreSQL URL")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--n8n-sqlite-pool",
        type=int,
        default=0,
        help=(
            "n8n's DB_SQLITE_POOL_SIZE: 0 (its default) keeps SQLite's rollback journal, "
            "more opens that many connections in WAL mode"
        ),
    )
    parser.add_argument(
        "--kabar-only",
        action="store_true",
        help="load Kabar alone (no n8n install): for before/after figures of Kabar itself",
    )
    args = parser.parse_args()
    if not wrk.available():
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    installed, remove = (None, None) if args.kabar_only else n8n_folder()
    gateway = Gateway(args.database)
    n8n = None
    rounds: list[tuple[dict, dict]] = []
    try:
        status, found = gateway.call("POST", "/api/v1/workflows?enable=true", HOOK)
        assert status == 200 and found.get("hook_token"), found
        kabar_path = f"/api/v1/hooks/{HOOK['name']}"
        kabar_load = hook_script(kabar_path, {"X-Kabar-Token": found["hook_token"]})
        n8n = None if installed is None else N8n(installed, args.n8n_sqlite_pool)
        n8n_load = hook_script(f"/webhook/{PATH}", {})
        load = {"connections": args.connections, "seconds": args.seconds}
        for _ in range(args.rounds):
            kabar = wrk.run(gateway.base + kabar_path, kabar_load, **load)
            if n8n is None:
                rounds.append((kabar, {}))
                print(f"round {len(rounds)}: Kabar {wrk.summary(kabar)}; {wrk.load_average()}")
                continue
            time.sleep(1)
            other = wrk.run(n8n.base + f"/webhook/{PATH}", n8n_load, **load)
            rounds.append((kabar, other))
            print(
                f"round {len(rounds)}: Kabar {wrk.summary(kabar)}; n8n {wrk.summary(other)};"
                f" {wrk.load_average()}",
                flush=True,
            )
            time.sleep(1)
        if n8n is not None:
            time.sleep(2)  # n8n stores an execution after it answered
        stored = (kabar_runs(gateway), n8n.executions() if n8n is not None else {})
        locked = gateway.log_path.read_text(errors="replace").count("database is locked")
    finally:
        if n8n is not None:
            n8n.close()
        gateway.close()
        if remove is not None:
            shutil.rmtree(remove, ignore_errors=True)

    if installed is None:
        kabar = [r[0] for r in rounds]
        print(
            f"Kabar alone on {'PostgreSQL' if args.database else 'SQLite'} (2 gunicorn "
            f"workers x 8 threads), wrk -t1 -c{args.connections} -d{args.seconds:g}s: "
            + "; ".join(wrk.summary(f) for f in kabar)
        )
        print(
            f"stored: {sum(stored[0].values())} runs {stored[0]} for "
            f"{sum(f['ok'] for f in kabar)} answers (+1 upload check); 'database is locked' "
            f"in kabar.log: {locked}"
        )
        return
    version = json.loads((installed / "node_modules" / "n8n" / "package.json").read_text())[
        "version"
    ]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, node {_node_version()}; Kabar on "
        f"{'PostgreSQL' if args.database else 'SQLite'} (kabar run: 2 gunicorn workers x "
        f"8 threads), n8n {version} on SQLite (regular mode, executions saved, "
        f"DB_SQLITE_POOL_SIZE={args.n8n_sqlite_pool}); "
        f"wrk -t1 -c{args.connections} -d{args.seconds:g}s, {args.rounds} rounds each, in "
        "turn; the load average is printed with each round"
    )
    for name, index in (("Kabar", 0), ("n8n", 1)):
        figures = [r[index] for r in rounds]
        print(f"{name}: " + "; ".join(wrk.summary(f) for f in figures))
    ratios = [k["rps"] / n["rps"] for k, n in rounds]
    p99 = [(k["p99"], n["p99"]) for k, n in rounds]
    print(
        "Kabar/n8n throughput: "
        + ", ".join(f"{r:.1f}x" for r in ratios)
        + "; p99 Kabar vs n8n: "
        + ", ".join(f"{k:.0f} vs {n:.0f} ms" for k, n in p99)
    )
    answered = (sum(r[0]["ok"] for r in rounds), sum(r[1]["ok"] for r in rounds))
    print(
        f"stored: Kabar {sum(stored[0].values())} runs {stored[0]} for {answered[0]} "
        f"answers (+1 upload check); n8n {sum(stored[1].values())} executions "
        f"{stored[1]} for {answered[1]} answers (+1 readiness check); 'database is "
        f"locked' in kabar.log: {locked}"
    )


def _node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
