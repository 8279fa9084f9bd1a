"""Marshmallow fields that node parameter schemas share.

``Text`` is a string that also takes a number, because a whole-value template keeps its
type (``"to": "{{ trigger.body.phone }}"`` may render to ``6281234567``). ``Expression`` is
a condition evaluated by the node itself (``branch``, ``switch``), checked when the workflow
is validated.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from nodes import templating


class Text(ma.fields.String):
    """A string; numbers are taken as their decimal text."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        return super()._deserialize(value, attr, data, **kwargs)


class Expression(ma.fields.String):
    """A Jinja2 expression such as ``vars.count > 3`` (``{{ }}`` around it is allowed)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        error = templating.check_expression(text)
        if error:
            raise ma.ValidationError(error)
        return text
