"""The studio's simulator, through its dashboard routes with the real runtime: a sandbox
session of the user's own answers with the workflow being edited (enabled or not) and
nothing else; real sessions never answer with it and never lose a message to it; waits
are skipped along the timeout branch; a hook is tested with a request body."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from server.models import (
    Message,
    OutboxMessage,
    Simulator,
    WaSession,
    Workflow,
    WorkflowRun,
    db,
    utcnow,
)
from server.outbox import queue
from tests.server.conftest import wait_for
from tests.server.ui.client import dashboard_client
from tests.server.workflows.conftest import received, shipped

FRAGMENT = {"X-Kabar-Fragment": "1"}


def _post(browser, url, **data):
    response = browser.submit(url, data, headers=FRAGMENT)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def _state(browser, name="survey"):
    response = browser.get(f"/workflows/{name}/simulator/state", headers=FRAGMENT)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def _texts(state) -> str:
    return state["html"]["messages"]


def _simulated(app, operator, upload, operator_headers, doc):
    upload(operator_headers, doc, enable=False)  # the simulator runs it all the same
    return dashboard_client(app, operator)


def test_the_survey_answers_in_the_simulator_and_nowhere_else(
    app, client, operator, operator_headers, sandbox_session, upload, say
):
    upload(
        operator_headers,
        {
            "name": "echo",
            "trigger": {"type": "message", "any": True},
            "start": "echo",
            "nodes": {"echo": {"type": "send", "params": {"text": "echo {{ trigger.text }}"}}},
        },
    )
    browser = _simulated(app, operator, upload, operator_headers, shipped("survey"))
    state = _post(browser, "/workflows/survey/simulator/say", text="#survey")
    assert state["ready"] and "sandbox" in state["session"]["label"]
    wait_for(lambda: "Seberapa puas" in _texts(_state(browser)), what="the question")
    state = _state(browser)
    assert state["run"]["status"] == "waiting" and state["run"]["node"] == "ask"
    assert state["run"]["wait"]["kind"] == "reply" and state["run"]["wait"]["until"]
    _post(browser, "/workflows/survey/simulator/say", text="5")
    wait_for(lambda: "nilai 5" in _texts(_state(browser)), what="the thanks")
    run = _state(browser)["run"]
    assert run["status"] == "done" and run["node"] is None
    assert [step["node"] for step in run["steps"]] == ["ask", "ask", "score", "happy", "thanks"]
    assert run["steps"][-1]["input"]["text"].startswith("Terima kasih atas nilai 5")

    assert "echo" not in _texts(_state(browser))  # enabled, but not the one tested

    # The workflow is still disabled, and the user's real session does not answer it.
    assert db.session.scalar(sa.select(Workflow.enabled).where(Workflow.name == "survey")) is False
    say(operator_headers, sandbox_session, "#survey")
    wait_for(lambda: received(sandbox_session) == ["echo #survey"], what="the echo")
    assert db.session.scalars(
        sa.select(Workflow.name)
        .join(WorkflowRun, WorkflowRun.workflow_id == Workflow.id)
        .where(WorkflowRun.session_id == sandbox_session)
    ).all() == ["echo"]


def test_skip_the_wait_takes_the_timeout_branch_and_reset_starts_over(
    app, operator, operator_headers, runtime, upload
):
    browser = _simulated(app, operator, upload, operator_headers, shipped("survey"))
    _post(browser, "/workflows/survey/simulator/say", text="#survey")
    run = wait_for(
        lambda: (_state(browser)["run"] or {}).get("wait") and _state(browser)["run"],
        what="the wait",
    )
    state = _post(browser, f"/workflows/survey/simulator/runs/{run['id']}/skip-wait")
    assert state["run"]["status"] == "done"
    assert state["run"]["steps"][-2]["event"]["type"] == "timeout"
    assert state["run"]["steps"][-1]["node"] == "closed"
    wait_for(lambda: "Survei kami tutup" in _texts(_state(browser)), what="the closing")

    # Once taken, the wait cannot be skipped again.
    again = browser.submit(
        f"/workflows/survey/simulator/runs/{run['id']}/skip-wait", headers=FRAGMENT
    )
    assert again.status_code == 409 and "not waiting" in again.get_data(as_text=True)

    # Reset: a waiting run is cancelled and the conversation starts empty.
    _post(browser, "/workflows/survey/simulator/say", text="#survey")
    waiting = wait_for(
        lambda: (
            (_state(browser)["run"] or {}).get("status") == "waiting"
            and _state(browser)["run"]["id"]
        ),
        what="a second survey",
    )
    state = _post(browser, "/workflows/survey/simulator/reset")
    assert state["run"] is None and "Seberapa" not in _texts(state)
    assert (
        db.session.scalar(sa.select(WorkflowRun.status).where(WorkflowRun.id == waiting))
        == "cancelled"
    )


def test_a_reply_of_the_conversation_before_a_reset_never_shows_after_it(
    app, operator, operator_headers, runtime, upload
):
    """Replies the old conversation queued (a scheduled one still waiting, one on its
    way when the reset came) do not appear in the new conversation."""
    browser = _simulated(app, operator, upload, operator_headers, shipped("survey"))
    _post(browser, "/workflows/survey/simulator/say", text="#survey")
    wait_for(lambda: "Seberapa puas" in _texts(_state(browser)), what="the question")
    row = db.session.scalar(sa.select(Simulator))
    session = db.session.get(WaSession, row.session_id)
    later = utcnow() + timedelta(hours=1)
    scheduled, _ = queue.send(
        session, {"to": row.contact, "text": "a reminder of the old survey", "send_at": later}
    )
    on_its_way, _ = queue.send(
        session, {"to": row.contact, "text": "sent as the reset came", "send_at": later}
    )

    state = _post(browser, "/workflows/survey/simulator/reset")
    db.session.expire_all()
    assert db.session.get(OutboxMessage, scheduled.seq).status == "cancelled"
    # The other was already being sent: WhatsApp delivers it after the reset.
    on_its_way = db.session.get(OutboxMessage, on_its_way.seq)
    db.session.add(
        Message(
            id=on_its_way.id,
            session_id=row.session_id,
            wa_id=on_its_way.wa_id,
            direction="out",
            chat_jid=on_its_way.to_jid,
            sender_jid=on_its_way.to_jid,
            from_me=True,
            kind="text",
            text="sent as the reset came",
            status="sent",
            timestamp=utcnow(),
        )
    )
    db.session.commit()
    assert "Seberapa" not in _texts(state)
    _post(browser, "/workflows/survey/simulator/say", text="hello again")
    shown = wait_for(
        lambda: "hello again" in _texts(_state(browser)) and _texts(_state(browser)),
        what="the new conversation",
    )
    assert "sent as the reset came" not in shown and "old survey" not in shown


def test_a_simulator_run_sends_through_the_simulator_only(
    app, client, operator, operator_headers, sandbox_session, upload
):
    """A step naming a real session sends through the simulator's; a real run with no
    session of its own still finds the one real session, not the simulator's."""
    doc = {
        "name": "named",
        "trigger": {"type": "message", "command": ["#named"]},
        "start": "tell",
        "nodes": {
            "tell": {
                "type": "send",
                "params": {"session": "Helpdesk", "to": "6281234567890", "text": "from a step"},
            }
        },
    }
    browser = _simulated(app, operator, upload, operator_headers, doc)
    _post(browser, "/workflows/named/simulator/say", text="#named")
    wait_for(lambda: "from a step" in _texts(_state(browser, "named")), what="the send")
    assert received(sandbox_session) == []
    simulator = db.session.scalar(sa.select(Simulator))
    assert simulator.session_id != sandbox_session

    started = client.post(
        "/api/v1/workflows/named/runs", headers=operator_headers, json={"input": {}}
    )
    assert started.status_code == 201, started.json
    assert started.json["status"] == "completed", started.json
    wait_for(lambda: received(sandbox_session) == ["from a step"], what="the real send")


def test_a_hook_workflow_is_tested_with_a_request_body(
    app, operator, operator_headers, runtime, upload
):
    browser = _simulated(app, operator, upload, operator_headers, shipped("otp"))
    state = _post(
        browser,
        "/workflows/otp/simulator/hook",
        body='{"phone": "0812-5555-0000", "code": "424242"}',
    )
    assert state["hook"]["status"] == 202
    assert '"status": "queued"' in state["hook"]["body"]
    assert state["run"]["status"] == "done"
    assert state["run"]["steps"][0]["node"] == "check"
    wait_for(lambda: "424242" in _texts(_state(browser, "otp")), what="the code sent")
    assert "→ 6281255550000" in _texts(_state(browser, "otp"))

    bad = _post(browser, "/workflows/otp/simulator/hook", body="not json")
    assert bad["hook"]["status"] == 422 and "Give phone and code" in bad["hook"]["body"]
    survey = browser.submit("/workflows/otp/simulator/say", {"text": ""}, headers=FRAGMENT)
    assert survey.status_code == 422


def test_no_hook_no_other_tenant_and_the_right_permission(
    app, operator, operator_headers, make_user, login, runtime, upload
):
    browser = _simulated(app, operator, upload, operator_headers, shipped("survey"))
    answer = browser.submit("/workflows/survey/simulator/hook", {"body": "{}"}, headers=FRAGMENT)
    assert answer.status_code == 409 and "no hook trigger" in answer.get_data(as_text=True)
    _post(browser, "/workflows/survey/simulator/say", text="#survey")
    run = wait_for(
        lambda: (_state(browser)["run"] or {}).get("wait") and _state(browser)["run"],
        what="the wait",
    )

    other = make_user("operator")
    upload(login(other), shipped("survey"), enable=False)
    stranger = dashboard_client(app, other)
    # Their own survey, their own simulator: my run is not theirs to skip.
    skipped = stranger.submit(
        f"/workflows/survey/simulator/runs/{run['id']}/skip-wait", headers=FRAGMENT
    )
    assert skipped.status_code == 404
    admin = dashboard_client(app, make_user("admin"))  # sees the run, has no simulator
    workflow_id = db.session.scalar(sa.select(Workflow.id).where(Workflow.owner_id == operator.id))
    refused = admin.submit(
        f"/workflows/{workflow_id}/simulator/runs/{run['id']}/skip-wait", headers=FRAGMENT
    )
    assert refused.status_code == 409
    assert "not a run of your simulator" in refused.get_data(as_text=True)
    assert _state(stranger)["run"] is None
    mine = db.session.scalars(sa.select(Simulator).order_by(Simulator.id)).all()
    assert len(mine) == 1  # looking does not make a simulator; only acting does
    assert (
        db.session.scalar(sa.select(WorkflowRun.status).where(WorkflowRun.id == run["id"]))
        == "waiting"
    )

    field = dashboard_client(app, make_user("field"))
    assert field.get("/workflows/survey/simulator/state").status_code == 403


def test_the_simulator_session_is_made_again_when_deleted(
    app, operator, operator_headers, runtime, upload
):
    browser = _simulated(app, operator, upload, operator_headers, shipped("survey"))
    first = _post(browser, "/workflows/survey/simulator/start")["session"]["id"]
    db.session.get(WaSession, first).deleted_at = db.func.now()
    db.session.commit()
    second = _post(browser, "/workflows/survey/simulator/start")["session"]["id"]
    assert second != first
    assert db.session.scalar(sa.select(Simulator.session_id)) == second


def test_a_poll_shows_its_options_and_the_contact_votes(
    app, operator, operator_headers, runtime, upload
):
    doc = {
        "name": "pick",
        "trigger": {"type": "message", "command": ["#pick"]},
        "start": "ask",
        "nodes": {
            "ask": {
                "type": "send",
                "params": {
                    "type": "poll",
                    "poll": {"question": "Kopi atau *teh*?", "options": ["Kopi", "Teh"]},
                },
            }
        },
    }
    browser = _simulated(app, operator, upload, operator_headers, doc)
    _post(browser, "/workflows/pick/simulator/say", text="#pick")
    html = wait_for(
        lambda: (
            'name="option" value="Teh"' in _texts(_state(browser, "pick"))
            and _texts(_state(browser, "pick"))
        ),
        what="the poll",
    )
    assert "Kopi atau <strong>teh</strong>?" in html  # WhatsApp's formatting
    poll = html.split('name="poll" value="')[1].split('"')[0]
    _post(browser, "/workflows/pick/simulator/vote", poll=poll, option="Teh")
    wrong = browser.submit(
        "/workflows/pick/simulator/vote", {"poll": poll, "option": "Susu"}, headers=FRAGMENT
    )
    assert (
        wrong.status_code == 422
        and "not options of this poll" in wrong.get_data(as_text=True).lower()
    )
