"""Session benchmarks (issue 12): many sandbox sessions on one runtime, neonize sessions
with no network for minutes, and the memory of session processes.

    .venv/bin/python bench/sessions.py sandbox [--sessions 200] [--database URL]
    .venv/bin/python bench/sessions.py neonize [--sessions 10] [--minutes 10] [--idle 60]
    .venv/bin/python bench/sessions.py memory [--counts 1,10,50] [--database URL]

Each starts `kabar run` as real processes in a temporary instance folder (SQLite there
unless ``--database`` names a PostgreSQL database, whose public schema is dropped and made
anew) and drives it over its REST API on 127.0.0.1.

``neonize`` and ``memory`` start real neonize sessions, so they run themselves again inside
a loopback-only network namespace (``unshare -rn``, ``lo`` up): neonize can dial nothing,
not even DNS, and every connect fails at once. PostgreSQL on 127.0.0.1 is not reachable
from there; give its unix socket instead:
``postgresql+psycopg://postgres@/kabar_bench?host=/var/run/postgresql``.

The temporary folder goes at the end (``KABAR_BENCH_KEEP=1`` keeps it, with ``kabar.log``).
They print figures and assert nothing timed. Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa

# tests/gateway.py, the end-to-end tests' helpers; the checkout first, before any
# installed package that also calls itself ``tests``.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.gateway import KABAR, free_port, request_json, wait_for

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "bench-password"
PG_SOCKET = ".s.PGSQL.5432"

AUTO_REPLY = {
    "name": "bench-auto-reply",
    "description": "any message -> send",
    "trigger": {"type": "message", "any": True},
    "start": "reply",
    "nodes": {
        "reply": {
            "type": "send",
            "params": {"text": "auto-reply", "reply_to": "{{ trigger.message_id }}"},
        }
    },
}


# -- the gateway under test ---------------------------------------------------------------------


def fresh_database(url: str | None, instance: Path) -> str:
    if url is None:
        return f"sqlite:///{instance / 'kabar.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


class Gateway:
    """``kabar run`` in a temporary folder, its output in ``kabar.log`` there."""

    def __init__(self, database: str | None, env: dict[str, str] | None = None):
        self.instance = Path(tempfile.mkdtemp(prefix="kabar-bench-"))
        (self.instance / "workflows").mkdir()
        self.url = fresh_database(database, self.instance)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "KABAR_INSTANCE_PATH": str(self.instance),
            "KABAR_PORT": str(self.port),
            "KABAR_DATABASE_URL": self.url,
            "KABAR_WORKFLOWS_DIR": str(self.instance / "workflows"),
            "KABAR_ADMIN_PASSWORD": PASSWORD,
            "KABAR_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.token: str | None = None
        self.log_path = self.instance / "kabar.log"
        subprocess.run([*KABAR, "init"], env=self.env, check=True, capture_output=True, cwd=ROOT)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [*KABAR, "run"], env=self.env, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        self.wait(
            lambda: self.call("GET", "/api/v1/ready")[0] == 200,
            timeout=120,
            what="kabar run to be ready",
        )
        self.token = self.call(
            "POST", "/api/v1/auth/login", {"username": "admin", "password": PASSWORD}
        )[1]["access_token"]
        self.engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)

    def call(
        self, method: str, path: str, body: Any = None, timeout: float = 60
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return request_json(method, self.base + path, body, headers=headers, timeout=timeout)

    def timed(self, path: str) -> tuple[float, int]:
        """Seconds a GET took, and its status (0 when it did not answer)."""
        began = time.perf_counter()
        try:
            status, _ = self.call("GET", path, timeout=30)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status = 0
        return time.perf_counter() - began, status

    @staticmethod
    def wait(predicate, *, timeout: float = 120, what: str = "condition", interval: float = 0.1):
        return wait_for(predicate, timeout=timeout, what=what, interval=interval)

    def runtime_pid(self) -> int:
        return self.call("GET", "/api/v1/ready")[1]["checks"]["runtime"]["pid"]

    def sessions(self) -> list[dict]:
        items, cursor = [], None
        while True:
            query = "?limit=200" + (f"&cursor={cursor}" if cursor else "")
            status, page = self.call("GET", f"/api/v1/sessions{query}")
            assert status == 200, page
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def upload(self, doc: dict) -> None:
        status, body = self.call("POST", "/api/v1/workflows?enable=true", doc)
        assert status == 200, body

    def runtime_restarts(self) -> list[str]:
        """The supervisor's lines about the runtime exiting."""
        return [
            line.strip()
            for line in self.log_path.read_text(errors="replace").splitlines()
            if "the runtime exited" in line
        ]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        self.engine.dispose()
        if os.environ.get("KABAR_BENCH_KEEP"):  # to read kabar.log afterwards
            print(f"kept {self.instance}")
        else:
            shutil.rmtree(self.instance, ignore_errors=True)


# -- what /proc says about a process --------------------------------------------------------------


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def session_hosts(runtime: int) -> dict[str, int]:
    """The runtime's session processes: session id -> pid."""
    hosts = {}
    for pid in children(runtime):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"session_host" not in cmdline:
            continue
        for item in environ:
            if item.startswith(b"KABAR_SESSION_ID="):
                hosts[item.split(b"=", 1)[1].decode()] = pid
    return hosts


def fds(pid: int) -> list[str]:
    targets = []
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return targets
    for name in names:
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{name}"))
        except OSError:
            pass
    return targets


def memory_kb(pid: int) -> dict[str, int]:
    """Rss, Pss, Private_* ... of a process, in KiB (smaps_rollup)."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, rest = line.partition(":")
            values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


def cpu_seconds(pid: int, *, reaped: bool = False) -> float:
    """User + system CPU seconds of ``pid`` (``reaped``: with its children that ended
    and were waited for)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of ``pid`` with its reaped children, and of each live session process."""
    found = {pid: cpu_seconds(pid, reaped=True)}
    for child in session_hosts(pid).values():
        try:
            found[child] = cpu_seconds(child)
        except OSError:
            pass
    return found


def database_handles(pid: int, url: str) -> int:
    """How many database connections process ``pid`` holds. SQLite: the file descriptors
    open on the database file itself (one per connection; its -wal and -shm files are not
    counted). PostgreSQL: its sockets connected to the server, TCP (remote port 5432) or
    the unix socket (matched through ``ss``: the peer of one of its sockets is the
    server's end of ``.s.PGSQL.5432``)."""
    if url.startswith("sqlite"):
        path = os.path.realpath(url.removeprefix("sqlite:///"))
        return sum(target == path for target in fds(pid))
    inodes = {int(t[8:-1]) for t in fds(pid) if t.startswith("socket:[")}
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[2].endswith(":1538") and int(parts[9]) in inodes:  # 0x1538 = 5432
                count += 1
    listing = subprocess.run(["ss", "-xn"], capture_output=True, text=True).stdout
    local_path, peer_of = {}, {}
    for line in listing.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 8:
            continue
        local, local_inode, peer_inode = parts[4], int(parts[5]), int(parts[7])
        local_path[local_inode] = local
        peer_of[local_inode] = peer_inode
    for inode in inodes:
        peer = peer_of.get(inode)
        if peer is not None and local_path.get(peer, "").endswith(PG_SOCKET):
            count += 1
    return count


def pg_backends(gateway: Gateway) -> int | None:
    """Connections to the benchmark's PostgreSQL database, from anyone (pg_stat_activity),
    minus the one asking."""
    if gateway.url.startswith("sqlite"):
        return None
    with gateway.engine.connect() as connection:
        return connection.scalar(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        )


def mib(kb: float) -> str:
    return f"{kb / 1024:.1f} MiB"


def machine(database: str | None, extra: str = "") -> str:
    kind = (
        "SQLite"
        if database is None
        else "PostgreSQL" + (" (unix socket)" if "host=/" in database else "")
    )
    return (
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, database {kind}{extra}; load average "
        f"(1 min) at the end {os.getloadavg()[0]:.1f}"
    )


# -- 1. sandbox ---------------------------------------------------------------------------------


def bench_sandbox(args: argparse.Namespace) -> None:
    """N sandbox sessions on one `kabar run`: pair them all, an auto-reply workflow, one
    message from a virtual contact to each, every reply checked."""
    gateway = Gateway(args.database, {"KABAR_WEB_WORKERS": str(args.workers)})
    marks = sorted({0, *(m for m in (50, 100, 200) if m < args.sessions), args.sessions})
    handles: dict[int, tuple[int, int | None]] = {}
    pairing: list[float] = []
    try:
        runtime = gateway.runtime_pid()
        gateway.upload(AUTO_REPLY)
        settle()
        empty_memory = memory_kb(runtime)
        handles[0] = (database_handles(runtime, gateway.url), pg_backends(gateway))
        idle_empty = idle_cost(gateway, runtime, args.idle)
        print(f"idle, no session: {idle_empty}", flush=True)

        def pair(index: int) -> str:
            status, session = gateway.call(
                "POST",
                "/api/v1/sessions",
                {
                    "label": f"bench {index}",
                    "transport": "sandbox",
                    "auto_start": True,
                    "settings": {"pacing": {"enabled": False}, "sandbox": {"receipts": False}},
                },
            )
            assert status == 201, session
            sid = session["id"]
            gateway.wait(
                lambda: gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "qr",
                what=f"session {index}'s QR",
            )
            for _ in range(10):  # a 503 (the runtime busy past KABAR_RUNTIME_WAIT): again
                status, body = gateway.call(
                    "POST", f"/api/v1/sandbox/sessions/{sid}/scan", {"phone": f"62811{index:07d}"}
                )
                if status != 503:
                    break
                time.sleep(1)
            retried = status == 409 and body.get("code") == "already_paired"  # after a 503
            assert status == 200 or retried, body
            gateway.wait(
                lambda: gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "connected",
                what=f"session {index} connected",
            )
            return sid

        ids: list[str] = []
        with ThreadPoolExecutor(args.clients) as pool:
            for low, high in zip(marks, marks[1:], strict=False):
                began = time.perf_counter()
                ids += pool.map(pair, range(low, high))
                pairing.append(time.perf_counter() - began)
                settle()
                handles[high] = (database_handles(runtime, gateway.url), pg_backends(gateway))
        pair_seconds = sum(pairing)

        memory = memory_kb(runtime)
        idle_full = idle_cost(gateway, runtime, args.idle)
        print(f"idle, {args.sessions} sessions: {idle_full}, RSS {memory}", flush=True)

        def say(index_sid: tuple[int, str]) -> None:
            index, sid = index_sid
            for _ in range(10):  # a 503 (the runtime busy past KABAR_RUNTIME_WAIT): again
                status, body = gateway.call(
                    "POST",
                    f"/api/v1/sandbox/sessions/{sid}/messages",
                    {"from": f"62812{index:07d}", "name": "Bench", "text": f"halo {index}"},
                )
                expired = status == 409 and body.get("code") == "expired"  # not run: again
                if status != 503 and not expired:
                    break
                time.sleep(1)
            assert status in (201, 202), body  # 202: queued, the runtime busy

        def replied(sid: str) -> bool:
            status, page = gateway.call("GET", f"/api/v1/sandbox/sessions/{sid}/received")
            return status == 200 and any(
                item["content"].get("text") == "auto-reply" for item in page["items"]
            )

        began = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(say, enumerate(ids)))
            said = time.perf_counter() - began
            waiting = set(ids)
            deadline = time.monotonic() + args.timeout
            while waiting and time.monotonic() < deadline:
                answered = [
                    sid
                    for sid, ok in zip(list(waiting), pool.map(replied, list(waiting)), strict=True)
                    if ok
                ]
                waiting -= set(answered)
                if waiting:
                    time.sleep(0.5)
        reply_seconds = time.perf_counter() - began
        settle()
        after = (database_handles(runtime, gateway.url), pg_backends(gateway))
        rows = gateway.sessions()
        connected = sum(row["status"] == "connected" for row in rows)
        restarts = sum(row["restarts"] for row in rows)
        runtime_after = gateway.runtime_pid()
        exits = gateway.runtime_restarts()
    finally:
        gateway.close()

    what = (
        "fds on kabar.db"
        if args.database is None
        else "its sockets to PostgreSQL; all backends of the database in brackets"
    )
    print(
        machine(
            args.database,
            f", `kabar run` with {args.workers} gunicorn workers, "
            f"{args.clients} HTTP clients on this machine",
        )
    )
    print(
        f"sandbox: {args.sessions} sessions created and paired over the API in "
        f"{pair_seconds:.1f} s ({args.sessions / pair_seconds:.1f} sessions/s; by step: "
        + ", ".join(
            f"{low}->{high} {s:.1f} s"
            for low, high, s in zip(marks, marks[1:], pairing, strict=False)
        )
        + ")"
    )
    print(
        f"  runtime database connections ({what}): "
        + ", ".join(
            f"{n} sessions: {h}" + (f" [{b}]" if b is not None else "")
            for n, (h, b) in handles.items()
        )
        + f"; after the replies: {after[0]}"
        + (f" [{after[1]}]" if after[1] is not None else "")
    )
    print(
        f"  runtime with {args.sessions} sessions connected: RSS {mib(memory['Rss'])}, "
        f"PSS {mib(memory['Pss'])} ({mib((memory['Rss'] - empty_memory['Rss']) / args.sessions)}"
        f" RSS a session over the runtime with none); idle CPU over {args.idle:.0f} s: "
        f"{idle_full['cpu']:.2f} % (with no session: {idle_empty['cpu']:.2f} %); runtime SQL "
        f"statements a second, idle: {idle_full['sql']:.2f} (with no session: "
        f"{idle_empty['sql']:.2f})"
    )
    print(
        f"  one message to each session sent in {said:.1f} s; every auto-reply "
        f"received {reply_seconds:.1f} s after the first message: "
        f"{len(ids) - len(waiting)} of {len(ids)} sessions answered"
        + (f" (MISSING: {len(waiting)})" if waiting else "")
    )
    print(
        f"  sessions connected at the end: {connected} of {len(rows)}, session restarts "
        f"{restarts}; runtime pid {runtime} -> {runtime_after} "
        f"({'unchanged' if runtime == runtime_after else 'CHANGED'}), supervisor: "
        + (f"{len(exits)} runtime exits: {exits[:3]}" if exits else "no runtime exit")
    )


def statements(gateway: Gateway) -> float:
    """SQL statements the runtime has sent so far (``kabar_runtime_statements_total``)."""
    request = urllib.request.Request(
        gateway.base + "/metrics", headers={"Authorization": f"Bearer {gateway.token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    found = re.search(r"^kabar_runtime_statements_total (\S+)$", text, re.M)
    return float(found.group(1)) if found else float("nan")


def idle_cost(gateway: Gateway, runtime: int, seconds: float) -> dict[str, float]:
    """Over ``seconds`` of nothing asked: the runtime's CPU and that of its session
    processes (each as % of one core; a process that ended meanwhile is not counted), and
    the runtime's SQL statements a second."""
    hosts = set(session_hosts(runtime).values())

    def cpu(pid: int) -> float:
        try:
            return cpu_seconds(pid)
        except OSError:
            return float("nan")

    began_hosts = {pid: cpu(pid) for pid in hosts}
    began_tree = tree_cpu_seconds(runtime)
    began_cpu, began_sql, began = cpu(runtime), statements(gateway), time.monotonic()
    time.sleep(seconds)
    ended_cpu, ended_sql = cpu(runtime), statements(gateway)
    ended_tree = tree_cpu_seconds(runtime)
    took = time.monotonic() - began
    ended_hosts = {pid: cpu(pid) for pid in hosts}
    spent = [ended_hosts[p] - began_hosts[p] for p in hosts if ended_hosts[p] == ended_hosts[p]]
    # Everything: the runtime, session processes that ended (reaped) or began meanwhile.
    # A process that ended meanwhile counts in the runtime's reaped time whole: take off
    # what it had used before.
    tree = sum(ended_tree[p] - began_tree.get(p, 0.0) for p in ended_tree) - sum(
        began_tree[p] for p in began_tree if p not in ended_tree
    )
    return {
        "cpu": (ended_cpu - began_cpu) / took * 100,
        "hosts_cpu": sum(spent) / took * 100,
        "hosts": len(spent),
        "tree_cpu": tree / took * 100,
        "started": len(set(ended_tree) - set(began_tree)),
        "sql": (ended_sql - began_sql) / took,
    }


def settle(seconds: float = 3.0) -> None:
    """Let pools and threads come to rest before counting connections."""
    time.sleep(seconds)


# -- 2. neonize sessions with no network ---------------------------------------------------------


def in_namespace(argv: list[str]) -> None:
    """Run this script again inside a loopback-only network namespace, unless it already
    runs in one (no interface but lo)."""
    interfaces = {name for _, name in socket.if_nameindex()}  # (not /sys: it is the host's)
    if interfaces == {"lo"}:
        return
    inner = " ".join(shlex.quote(a) for a in [sys.executable, *argv])
    os.execvp("unshare", ["unshare", "-rn", "sh", "-c", f"ip link set lo up && exec {inner}"])


def neonize_env() -> dict[str, str]:
    return {"KABAR_WEB_WORKERS": "1", "KABAR_SESSION_PROCESSES": "neonize"}


def create_neonize(
    gateway: Gateway, count: int, store_url: str | None, first: int = 0
) -> list[str]:
    ids = []
    options = {"store_url": store_url} if store_url else {}
    for index in range(first, first + count):
        status, session = gateway.call(
            "POST",
            "/api/v1/sessions",
            {
                "label": f"neonize {index}",
                "transport": "neonize",
                "auto_start": True,
                "settings": {"neonize": options},
            },
        )
        assert status == 201, session
        ids.append(session["id"])
    return ids


def bench_neonize(args: argparse.Namespace) -> None:
    """N neonize sessions connecting and failing (no network) for M minutes, sampled
    every S seconds; then kill -9 of one session's process."""
    gateway = Gateway(args.database, neonize_env())
    samples: list[dict] = []
    try:
        runtime = gateway.runtime_pid()
        ids = create_neonize(gateway, args.sessions, args.store_url)
        label = {sid: f"s{i}" for i, sid in enumerate(ids)}
        gateway.wait(
            lambda: len(session_hosts(runtime)) == args.sessions,
            timeout=120,
            what="every session's process",
        )
        idle = None
        if args.idle:
            time.sleep(args.settle)
            idle = idle_cost(gateway, runtime, args.idle)
            idle["rss"] = [memory_kb(pid).get("Rss", 0) for pid in session_hosts(runtime).values()]
            idle["runtime_rss"] = memory_kb(runtime).get("Rss", 0)
            print_idle(idle, args)
        began = time.monotonic()
        end = began + args.minutes * 60
        print(
            f"{args.sessions} neonize sessions, sampling every {args.every:g} s for "
            f"{args.minutes:g} min",
            flush=True,
        )
        while True:
            sample = sample_neonize(gateway, runtime, began, args.store_url)
            samples.append(sample)
            print_sample(sample, label)
            if time.monotonic() + args.every > end + 1:
                break
            time.sleep(max(0.0, began + len(samples) * args.every - time.monotonic()))

        before = {row["id"]: row for row in gateway.sessions()}
        hosts = session_hosts(runtime)
        victim = ids[0]
        old_pid = hosts[victim]
        others = {sid: (hosts.get(sid), before[sid]["restarts"]) for sid in ids[1:]}
        os.kill(old_pid, signal.SIGKILL)
        killed = time.monotonic()
        new_pid = gateway.wait(
            lambda: (pid := session_hosts(runtime).get(victim)) not in (None, old_pid) and pid,
            timeout=120,
            interval=0.05,
            what="a new process for the killed session",
        )
        new_process = time.monotonic() - killed

        def status_again():
            row = gateway.call("GET", f"/api/v1/sessions/{victim}")[1]
            return (
                row["status_changed_at"] != before[victim]["status_changed_at"]
                and f"pid {new_pid}" in (row["host"] or "")
                and "killed by" not in (row["status_reason"] or "")
                and row
            )

        row = gateway.wait(
            status_again, timeout=120, interval=0.05, what="the killed session's status"
        )
        new_status = time.monotonic() - killed
        history = gateway.call("GET", f"/api/v1/sessions/{victim}/status-history")
        time.sleep(5)  # would anything else follow?
        after = {row["id"]: row for row in gateway.sessions()}
        hosts_after = session_hosts(runtime)
        changed = [
            label[sid]
            for sid, (pid, restarts) in others.items()
            if after[sid]["restarts"] != restarts
            or (hosts_after.get(sid) != pid and not recycled(gateway, sid))
        ]
        runtime_after = gateway.runtime_pid()
        exits = gateway.runtime_restarts()
        process_ends: dict[str, int] = {}  # why session processes ended, over the run
        for sid in ids:
            for change in gateway.call("GET", f"/api/v1/sessions/{sid}/status-history")[1]:
                reason = change.get("reason") or ""
                if "session process" in reason:
                    why = re.sub(r"; starting again.*", "", reason)
                    process_ends[why] = process_ends.get(why, 0) + 1
    finally:
        gateway.close()

    first, last = samples[0], samples[-1]
    print(
        machine(
            args.database,
            ", `kabar run` with 1 gunicorn worker, inside a loopback-only network namespace",
        )
    )
    print(f"neonize: {args.sessions} sessions for {args.minutes:g} min, {len(samples)} samples")
    if idle is not None:
        print_idle(idle, args)
    health = [s["health"] for s in samples]
    listing = [s["list"] for s in samples]
    print(
        f"  API: GET /api/v1/health max {max(health) * 1000:.0f} ms, GET /api/v1/sessions "
        f"max {max(listing) * 1000:.0f} ms; unanswered: "
        f"{sum(s['unanswered'] for s in samples)}"
    )
    print(
        f"  runtime fds {first['runtime_fds']} -> {last['runtime_fds']} (max "
        f"{max(s['runtime_fds'] for s in samples)}); session process fds per process "
        f"{first['host_fds']} -> {last['host_fds']}"
        + (
            f" (store connections per process {first['host_db']} -> {last['host_db']}, "
            f"max {max(s['host_db'] for s in samples)})"
            if last["host_db"]
            else ""
        )
        + "; runtime database connections "
        f"{first['db']} -> {last['db']} (max {max(s['db'] for s in samples)})"
        + (
            f"; all backends {first['backends']} -> {last['backends']} (max "
            f"{max(s['backends'] for s in samples)})"
            if first["backends"] is not None
            else ""
        )
    )
    print(
        f"  session restarts (crashes) at the end of the sampling: {last['restarts']}; "
        f"session processes seen: {last['pids_seen']}; why session processes ended "
        f"(status history, the kill included): {process_ends or 'none'}"
    )
    print(
        f"  kill -9 of {label[victim]}'s process {old_pid}: a new process ({new_pid}) after "
        f"{new_process:.1f} s, its status again after {new_status:.1f} s: {row['status']} "
        f"({row['status_reason']}), restarts {row['restarts']}"
    )
    if history[0] == 200:
        items = history[1]["items"] if isinstance(history[1], dict) else history[1]
        print(
            "    its latest statuses: "
            + "; ".join(f"{h['status']} ({h['reason']})" for h in items[:4])
        )
    print(
        f"  other sessions changed by the kill: {changed or 'none'}; runtime pid "
        f"{'unchanged' if runtime_after == first['runtime'] else 'CHANGED'}; supervisor: "
        + (f"{len(exits)} runtime exits" if exits else "no runtime exit")
    )


def print_idle(idle: dict, args: argparse.Namespace) -> None:
    rss = [kb for kb in idle["rss"] if kb] or [0]
    print(
        f"  idle over {args.idle:g} s ({args.settle:g} s after the processes started): runtime "
        f"CPU {idle['cpu']:.2f} %, {idle['sql']:.2f} SQL statements/s, RSS "
        f"{mib(idle['runtime_rss'])}; {idle['hosts']} session processes together CPU "
        f"{idle['hosts_cpu']:.2f} % ({idle['hosts_cpu'] / max(idle['hosts'], 1):.3f} % each); "
        f"all of it, session processes that ended or began ({idle['started']}) included: "
        f"{idle['tree_cpu']:.2f} %; "
        f"RSS {mib(sum(rss) / len(rss))} each (max {mib(max(rss))}, total {mib(sum(rss))})",
        flush=True,
    )


_PIDS_SEEN: set[int] = set()


def recycled(gateway: Gateway, sid: str) -> bool:
    """A session whose process was replaced without a crash (a recycle after
    ``connects_per_process`` connects) says so in its latest status."""
    status, page = gateway.call("GET", f"/api/v1/sessions/{sid}/status-history")
    items = page["items"] if isinstance(page, dict) else page
    return status == 200 and any("afresh" in (h.get("reason") or "") for h in items[:3])


def sample_neonize(
    gateway: Gateway, runtime: int, began: float, store_url: str | None = None
) -> dict:
    health, health_status = gateway.timed("/api/v1/health")
    listing, list_status = gateway.timed("/api/v1/sessions?limit=200")
    hosts = session_hosts(runtime)
    _PIDS_SEEN.update(hosts.values())
    try:
        rows = gateway.sessions()
    except (AssertionError, urllib.error.URLError):
        rows = []
    try:
        current = gateway.runtime_pid()
    except (KeyError, urllib.error.URLError):
        current = None
    host_fds = sorted(len(fds(pid)) for pid in hosts.values())
    # neonize's own store connections (whatsmeow's, over lib/pq) when it is PostgreSQL
    host_db = (
        sorted(database_handles(pid, store_url) for pid in hosts.values()) if store_url else []
    )
    return {
        "t": time.monotonic() - began,
        "health": health,
        "list": listing,
        "unanswered": (health_status != 200) + (list_status != 200),
        "runtime": current,
        "runtime_fds": len(fds(runtime)),
        "host_fds": f"{host_fds[0]}-{host_fds[-1]}" if host_fds else "-",
        "hosts": len(hosts),
        "pids_seen": len(_PIDS_SEEN),
        "host_db": f"{host_db[0]}-{host_db[-1]}" if host_db else None,
        "db": database_handles(runtime, gateway.url),
        "backends": pg_backends(gateway),
        "restarts": sum(row["restarts"] for row in rows),
        "statuses": {row["id"]: (row["status"], row["status_reason"]) for row in rows},
    }


def print_sample(sample: dict, label: dict[str, str]) -> None:
    reasons: dict[tuple[str, str], list[str]] = {}
    for sid, (status, reason) in sample["statuses"].items():
        short = re.sub(r"\d+(\.\d+)?", "N", (reason or "")[:240])
        reasons.setdefault((status, short), []).append(label.get(sid, sid[:6]))
    print(
        f"[{sample['t']:5.0f} s] runtime {sample['runtime']}, health "
        f"{sample['health'] * 1000:.0f} ms, sessions list {sample['list'] * 1000:.0f} ms, "
        f"runtime fds {sample['runtime_fds']}, session process fds {sample['host_fds']} "
        f"({sample['hosts']} processes), db connections {sample['db']}"
        + (
            f", store connections per session process {sample['host_db']}"
            if sample["host_db"] is not None
            else ""
        )
        + (f" (all backends {sample['backends']})" if sample["backends"] is not None else "")
        + f", restarts {sample['restarts']}",
        flush=True,
    )
    for (status, reason), who in sorted(reasons.items()):
        print(f"    {status}: {reason or '(no reason)'} [{', '.join(who)}]", flush=True)


# -- 3. memory -----------------------------------------------------------------------------------


def bench_memory(args: argparse.Namespace) -> None:
    """RSS and PSS of the runtime and its neonize session processes with 1, 10, 50
    sessions (offline: connecting and failing)."""
    counts = [int(c) for c in args.counts.split(",")]
    gateway = Gateway(args.database, neonize_env())
    results = []
    try:
        runtime = gateway.runtime_pid()
        base = memory_kb(runtime)
        made = 0
        for count in counts:
            create_neonize(gateway, count - made, args.store_url, first=made)
            made = count
            gateway.wait(
                lambda count=count: len(session_hosts(runtime)) == count,
                timeout=300,
                what=f"{count} session processes",
            )
            time.sleep(args.settle)
            hosts = session_hosts(runtime)
            per = [memory_kb(pid) for pid in hosts.values()]
            per = [m for m in per if m]
            results.append((count, memory_kb(runtime), per))
        if args.detail:
            detail(next(iter(session_hosts(runtime).values())))
    finally:
        gateway.close()

    print(machine(args.database, ", inside a loopback-only network namespace"))
    print(f"memory: runtime with no session RSS {mib(base['Rss'])}, PSS {mib(base['Pss'])}")
    for count, own, per in results:
        rss = [m["Rss"] for m in per]
        pss = [m["Pss"] for m in per]
        anon = [m.get("Anonymous", 0) for m in per]
        print(
            f"  {count} sessions: runtime RSS {mib(own['Rss'])}, PSS {mib(own['Pss'])}; "
            f"per session process RSS {mib(sum(rss) / len(rss))} (max {mib(max(rss))}), "
            f"PSS {mib(sum(pss) / len(pss))}, anonymous {mib(sum(anon) / len(anon))}; "
            f"runtime + processes: RSS {mib(own['Rss'] + sum(rss))}, "
            f"PSS {mib(own['Pss'] + sum(pss))}"
        )


def detail(pid: int) -> None:
    """Where one session process's memory is: RSS and PSS by mapping (smaps), largest
    first."""
    by: dict[str, list[int]] = {}
    name = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            name = head[5] if len(head) > 5 else "[anonymous]"
            name = re.sub(r".*/site-packages/", "site-packages/", name)
            by.setdefault(name, [0, 0])
        elif head and head[0] in ("Rss:", "Pss:") and name is not None:
            by[name][0 if head[0] == "Rss:" else 1] += int(head[1])
    print(f"  one session process ({pid}), by mapping (RSS / PSS):")
    for mapping, (rss, pss) in sorted(by.items(), key=lambda item: -item[1][0])[:12]:
        print(f"    {mib(rss):>10} / {mib(pss):>10}  {mapping}")


# -- command line --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=None, help="PostgreSQL URL (default: SQLite)")
    benches = parser.add_subparsers(dest="bench", required=True)
    sandbox = benches.add_parser("sandbox", help="many sandbox sessions, one auto-reply each")
    sandbox.add_argument("--sessions", type=int, default=200)
    sandbox.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    sandbox.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    sandbox.add_argument(
        "--idle", type=float, default=30.0, help="seconds the idle CPU is measured over"
    )
    sandbox.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="give up waiting for replies after this many seconds",
    )
    neonize = benches.add_parser("neonize", help="neonize sessions with no network")
    neonize.add_argument("--sessions", type=int, default=10)
    neonize.add_argument("--minutes", type=float, default=10.0)
    neonize.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    neonize.add_argument(
        "--idle",
        type=float,
        default=0.0,
        help="first measure the idle cost (CPU, SQL statements/s, RSS) over this many seconds",
    )
    neonize.add_argument(
        "--settle", type=float, default=20.0, help="seconds before the idle measurement"
    )
    memory = benches.add_parser("memory", help="RSS/PSS of neonize session processes")
    memory.add_argument("--counts", default="1,10,50")
    memory.add_argument(
        "--settle",
        type=float,
        default=20.0,
        help="seconds to let new sessions settle before measuring",
    )
    memory.add_argument(
        "--detail", action="store_true", help="also one session process's memory by mapping"
    )
    for sub in (neonize, memory):
        sub.add_argument(
            "--store-url",
            default=None,
            help="neonize's device store (postgres://…); default SQLite files",
        )
    for sub in (sandbox, neonize, memory):
        sub.add_argument("--database", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bench in ("neonize", "memory"):
        in_namespace(sys.argv)
    {"sandbox": bench_sandbox, "neonize": bench_neonize, "memory": bench_memory}[args.bench](args)


if __name__ == "__main__":
    main()
