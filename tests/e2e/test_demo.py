"""`kabar demo` as a user runs it: on its own instance, leaving the usual one untouched."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

from tests.gateway import KABAR, Gateway, free_port


def _count(database: Path, sql: str) -> int:
    with sqlite3.connect(database) as connection:
        return connection.execute(sql).fetchone()[0]


def test_demo_runs_on_its_own_instance_and_touches_nothing_else(tmp_path):
    usual = tmp_path / "instance"
    port = free_port()
    env = {
        **os.environ,
        "KABAR_INSTANCE_PATH": str(usual),
        "KABAR_WEB_WORKERS": "1",
        "KABAR_ARGON2_MEMORY_COST": "1024",
        "KABAR_ADMIN_PASSWORD": "admin-password",
    }
    env.pop("KABAR_DATABASE_URL", None)
    subprocess.run([*KABAR, "init"], env=env, check=True, capture_output=True)
    before = (usual / "kabar.db").read_bytes()

    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        demo = subprocess.Popen(
            [*KABAR, "demo", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            gateway = Gateway(f"http://127.0.0.1:{port}")
            gateway.wait(
                lambda: gateway.call("GET", "/api/v1/ready")[0] == 200, what="the demo to serve"
            )
            _, tokens = gateway.call(
                "POST", "/api/v1/auth/login", {"username": "admin", "password": "admin-password"}
            )
            gateway.token = tokens["access_token"]
            sessions = gateway.wait(
                lambda: [
                    s
                    for s in gateway.call("GET", "/api/v1/sessions")[1]["items"]
                    if s["status"] == "connected"
                ],
                what="the demo session to pair",
            )
            assert [s["label"] for s in sessions] == ["Demo helpdesk"]
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(timeout=30)
    printed = log.read_text()
    own = tmp_path / "instance-demo"
    assert f"export KABAR_INSTANCE_PATH={own}" in printed, printed
    assert "your usual instance is untouched" in printed
    # The demo's session, people and enabled helpdesk live in its own database ...
    demo_db = own / "kabar.db"
    assert _count(demo_db, "SELECT count(*) FROM wa_sessions") == 1
    assert (
        _count(demo_db, "SELECT count(*) FROM workflows WHERE enabled AND name LIKE 'helpdesk-%'")
        >= 5
    )
    # ... and the usual instance is byte for byte what it was.
    assert (usual / "kabar.db").read_bytes() == before
    assert _count(usual / "kabar.db", "SELECT count(*) FROM wa_sessions") == 0
