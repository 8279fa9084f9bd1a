"""Kabar: a self-hosted WhatsApp gateway (the Flask server).

``create_app`` is imported on first use, so a session host process (which imports
``server.runtime.session_host`` and a transport) never loads the web app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from server.app import create_app

        return create_app
    raise AttributeError(f"module 'server' has no attribute {name!r}")
