"""Webhooks: every stored event, signed and POSTed to the endpoints that asked for it.

- ``fanout.py``: one delivery row per matching endpoint, in the event's transaction.
- ``signing.py``: secrets and Standard Webhooks signatures; which headers are ours.
- ``delivery.py``: one attempt of one delivery (POST, record, retry or give up).
- ``dispatcher.py``: the runtime's worker that picks due deliveries, in order per chat.
- ``actions.py``: what a receiver may ask back (reply, react, …); workflows reuse it.
- ``endpoints.py``: endpoints, tests and replays for the API.

Kept light: ``server.eventlog`` imports ``fanout`` on every event.
"""
