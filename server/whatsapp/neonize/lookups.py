"""Look-ups: is a number on WhatsApp, profile pictures, user info, LID <-> phone."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from server.whatsapp.neonize.errors import _error_text, _transport_error
from server.whatsapp.neonize.jids import _is_user, _jid, _jid_device_str, _jid_str
from server.whatsapp.transport import (
    GroupInfo,
    Registration,
)

log = logging.getLogger(__name__)

class Lookups:
    """The transport's look-ups."""

    def _lookup_pn(self, lid: Any) -> str | None:
        """The phone number behind an @lid from whatsmeow's LID store. Aborts the process
        without a logged-in Go client (notes §6), hence the state check under
        ``_go_lock``, which stop() takes before it stops the client."""
        with self._go_lock:
            if not self._connected or self._stopping.is_set() or self._client is None:
                return None
            try:
                pn = self._client.get_pn_from_lid(lid)
            except Exception as exc:
                log.debug("no phone for %s: %s", _jid_str(lid), exc)
                return None
        return pn.User if pn is not None and pn.User else None

    # --- look-ups (the runtime's pool threads) ----------------------------------------

    def is_on_whatsapp(self, phones: list[str]) -> list[Registration]:
        client = self._require_connected()
        digits = [re.sub(r"\D", "", p) for p in phones]
        try:
            answers = client.is_on_whatsapp(*[f"+{d}" for d in digits]) if digits else []
        except Exception as exc:
            raise _transport_error(exc, "is_on_whatsapp") from exc
        found = {re.sub(r"\D", "", a.Query): a for a in answers}
        result = []
        for phone, d in zip(phones, digits, strict=True):
            answer = found.get(d)
            registered = bool(answer and answer.IsIn)
            self._registered[d] = (registered, time.monotonic(),
                                   answer.JID.User if registered else None)
            result.append(Registration(query=phone, registered=registered,
                                       jid=_jid_str(answer.JID) if registered else None))
        return result

    def profile_picture(self, jid: str) -> str | None:
        client = self._require_connected()
        try:
            picture = client.get_profile_picture(_jid(jid))
        except Exception as exc:
            text = _error_text(exc)
            if re.search(r"no(t have a)? profile picture|hidden|not-authorized|item-not-found"
                         r"|\b40[134]\b", text, re.I):
                return None
            raise _transport_error(exc, "profile_picture") from exc
        return picture.URL or None

    def user_info(self, jids: list[str]) -> list[dict]:
        client = self._require_connected()
        try:
            answers = client.get_user_info(*[_jid(j) for j in jids]) if jids else []
        except Exception as exc:
            raise _transport_error(exc, "user_info") from exc
        result = []
        for answer in answers:
            info = answer.UserInfo
            text = _jid_str(answer.JID)
            result.append({
                "jid": text, "phone": answer.JID.User if _is_user(answer.JID) else None,
                "status": info.Status or None, "picture_id": info.PictureID or None,
                "verified_name": info.VerifiedName.Details.verifiedName or None,
                "devices": [_jid_device_str(d) for d in info.Devices]})
        return result

    def groups(self) -> list[GroupInfo]:
        client = self._require_connected()
        try:
            return [self._group(g) for g in client.get_joined_groups()]
        except Exception as exc:
            raise _transport_error(exc, "groups") from exc

