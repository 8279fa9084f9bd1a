"""Look-ups: is a number on WhatsApp, profile pictures, user info, LID <-> phone."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from server.whatsapp.neonize.errors import _error_text, _transport_error
from server.whatsapp.neonize.jids import _is_lid, _is_user, _jid, _jid_device_str, _jid_str
from server.whatsapp.transport import (
    GroupInfo,
    NotConnected,
    Registration,
    TransportError,
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
            self._registered[d] = (
                registered,
                time.monotonic(),
                answer.JID.User if registered else None,
            )
            result.append(
                Registration(
                    query=phone,
                    registered=registered,
                    jid=_jid_str(answer.JID) if registered else None,
                )
            )
        return result

    def profile_picture(self, jid: str) -> str | None:
        client = self._require_connected()
        try:
            picture = client.get_profile_picture(_jid(jid))
        except Exception as exc:
            text = _error_text(exc)
            if re.search(
                r"no(t have a)? profile picture|hidden|not-authorized|item-not-found"
                r"|\b40[134]\b",
                text,
                re.I,
            ):
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
            result.append(
                {
                    "jid": text,
                    "phone": answer.JID.User if _is_user(answer.JID) else None,
                    "status": info.Status or None,
                    "picture_id": info.PictureID or None,
                    "verified_name": info.VerifiedName.Details.verifiedName or None,
                    "devices": [_jid_device_str(d) for d in info.Devices],
                }
            )
        return result

    def lid_lookup(self, jids: list[str]) -> list[dict]:
        """Each JID's other id from whatsmeow's LID store (filled as WhatsApp tells this
        device; no round trip): a phone JID's LID, a LID's phone JID, or None. Go's
        LID calls abort the process without a logged-in client (notes §6): only while
        connected, under ``_go_lock``."""
        self._require_connected()
        result = []
        for text in jids:
            jid = _jid(text)
            lid_side = _is_lid(jid)
            if not (lid_side or _is_user(jid)):
                raise TransportError(
                    f"{text!r} is neither a phone JID nor a LID.",
                    code="invalid_jid",
                    permanent=True,
                )
            with self._go_lock:
                if not self._connected or self._stopping.is_set() or self._client is None:
                    raise NotConnected()
                try:
                    other = (
                        self._client.get_pn_from_lid(jid)
                        if lid_side
                        else self._client.get_lid_from_pn(jid)
                    )
                except Exception as exc:
                    log.debug("no other id for %s: %s", text, _error_text(exc))
                    other = None
            other_text = _jid_str(other) if other is not None and other.User else None
            phone_jid, lid = (
                (other_text, _jid_str(jid)) if lid_side else (_jid_str(jid), other_text)
            )
            result.append(
                {
                    "query": text,
                    "jid": phone_jid,
                    "lid": lid,
                    "phone": phone_jid.split("@")[0] if phone_jid else None,
                }
            )
        return result

    def groups(self) -> list[GroupInfo]:
        client = self._require_connected()
        try:
            return [self._group(g) for g in client.get_joined_groups()]
        except Exception as exc:
            raise _transport_error(exc, "groups") from exc
