"""Workflows pages: upload and check (errors at their JSON path, the text kept), enable and
disable, the graph, the hook token shown once, runs by hand, the folder, delete."""

from __future__ import annotations

import html
import io
import json
import re
import shutil
from pathlib import Path

import sqlalchemy as sa

from server.models import Workflow, WorkflowRun, db
from server.workflows import store
from tests.server.ui.conftest import flashes

HELLO = {
    "name": "hello",
    "trigger": {"type": "message", "command": ["#hello"]},
    "start": "greet",
    "nodes": {
        "greet": {
            "type": "send",
            "params": {"to": "{{ trigger.sender }}", "text": "Halo!"},
            "next": {"next": "done"},
        },
        "done": {"type": "end"},
    },
}
WORKFLOWS = Path(__file__).parents[4] / "workflows"


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _workflow(name: str = "hello") -> Workflow | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(Workflow).where(Workflow.name == name))


def test_an_invalid_upload_lists_each_error_at_its_json_path_and_keeps_the_text(operator_browser):
    broken = json.loads(json.dumps(HELLO))
    broken["nodes"]["greet"]["type"] = "sned"
    broken["nodes"]["done"]["next"] = {"next": "nowhere"}
    text = json.dumps(broken, indent=2)
    answer = operator_browser.submit("/workflows", {"doc": text})
    assert answer.status_code == 422
    page = _text(answer)
    assert "2 problems" in page or "problems" in page
    errors = dict(re.findall(r"<dt><code>([^<]+)</code></dt>\s*<dd>([^<]+)</dd>", page))
    assert "unknown node type 'sned'" in errors["$.nodes.greet.type"]
    assert any(path.startswith("$.nodes.done") for path in errors)
    assert text in page  # the text stays in the box, to be fixed
    assert _workflow() is None

    not_json = operator_browser.submit("/workflows", {"doc": '{"name": '})
    assert not_json.status_code == 422 and "not valid JSON at line 1" in _text(not_json)
    empty = operator_browser.submit("/workflows", {"doc": "  "})
    assert "Paste the workflow" in _text(empty)


def test_check_upload_enable_disable_and_see_the_graph(operator_browser):
    checked = operator_browser.submit("/workflows/validate", {"doc": json.dumps(HELLO)})
    assert checked.status_code == 200 and "Valid: hello, 2 nodes" in _text(checked)
    assert _workflow() is None  # checking stores nothing

    answer = operator_browser.submit("/workflows", {"doc": json.dumps(HELLO)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/workflows/hello"
    page = operator_browser.get("/workflows/hello")
    shown = _text(page)
    assert "Workflow hello created." in flashes(page) and "It is disabled" in flashes(page)
    assert 'data-node="greet"' in shown and 'data-node="done"' in shown
    assert 'data-edge="greet>done"' in shown and "kind-message" in shown
    assert "message: #hello" in shown
    assert not _workflow().enabled

    operator_browser.submit("/workflows/hello/enable", {"next": "/workflows/hello"})
    assert _workflow().enabled
    assert "hello" in _text(operator_browser.get("/workflows"))
    operator_browser.submit("/workflows/hello/disable", {"next": "/workflows/hello"})
    assert not _workflow().enabled

    changed = json.loads(json.dumps(HELLO))
    changed["nodes"]["greet"]["params"]["text"] = "Halo lagi!"
    again = operator_browser.submit("/workflows", {"doc": json.dumps(changed), "enable": "on"})
    assert "saved (version 2)" in flashes(operator_browser.get(again.headers["Location"]))
    assert (_workflow().version, _workflow().enabled) == (2, True)
    first = _text(operator_browser.get("/workflows/hello?version=1"))
    assert "Halo!" in first and "Halo lagi!" not in first


def test_a_file_upload_and_a_name_someone_else_holds(operator_browser, make_user, browser_for):
    answer = operator_browser.submit(
        "/workflows",
        {"file": (io.BytesIO(json.dumps(HELLO).encode()), "hello.json")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 303
    other = browser_for(make_user("operator"))
    # Names are per owner: the other user gets a "hello" of their own, and learns nothing.
    own = other.submit("/workflows", {"doc": json.dumps(HELLO)})
    assert own.status_code == 303
    bad_file = other.submit(
        "/workflows", {"file": (io.BytesIO(b"\xff{"), "x.json")}, content_type="multipart/form-data"
    )
    assert bad_file.status_code == 422 and "The uploaded file is not valid JSON" in _text(bad_file)
    cut = other.submit(
        "/workflows/validate",
        {"file": (io.BytesIO(b'{"name": "cut",'), "cut.json")},
        content_type="multipart/form-data",
    )
    assert cut.status_code == 422 and "at line 1" in _text(cut)
    assert '>{"name": "cut",</textarea>' in _text(cut)  # the file's text, to fix here


def test_a_hook_token_is_shown_once_and_can_be_replaced(operator_browser):
    doc = {**HELLO, "name": "hooked", "trigger": {"type": "hook"}}
    answer = operator_browser.submit("/workflows", {"doc": json.dumps(doc)})
    assert answer.status_code == 201 and answer.headers["Cache-Control"] == "no-store"
    token = re.search(r'value="(kwh_[^"]+)"', answer.get_data(as_text=True)).group(1)
    row = _workflow("hooked")
    assert store.token_matches(row, token)
    assert token not in _text(operator_browser.get("/workflows/hooked"))
    rotated = operator_browser.submit("/workflows/hooked/hook-token")
    new = re.search(r'value="(kwh_[^"]+)"', rotated.get_data(as_text=True)).group(1)
    assert new != token and store.token_matches(_workflow("hooked"), new)
    refused = operator_browser.submit("/workflows/hello/hook-token")
    assert refused.status_code == 404


def _upload(browser, doc) -> None:
    assert browser.submit("/workflows", {"doc": json.dumps(doc)}).status_code in (201, 303)


def test_runs_by_hand_their_trace_cancel_and_retry(operator_browser):
    _upload(
        operator_browser,
        {
            "name": "later",
            "start": "wait",
            "nodes": {
                "wait": {"type": "delay", "params": {"seconds": 3600}, "next": {"next": "done"}},
                "done": {"type": "end"},
            },
        },
    )
    started = operator_browser.submit("/workflows/later/run", {"input": '{"who": "Budi"}'})
    assert started.status_code == 303 and started.headers["Location"].startswith("/runs/")
    run_url = started.headers["Location"]
    page = operator_browser.get(run_url)
    shown = _text(page)
    assert "Run started; its status: waiting." in flashes(page)
    assert 'class="node kind-wait start visited at-waiting"' in shown
    assert "data-wait" in shown and "until" in shown and '"who": "Budi"' in shown
    assert 'data-node="wait"' in shown and 'data-step="1"' in shown
    listed = _text(operator_browser.get("/runs?status=waiting&workflow=later"))
    assert run_url in listed
    assert run_url not in _text(operator_browser.get("/runs?status=failed"))
    cancelled = operator_browser.submit(f"{run_url}/cancel", {"next": run_url})
    assert "Run cancelled." in flashes(operator_browser.get(cancelled.headers["Location"]))
    again = operator_browser.submit(f"{run_url}/cancel", {"next": run_url})
    assert "only a waiting run" in flashes(operator_browser.get(again.headers["Location"]))

    _upload(
        operator_browser,
        {
            "name": "broken",
            "start": "stop",
            "nodes": {
                "stop": {"type": "end", "params": {"status": "failed", "reason": "on purpose"}}
            },
        },
    )
    failed = operator_browser.submit("/workflows/broken/run", {}).headers["Location"]
    shown = _text(operator_browser.get(failed))
    assert "on purpose" in shown and "at-failed" in shown
    retried = operator_browser.submit(f"{failed}/retry", {"next": failed})
    assert "retried" in flashes(operator_browser.get(retried.headers["Location"]))
    bad = operator_browser.submit(
        "/workflows/broken/run", {"input": "{nope", "next": "/workflows/broken"}
    )
    assert "Not valid JSON" in flashes(operator_browser.get(bad.headers["Location"]))
    assert operator_browser.get("/runs?status=nope").status_code == 422


def test_read_the_folder_and_delete(app, admin_browser, tmp_path, monkeypatch):
    folder = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS / "helpdesk", folder / "helpdesk")
    (folder / "bad.json").write_text('{"name": "bad"}')
    monkeypatch.setitem(app.config["KABAR"], "WORKFLOWS_DIR", str(folder))
    answer = admin_browser.submit("/workflows/reload", {"next": "/workflows"})
    shown = flashes(admin_browser.get(answer.headers["Location"]))
    assert "6 added (disabled)" in shown and "bad.json: The workflow is not valid" in shown
    listing = _text(admin_browser.get("/workflows"))
    assert "helpdesk-request" in listing and "message: #request" in listing
    officer = _text(admin_browser.get("/workflows/helpdesk-officer"))
    assert officer.count('class="node ') == 17

    deleted = admin_browser.submit("/workflows/helpdesk-help/delete")
    assert deleted.headers["Location"] == "/workflows"
    assert _workflow("helpdesk-help") is None


def test_the_overview_counts_waiting_and_failed_runs(operator_browser):
    _upload(
        operator_browser,
        {
            "name": "later",
            "start": "wait",
            "nodes": {"wait": {"type": "delay", "params": {"seconds": 3600}}},
        },
    )
    operator_browser.submit("/workflows/later/run", {})
    page = operator_browser.get("/").get_data(as_text=True)
    assert 'data-stat="runs-waiting"><a href="/runs?status=waiting">1<' in page
    assert "later" in page and "<code>wait</code>" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WorkflowRun)) == 1
