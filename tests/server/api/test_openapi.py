"""The OpenAPI document and the /docs page: complete, and usable without the internet."""

from __future__ import annotations

import re

import pytest

SPEC = "/api/v1/openapi.json"


@pytest.fixture
def spec(client) -> dict:
    response = client.get(SPEC)  # no credentials: the document is public
    assert response.status_code == 200
    return response.json


def test_the_document_is_openapi_3(spec):
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "Kabar"
    for path in (
        "/api/v1/auth/login",
        "/api/v1/auth/me",
        "/api/v1/users",
        "/api/v1/users/{user_id}",
        "/api/v1/groups",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{key_id}",
        "/api/v1/health",
        "/api/v1/ready",
    ):
        assert path in spec["paths"], path


def test_security_is_declared(spec):
    assert spec["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "hookToken": {"type": "apiKey", "in": "header", "name": "X-Kabar-Token"},
    }
    assert spec["paths"]["/api/v1/auth/login"]["post"]["security"] == []
    # A workflow's hook is called with that workflow's own token, not a user's.
    assert spec["paths"]["/api/v1/hooks/{workflow}"]["post"]["security"] == [{"hookToken": []}]
    assert spec["paths"]["/api/v1/health"]["get"]["security"] == []
    users = spec["paths"]["/api/v1/users"]["get"]
    assert users["security"] == [{"bearerAuth": []}, {"apiKey": []}]
    assert users["x-permissions"] == ["users:manage"]
    assert "Requires: users:manage." in users["description"]


def test_errors_are_documented_with_the_error_shape(spec):
    schema = spec["components"]["schemas"]["Error"]
    assert {"code", "message", "status"} <= set(schema["required"])


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def test_every_api_route_is_in_the_document(app, spec):
    missing = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1") or rule.rule == SPEC:
            continue
        documented = spec["paths"].get(_openapi_path(rule.rule), {})
        view = app.view_functions[rule.endpoint]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operation = documented.get(method.lower())
            if operation is None:
                missing.append(f"{method} {rule.rule}")
                continue
            func = getattr(view.view_class, method.lower())
            # What the document says about credentials is what the view does (a public
            # view asks for no user's credentials; a hook, for its workflow's token).
            public = getattr(func, "_kabar_public", False)
            no_user = operation.get("security") in ([], [{"hookToken": []}])
            assert no_user == public, f"{method} {rule.rule}"
    assert not missing, f"not in {SPEC}: {missing}"


def test_the_docs_page(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert '<script src="/docs/init.js"></script>' in html
    assert "/docs/assets/swagger-ui-bundle.js" in html
    init = client.get("/docs/init.js")
    assert init.status_code == 200 and init.mimetype == "text/javascript"
    assert '"/api/v1/openapi.json"' in init.get_data(as_text=True)


def test_swagger_ui_is_served_locally(client):
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.status_code == 200
    assert "javascript" in bundle.mimetype
    assert "SwaggerUIBundle" in bundle.get_data(as_text=True)
    bundle.close()
    css = client.get("/docs/assets/swagger-ui.css")
    assert css.status_code == 200 and css.mimetype == "text/css"
    css.close()
    for escape in (
        "/docs/assets/../../setup.py",
        "/docs/assets/%2e%2e/__init__.py",
        "/docs/assets/nope.js",
    ):
        response = client.get(escape)
        assert response.status_code == 404, escape
        assert response.json["code"] == "not_found"


# --- what the document says a response holds is what responses hold ------------------


def _json_schema(node, components: dict, seen: frozenset = frozenset()):
    """OpenAPI 3.0 schema -> JSON Schema: refs inlined, ``nullable`` as a null type."""
    if isinstance(node, list):
        return [_json_schema(item, components, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return {}
        return _json_schema(components[name], components, seen | {name})
    schema = {
        key: _json_schema(value, components, seen)
        for key, value in node.items()
        if key not in ("nullable", "example", "x-permissions")
    }
    if node.get("nullable"):
        if "type" in schema:
            schema["type"] = [schema["type"], "null"]
        else:
            schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


@pytest.fixture
def lived_in(client, admin_headers, operator, operator_headers, fast, say, make_user):
    """A gateway with one of most things, many of their optional parts still empty."""
    make_user("operator")  # never logged in, no e-mail, not blocked
    idle = client.post(
        "/api/v1/sessions",
        headers=operator_headers,
        json={"label": "idle", "transport": "sandbox", "auto_start": False},
    ).json
    key = client.post("/api/v1/api-keys", headers=operator_headers, json={"name": "script"}).json
    say(operator_headers, fast, "halo", sender="6281211112222")
    sent = client.post(
        f"/api/v1/sessions/{fast}/messages",
        headers=operator_headers,
        json={"to": "0812-1111-2222", "text": "Halo", "send_at": "2099-01-01T00:00:00+00:00"},
    ).json
    hook = client.post(
        "/api/v1/webhooks",
        headers=operator_headers,
        json={
            "url": "http://[64:ff9b::5db8:d822]/hook",
            "events": ["message.received"],
            "session_id": fast,
        },
    )
    assert hook.status_code == 201, hook.json
    flow = {
        "name": "later",
        "start": "pause",
        "nodes": {
            "pause": {"type": "delay", "params": {"seconds": 3600}, "next": {"next": "done"}},
            "done": {"type": "end"},
        },
    }
    assert client.post("/api/v1/workflows", headers=operator_headers, json=flow).status_code in (
        200,
        201,
    )
    run = client.post(
        "/api/v1/workflows/later/runs", headers=operator_headers, json={"input": {}}
    ).json
    broadcast = client.post(
        f"/api/v1/sessions/{fast}/broadcasts",
        headers=operator_headers,
        json={
            "message": {"text": "hai"},
            "recipients": [{"to": "0812-1111-2222"}],
            "send_at": "2099-01-01T00:00:00+00:00",
        },
    )
    return {
        "session_id": [fast, idle["id"]],
        "user_id": [operator.id],
        "key_id": [key["id"]],
        "message_id": [sent["id"]],
        "chat": ["6281211112222"],
        "phone": ["6281211112222"],
        "name": ["operator"],
        "webhook_id": [hook.json["id"]],
        "workflow": ["later"],
        "run_id": [run["id"]],
        "broadcast_id": [broadcast.json["id"]] if broadcast.status_code < 300 else [],
    }


def test_responses_match_the_document_nulls_included(client, admin_headers, lived_in):
    import itertools

    import jsonschema

    spec = client.get(SPEC).json
    components = spec["components"]["schemas"]
    checked, wrong = 0, []
    for path, operations in spec["paths"].items():
        answer = (operations.get("get") or {}).get("responses", {}).get("200", {})
        schema = answer.get("content", {}).get("application/json", {}).get("schema")
        params = re.findall(r"{([a-z_]+)}", path)
        if schema is None or any(p not in lived_in for p in params):
            continue
        for values in itertools.product(*(lived_in[p] for p in params)):
            url = path
            for param, value in zip(params, values, strict=True):
                url = url.replace(f"{{{param}}}", str(value))
            response = client.get(url, headers=admin_headers)
            if response.status_code != 200 or not response.is_json:
                continue
            checked += 1
            for error in jsonschema.Draft7Validator(_json_schema(schema, components)).iter_errors(
                response.json
            ):
                wrong.append(f"{url}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
    assert checked > 25, checked
    assert not wrong, "\n".join(wrong)


def test_the_event_stream_is_declared_as_server_sent_events(client):
    responses = client.get(SPEC).json["paths"]["/api/v1/events"]["get"]["responses"]
    assert list(responses["200"]["content"]) == ["text/event-stream"]
