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
    for path in ("/api/v1/auth/login", "/api/v1/auth/me", "/api/v1/users",
                 "/api/v1/users/{user_id}", "/api/v1/groups", "/api/v1/api-keys",
                 "/api/v1/api-keys/{key_id}", "/api/v1/health", "/api/v1/ready"):
        assert path in spec["paths"], path


def test_security_is_declared(spec):
    assert spec["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "hookToken": {"type": "apiKey", "in": "header", "name": "X-Kabar-Token"},
    }
    assert spec["paths"]["/api/v1/auth/login"]["post"]["security"] == []
    # A workflow's hook is called with that workflow's own token, not a user's.
    assert spec["paths"]["/api/v1/hooks/{workflow}"]["post"]["security"] == [
        {"hookToken": []}]
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
    for escape in ("/docs/assets/../../setup.py", "/docs/assets/%2e%2e/__init__.py",
                   "/docs/assets/nope.js"):
        response = client.get(escape)
        assert response.status_code == 404, escape
        assert response.json["code"] == "not_found"
