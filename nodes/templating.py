"""Templates and conditions, in Jinja2's ``SandboxedEnvironment`` (never ``eval``).

Parameters are rendered before they are validated, so ``"timeout": "{{ vars.wait }}"`` is
checked as the number it renders to. Two rules make templates predictable:

- A string that is one ``{{ expression }}`` and nothing else keeps the expression's type: a
  list stays a list, a number a number, a time becomes ISO 8601 text, and a missing value
  becomes ``null`` (so an optional parameter stays unset). Any other string renders to text.
- Missing values are not errors (``{{ trigger.body.note }}`` is empty when there is no
  note), because inbound data is ragged; a template that does not parse is an error, found
  when the workflow is validated.

Conditions (``branch``, ``switch``) are bare expressions such as ``vars.count > 3``; a
``{{ }}`` around them is tolerated.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from nodes.errors import TemplateError

_env = SandboxedEnvironment(undefined=jinja2.ChainableUndefined, autoescape=False,
                            keep_trailing_newline=True)
_WHOLE = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)
_HINT = "Check that every {{ has its }} and every {% if %} its {% endif %}."


def is_templated(value: Any) -> bool:
    """True for a string that holds template syntax (``{{ }}`` or ``{% %}``)."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def check(template: str) -> str | None:
    """Why ``template`` does not parse, or ``None`` when it does."""
    try:
        _template(template)
    except TemplateError as exc:
        return str(exc)
    return None


def check_expression(expression: str) -> str | None:
    """Why a condition does not parse, or ``None`` when it does."""
    try:
        _expression(_bare(expression))
    except TemplateError as exc:
        return str(exc)
    return None


def render(value: Any, scope: Mapping[str, Any]) -> Any:
    """Render every template string inside ``value`` (dicts and lists walked, keys left as
    they are); the result is plain JSON."""
    if isinstance(value, Mapping):
        return {key: render(item, scope) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, scope) for item in value]
    if not is_templated(value):
        return value
    whole = _WHOLE.match(value)
    if whole:
        return jsonable(evaluate(whole["expr"], scope))
    try:
        return _template(value).render(scope)
    except TemplateError:
        raise
    except Exception as exc:  # a template may fail in many ways at render time
        raise TemplateError(f"template {_short(value)!r} failed: {exc}") from exc


def evaluate(expression: str, scope: Mapping[str, Any]) -> Any:
    """The value of a bare expression (``None`` when it names something missing)."""
    source = _bare(expression)
    try:
        return _expression(source)(**scope)
    except TemplateError:
        raise
    except Exception as exc:
        raise TemplateError(f"expression {_short(source)!r} failed: {exc}") from exc


def truthy(expression: str, scope: Mapping[str, Any]) -> bool:
    """A condition's truth, as Jinja2's ``{% if %}`` would see it."""
    return bool(evaluate(expression, scope))


def helpers(clock: Callable[[], datetime]) -> dict[str, Any]:
    """Names every template sees besides the run's data: ``now(tz)`` (the host's clock, so
    tests can fix it) and ``timedelta``."""

    def now(tz: str | None = None) -> datetime:
        moment = clock()
        if tz is None:
            return moment
        try:
            return moment.astimezone(ZoneInfo(tz))
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise TemplateError(f"now({tz!r}): unknown time zone; use a name such as "
                                "'Asia/Jakarta' or 'UTC'") from exc

    return {"now": now, "timedelta": timedelta}


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: times as ISO 8601, durations as seconds, missing as null."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, jinja2.Undefined):
        return None
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return str(value)


def _bare(expression: str) -> str:
    whole = _WHOLE.match(expression)
    return whole["expr"] if whole else expression


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


@functools.lru_cache(maxsize=2048)
def _template(source: str) -> jinja2.Template:
    try:
        return _env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {_short(source)!r} does not parse: {exc.message} "
                            f"(line {exc.lineno}). {_HINT}") from None


@functools.lru_cache(maxsize=2048)
def _expression(source: str) -> Callable[..., Any]:
    if not source.strip():
        raise TemplateError("the expression is empty; write a condition such as "
                            "vars.count > 3")
    try:
        return _env.compile_expression(source, undefined_to_none=True)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"expression {_short(source)!r} does not parse: {exc.message}. "
                            "Write a bare condition such as vars.count > 3 or "
                            "trigger.text == 'yes'") from None
