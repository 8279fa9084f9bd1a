"""Link previews, fetched through Kabar's SSRF guard."""

from __future__ import annotations

import html.parser
import logging
import re
import urllib.parse
from typing import Any

from server.whatsapp.neonize.media import (
    _image_size,
)

log = logging.getLogger(__name__)

_URL = re.compile(r"https?://[^\s<>\"']+")


class _MetaParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "meta":
            key = (values.get("property") or values.get("name") or "").lower()
            if key and key not in self.meta:
                self.meta[key] = values.get("content", "").strip()
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title and not self.title:
            self.title = data.strip()


def _fetch_allow() -> list[str]:
    try:
        from flask import current_app

        return list(current_app.config["KABAR"]["FETCH_ALLOW"])
    except Exception:  # no app context: no exceptions to the SSRF guard
        return []


def link_preview(text: str) -> dict:
    """ExtendedTextMessage fields previewing the first URL in ``text`` (title,
    description, thumbnail), fetched through Kabar's SSRF guard (``server.netguard``),
    never through neonize's own preview code, which fetches any URL it is given. Best
    effort: without a page it is just the matched URL, and the text is sent anyway."""
    match = _URL.search(text or "")
    if not match:
        return {}
    url = match[0].rstrip(".,;:!?)]}'\"")
    fields: dict[str, Any] = {"matchedText": url}
    try:
        from server import netguard

        page = netguard.fetch(url, max_bytes=512 * 1024, timeout=5, allow=_fetch_allow())
        if page.content_type not in (None, "text/html", "application/xhtml+xml"):
            return fields
        parser = _MetaParser()
        parser.feed(page.data.decode("utf-8", "replace"))
        meta = parser.meta
        fields["title"] = (meta.get("og:title") or parser.title)[:300]
        fields["description"] = (meta.get("og:description") or meta.get("description", ""))[:300]
        image = meta.get("og:image")
        if image:
            picture = netguard.fetch(
                urllib.parse.urljoin(page.final_url, image),
                max_bytes=2 * 1024 * 1024,
                timeout=5,
                allow=_fetch_allow(),
            )
            size = _image_size(picture.data)
            if size:
                fields["JPEGThumbnail"] = size[2]
    except Exception as exc:
        log.info("no link preview for %s: %s", url, exc)
    return {k: v for k, v in fields.items() if v}
