"""The studio's editor in a real browser: build the survey workflow from an empty canvas,
break a connection and see the problem on its node, and open and re-save every shipped
workflow unchanged.

Screenshots for docs/studio.md: ``KABAR_STUDIO_SCREENSHOTS=docs/img pytest
tests/ui/test_studio_editor.py`` writes them there (else into the test's tmp_path).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from server.models import Workflow, WorkflowVersion, db
from server.workflows import store

WORKFLOWS = Path(__file__).parents[2] / "workflows"
SURVEY = json.loads((WORKFLOWS / "survey.json").read_text(encoding="utf-8"))


@pytest.fixture
def shots(page, tmp_path):
    """shots(page, name): a PNG of the page for the docs (in a wide window)."""
    folder = Path(os.environ.get("KABAR_STUDIO_SCREENSHOTS") or tmp_path)
    page.set_viewport_size({"width": 1600, "height": 960})

    def take(page, name: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"studio-{name}.png"), full_page=False)

    return take


def _stored(name: str, owner_id: int) -> tuple[dict, int]:
    db.session.expire_all()
    row = store.by_name(name, owner_id=owner_id)
    assert row is not None, f"{name} was not saved"
    count = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(WorkflowVersion)
        .where(WorkflowVersion.workflow_id == row.id)
    )
    return store.doc_of(row), count


def _upload(doc: dict, owner_id: int) -> None:
    store.save(doc, owner_id=owner_id, by="test")
    db.session.commit()


def _settled(page) -> None:
    """The editor's last check has answered."""
    expect(page.locator("[data-studio]")).to_have_attribute("data-checking", "false")


def _add(page, node_type: str, node_id: str) -> None:
    """Add a node from the palette (found by searching) and give it its id."""
    page.get_by_label("Search the nodes").fill(node_type.replace("_", " "))
    page.locator(f'.studio-palette-item[data-type="{node_type}"]').click()
    page.get_by_label("Search the nodes").fill("")
    inspector = page.locator("[data-inspector]")
    identity = inspector.get_by_label("Id", exact=True)
    identity.fill(node_id)
    identity.press("Enter")
    expect(page.get_by_role("heading", name=f"Node {node_id}")).to_be_visible()


def _param(page, label: str, value: str) -> None:
    page.locator("[data-inspector]").get_by_label(label, exact=True).fill(value)


def _wire(page, node_id: str, output: str, target: str) -> None:
    _select(page, node_id)
    page.locator("[data-inspector]").get_by_label(f"{output} goes to", exact=True).select_option(
        target
    )


def _select(page, node_id: str) -> None:
    page.locator(f'[data-node="{node_id}"] .studio-node-head').click()
    expect(page.get_by_role("heading", name=f"Node {node_id}")).to_be_visible()


def test_build_the_survey_from_an_empty_canvas_and_save_it(page, log_in, shots):
    user = log_in("operator")
    page.goto("/workflows")
    page.get_by_role("link", name="Build a new one in the studio").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("a new workflow")
    _settled(page)
    expect(page.locator("[data-problem-count]")).not_to_have_text("0")

    # The workflow's settings and its trigger.
    inspector = page.locator("[data-inspector]")
    inspector.get_by_label("Name", exact=True).fill("survey")
    inspector.get_by_label("Description", exact=True).fill(SURVEY["description"])
    inspector.get_by_label("Version", exact=True).fill("1")
    inspector.get_by_role("button", name="Add a trigger").click()
    expect(inspector.get_by_label("Trigger 1 type")).to_have_value("message")
    inspector.get_by_label("command (comma-separated)").fill("#survey, #survei")

    # The catalogue is grouped and searchable, each entry with its text.
    page.get_by_label("Search the nodes").fill("reply")
    expect(page.locator(".studio-palette-item")).to_have_count(1)
    expect(page.locator(".studio-palette-item")).to_contain_text("Wait for the chat's next")
    page.get_by_label("Search the nodes").fill("")
    expect(page.locator(".studio-group h3").first).to_have_text("Messages")

    ask = SURVEY["nodes"]["ask"]["params"]
    _add(page, "wait_for_reply", "ask")
    _param(page, "prompt", ask["prompt"])
    _param(page, "pattern", ask["pattern"])
    _param(page, "reprompt", ask["reprompt"])
    _param(page, "max_attempts", "3")
    timeout = inspector.locator('[data-path="$.nodes.ask.params.timeout"]')
    expect(timeout.locator(".required")).to_be_visible()  # required, and said so
    expect(timeout.locator("[data-field-problem]")).to_contain_text("missing: add 'timeout'")
    _param(page, "timeout", "1")  # a duration: one hour
    inspector.get_by_label("timeout unit").select_option("hours")
    expect(
        inspector.locator('[data-path="$.nodes.ask.params.timeout"] .studio-duration')
    ).to_have_text("= 3600 s (1 h)")

    _add(page, "set", "score")
    _param(page, "variables (JSON)", '{"rating": "{{ ask.text | int }}"}')
    reads = inspector.locator(".studio-reads li")
    expect(
        reads.filter(has_text="ask.text — the output of node ask (wait_for_reply)")
    ).to_be_visible()

    _add(page, "branch", "happy")
    _param(page, "condition", "vars.rating >= 4")
    expect(
        reads.filter(has_text="vars.rating — the variable rating (set by score)")
    ).to_be_visible()

    for node_id in ("thanks", "sorry", "closed", "gave_up"):
        _add(page, "send", node_id)
        kinds = inspector.get_by_label("type", exact=True)  # an enum: its choices
        expect(kinds.locator("option")).to_have_count(11)  # "—" (the default) and 10 kinds
        assert "poll" in kinds.inner_text()
        _param(page, "text", SURVEY["nodes"][node_id]["params"]["text"])

    # Connect the outputs: one by dragging an output onto a node, the rest by their forms.
    page.locator('[data-node="ask"] [data-output="reply"] .studio-port-dot').drag_to(
        page.locator('[data-node="score"] .studio-node-head')
    )
    expect(page.locator('[data-node="ask"] [data-output="reply"]')).to_have_class(
        "studio-port is-wired"
    )
    for source, outputs in (
        ("ask", {"timeout": "closed", "invalid": "gave_up"}),
        ("score", {"next": "happy"}),
        ("happy", {"true": "thanks", "false": "sorry"}),
    ):
        for output, target in outputs.items():
            _wire(page, source, output, target)
    _settled(page)
    expect(page.locator("[data-problem-count]")).to_have_text("0")
    expect(page.locator(".studio-node.has-problem")).to_have_count(0)

    # Arrange lays the graph out as the workflow's page draws it.
    before = page.locator('[data-node="closed"]').bounding_box()
    page.get_by_role("button", name="Arrange").click()
    assert page.locator('[data-node="closed"]').bounding_box() != before
    assert (
        page.locator('[data-node="score"]').bounding_box()["x"]
        > page.locator('[data-node="ask"]').bounding_box()["x"]
    )

    # The JSON panel takes edits too: give the file its $schema there.
    panel = page.get_by_label("The workflow's JSON")
    doc = json.loads(panel.input_value())
    panel.fill(json.dumps({"$schema": SURVEY["$schema"], **doc}, indent=2))
    page.locator('[data-node="ask"] .studio-node-head').click()
    expect(page.locator("[data-studio]")).to_have_attribute("data-dirty", "true")
    shots(page, "editor")

    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="Created survey")).to_be_visible()
    page.wait_for_url("**/workflows/survey/studio")
    stored, versions = _stored("survey", user.id)
    assert versions == 1
    store.check(stored)  # valid, by the same check the API uses
    assert "positions" in stored and set(stored["positions"]) == set(SURVEY["nodes"])
    assert {k: v for k, v in stored.items() if k != "positions"} == SURVEY


def test_a_broken_connection_shows_its_problem_on_its_node_and_undo_mends_it(page, log_in, shots):
    user = log_in("operator")
    _upload(SURVEY, user.id)
    page.goto("/workflows/survey")
    page.get_by_role("link", name="Open in the studio").click()
    _settled(page)
    expect(page.locator("[data-problem-count]")).to_have_text("0")
    expect(page.locator('[data-node="ask"]')).to_have_class("studio-node kind-wait is-start")

    # What the simulator sees and says (its contract with the editor).
    assert page.evaluate("window.kabarStudio.document()") == SURVEY
    assert page.evaluate("window.kabarStudio.workflow") == "survey"
    page.evaluate("""document.dispatchEvent(new CustomEvent("kabar:studio-step", {detail: {
        run: "r1", node: "happy", status: "running",
        steps: [{node: "ask"}, {node: "score"}, {node: "happy"}]}}))""")
    expect(page.locator(".studio-node.is-current")).to_have_attribute("data-node", "happy")
    expect(page.locator(".studio-node.is-done")).to_have_count(2)
    page.evaluate("""document.dispatchEvent(new CustomEvent("kabar:studio-step", {detail: {
        run: "r1", node: null, status: "done", steps: []}}))""")
    expect(page.locator(".studio-node.is-current, .studio-node.is-done")).to_have_count(0)

    _wire(page, "ask", "timeout", "")  # nowhere: a wait must say what a timeout does
    ask = page.locator('[data-node="ask"]')
    expect(ask).to_have_class("studio-node kind-wait is-start is-selected has-problem")
    expect(ask.locator(".studio-node-problem")).to_have_text(
        'wait_for_reply needs a timeout path: add "timeout": "<node id>" to next, to say what '
        "happens when nobody answers in time"
    )
    field = page.locator('[data-inspector] [data-path="$.nodes.ask.next.timeout"]')
    expect(field.locator("[data-field-problem]")).to_contain_text("needs a timeout path")
    expect(page.locator(".studio-node.has-problem")).to_have_count(2)  # closed: unreached
    expect(page.locator('[data-node="closed"] .studio-node-problem')).to_contain_text(
        "never reached from start 'ask'"
    )
    field.scroll_into_view_if_needed()
    shots(page, "problem")

    # Undo by the keyboard, from the graph: the connection is back, the problems gone.
    ask.focus()
    page.keyboard.press("Control+z")
    _settled(page)
    expect(page.locator(".studio-node.has-problem")).to_have_count(0)
    expect(page.locator("[data-problem-count]")).to_have_text("0")
    page.keyboard.press("Control+y")
    expect(page.locator(".studio-node.has-problem")).to_have_count(2)
    page.get_by_role("button", name="Undo").click()
    _settled(page)
    expect(page.locator(".studio-node.has-problem")).to_have_count(0)

    # The JSON panel drives the graph: a node removed there leaves the canvas.
    panel = page.get_by_label("The workflow's JSON")
    edited = json.loads(panel.input_value())
    del edited["nodes"]["sorry"], edited["nodes"]["happy"]["next"]["false"]
    panel.fill(json.dumps(edited, indent=2))
    expect(page.locator('[data-node="sorry"]')).to_have_count(0)
    page.get_by_role("button", name="Undo").click()
    expect(page.locator('[data-node="sorry"]')).to_have_count(1)
    assert json.loads(panel.input_value()) == SURVEY

    # Keyboard: move a node, duplicate it, delete the copy.
    ask.focus()
    before = ask.bounding_box()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Shift+ArrowRight")
    after = page.locator('[data-node="ask"]').bounding_box()
    assert (after["x"] - before["x"], after["y"] - before["y"]) == (50, 10)
    page.keyboard.press("Control+d")
    expect(page.locator('[data-node="ask_copy"]')).to_be_visible()
    page.locator('[data-node="ask_copy"]').focus()
    page.keyboard.press("Delete")
    expect(page.locator('[data-node="ask_copy"]')).to_have_count(0)
    _settled(page)

    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="as version 2")).to_be_visible()
    stored, versions = _stored("survey", user.id)
    assert (
        versions == 2
        and stored["positions"]["ask"]["y"]
        == json.loads(page.get_by_label("The workflow's JSON").input_value())["positions"]["ask"][
            "y"
        ]
    )
    assert {k: v for k, v in stored.items() if k != "positions"} == SURVEY


def test_every_shipped_workflow_opens_and_saves_back_unchanged(page, log_in, shots):
    user = log_in("operator")
    names = []
    for path in sorted(WORKFLOWS.rglob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        _upload(doc, user.id)
        names.append(doc["name"])
    for name in names:
        page.goto(f"/workflows/{name}/studio")
        _settled(page)
        expect(page.locator("[data-studio]")).to_have_attribute("data-valid", "true")
        page.get_by_role("button", name="Save").click()
        expect(
            page.get_by_role("status").filter(has_text=f"No changes: {name} stays at version 1")
        ).to_be_visible()
        if name == "helpdesk-request":
            shots(page, "helpdesk")
        _doc, versions = _stored(name, user.id)
        assert versions == 1, name
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Workflow)) == len(names)
