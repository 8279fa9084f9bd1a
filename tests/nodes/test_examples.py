"""The shipped workflows validate (they run in fixtures/examples/)."""

from __future__ import annotations

import pytest

from nodes import Workflow
from nodes.__main__ import main
from tests.nodes.harness import EXAMPLES

NAMES = ["auto-reply.json", "otp.json", "reminder.json", "survey.json"]


def test_the_examples_are_shipped():
    assert sorted(p.name for p in EXAMPLES.glob("*.json")) >= NAMES


@pytest.mark.parametrize("name", NAMES)
def test_example_validates(name):
    workflow = Workflow.load(EXAMPLES / name)
    assert workflow.name == name.removesuffix(".json")


def test_python_m_nodes_validate(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "bad", "start": "a", "nodes": {"a": {"type": "sendd"}}}')
    assert main(["validate", str(EXAMPLES / "otp.json"), str(bad)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("otp.json: ok")
    assert out[1].startswith(
        f"{bad}: $.nodes.a.type: unknown node type 'sendd'. Did you mean 'send'?"
    )


def test_python_m_nodes_list_and_show(capsys):
    assert main(["list"]) == 0
    assert "wait_for_reply   v1  Wait for the chat's next message" in capsys.readouterr().out
    assert main(["show", "branch"]) == 0
    assert '"outputs": [\n    "true",\n    "false",\n    "error"\n  ]' in capsys.readouterr().out
    assert main(["show", "nope"]) == 1
