"""Running tests against the real neonize library with no network at all.

A test marked ``@pytest.mark.netns`` runs, body and all, in a sub-pytest inside a fresh
network namespace that has only a loopback interface (``unshare -rn``, lo brought up):
whatsmeow's dial, and even its DNS query, fails at once, so nothing leaves the machine,
and a connect fails immediately, which is how issue 12's races and leaks were reproduced.
The hook is ``pytest_pyfunc_call`` in this folder's conftest; the outer test passes when
the inner one does and shows its output when it fails.

PostgreSQL is reached from inside through a Unix socket relay that the outer test runs
(``PostgresRelay``): a Unix socket is a file, so it crosses network namespaces, and the
relay forwards it to KABAR_TEST_POSTGRES_URL's host and port. Each test's whatsmeow store
lives in a schema of its own, dropped afterwards, so Kabar's own tables are never touched.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path

import pytest

INSIDE = os.environ.get("KABAR_NETNS") == "1"
_PG_SOCKET_DIR = "KABAR_NETNS_PG_SOCKET_DIR"
_PG_SCHEMA = "KABAR_NETNS_PG_SCHEMA"
_PG_DATABASE = "KABAR_NETNS_PG_DATABASE"
_PG_USER = "KABAR_NETNS_PG_USER"


def assert_offline() -> None:
    """Inside: the namespace has no interface but loopback."""
    interfaces = sorted(name for _, name in socket.if_nameindex())
    assert interfaces == ["lo"], f"not in a loopback-only namespace: {interfaces}"


@functools.cache
def _netns_works() -> str:
    """'' if ``unshare -rn`` can make a namespace here, else why not."""
    if shutil.which("unshare") is None:
        return "the unshare command (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True, text=True, check=False)
    return "" if probe.returncode == 0 else f"unshare -rn fails here: {probe.stderr.strip()}"


_REPORT = "KABAR_NETNS_REPORT"
_batch: dict | None = None
_relay: PostgresRelay | None = None


def run_inside(item: pytest.Function) -> None:
    """``item``'s outcome inside a loopback-only namespace. The first netns test of a
    pytest session runs every selected netns test in one sub-pytest there (one start-up,
    not one per test); each test then reports its own outcome from it."""
    why = _netns_works()
    if why:
        pytest.skip(f"needs a network namespace: {why}")
    batch = _run_batch(item)
    reports = [r for r in batch["reports"] if r["nodeid"] == item.nodeid]
    failed = [r for r in reports if r["outcome"] == "failed"]
    if failed:
        pytest.fail(
            "\n\n".join(
                f"inside the loopback-only namespace ({r['when']}):\n{r['longrepr']}\n{r['stderr']}"
                for r in failed
            ),
            pytrace=False,
        )
    skipped = [r for r in reports if r["outcome"] == "skipped"]
    if skipped:
        pytest.skip(f"skipped inside the namespace: {skipped[0]['longrepr']}")
    if not any(r["when"] == "call" and r["outcome"] == "passed" for r in reports):
        pytest.fail(
            f"did not run inside the namespace (exit {batch['code']}):\n{batch['output'][-8000:]}",
            pytrace=False,
        )
    if (
        batch["code"] != 0
        and item.nodeid == batch["first"]
        and not any(r["outcome"] == "failed" for r in batch["reports"])
    ):
        pytest.fail(
            f"the sub-pytest in the namespace ended with exit {batch['code']}:\n"
            f"{batch['output'][-8000:]}",
            pytrace=False,
        )


def _run_batch(item: pytest.Function) -> dict:
    global _batch
    if _batch is not None:
        return _batch
    items = [i for i in item.session.items if i.get_closest_marker("netns") is not None]
    with tempfile.TemporaryDirectory(prefix="kabar-netns-") as folder:
        report = Path(folder) / "reports.jsonl"
        env = dict(os.environ, KABAR_NETNS="1", **{_REPORT: str(report)}, **_postgres_env())
        command = [
            sys.executable,
            "-m",
            "pytest",
            *[i.nodeid for i in items],
            "-q",
            "-p",
            "no:cacheprovider",
            "--no-header",
        ]
        script = 'command -v ip >/dev/null && ip link set lo up; exec "$@"'
        done = subprocess.run(
            ["unshare", "-rn", "sh", "-c", script, "sh", *command],
            cwd=str(item.config.rootpath),
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        reports = (
            [json.loads(line) for line in report.read_text().splitlines()]
            if report.exists()
            else []
        )
    _batch = {
        "reports": reports,
        "code": done.returncode,
        "first": items[0].nodeid,
        "output": done.stdout + done.stderr,
    }
    return _batch


def record_report(report: pytest.TestReport) -> None:
    """Inside: note a test phase's outcome for the outer pytest."""
    path = os.environ.get(_REPORT)
    if not path or (report.when != "call" and report.outcome == "passed"):
        return
    longrepr = ""
    if report.outcome == "skipped" and isinstance(report.longrepr, tuple):
        longrepr = report.longrepr[2]
    elif report.longrepr is not None:
        longrepr = str(report.longrepr)
    with open(path, "a") as out:
        out.write(
            json.dumps(
                {
                    "nodeid": report.nodeid,
                    "when": report.when,
                    "outcome": report.outcome,
                    "longrepr": longrepr,
                    "stderr": report.capstderr[-4000:],
                }
            )
            + "\n"
        )


def _postgres_env() -> dict[str, str]:
    """How the inside reaches PostgreSQL: a relay started once per pytest session."""
    global _relay
    import sqlalchemy as sa

    from tests.conftest import POSTGRES_URL

    url = sa.engine.make_url(POSTGRES_URL)
    if _relay is None:
        _relay = PostgresRelay(url.host or "127.0.0.1", url.port or 5432)
    return {
        _PG_SOCKET_DIR: str(_relay.dir),
        _PG_DATABASE: url.database,
        _PG_USER: url.username or "postgres",
    }


def finish() -> None:
    """At the end of the outer pytest session."""
    if _relay is not None:
        _relay.close()


class PostgresRelay:
    """A Unix socket that forwards every connection to PostgreSQL's TCP port."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.dir = Path(tempfile.mkdtemp(prefix="kabar-pg-relay-"))
        self.path = self.dir / ".s.PGSQL.5432"
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(self.path))
        self._server.listen(64)
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="kabar-pg-relay").start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                inner, _ = self._server.accept()
            except OSError:
                return
            try:
                outer = socket.create_connection(self.target, timeout=5)
                outer.settimeout(None)
            except OSError:
                inner.close()
                continue
            for a, b in ((inner, outer), (outer, inner)):
                threading.Thread(
                    target=self._pump, args=(a, b), daemon=True, name="kabar-pg-relay-pump"
                ).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresStore:
    """A whatsmeow store in a PostgreSQL schema of its own, reachable from inside the
    namespace. ``url(app)`` is a store URL for both Go's lib/pq and psycopg, tagged with
    an ``application_name`` so its backends can be counted in ``pg_stat_activity``."""

    def __init__(self, env: dict[str, str]):
        self.socket_dir = env[_PG_SOCKET_DIR]
        self.schema = env[_PG_SCHEMA]
        self.database = env[_PG_DATABASE]
        self.user = env[_PG_USER]

    def url(self, application: str = "kabar-test-store") -> str:
        query = urllib.parse.urlencode(
            {
                "host": self.socket_dir,
                "port": "5432",
                "sslmode": "disable",
                "application_name": application,
                "options": f"-csearch_path={self.schema}",
            }
        )
        return f"postgres://{self.user}@/{self.database}?{query}"

    def connect(self):
        import psycopg

        return psycopg.connect(self.url("kabar-test-observer"), autocommit=True)

    def backends(self, application: str) -> int:
        """PostgreSQL backends opened with ``url(application)`` right now."""
        with self.connect() as db:
            return db.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application,)
            ).fetchone()[0]


@pytest.fixture
def pg_store():
    """A ``PostgresStore`` in a schema of its own (inside the namespace; outside, the
    test's body does not run and this is None)."""
    if not INSIDE:
        yield None
        return
    env = {k: os.environ[k] for k in (_PG_SOCKET_DIR, _PG_DATABASE, _PG_USER)}
    store = PostgresStore(dict(env, **{_PG_SCHEMA: f"kabar_wm_{secrets.token_hex(4)}"}))
    with store.connect() as db:
        db.execute(f'CREATE SCHEMA "{store.schema}"')
    yield store
    with store.connect() as db:
        db.execute(f'DROP SCHEMA "{store.schema}" CASCADE')


# --- whatsmeow's store, written the way whatsmeow writes it ---------------------------------

_DEVICE_ROW = {
    "registration_id": 1,
    "noise_key": b"n" * 32,
    "identity_key": b"i" * 32,
    "signed_pre_key": b"p" * 32,
    "signed_pre_key_id": 1,
    "signed_pre_key_sig": b"s" * 64,
    "adv_key": b"a" * 32,
    "adv_details": b"",
    "adv_account_sig": b"c" * 64,
    "adv_account_sig_key": b"k" * 32,
    "adv_device_sig": b"d" * 64,
    "platform": "android",
    "push_name": "Kabar Test",
}


def insert_device(
    jid: str, *, sqlite_path: Path | None = None, pg: PostgresStore | None = None
) -> None:
    """A paired device's row in ``whatsmeow_device`` (the table the real library
    created), with keys of the lengths whatsmeow checks. ``jid`` is ``user:N@server``."""
    row = dict(_DEVICE_ROW, jid=jid, lid=f"{jid.split(':')[0]}9@lid")
    columns = ", ".join(row)
    if pg is not None:
        with pg.connect() as db:
            db.execute(
                f"INSERT INTO whatsmeow_device ({columns}) VALUES ({', '.join(['%s'] * len(row))})",
                list(row.values()),
            )
        return
    import sqlite3

    db = sqlite3.connect(str(sqlite_path))
    try:
        db.execute(
            f"INSERT INTO whatsmeow_device ({columns}) VALUES ({', '.join(['?'] * len(row))})",
            list(row.values()),
        )
        db.commit()
    finally:
        db.close()
