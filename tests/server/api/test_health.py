"""Liveness, readiness, metrics, security headers and the errors Flask itself raises."""

from __future__ import annotations

from server import create_app, database
from server.auth import apikeys
from server.auth.principal import Principal
from server.models import db
from server.runtime import heartbeat


def test_health_needs_no_credentials(client):
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_ready_when_the_database_is_migrated_and_the_runtime_beats(client):
    without_runtime = client.get("/api/v1/ready")
    assert without_runtime.status_code == 503
    assert without_runtime.json["status"] == "not_ready"
    assert without_runtime.json["checks"]["database"]["ok"] is True
    assert without_runtime.json["checks"]["runtime"]["ok"] is False

    holder = heartbeat.new_holder()
    assert heartbeat.acquire(holder)
    try:
        response = client.get("/api/v1/ready")
    finally:
        heartbeat.release(holder)
    assert response.status_code == 200, response.json
    assert response.json["status"] == "ready"
    assert response.json["checks"]["database"] == {"ok": True, "revision": database.head_revision()}
    assert response.json["checks"]["runtime"]["ok"] is True


def test_ready_says_not_ready_on_a_database_never_migrated(tmp_path):
    app = create_app(
        {
            "INSTANCE_PATH": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path}/empty.db",
            "SECRET_KEY": "x" * 40,
        }
    )
    try:
        response = app.test_client().get("/api/v1/ready")
        assert response.status_code == 503
        assert response.json["status"] == "not_ready"
        check = response.json["checks"]["database"]
        assert check["ok"] is False and check["revision"] is None
        assert "kabar init" in check["error"]
        assert app.test_client().get("/api/v1/health").status_code == 200  # still alive
    finally:
        with app.app_context():
            db.engine.dispose()


def test_metrics_need_metrics_read(client, make_user, login, admin_headers):
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401 and anonymous.json["code"] == "unauthorized"
    operator = client.get("/metrics", headers=login(make_user("operator")))
    assert operator.status_code == 403 and operator.json["code"] == "permission_denied"
    response = client.get("/metrics", headers=admin_headers)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["Content-Type"].count("charset") == 1, response.headers
    assert "kabar_http_requests_total" in response.get_data(as_text=True)
    assert 'endpoint="/api/v1/auth/login"' in response.get_data(as_text=True)


def test_prometheus_scrapes_with_an_api_key(client, admin):
    _, key = apikeys.create(
        Principal.for_user(admin), name="prometheus", permissions=["metrics:read"]
    )
    response = client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert "kabar_http_request_seconds" in response.get_data(as_text=True)


def test_security_headers_on_answers_and_errors(client):
    for response in (
        client.get("/api/v1/health"),
        client.get("/api/v1/users"),
        client.get("/nowhere"),
        client.get("/docs"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_unknown_url_is_a_json_404(client):
    for url in ("/nowhere", "/api/v1/nowhere", "/api/v1/users/not-a-number"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.is_json, url
        assert response.json["code"] == "not_found"
        assert response.json["status"] == 404 and response.json["message"]
        assert response.json["request_id"] == response.headers["X-Request-ID"]


def test_wrong_method_is_a_json_405(client):
    response = client.put("/api/v1/health")
    assert response.status_code == 405
    assert response.json["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]
    delete = client.delete("/api/v1/auth/login")
    assert delete.status_code == 405 and delete.json["code"] == "method_not_allowed"


def test_a_body_that_is_not_json_is_a_json_error(client, admin_headers):
    response = client.post(
        "/api/v1/users", headers=admin_headers, data="{oops", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json["code"] == "bad_request"


def test_a_nul_character_is_refused_up_front(client, admin_headers):
    """PostgreSQL cannot hold NUL in text; both databases answer the same clear 400."""
    login = client.post("/api/v1/auth/login", json={"username": "ad\u0000min", "password": "x"})
    assert login.status_code == 400 and login.json["code"] == "nul_character"
    nested = client.post(
        "/api/v1/groups",
        headers=admin_headers,
        json={"name": "clerks", "permissions": ["sessions:read\u0000"]},
    )
    assert nested.status_code == 400 and nested.json["code"] == "nul_character"
    for url in ("/api/v1/users?q=a%00b", "/api/v1/groups/a%00b"):
        response = client.get(url, headers=admin_headers)
        assert response.status_code == 400, url
        assert response.json["code"] == "nul_character"
    assert client.get("/api/v1/users?q=a", headers=admin_headers).status_code == 200
