"""A plain script runs a workflow against a running gateway with ``nodes.remote``: the
gateway (served over real HTTP here, with the runtime and a sandbox session) sends and
stores messages; the run lives in the script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from nodes import RemoteContext, RemoteRunner, Workflow
from server.models import WaSession, WorkflowRun, db
from tests.server.conftest import wait_for
from tests.server.workflows.conftest import CONTACT, received, shipped

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "docs" / "examples" / "remote_survey.py"


@pytest.fixture
def gateway(app):
    """The app served over HTTP on a free local port: what a script talks to."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="test-gateway", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def helpdesk(sandbox_session):
    """The sandbox session without pacing, so the test does not wait for it."""
    session = db.session.get(WaSession, sandbox_session)
    session.settings = {"pacing": {"enabled": False}}
    db.session.commit()
    return sandbox_session


@pytest.fixture
def api_key(client, operator_headers):
    created = client.post(
        "/api/v1/api-keys", headers=operator_headers, json={"name": "survey script"}
    )
    assert created.status_code == 201, created.json
    return created.json["key"]


def test_a_script_runs_the_survey_against_the_gateway(
    gateway, api_key, helpdesk, operator_headers, say
):
    script = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--session", "Helpdesk", CONTACT],
        env={**os.environ, "KABAR_URL": gateway, "KABAR_API_KEY": api_key},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: any("Seberapa puas" in t for t in received(helpdesk, CONTACT)),
            timeout=20,
            what="the survey question on the contact's phone",
        )
        say(operator_headers, helpdesk, "sembilan")
        wait_for(
            lambda: any("Mohon balas" in t for t in received(helpdesk, CONTACT)),
            what="the re-prompt",
        )
        say(operator_headers, helpdesk, "5")
        out, err = script.communicate(timeout=30)
    finally:
        if script.poll() is None:
            script.kill()
            script.communicate()
    assert script.returncode == 0, (out, err)
    assert re.search(r"^\w{32}: completed$", out, re.M), out
    assert 'vars: {"rating": 5}' in out
    assert out.count("waiting at ask for a reply") == 2
    wait_for(
        lambda: any("Terima kasih atas nilai 5" in t for t in received(helpdesk)), what="the thanks"
    )
    assert [t.split()[0] for t in received(helpdesk, CONTACT)] == ["Seberapa", "Mohon", "Terima"]
    # The run was the script's: the gateway stored messages, not runs.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WorkflowRun)) == 0


def test_nobody_answers_and_the_script_closes_the_survey(gateway, api_key, helpdesk):
    doc = shipped("survey")
    doc["nodes"]["ask"]["params"]["timeout"] = 1
    with RemoteContext(gateway, api_key, session=helpdesk) as ctx:
        run = RemoteRunner(ctx).run(Workflow.from_dict(doc), {"type": "manual", "chat": CONTACT})
    assert run.status == "completed" and run.outputs["ask"] == {"attempts": 0}
    wait_for(
        lambda: any("Survei kami tutup" in t for t in received(helpdesk)),
        what="the closing message",
    )


def test_a_refused_send_fails_the_run_with_the_gateways_reason(gateway, helpdesk):
    with RemoteContext(gateway, "kabar_notakey_nope", session=helpdesk) as ctx:
        run = RemoteRunner(ctx).run(
            Workflow.from_dict(shipped("survey")), {"type": "manual", "chat": CONTACT}
        )
    assert run.status == "failed"
    assert "(401 " in run.error, run.error
    assert received(helpdesk) == []
