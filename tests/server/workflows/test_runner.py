"""The runner's promises, checked directly: a waiting run is taken once however many
handlers race for it, and what a step queued is stored with the run or not at all."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from server import sessions
from server.auth import Principal
from server.models import OutboxMessage, WorkflowRun, db, utcnow
from server.workflows import runner, store

CHAT = "6281234567890@s.whatsapp.net"


def _waiting_run(operator):
    session = sessions.create(
        Principal.for_user(operator), label="desk", transport="sandbox", auto_start=False
    )
    doc = {
        "name": "ask",
        "start": "ask",
        "nodes": {
            "ask": {
                "type": "wait_for_reply",
                "params": {"prompt": "Nama?", "timeout": 600},
                "next": {"reply": "thanks", "timeout": "bye"},
            },
            "thanks": {"type": "send", "params": {"text": "Terima kasih, {{ ask.text }}"}},
            "bye": {"type": "end"},
        },
    }
    workflow, _changed, _token = store.save(doc, owner_id=operator.id)
    run, _ctx = runner.start(workflow, {"type": "manual", "session": session.id, "chat": CHAT})
    db.session.commit()
    return session, run.id


def test_racing_resumes_take_the_run_once(app, operator):
    session, run_id = _waiting_run(operator)
    winners, barrier = [], threading.Barrier(2)

    def resume(text):
        with app.app_context():
            barrier.wait()
            row = runner.resume_reply(session.id, CHAT, {"text": text})
            time.sleep(0.2)  # hold the claim while the other one tries
            db.session.commit()
            if row is not None:
                winners.append(text)

    threads = [threading.Thread(target=resume, args=(text,)) for text in ("Budi", "Sari")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(winners) == 1
    texts = [
        row.payload["text"]
        for row in db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.seq))
    ]
    assert texts == ["Nama?", f"Terima kasih, {winners[0]}"]
    assert db.session.scalar(sa.select(WorkflowRun.status)) == "completed"


def test_a_failed_transaction_keeps_the_run_waiting_and_sends_nothing(app, operator):
    session, run_id = _waiting_run(operator)
    assert runner.resume_reply(session.id, CHAT, {"text": "Budi"}) is not None
    db.session.rollback()  # e.g. the process died before commit
    row = db.session.scalar(sa.select(WorkflowRun).where(WorkflowRun.id == run_id))
    assert row.status == "waiting" and row.wait_chat == CHAT
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 1
    # The message, handled again, resumes it.
    assert runner.resume_reply(session.id, CHAT, {"text": "Budi"}) is not None
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 2


def test_a_timeout_is_taken_only_when_due(app, operator):
    _session, run_id = _waiting_run(operator)
    assert runner.due(10) == []
    assert runner.resume_due(run_id) is None  # not yet due
    db.session.execute(sa.update(WorkflowRun).values(wait_until=utcnow()))
    db.session.commit()
    assert runner.due(10) == [run_id]
    assert runner.resume_due(run_id) is not None
    db.session.commit()
    row = db.session.scalar(sa.select(WorkflowRun))
    assert row.status == "completed" and row.current == "bye"


def test_http_to_an_allowed_address_and_a_child_workflow(app, operator, monkeypatch):
    import json as jsonlib
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self):
            body = jsonlib.dumps({"stock": 7}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setitem(app.config["KABAR"], "FETCH_ALLOW", ["127.0.0.1"])
    try:
        child = {
            "name": "double",
            "start": "done",
            "nodes": {"done": {"type": "end", "params": {"result": "{{ trigger.input.n * 2 }}"}}},
        }
        store.save(child, owner_id=operator.id)
        parent = {
            "name": "stock",
            "start": "fetch",
            "nodes": {
                "fetch": {
                    "type": "http_request",
                    "params": {"url": f"http://127.0.0.1:{server.server_address[1]}/stock"},
                    "next": {"next": "twice"},
                },
                "twice": {
                    "type": "call_workflow",
                    "params": {"name": "double", "input": {"n": "{{ fetch.json.stock }}"}},
                    "next": {"next": "done"},
                },
                "done": {"type": "end", "params": {"result": "{{ twice.result }}"}},
            },
        }
        workflow, _changed, _token = store.save(parent, owner_id=operator.id)
        run, _ctx = runner.start(workflow, {"type": "manual"})
        db.session.commit()
    finally:
        server.shutdown()
        server.server_close()
    assert run.status == "completed", run.error
    assert run.state["result"] == 14
    child_run = db.session.scalar(sa.select(WorkflowRun).where(WorkflowRun.parent_id == run.id))
    assert child_run.status == "completed"


def test_a_due_run_that_cannot_be_resumed_fails_with_its_reason(app, operator):
    from server.workflows.worker import TimerWorker

    _session, run_id = _waiting_run(operator)
    db.session.execute(sa.update(WorkflowRun).values(wait_until=utcnow(), state={"format": 99}))
    db.session.commit()
    TimerWorker(app).step()
    row = db.session.scalar(sa.select(WorkflowRun).execution_options(populate_existing=True))
    assert row.status == "failed" and "could not be resumed" in row.error
    assert runner.due(10) == []


def test_only_the_first_inbox_worker_polls_and_it_wakes_the_one_whose_shard_has_work(app):
    """An item another process stored without a notify (an event the web recorded) is
    found by the first worker's one-a-second poll, which wakes the worker owning it; the
    others do not poll every second by themselves."""
    from server.models import WorkflowInbox
    from server.workflows.worker import IDLE_SECONDS, TIMER_IDLE_SECONDS, InboxWorker

    workers = [InboxWorker(app, index, 2) for index in range(2)]
    workers[0].siblings = workers[1:]
    assert workers[1].step() == TIMER_IDLE_SECONDS
    assert workers[0].step() == IDLE_SECONDS
    assert not workers[1].wake.is_set()
    db.session.add(
        WorkflowInbox(
            kind="schedule",
            ordering_key="elsewhere",
            shard=workers[1].shards[0],
            payload={"workflow_id": 0, "trigger": 0},
            failed=False,
        )
    )
    db.session.commit()
    assert workers[0].step() == IDLE_SECONDS
    assert workers[1].wake.is_set()
