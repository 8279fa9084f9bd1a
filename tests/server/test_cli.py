"""The ``kabar`` command, run against the test app (and its database) in-process."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from server.models import OutboxMessage, User, WorkflowRun, db


def _login(client, username, password):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def _ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def test_init_creates_the_first_admin_once_and_prints_its_password(kabar, client):
    output = _ok(kabar("init"))
    assert "Database at revision" in output
    assert "Created the admin user 'admin'." in output
    # The credentials come last, in a box, with how to get a key and a lost password back.
    box = output.strip().splitlines()[-9:]
    assert box[0] == box[-1] and set(box[0]) == {"+", "-"}, output
    password = re.search(r"\| +admin password: +(\S+) +\(shown once", output).group(1)
    assert re.search(r"\| +admin username: +admin +\|", output)
    assert 'kabar apikey create --user admin --name "my script"' in output
    assert "kabar users set-password admin" in output
    response = _login(client, "admin", password)
    assert response.status_code == 200
    me = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {response.json['access_token']}"}
    )
    assert me.json["user"]["group"] == "admin"

    again = _ok(kabar("init"))
    assert "An admin exists already" in again and "users set-password" in again
    assert password not in again
    assert db.session.query(User).count() == 1


def test_init_uses_the_configured_admin(app, kabar, client, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "ADMIN_USERNAME", "Kepala")
    monkeypatch.setitem(app.config["KABAR"], "ADMIN_PASSWORD", "configured-secret")
    output = _ok(kabar("init"))
    assert "Created the admin user 'kepala'." in output
    assert "configured-secret" not in output and "KABAR_ADMIN_PASSWORD" in output
    assert _login(client, "kepala", "configured-secret").status_code == 200


def test_users_create_list_block_unblock(kabar, client):
    created = _ok(
        kabar(
            "users",
            "create",
            "Tbo1",
            "--group",
            "field",
            "--name",
            "Agus",
            "--password",
            "password123",
        )
    )
    assert "Created user 'tbo1'" in created and "in group 'field'" in created
    assert _login(client, "tbo1", "password123").status_code == 200

    listed = _ok(kabar("users", "list"))
    assert re.search(r"tbo1\s+field\s+active", listed)

    assert "Blocked 'tbo1'." in _ok(kabar("users", "block", "tbo1", "--reason", "on leave"))
    assert re.search(r"tbo1\s+field\s+blocked", _ok(kabar("users", "list")))
    assert _login(client, "tbo1", "password123").json["code"] == "account_blocked"

    assert "Unblocked" in _ok(kabar("users", "unblock", "TBO1"))
    assert _login(client, "tbo1", "password123").status_code == 200


def test_users_set_password_gets_a_lost_password_back(kabar, client, admin):
    old = client.post(
        "/api/v1/auth/login", json={"username": admin.username, "password": "password123"}
    )
    assert old.status_code == 200, old.json
    output = _ok(kabar("users", "set-password", admin.username, "--generate"))
    password = re.search(r"\| +password: +(\S+) +\(shown once\)", output).group(1)
    assert output.strip().splitlines()[-1].startswith("+--")  # the password comes last
    assert _login(client, admin.username, password).status_code == 200
    assert _login(client, admin.username, "password123").status_code == 401
    me = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {old.json['access_token']}"}
    )
    assert me.status_code == 401  # the logins made with the old password ended

    typed = kabar("users", "set-password", admin.username, "--password", "typed-secret-1")
    assert "is set" in _ok(typed) and "typed-secret-1" not in typed.output
    assert _login(client, admin.username, "typed-secret-1").status_code == 200
    short = kabar("users", "set-password", admin.username, "--password", "x")
    assert short.exit_code != 0 and "password: Use at least" in short.output
    missing = kabar("users", "set-password", "ghost", "--generate")
    assert missing.exit_code != 0 and "No user named 'ghost'." in missing.output


def test_users_errors_exit_non_zero_with_a_reason(kabar, make_user):
    for args in (
        ("users", "block", "ghost"),
        ("users", "unblock", "ghost"),
        ("apikey", "create", "--user", "ghost", "--name", "x"),
    ):
        result = kabar(*args)
        assert result.exit_code != 0, args
        assert "No user named 'ghost'." in result.output, args

    bad_group = kabar("users", "create", "someone", "--group", "nope", "--password", "password123")
    assert bad_group.exit_code != 0
    assert "group: No group named 'nope'" in bad_group.output

    make_user(username="taken")
    taken = kabar("users", "create", "taken", "--password", "password123")
    assert taken.exit_code != 0 and "is taken" in taken.output
    short = kabar("users", "create", "newbie", "--password", "short")
    assert short.exit_code != 0 and "password: Use at least 8 characters." in short.output


def test_the_cli_cannot_block_the_last_admin(kabar, admin):
    result = kabar("users", "block", admin.username)
    assert result.exit_code != 0 and "last active admin" in result.output


def test_apikey_create_list_revoke(kabar, client, make_user):
    user = make_user("operator", username="bot")
    created = _ok(
        kabar(
            "apikey",
            "create",
            "--user",
            "bot",
            "--name",
            "Prometheus",
            "--permission",
            "sessions:read",
        )
    )
    key_id = int(re.search(r"API key (\d+) for 'bot': sessions:read", created).group(1))
    key = re.search(r"Key \(shown once\): (kabar_\S+)", created).group(1)
    headers = {"X-API-Key": key}
    me = client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json["user"]["id"] == user.id and me.json["permissions"] == ["sessions:read"]
    assert client.get("/api/v1/users", headers=headers).status_code == 403

    listed = _ok(kabar("apikey", "list"))
    assert re.search(rf"{key_id}\s+kabar_{key.split('_')[1]}_…\s+bot\s+Prometheus\s+active", listed)
    assert key not in listed and key.split("_", 2)[2] not in listed
    assert "Prometheus" in _ok(kabar("apikey", "list", "--user", "bot"))

    assert f"Revoked API key {key_id}." in _ok(kabar("apikey", "revoke", str(key_id)))
    assert client.get("/api/v1/auth/me", headers=headers).json["code"] == "api_key_revoked"
    assert "revoked" in _ok(kabar("apikey", "list"))
    missing = kabar("apikey", "revoke", "999999")
    assert missing.exit_code != 0 and "No API key with id 999999." in missing.output


def test_apikey_create_quiet_prints_only_a_key_that_works(kabar, client, admin):
    output = _ok(kabar("apikey", "create", "--user", admin.username, "--name", "script", "-q"))
    key = output.strip()
    assert output == key + "\n" and key.startswith("kabar_")
    me = client.get("/api/v1/auth/me", headers={"X-API-Key": key})
    assert me.status_code == 200 and "sessions:manage" in me.json["permissions"]


def test_apikey_create_refuses_what_the_user_does_not_hold(kabar, make_user):
    make_user("field", username="tbo")
    beyond = kabar(
        "apikey", "create", "--user", "tbo", "--name", "x", "--permission", "users:manage"
    )
    assert beyond.exit_code != 0 and "do not hold: users:manage" in beyond.output
    unknown = kabar("apikey", "create", "--user", "tbo", "--name", "x", "--permission", "nope")
    assert unknown.exit_code != 0 and "Unknown permission: nope" in unknown.output
    _ok(kabar("users", "block", "tbo"))
    blocked = kabar("apikey", "create", "--user", "tbo", "--name", "x")
    assert blocked.exit_code != 0 and "'tbo' is blocked." in blocked.output


def test_sandbox_contacts_speak_act_on_groups_and_vote(
    kabar, client, operator_headers, sandbox_session
):
    import sqlalchemy as sa

    from server.models import SandboxDelivery, WaSession
    from tests.server.conftest import wait_for

    sid, group, budi = sandbox_session, "120363012345678901@g.us", ("--from", "0812-3456-789")
    contact = ("--session", sid, *budi, "--name", "Budi")
    assert "Delivered as message" in _ok(
        kabar("sandbox", "say", *contact, "--group", group, "Halo semua")
    )
    added = _ok(
        kabar(
            "sandbox",
            "participants",
            *contact,
            "--group",
            group,
            "--action",
            "add",
            "0813-5555-6666",
            "0812-3456-789",
        )
    )
    assert added.splitlines() == [
        "6281355556666@s.whatsapp.net: ok",
        "628123456789@s.whatsapp.net: already_participant",
    ]
    assert "Changed: name, announce." in _ok(
        kabar(
            "sandbox",
            "group-update",
            *contact,
            "--group",
            group,
            "--set-name",
            "Warga RT 5",
            "--announce",
        )
    )
    assert "Nothing changed." in _ok(
        kabar("sandbox", "group-update", *contact, "--group", group, "--set-name", "Warga RT 5")
    )
    unknown = kabar(
        "sandbox",
        "participants",
        *contact,
        "--group",
        "120363099999999999",
        "--action",
        "remove",
        "0813-5555-6666",
    )
    assert unknown.exit_code != 0 and "There is no group 120363099999999999@g.us" in unknown.output
    nothing = kabar("sandbox", "group-update", *contact, "--group", group)
    assert nothing.exit_code != 0 and "Give at least one of" in nothing.output

    session = db.session.get(WaSession, sid)
    session.settings = {"pacing": {"enabled": False}}
    db.session.commit()
    poll = client.post(
        f"/api/v1/sessions/{sid}/messages",
        headers=operator_headers,
        json={
            "to": "0812-3456-789",
            "type": "poll",
            "poll": {"question": "Kerja bakti?", "options": ["Ya", "Tidak"]},
        },
    ).json
    wait_for(
        lambda: db.session.scalar(
            sa.select(SandboxDelivery).where(SandboxDelivery.wa_id == poll["wa_id"])
        ),
        what="the poll delivered",
    )
    vote = ("sandbox", "vote", *contact, "--poll")
    assert "Voted for Ya." in _ok(kabar(*vote, poll["wa_id"], "Ya"))
    assert "Vote taken back." in _ok(kabar(*vote, poll["id"]))
    wrong = kabar(*vote, poll["wa_id"], "Mungkin")
    assert wrong.exit_code != 0 and "'Mungkin' is not an option of this poll." in wrong.output
    missing = kabar(*vote, "3EB0000000000000000000", "Ya")
    assert missing.exit_code != 0 and "has sent no poll" in missing.output

    log = wait_for(
        lambda: (
            (
                items := client.get(
                    "/api/v1/events/log?type=group.,poll.&limit=50", headers=operator_headers
                ).json["items"]
            )
            and len(items) >= 6
            and items
        ),
        what="the events",
    )
    assert [(e["type"], e["data"].get("options")) for e in log] == [
        ("group.joined", None),
        ("group.participants", None),
        ("group.updated", None),
        ("group.updated", None),
        ("poll.vote", ["Ya"]),
        ("poll.vote", []),
    ]


# --- nodes and workflows ------------------------------------------------------------

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def test_nodes_list_and_show_come_from_each_nodes_schema(kabar):
    listed = _ok(kabar("nodes", "list"))
    assert re.search(r"^send\s+v1  Send a message: text, media", listed, re.M)
    assert "wait_for_reply" in listed
    shown = json.loads(_ok(kabar("nodes", "show", "send")))
    assert shown["type"] == "send" and shown["outputs"] == ["next", "error"]
    assert "recipients" in shown["params"]["properties"]
    assert json.loads(_ok(kabar("nodes", "show", "send", "--version", "1")))["version"] == 1

    unknown = kabar("nodes", "show", "sendd")
    assert unknown.exit_code == 1 and "Did you mean 'send'?" in unknown.output
    old = kabar("nodes", "show", "send", "--version", "9")
    assert old.exit_code == 1 and "has no version 9" in old.output


def test_workflow_validate_prints_each_problem_with_its_path(kabar, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "name": "bad",
                "start": "ask",
                "nodes": {
                    "ask": {
                        "type": "wait_for_reply",
                        "params": {"prompt": "?"},
                        "next": {"reply": "gone"},
                    }
                },
            }
        )
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": ')
    result = kabar(
        "workflow",
        "validate",
        str(WORKFLOWS / "survey.json"),
        str(bad),
        str(broken),
        str(tmp_path / "missing.json"),
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f"{WORKFLOWS / 'survey.json'}: ok"
    assert f"{bad}: $.nodes.ask.params.timeout: " in result.output
    assert f"{bad}: $.nodes.ask.next.reply: " in result.output and "'gone'" in result.output
    assert f"{broken}: $: not valid JSON" in result.output
    assert f"{tmp_path / 'missing.json'}: $: cannot read the file" in result.output
    assert _ok(kabar("workflow", "validate", str(WORKFLOWS / "otp.json"))).endswith(": ok\n")


@pytest.fixture
def folder(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config["KABAR"], "WORKFLOWS_DIR", str(tmp_path))
    return tmp_path


def _write(folder, doc, name=None):
    (folder / f"{name or doc['name']}.json").write_text(json.dumps(doc))


DOUBLE = {
    "name": "double",
    "start": "calc",
    "nodes": {"calc": {"type": "end", "params": {"result": {"n": "{{ trigger.input.n * 2 }}"}}}},
}


def test_workflow_reload_list_enable_disable(kabar, folder):
    assert "No workflows." in _ok(kabar("workflow", "list"))
    _write(folder, json.loads((WORKFLOWS / "survey.json").read_text()))
    _write(folder, DOUBLE)
    _write(folder, {"name": "bad", "start": "x", "nodes": {"x": {"type": "nope"}}})
    result = kabar("workflow", "reload")
    assert result.exit_code == 1  # a file was not valid; the others were loaded
    assert f"Folder: {folder}" in result.output
    assert "added: double v1 (double.json)" in result.output
    assert "added: survey v1 (survey.json)" in result.output
    assert "error: bad.json: The workflow is not valid: 1 problem" in result.output
    assert "  $.nodes.x.type: unknown node type 'nope'" in result.output
    assert "New workflows start disabled" in result.output

    (folder / "bad.json").unlink()
    again = _ok(kabar("workflow", "reload"))
    assert "unchanged: 2" in again and "added" not in again
    listed = _ok(kabar("workflow", "list"))
    assert re.search(r"^double\s+v1\s+disabled\s+file\s+global\s+-$", listed, re.M), listed
    assert re.search(r"^survey\s+v1\s+disabled\s+file\s+global\s+message$", listed, re.M)

    assert "Enabled 'survey' (version 1)." in _ok(kabar("workflow", "enable", "survey"))
    assert re.search(r"^survey\s+v1\s+enabled", _ok(kabar("workflow", "list")), re.M)
    assert "Disabled 'survey'" in _ok(kabar("workflow", "disable", "survey"))
    assert re.search(r"^survey\s+v1\s+disabled", _ok(kabar("workflow", "list")), re.M)
    missing = kabar("workflow", "enable", "ghost")
    assert missing.exit_code != 0 and "No workflow named 'ghost'" in missing.output


def test_workflow_run_starts_a_manual_run(kabar, folder, client, operator_headers):
    _write(folder, DOUBLE)
    _write(folder, json.loads((WORKFLOWS / "survey.json").read_text()))
    _write(
        folder,
        {
            "name": "fails",
            "start": "stop",
            "nodes": {
                "stop": {"type": "end", "params": {"status": "failed", "reason": "no stock"}}
            },
        },
    )
    kabar("workflow", "reload")

    done = _ok(kabar("workflow", "run", "double", "--input", '{"n": 21}'))
    run_id = re.search(r"^Run (\w+): completed$", done, re.M).group(1)
    assert 'result: {"n": 42}' in done
    run = db.session.scalar(sa.select(WorkflowRun).where(WorkflowRun.id == run_id))
    assert run.trigger_type == "manual" and run.state["trigger"]["by"] == "cli"
    assert run.state["trigger"]["input"] == {"n": 21}

    session = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "Helpdesk", "transport": "sandbox"},
    ).json["id"]
    waiting = _ok(
        kabar("workflow", "run", "survey", "--session", "Helpdesk", "--chat", "0812-3456-7890")
    )
    assert re.search(r"^Run \w+: waiting$", waiting, re.M)
    assert "It waits at ask for a reply from 0812-3456-7890 until" in waiting
    (queued,) = db.session.scalars(sa.select(OutboxMessage)).all()
    assert queued.session_id == session and queued.to_jid.startswith("6281234567890")

    failed = kabar("workflow", "run", "fails")
    assert failed.exit_code == 1 and "error: no stock" in failed.output

    for args, says in (
        (("--input", "[1]"), "give a JSON object"),
        (("--input", "{nope"), "not valid JSON"),
    ):
        bad = kabar("workflow", "run", "double", *args)
        assert bad.exit_code == 2 and says in bad.output, bad.output
    unknown = kabar("workflow", "run", "double", "--session", "Sales")
    assert unknown.exit_code != 0
    assert "No session 'Sales' that this workflow may use" in unknown.output
    assert "No workflow named 'ghost'" in kabar("workflow", "run", "ghost").output


def test_a_command_without_an_instance_says_how_to_make_one(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "KABAR_INSTANCE_PATH": str(tmp_path / "missing")}
    env.pop("KABAR_DATABASE_URL", None)
    missing = subprocess.run(
        [sys.executable, "-m", "server.cli", "users", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1
    assert (
        f"There is no Kabar instance at {tmp_path / 'missing'}. Create it with `kabar "
        "init`" in missing.stderr
    )
    assert "Traceback" not in missing.stderr
    assert not (tmp_path / "missing").exists() and not (tmp_path / "instance").exists()

    (tmp_path / "missing").mkdir()
    (tmp_path / "missing" / "secret_key").write_text("made by hand")
    unmigrated = subprocess.run(
        [sys.executable, "-m", "server.cli", "sessions", "list"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert unmigrated.returncode == 1 and "Traceback" not in unmigrated.stderr
    assert "is not set up yet; run `kabar init` first." in unmigrated.stderr


def test_kabar_help_shows_kabar_s_commands_only(kabar):
    shown = _ok(kabar("--help"))
    for flask_own in ("--env-file", "--app", "--debug", "limiter", "openapi", "routes", "shell"):
        assert flask_own not in shown, flask_own
    for command in ("init", "run", "demo", "users", "apikey", "sandbox", "workflow"):
        assert re.search(rf"^  {command}\s", shown, re.M), command
