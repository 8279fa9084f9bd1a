"""Workflow benchmarks (issue #6): the auto-reply example end to end through the sandbox,
an HTTP hook under concurrent load, and resuming runs among 100,000 waiting ones.

    .venv/bin/python bench/workflows.py auto-reply [--messages 500] [--contacts 250]
                                                   [--clients 12] [--history 0]
    .venv/bin/python bench/workflows.py hook [--requests 2000] [--clients 16] [--workers 2]
    .venv/bin/python bench/workflows.py waiting [--runs 100000] [--small 1000]
                                                [--sample 300] [--through-runtime 20]

Each takes ``--database postgresql+psycopg://…`` for PostgreSQL (its public schema is
dropped and made anew, as the tests do); SQLite in a temporary folder otherwise.

``auto-reply`` and ``waiting`` run the app in this process with the real runtime on a
thread, as tests/server/conftest.py does. The web side (the sandbox service, the API
through a test client) is a second app object over the same database with its own
connection pool, as the web workers and the runtime are separate processes under
``kabar run``. ``hook`` starts ``kabar run`` and drives it over HTTP.

They print figures and assert nothing timed. Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from outbox import percentile  # bench/outbox.py, beside this file

# tests/gateway.py, the end-to-end tests' helpers; the checkout first, before any
# installed package that also calls itself ``tests``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.gateway import free_port

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password"
SECRET = "bench-secret-key-that-is-long-enough-for-hs256"

HOOK = {
    "name": "bench-hook",
    "description": "hook -> set -> respond",
    "trigger": {"type": "hook"},
    "start": "remember",
    "nodes": {
        "remember": {
            "type": "set",
            "params": {"variables": {"order": "{{ trigger.body.order }}"}},
            "next": {"next": "answer"},
        },
        "answer": {
            "type": "respond",
            "params": {"status": 200, "json": {"order": "{{ vars.order }}", "accepted": True}},
        },
    },
}


# -- common --------------------------------------------------------------------------------


def shipped(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "workflows" / f"{name}.json").read_text())


def fresh_database(url: str | None, instance: Path) -> str:
    """The database to use, empty: SQLite in ``instance``, or ``url`` with its public
    schema dropped and made anew (migrations then build on a clean slate)."""
    if url is None:
        return f"sqlite:///{instance / 'kabar.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def spread(values: list[float]) -> str:
    return (
        f"p50 {ms(percentile(values, 50))}, p99 {ms(percentile(values, 99))}"
        if values
        else "no samples"
    )


def machine(database: str | None, extra: str = "") -> str:
    """One line on where the figures come from, with the load average (1 min) at the
    end: other work on the machine shows in every figure."""
    return (
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, database "
        f"{'PostgreSQL' if database else 'SQLite'}{extra}; load average at the end "
        f"{os.getloadavg()[0]:.1f}"
    )


def wait_until(predicate, *, timeout: float = 120, what: str = "condition", interval: float = 0.05):
    from server.models import db

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        db.session.rollback()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")


class InProcess:
    """The app over one fresh database, twice: ``web`` (API, sandbox service) and
    ``runtime_app`` (the runtime thread), each with its own connection pool. The main
    thread stays in ``web``'s app context."""

    def __init__(self, database: str | None):
        from server import create_app
        from server import database as migrations
        from server.auth import accounts

        self.instance = Path(tempfile.mkdtemp(prefix="kabar-bench-"))
        (self.instance / "workflows").mkdir()  # empty: workflows are uploaded
        self.url = fresh_database(database, self.instance)
        config = {
            "INSTANCE_PATH": str(self.instance),
            "WORKFLOWS_DIR": str(self.instance / "workflows"),
            "DATABASE_URL": self.url,
            "SECRET_KEY": SECRET,
            "LOG_LEVEL": "WARNING",
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST": 64,
        }
        self.web = create_app(config)
        self.runtime_app = create_app(config)
        self.context = self.web.app_context()
        self.context.push()
        migrations.upgrade()
        accounts.create_user(username="admin", password=PASSWORD, group="admin")
        self.client = self.web.test_client()
        _, login = self.call(
            "POST", "/api/v1/auth/login", {"username": "admin", "password": PASSWORD}
        )
        self.headers = {"Authorization": f"Bearer {login['access_token']}"}
        self.runtime = self.thread = None

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = self.client.open(
            path, method=method, json=body, headers=getattr(self, "headers", {})
        )
        return response.status_code, response.get_json(silent=True)

    def start_runtime(self) -> None:
        from server.runtime import heartbeat
        from server.runtime.process import Runtime

        self.runtime = Runtime(self.runtime_app)
        self.thread = threading.Thread(target=self.runtime.run, name="bench-runtime", daemon=True)
        self.thread.start()
        wait_until(lambda: heartbeat.state().alive, what="the runtime's lease")

    def stop_runtime(self) -> None:
        if self.thread is not None:
            self.runtime.request_stop()
            self.thread.join(timeout=60)
            self.runtime = self.thread = None

    def sandbox_session(self) -> str:
        """A connected sandbox session, pacing and simulated receipts off, auto-start on
        (it comes back when the runtime restarts)."""
        status, session = self.call(
            "POST",
            "/api/v1/sessions",
            {
                "label": "bench",
                "transport": "sandbox",
                "auto_start": True,
                "settings": {"pacing": {"enabled": False}, "sandbox": {"receipts": False}},
            },
        )
        assert status == 201, session
        sid = session["id"]
        self.wait_status(sid, "qr")
        status, body = self.call(
            "POST", f"/api/v1/sandbox/sessions/{sid}/scan", {"phone": "6281100000001"}
        )
        assert status == 200, body
        self.wait_status(sid, "connected")
        return sid

    def wait_status(self, sid: str, status: str) -> None:
        wait_until(
            lambda: self.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == status,
            what=f"session {status}",
        )

    def upload(self, doc: dict[str, Any]) -> dict[str, Any]:
        status, body = self.call("POST", "/api/v1/workflows?enable=true", doc)
        assert status == 200, body
        return body

    def close(self) -> None:
        from server.models import db

        self.stop_runtime()
        db.session.remove()
        self.context.pop()
        for app in (self.web, self.runtime_app):
            with app.app_context():
                db.engine.dispose()
        shutil.rmtree(self.instance, ignore_errors=True)


# -- 1. auto-reply ---------------------------------------------------------------------------


def bench_auto_reply(args: argparse.Namespace) -> None:
    """N messages from many contacts; the shipped auto-reply answers each. Runs/s to the
    last run completed and to the last reply delivered, fed two ways in turn:

    - ``service``: ``server.sandbox_controls.say`` (what POST /api/v1/sandbox/sessions/{id}/messages
      does): a runtime command per message, run by the runtime's loop;
    - ``transport``: the sandbox transport's ``inject`` called directly (what that
      command runs), so the web-to-runtime command channel is not the limit.
    """
    from server import sandbox_controls
    from server.models import Message, SandboxDelivery, WaSession, WorkflowRun, db

    bench = InProcess(args.database)
    results = []
    try:
        bench.start_runtime()
        sid = bench.sandbox_session()
        if args.history:
            history_seconds = in_child(history_rows, bench.url, sid, args.history)
            print(f"history: {args.history} old messages stored in {history_seconds:.1f} s")
            _analyze(bench.url, "messages")
        bench.upload(shipped("auto-reply"))
        contacts = [f"62812{c:07d}" for c in range(args.contacts)]
        transport = bench.runtime.live[sid].transport

        def by_service(sent: list[str], worker: int) -> None:
            with bench.web.app_context():
                session = db.session.get(WaSession, sid)
                for i in range(worker, args.messages, args.clients):
                    status, wa_id = sandbox_controls.say(
                        session, name="Bench", text=f"halo {i}", sender=contacts[i % len(contacts)]
                    )
                    assert status == "delivered", status
                    sent.append(wa_id)
                db.session.remove()

        def by_transport(sent: list[str], worker: int) -> None:
            for i in range(worker, args.messages, args.clients):
                sent.append(
                    transport.inject(
                        sender=contacts[i % len(contacts)], name="Bench", text=f"halo {i}"
                    ).id
                )

        def count(model) -> int:
            return db.session.scalar(sa.select(sa.func.count()).select_from(model))

        for feed, inject in (("service", by_service), ("transport", by_transport)):
            sent: list[str] = []  # the messages' WhatsApp ids (list.append is atomic)
            started = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(partial(inject, sent), range(args.clients)))
            inject_seconds = time.perf_counter() - started
            total = len(results) * args.messages + args.messages
            wait_until(
                lambda total=total: (
                    db.session.scalar(
                        sa.select(sa.func.count())
                        .select_from(WorkflowRun)
                        .where(WorkflowRun.finished_at.is_not(None))
                    )
                    >= total
                ),
                timeout=1800,
                interval=0.2,
                what="every run to finish",
            )
            wait_until(
                lambda total=total: count(SandboxDelivery) >= total,
                timeout=1800,
                interval=0.2,
                what="every reply to be delivered",
            )
            stored = dict(
                db.session.execute(
                    sa.select(Message.wa_id, Message.created_at).where(
                        Message.session_id == sid, Message.wa_id.in_(sent)
                    )
                ).all()
            )
            runs = [
                run
                for run in db.session.execute(
                    sa.select(WorkflowRun.state, WorkflowRun.status, WorkflowRun.finished_at)
                ).all()
                if run.state["trigger"]["message_id"] in stored
            ]
            replies = [
                reply
                for reply in db.session.execute(
                    sa.select(SandboxDelivery.content, SandboxDelivery.received_at)
                ).all()
                if reply.content["quoted_id"] in stored
            ]
            db.session.rollback()
            results.append((feed, inject_seconds, stored, runs, replies))
    finally:
        bench.close()

    print(machine(args.database, ", the runtime on a thread of this process"))
    print(
        f"auto-reply: {args.messages} messages from {args.contacts} contacts, "
        f"{args.clients} injecting threads, fed by each of two paths in turn; "
        f"{args.history} older messages in the session's history"
    )
    for feed, inject_seconds, stored, runs, replies in results:
        first = min(stored.values())
        run_seconds = (max(run.finished_at for run in runs) - first).total_seconds()
        reply_seconds = (max(reply.received_at for reply in replies) - first).total_seconds()
        run_latency = [
            (run.finished_at - stored[run.state["trigger"]["message_id"]]).total_seconds()
            for run in runs
        ]
        reply_latency = [
            (reply.received_at - stored[reply.content["quoted_id"]]).total_seconds()
            for reply in replies
        ]
        failed = sum(run.status != "completed" for run in runs)
        print(f"  fed by the sandbox {feed}: {len(stored) / inject_seconds:.0f} msgs/s stored")
        print(
            f"    runs: {len(runs)} finished ({failed} not completed) in {run_seconds:.1f} s "
            f"from the first message stored: {len(runs) / run_seconds:.0f} runs/s; "
            f"stored -> run completed {spread(run_latency)}"
        )
        print(
            f"    replies: {len(replies)} delivered to the sandbox in {reply_seconds:.1f} s: "
            f"{len(replies) / reply_seconds:.0f} replies/s; stored -> delivered "
            f"{spread(reply_latency)}"
        )


# -- 2. hook ---------------------------------------------------------------------------------


def bench_hook(args: argparse.Namespace) -> None:
    """POST /api/v1/hooks/bench-hook (hook -> set -> respond) with C concurrent clients
    against `kabar run`; every run must be stored."""
    import signal
    import subprocess
    import sys

    import httpx

    instance = Path(tempfile.mkdtemp(prefix="kabar-bench-"))
    (instance / "workflows").mkdir()
    url = fresh_database(args.database, instance)
    port = free_port()
    env = {
        **os.environ,
        "KABAR_INSTANCE_PATH": str(instance),
        "KABAR_PORT": str(port),
        "KABAR_DATABASE_URL": url,
        "KABAR_WORKFLOWS_DIR": str(instance / "workflows"),
        "KABAR_ADMIN_PASSWORD": PASSWORD,
        "KABAR_WEB_WORKERS": str(args.workers),
        "KABAR_LOG_LEVEL": "WARNING",
    }
    kabar = [sys.executable, "-m", "server.cli"]
    subprocess.run([*kabar, "init"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [*kabar, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    local = threading.local()
    try:
        admin = httpx.Client(base_url=base, timeout=60)
        deadline = time.monotonic() + 120
        while True:
            try:
                if admin.get("/api/v1/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("kabar run did not become ready")
            time.sleep(0.1)
        token = admin.post(
            "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
        ).json()["access_token"]
        uploaded = admin.post(
            "/api/v1/workflows?enable=true", json=HOOK, headers={"Authorization": f"Bearer {token}"}
        )
        assert uploaded.status_code == 200, uploaded.text
        hook_headers = {"X-Kabar-Token": uploaded.json()["hook_token"]}

        def post(i: int) -> float:
            client = getattr(local, "client", None)
            if client is None:  # one keep-alive connection per client thread
                client = local.client = httpx.Client(base_url=base, timeout=60)
            began = time.perf_counter()
            response = client.post(
                "/api/v1/hooks/bench-hook", json={"order": i}, headers=hook_headers
            )
            took = time.perf_counter() - began
            assert response.status_code == 200, (response.status_code, response.text)
            assert response.json() == {"order": i, "accepted": True}, response.text
            return took

        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(post, range(-args.clients, 0)))  # warm up: connections, caches
            started = time.perf_counter()
            latencies = list(pool.map(post, range(args.requests)))
            seconds = time.perf_counter() - started

        engine = sa.create_engine(url)
        with engine.connect() as connection:
            statuses = dict(
                connection.execute(
                    sa.text("SELECT status, count(*) FROM workflow_runs GROUP BY status")
                ).all()
            )
        engine.dispose()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        shutil.rmtree(instance, ignore_errors=True)

    sent = args.requests + args.clients
    stored = sum(statuses.values())
    print(
        machine(
            args.database,
            f", {args.workers} gunicorn workers x 8 threads "
            "(`kabar run`), clients: httpx on the same machine",
        )
    )
    print(
        f"hook -> set -> respond: {args.requests} requests, {args.clients} concurrent "
        f"clients (keep-alive): {args.requests / seconds:.0f} runs/s, {spread(latencies)}"
    )
    print(
        f"  runs stored: {stored} of {sent} requests (warm-up included), by status "
        f"{statuses}: {'all persisted' if stored == sent else 'MISSING RUNS'}"
    )


# -- 3. waiting runs ---------------------------------------------------------------------------

TEMPLATE_PHONE = "6281300000000"
CLONE_PHONE = "6285{:09d}"  # distinct chats for the cloned runs


def clone_rows(
    url: str, template: dict[str, Any], first: int, count: int, took, chunk: int = 2000
) -> None:
    """Insert ``count`` copies of a real waiting run, each on its own chat (run in a child
    process, so the benchmark's memory is not the loader's). The state is the template's
    JSON with the chat's phone and the run id replaced."""
    from server.models import WorkflowRun

    engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    started = time.perf_counter()
    text = json.dumps(template["state"])
    old_id = template["id"]
    for start in range(first, first + count, chunk):
        rows = []
        for i in range(start, min(first + count, start + chunk)):
            phone, run_id = CLONE_PHONE.format(i), uuid.uuid4().hex

            def swap(value: str, phone=phone, run_id=run_id) -> str:
                return value.replace(TEMPLATE_PHONE, phone).replace(old_id, run_id)

            row = {
                key: swap(value) if isinstance(value, str) else value
                for key, value in template.items()
                if key != "state"
            }
            row["state"] = json.loads(swap(text))
            rows.append(row)
        with engine.begin() as connection:
            connection.execute(WorkflowRun.__table__.insert(), rows)
    took.value = time.perf_counter() - started
    engine.dispose()


def history_rows(url: str, session_id: str, count: int, took, chunk: int = 5000) -> None:
    """Insert ``count`` old inbound messages into the session's history, from 2,000
    contacts (run in a child process)."""
    from server.models import Message

    engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
    started, now = time.perf_counter(), datetime.now(UTC)
    for start in range(0, count, chunk):
        rows = []
        for i in range(start, min(count, start + chunk)):
            phone = f"62877{i % 2000:07d}"
            jid = f"{phone}@s.whatsapp.net"
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "session_id": session_id,
                    "wa_id": f"HISTORY{i:012d}",
                    "direction": "in",
                    "chat_jid": jid,
                    "chat_phone": phone,
                    "sender_jid": jid,
                    "sender_phone": phone,
                    "is_group": False,
                    "from_me": False,
                    "kind": "text",
                    "text": f"old message {i}",
                    "status": "received",
                    "timestamp": now,
                    "created_at": now,
                }
            )
        with engine.begin() as connection:
            connection.execute(Message.__table__.insert(), rows)
    took.value = time.perf_counter() - started
    engine.dispose()


def in_child(target, *args) -> float:
    """Run a loader in a spawned child process (so this process's memory is not the
    loader's); the seconds its inserts took."""
    spawn = multiprocessing.get_context("spawn")
    took = spawn.Value("d", 0.0)
    child = spawn.Process(target=target, args=(*args, took))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed (exit code {child.exitcode})")
    return took.value


def bench_waiting(args: argparse.Namespace) -> None:
    """Resume latency with ``--small`` and with ``--runs`` runs waiting on distinct chats,
    two ways: the inbox worker's own work on one message (``handle_one``, runtime stopped),
    and end to end through the runtime (sandbox message -> run completed)."""
    from server import sandbox_controls
    from server.events import InboundMessage, MessageReceived, Party
    from server.models import Message, OutboxMessage, WaSession, WorkflowInbox, WorkflowRun, db
    from server.runtime import sink
    from server.whatsapp.transport import new_message_id
    from server.workflows.worker import handle_one

    bench = InProcess(args.database)
    figures: dict[int, dict[str, Any]] = {}
    try:
        bench.start_runtime()
        sid = bench.sandbox_session()
        survey = shipped("survey")
        survey["nodes"]["ask"]["params"]["timeout"] = 7 * 86400  # none times out meanwhile
        bench.upload(survey)
        session = db.session.get(WaSession, sid)
        sandbox_controls.say(session, sender=TEMPLATE_PHONE, name="Bench", text="#survey")
        template_id = wait_until(
            lambda: db.session.scalar(
                sa.select(WorkflowRun.id).where(WorkflowRun.status == "waiting")
            ),
            what="the template run to wait",
        )
        template = dict(
            db.session.execute(
                sa.select(WorkflowRun.__table__).where(WorkflowRun.id == template_id)
            )
            .mappings()
            .one()
        )
        template.pop("seq")
        db.session.rollback()
        rng = random.Random(6)
        loaded = 0  # clones 0 .. loaded-1 exist
        used: set[int] = set()

        def waiting() -> int:
            return db.session.scalar(
                sa.select(sa.func.count())
                .select_from(WorkflowRun)
                .where(WorkflowRun.status == "waiting")
            )

        def pick(n: int) -> list[str]:
            chosen = rng.sample(
                [i for i in range(loaded) if i not in used] if loaded < 20_000 else range(loaded),
                n * 2,
            )
            chosen = [i for i in chosen if i not in used][:n]
            used.update(chosen)
            return [CLONE_PHONE.format(i) for i in chosen]

        def run_ids(phones: list[str]) -> list[str]:
            """The runs waiting on these chats (found by the reply index)."""
            ids = [
                db.session.scalar(
                    sa.select(WorkflowRun.id).where(
                        WorkflowRun.wait_session_id == sid,
                        WorkflowRun.status == "waiting",
                        WorkflowRun.wait_chat == f"{phone}@s.whatsapp.net",
                    )
                )
                for phone in phones
            ]
            db.session.rollback()
            assert None not in ids, "a chosen chat has no waiting run"
            return ids

        def completed(ids: list[str]) -> int:
            return db.session.scalar(
                sa.select(sa.func.count())
                .select_from(WorkflowRun)
                .where(WorkflowRun.id.in_(ids), WorkflowRun.status == "completed")
            )

        def directly(phones: list[str]) -> list[float]:
            """Store each reply as the sink does (message, event, inbox item; committed),
            then time ``handle_one`` on its inbox item: find the waiting run, claim it,
            resume it to the end (its thanks queued in the outbox), commit."""
            took, ids = [], run_ids(phones)
            with bench.runtime_app.app_context(), StatementClock(db.engine) as clock:
                for phone in phones:
                    jid = f"{phone}@s.whatsapp.net"
                    party = Party(jid=jid, phone=phone, name="Bench")
                    sink.handle(
                        sid,
                        MessageReceived(
                            message=InboundMessage(
                                id=new_message_id(),
                                chat=party,
                                sender=party,
                                timestamp=datetime.now(UTC),
                                kind="text",
                                text="5",
                            )
                        ),
                    )
                    item_id = db.session.scalar(
                        sa.select(WorkflowInbox.id).where(
                            WorkflowInbox.ordering_key == f"{sid}/{jid}"
                        )
                    )
                    db.session.rollback()
                    began = time.perf_counter()
                    clock.on = True
                    handle_one(item_id)
                    clock.on = False
                    took.append(time.perf_counter() - began)
                db.session.remove()
            statements.append(clock)
            done = completed(ids)
            db.session.rollback()
            assert done == len(phones), f"only {done} of {len(phones)} runs completed"
            return took

        statements: list[StatementClock] = []

        def through_runtime(phones: list[str]) -> list[float]:
            """One at a time: a sandbox message, then the clock from the message stored
            (its row) to the run completed (the run's finished_at)."""
            took = []
            for phone, run_id in zip(phones, run_ids(phones), strict=True):
                _, wa_id = sandbox_controls.say(session, sender=phone, name="Bench", text="5")
                finished = wait_until(
                    lambda run_id=run_id: db.session.scalar(
                        sa.select(WorkflowRun.finished_at).where(
                            WorkflowRun.id == run_id, WorkflowRun.status == "completed"
                        )
                    ),
                    interval=0.005,
                    what=f"the run of {phone} to complete",
                )
                stored = db.session.scalar(
                    sa.select(Message.created_at).where(Message.wa_id == wa_id)
                )
                db.session.rollback()
                took.append((finished - stored).total_seconds())
            return took

        def outbox_drained() -> bool:
            return not db.session.scalar(
                sa.select(sa.func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "queued")
            )

        def measure(size: int) -> None:
            nonlocal loaded
            added = size - waiting()
            db.session.rollback()
            load_seconds = in_child(clone_rows, bench.url, template, loaded, added)
            loaded += added
            analyzed = _analyze(bench.url)
            count = waiting()
            db.session.rollback()
            wait_until(outbox_drained, timeout=300, what="the outbox to drain")
            end_to_end = through_runtime(pick(args.through_runtime))
            bench.stop_runtime()
            handled = directly(pick(args.sample))
            bench.start_runtime()
            bench.wait_status(sid, "connected")
            figures[size] = {
                "waiting": count,
                "added": added,
                "load_seconds": load_seconds,
                "handle": handled,
                "runtime": end_to_end,
                "rss": rss_mb(),
                "analyzed": analyzed,
                "table": _table_size(bench.url),
                "statements": statements[-1],
            }

        rss_start = rss_mb()
        measure(args.small)
        measure(args.runs)
    finally:
        bench.close()

    print(machine(args.database, ", the runtime on a thread of this process"))
    print(
        f"waiting runs: the shipped survey (wait_for_reply, then set, branch, send), "
        f"one real run cloned to distinct chats; RSS after setup {rss_start:.0f} MiB"
    )
    for f in figures.values():
        rate = f"{f['added'] / f['load_seconds']:.0f} rows/s" if f["added"] else "-"
        print(
            f"  {f['waiting']} waiting (loaded {f['added']} in {f['load_seconds']:.1f} s, "
            f"{rate}; workflow_runs {f['table']:.0f} MiB{f['analyzed']}):"
        )
        print(
            f"    handle_one, {len(f['handle'])} replies: {spread(f['handle'])}; "
            f"{f['statements'].summary(len(f['handle']))}"
        )
        print(
            f"    through the runtime, {len(f['runtime'])} replies one at a time "
            f"(stored -> completed): {spread(f['runtime'])}"
        )
        print(f"    RSS {f['rss']:.0f} MiB")
    print(f"  peak RSS of this process: {peak_mb():.0f} MiB")


class StatementClock:
    """Time spent in each kind of SQL statement ("UPDATE workflow_runs") and in commits
    while ``on`` (one thread at a time)."""

    def __init__(self, engine: sa.Engine):
        self.engine, self.on = engine, False
        self.spent: dict[str, float] = {}
        self.count: dict[str, int] = {}
        self.committing = self.commits = 0.0

    def __enter__(self) -> StatementClock:
        sa.event.listen(self.engine, "before_cursor_execute", self._before)
        sa.event.listen(self.engine, "after_cursor_execute", self._after)
        sa.event.listen(self.engine, "commit", self._commit)
        sa.event.listen(sa.orm.Session, "after_commit", self._committed)
        return self

    def __exit__(self, *_exc: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._before)
        sa.event.remove(self.engine, "after_cursor_execute", self._after)
        sa.event.remove(self.engine, "commit", self._commit)
        sa.event.remove(sa.orm.Session, "after_commit", self._committed)

    def _commit(self, _connection) -> None:
        self.committing = time.perf_counter()

    def _committed(self, _session) -> None:
        if self.on and self.committing:
            self.commits += time.perf_counter() - self.committing
        self.committing = 0.0

    def _before(self, connection, _cursor, _statement, *_args) -> None:
        connection.info["bench_began"] = time.perf_counter()

    def _after(self, connection, _cursor, statement: str, *_args) -> None:
        if not self.on:
            return
        words = statement.split()
        verb = words[0].upper()
        where = "FROM" if verb in ("SELECT", "DELETE") else "INTO" if verb == "INSERT" else verb
        table = words[words.index(where) + 1] if where in words else ""
        label = f"{verb} {table}".strip()
        took = time.perf_counter() - connection.info.pop("bench_began")
        self.spent[label] = self.spent.get(label, 0.0) + took
        self.count[label] = self.count.get(label, 0) + 1

    def summary(self, replies: int) -> str:
        total = sum(self.spent.values())
        top = sorted(self.spent.items(), key=lambda item: -item[1])[:4]
        return (
            f"{sum(self.count.values()) / replies:.0f} statements per reply, "
            f"{ms(total / replies)} in them, {ms(self.commits / replies)} in the commit; "
            "most: "
            + ", ".join(
                f"{label} x{self.count[label] / replies:.0f} {ms(spent / replies)}"
                for label, spent in top
            )
        )


def _analyze(url: str, table: str = "workflow_runs") -> str:
    """PostgreSQL: refresh the planner's statistics after a bulk load, as autovacuum
    would within a minute; said in the figures."""
    if not url.startswith("postgresql"):
        return ""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"ANALYZE {table}"))
    engine.dispose()
    return ", analyzed"


def _table_size(url: str) -> float:
    """workflow_runs on disk, with its indexes and TOAST (SQLite: the whole file)."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        size = connection.scalar(sa.text("SELECT pg_total_relation_size('workflow_runs')"))
    engine.dispose()
    return size / 2**20


# -- command line ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=None, help="PostgreSQL URL (default: SQLite)")
    benches = parser.add_subparsers(dest="bench", required=True)
    auto = benches.add_parser("auto-reply", help="the auto-reply example through the sandbox")
    auto.add_argument("--messages", type=int, default=500)
    auto.add_argument("--contacts", type=int, default=250)
    auto.add_argument("--clients", type=int, default=12, help="injecting threads")
    auto.add_argument(
        "--history",
        type=int,
        default=0,
        help="older messages stored in the session's history first",
    )
    hook = benches.add_parser("hook", help="hook -> set -> respond under concurrent load")
    hook.add_argument("--requests", type=int, default=2000)
    hook.add_argument("--clients", type=int, default=16)
    hook.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    wait = benches.add_parser("waiting", help="resume latency among many waiting runs")
    wait.add_argument("--runs", type=int, default=100_000)
    wait.add_argument("--small", type=int, default=1000, help="the size to compare with")
    wait.add_argument("--sample", type=int, default=300, help="replies timed by handle_one")
    wait.add_argument(
        "--through-runtime",
        type=int,
        default=20,
        help="replies timed end to end through the runtime",
    )
    for sub in (auto, hook, wait):  # --database after the benchmark's name works too
        sub.add_argument("--database", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    {"auto-reply": bench_auto_reply, "hook": bench_hook, "waiting": bench_waiting}[args.bench](args)


if __name__ == "__main__":
    main()
