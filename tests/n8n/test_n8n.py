"""n8n-nodes-kabar in a real n8n 1.x against a real `kabar run` (sandbox sessions).

`make test-n8n` installs n8n into .cache/n8n, builds the package, and runs this with
KABAR_N8N_TESTS=1. Here: Kabar starts on a free port; the package is installed into a
fresh n8n user folder as a community package (as n8n's own installer lays it out);
credentials and workflows are imported with n8n's CLI and activated; n8n starts on
127.0.0.1. Then each node runs in a workflow: the Kabar node sends and looks up, the
Kabar Trigger fires on a sandbox message, and Send and Wait resumes on a sandbox reply,
an invalid reply, and a timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.gateway import KABAR, Gateway, free_port, request_json, wait_for

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "integrations" / "n8n-nodes-kabar"
N8N_DIR = Path(os.environ.get("KABAR_N8N_DIR", ROOT / ".cache" / "n8n"))
N8N_BIN = N8N_DIR / "node_modules" / "n8n" / "bin" / "n8n"
CREDENTIAL = {"kabarApi": {"id": "kabarCredential1", "name": "Kabar"}}
PKG = "n8n-nodes-kabar"

ASKED = "6281200000001"  # answers the question
SILENT = "6281200000002"  # never answers
WRONG = "6281200000003"  # answers wrongly, twice
CHATTY = "6281200000009"  # writes to the trigger's session


def _watches(kabar: Gateway) -> str:
    """Kabar's side of every send-and-wait, for a failure's message."""
    _, runs = kabar.call("GET", "/api/v1/runs?workflow=reply-watch&limit=200")
    lines = []
    for run in runs.get("items", []):
        _, watch = kabar.call("GET", f"/api/v1/reply-watches/{run['id']}")
        lines.append(
            json.dumps(
                {k: watch.get(k) for k in ("chat", "status", "outcome", "error", "callback")},
                default=str,
            )
        )
    return "\n".join(lines)


def _wait(predicate, timeout=60.0, what="condition"):
    return wait_for(predicate, timeout=timeout, what=what, interval=0.3)


# -- Kabar ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kabar(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kabar")
    port = free_port()
    env = {
        **os.environ,
        "KABAR_INSTANCE_PATH": str(folder / "instance"),
        "KABAR_ADMIN_PASSWORD": "admin-password",
        "KABAR_PORT": str(port),
        "KABAR_WEB_WORKERS": "1",
        "KABAR_ARGON2_MEMORY_COST": "1024",
        "KABAR_WEBHOOK_ALLOW": "127.0.0.1",
    }  # n8n runs on this machine
    env.pop("KABAR_DATABASE_URL", None)
    subprocess.run([*KABAR, "init"], env=env, check=True, capture_output=True, cwd=ROOT)
    log = open(folder / "kabar.log", "w")
    process = subprocess.Popen(
        [*KABAR, "run"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
    )
    gateway = Gateway(f"http://127.0.0.1:{port}")
    try:
        gateway.wait(lambda: gateway.call("GET", "/api/v1/ready")[0] == 200, what="ready")
        _, tokens = gateway.call(
            "POST", "/api/v1/auth/login", {"username": "admin", "password": "admin-password"}
        )
        gateway.token = tokens["access_token"]
        gateway.sessions = {
            label: _sandbox_session(gateway, label) for label in ("asks", "listens")
        }
        status, key = gateway.call("POST", "/api/v1/api-keys", {"name": "n8n"})
        assert status == 201, key
        gateway.api_key = key["key"]
        yield gateway
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _sandbox_session(gateway: Gateway, label: str) -> str:
    status, session = gateway.call(
        "POST",
        "/api/v1/sessions",
        {"label": label, "transport": "sandbox", "settings": {"pacing": {"enabled": False}}},
    )
    assert status == 201, session
    sid = session["id"]
    gateway.wait(lambda: gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "qr")
    assert gateway.call("POST", f"/api/v1/sandbox/sessions/{sid}/scan", {})[0] == 200
    gateway.wait(
        lambda: gateway.call("GET", f"/api/v1/sessions/{sid}")[1]["status"] == "connected",
        what=f"{label} connected",
    )
    return sid


def received(gateway: Gateway, session: str, to: str) -> list[str]:
    """What the sandbox contact ``to`` got from the session, oldest first."""
    status, page = gateway.call(
        "GET", f"/api/v1/sandbox/sessions/{gateway.sessions[session]}/received?to={to}&limit=200"
    )
    assert status == 200, page
    return [
        item["content"].get("text")
        or item["content"].get("caption")
        or json.dumps(item["content"].get("poll") or item["kind"])
        for item in page["items"]
    ]


def say(gateway: Gateway, session: str, sender: str, text: str) -> None:
    status, answer = gateway.call(
        "POST",
        f"/api/v1/sandbox/sessions/{gateway.sessions[session]}/messages",
        {"from": sender, "name": "Budi", "text": text},
    )
    assert status == 201, answer


# -- n8n -----------------------------------------------------------------------------------


def node(name, kind, parameters, position, **extra):
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "type": kind,
        "typeVersion": extra.pop("typeVersion", 1),
        "position": position,
        "parameters": parameters,
        **extra,
    }


def kabar_node(name, parameters, position):
    return node(name, f"{PKG}.kabar", parameters, position, credentials=CREDENTIAL)


def webhook_node(path, response_mode):
    return node(
        "Webhook",
        "n8n-nodes-base.webhook",
        {"httpMethod": "POST", "path": path, "responseMode": response_mode, "options": {}},
        [0, 0],
        typeVersion=2,
        webhookId=str(uuid.uuid4()),
    )


def chain(*names):
    return {
        a: {"main": [[{"node": b, "type": "main", "index": 0}]]}
        for a, b in zip(names, names[1:], strict=False)
    }


def workflows(kabar: Gateway) -> list[dict]:
    asks, listens = kabar.sessions["asks"], kabar.sessions["listens"]
    send = {
        "id": "kabarSendFlow001",
        "name": "Kabar node",
        "active": True,
        "settings": {"executionOrder": "v1"},
        "connections": chain(
            "Webhook", "Send text", "Send poll", "Is registered", "Create ticket", "Get ticket"
        ),
        "nodes": [
            webhook_node("kabar-send", "lastNode"),
            kabar_node(
                "Send text",
                {
                    "resource": "message",
                    "operation": "send",
                    "session": asks,
                    "targetKind": "phone",
                    "to": "={{ $json.body.to }}",
                    "kind": "text",
                    "text": "Halo dari n8n",
                },
                [200, 0],
            ),
            kabar_node(
                "Send poll",
                {
                    "resource": "message",
                    "operation": "send",
                    "session": asks,
                    "targetKind": "phone",
                    "to": "={{ $('Webhook').first().json.body.to }}",
                    "kind": "poll",
                    "pollQuestion": "Kapan?",
                    "pollOptions": "Senin\nSelasa",
                },
                [400, 0],
            ),
            kabar_node(
                "Is registered",
                {
                    "resource": "contact",
                    "operation": "isRegistered",
                    "session": asks,
                    "phone": "={{ $('Webhook').first().json.body.to }}",
                },
                [600, 0],
            ),
            kabar_node(
                "Create ticket",
                {
                    "resource": "ticket",
                    "operation": "create",
                    "text": "AC ruang 101 mati",
                    "reporterPhone": "={{ $('Webhook').first().json.body.to }}",
                },
                [800, 0],
            ),
            kabar_node(
                "Get ticket",
                {"resource": "ticket", "operation": "get", "number": "={{ $json.number }}"},
                [1000, 0],
            ),
        ],
    }
    echo = {
        "id": "kabarTriggerFlow",
        "name": "Kabar Trigger",
        "active": True,
        "settings": {"executionOrder": "v1"},
        "connections": chain("On message", "Echo"),
        "nodes": [
            node(
                "On message",
                f"{PKG}.kabarTrigger",
                {"session": listens, "events": ["message.received"], "ignoreFromMe": True},
                [0, 0],
                credentials=CREDENTIAL,
                webhookId=str(uuid.uuid4()),
            ),
            kabar_node(
                "Echo",
                {
                    "resource": "message",
                    "operation": "send",
                    "session": listens,
                    "targetKind": "jid",
                    "to": "={{ $json.data.message.chat.jid }}",
                    "kind": "text",
                    "text": "=echo: {{ $json.data.message.text }}",
                },
                [200, 0],
            ),
        ],
    }
    # n8n 1.x resumes a waiting node on its first output only, so the item's outcome says
    # which way it went (a Switch node would branch on it; one expression does here).
    answer = (
        "={{ $json.outcome === 'reply' ? 'Jawaban: ' + $json.text + ' (' + "
        "$json.attempts + ')' : $json.outcome === 'timeout' ? 'Waktu habis' : "
        "'Tidak valid: ' + $json.text }}"
    )
    ask = {
        "id": "kabarAskFlow0001",
        "name": "Kabar Send and Wait",
        "active": True,
        "settings": {"executionOrder": "v1"},
        "connections": chain("Webhook", "Ask", "Answer"),
        "nodes": [
            webhook_node("kabar-ask", "onReceived"),
            node(
                "Ask",
                f"{PKG}.kabarSendAndWait",
                {
                    "session": asks,
                    "targetKind": "phone",
                    "to": "={{ $json.body.to }}",
                    "prompt": "Datang besok? (ya/tidak)",
                    "timeout": "={{ $json.body.timeout }}",
                    "pattern": "(?i)(ya|tidak)",
                    "reprompt": "Balas ya atau tidak.",
                    "maxAttempts": 2,
                },
                [200, 0],
                credentials=CREDENTIAL,
                webhookId=str(uuid.uuid4()),
            ),
            kabar_node(
                "Answer",
                {
                    "resource": "message",
                    "operation": "send",
                    "session": asks,
                    "targetKind": "phone",
                    "to": "={{ $('Webhook').first().json.body.to }}",
                    "kind": "text",
                    "text": answer,
                },
                [400, 0],
            ),
        ],
    }
    return [send, echo, ask]


def install_package(user_folder: Path) -> None:
    """Lay the package out as n8n's community-package installer does:
    <user folder>/.n8n/nodes/node_modules/n8n-nodes-kabar (package.json + dist)."""
    nodes = user_folder / ".n8n" / "nodes"
    target = nodes / "node_modules" / PKG
    target.mkdir(parents=True)
    shutil.copy(PACKAGE / "package.json", target / "package.json")
    shutil.copytree(PACKAGE / "dist", target / "dist")
    (nodes / "package.json").write_text(
        json.dumps({"name": "installed-nodes", "private": True, "dependencies": {PKG: "0.1.0"}})
    )


@pytest.fixture(scope="module")
def n8n(kabar, tmp_path_factory):
    assert N8N_BIN.exists(), f"n8n is not installed at {N8N_DIR}: run `make test-n8n`"
    assert (PACKAGE / "dist").is_dir(), "build the package first: `make test-n8n`"
    folder = tmp_path_factory.mktemp("n8n")
    port = free_port()
    env = {
        **os.environ,
        "N8N_USER_FOLDER": str(folder),
        "N8N_PORT": str(port),
        "N8N_LISTEN_ADDRESS": "127.0.0.1",
        "N8N_HOST": "127.0.0.1",
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/",
        "N8N_ENCRYPTION_KEY": "kabar-n8n-tests",
        "N8N_DIAGNOSTICS_ENABLED": "false",
        "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
        "N8N_TEMPLATES_ENABLED": "false",
        "N8N_PERSONALIZATION_ENABLED": "false",
        "N8N_RUNNERS_ENABLED": "false",
        "N8N_SECURE_COOKIE": "false",
        "N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS": "false",
        "EXECUTIONS_MODE": "regular",
        "DB_TYPE": "sqlite",
        "N8N_LOG_LEVEL": "info",
        "N8N_COMMUNITY_PACKAGES_ENABLED": "true",
        "GENERIC_TIMEZONE": "UTC",
        "NODE_OPTIONS": "--max-old-space-size=2048",
    }
    install_package(folder)
    credentials = folder / "credentials.json"
    credentials.write_text(
        json.dumps(
            [
                {
                    "id": CREDENTIAL["kabarApi"]["id"],
                    "name": "Kabar",
                    "type": "kabarApi",
                    "data": {"baseUrl": kabar.base, "apiKey": kabar.api_key},
                }
            ]
        )
    )
    flows = folder / "workflows"
    flows.mkdir()
    for flow in workflows(kabar):
        (flows / f"{flow['id']}.json").write_text(json.dumps(flow))

    def cli(*args):
        done = subprocess.run(
            ["node", str(N8N_BIN), *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"n8n {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    cli("import:credentials", f"--input={credentials}")
    cli("import:workflow", "--separate", f"--input={flows}")
    cli("update:workflow", "--all", "--active=true")
    log_path = folder / "n8n.log"
    log = open(log_path, "w")
    process = subprocess.Popen(
        ["node", str(N8N_BIN), "start"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(
            lambda: urllib.request.urlopen(f"{base}/healthz", timeout=2).status == 200,
            timeout=180,
            what="n8n to start",
        )
        # Activation registered the trigger's webhook in Kabar.
        _wait(
            lambda: any(
                h["url"].startswith(base) for h in kabar.call("GET", "/api/v1/webhooks")[1]["items"]
            ),
            timeout=60,
            what="the Kabar Trigger's webhook in Kabar",
        )
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        print(log_path.read_text()[-6000:])


def post(url: str, body: dict) -> tuple[int, dict]:
    return request_json("POST", url, body, timeout=60)


# -- the tests -----------------------------------------------------------------------------


def test_the_kabar_node_sends_looks_up_and_makes_a_ticket(kabar, n8n):
    status, ticket = post(f"{n8n}/webhook/kabar-send", {"to": "0812-1111-2222"})
    assert status == 200, ticket
    assert ticket["number"] and ticket["text"] == "AC ruang 101 mati"
    sent = _wait(
        lambda: (r := received(kabar, "asks", "6281211112222")) and len(r) >= 2 and r,
        what="the text and the poll",
    )
    assert sent[0] == "Halo dari n8n"
    assert json.loads(sent[1])["question"] == "Kapan?"


def test_the_trigger_fires_on_a_sandbox_message(kabar, n8n):
    say(kabar, "listens", CHATTY, "halo n8n")
    assert _wait(
        lambda: "echo: halo n8n" in received(kabar, "listens", CHATTY), what="the trigger's echo"
    )


def test_send_and_wait_resumes_on_the_reply(kabar, n8n):
    status, _ = post(f"{n8n}/webhook/kabar-ask", {"to": ASKED, "timeout": 600})
    assert status == 200
    _wait(lambda: "Datang besok? (ya/tidak)" in received(kabar, "asks", ASKED), what="the prompt")
    say(kabar, "asks", ASKED, "mungkin")
    _wait(lambda: "Balas ya atau tidak." in received(kabar, "asks", ASKED), what="reprompt")
    say(kabar, "asks", ASKED, "Ya")
    assert _wait(
        lambda: "Jawaban: Ya (2)" in received(kabar, "asks", ASKED),
        timeout=90,
        what=lambda: f"the reply outcome; Kabar's watches:\n{_watches(kabar)}",
    )


def test_send_and_wait_gives_up_after_max_attempts(kabar, n8n):
    post(f"{n8n}/webhook/kabar-ask", {"to": WRONG, "timeout": 600})
    _wait(lambda: "Datang besok? (ya/tidak)" in received(kabar, "asks", WRONG), what="prompt")
    say(kabar, "asks", WRONG, "besok")
    _wait(lambda: "Balas ya atau tidak." in received(kabar, "asks", WRONG), what="reprompt")
    say(kabar, "asks", WRONG, "lusa")
    assert _wait(
        lambda: "Tidak valid: lusa" in received(kabar, "asks", WRONG),
        timeout=90,
        what=lambda: f"the invalid outcome; Kabar's watches:\n{_watches(kabar)}",
    )


def test_send_and_wait_times_out(kabar, n8n):
    post(f"{n8n}/webhook/kabar-ask", {"to": SILENT, "timeout": 2})
    _wait(lambda: "Datang besok? (ya/tidak)" in received(kabar, "asks", SILENT), what="prompt")
    assert _wait(
        lambda: "Waktu habis" in received(kabar, "asks", SILENT),
        timeout=90,
        what=lambda: f"the timeout outcome; Kabar's watches:\n{_watches(kabar)}",
    )
    assert received(kabar, "asks", SILENT) == ["Datang besok? (ya/tidak)", "Waktu habis"]
