"""Kabar as a package: build the wheel, install it into a fresh virtualenv outside the
checkout (its dependencies from requirements.lock, served by pip's warm cache), and run it
from another folder: init, run, a message through the sandbox, and the shipped
workflows."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.gateway import Gateway, free_port

ROOT = Path(__file__).resolve().parents[2]


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    done = subprocess.run(args, **kwargs)
    assert done.returncode == 0, (args, done.stdout[-3000:], done.stderr[-3000:])
    return done


def test_the_wheel_installs_and_runs_from_any_folder(tmp_path: Path):
    # Build: no setuptools warnings (package data declared), everything it needs inside.
    dist = tmp_path / "dist"
    built = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        str(ROOT),
        "--no-deps",
        "-w",
        str(dist),
        "-v",
        cwd=tmp_path,
    )
    for noise in ("BuildBackendWarning", "is absent from the `packages`", "SetuptoolsDeprecation"):
        assert noise not in built.stdout + built.stderr, noise
    (wheel,) = dist.glob("kabar-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "server/migrations/alembic.ini",
        "server/migrations/env.py",
        "server/ui/static/kabar.js",
        "server/ui/templates/ui/base.html",
        "server/ui/translations/id/LC_MESSAGES/messages.mo",
        "server/shipped_workflows/survey.json",
        "server/shipped_workflows/helpdesk/request.json",
        "nodes/schema.json",
        "nodes/py.typed",
    ):
        assert needed in names, needed
    migrations = {p.name for p in (ROOT / "server/migrations/versions").glob("*.py")}
    assert migrations <= {Path(n).name for n in names if "migrations/versions/" in n}
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]

    # Install as docs/deploy.md does: the locked dependencies (pins and hashes), then the
    # wheel alone; pip check then proves the lock holds everything the wheel needs.
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    _run(
        str(venv / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--require-hashes",
        "-r",
        str(ROOT / "requirements.lock"),
        timeout=900,
    )
    _run(str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", str(wheel))
    _run(str(venv / "bin" / "python"), "-m", "pip", "check")

    # Run it from another folder, with no setting: it finds its own instance.
    elsewhere, home = tmp_path / "elsewhere", tmp_path / "home"
    elsewhere.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KABAR_", "PYTHON", "VIRTUAL_ENV", "XDG_"))
    }
    env.update(
        HOME=str(home),
        KABAR_ARGON2_MEMORY_COST="1024",
        KABAR_WEB_WORKERS="1",
        PATH=f"{venv / 'bin'}:{env['PATH']}",
    )
    where = _run(
        str(venv / "bin" / "python"),
        "-c",
        "import server; print(server.__file__)",
        cwd=elsewhere,
        env=env,
    ).stdout
    assert where.startswith(str(venv)), where  # the installed copy, not the checkout
    missing = subprocess.run(
        ["kabar", "users", "list"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert missing.returncode == 1 and "Create it with `kabar init`" in missing.stderr
    init = _run("kabar", "init", cwd=elsewhere, env=env).stdout
    instance = home / ".local" / "share" / "kabar"
    assert f"Kabar is set up in {instance}." in init, init
    password = re.search(r"admin password: +(\S+)", init).group(1)
    assert (instance / "kabar.db").exists() and not (elsewhere / "instance").exists()

    port = free_port()
    log = open(tmp_path / "kabar.log", "w")
    server = subprocess.Popen(
        ["kabar", "run", "--port", str(port)],
        cwd=elsewhere,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        gateway = Gateway(f"http://127.0.0.1:{port}")
        gateway.wait(
            lambda: gateway.call("GET", "/api/v1/ready")[0] == 200, timeout=60, what="ready"
        )
        _, tokens = gateway.call(
            "POST", "/api/v1/auth/login", {"username": "admin", "password": password}
        )
        gateway.token = tokens["access_token"]
        # The dashboard's files come from the package.
        assert gateway.call("GET", "/api/v1/health")[0] == 200

        # A send through the sandbox.
        status, session = gateway.call(
            "POST",
            "/api/v1/sessions",
            {"label": "wheel", "transport": "sandbox", "settings": {"pacing": {"enabled": False}}},
        )
        assert status == 201, session
        sid = session["id"]
        status, qr = gateway.call("GET", f"/api/v1/sessions/{sid}/qr")
        assert status == 200, qr
        assert gateway.call("POST", f"/api/v1/sandbox/sessions/{sid}/scan", {})[0] == 200
        gateway.wait(
            lambda: gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "connected",
            what="connected",
        )
        status, sent = gateway.call(
            "POST",
            f"/api/v1/sessions/{sid}/messages",
            {"to": "0812-3456-789", "text": "dari wheel"},
        )
        assert status in (201, 202), sent

        def received(phone: str) -> list[str]:
            items = gateway.call("GET", f"/api/v1/sandbox/sessions/{sid}/received?to={phone}")[1][
                "items"
            ]
            return [item["content"].get("text", "") for item in items]

        gateway.wait(lambda: "dari wheel" in received("0812-3456-789"), what="the send")

        # The shipped workflows were loaded from the package; the helpdesk answers.
        listed = _run("kabar", "workflow", "list", cwd=elsewhere, env=env).stdout
        for name in ("survey", "auto-reply", "helpdesk-request", "helpdesk-status"):
            assert re.search(rf"^{name}\s+v1\s+disabled\s+file", listed, re.M), listed
        _run("kabar", "workflow", "enable", "helpdesk-request", cwd=elsewhere, env=env)
        status, said = gateway.call(
            "POST",
            f"/api/v1/sandbox/sessions/{sid}/messages",
            {"from": "0813-1111-2222", "text": "#request lampu mati"},
        )
        assert status in (201, 202), said
        gateway.wait(
            lambda: any("Nomor Tracking" in text for text in received("0813-1111-2222")),
            what="the helpdesk's answer",
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
