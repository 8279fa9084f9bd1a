"""Templates and conditions: sandboxed, forgiving about missing data, strict about syntax."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from nodes import TemplateError
from nodes.templating import check, check_expression, evaluate, helpers, render, truthy

NOW = datetime(2025, 1, 6, 2, 0, tzinfo=UTC)
SCOPE = {
    "trigger": {"text": "#cek BRT2409001", "body": {"n": 7, "tags": ["a", "b"]}},
    "vars": {"name": "Sari"},
    "args": ["BRT2409001"],
    "lookup": {"found": True},
    **helpers(lambda: NOW),
}


def test_render_walks_dicts_and_lists_and_leaves_plain_values():
    value = {
        "to": "{{ vars.name }}",
        "n": 3,
        "list": ["x {{ args[0] }}", True, None],
        "{{ keys }}": "stay",
    }
    assert render(value, SCOPE) == {
        "to": "Sari",
        "n": 3,
        "list": ["x BRT2409001", True, None],
        "{{ keys }}": "stay",
    }


def test_a_whole_value_template_keeps_its_type():
    assert render("{{ trigger.body.n }}", SCOPE) == 7
    assert render(" {{ trigger.body.tags }} ", SCOPE) == ["a", "b"]
    assert render("{{ lookup.found }}", SCOPE) is True
    assert render("{{ now() }}", SCOPE) == "2025-01-06T02:00:00+00:00"
    assert render("{{ trigger.missing }}", SCOPE) is None
    assert render("n={{ trigger.body.n }}", SCOPE) == "n=7"
    assert render("{{ a }} and {{ b }}", {"a": 1, "b": 2}) == "1 and 2"


def test_missing_values_are_empty_not_errors():
    assert render("[{{ trigger.body.nothing.deeper }}]", SCOPE) == "[]"
    assert truthy("trigger.body.nothing.deeper", SCOPE) is False


def test_now_takes_a_time_zone():
    assert render("{{ now('Asia/Jakarta').hour }}", SCOPE) == 9
    assert (
        render("{{ (now() + timedelta(minutes=5)).isoformat() }}", SCOPE)
        == "2025-01-06T02:05:00+00:00"
    )
    with pytest.raises(TemplateError, match="unknown time zone"):
        render("{{ now('Mars/Olympus') }}", SCOPE)


def test_conditions_with_or_without_braces():
    assert truthy("vars.name == 'Sari' and args | length == 1", SCOPE) is True
    assert truthy("{{ trigger.body.n > 10 }}", SCOPE) is False
    assert evaluate("trigger.text.split()[1]", SCOPE) == "BRT2409001"


def test_syntax_errors_say_where_and_what_to_do():
    assert check("Halo {{ name }") == (
        "template 'Halo {{ name }' does not parse: unexpected '}' (line 1). Check that every "
        "{{ has its }} and every {% if %} its {% endif %}."
    )
    assert check("{% if x %}yes{% endif %}") is None
    assert "does not parse" in check_expression("a ==")
    assert "the expression is empty" in check_expression("  ")
    with pytest.raises(TemplateError, match="does not parse"):
        render("{{ broken", SCOPE)


def test_the_sandbox_refuses_python_internals():
    assert render("x {{ ''.__class__.__mro__ }}", SCOPE) == "x "  # unsafe: undefined
    assert render("x {{ now.__globals__ }}", SCOPE) == "x "
    with pytest.raises(
        TemplateError, match="access to attribute '__class__' of 'dict' object is unsafe"
    ):
        render("x {{ vars.__class__.__subclasses__() }}", SCOPE)
    with pytest.raises(TemplateError, match="unsafe"):
        evaluate("vars.__class__.__bases__[0].__subclasses__()", SCOPE)


def test_runtime_errors_are_template_errors():
    with pytest.raises(TemplateError, match=r"template '\{\{ 1 / 0 \}\} x' failed"):
        render("{{ 1 / 0 }} x", SCOPE)
