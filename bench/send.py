"""REST send acceptance (issue 15, goals 2 and 8): how many messages a second the API
accepts (validated, idempotent, stored before it answers), beside the most this stack
can do for any request that stores something, in one run.

    .venv/bin/python bench/send.py [--database URL] [--seconds 10] [--connections 16]
                                   [--rate 500] [--bulk 500]

One ``kabar run`` in a temporary folder (SQLite there unless ``--database`` names a
PostgreSQL database, whose public schema is dropped and made anew), a sandbox session
that is not started (so only acceptance is measured, not sending), loaded by wrk on
127.0.0.1, in turn:

1. baseline: the same app and gunicorn settings (bench/send_baseline.py, on its own
   port) answering POST with one INSERT and COMMIT and nothing else;
2. send: POST /api/v1/sessions/{id}/messages, a text to a new number, a new
   Idempotency-Key each, as fast as it answers; the ratio send / baseline;
3. paced: the same at ``--rate`` requests a second (p99 is the figure);
4. bulk: POST .../messages/bulk with ``--bulk`` messages a request (keyed by the
   request's Idempotency-Key), in messages a second.

Every answered send is checked against the outbox rows, and kabar.log for "database is
locked". Prints figures, asserts nothing timed. Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import wrk
from send_baseline import TABLE
from sessions import ROOT, Gateway, free_port

WORKERS, THREADS = 2, 8  # kabar run's defaults (KABAR_WEB_WORKERS, KABAR_WEB_THREADS)


def keyed_post(path: str, headers: dict[str, str], body: str) -> str:
    """A wrk script: POST ``body`` to ``path``, a new Idempotency-Key each time (never
    one of an earlier script's), ``%d`` in ``body`` becomes the request's number."""
    lua_headers = ", ".join(
        f"[{wrk.lua_string(k)}] = {wrk.lua_string(v)}" for k, v in headers.items()
    )
    return f"""
local n = 0
local run = "{uuid.uuid4().hex}"
request = function()
  n = n + 1
  local headers = {{{lua_headers}}}
  headers["Idempotency-Key"] = "bench-" .. run .. "-" .. n
  return wrk.format("POST", {wrk.lua_string(path)}, headers,
                    string.format({wrk.lua_string(body)}, n % 100000000))
end
"""


class Baseline:
    """bench/send_baseline.py under gunicorn, with the gateway's settings and database."""

    def __init__(self, gateway: Gateway):
        with gateway.engine.begin() as connection:
            connection.execute(sa.text(f"DROP TABLE IF EXISTS {TABLE}"))
            key = (
                "INTEGER PRIMARY KEY AUTOINCREMENT"
                if gateway.url.startswith("sqlite")
                else "BIGSERIAL PRIMARY KEY"
            )
            connection.execute(sa.text(f"CREATE TABLE {TABLE} (id {key}, body TEXT)"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(gateway.instance / "baseline.log", "w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "send_baseline:app()",
                "--pythonpath",
                str(ROOT / "bench"),
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(WORKERS),
                "--threads",
                str(THREADS),
                "--worker-class",
                "gthread",
                "--access-logfile",
                "-",
            ],
            env=gateway.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        gateway.wait(lambda: _answers(self.base), timeout=60, what="the baseline server")

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        self.log.close()


def _answers(base: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(base + "/api/v1/health", timeout=2)
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def outbox_rows(gateway: Gateway) -> int:
    with gateway.engine.connect() as connection:
        return connection.scalar(sa.text("SELECT count(*) FROM outbox"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=None, help="a PostgreSQL URL (default SQLite)")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=500, help="the paced load, req/s")
    parser.add_argument("--bulk", type=int, default=500, help="messages per bulk request")
    args = parser.parse_args()

    gateway = Gateway(
        args.database, env={"KABAR_WEB_WORKERS": str(WORKERS), "KABAR_WEB_THREADS": str(THREADS)}
    )
    results: dict[str, dict] = {}
    try:
        status, session = gateway.call(
            "POST", "/api/v1/sessions", {"label": "bench", "transport": "sandbox"}
        )
        assert status == 201, session
        auth = {"Authorization": f"Bearer {gateway.token}", "Content-Type": "application/json"}
        path = f"/api/v1/sessions/{session['id']}/messages"
        one = '{"to": "6281%08d", "text": "bench message"}'
        load = {"connections": args.connections, "seconds": args.seconds}

        baseline = Baseline(gateway)
        try:
            results["baseline"] = wrk.run(
                baseline.base + "/bench/baseline",
                keyed_post("/bench/baseline", {"Content-Type": "application/json"}, one),
                **load,
            )
        finally:
            baseline.close()
        before = outbox_rows(gateway)
        results["send"] = wrk.run(gateway.base + path, keyed_post(path, auth, one), **load)
        results["paced"] = wrk.run(
            gateway.base + path,
            keyed_post(path, auth, one),
            connections=args.connections,
            seconds=args.seconds,
            rate=args.rate,
        )
        single_rows = outbox_rows(gateway) - before
        items = ", ".join(
            f'{{"to": "6282{i:08d}", "text": "bench bulk {i}"}}' for i in range(args.bulk)
        )
        results["bulk"] = wrk.run(
            gateway.base + path + "/bulk",
            keyed_post(path + "/bulk", auth, '{"messages": [' + items.replace("%", "%%") + "]}"),
            connections=4,
            seconds=args.seconds,
        )
        bulk_rows = outbox_rows(gateway) - before - single_rows
        load_average = wrk.load_average()
        locked = gateway.log_path.read_text(errors="replace").count("database is locked")
    finally:
        gateway.close()

    database = "PostgreSQL" if args.database else "SQLite"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {database}, gunicorn {WORKERS} workers x {THREADS} "
        f"threads, wrk -t1 on the same machine; {load_average} at the end"
    )
    c = args.connections
    print(f"baseline (one INSERT + COMMIT), {c} connections: {wrk.summary(results['baseline'])}")
    print(
        f"send, {c} connections: {wrk.summary(results['send'], unit='msgs/s')}; "
        f"send/baseline {results['send']['rps'] / results['baseline']['rps']:.2f}"
    )
    print(
        f"send paced at {args.rate:g} req/s, {c} connections: "
        f"{wrk.summary(results['paced'], unit='msgs/s')}"
    )
    print(
        f"bulk, {args.bulk} messages a request, 4 connections: "
        f"{wrk.summary(results['bulk'], per_request=args.bulk, unit='msgs/s')}"
    )
    answered = results["send"]["ok"] + results["paced"]["ok"]
    # wrk stops with requests in flight: a few rows more than answers is expected.
    print(
        f"stored: {single_rows} outbox rows for {answered} accepted sends, {bulk_rows} for "
        f"{results['bulk']['ok'] * args.bulk} accepted bulk items; 'database is locked' "
        f"in kabar.log: {locked}"
    )
    print(json.dumps({k: {m: round(v, 2) for m, v in r.items()} for k, r in results.items()}))


if __name__ == "__main__":
    main()
