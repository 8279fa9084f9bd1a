"""/docs: Swagger UI for /api/v1/openapi.json, served from the swagger-ui-bundle package so
it works on a server with no internet."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from server.auth.guard import public

blp = Blueprint("docs", __name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Kabar API</title>
<link rel="icon" href="/favicon.ico" type="image/svg+xml">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>"""

# filter: a box over the operations (there are over a hundred) that keeps the tags whose
# name matches what is typed.
INIT = """window.ui = SwaggerUIBundle({url: "/api/v1/openapi.json", dom_id: "#swagger-ui",
  persistAuthorization: true, filter: true, docExpansion: "none"});"""
FAVICON = Path(__file__).parent / "ui" / "static" / "favicon.svg"


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


@blp.route("/favicon.ico")
@public
def favicon() -> Response:
    """What browsers ask for on pages without an icon link (the API's JSON, /metrics)."""
    return Response(
        FAVICON.read_bytes(),
        mimetype="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )
