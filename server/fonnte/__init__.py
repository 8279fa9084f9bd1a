"""fonnte compatibility: fonnte's API and webhook shapes over Kabar's own send path.

An existing fonnte client changes its base URL (``https://api.fonnte.com`` ->
``https://<kabar>/fonnte``) and its token (a Kabar API key bound to one session); the
rest of its code stays as it was. ``send.py`` turns fonnte's send fields into outbox rows
(``server.outbox.queue.send``, the one send path), ``lookups.py`` answers the message
status and device look-ups, ``webhooks.py`` builds fonnte's webhook bodies from Kabar's
events. What is and is not supported, field by field: docs/fonnte.md.
"""

from server.errors import KabarError


class Refused(KabarError):
    """A request fonnte would refuse: answered as ``{"status": false, "reason": ...}``."""

    status = 422
    code = "fonnte_refused"
    message = "input invalid"


__all__ = ["Refused"]
