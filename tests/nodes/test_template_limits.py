"""One template render is bounded: time, output, the size of any value, loop iterations.

Each abusive template below held a web thread for tens of seconds or grew a worker by
100 MB before; now each is a TemplateError at once.
"""

from __future__ import annotations

import pytest

from nodes import templating
from nodes.errors import TemplateError


@pytest.fixture(autouse=True)
def default_limits():
    before = templating.LIMITS
    templating.set_limits(seconds=30.0, output=100_000, loop=10_000)
    yield
    templating.LIMITS = before


@pytest.mark.parametrize(
    "source, says",
    [
        ("{{ 'x' * 10**8 }}", "at most 100000"),
        ("a{{ 'x' * 10**8 }}", "at most 100000"),
        ("{{ [0] * 10**8 }}", "at most 100000"),
        ("{{ 10 ** (10 ** 8) }}", "too large a number"),
        ("a{{ 'x'|center(10**8) }}", "longer than 100000"),
        ("a{{ '%*s'|format(10**8, 'x') }}", "longer than 100000"),
        ("a{{ '%*s' % (10**7, 'x') }}", "at most 100000"),
        ("{% for i in range(10**9) %}x{% endfor %}", "range() of"),
        (
            "{% for i in range(9000) %}{% for j in range(9000) %}{% endfor %}{% endfor %}",
            "loops more than 10000 times",
        ),
        (
            "{% set n = range(5000)|list %}"
            "{% for a in n %}{% for b in n %}{% endfor %}{% endfor %}",
            "loops more than 10000 times",
        ),
        (
            "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
            "{% endfor %}{{ ns.s|length }}",
            "at most 100000",
        ),
        ("{% for i in range(99) %}{{ range(5000)|join }}{% endfor %}", "longer than 100000"),
    ],
)
def test_abusive_templates_fail_at_once(source, says):
    with pytest.raises(TemplateError) as caught:
        templating.render(source, {})
    assert says in str(caught.value)


def test_conditions_are_bounded_too():
    with pytest.raises(TemplateError):
        templating.truthy("('x' * 10**8)|length > 3", {})


def test_nested_parameters_share_one_budget():
    templating.set_limits(loop=100)
    params = {
        "a": "{% for i in range(60) %}{% endfor %}",
        "b": ["{% for i in range(60) %}{% endfor %}"],
    }
    assert templating.render({"a": params["a"]}, {}) == {"a": ""}  # 60 alone is fine
    with pytest.raises(TemplateError, match="loops more than 100"):
        templating.render(params, {})


def test_the_time_limit():
    templating.set_limits(seconds=-1.0)  # already past: no wall clock is measured here
    with pytest.raises(TemplateError, match="took longer than"):
        templating.render("{% for i in range(3) %}{{ i }}{% endfor %}", {})


def test_ordinary_templates_still_render():
    scope = {"trigger": {"text": "halo", "numbers": [1, 2, 3]}, "vars": {"n": 2}}
    assert (
        templating.render(
            "{{ trigger.text|upper }} {{ 'ab' * vars.n }} "
            "{% for i in trigger.numbers %}{{ i }}{% endfor %} "
            "{{ range(3)|join(',') }} {{ 2 ** 10 }}",
            scope,
        )
        == "HALO abab 123 0,1,2 1024"
    )
    assert templating.render("{{ trigger.numbers }}", scope) == [1, 2, 3]
    assert templating.truthy("vars.n * 2 == 4", scope)
