"""Outbox benchmark: enqueue through the REST API with many concurrent clients, then the
drain rate of the runtime's dispatcher (sandbox transport, pacing off).

    .venv/bin/python bench/outbox.py [--messages 2000] [--clients 16] [--database URL]
    .venv/bin/python bench/outbox.py drain [--sessions 50] [--messages 20000] [--chats 2000]
                                           [--receipts] [--database URL]

Starts `kabar run` in a temporary instance folder (SQLite unless --database is given),
prints figures, asserts nothing. Record results in docs/benchmarks.md.

``drain`` (issue 15) pairs N sandbox sessions, stops them, queues the messages straight
into the database through the outbox service (the one send path, in this process: the
REST path is measured by the default mode), spread round-robin over the sessions and over
``--chats`` chats of each, then starts the sessions and times until every row is sent (and,
with ``--receipts``, read: the sandbox's simulated receipts applied). It then checks what
a user would: every message delivered exactly once (one ``sandbox_deliveries`` row per
WhatsApp id), and each chat's messages delivered in the order they were queued.
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


def drain(argv: list[str]) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sessions import Gateway, cpu_seconds

    parser = argparse.ArgumentParser(prog="bench/outbox.py drain")
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--messages", type=int, default=10000, help="in all")
    parser.add_argument("--chats", type=int, default=1000, help="per session")
    parser.add_argument("--receipts", action="store_true", help="simulated receipts on")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--database", default=None, help="KABAR_DATABASE_URL")
    parser.add_argument(
        "--profile",
        default=None,
        help="py-spy the runtime during the drain into this SVG (.txt: collapsed stacks)",
    )
    args = parser.parse_args(argv)

    import sqlalchemy as sa

    gateway = Gateway(args.database, {"KABAR_WEB_WORKERS": "1"})
    profiler = None
    try:
        ids = []
        for index in range(args.sessions):
            status, session = gateway.call(
                "POST",
                "/api/v1/sessions",
                {
                    "label": f"drain {index}",
                    "transport": "sandbox",
                    "auto_start": True,
                    "settings": {
                        "pacing": {"enabled": False},
                        "sandbox": {"receipts": args.receipts},
                    },
                },
            )
            assert status == 201, session
            sid = session["id"]
            gateway.wait(
                lambda sid=sid: gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "qr",
                what="QR",
            )
            gateway.call(
                "POST", f"/api/v1/sandbox/sessions/{sid}/scan", {"phone": f"62811{index:07d}"}
            )
            gateway.wait(
                lambda sid=sid: (
                    gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "connected"
                ),
                what="connected",
            )
            ids.append(sid)
        for sid in ids:
            gateway.call("POST", f"/api/v1/sessions/{sid}/stop")
        gateway.wait(
            lambda: all(
                gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "stopped"
                for sid in ids
            ),
            what="stopped",
        )

        os.environ.update({k: v for k, v in gateway.env.items() if k.startswith("KABAR_")})
        from server import create_app, outbox
        from server.models import WaSession, db

        app = create_app()
        began = time.perf_counter()
        with app.app_context():
            sessions = [db.session.get(WaSession, sid) for sid in ids]
            for i in range(args.messages):
                session = sessions[i % len(sessions)]
                chat = (i // len(sessions)) % args.chats
                outbox.send(session, {"to": f"6285{chat:08d}", "text": f"drain {i}"}, commit=False)
                if i % 1000 == 999:
                    db.session.commit()
            db.session.commit()
            db.session.remove()
        load_seconds = time.perf_counter() - began
        engine = gateway.engine

        def count(sql: str) -> int:
            with engine.connect() as connection:
                return connection.scalar(sa.text(sql))

        if args.profile:
            profiler = subprocess.Popen(
                [
                    os.path.join(os.path.dirname(sys.executable), "py-spy"),
                    "record",
                    "-o",
                    args.profile,
                    "--pid",
                    str(gateway.runtime_pid()),
                    "--rate",
                    "100",
                    "--gil",
                    "--nonblocking",
                    # a .txt: collapsed stacks, one a line (to sum by function)
                    *(["--format", "raw"] if args.profile.endswith(".txt") else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
        runtime = gateway.runtime_pid()
        cpu_began = cpu_seconds(runtime)
        for sid in ids:
            gateway.call("POST", f"/api/v1/sessions/{sid}/start")
        started = time.perf_counter()
        gateway.wait(
            lambda: (
                count("SELECT count(*) FROM outbox WHERE status IN ('sent', 'delivered', 'read')")
                >= args.messages
            ),
            timeout=args.timeout,
            interval=0.05,
            what="every message sent",
        )
        sent_seconds = time.perf_counter() - started
        read_seconds = None
        if args.receipts:
            gateway.wait(
                lambda: count("SELECT count(*) FROM outbox WHERE status = 'read'") >= args.messages,
                timeout=args.timeout,
                interval=0.05,
                what="every receipt applied",
            )
            read_seconds = time.perf_counter() - started
        cpu = cpu_seconds(runtime) - cpu_began
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        with engine.connect() as connection:
            twice = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM (SELECT wa_id FROM sandbox_deliveries "
                    "GROUP BY session_id, wa_id HAVING count(*) > 1) AS t"
                )
            )
            delivered = connection.scalar(sa.text("SELECT count(*) FROM sandbox_deliveries"))
            rows = connection.execute(
                sa.text(
                    "SELECT o.session_id, o.to_jid, o.seq, d.id FROM outbox o JOIN "
                    "sandbox_deliveries d ON d.session_id = o.session_id AND d.wa_id = o.wa_id "
                    "ORDER BY o.session_id, o.to_jid, o.seq"
                )
            ).all()
            failed = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM outbox WHERE status NOT IN ('sent', 'delivered', 'read')"
                )
            )
        out_of_order, last = 0, {}
        for session_id, to_jid, _seq, delivery_id in rows:
            key = (session_id, to_jid)
            if key in last and delivery_id < last[key]:
                out_of_order += 1
            last[key] = delivery_id
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        gateway.close()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, database "
        f"{'PostgreSQL' if args.database else 'SQLite'}; load average (1 min) at the end "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"drain: {args.messages} messages over {args.sessions} session(s), "
        f"{args.chats} chats each, pacing off, receipts {'on' if args.receipts else 'off'} "
        f"(queued in {load_seconds:.1f} s)"
    )
    print(
        f"  every message sent in {sent_seconds:.1f} s: {args.messages / sent_seconds:.0f} msgs/s"
    )
    if read_seconds is not None:
        print(
            f"  every receipt (delivered, read) applied after {read_seconds:.1f} s: "
            f"{args.messages / read_seconds:.0f} msgs/s (the read receipt comes 1 s after "
            f"the send)"
        )
    print(
        f"  the runtime's CPU time meanwhile: {cpu:.1f} s, {cpu / args.messages * 1000:.2f} ms "
        f"a message (what caps it on an idle core: {args.messages / cpu:.0f} msgs/s)"
    )
    print(
        f"  delivered: {delivered} rows; sent twice: {twice}; not sent: {failed}; "
        f"out of order within a chat: {out_of_order}"
    )


def main() -> None:
    if sys.argv[1:2] == ["drain"]:
        drain(sys.argv[2:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--database", default=None, help="KABAR_DATABASE_URL")
    args = parser.parse_args()

    instance = tempfile.mkdtemp(prefix="kabar-bench-")
    port = free_port()
    env = {
        **os.environ,
        "KABAR_INSTANCE_PATH": instance,
        "KABAR_PORT": str(port),
        "KABAR_ADMIN_PASSWORD": "bench-password",
        "KABAR_WEB_WORKERS": str(args.workers),
        "KABAR_LOG_LEVEL": "WARNING",
    }
    if args.database:
        env["KABAR_DATABASE_URL"] = args.database
    kabar = [sys.executable, "-m", "server.cli"]
    subprocess.run([*kabar, "init"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [*kabar, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    client = Client(f"http://127.0.0.1:{port}")
    try:
        client.wait(lambda: client.call("GET", "/api/v1/ready")[0] == 200)
        client.token = client.call(
            "POST", "/api/v1/auth/login", {"username": "admin", "password": "bench-password"}
        )[1]["access_token"]
        _, session = client.call(
            "POST",
            "/api/v1/sessions",
            {
                "label": "bench",
                "transport": "sandbox",
                "auto_start": True,
                "settings": {"pacing": {"enabled": False}, "sandbox": {"receipts": False}},
            },
        )
        sid = session["id"]
        client.wait(lambda: client.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "qr")
        client.call("POST", f"/api/v1/sandbox/sessions/{sid}/scan", {})
        client.wait(
            lambda: client.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "connected"
        )
        # Hold the dispatcher back so enqueue and drain are measured apart.
        client.call("POST", f"/api/v1/sessions/{sid}/stop")
        client.wait(lambda: client.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "stopped")

        def enqueue(i: int) -> float:
            started = time.perf_counter()
            status, _ = client.call(
                "POST",
                f"/api/v1/sessions/{sid}/messages",
                {"to": f"6281{i:08d}", "text": f"bench {i}"},
            )
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
                return (
                    connection.scalar(sa.text("SELECT count(*) FROM outbox WHERE status = 'sent'"))
                    >= args.messages
                )

        client.wait(drained, timeout=1800)
        drain_seconds = time.perf_counter() - started
        engine.dispose()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, database "
        f"{'PostgreSQL' if args.database else 'SQLite'}, {args.workers} web workers"
    )
    print(
        f"enqueue: {args.messages} messages, {args.clients} concurrent clients: "
        f"{args.messages / enqueue_seconds:.0f} msgs/s, "
        f"p50 {percentile(latencies, 50) * 1000:.1f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.1f} ms"
    )
    print(
        f"drain: {args.messages} messages in {drain_seconds:.1f} s: "
        f"{args.messages / drain_seconds:.0f} msgs/s (one session)"
    )


if __name__ == "__main__":
    main()
