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

Templates come from whoever writes workflows, so one render is bounded (``LIMITS``, set by
the gateway from its ``KABAR_TEMPLATE_*`` settings with ``set_limits``): its time, the size
of its output and of any value it makes (``'x' * 10**8`` is refused before it is built),
and how many loop iterations it runs, ``range`` included, nested loops counted together.
Going past a limit is a ``TemplateError`` like any other failed template.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import math
import re
import time as clock
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2 import nodes as jinja_nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from nodes.errors import TemplateError


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one render may cost: a template, a whole parameter or a condition."""

    seconds: float = 2.0  # wall-clock time
    output: int = 100_000  # characters of output, and items or characters of any value
    loop: int = 10_000  # loop iterations in all (nested loops multiply), range() included
    power_bits: int = 4096  # the size of an integer a ** may make


LIMITS = Limits()


def set_limits(**changes: Any) -> Limits:
    """Change the limits for every render in this process; returns the new ones."""
    global LIMITS
    LIMITS = dataclasses.replace(LIMITS, **changes)
    return LIMITS


class _Budget:
    """What is left of one render's limits (one per render, in a context variable)."""

    __slots__ = ("deadline", "loops", "limits")

    def __init__(self, limits: Limits):
        self.limits = limits
        self.deadline = clock.monotonic() + limits.seconds
        self.loops = limits.loop

    def tick(self, iterations: int = 0) -> None:
        self.loops -= iterations
        if self.loops < 0:
            raise TemplateError(
                f"the template loops more than {self.limits.loop} times in all; loop over less data"
            )
        if clock.monotonic() > self.deadline:
            raise TemplateError(
                f"the template took longer than {self.limits.seconds:g} s "
                "to render; make it simpler"
            )


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "template_budget", default=None
)


@contextlib.contextmanager
def _budgeted() -> Iterator[_Budget]:
    """The current render's budget; a new one when no render is under way."""
    current = _budget.get()
    if current is not None:
        yield current
        return
    budget = _Budget(LIMITS)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def _tick(iterations: int = 0) -> None:
    budget = _budget.get()
    if budget is not None:
        budget.tick(iterations)


def _check_size(value: Any) -> Any:
    if (
        isinstance(value, str | list | tuple | dict | set | frozenset | bytes)
        and len(value) > LIMITS.output
    ):
        raise TemplateError(
            f"the template made a value of {len(value)} items or "
            f"characters; at most {LIMITS.output} are allowed"
        )
    return value


def _guarded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    """What a ``{% for %}`` loops over: each iteration counts against the budget."""
    for item in iterable:
        _tick(1)
        yield item


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > LIMITS.loop:
        raise TemplateError(f"range() of {len(numbers)} numbers; at most {LIMITS.loop}")
    return numbers


# Filters whose numbers say how long the output is: refused before they build it.
_WIDTH_FILTERS = {"center", "indent", "wordwrap", "truncate", "format"}


def _watched(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that counts against the budget and whose result is size-checked."""

    @functools.wraps(function)  # keeps jinja_pass_arg, so Jinja passes what it wants
    def watched(*args: Any, **kwargs: Any) -> Any:
        _tick()
        if name in _WIDTH_FILTERS:
            for number in (*args, *kwargs.values()):
                if (
                    isinstance(number, int)
                    and not isinstance(number, bool)
                    and number > LIMITS.output
                ):
                    raise TemplateError(
                        f"{name}({number}) would make a value longer than "
                        f"{LIMITS.output} characters"
                    )
        return _check_size(function(*args, **kwargs))

    return watched


class _Generator(CodeGenerator):
    """Jinja's code generator, with every ``{% for %}`` looping through ``_guarded_iter``
    (a plain Python loop over a plain list would otherwise run unwatched)."""

    def visit_For(self, node: jinja_nodes.For, frame: Frame) -> None:
        wrapped = node.iter
        if not (
            isinstance(wrapped, jinja_nodes.Call)
            and isinstance(wrapped.node, jinja_nodes.EnvironmentAttribute)
            and wrapped.node.name == "guarded_iter"
        ):
            node.iter = jinja_nodes.Call(
                jinja_nodes.EnvironmentAttribute("guarded_iter", lineno=node.lineno),
                [wrapped],
                [],
                None,
                None,
                lineno=node.lineno,
            )
        super().visit_For(node, frame)


class _Environment(SandboxedEnvironment):
    """The sandbox, with every operation that can grow a value or take time watched."""

    code_generator_class = _Generator
    intercepted_binops = frozenset(["*", "**", "+", "%"])

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.guarded_iter = _guarded_iter
        self.globals["range"] = _range
        self.filters = {name: _watched(name, function) for name, function in self.filters.items()}

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "*":
            for times, other in ((left, right), (right, left)):
                if (
                    isinstance(times, int)
                    and not isinstance(times, bool)
                    and isinstance(other, str | list | tuple)
                    and times * len(other) > LIMITS.output
                ):
                    raise TemplateError(
                        f"the template would make a value of "
                        f"{times * len(other)} items or characters; at "
                        f"most {LIMITS.output} are allowed"
                    )
        if (
            operator == "**"
            and isinstance(left, int)
            and isinstance(right, int)
            and abs(left) > 1
            and right > 0
            and right * math.log2(abs(left)) > LIMITS.power_bits
        ):
            raise TemplateError(f"{left} ** {right} is too large a number")
        return _check_size(super().call_binop(context, operator, left, right))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return _check_size(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return _check_size(super().getitem(obj, argument))

    def call(
        __self,
        __context: Context,
        __obj: Any,
        *args: Any,  # Jinja's signature
        **kwargs: Any,
    ) -> Any:
        _tick()
        return _check_size(SandboxedEnvironment.call(__self, __context, __obj, *args, **kwargs))


_env = _Environment(
    undefined=jinja2.ChainableUndefined, autoescape=False, keep_trailing_newline=True
)
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
    they are); the result is plain JSON. All of ``value`` is one render for the limits."""
    with _budgeted():
        return _render(value, scope)


def _render(value: Any, scope: Mapping[str, Any]) -> Any:
    if isinstance(value, Mapping):
        return {key: _render(item, scope) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_render(item, scope) for item in value]
    if not is_templated(value):
        return value
    whole = _WHOLE.match(value)
    if whole:
        return jsonable(evaluate(whole["expr"], scope))
    with _budgeted() as budget:
        try:
            return _rendered(_template(value), scope, budget)
        except TemplateError:
            raise
        except Exception as exc:  # a template may fail in many ways at render time
            raise TemplateError(f"template {_short(value)!r} failed: {exc}") from exc


def _rendered(template: jinja2.Template, scope: Mapping[str, Any], budget: _Budget) -> str:
    """The output, gathered piece by piece so that its size and time are watched as it
    grows (not after a runaway loop has built all of it)."""
    pieces: list[str] = []
    size = 0
    for piece in template.generate(scope):
        size += len(piece)
        if size > budget.limits.output:
            raise TemplateError(
                f"the template's output is longer than {budget.limits.output} characters"
            )
        budget.tick()
        pieces.append(piece)
    return "".join(pieces)


def evaluate(expression: str, scope: Mapping[str, Any]) -> Any:
    """The value of a bare expression (``None`` when it names something missing)."""
    source = _bare(expression)
    try:
        with _budgeted():
            return _check_size(_expression(source)(**scope))
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
            raise TemplateError(
                f"now({tz!r}): unknown time zone; use a name such as 'Asia/Jakarta' or 'UTC'"
            ) from exc

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
    return text if len(text) <= limit else text[: limit - 1] + "…"


@functools.lru_cache(maxsize=2048)
def _template(source: str) -> jinja2.Template:
    try:
        return _env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template {_short(source)!r} does not parse: {exc.message} "
            f"(line {exc.lineno}). {_HINT}"
        ) from None


@functools.lru_cache(maxsize=2048)
def _expression(source: str) -> Callable[..., Any]:
    if not source.strip():
        raise TemplateError("the expression is empty; write a condition such as vars.count > 3")
    try:
        return _env.compile_expression(source, undefined_to_none=True)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"expression {_short(source)!r} does not parse: {exc.message}. "
            "Write a bare condition such as vars.count > 3 or "
            "trigger.text == 'yes'"
        ) from None
