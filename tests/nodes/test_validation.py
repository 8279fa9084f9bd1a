"""Invalid workflows get errors that name the JSON path and say what to do."""

from __future__ import annotations

import json

import pytest

from nodes import InvalidWorkflow, Problem, Workflow, validate
from tests.nodes.harness import INVALID, fixture_ids


@pytest.mark.parametrize("name", fixture_ids(INVALID))
def test_invalid_workflow(name):
    case = json.loads((INVALID / name).read_text(encoding="utf-8"))
    problems = {problem.path: problem.message for problem in validate(case["workflow"])}
    assert set(problems) == set(case["problems"]), problems
    for path, wanted in case["problems"].items():
        assert wanted in problems[path], f"{path}: {problems[path]!r}"


def test_templated_values_pass_where_plain_values_are_expected():
    doc = {
        "name": "t",
        "start": "ask",
        "nodes": {
            "ask": {
                "type": "wait_for_reply",
                "params": {"timeout": "{{ vars.seconds }}", "max_attempts": "{{ 2 + 1 }}"},
                "next": {"timeout": "send"},
            },
            "send": {
                "type": "send",
                "params": {
                    "to": "{{ trigger.sender }}",
                    "type": "{{ vars.kind }}",
                    "location": {"latitude": "{{ vars.lat }}", "longitude": 1},
                    "poll": "{{ vars.poll }}",
                    "priority": "{% if vars.vip %}high{% else %}bulk{% endif %}",
                    "send_at": "{{ now() }}",
                    "contacts": ["{{ vars.contact }}"],
                },
            },
        },
    }
    assert validate(doc) == []


def test_not_an_object():
    assert validate([1]) == [Problem("$", "a workflow is a JSON object with name, start and nodes")]


def test_from_dict_raises_with_every_problem():
    with pytest.raises(InvalidWorkflow) as raised:
        Workflow.from_dict({"name": "t", "start": "x", "nodes": {"a": {"type": "end"}}})
    assert [str(p) for p in raised.value.problems] == [
        "$.start: 'x' is not a node of this workflow; start at one of: a"
    ]
    assert "workflow 't' is not valid (1 problem)" in str(raised.value)


def test_load_reports_bad_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "t",\n  "start": }')
    with pytest.raises(InvalidWorkflow) as raised:
        Workflow.load(path)
    assert str(raised.value.problems[0]).startswith("$: not valid JSON: Expecting value at line 2")


def test_positions_are_allowed_and_change_nothing_the_engine_sees():
    plain = {"name": "t", "start": "a", "nodes": {"a": {"type": "end"}}}
    drawn = {**plain, "positions": {"a": {"x": 12, "y": 40.5}}}
    assert validate(drawn) == []
    assert Workflow.from_dict(drawn).nodes == Workflow.from_dict(plain).nodes
