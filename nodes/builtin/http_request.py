"""``http_request``: call an HTTP API and use its answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import marshmallow as ma

from nodes.base import Node, ParamsSchema, Result
from nodes.context import NodeContext
from nodes.errors import NodeError
from nodes.fields import Text

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
MAX_TEXT = 256 * 1024
"""Answers are kept in the run (a database row), so a huge body is cut."""


class HttpRequestParams(ParamsSchema):
    method = ma.fields.String(load_default="GET", validate=ma.validate.OneOf(METHODS))
    url = ma.fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        metadata={
            "description": "An http(s) URL; the gateway refuses "
            "private, loopback and link-local addresses."
        },
    )
    query = ma.fields.Dict(
        keys=ma.fields.String(),
        values=Text(),
        load_default=dict,
        metadata={"description": "Added to the URL's query string, encoded."},
    )
    headers = ma.fields.Dict(keys=ma.fields.String(), values=Text(), load_default=dict)
    json = ma.fields.Raw(
        load_default=None,
        allow_none=True,
        metadata={"description": "A JSON body (sets Content-Type: application/json)."},
    )
    body = Text(load_default=None, metadata={"description": "A text body."})
    timeout = ma.fields.Float(
        load_default=10.0,
        validate=ma.validate.Range(0.1, 120),
        metadata={"description": "Seconds for the whole request."},
    )
    raise_for_status = ma.fields.Boolean(
        load_default=True,
        metadata={
            "description": "An answer of 400 or more goes to the error output (with status "
            "and body in its data); false: to next, like any answer."
        },
    )

    @ma.validates_schema
    def _one_body(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("json") is not None and data.get("body") is not None:
            raise ma.ValidationError({"body": ["Give json or body, not both."]})


class HttpRequest(Node):
    """Call an HTTP API and keep its answer for the next nodes.

    Data: ``status``, ``headers``, ``text`` and ``json`` (when the body is JSON), e.g.
    ``{{ fetch.json.balance }}``.

    The gateway makes the request for the workflow, with its guard against private
    addresses. A network error, a timeout or (by default) an answer of 400 or more goes to
    the ``error`` output when the workflow wires it, after the node's retry policy
    (answers 4xx other than 429 are not retried: they will not get better).
    """

    type = "http_request"
    version = 1
    Params = HttpRequestParams
    outputs = ("next",)

    def run(self, ctx: NodeContext, params: dict[str, Any]) -> Result:
        method, url = params["method"], _with_query(params["url"], params["query"])
        answer = ctx.http(
            method,
            url,
            headers=params["headers"],
            json=params["json"],
            body=params["body"],
            timeout=params["timeout"],
        )
        data = _data(answer.status, dict(answer.headers), answer.text, answer.json)
        if params["raise_for_status"] and answer.status >= 400:
            raise NodeError(
                f"{method} {url} answered {answer.status}",
                data=data,
                retryable=answer.status >= 500 or answer.status == 429,
            )
        return Result("next", data)


def _with_query(url: str, query: dict[str, str]) -> str:
    if not query:
        return url
    parts = urlsplit(url)
    joined = "&".join(q for q in (parts.query, urlencode(query)) if q)
    return urlunsplit(parts._replace(query=joined))


def _data(status: int, headers: dict[str, str], text: str, parse: Any) -> dict[str, Any]:
    truncated = len(text) > MAX_TEXT
    try:
        body = None if truncated else parse()
    except ValueError:
        body = None
    return {
        "status": status,
        "headers": headers,
        "text": text[:MAX_TEXT],
        "json": body,
        "truncated": truncated,
    }
