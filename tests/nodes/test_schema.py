"""``nodes/schema.json`` is generated from the node schemas, and means what it says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from nodes import registry
from nodes.schema import build, standalone_params_schema
from tests.nodes.harness import EXAMPLES

SCHEMA = Path(__file__).resolve().parents[2] / "nodes" / "schema.json"


def committed() -> dict:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))


def test_committed_schema_is_the_generated_one():
    assert committed() == build(registry.builtin()), (
        "nodes/schema.json is stale: run `python -m nodes.schema > nodes/schema.json`"
    )


def test_python_m_nodes_schema_prints_it():
    out = subprocess.run(
        [sys.executable, "-m", "nodes.schema"],
        capture_output=True,
        text=True,
        check=True,
        cwd=SCHEMA.parents[1],
    )
    assert out.stdout == SCHEMA.read_text(encoding="utf-8")
    assert out.stderr == ""


def test_it_is_a_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(committed())


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_examples_pass_the_plain_json_schema(path):
    """Tools other than kabar (editors, CI) can check workflows with the file alone."""
    jsonschema.validate(json.loads(path.read_text(encoding="utf-8")), committed())


def test_params_are_chosen_by_type_and_templates_pass():
    validator = jsonschema.Draft202012Validator(committed())
    doc = {
        "name": "t",
        "start": "a",
        "nodes": {"a": {"type": "delay", "params": {"seconds": "{{ vars.wait }}", "minutes": 3}}},
    }
    errors = [(list(e.absolute_path), e.validator) for e in validator.iter_errors(doc)]
    assert errors == [(["nodes", "a", "params"], "additionalProperties")]


def test_a_pinned_old_version_gets_its_own_params():
    from tests.nodes.test_registry import SendV2

    reg = registry.builtin()
    reg.register(SendV2)
    validator = jsonschema.Draft202012Validator(build(reg))
    old = {"type": "send", "version": 1, "params": {"to": "1", "text": "hi"}}
    new = {"type": "send", "params": {"phone": "1", "message": "hi"}}
    for node, valid in (
        (old, True),
        (new, True),
        ({**old, "version": 2}, False),
        ({"type": "send", "params": old["params"]}, False),
    ):
        doc = {"name": "t", "start": "a", "nodes": {"a": node}}
        assert validator.is_valid(doc) is valid, node


def test_describe_is_a_standalone_schema():
    from nodes.builtin import WaitForReply

    described = WaitForReply.describe()
    assert described["outputs"] == ["reply", "timeout", "invalid", "error"]
    assert described["summary"].startswith("Wait for the chat's next message")
    jsonschema.Draft202012Validator.check_schema(described["params"])
    validator = jsonschema.Draft202012Validator(standalone_params_schema(WaitForReply))
    assert validator.is_valid({"timeout": "{{ vars.t }}"})
    assert not validator.is_valid({"timeout": "soon"})
