"""Webhook benchmark (issue 15): an inbound message to its signed webhook, delivered.

    .venv/bin/python bench/webhooks.py [--rate 200] [--seconds 15] [--database URL]

Runs the app and the real runtime (on a thread) in this process over a fresh database, as
``bench/workflows.py`` does (SQLite in a temporary folder, or ``--database`` a PostgreSQL
database whose public schema is dropped and made anew), pairs a sandbox session, and points
a webhook (``message.received``) at a receiver on 127.0.0.1 in this process, which checks
each signature (``standardwebhooks``) and notes when each event arrived. Virtual contacts
then send messages at ``--rate`` a second for ``--seconds`` in an open loop, at the sandbox
transport's ``inject`` (what a WhatsApp message does: the transport's callback), spread
over 100 chats.

Latency is from the event's row (its envelope's ``timestamp``, set when the runtime stores
the message) to the receiver having read the signed request: what Kabar adds between
storing a message and a receiver holding it.
Prints figures, asserts nothing timed. Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class Receiver(BaseHTTPRequestHandler):
    # Keep-alive, as real receivers (n8n, a CRM behind nginx) do: HTTP/1.0 would close
    # the connection after every delivery.
    protocol_version = "HTTP/1.1"
    secret: str = ""
    arrivals: dict[str, float] = {}  # event id -> latency in seconds
    bad = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        arrived = time.time()
        from standardwebhooks import Webhook

        try:
            event = Webhook(self.secret).verify(body, dict(self.headers))
        except Exception:
            with self.lock:
                Receiver.bad += 1
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        stored = datetime.fromisoformat(event["timestamp"]).timestamp()
        with self.lock:
            Receiver.arrivals[event["id"]] = arrived - stored
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200, help="messages a second")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--database", default=None, help="KABAR_DATABASE_URL")
    args = parser.parse_args()

    os.environ["KABAR_WEBHOOK_ALLOW"] = "127.0.0.1"
    from workflows import InProcess

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bench = InProcess(args.database)
    try:
        bench.start_runtime()
        sid = bench.sandbox_session()
        status, hook = bench.call(
            "POST",
            "/api/v1/webhooks",
            {
                "session_id": sid,
                "url": f"http://127.0.0.1:{server.server_port}/hook",
                "events": ["message.received"],
            },
        )
        assert status == 201, hook
        Receiver.secret = hook["secret"]
        transport = bench.runtime.live[sid].transport
        total = int(args.rate * args.seconds)
        cpu_began = time.process_time()
        began = time.perf_counter()

        def say(index: int) -> None:
            due = began + index / args.rate  # an open loop: at the rate, whatever happens
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            transport.inject(sender=f"62812{index % 100:07d}", name="Bench", text=f"halo {index}")

        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(say, range(total)))
        sent_seconds = time.perf_counter() - began
        deadline = time.monotonic() + 300
        while len(Receiver.arrivals) < total and time.monotonic() < deadline:
            time.sleep(0.1)
        cpu = time.process_time() - cpu_began
    finally:
        bench.close()
        server.shutdown()
    latencies = sorted(Receiver.arrivals.values())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, database "
        f"{'PostgreSQL' if args.database else 'SQLite'}; load average (1 min) at the end "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"webhooks: {total} messages injected at {args.rate:g}/s, in {sent_seconds:.1f} s "
        f"({total / sent_seconds:.0f}/s); {len(latencies)} signed webhooks received, "
        f"{Receiver.bad} with a bad signature"
    )
    print(
        f"  stored -> webhook received: p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p90 {percentile(latencies, 90) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )
    print(
        f"  this process's CPU time meanwhile (runtime, receiver, feeders): {cpu:.1f} s "
        f"({cpu / total * 1000:.2f} ms a message)"
    )


if __name__ == "__main__":
    main()
