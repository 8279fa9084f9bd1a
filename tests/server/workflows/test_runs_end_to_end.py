"""Workflows run by the real runtime against a sandbox session: messages start and
resume runs, waits survive a restart, hooks answer, schedules and events fire."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from server.models import WorkflowRun, db
from server.runtime import heartbeat
from server.runtime.process import Runtime
from tests.server.conftest import wait_for
from tests.server.workflows.conftest import CONTACT, received, shipped


def _runs(client, headers, **filters):
    response = client.get("/api/v1/runs", headers=headers, query_string=filters)
    assert response.status_code == 200, response.json
    return response.json["items"]


def _survey(timeout=3600):
    doc = shipped("survey")
    doc["nodes"]["ask"]["params"]["timeout"] = timeout
    return doc


def test_survey_asks_rejects_a_wrong_answer_and_thanks(
    client, operator_headers, sandbox_session, upload, say
):
    upload(operator_headers, shipped("survey"))
    say(operator_headers, sandbox_session, "#survey")
    wait_for(
        lambda: any("Seberapa puas" in t for t in received(sandbox_session)),
        what="the survey question",
    )
    (run,) = _runs(client, operator_headers, workflow="survey")
    assert run["status"] == "waiting"
    assert run["wait"]["node"] == "ask" and run["wait"]["kind"] == "reply"
    say(operator_headers, sandbox_session, "sembilan")
    wait_for(
        lambda: any("Mohon balas" in t for t in received(sandbox_session)), what="the re-prompt"
    )
    say(operator_headers, sandbox_session, "5")
    wait_for(lambda: any("nilai 5" in t for t in received(sandbox_session)), what="thanks")
    detail = client.get(f"/api/v1/runs/{run['id']}", headers=operator_headers).json
    assert detail["status"] == "completed"
    assert detail["vars"] == {"rating": 5}
    assert [step["node"] for step in detail["trace"]] == [
        "ask",
        "ask",
        "ask",
        "score",
        "happy",
        "thanks",
    ]
    # The answers were the run's: no second survey started from them.
    assert len(_runs(client, operator_headers, workflow="survey")) == 1


def test_a_message_goes_to_the_waiting_run_before_any_trigger(
    client, operator_headers, sandbox_session, upload, say
):
    upload(operator_headers, _survey())
    upload(
        operator_headers,
        {
            "name": "echo",
            "trigger": {"type": "message", "any": True},
            "start": "echo",
            "nodes": {"echo": {"type": "send", "params": {"text": "echo {{ trigger.text }}"}}},
        },
    )
    say(operator_headers, sandbox_session, "#survey")
    wait_for(
        lambda: _runs(client, operator_headers, workflow="survey", status="waiting"),
        what="a waiting survey",
    )
    say(operator_headers, sandbox_session, "4")
    wait_for(
        lambda: _runs(client, operator_headers, workflow="survey", status="completed"),
        what="the survey to finish",
    )
    say(operator_headers, sandbox_session, "after")
    wait_for(
        lambda: any(t == "echo after" for t in received(sandbox_session)),
        what="the echo of a message nobody waited for",
    )
    # "#survey" started the survey and, as a message like any other, the echo too.
    wait_for(lambda: "echo #survey" in received(sandbox_session), what="the first echo")
    assert "echo 4" not in received(sandbox_session)  # the answer was the survey's alone
    assert [run["workflow"] for run in _runs(client, operator_headers)] == [
        "survey",
        "echo",
        "echo",
    ]


def test_fallback_fires_only_when_nothing_else_took_the_message(
    client, operator_headers, sandbox_session, upload, say
):
    upload(
        operator_headers,
        {
            "name": "ping",
            "trigger": {"type": "message", "command": ["#ping"]},
            "start": "pong",
            "nodes": {"pong": {"type": "send", "params": {"text": "pong"}}},
        },
    )
    upload(
        operator_headers,
        {
            "name": "help",
            "trigger": {"type": "message", "any": True, "fallback": True},
            "start": "help",
            "nodes": {"help": {"type": "send", "params": {"text": "Perintah: #ping"}}},
        },
    )
    say(operator_headers, sandbox_session, "#ping")
    say(operator_headers, sandbox_session, "apa ini")
    wait_for(lambda: len(received(sandbox_session)) == 2, what="two answers")
    assert received(sandbox_session) == ["pong", "Perintah: #ping"]


def _restart(app, runtime):
    old = next(t for t in threading.enumerate() if t.name == "test-runtime")
    runtime.request_stop()
    old.join(timeout=30)
    assert not old.is_alive()
    return old


def _start_runtime(app):
    fresh = Runtime(app)
    thread = threading.Thread(target=fresh.run, name="test-runtime-2", daemon=True)
    thread.start()
    wait_for(lambda: heartbeat.state().alive, what="the new runtime's lease")
    return fresh, thread


def _stop(fresh, thread):
    fresh.request_stop()
    thread.join(timeout=30)


def test_a_waiting_run_survives_a_restart_and_resumes_on_a_reply(
    app, client, runtime, operator_headers, sandbox_session, upload, say
):
    upload(operator_headers, _survey())
    say(operator_headers, sandbox_session, "#survey")
    wait_for(lambda: _runs(client, operator_headers, status="waiting"), what="a waiting run")
    _restart(app, runtime)
    fresh, thread = _start_runtime(app)
    try:
        wait_for(
            lambda: (
                client.get(f"/api/v1/sessions/{sandbox_session}", headers=operator_headers).json[
                    "status"
                ]
                == "connected"
            ),
            what="the session back",
        )
        say(operator_headers, sandbox_session, "2")
        wait_for(
            lambda: any("nilai 2" in t for t in received(sandbox_session)),
            timeout=30,
            what="the answer after the restart",
        )
        (run,) = _runs(client, operator_headers, workflow="survey")
        assert run["status"] == "completed"
    finally:
        _stop(fresh, thread)


def test_a_timeout_fires_after_a_restart(
    app, client, runtime, operator_headers, sandbox_session, upload, say
):
    upload(operator_headers, _survey(timeout=1))
    say(operator_headers, sandbox_session, "#survey")
    wait_for(lambda: _runs(client, operator_headers, status="waiting"), what="a waiting run")
    _restart(app, runtime)
    time.sleep(1.2)  # the timeout passes while no runtime runs
    fresh, thread = _start_runtime(app)
    try:
        wait_for(
            lambda: any("tutup" in t for t in received(sandbox_session)),
            timeout=30,
            what="the timeout's message",
        )
        (run,) = _runs(client, operator_headers, workflow="survey")
        assert run["status"] == "completed" and run["current"] == "closed"
    finally:
        _stop(fresh, thread)


def test_two_messages_together_resume_the_run_once(
    client, operator_headers, sandbox_session, upload, say
):
    doc = _survey()
    doc["nodes"]["ask"]["params"].pop("pattern")
    upload(operator_headers, doc)
    say(operator_headers, sandbox_session, "#survey")
    wait_for(lambda: _runs(client, operator_headers, status="waiting"), what="a waiting run")
    say(operator_headers, sandbox_session, "3")
    say(operator_headers, sandbox_session, "4")
    wait_for(lambda: _runs(client, operator_headers, status="completed"), what="the end")
    wait_for(lambda: any("nilai" in t for t in received(sandbox_session)), what="thanks")
    time.sleep(0.5)  # give a wrong second resume the chance to show
    (run,) = _runs(client, operator_headers, workflow="survey")
    detail = client.get(f"/api/v1/runs/{run['id']}", headers=operator_headers).json
    replies = [step["event"]["text"] for step in detail["trace"] if step.get("event")]
    assert replies == ["3"]
    assert sum("nilai" in t for t in received(sandbox_session)) == 1


def test_the_auto_reply_example_answers_through_the_sandbox(
    client, operator_headers, sandbox_session, upload, say
):
    upload(operator_headers, shipped("auto-reply"))
    say(operator_headers, sandbox_session, "halo")
    wait_for(lambda: received(sandbox_session), what="the auto-reply")
    (text,) = received(sandbox_session)
    assert text.startswith("Halo!")


def test_a_schedule_fires_in_the_runtime(client, admin_headers, sandbox_session, upload):
    doc = shipped("reminder")
    doc["trigger"] = {"type": "schedule", "interval_seconds": 1}
    doc["nodes"]["remind"]["params"]["session"] = sandbox_session
    upload(admin_headers, doc)
    wait_for(
        lambda: len(received(sandbox_session)) >= 3, timeout=20, what="the scheduled broadcast"
    )
    assert "Selamat pagi, Budi. Hari ini Anda bertugas di Gedung A. Terima kasih!" in received(
        sandbox_session
    )
    jobs = db.session.execute(sa.text("SELECT id FROM apscheduler_jobs")).scalars().all()
    db.session.rollback()
    assert any(job.startswith("workflow:") for job in jobs)
    runs = _runs(client, admin_headers, workflow="reminder")
    assert runs[0]["trigger_type"] == "schedule"


def test_an_event_trigger_starts_a_run(client, operator_headers, sandbox_session, upload):
    upload(
        operator_headers,
        {
            "name": "on-status",
            "trigger": {"type": "event", "types": ["session.status"]},
            "start": "note",
            "nodes": {
                "note": {
                    "type": "set",
                    "params": {"variables": {"status": "{{ trigger.data.status }}"}},
                }
            },
        },
    )
    restarted = client.post(f"/api/v1/sessions/{sandbox_session}/restart", headers=operator_headers)
    assert restarted.status_code in (200, 202), restarted.json
    wait_for(
        lambda: _runs(client, operator_headers, workflow="on-status"),
        what="a run from the session's status event",
    )
    run = _runs(client, operator_headers, workflow="on-status")[0]
    detail = client.get(f"/api/v1/runs/{run['id']}", headers=operator_headers).json
    assert detail["trigger"]["event"] == "session.status"
    assert detail["status"] == "completed" and detail["vars"]["status"]


def test_a_waiting_run_is_found_by_its_session_and_chat(
    app, client, operator_headers, sandbox_session, upload, say
):
    upload(operator_headers, _survey())
    say(operator_headers, sandbox_session, "#survey")
    wait_for(lambda: _runs(client, operator_headers, status="waiting"), what="a waiting run")
    row = db.session.scalar(sa.select(WorkflowRun))
    assert row.wait_chat == f"{CONTACT}@s.whatsapp.net" and row.wait_session_id == sandbox_session
    db.session.rollback()
