"""The studio's simulator and versions in a real browser: chat with the survey to both
endings (an answer, and a skipped wait) watching the run on the graph, reset, test a hook
workflow with a request body, and list, compare and restore versions."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

from playwright.sync_api import expect

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
# Set KABAR_STUDIO_SCREENSHOTS=docs/img to refresh the pictures in docs/studio.md.
SHOTS = os.environ.get("KABAR_STUDIO_SCREENSHOTS")


def _shipped(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text())


def _upload(client, headers, doc):
    response = client.post("/api/v1/workflows", headers=headers, json=doc)
    assert response.status_code in (200, 201), response.json


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


def _record_steps(page) -> None:
    """Keep every kabar:studio-step the pane dispatches, as the editor would get them."""
    page.add_init_script("""
        window.__steps = [];
        document.addEventListener("kabar:studio-step", function (event) {
            window.__steps.push(event.detail);
        });""")


def test_chat_with_the_survey_to_both_endings_and_reset(page, log_in, client, login):
    user = log_in("operator")
    _upload(client, login(user), _shipped("survey"))  # disabled: the simulator runs it
    _record_steps(page)
    page.goto("/workflows/survey/simulator")
    pane = page.locator("#simulator")
    expect(pane.get_by_role("heading", name="Simulator")).to_contain_text("sandbox")
    phone = pane.get_by_role("group", name="Simulated phone")
    graph = page.get_by_role("img", name="The nodes of survey and how they lead to each other")

    # An answer: the question, a rating, the thanks.
    phone.get_by_label("Message as the contact").fill("#survey")
    phone.get_by_role("button", name="Send").click()
    expect(phone).to_contain_text("Seberapa puas Anda dengan layanan kami?")
    expect(pane.locator("[data-sim-node]")).to_have_text("ask")
    expect(graph.locator('[data-node="ask"]')).to_have_class(
        "node kind-wait start visited at-waiting"
    )
    expect(pane.get_by_role("button", name="Skip the wait")).to_be_visible()
    waiting = page.evaluate("window.__steps[window.__steps.length - 1]")
    assert (waiting["node"], waiting["status"]) == ("ask", "waiting")

    phone.get_by_label("Message as the contact").fill("5")
    phone.get_by_role("button", name="Send").click()
    expect(phone).to_contain_text("Terima kasih atas nilai 5! Senang bisa membantu Anda.")
    expect(pane.locator("[data-run-status]")).to_have_attribute("data-run-status", "done")
    expect(graph.locator('[data-node="thanks"]')).to_have_class("node kind-message visited")
    done = page.evaluate("window.__steps[window.__steps.length - 1]")
    assert done["status"] == "done"
    assert [step["node"] for step in done["steps"]] == ["ask", "ask", "score", "happy", "thanks"]
    # Each step opens to what went in and came out.
    step = pane.locator('.sim-steps li[data-node="score"]')
    step.locator("summary").click()
    expect(step).to_contain_text('"rating": 5')
    # Receipts refresh the pane; the step stays open.
    expect(phone.locator(".bubble.out .msg-status").last).to_have_text("read")
    expect(step.locator("details")).to_have_attribute("open", "")
    expect(pane.get_by_text("Test the HTTP hook")).to_have_count(0)  # the survey has none
    _shot(page, "studio-simulator.png")

    # Reset: an empty conversation and no run.
    pane.get_by_role("button", name="Reset the conversation").click()
    expect(phone).not_to_contain_text("Seberapa puas")
    expect(pane.locator("[data-sim-run]")).to_contain_text("No run yet in this conversation.")

    # A skipped wait: the run takes its timeout branch now.
    phone.get_by_label("Message as the contact").fill("#survey")
    phone.get_by_role("button", name="Send").click()
    expect(phone).to_contain_text("Seberapa puas")
    expect(pane.locator("[data-sim-wait]")).to_contain_text("Waits for a reply until")
    pane.get_by_role("button", name="Skip the wait").click()
    expect(phone).to_contain_text("Survei kami tutup karena belum ada jawaban.")
    expect(pane.locator('.sim-steps li[data-node="closed"]')).to_have_count(1)
    expect(graph.locator('[data-node="closed"]')).to_have_class("node kind-message visited")
    expect(pane.get_by_role("button", name="Skip the wait")).to_have_count(0)


def test_a_hook_workflow_tested_from_the_studio(page, log_in, client, login):
    user = log_in("operator")
    _upload(client, login(user), _shipped("otp"))
    # As in the studio: the editor holds a draft that differs from the saved document.
    page.add_init_script("""window.kabarStudio = {workflow: "otp", document: function () {
        return {name: "otp", nodes: {}}; }};""")
    page.goto("/workflows/otp/simulator")
    pane = page.locator("#simulator")
    expect(pane.locator("[data-sim-unsaved]")).to_contain_text(
        "The editor has unsaved changes: the simulator runs the saved version."
    )
    pane.get_by_text("Test the HTTP hook").click()
    pane.get_by_label("Request body (JSON or text)").fill(
        '{"phone": "0812-5555-0000", "code": "424242"}'
    )
    pane.get_by_role("button", name="Send to the hook").click()
    answer = pane.locator("[data-sim-hook-answer]")
    expect(answer.locator("[data-hook-status]")).to_have_text("HTTP 202 · application/json")
    expect(answer).to_contain_text('"status": "queued"')
    phone = pane.get_by_role("group", name="Simulated phone")
    expect(phone).to_contain_text("Kode verifikasi Anda: 424242.")
    expect(phone).to_contain_text("→ 6281255550000")

    pane.get_by_label("Request body (JSON or text)").fill('{"phone": ""}')
    pane.get_by_role("button", name="Send to the hook").click()
    expect(answer.locator("[data-hook-status]")).to_have_text("HTTP 422 · application/json")
    expect(answer).to_contain_text("Give phone and code in the JSON body.")


def test_versions_listed_compared_and_restored(page, log_in, client, login):
    user = log_in("operator")
    headers = login(user)
    first = _shipped("survey")
    _upload(client, headers, first)
    second = copy.deepcopy(first)
    del second["nodes"]["sorry"]
    second["nodes"]["happy"]["next"]["false"] = "thanks"
    _upload(client, headers, second)

    page.goto("/workflows/survey")
    page.get_by_role("link", name="All versions: compare, restore").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Versions of survey")
    expect(page.locator("tr[data-version]")).to_have_count(2)
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("From version 1 to 2")
    expect(page.locator('[data-diff="nodes-removed"]')).to_have_text("sorry")
    expect(page.locator('[data-diff="edges-added"]')).to_have_text("happy —false→ thanks")
    expect(page.locator('[data-diff="edges-removed"]')).to_have_text("happy —false→ sorry")
    expect(page.locator('[data-diff="json"] .del').first).to_be_visible()
    _shot(page, "studio-versions.png")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Restore version 1").click()
    expect(page.get_by_role("status").first).to_contain_text("Version 1 restored as version 3.")
    row = page.locator('tr[data-version="3"]')
    expect(row).to_contain_text("restored from version 1")
    expect(row).to_contain_text(user.username)
    expect(row).to_contain_text("current")


def test_the_pane_beside_the_editor_marks_the_node_the_run_is_at(page, log_in, client, login):
    user = log_in("operator")
    _upload(client, login(user), _shipped("survey"))
    page.set_viewport_size({"width": 1700, "height": 1000})
    page.goto("/workflows/survey/studio")
    pane = page.locator("#simulator")
    phone = pane.get_by_role("group", name="Simulated phone")
    phone.get_by_label("Message as the contact").fill("#survey")
    phone.get_by_role("button", name="Send").click()
    expect(phone).to_contain_text("Seberapa puas")
    ask = page.locator('.studio-nodes [data-node="ask"]')
    expect(ask).to_have_attribute("data-run-status", "waiting")
    expect(ask).to_have_class(re.compile(r"\bis-current\b"))
    expect(pane.locator("[data-sim-unsaved]")).to_be_hidden()  # the draft is the saved one
    _shot(page, "studio-simulator-in-editor.png")

    phone.get_by_label("Message as the contact").fill("2")
    phone.get_by_role("button", name="Send").click()
    expect(phone).to_contain_text("Kami akan berusaha menjadi lebih baik.")
    expect(page.locator('.studio-nodes [data-node="sorry"]')).to_have_class(
        re.compile(r"\bis-done\b")
    )
