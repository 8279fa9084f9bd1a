"""Workflows in a real browser: upload a document with a mistake, see the mistake at its
JSON path, fix it on the page, enable the workflow and see its graph."""

from __future__ import annotations

import json

from playwright.sync_api import expect

DOC = {
    "name": "hello",
    "description": "Answers #hello.",
    "trigger": {"type": "message", "command": ["#hello"]},
    "start": "greet",
    "nodes": {
        "greet": {
            "type": "sned",
            "params": {"to": "{{ trigger.sender }}", "text": "Halo!"},
            "next": {"next": "done"},
        },
        "done": {"type": "end"},
    },
}


def test_upload_a_workflow_fix_its_mistake_enable_it_and_see_its_graph(page, log_in):
    log_in("operator")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Workflows").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Workflows")

    box = page.get_by_label("Or the JSON")
    box.fill(json.dumps(DOC, indent=2))
    page.get_by_role("button", name="Upload", exact=True).click()
    errors = page.locator("#upload-errors")
    expect(errors).to_be_visible()
    expect(errors.locator("dt", has_text="$.nodes.greet.type")).to_have_count(1)
    expect(errors).to_contain_text("unknown node type 'sned'. Did you mean 'send'?")

    # The text is still there: fix it where it is.
    box = page.get_by_label("Or the JSON")
    box.fill(box.input_value().replace('"sned"', '"send"'))
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("status")).to_contain_text("Valid: hello, 2 nodes")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("hello")
    expect(page.locator("[data-state]")).to_have_text("off")

    page.get_by_role("button", name="Enable").click()
    expect(page.locator("[data-state]")).to_have_text("on")
    expect(page.get_by_role("status").first).to_contain_text("hello is enabled")
    graph = page.get_by_role("img", name="The nodes of hello and how they lead to each other")
    expect(graph).to_be_visible()
    expect(graph.locator('[data-node="greet"]')).to_contain_text("send")
    expect(graph.locator('[data-node="done"]')).to_contain_text("end")
    expect(graph.locator('[data-edge-label="greet>done"]')).to_have_text("next")
    page.screenshot(path="/tmp/web2/workflow.png", full_page=True)
