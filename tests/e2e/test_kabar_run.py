"""`kabar run` as a user runs it: real processes, HTTP on a free port, kill -9 of the runtime."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.gateway import KABAR, Gateway, free_port


@pytest.fixture
def served(tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "KABAR_INSTANCE_PATH": str(tmp_path / "instance"),
        "KABAR_ADMIN_PASSWORD": "admin-password",
        "KABAR_PORT": str(port),
        "KABAR_WEB_WORKERS": "1",
        "KABAR_ARGON2_MEMORY_COST": "1024",
        "KABAR_RUNTIME_WAIT": "15",
    }  # a loaded test machine: wait longer than production
    env.pop("KABAR_DATABASE_URL", None)
    subprocess.run([*KABAR, "init"], env=env, check=True, capture_output=True)
    log = open(tmp_path / "kabar.log", "w")
    process = subprocess.Popen([*KABAR, "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    gateway = Gateway(f"http://127.0.0.1:{port}")
    try:
        gateway.wait(lambda: gateway.call("GET", "/api/v1/ready")[0] == 200, what="ready")
        _, tokens = gateway.call(
            "POST", "/api/v1/auth/login", {"username": "admin", "password": "admin-password"}
        )
        gateway.token = tokens["access_token"]
        yield gateway, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def test_kill_9_of_the_runtime_keeps_the_api_up_and_sessions_come_back(served):
    gateway, _ = served
    status, session = gateway.call(
        "POST", "/api/v1/sessions", {"label": "demo", "transport": "sandbox"}
    )
    assert status == 201
    sid = session["id"]
    gateway.wait(
        lambda: gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "qr", what="a QR"
    )
    assert gateway.call("POST", f"/api/v1/sandbox/sessions/{sid}/scan", {})[0] == 200
    gateway.wait(
        lambda: gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "connected",
        what="connected",
    )

    old_pid = gateway.call("GET", "/api/v1/ready")[1]["checks"]["runtime"]["pid"]
    os.kill(old_pid, signal.SIGKILL)
    # The API keeps answering while the runtime is gone, and says it is down.
    down = gateway.wait(
        lambda: (
            (r := gateway.call("GET", f"/api/v1/sessions/{sid}"))[0] == 200
            and r[1]["runtime"] == "down"
        ),
        timeout=10,
        what="runtime down",
    )
    assert down
    assert gateway.call("GET", "/api/v1/ready")[0] == 503
    # A message said meanwhile is queued, not lost.
    status, queued = gateway.call(
        "POST",
        f"/api/v1/sandbox/sessions/{sid}/messages",
        {"from": "08123456789", "text": "are you there?"},
    )
    assert (status, queued["status"]) in ((202, "queued"), (201, "delivered"))

    ready = gateway.wait(
        lambda: (r := gateway.call("GET", "/api/v1/ready"))[0] == 200 and r[1],
        timeout=20,
        what="the runtime to be restarted",
    )
    assert ready["checks"]["runtime"]["pid"] != old_pid
    gateway.wait(
        lambda: gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "connected",
        what="the session to reconnect",
    )
    messages = gateway.wait(
        lambda: gateway.call("GET", f"/api/v1/sessions/{sid}/messages")[1]["items"],
        what="the queued message",
    )
    assert [m["text"] for m in messages] == ["are you there?"]


def test_sigterm_stops_web_and_runtime(served):
    gateway, process = served
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(gateway.base + "/api/v1/health", timeout=2)


def test_kill_9_during_a_5000_message_burst_sends_each_exactly_once(served, tmp_path):
    import sqlite3

    gateway, _ = served
    _, session = gateway.call(
        "POST",
        "/api/v1/sessions",
        {
            "label": "burst",
            "transport": "sandbox",
            "settings": {"pacing": {"enabled": False}, "sandbox": {"receipts": False}},
        },
    )
    sid = session["id"]
    gateway.wait(lambda: gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "qr")
    gateway.call("POST", f"/api/v1/sandbox/sessions/{sid}/scan", {})
    gateway.wait(lambda: gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "connected")
    total = 5000
    status, broadcast = gateway.call(
        "POST",
        f"/api/v1/sessions/{sid}/broadcasts",
        {
            "message": {"text": "burst {var1}"},
            "recipients": [{"to": f"6281{i:08d}", "vars": {"var1": str(i)}} for i in range(total)],
        },
    )
    assert status == 202

    database = sqlite3.connect(tmp_path / "instance" / "kabar.db", timeout=30)

    def delivered() -> int:
        return database.execute("SELECT count(*) FROM sandbox_deliveries").fetchone()[0]

    gateway.wait(lambda: delivered() > 300, timeout=120, what="the burst to be under way")
    pid = gateway.call("GET", "/api/v1/ready")[1]["checks"]["runtime"]["pid"]
    os.kill(pid, signal.SIGKILL)
    at_kill = delivered()
    assert at_kill < total, "the burst finished before the kill; make it bigger"

    def progress():
        return gateway.call("GET", f"/api/v1/sessions/{sid}/broadcasts/{broadcast['id']}")[1][
            "progress"
        ]

    final = gateway.wait(
        lambda: (p := progress())["sent"] == total and p,
        timeout=600,
        what="every message to be sent after the restart",
    )
    assert final["failed"] == final["queued"] == final["sending"] == 0
    rows = database.execute(
        "SELECT count(*), count(DISTINCT wa_id), count(DISTINCT to_jid) FROM sandbox_deliveries"
    ).fetchone()
    assert rows == (total, total, total)  # each recipient got exactly one message
    outbox = database.execute(
        "SELECT count(*), count(DISTINCT wa_id) FROM outbox WHERE broadcast_id = ?",
        (broadcast["id"],),
    ).fetchone()
    assert outbox == (total, total)
    database.close()


def test_a_second_kabar_run_refuses_before_changing_anything(served, tmp_path):
    gateway, process = served

    def metrics_text() -> str:
        request = urllib.request.Request(
            gateway.base + "/metrics", headers={"Authorization": f"Bearer {gateway.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()

    assert "kabar_http_requests_total" in metrics_text()
    metrics = sorted((tmp_path / "instance" / "prometheus").iterdir())
    assert metrics
    env = {**os.environ, "KABAR_INSTANCE_PATH": str(tmp_path / "instance")}
    port = gateway.base.rsplit(":", 1)[1]
    second = subprocess.run(
        [*KABAR, "run", "--port", port], env=env, capture_output=True, text=True, timeout=60
    )
    assert second.returncode != 0
    assert f"Kabar is already running for the instance {tmp_path / 'instance'}" in second.stderr
    assert f"PID {process.pid} on http://127.0.0.1:{port}" in second.stderr
    assert "--port" in second.stderr and "Kabar serving on" not in second.stdout
    assert sorted((tmp_path / "instance" / "prometheus").iterdir()) == metrics
    assert 'endpoint="/api/v1/auth/login"' in metrics_text()  # counted before, still there

    # Another instance on the same port: the port is named, before gunicorn tries it.
    other = {**env, "KABAR_INSTANCE_PATH": str(tmp_path / "other")}
    busy = subprocess.run(
        [*KABAR, "run", "--port", port], env=other, capture_output=True, text=True, timeout=60
    )
    assert busy.returncode != 0
    assert f"Port {port} on 127.0.0.1 is in use" in busy.stderr, busy.stderr
    assert "Connection in use" not in busy.stderr
    assert not (tmp_path / "other" / "kabar.db").exists()  # nothing was migrated
