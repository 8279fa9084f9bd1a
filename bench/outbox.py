"""Outbox benchmark: enqueue through the REST API with many concurrent clients, then the
drain rate of the runtime's dispatcher (sandbox transport, pacing off).

    .venv/bin/python bench/outbox.py [--messages 2000] [--clients 16] [--database URL]

Starts `kabar run` in a temporary instance folder (SQLite unless --database is given),
prints figures, asserts nothing. Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# tests/gateway.py, the end-to-end tests' helpers; the checkout first, before any
# installed package that also calls itself ``tests``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.gateway import Gateway, free_port, wait_for


class Client(Gateway):
    def __init__(self, base: str):
        super().__init__(base, timeout=60)

    def wait(self, predicate, timeout=120):
        wait_for(predicate, timeout=timeout, interval=0.1)


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--database", default=None, help="KABAR_DATABASE_URL")
    args = parser.parse_args()

    instance = tempfile.mkdtemp(prefix="kabar-bench-")
    port = free_port()
    env = {**os.environ, "KABAR_INSTANCE_PATH": instance, "KABAR_PORT": str(port),
           "KABAR_ADMIN_PASSWORD": "bench-password", "KABAR_WEB_WORKERS": str(args.workers),
           "KABAR_LOG_LEVEL": "WARNING"}
    if args.database:
        env["KABAR_DATABASE_URL"] = args.database
    kabar = [sys.executable, "-m", "server.cli"]
    subprocess.run([*kabar, "init"], env=env, check=True, capture_output=True)
    server = subprocess.Popen([*kabar, "run"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    client = Client(f"http://127.0.0.1:{port}")
    try:
        client.wait(lambda: client.call("GET", "/api/v1/ready")[0] == 200)
        client.token = client.call("POST", "/api/v1/auth/login", {
            "username": "admin", "password": "bench-password"})[1]["access_token"]
        _, session = client.call("POST", "/api/v1/sessions", {
            "label": "bench", "transport": "sandbox", "auto_start": True,
            "settings": {"pacing": {"enabled": False}, "sandbox": {"receipts": False}}})
        sid = session["id"]
        client.wait(lambda: client.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "qr")
        client.call("POST", f"/api/v1/sandbox/sessions/{sid}/scan", {})
        client.wait(lambda: client.call("GET", f"/api/v1/sessions/{sid}")[1]["status"]
                    == "connected")
        # Hold the dispatcher back so enqueue and drain are measured apart.
        client.call("POST", f"/api/v1/sessions/{sid}/stop")
        client.wait(lambda: client.call("GET", f"/api/v1/sessions/{sid}")[1]["status"]
                    == "stopped")

        def enqueue(i: int) -> float:
            started = time.perf_counter()
            status, _ = client.call("POST", f"/api/v1/sessions/{sid}/messages",
                                    {"to": f"6281{i:08d}", "text": f"bench {i}"})
            assert status == 202, status
            return time.perf_counter() - started

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            latencies = list(pool.map(enqueue, range(args.messages)))
        enqueue_seconds = time.perf_counter() - started

        client.call("POST", f"/api/v1/sessions/{sid}/start")
        started = time.perf_counter()

        import sqlalchemy as sa

        engine = sa.create_engine(args.database or f"sqlite:///{instance}/kabar.db")

        def drained() -> bool:
            with engine.connect() as connection:
                return connection.scalar(sa.text(
                    "SELECT count(*) FROM outbox WHERE status = 'sent'")) >= args.messages

        client.wait(drained, timeout=1800)
        drain_seconds = time.perf_counter() - started
        engine.dispose()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, database "
          f"{'PostgreSQL' if args.database else 'SQLite'}, {args.workers} web workers")
    print(f"enqueue: {args.messages} messages, {args.clients} concurrent clients: "
          f"{args.messages / enqueue_seconds:.0f} msgs/s, "
          f"p50 {percentile(latencies, 50) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 99) * 1000:.1f} ms")
    print(f"drain: {args.messages} messages in {drain_seconds:.1f} s: "
          f"{args.messages / drain_seconds:.0f} msgs/s (one session)")


if __name__ == "__main__":
    main()
