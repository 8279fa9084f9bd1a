"""/docs: Swagger UI for /api/v1/openapi.json, served from the swagger-ui-bundle package so
it works on a server with no internet."""

from __future__ import annotations

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from server.auth.guard import public

blp = Blueprint("docs", __name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kabar API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>"""

INIT = """window.ui = SwaggerUIBundle({url: "/api/v1/openapi.json", dom_id: "#swagger-ui",
  persistAuthorization: true});"""


@blp.route("/docs")
@public
def page() -> Response:
    return Response(PAGE, mimetype="text/html")


@blp.route("/docs/init.js")
@public
def init_script() -> Response:
    return Response(INIT, mimetype="text/javascript")


@blp.route("/docs/assets/<path:filename>")
@public
def assets(filename: str) -> Response:
    return send_from_directory(swagger_ui_path, filename, max_age=86400)
