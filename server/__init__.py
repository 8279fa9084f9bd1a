"""Kabar: a self-hosted WhatsApp gateway (the Flask server)."""

from server.app import create_app

__all__ = ["create_app"]
